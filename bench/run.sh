#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh: slabkit's benchmark suite against glibc, jemalloc, mimalloc
# and tcmalloc, side by side (see bench/README.md).
#
#   ./bench/run.sh                       full run on build/release
#   ./bench/run.sh --quick               3 runs, smaller sizes (a few minutes)
#   ./bench/run.sh --build-dir build/bench-rel --only 'larson|redis'
#   ./bench/run.sh --help
#
# Options (each also read from the environment variable in brackets):
# --quick [QUICK=1], --runs N [RUNS], --only REGEX [ONLY], --skip LIST
# [SKIP: workloads,programs,native,callgrind,profiles], --out DIR
# [OUT_DIR, default bench/results], --build-dir DIR [BUILD_DIR, default
# build/release, must be built].  CC (default cc), PYTHON (python3).
#
# Installed (`slabkit bench' runs the copy in <datadir>/slabkit/bench), the
# script reads install.conf beside it for the installed library, headers
# and workload programs, and writes the report under ./slabkit-bench.
#
# Writes OUT_DIR/<date>-<host>[-quick].{json,md,png}: raw results, the
# report and its chart.  Ctrl-C stops the run cleanly (exit 130).
set -eu

here=$(cd "$(dirname "$0")" && pwd)

usage() {
	cat <<EOF
usage: $0 [--quick] [--runs N] [--only REGEX] [--skip LIST] [--out DIR]
       [--build-dir DIR]
(see the comment at the top of this script, or bench/README.md)
EOF
}

while [ $# -gt 0 ]; do
	opt=$1
	case $opt in
	--*=*) val=${opt#*=} opt=${opt%%=*} ;;
	--runs | --only | --skip | --out | --build-dir)
		[ $# -ge 2 ] || { echo "bench: $opt needs a value" >&2; exit 2; }
		val=$2
		shift
		;;
	esac
	case $opt in
	-h | --help) usage; exit 0 ;;
	--quick) QUICK=1 ;;
	--runs) RUNS=$val ;;
	--only) ONLY=$val ;;
	--skip) SKIP=$val ;;
	--out) OUT_DIR=$val ;;
	--build-dir) BUILD_DIR=$val ;;
	*) echo "bench: unknown option $opt" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

QUICK=${QUICK:-0}
CC=${CC:-cc}
PYTHON=${PYTHON:-python3}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/slabkit-bench.XXXXXX")
child=

# Every process below $1 (the runner starts its programs in their own
# sessions, so a process group does not reach them).
descendants() {
	ps -eo pid=,ppid= 2>/dev/null | awk -v root="$1" '
	    { parent[$1] = $2 }
	    END {
		found[root] = 1
		do {
			more = 0
			for (p in parent)
				if (!(p in found) && (parent[p] in found)) {
					found[p] = 1
					more = 1
				}
		} while (more)
		for (p in found) if (p != root) print p
	    }'
}

interrupted() {
	trap '' INT TERM HUP
	if [ -n "$child" ]; then
		# shellcheck disable=SC2046
		kill -TERM "$child" $(descendants "$child") 2>/dev/null || :
		wait "$child" 2>/dev/null || :
	fi
	rm -rf "$scratch"
	echo "bench: interrupted; no report written" >&2
	exit 130
}
trap interrupted INT TERM HUP
trap 'rm -rf "$scratch"' EXIT

# Run a step in the background and wait for it, so a signal reaches the
# trap at once.  Children of a non-interactive shell start with SIGINT
# ignored, so Python never turns a Ctrl-C into a traceback; the trap
# stops them with SIGTERM instead.
step() {
	"$@" &
	child=$!
	wait "$child" || { rc=$?; child=; return "$rc"; }
	child=
}

