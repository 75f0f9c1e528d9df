/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: realloc of a freed pointer.  Expected: abort before anything is
 * copied or freed, "slabkit: realloc: memory chunk ... is free (use after
 * free, ptr 0x...)".
 */
#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(100));

	free(p);
	SK_M_ARMED();
	p = sk_m_hide(realloc(sk_m_hide(p), 200));
	SK_M_SURVIVED();
	return p == NULL;
}
