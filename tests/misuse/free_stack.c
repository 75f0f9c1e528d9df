/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: free of a stack address.  Expected: abort, "slabkit: free:
 * pointer was not allocated by slabkit (ptr 0x...)", found through the
 * page tags without reading the stack.
 */
#include <string.h>

#include "misuse.h"

int
main(void)
{
	char buf[128];

	memset(buf, 1, sizeof(buf));
	SK_M_ARMED();
	free(sk_m_hide(buf));
	SK_M_SURVIVED();
	return buf[0] != 1;
}
