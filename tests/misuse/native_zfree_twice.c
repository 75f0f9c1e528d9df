/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Native misuse: zfree of the same item twice (checklist row 72).
 * Expected: abort, "slabkit: zfree: freeing free entry in zone misuse
 * (ptr 0x...)".
 */
#include <slabkit/zone.h>

#include "misuse.h"

int
main(void)
{
	vm_zone_t z = zinit("misuse", 64, 0, 0);
	void *p;

	if (z == NULL)
		return 2;
	p = zalloc(z);
	zfree(z, p);
	SK_M_ARMED();
	zfree(z, sk_m_hide(p));
	SK_M_SURVIVED();
	return 0;
}
