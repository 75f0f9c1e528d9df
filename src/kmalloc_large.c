/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc's large blocks (spec 1.4 step 6): requests of ZoneLimit bytes
 * or more, and page multiples above two pages, get whole pages mapped for
 * the block alone, aligned to a page or to the alignment asked for.
 *
 * A large block has no header: the page tag of its first page (pagemap.c,
 * > 0) holds its page count, which is all kfree, kmalloc_usable_size and
 * krealloc need.  The tag is set before the block is handed out and
 * cleared before its pages leave (unmapped, cached or moved), so a tag
 * never names pages another thread may be mapping.  The statistics count
 * whole pages; every mapped allocation samples the type's high-water mark.
 * Fresh pages are zero, so M_ZERO costs nothing there.
 *
 * Deviations from the kernel (README "Deviations"):
 * - the large-block cache: a shard keeps a few recently freed blocks
 *   mapped and hands them to its next large allocations (see lcache_get);
 * - krealloc of a large block to a large size moves its pages with
 *   mremap instead of allocating, copying and freeing;
 * - in interrupt context (slabkit_intr_enter) a freed block is queued on
 *   the shard's freeovzones and unmapped with the free zones by the next
 *   kmalloc that may block (spec 1.6 steps 2 and 7);
 * - with hardened or track, harden.c sets large blocks up (guard pages
 *   with hardened) and frees them.
 */
#define _GNU_SOURCE
#include <string.h>

#include "kmalloc_impl.h"

/* ------------------------------------------------------------------ */
/* The large-block cache */

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
void
sk_km_lcache_trim(struct sk_shard *sh, size_t keep)
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
		sk_km_lcache_trim(sh, SK_LCACHE_BUDGET - bytes);
	sh->lcache[sh->lcache_n].p = p;
	sh->lcache[sh->lcache_n].npages = npages;
	sh->lcache_n++;
	sh->lcache_bytes += bytes;
	return true;
}

/* ------------------------------------------------------------------ */
/* Large blocks: kmalloc, kfree, krealloc */

void *
sk_km_large(struct sk_shard *sh, size_t size, size_t align,
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
		sk_panic("kmalloc", "%s: size %zu too large",
		    type->ks_shortdesc, size);
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
		sk_km_stats_alloc(type, sh, bytes);
		return p;
	}
	if (SK_UNLIKELY(sk_opt.hardened))
		guards = sk_harden_large_extra(align);
	p = sk_km_backend(
	    sh, bytes + guards, align > ps ? align : ps, flags, NULL);
	if (p == NULL)
		return NULL;
	if (SK_UNLIKELY(sk_opt.hardened || sk_opt.track))
		p = sk_harden_large_setup(p, bytes, align, guards);
	if (sk_pagemap_set((uintptr_t)p, (int32_t)npages) != 0) {
		sk_harden_large_unmap(p, bytes);
		return NULL;
	}
	sk_km_stats_alloc(type, sh, bytes);
	{
		struct kmalloc_type_stats st;

		sk_type_sum(type, &st); /* high-water mark */
	}
	/* Fresh pages are zero: M_ZERO needs no bzero (spec 1.4 step 6). */
	if (SK_UNLIKELY(sk_opt.pattern) && !(flags & M_ZERO))
		memset(p, 0xff, bytes);
	return p;
}

void
sk_km_large_free(
    struct sk_shard *sh, void *ptr, int32_t npages, struct malloc_type *type)
{
	size_t bytes = (size_t)npages << sk_slab.page_shift;

	sk_pagemap_set((uintptr_t)ptr, 0);
	sk_km_stats_free(type, sh, bytes);
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
		sk_km_set_release(sh);
		return;
	}
	if (!sk_opt.debug && !sk_opt.track && lcache_put(sh, ptr, npages))
		return;
	sk_os_unmap(ptr, bytes);
}

/*
 * Large to large: let the kernel move the pages (mremap) instead of
 * copying them.  The result is what the spec's allocate-copy-free gives,
 * without the copy; NULL means "use the ordinary path".
 */
void *
sk_km_large_realloc(
    void *ptr, size_t osize, size_t size, struct malloc_type *type, int flags)
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
	sk_km_stats_calls(type, sh);
	if (bytes > osize && !sk_km_limit_check(type, flags | M_NULLOK))
		return NULL;
	/*
	 * Clear the old tag first: once mremap has moved the pages, another
	 * thread may map a new block at the old address at once, and a late
	 * clear would wipe that block's tag.
	 */
	sk_pagemap_set((uintptr_t)ptr, 0);
	n = sk_os_remap(ptr, osize, bytes, &why);
	if (n == NULL) {
		sk_pagemap_set(
		    (uintptr_t)ptr, (int32_t)(osize >> sk_slab.page_shift));
		return NULL;
	}
	if (sk_pagemap_set(
	        (uintptr_t)n, (int32_t)(bytes >> sk_slab.page_shift)) != 0)
		sk_panic("krealloc", "cannot map the page-tag table (ptr %p)",
		    n); /* the old block is gone: never return it */
	sk_km_stats_free(type, sh, osize);
	sk_km_stats_alloc(type, sh, bytes);
	return n;
}
