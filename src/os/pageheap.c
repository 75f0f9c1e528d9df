/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page-run heap: whole pages for kmalloc's large blocks (ZoneLimit and
 * up, and page multiples above two pages), the userspace stand-in for the
 * kernel's kernel_map behind kmem_slab_alloc.
 *
 * Model.  Address space comes in segments of SK_PH_SEGMENT bytes (64 MiB),
 * each aligned to its size and mapped once; pages are committed by first
 * touch.  A segment is cut into runs of pages: a run is handed out or free.
 * Each page has a tag in the segment's metadata (its first pages), and the
 * first and last page of a run carry its length, so a freed run finds its
 * neighbours in constant time and coalesces with the free ones (boundary
 * tags).  Free runs sit on per-segment lists binned by length (exact up to
 * 8 pages, then four bins per power of two), with a bitmap of non-empty
 * bins; allocation takes the first run that fits from the smallest
 * non-empty bin that can hold the request, and splits it, looking first
 * at retained runs only: their pages are committed already, so reusing
 * them costs neither a fault nor resident memory that a clean run would
 * add (the large workload's peak RSS went from 67 to 56 MB).
 *
 * Retention.  A freed run keeps its pages (it is "dirty"): the next block
 * of that size costs no system call and no page fault.  Dirty pages are
 * given back with MADV_DONTNEED (SLABKIT_OPTIONS=purge=free uses
 * MADV_FREE, purge=none never) once they have been retained for purge_ms
 * milliseconds (default 1000, read from the coarse monotonic clock, to a
 * kernel tick; checked by a small thread started with the first retained
 * run; purge_ms=0: no thread, only the budget), and at once,
 * oldest first, when more than retain_mb MiB (default 64) are retained.
 * malloc_trim and slab_cleanup purge everything.  A run that was purged
 * reads as zero, which kmalloc uses for M_ZERO.  The same thread, and the
 * same calls, give back the pages of idle wholly free zones through the
 * zone layer's hook (sk_ph_set_zone_purger; kmalloc_zone.c owns them).
 *
 * In place.  krealloc of a large block grows it into the free run after
 * it when there is one, and shrinks it by freeing its tail.
 *
 * The front cache.  kmalloc's large blocks of up to PH_FC_PAGES pages (and
 * 64 KiB) go through a cache in front of the heap (sk_ph_alloc_front,
 * sk_ph_free_front) once threads have found the heap's lock held a few
 * times (large_cache=auto; on, off): per CPU (the CPU number glibc's rseq area holds; a
 * thread whose rseq area is not registered uses a set picked by its lock
 * id), a slot pair per page count, each slot one freed run taken and
 * given with one atomic exchange and no lock.  A run in the cache is
 * still allocated as far as the heap is concerned (not coalesced, not
 * counted as free), so a cache holds at most 1 MiB and only runs it can
 * hand out again as they are.  Every look at the heap's pages for its
 * own ends (the purge thread's rounds, sk_ph_purge, sk_ph_stats,
 * sk_ph_is_free) sees cached runs as retained free runs; the purge thread
 * empties the caches into the heap each round, so a cached run goes back
 * to the system a purge delay or two after it was last used.  mstress
 * (1.5% of its blocks 16-64 KiB, 8 threads on 2 cores) spent 20% of its
 * time in the heap's lock, mostly waiting for a holder that was
 * preempted.
 *
 * One mutex guards the heap; the fork handlers hold it across fork.
 * Blocks larger than SK_PH_MAX_RUN are mapped one by one by the caller.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../internal.h"
#include "pageheap.h"

#define NBINS		64
#define PF_FREE		0x80000000u	/* tag: first/last page of a free run */
#define PF_DIRTY	0x40000000u	/* tag: that free run holds old data */
#define PF_LEN		0x3fffffffu

/* Per page: the tag (run length and flags, on the first and last page of
 * a run), and for the first page of a free run its list links and the
 * time it became dirty. */
struct ph_page {
	uint32_t tag;
	uint32_t next;		/* page index of the next free run; 0: none */
	uint32_t prev;
	uint32_t stamp;		/* ms since start, when it became dirty */
};

