#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""bench/runner.py: run slabkit's benchmark suite against the peers.

Called by bench/run.sh (which builds the helper programs first); writes one
JSON file of raw results that bench/report.py turns into the markdown table
and the chart.  Standard library only.

Method (bench/README.md): for each case, one warm-up run per
allocator, then RUNS rounds in which every allocator runs once, always in
the same order (A B C A B C ...); the report quotes medians.  Peak RSS is
the child's ru_maxrss from wait4(2), taken in the same runs.  Fast paths
are counted in instructions with callgrind, twice with N1 and N2 pairs, so
(Ir(N2) - Ir(N1)) / (N2 - N1) cancels startup and exit.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# name, package, library (bench/README.md); glibc has no preload.
PEERS = [
    ("glibc", "libc6", None),
    ("jemalloc", "libjemalloc2", LIBDIR + "/libjemalloc.so.2"),
    ("mimalloc", "libmimalloc2.0", LIBDIR + "/libmimalloc.so.2"),
    ("tcmalloc", "libtcmalloc-minimal4",
     LIBDIR + "/libtcmalloc_minimal.so.4"),
]

# Symbols that must all resolve to the allocator under test.
CORE_SYMBOLS = ("malloc", "free", "calloc", "realloc")


T0 = time.time()


def log(msg):
    print("bench: [%4ds] %s" % (time.time() - T0, msg), file=sys.stderr,
          flush=True)


