/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad argument: malloc(SIZE_MAX) and other sizes above PTRDIFF_MAX, and
 * realloc to them.  Expected: NULL with errno ENOMEM, no abort; realloc
 * leaves the old block valid.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "misuse.h"

int
main(void)
{
	static volatile size_t cases[] = {SIZE_MAX, SIZE_MAX - 15,
	    (size_t)PTRDIFF_MAX + 1};
	char *old;
	void *p;

	SK_M_ARMED();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		p = malloc(cases[i]);
		SK_M_CHECK(p == NULL);
		SK_M_CHECK(errno == ENOMEM);
	}
	old = malloc(32);
	SK_M_CHECK(old != NULL);
	memset(old, 0x77, 32);
	errno = 0;
	p = realloc(old, cases[0]);
	SK_M_CHECK(p == NULL);
	SK_M_CHECK(errno == ENOMEM);
	SK_M_CHECK(old[0] == 0x77 && old[31] == 0x77);
	free(old);
	sk_m_say("ok");
	return 0;
}
