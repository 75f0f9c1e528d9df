/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: free of a pointer into the middle of a small block (16 bytes
 * in, aligned like a real block).  Expected: abort, "slabkit: free:
 * pointer ... is not the start of a chunk (interior or misaligned
 * pointer, ptr 0x...)".
 */
#include "misuse.h"

int
main(void)
{
	char *p = sk_m_hide(malloc(256));

	SK_M_ARMED();
	free(sk_m_hide(p + 16));
	SK_M_SURVIVED();
	return 0;
}
