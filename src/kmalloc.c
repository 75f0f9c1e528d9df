/*
 * kmalloc: DragonFly BSD's slab allocator (kern_slaballoc.c) in userspace.
 *
 * Model.  Memory comes in zones of ZoneSize bytes (128 KiB on any machine
 * with more than 128 MB), each aligned to its size so that the header of
 * any chunk is found by masking the chunk's address (ptr & ZoneMask).  A
 * zone serves one of the 72 chunk sizes of sizeclass.h and belongs to one
 * shard (the kernel's CPU: a thread here, see shard.c).  Requests of
 * ZoneLimit bytes or more, and page multiples above two pages, are mapped
 * directly as whole pages (the large path, spec 1.4 step 6).
 *
 * Per shard and size class, ZoneAry[zi] lists the zones that have free
 * chunks.  kmalloc takes the zone at the tail of the list, pops the head
 * of its local free list (LIFO, cache-hot) or carves a never-used chunk,
 * and bumps the shard's counters: no lock, no atomic read-modify-write,
 * no division.  kfree on the owner shard pushes the chunk back.  kfree on
 * another shard pushes it on the zone's atomic remote list (one CAS); the
 * owner pulls remote chunks in when a zone runs dry, in slab_cleanup(),
 * and when a "doorbell" tells it that a zone which had left its list
 * because it was exhausted has received remote frees (the kernel's passive
 * IPI, spec 1.6 step 4, with the same RSignal/RCount protocol).
 *
 * A wholly free zone leaves its list for the shard's FreeZones (unless it
 * is the last zone listed for its class), and zones beyond ZoneRelsThresh
 * are unmapped by the next kmalloc that may block: hysteresis, exactly as
 * spec 1.6 steps 6-7.  Large blocks are unmapped at kfree.
 *
 * Page tags (pagemap.c) replace the kernel's ku_pagecnt: > 0 on the first
 * page of a large block, -(shard + 1) on the first page of a zone.  Every
 * kfree looks the pointer up there before touching anything, so a pointer
 * slabkit never returned is reported, never followed.
 *
 * Checks that are always on (cheap): type magic, kfree(NULL), foreign and
 * interior pointers, double free.  Double frees are found out of band: a
 * zone keeps two bitmaps after its header, one bit per chunk: `abits' (the
 * chunk is handed out; written by the owner only, with plain loads and
 * stores) and `rbits' (the chunk sits on the remote list; set with an
 * atomic OR by the remote freer, cleared by the owner when it drains the
 * list).  A chunk freed twice, locally, remotely or both, is caught
 * whatever the program wrote into it.  SLABKIT_OPTIONS=invariants adds the
 * kernel's allocation-side check ("already allocated") and the leak report
 * of malloc_uninit; pattern and weird add the fill patterns of spec 1.8.
 *
 * Statistics follow the kernel: per type, one kmalloc_use slot per shard
 * (owner-only updates; shards beyond SK_SLOT_SHARED share the last slot
 * with atomic adds), meaningful only as a sum.  The lazy limit estimate
 * ks_loosememuse grows by whole ZoneSize steps and the exact sum is taken
 * only when it reaches the limit (spec 1.4 step 3).  ks_maxused is a real
 * high-water mark, sampled at every fold of the estimate, every large
 * allocation and every statistics read.
 *
 * Deviations from the kernel (README "Deviations"): shards are threads;
 * remote frees ring a doorbell list instead of an IPI; M_WAITOK retries a
 * failed mmap with back-off and a reclaim pass for at most waitok_timeout
 * milliseconds, then panics; the double-free bitmaps are always present.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "kmalloc_fast.h"

struct sk_slab_config sk_slab;
__thread int sk_tls_intr;

/* The predefined types are public (kmalloc.h): export them. */
SLABKIT_API MALLOC_DEFINE(M_CACHE, "cache",
    "Various Dynamically allocated caches");
SLABKIT_API MALLOC_DEFINE(M_DEVBUF, "devbuf", "device driver memory");
SLABKIT_API MALLOC_DEFINE(M_TEMP, "temp", "misc temporary data buffers");
MALLOC_DEFINE(M_SLABKIT, "slabkit", "slabkit's own metadata");

static pthread_mutex_t types_mtx = PTHREAD_MUTEX_INITIALIZER;
struct malloc_type *sk_type_list;
static struct malloc_type **type_tailp = &sk_type_list;

static int (*reclaim_hooks[8])(void);
static atomic_int reclaim_nhooks;

#define TYPE_REGISTERED 0x1

static void zone_drain_pending(struct sk_shard *sh);
static void shard_update_slow(struct sk_shard *sh);
static void lcache_trim(struct sk_shard *sh, size_t keep);
static inline bool sk_colouring(void);
static void zarena_init(void);
static void shard_set_release(struct sk_shard *sh);
static void direct_init(void);

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
	direct_init();
	zarena_init();
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
	pthread_mutex_lock(&types_mtx);
}

void
sk_types_unlock(void)
{
	pthread_mutex_unlock(&types_mtx);
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

static void
type_check_magic(struct malloc_type *type, const char *api)
{
	if (type == NULL)
		sk_panic(api, "NULL malloc type");
	if (type->ks_magic != M_MAGIC)
		sk_panic(api, "malloc type lacks magic (type %p)", (void *)type);
}

void
malloc_init(void *arg)
{
	struct malloc_type *type = arg;
	struct kmalloc_use *u;

	sk_init();
	type_check_magic(type, "malloc_init");
	pthread_mutex_lock(&types_mtx);
	if (SK_LOAD(&type->ks_limit) != 0) {
		pthread_mutex_unlock(&types_mtx);
		return;
	}
	if (type->ks_use == NULL || type->ks_use == &type->ks_use0) {
		u = use_array_get();
		/* Counts taken before registration move to the shared slot. */
		u[SK_SLOT_SHARED] = type->ks_use0;
		memset(&type->ks_use0, 0, sizeof(type->ks_use0));
		SK_STORE_REL(&type->ks_use, u);
	}
	if (!(type->ks_state & TYPE_REGISTERED)) {
		type->ks_next = NULL;
		*type_tailp = type;
		type_tailp = &type->ks_next;
		type->ks_state |= TYPE_REGISTERED;
	}
	/* spec 1.5: default limit is 10% of usable memory */
	SK_STORE_REL(&type->ks_limit, sk_slab.lim_mb * 1024 * 1024 / 10);
	pthread_mutex_unlock(&types_mtx);
}

static void
type_uninit(struct malloc_type *type, bool report)
{
	struct kmalloc_type_stats st;

	type_check_magic(type, "malloc_uninit");
	pthread_mutex_lock(&types_mtx);
	if (type->ks_state & TYPE_REGISTERED) {
		struct malloc_type **pp = &sk_type_list;

		while (*pp != NULL && *pp != type)
			pp = &(*pp)->ks_next;
		if (*pp == type) {
			*pp = type->ks_next;
			if (type_tailp == &type->ks_next)
				type_tailp = pp;
		}
		type->ks_next = NULL;
		type->ks_state &= ~TYPE_REGISTERED;
	}
	pthread_mutex_unlock(&types_mtx);
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
	type_uninit(type, true);
	u = type->ks_use;
	if (u != NULL && u != &type->ks_use0) {
		pthread_mutex_lock(&types_mtx);
		if (use_pool_n < (int)(sizeof(use_pool) / sizeof(use_pool[0])))
			use_pool[use_pool_n++] = u;
		pthread_mutex_unlock(&types_mtx);
	}
	type->ks_magic = 0;
	sk_kfree(type, M_TEMP);
	*typep = NULL;
}

long
kmalloc_limit(struct malloc_type *type)
{
	type_check_magic(type, "kmalloc_limit");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type);
	return (long)SK_LOAD(&type->ks_limit);
}

void
kmalloc_raise_limit(struct malloc_type *type, size_t bytes)
{
	type_check_magic(type, "kmalloc_raise_limit");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type);
	if (bytes == 0)
		bytes = (size_t)1 << 47; /* "KVA size": the whole address space */
	if (bytes > SK_LOAD(&type->ks_limit))
		SK_STORE(&type->ks_limit, bytes);
}

