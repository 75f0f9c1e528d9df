/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc zones: where chunks come from, and where freed ones go back.
 *
 * Model.  Memory comes in zones of ZoneSize bytes (128 KiB on any machine
 * with more than 128 MB), each aligned to its size so that the header of
 * any chunk is found by masking the chunk's address (ptr & ZoneMask) and
 * adding the zone's colour, a multiple of 64 bytes below 2 KiB taken from
 * the zone's address bits (sk_zone_at, internal.h): headers at the very
 * start of aligned zones would all share one cache set.  A
 * zone serves one of the 72 chunk sizes of sizeclass.h and belongs to one
 * shard (the kernel's CPU: a thread here, see shard.c).  Per shard and
 * size class, ZoneAry[zi] lists the zones that have free chunks; kmalloc
 * takes the zone at the tail, and before that zone carves never-used
 * chunks it makes a listed zone with freed ones the tail instead
 * (zone_prefer_freed).
 *
 * Direct tables.  For sizes up to 1024 the shard's direct8[] (indexed by
 * size / 8) and direct16[] (size / 16, the malloc drop-in's) point at the
 * zone the slow path would use, the tail of the class's list, or at
 * sk_zone_sentinel, whose free list is always empty, whenever the fast
 * path must not serve the class: no zone, a zone the shard may not serve
 * from its fast path, a debug option, free zones waiting for release.
 * direct_update() keeps them so at every change of a list, so the fast
 * path of kmalloc_fast.h has one "list empty" test for all of these.
 *
 * Ordinary zones (ZF_GRANULE: every zone unless hardened or track is on)
 * keep a LIFO free list whose links are stored XORed with the zone's
 * random key.  A link is decoded and checked on every pop: it must lead
 * into the same zone, or be the zone itself, which ends the list; a list
 * written after free stops kmalloc with "free list ... corrupted" instead
 * of handing out a forged pointer.  Two granule bitmaps follow the header,
 * one bit per 8 bytes, interleaved 64 bits at a time so that a chunk's
 * two bits share a cache line: abits marks the first granule of
 * every chunk handed out (written by the owner only, with plain stores)
 * and rbits the chunks another shard freed that the owner has not drained
 * yet.  Interior pointers, double frees and a list that leads to a chunk
 * in use are each one bit test.  Hardened and tracked zones use one bit
 * per chunk, links read through sk_link_get/set (track.h) and an atomic
 * remote list, and harden.c for the rest.
 *
 * Remote frees (spec 1.6 step 4).  kfree on another shard is, for an
 * ordinary zone, one atomic OR of the chunk's bit into rbits (its old
 * value catches a second remote free) after a plain store to the zone's
 * hint z_rhint.  The owner drains a zone when its local list runs dry,
 * when a doorbell rings and in slab_cleanup(): one exchange per non-zero
 * word of rbits, none per chunk; the chunks go on the local list and their
 * abits are cleared.  A zone with nothing free for its owner sets RSignal
 * and leaves ZoneAry for the exhausted list; a remote freer that reads
 * RSignal takes an RCount reference and rings the owner's doorbell (the
 * kernel's passive IPI, with the same RSignal/RCount protocol), and
 * zone_scan_exhausted() finds the freer that read it just before it was
 * set.
 *
 * Release (spec 1.6 steps 6-7).  A wholly free zone leaves its list for
 * the shard's FreeZones (unless it is the last zone listed for its class),
 * and zones beyond ZoneRelsThresh are released by the next kmalloc that
 * may block: until then every size of the shard takes the slow path.
 *
 * The zone arena.  Ordinary zones are carved from one reservation that
 * grows upwards; a pointer is in a zone of the arena when
 * p - sk_zarena_base < sk_zarena_used, the one range test kfree's fast
 * path makes before it reads a zone header.  A released arena zone is
 * decommitted and kept for reuse, never unmapped, so that test never
 * leads to unmapped memory.  Hardened and tracked zones, and zones the
 * arena has no room for, are mapped one by one and freed by the slow path.
 *
 * Page tags (pagemap.c) replace the kernel's ku_pagecnt: > 0 on the first
 * page of a large block, -(shard + 1) on the first page of a zone.  The
 * slow free path looks a pointer up there before touching anything, so a
 * pointer slabkit never returned is reported, never followed.
 *
 * Promises: no lock and no atomic read-modify-write on the owner's fast
 * paths; a chunk is handed out only when its abits bit was clear; a chunk
 * freed twice, locally, remotely or both, is caught whatever the program
 * wrote into it; no remote free is stranded.  SLABKIT_OPTIONS=invariants
 * adds the kernel's allocation-side check ("already allocated"); pattern
 * and weird add the fill patterns of spec 1.8.
 *
 * Deviations from the kernel (README "Deviations"): shards are threads;
 * remote frees set bits and ring a doorbell list instead of an IPI, and
 * are harvested as soon as a zone's local list is empty; the zone arena
 * and the sentinel zone; M_WAITOK retries a failed mmap with back-off and
 * a reclaim pass for at most waitok_timeout milliseconds, then panics; the
 * double-free bitmaps are always present.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "kmalloc_impl.h"
#include "os/pageheap.h"

