/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page-run heap: whole pages for kmalloc's large blocks, the
 * userspace stand-in for the kernel's kernel_map (pageheap.c has the
 * model).  Every function may be called from any thread; none allocates
 * through malloc.
 */
#ifndef SK_PAGEHEAP_H
#define SK_PAGEHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs of at most this many bytes come from the heap; larger blocks are
 * mapped one by one (sk_os_map). */
#define SK_PH_SEGMENT	((size_t)64 << 20)
#define SK_PH_MAX_RUN	((size_t)16 << 20)

/* Set up; page size and options are read once (from sk_init). */
void sk_ph_init(void);

/*
 * npages pages aligned to align (a power of two, at least a page), or
 * NULL with *why set: SK_OS_SHORTAGE or SK_OS_EXHAUSTED for an injected
 * failure, SK_PH_NOSEG when no free run fits and no new segment could be
 * mapped (an address-space limit may refuse SK_PH_SEGMENT bytes and still
 * allow the block alone: the caller maps it on its own).  *zeroed: the
 * pages read as zero.
 */
#define SK_PH_NOSEG 3
void *sk_ph_alloc(size_t npages, size_t align, bool *zeroed, int *why);

/* Give a run back: its pages stay committed (retained) until purged. */
void sk_ph_free(void *p, size_t npages);

/* The same through the front cache (per CPU, no lock, runs of up to
 * 64 KiB; pageheap.c): kmalloc's large blocks come and go this way. */
void *sk_ph_alloc_front(size_t npages, size_t align, bool *zeroed, int *why);
void sk_ph_free_front(void *p, size_t npages);

/* Grow a run in place to newpages when the pages after it are free;
 * *zeroed says whether the added pages read as zero. */
bool sk_ph_grow(void *p, size_t npages, size_t newpages, bool *zeroed);

/* Shrink a run in place: its last npages - newpages pages go back. */
void sk_ph_shrink(void *p, size_t npages, size_t newpages);

/* Is p inside a segment of the heap?  Is it the first page of a free run
 * (a large block freed already)?  sk_ph_owns is a bit test in a map with
 * one bit per segment of the 47-bit address space (segments are never
 * unmapped), inline: every large block asks it several times. */
#define SK_PH_SEGMAP_BITS (((uintptr_t)1 << 47) / SK_PH_SEGMENT)
extern uint64_t sk_ph_segmap[SK_PH_SEGMAP_BITS / 64]; /* atomic */

static inline bool
sk_ph_owns(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	size_t b = a / SK_PH_SEGMENT;

	if (a >> 47)
		return false;
	return (__atomic_load_n(&sk_ph_segmap[b / 64], __ATOMIC_ACQUIRE) >>
	           (b % 64)) &
	       1;
}
bool sk_ph_is_free(const void *p);

/*
 * Hand retained pages back to the system: all of them (malloc_trim,
 * slab_cleanup), or those retained longer than the purge delay.  Returns
 * the bytes purged.
 */
size_t sk_ph_purge(bool all);

/* Give bytes of pages at p back the way the purge option says
 * (MADV_DONTNEED, or MADV_FREE with purge=free); 0 when done. */
int sk_ph_give_back(void *p, size_t bytes);

/*
 * The purge thread also gives back the pages of wholly free zones that
 * sat unused for the purge delay (kmalloc_zone.c owns them): purge(age,
 * all) does it and returns the bytes, waiting() says how many zones could
 * be purged.  sk_ph_kick() starts or wakes the thread when waiting() may
 * have become non-zero; sk_ph_now_ms() is the clock both sides use.
 */
void sk_ph_set_zone_purger(
    size_t (*purge)(uint32_t age_ms, bool all), size_t (*waiting)(void));
void sk_ph_kick(void);
bool sk_ph_purger_running(void);
uint32_t sk_ph_now_ms(void);

struct sk_ph_stats {
	size_t	mapped;		/* bytes of segments mapped */
	size_t	allocated;	/* bytes in runs handed out */
	size_t	retained;	/* free bytes still committed (dirty) */
	size_t	purged;		/* bytes given back since start */
	size_t	segments;
	size_t	metadata;	/* bytes of the segments' page tags */
	size_t	cached;		/* of retained: runs in the front cache */
};
void sk_ph_stats(struct sk_ph_stats *st);

/* Hold and release the heap's lock (tests: re-entry is detected). */
void sk_ph_lock(void);
void sk_ph_unlock(void);

#endif /* SK_PAGEHEAP_H */