void
kmalloc_set_unlimited(struct malloc_type *type)
{
	type_check_magic(type, "kmalloc_set_unlimited");
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
			long long c = SK_LOAD(&u[i].calls);

			memuse += (long long)(SK_LOAD(&u[i].memuse) +
			    SK_LOAD(&u[i].reserved[1]) +
			    SK_LOAD(&u[i].loosememuse) +
			    SK_LOAD(&u[i].reserved[0]));
			inuse += c - (long long)SK_LOAD(&u[i].reserved[2]) +
			    (long long)SK_LOAD(&u[i].inuse);
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

		while (st->memuse > old &&
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

__attribute__((noinline)) static void
fold_loose(struct malloc_type *type, size_t bytes)
{
	struct kmalloc_type_stats st;

	__atomic_fetch_add(&type->ks_loosememuse, bytes, __ATOMIC_RELAXED);
	sk_type_sum(type, &st); /* also advances ks_maxused */
}

/*
 * An owned slot (a shard's own, updated by that shard only) counts what
 * the fast paths can count with the fewest instructions, and
 * sk_type_sum derives the kernel's figures from it:
 *   calls        every kmalloc call (the fast path's only count);
 *   reserved[2]  calls that allocated nothing (the slow path counts a
 *                call there first and takes it back when it allocates);
 *   inuse        minus the frees counted on this shard;
 *   loosememuse  bytes allocated since the last fold minus the fold
 *                window, so the add that makes it non-negative is the
 *                one that folds (the fast path tests the add's sign);
 *   reserved[0]  the window in force (ZoneSize; 0 before any fold);
 *   reserved[1]  bytes allocated and folded before;
 *   memuse       minus the bytes freed on this shard.
 * So InUse = calls - reserved[2] + inuse and MemUse = reserved[1] +
 * loosememuse + reserved[0] + memuse, exact whenever no thread is in
 * the middle of an update.  The shared slot keeps the kernel's meaning.
 */
static void
fold_slot(struct malloc_type *type, struct kmalloc_use *u)
{
	size_t credit = SK_LOAD(&u->loosememuse) + SK_LOAD(&u->reserved[0]);

	sk_slot_add(&u->reserved[1], credit);
	SK_STORE(&u->loosememuse, -sk_slab.zone_size);
	SK_STORE(&u->reserved[0], sk_slab.zone_size);
	fold_loose(type, credit);
}

/* Count an allocation of `bytes' (spec 1.4 step 9). */
static inline void
stats_alloc(struct malloc_type *type, struct sk_shard *sh, size_t bytes)
{
	struct kmalloc_use *u = use_slot(type, sh);

	if (SK_LIKELY(u != NULL)) {
		sk_slot_sub(&u->reserved[2], 1); /* the call allocated */
		if (sk_slot_add_nonneg(&u->loosememuse, bytes))
			fold_slot(type, u);
		return;
	}
	u = use_shared(type);
	__atomic_fetch_add(&u->inuse, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&u->memuse, bytes, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&u->loosememuse, bytes, __ATOMIC_RELAXED) >=
	    sk_slab.zone_size) {
		size_t loose = __atomic_exchange_n(&u->loosememuse, (size_t)0,
		    __ATOMIC_RELAXED);
		fold_loose(type, loose);
	}
}

static inline void
stats_calls(struct malloc_type *type, struct sk_shard *sh)
{
	struct kmalloc_use *u = use_slot(type, sh);

	if (SK_LIKELY(u != NULL)) {
		sk_slot_add((size_t *)&u->calls, 1);
		sk_slot_add(&u->reserved[2], 1); /* until it allocates */
	} else
		__atomic_fetch_add(&use_shared(type)->calls, 1,
		    __ATOMIC_RELAXED);
}

/* A free decrements the freeing shard's slot (spec 1.2). */
static inline void
stats_free(struct malloc_type *type, struct sk_shard *sh, size_t bytes)
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
/* Zone lists */

static inline void
zl_insert_head(struct sk_zonelist *l, struct sk_slzone *z)
{
	z->z_prev = NULL;
	z->z_next = l->head;
	if (l->head != NULL)
		l->head->z_prev = z;
	else
		l->tail = z;
	l->head = z;
}

static inline void
zl_remove(struct sk_zonelist *l, struct sk_slzone *z)
{
	if (z->z_prev != NULL)
		z->z_prev->z_next = z->z_next;
	else
		l->head = z->z_next;
	if (z->z_next != NULL)
		z->z_next->z_prev = z->z_prev;
	else
		l->tail = z->z_prev;
	z->z_next = z->z_prev = NULL;
}

#define ZF_ONLIST 0x8000 /* z_flags: listed in ZoneAry */
#define ZF_EXHAUSTED 0x4000 /* z_flags: on the shard's exhausted list */
#define ZF_GRANULE 0x2000 /* z_flags: granule bitmaps, encoded links */

struct sk_slzone sk_zone_sentinel = {
	.z_lchunks = (struct sk_chunk *)&sk_zone_sentinel,
};

/* Direct-table entries of each class (sizes up to 1024 only). */
static uint8_t d8_lo[SK_NZONES], d8_n[SK_NZONES];
static uint8_t d16_lo[SK_NZONES], d16_n[SK_NZONES];

static void
direct_init(void)
{
	for (int i = SK_DIRECT8 - 1; i >= 0; i--) {
		int zi = sk_small_class[i + 1];

		d8_lo[zi] = (uint8_t)i;
		d8_n[zi]++;
	}
	for (int j = SK_DIRECT16 - 1; j >= 0; j--) {
		int zi = sk_small_class[2 * j + 2];

		d16_lo[zi] = (uint8_t)j;
		d16_n[zi]++;
	}
}

static void
direct_fill(struct sk_shard *sh, int zi, struct sk_slzone *z)
{
	for (int i = 0; i < d8_n[zi]; i++)
		SK_STORE(&sh->direct8[d8_lo[zi] + i], z);
	for (int j = 0; j < d16_n[zi]; j++)
		SK_STORE(&sh->direct16[d16_lo[zi] + j], z);
}

/*
 * Point the direct tables of class zi at the zone kmalloc_slow would use
 * (the list's tail), or at the sentinel when the fast path must not serve
 * the class.  The fence and second look pair with debug_changed(): either
 * this thread sees the debug option, or that function's sentinel store
 * comes after ours.
 */
static void
direct_update(struct sk_shard *sh, int zi)
{
	struct sk_slzone *z = sh->zoneary[zi].tail;

	if (d8_n[zi] == 0 && d16_n[zi] == 0)
		return;
	if (z == NULL || z->z_fastowner != sh || SK_LOAD(&sk_opt.debug) ||
	    (sh->slow & SK_SHARD_SLOW_RELEASE))
		z = &sk_zone_sentinel;
	direct_fill(sh, zi, z);
	if (z != &sk_zone_sentinel) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (SK_LOAD(&sk_opt.debug))
			direct_fill(sh, zi, &sk_zone_sentinel);
	}
}

static void
shard_fast_off(struct sk_shard *sh, void *arg)
{
	bool on = arg != NULL;

	if (sh->empty)
		return;
	if (on && !(sh->slow & SK_SHARD_SLOW_ALWAYS)) {
		SK_STORE(&sh->fastkey, sh);
		return;
	}
	SK_STORE(&sh->fastkey, (struct sk_shard *)1);
	for (int i = 0; i < SK_DIRECT8; i++)
		SK_STORE(&sh->direct8[i], &sk_zone_sentinel);
	for (int j = 0; j < SK_DIRECT16; j++)
		SK_STORE(&sh->direct16[j], &sk_zone_sentinel);
}

/*
 * Free zones (or deferred large blocks) wait for the next kmalloc that may
 * block (spec 1.6 step 7): send every size to the slow path until then.
 */
static void
shard_set_release(struct sk_shard *sh)
{
	sh->slow |= SK_SHARD_SLOW_RELEASE;
	for (int i = 0; i < SK_DIRECT8; i++)
		SK_STORE(&sh->direct8[i], &sk_zone_sentinel);
	for (int j = 0; j < SK_DIRECT16; j++)
		SK_STORE(&sh->direct16[j], &sk_zone_sentinel);
}

void
sk_kmalloc_debug_changed(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	sk_shard_foreach(shard_fast_off,
	    SK_LOAD(&sk_opt.debug) ? NULL : (void *)1);
}

void
sk_kmalloc_shard_setup(struct sk_shard *sh)
{
	for (int i = 0; i < SK_DIRECT8; i++)
		sh->direct8[i] = &sk_zone_sentinel;
	for (int j = 0; j < SK_DIRECT16; j++)
		sh->direct16[j] = &sk_zone_sentinel;
	sh->uoff = (size_t)sh->slot * sizeof(struct kmalloc_use);
	/* the drop-in's slot; a shard without one of its own never takes
	 * the fast paths, so any slot will do for it */
	sh->dropin_use = &sk_dropin_use[sh->slot];
	sh->fastkey = (sh->slow & SK_SHARD_SLOW_ALWAYS) || sk_opt.debug
	    ? (struct sk_shard *)1
	    : sh;
}

static inline void
zary_insert(struct sk_shard *sh, struct sk_slzone *z)
{
	zl_insert_head(&sh->zoneary[z->z_zoneindex], z);
	z->z_flags |= ZF_ONLIST;
	direct_update(sh, z->z_zoneindex);
}

static inline void
zary_remove(struct sk_shard *sh, struct sk_slzone *z)
{
	zl_remove(&sh->zoneary[z->z_zoneindex], z);
	z->z_flags &= ~ZF_ONLIST;
	direct_update(sh, z->z_zoneindex);
}

/* Put a zone that has free chunks back on ZoneAry (head: a mature zone). */
static inline void
zone_relist(struct sk_shard *sh, struct sk_slzone *z)
{
	if (z->z_flags & ZF_ONLIST)
		return;
	if (z->z_flags & ZF_EXHAUSTED) {
		zl_remove(&sh->exhausted, z);
		z->z_flags &= ~ZF_EXHAUSTED;
	}
	if ((z->z_flags & ZF_GRANULE) && !(sh->slow & SK_SHARD_SLOW_ALWAYS))
		z->z_fastowner = sh;
	zary_insert(sh, z);
}

static inline int32_t
zone_nfree(const struct sk_slzone *z)
{
	return z->z_nmax - z->z_nused;
}

/* Chunk index of p in z, or -1 when p is not a chunk boundary of z. */
static inline long
zone_chunk_index(struct sk_slzone *z, const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)z->z_baseptr;
	uintptr_t idx;

	if (SK_UNLIKELY((uintptr_t)p < (uintptr_t)z->z_baseptr))
		return -1;
	idx = (uintptr_t)(((uint64_t)off * z->z_chunkmul) >> 32);
	if (SK_UNLIKELY(idx >= (uintptr_t)z->z_nmax ||
		idx * z->z_chunksize != off))
		return -1;
	return (long)idx;
}

