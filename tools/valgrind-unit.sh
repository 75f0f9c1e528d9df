#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Run every unit test binary of a build under valgrind memcheck; any
# memcheck error fails.  Usage: tools/valgrind-unit.sh [build-dir]
# Loops are shortened with SK_TEST_SCALE (percent).
set -u
build=${1:-build/release}
export SK_TEST_SCALE=${SK_TEST_SCALE:-10}
export SK_TEST_VALGRIND=1
pass=0 fail=0
for t in "$build"/tests/unit-test_*; do
	[ -x "$t" ] || continue
	if valgrind -q --error-exitcode=99 --child-silent-after-fork=yes \
	    "$t" >/tmp/vg.$$.out 2>&1; then
		pass=$((pass + 1)); echo "ok   $(basename "$t")"
	else
		fail=$((fail + 1)); echo "FAIL $(basename "$t")"
		tail -30 /tmp/vg.$$.out
	fi
done
rm -f /tmp/vg.$$.out
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
