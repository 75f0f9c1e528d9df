#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# sources/one_time_setups: every one-time set-up of the library goes
# through sk_once (lock.c), never pthread_once directly.  A signal handler
# that re-enters an API while its own thread is inside that API's first
# set-up waits for itself for ever under pthread_once; sk_once aborts with
# the re-entry message instead (test_reentry checks that behaviour; this
# check keeps new set-ups from bypassing it).
set -u
src=$1
pass=0 fail=0
check() { # name, condition
	if [ "$2" = 1 ]; then pass=$((pass + 1)); echo "ok   $1"
	else fail=$((fail + 1)); echo "FAIL $1"; fi
}
found=$(grep -rn --include='*.c' --include='*.h' 'pthread_once *(' "$src" |
	grep -v "^$src/lock\.c:")
if [ -z "$found" ]; then
	check "no pthread_once outside sk_once" 1
else
	echo "$found"
	check "no pthread_once outside sk_once" 0
fi
n=$(grep -rln --include='*.c' 'sk_once(&' "$src" | wc -l)
[ "$n" -ge 5 ] && ok=1 || ok=0
check "the set-ups use sk_once ($n files)" $ok
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
