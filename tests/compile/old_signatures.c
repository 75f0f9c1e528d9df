/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Compile-only cases for the signatures slabkit follows (DragonFly's
 * newest): tests/CMakeLists.txt compiles this file once per CASE_* macro
 * and expects each older form to be rejected by the compiler, with
 * warnings off, while the file without a case compiles cleanly.
 *
 *   CASE_OC_PTR_LIMIT      objcache_create with `int *cluster_limit0'
 *   CASE_OC_MBACKED_PTR    objcache_create_mbacked with a pointer limit
 *   CASE_MPIPE_INIT7       the 7-argument mpipe_init of mpipe(9) (2010)
 *   CASE_ZINIT5            zinit with the old `zalloc' argument
 *   CASE_ZINITNA7          zinitna with `obj' and `zalloc'
 */
#include <stddef.h>

#include <slabkit/kmalloc.h>
#include <slabkit/mpipe.h>
#include <slabkit/objcache.h>
#include <slabkit/zone.h>

struct malloc_pipe;
void old_deconstruct(struct malloc_pipe *mp, void *buf);
int compile_cases(void);

int
compile_cases(void)
{
	static struct malloc_pipe pipe;
	static struct vm_zone zone;
	int limit = 100;
	long nlimit = 100;
	struct objcache *oc;

	(void)limit;
	(void)nlimit;
	(void)pipe;
	(void)zone;
	(void)oc;
#if defined(CASE_OC_PTR_LIMIT)
	oc = objcache_create("old", &limit, 0, NULL, NULL, NULL,
	    objcache_malloc_alloc, objcache_malloc_free, NULL);
#elif defined(CASE_OC_MBACKED_PTR)
	oc = objcache_create_mbacked(M_TEMP, 64, &limit, 0, NULL, NULL, NULL);
#elif defined(CASE_MPIPE_INIT7)
	mpipe_init(&pipe, M_TEMP, 64, 4, 8, 0, old_deconstruct);
#elif defined(CASE_ZINIT5)
	(void)zinit("old", 64, 0, 0, 1);
#elif defined(CASE_ZINITNA7)
	(void)zinitna(&zone, NULL, "old", 64, 0, 0, 1);
#else
	/* the newest forms, integer limits of any integer type included */
	oc = objcache_create("new", limit, 0, NULL, NULL, NULL,
	    objcache_malloc_alloc, objcache_malloc_free, NULL);
	oc = objcache_create("new", nlimit, 0, NULL, NULL, NULL,
	    objcache_malloc_alloc, objcache_malloc_free, NULL);
	oc = objcache_create_mbacked(M_TEMP, 64, 0, 0, NULL, NULL, NULL);
	oc = (objcache_create)("paren", 0, 0, NULL, NULL, NULL,
	    objcache_malloc_alloc, objcache_malloc_free, NULL);
	mpipe_init(&pipe, M_TEMP, 64, 4, 8, 0, NULL, NULL, NULL);
	(void)zinit("new", 64, 0, 0);
	(void)zinitna(&zone, "new", 64, 0, 0);
#endif
	return 0;
}
