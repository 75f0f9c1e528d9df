#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# `slabkit stat': live statistics of running processes, and the attacks
# they must withstand.  A process started with stats_shm publishes a
# sealed memfd that `slabkit stat' reads through /proc/PID/fd; these
# checks make sure that
#  - it works (tables, JSON, the listing, `-w' rates with `-c');
#  - nothing is ever written to /dev/shm, and nothing is left behind by a
#    process that ends through _exit or a signal;
#  - files planted under the old names (a FIFO, a sparse 8 GiB file, a
#    forged file with terminal escapes, a name taken before the process
#    starts) change nothing and block nothing;
#  - a process publishing hostile memfds of its own (another pid, no
#    seals, 8 GiB, terminal escapes, an escape in its command name) is
#    refused or printed sanitised, never blocks the reader;
#  - a forked child does not show its parent's figures;
#  - another user cannot read them (when run as root, with setpriv).
# usage: slabkit_stat.sh SLABKIT
set -u
sk=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slabkit-stat.XXXXXX")
pids=
planted=
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	# shellcheck disable=SC2086
	[ -n "$planted" ] && rm -f $planted
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
unset SLABKIT_OPTIONS SLABKIT_SOURCE_DIR LD_PRELOAD

# shellcheck source=check.sh
. "$(dirname "$0")/check.sh"
has() { grep -q -- "$2" "$1"; }
# No byte outside printable ASCII, tab and newline (no escape sequence).
clean() { ! LC_ALL=C grep -q '[^[:print:][:space:]]' "$1"; }
wait_for() { # FILE TEXT: up to 30 s (a loaded CI machine)
	n=0
	while [ "$n" -lt 300 ] && ! grep -q -- "$2" "$1" 2>/dev/null; do
		sleep 0.1
		n=$((n + 1))
	done
}

py=
if [ -x /usr/bin/python3 ]; then
	py=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1; then
	py=$(command -v python3)
fi
if [ -z "$py" ]; then
	echo "skip: python3 is needed for the long-running processes"
	exit 77
fi

# A process without stats_shm.
sleep 5 &
plain=$!
pids="$pids $plain"
"$sk" stat "$plain" >/dev/null 2>"$tmp/e"
check "process without stats_shm: exit 1 and why" sh -c "[ $? -eq 1 ] && grep -q 'publishes no statistics' '$tmp/e'"
"$sk" stat 999999999 >/dev/null 2>"$tmp/e"
check "no such process: exit 1" sh -c "[ $? -eq 1 ] && grep -q 'no process' '$tmp/e'"

# The victim: python3 on the drop-in with 200000 live blocks.
mkfifo "$tmp/fifo"
PYTHONMALLOC=malloc "$sk" run --stats-shm -- "$py" -c '
import sys
keep = [str(i) * 3 for i in range(200000)]
print("ready", flush=True)
sys.stdin.read()
' <"$tmp/fifo" >"$tmp/victim.out" 2>"$tmp/victim.err" &
victim=$!
pids="$pids $victim"
exec 9>"$tmp/fifo"
wait_for "$tmp/victim.out" ready
sleep 0.7 # one more snapshot after "ready"

# Files under the old names: a FIFO, a sparse 8 GiB file, a forged file
# with terminal escapes, for the victim and for another pid.
mkfifo "/dev/shm/slabkit.$victim" 2>/dev/null &&
	planted="$planted /dev/shm/slabkit.$victim"
truncate -s 8G "/dev/shm/slabkit.$plain" 2>/dev/null &&
	planted="$planted /dev/shm/slabkit.$plain"
printf 'slabkit-stats 1\npid %s\n\033[2J\033]0;owned\007FORGED\n' "$victim" \
    >"/dev/shm/.slabkit.$victim.tmp" 2>/dev/null &&
	planted="$planted /dev/shm/.slabkit.$victim.tmp"

timeout 20 "$sk" stat "$victim" >"$tmp/s" 2>"$tmp/e"
rc=$?
check "stat PID: exit 0 (FIFO planted at the old name: no hang)" [ $rc -eq 0 ]
check "stat PID: names the process" has "$tmp/s" "^process $victim (python3"
check "stat PID: kmalloc table" has "$tmp/s" 'Memory statistics by type'
inuse=$(awk '$1 == "malloc" { print $2 }' "$tmp/s")
check "stat PID: live malloc blocks (${inuse:-none} >= 200000)" [ "${inuse:-0}" -ge 200000 ]
check "stat PID: fresh" sh -c "! grep -q 'last updated' '$tmp/e'"
check "stat PID: not the forged text" sh -c "! grep -q FORGED '$tmp/s'"
check "stat PID: sanitised" clean "$tmp/s"
timeout 20 "$sk" stat --json "$victim" >"$tmp/j"
check "stat --json PID: valid JSON" "$py" -c "import json,sys; d=json.load(open('$tmp/j')); sys.exit(0 if any(t['type']=='malloc' and t['inuse']>=200000 for t in d['kmalloc']) else 1)"
timeout 20 "$sk" stat >"$tmp/l" 2>&1
rc=$?
check "stat: listing does not hang on planted files" [ $rc -ne 124 ]
check "stat: lists the victim" sh -c "grep -q '^ *$victim .*python3' '$tmp/l'"
check "stat: does not list the sparse file's pid" sh -c "! grep -q '^ *$plain ' '$tmp/l'"
# shellcheck disable=SC2086
[ -n "$planted" ] && rm -f $planted
planted=
check "no file of the victim's in /dev/shm" sh -c "! ls -a /dev/shm | grep -q 'slabkit.*$victim'"

