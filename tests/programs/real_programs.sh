#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Real programs on the malloc(3) drop-in, compared with the same run on
# glibc's malloc.
#
# usage: real_programs.sh check NAME SLABKIT SRCDIR BINDIR
#        real_programs.sh measure NAME SLABKIT SRCDIR BINDIR [RUNS]
#
# NAME is one of python3, python3-malloc (PYTHONMALLOC=malloc: every object
# from malloc), sqlite3, lua5.4, redis, git, threads.  SLABKIT is the
# slabkit command (its `run' preloads the drop-in beside it), SRCDIR this
# directory, BINDIR where mt_workload was built.
#
# check: runs NAME once on glibc and once with `slabkit run --stats=json',
# then checks that the exit status and standard output are identical, that
# the drop-in really served the program (the statistics its processes
# print at exit show the "malloc" type with many requests), and that
# slabkit reported nothing ("slabkit: ..." lines) on stderr.
# Prints "N passed, N failed"; exits 77 (skip) when the program is missing.
#
# measure: RUNS (default 5) alternating runs of each after a warm-up, and
# the median wall time and peak RSS (/usr/bin/time -f '%e %M') of each
# allocator, with slabkit's ratios to glibc.
set -u
mode=$1 name=$2 slabkit=$3 src=$4 bin=$5 runs=${6:-5}
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slabkit-programs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

ok() {
	passed=$((passed + 1))
	echo "ok   $1"
}

bad() {
	failed=$((failed + 1))
	echo "FAIL $1"
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit $?
}

skip() {
	echo "skipped: $1"
	echo "0 passed, 0 failed"
	exit 77
}

# The Debian package's binary when there is one (not a pyenv shim).
prog() {
	if [ -x "/usr/bin/$1" ]; then
		echo "/usr/bin/$1"
	else
		command -v "$1" 2>/dev/null
	fi
}

# run ALLOC DIR CMD...: CMD on glibc or slabkit; stdout, stderr, status
# (and with timing, "%e %M") under DIR.
timing=
run() {
	alloc=$1 out=$2
	shift 2
	mkdir -p "$out"
	if [ "$alloc" = slabkit ]; then
		if [ -n "$timing" ]; then
			set -- "$slabkit" run -- "$@"
		else
			# Statistics to stderr: every process of a
			# pipeline adds its own table.
			set -- "$slabkit" run --stats=json -- "$@"
		fi
	fi
	if [ -n "$timing" ]; then
		set -- /usr/bin/time -f '%e %M' -o "$out/time" "$@"
	fi
	"$@" >"$out/stdout" 2>"$out/stderr" </dev/null
	echo $? >"$out/status"
}

# workload ALLOC DIR: NAME's job.
workload() {
	case $name in
	python3)
		run "$1" "$2" "$py" "$src/churn.py" 4 ;;
	python3-malloc)
		run "$1" "$2" env PYTHONMALLOC=malloc "$py" "$src/churn.py" 3 ;;
	sqlite3)
		run "$1" "$2" "$sq" :memory: ".read $src/sqlite_load.sql" ;;
	lua5.4)
		run "$1" "$2" "$lua" "$src/binary_trees.lua" 14 ;;
	threads)
		run "$1" "$2" "$bin/mt_workload" 3 ;;
	git)
		rm -rf "$2/work"
		mkdir -p "$2/work"
		run "$1" "$2" sh "$src/git_workload.sh" "$2/work" ;;
	redis)
		rm -rf "$2/work"
		mkdir -p "$2/work"
		run "$1" "$2" sh "$src/redis_workload.sh" "$2/work" ;;
	*)
		echo "unknown program $name" >&2
		exit 2 ;;
	esac
}