struct ph_seg {
	struct ph_seg *next;
	size_t	npages;		/* pages in the segment */
	size_t	first;		/* first page after the metadata */
	uint64_t binmask;	/* non-empty bins */
	uint64_t dirtymask;	/* bins holding a retained run */
	uint32_t bin[NBINS];	/* first free run of each bin */
	uint32_t ndirty[NBINS];	/* retained runs in each bin */
	struct ph_page page[];
};

static struct sk_mutex ph_lock = SK_MUTEX_INITIALIZER("page-run heap");
/* One bit per SK_PH_SEGMENT of the 47-bit address space: set when a
 * segment is mapped there (segments are never unmapped), so that
 * sk_ph_owns (pageheap.h) is a lock-free bit test on every large kfree. */
uint64_t sk_ph_segmap[SK_PH_SEGMAP_BITS / 64];
static uint32_t ph_wake; /* sk_mutex_signal: the purger looks again */
static struct ph_seg *ph_segs;
static size_t ph_ps;
static unsigned ph_shift;
static struct sk_ph_stats ph_st;	/* under ph_lock */
static bool ph_thread_started;		/* under ph_lock */
static bool ph_thread_idle;		/* atomic, written under ph_lock:
					   asleep, no timeout */
static uint64_t ph_t0;

/* The front cache (see the top).  A set per CPU, 256 bytes each. */
#define PH_FC_PAGES	16
#define PH_FC_WAYS	2
#define PH_FC_SETS	64
struct ph_fc_set {
	void	*slot[PH_FC_PAGES][PH_FC_WAYS]; /* atomic; [n - 1]: n pages */
} __attribute__((aligned(64)));
static struct ph_fc_set ph_fc[PH_FC_SETS];
static unsigned ph_fc_mask;	/* sets in use - 1 (a power of two - 1) */
static size_t ph_fc_max;	/* largest cached run, pages; 0: no cache */
static ptrdiff_t ph_rseq_off;	/* glibc's rseq area; PTRDIFF_MIN: none */
static bool ph_fc_on;		/* atomic: the lock was found held */
static unsigned ph_contended;	/* under ph_lock: times it was */
static uint32_t ph_purger_id;	/* atomic: the purge thread's lock id */

/* glibc 2.35+: where this thread's rseq area is, and its size. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

static uint32_t
ph_now_ms(void)
{
	return (uint32_t)((sk_os_now_coarse_ns() - ph_t0) / 1000000u);
}

uint32_t
sk_ph_now_ms(void)
{
	return ph_now_ms();
}

/* The zone layer's purge of idle free zones (sk_ph_set_zone_purger). */
static size_t (*ph_zpurge)(uint32_t age_ms, bool all);
static size_t (*ph_zwaiting)(void);

static inline bool
ph_zones_waiting(void)
{
	return ph_zwaiting != NULL && ph_zwaiting() != 0;
}

static unsigned
ph_bin(size_t n)
{
	unsigned lg;

	if (n < 8)
		return (unsigned)n - 1;
	lg = 63u - (unsigned)__builtin_clzl(n);
	return 7u + (lg - 3u) * 4u + (unsigned)((n >> (lg - 2)) & 3u);
}

static inline struct ph_seg *
ph_seg_of(const void *p)
{
	return (struct ph_seg *)((uintptr_t)p & ~(SK_PH_SEGMENT - 1));
}

static inline size_t
ph_index(struct ph_seg *s, const void *p)
{
	return ((uintptr_t)p - (uintptr_t)s) >> ph_shift;
}

static inline void *
ph_addr(struct ph_seg *s, size_t i)
{
	return (char *)s + (i << ph_shift);
}

static void
ph_list_add(struct ph_seg *s, size_t i, size_t n)
{
	unsigned b = ph_bin(n);

	s->page[i].prev = 0;
	s->page[i].next = s->bin[b];
	if (s->bin[b] != 0)
		s->page[s->bin[b]].prev = (uint32_t)i;
	s->bin[b] = (uint32_t)i;
	s->binmask |= (uint64_t)1 << b;
	if ((s->page[i].tag & PF_DIRTY) && s->ndirty[b]++ == 0)
		s->dirtymask |= (uint64_t)1 << b;
}

