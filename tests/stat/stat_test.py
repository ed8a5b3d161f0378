#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""stat_test.py - end-to-end tests of rtalloc-stat (tests/stat/meson.build).

usage: stat_test.py --tool RTALLOC_STAT [--lib LIBRTALLOC --target STAT_TARGET]
                    [--forge STAT_FORGE --shim STAT_TRUNCATE_SO] CASE

CASE is one of: snapshot json watch run list errors permissions symlink heaptrunc locks
(these need --lib and --target; heaptrunc also --shim), hostile escape truncate (these need --forge
and, for truncate, --shim; no librtalloc: they also run in sanitizer builds).
Exit 0 pass, 1 fail (with the reason), 77 skip (with the reason).

Each case runs stat_target (see stat_target.c) under LD_PRELOAD, with its
own XDG_RUNTIME_DIR (a fresh temporary directory) unless the case is about
/dev/shm, and looks at it with rtalloc-stat.
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
PAGES = 64  # pages the rt-loop thread faults in its real-time section


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


class Target:
    """stat_target under LD_PRELOAD, driven through its stdin/stdout."""

    def __init__(self, ctx, env=None, argv=None):
        self.ctx = ctx
        e = ctx.env(env)
        e["LD_PRELOAD"] = ctx.lib
        self.p = subprocess.Popen(argv or [ctx.target], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=e, text=True, bufsize=1)
        self.pid = self.p.pid
        self.stderr = ""
        line = self.read_line()
        check(line == "ready %d" % self.pid, "stat_target did not start: %r" % line)

    def read_line(self, timeout=10):
        fd = self.p.stdout
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise Fail("stat_target did not answer within %d s" % timeout)
        line = fd.readline()
        if not line:
            self.stop()
            raise Fail("stat_target ended early; stderr: %s" % self.stderr)
        return line.rstrip("\n")

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        if line.startswith("exit"):
            return None
        return self.read_line()

    def stop(self, code=0):
        if self.p.poll() is None:
            try:
                self.cmd("exit %d" % code)
            except (BrokenPipeError, OSError):
                pass
        try:
            _, self.stderr = self.p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            _, self.stderr = self.p.communicate()
        return self.p.returncode


