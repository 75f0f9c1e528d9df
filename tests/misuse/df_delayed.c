/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: delayed double free, p q p: another block of the same class is
 * freed in between, so p is no longer the head of the free list (the
 * pattern that defeats glibc's fastbin top check).  Expected: abort,
 * "slabkit: free: ... already free ... (ptr 0x...)".
 */
#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(48));
	char *q = sk_m_hide(malloc(48));

	free(p);
	free(q);
	SK_M_ARMED();
	free(sk_m_hide(p));
	SK_M_SURVIVED();
	sk_m_overlap_check(48);
	return 0;
}