/* The bit of chunk c (a chunk boundary) in z's bitmaps. */
static inline size_t
zone_bit(struct sk_slzone *z, const void *c)
{
	if (SK_LIKELY(z->z_flags & ZF_GRANULE))
		return ((uintptr_t)c - (uintptr_t)z) >> 3;
	return (size_t)zone_chunk_index(z, c);
}

static inline bool
bit_get(uint32_t *w, size_t b)
{
	return (SK_LOAD(&w[b >> 5]) >> (b & 31)) & 1;
}

static inline void
bit_put(uint32_t *w, size_t b, bool v)
{
	uint32_t x = SK_LOAD(&w[b >> 5]);

	if (v)
		x |= 1u << (b & 31);
	else
		x &= ~(1u << (b & 31));
	SK_STORE(&w[b >> 5], x);
}

/* Handed out and not remote-freed: a live chunk. */
static inline bool
zone_chunk_live(struct sk_slzone *z, const void *c)
{
	size_t b = zone_bit(z, c);

	return bit_get(z->z_abits, b) && !bit_get(z->z_rbits, b);
}

static inline bool
zone_list_empty(struct sk_slzone *z)
{
	return (z->z_flags & ZF_GRANULE) ? z->z_lchunks == (void *)z
					 : z->z_lchunks == NULL;
}

static inline void
zone_push(struct sk_slzone *z, struct sk_chunk *c)
{
	if (z->z_flags & ZF_GRANULE)
		c->c_next = (struct sk_chunk *)((uintptr_t)z->z_lchunks ^
		    z->z_key);
	else
		sk_link_set(z, &c->c_next, z->z_lchunks);
	z->z_lchunks = c;
}

/* Pop the head of a non-empty local list. */
static inline struct sk_chunk *
zone_pop(struct sk_slzone *z)
{
	struct sk_chunk *c = z->z_lchunks;

	if (z->z_flags & ZF_GRANULE) {
		uintptr_t n = sk_zone_link(z, c);

		if (sk_zone_link_bad(c, n))
			sk_zone_link_corrupted(z, c, n);
		z->z_lchunks = (struct sk_chunk *)n;
	} else
		z->z_lchunks = sk_link_get(z, &c->c_next);
	return c;
}

void *
sk_zone_link_corrupted(struct sk_slzone *z, struct sk_chunk *c, uintptr_t v)
{
	sk_panic("kmalloc",
	    "free list of zone %p corrupted, use after free? (the link in free "
	    "chunk %p decodes to %p, outside its zone; ptr %p)",
	    (void *)z, (void *)c, (void *)v, (void *)c);
}

void *
sk_zone_chunk_in_use(struct sk_slzone *z, struct sk_chunk *c)
{
	sk_panic("kmalloc",
	    "free list of zone %p corrupted, use after free? (it leads to "
	    "chunk %p, which is in use; ptr %p)",
	    (void *)z, (void *)c, (void *)c);
}

/* Pull remote frees of a hardened or tracked zone (its atomic list). */
static int
zone_drain_list(struct sk_slzone *z)
{
	struct sk_chunk *c, *next;
	int n = 0;

	c = __atomic_exchange_n(&z->z_rchunks, NULL, __ATOMIC_ACQ_REL);
	for (; c != NULL; c = next) {
		long idx = zone_chunk_index(z, c);
		uint32_t bit, w;

		next = sk_link_get_remote(z, &c->c_next);
		if (idx < 0)
			sk_panic("kfree", "remote free list of zone %p corrupted "
					  "(ptr %p)", (void *)z, (void *)c);
		bit = 1u << (idx & 31);
		__atomic_fetch_and(&z->z_rbits[idx >> 5], ~bit,
		    __ATOMIC_RELAXED);
		w = SK_LOAD(&z->z_abits[idx >> 5]);
		if (!(w & bit))
			sk_panic("kfree", "memory chunk %p is already free!",
			    (void *)c);
		SK_STORE(&z->z_abits[idx >> 5], w & ~bit);
		zone_push(z, c);
		n++;
	}
	z->z_nused -= n;
	return n;
}

/*
 * Pull the remote frees of an ordinary zone: every chunk another thread
 * freed has its rbits bit set (the freer's one atomic operation).  One
 * exchange per non-zero word, none per chunk; the chunks go on the local
 * list.  The hint is cleared first (an exchange, so the clear is ordered
 * before the loads): a freer sets it before its bit.
 */
