/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: a use-after-free write of a wild value into a freed block's
 * first word (where a free-list link lives), then two allocations of the
 * same size.  Expected: "free list of zone ... corrupted, use after
 * free?", never a crash inside the allocator or a wild pointer returned.
 */
#include <stdint.h>

#include "misuse.h"

int
main(void)
{
	char *a = sk_m_hide(malloc(48));

	free(a);
	*(uintptr_t *)sk_m_hide(a) = (uintptr_t)0x4141414141414141ull;
	SK_M_ARMED();
	(void)sk_m_hide(malloc(48));
	(void)sk_m_hide(malloc(48));
	SK_M_SURVIVED();
	sk_m_say("undetected");
	return 0;
}
