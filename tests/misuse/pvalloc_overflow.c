/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad argument: pvalloc of a size that overflows when rounded up to a
 * page.  Expected: NULL with errno ENOMEM, no abort.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>

#include "misuse.h"

int
main(void)
{
	static volatile size_t cases[] = {SIZE_MAX, SIZE_MAX - 10,
	    SIZE_MAX - 4095};
	void *p;

	SK_M_ARMED();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		p = pvalloc(cases[i]);
		SK_M_CHECK(p == NULL);
		SK_M_CHECK(errno == ENOMEM);
	}
	p = pvalloc(1);
	SK_M_CHECK(p != NULL && ((uintptr_t)p & 4095) == 0);
	free(p);
	sk_m_say("ok");
	return 0;
}
