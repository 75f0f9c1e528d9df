#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Build the Debian packages (libslabkit0, libslabkit-dev, slabkit) from a
# clean copy of the source tree: the files git knows (tracked, or new and
# not ignored), or without git the tree minus build/.  The packages land
# in build/deb/.  Used by `make deb'; needs dpkg-dev and debhelper
# (tools/install-deps.sh deb).
set -eu
cd "$(dirname "$0")/.."
out=build/deb
rm -rf "$out"
mkdir -p "$out/slabkit"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null |
		tar -C "$out/slabkit" -xf -
else
	tar --exclude=./build -cf - . | tar -C "$out/slabkit" -xf -
fi
echo "deb: building in $out/slabkit"
(cd "$out/slabkit" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
	tail -40 "$out/build.log"
	echo "deb: dpkg-buildpackage failed (whole log: $out/build.log)" >&2
	exit 1
}
ls "$out"/*.deb