# -w SECONDS -c N: a refreshing view with rates.
timeout 30 "$sk" stat -w 0.5 -c 3 "$victim" >"$tmp/w" 2>"$tmp/e"
rc=$?
check "stat -w 0.5 -c 3: exit 0" [ $rc -eq 0 ]
check "stat -w: three samples" [ "$(grep -c "^process $victim " "$tmp/w")" -eq 3 ]
check "stat -w: rate columns" has "$tmp/w" 'Req/s'
check "stat -w: a rate for malloc after the first sample" sh -c "awk '\$1 == \"malloc\" { n++; if (n > 1 && \$5 ~ /^[0-9]+\$/) ok = 1 } END { exit !ok }' '$tmp/w'"
"$sk" stat -w 0 "$victim" >/dev/null 2>&1
check "stat -w 0: usage error, exit 2" [ $? -eq 2 ]
"$sk" stat -c 2 >/dev/null 2>&1
check "stat -c without a PID: exit 2" [ $? -eq 2 ]

# Another user may not read them (ptrace access to the process).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
    setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$sk" stat "$victim" >"$tmp/o" 2>"$tmp/e"
	check "another user: exit 1, not allowed" sh -c "[ $? -eq 1 ] && grep -q 'not allowed to inspect' '$tmp/e'"
	check "another user: no statistics printed" [ ! -s "$tmp/o" ]
	setpriv --reuid=65534 --regid=65534 --clear-groups \
	    "$sk" stat >"$tmp/o" 2>&1
	check "another user: not listed" sh -c "! grep -q '^ *$victim ' '$tmp/o'"
else
	echo "skip another-user checks (not root, or no setpriv)"
fi

# A forked child does not show its parent's figures.
PYTHONMALLOC=malloc "$sk" run --stats-shm -- "$py" -c '
import os, sys, time
time.sleep(0.7)
pid = os.fork()
if pid == 0:
    print("child", os.getpid(), flush=True)
    time.sleep(30)
    os._exit(0)
os.waitpid(pid, 0)
' >"$tmp/fork.out" 2>&1 &
forker=$!
pids="$pids $forker"
wait_for "$tmp/fork.out" child
child=$(awk '/^child/ { print $2 }' "$tmp/fork.out")
"$sk" stat "$child" >/dev/null 2>"$tmp/e"
check "forked child: publishes nothing of its parent's" sh -c "[ $? -eq 1 ] && grep -q 'publishes no statistics' '$tmp/e'"
timeout 20 "$sk" stat "$forker" >/dev/null 2>&1
check "forking parent: still published" [ $? -eq 0 ]
kill -9 "$child" "$forker" 2>/dev/null
wait "$forker" 2>/dev/null

