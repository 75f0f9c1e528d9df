/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad argument: posix_memalign with alignments that are not a power of
 * two or smaller than a pointer.  Expected: EINVAL returned, *memptr and
 * errno untouched, no abort.
 */
#include <errno.h>
#include <stdint.h>

#include "misuse.h"

int
main(void)
{
	static volatile size_t cases[] = {0, 1, 2, 4, 3, 24, 48, 4097,
	    SIZE_MAX};
	void *sentinel = (void *)0x1234;
	void *p;
	int rc;

	SK_M_ARMED();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = sentinel;
		errno = 0;
		rc = posix_memalign(&p, cases[i], 64);
		SK_M_CHECK(rc == EINVAL);
		SK_M_CHECK(p == sentinel);
		SK_M_CHECK(errno == 0);
	}
	rc = posix_memalign(&p, 64, 64);
	SK_M_CHECK(rc == 0 && ((uintptr_t)p & 63) == 0);
	free(p);
	sk_m_say("ok");
	return 0;
}