static void
ph_list_remove(struct ph_seg *s, size_t i, size_t n)
{
	unsigned b = ph_bin(n);
	struct ph_page *pg = &s->page[i];

	if (pg->prev != 0)
		s->page[pg->prev].next = pg->next;
	else
		s->bin[b] = pg->next;
	if (pg->next != 0)
		s->page[pg->next].prev = pg->prev;
	if (s->bin[b] == 0)
		s->binmask &= ~((uint64_t)1 << b);
	if ((pg->tag & PF_DIRTY) && --s->ndirty[b] == 0)
		s->dirtymask &= ~((uint64_t)1 << b);
}

/* Tag pages [i, i + n) as one run. */
static inline void
ph_tag(struct ph_seg *s, size_t i, size_t n, uint32_t flags)
{
	s->page[i].tag = (uint32_t)n | flags;
	s->page[i + n - 1].tag = (uint32_t)n | flags;
}

/*
 * Insert the free run [i, i + n), coalescing with free neighbours of the
 * same kind (dirty runs with dirty ones, purged with purged ones: a merge
 * would either hide retained pages or purge clean ones again), and keep
 * ph_st.retained the bytes of all dirty free runs.
 */
static void
ph_insert_free(struct ph_seg *s, size_t i, size_t n, bool dirty,
    uint32_t stamp)
{
	uint32_t kind = dirty ? PF_FREE | PF_DIRTY : PF_FREE;

	if (dirty)
		ph_st.retained += n << ph_shift;
	if (i > s->first &&
	    (s->page[i - 1].tag & (PF_FREE | PF_DIRTY)) == kind) {
		size_t m = s->page[i - 1].tag & PF_LEN;

		ph_list_remove(s, i - m, m);
		i -= m;
		n += m;
		if (s->page[i].stamp > stamp)
			stamp = s->page[i].stamp;
	}
	if (i + n < s->npages &&
	    (s->page[i + n].tag & (PF_FREE | PF_DIRTY)) == kind) {
		size_t m = s->page[i + n].tag & PF_LEN;

		ph_list_remove(s, i + n, m);
		if (s->page[i + n].stamp > stamp)
			stamp = s->page[i + n].stamp;
		n += m;
	}
	ph_tag(s, i, n, kind);
	s->page[i].stamp = stamp;
	ph_list_add(s, i, n);
}

static struct ph_seg *
ph_seg_new(int *why)
{
	struct ph_seg *s = sk_os_map(SK_PH_SEGMENT, SK_PH_SEGMENT, why);
	size_t np = SK_PH_SEGMENT >> ph_shift, meta;

	if (s == NULL)
		return NULL;
	meta = (sizeof(*s) + np * sizeof(struct ph_page) + ph_ps - 1) >>
	    ph_shift;
	s->npages = np;
	s->first = meta;
	ph_tag(s, 0, meta, 0); /* the metadata: a run never freed */
	ph_insert_free(s, meta, np - meta, false, 0);
	s->next = ph_segs;
	ph_segs = s;
	{
		size_t b = (uintptr_t)s / SK_PH_SEGMENT;

		__atomic_fetch_or(&sk_ph_segmap[b / 64],
		    (uint64_t)1 << (b % 64), __ATOMIC_RELEASE);
	}
	ph_st.mapped += SK_PH_SEGMENT;
	ph_st.segments++;
	ph_st.metadata += meta << ph_shift;
	return s;
}

/* A free run of s that holds n pages at alignment a (in pages); its start
 * in *start, the run's first page returned (0: none).  With dirty, only
 * runs that hold retained pages. */