static int
zone_drain_rbits(struct sk_slzone *z)
{
	uint64_t *ab = (uint64_t *)(void *)z->z_abits;
	uint64_t *rb = (uint64_t *)(void *)z->z_rbits;
	size_t first = ((uintptr_t)z->z_baseptr - (uintptr_t)z) >> 9;
	size_t last = ((uintptr_t)z->z_baseptr - (uintptr_t)z +
	    (size_t)z->z_nmax * z->z_chunksize + 511) >> 9;
	int n = 0;

	__atomic_exchange_n(&z->z_rhint, 0, __ATOMIC_SEQ_CST);
	for (size_t w = first; w < last; w++) {
		uint64_t bits, a;

		if (SK_LOAD(&rb[w]) == 0)
			continue;
		bits = __atomic_exchange_n(&rb[w], 0, __ATOMIC_ACQ_REL);
		a = SK_LOAD(&ab[w]);
		if ((a & bits) != bits) {
			uint64_t bad = bits & ~a;
			struct sk_chunk *c = (struct sk_chunk *)((char *)z +
			    ((w * 64 + (size_t)__builtin_ctzll(bad)) << 3));

			sk_panic("kfree", "memory chunk %p is already free! "
					  "(double free, ptr %p)",
			    (void *)c, (void *)c);
		}
		SK_STORE(&ab[w], a & ~bits);
		while (bits != 0) {
			size_t b = (size_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			zone_push(z, (struct sk_chunk *)((char *)z +
					 ((w * 64 + b) << 3)));
			n++;
		}
	}
	z->z_nused -= n;
	return n;
}

static inline bool
zone_remote_waiting(struct sk_slzone *z)
{
	if (z->z_flags & ZF_GRANULE)
		return SK_LOAD(&z->z_rhint) != 0;
	return SK_LOAD(&z->z_rchunks) != NULL;
}

/* Move every remote free of z to its local list; the number moved. */
static int
zone_drain_remote(struct sk_slzone *z)
{
	if (z->z_flags & ZF_GRANULE)
		return zone_drain_rbits(z);
	return zone_drain_list(z);
}

/* spec 1.6 step 6 */
static void
check_zone_free(struct sk_shard *sh, struct sk_slzone *z)
{
	struct sk_zonelist *l = &sh->zoneary[z->z_zoneindex];

	if (z->z_nused != 0 || SK_LOAD_ACQ(&z->z_rcount) != 0)
		return;
	if (!(z->z_flags & ZF_ONLIST))
		return;
	if (l->head == z && z->z_next == NULL)
		return; /* at least one zone per class stays listed */
	zary_remove(sh, z);
	z->z_magic = (uint32_t)-1;
	z->z_fastowner = NULL;
	sk_pagemap_set((uintptr_t)z, 0);
	zl_insert_head(&sh->freezones, z);
	if (++sh->nfreezones > SK_LOAD(&sk_slab.zone_rels_thresh))
		shard_set_release(sh);
}

/* ------------------------------------------------------------------ */
/* The zone arena */

uintptr_t sk_zarena_base;
size_t sk_zarena_used;		/* bytes mapped from the base on */
static size_t zarena_limit;	/* the most it may grow to; 0: no arena */
static size_t zarena_carved;	/* bytes handed out as zones, <= used */
static bool zarena_full;	/* the next range is taken by someone */
static uint32_t *zarena_stack;	/* free zones: index << 1 | not zeroed */
static size_t zarena_nstack;
static pthread_mutex_t zarena_lock = PTHREAD_MUTEX_INITIALIZER;

#define ZARENA_MAX	((size_t)64 << 30)
#define ZARENA_STEP	((size_t)1 << 20)

/*
 * The arena grows upwards from a random base far from where the kernel
 * places mappings (16-80 TiB, above AddressSanitizer's shadow), a MiB at
 * a time, with mappings that may not replace anything: address space is
 * taken only as zones are needed, so RLIMIT_AS and overcommit see what
 * they always saw, and adjacent steps merge into one kernel mapping.  It
 * stops growing at 64 GiB or where something else was mapped first;
 * zones beyond are mapped one by one and freed through the slow path.
 * ThreadSanitizer owns most of the address space, so there the arena is
 * one reservation of 4 GiB (read-write, no swap reserved) wherever the
 * kernel puts it.
 */
static void
zarena_init(void)
{
	size_t zs = sk_slab.zone_size, ps = sk_slab.page_size;
	size_t nz = ZARENA_MAX / zs;
	int why;

	zarena_stack = sk_os_reserve_rw(
	    (nz * sizeof(uint32_t) + ps - 1) & ~(ps - 1), ps, &why);
	if (zarena_stack == NULL)
		return;
#ifdef SLABKIT_TSAN
	{
		void *p = sk_os_reserve_rw((size_t)4 << 30, zs, &why);

		if (p != NULL) {
			sk_zarena_base = (uintptr_t)p;
			zarena_limit = sk_zarena_used = (size_t)4 << 30;
		}
	}
#else
	for (int tries = 0; tries < 8; tries++) {
		uintptr_t base = ((uintptr_t)0x110000000000 +
				     (sk_os_random() % 0x3e0000u) *
					 ((uintptr_t)1 << 24)) &
		    ~(uintptr_t)(ZARENA_STEP - 1);

		if (sk_os_map_at((void *)base, ZARENA_STEP, &why) != NULL) {
			sk_zarena_base = base;
			zarena_limit = ZARENA_MAX;
			SK_STORE_REL(&sk_zarena_used, ZARENA_STEP);
			return;
		}
	}
#endif
}

/* Under zarena_lock: one more zone of arena space, or NULL. */
static void *
zarena_carve(void)
{
	size_t zs = sk_slab.zone_size, used = sk_zarena_used;
	int why;

	if (zarena_carved + zs > used) {
		size_t step = ZARENA_STEP < zs ? zs : ZARENA_STEP;

		if (zarena_full || used + zs > zarena_limit)
			return NULL;
		if (used + step > zarena_limit)
			step = zs;
		if (sk_os_map_at((char *)sk_zarena_base + used, step, &why) ==
		    NULL) {
			step = zs;
			if (sk_os_map_at((char *)sk_zarena_base + used, step,
				&why) == NULL) {
				if (why == SK_OS_EXHAUSTED)
					zarena_full = true;
				return NULL;
			}
		}
		SK_STORE_REL(&sk_zarena_used, used + step);
	}
	zarena_carved += zs;
	return (char *)sk_zarena_base + zarena_carved - zs;
}

/* A zone's memory: from the arena (free zones first), else mapped. */
static void *
zone_map(bool *fresh, int *why)
{
	size_t zs = sk_slab.zone_size;
	void *z = NULL;

	*fresh = true;
	if (zarena_limit != 0 && !sk_opt.hardened && !sk_opt.track) {
		if (sk_os_fault_check(SLABKIT_FAULT_MAP)) {
			*why = SK_OS_SHORTAGE;
			return NULL;
		}
		if (sk_os_fault_check(SLABKIT_FAULT_MAP_EXHAUST)) {
			*why = SK_OS_EXHAUSTED;
			return NULL;
		}
		pthread_mutex_lock(&zarena_lock);
		if (zarena_nstack > 0) {
			uint32_t e = zarena_stack[--zarena_nstack];

			z = (char *)sk_zarena_base + (size_t)(e >> 1) * zs;
			*fresh = (e & 1) == 0;
		} else {
			z = zarena_carve();
		}
		pthread_mutex_unlock(&zarena_lock);
		if (z != NULL)
			return z;
	}
	return sk_os_map(zs, zs, why);
}

/* Give a zone's memory back: to the arena (decommitted) or unmapped. */
static void
zone_unmap(struct sk_slzone *z)
{
	size_t zs = sk_slab.zone_size;
	uintptr_t a = (uintptr_t)z;

	if (a - sk_zarena_base < SK_LOAD(&sk_zarena_used)) {
		uint32_t e = (uint32_t)((a - sk_zarena_base) / zs) << 1;

		if (sk_os_decommit(z, zs) != 0)
			e |= 1; /* still holds old data */
		pthread_mutex_lock(&zarena_lock);
		zarena_stack[zarena_nstack++] = e;
		pthread_mutex_unlock(&zarena_lock);
		return;
	}
	sk_os_unmap(z, zs);
}

/* Unmap free zones beyond ZoneRelsThresh and deferred large blocks. */
static void
release_free_zones(struct sk_shard *sh, int keep)
{
	while (sh->nfreezones > keep) {
		struct sk_slzone *z = sh->freezones.tail;

		zl_remove(&sh->freezones, z);
		sh->nfreezones--;
		sh->zones_released++;
		if (SK_UNLIKELY(z->z_hflags != 0))
			sk_harden_zone_retire(z);
		zone_unmap(z);
	}
	while (sh->freeovzones != NULL) {
		struct sk_slzone *z = sh->freeovzones;
		size_t bytes = (size_t)z->z_nmax << sk_slab.page_shift;

		sh->freeovzones = z->z_next;
		sk_os_unmap(z, bytes);
	}
}

/*
 * A zone with nothing free for the owner (spec 1.4 step 7): set RSignal,
 * harvest once more, and if still nothing, move it off ZoneAry to the
 * exhausted list.  Returns true when it left the list.
 */
static bool
zone_exhausted(struct sk_shard *sh, struct sk_slzone *z)
{
	__atomic_store_n(&z->z_rsignal, 1, __ATOMIC_SEQ_CST);
	zone_drain_remote(z);
	if (zone_nfree(z) == 0) {
		if (z->z_flags & ZF_ONLIST)
			zary_remove(sh, z);
		/* kept reachable: a remote free that read RSignal before we
		 * set it rings no doorbell; zone_scan_exhausted finds it */
		z->z_fastowner = NULL; /* frees relist it: slow path */
		if (!(z->z_flags & ZF_EXHAUSTED)) {
			zl_insert_head(&sh->exhausted, z);
			z->z_flags |= ZF_EXHAUSTED;
		}
		return true;
	}
	__atomic_store_n(&z->z_rsignal, 0, __ATOMIC_RELAXED);
	return false;
}

/* The doorbell: zones that left their list and got remote frees. */
static void
zone_drain_pending(struct sk_shard *sh)
{
	struct sk_slzone *z, *next;

	z = __atomic_exchange_n(&sh->pend, NULL, __ATOMIC_ACQ_REL);
	for (; z != NULL; z = next) {
		next = SK_LOAD(&z->z_pend_next);
		__atomic_store_n(&z->z_pending, 0, __ATOMIC_SEQ_CST);
		zone_drain_remote(z);
		if (zone_nfree(z) == 0 && !(z->z_flags & ZF_ONLIST)) {
			/* Still exhausted (the chunk that rang was taken by
			 * an earlier harvest): re-arm the signal, then look
			 * again so no remote free can slip between. */
			__atomic_store_n(&z->z_rsignal, 1, __ATOMIC_SEQ_CST);
			if (zone_drain_remote(z) > 0)
				__atomic_store_n(&z->z_rsignal, 0,
				    __ATOMIC_RELAXED);
		}
		if (zone_nfree(z) > 0)
			zone_relist(sh, z);
		__atomic_fetch_sub(&z->z_rcount, 1, __ATOMIC_ACQ_REL);
		check_zone_free(sh, z);
	}
}

/* ------------------------------------------------------------------ */
/* The backend (kmem_slab_alloc) */

static void
run_reclaim(struct sk_shard *sh)
{
	int n = atomic_load(&reclaim_nhooks);

	release_free_zones(sh, 0);
	lcache_trim(sh, 0);
	shard_update_slow(sh);
	for (int i = 0; i < n; i++)
		reclaim_hooks[i]();
}

void
sk_kmalloc_register_reclaim(int (*fn)(void))
{
	int i = atomic_load(&reclaim_nhooks);

	for (int j = 0; j < i; j++)
		if (reclaim_hooks[j] == fn)
			return;
	if (i < 8) {
		reclaim_hooks[i] = fn;
		atomic_store(&reclaim_nhooks, i + 1);
	}
}

/*
 * Map size bytes aligned to align for kmalloc, with the blocking rules of
 * spec 1.7: M_RNOWAIT returns NULL at once; M_WAITOK retries a shortage
 * after a reclaim pass, with back-off, for up to waitok_timeout; exhausted
 * address space panics unless M_NULLOK.
 */
static void *
slab_backend(struct sk_shard *sh, size_t size, size_t align, int flags,
    bool *zone_fresh)
{
	uint64_t start = 0;
	long backoff_ns = 100000;
	void *p;
	int why;

	if (SK_UNLIKELY((flags & (M_RNOWAIT | M_WAITOK)) == 0))
		sk_panic("kmem_slab_alloc", "bad flags %x", (unsigned)flags);
	for (;;) {
		p = zone_fresh != NULL ? zone_map(zone_fresh, &why)
				       : sk_os_map(size, align, &why);
		if (SK_LIKELY(p != NULL))
			return p;
		if (why == SK_OS_EXHAUSTED) {
			if (flags & M_NULLOK)
				return NULL;
			sk_panic("kmem_slab_alloc",
			    "address space ran out of space! (%zu bytes)", size);
		}
		if (flags & M_RNOWAIT)
			return NULL;
		if (flags & SK_M_NORETRY) {
			if (start != 0)
				return NULL;
			start = 1;
			run_reclaim(sh);
			continue;
		}
		if (start == 0)
			start = sk_os_now_ns();
		run_reclaim(sh);
		if (sk_opt.waitok_timeout_ms > 0 &&
		    sk_os_now_ns() - start >
			(uint64_t)sk_opt.waitok_timeout_ms * 1000000ULL) {
			if (flags & M_NULLOK)
				return NULL;
			sk_panic("kmalloc",
			    "out of memory: M_WAITOK waited %ld ms for %zu bytes",
			    sk_opt.waitok_timeout_ms, size);
		}
		sk_os_sleep_ns(backoff_ns);
		if (backoff_ns < 50000000)
			backoff_ns *= 2;
	}
}

/* ------------------------------------------------------------------ */
/* kmalloc */

static inline size_t
round_pow2(size_t n)
{
	if (n <= 1)
		return n;
	return (size_t)1 << (64 - __builtin_clzl(n - 1));
}

/* spec 1.4 step 2 */
static inline size_t
apply_round_flags(size_t size, int *flags)
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
static bool
limit_check(struct malloc_type *type, int flags)
{
	while (SK_LOAD(&type->ks_loosememuse) >= SK_LOAD(&type->ks_limit)) {
		struct kmalloc_type_stats st;

		sk_type_sum(type, &st);
		SK_STORE(&type->ks_loosememuse, st.memuse);
		if (st.memuse >= SK_LOAD(&type->ks_limit)) {
			if (flags & M_NULLOK)
				return false;
			sk_panic("kmalloc", "%s: malloc limit exceeded",
			    type->ks_shortdesc);
		}
	}
	return true;
}

/*
 * The large-block cache (a deviation: the kernel unmaps a large block at
 * kfree).  A shard keeps up to SK_LCACHE_MAX recently freed blocks of at
 * most SK_LCACHE_BLOCK bytes, SK_LCACHE_BUDGET bytes in all, still mapped
 * and faulted in, and hands them to its next large allocations: a 64 KiB
 * - 4 MiB malloc/free pair then costs no mmap, munmap or page fault.  A
 * block larger than asked (at most twice) is handed out whole (its usable
 * size is its own, its pages are already there); when every
 * cached block is smaller, the largest one is grown with mremap (its pages
 * stay, only the new ones fault in).  Oldest
 * blocks go first when the cache is full; slab_cleanup() and the M_WAITOK
 * reclaim pass empty it.
 */
static void *
lcache_get(struct sk_shard *sh, size_t *npagesp)
{
	size_t npages = *npagesp;
	int best = -1, grow = -1;

	for (int i = 0; i < sh->lcache_n; i++) {
		size_t n = sh->lcache[i].npages;

		if (n >= npages && n <= 2 * npages &&
		    (best < 0 || n < sh->lcache[best].npages))
			best = i;
		if (n < npages && (grow < 0 || n > sh->lcache[grow].npages))
			grow = i;
	}
	if (best < 0)
		best = grow; /* smaller: grown below, its pages kept */
	if (best < 0)
		return NULL;
	{
		void *p = sh->lcache[best].p;
		size_t n = sh->lcache[best].npages;
		int why;

		sh->lcache_bytes -= n << sk_slab.page_shift;
		sh->lcache_n--;
		memmove(&sh->lcache[best], &sh->lcache[best + 1],
		    (size_t)(sh->lcache_n - best) * sizeof(sh->lcache[0]));
		if (n > npages) {
			/* hand it out whole: its pages are already there */
			*npagesp = n;
		} else if (n < npages) {
			void *q = sk_os_remap(p, n << sk_slab.page_shift,
			    npages << sk_slab.page_shift, &why);

			if (q == NULL) {
				sk_os_unmap(p, n << sk_slab.page_shift);
				return NULL;
			}
			p = q;
		}
		return p;
	}
}

/* Unmap cached blocks, oldest first, until `keep' bytes remain. */
static void
lcache_trim(struct sk_shard *sh, size_t keep)
{
	int drop = 0;

	while (drop < sh->lcache_n && sh->lcache_bytes > keep) {
		size_t bytes = sh->lcache[drop].npages << sk_slab.page_shift;

		sk_os_unmap(sh->lcache[drop].p, bytes);
		sh->lcache_bytes -= bytes;
		drop++;
	}
	if (drop > 0) {
		sh->lcache_n -= drop;
		memmove(&sh->lcache[0], &sh->lcache[drop],
		    (size_t)sh->lcache_n * sizeof(sh->lcache[0]));
	}
}

static bool
lcache_put(struct sk_shard *sh, void *p, size_t npages)
{
	size_t bytes = npages << sk_slab.page_shift;

	if (bytes > SK_LCACHE_BLOCK || sh->empty)
		return false;
	if (sh->lcache_n == SK_LCACHE_MAX) {
		/* make room: drop the oldest */
		sk_os_unmap(sh->lcache[0].p,
		    sh->lcache[0].npages << sk_slab.page_shift);
		sh->lcache_bytes -= sh->lcache[0].npages << sk_slab.page_shift;
		sh->lcache_n--;
		memmove(&sh->lcache[0], &sh->lcache[1],
		    (size_t)sh->lcache_n * sizeof(sh->lcache[0]));
	}
	if (sh->lcache_bytes + bytes > SK_LCACHE_BUDGET)
		lcache_trim(sh, SK_LCACHE_BUDGET - bytes);
	sh->lcache[sh->lcache_n].p = p;
	sh->lcache[sh->lcache_n].npages = npages;
	sh->lcache_n++;
	sh->lcache_bytes += bytes;
	return true;
}

static void *
kmalloc_large(struct sk_shard *sh, size_t size, size_t align,
    struct malloc_type *type, int flags)
{
	size_t ps = sk_slab.page_size;
	size_t bytes = (size + ps - 1) & ~(ps - 1);
	size_t npages = bytes >> sk_slab.page_shift;
	size_t guards = 0;
	void *p;

	if (bytes < size || npages > INT32_MAX) {
		if (flags & M_NULLOK)
			return NULL;
		sk_panic("kmalloc", "%s: size %zu too large", type->ks_shortdesc,
		    size);
	}
	if (align <= ps && !sk_opt.debug && !sk_opt.track &&
	    (p = lcache_get(sh, &npages)) != NULL) {
		bytes = npages << sk_slab.page_shift;
		if (flags & M_ZERO)
			memset(p, 0, bytes);
		if (sk_pagemap_set((uintptr_t)p, (int32_t)npages) != 0) {
			sk_os_unmap(p, bytes);
			return NULL;
		}
		stats_alloc(type, sh, bytes);
		return p;
	}
	if (SK_UNLIKELY(sk_opt.hardened))
		guards = sk_harden_large_extra(align);
	p = slab_backend(sh, bytes + guards, align > ps ? align : ps, flags,
	    NULL);
	if (p == NULL)
		return NULL;
	if (SK_UNLIKELY(sk_opt.hardened || sk_opt.track))
		p = sk_harden_large_setup(p, bytes, align, guards);
	if (sk_pagemap_set((uintptr_t)p, (int32_t)npages) != 0) {
		sk_harden_large_unmap(p, bytes);
		return NULL;
	}
	stats_alloc(type, sh, bytes);
	{
		struct kmalloc_type_stats st;

		sk_type_sum(type, &st); /* high-water mark */
	}
	/* Fresh pages are zero: M_ZERO needs no bzero (spec 1.4 step 6). */
	if (SK_UNLIKELY(sk_opt.pattern) && !(flags & M_ZERO))
		memset(p, 0xff, bytes);
	return p;
}

/*
 * The malloc drop-in defines sk_malloc_dropin; the plain library leaves
 * this weak reference NULL.  SLABKIT_OPTIONS=colour=0|1 overrides.
 */
static inline bool
sk_colouring(void)
{
	if (sk_opt.colour >= 0)
		return sk_opt.colour != 0;
	return &sk_malloc_dropin == NULL;
}

/* Set up a zone for class zi at z (fresh or reused), spec 1.4 step 8. */
static void
zone_setup(struct sk_shard *sh, struct sk_slzone *z, int zi, bool fresh)
{
	size_t size = sk_class_size[zi];
	size_t align = sk_class_align[zi];
	bool granule = !sk_opt.hardened && !sk_opt.track;
	size_t words = granule ? SK_ZBITMAP_BYTES / 4
			       : (sk_slab.zone_size / size + 31) / 32;
	size_t hdr = sizeof(*z) + 2 * words * sizeof(uint32_t);
	size_t off;

	if ((size & (size - 1)) == 0)
		align = size; /* power-of-two chunks are size-aligned */
	if (align < 16)
		align = 16; /* malloc(3)'s 16 bytes for every multiple of 16 */
	off = (hdr + align - 1) & ~(align - 1);
	memset(z, 0, sizeof(*z));
	z->z_abits = (uint32_t *)(z + 1);
	z->z_rbits = z->z_abits + words;
	if (!fresh)
		memset(z->z_abits, 0, 2 * words * sizeof(uint32_t));
	z->z_magic = SK_SLAB_MAGIC;
	z->z_zoneindex = (uint16_t)zi;
	z->z_flags = (uint16_t)((fresh ? 0 : SLZF_UNOTZEROD) |
	    (granule ? ZF_GRANULE : 0));
	z->z_owner = sh;
	z->z_baseptr = (char *)z + off;
	z->z_chunksize = (uint32_t)size;
	z->z_chunkmul = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
	z->z_nmax = (int32_t)((sk_slab.zone_size - off) / size);
	z->z_nused = 0;
	z->z_bitwords = (uint32_t)words;
	z->z_inarena = (uintptr_t)z - sk_zarena_base < sk_zarena_used;
	if (granule) {
		z->z_key = (uintptr_t)(sk_os_random() | 1);
		z->z_lchunks = (struct sk_chunk *)z;
		if (!(sh->slow & SK_SHARD_SLOW_ALWAYS))
			z->z_fastowner = sh;
	} else {
		z->z_lchunks = NULL;
	}
	/* colouring, spec 1.4 step 8 (off in the malloc drop-in by default:
	 * there every thread has its own zones, and a first chunk far from
	 * the header costs each of them a page) */
	z->z_uindex = z->z_uendindex = sk_colouring()
	    ? (int32_t)(sh->junkindex % (size_t)z->z_nmax)
	    : 0;
	sh->junkindex = (sh->junkindex + SK_SLAB_SLIDE) &
	    (SK_MAX_ZONE_SIZE - 1);
	if (SK_UNLIKELY(!granule))
		sk_harden_zone_setup(z, fresh);
}

/*
 * Exhausted zones (off ZoneAry) that received remote frees without a
 * doorbell: the freer read RSignal just before the owner set it.  Looked
 * at whenever a class runs dry and in slab_cleanup, so such chunks are
 * never stranded.
 */
static void
zone_scan_exhausted(struct sk_shard *sh, bool all)
{
	struct sk_slzone *z, *next;

	for (z = sh->exhausted.head; z != NULL; z = next) {
		next = z->z_next;
		if (!all && !zone_remote_waiting(z))
			continue;
		zone_drain_remote(z);
		if (zone_nfree(z) > 0) {
			__atomic_store_n(&z->z_rsignal, 0, __ATOMIC_RELAXED);
			zone_relist(sh, z);
			check_zone_free(sh, z);
		}
	}
}

/* ZoneAry[zi] is empty: doorbell, reuse a free zone, or map a new one. */
static struct sk_slzone *
zone_new(struct sk_shard *sh, int zi, int flags)
{
	struct sk_slzone *z;
	bool fresh = false;

	zone_drain_pending(sh);
	zone_scan_exhausted(sh, false);
	if (sh->zoneary[zi].tail != NULL)
		return sh->zoneary[zi].tail;
	if ((z = sh->freezones.head) != NULL) {
		zl_remove(&sh->freezones, z);
		sh->nfreezones--;
		if (SK_UNLIKELY(z->z_hflags != 0))
			sk_harden_zone_retire(z);
	} else {
		z = slab_backend(sh, sk_slab.zone_size, sk_slab.zone_size,
		    flags | M_ZERO, &fresh);
		if (z == NULL)
			return NULL;
		sh->zones_mapped++;
	}
	zone_setup(sh, z, zi, fresh);
	if (sk_pagemap_set((uintptr_t)z, -(int32_t)sh->id - 1) != 0) {
		if (SK_UNLIKELY(z->z_hflags != 0))
			sk_harden_zone_retire(z);
		zone_unmap(z);
		return NULL;
	}
	zary_insert(sh, z);
	return z;
}

/* The next never-used chunk of z (the caller knows one is left). */
static inline struct sk_chunk *
zone_carve(struct sk_shard *sh, struct sk_slzone *z, int *flags)
{
	struct sk_chunk *c = (struct sk_chunk *)(z->z_baseptr +
	    (size_t)z->z_uindex * z->z_chunksize);

	if (SK_UNLIKELY(z->z_hflags & SK_ZF_HARDENED))
		z->z_uindex = sk_harden_carve_next(z);
	else if (++z->z_uindex == z->z_nmax)
		z->z_uindex = 0;
	if (SK_UNLIKELY(++z->z_carved != z->z_nmax &&
		z->z_uindex == z->z_uendindex))
		sk_panic("kmalloc", "slaballoc: corrupted zone %p", (void *)z);
	if (flags != NULL && !(z->z_flags & SLZF_UNOTZEROD)) {
		*flags &= ~M_ZERO; /* passive zero */
		*flags |= M_PASSIVE_ZERO;
		sh->passive_zero++;
	}
	return c;
}

static inline bool
zone_carvable(struct sk_slzone *z)
{
	return z->z_carved < z->z_nmax;
}

/*
 * Take one chunk from a listed zone (spec 1.4 step 7): the local list
 * (LIFO, cache-hot), else remote frees (deviation: harvested as soon as
 * the local list is empty, so a zone fed by other threads reuses their
 * chunks before it touches never-used ones), else a never-used chunk
 * (an ordinary zone carves a few more onto its list for the fast path,
 * unless the caller wants zeroed memory, which a carved chunk is).
 * NULL when the zone turned out exhausted and left its list.
 */
static struct sk_chunk *
zone_take_chunk(struct sk_shard *sh, struct sk_slzone *z, int *flags)
{
	struct sk_chunk *c;
	size_t b;

	if (zone_list_empty(z) && zone_remote_waiting(z))
		zone_drain_remote(z);
	if (!zone_list_empty(z)) {
		c = zone_pop(z);
	} else if (zone_carvable(z)) {
		c = zone_carve(sh, z, flags);
		if ((z->z_flags & ZF_GRANULE) && !(*flags & M_PASSIVE_ZERO)) {
			for (int i = 0; i < 15 && zone_carvable(z); i++)
				zone_push(z, zone_carve(sh, z, NULL));
		}
	} else {
		if (zone_exhausted(sh, z))
			return NULL;
		c = zone_pop(z);
	}
	b = zone_bit(z, c);
	if (SK_UNLIKELY(bit_get(z->z_abits, b))) {
		if (sk_opt.invariants)
			sk_panic("kmalloc", "memory chunk %p is already "
					    "allocated!", (void *)c);
		sk_zone_chunk_in_use(z, c);
	}
	if (SK_UNLIKELY(sk_opt.debug) && zone_chunk_index(z, c) < 0)
		sk_panic("kmalloc", "free list of zone %p corrupted (ptr %p)",
		    (void *)z, (void *)c);
	bit_put(z->z_abits, b, true);
	z->z_nused++;
	if (SK_UNLIKELY(z->z_hflags != 0))
		sk_harden_chunk_taken(z, c, *flags);
	return c;
}

/* spec 1.4 step 10 */
static inline void *
chunk_finish(struct sk_chunk *c, size_t size, int flags)
{
	if (flags & M_ZERO) {
		memset(c, 0, size);
	} else if (SK_UNLIKELY(sk_opt.invariants) &&
		   !(flags & M_PASSIVE_ZERO)) {
		if (sk_opt.pattern)
			memset(c, 0xff, size);
		c->c_next = (struct sk_chunk *)-1;
	}
	return c;
}

void *
sk_kmalloc(size_t size, struct malloc_type *type, int flags)
{
	return sk_kmalloc_inline(size, type, flags);
}

/* kmalloc(M_ZERO) on the fast path: the same, then the bzero. */
__attribute__((noinline)) void *
sk_kmalloc_zeroed(struct sk_slzone *z, struct sk_chunk *c,
    struct kmalloc_use *u, size_t chunk)
{
	return memset(sk_zone_take_fast(z, c, u, chunk), 0, chunk);
}

static void
shard_update_slow(struct sk_shard *sh)
{
	uint8_t slow = sh->slow & SK_SHARD_SLOW_ALWAYS;

	if (sh->nfreezones > SK_LOAD(&sk_slab.zone_rels_thresh) ||
	    sh->freeovzones != NULL)
		slow |= SK_SHARD_SLOW_RELEASE;
	if (slow & SK_SHARD_SLOW_RELEASE)
		shard_set_release(sh);
	sh->slow = slow;
}

void *
sk_kmalloc_slow(size_t size, struct malloc_type *type, int flags)
{
	struct sk_shard *sh;
	struct sk_slzone *z;
	struct sk_chunk *c;
	size_t align, chunk;
	int zi;

	sk_init();
	type_check_magic(type, "kmalloc");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type); /* classic lazy initialisation */
	if (sk_opt.invariants && (flags & (M_RNOWAIT | M_WAITOK)) == 0)
		sk_panic("kmalloc", "bad flags %x", (unsigned)flags);
	sh = sk_shard_get();
	stats_calls(type, sh); /* spec 1.4 step 1: before any failure */
	size = apply_round_flags(size, &flags);
	if (!limit_check(type, flags))
		return NULL;
	if (size == 0)
		return ZERO_LENGTH_PTR;
	if (!(flags & M_RNOWAIT) && (sh->slow & SK_SHARD_SLOW_RELEASE)) {
		release_free_zones(sh, SK_LOAD(&sk_slab.zone_rels_thresh));
		shard_update_slow(sh);
	}
	if (sh->empty) {
		/* no shard could be made: out of memory */
		if (flags & (M_NULLOK | M_RNOWAIT))
			return NULL;
		sk_panic("kmalloc", "cannot create a shard");
	}
	if (size >= sk_slab.zone_limit ||
	    ((size & (sk_slab.page_size - 1)) == 0 &&
		size > 2 * sk_slab.page_size))
		return kmalloc_large(sh, size, 0, type, flags);
	chunk = size;
	zi = sk_zoneindex(&chunk, &align);
	if (zi < 0)
		sk_panic("kmalloc", "Unexpected byte count %zu", size);
	if (SK_UNLIKELY(sk_opt.hardened) &&
	    (zi = sk_harden_class(zi, size, &chunk, &align)) < 0)
		return kmalloc_large(sh, size, align, type, flags);
	do {
		z = sh->zoneary[zi].tail;
		if (z == NULL && (z = zone_new(sh, zi, flags)) == NULL)
			return NULL;
	} while ((c = zone_take_chunk(sh, z, &flags)) == NULL);
	direct_update(sh, zi);
	stats_alloc(type, sh, chunk);
	chunk_finish(c, chunk, flags);
	if (SK_UNLIKELY(z->z_hflags != 0))
		sk_harden_chunk_done(z, c);
	return c;
}

