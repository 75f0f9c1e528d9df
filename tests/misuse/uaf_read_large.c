/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: read after free of a large block (512 KiB).  Once, large
 * blocks were unmapped at free and the read faulted; the page-run heap
 * now keeps the pages of freed blocks until it purges them, so the read
 * succeeds and sees the old contents ("misuse: stale data visible").
 * Hardened mode should make the read fault (SIGSEGV) or find the block
 * erased ("misuse: stale data erased").
 */
#include <string.h>

#include "misuse.h"

#define SIZE (512 * 1024)

int
main(void)
{
	static const char secret[] = "large-block-secret";
	char *p = sk_m_hide(malloc(SIZE));
	char copy[sizeof(secret)];

	memcpy(p + 1000, secret, sizeof(secret));
	free(p);
	SK_M_ARMED();
	memcpy(copy, sk_m_hide(p) + 1000, sizeof(secret));
	SK_M_SURVIVED();
	if (memcmp(copy, secret, sizeof(secret)) == 0)
		sk_m_say("stale data visible");
	else
		sk_m_say("stale data erased");
	return 0;
}
