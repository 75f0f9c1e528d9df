# SPDX-License-Identifier: BSD-3-Clause
"""object-churn: the object-churn pattern of interpreter benchmarks
(pyperformance-style), written for slabkit.  Builds and drops many small
dicts, lists, strings and tuples with mixed lifetimes: a bounded cache of
records replaced at random, string building and joining, and sorting of
short-lived lists.  Run with PYTHONMALLOC=malloc so that every object goes
to the allocator under test rather than to pymalloc's arenas.
Usage: python3 object-churn.py [rounds]
"""
import random
import sys


def record(rng, i):
    return {
        "id": i,
        "name": "user-%d-%x" % (i, rng.getrandbits(32)),
        "tags": [rng.choice("abcdefgh") * rng.randint(1, 24)
                 for _ in range(rng.randint(0, 6))],
        "score": rng.random(),
        "pos": (rng.randint(0, 1000), rng.randint(0, 1000)),
    }


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    rng = random.Random(20261107)
    cache = [record(rng, i) for i in range(20000)]
    total = 0
    n = 20000
    for _ in range(rounds):
        for _ in range(10000):
            cache[rng.randrange(len(cache))] = record(rng, n)
            n += 1
        batch = sorted(cache[rng.randrange(10000):][:5000],
                       key=lambda r: r["score"])
        text = ",".join(r["name"] for r in batch)
        parts = text.split(",")
        index = {p: len(p) for p in parts}
        total += len(index) + sum(len(t) for r in batch for t in r["tags"])
    print("records", n, "checksum", total)


main()
