# SPDX-License-Identifier: BSD-3-Clause
# Runs mandoc -Tlint over every man page; any warning fails the test.
set(failed 0)
set(passed 0)
foreach(page ${PAGES})
	execute_process(COMMAND ${MANDOC} -Tlint -Wwarning ${page}
		OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
	if(rc EQUAL 0 AND "${out}${err}" STREQUAL "")
		math(EXPR passed "${passed} + 1")
	else()
		message("FAIL ${page}: ${out}${err}")
		math(EXPR failed "${failed} + 1")
	endif()
endforeach()
message("${passed} passed, ${failed} failed")
if(failed GREATER 0)
	message(FATAL_ERROR "man pages have lint warnings")
endif()
