/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad argument: memalign with alignments that cannot be rounded up to a
 * power of two (above 2^63).  Expected: NULL with errno EINVAL, no abort.
 * glibc rounds other non-powers up, and so does slabkit: memalign(24, n)
 * returns a 32-aligned block.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>

#include "misuse.h"

int
main(void)
{
	static volatile size_t cases[] = {SIZE_MAX, ((size_t)1 << 63) + 1};
	void *p;

	SK_M_ARMED();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		p = memalign(cases[i], 64);
		SK_M_CHECK(p == NULL);
		SK_M_CHECK(errno == EINVAL);
	}
	p = memalign(24, 64);
	SK_M_CHECK(p != NULL && ((uintptr_t)p & 31) == 0);
	free(p);
	sk_m_say("ok");
	return 0;
}
