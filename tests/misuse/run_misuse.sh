#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Run one misuse program and check its documented outcome; prints
# "N passed, N failed" (exit 0 or 1), or exits 77 (skipped) for a case
# that waits for hardened mode or cannot run in this build.
#
# run_misuse.sh [options] -- PROGRAM [ARGS...]
#   --preload LIB         run with LD_PRELOAD=LIB (the malloc drop-in)
#   --options OPTS        run with SLABKIT_OPTIONS=OPTS
#   --expect abort        death by SIGABRT after a line on stderr
#                         "slabkit: FUNC: ...WHAT... ptr 0x<hex>..."
#   --expect exit         exit status 0 and "misuse: MARKER" on stdout
#   --expect signal       death by signal SIG (e.g. SEGV), no "survived";
#                         with --func, after a line on stderr as for abort
#   --func FUNC           the function the message must name (an ERE
#                         alternation such as "malloc|free" is allowed)
#   --what TEXT           text the message must contain (fixed string)
#   --marker TEXT         --expect exit: the line "misuse: TEXT" on
#                         stdout; --expect abort: that line before it
#   --signal SIG          for --expect signal
#   --pending-hardened    a mismatch means "pending hardened": skip (77)
#   --skip REASON         skip at once (77)
set -u

preload= options= expect= func= what= marker= sig= pending=0 skip=
while [ $# -gt 0 ]; do
	case $1 in
	--preload) preload=$2; shift 2 ;;
	--options) options=$2; shift 2 ;;
	--expect) expect=$2; shift 2 ;;
	--func) func=$2; shift 2 ;;
	--what) what=$2; shift 2 ;;
	--marker) marker=$2; shift 2 ;;
	--signal) sig=$2; shift 2 ;;
	--pending-hardened) pending=1; shift ;;
	--skip) skip=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "run_misuse.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ $# -ge 1 ] || { echo "run_misuse.sh: no program" >&2; exit 2; }

if [ -n "$skip" ]; then
	echo "skipped: $skip"
	exit 77
fi
if [ -n "$preload" ] && [ ! -r "$preload" ]; then
	echo "run_misuse.sh: cannot read $preload" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/misuse.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0 2>/dev/null

# Run in a subshell so that only the program sees the environment.  The
# shell's own stderr points at /dev/null meanwhile: dash reports a child
# killed by a signal ("Aborted") there, which is noise in the log.
exec 3>&2 2>/dev/null
(
	if [ -n "$preload" ]; then
		LD_PRELOAD=$preload
		export LD_PRELOAD
	fi
	if [ -n "$options" ]; then
		SLABKIT_OPTIONS=$options
		export SLABKIT_OPTIONS
	else
		unset SLABKIT_OPTIONS
	fi
	exec "$@"
) >"$tmp/out" 2>"$tmp/err"
status=$?
exec 2>&3 3>&-

# Describe what happened, for the log and the detection table.
if [ $status -gt 128 ]; then
	signo=$((status - 128))
	signame=$(kill -l $signo 2>/dev/null || echo $signo)
	outcome="killed by SIG$signame"
else
	signame=
	outcome="exit $status"
fi
msg=$(grep '^slabkit: ' "$tmp/err" | head -n 1)
echo "program: $*${preload:+ (LD_PRELOAD)}${options:+ SLABKIT_OPTIONS=$options}"
echo "outcome: $outcome"
echo "message: ${msg:-(none)}"
sed 's/^/stdout: /' "$tmp/out"
grep -v '^slabkit: ' "$tmp/err" | head -n 20 | sed 's/^/stderr: /'

fail=
armed=$(grep -c '^misuse: armed$' "$tmp/out")
survived=$(grep -c '^misuse: survived$' "$tmp/out")
[ "$armed" -ge 1 ] || fail="the program did not reach the bad call"

case $expect in
abort)
	if [ -z "$fail" ]; then
		if [ "$signame" != ABRT ]; then
			fail="expected SIGABRT, got: $outcome"
		elif [ "$survived" -ne 0 ]; then
			fail="the bad call returned before the abort"
		elif ! grep -Eq "^slabkit: ($func): " "$tmp/err"; then
			fail="no \"slabkit: $func: \" message"
		elif ! grep -E "^slabkit: ($func): " "$tmp/err" |
		    grep -F -- "$what" | grep -Eq 'ptr 0x[0-9a-f]+'; then
			fail="message lacks \"$what\" or \"ptr 0x...\""
		elif [ -n "$marker" ] &&
		    ! grep -Fqx "misuse: $marker" "$tmp/out"; then
			fail="no \"misuse: $marker\" on stdout before the abort"
		fi
	fi
	;;
exit)
	if [ -z "$fail" ]; then
		if [ $status -ne 0 ]; then
			fail="expected exit 0, got: $outcome"
		elif ! grep -Fqx "misuse: $marker" "$tmp/out"; then
			fail="no \"misuse: $marker\" on stdout"
		fi
	fi
	;;
signal)
	if [ -z "$fail" ]; then
		if [ "$signame" != "$sig" ]; then
			fail="expected SIG$sig, got: $outcome"
		elif [ "$survived" -ne 0 ]; then
			fail="the bad call returned"
		elif [ -n "$func" ] &&
		    ! grep -Eq "^slabkit: ($func): " "$tmp/err"; then
			fail="no \"slabkit: $func: \" message"
		elif [ -n "$func" ] && ! grep -E "^slabkit: ($func): " \
		    "$tmp/err" | grep -F -- "$what" |
		    grep -Eq 'ptr 0x[0-9a-f]+'; then
			fail="message lacks \"$what\" or \"ptr 0x...\""
		fi
	fi
	;;
*)
	echo "run_misuse.sh: bad --expect '$expect'" >&2
	exit 2
	;;
esac

if [ -n "$fail" ] && [ $pending -eq 1 ]; then
	echo "pending hardened: $fail"
	exit 77
fi
if [ -n "$fail" ]; then
	echo "FAIL: $fail"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "ok: $expect${func:+ in $func}${marker:+ ($marker)}${sig:+ (SIG$sig)}"
echo "1 passed, 0 failed"
exit 0
