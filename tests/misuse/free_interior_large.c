/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: free of a pointer one page into a large block.  Expected:
 * abort, "slabkit: free: pointer was not allocated by slabkit (ptr
 * 0x...)": only a large block's first page carries a tag.
 */
#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(256 * 1024));

	SK_M_ARMED();
	free(sk_m_hide(p + 4096));
	SK_M_SURVIVED();
	return 0;
}
