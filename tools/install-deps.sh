#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Install what slabkit's build, tests and benchmarks need, on Debian.
# Usage: tools/install-deps.sh [test|bench|deb|aarch64|all]
# As root, missing packages are installed with apt-get; otherwise the
# script names them and exits 0 (tests that need them are skipped).
set -eu
what=${1:-test}
base="cmake ninja-build gcc clang make pkg-config mandoc valgrind"
programs="python3 sqlite3 lua5.4 redis-server redis-tools git"
fuzz="libclang-rt-14-dev"
bench="libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 gnuplot-nox strace"
deb="dpkg-dev debhelper lintian man-db"
# the cross build and qemu-user (qemu-user-binfmt: its aarch64 rule, which
# tools/aarch64-run.sh registers when the machine has none)
aarch64="cmake ninja-build make crossbuild-essential-arm64 qemu-user qemu-user-binfmt"
case $what in
test) pkgs="$base $programs $fuzz" ;;
bench) pkgs="$base $programs $bench" ;;
deb) pkgs="$base $deb" ;;
aarch64) pkgs="$aarch64" ;;
all) pkgs="$base $programs $fuzz $bench $deb" ;;
*) echo "usage: $0 [test|bench|deb|aarch64|all]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
	echo "slabkit: please install:$missing (not root: skipping)" >&2
fi
