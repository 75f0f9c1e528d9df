/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc: DragonFly BSD's slab allocator (kern_slaballoc.c) in userspace:
 * sizing, malloc types, statistics and the public entry points.
 *
 * The path of a request.  kmalloc(size, type, flags) is sk_kmalloc_inline()
 * of kmalloc_fast.h, inlined here: for 1..1024 bytes one load from the
 * calling shard's direct table gives the zone of the size class (or the
 * sentinel zone, whose free list is always empty) and the chunk comes off
 * that zone's local free list.  Everything else (larger sizes,
 * M_CACHEALIGN and M_POWEROF2, a type at its limit, an empty list, a
 * statistics fold) goes to sk_kmalloc_slow() in kmalloc_zone.c, which
 * calls back here for the type check, the rounding flags (spec 1.4 step
 * 2), the lazy limit (step 3) and the counters (steps 1 and 9), and into
 * kmalloc_large.c for blocks of whole pages (step 6).  kfree(ptr, type) is
 * sk_kfree_inline(), inlined here likewise: what it cannot finish (a
 * remote free, a large block, anything to report) goes to kmalloc_zone.c.
 * The private interface of the three files is kmalloc_impl.h.
 *
 * Sizing (spec 1.5).  ZoneSize, ZoneLimit, ZoneMask and ZoneRelsThresh
 * follow from the memory limit; sk_kmalloc_init() fixes them once and sets
 * up the direct-table ranges and the zone arena (kmalloc_zone.c).
 *
 * Types.  A malloc_type is registered on first use (malloc_init, also
 * lazily from the slow path of kmalloc) with a limit of 10% of usable
 * memory and an array of SK_NSLOTS kmalloc_use slots: one per shard, and
 * the shards beyond SK_SLOT_SHARED share the last slot with atomic adds.
 * Counts taken before registration live in ks_use0 and move to the shared
 * slot.  Slot arrays of destroyed types are kept for reuse, never unmapped.
 *
 * Statistics.  An owned slot is written by its shard only, with plain
 * single-instruction adds: the fast paths add to calls and to the biased
 * lazy estimate on allocation and subtract from inuse and memuse on free;
 * sk_type_sum() derives the kernel's InUse and MemUse on read (see
 * "Statistics updates").
 * The type's estimate ks_loosememuse grows by whole ZoneSize steps (a
 * fold) and the exact sum is taken only when it reaches the limit (spec
 * 1.4 step 3).  ks_maxused is a real high-water mark, taken at every
 * statistics read, at every fold and large allocation while the type's
 * estimate is small, then every SK_MAXUSED_FOLDS ZoneSizes a shard
 * allocates (fold_loose).  Promises: the slots are meaningful only as a
 * sum, which is exact whenever no thread is
 * in the middle of an update; a negative sum reads as 0.
 *
 * Checks that are always on here: the type's magic, and in block_size()
 * (kmalloc_usable_size, krealloc) foreign, interior and free pointers,
 * from the page tags and the zone's bitmaps.
 *
 * Deviations from the kernel (README "Deviations"): shards are threads;
 * the slot counters are not the kernel's (InUse and MemUse are derived on
 * read); krealloc moves a large block's pages with mremap instead of
 * copying them (kmalloc_large.c); the _debug entry points record call
 * sites only in builds with SLABKIT_SLAB_DEBUG (spec 1.8);
 * slabkit_intr_enter/exit stand in for interrupt context (spec 1.6 step
 * 2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "kmalloc_impl.h"

struct sk_slab_config sk_slab;
__thread int sk_tls_intr;

/* The predefined types are public (kmalloc.h): export them. */
SLABKIT_API MALLOC_DEFINE(
    M_CACHE, "cache", "Various Dynamically allocated caches");
SLABKIT_API MALLOC_DEFINE(M_DEVBUF, "devbuf", "device driver memory");
SLABKIT_API MALLOC_DEFINE(M_TEMP, "temp", "misc temporary data buffers");
MALLOC_DEFINE(M_SLABKIT, "slabkit", "slabkit's own metadata");

static struct sk_mutex types_mtx = SK_MUTEX_INITIALIZER("malloc types");
struct malloc_type *sk_type_list;

#define TYPE_REGISTERED 0x1

/* ------------------------------------------------------------------ */
/* Sizing (spec 1.5) */

void
sk_kmalloc_sizing(size_t lim_mb, int ncpus, struct sk_slab_config *c)
{
	/* the kernel compares ZoneSize in bytes with usesize in KiB */
	size_t usesize = lim_mb * 1024;
	size_t zs = SK_MIN_ZONE_SIZE;
	int thresh = SK_ZONE_RELS_THRESH;

	while (zs < SK_MAX_ZONE_SIZE && (zs << 1) < usesize)
		zs <<= 1;
	c->lim_mb = lim_mb;
	c->zone_size = zs;
	c->zone_limit = zs / 4 < SK_ZONE_LIMIT ? zs / 4 : SK_ZONE_LIMIT;
	c->zone_mask = ~(uintptr_t)(zs - 1);
	c->zone_wmask = ((zs - 1) >> 5) & ~(uintptr_t)15;
	/* sizes 1 .. fast_limit are zone sizes that are never page
	 * multiples above two pages */
	c->fast_limit = c->zone_limit - 1 < 8192 ? c->zone_limit - 1 : 8192;
	/* spec 1.5: doubled at >= 7, 15, 31, 63 and 127 GB */
	for (size_t gb = 7; gb <= 127; gb = gb * 2 + 1)
		if (lim_mb >= gb * 1024)
			thresh *= 2;
	if (ncpus > 32)
		thresh = thresh * 32 / ncpus;
	c->zone_rels_thresh = thresh;
	c->page_size = sk_os_page_size();
	c->page_shift = sk_os_page_shift();
	sk_pm_shift = c->page_shift;
}

void
sk_kmalloc_init(void)
{
	size_t mb = sk_opt.memlimit_mb;

	if (mb == 0)
		mb = sk_os_usable_memory_mb();
	sk_kmalloc_sizing(mb, sk_os_ncpus(), &sk_slab);
	if (sk_opt.zone_cache >= 0)
		sk_slab.zone_rels_thresh = sk_opt.zone_cache;
	sk_km_zone_init();
#if SK_COPIES
	sk_copies_select();
#endif
}

size_t
kmem_lim_size(void)
{
	sk_init();
	return sk_slab.lim_mb;
}

/* ------------------------------------------------------------------ */
/* Types */

void
sk_types_lock(void)
{
	sk_mutex_lock(&types_mtx);
}

void
sk_types_unlock(void)
{
	sk_mutex_unlock(&types_mtx);
}

/* Slot arrays of destroyed types are kept for reuse, never unmapped: a
 * late kfree naming a destroyed type must not write into unmapped memory. */
static struct kmalloc_use *use_pool[64];
static int use_pool_n;

static struct kmalloc_use *
use_array_get(void)
{
	size_t bytes = sizeof(struct kmalloc_use) * SK_NSLOTS;
	struct kmalloc_use *u;
	int why;

	if (use_pool_n > 0) {
		u = use_pool[--use_pool_n];
		memset(u, 0, bytes);
		return u;
	}
	u = sk_os_map(bytes, sk_os_page_size(), &why);
	if (u == NULL)
		sk_panic("malloc_init", "cannot map statistics slots");
	return u;
}

void
sk_km_type_check(struct malloc_type *type, const char *api)
{
	if (type == NULL)
		sk_panic(api, "NULL malloc type");
	if (type->ks_magic != M_MAGIC)
		sk_panic(
		    api, "malloc type lacks magic (type %p)", (void *)type);
}

void
malloc_init(void *arg)
{
	struct malloc_type *type = arg;
	struct kmalloc_use *u;

	sk_init();
	sk_km_type_check(type, "malloc_init");
	sk_mutex_lock(&types_mtx);
	if (SK_LOAD(&type->ks_limit) != 0) {
		sk_mutex_unlock(&types_mtx);
		return;
	}
	if (type->ks_use == NULL || type->ks_use == &type->ks_use0) {
		static const struct kmalloc_use none;

		u = use_array_get();
		/* Counts taken before registration move to the shared slot
		 * (the array reads as zero: a type never used before costs no
		 * page until a shard counts in it). */
		if (memcmp(&type->ks_use0, &none, sizeof(none)) != 0)
			u[SK_SLOT_SHARED] = type->ks_use0;
		memset(&type->ks_use0, 0, sizeof(type->ks_use0));
		SK_STORE_REL(&type->ks_use, u);
	}
	if (!(type->ks_state & TYPE_REGISTERED)) {
		/* newest first, as the kernel's kmemstatistics list */
		type->ks_next = sk_type_list;
		sk_type_list = type;
		type->ks_state |= TYPE_REGISTERED;
	}
	/* spec 1.5: default limit is 10% of usable memory */
	SK_STORE_REL(&type->ks_limit, sk_slab.lim_mb * 1024 * 1024 / 10);
	sk_mutex_unlock(&types_mtx);
}

static void
type_uninit(struct malloc_type *type, bool report)
{
	struct kmalloc_type_stats st;

	sk_km_type_check(type, "malloc_uninit");
	sk_mutex_lock(&types_mtx);
	if (type->ks_state & TYPE_REGISTERED) {
		struct malloc_type **pp = &sk_type_list;

		while (*pp != NULL && *pp != type)
			pp = &(*pp)->ks_next;
		if (*pp == type)
			*pp = type->ks_next;
		type->ks_next = NULL;
		type->ks_state &= ~TYPE_REGISTERED;
	}
	sk_mutex_unlock(&types_mtx);
	if (report) {
		sk_type_sum(type, &st);
		if (st.memuse != 0)
			sk_warn("malloc_uninit",
			    "%zu bytes of '%s' still allocated on free",
			    st.memuse, type->ks_shortdesc);
	}
	SK_STORE(&type->ks_limit, (size_t)0);
}

void
malloc_uninit(void *arg)
{
	type_uninit(arg, sk_opt.invariants);
}

void
kmalloc_create(struct malloc_type **typep, const char *descr)
{
	struct malloc_type *type;

	if (*typep != NULL)
		return;
	type = sk_kmalloc(sizeof(*type), M_TEMP, M_WAITOK | M_ZERO);
	type->ks_magic = M_MAGIC;
	type->ks_shortdesc = descr;
	type->ks_use = &type->ks_use0;
	malloc_init(type);
	*typep = type;
}

void
kmalloc_destroy(struct malloc_type **typep)
{
	struct malloc_type *type = *typep;
	struct kmalloc_use *u;

	if (type == NULL)
		return;
	if (type->ks_flags & KSF_OBJSIZE) {
		/* a kmalloc_obj type: its slabs go with it */
		kmalloc_destroy_obj(typep);
		return;
	}
	type_uninit(type, true);
	u = type->ks_use;
	if (u != NULL && u != &type->ks_use0) {
		sk_mutex_lock(&types_mtx);
		if (use_pool_n < (int)(sizeof(use_pool) / sizeof(use_pool[0])))
			use_pool[use_pool_n++] = u;
		sk_mutex_unlock(&types_mtx);
	}
	type->ks_magic = 0;
	sk_kfree(type, M_TEMP);
	*typep = NULL;
}

long
kmalloc_limit(struct malloc_type *type)
{
	sk_km_type_check(type, "kmalloc_limit");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type);
	return (long)SK_LOAD(&type->ks_limit);
}