static int (*reclaim_hooks[8])(void);
static atomic_int reclaim_nhooks;

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
zl_insert_tail(struct sk_zonelist *l, struct sk_slzone *z)
{
	z->z_next = NULL;
	z->z_prev = l->tail;
	if (l->tail != NULL)
		l->tail->z_next = z;
	else
		l->head = z;
	l->tail = z;
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

/* ------------------------------------------------------------------ */
/* Direct tables and the sentinel zone */

struct sk_slzone sk_zone_sentinel = {
    .z_lchunks = (struct sk_chunk *)&sk_zone_sentinel,
};

/*
 * The full fence between a direct-table store and the look at the debug
 * option (direct_update, sk_kmalloc_debug_changed).  GCC rejects fences
 * under -fsanitize=thread, which does not model them: there both sides do
 * a sequentially consistent read-modify-write of one word instead.
 */
#ifdef SLABKIT_TSAN
static int direct_fence_word;
#define DIRECT_FENCE()                                                         \
	((void)__atomic_fetch_add(&direct_fence_word, 0, __ATOMIC_SEQ_CST))
#else
#define DIRECT_FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

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
	/* nothing to do when the class's entries hold z already (they are
	 * written together; a z stored earlier was fenced then, and a debug
	 * switch since has its own sentinel stores to make): most calls,
	 * one per slow-path allocation (xmalloc: 53 instructions each) */
	if ((d8_n[zi] == 0 || SK_LOAD(&sh->direct8[d8_lo[zi]]) == z) &&
	    (d16_n[zi] == 0 || SK_LOAD(&sh->direct16[d16_lo[zi]]) == z))
		return;
	direct_fill(sh, zi, z);
	if (z != &sk_zone_sentinel) {
		DIRECT_FENCE();
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
void
sk_km_set_release(struct sk_shard *sh)
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
	DIRECT_FENCE();
	sk_shard_foreach(
	    shard_fast_off, SK_LOAD(&sk_opt.debug) ? NULL : (void *)1);
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

/* ------------------------------------------------------------------ */
/* Zone lists of a shard */

/*
 * Change the owner's bits of z_flags.  Other threads read z_flags (for
 * ZF_GRANULE, fixed while the zone lives) while the owner changes the
 * list bits beside it, so both sides access the word atomically.
 */
static inline void
zone_flags_set(struct sk_slzone *z, uint16_t set, uint16_t clear)
{
	SK_STORE(&z->z_flags, (uint16_t)((z->z_flags & ~clear) | set));
}

static inline void
zary_insert(struct sk_shard *sh, struct sk_slzone *z)
{
	zl_insert_head(&sh->zoneary[z->z_zoneindex], z);
	zone_flags_set(z, ZF_ONLIST, 0);
	direct_update(sh, z->z_zoneindex);
}

static inline void
zary_remove(struct sk_shard *sh, struct sk_slzone *z)
{
	zl_remove(&sh->zoneary[z->z_zoneindex], z);
	zone_flags_set(z, 0, ZF_ONLIST);
	direct_update(sh, z->z_zoneindex);
}

/* Put a zone that has free chunks back on ZoneAry (head: a mature zone). */
static inline void
zone_relist(struct sk_shard *sh, struct sk_slzone *z)
{
	if (z->z_flags & ZF_ONLIST)
		return;
	if (z->z_flags & ZF_EXHAUSTED) {
		if (sh->exh_cursor == z)
			sh->exh_cursor = z->z_next;
		zl_remove(&sh->exhausted, z);
		zone_flags_set(z, 0, ZF_EXHAUSTED);
	}
	if ((z->z_flags & ZF_GRANULE) && !(sh->slow & SK_SHARD_SLOW_ALWAYS))
		SK_STORE(&z->z_fastowner, sh);
	zary_insert(sh, z);
}

static inline int32_t
zone_nfree(const struct sk_slzone *z)
{
	return z->z_nmax - z->z_nused;
}

/* ------------------------------------------------------------------ */
/* Free lists: encoded links, checked on pop */

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
		c->c_next = sk_zone_link_enc((uintptr_t)z->z_lchunks, z->z_key);
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

/* ------------------------------------------------------------------ */
/* Drains: remote frees back to the owner's list */

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
			sk_panic("kfree",
			    "remote free list of zone %p corrupted "
			    "(ptr %p)",
			    (void *)z, (void *)c);
		bit = 1u << (idx & 31);
		__atomic_fetch_and(
		    &z->z_rbits[SK_ZWORD(idx)], ~bit, __ATOMIC_RELAXED);
		w = SK_LOAD(&z->z_abits[SK_ZWORD(idx)]);
		if (!(w & bit))
			sk_panic("kfree", "memory chunk %p is already free!",
			    (void *)c);
		SK_STORE(&z->z_abits[SK_ZWORD(idx)], w & ~bit);
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
 * list.  The hints are cleared first (exchanges, so the clears are ordered
 * before the loads): a freer sets them, with plain stores, before its
 * bit.  Only the groups of four words whose hint is set are read, unless
 * all (a full scan, for bits whose hint a concurrent drain took).
 */
/* The lowest set bit of x != 0, as an address offset: on x86-64 one
 * tzcnt (bsf where there is none, the same for x != 0), without the sign
 * extension and the dependency-breaking clear GCC puts around
 * __builtin_ctzll.  With wbase in one register below: 12 -> 9
 * instructions a drained chunk (xmalloc 0.2: 55.6 M -> 49.3 M). */
static inline size_t
drain_bit(uint64_t x)
{
#if defined(__x86_64__)
	uint64_t i;

	__asm__("rep bsfq %1, %0" : "=r"(i) : "rm"(x) : "cc");
	return (size_t)i;
#else
	return (size_t)__builtin_ctzll(x);
#endif
}

static int
zone_drain_rbits(struct sk_slzone *z, bool all) /* ZF_GRANULE zones */
{
	uint64_t *ab = (uint64_t *)(void *)z->z_abits; /* pair w: 2w */
	uint64_t *rb = ab + 1;                         /* and 2w + 1 */
	char *base = (char *)sk_zone_base(z), *wbase;
	uintptr_t head = (uintptr_t)z->z_lchunks, key = z->z_key;
	size_t first = (size_t)(z->z_baseptr - base) >> 9;
	size_t last = ((size_t)(z->z_baseptr - base) +
	                  (size_t)z->z_nmax * z->z_chunksize + 511) >>
	              9;
	uint64_t groups = 0; /* bit gi: look at group gi's words */
	bool cleared = false;
	int n = 0;

	_Static_assert(SK_ZRGROUPS <= 64, "one bit per group");
	__atomic_exchange_n(&z->z_rhint, 0, __ATOMIC_SEQ_CST);
	/* take the groups' hints with plain stores and one fence before
	 * any word is read (an exchange per hinted group was a third of
	 * the drain's time with two threads freeing into each other's
	 * zones): a freer's hint set after its clear stays for the next
	 * drain, as with the exchanges */
	for (size_t gi = first >> 2; gi <= (last - 1) >> 2; gi++) {
		if (SK_LOAD_FAST(&z->z_rgroups[gi]) != 0) {
			SK_STORE(&z->z_rgroups[gi], 0);
			cleared = true;
		} else if (!all) {
			continue;
		}
		groups |= (uint64_t)1 << gi;
	}
	if (cleared) /* the fence: an OR of nothing (ThreadSanitizer does
	              * not follow atomic_thread_fence) */
		__atomic_fetch_or(&z->z_rhint, 0, __ATOMIC_SEQ_CST);
	while (groups != 0) {
		size_t gi = (size_t)__builtin_ctzll(groups);
		size_t w = gi << 2 > first ? gi << 2 : first;
		size_t wend = (gi << 2) + 4 < last ? (gi << 2) + 4 : last;

		groups &= groups - 1;
		for (; w < wend; w++) {
			uint64_t bits, a;

			if (SK_LOAD_FAST(&rb[2 * w]) == 0)
				continue;
			bits = __atomic_exchange_n(&rb[2 * w], 0, __ATOMIC_ACQ_REL);
			a = SK_LOAD(&ab[2 * w]);
			if ((a & bits) != bits) {
				uint64_t bad = bits & ~a;
				struct sk_chunk *c = (struct sk_chunk
				        *)(base +
				           ((w * 64 +
				                (size_t)__builtin_ctzll(bad))
				               << 3));

				sk_panic("kfree",
				    "memory chunk %p is already free! "
				    "(double free, ptr %p)",
				    (void *)c, (void *)c);
			}
			SK_STORE(&ab[2 * w], a & ~bits);
			/* the word's chunks go on the list with its head and
			 * key in registers (through zone_push the compiler
			 * reloaded both for every chunk: a link's store might
			 * have changed them) */
			wbase = base + (w << 9);
			/* one register for the word's base (GCC would add the
			 * zone's base to every chunk's offset instead) */
			__asm__("" : "+r"(wbase));
			while (bits != 0) {
				struct sk_chunk *c = (struct sk_chunk *)(wbase +
				                     drain_bit(bits) * 8);

				bits &= bits - 1;
				c->c_next = sk_zone_link_enc(head, key);
				head = (uintptr_t)c;
				n++;
			}
		}
	}
	z->z_lchunks = (struct sk_chunk *)head;
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

/* Move the remote frees of z to its local list; the number moved. */
static int
zone_drain_remote(struct sk_slzone *z)
{
	if (z->z_flags & ZF_GRANULE)
		return zone_drain_rbits(z, false);
	return zone_drain_list(z);
}

/* The same, reading every rbits word whatever the hints say. */
static int
zone_drain_remote_all(struct sk_slzone *z)
{
	if (z->z_flags & ZF_GRANULE)
		return zone_drain_rbits(z, true);
	return zone_drain_list(z);
}

static void zone_idle_enter(struct sk_slzone *z);
static void zone_idle_leave(struct sk_slzone *z);
static size_t zones_purge(uint32_t age, bool all);
static size_t zones_idle_count(void);

/* spec 1.6 step 6; with keep_last, the last zone of a class stays */
static void
zone_free_if_empty(struct sk_shard *sh, struct sk_slzone *z, bool keep_last)
{
	struct sk_zonelist *l = &sh->zoneary[z->z_zoneindex];

	if (z->z_nused != 0 || SK_LOAD_ACQ(&z->z_rcount) != 0)
		return;
	if (!(z->z_flags & ZF_ONLIST))
		return;
	if (keep_last && l->head == z && z->z_next == NULL)
		return; /* at least one zone per class stays listed */
	zary_remove(sh, z);
	z->z_magic = (uint32_t)-1;
	SK_STORE(&z->z_fastowner, NULL);
	sk_pagemap_set((uintptr_t)z, 0);
	zl_insert_head(&sh->freezones, z);
	zone_idle_enter(z);
	if (++sh->nfreezones > SK_LOAD(&sk_slab.zone_rels_thresh))
		sk_km_set_release(sh);
}

static void
check_zone_free(struct sk_shard *sh, struct sk_slzone *z)
{
	zone_free_if_empty(sh, z, true);
}

/* ------------------------------------------------------------------ */
/* The zone arena */

uintptr_t sk_zarena_base;
size_t sk_zarena_used;         /* bytes mapped from the base on */
size_t sk_zarena_used8;        /* sk_zarena_used / 8 (internal.h) */
static size_t zarena_limit;    /* the most it may grow to; 0: no arena */
static size_t zarena_carved;   /* bytes handed out as zones, <= used */
static bool zarena_full;       /* the next range is taken by someone */
static uint32_t *zarena_stack; /* free zones: index << 1 | not zeroed */
static size_t zarena_nstack;
static struct sk_mutex zarena_lock = SK_MUTEX_INITIALIZER("zone arena");

/* The arena's size, and the same / 8 for the rotated test of the fast
 * paths (sk_zarena_has_aligned), which read it; the one place both are
 * set, the size first. */
static void
zarena_set_used(size_t used)
{
	SK_STORE_REL(&sk_zarena_used, used);
	SK_STORE_REL(&sk_zarena_used8, used / 8);
}
static size_t zones_outside; /* atomic: bytes of zones mapped alone */
bool sk_zones_outside_ever;  /* atomic */

#define ZARENA_MAX  ((size_t)64 << 30)
#define ZARENA_STEP ((size_t)1 << 20)

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
			zarena_limit = (size_t)4 << 30;
			zarena_set_used(zarena_limit);
		}
	}
#else
	for (int tries = 0; tries < 8; tries++) {
		uintptr_t base =
		    ((uintptr_t)0x110000000000 +
		        (sk_os_random() % 0x3e0000u) * ((uintptr_t)1 << 24)) &
		    ~(uintptr_t)(ZARENA_STEP - 1);

		if (sk_os_map_at((void *)base, ZARENA_STEP, &why) != NULL) {
			sk_zarena_base = base;
			zarena_limit = ZARENA_MAX;
			zarena_set_used(ZARENA_STEP);
			return;
		}
	}
#endif
}

