#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# man/coverage: every function the public headers declare (SLABKIT_API)
# is named in the NAME section of a section 3 page (which makes `man
# <function>' work once installed) and has its prototype in that page's
# SYNOPSIS (.Fn or .Fo).
# usage: man_check.sh INCLUDE_DIR MAN_DIR [CC]
set -u
inc=$1 man=$2 cc=${3:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for h in "$inc"/slabkit/*.h; do
	echo "#include <slabkit/$(basename "$h")>"
done >"$tmp/all.c"
"$cc" -E -P -DSLABKIT_API=__slabkit_api__ -I"$inc" "$tmp/all.c" |
	tr '\n' ' ' | tr ';{}' '\n\n\n' | grep '__slabkit_api__' |
	sed -E 's/\(\*[A-Za-z_]+\)//g; s/\(.*//' |
	grep -oE '[A-Za-z_][A-Za-z0-9_]*[[:space:]]*$' | tr -d ' ' |
	sort -u >"$tmp/funcs"
pass=0 fail=0
for f in $(cat "$tmp/funcs"); do
	page=$(awk -v f="$f" '
	    /^\.Sh NAME/ { n = 1; next }
	    /^\.Sh / { n = 0 }
	    n && $1 == ".Nm" && ($2 == f || $2 == f ",") { print FILENAME; exit }
	' "$man"/*.3)
	if [ -z "$page" ]; then
		fail=$((fail + 1))
		echo "FAIL $f: in no page's NAME section"
		continue
	fi
	if awk -v f="$f" '
	    /^\.Sh SYNOPSIS/ { s = 1; next }
	    /^\.Sh / { s = 0 }
	    s && ($1 == ".Fn" || $1 == ".Fo") && $2 == f { found = 1 }
	    END { exit !found }' "$page"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL $f: no prototype in the SYNOPSIS of $(basename "$page")"
	fi
done
echo "ok   $pass functions named and with a prototype"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