if [ -f "$here/install.conf" ]; then
	# An installed copy: a build-tree layout made of the installed files.
	# shellcheck disable=SC1091
	. "$here/install.conf" # SK_LIBDIR, SK_INCLUDEDIR, SK_BENCH_BINDIR
	incdir=$SK_INCLUDEDIR
	if [ -z "${BUILD_DIR:-}" ]; then
		BUILD_DIR=$scratch/build
		mkdir -p "$BUILD_DIR"
		ln -s "$SK_BENCH_BINDIR" "$BUILD_DIR/bench"
		for lib in libslabkit-malloc.so libslabkit.a; do
			for f in "$SK_LIBDIR/$lib" "$SK_LIBDIR/$lib.0"; do
				if [ -e "$f" ]; then
					ln -s "$f" "$BUILD_DIR/$lib"
					break
				fi
			done
		done
	fi
	OUT_DIR=${OUT_DIR:-slabkit-bench}
else
	root=$(dirname "$here")
	cd "$root"
	incdir=$root/include
	BUILD_DIR=${BUILD_DIR:-build/release}
	OUT_DIR=${OUT_DIR:-bench/results}
fi

if [ ! -d "$BUILD_DIR/bench" ]; then
	echo "bench: $BUILD_DIR/bench not found: build first" \
	    "(make bench, or cmake --build $BUILD_DIR)" >&2
	exit 1
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
	echo "bench: python3 is needed to run and report" >&2
	exit 1
fi

# Helper programs for callgrind and the preload check, built here with cc
# (they are not part of the CMake build: see bench/callgrind/).
echo "bench: [1/3] building the helper programs" >&2
tools=$scratch/tools
[ -w "$BUILD_DIR" ] && tools=$BUILD_DIR/bench-tools
mkdir -p "$tools"
cflags="-std=gnu11 -O2 -g -fno-builtin -Wall"
build_tool() {
	name=$1
	shift
	# shellcheck disable=SC2086 # word splitting of CC and cflags wanted
	if ! step $CC $cflags -o "$tools/$name" "$here/callgrind/$name.c" "$@" \
	    2>"$tools/$name.log"; then
		rm -f "$tools/$name"
		echo "bench: $name not built (see $tools/$name.log)" >&2
	fi
}
build_tool measure
build_tool preload_check
build_tool malloc_pair
for p in kmalloc_pair objcache_pair zone_pair; do
	build_tool $p -I"$incdir" "$BUILD_DIR/libslabkit.a" -lpthread
done
for t in measure preload_check; do
	[ -x "$tools/$t" ] || { echo "bench: $t not built" >&2; exit 1; }
done

stem=$(date +%F)-$(hostname -s 2>/dev/null || hostname)
args=""
if [ "$QUICK" = 1 ]; then
	stem=$stem-quick
	args="--quick"
fi
[ -n "${RUNS:-}" ] && args="$args --runs $RUNS"
mkdir -p "$OUT_DIR"
json=$OUT_DIR/$stem.json
cmd="./bench/run.sh${BUILD_DIR:+ --build-dir $BUILD_DIR}"
[ "$QUICK" = 1 ] && cmd="$cmd --quick"
# shellcheck disable=SC2016 # quoted for the report, not expanded
cmd="$cmd${RUNS:+ --runs $RUNS}${ONLY:+ --only '$ONLY'}${SKIP:+ --skip $SKIP}"

if [ "$QUICK" = 1 ]; then
	echo "bench: [2/3] running the suite, quick mode (a few minutes;" \
	    "progress below, Ctrl-C stops)" >&2
else
	echo "bench: [2/3] running the full suite (a quarter of an hour or" \
	    "more; --quick for a short run; progress below, Ctrl-C stops)" >&2
fi
# shellcheck disable=SC2086
step "$PYTHON" "$here/runner.py" --build-dir "$BUILD_DIR" --tools "$tools" \
    --out "$json" --only "${ONLY:-}" --skip "${SKIP:-}" \
    --command "$cmd" $args
echo "bench: [3/3] writing the report" >&2
step "$PYTHON" "$here/report.py" "$json"
echo "bench: report in $OUT_DIR/$stem.md"
