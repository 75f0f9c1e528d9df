#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Build tests/fuzz/fuzz_ops.c with clang and libFuzzer against the library
# sources (whatever compiler the main build uses), then run it for a
# bounded time from the committed corpus.  Prints "N passed, N failed";
# exits 77 (skipped) when clang or libFuzzer is missing.
#
# run_fuzz.sh SOURCE_DIR WORK_DIR [SECONDS]
#   CLANG=...            the compiler (default: clang on PATH)
#   SK_FUZZ_SECONDS=N    run time (default 20, or the third argument)
set -u
src=$1
work=$2
secs=${SK_FUZZ_SECONDS:-${3:-20}}
cc=${CLANG:-$(command -v clang 2>/dev/null)}

if [ -z "$cc" ] || ! [ -x "$cc" ]; then
	echo "skipped: clang not found"
	exit 77
fi
mkdir -p "$work" || exit 2
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$work/probe.c"
if ! "$cc" -fsanitize=fuzzer,address "$work/probe.c" -o "$work/probe" \
    >"$work/probe.log" 2>&1; then
	echo "skipped: $cc cannot link -fsanitize=fuzzer (libFuzzer missing)"
	sed 's/^/  /' "$work/probe.log" | head -n 5
	exit 77
fi

# The library without the malloc drop-in, compiled as CMake does.
sources=$(ls "$src"/src/*.c "$src"/src/os/*.c | grep -v '/src/malloc\.c$')
bin=$work/fuzz_ops
rebuild=1
if [ -x "$bin" ]; then
	rebuild=0
	for f in $sources "$src"/src/*.h "$src"/src/os/*.h \
	    "$src"/include/slabkit/*.h "$src"/tests/fuzz/fuzz_ops.c; do
		[ "$f" -nt "$bin" ] && rebuild=1
	done
fi
if [ $rebuild -eq 1 ]; then
	echo "building $bin with $cc"
	# shellcheck disable=SC2086
	if ! "$cc" -std=gnu11 -O1 -g -fno-omit-frame-pointer \
	    -fsanitize=fuzzer,address -fvisibility=hidden \
	    -DSLABKIT_BUILDING=1 -Wall -Wno-unused-parameter \
	    -I"$src/include" -I"$src/src" $sources \
	    "$src/tests/fuzz/fuzz_ops.c" -o "$bin.tmp" -lpthread; then
		echo "FAIL: the harness does not build"
		echo "0 passed, 1 failed"
		exit 1
	fi
	mv "$bin.tmp" "$bin"
fi

# New inputs go to a scratch corpus; the committed one is read only.
rm -rf "$work/corpus" "$work/crashes"
mkdir -p "$work/corpus" "$work/crashes"
echo "running $bin for $secs s, seed 1"
"$bin" -max_total_time="$secs" -seed=1 -timeout=10 -rss_limit_mb=4096 \
    -max_len=4096 -artifact_prefix="$work/crashes/" -print_final_stats=1 \
    "$work/corpus" "$src/tests/fuzz/corpus" >"$work/fuzz.log" 2>&1
status=$?
grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus)' \
    "$work/fuzz.log" | sed 's/^/  /'
if [ $status -ne 0 ]; then
	tail -n 40 "$work/fuzz.log"
	ls "$work/crashes" 2>/dev/null | sed 's/^/  artifact: /'
	echo "FAIL: libFuzzer exited with status $status"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
exit 0
