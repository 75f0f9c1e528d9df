/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: heap overflow into the next chunk.  Two blocks of the same
 * class are allocated; the program writes 16 bytes past the end of the
 * first (into the second when it is adjacent, as in a fresh zone), then
 * frees both.
 *
 * Default mode: chunks carry no headers or canaries, so nothing notices
 * ("misuse: undetected"; the program reports whether the neighbour was
 * hit).  With SLABKIT_OPTIONS=hardened the overflow should be reported at
 * free ("slabkit: free: ...").
 */
#include <string.h>

#include "misuse.h"

#define SIZE 80

int
main(void)
{
	char *p = sk_m_hide(malloc(SIZE));
	char *q = sk_m_hide(malloc(SIZE));

	memset(q, 0x11, SIZE);
	memset(p, 0x22, SIZE);
	SK_M_ARMED();
	memset(sk_m_hide(p) + SIZE, 0x33, 16);
	free(p);
	free(q);
	SK_M_SURVIVED();
	printf("neighbour %s\n",
	    q == p + SIZE ? "adjacent and overwritten" : "not adjacent");
	sk_m_say("undetected");
	return 0;
}
