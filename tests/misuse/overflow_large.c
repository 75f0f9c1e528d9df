/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: one byte written past the end of a large block, malloc(100000).
 *
 * Default mode: the block has whole pages (102400 bytes): the byte lands
 * in its own slack and goes unnoticed; exit 0.  With
 * SLABKIT_OPTIONS=hardened the block ends where its trailing guard page
 * starts (100000 is a multiple of 16, malloc's alignment), so the write
 * faults: "slabkit: hardened: buffer overflow: access to guard page 0x...
 * after large block 0x... of 100000 bytes (ptr 0x...)", then death by
 * SIGSEGV.
 */
#include "misuse.h"

#define SIZE 100000

int
main(void)
{
	char *p = sk_m_hide(malloc(SIZE));

	SK_M_ARMED();
	((char *)sk_m_hide(p))[SIZE] = 1;
	SK_M_SURVIVED();
	sk_m_say("undetected");
	free(p);
	return 0;
}