py=$(prog python3)
sq=$(prog sqlite3)
lua=$(prog lua5.4)
case $name in
python3 | python3-malloc) [ -n "$py" ] || skip "python3 not installed" ;;
sqlite3) [ -n "$sq" ] || skip "sqlite3 not installed" ;;
lua5.4) [ -n "$lua" ] || skip "lua5.4 not installed" ;;
git) [ -n "$(prog git)" ] || skip "git not installed" ;;
redis)
	for p in redis-server redis-cli redis-benchmark; do
		[ -n "$(prog $p)" ] || skip "$p not installed"
	done ;;
threads) [ -x "$bin/mt_workload" ] || skip "mt_workload not built" ;;
esac
[ -x "$slabkit" ] || skip "no slabkit command at $slabkit"

if [ "$mode" = measure ]; then
	command -v /usr/bin/time >/dev/null || skip "/usr/bin/time missing"
	timing=1
	workload glibc "$tmp/warm-g"
	workload slabkit "$tmp/warm-s"
	i=0
	while [ "$i" -lt "$runs" ]; do
		for alloc in glibc slabkit; do
			workload "$alloc" "$tmp/$alloc-$i"
			if [ "$(cat "$tmp/$alloc-$i/status")" != 0 ]; then
				echo "$name on $alloc failed:" >&2
				cat "$tmp/$alloc-$i/stderr" >&2
				exit 1
			fi
			tail -1 "$tmp/$alloc-$i/time" >>"$tmp/$alloc.times"
		done
		i=$((i + 1))
	done
	med() { # column of ALLOC.times -> median
		cut -d' ' -f"$2" "$tmp/$1.times" | sort -n |
		    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
	}
	gt=$(med glibc 1) gm=$(med glibc 2) st=$(med slabkit 1) sm=$(med slabkit 2)
	awk -v n="$name" -v r="$runs" -v gt="$gt" -v gm="$gm" -v st="$st" \
	    -v sm="$sm" 'BEGIN {
		printf "%-15s runs %d  glibc %6.2f s %8d KiB  slabkit %6.2f s %8d KiB  time x%.2f  rss x%.2f\n",
		    n, r, gt, gm, st, sm, (gt > 0 ? st / gt : 0),
		    (gm > 0 ? sm / gm : 0)
	}'
	exit 0
fi

workload glibc "$tmp/glibc"
workload slabkit "$tmp/slabkit"
gs=$(cat "$tmp/glibc/status")
ss=$(cat "$tmp/slabkit/status")
if [ "$gs" = "$ss" ]; then
	ok "$name: same exit status ($ss)"
else
	bad "$name: exit status $ss on slabkit, $gs on glibc"
	sed 's/^/  slabkit stderr: /' "$tmp/slabkit/stderr" | tail -20
fi
if [ "$gs" = 0 ]; then
	ok "$name: succeeds on glibc"
else
	bad "$name: fails on glibc too (status $gs)"
	sed 's/^/  glibc stderr: /' "$tmp/glibc/stderr" | tail -20
fi
if cmp -s "$tmp/glibc/stdout" "$tmp/slabkit/stdout" &&
    [ -s "$tmp/glibc/stdout" ]; then
	ok "$name: same output ($(wc -l <"$tmp/glibc/stdout") lines)"
else
	bad "$name: output differs"
	diff "$tmp/glibc/stdout" "$tmp/slabkit/stdout" | head -20
fi
# The drop-in served it: the statistics printed at exit name the "malloc"
# type with many requests (the largest of all processes that printed).
reqs=$(grep -o '"type": "malloc"[^}]*"requests": [0-9]*' \
    "$tmp/slabkit/stderr" | sed 's/.*: //' | sort -n | tail -1)
if [ -n "$reqs" ] && [ "$reqs" -ge 1000 ]; then
	ok "$name: served by the drop-in ($reqs malloc requests)"
else
	bad "$name: no drop-in statistics (requests '${reqs}')"
fi
if grep -q '^slabkit: ' "$tmp/slabkit/stderr"; then
	bad "$name: slabkit complained"
	grep '^slabkit: ' "$tmp/slabkit/stderr" | head -5
else
	ok "$name: slabkit silent on stderr"
fi
finish