def sh(cmd, **kw):
    """Output of a short command, or '' when it fails."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                           **kw)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def base_env():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["LC_ALL"] = "C"
    return env


def alloc_env(alloc, extra=None, program=None):
    env = base_env()
    pre = alloc["preload"]
    if program is not None and program.get("glibc_preload") and \
            alloc["name"] == "glibc":
        # The program links another allocator (Debian's redis-server links
        # libjemalloc): preloading libc puts glibc's malloc first.
        pre = alloc["libc"]
    if pre:
        env["LD_PRELOAD"] = pre
    if extra:
        env.update(extra)
    return env


class Result:
    def __init__(self):
        self.rc = None
        self.secs = None
        self.maxrss_kb = None
        self.out = ""
        self.err = ""
        self.timed_out = False
        self.counters = {}


MEASURE = None  # bench-tools/measure, set in main()
# what measure reports besides time and RSS (see measure.c)
COUNTERS = ("user_s", "sys_s", "minflt", "majflt", "nvcsw", "nivcsw")

SIGNAMES = {getattr(signal, n): n for n in dir(signal)
            if n.startswith("SIG") and not n.startswith("SIG_")}


def read_measure(path):
    try:
        with open(path) as f:
            return kv(f.read())
    except OSError:
        return {}


def apply_measure(res, m):
    """Fill res from measure's line: the program's own time and RSS."""
    if not m:
        return
    res.secs = float(m["wall_s"])
    res.maxrss_kb = int(m["maxrss_kb"])
    res.counters = {k: float(m[k]) for k in COUNTERS if k in m}
    sig = int(m["signal"])
    res.rc = -sig if sig else int(m["status"])
    if sig:
        res.err += " killed by %s" % SIGNAMES.get(sig, sig)


def run_proc(cmd, env, timeout, stdin_data=None, cwd=None, measure=False):
    """Run cmd with a timeout.  With measure, through the measure helper:
    wall time and ru_maxrss of the program itself (see measure.c)."""
    res = Result()
    mfile = None
    if measure:
        fd, mfile = tempfile.mkstemp(prefix="bench-m-")
        os.close(fd)
        cmd = [MEASURE, mfile] + list(cmd)
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe, \
            tempfile.TemporaryFile() as fi:
        if stdin_data is not None:
            fi.write(stdin_data.encode())
            fi.seek(0)
        try:
            p = subprocess.Popen(cmd, env=env, stdout=fo, stderr=fe,
                                 stdin=fi, cwd=cwd, start_new_session=True)
        except OSError as e:
            res.rc = 127
            res.err = str(e)
            return res
        t0 = time.perf_counter()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            res.timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
        res.secs = time.perf_counter() - t0
        res.rc = p.returncode
        fo.seek(0)
        fe.seek(0)
        res.out = fo.read().decode(errors="replace")
        res.err = fe.read().decode(errors="replace")
    if mfile:
        if not res.timed_out:
            m = read_measure(mfile)
            if m:
                apply_measure(res, m)
            elif res.rc == 0:
                res.rc = 1
                res.err += " measure wrote nothing"
        os.unlink(mfile)
    return res


def kv(line):
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def same_file(a, b):
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (TypeError, OSError):
        return False


# ---------------------------------------------------------------- checks

def check_preload(alloc, tools):
    """dladdr on malloc in a tiny program under the preload."""
    r = run_proc([os.path.join(tools, "preload_check")], alloc_env(alloc),
                 30)
    got = r.out.strip()
    alloc["provider"] = got
    if r.rc != 0:
        return "preload_check failed (rc %s): %s" % (r.rc, r.err[-300:])
    if not same_file(got, alloc["expect"]):
        return "malloc comes from %s, not %s" % (got, alloc["expect"])
    return None


def check_bindings(alloc, prog):
    """LD_DEBUG=bindings: where malloc, free, ... of the program bind."""
    tmp = tempfile.mkdtemp(prefix="bench-bind-")
    try:
        env = alloc_env(alloc, {"LD_BIND_NOW": "1",
                                "LD_DEBUG": "bindings",
                                "LD_DEBUG_OUTPUT": tmp + "/b"},
                        program=prog)
        run_proc(prog["version_cmd"], env, 30)
        seen = {}
        pat = re.compile(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: "
                         r"normal symbol `([^']+)'")
        for fn in os.listdir(tmp):
            with open(os.path.join(tmp, fn), errors="replace") as f:
                for line in f:
                    m = pat.search(line)
                    if m and m.group(3) in CORE_SYMBOLS:
                        seen.setdefault(m.group(3), set()).add(m.group(2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    want = alloc["expect"]
    # A binding to the program itself is its canonical PLT entry (the
    # program takes malloc's address): it forwards to the real malloc.
    exe = shutil.which(prog["version_cmd"][0]) or prog["version_cmd"][0]
    bad = ["%s -> %s" % (s, ",".join(sorted(t)))
           for s, t in sorted(seen.items())
           if any(not same_file(x, want) and not same_file(x, exe)
                  for x in t)]
    if not seen:
        return "no bindings seen"
    return "; ".join(bad) if bad else None


# ---------------------------------------------------------------- cases

# wl-thread-scaling runs once per thread count, as the cases threads-<N>
THREAD_COUNTS = (2, 64, 1024)


def workload_cases(build, quick):
    bdir = os.path.join(build, "bench")
    names = sorted(f for f in os.listdir(bdir) if f.startswith("wl-") and
                   os.access(os.path.join(bdir, f), os.X_OK))
    scale = "0.2" if quick else "1"
    # callgrind runs some 50x slower: profile at 1/100 of the work, but
    # `large' needs more steps than that to get past its startup
    pscale = {"large": "0.1"}
    cases = []
    for n in names:
        exe = os.path.join(bdir, n)
        if n == "wl-thread-scaling":
            # the same total work split among more and more threads
            for t in THREAD_COUNTS:
                cases.append({
                    "name": "threads-%d" % t, "kind": "workload",
                    "threads": t, "cmd": [exe, scale, str(t)],
                    "profile_cmd": [exe, "0.01", str(t)],
                })
            continue
        cases.append({
            "name": n[3:], "kind": "workload", "cmd": [exe, scale],
            "profile_cmd": [exe, pscale.get(n[3:], "0.01")],
        })
    return cases


def program_cases(quick):
    cases = []
    prog = os.path.join(HERE, "programs")
    lua = shutil.which("lua5.4")
    if lua:
        depth = "13" if quick else "15"
        cases.append({
            "name": "lua binary-trees", "kind": "program",
            "cmd": [lua, os.path.join(prog, "binary-trees.lua"), depth],
            "profile_cmd": [lua, os.path.join(prog, "binary-trees.lua"),
                            "10"],
            "version_cmd": [lua, "-v"],
        })
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else \
        shutil.which("python3")
    if py:
        py = os.path.realpath(py)
        cases.append({
            "name": "python3 object-churn", "kind": "program",
            "cmd": [py, os.path.join(prog, "object-churn.py"),
                    "4" if quick else "15"],
            "profile_cmd": [py, os.path.join(prog, "object-churn.py"), "1"],
            "env": {"PYTHONMALLOC": "malloc",
                    "PYTHONDONTWRITEBYTECODE": "1"},
            "version_cmd": [py, "--version"],
        })
    sq = shutil.which("sqlite3")
    if sq:
        with open(os.path.join(prog, "sqlite-inserts.sql")) as f:
            sql = f.read()
        cases.append({
            "name": "sqlite3 inserts", "kind": "program",
            "cmd": [sq, ":memory:"],
            "stdin": sql.replace("400000", "100000") if quick else sql,
            "profile_cmd": [sq, ":memory:"],
            "profile_stdin": sql.replace("400000", "20000"),
            "version_cmd": [sq, "-version"],
        })
    rs = shutil.which("redis-server")
    rb = shutil.which("redis-benchmark")
    if rs and rb:
        cases.append({
            "name": "redis-benchmark", "kind": "redis",
            "server": rs, "client": rb,
            "requests": "50000" if quick else "300000",
            "version_cmd": [rs, "--version"], "glibc_preload": True,
        })
    return cases


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def redis_cmd(port, line, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(line.encode() + b"\r\n")
        try:
            return s.recv(64).decode(errors="replace")
        except OSError:
            return ""


def exited(p):
    return p.poll() is not None


def reap(p, grace=10.0):
    """Wait up to grace seconds for p, then SIGKILL its process group."""
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


def redis_secs(csv_text, requests):
    total, n = 0.0, 0
    for line in csv_text.splitlines():
        f = [x.strip('"') for x in line.strip().split(",")]
        if len(f) >= 2 and f[0] != "test":
            try:
                total += requests / float(f[1])
                n += 1
            except (ValueError, ZeroDivisionError):
                return None
    return total if n else None


def run_redis(case, alloc, timeout):
    """Server under the allocator, client on plain glibc; returns Result
    with the client's wall time and the server's peak RSS."""
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="bench-redis-")
    logf = os.path.join(tmp, "log")
    mfile = os.path.join(tmp, "measure")
    res = Result()
    srv = subprocess.Popen(
        [MEASURE, mfile, case["server"], "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no",
         "--loglevel", "warning", "--logfile", logf, "--dir", tmp],
        env=alloc_env(alloc, program=case), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)

    def server_log():
        try:
            with open(logf, errors="replace") as f:
                return f.read()[-300:]
        except OSError:
            return ""

    try:
        up = False
        deadline = time.time() + 15
        while not up and time.time() < deadline and not exited(srv):
            try:
                up = "PONG" in redis_cmd(port, "PING")
            except OSError:
                time.sleep(0.05)
        if not up:
            try:
                os.killpg(srv.pid, signal.SIGKILL)
            except OSError:
                pass
            res.rc = 1
            res.err = "server did not start: " + server_log()
            return res
        cl = run_proc([case["client"], "-h", "127.0.0.1", "-p", str(port),
                       "-n", case["requests"], "-P", "16", "-c", "20",
                       "-r", "100000", "-d", "100", "--csv",
                       "-t", "set,get,incr,lpush,lpop,sadd,hset"],
                      base_env(), timeout)
        res.out, res.rc = cl.out, cl.rc
        res.err, res.timed_out = cl.err, cl.timed_out
        # time = the sum over tests of requests / (requests per second),
        # as redis-benchmark clocks them: the client's own start and
        # shutdown, and its polling granularity, stay out
        res.secs = redis_secs(cl.out, int(case["requests"]))
        if res.secs is None and res.rc == 0:
            res.rc = 1
            res.err = "no results from redis-benchmark: " + cl.out[-200:]
        if exited(srv):
            res.rc = res.rc or 1
            res.err = "server died during the run: " + server_log()
        else:
            try:
                redis_cmd(port, "SHUTDOWN NOSAVE")
            except OSError:
                pass
    finally:
        reap(srv)
        m = read_measure(mfile)
        srv_res = Result()
        apply_measure(srv_res, m)
        res.maxrss_kb = srv_res.maxrss_kb
        res.counters = srv_res.counters
        if res.rc == 0 and srv_res.rc != 0:
            res.rc = srv_res.rc if srv_res.rc else 1
            res.err = "server exit status %s%s: %s" % (
                srv_res.rc, srv_res.err, server_log())
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def run_case_once(case, alloc, timeout):
    if case["kind"] == "redis":
        r = run_redis(case, alloc, timeout)
    else:
        r = run_proc(case["cmd"], alloc_env(alloc, case.get("env")),
                     timeout, stdin_data=case.get("stdin"), measure=True)
    if r.timed_out:
        return None, "timed out after %ds" % timeout
    if r.rc != 0 or r.secs is None:
        return None, "exit status %s: %s" % (r.rc, (r.err or r.out).strip()
                                             [-400:])
    secs, rss = r.secs, r.maxrss_kb
    if case["kind"] == "workload":
        line = [l for l in r.out.splitlines() if l.startswith("workload=")]
        if not line:
            return None, "no result line: " + r.out[-200:]
        f = kv(line[-1])
        secs = float(f["secs"])
        if not same_file(f.get("malloc", ""), alloc["expect"]):
            return None, "malloc came from %s" % f.get("malloc")
    return {"secs": secs, "maxrss_kb": rss, "counters": r.counters}, None


def run_cases(cases, allocs, runs, timeout):
    for case in cases:
        case["results"] = {a["name"]: {"secs": [], "maxrss_kb": [],
                                       "error": None} for a in allocs}
        log("case %s (%d runs x %d allocators + warm-up)" %
            (case["name"], runs, len(allocs)))
        for rnd in range(runs + 1):
            for a in allocs:
                slot = case["results"][a["name"]]
                if slot["error"]:
                    continue
                # a run may take 20x the slowest peer so far, so that a
                # hang costs seconds, not the whole timeout
                peer_t = [max(v["secs"] + v.get("warm", []))
                          for k, v in case["results"].items()
                          if k != "slabkit" and (v["secs"] or v.get("warm"))]
                limit = timeout
                if peer_t and a["name"] == "slabkit":
                    limit = min(timeout, max(30, 20 * max(peer_t)))
                m, err = run_case_once(case, a, limit)
                if err:
                    slot["error"] = err
                    log("  %s: %s" % (a["name"], err))
                    continue
                if rnd == 0:
                    slot.setdefault("warm", []).append(m["secs"])
                    continue  # warm-up
                slot["secs"].append(m["secs"])
                slot["maxrss_kb"].append(m["maxrss_kb"])
                for k, v in m["counters"].items():
                    slot.setdefault(k, []).append(v)
        summary = []
        for a in allocs:
            s = case["results"][a["name"]]
            if s["secs"]:
                summary.append("%s %.3fs" % (a["name"], median(s["secs"])))
        log("  " + ", ".join(summary))


def median(xs):
    ys = sorted(xs)
    n = len(ys)
    if n == 0:
        return None
    return ys[n // 2] if n % 2 else (ys[n // 2 - 1] + ys[n // 2]) / 2


# ---------------------------------------------------------------- native

def run_native(build, allocs, quick, timeout):
    out = []
    bdir = os.path.join(build, "bench")
    exes = sorted(f for f in os.listdir(bdir) if f.startswith("bench_") and
                  os.access(os.path.join(bdir, f), os.X_OK))
    for exe in exes:
        path = os.path.join(bdir, exe)
        env_extra = {"QUICK": "1"} if quick else None
        if exe == "bench_kmalloc":
            # its malloc column is whatever malloc the process has
            args = ["0.2", "3"] if quick else ["1", "5"]
            targets = allocs
        else:
            args, targets = [], [a for a in allocs if a["name"] == "glibc"]
        for a in targets:
            log("native %s under %s" % (exe, a["name"]))
            r = run_proc([path] + args, alloc_env(a, env_extra), timeout)
            status = "ok"
            if r.timed_out:
                status = "timed out after %ds" % timeout
            elif r.rc != 0:
                status = "exit status %s" % r.rc
            out.append({"exe": exe, "alloc": a["name"], "args": args,
                        "status": status, "secs": r.secs,
                        "output": (r.out + r.err)[-6000:]})
    return out


# ---------------------------------------------------------------- callgrind

def callgrind_costs(path):
    """Total Ir and the self cost of each function ("fn [object]") in a
    callgrind output file (name compression and call lines handled)."""
    total = 0
    selfcost = {}
    names = {"fn": {}, "ob": {}}
    cur = {"fn": None, "ob": None}
    skip_next = False
    rx = re.compile(r"(c?)(fn|ob)=(?:\((\d+)\))?\s*(.*)")
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
                continue
            m = rx.match(line)
            if m:
                callee, kind, num, name = m.groups()
                if num is not None and name:
                    names[kind][num] = name
                elif num is not None:
                    name = names[kind].get(num, num)
                if not callee:
                    cur[kind] = name
                continue
            if line.startswith("calls="):
                skip_next = True
                continue
            if line and (line[0].isdigit() or line[0] in "+-*"):
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    key = "%s [%s]" % (cur["fn"],
                                       os.path.basename(cur["ob"] or "?"))
                    selfcost[key] = selfcost.get(key, 0) + int(parts[1])
    return total, selfcost


def main_cost(selfcost):
    return sum(v for k, v in selfcost.items() if k.startswith("main ["))


def run_callgrind(tools, allocs, quick, timeout):
    vg = shutil.which("valgrind")
    if not vg:
        return [], "valgrind not installed: no instruction counts"
    n1, n2 = (20000, 60000) if quick else (50000, 150000)
    plan = []
    for mode in ("ring", "mix", "one", "ws32", "wsmixed"):
        for a in allocs:
            plan.append(("malloc_pair", mode, a))
    native = {"kmalloc_pair": ("ring", "mix", "one", "ws32", "wsmixed"),
              "objcache_pair": ("fixed32", "ws32"),
              "zone_pair": ("fixed32", "ws32")}
    for prog, modes in native.items():
        if os.access(os.path.join(tools, prog), os.X_OK):
            for mode in modes:
                plan.append((prog, mode, None))
    rows = []
    tmp = tempfile.mkdtemp(prefix="bench-cg-")
    try:
        for prog, mode, a in plan:
            row = {"prog": prog, "mode": mode,
                   "alloc": a["name"] if a else prog.split("_")[0],
                   "n1": n1, "n2": n2}
            costs = []
            for n in (n1, n2):
                out = os.path.join(tmp, "cg.%s.%s.%d" % (prog, mode, n))
                env = alloc_env(a) if a else base_env()
                r = run_proc([vg, "--tool=callgrind",
                              "--callgrind-out-file=" + out,
                              os.path.join(tools, prog), mode, str(n)],
                             env, timeout)
                if r.rc != 0 or not os.path.exists(out):
                    row["error"] = "rc %s: %s" % (r.rc, r.err[-300:])
                    break
                costs.append(callgrind_costs(out))
            if "error" not in row:
                (t1, f1), (t2, f2) = costs
                m1, m2 = main_cost(f1), main_cost(f2)
                # per-function cost of one pair, largest first
                per_fn = sorted(((k, (f2.get(k, 0) - f1.get(k, 0)) /
                                  (n2 - n1)) for k in f2),
                                key=lambda kv_: -kv_[1])
                row.update(ir1=t1, ir2=t2, main1=m1, main2=m2,
                           per_pair=(t2 - t1) / (n2 - n1),
                           alloc_per_pair=((t2 - m2) - (t1 - m1)) /
                           (n2 - n1),
                           per_function=[[k, round(v, 2)]
                                         for k, v in per_fn if v >= 0.5])
                log("callgrind %s %s %s: %.1f Ir/pair" %
                    (prog, mode, row["alloc"], row["per_pair"]))
            else:
                log("callgrind %s %s %s: %s" % (prog, mode, row["alloc"],
                                                row["error"]))
            rows.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows, None


# ---------------------------------------------------------------- profiles

def annotate_top(path, n=25):
    txt = sh(["callgrind_annotate", "--auto=no", "--threshold=99", path])
    keep, body = [], False
    for l in txt.splitlines():
        if "file:function" in l:
            body = True
            continue
        if not body or l.startswith("-"):
            continue
        if not re.match(r"\s*[\d,]+ ", l):
            if keep:
                break
            continue
        keep.append(l.rstrip())
    return keep[:n]


def strace_summary(cmd, alloc, case, timeout):
    """Syscall counts (strace -c -f) of the profile command, top 8."""
    counts = strace_summary_all(cmd, alloc, case, timeout)
    if counts is None:
        return None
    rows = [{"syscall": k, "calls": v} for k, v in counts.items()]
    rows.sort(key=lambda r: -r["calls"])
    return rows[:8]


MAPPING_CASES = ("large", "realloc-growth", "mstress")
MAPPING_CALLS = ("mmap", "munmap", "mremap", "madvise", "brk", "mprotect")


def run_mapping_calls(cases, allocs, timeout):
    """For the large-block cases, every allocator: the mapping system
    calls of the profile command (strace -c -f), and the median minor
    faults of the full-scale runs (already in the results)."""
    for case in cases:
        if case["name"] not in MAPPING_CASES or "profile_cmd" not in case:
            continue
        calls = {}
        for a in allocs:
            rows = strace_summary_all(case["profile_cmd"], a, case,
                                      timeout)
            if rows is None:
                return
            calls[a["name"]] = {k: rows.get(k, 0) for k in MAPPING_CALLS}
        case["mapping_calls"] = calls
        log("mapping calls %s: %s" % (case["name"], ", ".join(
            "%s %d" % (n, sum(v.values())) for n, v in calls.items())))


def strace_summary_all(cmd, alloc, case, timeout):
    """Every syscall count (strace -c -f) of cmd, as a dict; None
    without strace."""
    st = shutil.which("strace")
    if not st:
        return None
    fd, out = tempfile.mkstemp(prefix="bench-strace-")
    os.close(fd)
    env = alloc_env(alloc, case.get("env"))
    pre = env.pop("LD_PRELOAD", None)
    full = [st, "-f", "-c", "-o", out]
    if pre:
        full += ["-E", "LD_PRELOAD=" + pre]
    run_proc(full + cmd, env, timeout, stdin_data=case.get("profile_stdin"))
    rows = {}
    try:
        with open(out) as f:
            for line in f:
                p = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(p) >= 5 and p[3].isdigit() and p[-1] != "total":
                    rows[p[-1]] = int(p[3])
    finally:
        os.unlink(out)
    return rows


def run_profiles(cases, allocs, outdir, stem, timeout):
    """callgrind of each case slabkit misses: slabkit and the best peer."""
    vg = shutil.which("valgrind")
    names = [a["name"] for a in allocs]
    if not vg or "slabkit" not in names:
        return []
    peers = [a for a in allocs if a["name"] != "slabkit"]
    sk = [a for a in allocs if a["name"] == "slabkit"][0]
    profiles = []
    pdir = os.path.join(outdir, stem + "-profiles")
    shutil.rmtree(pdir, ignore_errors=True)  # a previous run's, same name
    for case in cases:
        if "profile_cmd" not in case:
            continue
        vg_cmd = [vg, "--tool=callgrind"]
        if case.get("threads"):
            # valgrind stops at 500 threads unless told more
            vg_cmd.append("--max-threads=%d" %
                          max(500, case["threads"] + 64))
        res = case["results"]
        skr = res["slabkit"]
        if skr["error"] or not skr["secs"]:
            continue
        ok = [a for a in peers if res[a["name"]]["secs"]]
        if not ok:
            continue
        best_t = min(ok, key=lambda a: median(res[a["name"]]["secs"]))
        best_m = min(ok, key=lambda a: median(res[a["name"]]["maxrss_kb"]))
        t_ratio = median(skr["secs"]) / median(res[best_t["name"]]["secs"])
        m_ratio = median(skr["maxrss_kb"]) / \
            median(res[best_m["name"]]["maxrss_kb"])
        if t_ratio <= 1.0 and m_ratio <= 1.1:
            continue
        os.makedirs(pdir, exist_ok=True)
        entry = {"case": case["name"], "time_ratio": t_ratio,
                 "rss_ratio": m_ratio, "runs": [], "rusage": {},
                 "strace": {}}
        for a in (sk, best_t, best_m):
            r = res[a["name"]]
            entry["rusage"][a["name"]] = dict(
                {k: median(r[k]) for k in COUNTERS if r.get(k)},
                secs=median(r["secs"]), maxrss_kb=median(r["maxrss_kb"]))
        for a in (sk, best_t):
            slug = re.sub(r"[^A-Za-z0-9]+", "-", case["name"]).strip("-")
            out = os.path.join(pdir, "%s.%s.callgrind" % (slug, a["name"]))
            log("profile %s under %s" % (case["name"], a["name"]))
            r = run_proc(vg_cmd + ["--callgrind-out-file=" + out] +
                         case["profile_cmd"],
                         alloc_env(a, case.get("env")), timeout,
                         stdin_data=case.get("profile_stdin"))
            if r.rc != 0 or not os.path.exists(out):
                entry["runs"].append({"alloc": a["name"],
                                      "error": "rc %s" % r.rc})
                continue
            entry["strace"][a["name"]] = strace_summary(
                case["profile_cmd"], a, case, timeout)
            top = annotate_top(out)
            total = callgrind_costs(out)[0]
            txt = out[:-len(".callgrind")] + ".txt"
            with open(txt, "w") as f:
                f.write("# callgrind of %s under %s\n# %s\n" %
                        (case["name"], a["name"],
                         " ".join(case["profile_cmd"])))
                f.write("\n".join(top) + "\n")
            os.unlink(out)  # the raw file is large; keep the summary
            entry["runs"].append({"alloc": a["name"],
                                  "total_ir": total,
                                  "top": top[:12],
                                  "file": os.path.relpath(txt, outdir)})
        profiles.append(entry)
    return profiles


# ---------------------------------------------------------------- machine

def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    vers = {}
    for _, pkg, _ in PEERS:
        v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        vers[pkg] = v or "not installed"
    progs = {
        "redis-server": sh(["redis-server", "--version"]),
        "lua5.4": sh(["lua5.4", "-v"]),
        "python3": sh(["/usr/bin/python3", "--version"]),
        "sqlite3": sh(["sqlite3", "-version"]).split(" ")[0],
        "valgrind": sh(["valgrind", "--version"]),
        "cc": sh(["cc", "--version"]).splitlines()[0:1],
    }
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "glibc": os.confstr("CS_GNU_LIBC_VERSION"),
        "packages": vers,
        "programs": progs,
        "slabkit_rev": sh(["git", "-C", ROOT, "describe", "--always",
                           "--dirty"]),
        "loadavg_start": os.getloadavg(),
    }


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--tools", required=True)
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--only", default="",
                    help="regex: run only cases whose name matches")
    ap.add_argument("--skip", default="",
                    help="comma list: workloads,programs,native,callgrind,"
                    "profiles")
    ap.add_argument("--command", default="")
    args = ap.parse_args()
    quick = args.quick
    runs = args.runs or (3 if quick else 5)
    skip = set(s for s in args.skip.split(",") if s)
    build = os.path.abspath(args.build_dir)
    tools = os.path.abspath(args.tools)
    global MEASURE
    MEASURE = os.path.join(tools, "measure")
    started = time.time()

    libc = run_proc([os.path.join(tools, "preload_check")], base_env(),
                    30).out.strip() or "/lib/x86_64-linux-gnu/libc.so.6"
    allocs, notes = [], []
    cands = [(n, pkg, lib) for n, pkg, lib in PEERS]
    sk = os.path.join(build, "libslabkit-malloc.so")
    if os.path.exists(sk):
        cands.append(("slabkit", "(this tree)", sk))
    else:
        notes.append("slabkit: %s does not exist yet; peers only" % sk)
    for name, pkg, lib in cands:
        if lib is not None and not os.path.exists(lib):
            notes.append("%s: %s missing (package %s): skipped" %
                         (name, lib, pkg))
            continue
        a = {"name": name, "package": pkg, "preload": lib, "libc": libc,
             "expect": lib or libc}
        err = check_preload(a, tools)
        if err:
            notes.append("%s: %s: skipped" % (name, err))
            log(notes[-1])
            continue
        allocs.append(a)
        log("allocator %s: malloc from %s" % (name, a["provider"]))

    cases = []
    if "workloads" not in skip:
        cases += workload_cases(build, quick)
    if "programs" not in skip:
        progs = program_cases(quick)
        for p in progs:
            for a in allocs:
                err = check_bindings(a, p)
                p.setdefault("bindings", {})[a["name"]] = err or "ok"
                if err:
                    notes.append("%s under %s: bindings: %s" %
                                 (p["name"], a["name"], err))
                    log(notes[-1])
        cases += progs
        for name, tool in (("lua binary-trees", "lua5.4"),
                           ("python3 object-churn", "python3"),
                           ("sqlite3 inserts", "sqlite3"),
                           ("redis-benchmark", "redis-server")):
            if not any(c["name"] == name for c in progs):
                notes.append("%s: %s not installed: skipped" % (name, tool))
    if args.only:
        rx = re.compile(args.only)
        cases = [c for c in cases if rx.search(c["name"])]

    timeout = 120 if quick else 300
    run_cases(cases, allocs, runs, timeout)
    native = [] if "native" in skip else \
        run_native(build, allocs, quick, 600)
    cg, cg_note = ([], None) if "callgrind" in skip else \
        run_callgrind(tools, allocs, quick, 600)
    if cg_note:
        notes.append(cg_note)
    outdir = os.path.dirname(os.path.abspath(args.out))
    stem = os.path.splitext(os.path.basename(args.out))[0]
    profiles = [] if "profiles" in skip else \
        run_profiles(cases, allocs, outdir, stem, 600)
    if "profiles" not in skip:
        run_mapping_calls(cases, allocs, 600)

    meta = machine()
    meta.update(date=datetime.date.today().isoformat(), quick=quick,
                runs=runs, build_dir=args.build_dir,
                command=args.command,
                loadavg_end=os.getloadavg(),
                duration_s=round(time.time() - started))
    for c in cases:
        for k in ("stdin", "profile_stdin"):
            c.pop(k, None)
    doc = {"meta": meta, "allocators": allocs, "notes": notes,
           "cases": cases, "native": native, "callgrind": cg,
           "profiles": profiles}
    os.makedirs(outdir, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    log("wrote %s (%ds)" % (args.out, meta["duration_s"]))


if __name__ == "__main__":
    main()
