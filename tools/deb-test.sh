#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# CI check of the Debian packages: build them from a clean copy of the
# tree (make deb), check them with lintian, install them with dpkg -i, then
# build and run consumers against the installed system with pkg-config and
# CMake (the library, kernel include names, the static malloc drop-in, C++)
# and try the command and the manual pages.  The packages are removed at
# the end unless --keep is given.  Needs root (dpkg -i).
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
src=$(pwd)
keep=0
[ "${1:-}" = --keep ] && keep=1
if [ "$(id -u)" != 0 ]; then
	echo "deb-test: needs root (dpkg -i); skipped" >&2
	exit 77
fi
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/slabkit-deb.XXXXXX")
pkgs="slabkit libslabkit-dev libslabkit0"
cleanup() {
	if [ "$keep" = 0 ]; then
		# shellcheck disable=SC2086
		dpkg --purge $pkgs >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

if make deb >"$tmp/make.log" 2>&1; then
	ok "make deb"
else
	tail -30 "$tmp/make.log"
	ko "make deb"
	echo "$pass passed, $fail failed"
	exit 1
fi
debs=
for p in libslabkit0 libslabkit-dev slabkit; do
	f=$(ls build/deb/${p}_*.deb 2>/dev/null | head -1)
	if [ -n "$f" ]; then
		ok "package $p built"
		debs="$debs $f"
	else
		ko "package $p built"
	fi
done
if command -v lintian >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	if lintian --fail-on error,warning $debs >"$tmp/lintian" 2>&1; then
		ok "lintian: no error or warning"
	else
		cat "$tmp/lintian"
		ko "lintian: no error or warning"
	fi
else
	echo "skip lintian (not installed)"
fi
# shellcheck disable=SC2086
if dpkg -i $debs >"$tmp/dpkg.log" 2>&1; then
	ok "dpkg -i"
else
	cat "$tmp/dpkg.log"
	ko "dpkg -i"
fi

# Consumers of the installed packages.
api=$src/tests/api
run() { # NAME COMPILER SOURCE [FLAGS...] -- MODULES...
	name=$1 comp=$2 source=$3
	shift 3
	flags=
	while [ "$1" != -- ]; do flags="$flags $1"; shift; done
	shift
	# shellcheck disable=SC2046,SC2086
	if $comp $flags -o "$tmp/$name" "$source" \
	    $(pkg-config --cflags --libs "$@") >"$tmp/$name.out" 2>&1 &&
	    "$tmp/$name" >>"$tmp/$name.out" 2>&1; then
		ok "consumer $name (pkg-config $*)"
	else
		cat "$tmp/$name.out"
		ko "consumer $name (pkg-config $*)"
	fi
}
run consumer cc "$src/tests/install/consumer/main.c" -pthread -- slabkit
run kernel_consumer cc "$api/kernel_consumer.c" -Wall -Wextra -Werror -- \
    slabkit-compat
run static_dropin cc "$api/static_dropin.c" -static -- slabkit-malloc
if command -v c++ >/dev/null 2>&1; then
	run cxx_consumer c++ "$api/cxx_consumer.cpp" -std=c++11 -Wall -Wextra \
	    -pedantic -Werror -- slabkit
fi
if cmake -S "$src/tests/install/consumer" -B "$tmp/cb" >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$tmp/cb" >>"$tmp/cmake.log" 2>&1 &&
    "$tmp/cb/consumer" && "$tmp/cb/kernel_consumer" >/dev/null &&
    "$tmp/cb/static_dropin" >/dev/null; then
	ok "find_package(slabkit) consumers"
else
	cat "$tmp/cmake.log"
	ko "find_package(slabkit) consumers"
fi

# The command, the drop-in, the manual pages.
if slabkit version | grep -q 'drop-in: /usr/lib/.*libslabkit-malloc'; then
	ok "slabkit version finds the installed drop-in"
else
	ko "slabkit version finds the installed drop-in"
fi
if slabkit run --stats -- "$tmp/consumer" 2>"$tmp/stats" &&
    grep -q 'Memory statistics by type' "$tmp/stats"; then
	ok "slabkit run --stats"
else
	ko "slabkit run --stats"
fi
if slabkit bench --help | grep -q 'usage: slabkit bench' &&
    [ -f /usr/share/slabkit/bench/run.sh ]; then
	ok "slabkit bench --help, suite installed"
else
	ko "slabkit bench --help, suite installed"
fi
if command -v man >/dev/null 2>&1; then
	for f in kfree objcache_get slabkit; do
		if man -w "$f" >/dev/null 2>&1; then
			ok "man $f"
		else
			ko "man $f"
		fi
	done
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
