/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: free of a misaligned pointer (one byte past a block's start).
 * Expected: abort, "slabkit: free: pointer ... is not the start of a
 * chunk (interior or misaligned pointer, ptr 0x...)".
 */
#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(64));

	SK_M_ARMED();
	free(sk_m_hide(p + 1));
	SK_M_SURVIVED();
	return 0;
}
