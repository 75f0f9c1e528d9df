/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Native misuse: objcache_put of an object the cache never handed out (a
 * stack buffer, then a block kmalloc'd from another type).  objcache, like
 * DragonFly's, does not check what it is given: the object goes into the
 * magazine.  This program documents what follows: the next
 * objcache_get hands the foreign address out ("misuse: get returned the
 * foreign object"), and objcache_destroy passes it to the backend's kfree,
 * which catches the stack address: abort, "slabkit: kfree: pointer was
 * not allocated by slabkit (ptr 0x...)".
 */
#include <slabkit/kmalloc.h>
#include <slabkit/objcache.h>

#include "misuse.h"

int
main(void)
{
	struct objcache *oc = objcache_create_simple(M_TEMP, 64);
	char foreign[64] __attribute__((aligned(16)));
	void *mine = objcache_get(oc, M_WAITOK);
	void *got;

	objcache_put(oc, mine);
	SK_M_ARMED();
	objcache_put(oc, sk_m_hide(foreign));
	sk_m_say("put accepted the foreign object");
	got = objcache_get(oc, M_WAITOK);
	if (got == (void *)foreign)
		sk_m_say("get returned the foreign object");
	objcache_put(oc, got);
	objcache_destroy(oc);
	SK_M_SURVIVED();
	return 0;
}
