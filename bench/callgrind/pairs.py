#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""pairs.py: allocator instructions per pair for the callgrind loops.

Usage: bench/callgrind/pairs.py TOOLS_DIR [PROG:MODE[:PRELOAD] ...]
Runs each loop under callgrind with N1 and N2 pairs and prints
(Ir(N2) - Ir(N1)) / (N2 - N1), loop (self cost of main) excluded, and
the per-function self cost of one pair.  The method of bench/runner.py,
for quick use while working on a fast path.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from runner import callgrind_costs, main_cost  # noqa: E402

N1, N2 = 20000, 60000


def measure(tools, prog, mode, preload):
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = preload
    res = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (N1, N2):
            out = os.path.join(tmp, "cg.%d" % n)
            subprocess.run(["valgrind", "--tool=callgrind", "-q",
                            "--callgrind-out-file=" + out,
                            os.path.join(tools, prog), mode, str(n)],
                           env=env, check=True)
            res.append(callgrind_costs(out))
    (t1, f1), (t2, f2) = res
    alloc = ((t2 - main_cost(f2)) - (t1 - main_cost(f1))) / (N2 - N1)
    per_fn = sorted(((k, (f2.get(k, 0) - f1.get(k, 0)) / (N2 - N1))
                     for k in f2), key=lambda kv: -kv[1])
    return alloc, [(k, v) for k, v in per_fn if v >= 0.5]


def main():
    tools = sys.argv[1]
    specs = sys.argv[2:] or ["malloc_pair:ring", "malloc_pair:mix",
                             "malloc_pair:one", "kmalloc_pair:ring"]
    for spec in specs:
        parts = spec.split(":")
        prog, mode = parts[0], parts[1]
        pre = parts[2] if len(parts) > 2 else None
        alloc, fns = measure(tools, prog, mode, pre)
        print("%-14s %-8s %-10s %6.1f Ir/pair (allocator)" %
              (prog, mode, os.path.basename(pre) if pre else "-", alloc))
        for k, v in fns[:8]:
            print("    %7.1f  %s" % (v, k))


if __name__ == "__main__":
    main()
