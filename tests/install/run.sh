#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# install/consumer: `cmake --install` into a temporary prefix (and with
# DESTDIR), then build and run tests/install/consumer/main.c against the
# installed tree with pkg-config and with find_package(slabkit).
set -u
build=$1 src=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; }

if cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1; then
	ok "cmake --install"
else
	cat "$tmp/install.log"; ko "cmake --install"
fi
for f in include/slabkit/kmalloc.h include/slabkit/slabkit.h; do
	[ -f "$tmp/prefix/$f" ] && ok "installed $f" || ko "installed $f"
done
pcdir=$(dirname "$(find "$tmp/prefix" -name slabkit.pc | head -1)")
if command -v pkg-config >/dev/null 2>&1 && [ -n "$pcdir" ]; then
	libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir slabkit)
	if PKG_CONFIG_PATH=$pcdir $cc -o "$tmp/pc" "$src/consumer/main.c" \
	    $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs slabkit) -pthread &&
	    LD_LIBRARY_PATH=$libdir "$tmp/pc" >"$tmp/pc.out" 2>&1; then
		ok "pkg-config consumer"
	else
		cat "$tmp/pc.out" 2>/dev/null; ko "pkg-config consumer"
	fi
else
	echo "skip pkg-config (not installed)"
fi
if cmake -S "$src/consumer" -B "$tmp/cb" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_C_COMPILER="$cc" >"$tmp/cfg.log" 2>&1 &&
    cmake --build "$tmp/cb" >"$tmp/build.log" 2>&1 &&
    "$tmp/cb/consumer" >"$tmp/cmake.out" 2>&1; then
	ok "find_package consumer"
else
	cat "$tmp/cfg.log" "$tmp/build.log" "$tmp/cmake.out" 2>/dev/null
	ko "find_package consumer"
fi
if DESTDIR="$tmp/dest" cmake --install "$build" --prefix /opt/slabkit \
    >/dev/null 2>&1 && [ -f "$tmp/dest/opt/slabkit/include/slabkit/kmalloc.h" ]; then
	ok "DESTDIR install"
else
	ko "DESTDIR install"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
