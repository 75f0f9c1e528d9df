#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# symbols/layout: the drop-in's code is laid out so that a program that
# only calls malloc and free keeps the least of it resident.  The kernel
# maps 64 KiB of a library's code around every page it faults in, so the
# code start-up and the malloc family run must sit together, first, and
# the layers such a program never calls (hardened mode, statistics,
# objcache, mpipe, zone, kmalloc_obj) last; and no libc_nonshared stub
# (pthread_atfork: sk_os_atfork calls what it would) may land at the very
# end of the code, where one call at start-up kept the last 64 KiB of it
# resident (cache-scratch: 136 -> 100 KiB of slabkit's code resident).
set -u
lib=$1
pass=0 fail=0
addr() { nm "$lib" | awk -v s="$1" '$3 == s {print $1; exit}'; }
check() { # name, condition
	if [ "$2" = 1 ]; then pass=$((pass + 1)); echo "ok   $1"
	else fail=$((fail + 1)); echo "FAIL $1"; fi
}
if nm "$lib" | awk '{print $NF}' | grep -qx pthread_atfork; then
	check "no pthread_atfork stub linked in" 0
else
	check "no pthread_atfork stub linked in" 1
fi
hot=$(addr __libc_free)
init=$(addr sk_init_slow)
for cold in objcache_create mpipe_init zinitna; do
	c=$(addr "$cold")
	ok=0
	if [ -n "$hot" ] && [ -n "$init" ] && [ -n "$c" ] &&
	    [ $((0x$hot)) -lt $((0x$c)) ] && [ $((0x$init)) -lt $((0x$c)) ]; then
		ok=1
	fi
	check "free and start-up code before $cold" $ok
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
