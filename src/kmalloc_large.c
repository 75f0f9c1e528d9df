/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc's large blocks (spec 1.4 step 6): requests of ZoneLimit bytes
 * or more, and page multiples above two pages, get whole pages, aligned
 * to a page or to the alignment asked for.
 *
 * Where the pages come from.  Blocks up to SK_PH_MAX_RUN (16 MiB) are
 * runs of the page-run heap (os/pageheap.c), the stand-in for the
 * kernel's kernel_map: a freed block's pages stay committed for the next
 * large block of any thread (no system call, no page fault) until the
 * heap purges them after purge_ms or beyond its retain budget, and a
 * block grows or shrinks in place when its neighbour allows.  Larger
 * blocks, and every block in hardened or track mode (guard pages and
 * checker registration need mappings of their own), are mapped one by
 * one; krealloc moves those with mremap.  So is a heap-sized block when
 * the heap has no run for it and cannot map a new 64 MiB segment (an
 * address-space limit, `ulimit -v', that leaves less room): every path
 * asks sk_ph_owns where a block's pages came from.
 *
 * A large block has no header: the page tag of its first page (pagemap.c,
 * > 0) holds its page count, which is all kfree, kmalloc_usable_size and
 * krealloc need: the usable size is the page-rounded size asked for, and
 * the type is charged exactly that.  The tag is set before the block is
 * handed out and cleared before its pages leave, so a tag never names
 * pages another thread may be reusing.  Every allocation samples the
 * type's high-water mark.  Pages that read as zero (fresh or purged) make
 * M_ZERO free.
 *
 * Deviations from the kernel (docs/deviations.md):
 * - freed pages are retained and purged later (the kernel unmaps at
 *   kfree), and krealloc grows and shrinks in place or moves pages with
 *   mremap instead of allocating, copying and freeing;
 * - in interrupt context (slabkit_intr_enter) a freed block is queued on
 *   the shard's freeovzones and released with the free zones by the next
 *   kmalloc that may block (spec 1.6 steps 2 and 7);
 * - with hardened or track, harden.c sets large blocks up (guard pages
 *   with hardened) and frees them.
 */
#define _GNU_SOURCE
#include <string.h>

#include "kmalloc_impl.h"
#include "os/pageheap.h"

/* Large blocks mapped on their own (statistics; relaxed atomics). */
size_t sk_km_lone_bytes, sk_km_lone_count;

static inline void
lone_count(size_t bytes, long n)
{
	__atomic_fetch_add(
	    &sk_km_lone_bytes, bytes * (size_t)n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sk_km_lone_count, (size_t)n, __ATOMIC_RELAXED);
}

/* Does this block come from the page-run heap? */
static inline bool
large_on_heap(size_t bytes, size_t align)
{
	return !sk_opt.hardened && !sk_opt.track && bytes <= SK_PH_MAX_RUN &&
	       align <= SK_PH_MAX_RUN;
}

/* Statistics and contents of a new block of usable bytes. */
static void *
large_finish(struct sk_shard *sh, void *p, size_t bytes, size_t usable,
    bool zeroed, struct malloc_type *type, int flags)
{
	if (!sk_ph_owns(p))
		lone_count(bytes, 1);
	if (sh->slot == SK_SLOT_SHARED && sh->cpu < 0 && sk_tls_intr == 0 &&
	    SK_LOAD(&sk_cpu.active)) {
		/* a thread's shard with only the shared slot (more threads
		 * than slots): count on the CPU's shard, taken again for it,
		 * whose own slot takes plain adds; the shared slot's atomic
		 * adds, and the exact sum its folds take every ZoneSize,
		 * cost mstress 6% of its time */
		struct sk_shard *c = sk_kshard_get();

		sk_km_stats_alloc(type, c, bytes);
		sk_kshard_leave(c);
	} else {
		sk_km_stats_alloc(type, sh, bytes);
	}
	sk_km_maxused_note(type); /* the high-water mark, while due */
	if (flags & M_ZERO) {
		if (!zeroed)
			memset(p, 0, usable);
	} else if (SK_UNLIKELY(sk_opt.pattern)) {
		memset(p, 0xff, usable);
	}
	return p;
}

/* Give a block's pages back (no statistics), or queue them in interrupt
 * context (spec 1.6 step 2: no unmapping there). */
static void
large_release(struct sk_shard *sh, void *ptr, size_t npages)
{
	if (SK_UNLIKELY(SK_LOAD(&sk_harden_nlarge) != 0) &&
	    sk_harden_large_free(sh, &ptr, &npages))
		return; /* a guarded block, released with its guards */
	if (SK_UNLIKELY(sk_tls_intr > 0) && !sh->empty) {
		struct sk_slzone *z = ptr;

		z->z_magic = SK_OVSZ_MAGIC;
		z->z_nmax = (int32_t)npages;
		z->z_next = sh->freeovzones;
		sh->freeovzones = z;
		sk_km_set_release(sh);
		return;
	}
	if (sk_ph_owns(ptr))
		sk_ph_free_front(ptr, npages);
	else
		sk_os_unmap(ptr, npages << sk_slab.page_shift);
}

/* A block of hardened or track mode: harden.c places it and its guards
 * (right-aligned against the trailing guard in hardened mode). */
static void *
large_checked(struct sk_shard *sh, size_t size, size_t bytes, size_t align,
    struct malloc_type *type, int flags)
{
	size_t ps = sk_slab.page_size, npages = bytes >> sk_slab.page_shift;
	size_t extra = sk_harden_large_extra(align), usable = bytes;
	bool zeroed = true, heap = sk_harden_large_heap(bytes + extra);
	void *p;

	p = sk_km_backend(sh, bytes + extra, align > ps ? align : ps, flags,
	    heap ? SK_KM_HEAP : SK_KM_MAP, &zeroed);
	if (p == NULL)
		return NULL;
	/* the heap maps a block alone when it has no room for a segment */
	heap = heap && sk_ph_owns(p);
	p = sk_harden_large_setup(
	    p, size, bytes, align, extra, heap, &usable, &zeroed);
	if (p == NULL)
		return NULL;
	if (sk_pagemap_set((uintptr_t)p, (int32_t)npages) != 0) {
		large_release(sh, p, npages);
		return NULL;
	}
	return large_finish(sh, p, bytes, usable, zeroed, type, flags);
}

/*
 * A large block's pages come from the page-run heap, which has its own
 * lock, so a CPU's shard is given back before its work: a big block's
 * bzero, a purge or a mapping would keep the CPU's other threads waiting,
 * and they gave up on it (wl-mstress 1: 80 of 161 waits ran out and
 * allocated from their threads' shards; 0-24 of 87-127 since).  The
 * block is counted in the calling thread's slot, or the shared one
 * (statistics are sums over slots).  Interrupt context keeps the shard:
 * its large frees wait on the shard's list.
 */
struct sk_shard *
sk_km_large_shard(struct sk_shard *sh)
{
	if (sh->cpu < 0 || sk_tls_intr > 0)
		return sh;
	sk_kshard_leave(sh);
	return sk_tls_shard;
}

void *
sk_km_large(struct sk_shard *sh, size_t size, size_t align,
    struct malloc_type *type, int flags)
{
	size_t ps = sk_slab.page_size;
	size_t bytes = (size + ps - 1) & ~(ps - 1);
	size_t npages = bytes >> sk_slab.page_shift;
	bool zeroed = true, heap;
	void *p;

	if (bytes < size || npages > INT32_MAX) {
		if (flags & M_NULLOK)
			return NULL;
		sk_panic("kmalloc", "%s: size %zu too large",
		    type->ks_shortdesc, size);
	}
	if (SK_UNLIKELY(sk_opt.hardened || sk_opt.track))
		return large_checked(sh, size, bytes, align, type, flags);
	heap = large_on_heap(bytes, align);
	p = sk_km_backend(sh, bytes, align > ps ? align : ps, flags,
	    heap ? SK_KM_HEAP : SK_KM_MAP, &zeroed);
	if (p == NULL)
		return NULL;
	if (sk_pagemap_set((uintptr_t)p, (int32_t)npages) != 0) {
		if (sk_ph_owns(p)) /* not always when heap: see sk_km_backend */
			sk_ph_free(p, npages);
		else
			sk_os_unmap(p, bytes);
		return NULL;
	}
	return large_finish(sh, p, bytes, bytes, zeroed, type, flags);
}

/*
 * The free is counted on the shard the caller holds, a CPU's included:
 * its slot is the holder's to update with plain adds, where the thread's
 * shard of a process with more threads than CPUs often has only the
 * shared slot, whose atomic subtractions from every thread cost mstress
 * 2% of its time.  Then the CPU's shard is given back for the release.
 */
void
sk_km_large_free(struct sk_shard **shp, void *ptr, int32_t npages,
    struct malloc_type *type)
{
	size_t bytes = (size_t)npages << sk_slab.page_shift;
	struct sk_shard *sh = *shp;

	sk_pagemap_set((uintptr_t)ptr, 0);
	sk_km_stats_free(type, sh, bytes);
	*shp = sh = sk_km_large_shard(sh);
	if (!sk_ph_owns(ptr))
		lone_count(bytes, -1);
	if (SK_UNLIKELY(sk_opt.weird)) {
		uint32_t *w = ptr;

		for (int i = 0; i < 16; i++)
			w[i] = 0xdeadc0de;
	}
	large_release(sh, ptr, (size_t)npages);
}

/*
 * Large to large (spec 1.4 krealloc): a block of the heap grows into the
 * free run after it or gives its tail back, in place; a block mapped on
 * its own moves with mremap.  Either way the result is what the spec's
 * allocate-copy-free gives, without the copy.  NULL means "use the
 * ordinary path" (which then counts the call: a failed krealloc counts
 * one, row 36).
 */
void *
sk_km_large_realloc(
    void *ptr, size_t osize, size_t size, struct malloc_type *type, int flags)
{
	size_t ps = sk_slab.page_size;
	size_t bytes = (size + ps - 1) & ~(ps - 1);
	size_t on = osize >> sk_slab.page_shift;
	size_t nn = bytes >> sk_slab.page_shift;
	struct sk_shard *sh;
	bool zeroed;
	void *n;
	int why;

	if (bytes < size || size < sk_slab.zone_limit || nn > INT32_MAX ||
	    sk_opt.debug)
		return NULL;
	if (bytes > osize && !sk_km_limit_check(type, flags | M_NULLOK))
		return NULL;
	if (sk_ph_owns(ptr)) {
		if (nn > on) {
			if (!large_on_heap(bytes, 0) ||
			    !sk_ph_grow(ptr, on, nn, &zeroed))
				return NULL;
		} else if (nn < on) {
			sk_ph_shrink(ptr, on, nn);
		}
		sk_pagemap_set((uintptr_t)ptr, (int32_t)nn);
		n = ptr;
	} else {
		/*
		 * Clear the old tag first: once mremap has moved the pages,
		 * another thread may map a new block at the old address at
		 * once, and a late clear would wipe that block's tag.
		 */
		sk_pagemap_set((uintptr_t)ptr, 0);
		n = sk_os_remap(ptr, osize, bytes, &why);
		if (n == NULL) {
			sk_pagemap_set((uintptr_t)ptr, (int32_t)on);
			return NULL;
		}
		__atomic_fetch_add(
		    &sk_km_lone_bytes, bytes - osize, __ATOMIC_RELAXED);
		if (sk_pagemap_set((uintptr_t)n, (int32_t)nn) != 0)
			sk_panic("krealloc",
			    "cannot map the page-tag table (ptr %p)",
			    n); /* the old block is gone: never return it */
	}
	sh = sk_kshard_get();
	sk_km_stats_calls(type, sh);
	sk_km_stats_free(type, sh, osize);
	sk_km_stats_alloc(type, sh, bytes);
	sk_kshard_leave(sh);
	return n;
}