/* From sk_kmalloc_init: the direct-table ranges and the zone arena. */
static void zarena_prefork(void);
static void zarena_postfork(void);

void
sk_km_zone_init(void)
{
	direct_init();
	zarena_init();
	sk_os_atfork(zarena_prefork, zarena_postfork, zarena_postfork);
	sk_ph_set_zone_purger(zones_purge, zones_idle_count);
}

/* fork: no thread may be inside the arena's lock when the child starts
 * (registered after the shard layer's handlers, so taken after its locks,
 * the order every other path takes them in) */
static void
zarena_prefork(void)
{
	sk_mutex_lock(&zarena_lock);
}

static void
zarena_postfork(void)
{
	sk_mutex_unlock(&zarena_lock);
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
		zarena_set_used(used + step);
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
		sk_mutex_lock(&zarena_lock);
		if (zarena_nstack > 0) {
			uint32_t e = zarena_stack[--zarena_nstack];

			z = (char *)sk_zarena_base + (size_t)(e >> 1) * zs;
			*fresh = (e & 1) == 0;
		} else {
			z = zarena_carve();
		}
		sk_mutex_unlock(&zarena_lock);
		if (z != NULL)
			return z;
	}
	z = sk_os_map(zs, zs, why);
	if (z != NULL) {
		__atomic_fetch_add(&zones_outside, zs, __ATOMIC_RELAXED);
		SK_STORE(&sk_zones_outside_ever, true);
	}
	return z;
}

/* Give a zone's memory back: to the arena (decommitted) or unmapped. */
static void
zone_unmap(struct sk_slzone *z)
{
	size_t zs = sk_slab.zone_size;
	uintptr_t a = sk_zone_base(z);

	if (a - sk_zarena_base < SK_LOAD(&sk_zarena_used)) {
		uint32_t e = (uint32_t)((a - sk_zarena_base) / zs) << 1;

		if (sk_os_decommit((void *)a, zs) != 0)
			e |= 1; /* still holds old data */
		sk_mutex_lock(&zarena_lock);
		zarena_stack[zarena_nstack++] = e;
		sk_mutex_unlock(&zarena_lock);
		return;
	}
	__atomic_fetch_sub(&zones_outside, zs, __ATOMIC_RELAXED);
	sk_os_unmap((void *)a, zs);
}

/*
 * Idle free zones give their pages back.  A zone on a shard's FreeZones
 * keeps its pages so that the next zone the shard needs costs no fault;
 * ZoneRelsThresh of them (128 per shard with 15 GB or more) stay so for
 * good in the kernel's model, 16 MiB a shard that a program which freed
 * everything and went idle would keep resident.  So the page-run heap's
 * purge thread gives back the chunk pages of zones that sat there for
 * the purge delay (purge_ms, purge=dontneed|free|none, as for large
 * blocks), and malloc_trim and slab_cleanup those of all of them.  The
 * zone stays on its list, header and maps resident (its first pages up
 * to the end of the maps): only its owner touches the list, and reusing
 * the zone costs the faults of its chunk pages.
 *
 * The purge thread finds such zones in zarena_freebits (a bit per arena
 * zone, set while it is on a FreeZones) and takes each with z_purge: the
 * owner sets ZP_IDLE when the zone goes on FreeZones; the purger swaps
 * ZP_IDLE for ZP_BUSY, gives the pages back and stores ZP_PURGED; the
 * owner that takes the zone off FreeZones (for a class, or to release
 * it) swaps either for ZP_NONE, waiting out a ZP_BUSY, before it writes
 * anything.  Ordinary arena zones only (hardened and tracked zones are
 * mapped alone and keep the kernel's rule).
 */
#define ZP_NONE   0
#define ZP_IDLE   1
#define ZP_BUSY   2
#define ZP_PURGED 3

static uint64_t
    zarena_freebits[ZARENA_MAX / SK_MIN_ZONE_SIZE / 64]; /* atomic */
static size_t zones_idle; /* atomic: zones in ZP_IDLE */

static inline bool
zone_purgeable(const struct sk_slzone *z)
{
	return z->z_inarena && (z->z_flags & ZF_GRANULE) && z->z_hflags == 0;
}

static inline size_t
zone_arena_index(const struct sk_slzone *z)
{
	return (sk_zone_base(z) - sk_zarena_base) / sk_slab.zone_size;
}

static void
zone_idle_enter(struct sk_slzone *z)
{
	size_t i;

	if (!zone_purgeable(z))
		return;
	i = zone_arena_index(z);
	SK_STORE(&z->z_freed_ms, sk_ph_now_ms());
	SK_STORE_REL(&z->z_purge, ZP_IDLE);
	__atomic_fetch_or(&zarena_freebits[i / 64], (uint64_t)1 << (i % 64),
	    __ATOMIC_RELEASE);
	if (__atomic_fetch_add(&zones_idle, 1, __ATOMIC_ACQ_REL) == 0 ||
	    !sk_ph_purger_running())
		sk_ph_kick();
}

