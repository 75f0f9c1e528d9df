/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: write after free.  A block is freed, the program writes over
 * all of it (the free-list link in its first word included), then
 * allocates NCYCLE more blocks of the same size and frees them.
 *
 * Default mode: the first word of a free chunk is its free-list link,
 * stored encoded with the zone's key; the scribbled link decodes to an
 * address outside the zone, so the allocation that would follow it stops
 * with "slabkit: kmalloc: free list of zone ... corrupted, use after
 * free?" (the rest of the scribble goes unnoticed in this mode).  With SLABKIT_OPTIONS=hardened
 * the freed block is zeroed, quarantined and checked when it leaves the
 * quarantine or is handed out again, so the write must be reported by a
 * slabkit panic ("slabkit: malloc: ..." or "slabkit: free: ...").
 */
#include <string.h>

#include "misuse.h"

#define SIZE	80
#define NCYCLE	200

int
main(void)
{
	static char *blocks[NCYCLE];
	char *p = sk_m_hide(malloc(SIZE));

	free(p);
	memset(sk_m_hide(p), 0x41, SIZE);
	SK_M_ARMED();
	for (int i = 0; i < NCYCLE; i++)
		blocks[i] = sk_m_hide(malloc(SIZE));
	for (int i = 0; i < NCYCLE; i++)
		free(blocks[i]);
	SK_M_SURVIVED();
	sk_m_say("undetected");
	return 0;
}