# Hostile publishers: processes that make memfds named slabkit-stats.
# hostile MODE: sealed snapshot for the victim's pid, unsealed, 8 GiB,
# or its own pid with terminal escapes in the tables and in its name.
hostile() {
	"$py" -c '
import fcntl, os, sys, time
mode, victim = sys.argv[1], sys.argv[2]
me = os.getpid()
esc = "\033[2J\033]0;owned\007\033[31m"
def snap(pid, text):
    return ("slabkit-stats 2\npid %d\nseq 1\nupdated %.3f\ninterval_ms 500\n"
            "types 1\n%s\t1\t1\t1\ntext %d\n%sjson 2\n{}" %
            (pid, time.time(), "ev" + esc + "il", len(text), text)).encode()
fd = os.memfd_create("slabkit-stats", os.MFD_ALLOW_SEALING)
seals = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK
if mode == "other":
    os.write(fd, snap(int(victim), "FORGED for the victim\n"))
elif mode == "huge":
    os.ftruncate(fd, 8 << 30)
elif mode == "escapes":
    with open("/proc/self/comm", "w") as f:
        f.write("x\033[2Jy")
    os.write(fd, snap(me, "FORGED " + esc + " text\n"))
else:
    os.write(fd, snap(me, "unsealed\n"))
    seals = 0
if seals:
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
print("ready", flush=True)
time.sleep(30)
' "$1" "$victim" >"$tmp/h.$1.out" 2>&1 &
	hpid=$!
	pids="$pids $hpid"
	# a file of its own: the last publisher's "ready" must not be read
	# before the shell has truncated the file for this one
	wait_for "$tmp/h.$1.out" ready
}
hostile other
timeout 20 "$sk" stat "$hpid" >"$tmp/o" 2>"$tmp/e"
check "memfd claiming another pid: refused" sh -c "[ $? -eq 1 ] && grep -q 'no valid statistics' '$tmp/e'"
timeout 20 "$sk" stat "$victim" >"$tmp/o" 2>&1
check "memfd claiming another pid: the victim's own figures shown" sh -c "grep -q '^ *malloc ' '$tmp/o' && ! grep -q FORGED '$tmp/o'"
kill -9 "$hpid"
hostile unsealed
timeout 20 "$sk" stat "$hpid" >"$tmp/o" 2>"$tmp/e"
check "unsealed memfd: refused" sh -c "[ $? -eq 1 ] && grep -q 'not sealed' '$tmp/e'"
kill -9 "$hpid"
hostile huge
start=$(date +%s)
timeout 20 "$sk" stat "$hpid" >"$tmp/o" 2>"$tmp/e"
rc=$?
check "8 GiB memfd: refused at once" sh -c "[ $rc -eq 1 ] && grep -q 'larger than' '$tmp/e' && [ $(($(date +%s) - start)) -le 5 ]"
timeout 20 "$sk" stat >"$tmp/l" 2>&1
check "8 GiB memfd: listing unaffected" sh -c "[ $? -eq 0 ] && grep -q '^ *$victim ' '$tmp/l' && ! grep -q '^ *$hpid ' '$tmp/l'"
kill -9 "$hpid"
hostile escapes
timeout 20 "$sk" stat "$hpid" >"$tmp/o" 2>"$tmp/e"
rc=$?
check "escapes: printed, exit 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/  stderr: /' "$tmp/e" | LC_ALL=C tr -c '[:print:]\n' '?' 
check "escapes: the text is there" has "$tmp/o" FORGED
check "escapes: no control character reaches the terminal" clean "$tmp/o"
timeout 20 "$sk" stat -w 0.2 -c 1 "$hpid" >"$tmp/o" 2>&1
check "escapes: -w shows the type, escapes as ?" has "$tmp/o" 'ev?\[2J?'
check "escapes: -w no control character" clean "$tmp/o"
timeout 20 "$sk" stat >"$tmp/o" 2>&1
check "escapes: listing sanitised" clean "$tmp/o"
kill -9 "$hpid"

# The victim ends normally: nothing left.
exec 9>&-
wait "$victim"
check "the victim exits normally" [ $? -eq 0 ]
"$sk" stat "$victim" >/dev/null 2>"$tmp/e"
check "ended process: exit 1, no process" sh -c "[ $? -eq 1 ] && grep -q 'no process' '$tmp/e'"

# Ends through _exit, through a signal, as dash: nothing left, not listed.
for how in _exit kill dash; do
	case $how in
	_exit) "$sk" run --stats-shm -- "$py" -c 'import os, time; time.sleep(1); os._exit(0)' & ;;
	kill) "$sk" run --stats-shm -- "$py" -c 'import time; time.sleep(30)' & ;;
	dash) "$sk" run --stats-shm -- sh -c 'sleep 1; exit 0' & ;;
	esac
	p=$!
	pids="$pids $p"
	sleep 0.8
	timeout 20 "$sk" stat "$p" >/dev/null 2>&1
	check "$how: published while running" [ $? -eq 0 ]
	[ "$how" = kill ] && kill -9 "$p"
	wait "$p" 2>/dev/null
	check "$how: nothing in /dev/shm" sh -c "! ls -a /dev/shm | grep -q 'slabkit.*$p'"
	"$sk" stat >"$tmp/l"
	check "$how: not listed" sh -c "! grep -q '^ *$p ' '$tmp/l'"
done

# A name planted before the process starts changes nothing.
sh -c 'echo FORGED >/dev/shm/slabkit.$$ 2>/dev/null; exec "$@"' sh \
    "$sk" run --stats-shm -- "$py" -c 'import time; time.sleep(30)' &
p=$!
pids="$pids $p"
planted="/dev/shm/slabkit.$p"
sleep 0.8
timeout 20 "$sk" stat "$p" >"$tmp/o" 2>&1
check "name planted first: live statistics still on" sh -c "grep -q 'Memory statistics by type' '$tmp/o' && ! grep -q FORGED '$tmp/o'"
kill -9 "$p"
wait "$p" 2>/dev/null
rm -f "/dev/shm/slabkit.$p"
planted=

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
