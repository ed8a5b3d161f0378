#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py - the data side of bench/run.

  report.py strace TRACE RTBENCH_OUT   count memory syscalls between markers
  report.py callgrind DIR              instructions per malloc+free pair
  report.py report DATA_DIR REPORT_MD  tables, targets and plots

The first two print "R<TAB>scope<TAB>metric<TAB>value" lines, like rtbench;
bench/run files them in DATA_DIR/raw.tsv with the contender, the condition
("quiet" or "load") and the repeat in front.  "report" reads raw.tsv,
meta.tsv and contenders.tsv, takes medians over repeats, and writes the
Markdown report and the gnuplot plots (SVG and PNG).
"""

import collections
import glob
import math
import os
import re
import shutil
import statistics
import subprocess
import sys

MARK_BASE = 0x5254420000  # RTB_MARK_BASE in rtb_common.h
BASELINE = "glibc"
RT = "librtalloc"
SCENARIOS = [("1t", "1 thread"), ("2t", "2 threads"),
             ("2tx", "2 threads, cross-thread frees")]
OPS = ["malloc", "free", "calloc", "realloc", "aligned", "rfree"]
ST_SIZES = [16 << k for k in range(17)]  # 16 B .. 1 MiB
SMALL_SIZES = [s for s in ST_SIZES if s <= 1024]
CLASSIC = [("larson", "larson: server churn, threads replaced, remote frees"),
           ("xmalloc", "xmalloc: 4 producers + 4 consumers on 2 CPUs, 64 B"),
           ("cache-scratch", "cache-scratch: passive false sharing"),
           ("cache-thrash", "cache-thrash: active false sharing"),
           ("mstress", "mstress: random lifetimes and sizes, blocks passed between threads"),
           ("large", "large: 64 KiB–4 MiB blocks, 4 threads")]


def emit(scope, metric, value):
    print(f"R\t{scope}\t{metric}\t{value}")


# ----------------------------------------------------------------- strace

SYSCALL_LINE = re.compile(r"^(?:\[pid\s+)?\d*\]?\s*([a-z_0-9]+)\((.*)")


def marker_address(call, args):
    """The address of a marker madvise() call, or None for any other call."""
    if call != "madvise" or not args.startswith("0x"):
        return None
    try:
        addr = int(args.split(",", 1)[0], 16)
    except ValueError:
        return None
    return addr if MARK_BASE <= addr < MARK_BASE + (1 << 20) else None


def cmd_strace(trace_path, out_path):
    """Memory system calls made between the begin and end marker of each
    latency scenario.  The markers are madvise() calls on a fixed address
    (see rtb_marker); rtbench's own output maps marker ids to scenarios."""
    names = {}
    with open(out_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 4 and parts[0] == "R" and parts[2] == "marker":
                names[int(float(parts[3]))] = parts[1].split(".", 1)[1]
    counts = {sid: collections.Counter() for sid in names}
    seen_end = set()
    inside = None
    with open(trace_path, errors="replace") as f:
        for line in f:
            m = SYSCALL_LINE.match(line)
            if not m or "resumed>" in line:
                continue  # signals, exits, second halves of split lines
            call, args = m.group(1), m.group(2)
            addr = marker_address(call, args)
            if addr is not None:
                code = (addr - MARK_BASE) >> 12
                sid, end = code // 2, code % 2
                if sid in counts:
                    if end:
                        inside = None
                        seen_end.add(sid)
                    else:
                        inside = sid
                continue
            if inside is not None:
                counts[inside][call] += 1
    for sid, name in names.items():
        if sid not in seen_end:
            continue  # the run did not finish this scenario
        scope = f"sys.{name}"
        emit(scope, "total", sum(counts[sid].values()))
        for call, n in sorted(counts[sid].items()):
            emit(scope, call, n)


# -------------------------------------------------------------- callgrind

TRIGGER = "desc: Trigger: Client Request: "


def cmd_callgrind(directory):
    """Each dump file holds the instructions of one measured call; its
    trigger reads "<kind>:<pairs>"."""
    by_kind = collections.defaultdict(list)
    for path in glob.glob(os.path.join(directory, "cg.out*")):
        trigger, total = None, None
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith(TRIGGER):
                    trigger = line[len(TRIGGER):].strip()
                elif line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
        if trigger and ":" in trigger and total is not None:
            kind, pairs = trigger.rsplit(":", 1)
            by_kind[kind].append(total / int(pairs))
    empty = min(by_kind.get("empty", [0]))
    for kind, metric in (("wfree", "wfree_max_ir"), ("w32k", "w32k_ir"), ("w256k", "w256k_ir")):
        if by_kind.get(kind):
            emit("instr", metric, max(by_kind[kind]) - empty)
    if not by_kind.get("fast"):
        return
    loop = min(by_kind.get("loop", [0]))
    emit("instr", "fast_ir", min(by_kind["fast"]) - loop)
    singles = {k: [v - empty for v in by_kind.get(k, [])]
               for k in ("mixed", "sweep", "thread")}
    if singles["mixed"]:
        emit("instr", "mixed_mean_ir", statistics.mean(singles["mixed"]))
        emit("instr", "mixed_p99_ir", quantile(singles["mixed"], 0.99))
        emit("instr", "mixed_max_ir", max(singles["mixed"]))
    if singles["sweep"]:
        emit("instr", "sweep_max_ir", max(singles["sweep"]))
    if singles["mixed"] or singles["sweep"]:
        emit("instr", "worst_ir", max(singles["mixed"] + singles["sweep"]))
    if singles["thread"]:
        emit("instr", "thread_first_ir", max(singles["thread"]))


def quantile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]


# ------------------------------------------------------------------ data

