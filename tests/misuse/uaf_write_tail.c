/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: write after free that spares the first 16 bytes (the free-list
 * link), so the allocator's own structures stay intact; then NCYCLE more
 * blocks of the same size are allocated and freed.
 *
 * Default mode: undetected; the freed block is handed out again (LIFO)
 * with the bytes written after free ("misuse: undetected", exit 0).  With
 * SLABKIT_OPTIONS=hardened the block is zeroed at free and checked when
 * it leaves the quarantine or is handed out again: the write must be
 * reported ("slabkit: malloc: ..." or "slabkit: free: ...").
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
	int back = 0;

	memset(p, 0, SIZE);
	free(p);
	memset(sk_m_hide(p) + 16, 0x41, SIZE - 16);
	SK_M_ARMED();
	for (int i = 0; i < NCYCLE; i++) {
		blocks[i] = sk_m_hide(malloc(SIZE));
		if (blocks[i] == p && p[SIZE - 1] == 0x41)
			back = 1;
	}
	for (int i = 0; i < NCYCLE; i++)
		free(blocks[i]);
	SK_M_SURVIVED();
	if (back)
		printf("the freed block came back with the bytes written "
		       "after free\n");
	sk_m_say("undetected");
	return 0;
}
