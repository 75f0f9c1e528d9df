# SPDX-License-Identifier: BSD-3-Clause
# Object churn for the drop-in's real-program test: builds and frees
# millions of objects, dicts, lists and strings, and prints checksums that
# depend only on the data, never on the allocator.  Run it as is (small
# objects come from Python's own pool, large ones from malloc) and with
# PYTHONMALLOC=malloc (everything from malloc).
import hashlib
import sys


def main(rounds):
    h = hashlib.sha256()
    total = 0
    for rnd in range(rounds):
        d = {}
        for i in range(60000):
            k = "key-%d-%d" % (rnd, i)
            d[k] = [i, str(i * 3), {"x": i, "y": k, "z": (i, rnd)}]
        items = sorted(d.items(), key=lambda kv: (kv[1][0] * 7919) % 1013)
        h.update("".join(v[1][1] for v in items[:5000]).encode())
        total += sum(len(k) for k in d)
        sets = [set(range(i % 300)) for i in range(3000)]
        total += sum(len(s) for s in sets)
        del d, items, sets
    buf = bytearray()
    for i in range(100000):
        buf += b"%d," % i
    h.update(bytes(buf))
    parts = [str(i) * (i % 50) for i in range(30000)]
    joined = "|".join(parts)
    h.update(joined.encode())
    words = joined.split("|")
    total += len(words) + len(set(words))
    print(total, len(buf), len(joined))
    print(h.hexdigest())


main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
