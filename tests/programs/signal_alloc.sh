#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Allocating in a signal handler that interrupted an allocation (not
# supported, as in glibc) must end the program, never hang it: each run
# of signal_alloc (SIGALRM every 200 us, the handler and the main loop
# both allocating large blocks) must exit 0 saying "done", or die of
# SIGABRT with slabkit's re-entry message.  A run still going after 60 s
# is killed and fails the test.
# usage: signal_alloc.sh LIBSLABKIT-MALLOC SIGNAL_ALLOC
set -u
lib=$1
prog=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slabkit-signal.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=check.sh
. "$(dirname "$0")/check.sh"

msg='slabkit: malloc: re-entered from a signal handler while this thread holds the [a-z -]* lock (allocating in a signal handler that interrupted an allocation is not supported)'
aborted=0
for run in 1 2 3 4 5 6; do
	timeout -s KILL 60 env LD_PRELOAD="$lib" "$prog" 1.5 \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	case $rc in
	0)
		check "run $run: ends normally" grep -q '^done: ' "$tmp/out"
		;;
	134)
		aborted=$((aborted + 1))
		check "run $run: aborts with the re-entry message" \
			grep -q "$msg" "$tmp/err"
		;;
	124 | 137)
		check "run $run: hung (killed after 60 s)" false
		;;
	*)
		check "run $run: exit status $rc, neither 0 nor SIGABRT" false
		sed 's/^/    /' "$tmp/err" | head -5
		;;
	esac
done
echo "$aborted of 6 runs aborted on re-entry (SLABKIT_OPTIONS=${SLABKIT_OPTIONS:-})"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
