#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# install/consumer: `cmake --install` into a temporary prefix (and with
# DESTDIR), then build and run, against the installed tree, with
# pkg-config and with find_package(slabkit): tests/install/consumer/main.c,
# a kernel-style file on the compat include names (slabkit-compat,
# slabkit::compat), a program on the static drop-in (slabkit-malloc,
# slabkit::malloc; also -static) and a C++ consumer (tests/api).
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
api=$src/../api
pc() { PKG_CONFIG_PATH=$pcdir pkg-config "$@"; }
# pc_build NAME COMPILER SOURCE [FLAGS...] -- MODULE...: build and run
pc_build() {
	name=$1 comp=$2 source=$3
	shift 3
	flags=
	while [ "$1" != -- ]; do flags="$flags $1"; shift; done
	shift
	# shellcheck disable=SC2046,SC2086
	if $comp $flags -o "$tmp/$name" "$source" $(pc --cflags --libs "$@") \
	    >"$tmp/$name.out" 2>&1 &&
	    LD_LIBRARY_PATH=$libdir "$tmp/$name" >>"$tmp/$name.out" 2>&1; then
		ok "pkg-config $name ($*)"
	else
		cat "$tmp/$name.out"; ko "pkg-config $name ($*)"
	fi
}
if command -v pkg-config >/dev/null 2>&1 && [ -n "$pcdir" ]; then
	libdir=$(pc --variable=libdir slabkit)
	pc_build consumer "$cc" "$src/consumer/main.c" -pthread -- slabkit
	# Kernel include names with nothing but the module's flags.
	pc_build kernel_consumer "$cc" "$api/kernel_consumer.c" \
	    -Wall -Wextra -Werror -- slabkit-compat
	[ -f "$tmp/prefix/include/slabkit/compat/sys/malloc.h" ] &&
		ok "installed include/slabkit/compat/sys/malloc.h" ||
		ko "installed include/slabkit/compat/sys/malloc.h"
	# The static drop-in, in a dynamic and in a -static program.
	[ -n "$(find "$tmp/prefix" -name libslabkit-malloc.a)" ] &&
		ok "installed libslabkit-malloc.a" || ko "installed libslabkit-malloc.a"
	pc_build static_dropin "$cc" "$api/static_dropin.c" -- slabkit-malloc
	if echo 'int main(void){return 0;}' >"$tmp/s.c" &&
	    "$cc" -static -o "$tmp/s" "$tmp/s.c" >/dev/null 2>&1; then
		pc_build static_dropin_static "$cc" "$api/static_dropin.c" \
		    -static -- slabkit-malloc
		if readelf -l "$tmp/static_dropin_static" 2>/dev/null |
		    grep -q INTERP; then
			ko "static_dropin_static is a static executable"
		else
			ok "static_dropin_static is a static executable"
		fi
	else
		echo "skip -static drop-in (no static libc)"
	fi
	cxx=$(command -v c++ || command -v g++ || command -v clang++)
	if [ -n "$cxx" ]; then
		pc_build cxx_consumer "$cxx" "$api/cxx_consumer.cpp" -std=c++11 \
		    -Wall -Wextra -pedantic -Werror -pthread -- slabkit
	else
		echo "skip C++ consumer (no C++ compiler)"
	fi
else
	echo "skip pkg-config (not installed)"
fi
if cmake -S "$src/consumer" -B "$tmp/cb" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_C_COMPILER="$cc" >"$tmp/cfg.log" 2>&1 &&
    cmake --build "$tmp/cb" >"$tmp/build.log" 2>&1; then
	ok "find_package: configure and build"
	for t in consumer kernel_consumer static_dropin; do
		if "$tmp/cb/$t" >"$tmp/cmake-$t.out" 2>&1; then
			ok "find_package $t"
		else
			cat "$tmp/cmake-$t.out"; ko "find_package $t"
		fi
	done
else
	cat "$tmp/cfg.log" "$tmp/build.log" 2>/dev/null
	ko "find_package: configure and build"
fi
# One man page link per documented function: `man kfree' finds kmalloc(3).
mandir=$(dirname "$(find "$tmp/prefix" -name kmalloc.3 | head -1)")
for f in kfree objcache_get zalloc mpipe_free slabkit_get_option \
    kmalloc_type_foreach MALLOC_DEFINE; do
	if [ -f "$mandir/$f.3" ] && grep -q '^\.so man3/' "$mandir/$f.3"; then
		ok "man link $f.3"
	else
		ko "man link $f.3"
	fi
done
if command -v man >/dev/null 2>&1; then
	if MANPATH=$(dirname "$mandir") man -w kfree 2>/dev/null |
	    grep -q 'kmalloc\.3'; then
		ok "man -w kfree finds kmalloc.3"
	else
		ko "man -w kfree finds kmalloc.3"
	fi
fi
# `slabkit bench' finds its installed suite.
if [ -x "$tmp/prefix/bin/slabkit" ] &&
    [ -f "$tmp/prefix/share/slabkit/bench/run.sh" ]; then
	if (cd "$tmp" && env -u SLABKIT_SOURCE_DIR \
	    "$tmp/prefix/bin/slabkit" bench --out "$tmp/b" --bogus \
	    >/dev/null 2>&1; [ $? -eq 2 ]) &&
	    sh "$tmp/prefix/share/slabkit/bench/run.sh" --help |
	    grep -q usage && [ -n "$(ls "$tmp/prefix/libexec/slabkit/bench")" ]
	then
		ok "installed bench suite"
	else
		ko "installed bench suite"
	fi
fi
if DESTDIR="$tmp/dest" cmake --install "$build" --prefix /opt/slabkit \
    >/dev/null 2>&1 && [ -f "$tmp/dest/opt/slabkit/include/slabkit/kmalloc.h" ]; then
	ok "DESTDIR install"
else
	ko "DESTDIR install"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
