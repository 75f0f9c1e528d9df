/*
 * Misuse: write after free that spares the first 16 bytes (the free-list
 * link), so the allocator's own structures stay intact: the freed block is
 * handed out again with the bytes the program wrote after freeing it.
 *
 * Default mode: undetected ("misuse: undetected" and exit 0).  With
 * SLABKIT_OPTIONS=hardened the write must be reported when the block is
 * handed out again ("slabkit: malloc: ..."), or at the latest at free.
 */
#include <string.h>

#include "misuse.h"

#define SIZE 80

int
main(void)
{
	char *p = sk_m_hide(malloc(SIZE));
	char *q;

	memset(p, 0, SIZE);
	free(p);
	memset(sk_m_hide(p) + 16, 0x41, SIZE - 16);
	SK_M_ARMED();
	q = sk_m_hide(malloc(SIZE));
	free(q);
	SK_M_SURVIVED();
	if (q == p && q[SIZE - 1] == 0x41)
		printf("the freed block came back with the bytes written "
		       "after free\n");
	sk_m_say("undetected");
	return 0;
}
