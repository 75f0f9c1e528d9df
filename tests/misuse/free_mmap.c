/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: free of memory the program mapped itself (a page-aligned
 * anonymous mapping, which looks exactly like a large block).  Expected:
 * abort, "slabkit: free: pointer was not allocated by slabkit (ptr
 * 0x...)", and the mapping stays intact.
 */
#include <sys/mman.h>

#include "misuse.h"

int
main(void)
{
	char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 2;
	p[0] = 1;
	SK_M_ARMED();
	free(sk_m_hide(p));
	SK_M_SURVIVED();
	return p[0] != 1;
}
