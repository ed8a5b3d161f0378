#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mktrace.py RAW OUT.trace "DESCRIPTION" - turn a raw record file of
librttrace.so (bench/rttrace.c) into a replayable trace: addresses become
block numbers (the lowest number free at the time, so the numbers stay
small), and every call becomes one line:

  m ID SIZE          malloc
  c ID COUNT SIZE    calloc
  a ID ALIGN SIZE    memalign / posix_memalign / aligned_alloc
  r ID SIZE          realloc of block ID (the block keeps its number)
  f ID               free

Lines starting with '#' are comments.  Calls that failed, free(NULL),
frees of addresses never seen allocated, and realloc(p, 0) (which glibc
treats as free) are written as what they did.  Compress the result with
gzip -9 (bench/rtbench reads .gz through gzip -dc).
"""

import heapq
import struct
import sys

REC = struct.Struct("<IIQQQ")
OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_FREE, OP_MEMALIGN = 1, 2, 3, 4, 5


def main(raw, out, desc):
    live = {}          # address -> id
    free_ids = []      # heap of released ids
    next_id = 0
    lines = []
    threads = set()
    peak = 0
    counts = {}

    def emit(line):
        lines.append(line)
        counts[line[0]] = counts.get(line[0], 0) + 1

    def new_id(addr):
        nonlocal next_id
        if free_ids:
            i = heapq.heappop(free_ids)
        else:
            i = next_id
            next_id += 1
        live[addr] = i
        return i

    def drop(addr):
        i = live.pop(addr)
        heapq.heappush(free_ids, i)
        return i

    with open(raw, "rb") as f:
        data = f.read()
    for off in range(0, len(data) - REC.size + 1, REC.size):
        op, tid, a, b, r = REC.unpack_from(data, off)
        threads.add(tid)
        if op in (OP_MALLOC, OP_CALLOC, OP_MEMALIGN):
            if not r:
                continue
            if r in live:          # missed free (should not happen)
                drop(r)
            i = new_id(r)
            if op == OP_MALLOC:
                emit(f"m {i} {a}")
            elif op == OP_CALLOC:
                emit(f"c {i} {a} {b}")
            else:
                emit(f"a {i} {a} {b}")
        elif op == OP_REALLOC:
            if a == 0:
                if r:
                    emit(f"m {new_id(r)} {b}")
            elif a not in live:
                continue
            elif b == 0 and r == 0:
                emit(f"f {drop(a)}")
            elif r == 0:
                continue           # failed: the old block stays
            else:
                i = live.pop(a)
                live[r] = i
                emit(f"r {i} {b}")
        elif op == OP_FREE:
            if a in live:
                emit(f"f {drop(a)}")
        else:
            continue
        peak = max(peak, len(live))
    with open(out, "w") as f:
        f.write(f"# rtbench allocation trace v1: {desc}\n")
        f.write(f"# {len(lines)} calls ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
                f"{next_id} block numbers, peak {peak} live blocks, {len(live)} live at the end, "
                f"{len(threads)} thread(s) recorded (replayed in one)\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
