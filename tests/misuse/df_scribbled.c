/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: double free after the freed block's first 16 bytes were
 * overwritten (where allocators keep free-list links and keys, so a check
 * that reads the block would be fooled).  Expected: abort, "slabkit: free:
 * ... already free ... (ptr 0x...)": the check uses the zone's bitmaps,
 * not the block's contents.
 */
#include <string.h>

#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(64));

	free(p);
	memset(sk_m_hide(p), 0x5a, 16);
	SK_M_ARMED();
	free(sk_m_hide(p));
	SK_M_SURVIVED();
	return 0;
}
