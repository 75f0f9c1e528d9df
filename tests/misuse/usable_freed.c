/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: malloc_usable_size of a freed pointer.  Expected: abort,
 * "slabkit: malloc_usable_size: memory chunk ... is free (use after free,
 * ptr 0x...)".
 */
#include <malloc.h>

#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(100));
	size_t n;

	free(p);
	SK_M_ARMED();
	n = malloc_usable_size(sk_m_hide(p));
	SK_M_SURVIVED();
	printf("usable size %zu\n", n);
	return 0;
}