class Data:
    """raw.tsv as {(contender, condition, scope, metric): [values...]}."""

    def __init__(self, directory):
        self.dir = directory
        self.values = collections.defaultdict(list)
        with open(os.path.join(directory, "raw.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 6:
                    continue
                who, cond, _rep, scope, metric, value = parts
                try:
                    self.values[(who, cond, scope, metric)].append(float(value))
                except ValueError:
                    pass
        self.contenders = []
        self.preload = {}
        with open(os.path.join(directory, "contenders.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if parts and parts[0]:
                    self.contenders.append(parts[0])
                    self.preload[parts[0]] = parts[1:] + [""] * 2
        self.meta = {}
        meta_path = os.path.join(directory, "meta.tsv")
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition("\t")
                    self.meta[k] = v

    def med(self, who, scope, metric, cond="quiet"):
        v = self.values.get((who, cond, scope, metric))
        return statistics.median(v) if v else None

    def max(self, who, scope, metric, cond="quiet"):
        v = self.values.get((who, cond, scope, metric))
        return max(v) if v else None

    def others(self):
        return [c for c in self.contenders if c != RT]

    def has(self, who):
        return who in self.contenders


# ------------------------------------------------------------ formatting

def num(v, digits=0):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ns(v):
    return num(v)


def ratio(v, base):
    if v is None or base in (None, 0):
        return ""
    r = v / base
    return f" ({r:.2f}×)" if r < 10 else f" ({r:.0f}×)"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out) + "\n"


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**not met**"


def name_cell(who):
    return f"**{who}**" if who == RT else who


# --------------------------------------------------------------- targets

def faults_of(d, who, scn, cond="quiet"):
    minor = d.max(who, f"lat.{scn}", "faults_minor", cond)
    major = d.max(who, f"lat.{scn}", "faults_major", cond)
    return None if minor is None else minor + (major or 0)


def targets(d):
    rows = []
    have_rt = d.has(RT)

    # Page faults and memory syscalls in every measured phase.
    if have_rt:
        conds = ["quiet"] + (["load"] if any(k[1] == "load" for k in d.values) else [])
        parts, ok = [], True
        for cond in conds:
            vals = [faults_of(d, RT, s, cond) for s, _ in SCENARIOS]
            if any(v is None for v in vals):
                ok = None
            elif ok is not None:
                ok = ok and all(v == 0 for v in vals)
            parts.append(f"{cond}: " + " / ".join(num(v) for v in vals))
        rows.append(["zero page faults in every measured phase (1t / 2t / 2tx)",
                     "; ".join(parts), "", verdict(ok)])
        vals = [d.max(RT, f"sys.{s}", "total") for s, _ in SCENARIOS]
        ok = None if any(v is None for v in vals) else all(v == 0 for v in vals)
        rows.append(["zero memory system calls in every measured phase (1t / 2t / 2tx)",
                     " / ".join(num(v) for v in vals), "", verdict(ok)])
    else:
        rows.append(["zero page faults / memory syscalls", "—", "", verdict(None)])

    # Instructions.
    fast = d.med(RT, "instr", "fast_ir") if have_rt else None
    worst = d.med(RT, "instr", "worst_ir") if have_rt else None
    best_fast = min_other(d, lambda c: d.med(c, "instr", "fast_ir"))
    rows.append(["fast path ≤ 50 instructions per malloc+free pair", num(fast),
                 f"best other: {best_fast[1]} {num(best_fast[0])}" if best_fast else "",
                 verdict(None if fast is None else fast <= 50)])
    rows.append(["worst path ≤ 1000 instructions per pair (largest pair seen)", num(worst),
                 "", verdict(None if worst is None else worst <= 1000)])

    # Latency tails: lower than every other contender, same run.
    for scn, label in SCENARIOS:
        for op in ("malloc", "free"):
            scope = f"lat.{scn}.{op}"
            mine = [d.med(RT, scope, m) if have_rt else None for m in ("p999_ns", "p9999_ns")]
            best = [min_other(d, lambda c, m=m: d.med(c, scope, m)) for m in ("p999_ns", "p9999_ns")]
            ok = None
            if None not in mine and all(best):
                ok = mine[0] < best[0][0] and mine[1] < best[1][0]
            ref = " / ".join(f"{num(b[0])} ({b[1]})" for b in best if b)
            rows.append([f"{op} p99.9 / p99.99 below every other contender, {label}",
                         " / ".join(ns(v) for v in mine) + " ns", "lowest other: " + ref,
                         verdict(ok)])

    # Throughput.
    for metric, label in (("geomean_mpairs_s", "16 B–1 MiB"), ("small_mpairs_s", "16 B–1 KiB")):
        mine = st_metric(d, RT, metric) if have_rt else None
        best = max_other(d, lambda c, m=metric: st_metric(d, c, m))
        ok = None if mine is None or not best else mine >= best[0]
        rows.append([f"single-thread throughput ≥ fastest contender ({label}, geometric mean)",
                     f"{num(mine, 1)} M pairs/s",
                     f"fastest other: {best[1]} {num(best[0], 1)}" if best else "", verdict(ok)])
    mine = d.med(RT, "tput.xthread", "mops_s") if have_rt else None
    base = d.med(BASELINE, "tput.xthread", "mops_s")
    ok = None if mine is None or not base else mine >= 2 * base
    rows.append(["cross-thread (producer/consumer) ≥ 2× glibc",
                 f"{num(mine, 2)} M ops/s{ratio(mine, base)}", f"glibc {num(base, 2)}", verdict(ok)])

    # Classic workloads: faster than every other contender on each.
    names = classic_names(d)
    if names:
        behind = []
        for w in names:
            mine = d.med(RT, f"classic.{w}", "time_s") if have_rt else None
            best = min_other(d, lambda c, w=w: d.med(c, f"classic.{w}", "time_s"))
            if mine is not None and best and mine >= best[0]:
                behind.append(f"{w} ({best[1]} {mine / best[0]:.2f}× faster)")
        ok = None if not have_rt else not behind
        rows.append(["classic workloads: time below every other contender's on each",
                     f"ahead on {len(names) - len(behind)} of {len(names)}",
                     ("behind: " + ", ".join(behind)) if behind else "", verdict(ok)])

    # Pre-faulting speed.
    sizes = startup_sizes(d)
    parts, ok = [], (None if not sizes or not have_rt else True)
    for size in sizes:
        init, pop = rt_init_ms(d, size), d.med("startup", f"populate.{size}", "ms")
        if init is None or pop is None:
            ok = None
            continue
        parts.append(f"{size}: {init / pop:.2f}×")
        if ok is not None:
            ok = ok and init <= 1.10 * pop
    rows.append(["pool pre-fault time within 10% of mmap(MAP_POPULATE)",
                 ", ".join(parts) or "—", "ratio of set-up time to MAP_POPULATE", verdict(ok)])
    return table(["target", "librtalloc", "reference", "verdict"], rows)


def min_other(d, get):
    vals = [(get(c), c) for c in d.others()]
    vals = [v for v in vals if v[0] is not None]
    return min(vals) if vals else None


def max_other(d, get):
    vals = [(get(c), c) for c in d.others()]
    vals = [v for v in vals if v[0] is not None]
    return max(vals) if vals else None


def st_metric(d, who, metric):
    if metric == "geomean_mpairs_s":
        return d.med(who, "tput.st", metric)
    vals = [d.med(who, f"tput.st.{s}", "mpairs_s") for s in SMALL_SIZES]
    if None in vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def startup_sizes(d):
    sizes = set()
    for (who, _c, scope, _m) in d.values:
        if who == "startup" and scope.startswith("populate."):
            sizes.add(scope.split(".", 1)[1])
    return sorted(sizes, key=parse_size)


def parse_size(s):
    m = re.match(r"(\d+)([KMGT]?)", s)
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2) or " ")) if m else 0