static size_t
ph_find(struct ph_seg *s, size_t n, size_t a, size_t *start, bool dirty)
{
	/* with dirty, only the bins that hold a retained run (the walk
	 * past purged runs was a third of sk_ph_alloc in mstress) */
	uint64_t mask = (dirty ? s->dirtymask : s->binmask) &
	                ~(((uint64_t)1 << ph_bin(n)) - 1);

	while (mask != 0) {
		unsigned b = (unsigned)__builtin_ctzll(mask);

		for (uint32_t i = s->bin[b]; i != 0; i = s->page[i].next) {
			size_t len = s->page[i].tag & PF_LEN;
			size_t at = (i + a - 1) & ~(a - 1);

			if (dirty && !(s->page[i].tag & PF_DIRTY))
				continue;
			if (at + n <= i + len) {
				*start = at;
				return i;
			}
		}
		mask &= mask - 1;
	}
	return 0;
}

/*
 * The lock, from an allocation or a free: a program whose threads found
 * it held PH_FC_CONTENDED times gets the front cache from then on; one
 * that never waits keeps every run on the heap, where it coalesces and
 * grows in place (realloc-growth, one thread: peak RSS 14.6 MiB without
 * the cache, 15.7 MiB with it).
 */
#define PH_FC_CONTENDED 16
static inline void
ph_lock_noting(void)
{
	uint32_t holder;

	if (SK_LIKELY(sk_mutex_trylock(&ph_lock, &holder)))
		return;
	sk_mutex_lock(&ph_lock);
	/* the purge thread's rounds do not count: a program with one
	 * thread meets them now and then */
	if ((holder & SK_MUTEX_ID) != SK_LOAD(&ph_purger_id) &&
	    ++ph_contended == PH_FC_CONTENDED)
		SK_STORE(&ph_fc_on, true);
}

/* Injected failures hit every allocation, as they hit every zone: to a
 * caller, retained pages (and cached runs) are memory the system might not
 * have given (the M_WAITOK and M_RNOWAIT rules of spec 1.7 stay
 * testable). */
static inline bool
ph_injected(int *why)
{
	if (sk_os_fault_check(SLABKIT_FAULT_MAP)) {
		*why = SK_OS_SHORTAGE;
		return true;
	}
	if (sk_os_fault_check(SLABKIT_FAULT_MAP_EXHAUST)) {
		*why = SK_OS_EXHAUSTED;
		return true;
	}
	return false;
}

void *
sk_ph_alloc(size_t npages, size_t align, bool *zeroed, int *why)
{
	size_t a = align > ph_ps ? align >> ph_shift : 1;
	struct ph_seg *s;
	size_t i = 0, at = 0, len;
	uint32_t tag, stamp;

	if (ph_injected(why))
		return NULL;
	ph_lock_noting();
	/* retained pages first: they cost no fault and no new memory */
	s = NULL;
	if (ph_st.retained >= npages << ph_shift)
		for (s = ph_segs; s != NULL; s = s->next)
			if ((i = ph_find(s, npages, a, &at, true)) != 0)
				break;
	if (s == NULL)
		for (s = ph_segs; s != NULL; s = s->next)
			if ((i = ph_find(s, npages, a, &at, false)) != 0)
				break;
	if (s == NULL) {
		if ((s = ph_seg_new(why)) == NULL) {
			sk_mutex_unlock(&ph_lock);
			*why = SK_PH_NOSEG;
			return NULL;
		}
		i = ph_find(s, npages, a, &at, false);
	}
	tag = s->page[i].tag;
	len = tag & PF_LEN;
	stamp = s->page[i].stamp;
	ph_list_remove(s, i, len);
	if (tag & PF_DIRTY)
		ph_st.retained -= len << ph_shift;
	/* tag the run first: the pieces before and after it, which go back
	 * as they were, look at its tags for neighbours */
	ph_tag(s, at, npages, 0);
	if (at > i)
		ph_insert_free(s, i, at - i, (tag & PF_DIRTY) != 0, stamp);
	if (at + npages < i + len)
		ph_insert_free(s, at + npages, i + len - at - npages,
		    (tag & PF_DIRTY) != 0, stamp);
	ph_st.allocated += npages << ph_shift;
	/* purged with MADV_FREE, pages may come back with old data */
	*zeroed = !(tag & PF_DIRTY) && sk_opt.purge != 1;
	sk_mutex_unlock(&ph_lock);
	return ph_addr(s, at);
}