void *
kmalloc(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc(size, type, flags);
}

void *
kmalloc_cachealign(unsigned long size, struct malloc_type *type, int flags)
{
	return sk_kmalloc(size, type, flags | M_CACHEALIGN);
}

void *
sk_kmalloc_aligned(size_t size, size_t align, struct malloc_type *type,
    int flags)
{
	struct sk_shard *sh;
	size_t s, a;

	sk_init();
	if (align <= 16)
		return sk_kmalloc(size < 16 ? 16 : (size + 15) & ~(size_t)15,
		    type, flags);
	s = size > align ? size : align;
	if (s < sk_slab.zone_limit) {
		size_t t = s;

		a = 0;
		if (sk_zoneindex(&t, &a) >= 0 && ((t & (t - 1)) == 0 || a >= align))
			return sk_kmalloc(t, type, flags);
		if (round_pow2(s) < sk_slab.zone_limit)
			return sk_kmalloc(s, type, flags | M_POWEROF2);
	}
	/* Large: whole pages at the asked alignment. */
	sk_init();
	type_check_magic(type, "kmalloc");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type);
	sh = sk_shard_get();
	stats_calls(type, sh);
	if (!limit_check(type, flags))
		return NULL;
	if (sh->empty)
		return NULL;
	return kmalloc_large(sh, size, align, type, flags);
}

