/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: double free of a small block (a zone chunk), freed twice in a
 * row on the owner thread.  Expected: abort, "slabkit: free: memory chunk
 * ... is already free! (double free, ptr 0x...)".
 */
#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(32));

	free(p);
	SK_M_ARMED();
	free(sk_m_hide(p));
	SK_M_SURVIVED();
	sk_m_overlap_check(32);
	return 0;
}
