/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: double free of a 32 KiB block with the page-run heap's front
 * cache on (SLABKIT_OPTIONS=large_cache=on, which programs whose threads
 * contend for the heap get by themselves).  The first free leaves the run
 * in the cache, still allocated as far as the heap is concerned; the
 * second must still abort with "slabkit: free: memory block ... is
 * already free! (double free of a large block ...)".
 */
#include "misuse.h"

#define SIZE (32 * 1024)

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