static void *ph_thread(void *arg);

/*
 * ThreadSanitizer cannot follow a fork of a process with threads into a
 * child that starts threads of its own, so its builds keep no purge
 * thread: retained pages go back beyond the budget and on malloc_trim.
 */
static inline bool
ph_thread_allowed(void)
{
#ifdef SLABKIT_TSAN
	return false;
#else
	return true;
#endif
}

int
sk_ph_give_back(void *p, size_t bytes)
{
	if (sk_opt.purge == 1) {
		madvise(p, bytes, MADV_FREE);
		return 0;
	}
	return sk_os_decommit(p, bytes);
}

/* Under ph_lock: purge dirty runs, oldest first, until at most `keep'
 * bytes stay retained; only runs older than `age' ms when age > 0. */
static size_t
ph_purge_locked(size_t keep, uint32_t age)
{
	uint32_t now = ph_now_ms();
	size_t done = 0;

	while (ph_st.retained > keep) {
		struct ph_seg *bs = NULL;
		size_t bi = 0;
		uint32_t best = 0;

		/* the oldest dirty run (walk the free lists that hold one) */
		for (struct ph_seg *s = ph_segs; s != NULL; s = s->next) {
			uint64_t mask = s->dirtymask;

			while (mask != 0) {
				unsigned b = (unsigned)__builtin_ctzll(mask);

				mask &= mask - 1;
				for (uint32_t i = s->bin[b]; i != 0;
				     i = s->page[i].next) {
					if (!(s->page[i].tag & PF_DIRTY))
						continue;
					if (bs == NULL ||
					    s->page[i].stamp < best) {
						bs = s;
						bi = i;
						best = s->page[i].stamp;
					}
				}
			}
		}
		if (bs == NULL || (age > 0 && now - best < age))
			break;
		{
			size_t len = bs->page[bi].tag & PF_LEN;
			void *p = ph_addr(bs, bi);
			size_t bytes = len << ph_shift;

			if (sk_opt.purge == 2)
				break; /* purge=none */
			if (sk_ph_give_back(p, bytes) != 0)
				break; /* keep it dirty; try again later */
			ph_list_remove(bs, bi, len);
			ph_st.retained -= bytes;
			ph_insert_free(bs, bi, len, false, 0);
			ph_st.purged += bytes;
			done += bytes;
		}
	}
	return done;
}

/* Under ph_lock: start the purge thread (true: the caller starts it, once
 * it has let go of the lock) or wake it when it sleeps without a timeout. */
static bool
ph_thread_wanted(void)
{
	if (!ph_thread_started && ph_thread_allowed() && sk_opt.purge_ms > 0 &&
	    sk_opt.purge != 2) {
		SK_STORE(&ph_thread_started, true);
		return true;
	}
	if (SK_LOAD(&ph_thread_idle)) {
		/* only an idle purger needs waking: a busy one looks again
		 * by itself every purge_ms / 2 */
		SK_STORE(&ph_thread_idle, false);
		sk_mutex_signal(&ph_wake);
	}
	return false;
}

static void
ph_thread_start(void)
{
	pthread_t t;
	pthread_attr_t at;
	sigset_t all, old;
	int rc;

	/* the purger holds the lock while it purges: a signal handler of
	 * the program that allocates must never run on it (it would find
	 * the lock held by its own thread) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &at, ph_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		sk_mutex_lock(&ph_lock);
		SK_STORE(&ph_thread_started, false);
		sk_mutex_unlock(&ph_lock);
	}
	pthread_attr_destroy(&at);
}

void
sk_ph_free(void *p, size_t npages)
{
	struct ph_seg *s = ph_seg_of(p);
	size_t i = ph_index(s, p);
	uint32_t now = ph_now_ms(); /* read outside the lock */
	bool start;

	ph_lock_noting();
	ph_st.allocated -= npages << ph_shift;
	ph_insert_free(s, i, npages, true, now);
	if (ph_st.retained > sk_opt.retain_mb << 20)
		ph_purge_locked((sk_opt.retain_mb << 20) / 2, 0);
	start = ph_st.retained > 0 && ph_thread_wanted();
	sk_mutex_unlock(&ph_lock);
	if (start)
		ph_thread_start();
}