def rt_init_ms(d, size, who="librtalloc"):
    """Pool set-up time: exec->main of the preloaded child minus the same
    without any preload."""
    mine = d.med("startup", f"start.{who}.{size}", "to_main_ms")
    base = d.med("startup", f"start.baseline.{size}", "to_main_ms")
    return None if mine is None or base is None else max(0.0, mine - base)


# ---------------------------------------------------------------- tables

def problems_seen(d, max_lines=3):
    out = []
    for c in d.contenders:
        path = os.path.join(d.dir, "logs", f"{c}.log")
        if not os.path.exists(path):
            continue
        lines = []
        with open(path, errors="replace") as f:
            for line in f:
                # Addresses differ from run to run; the message does not.
                line = re.sub(r"0x[0-9a-f]+", "0x…", line.strip())
                if line and line not in lines:
                    lines.append(line)
        if lines:
            more = f" (and {len(lines) - max_lines} more)" if len(lines) > max_lines else ""
            shown = "; ".join(f"`{x[:160]}`" for x in lines[:max_lines])
            out.append(f"- **{c}**: {shown}{more}\n")
    return "".join(out)


def summary_table(d):
    """One line per contender with the figures that matter most."""
    st_base = st_metric(d, BASELINE, "geomean_mpairs_s")
    x_base = d.med(BASELINE, "tput.xthread", "mops_s")
    rows = []
    for c in d.contenders:
        faults = " / ".join(num(faults_of(d, c, s)) for s, _ in SCENARIOS)
        calls = " / ".join(num(d.max(c, f"sys.{s}", "total")) for s, _ in SCENARIOS)
        lat = lambda op: " / ".join(ns(d.med(c, f"lat.1t.{op}", m)) for m in ("p999_ns", "p9999_ns"))
        st = st_metric(d, c, "geomean_mpairs_s")
        x = d.med(c, "tput.xthread", "mops_s")
        ir = " / ".join(num(d.med(c, "instr", m)) for m in ("fast_ir", "worst_ir"))
        hwm = d.med(c, "mem", "hwm_kib")
        gm = classic_geomean(d, c)
        rows.append([name_cell(c), faults, calls, lat("malloc"), lat("free"),
                     num(st, 1) + ratio(st, st_base), num(x, 2) + ratio(x, x_base), ir,
                     num(mib(hwm), 0), "—" if gm is None else f"{gm:.2f}×"])
    return table(["contender", "faults 1t / 2t / 2tx", "mem. syscalls 1t / 2t / 2tx",
                  "malloc p99.9 / p99.99 ns (1t)", "free p99.9 / p99.99 ns (1t)",
                  "single thread M pairs/s", "cross-thread M ops/s",
                  "instructions fast / worst", "peak RSS MiB",
                  "classic workloads: time × glibc (geometric mean)"], rows)