static void
zone_idle_leave(struct sk_slzone *z)
{
	size_t i;
	int s;

	if (!zone_purgeable(z))
		return;
	i = zone_arena_index(z);
	__atomic_fetch_and(&zarena_freebits[i / 64], ~((uint64_t)1 << (i % 64)),
	    __ATOMIC_RELAXED);
	for (unsigned n = 0;; n++) {
		s = SK_LOAD_ACQ(&z->z_purge);
		if (s == ZP_BUSY) { /* the purger is giving the pages back */
			if (n > 64)
				sched_yield();
			continue;
		}
		if (__atomic_compare_exchange_n(&z->z_purge, &s, ZP_NONE, false,
		        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break;
	}
	if (s == ZP_IDLE)
		__atomic_fetch_sub(&zones_idle, 1, __ATOMIC_RELAXED);
}

static size_t
zones_idle_count(void)
{
	return SK_LOAD(&zones_idle);
}

/* The purge thread (age: purge_ms) and malloc_trim (all): the bytes. */
static size_t
zones_purge(uint32_t age, bool all)
{
	size_t zs = sk_slab.zone_size, ps = sk_slab.page_size, nz, done = 0;
	uint32_t now = sk_ph_now_ms();

	if (SK_LOAD(&zones_idle) == 0)
		return 0;
	sk_mutex_lock(&zarena_lock);
	nz = zarena_carved / zs;
	sk_mutex_unlock(&zarena_lock);
	for (size_t w = 0; w < (nz + 63) / 64; w++) {
		uint64_t bits = SK_LOAD_ACQ(&zarena_freebits[w]);

		while (bits != 0) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
			struct sk_slzone *z =
			    sk_zone_at(sk_zarena_base + (uintptr_t)i * zs);
			int s = ZP_IDLE;
			uintptr_t from, to;

			bits &= bits - 1;
			if (!all && now - SK_LOAD(&z->z_freed_ms) < age)
				continue;
			/* the arena's lock across ZP_BUSY: fork takes it
			 * (zarena_prefork), so no child starts with a zone
			 * left busy that its owner would wait for ever on */
			sk_mutex_lock(&zarena_lock);
			if (!__atomic_compare_exchange_n(&z->z_purge, &s,
			        ZP_BUSY, false, __ATOMIC_ACQ_REL,
			        __ATOMIC_RELAXED)) {
				sk_mutex_unlock(&zarena_lock);
				continue;
			}
			/* the owner waits while ZP_BUSY: the header is
			 * stable */
			from = ((uintptr_t)(SK_ZABITS(z) + 2 * z->z_bitwords) +
			           ps - 1) &
			       ~(uintptr_t)(ps - 1);
			to = sk_zone_base(z) + zs;
			if (from < to &&
			    sk_ph_give_back((void *)from, to - from) == 0)
				done += to - from;
			SK_STORE_REL(&z->z_purge, ZP_PURGED);
			sk_mutex_unlock(&zarena_lock);
			__atomic_fetch_sub(&zones_idle, 1, __ATOMIC_RELAXED);
		}
	}
	return done;
}

/* Unmap free zones beyond ZoneRelsThresh and deferred large blocks. */
void
sk_km_release_free_zones(struct sk_shard *sh, int keep)
{
	while (sh->nfreezones > keep) {
		struct sk_slzone *z = sh->freezones.tail;

		zl_remove(&sh->freezones, z);
		zone_idle_leave(z);
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
		if (sk_ph_owns(z))
			sk_ph_free(z, (size_t)z->z_nmax);
		else
			sk_os_unmap(z, bytes);
	}
}

/*
 * The page-run heap just handed sh's thread bytes of pages that were not
 * resident (a fresh or purged run: the process grows by that much) while
 * sh may hold wholly free zones, resident and idle.  Release as many of
 * them as cover bytes, keeping SK_ZONES_YIELD_KEEP for the next zone the
 * shard needs, so that memory a program stopped using for small chunks
 * serves its large blocks instead of adding to them.  realloc-growth,
 * whose buffers move from zone chunks into large blocks as they grow,
 * peaked with 19 free zones (2.4 MiB) resident beside the heap: peak RSS
 * 16.6 -> 14.7 MiB, for 20 madvise calls and 128 more page faults in 8 M
 * reallocs.  Like every release, only an allocation that may block
 * (no M_RNOWAIT) makes it; ordinary zones only.
 */
#define SK_ZONES_YIELD_KEEP 2

static void
zones_yield(struct sk_shard *sh, size_t bytes)
{
	size_t zs = sk_slab.zone_size;
	int n, keep;

	/* hardened and tracked zones, mapped one by one with their guards,
	 * keep the kernel's rule alone */
	if (sh->nfreezones <= SK_ZONES_YIELD_KEEP || sk_opt.hardened ||
	    sk_opt.track)
		return;
	n = (int)((bytes + zs - 1) / zs);
	keep = sh->nfreezones - n;
	if (keep < SK_ZONES_YIELD_KEEP)
		keep = SK_ZONES_YIELD_KEEP;
	sk_km_release_free_zones(sh, keep);
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
		SK_STORE(
		    &z->z_fastowner, NULL); /* frees relist it: slow path */
		if (!(z->z_flags & ZF_EXHAUSTED)) {
			zl_insert_head(&sh->exhausted, z);
			zone_flags_set(z, ZF_EXHAUSTED, 0);
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
				__atomic_store_n(
				    &z->z_rsignal, 0, __ATOMIC_RELAXED);
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

	sk_km_release_free_zones(sh, 0);
	sk_ph_purge(true);
	sk_km_shard_update_slow(sh);
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
void *
sk_km_backend(struct sk_shard *sh, size_t size, size_t align, int flags,
    int kind, bool *zeroed)
{
	uint64_t start = 0;
	long backoff_ns = 100000;
	void *p;
	int why;

	if (SK_UNLIKELY((flags & (M_RNOWAIT | M_WAITOK)) == 0))
		sk_panic("kmem_slab_alloc", "bad flags %x", (unsigned)flags);
	for (;;) {
		if (kind == SK_KM_ZONE)
			p = zone_map(zeroed, &why);
		else if (kind == SK_KM_HEAP) {
			p = sk_ph_alloc_front(
			    size >> sk_slab.page_shift, align, zeroed, &why);
			if (p == NULL && why == SK_PH_NOSEG) {
				/* no room for a segment (RLIMIT_AS): the
				 * block on its own, which kfree unmaps */
				*zeroed = true;
				p = sk_os_map(size, align, &why);
			}
		} else
			p = sk_os_map(size, align, &why);
		if (SK_LIKELY(p != NULL)) {
			if (kind == SK_KM_HEAP && *zeroed && sh != NULL &&
			    !(flags & M_RNOWAIT))
				zones_yield(sh, size);
			return p;
		}
		if (why == SK_OS_EXHAUSTED) {
			if (flags & M_NULLOK)
				return NULL;
			sk_panic("kmem_slab_alloc",
			    "address space ran out of space! (%zu bytes)",
			    size);
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
			    "out of memory: M_WAITOK waited %ld ms for %zu "
			    "bytes",
			    sk_opt.waitok_timeout_ms, size);
		}
		sk_os_sleep_ns(backoff_ns);
		if (backoff_ns < 50000000)
			backoff_ns *= 2;
	}
}

/* ------------------------------------------------------------------ */
/* Zones and chunks (spec 1.4 steps 7-10) */

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

/*
 * A zone's link key: a per-process secret (one getrandom at start) mixed
 * with the zone's address and the shard's count of zone set-ups, so a
 * reused zone gets a new key and no system call is made per zone.
 */
static uint64_t zkey_secret;

static uintptr_t
zone_key(struct sk_shard *sh, struct sk_slzone *z)
{
	uint64_t x;

	if (SK_UNLIKELY(SK_LOAD(&zkey_secret) == 0))
		SK_STORE(&zkey_secret, sk_os_random() | 1);
	x = SK_LOAD(&zkey_secret) ^
	    ((uint64_t)(uintptr_t)z + 0x9e3779b97f4a7c15ULL * ++sh->zkeyseq);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (uintptr_t)((x ^ (x >> 31)) | 1);
}

/* Where the chunks of a class-zi zone whose header is coloured `colour'
 * bytes in start (the bytes before them), and the words of each bitmap in
 * *words (even: the maps interleave 64 bits at a time). */
static size_t
zone_offset(int zi, bool granule, size_t colour, size_t *words)
{
	size_t size = sk_class_size[zi];
	size_t align = sk_class_align[zi];
	size_t hdr;

	/* granule maps: one bit per 8 bytes of this ZoneSize (not of the
	 * largest one: 2 KiB more chunks in a 64 KiB zone) */
	*words = granule ? sk_slab.zone_size / 8 / 32
	                 : (sk_slab.zone_size / size + 63) / 64 * 2;
	hdr = colour + sizeof(struct sk_slzone) + 2 * *words * sizeof(uint32_t);
	if ((size & (size - 1)) == 0)
		align = size; /* power-of-two chunks are size-aligned */
	if (align < 16)
		align = 16; /* malloc(3)'s 16 bytes for every multiple of 16 */
	return (hdr + align - 1) & ~(align - 1);
}

/* Set up a zone for class zi at z (fresh or reused), spec 1.4 step 8. */
static void
zone_setup(struct sk_shard *sh, struct sk_slzone *z, int zi, bool fresh,
    bool maps_clear)
{
	size_t size = sk_class_size[zi];
	bool granule = !sk_opt.hardened && !sk_opt.track;
	size_t words;
	uintptr_t base = sk_zone_base(z);
	size_t off = zone_offset(zi, granule, SK_ZCOLOUR(base), &words);

	memset(z, 0, sizeof(*z));
	z->z_abits = (uint32_t *)(z + 1);
	z->z_rbits = z->z_abits + 2; /* interleaved */
	maps_clear = maps_clear && granule;
	if (!fresh && !maps_clear)
		memset(z->z_abits, 0, 2 * words * sizeof(uint32_t));
	else if (SK_UNLIKELY(sk_opt.invariants) && maps_clear)
		for (size_t i = 0; i < 2 * words; i++)
			if (z->z_abits[i] != 0)
				sk_panic("kmalloc",
				    "free zone %p reused with map word %zu set",
				    (void *)z, i);
	z->z_magic = SK_SLAB_MAGIC;
	z->z_zoneindex = (uint16_t)zi;
	SK_STORE(&z->z_flags, (uint16_t)((fresh ? 0 : SLZF_UNOTZEROD) |
	                                 (granule ? ZF_GRANULE : 0)));
	z->z_owner = sh;
	z->z_baseptr = (char *)base + off;
	z->z_chunksize = (uint32_t)size;
	z->z_chunkmul = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
	z->z_statinc = ((uint64_t)size << SK_PACK_SHIFT) + 1;
	z->z_nmax = (int32_t)((sk_slab.zone_size - off) / size);
	z->z_nused = 0;
	z->z_bitwords = (uint32_t)words;
	z->z_inarena = base - sk_zarena_base < sk_zarena_used;
	if (granule) {
		z->z_key = zone_key(sh, z);
		z->z_lchunks = (struct sk_chunk *)z;
		if (!(sh->slow & SK_SHARD_SLOW_ALWAYS))
			SK_STORE(&z->z_fastowner, sh);
	} else {
		z->z_lchunks = NULL;
	}
	/* colouring, spec 1.4 step 8 (off in the malloc drop-in by default:
	 * there every thread has its own zones, and a first chunk far from
	 * the header costs each of them a page) */
	z->z_uindex = z->z_uendindex =
	    sk_colouring() ? (int32_t)(sh->junkindex % (size_t)z->z_nmax) : 0;
	sh->junkindex =
	    (sh->junkindex + SK_SLAB_SLIDE) & (SK_MAX_ZONE_SIZE - 1);
	if (SK_UNLIKELY(!granule))
		sk_harden_zone_setup(z, fresh);
}

/* Set for good by the first remote free of the process: until then a
 * program (every single-threaded one) has no exhausted zone to look at. */
static bool remote_frees_seen; /* atomic */

/*
 * Exhausted zones (off ZoneAry) that received remote frees without a
 * doorbell: the freer read RSignal just before the owner set it (any
 * later remote free to the zone rings for both).  With all (slab_cleanup,
 * thread exit) every zone is looked at; else SK_EXH_SCAN of them, from
 * where the last look stopped, each time a class runs dry, so such a
 * chunk waits at most (exhausted zones / SK_EXH_SCAN) new zones, and is
 * never stranded.  A look at every zone each time cost sqlite3, whose
 * in-memory database keeps some thousand zones full, 1.6% of its time in
 * header misses (zone_new runs once per ZoneSize of new data).
 */
static void
zone_scan_exhausted(struct sk_shard *sh, bool all)
{
	struct sk_slzone *z, *next;
	int n = 0;

	if (!all && !SK_LOAD(&remote_frees_seen))
		return; /* no remote free yet in this process: none raced */
	z = all || sh->exh_cursor == NULL ? sh->exhausted.head : sh->exh_cursor;
	for (; z != NULL && (all || n < SK_EXH_SCAN); z = next, n++) {
		next = z->z_next;
		if (!all && !zone_remote_waiting(z))
			continue;
		if (all)
			zone_drain_remote_all(z);
		else
			zone_drain_remote(z);
		if (zone_nfree(z) > 0) {
			__atomic_store_n(&z->z_rsignal, 0, __ATOMIC_RELAXED);
			zone_relist(sh, z);
			check_zone_free(sh, z);
		}
	}
	sh->exh_cursor = z;
}

/* ZoneAry[zi] is empty: doorbell, reuse a free zone, or map a new one. */
static struct sk_slzone *
zone_new(struct sk_shard *sh, int zi, int flags)
{
	struct sk_slzone *z;
	bool fresh = false, maps_clear = false;

	zone_drain_pending(sh);
	zone_scan_exhausted(sh, false);
	if (sh->zoneary[zi].tail != NULL)
		return sh->zoneary[zi].tail;
	if ((z = sh->freezones.head) != NULL) {
		zl_remove(&sh->freezones, z);
		sh->nfreezones--;
		zone_idle_leave(z);
		/* a granule zone leaves for the free list only with no chunk
		 * handed out and none waiting remote: its maps (sized for the
		 * whole zone whatever the class) are all clear already, and
		 * the 4 KiB memset can go (xmalloc re-sets a zone every 1,600
		 * allocations) */
		maps_clear = (z->z_flags & ZF_GRANULE) != 0;
		if (SK_UNLIKELY(z->z_hflags != 0))
			sk_harden_zone_retire(z);
	} else {
		void *base = sk_km_backend(sh, sk_slab.zone_size,
		    sk_slab.zone_size, flags | M_ZERO, SK_KM_ZONE, &fresh);

		if (base == NULL)
			return NULL;
		z = sk_zone_at((uintptr_t)base);
		sh->zones_mapped++;
	}
	zone_setup(sh, z, zi, fresh, maps_clear);
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
	struct sk_chunk *c =
	    (struct sk_chunk *)(z->z_baseptr +
	                        (size_t)z->z_uindex * z->z_chunksize);

	if (SK_UNLIKELY(z->z_hflags & SK_ZF_HARDENED))
		z->z_uindex = sk_harden_carve_next(z);
	else if (++z->z_uindex == z->z_nmax)
		z->z_uindex = 0;
	if (SK_UNLIKELY(
	        ++z->z_carved != z->z_nmax && z->z_uindex == z->z_uendindex))
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
 * How many never-used chunks of z start in the page where the next one
 * starts (at least 1), stopping where the carving wraps to the zone's
 * first chunk.
 */
static size_t
zone_carve_page(struct sk_slzone *z)
{
	size_t size = z->z_chunksize, u = (size_t)z->z_uindex;
	uintptr_t a = (uintptr_t)z->z_baseptr + u * size;
	size_t room = (size_t)(((a | (sk_slab.page_size - 1)) + 1) - a);
	size_t n = (room - 1) / size + 1, wrap = (size_t)z->z_nmax - u;

	return n < wrap ? n : wrap;
}

/*
 * Carve up to k more never-used chunks of ordinary zone z onto its list,
 * in the order zone_carve and zone_push one at a time would (the last
 * carved on top), with the head and the carve index in registers (the
 * one-at-a-time loop reloaded them for every chunk): sk_kmalloc_slow
 * 42.2 M -> 25.6 M instructions in xmalloc 0.2, whose producers carve
 * steadily; lua binary-trees 12 871.4 M -> 867.1 M in all.
 */
static void
zone_carve_push(struct sk_slzone *z, size_t k)
{
	size_t left = (size_t)(z->z_nmax - z->z_carved);
	size_t u = (size_t)z->z_uindex, nmax = (size_t)z->z_nmax;
	size_t size = z->z_chunksize;
	uintptr_t head = (uintptr_t)z->z_lchunks, key = z->z_key;

	if (k > left)
		k = left;
	for (size_t i = 0; i < k; i++) {
		struct sk_chunk *c =
		    (struct sk_chunk *)(z->z_baseptr + u * size);

		c->c_next = sk_zone_link_enc(head, key);
		head = (uintptr_t)c;
		if (++u == nmax)
			u = 0;
	}
	z->z_lchunks = (struct sk_chunk *)head;
	z->z_uindex = (int32_t)u;
	z->z_carved += (int32_t)k;
	if (SK_UNLIKELY(
	        z->z_carved != z->z_nmax && z->z_uindex == z->z_uendindex))
		sk_panic("kmalloc", "slaballoc: corrupted zone %p", (void *)z);
}

/*
 * The class's current zone z (the tail of ZoneAry[zi]) has nothing freed
 * to hand out, only never-used chunks: before those are carved (pages the
 * process has not touched yet), reuse what was freed into another zone of
 * the class.  Zones that ran dry leave ZoneAry and come back at its head
 * when a free reaches them, while the zone made in their place stays the
 * tail; so a class whose population swung above one zone kept carving
 * the new zone to its end with the old one half free beside it.  The
 * doorbell's zones (remote frees to zones that left the list) are taken
 * in first, and SK_PREFER_LOOK zones before the tail are looked at; the
 * first with freed chunks becomes the tail.  Once per carved page of a
 * class at most, in the slow path: alloc-random-small's peak RSS 3,588
 * -> 3,204 KiB (three classes had two zones, the second carved to its end
 * for 24-52 chunks live in it), larson 15,224 -> 14,984 KiB, no change in
 * instructions (callgrind, many-threads and alloc-random-small at scale
 * 0.05: within 0.01%).  NULL when the doorbell emptied the list.
 */
#define SK_PREFER_LOOK 4

static struct sk_slzone *
zone_prefer_freed(struct sk_shard *sh, int zi, struct sk_slzone *z)
{
	struct sk_slzone *y;
	int n = 0;

	if (!zone_list_empty(z) || zone_remote_waiting(z) || !zone_carvable(z))
		return z;
	if (SK_LOAD(&sh->pend) != NULL) {
		zone_drain_pending(sh);
		if ((z = sh->zoneary[zi].tail) == NULL)
			return NULL;
		if (!zone_list_empty(z) || zone_remote_waiting(z))
			return z;
	}
	for (y = z->z_prev; y != NULL && n < SK_PREFER_LOOK;
	     y = y->z_prev, n++) {
		if (!zone_list_empty(y) || zone_remote_waiting(y)) {
			zl_remove(&sh->zoneary[zi], y);
			zl_insert_tail(&sh->zoneary[zi], y);
			direct_update(sh, zi);
			return y;
		}
	}
	return z;
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
		/* carve the chunks that start in the page of the next one,
		 * for the fast path, so carving touches no page sooner than
		 * use would (a cap of 16 chunks made lua binary-trees 8-13%
		 * slower: a slow path for every 16 fresh chunks; a page's
		 * worth from wherever the carving stood wrote links into two
		 * pages, and a zone used for one chunk kept three resident);
		 * one at a time only for M_ZERO from a fresh zone, which then
		 * needs no bzero (a listed chunk holds its link) */
		bool zero = (*flags & M_ZERO) != 0;
		size_t more = zone_carve_page(z);

		c = zone_carve(sh, z, flags);
		if ((z->z_flags & ZF_GRANULE) &&
		    !(zero && (*flags & M_PASSIVE_ZERO)) && more > 1)
			zone_carve_push(z, more - 1);
	} else {
		if (zone_exhausted(sh, z))
			return NULL;
		c = zone_pop(z);
	}
	b = zone_bit(z, c);
	if (SK_UNLIKELY(bit_get(z->z_abits, b))) {
		if (sk_opt.invariants)
			sk_panic("kmalloc",
			    "memory chunk %p is already "
			    "allocated!",
			    (void *)c);
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

/* kmalloc(M_ZERO) on the fast path: the same, then the bzero (out of
 * line, so that the fast path keeps no register across the pop). */
__attribute__((noinline)) void *
sk_kmalloc_zeroed(struct sk_shard *sh, struct sk_slzone *z, struct sk_chunk *c)
{
	size_t chunk = z->z_chunksize;

	return memset(sk_zone_take_fast(sh, z, c, true), 0, chunk);
}

/* The rest of the inline kfree after a fold of its packed count (every
 * ZoneSize bytes freed): gives sh back. */
void
sk_kfree_folded(struct sk_shard *sh, struct sk_slzone *z, struct kmalloc_use *u)
{
	sk_km_fold_frees(u);
	sk_zone_freed_leave(sh, z, true);
}

void
sk_km_shard_update_slow(struct sk_shard *sh)
{
	uint8_t slow = sh->slow & SK_SHARD_SLOW_ALWAYS;

	if (sh->nfreezones > SK_LOAD(&sk_slab.zone_rels_thresh) ||
	    sh->freeovzones != NULL)
		slow |= SK_SHARD_SLOW_RELEASE;
	if (slow & SK_SHARD_SLOW_RELEASE)
		sk_km_set_release(sh);
	sh->slow = slow;
}

static void *kmalloc_held(
    struct sk_shard **shp, size_t size, struct malloc_type *type, int flags);

void *
sk_kmalloc_slow(size_t size, struct malloc_type *type, int flags)
{
	struct sk_shard *sh;
	void *p;

	sk_init();
	sk_km_type_check(type, "kmalloc");
	if (SK_LOAD_ACQ(&type->ks_limit) == 0)
		malloc_init(type); /* classic lazy initialisation */
	if ((flags & (M_RNOWAIT | M_WAITOK)) == 0)
		sk_panic("kmalloc",
		    "bad flags %x: neither M_WAITOK nor M_RNOWAIT (M_NOWAIT, "
		    "M_INTWAIT) given",
		    (unsigned)flags);
	sh = sk_kshard_get();
	p = kmalloc_held(&sh, size, type, flags);
	sk_kshard_leave(sh);
	return p;
}

/* Does sh own any zone (listed, exhausted or free)? */
static bool
shard_has_zones(const struct sk_shard *sh)
{
	if (sh->exhausted.head != NULL || sh->nfreezones > 0)
		return true;
	for (int zi = 0; zi < SK_NZONES; zi++)
		if (sh->zoneary[zi].head != NULL)
			return true;
	return false;
}

/*
 * A thread that works on CPU shards may still own zones in its thread's
 * shard: made before shards per CPU started (the first thread), or while
 * its CPU's shard was held too long.  Nothing allocates from them any
 * more, but other threads' frees of their chunks wait in their remote
 * bitmaps until the owner drains them.  So every 64th slow path of such a
 * thread drains its shard and gives back the zones that emptied; once it
 * owns none, it stops looking.
 */
static void
thread_retire(struct sk_shard *me)
{
	if ((++me->retire_tick & 63) != 0)
		return;
	sk_kmalloc_shard_cleanup(me, false);
	for (int zi = 0; zi < SK_NZONES; zi++) {
		struct sk_slzone *z, *next;

		for (z = me->zoneary[zi].head; z != NULL; z = next) {
			next = z->z_next;
			zone_free_if_empty(me, z, false);
		}
	}
	sk_km_release_free_zones(me, 0);
	sk_km_shard_update_slow(me);
	me->retired = !shard_has_zones(me);
}

/* The rest of sk_kmalloc_slow, on the shard it holds (*shp: a large
 * block may change it, see sk_km_large_shard). */
static void *
kmalloc_held(
    struct sk_shard **shp, size_t size, struct malloc_type *type, int flags)
{
	struct sk_shard *sh = *shp, *me = sk_tls_shard;
	struct sk_slzone *z;
	struct sk_chunk *c;
	size_t align, chunk;
	int zi;

	if (SK_UNLIKELY(me != sh && !me->empty && !me->retired))
		thread_retire(me);
	else if (me == sh)
		me->retired = false; /* it may own zones again */

	sk_km_stats_calls(type, sh); /* spec 1.4 step 1: before any failure */
	size = sk_km_round_flags(size, &flags);
	if (!sk_km_limit_check(type, flags))
		return NULL;
	if (size == 0)
		return ZERO_LENGTH_PTR;
	if (!(flags & M_RNOWAIT) && (sh->slow & SK_SHARD_SLOW_RELEASE)) {
		sk_km_release_free_zones(
		    sh, SK_LOAD(&sk_slab.zone_rels_thresh));
		sk_km_shard_update_slow(sh);
	}
	if (sh->empty) {
		/* no shard could be made: out of memory */
		if (flags & (M_NULLOK | M_RNOWAIT))
			return NULL;
		sk_panic("kmalloc", "cannot create a shard");
	}
	if (SK_UNLIKELY(sk_opt.hardened))
		sk_harden_alloc_check(sh, type);
	if (size >= sk_slab.zone_limit ||
	    ((size & (sk_slab.page_size - 1)) == 0 &&
	        size > 2 * sk_slab.page_size))
		return sk_km_large(*shp = sk_km_large_shard(sh), size,
		    (flags & M_CACHEALIGN) ? SK_CACHELINE : 0, type, flags);
	chunk = size;
	zi = sk_zoneindex(&chunk, &align);
	if (zi < 0)
		sk_panic("kmalloc", "Unexpected byte count %zu", size);
	if (SK_UNLIKELY(sk_opt.hardened) &&
	    (zi = sk_harden_class(zi, size, &chunk, &align)) < 0)
		return sk_km_large(sh, size, align, type, flags);
	do {
		z = sh->zoneary[zi].tail;
		if (z != NULL)
			z = zone_prefer_freed(sh, zi, z);
		if (z == NULL && (z = zone_new(sh, zi, flags)) == NULL)
			return NULL;
	} while ((c = zone_take_chunk(sh, z, &flags)) == NULL);
	direct_update(sh, zi);
	sk_km_stats_alloc(type, sh, chunk);
	chunk_finish(c, chunk, flags);
	if (SK_UNLIKELY(z->z_hflags != 0))
		sk_harden_chunk_done(z, c);
	return c;
}

/* ------------------------------------------------------------------ */
/* kfree: remote frees and the slow path */

/* Ring the owner's doorbell for z (spec 1.6 step 4, passive IPI): our
 * RCount reference goes with the zone and is dropped by the owner. */
static void
zone_ring(struct sk_slzone *z)
{
	struct sk_shard *owner = SK_LOAD(&z->z_owner);
	struct sk_slzone *old = SK_LOAD(&owner->pend);

	do {
		SK_STORE(&z->z_pend_next, old);
	} while (!__atomic_compare_exchange_n(
	    &owner->pend, &old, z, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/*
 * Set the rbits bit of an ordinary zone's chunk at p, whose pair of
 * bitmap words is off bytes into the maps; its old value.
 * zone_drain_rbits takes an ordinary zone's rbits 64 bits at a time, so
 * its freers set them in the same 64-bit words: an atomic of another size
 * on part of a word does not synchronise with it, for the memory model
 * and ThreadSanitizer alike.
 */
static inline bool
rbit_set_at(struct sk_slzone *z, size_t off, uintptr_t p)
{
	uint64_t m64 = (uint64_t)1 << ((p >> 3) & 63);

	return (__atomic_fetch_or((uint64_t *)((char *)SK_ZRBITS(z) + off), m64,
	            __ATOMIC_SEQ_CST) &
	           m64) != 0;
}

/* The same, with off found from p (sk_gbit_word). */
static inline bool
rbit_set_granule(struct sk_slzone *z, uintptr_t p)
{
	return rbit_set_at(z, sk_gbit_off(p), p);
}

/* The same for chunk c of any zone (bit b: a hardened or tracked zone's
 * chunk index). */
static inline bool
rbit_set(struct sk_slzone *z, struct sk_chunk *c, size_t b, bool granule)
{
	uint32_t m = 1u << (b & 31);

	if (granule)
		return rbit_set_granule(z, (uintptr_t)c);
	return (__atomic_fetch_or(
	            &z->z_rbits[SK_ZWORD(b)], m, __ATOMIC_SEQ_CST) &
	           m) != 0;
}

/* Every remote free, before its chunk is marked: zone_scan_exhausted
 * looks from then on. */
static inline void
remote_seen(void)
{
	if (SK_UNLIKELY(!SK_LOAD(&remote_frees_seen)))
		SK_STORE(&remote_frees_seen, true);
}

/* A freer's hints that an ordinary zone's rbits may hold its chunk b:
 * plain stores, made before the bit is set (zone_drain_rbits), and only
 * where the hint is not set already: a store to a line every freer of
 * the zone writes takes the line from the others each time, a load of a
 * set hint leaves it shared (xmalloc, 21 interleaved runs: 0.232 ->
 * 0.169 s median).  A load that saw a hint a drain was about to clear
 * leaves the bit as a store just before the drain's clear would: for the
 * next full look (see sk_kmalloc_shard_cleanup). */
static inline void
remote_hint_group(struct sk_slzone *z, size_t gi)
{
	/* a set hint was set by a remote free that called remote_seen; the
	 * loads are plain ones the compiler folds into the compare (hints:
	 * any value read is safe, see above), atomic under ThreadSanitizer */
	if (SK_LOAD_FAST(&z->z_rhint) == 0) {
		remote_seen();
		SK_STORE(&z->z_rhint, 1);
	}
	if (SK_LOAD_FAST(&z->z_rgroups[gi]) == 0)
		SK_STORE(&z->z_rgroups[gi], 1);
}

/* The same for granule b (its group: 256 granules, four rbits words). */
static inline void
remote_hint(struct sk_slzone *z, size_t b)
{
	remote_hint_group(z, b >> 8);
}

__attribute__((cold, noreturn)) static void
remote_double_free(const char *api, const void *c)
{
	sk_panic(api, "memory chunk %p is already free! (double free, ptr %p)",
	    c, c);
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
kfree_remote(struct sk_slzone *z, struct sk_chunk *c, size_t b, const char *api)
{
	uint32_t bit = 1u << (b & 31);
	bool granule = (SK_LOAD(&z->z_flags) & ZF_GRANULE) != 0;
	int rsignal;

	if (granule)
		remote_hint(z, b);
	else
		remote_seen();
	rsignal = __atomic_load_n(&z->z_rsignal, __ATOMIC_SEQ_CST);
	if (rsignal)
		__atomic_fetch_add(&z->z_rcount, 1, __ATOMIC_ACQ_REL);
	if (!(SK_LOAD(&z->z_abits[SK_ZWORD(b)]) & bit) ||
	    rbit_set(z, c, b, granule)) {
		if (rsignal)
			__atomic_fetch_sub(&z->z_rcount, 1, __ATOMIC_RELEASE);
		remote_double_free(api, c);
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

void
sk_km_bad_pointer(const void *ptr, const char *api)
{
	/* the page-run heap knows the pages of large blocks it took back;
	 * hardened mode's ring, those of guarded blocks it unmapped (guards
	 * made with mprotect: a kernel before Linux 6.13, or qemu-user) */
	if (sk_ph_is_free(ptr) ||
	    (SK_LOAD(&sk_harden_engaged) && sk_harden_large_freed(ptr)))
		sk_panic(api,
		    "memory block %p is already free! (double free "
		    "of a large block, ptr %p)",
		    ptr, ptr);
	sk_panic(api, "pointer was not allocated by slabkit (ptr %p)", ptr);
}

/* The index of ptr in z, a page-tagged zone; panics (naming api) unless
 * z has its magic and ptr is the start of one of its chunks. */
long
sk_km_chunk_index(struct sk_slzone *z, const void *ptr, const char *api)
{
	long idx;

	if (z->z_magic != SK_SLAB_MAGIC)
		sk_panic(api, "zone %p lacks magic (ptr %p)", (void *)z, ptr);
	idx = zone_chunk_index(z, ptr);
	if (idx < 0)
		sk_panic(api,
		    "pointer %p is not the start of a chunk "
		    "(interior or misaligned pointer, ptr %p)",
		    ptr, ptr);
	return idx;
}

static void kfree_held(struct sk_shard **shp, void *ptr,
    struct malloc_type *type, const char *api);

/* Everything the inline kfree does not do, with every check spelled out. */
void
sk_kfree_slow(void *ptr, struct malloc_type *type, const char *api)
{
	struct sk_shard *sh;

	if (ptr == NULL)
		sk_panic(api, "trying to free NULL pointer");
	if (ptr == ZERO_LENGTH_PTR)
		return;
	if (type == NULL || type->ks_magic != M_MAGIC)
		sk_panic(api, "malloc type lacks magic (type %p, ptr %p)",
		    (void *)type, ptr);
	sk_init();
	sh = sk_kshard_get(); /* a freeing-only thread gets a slot too */
	kfree_held(&sh, ptr, type, api);
	sk_kshard_leave(sh);
}

/* The rest of sk_kfree_slow, on the shard it holds (*shp: a large block
 * may change it, see sk_km_large_shard). */
static void
kfree_held(
    struct sk_shard **shp, void *ptr, struct malloc_type *type, const char *api)
{
	struct sk_shard *sh = *shp;
	struct sk_slzone *z;
	struct sk_chunk *c = ptr;
	uintptr_t p = (uintptr_t)ptr;
	int32_t tag;
	long idx;
	size_t b;
	bool wasfull;

	z = sk_zone_at(p);
	tag = sk_pagemap_get((uintptr_t)z);
	if (tag >= 0) {
		/* not a zone: a large block starts on a tagged page */
		tag = sk_pagemap_get(p);
		if (tag > 0 && sk_large_start(p)) {
			sk_km_large_free(shp, ptr, tag, type);
			return;
		}
		sk_km_bad_pointer(ptr, api);
	}
	idx = sk_km_chunk_index(z, ptr, api);
	if (SK_UNLIKELY(z->z_hflags != 0)) {
		/* harden.c: checks, quarantine, checker; the user's type is
		 * charged now, the chunk freed below may be an older one */
		sk_km_stats_free(type, sh, z->z_chunksize);
		type = sk_harden_sink;
		if ((c = sk_harden_chunk_free(sh, z, c, idx, api)) == NULL)
			return;
		ptr = c;
		z = sk_zone_at((uintptr_t)c);
	}
	b = zone_bit(z, c);
	/* this thread's own shard: see thread_retire */
	if (SK_LOAD(&z->z_owner) != sh && SK_LOAD(&z->z_owner) == sk_tls_shard)
		sh = sk_tls_shard;
	if (SK_LOAD(&z->z_owner) != sh) {
		sk_km_stats_free(type, sh, z->z_chunksize);
		if (SK_UNLIKELY(sk_opt.weird) && z->z_hflags == 0)
			memset((char *)c + sizeof(void *), 0xde,
			    (z->z_chunksize < 64 ? z->z_chunksize : 64) -
			        sizeof(void *));
		kfree_remote(z, c, b, api);
		return;
	}
	/* Local free (spec 1.6 step 5). */
	if (!bit_get(z->z_abits, b) || bit_get(z->z_rbits, b))
		sk_panic(api,
		    "memory chunk %p is already free! (double free, "
		    "ptr %p)",
		    ptr, ptr);
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
	sk_km_stats_free(type, sh, z->z_chunksize);
	if (z->z_nused == 0)
		check_zone_free(sh, z);
}

/*
 * The inline kfree found a zone of the arena, z = sk_zone_at(ptr), that
 * is not its own (or a debug option on): a remote free of an ordinary
 * zone by a shard with its own slot is done here; the rest goes to the
 * slow path.  Called holding sh, which it gives back.
 */
void
sk_kfree_notlocal(void *ptr, struct malloc_type *type, const char *api,
    struct sk_shard *sh, struct sk_slzone *z)
{
	uintptr_t p = (uintptr_t)ptr;
	struct sk_shard *owner;
	struct kmalloc_use *u;

	/* another shard's ordinary zone, and ptr the start of a chunk it
	 * handed out (its granule bit, never set below z_baseptr; the slow
	 * path says what else it is) */
	if (SK_LOAD_FAST(&sh->fastkey) == sh && z->z_magic == SK_SLAB_MAGIC &&
	    (SK_LOAD_FAST(&z->z_flags) & ZF_GRANULE) &&
	    (owner = SK_LOAD(&z->z_owner)) != sh && owner != sk_tls_shard) {
		/* p is 8-aligned: the inline kfree's range test said so;
		 * off, the byte offset of its pair of bitmap words (16 bytes
		 * a pair, four pairs a hint group), serves all three maps */
		size_t off = sk_gbit_off(p);

		if (sk_gbit_test(SK_ZABITS(z), p)) {
			size_t bytes = z->z_chunksize;

			u = (struct kmalloc_use *)((char *)type->ks_use +
			                           sh->uoff);
			sk_slot_sub(&u->inuse, 1);
			sk_slot_sub(&u->memuse, bytes);
			/* the rest touches only z, with atomics: sh goes back
			 * now (a shorter hold on a CPU's shard, and no register
			 * kept across the calls below, which are tail calls) */
			sk_kshard_leave(sh);
			/* kfree_remote's common case inline: hints, then the
			 * one atomic OR (a dry zone's doorbell goes there) */
			remote_hint_group(z, off >> 6);
			if (SK_UNLIKELY(__atomic_load_n(&z->z_rsignal,
			                    __ATOMIC_SEQ_CST) != 0)) {
				kfree_remote(z, ptr, sk_zone_granule(p), api);
				return;
			}
			if (SK_UNLIKELY(rbit_set_at(z, off, p)))
				remote_double_free(api, ptr);
			return;
		}
	}
	sk_kshard_leave(sh);
	sk_kfree_slow(ptr, type, api);
}

/* The inline kfree emptied z: spec 1.6 step 6, then give sh back. */
void
sk_kfree_emptied(struct sk_shard *sh, struct sk_slzone *z)
{
	check_zone_free(sh, z);
	sk_kshard_leave(sh);
}

/* ------------------------------------------------------------------ */
/* Housekeeping */

/* Chunks handed out without a bzero by this thread's shard and the CPUs'
 * (a test hook). */
uint64_t
sk_kmalloc_passive_zero_count(void)
{
	uint64_t n = sk_tls_shard->passive_zero;
	struct sk_shard *sh;

	for (int i = 0; (sh = sk_cpu_shard_at(i)) != NULL; i++)
		n += SK_LOAD(&sh->passive_zero);
	return n;
}

/*
 * spec 1.6 step 8, for one shard whose lists the caller may touch.  With
 * all, every listed zone's remote bitmap is scanned (slab_cleanup, an
 * orphan); at thread exit only the zones whose hint says a remote free
 * may wait (a full scan of every zone made short-lived threads pay some
 * 2,000 instructions per zone).  A bit whose hint a concurrent drain
 * cleared is found by the next drain of its zone, or by the full scan of
 * the exhausted list here.
 */
void
sk_kmalloc_shard_cleanup(struct sk_shard *sh, bool all)
{
	zone_drain_pending(sh);
	zone_scan_exhausted(sh, true);
	for (int zi = 0; zi < SK_NZONES; zi++) {
		struct sk_slzone *z, *next;

		for (z = sh->zoneary[zi].head; z != NULL; z = next) {
			next = z->z_next;
			if (all)
				zone_drain_remote_all(z);
			else if (zone_remote_waiting(z))
				zone_drain_remote(z);
			check_zone_free(sh, z);
		}
	}
}

/*
 * Thread exit: the shard will be adopted whole by the next thread, so it
 * keeps what the hysteresis would keep (free zones up to ZoneRelsThresh);
 * the rest goes back to the zone arena.  Large blocks are not the
 * shard's: the page-run heap keeps them for every thread.
 */
void
sk_kmalloc_shard_exit(struct sk_shard *sh)
{
	sk_kmalloc_shard_cleanup(sh, false);
	sk_km_release_free_zones(sh, SK_LOAD(&sk_slab.zone_rels_thresh));
	sk_km_shard_update_slow(sh);
}

static void
cleanup_orphan(struct sk_shard *sh, void *arg)
{
	(void)arg;
	sk_kmalloc_shard_cleanup(sh, true);
	sk_km_release_free_zones(sh, 0);
	sk_km_shard_update_slow(sh);
}

void
slab_cleanup(void)
{
	struct sk_shard *sh;

	sk_init();
	sh = sk_tls_shard;
	if (!sh->empty)
		sk_kmalloc_shard_cleanup(sh, true);
	/* every CPU's shard, taken from here (cpu.c) */
	for (int i = 0; (sh = sk_cpu_shard_at(i)) != NULL; i++) {
		if (!sk_kshard_lock_remote(sh))
			continue;
		sk_kmalloc_shard_cleanup(sh, true);
		sk_km_release_free_zones(sh, 0);
		sk_km_shard_update_slow(sh);
		sk_kshard_leave(sh);
	}
	sk_shard_foreach_orphan(cleanup_orphan, NULL);
	sk_ph_purge(true); /* retained large-block pages go back at once */
}

/* ------------------------------------------------------------------ */
/* Statistics (stats.c, mallinfo) */

#define STAT_MAX_STEPS ((size_t)1 << 20)

/* The walk reads what owners write without locks, on purpose (it is a
 * snapshot); ThreadSanitizer is told not to watch it. */
#ifdef SLABKIT_TSAN
#define STAT_RACY __attribute__((no_sanitize("thread")))
#else
#define STAT_RACY
#endif

/* Is z a zone of the arena (memory that is never unmapped)? */
static inline bool
stat_in_arena(const struct sk_slzone *z)
{
	uintptr_t b = (uintptr_t)z - SK_ZCOLOUR(z);

	return b - sk_zarena_base < SK_LOAD(&sk_zarena_used) &&
	       (b - sk_zarena_base) % sk_slab.zone_size == 0;
}

/* One zone of class zi (or of its own class when zi < 0). */
STAT_RACY static void
stat_zone(struct sk_class_stat *out, const struct sk_slzone *z, int zi)
{
	int32_t nmax = SK_LOAD(&z->z_nmax), nused = SK_LOAD(&z->z_nused);
	size_t words;

	if (zi < 0)
		zi = SK_LOAD(&z->z_zoneindex);
	if (zi >= SK_NZONES || nmax <= 0)
		return; /* being set up or torn down */
	if (nused < 0)
		nused = 0;
	if (nused > nmax)
		nused = nmax;
	out[zi].zones++;
	out[zi].inuse += (size_t)nused;
	out[zi].free += (size_t)(nmax - nused);
	out[zi].header += zone_offset(zi,
	    !(SK_LOAD(&z->z_hflags) & (SK_ZF_HARDENED | SK_ZF_TRACKED)),
	    SK_ZCOLOUR(sk_zone_base(z)), &words);
}

STAT_RACY static void
stat_list(struct sk_class_stat *out, struct sk_slzone *const *head, int zi)
{
	const struct sk_slzone *z = SK_LOAD(head);

	for (size_t n = 0; z != NULL && n < STAT_MAX_STEPS; n++) {
		if (!stat_in_arena(z))
			break;
		stat_zone(out, z, zi);
		z = SK_LOAD(&z->z_next);
	}
}

STAT_RACY static void
stat_shard(struct sk_shard *sh, void *arg)
{
	struct sk_class_stat *out = arg;

	for (int zi = 0; zi < SK_NZONES; zi++)
		stat_list(out, &sh->zoneary[zi].head, zi);
	stat_list(out, &sh->exhausted.head, -1);
}

void
sk_kmalloc_class_stats(struct sk_class_stat *out)
{
	memset(out, 0, SK_NZONES * sizeof(*out));
	for (int zi = 0; zi < SK_NZONES; zi++)
		out[zi].size = sk_class_size[zi];
	sk_init();
	sk_shard_foreach(stat_shard, out);
}

STAT_RACY static void
stat_free_zones(struct sk_shard *sh, void *arg)
{
	struct sk_zone_totals *t = arg;
	int n = SK_LOAD(&sh->nfreezones);

	if (n > 0)
		t->free_zones += (size_t)n;
}

void
sk_kmalloc_zone_totals(struct sk_zone_totals *t)
{
	memset(t, 0, sizeof(*t));
	sk_init();
	t->arena_mapped = SK_LOAD(&sk_zarena_used);
	sk_mutex_lock(&zarena_lock);
	t->arena_decommitted = zarena_nstack * sk_slab.zone_size;
	sk_mutex_unlock(&zarena_lock);
	t->outside_mapped = SK_LOAD(&zones_outside);
	sk_shard_foreach(stat_free_zones, t);
	t->free_zone_bytes = t->free_zones * sk_slab.zone_size;
	t->large_mapped = SK_LOAD(&sk_km_lone_bytes);
	t->large_count = SK_LOAD(&sk_km_lone_count);
}