/* ------------------------------------------------------------------ */
/* kfree */

static void
kfree_large(struct sk_shard *sh, void *ptr, int32_t npages,
    struct malloc_type *type)
{
	size_t bytes = (size_t)npages << sk_slab.page_shift;

	sk_pagemap_set((uintptr_t)ptr, 0);
	stats_free(type, sh, bytes);
	if (SK_UNLIKELY(sk_opt.weird)) {
		uint32_t *w = ptr;

		for (int i = 0; i < 16; i++)
			w[i] = 0xdeadc0de;
	}
	if (SK_UNLIKELY(SK_LOAD(&sk_harden_nlarge) != 0) &&
	    sk_harden_large_free(sh, ptr, bytes))
		return; /* a guarded block, unmapped with its guards */
	if (SK_UNLIKELY(sk_tls_intr > 0) && !sh->empty) {
		/* spec 1.6 step 2: no unmapping in interrupt context */
		struct sk_slzone *z = ptr;

		z->z_magic = SK_OVSZ_MAGIC;
		z->z_nmax = npages;
		z->z_next = sh->freeovzones;
		sh->freeovzones = z;
		shard_set_release(sh);
		return;
	}
	if (!sk_opt.debug && !sk_opt.track && lcache_put(sh, ptr, npages))
		return;
	sk_os_unmap(ptr, bytes);
}

