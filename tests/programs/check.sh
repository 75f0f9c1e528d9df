# SPDX-License-Identifier: BSD-3-Clause
# Shared by the shell test scripts of tests/programs (sourced):
# check DESCRIPTION COMMAND... passes when COMMAND succeeds, counting in
# $passed and $failed for the "N passed, N failed" line.
passed=0
failed=0

check() {
	d=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok   $d"
	else
		failed=$((failed + 1))
		echo "FAIL $d"
	fi
}
