/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault injection, regression test for a bug found by the sweep (fixed in
 * oc_attach, which now asks for a thread's first magazines with M_NOWAIT
 * when the caller may not block, and falls back to the depot):
 * objcache_get with M_NOWAIT
 * must never wait, even on a thread's first use of a cache and under a
 * lasting page shortage (objcache.h: only M_WAITOK without M_NULLOK
 * blocks; spec 2.3).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabkit/objcache.h>

#include "harness.h"
#include "internal.h"

MALLOC_DEFINE(M_FLT_OC, "flt_oc", "objcache first-use backing");

/*
 * The bug (src/objcache.c, oc_attach): objcache_get(oc, M_NOWAIT) on a
 * thread's first use of a cache allocates the slot's state and magazines
 * with kmalloc M_WAITOK / M_INTWAIT, so under a lasting page shortage a
 * non-blocking get sleeps for waitok_timeout and then panics ("out of
 * memory: M_WAITOK waited ...") instead of returning NULL.  The kernel
 * allocates every CPU's magazines in objcache_create, so its M_NOWAIT get
 * never waits.
 */
static void
first_get_nowait(void *arg)
{
	struct objcache *oc = arg;
	void *o;

	slabkit_set_option("waitok_timeout", "200");
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, -1);
	o = objcache_get(oc, M_NOWAIT);
	slabkit_fault_clear();
	if (o != NULL)
		objcache_put(oc, o);
	_exit(0);
}

TEST(objcache_first_get_nowait_never_waits)
{
	struct objcache *oc = objcache_create_simple(M_FLT_OC, 4000);
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		first_get_nowait(oc);
	CHECK(pid > 0);
	if (pid <= 0)
		return;
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		printf("  KNOWN BUG: objcache_get(M_NOWAIT) on a thread's "
		       "first use of a cache waited and panicked "
		       "(status 0x%x)\n",
		    status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	objcache_destroy(oc);
}

int
main(void)
{
	RUN(objcache_first_get_nowait_never_waits);
	return sk_t_done();
}
