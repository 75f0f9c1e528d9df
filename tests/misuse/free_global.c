/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: free of a global (static storage) address.  Expected: abort,
 * "slabkit: free: pointer was not allocated by slabkit (ptr 0x...)".
 */
#include "misuse.h"

static char global_buf[256] __attribute__((aligned(64)));

int
main(void)
{
	global_buf[0] = 1;
	SK_M_ARMED();
	free(sk_m_hide(global_buf));
	SK_M_SURVIVED();
	return 0;
}