void
sk_ph_set_zone_purger(
    size_t (*purge)(uint32_t age_ms, bool all), size_t (*waiting)(void))
{
	sk_mutex_lock(&ph_lock);
	ph_zpurge = purge;
	ph_zwaiting = waiting;
	sk_mutex_unlock(&ph_lock);
}

void
sk_ph_kick(void)
{
	bool start;

	/* no purge thread in this configuration: no lock to take */
	if (!ph_thread_allowed() || sk_opt.purge_ms <= 0 || sk_opt.purge == 2)
		return;
	sk_mutex_lock(&ph_lock);
	start = ph_thread_wanted();
	sk_mutex_unlock(&ph_lock);
	if (start)
		ph_thread_start();
}

bool
sk_ph_purger_running(void)
{
	return SK_LOAD(&ph_thread_started);
}

/* ------------------------------------------------------------------ */
/* The front cache (see the top) */

/* This thread's set: its CPU's, or one picked by its lock id. */
static inline struct ph_fc_set *
ph_fc_here(void)
{
	uint32_t id;

	if (ph_rseq_off != PTRDIFF_MIN) {
		int32_t cpu = __atomic_load_n(
		    (int32_t *)((char *)__builtin_thread_pointer() +
		                ph_rseq_off + SK_RSEQ_CPU_ID),
		    __ATOMIC_RELAXED);

		if (cpu >= 0)
			return &ph_fc[(unsigned)cpu & ph_fc_mask];
	}
	id = sk_tls_lockid;
	if (id == 0)
		id = sk_mutex_id_slow();
	return &ph_fc[id & ph_fc_mask];
}

static inline bool
ph_fc_usable(size_t npages)
{
	int mode = SK_LOAD(&sk_opt.large_cache);

	return npages - 1 < ph_fc_max &&
	       (mode == 1 || (mode == 0 && SK_LOAD(&ph_fc_on))) &&
	       !sk_opt.hardened && !sk_opt.track;
}

void *
sk_ph_alloc_front(size_t npages, size_t align, bool *zeroed, int *why)
{
	if (ph_fc_usable(npages) && align <= ph_ps) {
		void **w = ph_fc_here()->slot[npages - 1];

		if (ph_injected(why))
			return NULL;
		for (int k = 0; k < PH_FC_WAYS; k++) {
			void *p;

			if (SK_LOAD(&w[k]) == NULL)
				continue;
			p = __atomic_exchange_n(&w[k], NULL, __ATOMIC_ACQUIRE);
			if (p != NULL) {
				*zeroed = false;
				return p;
			}
		}
	}
	return sk_ph_alloc(npages, align, zeroed, why);
}

