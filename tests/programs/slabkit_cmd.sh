#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The slabkit command: run (preload, statistics, exit status, environment,
# build and installed layouts), stat (live statistics of a running
# process), bench (finding bench/run.sh), version and help.
# usage: slabkit_cmd.sh SLABKIT DROPIN MT_WORKLOAD
# (mt_workload: a program that exits through exit() and leaves stderr
# open, so the at-exit tables can be seen; dash and coreutils do not.)
set -u
sk=$1 lib=$2 mt=$3
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slabkit-cmd.XXXXXX")
bgpid=
cleanup() {
	[ -n "$bgpid" ] && kill -9 "$bgpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
unset SLABKIT_OPTIONS SLABKIT_SOURCE_DIR LD_PRELOAD

check() { # DESCRIPTION COMMAND...: passes when COMMAND succeeds
	d=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok   $d"
	else
		failed=$((failed + 1))
		echo "FAIL $d"
	fi
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
for libdir in lib lib/x86_64-linux-gnu; do
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

# bench: bench/run.sh relative to the executable or SLABKIT_SOURCE_DIR
mkdir -p "$tmp/tree/build/release"
cp "$sk" "$tmp/tree/build/release/slabkit"
"$tmp/tree/build/release/slabkit" bench 2>"$tmp/e"
check "bench: no run.sh: exit 2 and a message" sh -c "[ $? -eq 2 ] && grep -q 'cannot find bench/run.sh' '$tmp/e'"
mkdir -p "$tmp/tree/bench"
printf '#!/bin/sh\necho "run.sh: $*"\nexit 5\n' >"$tmp/tree/bench/run.sh"
chmod +x "$tmp/tree/bench/run.sh"
"$tmp/tree/build/release/slabkit" bench --quick x >"$tmp/o" 2>&1
check "bench: runs ../../bench/run.sh with the arguments" sh -c "[ $? -eq 5 ] && [ \"\$(cat '$tmp/o')\" = 'run.sh: --quick x' ]"
chmod -x "$tmp/tree/bench/run.sh"
"$tmp/tree/build/release/slabkit" bench y >"$tmp/o" 2>&1
check "bench: a run.sh without x bit runs through sh" [ "$(cat "$tmp/o")" = "run.sh: y" ]
mkdir -p "$tmp/src2/bench"
printf 'echo "src2: $*"\n' >"$tmp/src2/bench/run.sh"
SLABKIT_SOURCE_DIR="$tmp/src2" "$tmp/tree/build/release/slabkit" bench z >"$tmp/o" 2>&1
check "bench: SLABKIT_SOURCE_DIR wins" [ "$(cat "$tmp/o")" = "src2: z" ]

# stat: live statistics of a running process
sleep 3 &
plain=$!
"$sk" stat "$plain" >/dev/null 2>"$tmp/e"
check "stat: process without stats_shm: exit 1 and why" sh -c "[ $? -eq 1 ] && grep -q 'publishes no statistics' '$tmp/e'"
kill "$plain" 2>/dev/null
wait "$plain" 2>/dev/null
if [ -n "$py" ]; then
	mkfifo "$tmp/fifo"
	PYTHONMALLOC=malloc "$sk" run --stats-shm -- "$py" -c '
import sys
keep = [str(i) * 3 for i in range(200000)]
print("ready", flush=True)
sys.stdin.read()
' <"$tmp/fifo" >"$tmp/o" 2>"$tmp/e" &
	bgpid=$!
	exec 9>"$tmp/fifo"
	n=0
	while [ "$n" -lt 100 ] && ! { [ -f "/dev/shm/slabkit.$bgpid" ] &&
	    has "$tmp/o" ready; }; do
		sleep 0.1
		n=$((n + 1))
	done
	sleep 0.7 # one more rewrite after "ready"
	"$sk" stat "$bgpid" >"$tmp/s" 2>"$tmp/e"
	check "stat PID: exit 0" [ $? -eq 0 ]
	check "stat PID: names the process" has "$tmp/s" "^process $bgpid (python3"
	check "stat PID: kmalloc table" has "$tmp/s" 'Memory statistics by type'
	inuse=$(awk '$1 == "malloc" { print $2 }' "$tmp/s")
	check "stat PID: live malloc blocks (${inuse:-none} >= 200000)" [ "${inuse:-0}" -ge 200000 ]
	check "stat PID: fresh" sh -c "! grep -q 'last updated' '$tmp/e'"
	"$sk" stat --json "$bgpid" >"$tmp/j"
	check "stat --json PID: valid JSON" "$py" -c "import json,sys; d=json.load(open('$tmp/j')); sys.exit(0 if any(t['type']=='malloc' and t['inuse']>=200000 for t in d['kmalloc']) else 1)"
	"$sk" stat >"$tmp/l"
	check "stat: lists the process" sh -c "grep -q '^ *$bgpid .*running' '$tmp/l'"
	exec 9>&-
	wait "$bgpid"
	check "stat: the program exits normally" [ $? -eq 0 ]
	check "stat: the file is removed at exit" [ ! -e "/dev/shm/slabkit.$bgpid" ]
	"$sk" stat "$bgpid" >/dev/null 2>"$tmp/e"
	check "stat: gone process: exit 1" sh -c "[ $? -eq 1 ] && grep -q 'no process' '$tmp/e'"
	gone=$bgpid
	bgpid=
	# A process killed by a signal leaves its file; stat says so.
	"$sk" run --stats-shm -- "$py" -c 'import time; time.sleep(30)' &
	bgpid=$!
	n=0
	while [ "$n" -lt 50 ] && [ ! -f "/dev/shm/slabkit.$bgpid" ]; do
		sleep 0.1
		n=$((n + 1))
	done
	kill -9 "$bgpid"
	wait "$bgpid" 2>/dev/null
	"$sk" stat "$bgpid" >/dev/null 2>"$tmp/e"
	check "stat: killed process: exit 1, file left over" sh -c "[ $? -eq 1 ] && grep -q 'is gone' '$tmp/e'"
	rm -f "/dev/shm/slabkit.$bgpid" "/dev/shm/slabkit.$gone"
	bgpid=
else
	echo "skip stat checks (no python3)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
