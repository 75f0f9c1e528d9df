/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bad argument: calloc whose element count times size overflows.
 * Expected: NULL with errno ENOMEM, no abort, and the heap still works.
 */
#include <errno.h>
#include <stdint.h>

#include "misuse.h"

int
main(void)
{
	static volatile size_t cases[][2] = {
		{SIZE_MAX / 2, 3},
		{(size_t)1 << 32, (size_t)1 << 32},
		{SIZE_MAX, SIZE_MAX},
		{2, SIZE_MAX / 2 + 1},
	};
	void *p;

	SK_M_ARMED();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		p = calloc(cases[i][0], cases[i][1]);
		SK_M_CHECK(p == NULL);
		SK_M_CHECK(errno == ENOMEM);
	}
	p = calloc(4, 8);
	SK_M_CHECK(p != NULL);
	free(p);
	sk_m_say("ok");
	return 0;
}
