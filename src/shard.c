/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shards: the userspace "CPU" of the DragonFly allocators.
 *
 * In the kernel each CPU owns its slab zones (SLGlobalData), and a critical
 * section is all the locking the fast path needs.  Here a shard is either
 * a thread's or a CPU's.  Every thread that needs one owns a shard,
 * reached through one initial-exec TLS pointer (sk_tls_shard); the layers
 * above kmalloc (objcache, zone, kmalloc_obj) keep their per-thread state
 * in it, and kmalloc allocates from it until shards per CPU start (cpu.c),
 * after which kmalloc works on the current CPU's shard, made here too
 * (sk_shard_new_cpu) and taken for one call at a time.  The TLS pointers
 * start at a static empty shard whose zone lists are all empty, so the
 * kmalloc fast path has no "initialised?" test: the first allocation falls
 * into the slow path, which makes (or adopts) a real shard.
 *
 * Invariants:
 * - Only the holder reads or writes a shard's lists: a thread's shard is
 *   held by its thread, a CPU's by whoever took it (cpu.c).  Other threads
 *   reach a shard only through the atomic doorbell list `pend' (zones that
 *   got remote frees while off their list) and the zones' own atomic
 *   remote-free bitmaps and lists.
 * - A shard is never freed.  When a thread exits, the exit hooks of the
 *   other layers run (objcache magazines and zone caches go back to their
 *   depots), kmalloc drains and releases what it can, and the shard is
 *   parked on the orphan list.  The next thread that starts adopts it
 *   whole, zones, doorbell and statistics slot included: nothing leaks,
 *   nothing is freed twice, and thread churn costs no zone churn.  CPU
 *   shards live as long as the process.
 * - Shard ids are dense and stable; ids below SK_SLOT_SHARED own the
 *   statistics slot of the same number (holder-only updates, no atomic
 *   read-modify-write); the rest share the last slot with atomic adds.
 * - fork(): in the child only the forking thread survives.  Every other
 *   live thread's shard is retired there (never adopted: it may have been
 *   caught half-way through a lock-free update); its zones stay as they
 *   are.  CPU shards were held by the forking thread across the fork
 *   (cpu.c) and are consistent and free in the child.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "internal.h"

static struct sk_shard sk_shard_empty = {SK_SHARD_STATIC_INIT};

__thread struct sk_shard *sk_tls_shard = &sk_shard_empty;
__thread struct sk_shard *sk_tls_kshard = &sk_shard_empty; /* internal.h */

static struct sk_mutex shard_lock = SK_MUTEX_INITIALIZER("shard list");
static struct sk_shard *shard_all;	/* every shard, newest first */
static struct sk_shard *shard_orphans;	/* parked shards */
static int shard_next_id;		/* atomic reads */
static pthread_key_t shard_key;
static bool shard_key_ok;

static void (*exit_hooks[SK_MAX_EXIT_HOOKS])(struct sk_shard *);
static atomic_int exit_nhooks;

void sk_shard_init_late(void);

int
sk_shard_register_exit_hook(void (*fn)(struct sk_shard *sh))
{
	int i;

	sk_mutex_lock(&shard_lock);
	i = atomic_load(&exit_nhooks);
	for (int j = 0; j < i; j++) {
		if (exit_hooks[j] == fn) {
			sk_mutex_unlock(&shard_lock);
			return j;
		}
	}
	if (i >= SK_MAX_EXIT_HOOKS) {
		sk_mutex_unlock(&shard_lock);
		sk_panic("sk_shard_register_exit_hook", "too many hooks");
	}
	exit_hooks[i] = fn;
	atomic_store(&exit_nhooks, i + 1);
	sk_mutex_unlock(&shard_lock);
	return i;
}

static void
shard_thread_exit(void *arg)
{
	struct sk_shard *sh = arg;
	int n = atomic_load(&exit_nhooks);

	if (sh == NULL || sh->empty || sh != sk_tls_shard)
		return;
	sh->exiting = true;
	for (int i = 0; i < n; i++)
		exit_hooks[i](sh);
	sk_kmalloc_shard_exit(sh);
	sh->exiting = false;
	sk_tls_shard = &sk_shard_empty;
	sk_tls_kshard = &sk_shard_empty;
	sk_cpu_thread_exited();
	sk_mutex_lock(&shard_lock);
	sh->orphan = true;
	sh->orphan_next = shard_orphans;
	shard_orphans = sh;
	sk_mutex_unlock(&shard_lock);
}

/* A new shard for a thread (cpu -1) or for CPU cpu; NULL when out of
 * memory. */
static struct sk_shard *
shard_new(int cpu)
{
	struct sk_shard *sh;
	int why;

	sh = sk_os_map((sizeof(*sh) + sk_os_page_size() - 1) &
		~(sk_os_page_size() - 1),
	    sk_os_page_size(), &why);
	if (sh == NULL)
		return NULL;
	sh->cpu = cpu;
	sk_mutex_lock(&shard_lock);
	sh->id = shard_next_id;
	SK_STORE(&shard_next_id, shard_next_id + 1);
	sh->slot = sh->id < SK_SLOT_SHARED ? sh->id : SK_SLOT_SHARED;
	if (sh->slot == SK_SLOT_SHARED)
		sh->slow = SK_SHARD_SLOW_ALWAYS;
	sk_kmalloc_shard_setup(sh);
	sh->all_next = shard_all;
	shard_all = sh;
	sk_mutex_unlock(&shard_lock);
	return sh;
}

struct sk_shard *
sk_shard_new_cpu(int cpu)
{
	return shard_new(cpu);
}

struct sk_shard *
sk_shard_get_slow(void)
{
	struct sk_shard *sh;

	sk_init();
	sh = sk_tls_shard;
	if (!sh->empty)
		return sh;
	sk_mutex_lock(&shard_lock);
	sh = shard_orphans;
	if (sh != NULL) {
		shard_orphans = sh->orphan_next;
		sh->orphan_next = NULL;
		sh->orphan = false;
		sk_mutex_unlock(&shard_lock);
	} else {
		sk_mutex_unlock(&shard_lock);
		if ((sh = shard_new(-1)) == NULL)
			return &sk_shard_empty; /* callers fail the allocation */
	}
	sk_tls_shard = sh;
	if (shard_key_ok)
		pthread_setspecific(shard_key, sh);
	sk_cpu_thread_started();
	return sh;
}

void
sk_shard_foreach(void (*fn)(struct sk_shard *sh, void *arg), void *arg)
{
	sk_mutex_lock(&shard_lock);
	for (struct sk_shard *sh = shard_all; sh != NULL; sh = sh->all_next)
		fn(sh, arg);
	sk_mutex_unlock(&shard_lock);
}

void
sk_shard_foreach_orphan(void (*fn)(struct sk_shard *sh, void *arg), void *arg)
{
	sk_mutex_lock(&shard_lock);
	for (struct sk_shard *sh = shard_orphans; sh != NULL;
	     sh = sh->orphan_next)
		fn(sh, arg);
	sk_mutex_unlock(&shard_lock);
}

int
sk_shard_count(void)
{
	return SK_LOAD(&shard_next_id);
}

static void
shard_prefork(void)
{
	sk_types_lock();
	sk_mutex_lock(&shard_lock);
}

static void
shard_postfork_parent(void)
{
	sk_mutex_unlock(&shard_lock);
	sk_types_unlock();
}

static void
shard_postfork_child(void)
{
	struct sk_shard *me = sk_tls_shard;

	/* The forking thread holds both locks in the child too. */
	sk_mutex_unlock(&shard_lock);
	sk_types_unlock();
	sk_mutex_lock(&shard_lock);
	/*
	 * Threads other than this one do not exist in the child.  Their
	 * shards may have been in the middle of a kmalloc or kfree when the
	 * parent forked (the fast path takes no lock), so they are retired,
	 * never adopted: their zones stay mapped (copy-on-write), frees of
	 * their chunks in the child go to the zones' remote lists, and
	 * nothing is reused from a half-updated list.
	 */
	for (struct sk_shard *sh = shard_all; sh != NULL; sh = sh->all_next) {
		if (sh == me || sh->orphan || sh->cpu >= 0)
			continue; /* CPU shards were held across the fork */
		sh->orphan = true; /* not live, and not on the orphan list */
	}
	sk_mutex_unlock(&shard_lock);
}

void
sk_shard_init(void)
{
	shard_key_ok = pthread_key_create(&shard_key, shard_thread_exit) == 0;
}

void
sk_shard_init_late(void)
{
	sk_os_atfork(
	    shard_prefork, shard_postfork_parent, shard_postfork_child);
	if (shard_key_ok && !sk_tls_shard->empty)
		pthread_setspecific(shard_key, sk_tls_shard);
}
