/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Native misuse: kfree naming a malloc type whose magic is wrong (an
 * uninitialised structure).  Expected: abort, "slabkit: kfree: malloc
 * type lacks magic (type 0x..., ptr 0x...)" (checklist row 1).
 */
#include <slabkit/kmalloc.h>

#include "misuse.h"

int
main(void)
{
	static struct malloc_type bogus; /* ks_magic 0 */
	void *p = kmalloc(64, M_TEMP, M_WAITOK);

	SK_M_ARMED();
	kfree(sk_m_hide(p), sk_m_hide(&bogus));
	SK_M_SURVIVED();
	return 0;
}
