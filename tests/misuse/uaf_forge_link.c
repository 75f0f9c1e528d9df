/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: forge a free-list link, as an attacker with a use-after-free
 * write would.  A block is freed, its first word is overwritten with the
 * address of another live block (MODE "other": a block of another size
 * class, so another zone; MODE "same": a live block of the same zone),
 * then two blocks of the freed size are allocated.  An allocator that
 * follows the link hands the live block out again as new.
 *
 * Expected: the second malloc stops the process with "free list of zone
 * ... corrupted, use after free?" and never returns the forged address
 * (links are stored encoded with a per-zone key and must decode to the
 * same zone; the chunk a link leads to must not be in use).
 */
#include <string.h>

#include "misuse.h"

#ifndef MODE_SAME
#define MODE_SAME 0
#endif

int
main(void)
{
	char *other = sk_m_hide(malloc(MODE_SAME ? 64 : 200));
	char *a = sk_m_hide(malloc(64));
	char *b, *c;

	memset(other, 0x5a, MODE_SAME ? 64 : 200);
	free(a);
	*(void **)sk_m_hide(a) = other;
	SK_M_ARMED();
	b = sk_m_hide(malloc(64));
	c = sk_m_hide(malloc(64));
	SK_M_SURVIVED();
	if (b == other || c == other)
		sk_m_say("forged: a live block handed out again");
	else
		sk_m_say("undetected");
	return 0;
}