class Ctx:
    def __init__(self, args):
        self.tool = args.tool
        self.lib = args.lib
        self.target = args.target
        self.forge = args.forge
        self.shim = args.shim
        # on a tmpfs: librtalloc puts its region in XDG_RUNTIME_DIR only there
        self.tmp = tempfile.mkdtemp(prefix="rtalloc-stat-test-",
                                    dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        os.chmod(self.tmp, 0o700)
        self.xdg = os.path.join(self.tmp, "run")
        os.mkdir(self.xdg, 0o700)
        self.targets = []

    def env(self, extra=None, xdg=True):
        e = dict(os.environ)
        e.pop("LD_PRELOAD", None)
        e.pop("RTALLOC_LIB", None)
        if xdg:
            e["XDG_RUNTIME_DIR"] = self.xdg
        else:
            e.pop("XDG_RUNTIME_DIR", None)
        e.setdefault("RTALLOC_POOL_SIZE", "16M")
        for k, v in (extra or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def start(self, env=None):
        t = Target(self, env)
        self.targets.append(t)
        return t

    def stat(self, *args, env=None, timeout=20, prefix=None):
        cmd = (prefix or []) + [self.tool] + [str(a) for a in args]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="surrogateescape",
                           env=env if env is not None else self.env(), timeout=timeout)
        return r

    def cleanup(self):
        for t in self.targets:
            if t.p.poll() is None:
                t.p.kill()
                t.p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def dead_pid():
    """The pid of a process that has just ended (reuse within the test is unlikely)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def fault(t, pages=PAGES):
    """Have rt-loop fault `pages` fresh pages inside a real-time section."""
    n = int(t.cmd("fault %d" % pages).split()[1])
    check(n >= pages, "the target took %d faults for %d fresh pages" % (n, pages))
    return n


def one_line(r, what):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(len(lines) == 1, "%s: want one line on stderr, got %r" % (what, r.stderr))
    return lines[0]


def thread_rows(text):
    """Rows of the text report's thread table: {name: [columns]}."""
    rows = {}
    in_table = False
    for line in text.splitlines():
        if line.strip().startswith("TID "):
            in_table = True
            continue
        if in_table:
            if not line.strip():
                break
            cols = line.split()
            rows.setdefault(cols[1], cols)
    return rows


# ---- cases ------------------------------------------------------------------------------------


def case_snapshot(ctx):
    t = ctx.start()
    faulted = fault(t)
    r = ctx.stat(t.pid)
    check(r.returncode == 0, "rtalloc-stat PID: status %d, stderr %s" % (r.returncode, r.stderr))
    out = r.stdout
    print(out)
    rows = thread_rows(out)
    check("rt-loop" in rows, "no thread named rt-loop in the report")
    # TID NAME MINFLT MAJFLT RT-MINFLT RT-MAJFLT RT-SLOW RT-SECT IN-RT ALLOCS FREES ALLOC-KiB FREED-KiB
    rt = rows["rt-loop"]
    check(int(rt[2]) >= PAGES, "rt-loop's MINFLT %s < %d" % (rt[2], PAGES))
    check(int(rt[4]) >= faulted, "rt-loop's RT-MINFLT %s < the %d faults it took" % (rt[4], faulted))
    check(int(rt[7]) >= 1 and rt[8] == "no", "rt-loop: RT-SECT %s IN-RT %s" % (rt[7], rt[8]))
    others = [r for name, r in rows.items() if name != "rt-loop" and r[4] != "-"]
    check(others and all(int(r[4]) == 0 for r in others), "faults attributed to another thread: %r" % others)
    m = re.search(r"in real-time sections\s+(\d+)\s+(\d+)", out)
    check(m and int(m.group(1)) >= faulted, "process line of real-time faults wrong")
    check(re.search(r"Pool \(KiB\)", out) and "16384" in out, "no pool of 16384 KiB")
    check("Memory locking" in out and "VmLck" in out, "no VmLck line")
    # in_rt while the thread sits inside a section
    check(t.cmd("enter") == "entered", "enter")
    rows = thread_rows(ctx.stat(t.pid).stdout)
    check(rows["rt-loop"][8] == "yes", "IN-RT is %s inside a section" % rows["rt-loop"][8])
    check(t.cmd("leave") == "left", "leave")
    rows = thread_rows(ctx.stat(t.pid).stdout)
    check(rows["rt-loop"][8] == "no", "IN-RT is %s after the section" % rows["rt-loop"][8])
    region = os.path.join(ctx.xdg, "rtalloc-%d-%d.stats" % (os.getuid(), t.pid))
    check(os.path.exists(region), "no region at %s" % region)
    check(t.stop() == 0, "target status")
    check(not os.path.exists(region), "the region outlived its process")


def case_json(ctx):
    t = ctx.start()
    faulted = fault(t)
    t.cmd("alloc 20000")
    r = ctx.stat("--json", t.pid)
    check(r.returncode == 0, "--json PID: status %d, stderr %s" % (r.returncode, r.stderr))
    # the same parse as python3 -c 'import json,sys; json.load(sys.stdin)'
    chk = subprocess.run([sys.executable, "-c", "import json,sys; json.load(sys.stdin)"], input=r.stdout,
                         text=True, capture_output=True)
    check(chk.returncode == 0, "not valid JSON: %s" % chk.stderr)
    d = json.loads(r.stdout)
    check(d["pid"] == t.pid, "pid")
    rt = [th for th in d["threads"] if th["name"] == "rt-loop"]
    check(len(rt) == 1, "want one rt-loop thread: %r" % d["threads"])
    c = rt[0]["counters"]
    check(c["rt_minflt"] >= faulted and c["rt_sections"] >= 1 and rt[0]["in_rt"] is False,
          "rt-loop counters: %r" % rt[0])
    # bytes: each block counts its usable size, 16 bytes at least
    check(c["mallocs"] >= 1 and c["bytes_allocated"] >= 16 * c["mallocs"]
          and c["bytes_freed"] >= 16 * c["frees"], "rt-loop bytes: %r" % c)
    check(rt[0]["minflt"] >= PAGES, "rt-loop minflt")
    for th in d["threads"]:
        if th["name"] != "rt-loop" and th["counters"]:
            check(th["counters"]["rt_minflt"] == 0, "rt faults attributed to %s" % th["name"])
    f = d["faults"]
    check(f["rt"]["minor"] >= faulted and f["rt"]["sections"] >= 1, "faults.rt %r" % f["rt"])
    check(f["process"]["minor"] == f["until_init"]["minor"] + f["since_init"]["minor"], "fault sums")
    check(d["totals"]["mallocs"] >= 20000, "totals.mallocs %d" % d["totals"]["mallocs"])
    p = d["pool"]
    check(p["pool_bytes"] == 16 << 20 and 0 < p["in_use_bytes"] <= p["high_water_bytes"] <= p["pool_bytes"],
          "pool %r" % p)
    check(sum(d["classes"].values()) > 0, "classes %r" % d["classes"])
    check(d["events"]["grows"] == 0 and d["events"]["last_grow_ago_s"] is None, "events %r" % d["events"])
    check(isinstance(d["memory"]["pool_locked"], bool) and d["memory"]["pool_kib"] == 16384, "memory")
    if os.geteuid() == 0:
        check(d["memory"]["pool_locked"] and d["memory"]["warning"] is None, "root: memory not locked?")
        # VmLck split: everything is locked by default (libraries, stacks: more
        # than the pool); RTALLOC_MLOCK=pool locks the pool and its descriptors only
        check(d["memory"]["other_locked_kib"] == d["memory"]["vmlck_kib"] - 16384 > 0, "split %r" % d["memory"])
        q = ctx.start({"RTALLOC_MLOCK": "pool"})
        m = json.loads(ctx.stat("--json", q.pid).stdout)["memory"]
        check(m["pool_locked"] and m["vmlck_kib"] >= 16384 and m["other_locked_kib"] < 256,
              "RTALLOC_MLOCK=pool: %r" % m)
        check(re.search(r"pool 16384 KiB, everything else \d+ KiB", ctx.stat(q.pid).stdout), "text: no split")
        q.stop()
    # non-real-time events: a growth, then a failure (beyond RTALLOC_POOL_MAX)
    # (unlocked: a small locked process cannot create a thread under a small RLIMIT_MEMLOCK)
    g = ctx.start({"RTALLOC_POOL_SIZE": "256K", "RTALLOC_POOL_MAX": "2M", "RTALLOC_MLOCK": "0"})
    check(g.cmd("try 300000") == "got", "a block larger than the pool")
    check(g.cmd("try 100000000") == "null", "a block beyond RTALLOC_POOL_MAX")
    d = json.loads(ctx.stat("--json", g.pid).stdout)
    ev = d["events"]
    check(ev["grows"] >= 1 and ev["last_grow_ago_s"] is not None and 0 <= ev["last_grow_ago_s"] < 30,
          "growth: %r" % ev)
    check(ev["failed_allocs"] == 1 and ev["last_failure_ago_s"] is not None, "failure: %r" % ev)
    text = ctx.stat(g.pid).stdout
    check(re.search(r"pool growths\s+[1-9]\d* \(last [\d.]+ s ago\)", text) and
          re.search(r"failed allocations\s+1 \(last [\d.]+ s ago\)", text), "text events: %s" % text)
    g.stop()
    # an unlocked process: the warning
    u = ctx.start({"RTALLOC_MLOCK": "0"})
    d = json.loads(ctx.stat("--json", u.pid).stdout)
    check(d["memory"]["pool_locked"] is False and "not locked" in d["memory"]["warning"],
          "RTALLOC_MLOCK=0: no warning: %r" % d["memory"])
    text = ctx.stat(u.pid).stdout
    check("warning: memory is not locked" in text, "text: no lock warning")
    u.stop()
    t.stop()


def case_watch(ctx):
    t = ctx.start()
    # a fixed number of rows
    r = ctx.stat("-w", "0.1", "-c", "3", t.pid)
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and len([l for l in lines if re.match(r"\d\d:\d\d:\d\d ", l)]) == 3,
          "-w 0.1 -c 3: %r" % r.stdout)
    check(any(l.startswith("TIME") for l in lines), "no header")
    # JSON rows; faults in a section show up in a row; SIGINT ends it with status 0
    w = subprocess.Popen([ctx.tool, "--json", "-w", "0.2", str(t.pid)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ctx.env())
    first = w.stdout.readline()
    json.loads(first)
    faulted = fault(t)
    seen = 0
    deadline = time.time() + 10
    while time.time() < deadline and seen < faulted:
        row = json.loads(w.stdout.readline())
        check(row["pid"] == t.pid and row["exited"] is False, "row %r" % row)
        seen += row["rt_minflt"]
    check(seen >= faulted, "the rows show %d real-time faults, want %d" % (seen, faulted))
    w.send_signal(signal.SIGINT)
    try:
        rest, err = w.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        w.kill()
        raise Fail("-w did not stop on SIGINT")
    check(w.returncode == 0, "SIGINT: status %d, stderr %s" % (w.returncode, err))
    for l in rest.splitlines():
        json.loads(l)
    # the process exits: a final row, status 0
    w = subprocess.Popen([ctx.tool, "-j", "-w", "0.2", str(t.pid)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ctx.env())
    json.loads(w.stdout.readline())
    t.cmd("alloc 1000")
    t.stop()
    try:
        rest, err = w.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        w.kill()
        raise Fail("-w did not end when the process exited")
    rows = [json.loads(l) for l in rest.splitlines()]
    check(w.returncode == 0 and rows and rows[-1]["exited"] is True,
          "after the exit: status %d, rows %r, stderr %s" % (w.returncode, rows, err))


def case_run(ctx):
    env = ctx.env()
    r = ctx.stat("--", ctx.target, "--oneshot", PAGES, 3, env=env)
    print(r.stdout)
    check(r.returncode == 3, "-- CMD: status %d (want the command's 3), stderr %s" % (r.returncode, r.stderr))
    check("exit status 3" in r.stdout and "max RSS" in r.stdout, "report: %s" % r.stdout)
    m = re.search(r"in real-time sections\s+(\d+)", r.stdout)
    check(m and int(m.group(1)) >= PAGES, "real-time faults in the report")
    check(re.search(r"allocations [1-9]\d*", r.stdout), "no allocations in the report")
    r = ctx.stat("--json", "--", ctx.target, "--oneshot", PAGES, 5, env=env)
    check(r.returncode == 5, "--json -- CMD: status %d" % r.returncode)
    d = json.loads(r.stdout)
    check(d["exit_status"] == 5 and d["signal"] is None and d["max_rss_kib"] > 0, "json %r" % d)
    check(d["faults"]["rt"]["minor"] >= PAGES, "faults.rt %r" % d["faults"])
    f = d["faults"]
    check(f["total"]["minor"] == f["until_init"]["minor"] + f["since_init"]["minor"], "fault sums")
    check(d["rtalloc"]["totals"]["mallocs"] >= 5000, "mallocs %r" % d["rtalloc"]["totals"])
    check(d["rtalloc"]["pool"]["pool_bytes"] == 16 << 20, "pool")
    # killed by a signal: 128 + N
    r = ctx.stat("--json", "--", "sh", "-c", "kill -KILL $$", env=env)
    check(r.returncode == 137, "killed command: status %d" % r.returncode)
    check(json.loads(r.stdout)["signal"] == 9, "signal")
    # RTALLOC_LIB names the library
    r = ctx.stat("--", "true", env=ctx.env({"RTALLOC_LIB": os.path.join(ctx.tmp, "nowhere.so")}))
    check(r.returncode == 1, "RTALLOC_LIB to a missing file: status %d" % r.returncode)
    one_line(r, "RTALLOC_LIB missing")
    r = ctx.stat("--", os.path.join(ctx.tmp, "no-such-command"), env=env)
    check(r.returncode == 127, "missing command: status %d" % r.returncode)
    # no region left behind
    left = [f for f in os.listdir(ctx.xdg) if f.endswith(".stats")]
    check(not left, "regions left behind: %r" % left)


def case_list(ctx):
    t = ctx.start()
    uid = os.getuid()
    dead = dead_pid()
    stale = os.path.join(ctx.xdg, "rtalloc-%d-%d.stats" % (uid, dead))
    with open(stale, "wb") as f:
        f.write(b"\0" * 4096)
    os.chmod(stale, 0o600)
    foreign = os.path.join(ctx.xdg, "rtalloc-%d-%d.stats" % (uid + 4242, dead))
    with open(foreign, "wb") as f:
        f.write(b"\0" * 16)
    r = ctx.stat("-l", "--json")
    check(r.returncode == 0, "-l --json: status %d, stderr %s" % (r.returncode, r.stderr))
    d = json.loads(r.stdout)
    pids = [p["pid"] for p in d["processes"]]
    check(t.pid in pids, "the live process %d is not listed: %r" % (t.pid, d))
    mine = [p for p in d["processes"] if p["pid"] == t.pid][0]
    check(mine["comm"] == "stat_target" and mine["pool_bytes"] == 16 << 20 and mine["threads"] >= 2,
          "listed %r" % mine)
    # listing never deletes: a dead process's file is reported as stale
    check(stale in d["stale"], "stale region not reported: %r" % d)
    check(os.path.exists(stale), "-l removed a file: listing must never delete")
    check(os.path.exists(foreign), "another uid's file was removed")
    r = ctx.stat("-l")
    print(r.stdout, r.stderr)
    check(r.returncode == 0 and re.search(r"^\s*%d\s+stat_target" % t.pid, r.stdout, re.M), "-l text: %s" % r.stdout)
    check("stale %s" % stale in r.stderr and os.path.exists(stale), "-l text: stale: %s" % r.stderr)
    # --clean removes the caller's own stale files, and only those
    r = ctx.stat("-l", "--clean", "--json")
    d = json.loads(r.stdout)
    check(r.returncode == 0 and stale in d["removed_stale"], "--clean: %r" % d)
    check(not os.path.exists(stale), "--clean left the stale region")
    check(os.path.exists(foreign), "--clean removed another uid's file")
    if uid == 0:  # a file named for the caller but owned by another user stays
        with open(stale, "wb") as f:
            f.write(b"x")
        os.chown(stale, uid + 4242, -1)
        r = ctx.stat("-l", "--clean")
        check(os.path.exists(stale), "--clean removed a file another user owns")
        os.unlink(stale)
    r = ctx.stat("--clean")
    check(r.returncode == 2, "--clean without -l: status %d" % r.returncode)
    t.stop()
    r = ctx.stat("-l", "--json")
    check(t.pid not in [p["pid"] for p in json.loads(r.stdout)["processes"]], "an exited process is listed")


def case_errors(ctx):
    dead = dead_pid()
    r = ctx.stat(dead)
    check(r.returncode == 1 and "no process" in one_line(r, "dead pid"), "dead pid: %d %s" % (r.returncode, r.stderr))
    r = ctx.stat("--json", dead)
    check(r.returncode == 1 and r.stdout == "", "dead pid --json")
    sleeper = subprocess.Popen(["sleep", "30"], env=ctx.env())
    try:
        r = ctx.stat(sleeper.pid)
        check(r.returncode == 1 and "does not use librtalloc" in one_line(r, "sleep"),
              "plain process: %d %s" % (r.returncode, r.stderr))
        r = ctx.stat("-w", "1", sleeper.pid)
        check(r.returncode == 1, "-w on a plain process: %d" % r.returncode)
    finally:
        sleeper.kill()
        sleeper.wait()
    t = ctx.start({"RTALLOC_STATS": "0"})
    r = ctx.stat(t.pid)
    check(r.returncode == 1 and "does not export" in one_line(r, "RTALLOC_STATS=0"),
          "RTALLOC_STATS=0: %d %s" % (r.returncode, r.stderr))
    t.stop()
    for args in ([], ["abc"], ["-w"], ["-w", "0", "1"], ["-w", "x", "1"], ["-l", "1"], ["--bogus"],
                 ["1", "2"], ["-c", "2", "1"], ["--"], ["-l", "-w", "1"]):
        r = ctx.stat(*args)
        check(r.returncode == 2, "usage %r: status %d" % (args, r.returncode))
        check("rtalloc-stat:" in r.stderr, "usage %r: no message" % args)
    r = ctx.stat("--help")
    check(r.returncode == 0 and "Usage:" in r.stdout, "--help")
    r = ctx.stat("--version")
    check(r.returncode == 0 and re.match(r"rtalloc-stat \(librtalloc\) \d+\.\d+", r.stdout), "--version")


def as_nobody():
    """A command prefix that runs as nobody, or raise Skip."""
    if os.geteuid() != 0:
        raise Skip("needs root to run a reader as another user")
    import pwd
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups"], pw.pw_uid
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"], pw.pw_uid
    raise Skip("neither setpriv nor runuser")


def case_permissions(ctx):
    prefix, nobody = as_nobody()
    # a copy of the tool nobody can execute, in a directory nobody can enter
    pub = tempfile.mkdtemp(prefix="rtalloc-stat-pub-")
    try:
        os.chmod(pub, 0o755)
        tool = os.path.join(pub, "rtalloc-stat")
        shutil.copy(ctx.tool, tool)
        os.chmod(tool, 0o755)
        t = ctx.start({"XDG_RUNTIME_DIR": None})  # the region in /dev/shm, where anyone can look
        region = "/dev/shm/rtalloc-%d-%d.stats" % (os.getuid(), t.pid)
        check(os.path.exists(region), "no region at %s" % region)
        st = os.stat(region)
        # 0600 at creation, read-only (0400) once mapped: nobody truncates it under the process
        check(st.st_mode & 0o777 == 0o400 and st.st_uid == os.getuid(), "region mode %o" % st.st_mode)
        env = ctx.env({"XDG_RUNTIME_DIR": None})
        r = subprocess.run(prefix + ["head", "-c", "1", region], capture_output=True, env=env)
        check(r.returncode != 0 and b"ermission denied" in r.stderr,
              "nobody could read the region: %d %r" % (r.returncode, r.stderr))
        r = subprocess.run(prefix + [tool, str(t.pid)], capture_output=True, text=True, env=env)
        check(r.returncode == 1 and "another user" in one_line(r, "nobody"),
              "nobody: status %d, stderr %s" % (r.returncode, r.stderr))
        check(r.stdout == "", "nobody got output: %s" % r.stdout)
        r = subprocess.run(prefix + [tool, "-l", "--json"], capture_output=True, text=True, env=env)
        check(r.returncode == 0 and t.pid not in [p["pid"] for p in json.loads(r.stdout)["processes"]],
              "nobody's -l lists root's process: %s" % r.stdout)
        check(os.path.exists(region), "nobody's -l removed root's region")
        t.stop()
    finally:
        shutil.rmtree(pub, ignore_errors=True)


def case_symlink(ctx):
    victim = os.path.join(ctx.tmp, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    # sh (not preloaded) waits for "go" on fd 3, then becomes the target with the same pid
    r_go, w_go = os.pipe()
    env = ctx.env()
    script = 'read go <&3; exec env LD_PRELOAD="$1" "$2"'
    p = subprocess.Popen(["sh", "-c", script, "sh", ctx.lib, ctx.target], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         pass_fds=(r_go,))
    os.close(r_go)
    region = os.path.join(ctx.xdg, "rtalloc-%d-%d.stats" % (os.getuid(), p.pid))
    os.symlink(victim, region)
    os.write(w_go, b"go\n")
    os.close(w_go)
    ready, _, _ = select.select([p.stdout], [], [], 10)
    line = p.stdout.readline().strip() if ready else ""
    try:
        check(line == "ready %d" % p.pid, "target did not start: %r" % line)
        r = ctx.stat(p.pid)
        msg = one_line(r, "planted symlink")
        check(r.returncode == 1 and "does not export" in msg, "status %d, %s" % (r.returncode, msg))
        r = ctx.stat("--json", p.pid)
        check(r.returncode == 1 and r.stdout == "", "--json: status %d" % r.returncode)
    finally:
        p.stdin.write("exit 0\n")
        p.stdin.flush()
        _, err = p.communicate(timeout=10)
    check("cannot create the statistics file" in err, "the library did not refuse: stderr %r" % err)
    with open(victim) as f:
        check(f.read() == "precious\n", "the symlink's target was written to")
    check(os.path.islink(region), "the planted symlink was replaced")
    check(p.returncode == 0, "the target did not run on: status %d" % p.returncode)


# ---- a hostile process (stat_forge.c) -------------------------------------------------------

# What UBSan reports stops the tool (in a sanitizer build; ignored elsewhere).
SAN_ENV = {"UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_stacktrace=1",
           "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=0"}
U64 = (1 << 64) - 1
I64 = (1 << 63) - 1


class Forge(Target):
    def __init__(self, ctx, args=(), env=None):
        self.ctx = ctx
        self.p = subprocess.Popen([ctx.forge] + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=ctx.env(env), text=True, bufsize=1)
        self.pid = self.p.pid
        self.stderr = ""
        ctx.targets.append(self)
        line = self.read_line()
        check(line == "ready %d" % self.pid, "stat_forge did not start: %r" % line)


def need_forge(ctx):
    if not ctx.forge:
        raise Skip("no --forge")


def sane_run(r, what, status=0):
    """The tool ended by itself (no signal), with status, and UBSan/ASan said nothing."""
    check(r.returncode >= 0, "%s: killed by signal %d; stderr %s" % (what, -r.returncode, r.stderr))
    check("runtime error" not in r.stderr and "Sanitizer" not in r.stderr,
          "%s: sanitizer report: %s" % (what, r.stderr))
    check(r.returncode == status, "%s: status %d (want %d), stderr %s" % (what, r.returncode, status, r.stderr))


def clamp64(v):
    return max(-(1 << 63), min(I64, v))


def case_hostile(ctx):
    """Counters at the edges of their types: no overflow (UBSan), sums saturate, JSON stays exact."""
    need_forge(ctx)
    f = Forge(ctx)
    env = ctx.env(SAN_ENV)
    r = ctx.stat(f.pid, env=env)
    sane_run(r, "text report")
    r = ctx.stat("--json", f.pid, env=env)
    sane_run(r, "JSON report")
    d = json.loads(r.stdout)
    check(d["pool"]["pool_bytes"] == U64 and d["pool"]["in_use_bytes"] == U64, "saturated pool %r" % d["pool"])
    check(d["totals"]["mallocs"] == U64 and d["totals"]["frees"] == U64,
          "counter sums must saturate at 2^64-1: %r" % d["totals"])
    check(all(v == U64 for v in d["classes"].values()), "class sums %r" % d["classes"])
    check(d["totals"]["lock_wait_max_ns"] == U64 and d["locks"]["lock_wait_max_ns"] == U64 and
          d["locks"]["lock_waits"] == U64, "lock waits: the largest (maxima), saturated (counts) %r" % d["locks"])
    check(d["pool"]["arenas"][0]["node"] is None, "a negative node: %r" % d["pool"]["arenas"][0]["node"])
    r = ctx.stat("-l", "--json", env=env)
    sane_run(r, "-l --json")
    check(f.pid in [p["pid"] for p in json.loads(r.stdout)["processes"]], "-l does not list the forger")
    sane_run(ctx.stat("-l", env=env), "-l")
    # -w: the in-use change between rows, exact or clamped to int64, whatever the values
    w = subprocess.Popen([ctx.tool, "--json", "-w", "0.3", str(f.pid)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    rows = []
    try:
        for v in [0, U64, I64, 1 << 63, 1, 0, 1 << 63, U64]:
            line = w.stdout.readline()
            check(line, "-w ended early: %s" % w.stderr.read() if w.poll() is not None else "no row")
            rows.append(json.loads(line))
            check(f.cmd("inuse %d" % v) == "ok", "inuse")
        rows.append(json.loads(w.stdout.readline()))
    finally:
        w.send_signal(signal.SIGINT)
        _, err = w.communicate(timeout=10)
    check("runtime error" not in err, "-w: sanitizer report: %s" % err)
    check(w.returncode == 0, "-w: status %d, stderr %s" % (w.returncode, err))
    prev = U64  # the forger starts with every arena's pool at 2^64-1 (saturated sum)
    for row in rows:
        want = clamp64(row["in_use_bytes"] - prev)
        check(row["in_use_change_bytes"] == want, "in_use %d -> %d: change %d, want %d" %
              (prev, row["in_use_bytes"], row["in_use_change_bytes"], want))
        prev = row["in_use_bytes"]
    check(len(set(r["in_use_bytes"] for r in rows)) >= 4, "too few distinct values seen: %r" % rows)
    sane_run(subprocess.run([ctx.tool, "-w", "0.1", "-c", "2", str(f.pid)], capture_output=True, text=True,
                            env=env, timeout=20), "-w text")
    # a region of an older layout (version 1: slots of 128 bytes) is refused, with one line
    check(f.cmd("version 1") == "ok", "version")
    for args in ([], ["--json"]):
        r = ctx.stat(*(args + [f.pid]), env=env)
        sane_run(r, "an older region", status=1)
        check("of this version" in one_line(r, "an older region"), "older region: %r" % r.stderr)
    f.stop()


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def no_control(text, what):
    """No byte a terminal acts on: control characters (but the tool's own newlines and
    tabs), DEL, C1 controls (raw or UTF-8 encoded)."""
    m = CONTROL.search(text)
    check(not m, "%s: control byte %r in %r" % (what, m and m.group(0), text[:2000]))
    for c1 in ("\udc9b", "\u009b"):
        check(c1 not in text, "%s: a C1 control (CSI) in the output" % what)


def case_escape(ctx):
    """Names with escape sequences (process, thread, heap, the region's directory)."""
    need_forge(ctx)
    evil_dir = os.path.join(ctx.tmp, "run\x1b[2J\x07")
    os.mkdir(evil_dir, 0o700)
    f = Forge(ctx, env={"XDG_RUNTIME_DIR": evil_dir})
    env = ctx.env(SAN_ENV)
    run = lambda *a: subprocess.run([ctx.tool] + [str(x) for x in a], capture_output=True, env=env, timeout=20,
                                    errors="surrogateescape", text=True)
    for args in ([f.pid], ["-w", "0.1", "-c", "1", f.pid], ["-l"]):
        r = run(*args)
        sane_run(r, "%r" % args)
        no_control(r.stdout, "stdout of %r" % args)
        no_control(r.stderr, "stderr of %r" % args)
    r = run(f.pid)
    check("\\x1b]0;pwned\\x07" in r.stdout, "the process name, escaped, not in %r" % r.stdout)
    check("\\x1b[31mred" in r.stdout, "the thread name, escaped, not in the report")
    check("run\\x1b[2J\\x07" in r.stdout, "the region's path, escaped, not in the report")
    r = run("--json", f.pid)
    sane_run(r, "--json")
    no_control(r.stdout.rstrip("\n"), "JSON")
    d = json.loads(r.stdout)
    check(d["comm"] == "\x1b]0;pwned\x07\x1b[2J"[:15], "JSON comm %r" % d["comm"])
    names = [t["name"] for t in d["threads"]]
    check("\x1b[31mred\u009b1m\r" in names, "JSON thread names %r" % names)
    check(evil_dir in d["region"], "JSON region %r" % d["region"])
    # messages on stderr name the directory too: a process that does not run librtalloc
    sleeper = subprocess.Popen(["sleep", "30"], env=ctx.env({"XDG_RUNTIME_DIR": evil_dir}))
    try:
        r = run(sleeper.pid)
        sane_run(r, "a plain process", status=1)
        no_control(r.stderr, "message about a plain process")
    finally:
        sleeper.kill()
        sleeper.wait()
    f.stop()


def case_truncate(ctx):
    """The region or a shared heap's object truncated right after it is mapped: an error
    line and status 1, not a death by SIGBUS; an object already short: its process's own record."""
    need_forge(ctx)
    if not ctx.shim:
        raise Skip("no --shim")
    heap = "stat-trunc-%d" % os.getpid()
    obj = "/dev/shm/rtalloc-heap-" + heap
    try:
        truncate_cases(ctx, heap, obj)
    finally:  # a forger killed by the cleanup leaves its object
        if os.path.exists(obj):
            os.unlink(obj)


def truncate_cases(ctx, heap, obj):
    f = Forge(ctx, [heap])
    env = ctx.env(SAN_ENV)
    r = ctx.stat("--json", f.pid, env=env)
    sane_run(r, "untouched")
    h = [x for x in json.loads(r.stdout)["heaps"] if x["name"] == heap]
    check(h and h[0]["free_bytes"] == 12345 << 10, "the shared heap's figures from its object: %r" % h)
    for args in ([f.pid], ["--json", f.pid], ["-w", "0.1", "-c", "1", f.pid]):
        e = dict(env, LD_PRELOAD=ctx.shim, STAT_TRUNCATE=obj)
        r = ctx.stat(*args, env=e)
        check("stat_truncate: truncated" in r.stderr, "the shim did not truncate %s: %s" % (obj, r.stderr))
        sane_run(r, "heap object truncated under %r" % args, status=1)
        msgs = [l for l in r.stderr.splitlines() if l.startswith("rtalloc-stat:")]
        check(len(msgs) == 1 and "shared heap object" in msgs[0] and heap in msgs[0],
              "want one message naming the object: %r" % r.stderr)
        with open(obj, "r+b") as o:  # back to its size for the next round (contents zero: own record)
            o.truncate(4096)
    f.stop()
    # the region itself truncated under the reader
    f = Forge(ctx)
    region = os.path.join(ctx.xdg, "rtalloc-%d-%d.stats" % (os.getuid(), f.pid))
    r = ctx.stat(f.pid, env=dict(env, LD_PRELOAD=ctx.shim, STAT_TRUNCATE=region))
    check("stat_truncate: truncated" in r.stderr, "the shim did not truncate the region: %s" % r.stderr)
    sane_run(r, "region truncated", status=1)
    f.stop()
    # an object already empty: the process's own record, status 0
    f = Forge(ctx, [heap + "=empty"])
    r = ctx.stat("--json", f.pid, env=env)
    sane_run(r, "empty object")
    h = [x for x in json.loads(r.stdout)["heaps"] if x["name"] == heap]
    check(h and h[0]["size_bytes"] == 1 << 20, "own record of an empty object's heap: %r" % h)
    f.stop()


def case_heaptrunc(ctx):
    """A real shared heap (librtalloc's object) truncated right after rtalloc-stat maps it."""
    if not ctx.shim:
        raise Skip("no --shim")
    t = ctx.start()
    name = "stattrunc%d" % os.getpid()
    obj = "/dev/shm/rtalloc-heap-" + name
    try:
        check(t.cmd("heap " + name) == "heap", "the target could not create a shared heap")
        check(os.path.exists(obj), "no object %s" % obj)
        r = ctx.stat("--json", t.pid)
        sane_run(r, "untruncated")
        h = [x for x in json.loads(r.stdout)["heaps"] if x["name"] == name]
        check(h and h[0]["shared"] and h[0]["size_bytes"] >= 1 << 20 and h[0]["live_blocks"] == 1,
              "the shared heap in the report: %r" % h)
        r = ctx.stat(t.pid, env=ctx.env({"LD_PRELOAD": ctx.shim, "STAT_TRUNCATE": obj}))
        check("stat_truncate: truncated" in r.stderr, "the shim did not truncate %s: %s" % (obj, r.stderr))
        sane_run(r, "shared heap truncated", status=1)
        msgs = [l for l in r.stderr.splitlines() if l.startswith("rtalloc-stat:")]
        check(len(msgs) == 1 and obj in msgs[0], "want one message naming %s: %r" % (obj, r.stderr))
    finally:
        t.p.kill()  # its heap is gone under it: no orderly exit
        t.p.wait()
        if os.path.exists(obj):
            os.unlink(obj)


def case_locks(ctx):
    """Lock waits per thread and for the process: rt-loop waits for a heap's lock inside a real-time
    section; the main thread never waits and shows 0."""
    t = ctx.start()
    d = json.loads(ctx.stat("--json", t.pid).stdout)
    for th in d["threads"]:
        if th["counters"]:
            c = th["counters"]
            check(c["lock_waits"] == 0 and c["lock_wait_max_ns"] == 0 and c["rt_lock_waits"] == 0,
                  "%s waited before anything contended: %r" % (th["name"], c))
    check(d["locks"] == {"lock_waits": 0, "lock_wait_max_ns": 0, "rt_lock_waits": 0, "rt_lock_wait_max_ns": 0},
          "locks before: %r" % d["locks"])
    t.p.stdin.write("contend\n")
    t.p.stdin.flush()
    n = int(t.read_line(timeout=20).split()[1])
    if n == 0:
        raise Skip("rt-loop and the other thread never met at the heap's lock (one CPU?)")
    check(n > 0, "contend failed in the target")
    d = json.loads(ctx.stat("--json", t.pid).stdout)
    rt = [th for th in d["threads"] if th["name"] == "rt-loop"][0]["counters"]
    check(rt["lock_waits"] >= n and rt["lock_wait_max_ns"] > 0, "rt-loop's waits: %r" % rt)
    check(rt["rt_lock_waits"] == n and 0 < rt["rt_lock_wait_max_ns"] <= rt["lock_wait_max_ns"],
          "rt-loop's waits in sections: %r (it counted %d)" % (rt, n))
    main = [th for th in d["threads"] if th["tid"] == t.pid][0]["counters"]
    check(main["lock_waits"] == 0 and main["rt_lock_waits"] == 0, "the main thread never waited: %r" % main)
    locks = d["locks"]
    check(locks["lock_waits"] >= rt["lock_waits"] and locks["lock_wait_max_ns"] >= rt["lock_wait_max_ns"]
          and locks["rt_lock_waits"] >= n and locks["rt_lock_wait_max_ns"] >= rt["rt_lock_wait_max_ns"],
          "process: %r, rt-loop: %r" % (locks, rt))
    check(d["totals"]["lock_waits"] == locks["lock_waits"], "totals and locks disagree")
    out = ctx.stat(t.pid).stdout
    print(out)
    rows = thread_rows(out)
    # ... ALLOC-KiB FREED-KiB WAITS WAIT-MAX-ns RT-WAITS RT-WAIT-MAX
    r = rows["rt-loop"]
    check(int(r[13]) == rt["lock_waits"] and int(r[14]) > 0 and int(r[15]) == n and int(r[16]) > 0,
          "rt-loop's row: %r" % r)
    check(re.search(r"lock waits %d \(longest \d+ ns\); in real-time sections \d+" % locks["lock_waits"], out),
          "no process line of lock waits")
    check(t.stop() == 0, "target status")


CASES = {
    "locks": case_locks,
    "snapshot": case_snapshot,
    "json": case_json,
    "watch": case_watch,
    "run": case_run,
    "list": case_list,
    "errors": case_errors,
    "permissions": case_permissions,
    "symlink": case_symlink,
    "hostile": case_hostile,
    "escape": case_escape,
    "truncate": case_truncate,
    "heaptrunc": case_heaptrunc,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--lib")
    ap.add_argument("--target")
    ap.add_argument("--forge")
    ap.add_argument("--shim")
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    ctx = Ctx(args)
    try:
        CASES[args.case](ctx)
    except Skip as e:
        print("SKIP stat-%s: %s" % (args.case, e))
        return SKIP
    except Fail as e:
        print("FAIL stat-%s: %s" % (args.case, e), file=sys.stderr)
        return 1
    finally:
        ctx.cleanup()
    print("ok stat-%s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
