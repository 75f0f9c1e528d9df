/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad argument: aligned_alloc with an alignment that is zero or not a
 * power of two.  Expected: NULL with errno EINVAL, no abort.
 */
#include <errno.h>
#include <stdint.h>

#include "misuse.h"

int
main(void)
{
	static volatile size_t cases[] = {0, 3, 24, 48, 4097, SIZE_MAX};
	void *p;

	SK_M_ARMED();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		p = aligned_alloc(cases[i], 64);
		SK_M_CHECK(p == NULL);
		SK_M_CHECK(errno == EINVAL);
	}
	p = aligned_alloc(128, 256);
	SK_M_CHECK(p != NULL && ((uintptr_t)p & 127) == 0);
	free(p);
	sk_m_say("ok");
	return 0;
}