def faults_table(d):
    has_load = any(k[1] == "load" for k in d.values)
    head = ["contender"] + [f"faults {s}" for s, _ in SCENARIOS]
    if has_load:
        head += [f"faults {s} (load)" for s, _ in SCENARIOS]
    head += [f"mem. syscalls {s}" for s, _ in SCENARIOS] + ["bad results"]
    def cell(c, scn, cond="quiet"):
        total = faults_of(d, c, scn, cond)
        worst = d.max(c, f"lat.{scn}", "faults_thread_max", cond)
        if scn == "1t" or total is None or worst is None:
            return num(total)
        return f"{num(total)} ({num(worst)})"

    rows = []
    for c in d.contenders:
        row = [name_cell(c)] + [cell(c, s) for s, _ in SCENARIOS]
        if has_load:
            row += [cell(c, s, "load") for s, _ in SCENARIOS]
        row += [num(d.max(c, f"sys.{s}", "total")) for s, _ in SCENARIOS]
        bad = []
        for m, label in (("misaligned", "misaligned"), ("errors", "corrupt/unzeroed"),
                         ("fails", "NULL")):
            n = sum((d.max(c, f"lat.{s}", m) or 0) for s, _ in SCENARIOS)
            if n:
                bad.append(f"{num(n)} {label}")
        row.append(", ".join(bad) or "none")
        rows.append(row)
    return table(head, rows)


def syscall_detail(d):
    rows = []
    for c in d.contenders:
        cells = []
        for s, _ in SCENARIOS:
            calls = []
            for (who, cond, scope, metric), v in d.values.items():
                if who == c and cond == "quiet" and scope == f"sys.{s}" and metric != "total" and max(v):
                    calls.append(f"{metric} {num(max(v))}")
            cells.append(", ".join(sorted(calls)) or ("0" if d.max(c, f"sys.{s}", "total") == 0 else "—"))
        rows.append([name_cell(c)] + cells)
    return table(["contender"] + [s for s, _ in SCENARIOS], rows)


def latency_table(d, scn, op, cond="quiet"):
    scope = f"lat.{scn}.{op}"
    base = {m: d.med(BASELINE, scope, m, cond) for m in ("p50_ns", "p999_ns", "p9999_ns")}
    rows = []
    for c in d.contenders:
        g = lambda m: d.med(c, scope, m, cond)
        if g("n") is None:
            continue
        rows.append([name_cell(c), num(g("n")),
                     ns(g("p50_ns")) + ratio(g("p50_ns"), base["p50_ns"]),
                     ns(g("p99_ns")),
                     ns(g("p999_ns")) + ratio(g("p999_ns"), base["p999_ns"]),
                     ns(g("p9999_ns")) + ratio(g("p9999_ns"), base["p9999_ns"]),
                     ns(g("max_ns")), num(g("gt1us")), num(g("gt10us")), num(g("gt100us"))])
    if not rows:
        return ""
    return table(["contender", "calls", "p50", "p99", "p99.9", "p99.99", "max",
                  "> 1 µs", "> 10 µs", "> 100 µs"], rows)


def throughput_table(d):
    base = {
        "st": st_metric(d, BASELINE, "geomean_mpairs_s"),
        "small": st_metric(d, BASELINE, "small_mpairs_s"),
        "x": d.med(BASELINE, "tput.xthread", "mops_s"),
        "l": d.med(BASELINE, "tput.larson", "mops_s"),
        "c": d.med(BASELINE, "tput.churn", "kthreads_s"),
    }
    rows = []
    for c in d.contenders:
        st, small = st_metric(d, c, "geomean_mpairs_s"), st_metric(d, c, "small_mpairs_s")
        x = d.med(c, "tput.xthread", "mops_s")
        lar = d.med(c, "tput.larson", "mops_s")
        ch = d.med(c, "tput.churn", "kthreads_s")
        rows.append([name_cell(c), num(st, 1) + ratio(st, base["st"]),
                     num(small, 1) + ratio(small, base["small"]),
                     num(x, 2) + ratio(x, base["x"]), num(lar, 1) + ratio(lar, base["l"]),
                     num(ch, 1) + ratio(ch, base["c"])])
    return table(["contender", "single thread, M pairs/s (16 B–1 MiB)",
                  "single thread, M pairs/s (16 B–1 KiB)", "cross-thread, M ops/s",
                  "larson, M ops/s", "thread churn, k threads/s"], rows)


def classic_names(d):
    """The classic workloads measured, in the order of CLASSIC, traces last."""
    seen = {scope[len("classic."):] for (_w, _c, scope, _m) in d.values
            if scope.startswith("classic.")}
    known = [w for w, _ in CLASSIC if w in seen]
    return known + sorted(w for w in seen if w not in known)


def classic_label(w):
    for name, label in CLASSIC:
        if name == w:
            return label
    if w.startswith("trace-"):
        return f"{w}: a real program's allocations replayed (bench/traces/{w[6:]}.trace.gz)"
    return w


def classic_bad(d, c, w):
    bad = []
    for m, label in (("errors", "corrupt/lost"), ("fails", "NULL")):
        n = d.max(c, f"classic.{w}", m)
        if n:
            bad.append(f"{num(n)} {label}")
    return ", ".join(bad) or "none"


def classic_geomean(d, c):
    """Geometric mean over the classic workloads of c's time / glibc's, or
    None unless every workload has both."""
    names, logs = classic_names(d), []
    for w in names:
        t, base = d.med(c, f"classic.{w}", "time_s"), d.med(BASELINE, f"classic.{w}", "time_s")
        if t is None or not base:
            return None
        logs.append(math.log(t / base))
    return math.exp(sum(logs) / len(logs)) if logs else None


def classic_summary(d):
    """Time ratio to glibc, per contender and workload, and the geometric mean."""
    names = classic_names(d)
    rows = []
    for c in d.contenders:
        cells, logs = [], []
        for w in names:
            t, base = d.med(c, f"classic.{w}", "time_s"), d.med(BASELINE, f"classic.{w}", "time_s")
            if t is None or not base:
                cells.append("—")
                continue
            fastest = min((d.med(x, f"classic.{w}", "time_s"), x) for x in d.contenders
                          if d.med(x, f"classic.{w}", "time_s") is not None)
            cell = f"{t / base:.2f}"
            cells.append(f"**{cell}**" if fastest[1] == c else cell)
            logs.append(math.log(t / base))
        gm = classic_geomean(d, c)
        rows.append([name_cell(c)] + cells + ["—" if gm is None else f"{gm:.2f}"])
    return table(["contender"] + names + ["geometric mean"], rows)


