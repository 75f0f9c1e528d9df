/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Native misuse: kfree of the same chunk twice (checklist row 38, always
 * on here).  Expected: abort, "slabkit: kfree: memory chunk 0x... is
 * already free! (double free, ptr 0x...)".
 */
#include <slabkit/kmalloc.h>

#include "misuse.h"

int
main(void)
{
	void *p = kmalloc(200, M_TEMP, M_WAITOK);

	kfree(p, M_TEMP);
	SK_M_ARMED();
	kfree(sk_m_hide(p), M_TEMP);
	SK_M_SURVIVED();
	return 0;
}
