#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The slabkit command: run (preload, statistics, exit status, environment,
# build and installed layouts), bench (arguments, finding bench/run.sh,
# Ctrl-C), version and help.  `stat' has its own test, slabkit_stat.sh.
# usage: slabkit_cmd.sh SLABKIT DROPIN MT_WORKLOAD [SRCDIR BUILDDIR]
# (mt_workload: a program that exits through exit() and leaves stderr
# open, so the at-exit tables can be seen; dash and coreutils do not.)
set -u
sk=$1 lib=$2 mt=$3 srcdir=${4:-} builddir=${5:-}
# the multiarch directory the command looks in (CMAKE_LIBRARY_ARCHITECTURE)
multiarch=${6:-x86_64-linux-gnu}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slabkit-cmd.XXXXXX")
bgpid=
cleanup() {
	[ -n "$bgpid" ] && kill -9 "$bgpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
unset SLABKIT_OPTIONS SLABKIT_SOURCE_DIR LD_PRELOAD

# shellcheck source=check.sh
. "$(dirname "$0")/check.sh"

# reap PID: its exit status in rc, killing it if it is still there after 30 s
reap() {
	n=0
	while kill -0 "$1" 2>/dev/null && [ "$n" -lt 300 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	kill -9 "$1" 2>/dev/null
	wait "$1"
	rc=$?
}

has() { # FILE TEXT
	grep -q -- "$2" "$1"
}

py=
if [ -x /usr/bin/python3 ]; then
	py=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1; then
	py=$(command -v python3)
fi
realz=$(readlink -f "$lib")

# version and help
"$sk" version >"$tmp/v" 2>&1
check "version: exit 0" [ $? -eq 0 ]
check "version: names itself" has "$tmp/v" '^slabkit [0-9][0-9.]*$'
check "version: finds the drop-in beside it" has "$tmp/v" "drop-in: $realz"
"$sk" --help >"$tmp/h" 2>&1
check "--help: exit 0 and usage" sh -c "[ $? -eq 0 ] && grep -q 'usage: slabkit run' '$tmp/h'"
"$sk" >/dev/null 2>&1
check "no arguments: exit 2" [ $? -eq 2 ]
"$sk" frobnicate >/dev/null 2>"$tmp/e"
check "unknown command: exit 2" sh -c "[ $? -eq 2 ] && grep -q 'unknown command' '$tmp/e'"
"$sk" run --frob -- true >/dev/null 2>&1
check "run: unknown option: exit 2" [ $? -eq 2 ]
"$sk" run >/dev/null 2>&1
check "run: no command: exit 2" [ $? -eq 2 ]

# run: statistics at exit
if [ -n "$py" ]; then
	"$sk" run --stats -- "$py" -c 'print(1)' >"$tmp/o" 2>"$tmp/e"
	rc=$?
	check "run --stats python3: exit 0" [ $rc -eq 0 ]
	check "run --stats python3: prints 1" [ "$(cat "$tmp/o")" = 1 ]
	check "run --stats python3: kmalloc table" has "$tmp/e" 'Memory statistics by type'
	check "run --stats python3: malloc row" has "$tmp/e" '^ *malloc  *[0-9]'
else
	echo "skip run --stats python3 (no python3)"
fi
"$sk" run --stats -- "$mt" 1 >"$tmp/o" 2>"$tmp/e"
check "run --stats mt_workload: output and table" sh -c "grep -q '^total ' '$tmp/o' && grep -q '^ *malloc  *[0-9]' '$tmp/e'"
mkdir -p "$tmp/cwd"
(cd "$tmp/cwd" && "$sk" run --stats=json --stats-file=out.json -- \
    env -C / "$mt" 1) >"$tmp/o" 2>"$tmp/e"
check "run --stats-file: relative path made absolute" [ -s "$tmp/cwd/out.json" ]
check "run --stats-file: nothing on stderr" [ ! -s "$tmp/e" ]
check "run --stats=json: malloc type" has "$tmp/cwd/out.json" '"type": "malloc"'
if [ -n "$py" ]; then
	check "run --stats=json: valid JSON" "$py" -c "import json,sys; d=json.load(open('$tmp/cwd/out.json')); sys.exit(0 if any(t['type']=='malloc' for t in d['kmalloc']) else 1)"
fi

# run: exit status, signals, environment
"$sk" run -- sh -c 'exit 7'
check "run: exit status passed through" [ $? -eq 7 ]
"$sk" run -- sh -c 'kill -TERM $$'
check "run: death by signal passed through" [ $? -eq 143 ]
"$sk" run -- /nonexistent/program 2>"$tmp/e"
check "run: missing program: 127" sh -c "[ $? -eq 127 ] && grep -q 'cannot execute' '$tmp/e'"
LD_PRELOAD=libdl.so.2 SLABKIT_OPTIONS=zone_cache=4 "$sk" run --stats-shm -- \
    sh -c 'echo "$LD_PRELOAD|$SLABKIT_OPTIONS"' >"$tmp/o" 2>/dev/null
check "run: drop-in first in LD_PRELOAD" [ "$(cut -d'|' -f1 "$tmp/o")" = "$realz:libdl.so.2" ]
check "run: SLABKIT_OPTIONS extended" [ "$(cut -d'|' -f2 "$tmp/o")" = "zone_cache=4,stats_shm" ]

# run: installed layouts (../lib, ../lib/<multiarch>)
for libdir in lib "lib/$multiarch"; do
	rm -rf "$tmp/inst"
	mkdir -p "$tmp/inst/bin" "$tmp/inst/$libdir"
	cp "$sk" "$tmp/inst/bin/slabkit"
	cp "$realz" "$tmp/inst/$libdir/libslabkit-malloc.so"
	"$tmp/inst/bin/slabkit" run -- sh -c 'echo "$LD_PRELOAD"' >"$tmp/o"
	check "run: finds ../$libdir/libslabkit-malloc.so" [ "$(cat "$tmp/o")" = "$tmp/inst/$libdir/libslabkit-malloc.so" ]
done
rm -rf "$tmp/inst"
mkdir -p "$tmp/inst/bin"
cp "$sk" "$tmp/inst/bin/slabkit"
if ! "$tmp/inst/bin/slabkit" version | grep -q 'drop-in: /'; then
	"$tmp/inst/bin/slabkit" run -- true 2>"$tmp/e"
	check "run: no drop-in anywhere: exit 2 and a message" sh -c "[ $? -eq 2 ] && grep -q 'cannot find libslabkit-malloc.so' '$tmp/e'"
fi

# bench: argument parsing; bench/run.sh relative to the executable, in
# SLABKIT_SOURCE_DIR or installed; Ctrl-C.
mkdir -p "$tmp/tree/build/release"
cp "$sk" "$tmp/tree/build/release/slabkit"
tsk=$tmp/tree/build/release/slabkit
"$tsk" bench 2>"$tmp/e"
check "bench: no run.sh: exit 2 and a message" sh -c "[ $? -eq 2 ] && grep -q 'cannot find bench/run.sh' '$tmp/e'"
mkdir -p "$tmp/tree/bench"
printf '#!/bin/sh\necho "run.sh: $*"\ntouch "%s/ran"\nexit 5\n' "$tmp" >"$tmp/tree/bench/run.sh"
chmod +x "$tmp/tree/bench/run.sh"
"$tsk" bench --help >"$tmp/o" 2>&1
check "bench --help: exit 0, usage, runs nothing" sh -c "[ $? -eq 0 ] && grep -q 'usage: slabkit bench' '$tmp/o' && grep -q -- '--quick' '$tmp/o' && [ ! -e '$tmp/ran' ]"
"$tsk" bench --frob >"$tmp/o" 2>"$tmp/e"
check "bench --frob: exit 2, runs nothing" sh -c "[ $? -eq 2 ] && grep -q 'unknown option --frob' '$tmp/e' && [ ! -e '$tmp/ran' ]"
"$tsk" bench stray >/dev/null 2>"$tmp/e"
check "bench with a stray argument: exit 2" sh -c "[ $? -eq 2 ] && [ ! -e '$tmp/ran' ]"
"$tsk" bench --runs x >/dev/null 2>"$tmp/e"
check "bench --runs x: exit 2" sh -c "[ $? -eq 2 ] && [ ! -e '$tmp/ran' ]"
"$tsk" bench --quick --runs 2 --only 'a|b' --skip=callgrind >"$tmp/o" 2>&1
check "bench: runs ../../bench/run.sh with the options, its status" sh -c "[ $? -eq 5 ] && [ \"\$(cat '$tmp/o')\" = 'run.sh: --quick --runs 2 --only a|b --skip=callgrind' ]"
chmod -x "$tmp/tree/bench/run.sh"
"$tsk" bench --quick >"$tmp/o" 2>&1
check "bench: a run.sh without x bit runs through sh" [ "$(cat "$tmp/o")" = "run.sh: --quick" ]
mkdir -p "$tmp/src2/bench"
printf 'echo "src2: $*"\n' >"$tmp/src2/bench/run.sh"
SLABKIT_SOURCE_DIR="$tmp/src2" "$tsk" bench --quick >"$tmp/o" 2>&1
check "bench: SLABKIT_SOURCE_DIR wins" [ "$(cat "$tmp/o")" = "src2: --quick" ]
mkdir -p "$tmp/inst2/bin" "$tmp/inst2/share/slabkit/bench"
cp "$sk" "$tmp/inst2/bin/slabkit"
printf 'echo "installed: $*"\n' >"$tmp/inst2/share/slabkit/bench/run.sh"
"$tmp/inst2/bin/slabkit" bench --quick >"$tmp/o" 2>&1
check "bench: finds ../share/slabkit/bench/run.sh (installed)" [ "$(cat "$tmp/o")" = "installed: --quick" ]

# Ctrl-C: the real run.sh, with a Python that sleeps where the runner
# would run; SIGINT to the command as a terminal would send it.
if [ -n "$py" ] && [ -n "$srcdir" ] && [ -d "$builddir/bench" ]; then
	printf '#!/bin/sh\necho started >&2\nexec "%s" -c "import time\nwhile True: time.sleep(0.1)"\n' "$py" >"$tmp/fakepy"
	chmod +x "$tmp/fakepy"
	# (a background job of sh starts with SIGINT ignored: undo that)
	dfl_int() {
		exec "$py" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
	}
	SLABKIT_SOURCE_DIR=$srcdir PYTHON=$tmp/fakepy \
	    dfl_int "$sk" bench --quick --build-dir "$builddir" \
	    --out "$tmp/bout" >"$tmp/o" 2>"$tmp/e" &
	bp=$!
	n=0
	while [ "$n" -lt 300 ] && ! grep -q started "$tmp/e"; do
		sleep 0.1
		n=$((n + 1))
	done
	kill -INT "$bp"
	reap "$bp"
	check "bench: Ctrl-C: exit 130" [ $rc -eq 130 ]
	check "bench: Ctrl-C: one line, no traceback" sh -c "grep -q 'interrupted' '$tmp/e' && [ \$(grep -c interrupted '$tmp/e') -eq 1 ] && ! grep -q Traceback '$tmp/e'"
	check "bench: Ctrl-C: progress was shown" has "$tmp/e" 'bench: \[2/3\]'
	# the killed runner may take a moment to be reaped on a loaded machine
	n=0
	while [ "$n" -lt 100 ] && ps -eo args | grep -q "^$py -c import time"; do
		sleep 0.1
		n=$((n + 1))
	done
	check "bench: Ctrl-C: nothing left running" sh -c "! ps -eo args | grep -q '^$py -c import time'"
	# A script that does not catch the signal: the command says it.
	printf 'sleep 30\n' >"$tmp/src2/bench/run.sh"
	SLABKIT_SOURCE_DIR="$tmp/src2" dfl_int "$sk" bench >/dev/null \
	    2>"$tmp/e" &
	bp=$!
	sleep 0.5
	kill -INT "$bp"
	reap "$bp"
	check "bench: Ctrl-C, script killed: exit 130 and one line" sh -c "[ $rc -eq 130 ] && [ \"\$(cat '$tmp/e')\" = 'slabkit: bench: interrupted' ]"
else
	echo "skip bench Ctrl-C checks (no python3 or no source/build tree)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