/* Ring the owner's doorbell for z (spec 1.6 step 4, passive IPI): our
 * RCount reference goes with the zone and is dropped by the owner. */
static void
zone_ring(struct sk_slzone *z)
{
	struct sk_shard *owner = SK_LOAD(&z->z_owner);
	struct sk_slzone *old = SK_LOAD(&owner->pend);

	do {
		SK_STORE(&z->z_pend_next, old);
	} while (!__atomic_compare_exchange_n(&owner->pend, &old, z, true,
	    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/*
 * Free a chunk of a zone owned by another shard (spec 1.6 step 4).
 * While our chunk is still handed out the zone cannot be released, so
 * reading RSignal and writing the hint first are safe.  Only when RSignal
 * is set (the zone ran dry and left its list) do we touch the zone after
 * marking the chunk, under an RCount reference.  An ordinary zone's
 * remote free is one atomic operation: the OR of the chunk's bit into
 * rbits, whose old value also catches a second remote free; the owner
 * finds the chunk by scanning rbits.  Hardened and tracked zones keep an
 * atomic list (one CAS more).
 */
static void
kfree_remote(struct sk_slzone *z, struct sk_chunk *c, size_t b,
    const char *api)
{
	uint32_t bit = 1u << (b & 31);
	bool granule = (z->z_flags & ZF_GRANULE) != 0;
	int rsignal;

	if (granule)
		SK_STORE(&z->z_rhint, 1);
	rsignal = __atomic_load_n(&z->z_rsignal, __ATOMIC_SEQ_CST);
	if (rsignal)
		__atomic_fetch_add(&z->z_rcount, 1, __ATOMIC_ACQ_REL);
	if (!(SK_LOAD(&z->z_abits[b >> 5]) & bit) ||
	    (__atomic_fetch_or(&z->z_rbits[b >> 5], bit, __ATOMIC_SEQ_CST) &
		bit)) {
		if (rsignal)
			__atomic_fetch_sub(&z->z_rcount, 1, __ATOMIC_RELEASE);
		sk_panic(api, "memory chunk %p is already free! (double free, "
			      "ptr %p)", (void *)c, (void *)c);
	}
	if (!granule) {
		struct sk_chunk *head = SK_LOAD(&z->z_rchunks);

		do {
			sk_link_set(z, &c->c_next, head);
		} while (!__atomic_compare_exchange_n(&z->z_rchunks, &head, c,
		    true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	}
	if (!rsignal)
		return; /* the zone is not ours to touch any more */
	if (__atomic_exchange_n(&z->z_rsignal, 0, __ATOMIC_ACQ_REL) != 0 &&
	    __atomic_exchange_n(&z->z_pending, 1, __ATOMIC_ACQ_REL) == 0) {
		zone_ring(z);
		return;
	}
	__atomic_fetch_sub(&z->z_rcount, 1, __ATOMIC_RELEASE);
}

static void
kfree_bad(const void *ptr, const char *api)
{
	sk_panic(api, "pointer was not allocated by slabkit (ptr %p)", ptr);
}

/* Everything the inline kfree does not do, with every check spelled out. */
void
sk_kfree_slow(void *ptr, struct malloc_type *type, const char *api)
{
	struct sk_shard *sh = sk_tls_shard;
	struct sk_slzone *z;
	struct sk_chunk *c = ptr;
	uintptr_t p = (uintptr_t)ptr;
	int32_t tag;
	long idx;
	size_t b;
	bool wasfull;

	if (ptr == NULL)
		sk_panic(api, "trying to free NULL pointer");
	if (ptr == ZERO_LENGTH_PTR)
		return;
	if (type == NULL || type->ks_magic != M_MAGIC)
		sk_panic(api, "malloc type lacks magic (type %p, ptr %p)",
		    (void *)type, ptr);
	sk_init();
	if (sh->empty)
		sh = sk_shard_get(); /* a freeing-only thread gets a slot too */
	z = (struct sk_slzone *)(p & sk_slab.zone_mask);
	tag = sk_pagemap_get((uintptr_t)z);
	if (tag >= 0) {
		/* not a zone: a large block starts on a tagged page */
		tag = sk_pagemap_get(p);
		if (tag > 0 && (p & (sk_slab.page_size - 1)) == 0) {
			kfree_large(sh, ptr, tag, type);
			return;
		}
		kfree_bad(ptr, api);
	}
	if (z->z_magic != SK_SLAB_MAGIC)
		sk_panic(api, "zone %p lacks magic (ptr %p)", (void *)z, ptr);
	idx = zone_chunk_index(z, ptr);
	if (idx < 0)
		sk_panic(api, "pointer %p is not the start of a chunk "
			      "(interior or misaligned pointer, ptr %p)",
		    ptr, ptr);
	if (SK_UNLIKELY(z->z_hflags != 0)) {
		/* harden.c: checks, quarantine, checker; the user's type is
		 * charged now, the chunk freed below may be an older one */
		stats_free(type, sh, z->z_chunksize);
		type = sk_harden_sink;
		if ((c = sk_harden_chunk_free(sh, z, c, idx, api)) == NULL)
			return;
		ptr = c;
		z = (struct sk_slzone *)((uintptr_t)c & sk_slab.zone_mask);
	}
	b = zone_bit(z, c);
	if (SK_LOAD(&z->z_owner) != sh) {
		stats_free(type, sh, z->z_chunksize);
		if (SK_UNLIKELY(sk_opt.weird) && z->z_hflags == 0)
			memset((char *)c + sizeof(void *), 0xde,
			    (z->z_chunksize < 64 ? z->z_chunksize : 64) -
				sizeof(void *));
		kfree_remote(z, c, b, api);
		return;
	}
	/* Local free (spec 1.6 step 5). */
	if (!bit_get(z->z_abits, b) || bit_get(z->z_rbits, b))
		sk_panic(api, "memory chunk %p is already free! (double free, "
			      "ptr %p)", ptr, ptr);
	bit_put(z->z_abits, b, false);
	if (SK_UNLIKELY(sk_opt.weird) && z->z_hflags == 0) {
		uint32_t *wp = ptr;
		size_t n = z->z_chunksize < 64 ? z->z_chunksize : 64;

		for (size_t i = 0; i < n / 4; i++)
			wp[i] = 0xdeadc0de;
	}
	wasfull = zone_nfree(z) == 0;
	zone_push(z, c);
	z->z_nused--;
	if (wasfull)
		zone_relist(sh, z);
	stats_free(type, sh, z->z_chunksize);
	if (z->z_nused == 0)
		check_zone_free(sh, z);
}

/*
 * The inline kfree found a zone of the arena that is not its own (or a
 * debug option on): a remote free of an ordinary zone by a shard with its
 * own slot is done here; the rest goes to the slow path.
 */
void
sk_kfree_notlocal(void *ptr, struct malloc_type *type, const char *api)
{
	struct sk_shard *sh = sk_tls_shard;
	uintptr_t p = (uintptr_t)ptr;
	struct sk_slzone *z = (struct sk_slzone *)(p & sk_slab.zone_mask);
	struct kmalloc_use *u;

	if (SK_LOAD(&sh->fastkey) == sh && z->z_magic == SK_SLAB_MAGIC &&
	    (z->z_flags & ZF_GRANULE) && SK_LOAD(&z->z_owner) != sh &&
	    zone_chunk_index(z, ptr) >= 0) {
		u = (struct kmalloc_use *)((char *)type->ks_use + sh->uoff);
		sk_slot_sub(&u->inuse, 1);
		sk_slot_sub(&u->memuse, z->z_chunksize);
		kfree_remote(z, ptr, (p - (uintptr_t)z) >> 3, api);
		return;
	}
	sk_kfree_slow(ptr, type, api);
}

void
sk_kfree_emptied(struct sk_shard *sh, struct sk_slzone *z)
{
	check_zone_free(sh, z);
}

void
sk_kfree_api(void *ptr, struct malloc_type *type, const char *api)
{
	if (SK_UNLIKELY(type->ks_magic != M_MAGIC ||
		SK_LOAD(&type->ks_limit) == 0)) {
		sk_kfree_slow(ptr, type, api);
		return;
	}
	sk_kfree_inline(ptr, type, type->ks_use, api, sk_kfree_slow, false);
}

void
sk_kfree(void *ptr, struct malloc_type *type)
{
	sk_kfree_api(ptr, type, "kfree");
}

void
kfree(void *ptr, struct malloc_type *type)
{
	sk_kfree_api(ptr, type, "kfree");
}

/* ------------------------------------------------------------------ */
/* Sizes, krealloc, strings */

/* Size of a live block; panics on pointers that are not live blocks. */
static size_t
block_size(const void *ptr, const char *api, bool *large)
{
	uintptr_t p = (uintptr_t)ptr;
	struct sk_slzone *z = (struct sk_slzone *)(p & sk_slab.zone_mask);
	int32_t tag = sk_pagemap_get((uintptr_t)z);
	long idx;

	*large = false;
	if (tag >= 0) {
		tag = sk_pagemap_get(p);
		if (tag > 0 && (p & (sk_slab.page_size - 1)) == 0) {
			*large = true;
			return (size_t)tag << sk_slab.page_shift;
		}
		kfree_bad(ptr, api);
	}
	if (z->z_magic != SK_SLAB_MAGIC)
		sk_panic(api, "zone %p lacks magic (ptr %p)", (void *)z, ptr);
	idx = zone_chunk_index(z, ptr);
	if (idx < 0)
		sk_panic(api, "pointer %p is not the start of a chunk "
			      "(interior or misaligned pointer, ptr %p)",
		    ptr, ptr);
	if (!zone_chunk_live(z, ptr))
		sk_panic(api, "memory chunk %p is free (use after free, ptr %p)",
		    ptr, ptr);
	if (SK_UNLIKELY(z->z_hflags != 0))
		return sk_harden_block_size(z, ptr, api);
	return z->z_chunksize;
}

size_t
sk_kmalloc_usable_size_api(const void *ptr, const char *api)
{
	bool large;

	if (ptr == NULL || ptr == ZERO_LENGTH_PTR)
		return 0;
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
	return tag > 0 && (p & (sk_slab.page_size - 1)) == 0 ? 2 : 0;
}

/*
 * Large to large: let the kernel move the pages (mremap) instead of
 * copying them.  The result is what the spec's allocate-copy-free gives,
 * without the copy; NULL means "use the ordinary path".
 */
static void *
krealloc_large(void *ptr, size_t osize, size_t size,
    struct malloc_type *type, int flags)
{
	size_t ps = sk_slab.page_size;
	size_t bytes = (size + ps - 1) & ~(ps - 1);
	struct sk_shard *sh;
	void *n;
	int why;

	if (bytes < size || size < sk_slab.zone_limit ||
	    (bytes >> sk_slab.page_shift) > INT32_MAX || sk_opt.debug)
		return NULL;
	sh = sk_shard_get();
	if (sh->empty)
		return NULL;
	stats_calls(type, sh);
	if (bytes > osize && !limit_check(type, flags | M_NULLOK))
		return NULL;
	/*
	 * Clear the old tag first: once mremap has moved the pages, another
	 * thread may map a new block at the old address at once, and a late
	 * clear would wipe that block's tag.
	 */
	sk_pagemap_set((uintptr_t)ptr, 0);
	n = sk_os_remap(ptr, osize, bytes, &why);
	if (n == NULL) {
		sk_pagemap_set((uintptr_t)ptr,
		    (int32_t)(osize >> sk_slab.page_shift));
		return NULL;
	}
	if (sk_pagemap_set((uintptr_t)n,
		(int32_t)(bytes >> sk_slab.page_shift)) != 0)
		sk_panic("krealloc", "cannot map the page-tag table (ptr %p)",
		    n); /* the old block is gone: never return it */
	stats_free(type, sh, osize);
	stats_alloc(type, sh, bytes);
	return n;
}

void *
sk_krealloc_api(void *ptr, size_t size, struct malloc_type *type, int flags,
    const char *api)
{
	size_t osize, align, nsize;
	bool large;
	void *n;

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
		struct sk_slzone *z = (struct sk_slzone *)(p & sk_slab.zone_mask);

		if (sk_pagemap_get((uintptr_t)z) < 0 &&
		    z->z_magic == SK_SLAB_MAGIC) {
			off = p - (uintptr_t)z->z_baseptr;
			idx = (uintptr_t)(((uint64_t)off * z->z_chunkmul) >> 32);
			if (idx < (uintptr_t)z->z_nmax &&
			    idx * z->z_chunksize == off &&
			    zone_chunk_live(z, ptr)) {
				int zi = size <= SK_SMALL_TABLE_MAX
				    ? sk_small_class[(size + 7) >> 3]
				    : sk_zoneindex_ladder(&(size_t){size},
					  &(size_t){0});

				osize = z->z_chunksize;
				if (zi == z->z_zoneindex)
					return ptr; /* same chunk size */
				n = sk_kmalloc(size, type, flags);
				if (n == NULL)
					return NULL;
				memcpy(n, ptr, size < osize ? size : osize);
				sk_kfree_api(ptr, type, api);
				return n;
			}
		}
	}
	sk_init();
	type_check_magic(type, api);
	osize = block_size(ptr, api, &large);
	if (large) {
		size_t ps = sk_slab.page_size;

		if (((size + ps - 1) & ~(ps - 1)) == osize && size + ps > size)
			return ptr;
		if ((n = krealloc_large(ptr, osize, size, type, flags)) != NULL)
			return n;
	} else if (size < sk_slab.zone_limit &&
		   !((size & (sk_slab.page_size - 1)) == 0 &&
		       size > 2 * sk_slab.page_size)) {
		nsize = size;
		if (sk_zoneindex(&nsize, &align) >= 0 && nsize == osize)
			return ptr;
	}
	n = sk_kmalloc(size, type, flags);
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
static void
record_site(void *p, const char *file, int line)
{
#ifdef SLABKIT_SLAB_DEBUG
	uintptr_t a = (uintptr_t)p;
	struct sk_slzone *z = (struct sk_slzone *)(a & sk_slab.zone_mask);

	if (p == NULL || p == ZERO_LENGTH_PTR ||
	    sk_pagemap_get((uintptr_t)z) >= 0 || z->z_owner != sk_tls_shard)
		return;
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
#else
	(void)p;
	(void)file;
	(void)line;
#endif
}

int
slabkit_kmalloc_sites(const void *ptr, struct slabkit_alloc_site *sites,
    int nmax)
{
#ifdef SLABKIT_SLAB_DEBUG
	uintptr_t a = (uintptr_t)ptr;
	struct sk_slzone *z = (struct sk_slzone *)(a & sk_slab.zone_mask);
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
kstrdup_debug(const char *s, struct malloc_type *type, const char *file,
    int line)
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

/* ------------------------------------------------------------------ */
/* Housekeeping */

uint64_t
sk_kmalloc_passive_zero_count(void)
{
	return sk_tls_shard->passive_zero;
}

/* spec 1.6 step 8, for one shard whose lists the caller may touch. */
void
sk_kmalloc_shard_cleanup(struct sk_shard *sh)
{
	zone_drain_pending(sh);
	zone_scan_exhausted(sh, true);
	for (int zi = 0; zi < SK_NZONES; zi++) {
		struct sk_slzone *z, *next;

		for (z = sh->zoneary[zi].head; z != NULL; z = next) {
			next = z->z_next;
			zone_drain_remote(z); /* all of it: no hint trusted */
			check_zone_free(sh, z);
		}
	}
}

/*
 * Thread exit: the shard will be adopted whole by the next thread, so it
 * keeps what the hysteresis would keep (free zones up to ZoneRelsThresh,
 * the large-block cache); the rest goes back to the system.
 */
void
sk_kmalloc_shard_exit(struct sk_shard *sh)
{
	sk_kmalloc_shard_cleanup(sh);
	release_free_zones(sh, SK_LOAD(&sk_slab.zone_rels_thresh));
	shard_update_slow(sh);
}

static void
cleanup_orphan(struct sk_shard *sh, void *arg)
{
	(void)arg;
	sk_kmalloc_shard_cleanup(sh);
	release_free_zones(sh, 0);
	lcache_trim(sh, 0);
	shard_update_slow(sh);
}

void
slab_cleanup(void)
{
	struct sk_shard *sh;

	sk_init();
	sh = sk_tls_shard;
	if (!sh->empty) {
		sk_kmalloc_shard_cleanup(sh);
		lcache_trim(sh, 0);
	}
	sk_shard_foreach_orphan(cleanup_orphan, NULL);
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

