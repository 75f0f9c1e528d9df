/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad argument: reallocarray whose product overflows.  Expected: NULL
 * with errno ENOMEM, and the old block untouched and still owned by the
 * caller (it can be read and freed).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "misuse.h"

void *reallocarray(void *ptr, size_t nmemb, size_t size);

int
main(void)
{
	static volatile size_t big[] = {SIZE_MAX / 2, 3, (size_t)1 << 33};
	char *p = malloc(64);
	void *n;

	SK_M_CHECK(p != NULL);
	memset(p, 0x5c, 64);
	SK_M_ARMED();
	errno = 0;
	n = reallocarray(sk_m_hide(p), big[0], big[1]);
	SK_M_CHECK(n == NULL);
	SK_M_CHECK(errno == ENOMEM);
	errno = 0;
	n = reallocarray(NULL, big[2], big[2]);
	SK_M_CHECK(n == NULL);
	SK_M_CHECK(errno == ENOMEM);
	for (int i = 0; i < 64; i++)
		SK_M_CHECK(p[i] == 0x5c);
	free(p);
	sk_m_say("ok");
	return 0;
}
