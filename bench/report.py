#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""bench/report.py: turn bench/runner.py's JSON into the markdown report
and its chart (gnuplot, bench/plot.gp).  Standard library only.

Usage: bench/report.py RESULTS.json
Writes RESULTS.md, RESULTS-time.dat, RESULTS-rss.dat and RESULTS.png
beside the JSON file.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TIME_TARGET = 1.0   # slabkit time / fastest peer
RSS_TARGET = 1.1    # slabkit peak RSS / smallest peer


def median(xs):
    ys = sorted(xs)
    n = len(ys)
    if n == 0:
        return None
    return ys[n // 2] if n % 2 else (ys[n // 2 - 1] + ys[n // 2]) / 2


def fmt_secs(s):
    if s is None:
        return "-"
    return "%.3f s" % s if s < 10 else "%.2f s" % s


def fmt_rss(kb):
    if kb is None:
        return "-"
    mib = kb / 1024.0
    return "%.1f MiB" % mib if mib < 100 else "%.0f MiB" % mib


def case_stats(case, names):
    """Medians per allocator, and slabkit's ratios to the best peers."""
    st = {}
    for n in names:
        r = case["results"].get(n)
        if r and r["secs"] and not r["error"]:
            st[n] = (median(r["secs"]), median(r["maxrss_kb"]),
                     min(r["secs"]), max(r["secs"]))
    peers = [n for n in st if n != "slabkit"]
    best_t = min(peers, key=lambda n: st[n][0]) if peers else None
    best_m = min(peers, key=lambda n: st[n][1]) if peers else None
    ratios = None
    if "slabkit" in st and peers:
        # rounded as printed, so that the verdict matches the table
        ratios = (round(st["slabkit"][0] / st[best_t][0], 2),
                  round(st["slabkit"][1] / st[best_m][1], 2))
    return st, best_t, best_m, ratios


def mark(ok):
    return "met" if ok else "**missed**"


def machine_lines(m, allocs):
    pk = m["packages"]
    lines = [
        "- Machine: %s, %s cores, %s GiB, Linux %s, %s; host `%s`" %
        (m["cpu"], m["cores"], m["mem_gib"], m["kernel"], m["glibc"],
         m["host"]),
        "- Peers: jemalloc %s, mimalloc %s, tcmalloc %s (Debian packages); "
        "slabkit `%s`" % (pk.get("libjemalloc2"), pk.get("libmimalloc2.0"),
                          pk.get("libtcmalloc-minimal4"), m["slabkit_rev"]),
        "- Programs: %s; %s; %s; sqlite %s; %s" %
        (m["programs"].get("redis-server", "").split(" sha")[0],
         m["programs"].get("lua5.4", "").split("  ")[0],
         m["programs"].get("python3", ""), m["programs"].get("sqlite3", ""),
         m["programs"].get("valgrind", "")),
        "- Command: `%s` (build dir `%s`), %d counted runs per allocator "
        "after one warm-up, allocators alternating; took %d s; "
        "load average %.2f at start, %.2f at end" %
        (m.get("command") or "./bench/run.sh", m["build_dir"], m["runs"],
         m["duration_s"], m["loadavg_start"][0], m["loadavg_end"][0]),
    ]
    lines.append("- Preloads checked (dladdr on malloc): " + ", ".join(
        "%s -> `%s`" % (a["name"], a["provider"]) for a in allocs))
    return lines


def main_table(doc, names):
    out = []
    have_sk = "slabkit" in names
    hdr = ["case"] + names + ["slabkit time / fastest peer",
                              "slabkit RSS / smallest peer"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    misses_t, misses_m, rows = [], [], []
    for c in doc["cases"]:
        st, bt, bm, ratios = case_stats(c, names)
        cells = [c["name"]]
        for n in names:
            r = c["results"].get(n, {})
            if n not in st:
                err = (r.get("error") or "not run").replace("|", "/")
                cells.append("fail: " + err[:60].replace("\n", " "))
                continue
            t = fmt_secs(st[n][0])
            m = fmt_rss(st[n][1])
            if n == bt:
                t = "**%s**" % t
            if n == bm:
                m = "**%s**" % m
            cells.append("%s, %s" % (t, m))
        if ratios:
            tr, mr = ratios
            cells.append("%.2f (%s) %s" % (tr, bt, "" if tr <= TIME_TARGET
                                           else "miss"))
            cells.append("%.2f (%s) %s" % (mr, bm, "" if mr <= RSS_TARGET
                                           else "miss"))
            if tr > TIME_TARGET:
                misses_t.append((c["name"], tr, bt))
            if mr > RSS_TARGET:
                misses_m.append((c["name"], mr, bm))
        else:
            cells += ["-", "-"] if not have_sk else ["fail", "fail"]
        rows.append((c, st))
        out.append("| " + " | ".join(cells) + " |")
    return out, misses_t, misses_m


def thread_scaling(doc, names):
    """The threads-<N> cases side by side: time and peak RSS per thread
    count, the growth of RSS from the fewest threads to the most, and the
    two verdicts of the per-CPU shards issue."""
    by_n = {c["threads"]: c for c in doc["cases"] if c.get("threads")}
    if not by_n:
        return []
    counts = sorted(by_n)
    lo, hi = counts[0], counts[-1]
    st = {t: case_stats(by_n[t], names) for t in counts}
    growth = {}  # allocator -> (RSS growth in KiB, RSS ratio, time ratio)
    if hi > lo:
        for n in names:
            if n in st[lo][0] and n in st[hi][0]:
                a, b = st[lo][0][n], st[hi][0][n]
                growth[n] = (b[1] - a[1], b[1] / a[1], b[0] / a[0])
    peers = [n for n in growth if n != "slabkit"]
    best_g = min(peers, key=lambda n: growth[n][0]) if peers else None
    out = []
    hdr = ["allocator"] + ["%d threads" % t for t in counts]
    if hi > lo:
        hdr += ["RSS growth %d -> %d" % (lo, hi),
                "time %d / %d" % (hi, lo)]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    for n in names:
        cells = [n]
        for t in counts:
            s, bt, bm, _ = st[t]
            if n not in s:
                r = by_n[t]["results"].get(n) or {}
                cells.append("fail" if r.get("error") else "-")
                continue
            tm, m = fmt_secs(s[n][0]), fmt_rss(s[n][1])
            if n == bt:
                tm = "**%s**" % tm
            if n == bm:
                m = "**%s**" % m
            cells.append("%s, %s" % (tm, m))
        if hi > lo:
            if n in growth:
                g = "%+.1f MiB (%.2fx)" % (growth[n][0] / 1024.0,
                                           growth[n][1])
                cells.append("**%s**" % g if n == best_g else g)
                cells.append("%.2fx" % growth[n][2])
            else:
                cells += ["-", "-"]
        out.append("| " + " | ".join(cells) + " |")
    if "slabkit" not in names:
        return out
    out.append("")
    if hi > lo:
        if "slabkit" in growth and best_g:
            sk, pg = growth["slabkit"], growth[best_g]
            out.append("- RSS growth from %d to %d threads <= the smallest "
                       "peer's: slabkit %+.1f MiB (%.2fx), %s %+.1f MiB "
                       "(%.2fx): %s" %
                       (lo, hi, sk[0] / 1024.0, sk[1], best_g,
                        pg[0] / 1024.0, pg[1], mark(sk[0] <= pg[0])))
        else:
            out.append("- RSS growth from %d to %d threads: not measured "
                       "for slabkit and a peer" % (lo, hi))
    s, _, bm, ratios = st[hi]
    if ratios:
        out.append("- Peak RSS at %d threads <= %.2fx the smallest peer's: "
                   "slabkit %s, %s %s (%.2fx): %s" %
                   (hi, RSS_TARGET, fmt_rss(s["slabkit"][1]), bm,
                    fmt_rss(s[bm][1]), ratios[1],
                    mark(ratios[1] <= RSS_TARGET)))
    else:
        out.append("- Peak RSS at %d threads: not measured for slabkit "
                   "and a peer" % hi)
    return out


def callgrind_tables(doc, names):
    cg = doc.get("callgrind") or []
    if not cg:
        return []
    out = []
    modes = [("ring", "64 live 32 B blocks, oldest freed"),
             ("mix", "64 live blocks, 16 sizes 8-1024 B"),
             ("one", "malloc(32), free: one live object"),
             ("fixed32", "malloc(32), free: one live object"),
             ("ws32", "1024 live 32 B blocks, oldest freed"),
             ("mixed", "16 sizes 8-512 B, one live object"),
             ("wsmixed", "1024 live blocks of the 16 sizes")]
    have = set(x["mode"] for x in cg)
    modes = [m for m in modes if m[0] in have]
    out.append("| loop (Ir per pair; in the allocator, loop excluded) | " +
               " | ".join(names) + " |")
    out.append("|" + "---|" * (len(names) + 1))
    for mode, desc in modes:
        cells = ["`%s`: %s" % (mode, desc)]
        for n in names:
            r = [x for x in cg if x["prog"] == "malloc_pair" and
                 x["mode"] == mode and x["alloc"] == n]
            if not r or "error" in r[0]:
                cells.append("fail" if r else "-")
            else:
                cells.append("%.1f (%.1f)" % (r[0]["per_pair"],
                                              r[0]["alloc_per_pair"]))
        out.append("| " + " | ".join(cells) + " |")
    brk = [x for x in cg if x["mode"] == "ring" and "error" not in x and
           x.get("per_function") and
           (x["alloc"] in ("slabkit", "mimalloc", "kmalloc"))]
    if brk:
        out.append("")
        out.append("Where a `ring` pair's instructions go (self cost "
                   "per pair, by function):")
        out.append("")
        out.append("```")
        for x in brk:
            out.append("%s (%s):" % (x["alloc"], x["prog"]))
            for fn, v in x["per_function"][:10]:
                out.append("  %8.1f  %s" % (v, fn))
        out.append("```")
    nat = [x for x in cg if x["prog"] != "malloc_pair"]
    if nat:
        out.append("")
        out.append("Native APIs (linked statically, same method):")
        out.append("")
        progs = []
        for x in nat:
            if x["prog"] not in progs:
                progs.append(x["prog"])
        labels = {"kmalloc_pair": "kmalloc/kfree",
                  "objcache_pair": "objcache_get/put",
                  "zone_pair": "zalloc/zfree"}
        out.append("| loop | " + " | ".join(labels.get(p, p)
                                            for p in progs) + " |")
        out.append("|" + "---|" * (len(progs) + 1))
        for mode, desc in modes:
            cells = ["`%s`" % mode]
            anyv = False
            for p in progs:
                r = [x for x in nat if x["prog"] == p and x["mode"] == mode]
                if not r:
                    cells.append("-")
                elif "error" in r[0]:
                    cells.append("fail")
                    anyv = True
                else:
                    cells.append("%.1f (%.1f)" % (r[0]["per_pair"],
                                                  r[0]["alloc_per_pair"]))
                    anyv = True
            if anyv:
                out.append("| " + " | ".join(cells) + " |")
    return out


def fast_path_target(doc):
    cg = doc.get("callgrind") or []

    def get(n, mode="ring"):
        r = [x for x in cg if x["prog"] == "malloc_pair" and
             x["mode"] == mode and x["alloc"] == n and "error" not in x]
        return r[0] if r else None
    sk, mi = get("slabkit"), get("mimalloc")
    if not sk or not mi:
        return None
    return sk["alloc_per_pair"], mi["alloc_per_pair"]


def write_dat(doc, names, path, idx):
    """Ratio of each allocator to the best peer, one row per case."""
    with open(path, "w") as f:
        f.write("case " + " ".join(names) + "\n")
        for c in doc["cases"]:
            st, bt, bm, _ = case_stats(c, names)
            best = bt if idx == 0 else bm
            if best is None:
                continue
            vals = []
            for n in names:
                if n in st:
                    vals.append("%.4f" % (st[n][idx] / st[best][idx]))
                else:
                    vals.append("NaN")
            f.write('"%s" %s\n' % (c["name"], " ".join(vals)))


def plot(doc, names, stem):
    tdat, mdat = stem + "-time.dat", stem + "-rss.dat"
    write_dat(doc, names, tdat, 0)
    write_dat(doc, names, mdat, 1)
    png = stem + ".png"
    gp = shutil.which("gnuplot")
    if not gp:
        return None, "gnuplot not installed: no chart"
    title = "%s, %s cores, %s" % (doc["meta"]["cpu"], doc["meta"]["cores"],
                                  doc["meta"]["date"])
    r = subprocess.run(
        [gp, "-e", "timefile='%s'; rssfile='%s'; outfile='%s'; ncols=%d; "
         "subtitle='%s'" % (tdat, mdat, png, len(names) + 1, title),
         os.path.join(HERE, "plot.gp")],
        capture_output=True, text=True)
    if r.returncode != 0:
        return None, "gnuplot failed: " + r.stderr[-300:]
    return png, None


def main():
    path = sys.argv[1]
    with open(path) as f:
        doc = json.load(f)
    stem = os.path.splitext(path)[0]
    m = doc["meta"]
    names = [a["name"] for a in doc["allocators"]]
    png, perr = plot(doc, names, stem)
    out = ["# slabkit benchmarks: %s on %s%s" %
           (m["date"], m["host"], " (QUICK)" if m["quick"] else ""), ""]
    out += machine_lines(m, doc["allocators"])
    out.append("")
    notes = list(doc.get("notes") or [])
    if perr:
        notes.append(perr)
    if notes:
        out.append("Notes:")
        out += ["- " + n for n in notes]
        out.append("")

    table, mt, mm = main_table(doc, names)
    fp = fast_path_target(doc)
    out.append("## Targets")
    out.append("")
    if "slabkit" not in names:
        out.append("slabkit's drop-in was not measured in this run "
                   "(peers only), so no target can be judged.")
    else:
        ncase = sum(1 for c in doc["cases"]
                    if case_stats(c, names)[3] is not None)
        if fp:
            out.append("- Allocator instructions per malloc(32)/free pair "
                       "(`ring`) <= mimalloc's: slabkit %.1f, mimalloc %.1f "
                       "(%.2fx): "
                       "%s" % (fp[0], fp[1], fp[0] / fp[1],
                               mark(fp[0] <= fp[1])))
        else:
            out.append("- Instructions per malloc(32)/free pair: "
                       "not measured")
        out.append("- Time <= %.1fx the fastest peer: met in %d of %d "
                   "cases%s" % (TIME_TARGET, ncase - len(mt), ncase,
                                "; missed: " + ", ".join(
                                    "%s %.2fx (%s)" % x for x in mt)
                                if mt else ""))
        out.append("- Peak RSS <= %.1fx the smallest peer: met in %d of %d "
                   "cases%s" % (RSS_TARGET, ncase - len(mm), ncase,
                                "; missed: " + ", ".join(
                                    "%s %.2fx (%s)" % x for x in mm)
                                if mm else ""))
        failed = [c["name"] for c in doc["cases"]
                  if c["results"].get("slabkit", {}).get("error")]
        if failed:
            out.append("- slabkit failed: " + ", ".join(failed))
    out.append("")
    out.append("## Workloads and programs")
    out.append("")
    out.append("Median time and median peak RSS (ru_maxrss) of %d runs per "
               "allocator; bold: the best peer.  Workloads report their "
               "timed loop; programs their wall time; redis-benchmark the "
               "sum over its 7 tests of requests / (requests per second), "
               "with the server's peak RSS." % m["runs"])
    out.append("")
    out += table
    out.append("")
    if png:
        out.append("![time and peak RSS relative to the best peer](%s)" %
                   os.path.basename(png))
        out.append("")
    ts = thread_scaling(doc, names)
    if ts:
        out.append("## Thread scaling")
        out.append("")
        out.append("`thread-scaling`: the same total work (a live set of "
                   "64Ki blocks of 16-512 B, a third of the frees remote) "
                   "split among %s threads on %s cores, each thread on a "
                   "64 KiB stack.  Median time and median peak RSS as in "
                   "the table above; bold: the best peer.  The thread "
                   "stacks cost every allocator the same, so the growth of "
                   "RSS with the threads is what the allocator keeps per "
                   "thread." %
                   (", ".join(str(c["threads"]) for c in doc["cases"]
                              if c.get("threads")), m["cores"]))
        out.append("")
        out += ts
        out.append("")
    cg = callgrind_tables(doc, names)
    if cg:
        out.append("## Fast paths (callgrind)")
        out.append("")
        c0 = (doc["callgrind"] or [{}])[0]
        out.append("Instructions per pair = (Ir(N2) - Ir(N1)) / (N2 - N1), "
                   "N1 = %s, N2 = %s; in parentheses the same without the "
                   "loop's own instructions (self cost of `main`)." %
                   (c0.get("n1"), c0.get("n2")))
        out.append("")
        out += cg
        out.append("")
    if doc.get("native"):
        out.append("## Native API benchmarks")
        out.append("")
        for n in doc["native"]:
            out.append("`%s %s` under %s (%s, %.1f s):" %
                       (n["exe"], " ".join(n["args"]), n["alloc"],
                        n["status"], n["secs"] or 0))
            out.append("")
            out.append("```")
            out += n["output"].rstrip().splitlines()
            out.append("```")
            out.append("")
    mc = [c for c in doc["cases"] if c.get("mapping_calls")]
    if mc:
        out.append("## Page faults and mapping calls (large blocks)")
        out.append("")
        out.append("Minor page faults: median of the full-scale runs (wait4). "
                   "Mapping calls: `strace -c -f` of one run at the profile "
                   "scale (mmap, munmap, mremap, madvise, brk, mprotect).")
        out.append("")
        out.append("| case | " + " | ".join(names) + " |")
        out.append("|" + "---|" * (len(names) + 1))
        for c in mc:
            cells = []
            for n in names:
                r = c["results"].get(n) or {}
                fl = sorted(r.get("minflt") or [])
                m = c["mapping_calls"].get(n)
                f = "%d" % fl[len(fl) // 2] if fl else "-"
                if m:
                    calls = " / ".join("%d" % m[k] for k in
                                       ("mmap", "munmap", "mremap",
                                        "madvise", "brk", "mprotect"))
                else:
                    calls = "-"
                cells.append("%s faults; %s" % (f, calls))
            out.append("| %s | %s |" % (c["name"], " | ".join(cells)))
        out.append("")
        out.append("(calls: mmap / munmap / mremap / madvise / brk / "
                   "mprotect)")
        out.append("")
    if doc.get("profiles"):
        out.append("## Profiles of the misses (callgrind, small scale)")
        out.append("")
        for p in doc["profiles"]:
            out.append("### %s (time %.2fx, RSS %.2fx)" %
                       (p["case"], p["time_ratio"], p["rss_ratio"]))
            out.append("")
            ru = p.get("rusage") or {}
            if ru:
                out.append("Full-scale runs, medians (from wait4: CPU time, "
                           "minor page faults, voluntary and involuntary "
                           "context switches):")
                out.append("")
                out.append("| allocator | time | peak RSS | user | sys | "
                           "minor faults | vol. cs | invol. cs |")
                out.append("|---|---|---|---|---|---|---|---|")
                for a, v in ru.items():
                    def g(k, f="%.0f"):
                        return f % v[k] if v.get(k) is not None else "-"
                    out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" %
                               (a, fmt_secs(v.get("secs")),
                                fmt_rss(v.get("maxrss_kb")),
                                g("user_s", "%.3f s"), g("sys_s", "%.3f s"),
                                g("minflt"), g("nvcsw"), g("nivcsw")))
                out.append("")
            st = p.get("strace") or {}
            if any(st.values()):
                out.append("System calls at the profile scale (strace -c -f), "
                           "most frequent:")
                out.append("")
                out.append("```")
                for a, rows in st.items():
                    if not rows:
                        continue
                    out.append("%s: %s" % (a, ", ".join(
                        "%s %d" % (r["syscall"], r["calls"])
                        for r in rows)))
                out.append("```")
                out.append("")
            for r in p["runs"]:
                if "error" in r:
                    out.append("%s: callgrind failed (%s)" %
                               (r["alloc"], r["error"]))
                    continue
                out.append("%s: %s Ir in all; top functions (self), "
                           "[full list](%s):" %
                           (r["alloc"], format(r["total_ir"] or 0, ","),
                            r["file"]))
                out.append("")
                out.append("```")
                out += r["top"]
                out.append("```")
                out.append("")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
