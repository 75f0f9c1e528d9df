/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: read after free.  A block holding a secret is freed and read.
 *
 * Default mode: the read is not detected and sees the secret (the free
 * chunk keeps its contents apart from the link word): "misuse: stale data
 * visible".  Hardened mode should erase freed blocks ("misuse: stale data
 * erased"); a read cannot trap on a zone chunk, so that is the check.
 * A large block is unmapped at free: reading it faults (SIGSEGV), shown
 * by uaf_read_large.
 */
#include <string.h>

#include "misuse.h"

#define SIZE 96

int
main(void)
{
	static const char secret[] = "0123456789abcdef-secret-0123456789abcdef";
	char *p = sk_m_hide(malloc(SIZE));
	char copy[SIZE];

	memset(p, 0, SIZE);
	memcpy(p + 16, secret, sizeof(secret));
	free(p);
	SK_M_ARMED();
	memcpy(copy, sk_m_hide(p), SIZE);
	SK_M_SURVIVED();
	if (memcmp(copy + 16, secret, sizeof(secret)) == 0)
		sk_m_say("stale data visible");
	else
		sk_m_say("stale data erased");
	return 0;
}