void
kmalloc_raise_limit(struct malloc_type *type, size_t bytes)
{
	sk_km_type_check(type, "kmalloc_raise_limit");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type);
	if (bytes == 0)
		bytes = (size_t)1
		        << 47; /* "KVA size": the whole address space */
	if (bytes > SK_LOAD(&type->ks_limit))
		SK_STORE(&type->ks_limit, bytes);
}

void
kmalloc_set_unlimited(struct malloc_type *type)
{
	sk_km_type_check(type, "kmalloc_set_unlimited");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type);
	SK_STORE(&type->ks_limit, sk_slab.lim_mb * 1024 * 1024);
}

void
sk_type_sum(struct malloc_type *type, struct kmalloc_type_stats *st)
{
	struct kmalloc_use *u = SK_LOAD_ACQ(&type->ks_use);
	long long memuse = 0, inuse = 0, calls = 0;
	int n = sk_shard_count();

	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->version = SLABKIT_STATS_VERSION;
	st->shortdesc = type->ks_shortdesc;
	if (u != NULL && u != &type->ks_use0) {
		if (n > SK_SLOT_SHARED)
			n = SK_SLOT_SHARED;
		/* an owned slot (see "Statistics updates" below) */
		for (int i = 0; i < n; i++) {
			size_t a = SK_LOAD(&u[i].loosememuse);
			size_t f = SK_LOAD(SK_USE_FREES(&u[i]));
			long long c =
			    SK_LOAD(&u[i].calls) + (long long)SK_PACK_COUNT(a);

			memuse += (long long)(SK_LOAD(&u[i].memuse) +
			                      SK_LOAD(&u[i].reserved[1]) +
			                      SK_LOAD(&u[i].reserved[0])) +
			          SK_PACK_BYTES(a) - SK_PACK_BYTES(f);
			inuse += c - (long long)SK_LOAD(&u[i].reserved[2]) +
			         (long long)SK_LOAD(&u[i].inuse) -
			         (long long)SK_PACK_COUNT(f);
			calls += c;
		}
		memuse += (long long)SK_LOAD(&u[SK_SLOT_SHARED].memuse);
		inuse += (long long)SK_LOAD(&u[SK_SLOT_SHARED].inuse);
		calls += SK_LOAD(&u[SK_SLOT_SHARED].calls);
	}
	memuse += (long long)SK_LOAD(&type->ks_use0.memuse);
	inuse += (long long)SK_LOAD(&type->ks_use0.inuse);
	calls += SK_LOAD(&type->ks_use0.calls);
	/* Slots are meaningful only as a sum; a negative sum reads as 0. */
	st->memuse = memuse > 0 ? (size_t)memuse : 0;
	st->inuse = inuse > 0 ? (size_t)inuse : 0;
	st->calls = calls > 0 ? (uint64_t)calls : 0;
	st->limit = SK_LOAD(&type->ks_limit);
	/* Keep the high-water mark true at every read. */
	{
		size_t old = SK_LOAD(&type->ks_maxused);

		while (
		    st->memuse > old &&
		    !__atomic_compare_exchange_n(&type->ks_maxused, &old,
		        st->memuse, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	st->maxused = SK_LOAD(&type->ks_maxused);
	if (st->maxused < st->memuse)
		st->maxused = st->memuse;
}

/* ------------------------------------------------------------------ */
/* Statistics updates */

/* The counters of `type' for the calling shard (NULL: shared, atomic). */
static inline struct kmalloc_use *
use_slot(struct malloc_type *type, struct sk_shard *sh)
{
	struct kmalloc_use *u = type->ks_use;

	if (SK_UNLIKELY(u == NULL || u == &type->ks_use0))
		return NULL;
	if (SK_UNLIKELY(sh->slot == SK_SLOT_SHARED))
		return NULL;
	return &u[sh->slot];
}

static struct kmalloc_use *
use_shared(struct malloc_type *type)
{
	struct kmalloc_use *u = SK_LOAD_ACQ(&type->ks_use);

	if (u == NULL)
		return &type->ks_use0;
	if (u == &type->ks_use0)
		return u;
	return &u[SK_SLOT_SHARED];
}

/*
 * A fold adds to the type's estimate; with sample, it also takes the
 * exact sum, which advances the high-water mark ks_maxused.  The sum reads
 * every shard's slot, lines that other CPUs write: taken at every fold
 * (and at every large allocation) it cost larson and mstress 2.5% of
 * their time in sk_type_sum, so an owned slot samples once every
 * SK_MAXUSED_FOLDS folds' worth of its allocations.
 */
#define SK_MAXUSED_FOLDS 8

/* While the type's estimate is below this, every fold and every large
 * allocation samples (a type used a little keeps an exact mark). */
#define SK_MAXUSED_EARLY (SK_MAXUSED_FOLDS * sk_slab.zone_size)

__attribute__((noinline)) static void
fold_loose(struct malloc_type *type, size_t bytes, bool sample)
{
	struct kmalloc_type_stats st;

	if (__atomic_fetch_add(&type->ks_loosememuse, bytes, __ATOMIC_RELAXED) <
	    SK_MAXUSED_EARLY)
		sample = true;
	if (sample)
		sk_type_sum(type, &st); /* also advances ks_maxused */
}

/*
 * An owned slot (a shard's own, updated by that shard only) counts what
 * the fast paths can count with the fewest instructions, and
 * sk_type_sum derives the kernel's figures from it.  Two words are
 * packed: bytes in the high 48 bits, a count in the low 16 (SK_PACK_*,
 * internal.h), so that a fast path counts a call and its bytes with one
 * add of the zone's z_statinc, (chunksize << 16) + 1, and tests its sign:
 *   loosememuse  packed: bytes allocated since the last fold minus the
 *                fold window, and the fast paths' calls since then; the
 *                add that makes it non-negative is the one that folds;
 *   reserved[0]  the window in force (ZoneSize; 0 before any fold);
 *   reserved[1]  bytes allocated and folded before;
 *   calls        the calls folded before, and the slow path's;
 *   reserved[2]  calls that allocated nothing (the slow path counts a
 *                call there first and takes it back when it allocates);
 *   reserved[3]  packed (SK_USE_FREES): bytes freed on this shard's fast
 *                path since the last fold minus ZoneSize, and the frees;
 *                folded the same way when it turns non-negative;
 *   inuse        minus the frees folded or counted by the slow paths;
 *   memuse       minus the bytes of those, and ZoneSize more for each
 *                fold of reserved[3] (its window, taken in advance).
 * So InUse = calls + count(loosememuse) - reserved[2] + inuse -
 * count(reserved[3]) and MemUse = reserved[1] + bytes(loosememuse) +
 * reserved[0] + memuse - bytes(reserved[3]), exact whenever no thread is
 * in the middle of an update.  A count cannot overflow its 16 bits: a
 * fold comes after ZoneSize (128 KiB at most) bytes of 8-byte chunks at
 * least.  The shared slot keeps the kernel's meaning.
 */
static void
fold_slot(struct malloc_type *type, struct kmalloc_use *u)
{
	size_t a = SK_LOAD(&u->loosememuse);
	size_t credit = (size_t)SK_PACK_BYTES(a) + SK_LOAD(&u->reserved[0]);
	size_t zs = sk_slab.zone_size, done, window;

	sk_slot_add((size_t *)&u->calls, SK_PACK_COUNT(a));
	sk_slot_add(&u->reserved[1], credit);
	/* the next fold when the slot's total reaches the next multiple of
	 * ZoneSize: the estimate then moves in the kernel's steps */
	done = SK_LOAD(&u->reserved[1]);
	window = zs - (done & (zs - 1));
	SK_STORE(&u->loosememuse, -(window << SK_PACK_SHIFT));
	SK_STORE(&u->reserved[0], window);
	/* sample when the slot's total crossed a multiple of
	 * SK_MAXUSED_FOLDS ZoneSizes (a large block may cross several) */
	fold_loose(type, credit,
	    (done - credit) / (SK_MAXUSED_FOLDS * zs) !=
	        done / (SK_MAXUSED_FOLDS * zs));
}

/* After a large allocation: the high-water mark too while the type's
 * estimate is below SK_MAXUSED_EARLY; beyond, the folds sample it. */
void
sk_km_maxused_note(struct malloc_type *type)
{
	struct kmalloc_type_stats st;

	if (SK_LOAD(&type->ks_loosememuse) < SK_MAXUSED_EARLY)
		sk_type_sum(type, &st);
}

/* The fast free path's packed word turned non-negative: move it into
 * inuse and memuse, taking the next window's ZoneSize in advance. */
void
sk_km_fold_frees(struct kmalloc_use *u)
{
	size_t f = SK_LOAD(SK_USE_FREES(u));
	size_t zs = sk_slab.zone_size;

	sk_slot_sub(&u->inuse, SK_PACK_COUNT(f));
	sk_slot_sub(&u->memuse, (size_t)SK_PACK_BYTES(f) + zs);
	SK_STORE(SK_USE_FREES(u), -(zs << SK_PACK_SHIFT));
}

/* Count an allocation of `bytes' (spec 1.4 step 9). */
void
sk_km_stats_alloc(struct malloc_type *type, struct sk_shard *sh, size_t bytes)
{
	struct kmalloc_use *u = use_slot(type, sh);

	if (SK_LIKELY(u != NULL)) {
		sk_slot_sub(&u->reserved[2], 1); /* the call allocated */
		if (sk_slot_add_nonneg(&u->loosememuse, bytes << SK_PACK_SHIFT))
			fold_slot(type, u);
		return;
	}
	u = use_shared(type);
	__atomic_fetch_add(&u->inuse, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&u->memuse, bytes, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&u->loosememuse, bytes, __ATOMIC_RELAXED) >=
	    sk_slab.zone_size) {
		size_t loose = __atomic_exchange_n(
		    &u->loosememuse, (size_t)0, __ATOMIC_RELAXED);
		fold_loose(type, loose, true);
	}
}

void
sk_km_stats_calls(struct malloc_type *type, struct sk_shard *sh)
{
	struct kmalloc_use *u = use_slot(type, sh);

	if (SK_LIKELY(u != NULL)) {
		sk_slot_add((size_t *)&u->calls, 1);
		sk_slot_add(&u->reserved[2], 1); /* until it allocates */
	} else
		__atomic_fetch_add(
		    &use_shared(type)->calls, 1, __ATOMIC_RELAXED);
}

/* A free decrements the freeing shard's slot (spec 1.2). */
void
sk_km_stats_free(struct malloc_type *type, struct sk_shard *sh, size_t bytes)
{
	struct kmalloc_use *u = use_slot(type, sh);

	if (SK_LIKELY(u != NULL)) {
		SK_OWNER_ADD(&u->inuse, (size_t)-1);
		SK_OWNER_ADD(&u->memuse, -bytes);
		return;
	}
	u = use_shared(type);
	__atomic_fetch_sub(&u->inuse, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&u->memuse, bytes, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* kmalloc and kfree: the entry points */

static inline size_t
round_pow2(size_t n)
{
	if (n <= 1)
		return n;
	return (size_t)1 << (64 - __builtin_clzl(n - 1));
}

/* spec 1.4 step 2 */
size_t
sk_km_round_flags(size_t size, int *flags)
{
	if (*flags & M_CACHEALIGN) {
		if (size < SK_CACHELINE)
			size = SK_CACHELINE;
		else if (size < 512)
			*flags |= M_POWEROF2;
	}
	if (*flags & M_POWEROF2)
		size = round_pow2(size);
	return size;
}

/* spec 1.4 step 3: the lazy limit check; false means "fail". */
bool
sk_km_limit_check(struct malloc_type *type, int flags)
{
	while (SK_LOAD(&type->ks_loosememuse) >= SK_LOAD(&type->ks_limit)) {
		struct kmalloc_type_stats st;

		sk_type_sum(type, &st);
		SK_STORE(&type->ks_loosememuse, st.memuse);
		if (st.memuse >= SK_LOAD(&type->ks_limit)) {
			if (flags & M_NULLOK)
				return false;
			sk_panic("kmalloc",
			    "%s: malloc limit exceeded (%zu bytes in use, "
			    "limit "
			    "%zu bytes: by default 10%% of the usable memory, "
			    "%zu MiB measured from RAM, cgroup and RLIMIT_AS; "
			    "raise it with kmalloc_raise_limit() or "
			    "SLABKIT_OPTIONS=memlimit=SIZE, or pass M_NULLOK "
			    "to "
			    "get NULL instead)",
			    type->ks_shortdesc, st.memuse,
			    (size_t)SK_LOAD(&type->ks_limit), sk_slab.lim_mb);
		}
	}
	return true;
}

/*
 * sk_kmalloc and kfree_api live here, next to kmalloc and kfree, so that
 * the compiler inlines them (and the fast paths in them) into the public
 * entry points and the other callers of this file.
 */
void *
sk_kmalloc(size_t size, struct malloc_type *type, int flags)
{
	return sk_kmalloc_inline(size, type, flags, SK_TAKE_ANY);
}

#if SK_COPIES
/* The copies of kmalloc (internal.h, "The copies of the entry points"). */
static void *
kmalloc_thread_base(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc_inline(size, type, flags, SK_TAKE_THREAD);
}

static void *
kmalloc_cpu_base(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc_inline(size, type, flags, SK_TAKE_CPU);
}

SK_BMI2 static void *
kmalloc_thread_bmi2(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc_inline(size, type, flags, SK_TAKE_THREAD);
}

SK_BMI2 static void *
kmalloc_cpu_bmi2(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc_inline(size, type, flags, SK_TAKE_CPU);
}

sk_kmalloc_fn *const sk_kmalloc_copies[SK_NCOPIES] = {
    [SK_COPY_THREAD_BASE] = kmalloc_thread_base,
    [SK_COPY_THREAD_BMI2] = kmalloc_thread_bmi2,
    [SK_COPY_CPU_BASE] = kmalloc_cpu_base,
    [SK_COPY_CPU_BMI2] = kmalloc_cpu_bmi2,
};
/* Until sk_copies_select first runs, the baseline's for shards per
 * thread: right in either mode (both kinds of shard are safe together at
 * any time), only slower. */
sk_kmalloc_fn *sk_kmalloc_copy = kmalloc_thread_base;

void *
kmalloc(unsigned long size, struct malloc_type *type, int flags)
{
	sk_kmalloc_fn *copy = SK_LOAD_FAST(&sk_kmalloc_copy);

	return copy(size, type, flags);
}
#else
void *
kmalloc(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc(size, type, flags);
}
#endif

void *
kmalloc_cachealign(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc(size, type, flags | M_CACHEALIGN);
}

void *
sk_kmalloc_aligned(
    size_t size, size_t align, struct malloc_type *type, int flags)
{
	struct sk_shard *sh;
	size_t s, a;
	void *p;

	sk_init();
	if (align <= 16)
		return sk_kmalloc(
		    size < 16 ? 16 : (size + 15) & ~(size_t)15, type, flags);
	s = size > align ? size : align;
	if (s < sk_slab.zone_limit) {
		size_t t = s;

		a = 0;
		if (sk_zoneindex(&t, &a) >= 0 &&
		    ((t & (t - 1)) == 0 || a >= align))
			return sk_kmalloc(t, type, flags);
		if (round_pow2(s) < sk_slab.zone_limit)
			return sk_kmalloc(s, type, flags | M_POWEROF2);
	}
	/* Large: whole pages at the asked alignment. */
	sk_init();
	sk_km_type_check(type, "kmalloc");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type);
	sh = sk_kshard_get();
	sk_km_stats_calls(type, sh);
	p = NULL;
	if (sk_km_limit_check(type, flags) && !sh->empty) {
		sh = sk_km_large_shard(sh);
		p = sk_km_large(sh, size, align, type, flags);
	}
	sk_kshard_leave(sh);
	return p;
}

/* kfree's checks of the type, then the fast path; inlined into kfree. */
__attribute__((always_inline)) static inline void
kfree_api(
    void *ptr, struct malloc_type *type, const char *api, enum sk_take how)
{
	if (SK_UNLIKELY(type->ks_magic != M_MAGIC ||
	                SK_LOAD_FAST(&type->ks_limit) == 0)) {
		sk_kfree_slow(ptr, type, api);
		return;
	}
	sk_kfree_inline(
	    ptr, type, type->ks_use, api, sk_kfree_slow, false, how);
}

void
sk_kfree_api(void *ptr, struct malloc_type *type, const char *api)
{
	kfree_api(ptr, type, api, SK_TAKE_ANY);
}

void
sk_kfree(void *ptr, struct malloc_type *type)
{
	sk_kfree_api(ptr, type, "kfree");
}

#if SK_COPIES
/* The copies of kfree. */
static void
kfree_thread_base(void *ptr, struct malloc_type *type)
{
	kfree_api(ptr, type, "kfree", SK_TAKE_THREAD);
}

static void
kfree_cpu_base(void *ptr, struct malloc_type *type)
{
	kfree_api(ptr, type, "kfree", SK_TAKE_CPU);
}

SK_BMI2 static void
kfree_thread_bmi2(void *ptr, struct malloc_type *type)
{
	kfree_api(ptr, type, "kfree", SK_TAKE_THREAD);
}

SK_BMI2 static void
kfree_cpu_bmi2(void *ptr, struct malloc_type *type)
{
	kfree_api(ptr, type, "kfree", SK_TAKE_CPU);
}

sk_kfree_fn *const sk_kfree_copies[SK_NCOPIES] = {
    [SK_COPY_THREAD_BASE] = kfree_thread_base,
    [SK_COPY_THREAD_BMI2] = kfree_thread_bmi2,
    [SK_COPY_CPU_BASE] = kfree_cpu_base,
    [SK_COPY_CPU_BMI2] = kfree_cpu_bmi2,
};
sk_kfree_fn *sk_kfree_copy = kfree_thread_base;

void
kfree(void *ptr, struct malloc_type *type)
{
	sk_kfree_fn *copy = SK_LOAD_FAST(&sk_kfree_copy);

	copy(ptr, type);
}

void
sk_copies_select(void)
{
	static int bmi2 = -1; /* atomic: CPUID once (a VM traps it) */
	enum sk_copy c;
	bool cpu;

	if (SK_LOAD(&bmi2) < 0)
		SK_STORE(&bmi2, (int)sk_os_cpu_bmi2());
	/* again if the mode changed meanwhile: the last stores follow it */
	do {
		cpu = SK_LOAD(&sk_cpu.active);
		c = (cpu ? SK_COPY_CPU_BASE : SK_COPY_THREAD_BASE) +
		    SK_LOAD(&bmi2);
		SK_STORE(&sk_kmalloc_copy, sk_kmalloc_copies[c]);
		SK_STORE(&sk_kfree_copy, sk_kfree_copies[c]);
		if (sk_dropin_select != NULL)
			sk_dropin_select(c);
	} while (SK_LOAD(&sk_cpu.active) != cpu);
}
#else
void
kfree(void *ptr, struct malloc_type *type)
{
	kfree_api(ptr, type, "kfree", SK_TAKE_ANY);
}
#endif

/* ------------------------------------------------------------------ */
/* Sizes, krealloc, strings */

/* Size of a live block; panics on pointers that are not live blocks. */
static size_t
block_size(const void *ptr, const char *api, bool *large)
{
	uintptr_t p = (uintptr_t)ptr;
	struct sk_slzone *z = sk_zone_at(p);
	int32_t tag = sk_pagemap_get((uintptr_t)z);

	*large = false;
	if (tag >= 0) {
		tag = sk_pagemap_get(p);
		if (tag > 0 && sk_large_start(p)) {
			size_t bytes = (size_t)tag << sk_slab.page_shift;

			*large = true;
			if (SK_UNLIKELY(SK_LOAD(&sk_harden_nlarge) != 0))
				return sk_harden_large_usable(ptr, bytes);
			return bytes;
		}
		sk_km_bad_pointer(ptr, api);
	}
	sk_km_chunk_index(z, ptr, api);
	if (!zone_chunk_live(z, ptr))
		sk_panic(api,
		    "memory chunk %p is free (use after free, ptr %p)", ptr,
		    ptr);
	if (SK_UNLIKELY(z->z_hflags != 0))
		return sk_harden_block_size(z, ptr, api);
	return z->z_chunksize;
}

size_t
sk_kmalloc_usable_size_api(const void *ptr, const char *api)
{
	bool large;
	size_t n;

	if (ptr == NULL || ptr == ZERO_LENGTH_PTR)
		return 0;
	/* a live chunk of this thread's (or CPU's) own zone: the tests of
	 * kfree's fast path, no page tag (redis asks the size of every
	 * block it allocates and frees: the page-tag walk below was 5% of
	 * its server's time) */
	if ((n = sk_chunk_size_local(ptr)) != 0)
		return n;
	sk_init();
	return block_size(ptr, api, &large);
}

size_t
kmalloc_usable_size(const void *ptr)
{
	return sk_kmalloc_usable_size_api(ptr, "kmalloc_usable_size");
}

int
sk_kmalloc_owns(const void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	int32_t tag;

	if (atomic_load(&sk_initialized) != 2)
		return 0;
	tag = sk_pagemap_get(p & sk_slab.zone_mask);
	if (tag < 0)
		return 1;
	tag = sk_pagemap_get(p);
	return tag > 0 && sk_large_start(p) ? 2 : 0;
}

/* The class of a zone size (size < ZoneLimit). */
static inline int
zone_size_index(size_t size)
{
	size_t a;

	return sk_zoneindex(&size, &a);
}

/* The drop-in realloc's rule for a zone chunk (internal.h). */
bool
sk_km_slack_keeps(size_t size, size_t osize)
{
	size_t h = sk_slack_grow(size);

	if (size > osize)
		return false;
	if (h >= osize)
		return true; /* the common case, without a class lookup */
	/* hardened: the canary and power-of-two alignment can give a
	 * growth twice what it asked for; keep down to half */
	if (SK_UNLIKELY(sk_opt.hardened) && size >= osize / 2)
		return true;
	if (h >= sk_slab.zone_limit ||
	    zone_size_index(h) >= zone_size_index(osize))
		return true;
	return zone_size_index(size) + 1 >= zone_size_index(osize);
}

void *
sk_krealloc_api(void *ptr, size_t size, struct malloc_type *type, int flags,
    const char *api)
{
	size_t osize, align, nsize;
	bool large;
	void *n;

	bool slack = (flags & SK_M_SLACK) != 0;

	flags &= ~SK_M_SLACK;
	if (flags & M_ZERO)
		sk_panic(api, "M_ZERO not allowed");
	if (ptr == NULL || ptr == ZERO_LENGTH_PTR)
		return sk_kmalloc(size, type, flags);
	if (size == 0) {
		sk_kfree_api(ptr, type, api);
		return NULL;
	}
	/*
	 * Fast path: a live chunk of a zone and a new size the fast path of
	 * kmalloc serves.  The checks are block_size()'s (page tag, magic,
	 * chunk boundary, handed out and not on the remote list); anything
	 * that fails them takes the full path below, which reports it.
	 */
	if (SK_LIKELY(size - 1 < sk_slab.fast_limit && !sk_opt.debug &&
	              type->ks_magic == M_MAGIC)) {
		uintptr_t p = (uintptr_t)ptr, off, idx;
		struct sk_slzone *z = sk_zone_at(p);

		/* the arena holds zones only; elsewhere the page tag says */
		if ((p - sk_zarena_base < SK_LOAD(&sk_zarena_used) ||
		        sk_pagemap_get((uintptr_t)z) < 0) &&
		    z->z_magic == SK_SLAB_MAGIC) {
			off = p - (uintptr_t)z->z_baseptr;
			idx =
			    (uintptr_t)(((uint64_t)off * z->z_chunkmul) >> 32);
			if (idx < (uintptr_t)z->z_nmax &&
			    idx * z->z_chunksize == off &&
			    zone_chunk_live(z, ptr)) {
				osize = z->z_chunksize;
				if (slack ? sk_km_slack_keeps(size, osize)
				          : size <= osize &&
				                zone_size_index(size) ==
				                    z->z_zoneindex)
					return ptr;
				if (slack && size > osize)
					size = sk_slack_grow(size);
				n = sk_kmalloc(size, type, flags);
				if (n == NULL)
					return NULL;
				memcpy(n, ptr, size < osize ? size : osize);
				sk_kfree_api(ptr, type, api);
				return n;
			}
		}
	}
	/*
	 * Fast path for a large block that stays where it is: its page tag
	 * (and no zone's around it), then the in-place rules below.
	 */
	if (SK_LIKELY(!sk_opt.debug && type->ks_magic == M_MAGIC)) {
		int32_t tag = sk_large_pages_quick(ptr);

		if (tag > 0 &&
		    sk_large_keeps(
		        size, (size_t)tag << sk_slab.page_shift, slack))
			return ptr;
	}
	sk_init();
	sk_km_type_check(type, api);
	osize = block_size(ptr, api, &large);
	if (large) {
		if (sk_large_keeps(size, osize, slack))
			return ptr;
		if (slack && size > osize)
			size = sk_slack_grow(size);
		if ((n = sk_km_large_realloc(ptr, osize, size, type, flags)) !=
		    NULL)
			return n;
	} else {
		if (slack && sk_km_slack_keeps(size, osize))
			return ptr;
		if (size < sk_slab.zone_limit &&
		    !((size & (sk_slab.page_size - 1)) == 0 &&
		        size > 2 * sk_slab.page_size)) {
			nsize = size;
			if (sk_zoneindex(&nsize, &align) >= 0 && nsize == osize)
				return ptr;
		}
		if (slack && size > osize)
			size = sk_slack_grow(size);
	}
	if (SK_UNLIKELY(sk_opt.hardened))
		sk_harden_api = api; /* its checks name the program's call */
	n = sk_kmalloc(size, type, flags);
	sk_harden_api = NULL;
	if (n == NULL)
		return NULL;
	memcpy(n, ptr, size < osize ? size : osize);
	sk_kfree_api(ptr, type, api);
	return n;
}

void *
krealloc(void *ptr, unsigned long size, struct malloc_type *type, int flags)
{
	return sk_krealloc_api(ptr, size, type, flags, "krealloc");
}

/* SLAB_DEBUG (spec 1.8): remember up to 32 distinct call sites per zone,
 * hashed by line number.  Recorded only in builds with SLABKIT_SLAB_DEBUG
 * (the debug and asan presets); elsewhere the _debug calls just allocate. */
#ifdef SLABKIT_SLAB_DEBUG
static void
record_in(struct sk_slzone *z, const char *file, int line)
{
	for (int i = 0; i < SK_SLAB_DEBUG_ENTRIES; i++) {
		int j = (line + i) & (SK_SLAB_DEBUG_ENTRIES - 1);

		if (z->z_sources[j].file == NULL) {
			z->z_sources[j].file = file;
			z->z_sources[j].line = line;
			z->z_sources[j].count = 1;
			return;
		}
		if (z->z_sources[j].line == line &&
		    strcmp(z->z_sources[j].file, file) == 0) {
			z->z_sources[j].count++;
			return;
		}
	}
}
#endif

static void
record_site(void *p, const char *file, int line)
{
#ifdef SLABKIT_SLAB_DEBUG
	uintptr_t a = (uintptr_t)p;
	struct sk_slzone *z = sk_zone_at(a);
	struct sk_shard *sh;

	if (p == NULL || p == ZERO_LENGTH_PTR ||
	    sk_pagemap_get((uintptr_t)z) >= 0)
		return;
	sh = sk_kshard_enter(); /* the zone's table is its owner's */
	if (z->z_owner == sh)
		record_in(z, file, line);
	sk_kshard_leave(sh);
#else
	(void)p;
	(void)file;
	(void)line;
#endif
}

int
slabkit_kmalloc_sites(
    const void *ptr, struct slabkit_alloc_site *sites, int nmax)
{
#ifdef SLABKIT_SLAB_DEBUG
	uintptr_t a = (uintptr_t)ptr;
	struct sk_slzone *z = sk_zone_at(a);
	int n = 0;

	if (ptr == NULL || sk_pagemap_get((uintptr_t)z) >= 0)
		return 0;
	for (int i = 0; i < SK_SLAB_DEBUG_ENTRIES; i++) {
		if (z->z_sources[i].file == NULL)
			continue;
		if (n < nmax) {
			sites[n].file = z->z_sources[i].file;
			sites[n].line = z->z_sources[i].line;
			sites[n].count = (unsigned)z->z_sources[i].count;
		}
		n++;
	}
	return n;
#else
	(void)ptr;
	(void)sites;
	(void)nmax;
	return -1;
#endif
}

void *
kmalloc_debug(unsigned long size, struct malloc_type *type, int flags,
    const char *file, int line)
{
	void *p = sk_kmalloc(size, type, flags);

	record_site(p, file, line);
	return p;
}

void *
krealloc_debug(void *ptr, unsigned long size, struct malloc_type *type,
    int flags, const char *file, int line)
{
	void *p = sk_krealloc_api(ptr, size, type, flags, "krealloc");

	record_site(p, file, line);
	return p;
}

char *
kstrdup_debug(
    const char *s, struct malloc_type *type, const char *file, int line)
{
	char *p = (kstrdup)(s, type);

	record_site(p, file, line);
	return p;
}

char *
kstrndup_debug(const char *s, size_t maxlen, struct malloc_type *type,
    const char *file, int line)
{
	char *p = (kstrndup)(s, maxlen, type);

	record_site(p, file, line);
	return p;
}

char *
kstrdup(const char *s, struct malloc_type *type)
{
	size_t len;
	char *d;

	if (s == NULL)
		return NULL;
	len = strlen(s) + 1;
	d = sk_kmalloc(len, type, M_WAITOK);
	memcpy(d, s, len);
	return d;
}

char *
kstrndup(const char *s, size_t maxlen, struct malloc_type *type)
{
	size_t len;
	char *d;

	if (s == NULL)
		return NULL;
	len = strnlen(s, maxlen);
	d = sk_kmalloc(len + 1, type, M_WAITOK);
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

void
slabkit_intr_enter(void)
{
	sk_tls_intr++;
}

void
slabkit_intr_exit(void)
{
	if (sk_tls_intr > 0)
		sk_tls_intr--;
}
