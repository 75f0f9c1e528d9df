#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# symbols/exports: the dynamic symbols libslabkit.so defines must be exactly
# what its public headers declare (SLABKIT_API functions and the
# MALLOC_DECLAREd predefined types): nothing internal leaks out, nothing
# promised is missing.  The headers are run through the preprocessor with
# SLABKIT_API turned into a marker, so comments and macros cannot confuse
# the scan.
set -u
lib=$1 inc=$2 cc=${3:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# (sanitizer builds add their own __odr_asan.* / __asan_* / __tsan_* marks)
nm -D --defined-only "$lib" | awk '$2 ~ /[TDBR]/ {print $3}' |
	grep -v -E '^(__odr_asan|__asan|__tsan|__ubsan|__sanitizer)' |
	sort -u >"$tmp/exported"
for h in "$inc"/slabkit/*.h; do
	echo "#include <slabkit/$(basename "$h")>"
done >"$tmp/all.c"
"$cc" -E -P -DSLABKIT_API=__slabkit_api__ -I"$inc" "$tmp/all.c" |
	tr '\n' ' ' | tr ';{}' '\n\n\n' >"$tmp/pp"
grep '__slabkit_api__' "$tmp/pp" | sed -E 's/\(\*[A-Za-z_]+\)//g; s/\(.*//' |
	grep -oE '[A-Za-z_][A-Za-z0-9_]*[[:space:]]*$' | tr -d ' ' >"$tmp/decl"
grep -oE 'extern struct malloc_type [A-Za-z_0-9]+\[1\]' "$tmp/pp" |
	awk '{print $4}' | sed 's/\[1\]//' >>"$tmp/decl"
sort -u "$tmp/decl" -o "$tmp/decl"
pass=0 fail=0
extra=$(comm -23 "$tmp/exported" "$tmp/decl")
missing=$(comm -13 "$tmp/exported" "$tmp/decl")
if [ -z "$extra" ]; then pass=$((pass + 1)); echo "ok   no undeclared exports"
else fail=$((fail + 1)); echo "FAIL exported but not in a public header:"; echo "$extra"; fi
if [ -z "$missing" ]; then pass=$((pass + 1)); echo "ok   every declared symbol is exported ($(wc -l <"$tmp/decl"))"
else fail=$((fail + 1)); echo "FAIL declared but not exported:"; echo "$missing"; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
