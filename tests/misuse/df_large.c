/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: double free of a large block (1 MiB, whole pages, given back
 * to the page-run heap at the first free; or the size given as the
 * argument: 32 KiB with large_cache=on stays in the heap's front cache,
 * still allocated to the heap).  Expected: abort with
 * "slabkit: free: memory block ... is already free! (double free of a
 * large block ...)": the page tag is gone, and the heap knows the pages
 * are a free run (or a cached one).  Hardened mode says the same: its
 * guarded blocks are heap runs too, or are found in its ring of freed
 * blocks.
 */
#include <stdlib.h>

#include "misuse.h"

int
main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024 * 1024;
	char *p = sk_m_hide(malloc(size));

	p[0] = 1;
	free(p);
	SK_M_ARMED();
	free(sk_m_hide(p));
	SK_M_SURVIVED();
	sk_m_overlap_check(size);
	return 0;
}
