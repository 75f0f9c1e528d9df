#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Run a command (ctest for the aarch64 preset) so that every aarch64
# program it starts runs under qemu-user, also when a test starts it by
# exec: the tests that re-execute themselves (test_options, test_hardened,
# test_track), the sh -c and script-driven tests (misuse, programs).
# ctest's own runs go through CMAKE_CROSSCOMPILING_EMULATOR
# (cmake/toolchain-aarch64.cmake); the rest need a binfmt_misc entry.
#   Usage: tools/aarch64-run.sh COMMAND [ARG...]
#          tools/aarch64-run.sh --check   (exit 0 when aarch64 programs
#                                          can be started by exec here)
#
# qemu-aarch64 finds the target's loader and libraries by QEMU_LD_PREFIX.
# When the kernel has no aarch64 entry (a container, a machine without
# systemd-binfmt), the command runs in a private user and mount namespace
# with its own binfmt_misc instance (Linux 6.7 or later) where Debian's
# qemu-aarch64 rule is registered: nothing changes outside it.  When that
# is impossible the command runs as it is, with a warning, and the tests
# that exec aarch64 programs fail ("Exec format error").
set -eu
export QEMU_LD_PREFIX="${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}"
binfmt=/proc/sys/fs/binfmt_misc
# qemu-user-binfmt's rule (ELF64, little-endian, EM_AARCH64).
rule=/usr/lib/binfmt.d/qemu-aarch64.conf

[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }

ready() {
	[ -r "$binfmt/qemu-aarch64" ] &&
		head -n 1 "$binfmt/qemu-aarch64" | grep -qx enabled
}

if [ "$1" = --check ]; then
	ready && exit 0
	[ -r "$rule" ] && command -v qemu-aarch64 >/dev/null &&
	    unshare --user --map-root-user --mount sh -c \
		"mount -t binfmt_misc binfmt_misc $binfmt" 2>/dev/null
	exit
fi

if [ -n "${SK_AARCH64_NS:-}" ]; then
	# In the namespace: an instance of our own, the one rule in it.
	mount -t binfmt_misc binfmt_misc "$binfmt"
	grep -v '^#' "$rule" >"$binfmt/register"
	unset SK_AARCH64_NS
elif ! ready; then
	if [ -r "$rule" ] &&
	    unshare --user --map-root-user --mount sh -c \
		"mount -t binfmt_misc binfmt_misc $binfmt" 2>/dev/null; then
		export SK_AARCH64_NS=1
		if [ "$(id -u)" != 0 ]; then
			exec unshare --user --map-root-user --mount "$0" "$@"
		fi
		# As root: every uid and gid mapped to itself (unshare -r
		# maps root alone: chown to another user would fail).  The
		# shell in the namespace waits for the maps, then runs this
		# script again, as root there, with the capabilities to mount.
		dir=$(mktemp -d "${TMPDIR:-/tmp}/aarch64-run.XXXXXX")
		mkfifo "$dir/go"
		exec 3<&0
		# shellcheck disable=SC2016 # expanded by the inner shell
		unshare --user --mount sh -c 'read -r _ <"$0" && exec "$@"' \
			"$dir/go" "$0" "$@" <&3 &
		pid=$!
		self=$(readlink /proc/self/ns/user)
		while kill -0 "$pid" 2>/dev/null &&
		    [ "$(readlink "/proc/$pid/ns/user")" = "$self" ]; do
			sleep 0.01
		done
		echo "0 0 4294967295" >"/proc/$pid/uid_map"
		echo "0 0 4294967295" >"/proc/$pid/gid_map"
		echo go >"$dir/go"
		rm -rf "$dir"
		status=0
		wait "$pid" || status=$?
		exit "$status"
	fi
	echo "$0: warning: aarch64 programs cannot be started by exec" \
		"(no binfmt_misc entry, and no private one: needs $rule and" \
		"Linux 6.7 or later); the tests that do so will fail" >&2
fi
exec "$@"
