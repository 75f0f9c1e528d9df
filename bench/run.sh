#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh: slabkit's benchmark suite against glibc, jemalloc, mimalloc
# and tcmalloc, side by side (see bench/README.md and BENCHMARKS.md).
#
#   ./bench/run.sh                       full run on build/release
#   BUILD_DIR=build/bench-rel ./bench/run.sh
#   QUICK=1 ./bench/run.sh               3 runs, smaller sizes (a minute or two)
#
# Variables: BUILD_DIR (default build/release, must be built), QUICK=1,
# RUNS (counted runs per allocator, default 5, 3 when QUICK), ONLY (regex
# on case names), SKIP (comma list of workloads,programs,native,callgrind,
# profiles), OUT_DIR (default bench/results), CC (default cc).
#
# Writes OUT_DIR/<date>-<host>[-quick].{json,md,png}: raw results, the
# report and its chart.  Run `make bench` for the whole thing (it installs
# the peers when it can and builds the release preset first).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

BUILD_DIR=${BUILD_DIR:-build/release}
QUICK=${QUICK:-0}
OUT_DIR=${OUT_DIR:-bench/results}
CC=${CC:-cc}
PYTHON=${PYTHON:-python3}

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
tools=$BUILD_DIR/bench-tools
mkdir -p "$tools"
cflags="-std=gnu11 -O2 -g -fno-builtin -Wall"
build_tool() {
	name=$1
	shift
	# shellcheck disable=SC2086 # word splitting of CC and cflags wanted
	if ! $CC $cflags -o "$tools/$name" "bench/callgrind/$name.c" "$@" \
	    2>"$tools/$name.log"; then
		rm -f "$tools/$name"
		echo "bench: $name not built (see $tools/$name.log)" >&2
	fi
}
build_tool measure
build_tool preload_check
build_tool malloc_pair
for p in kmalloc_pair objcache_pair zone_pair; do
	build_tool $p -Iinclude "$BUILD_DIR/libslabkit.a" -lpthread
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
cmd="BUILD_DIR=$BUILD_DIR QUICK=$QUICK${RUNS:+ RUNS=$RUNS}${ONLY:+ ONLY=$ONLY}"
cmd="$cmd${SKIP:+ SKIP=$SKIP} ./bench/run.sh"

# shellcheck disable=SC2086
"$PYTHON" bench/runner.py --build-dir "$BUILD_DIR" --tools "$tools" \
    --out "$json" --only "${ONLY:-}" --skip "${SKIP:-}" \
    --command "$cmd" $args
"$PYTHON" bench/report.py "$json"
echo "bench: report in $OUT_DIR/$stem.md"
