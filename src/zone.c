/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zone: DragonFly BSD's zone allocator (vm/vm_zone.c) in userspace.
 *
 * Model.  A zone serves items of one size.  Free items sit on a global
 * list (linked through their first word, under the zone's spinlock) and
 * on one small cache per thread shard (zpcpu[slot], touched only by the
 * thread that owns the shard's slot: no lock, no atomic read-modify-write).
 * zalloc pops the caller's cache; when it is empty, it moves up to
 * zone_burst items from the global list, never taking the list below
 * zfreemin (PAGE_SIZE / zsize, at least 1); when the list is at or below
 * that reserve, the zone grows by mapping zalloc pages, keeps one new item
 * for the caller and puts the rest on the global list (spec 4.4).  zfree
 * pushes onto the caller's cache up to its cap, max(zmax / ncpus / 16, 64),
 * and onto the global list beyond it.  Shards whose slot is the shared
 * one (SK_SLOT_SHARED) skip the caches and use the global list.  When a
 * thread exits, a shard exit hook moves its cached items to the global
 * list, so nothing is stranded in a cache nobody owns.
 *
 * Type stability.  Memory given to a zone is never unmapped before
 * zdestroy.  A free item carries the free-list link in word 0 and the
 * ZENTRY_FREE marker in word 1; zalloc clears both words, so those are
 * the only bytes of an item the allocator ever writes after its creation,
 * and a fresh item (from a new mapping, or zbootinit's zeroed array) is
 * entirely zero on its first use.
 *
 * Checks, always on because they cost one load and compare: zfree of an
 * item whose marker is set panics "freeing free entry"; zalloc of an item
 * whose marker was overwritten while it was free (a write after free)
 * panics "entry not free".  As in the kernel's INVARIANTS build, a live
 * item that happens to hold 0x12342378 in word 1 is taken for a free one.
 *
 * Boot zones.  zbootinit threads a caller's static array onto the global
 * list and does nothing else: no mmap, no malloc, no library
 * initialisation, no shard.  Until zinitna completes such a zone uses only
 * the global list and cannot grow (its limit is the array); zinitna keeps
 * the items and the unrounded size and lets it grow.
 *
 * Interrupt zones (ZONE_INTERRUPT).  zinitna reserves address space for
 * nentries items up front (sk_os_reserve) plus a side array of 32-bit
 * links, one per item, and commits pages as the zone grows
 * (sk_os_commit), never past nentries.  Their free list is lock-free: the
 * head is one 64-bit word holding a generation tag and an item index, and
 * the links live in the side array, not in the items, so a pop never
 * reads an item that another thread may already own (no ABA, no race with
 * the user's writes).  The link of an allocated item holds ZLINK_ALLOC,
 * which makes double frees and foreign pointers detectable from the
 * index.  Growth runs under a small lock taken with every signal blocked,
 * so a signal handler can never wait for its own thread.  Hence zalloc and
 * zfree on an interrupt zone are async-signal-safe; they skip the thread
 * caches (which need the shard, created on first use).  A pair costs two
 * locked compare-and-swaps and nothing else locked: the free count is
 * read off the links by statistics, and requests are counted in the
 * thread's slot (a handler interrupting that very increment on its own
 * thread may lose one count, as the kernel's unlocked znalloc++ could).
 *
 * Promises.  Items are aligned to the largest power of two dividing zsize
 * (zsize is a multiple of 32 except in boot zones, where it is the
 * caller's, a multiple of the pointer size).  Every call may be made from
 * any thread; zalloc on a normal zone may block in mmap; interrupt zones
 * never block except for the brief growth lock.  Nothing here calls
 * malloc or kmalloc: zone structures, block records and reservations are
 * mapped through the os layer.
 *
 * Deviations from DragonFly (docs/deviations.md): per-thread shards instead of
 * per-CPU caches; a failed mapping makes a normal zone's zalloc return
 * NULL instead of sleeping; ZONE_SPECIAL and ZONE_USE_RESERVE are accepted
 * but change nothing (there is no kernel reserve); pages per growth are
 * our own formula; the free-entry checks are always on; interrupt zones
 * use the lock-free list and skip the per-thread caches; vmstat -z counts
 * cached items as free; zinitna also panics when ZONE_DESTROYABLE is
 * passed in flags, not only when it is preset.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

#include <slabkit/zone.h>

#include "internal.h"
#include "track.h"

#define ZONE_ROUNDING 32           /* spec 4.1 */
#define ZENTRY_FREE   0x12342378UL /* spec 4.1: word 1 of a free item */
#define ZENTRY_MARK   ((void *)ZENTRY_FREE)

/* zstate */
#define ZS_LISTED 0x01 /* on zlist */
#define ZS_READY  0x02 /* zinitna done: may grow */
#define ZS_CACHED 0x04 /* thread caches in use */
#define ZS_INTR   0x08 /* lock-free interrupt zone */
#define ZS_MAPPED 0x10 /* structure mapped by zinit */

/* Values of an interrupt zone's zlinks[] besides next index + 1. */
#define ZLINK_ALLOC   0xffffffffu /* handed out */
#define ZLINK_BUSY    0xfffffffeu /* being freed */
#define ZONE_INTR_MAX 0xfffffff0L /* most items an interrupt zone has */

_Static_assert(ZONE_NCACHES == SK_SLOT_SHARED,
    "one zone cache per unshared statistics slot");
_Static_assert(sizeof(struct vm_zpcpu) == SK_CACHELINE,
    "thread caches are one cache line each");

static pthread_mutex_t zlist_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct vm_zone *zlist; /* every listed zone, newest first */
static struct sk_once zone_hooks_once =
    SK_ONCE_INITIALIZER("zone set-up");

/* sysctl vm.zone_kmem_pages, vm.zone_kern_pages, vm.zone_kmem_kvaspace */
static long zone_kmem_pages;    /* atomic */
static long zone_kern_pages;    /* atomic */
static long zone_kmem_kvaspace; /* atomic */

/* ------------------------------------------------------------------ */
/* Small helpers */

static inline size_t
zone_round_page(size_t n)
{
	size_t ps = sk_os_page_size();

	return (n + ps - 1) & ~(ps - 1);
}

/*
 * The kernel's spinlock.  Critical sections are a few dozen instructions
 * (no system call is ever made under zspin), but threads here can be
 * preempted, so a waiter yields after a short spin.
 */
static void __attribute__((noinline)) zone_spin_slow(int *l)
{
	unsigned n = 0;

	for (;;) {
		while (__atomic_load_n(l, __ATOMIC_RELAXED) != 0) {
			if (++n < 64)
				sk_cpu_relax();
			else
				sched_yield();
		}
		if (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0)
			return;
	}
}

static inline void
zone_spin_lock(int *l)
{
	if (SK_UNLIKELY(__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) != 0))
		zone_spin_slow(l);
}

static inline void
zone_spin_unlock(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static _Noreturn void __attribute__((cold, noinline))
zone_entry_not_free(struct vm_zone *z, void *item)
{
	sk_panic(
	    "zalloc", "entry not free in zone %s (ptr %p)", z->zname, item);
}

static _Noreturn void __attribute__((cold, noinline))
zone_freeing_free(struct vm_zone *z, void *item)
{
	sk_panic(
	    "zfree", "freeing free entry in zone %s (ptr %p)", z->zname, item);
}

static _Noreturn void __attribute__((cold, noinline))
zone_alloc_failed(struct vm_zone *z)
{
	sk_panic("zalloc", "zalloc(%s) failed", z->zname);
}

/* Check and clear the free-list words of an item being handed out. */
static inline void *
zone_hand_out(struct vm_zone *z, void **item)
{
	if (SK_UNLIKELY(item[1] != ZENTRY_MARK))
		zone_entry_not_free(z, item);
	item[0] = NULL;
	item[1] = NULL;
	SK_TRACK_ZITEM_SHOW(z, item);
	return item;
}

/* Pop the global list; zspin held, zfreecnt > 0. */
static inline void **
zone_global_pop(struct vm_zone *z)
{
	void **item = z->zitems;

	if (SK_UNLIKELY(item[1] != ZENTRY_MARK))
		zone_entry_not_free(z, item);
	z->zitems = item[0];
	z->zfreecnt--;
	return item;
}

/* ------------------------------------------------------------------ */
/* Interrupt zones: the lock-free list over item indices */

static inline void *
zone_intr_item(struct vm_zone *z, uint32_t i)
{
	if (i < (uint32_t)z->zbootcnt)
		return z->zbootbase + (size_t)i * (size_t)z->zsize;
	return (char *)z->zkva +
	       (size_t)(i - (uint32_t)z->zbootcnt) * (size_t)z->zsize;
}

/* Index of an item; panics for a pointer the zone never handed out. */
static uint32_t
zone_intr_index(struct vm_zone *z, void *item)
{
	uintptr_t p = (uintptr_t)item, off;
	size_t zsize = (size_t)z->zsize;
	long carved = SK_LOAD_ACQ(&z->zcarved);
	uint32_t base;

	if (p - z->zkva < (uintptr_t)carved * zsize) {
		off = p - z->zkva;
		base = (uint32_t)z->zbootcnt;
	} else if (p - (uintptr_t)z->zbootbase <
	           (uintptr_t)z->zbootcnt * zsize) {
		off = p - (uintptr_t)z->zbootbase;
		base = 0;
	} else {
		sk_panic(
		    "zfree", "item not from zone %s (ptr %p)", z->zname, item);
	}
	if (off % zsize != 0)
		sk_panic("zfree", "interior pointer into zone %s (ptr %p)",
		    z->zname, item);
	return base + (uint32_t)(off / zsize);
}

/* Push the chain first..last (links already set between them). */
static void
zone_intr_push_chain(struct vm_zone *z, uint32_t first, uint32_t last)
{
	uint64_t h = __atomic_load_n(&z->zhead, __ATOMIC_RELAXED), nh;

	do {
		__atomic_store_n(
		    &z->zlinks[last], (uint32_t)h, __ATOMIC_RELAXED);
		nh = (((h >> 32) + 1) << 32) | (uint64_t)(first + 1);
	} while (!__atomic_compare_exchange_n(
	    &z->zhead, &h, nh, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/*
 * REQUESTS of an interrupt zone: in the thread's slot when it has one
 * (owner-only, no locked operation; a handler that interrupts its own
 * thread between the load and the store of this counter loses one count,
 * as the kernel's unlocked znalloc++ could), else on the zone.
 */
static inline void
zone_intr_count_request(struct vm_zone *z)
{
	struct sk_shard *sh = sk_shard_current();

	if (SK_LIKELY(sh->slot < ZONE_NCACHES))
		SK_OWNER_ADD(&z->zpcpu[sh->slot].znalloc, 1);
	else
		__atomic_fetch_add(&z->znalloc, 1, __ATOMIC_RELAXED);
}

static void *
zone_intr_pop(struct vm_zone *z)
{
	uint64_t h = __atomic_load_n(&z->zhead, __ATOMIC_ACQUIRE), nh;
	uint32_t idx, next;

	for (;;) {
		idx = (uint32_t)h;
		if (idx == 0)
			return NULL;
		/*
		 * A stale head may make this read a link that is being
		 * rewritten; the tag then differs and the CAS fails.
		 */
		next = __atomic_load_n(&z->zlinks[idx - 1], __ATOMIC_RELAXED);
		nh = (((h >> 32) + 1) << 32) | next;
		if (__atomic_compare_exchange_n(&z->zhead, &h, nh, true,
		        __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			break;
	}
	__atomic_store_n(&z->zlinks[idx - 1], ZLINK_ALLOC, __ATOMIC_RELAXED);
	zone_intr_count_request(z);
	return zone_hand_out(z, zone_intr_item(z, idx - 1));
}

static void
zone_intr_free(struct vm_zone *z, void *item)
{
	uint32_t i = zone_intr_index(z, item);

	/*
	 * Not an exchange: a double free is a bug, and two of them racing
	 * may slip past as in the kernel; one less locked operation.
	 */
	if (__atomic_load_n(&z->zlinks[i], __ATOMIC_RELAXED) != ZLINK_ALLOC)
		zone_freeing_free(z, item);
	__atomic_store_n(&z->zlinks[i], ZLINK_BUSY, __ATOMIC_RELAXED);
	((void **)item)[1] = ZENTRY_MARK;
	zone_intr_push_chain(z, i, i);
}

/* Commit pages [*have, want) of a region of the reservation. */
static int
zone_intr_commit(char *region, long *have, long want)
{
	size_t ps = sk_os_page_size();

	if (want <= *have)
		return 0;
	if (sk_os_commit(
	        region + (size_t)*have * ps, (size_t)(want - *have) * ps) != 0)
		return -1;
	SK_STORE(have, want);
	return 0;
}

/*
 * zget for an interrupt zone (spec 4.4): commit the next zalloc pages of
 * the reservation (never past zpagemax), carve the items that now fit
 * (never past zmax), keep the first for the caller and push the rest.
 * Called with zgrow held and signals blocked, or during zinitna.
 */
static void *
zone_intr_carve(struct vm_zone *z)
{
	size_t ps = sk_os_page_size(), zsize = (size_t)z->zsize;
	long carved = z->zcarved, limit = z->zmax - z->zbootcnt;
	long pages = z->zpagecount, want, nitems, fit;
	uint32_t first, i;

	if (carved >= limit)
		return NULL;
	if ((size_t)pages * ps < (size_t)(carved + 1) * zsize) {
		long need =
		    (long)(((size_t)(carved + 1) * zsize + ps - 1) / ps);

		want = pages + z->zalloc;
		if (want < need)
			want = need;
		if (want > z->zpagemax)
			want = z->zpagemax;
		if (zone_intr_commit((char *)z->zkva, &z->zpagecount, want))
			return NULL;
		__atomic_fetch_add(
		    &zone_kmem_pages, want - pages, __ATOMIC_RELAXED);
		pages = want;
	}
	fit = (long)((size_t)pages * ps / zsize);
	if (fit > limit)
		fit = limit;
	nitems = fit - carved;
	want =
	    (long)(((size_t)(z->zbootcnt + fit) * sizeof(uint32_t) + ps - 1) /
	           ps);
	if (zone_intr_commit((char *)z->zlinks, &z->zlinkpages, want))
		return NULL;
	first = (uint32_t)(z->zbootcnt + carved);
	__atomic_store_n(&z->zlinks[first], ZLINK_ALLOC, __ATOMIC_RELAXED);
	for (i = first + 1; i < first + (uint32_t)nitems; i++) {
		((void **)zone_intr_item(z, i))[1] = ZENTRY_MARK;
		/* a link holds the next index + 1 */
		__atomic_store_n(&z->zlinks[i], i + 2, __ATOMIC_RELAXED);
	}
	/* Publish the range before any of it can be handed out and freed. */
	SK_STORE_REL(&z->zcarved, fit);
	SK_STORE(&z->ztotal, z->ztotal + nitems);
	__atomic_fetch_add(&z->znalloc, 1, __ATOMIC_RELAXED);
	if (nitems > 1)
		zone_intr_push_chain(
		    z, first + 1, first + (uint32_t)nitems - 1);
	return zone_intr_item(z, first);
}

static void *
zone_intr_grow(struct vm_zone *z)
{
	sigset_t all, old;
	void *item;

	/* Full for good (carving only grows): no system call for a NULL. */
	if (SK_LOAD_ACQ(&z->zcarved) >= z->zmax - z->zbootcnt)
		return zone_intr_pop(z);
	/* No handler may run on this thread while it holds zgrow. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	zone_spin_lock(&z->zgrow);
	item = zone_intr_pop(z); /* someone may have grown meanwhile */
	if (item == NULL)
		item = zone_intr_carve(z);
	zone_spin_unlock(&z->zgrow);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return item;
}

/* ------------------------------------------------------------------ */
/* Normal zones: growth */

/* Remember a block of a destroyable zone (the kernel's zkmvec). */
static bool
zone_record_block(struct vm_zone *z, void *block)
{
	size_t ps = sk_os_page_size();

	for (;;) {
		uintptr_t *nv, *old = NULL;
		long oldmax, newmax;
		size_t oldlen = 0, newlen;
		int why;

		zone_spin_lock(&z->zspin);
		if (z->zkmcur < z->zkmmax) {
			z->zkmvec[z->zkmcur++] = (uintptr_t)block;
			zone_spin_unlock(&z->zspin);
			return true;
		}
		oldmax = z->zkmmax;
		zone_spin_unlock(&z->zspin);
		newmax =
		    oldmax != 0 ? oldmax * 2 : (long)(ps / sizeof(uintptr_t));
		newlen = zone_round_page((size_t)newmax * sizeof(uintptr_t));
		nv = sk_os_map(newlen, ps, &why);
		if (nv == NULL)
			return false;
		zone_spin_lock(&z->zspin);
		if (z->zkmmax == oldmax) {
			if (z->zkmcur != 0)
				memcpy(nv, z->zkmvec,
				    (size_t)z->zkmcur * sizeof(uintptr_t));
			old = z->zkmvec;
			oldlen =
			    zone_round_page((size_t)oldmax * sizeof(uintptr_t));
			z->zkmvec = nv;
			z->zkmmax = newmax;
			nv = NULL;
		}
		zone_spin_unlock(&z->zspin);
		if (old != NULL)
			sk_os_unmap(old, oldlen);
		if (nv != NULL)
			sk_os_unmap(nv, newlen);
	}
}

/*
 * zget for a normal zone (spec 4.4): map zalloc pages, keep the first
 * item for the caller, put the rest on the global list.  Without memory
 * (or before zinitna, for a boot zone), fall back to a global free item.
 */
static void *
zone_get(struct vm_zone *z)
{
	size_t ps = sk_os_page_size(), zsize = (size_t)z->zsize, nbytes = 0;
	char *block = NULL;
	long nitems = 0, i;
	void **item;
	int why;

	if (z->zstate & ZS_READY) {
		nbytes = (size_t)z->zalloc * ps;
		block = sk_os_map(nbytes, ps, &why);
		if (block != NULL && (z->zflags & ZONE_DESTROYABLE) &&
		    !zone_record_block(z, block)) {
			sk_os_unmap(block, nbytes);
			block = NULL;
		}
		if (block != NULL) {
			nitems = (long)(nbytes / zsize);
			__atomic_fetch_add(
			    &zone_kern_pages, z->zalloc, __ATOMIC_RELAXED);
		}
	}
	/* Thread items 1..n-1 before taking the lock. */
	for (i = 1; i < nitems; i++) {
		item = (void **)(block + (size_t)i * zsize);
		item[0] =
		    i + 1 < nitems ? block + (size_t)(i + 1) * zsize : NULL;
		item[1] = ZENTRY_MARK;
	}
	zone_spin_lock(&z->zspin);
	if (nitems != 0) {
		z->ztotal += nitems;
		z->zpages += z->zalloc;
		if (nitems > 1) {
			item = (void **)(block + (size_t)(nitems - 1) * zsize);
			item[0] = z->zitems;
			z->zitems = block + zsize;
			z->zfreecnt += nitems - 1;
		}
		z->znalloc++;
		zone_spin_unlock(&z->zspin);
		return block;
	}
	if (z->zfreecnt > 0) {
		item = zone_global_pop(z);
		z->znalloc++;
		zone_spin_unlock(&z->zspin);
		return zone_hand_out(z, item);
	}
	zone_spin_unlock(&z->zspin);
	return NULL;
}

static void *
zone_grow_or_fail(struct vm_zone *z)
{
	void *item = zone_get(z);

	if (item == NULL && (z->zflags & ZONE_PANICFAIL))
		zone_alloc_failed(z);
	return item;
}

/* ------------------------------------------------------------------ */
/* zalloc / zfree */

/* Global-list allocation: boot zones and threads on the shared slot. */
static void *
zone_alloc_global(struct vm_zone *z)
{
	long reserve = (z->zstate & ZS_READY) ? z->zfreemin : 0;
	void **item;

	zone_spin_lock(&z->zspin);
	if (z->zfreecnt > reserve) {
		item = zone_global_pop(z);
		z->znalloc++;
		zone_spin_unlock(&z->zspin);
		return zone_hand_out(z, item);
	}
	zone_spin_unlock(&z->zspin);
	return zone_grow_or_fail(z);
}

/*
 * spec 4.4 zalloc step 2: move up to zone_burst items to this thread's
 * cache, never taking the global list below zfreemin.  0 when there was
 * nothing to move.
 */
static int
zone_refill(struct vm_zone *z, struct vm_zpcpu *pc)
{
	int n = SK_LOAD(&sk_opt.zone_burst);
	long moved = 0;
	void **item;

	zone_spin_lock(&z->zspin);
	if (z->zfreecnt <= z->zfreemin) {
		zone_spin_unlock(&z->zspin);
		return 0;
	}
	do {
		item = zone_global_pop(z);
		item[0] = pc->zitems;
		pc->zitems = item;
		moved++;
	} while (--n > 0 && z->zfreecnt > z->zfreemin);
	zone_spin_unlock(&z->zspin);
	SK_OWNER_ADD(&pc->zfreecnt, moved);
	return 1;
}

/*
 * Everything but the cache hit: checks, interrupt zones, boot zones, the
 * shared slot, the first call on a thread (its shard is still the static
 * empty one, whose slot is the shared one), refills and growth.
 */
static void *__attribute__((noinline)) zone_alloc_slow(struct vm_zone *z)
{
	struct sk_shard *sh;
	struct vm_zpcpu *pc;
	void **item;

	if (SK_UNLIKELY(z == NULL))
		sk_panic("zalloc", "invalid zone (NULL)");
	if (z->zstate & ZS_INTR) {
		item = zone_intr_pop(z);
		if (item == NULL)
			item = zone_intr_grow(z);
		if (item == NULL && (z->zflags & ZONE_PANICFAIL))
			zone_alloc_failed(z);
		return item;
	}
	if (!(z->zstate & ZS_CACHED))
		return zone_alloc_global(z);
	sh = sk_shard_get();
	if (sh->slot >= ZONE_NCACHES)
		return zone_alloc_global(z);
	pc = &z->zpcpu[sh->slot];
	do {
		item = pc->zitems;
		if (item != NULL) {
			pc->zitems = item[0];
			SK_OWNER_ADD(&pc->zfreecnt, -1);
			SK_OWNER_ADD(&pc->znalloc, 1);
			return zone_hand_out(z, item);
		}
	} while (zone_refill(z, pc));
	return zone_grow_or_fail(z);
}

void *
zalloc(vm_zone_t z)
{
	struct sk_shard *sh;
	struct vm_zpcpu *pc;
	void **item;

	/* spec 4.4 zalloc step 1: this thread's cache, no lock */
	if (SK_LIKELY(z != NULL &&
	              (z->zstate & (ZS_INTR | ZS_CACHED)) == ZS_CACHED)) {
		sh = sk_shard_current();
		if (SK_LIKELY(sh->slot < ZONE_NCACHES)) {
			pc = &z->zpcpu[sh->slot];
			item = pc->zitems;
			if (SK_LIKELY(item != NULL && item[1] == ZENTRY_MARK)) {
				pc->zitems = item[0];
				SK_OWNER_ADD(&pc->zfreecnt, -1);
				SK_OWNER_ADD(&pc->znalloc, 1);
				item[0] = NULL;
				item[1] = NULL;
				SK_TRACK_ZITEM_SHOW_RETURN(z, item);
				return item;
			}
		}
	}
	return zone_alloc_slow(z);
}

static void __attribute__((noinline))
zone_free_slow(struct vm_zone *z, void **item)
{
	struct sk_shard *sh;
	struct vm_zpcpu *pc;

	if (SK_UNLIKELY(z == NULL))
		sk_panic("zfree", "invalid zone (NULL) (ptr %p)", item);
	if (SK_UNLIKELY(item == NULL))
		sk_panic("zfree", "freeing NULL to zone %s", z->zname);
	SK_TRACK_ZITEM_HIDE(z, item); /* until zalloc hands it out (track.h) */
	if (z->zstate & ZS_INTR) {
		zone_intr_free(z, item);
		return;
	}
	if (z->zstate & ZS_CACHED) {
		sh = sk_shard_get();
		pc = &z->zpcpu[sh->slot < ZONE_NCACHES ? sh->slot : 0];
		if (sh->slot < ZONE_NCACHES && pc->zfreecnt < z->zmax_pcpu) {
			if (SK_UNLIKELY(item[1] == ZENTRY_MARK))
				zone_freeing_free(z, item);
			item[0] = pc->zitems;
			item[1] = ZENTRY_MARK;
			pc->zitems = item;
			SK_OWNER_ADD(&pc->zfreecnt, 1);
			return;
		}
	}
	/* spec 4.4 zfree: beyond the cap, the global list */
	zone_spin_lock(&z->zspin);
	if (SK_UNLIKELY(item[1] == ZENTRY_MARK))
		zone_freeing_free(z, item);
	item[0] = z->zitems;
	item[1] = ZENTRY_MARK;
	z->zitems = item;
	z->zfreecnt++;
	zone_spin_unlock(&z->zspin);
}

void
zfree(vm_zone_t z, void *ptr)
{
	struct sk_shard *sh;
	struct vm_zpcpu *pc;
	void **item = ptr;

	/* spec 4.4 zfree: this thread's cache while below its cap */
	if (SK_LIKELY(z != NULL && item != NULL &&
	              (z->zstate & (ZS_INTR | ZS_CACHED)) == ZS_CACHED)) {
		sh = sk_shard_current();
		if (SK_LIKELY(sh->slot < ZONE_NCACHES)) {
			pc = &z->zpcpu[sh->slot];
			if (SK_LIKELY(pc->zfreecnt < z->zmax_pcpu &&
			              item[1] != ZENTRY_MARK)) {
				item[0] = pc->zitems;
				item[1] = ZENTRY_MARK;
				pc->zitems = item;
				SK_OWNER_ADD(&pc->zfreecnt, 1);
				SK_TRACK_ZITEM_HIDE(z, item); /* track.h */
				return;
			}
		}
	}
	zone_free_slow(z, item);
}

/* ------------------------------------------------------------------ */
/* Thread exit and fork */

/* Move one thread cache to the global list (its owner, or at exit). */
static void
zone_cache_flush(struct vm_zone *z, struct vm_zpcpu *pc)
{
	void **head = pc->zitems, **tail = head;
	long n = 1;

	if (head == NULL)
		return;
	while (tail[0] != NULL) {
		tail = tail[0];
		n++;
	}
	zone_spin_lock(&z->zspin);
	tail[0] = z->zitems;
	z->zitems = head;
	z->zfreecnt += n;
	zone_spin_unlock(&z->zspin);
	pc->zitems = NULL;
	SK_STORE(&pc->zfreecnt, 0);
}

/* Shard exit hook: runs on the exiting thread, the cache's owner. */
static void
zone_shard_exit(struct sk_shard *sh)
{
	if (sh->slot >= ZONE_NCACHES)
		return;
	pthread_mutex_lock(&zlist_mtx);
	for (struct vm_zone *z = zlist; z != NULL; z = z->zlink.le_next)
		if (z->zstate & ZS_CACHED)
			zone_cache_flush(z, &z->zpcpu[sh->slot]);
	pthread_mutex_unlock(&zlist_mtx);
}

/*
 * fork(): no zone lock may be held by a thread that will not exist in the
 * child.  Signals stay blocked from prepare to parent/child, as while any
 * growth lock is held, so no handler on this thread waits for one of them
 * (zlist_mtx serialises forks, so one saved mask is enough).
 */
static sigset_t zone_fork_mask;

static void
zone_prefork(void)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_mutex_lock(&zlist_mtx);
	zone_fork_mask = old;
	for (struct vm_zone *z = zlist; z != NULL; z = z->zlink.le_next) {
		zone_spin_lock(&z->zgrow);
		zone_spin_lock(&z->zspin);
	}
}

static void
zone_postfork(void)
{
	sigset_t old = zone_fork_mask;

	for (struct vm_zone *z = zlist; z != NULL; z = z->zlink.le_next) {
		zone_spin_unlock(&z->zspin);
		zone_spin_unlock(&z->zgrow);
	}
	pthread_mutex_unlock(&zlist_mtx);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
zone_register_hooks(void)
{
	sk_shard_register_exit_hook(zone_shard_exit);
	sk_os_atfork(zone_prefork, zone_postfork, zone_postfork);
}

/* ------------------------------------------------------------------ */
/* Creation and destruction */

static void
zone_list_insert(struct vm_zone *z)
{
	pthread_mutex_lock(&zlist_mtx);
	z->zlink.le_next = zlist;
	if (zlist != NULL)
		zlist->zlink.le_prev = &z->zlink.le_next;
	z->zlink.le_prev = &zlist;
	zlist = z;
	z->zstate |= ZS_LISTED;
	pthread_mutex_unlock(&zlist_mtx);
}

static void
zone_list_remove(struct vm_zone *z)
{
	pthread_mutex_lock(&zlist_mtx);
	if (z->zlink.le_next != NULL)
		z->zlink.le_next->zlink.le_prev = z->zlink.le_prev;
	*z->zlink.le_prev = z->zlink.le_next;
	z->zstate &= ~(uint32_t)ZS_LISTED;
	pthread_mutex_unlock(&zlist_mtx);
}

void
zbootinit(vm_zone_t z, const char *name, size_t size, void *item, long nitems)
{
	char *base = item;

	if (z == NULL)
		sk_panic("zbootinit", "invalid zone (NULL)");
	if (z->zstate & ZS_LISTED)
		sk_panic("zbootinit", "zone %s initialised twice", z->zname);
	if (size < 2 * sizeof(void *) || size % sizeof(void *) != 0 ||
	    (uintptr_t)item % sizeof(void *) != 0)
		sk_panic("zbootinit",
		    "zone %s: item size %zu or array %p not pointer-aligned",
		    name, size, item);
	if (nitems < 0 || (nitems > 0 && item == NULL))
		sk_panic("zbootinit", "zone %s: bad array (%ld items at %p)",
		    name, nitems, item);
	if (nitems > 0)
		memset(item, 0, size * (size_t)nitems);
	/*
	 * As the kernel threads them: each item is pushed on the list in
	 * array order, so the last item is handed out first and the first
	 * item last (spec 4.3).
	 */
	for (long i = 0; i < nitems; i++) {
		void **w = (void **)(base + (size_t)i * size);

		w[0] = i > 0 ? base + (size_t)(i - 1) * size : NULL;
		w[1] = ZENTRY_MARK;
	}
	z->zname = name;
	z->zsize = (long)size;
	z->zflags = ZONE_BOOT;
	z->zfreemin = 0;
	z->zalloc = 0;
	z->zitems = nitems > 0 ? base + (size_t)(nitems - 1) * size : NULL;
	z->zfreecnt = nitems;
	z->zmax = nitems;
	z->ztotal = nitems;
	z->zbootbase = base;
	z->zbootcnt = nitems;
	zone_list_insert(z);
}

/* Reserve an interrupt zone's items and links (spec 4.4, zinitna). */
static int
zone_intr_reserve(struct vm_zone *z, long nentries)
{
	size_t ps = sk_os_page_size(), zsize = (size_t)z->zsize;
	size_t ibytes, lbytes;
	char *base;
	int why;

	if (nentries <= 0 || nentries > ZONE_INTR_MAX - z->zbootcnt ||
	    (size_t)nentries > SIZE_MAX / 2 / zsize)
		return 0;
	ibytes = zone_round_page(zsize * (size_t)nentries);
	lbytes = zone_round_page(
	    sizeof(uint32_t) * (size_t)(z->zbootcnt + nentries));
	base = sk_os_reserve(ibytes + lbytes, ps, &why);
	if (base == NULL)
		return 0;
	z->zlinkpages = 0;
	z->zlinks = (uint32_t *)(base + ibytes);
	if (z->zbootcnt > 0 &&
	    zone_intr_commit((char *)z->zlinks, &z->zlinkpages,
	        (long)zone_round_page(sizeof(uint32_t) * (size_t)z->zbootcnt) /
	            (long)ps) != 0) {
		sk_os_unmap(base, ibytes + lbytes);
		z->zlinks = NULL;
		return 0;
	}
	z->zkva = (uintptr_t)base;
	z->zresv = ibytes + lbytes;
	z->zpagemax = (long)(ibytes / ps);
	z->zpagecount = 0;
	z->zcarved = 0;
	z->zhead = 0;
	__atomic_fetch_add(
	    &zone_kmem_kvaspace, (long)z->zresv, __ATOMIC_RELAXED);
	return 1;
}

/* A boot zone becoming an interrupt zone: its free items go lock-free. */
static void
zone_intr_adopt_boot(struct vm_zone *z)
{
	void **item, **next;
	uint32_t i;

	for (i = 0; i < (uint32_t)z->zbootcnt; i++)
		__atomic_store_n(&z->zlinks[i], ZLINK_ALLOC, __ATOMIC_RELAXED);
	zone_spin_lock(&z->zspin);
	for (item = z->zitems; item != NULL; item = next) {
		next = item[0];
		i = zone_intr_index(z, item);
		zone_intr_push_chain(z, i, i);
	}
	z->zitems = NULL;
	zone_spin_unlock(&z->zspin);
}

static int
zone_init(struct vm_zone *z, const char *name, size_t size, long nentries,
    uint32_t flags, bool destroyable)
{
	size_t ps = sk_os_page_size();
	long per, ncpus;
	bool boot = (z->zflags & ZONE_BOOT) != 0;

	if (boot ? (z->zstate & ZS_READY) != 0 : (z->zstate & ZS_LISTED) != 0)
		sk_panic("zinitna", "zone %s initialised twice", z->zname);
	sk_once(&zone_hooks_once, zone_register_hooks);
	if (!boot) {
		/* spec 4.1: ZONE_ROUNDING; a size of 0 still gets an item */
		size_t zs =
		    (size + ZONE_ROUNDING - 1) & ~(size_t)(ZONE_ROUNDING - 1);

		if (size > SIZE_MAX / 4)
			return 0;
		z->zsize = (long)(zs != 0 ? zs : ZONE_ROUNDING);
		z->zname = name;
		z->zitems = NULL;
		z->zfreecnt = 0;
		z->ztotal = 0;
		z->znalloc = 0;
		z->zmax = 0;
	}
	z->zkmvec = NULL;
	z->zkmcur = z->zkmmax = 0;
	/* spec 4.4 (newest: derived, at most ZONE_MAXPGLOAD per item run) */
	per = (long)(((size_t)z->zsize + ps - 1) / ps);
	z->zalloc = per * (ZONE_MAXPGLOAD / per > 1 ? ZONE_MAXPGLOAD / per : 1);
	z->zfreemin = (size_t)z->zsize > ps ? 1 : (long)(ps / (size_t)z->zsize);
	if (flags & ZONE_INTERRUPT) {
		if (!zone_intr_reserve(z, nentries))
			return 0;
		z->zmax += nentries; /* boot items count (spec 4.4) */
	} else {
		z->zmax = 0;
	}
	ncpus = sk_os_ncpus();
	z->zmax_pcpu = z->zmax / ncpus / 16;
	if (z->zmax_pcpu < 64)
		z->zmax_pcpu = 64;
	z->zflags |= (long)flags | (destroyable ? ZONE_DESTROYABLE : 0);
	if (flags & ZONE_INTERRUPT) {
		void *item;

		if (boot)
			zone_intr_adopt_boot(z);
		z->zstate |= ZS_READY | ZS_INTR;
		if (!boot)
			zone_list_insert(z);
		/* Populate at creation, as the kernel does. */
		item = zone_intr_carve(z);
		if (item != NULL)
			zfree(z, item);
		return 1;
	}
	z->zstate |= ZS_READY | ZS_CACHED;
	if (!boot)
		zone_list_insert(z);
	return 1;
}

int
zinitna(
    vm_zone_t z, const char *name, size_t size, long nentries, uint32_t flags)
{
	if (z == NULL)
		sk_panic("zinitna", "invalid zone (NULL)");
	/* Only zinit's zones may be destroyed (spec 4.1). */
	if ((z->zflags | (long)flags) & ZONE_DESTROYABLE)
		sk_panic("zinitna", "can't create destroyable zone %s",
		    name != NULL ? name : "(null)");
	return zone_init(z, name, size, nentries, flags, false);
}

vm_zone_t
zinit(const char *name, size_t size, long nentries, uint32_t flags)
{
	size_t len = zone_round_page(sizeof(struct vm_zone));
	struct vm_zone *z;
	int why;

	z = sk_os_map(len, sk_os_page_size(), &why);
	if (z == NULL)
		return NULL;
	z->zstate = ZS_MAPPED;
	if (!zone_init(z, name, size, nentries,
	        flags & ~(uint32_t)ZONE_DESTROYABLE,
	        (flags & ZONE_DESTROYABLE) != 0)) {
		sk_os_unmap(z, len);
		return NULL;
	}
	return z;
}

void
zdestroy(vm_zone_t z)
{
	size_t ps = sk_os_page_size();

	if (z == NULL)
		sk_panic("zdestroy", "null zone");
	if (!(z->zflags & ZONE_DESTROYABLE) || !(z->zstate & ZS_MAPPED))
		sk_panic("zdestroy", "undestroyable zone %s", z->zname);
	zone_list_remove(z);
	if (z->zstate & ZS_INTR) {
		SK_TRACK_RESET((void *)z->zkva, z->zresv);
		sk_os_unmap((void *)z->zkva, z->zresv);
		__atomic_fetch_sub(
		    &zone_kmem_pages, z->zpagecount, __ATOMIC_RELAXED);
		__atomic_fetch_sub(
		    &zone_kmem_kvaspace, (long)z->zresv, __ATOMIC_RELAXED);
	} else {
		for (long i = 0; i < z->zkmcur; i++)
			SK_TRACK_RESET((void *)z->zkmvec[i], z->zalloc * ps);
		for (long i = 0; i < z->zkmcur; i++)
			sk_os_unmap(
			    (void *)z->zkmvec[i], (size_t)z->zalloc * ps);
		__atomic_fetch_sub(
		    &zone_kern_pages, z->zpages, __ATOMIC_RELAXED);
		if (z->zkmvec != NULL)
			sk_os_unmap(z->zkmvec,
			    zone_round_page(
			        (size_t)z->zkmmax * sizeof(uintptr_t)));
	}
	sk_os_unmap(z, zone_round_page(sizeof(struct vm_zone)));
}

/* ------------------------------------------------------------------ */
/* Statistics (spec 5: vm.zone, vmstat -z) */

/*
 * Free items of an interrupt zone, read off the links: the fast paths keep
 * no free count (one locked operation less per call), statistics are rare.
 */
static long
zone_intr_count_free(struct vm_zone *z)
{
	long n = z->zbootcnt + SK_LOAD_ACQ(&z->zcarved), nfree = 0;

	for (long i = 0; i < n; i++) {
		uint32_t l = __atomic_load_n(&z->zlinks[i], __ATOMIC_RELAXED);

		nfree += l != ZLINK_ALLOC && l != ZLINK_BUSY;
	}
	return nfree;
}

static void
zone_snapshot(struct vm_zone *z, struct vm_zone_stats *st)
{
	long cached = 0;

	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->version = SLABKIT_STATS_VERSION;
	st->name = z->zname;
	st->itemsize = (size_t)z->zsize;
	st->limit = z->zmax;
	st->flags = (uint32_t)z->zflags;
	if (z->zstate & ZS_INTR) {
		st->total = SK_LOAD(&z->ztotal);
		st->free = zone_intr_count_free(z);
		st->requests = (uint64_t)SK_LOAD(&z->znalloc);
		st->pages = SK_LOAD(&z->zpagecount);
	} else {
		zone_spin_lock(&z->zspin);
		st->total = z->ztotal;
		st->free = z->zfreecnt;
		st->requests = (uint64_t)z->znalloc;
		st->pages = z->zpages;
		zone_spin_unlock(&z->zspin);
	}
	if (z->zstate & (ZS_CACHED | ZS_INTR)) {
		int n = sk_shard_count();

		if (n > ZONE_NCACHES)
			n = ZONE_NCACHES;
		for (int i = 0; i < n; i++) {
			cached += SK_LOAD(&z->zpcpu[i].zfreecnt);
			st->requests += (uint64_t)SK_LOAD(&z->zpcpu[i].znalloc);
		}
	}
	if (cached < 0)
		cached = 0;
	st->cached = cached;
	st->free += cached;
	if (st->free < 0)
		st->free = 0;
	st->used = st->total > st->free ? st->total - st->free : 0;
}

int
slabkit_zone_stats(struct vm_zone *z, struct vm_zone_stats *st)
{
	if (z == NULL || st == NULL)
		return 22; /* EINVAL */
	zone_snapshot(z, st);
	return 0;
}

int
slabkit_zone_foreach(
    int (*fn)(struct vm_zone *z, const struct vm_zone_stats *st, void *arg),
    void *arg)
{
	struct vm_zone_stats st;
	int rc = 0;

	pthread_mutex_lock(&zlist_mtx);
	for (struct vm_zone *z = zlist; z != NULL; z = z->zlink.le_next) {
		zone_snapshot(z, &st);
		if ((rc = fn(z, &st, arg)) != 0)
			break;
	}
	pthread_mutex_unlock(&zlist_mtx);
	return rc;
}

struct zone_print {
	FILE *fp;
	int n;
};

/* One vm.zone row: "name:" padded to 13 columns, then the counters. */
static int
zone_print_vm_zone_row(
    struct vm_zone *z, const struct vm_zone_stats *st, void *arg)
{
	struct zone_print *pr = arg;
	char tmpname[14];
	size_t len = st->name != NULL ? strlen(st->name) : 0;

	(void)z;
	/* The kernel overruns its buffer past 12 characters; we truncate. */
	if (len > sizeof(tmpname) - 2)
		len = sizeof(tmpname) - 2;
	memset(tmpname, ' ', sizeof(tmpname) - 1);
	tmpname[sizeof(tmpname) - 1] = '\0';
	if (len != 0)
		memcpy(tmpname, st->name, len);
	tmpname[len] = ':';
	fprintf(pr->fp, "%s%s %6.6zu, %8.8lu, %6.6lu, %6.6lu, %8.8llu\n",
	    pr->n == 0 ? "\n" : "", tmpname, st->itemsize,
	    (unsigned long)st->limit, (unsigned long)st->used,
	    (unsigned long)st->free, (unsigned long long)st->requests);
	pr->n++;
	return 0;
}

void
slabkit_print_vm_zone(FILE *fp)
{
	struct zone_print pr = {fp, 0};

	fprintf(fp, "\nITEM            SIZE     LIMIT    USED    FREE  "
	            "REQUESTS\n");
	slabkit_zone_foreach(zone_print_vm_zone_row, &pr);
	fflush(fp);
}

/* One `vmstat -z' line (usr.bin/vmstat dozmem). */
static int
zone_print_vmstat_row(
    struct vm_zone *z, const struct vm_zone_stats *st, void *arg)
{
	struct zone_print *pr = arg;
	long mb = (long)((size_t)st->used * st->itemsize / (1024 * 1024));

	(void)z;
	if (st->limit != 0)
		fprintf(pr->fp,
		    "%-10s %9ld/%9ld %5ldM used use=%-9llu %6.2f%%\n", st->name,
		    st->used, st->limit, mb, (unsigned long long)st->requests,
		    (double)st->used * 100.0 / (double)st->limit);
	else
		fprintf(pr->fp, "%-10s %9ld           %5ldM used use=%-9llu\n",
		    st->name, st->used, mb, (unsigned long long)st->requests);
	pr->n++;
	return 0;
}

void
slabkit_print_vmstat_z(FILE *fp)
{
	struct zone_print pr = {fp, 0};

	slabkit_zone_foreach(zone_print_vmstat_row, &pr);
	fflush(fp);
}

static void
zone_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(fp, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

static int
zone_print_json_row(
    struct vm_zone *z, const struct vm_zone_stats *st, void *arg)
{
	struct zone_print *pr = arg;

	(void)z;
	fprintf(pr->fp, "%s\n    {\"name\": ", pr->n ? "," : "");
	zone_json_string(pr->fp, st->name);
	fprintf(pr->fp,
	    ", \"size\": %zu, \"limit\": %ld, \"used\": %ld, \"free\": %ld, "
	    "\"cached\": %ld, \"total\": %ld, \"requests\": %llu, "
	    "\"flags\": %u, \"pages\": %ld}",
	    st->itemsize, st->limit, st->used, st->free, st->cached, st->total,
	    (unsigned long long)st->requests, st->flags, st->pages);
	pr->n++;
	return 0;
}

void
sk_zone_stats_print(FILE *fp, int json)
{
	struct zone_print pr = {fp, 0};

	if (json) {
		fprintf(fp, "  \"zone\": [");
		slabkit_zone_foreach(zone_print_json_row, &pr);
		fprintf(fp, pr.n ? "\n  ]" : "]");
		return;
	}
	sk_stats_title(fp, "zone(9) zones (vm.zone)");
	slabkit_print_vm_zone(fp);
	sk_stats_title(fp, "zone(9) zones (vmstat -z)");
	slabkit_print_vmstat_z(fp);
	fprintf(fp,
	    "\nvm.zone_kmem_pages: %ld\nvm.zone_kern_pages: %ld\n"
	    "vm.zone_kmem_kvaspace: %ld\nvm.zone_burst: %d\n",
	    SK_LOAD(&zone_kmem_pages), SK_LOAD(&zone_kern_pages),
	    SK_LOAD(&zone_kmem_kvaspace), SK_LOAD(&sk_opt.zone_burst));
}

void
sk_zone_page_counts(long *kmem_pages, long *kern_pages, long *kvaspace)
{
	*kmem_pages = SK_LOAD(&zone_kmem_pages);
	*kern_pages = SK_LOAD(&zone_kern_pages);
	*kvaspace = SK_LOAD(&zone_kmem_kvaspace);
}

void
zerror(int error)
{
	switch (error) {
	case ZONE_ERROR_INVALID:
		sk_panic("zerror", "zone: invalid zone");
	case ZONE_ERROR_NOTFREE:
		sk_panic("zerror", "zone: entry not free");
	case ZONE_ERROR_ALREADYFREE:
		sk_panic("zerror", "zone: freeing free entry");
	default:
		sk_panic("zerror", "zone: invalid error (%d)", error);
	}
}