def classic_table(d, w):
    scope = f"classic.{w}"
    base_t = d.med(BASELINE, scope, "time_s")
    base_m = d.med(BASELINE, scope, "hwm_kib")
    rows = []
    for c in d.contenders:
        t = d.med(c, scope, "time_s")
        if t is None:
            continue
        capped = " (cut short)" if d.max(c, scope, "capped") else ""
        hwm = d.med(c, scope, "hwm_kib")
        rows.append([name_cell(c), num(t * 1000, 1) + ratio(t, base_t) + capped,
                     num(d.med(c, scope, "ns_per_op"), 0),
                     num(mib(hwm), 1) + ratio(hwm, base_m),
                     num(d.max(c, scope, "faults")), classic_bad(d, c, w)])
    return table(["contender", "time, ms (× glibc)", "ns per operation",
                  "peak RSS, MiB (× glibc)", "page faults", "bad results"], rows)


def size_table(d):
    shown = [16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
    rows = []
    for c in d.contenders:
        rows.append([name_cell(c)] + [num(d.med(c, f"tput.st.{s}", "mpairs_s"), 1) for s in shown])
    return table(["contender"] + [human_size(s) for s in shown], rows)


def human_size(s):
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if s >= 1 << shift:
            return f"{s >> shift} {unit}"
    return f"{s} B"


def memory_table(d):
    rows = []
    base = d.med(BASELINE, "mem", "hwm_kib")
    for c in d.contenders:
        g = lambda m: d.med(c, "mem", m)
        req, hwm = g("peak_requested_kib"), g("hwm_kib")
        rows.append([name_cell(c), num(mib(req), 1), num(mib(g("rss_at_main_kib")), 1),
                     num(mib(hwm), 1) + ratio(hwm, base),
                     f"{hwm / req:.2f}" if req and hwm else "—"])
    return table(["contender", "peak requested, MiB", "RSS at main(), MiB",
                  "peak RSS (VmHWM), MiB", "VmHWM / requested"], rows)


MLOCK_MODES = [("1", "all (default)"), ("onfault", "onfault"), ("pool", "pool"), ("0", "off")]


def mlock_modes_table(d):
    rows = []
    for mode, label in MLOCK_MODES:
        cond = f"mlock-{mode}"
        cells = []
        for w in ("larson", "large"):
            cells += [num(mib(d.max(RT, f"classic.{w}", "hwm_kib", cond)), 1),
                      num(d.max(RT, f"classic.{w}", "faults", cond))]
        if any(c != "—" for c in cells):
            rows.append([f"`RTALLOC_MLOCK={mode}`: {label}"] + cells)
    if not rows:
        return ""
    base = []
    for w in ("larson", "large"):
        base += [num(mib(d.med(BASELINE, f"classic.{w}", "hwm_kib")), 1),
                 num(d.max(BASELINE, f"classic.{w}", "faults"))]
    rows.append([f"{BASELINE} (for reference)"] + base)
    return table(["librtalloc", "larson peak RSS, MiB", "larson faults", "large peak RSS, MiB",
                  "large faults"], rows)


def mib(kib):
    return None if kib is None else kib / 1024


def instr_table(d):
    base = d.med(BASELINE, "instr", "fast_ir")
    rows = []
    for c in d.contenders:
        g = lambda m: d.med(c, "instr", m)
        rows.append([name_cell(c), num(g("fast_ir")) + ratio(g("fast_ir"), base),
                     num(g("mixed_mean_ir")), num(g("mixed_p99_ir")), num(g("mixed_max_ir")),
                     num(g("sweep_max_ir")), num(g("worst_ir")), num(g("thread_first_ir"))])
    return table(["contender", "fast pair", "mixed: mean", "mixed: p99", "mixed: max",
                  "size sweep: max", "worst pair", "first pair of a new thread"], rows)


def worst_pattern_table(d):
    """librtalloc's worst calls after the fragmenting pattern, per pool size."""
    rows = []
    for pool in ("64M", "1G"):
        g = lambda m: d.med(RT, "instr", f"{m}.{pool}")
        if g("w32k_ir") is None:
            continue
        rows.append([pool, num(g("wfree_max_ir")), num(g("w32k_ir")), num(g("w256k_ir"))])
    if not rows:
        return "(not measured)\n"
    return table(["pool", "worst of the last 64 frees", "malloc(32 KiB)", "malloc(256 KiB)"], rows)


def startup_table(d):
    rows = []
    for size in startup_sizes(d):
        base = d.med("startup", f"start.baseline.{size}", "to_main_ms")
        pop = d.med("startup", f"populate.{size}", "ms")
        rt = rt_init_ms(d, size)
        rc = rt_init_ms(d, size, "glibc+rt-recipe")
        first = d.med("startup", f"start.librtalloc.{size}", "first_pair_us")
        first = None if first is None else first * 1000
        gbs = d.med("startup", f"populate.{size}", "gb_s")
        rows.append([size, num(base, 2), num(pop, 1) + (f" ({gbs:.1f} GB/s)" if gbs else ""),
                     num(rt, 1) + (f" ({rt / pop:.2f}×)" if rt is not None and pop else ""),
                     num(rc, 1) + (f" ({rc / pop:.2f}×)" if rc is not None and pop else ""),
                     num(first, 1)])
    return table(["pool", "exec→main, no preload (ms)", "mmap(MAP_POPULATE) (ms)",
                  "librtalloc set-up (ms, × populate)", "glibc RT recipe set-up (ms, × populate)",
                  "librtalloc first malloc+free (ns)"], rows)


# ------------------------------------------------------------------ plots

COLORS = ["#000000", "#7f7f7f", "#1f77b4", "#aec7e8", "#2ca02c", "#98df8a",
          "#ff7f0e", "#ffbb78", "#d62728", "#9467bd", "#8c564b"]


def color_of(d, who):
    if who == RT:
        return "#d62728"
    i = d.contenders.index(who) if who in d.contenders else 0
    return COLORS[i % len(COLORS)]


def gp_quote(s):
    return '"' + s.replace('"', "'") + '"'


def cdf_points(d, who, scn, op, cond):
    """(latency ns, fraction of calls slower) pairs, medians over repeats."""
    pts = []
    n = d.med(who, f"lat.{scn}.{op}", "n", cond)
    for (c, cd, scope, metric), vals in d.values.items():
        if c == who and cd == cond and scope == f"cdf.{scn}.{op}" and metric.startswith("q"):
            q = float(metric[1:])
            tail = 1 - q if q < 1 else (1 / n if n else None)
            if tail:
                pts.append((statistics.median(vals), tail))
    return sorted(pts, key=lambda p: -p[1])


def plot_cdfs(d, pdir, ops):
    scripts = {}
    has_load = any(k[1] == "load" for k in d.values)
    panels = [(s, "quiet", lbl) for s, lbl in SCENARIOS]
    if has_load:
        panels.append(("1t", "load", "1 thread, under background load"))
    for op in ops:
        body = ["set multiplot layout 2,2 title " + gp_quote(f"{op}: latency tail (CCDF), medians of repeats")]
        any_data = False
        for scn, cond, label in panels:
            plots = []
            for c in d.contenders:
                pts = cdf_points(d, c, scn, op, cond)
                if not pts:
                    continue
                fn = os.path.join(pdir, f"cdf-{op}-{scn}-{cond}-{c}.dat")
                with open(fn, "w") as f:
                    for x, y in pts:
                        f.write(f"{max(x, 1):.1f} {y:.8g}\n")
                width = 3 if c == RT else 1.5
                plots.append(f"{gp_quote(os.path.basename(fn))} using 1:2 with lines lw {width} "
                             f"lc rgb {gp_quote(color_of(d, c))} title {gp_quote(c)}")
            if not plots:
                continue
            any_data = True
            body += [f"set title {gp_quote(label)}",
                     "set logscale xy", "set format x '10^{%T}'", "set format y '10^{%T}'",
                     "set xlabel 'latency of one call (ns)'",
                     "set ylabel 'fraction of calls slower'",
                     "set yrange [1e-6:1]", "set grid", "set key top right font ',8'",
                     "plot " + ", ".join(plots)]
        body.append("unset multiplot")
        if any_data:
            scripts[f"lat-cdf-{op}"] = body
    return scripts


def plot_throughput(d, pdir):
    scripts = {}
    tests = [("st 16B-1MiB", lambda c: st_metric(d, c, "geomean_mpairs_s")),
             ("st 16B-1KiB", lambda c: st_metric(d, c, "small_mpairs_s")),
             ("cross-thread", lambda c: d.med(c, "tput.xthread", "mops_s")),
             ("larson", lambda c: d.med(c, "tput.larson", "mops_s")),
             ("thread churn", lambda c: d.med(c, "tput.churn", "kthreads_s"))]
    fn = os.path.join(pdir, "throughput.dat")
    with open(fn, "w") as f:
        f.write("# test " + " ".join(gp_quote(c) for c in d.contenders) + "\n")
        for label, get in tests:
            base = get(BASELINE)
            vals = []
            for c in d.contenders:
                v = get(c)
                vals.append(f"{v / base:.4f}" if v is not None and base else "NaN")
            f.write(gp_quote(label) + " " + " ".join(vals) + "\n")
    cols = ", ".join(
        f"{gp_quote('throughput.dat')} using {i + 2}:xtic(1) title {gp_quote(c)} "
        f"lc rgb {gp_quote(color_of(d, c))}" for i, c in enumerate(d.contenders))
    scripts["throughput"] = [
        "set title 'Throughput relative to glibc (higher is better; log scale), medians of repeats'",
        "set style data histograms", "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1", "set boxwidth 0.9",
        "set ylabel 'ratio to glibc'", "set grid ytics", "set logscale y",
        "set yrange [0.1:*]", "set ytics (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)",
        "set key outside right top font ',9'", "set xtics font ',10'",
        "plot " + cols]

    plots = []
    for c in d.contenders:
        fn = os.path.join(pdir, f"st-{c}.dat")
        with open(fn, "w") as f:
            for s in ST_SIZES:
                v = d.med(c, f"tput.st.{s}", "mpairs_s")
                if v is not None:
                    f.write(f"{s} {v:.4f}\n")
        width = 3 if c == RT else 1.5
        plots.append(f"{gp_quote(os.path.basename(fn))} using 1:2 with linespoints lw {width} "
                     f"pt 7 ps 0.5 lc rgb {gp_quote(color_of(d, c))} title {gp_quote(c)}")
    scripts["throughput-sizes"] = [
        "set title 'Single-thread malloc+free pairs per second, by size'",
        "set logscale x 2", "set xlabel 'request size'",
        "set xtics (" + ", ".join(f"'{human_size(4 ** k * 16)}' {4 ** k * 16}" for k in range(9)) + ")",
        "set ylabel 'million pairs per second'", "set grid", "set yrange [0:*]",
        "set key outside right top font ',9'", "plot " + ", ".join(plots)]
    return scripts


def plot_classic(d, pdir):
    names = classic_names(d)
    if not names:
        return {}
    fn = os.path.join(pdir, "classic.dat")
    with open(fn, "w") as f:
        f.write("# workload " + " ".join(gp_quote(c) for c in d.contenders) + "\n")
        for w in names + ["geometric mean"]:
            vals = []
            for c in d.contenders:
                if w == "geometric mean":
                    v = classic_geomean(d, c)
                else:
                    t = d.med(c, f"classic.{w}", "time_s")
                    base = d.med(BASELINE, f"classic.{w}", "time_s")
                    v = t / base if t is not None and base else None
                vals.append(f"{v:.4f}" if v else "NaN")
            f.write(gp_quote(w) + " " + " ".join(vals) + "\n")
    cols = ", ".join(
        f"{gp_quote('classic.dat')} using {i + 2}:xtic(1) title {gp_quote(c)} "
        f"lc rgb {gp_quote(color_of(d, c))}" for i, c in enumerate(d.contenders))
    return {"classic": [
        "set title 'Classic workloads: time relative to glibc (lower is better; log scale), medians'",
        "set style data histograms", "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1", "set boxwidth 0.9",
        "set ylabel 'time / glibc time'", "set grid ytics", "set logscale y",
        "set ytics (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)",
        "set key outside right top font ',9'", "set xtics font ',9' rotate by -20",
        "plot " + cols]}


def render(scripts, pdir, outdir):
    """Each script twice: SVG and PNG.  Returns the names drawn."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return []
    done = []
    for name, body in scripts.items():
        ok = True
        for term, ext in (("svg size 1200,800 dynamic font 'sans,11'", "svg"),
                          ("pngcairo size 1200,800 font 'sans,10'", "png")):
            script = [f"set terminal {term}",
                      # relative to pdir, gnuplot's directory: no machine's path in the files
                      f"set output {gp_quote(os.path.relpath(os.path.join(outdir, name + '.' + ext), pdir))}"] + body
            path = os.path.join(pdir, f"{name}.{ext}.gp")
            with open(path, "w") as f:
                f.write("\n".join(script) + "\n")
            r = subprocess.run([gnuplot, os.path.basename(path)], cwd=pdir,
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.stderr.write(f"gnuplot failed on {name}: {r.stderr}\n")
                ok = False
        if ok:
            done.append(name)
    return done


# ----------------------------------------------------------------- report

def cmd_report(directory, md_path):
    directory = os.path.abspath(directory)
    d = Data(directory)
    pdir = os.path.join(directory, "plotdata")
    os.makedirs(pdir, exist_ok=True)
    rel = os.path.relpath(directory, os.path.dirname(os.path.abspath(md_path)))

    scripts = plot_cdfs(d, pdir, ["malloc", "free", "calloc", "realloc", "aligned", "rfree"])
    scripts.update(plot_throughput(d, pdir))
    scripts.update(plot_classic(d, pdir))
    drawn = render(scripts, pdir, directory)

    m = d.meta
    out = []
    w = out.append
    w(f"# librtalloc benchmark: {m.get('date', '?')} on {m.get('host', '?')}\n")
    w(f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory', '?')}, "
      f"Linux {m.get('kernel', '?')}, glibc {m.get('glibc', '?')}. "
      f"Packages: jemalloc {m.get('pkg libjemalloc2', '?')}, mimalloc {m.get('pkg libmimalloc2.0', '?')}, "
      f"tcmalloc {m.get('pkg libtcmalloc-minimal4', '?')}. "
      f"librtalloc: `{m.get('librtalloc', '?')}` (commit {m.get('librtalloc commit', '?')}).\n")
    w(f"Run: {m.get('mode', '?')} mode, {m.get('repeats', '?')} interleaved repeats "
      f"(+{m.get('load repeats', '0')} under load), latency `{m.get('latency args', '')}`, "
      f"pools of librtalloc and of the glibc recipe {m.get('pool', '?')}, {m.get('sched', '')}. "
      "Figures are medians over repeats; page faults, system calls and bad results are the "
      "largest seen in any repeat. Ratios in parentheses are to glibc as shipped "
      "(lower is better for latency, higher for throughput). Method: [bench/README.md]"
      "(../README.md).\n")
    w("Contenders: " + ", ".join(d.contenders) + ".\n")
    if "--no-realloc" in m.get("latency args", ""):
        w("**Diagnostic run with `--no-realloc`**: the latency and memory workloads make "
          "no realloc call; figures are not comparable with normal runs.\n")
    if "others cpu" in m and "elapsed" in m:
        others, elapsed = float(m["others cpu"]), float(m["elapsed"])
        share = others / max(1.0, elapsed * float(m.get("cores", "1") or 1))
        w(f"Other processes used {others:.0f} CPU-seconds during the {elapsed:.0f} s of the run "
          f"({100 * share:.0f}% of the machine)."
          + (" **Other work was running: times and rates are disturbed**; instruction, "
             "fault and system-call counts are not." if share > 0.05 else "") + "\n")
    if not d.has(RT):
        w(f"\n**librtalloc was not measured**: `{m.get('librtalloc', '?')}` was missing or did not run.\n")

    w("\n## Targets of the project\n")
    w(targets(d))

    problems = problems_seen(d)
    if problems:
        w("\n## Problems seen\n")
        w("Messages the contenders printed (first lines of `logs/<contender>.log`); a "
          "contender that crashed has no figures for that workload.\n\n")
        w(problems)

    w("\n## Summary\n")
    w("Details, and every figure's ratio to glibc, in the sections below.\n\n")
    w(summary_table(d))

    w("\n## Page faults and memory system calls in the measured (steady) phase\n")
    w("Counted after the warm-up only. Faults: `getrusage` of the process. System calls: a "
      "second run of the same workload under `strace -f --seccomp-bpf -e trace=%memory`, "
      "counting calls between marker system calls. With 2 threads, the faults of the "
      "thread that took most (`RUSAGE_THREAD`) are in parentheses. "
      "\"bad results\": misaligned blocks, "
      "corrupted or non-zeroed contents, NULL returns.\n\n")
    w(faults_table(d))
    w("\nMemory system calls by name:\n\n")
    w(syscall_detail(d))

    w("\n## Latency of each call, ns (rdtscp; includes the timer, about "
      f"{num(d.med(BASELINE, 'lat.timer', 'p50_ns'))} ns)\n")
    w("Maxima on a virtual machine mostly show the host's noise; compare tails with p99.9 and "
      "p99.99, and with the fault and system-call counts. `rfree` is a free of a block "
      "allocated by the other thread.\n")
    for scn, label in SCENARIOS:
        w(f"\n### {label}\n")
        for op in OPS:
            t = latency_table(d, scn, op)
            if t:
                w(f"\n**{op}**\n\n{t}")
    if any(k[1] == "load" for k in d.values):
        w("\n### Under background load (stress-ng --cpu 1 --vm 1 --vm-bytes 256M)\n")
        for scn, label in SCENARIOS:
            for op in ("malloc", "free", "rfree"):
                t = latency_table(d, scn, op, "load")
                if t:
                    w(f"\n**{op}, {label}**\n\n{t}")

    w("\n## Throughput\n")
    w("Single thread: malloc+free pairs of one size, geometric mean over the sizes. "
      "Cross-thread: one thread allocates, the other frees (ring of 256). Larson: 2 threads "
      "replace random blocks of 16 B–1 KiB, and hand their blocks to a new thread every "
      "20,000 operations. Churn: threads created to allocate 64 blocks and exit.\n\n")
    w(throughput_table(d))
    w("\nSingle thread, M pairs/s by size:\n\n")
    w(size_table(d))

    if classic_names(d):
        w("\n## Classic workloads\n")
        w(f"Our own versions of the workloads allocator papers compare on (bench/README.md, "
          f"`rtbench classic`; run `{m.get('classic args', '')}`, "
          f"{m.get('classic repeats', '?')} interleaved repeats, medians). Time: of the "
          "workload's fixed count of operations (when the time limit cut a run short, the time "
          "the count takes at the rate measured). Page faults: of the whole process during the "
          "workload, the largest of any repeat. Peak RSS: VmHWM, reset when the workload starts "
          "(so a pre-faulted pool counts, the harness's set-up does not).\n\n")
        w("Time relative to glibc (lower is better; the fastest in bold):\n\n")
        w(classic_summary(d))
        for wname in classic_names(d):
            w(f"\n### {classic_label(wname)}\n\n")
            w(classic_table(d, wname))

    w("\n## Memory\n")
    w("One thread, mixed sizes, live set of up to 4096 blocks. A pre-faulted pool is "
      "resident from the start: that is the price of having no page fault later.\n\n")
    w(memory_table(d))
    mt = mlock_modes_table(d)
    if mt:
        w("\n### librtalloc per RTALLOC_MLOCK mode (classic larson and large, one run each)\n\n"
          "`all` locks every mapping now and later (each new thread's whole stack resident); "
          "`onfault` locks each page when first touched; `pool` locks the pool alone. The pool "
          "is pre-faulted in every mode.\n\n")
        w(mt)

    w("\n## Instructions per malloc+free pair (callgrind, exact)\n")
    w("Fast: `malloc(32)`+`free` repeated, harness loop subtracted. Mixed: one pair (free a "
      "random block of a 1024-block live set, allocate a new one of the mixed sizes), counted "
      "pair by pair over 500 pairs. Size sweep: one pair per power of two 16 B–1 MiB. Worst "
      "pair: the largest of mixed and sweep. Instructions in the kernel are not counted.\n\n")
    w(instr_table(d))
    w("\n### librtalloc's worst calls after the fragmenting pattern\n\n"
      "Fill the pool with 16 B blocks, free all but the first block of each page, free those "
      "(the last 64 frees counted one by one: flushes that empty and give back pages), then "
      "malloc(32 KiB) and malloc(256 KiB). Instructions per call, with a 64 MiB and a 1 GiB "
      "pool: equal counts mean that no path's work grows with the pool.\n\n")
    w(worst_pattern_table(d))

    if startup_sizes(d):
        w("\n## Start-up: pre-faulting the pool\n")
        w("Set-up = time from exec to main() with the allocator preloaded and the pool size "
          "set, minus the same without preload. Reference: mmap(MAP_POPULATE) of the same size "
          "in a running process.\n\n")
        w(startup_table(d))

    if drawn:
        w("\n## Plots\n")
        for name in drawn:
            w(f"\n![{name}]({rel}/{name}.png)  \n[{name}.svg]({rel}/{name}.svg)\n")
    else:
        w("\n(no plots: gnuplot is not installed)\n")
    w(f"\nRaw data: `{rel}/raw.tsv` (contender, condition, repeat, scope, metric, value); "
      f"logs in `{rel}/logs/`.\n")

    with open(md_path, "w") as f:
        f.write("".join(out))


def main(argv):
    if len(argv) == 4 and argv[1] == "strace":
        cmd_strace(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "callgrind":
        cmd_callgrind(argv[2])
    elif len(argv) == 4 and argv[1] == "report":
        cmd_report(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
