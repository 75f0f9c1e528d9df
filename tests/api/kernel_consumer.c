/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * api/kernel_consumer: a DragonFly kernel-style source file, with the
 * kernel's include names and nothing slabkit-specific, built with only the
 * compat include path (pkg-config slabkit-compat, slabkit::compat).
 * Exits 0 when each allocator round-trips; prints "N passed, N failed".
 */
#include <sys/malloc.h>
#include <sys/mpipe.h>
#include <sys/objcache.h>
#include <vm/vm_zone.h>

#include <stdio.h>
#include <string.h>

MALLOC_DEFINE(M_KCONS, "kcons", "kernel-style consumer");

struct kcons_rec {
	int id;
	char name[28];
};

static int passed, failed;

static void
check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

int
main(void)
{
	struct malloc_pipe mp;
	struct objcache *oc;
	struct kcons_rec *r;
	vm_zone_t z;
	void *p;

	r = kmalloc(sizeof(*r), M_KCONS, M_WAITOK | M_ZERO);
	check(r != NULL && r->id == 0, "kmalloc (sys/malloc.h)");
	strcpy(r->name, "kernel");
	kfree(r, M_KCONS);

	oc = objcache_create_simple(M_KCONS, sizeof(struct kcons_rec));
	p = objcache_get(oc, M_WAITOK);
	check(p != NULL, "objcache_get (sys/objcache.h)");
	objcache_put(oc, p);
	objcache_destroy(oc);

	memset(&mp, 0, sizeof(mp));
	mpipe_init(&mp, M_KCONS, 256, 2, 4, 0, NULL, NULL, NULL);
	p = mpipe_alloc_nowait(&mp);
	check(p != NULL, "mpipe_alloc_nowait (sys/mpipe.h)");
	mpipe_free(&mp, p);
	mpipe_done(&mp);

	z = zinit("kcons", sizeof(struct kcons_rec), 0, 0);
	p = z != NULL ? zalloc(z) : NULL;
	check(p != NULL, "zalloc (vm/vm_zone.h)");
	if (p != NULL)
		zfree(z, p);

	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
