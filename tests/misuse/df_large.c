/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: double free of a large block (1 MiB, whole pages, given back
 * to the page-run heap at the first free).  Expected: abort with
 * "slabkit: free: memory block ... is already free! (double free of a
 * large block ...)": the page tag is gone, and the heap knows the pages
 * are a free run.  (Hardened mode maps large blocks on their own, so
 * there the pointer reads as one slabkit never handed out.)
 */
#include "misuse.h"

#define SIZE (1024 * 1024)

int
main(void)
{
	char *p = sk_m_hide(malloc(SIZE));

	p[0] = 1;
	free(p);
	SK_M_ARMED();
	free(sk_m_hide(p));
	SK_M_SURVIVED();
	sk_m_overlap_check(SIZE);
	return 0;
}