void
sk_ph_free_front(void *p, size_t npages)
{
	if (ph_fc_usable(npages)) {
		void **w = ph_fc_here()->slot[npages - 1];

		for (int k = 0; k < PH_FC_WAYS; k++) {
			void *none = NULL;

			if (SK_LOAD(&w[k]) != NULL ||
			    !__atomic_compare_exchange_n(&w[k], &none, p, false,
			        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
				continue;
			/* a purge thread asleep (or not yet started) must
			 * come to empty the cache one day */
			if (!SK_LOAD(&ph_thread_started) ||
			    __atomic_load_n(&ph_thread_idle, __ATOMIC_SEQ_CST))
				sk_ph_kick();
			return;
		}
	}
	sk_ph_free(p, npages);
}

/* body runs for every slot q of every set, n: the slot's run length */
#define PH_FC_EACH(q, n, body)                                                 \
	for (unsigned set_ = 0; set_ <= ph_fc_mask; set_++)                    \
		for (size_t n = 1; n <= ph_fc_max; n++)                        \
			for (int way_ = 0; way_ < PH_FC_WAYS; way_++) {        \
				void **q = &ph_fc[set_].slot[n - 1][way_];     \
				body                                           \
			}

static bool
ph_fc_any(void)
{
	PH_FC_EACH(q, n, {
		(void)n;
		if (__atomic_load_n(q, __ATOMIC_SEQ_CST) != NULL)
			return true;
	})
	return false;
}

static size_t
ph_fc_bytes(void)
{
	size_t b = 0;

	PH_FC_EACH(q, n, {
		if (SK_LOAD(q) != NULL)
			b += n << ph_shift;
	})
	return b;
}

/* Is p inside a cached run (freed, so a kfree of it is a double free)? */
static bool
ph_fc_holds(const void *p)
{
	PH_FC_EACH(q, n, {
		char *r = SK_LOAD(q);

		if (r != NULL && (const char *)p >= r &&
		    (const char *)p < r + (n << ph_shift))
			return true;
	})
	return false;
}

/* Under ph_lock: every cached run back to the heap as a retained run. */
static void
ph_fc_flush_locked(void)
{
	uint32_t now = ph_now_ms();

	PH_FC_EACH(q, n, {
		void *r;

		if (SK_LOAD(q) == NULL ||
		    (r = __atomic_exchange_n(q, NULL, __ATOMIC_ACQUIRE)) ==
		        NULL)
			continue;
		ph_st.allocated -= n << ph_shift;
		ph_insert_free(ph_seg_of(r), ph_index(ph_seg_of(r), r), n,
		    true, now);
	})
}

/* The purge thread: wakes every purge_ms / 2 while pages are retained. */
static void *
ph_thread(void *arg)
{
	(void)arg;
	sk_mutex_lock(&ph_lock);
	SK_STORE(&ph_purger_id, sk_tls_lockid);
	for (;;) {
		long ms = sk_opt.purge_ms > 1 ? sk_opt.purge_ms / 2 : 1;

		if (ph_st.retained == 0 && !ph_zones_waiting()) {
			/* idle first, then look at the caches: a run cached
			 * after the look finds the flag set and wakes us
			 * (sk_ph_free_front) */
			__atomic_store_n(&ph_thread_idle, true, __ATOMIC_SEQ_CST);
			if (!ph_fc_any()) {
				sk_mutex_wait(&ph_lock, &ph_wake, -1);
				SK_STORE(&ph_thread_idle, false);
				continue;
			}
			SK_STORE(&ph_thread_idle, false);
		}
		sk_mutex_wait(&ph_lock, &ph_wake, ms);
		/* cached runs join the retained ones, to be purged with them
		 * a purge delay from now unless taken again first */
		ph_fc_flush_locked();
		if (sk_opt.purge_ms > 0 && sk_opt.purge != 2) {
			ph_purge_locked(0, (uint32_t)sk_opt.purge_ms);
			if (ph_zones_waiting()) {
				/* the zone arena's lock is never taken under
				 * this one */
				sk_mutex_unlock(&ph_lock);
				ph_zpurge((uint32_t)sk_opt.purge_ms, false);
				sk_mutex_lock(&ph_lock);
			}
		}
	}
	return NULL;
}

bool
sk_ph_grow(void *p, size_t npages, size_t newpages, bool *zeroed)
{
	struct ph_seg *s = ph_seg_of(p);
	size_t i = ph_index(s, p), j = i + npages, need = newpages - npages;
	bool ok = false;

	sk_mutex_lock(&ph_lock);
	if (j < s->npages && (s->page[j].tag & PF_FREE) &&
	    (s->page[j].tag & PF_LEN) >= need) {
		uint32_t tag = s->page[j].tag, stamp = s->page[j].stamp;
		size_t len = tag & PF_LEN;

		ph_list_remove(s, j, len);
		if (tag & PF_DIRTY)
			ph_st.retained -= len << ph_shift;
		ph_tag(s, i, newpages, 0);
		if (len > need)
			ph_insert_free(s, j + need, len - need,
			    (tag & PF_DIRTY) != 0, stamp);
		ph_st.allocated += need << ph_shift;
		*zeroed = !(tag & PF_DIRTY) && sk_opt.purge != 1;
		ok = true;
	}
	sk_mutex_unlock(&ph_lock);
	return ok;
}

void
sk_ph_shrink(void *p, size_t npages, size_t newpages)
{
	struct ph_seg *s = ph_seg_of(p);
	size_t i = ph_index(s, p);

	sk_mutex_lock(&ph_lock);
	ph_tag(s, i, newpages, 0);
	ph_st.allocated -= (npages - newpages) << ph_shift;
	ph_insert_free(s, i + newpages, npages - newpages, true, ph_now_ms());
	sk_mutex_unlock(&ph_lock);
}

bool
sk_ph_is_free(const void *p)
{
	struct ph_seg *s = ph_seg_of(p);
	bool isfree = false;

	if (((uintptr_t)p & (ph_ps - 1)) != 0 || !sk_ph_owns(p))
		return false;
	if (ph_fc_holds(p))
		return true;
	sk_mutex_lock(&ph_lock);
	{
		size_t i = ph_index(s, p);

		/* inside a free run: walk runs from the first page */
		for (size_t k = s->first; k < s->npages;
		     k += s->page[k].tag & PF_LEN) {
			uint32_t t = s->page[k].tag;

			if ((t & PF_LEN) == 0)
				break;
			if (i >= k && i < k + (t & PF_LEN)) {
				isfree = (t & PF_FREE) != 0;
				break;
			}
		}
	}
	sk_mutex_unlock(&ph_lock);
	return isfree;
}

size_t
sk_ph_purge(bool all)
{
	size_t n;

	sk_mutex_lock(&ph_lock);
	ph_fc_flush_locked();
	n = ph_purge_locked(0, all ? 0 : (uint32_t)sk_opt.purge_ms);
	sk_mutex_unlock(&ph_lock);
	if (ph_zones_waiting() && sk_opt.purge != 2)
		n += ph_zpurge(all ? 0 : (uint32_t)sk_opt.purge_ms, all);
	return n;
}

void
sk_ph_stats(struct sk_ph_stats *st)
{
	size_t cached;

	sk_mutex_lock(&ph_lock);
	*st = ph_st;
	sk_mutex_unlock(&ph_lock);
	/* cached runs are free and committed: retained, to a reader */
	cached = ph_fc_bytes();
	if (cached > st->allocated)
		cached = st->allocated;
	st->allocated -= cached;
	st->retained += cached;
	st->cached = cached;
}

void
sk_ph_lock(void)
{
	sk_mutex_lock(&ph_lock);
}

void
sk_ph_unlock(void)
{
	sk_mutex_unlock(&ph_lock);
}

static void
ph_prefork(void)
{
	sk_mutex_lock(&ph_lock);
}

static void
ph_postfork_parent(void)
{
	sk_mutex_unlock(&ph_lock);
}

static void
ph_postfork_child(void)
{
	/* the purge thread did not come along: start afresh */
	SK_STORE(&ph_thread_started, false);
	SK_STORE(&ph_thread_idle, false);
	SK_STORE(&ph_wake, 0u);
	sk_mutex_unlock(&ph_lock);
}

void
sk_ph_init(void)
{
	ph_ps = sk_os_page_size();
	ph_shift = sk_os_page_shift();
	ph_t0 = sk_os_now_coarse_ns();
	{
		unsigned sets = 1;
		int ncpu = sk_os_ncpus();

		while (sets < (unsigned)ncpu && sets < PH_FC_SETS)
			sets *= 2;
		ph_fc_mask = sets - 1;
	}
	ph_rseq_off = PTRDIFF_MIN;
	if (&__rseq_offset != NULL && &__rseq_size != NULL &&
	    __rseq_size >= 8)
		ph_rseq_off = __rseq_offset;
	ph_fc_max = ((size_t)64 << 10) >> ph_shift;
	if (ph_fc_max > PH_FC_PAGES)
		ph_fc_max = PH_FC_PAGES;
	sk_os_atfork(ph_prefork, ph_postfork_parent, ph_postfork_child);
}
