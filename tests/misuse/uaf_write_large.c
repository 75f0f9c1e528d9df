/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: write after free of a large block (512 KiB).
 *
 * Default mode: the page-run heap keeps the freed block's pages for the
 * next large block, so the write lands in retained memory and goes
 * unnoticed; exit 0.  With SLABKIT_OPTIONS=hardened the freed run is
 * sealed (guard pages over all of it, or unmapped) and the write faults:
 * "slabkit: hardened: use after free: access to 0x... in large block
 * 0x..., freed already (ptr 0x...)", then death by SIGSEGV.
 */
#include <string.h>

#include "misuse.h"

#define SIZE (512 * 1024)

int
main(void)
{
	char *p = sk_m_hide(malloc(SIZE));

	memset(p, 1, SIZE);
	free(p);
	SK_M_ARMED();
	memset(sk_m_hide(p) + 1000, 0x41, 64);
	SK_M_SURVIVED();
	sk_m_say("undetected");
	return 0;
}
