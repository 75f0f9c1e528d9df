/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * objcache: DragonFly BSD's object cache (kern_objcache.c) in userspace.
 *
 * Model.  A cache hands out objects in their constructed state.  In front
 * of the backend (the constructing allocator: kmalloc through
 * objcache_malloc_alloc, or the caller's own) sit two layers, after
 * Bonwick and Adams: per shard (the kernel's CPU, a thread here, see
 * shard.c) a `loaded' and a `previous' magazine, each a stack of object
 * pointers; behind them one depot per cache with lists of full and empty
 * magazines under a mutex.  objcache_get pops from loaded (LIFO, so the
 * object most recently put is the one handed out, still warm); when
 * loaded is empty and previous has any rounds it swaps the two; then it
 * trades its empty magazine for a full one at the depot; only when the
 * depot has no full magazine does it ask the backend and run the
 * constructor (spec 2.3).  objcache_put is the mirror image (spec 2.4):
 * push, swap when previous is not full, trade a full magazine for an
 * empty one, and when the depot has no empty magazine left destroy the
 * object (dtor, then the backend's free): the magazine population is
 * fixed at creation and never grows on demand.
 *
 * Per-shard state is an array in each cache indexed by the shard's
 * statistics slot.  A slot below SK_SLOT_SHARED belongs to exactly one
 * live thread, so its magazines need no lock and no atomic
 * read-modify-write: a get or put on a loaded magazine is an index and a
 * pointer move.  Every entry starts at a static dummy whose magazines have
 * no rounds and no capacity, so the fast path has no "first use?" test: it
 * simply misses and the slow path attaches the slot's own pair.  Shards
 * that share the last slot (beyond SK_SLOT_SHARED live threads), and a
 * thread that has no shard, bypass the magazines and use the depot under
 * its lock, one object at a time.
 *
 * Budget.  A cache with a cluster_limit allows at most
 * ncpus * mag_capacity * 2 + cluster_limit objects alive at once (the
 * first term is slack for objects held in per-shard magazines).  When the
 * budget is spent, M_WAITOK without M_NULLOK sleeps on the depot until a
 * put, objcache_dtor, reclaim, failed allocation or limit change returns
 * some; everything else returns NULL.  This is the one place where
 * objcache blocks on a limit (kmalloc panics instead).  The first time a
 * cache hits its limit it says so once ("Exhausted!").
 *
 * Invariants.
 * - A cached object is constructed; the constructor runs only on objects
 *   fresh from the backend, the destructor only when an object leaves the
 *   cache (put overflow, objcache_dtor, reclaim, reaper, destroy), exactly
 *   once.
 * - Every object alive is either outstanding (handed out) or in exactly
 *   one magazine, which is either attached to a slot or on a depot list.
 * - A slot's magazines are touched only by the thread that owns the slot
 *   (or, at destroy, by the caller, after every user is gone).  When a
 *   thread exits, its shard's exit hook returns both magazines to the
 *   depot (non-empty ones on the full list), so nothing is stranded; the
 *   next thread to adopt the slot takes a pair back from the depot.
 * - Lock order: the cache list (a mutex: a glibc rwlock cannot be
 *   unlocked in a forked child), then a depot mutex.  No kmalloc
 *   is ever called with a depot mutex or the list write lock held, because
 *   kmalloc's M_WAITOK shortage path calls back into objcache reclaim.
 *
 * Promises.  Alignment is the backend's.  Every call may be made from any
 * thread; objcache_get may block as described, and the backend may block
 * as kmalloc M_WAITOK does; nothing here is async-signal-safe (a handler
 * interrupting the owner in the middle of a magazine move would corrupt
 * it).  A destructor must not create or destroy object caches.
 *
 * Deviations from DragonFly (docs/deviations.md).
 * - Per-slot magazine pairs are allocated on a slot's first use, not for
 *   every CPU at creation, and a thread's pair goes back to the depot when
 *   it exits; the population is otherwise as fixed as the kernel's.
 * - The kernel wakes sleepers from the put fast path only for a waiter on
 *   the same CPU.  A thread here is its own CPU and a sleeping thread never
 *   puts, so instead a put that sees sleepers routes its object to the
 *   depot (and wakes them) rather than into its own magazine.
 * - objcache_reclaimlist prints its banner only with
 *   SLABKIT_OPTIONS=verbose; reclaim also runs from kmalloc's M_WAITOK
 *   page-shortage path (the kernel has no such hook).
 * - objcache_set_cluster_limit (whose kernel code was not read) moves the
 *   budget by the change of the limit.
 * - Magazine capacity is the formula of the version read, clamped to
 *   [4, 128], without the later rounding to whole cache lines.
 * - Beyond the kernel: an optional working-set reaper (objcache_reaper_set,
 *   off by default) trims full depot magazines left unused for a whole
 *   interval, as Bonwick and Adams' depot does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "track.h"

static MALLOC_DEFINE(M_OBJCACHE, "objcache", "Object Cache");
static MALLOC_DEFINE(M_OBJMAG, "objcache magazine", "Object Cache Magazine");

#define INITIAL_MAG_CAPACITY  64 /* spec 2.2 step 1: default 2x this */
#define MAGAZINE_CAPACITY_MIN 4  /* spec 2.2 step 2 */
#define MAGAZINE_CAPACITY_MAX 128

struct oc_magazine {
	int rounds;
	int capacity;
	struct oc_magazine *next;
	void *objects[];
};

struct oc_maglist {
	struct oc_magazine *head;
	int count;
};

/*
 * One slot's magazines.  loaded and previous belong to the slot's owner
 * thread; gets and puts are owner-only counters read by statistics.
 */
struct oc_percpu {
	struct oc_magazine *loaded;
	struct oc_magazine *previous;
	uint64_t gets; /* atomic: successful gets */
	uint64_t puts; /* atomic */
} SK_ALIGNED(SK_CACHELINE);

struct oc_depot {
	pthread_mutex_t lock;
	pthread_cond_t wait;    /* getters blocked on the budget */
	struct oc_maglist full; /* rounds > 0, possibly not full */
	struct oc_maglist empty;
	int magcapacity;
	bool unlimited;
	long unallocated; /* budget left (limited caches) */
	int waiting;      /* sleepers on `wait' */
	int full_min;     /* reaper: fewest full since last pass */
};

struct objcache {
	/* Read by every get and put. */
	struct oc_percpu *percpu[SK_NSLOTS]; /* atomic: set by owner */
	int waiters;                         /* atomic: copy of depot.waiting */
	char *name;
	objcache_ctor_fn *ctor;
	objcache_dtor_fn *dtor;
	void *privdata;
	objcache_alloc_fn *alloc;
	objcache_free_fn *free;
	void *allocator_args;
	struct objcache_malloc_args margs; /* for the _simple/_mbacked */
	int cluster_limit; /* atomic: written under depot.lock */
	int ncpus;
	bool exhausted_warned; /* under depot.lock */
	struct objcache *next; /* under oc_list_lock */
	/* Slow-path counters (atomic adds). */
	uint64_t nalloc;      /* objects allocated and constructed */
	uint64_t nfreed;      /* objects destructed and freed */
	uint64_t nfailed;     /* gets that returned NULL */
	uint64_t nexhausted;  /* gets that found the budget spent */
	uint64_t ndtor;       /* objcache_dtor calls */
	uint64_t shared_gets; /* gets and puts through the depot only */
	uint64_t shared_puts;
	int nmags; /* magazines alive */
	struct oc_depot depot SK_ALIGNED(SK_CACHELINE);
};

/* The magazine and slot every entry starts at: no rounds, no room. */
static struct oc_magazine oc_dummy_mag = {.rounds = 0, .capacity = 0};
static struct oc_percpu oc_dummy_pc = {
    .loaded = &oc_dummy_mag,
    .previous = &oc_dummy_mag,
};

static pthread_mutex_t oc_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct objcache *oc_list;
static struct sk_once oc_once = SK_ONCE_INITIALIZER("objcache set-up");
static __thread int oc_in_reclaim;

#define OC_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

static void oc_init_once(void);

/* ------------------------------------------------------------------ */
/* Sizing (spec 2.2) */

void
sk_objcache_sizing(
    int ncpus, int cluster_limit, int nom_cache, struct sk_oc_sizing *sz)
{
	int cap;

	if (nom_cache == 0)
		nom_cache = cluster_limit / 2;
	if (cluster_limit != 0 && nom_cache > cluster_limit)
		nom_cache = cluster_limit;
	if (nom_cache == 0)
		nom_cache = INITIAL_MAG_CAPACITY * 2;
	cap = nom_cache / (ncpus + 1) / 2 + 1;
	if (cap < MAGAZINE_CAPACITY_MIN)
		cap = MAGAZINE_CAPACITY_MIN;
	if (cap > MAGAZINE_CAPACITY_MAX)
		cap = MAGAZINE_CAPACITY_MAX;
	sz->nom_cache = nom_cache;
	sz->mag_capacity = cap;
	sz->budget =
	    cluster_limit == 0 ? -1 : (long)ncpus * cap * 2 + cluster_limit;
	sz->nmagdepot = nom_cache / cap + 1;
	if (sz->nmagdepot < 2)
		sz->nmagdepot = 2;
}

/* ------------------------------------------------------------------ */
/* Magazines and the depot lists */

/*
 * A new magazine.  With M_INTWAIT (the kernel's flags at creation) it
 * never fails; a thread's first get or put asks with M_NOWAIT when the
 * caller must not block, and then copes with NULL.
 */
static struct oc_magazine *
oc_mag_alloc(struct objcache *oc, int capacity, int mflags)
{
	struct oc_magazine *m;

	m = kmalloc(sizeof(*m) + (size_t)capacity * sizeof(void *), M_OBJMAG,
	    mflags | M_ZERO);
	if (m == NULL)
		return NULL;
	m->capacity = capacity;
	OC_ADD(&oc->nmags, 1);
	return m;
}

static void
oc_mag_free(struct objcache *oc, struct oc_magazine *m)
{
	if (m == &oc_dummy_mag)
		return;
	OC_ADD(&oc->nmags, -1);
	kfree(m, M_OBJMAG);
}

static inline void
oc_list_push(struct oc_maglist *l, struct oc_magazine *m)
{
	m->next = l->head;
	l->head = m;
	l->count++;
}

static inline struct oc_magazine *
oc_list_pop(struct oc_maglist *l)
{
	struct oc_magazine *m = l->head;

	if (m != NULL) {
		l->head = m->next;
		l->count--;
		m->next = NULL;
	}
	return m;
}

/* Take a full magazine off the depot, keeping the reaper's low mark. */
static inline struct oc_magazine *
oc_full_pop(struct oc_depot *d)
{
	struct oc_magazine *m = oc_list_pop(&d->full);

	if (d->full.count < d->full_min)
		d->full_min = d->full.count;
	return m;
}

/* Under the depot lock: give back n units of budget, wake sleepers. */
static inline void
oc_budget_return_locked(struct objcache *oc, long n)
{
	struct oc_depot *d = &oc->depot;

	if (!d->unlimited)
		d->unallocated += n;
	if (d->waiting > 0)
		pthread_cond_broadcast(&d->wait);
}

static void
oc_budget_return(struct objcache *oc, long n)
{
	pthread_mutex_lock(&oc->depot.lock);
	oc_budget_return_locked(oc, n);
	pthread_mutex_unlock(&oc->depot.lock);
}

/* The object leaves the cache for good. */
static inline void
oc_destruct(struct objcache *oc, void *obj)
{
	SK_TRACK_SHOW(obj, 0); /* it may come from a magazine (track.h) */
	oc->dtor(obj, oc->privdata);
	oc->free(obj, oc->allocator_args);
	OC_ADD(&oc->nfreed, 1);
}

/*
 * Destroy every object in a magazine; returns how many.  The rounds are
 * dropped before each destructor runs, so the magazine is consistent
 * whatever the destructor does.
 */
static long
oc_mag_purge(struct objcache *oc, struct oc_magazine *m)
{
	long n = 0;
	int r;

	while ((r = m->rounds) > 0) {
		m->rounds = r - 1;
		oc_destruct(oc, m->objects[r - 1]);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Slots */

/*
 * Give the calling thread's slot its magazine pair.  The first use of a
 * slot allocates two empty magazines (the kernel gives every CPU two at
 * creation, spec 2.2 step 4); a slot re-adopted after its thread exited
 * takes two back from the depot, a full one (if any) as previous, so the
 * magazine population stays what it was.  Called by the slot's owner.
 */
static struct oc_percpu *
oc_attach(struct objcache *oc, struct sk_shard *sh, int mflags)
{
	struct oc_percpu *pc = SK_LOAD(&oc->percpu[sh->slot]);
	struct oc_depot *d = &oc->depot;
	struct oc_magazine *loaded = NULL, *previous = NULL;

	if (SK_LIKELY(pc->loaded != &oc_dummy_mag))
		return pc;
	if (pc == &oc_dummy_pc) {
		pc = kmalloc(
		    sizeof(*pc), M_OBJCACHE, mflags | M_ZERO | M_CACHEALIGN);
		if (pc == NULL)
			return NULL;
		pc->loaded = &oc_dummy_mag;
		pc->previous = &oc_dummy_mag;
		SK_STORE_REL(&oc->percpu[sh->slot], pc);
	} else {
		pthread_mutex_lock(&d->lock);
		previous = oc_full_pop(d);
		loaded = oc_list_pop(&d->empty);
		if (previous == NULL)
			previous = oc_list_pop(&d->empty);
		if (loaded == NULL)
			loaded = oc_full_pop(d);
		pthread_mutex_unlock(&d->lock);
	}
	/* No lock held: kmalloc may call back into reclaim. */
	if (loaded == NULL)
		loaded = oc_mag_alloc(oc, d->magcapacity, mflags);
	if (previous == NULL)
		previous = oc_mag_alloc(oc, d->magcapacity, mflags);
	if (loaded == NULL || previous == NULL) {
		/* A caller that may not block got no memory: give back what
		 * we have and let it use the depot directly this time. */
		pthread_mutex_lock(&d->lock);
		if (loaded != NULL)
			oc_list_push(loaded->rounds > 0 ? &d->full : &d->empty,
			    loaded);
		if (previous != NULL)
			oc_list_push(previous->rounds > 0 ? &d->full
							  : &d->empty,
			    previous);
		pthread_mutex_unlock(&d->lock);
		return NULL;
	}
	pc->loaded = loaded;
	pc->previous = previous;
	return pc;
}

/* Return a slot's magazines to the depot (thread exit). */
static void
oc_detach(struct objcache *oc, struct oc_percpu *pc)
{
	struct oc_depot *d = &oc->depot;
	struct oc_magazine *mags[2] = {pc->loaded, pc->previous};
	bool full = false;

	if (pc->loaded == &oc_dummy_mag)
		return;
	pthread_mutex_lock(&d->lock);
	for (int i = 0; i < 2; i++) {
		if (mags[i]->rounds > 0) {
			oc_list_push(&d->full, mags[i]);
			full = true;
		} else {
			oc_list_push(&d->empty, mags[i]);
		}
	}
	pc->loaded = &oc_dummy_mag;
	pc->previous = &oc_dummy_mag;
	if (full && d->waiting > 0)
		pthread_cond_broadcast(&d->wait);
	pthread_mutex_unlock(&d->lock);
}

/* Shard exit hook: runs on the exiting thread, with its shard. */
static void
oc_shard_exit(struct sk_shard *sh)
{
	if (sh->slot >= SK_SLOT_SHARED)
		return;
	pthread_mutex_lock(&oc_list_lock);
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next)
		oc_detach(oc, SK_LOAD(&oc->percpu[sh->slot]));
	pthread_mutex_unlock(&oc_list_lock);
}

/* ------------------------------------------------------------------ */
/* objcache_get */

static _Noreturn void
oc_panic_zero(struct objcache *oc)
{
	sk_panic("objcache_get",
	    "M_ZERO is not allowed: cached objects are constructed "
	    "(objcache %s)",
	    oc->name);
}

/* spec 2.3 step 6: a new object from the backend, then the ctor. */
static void *
oc_alloc_new(struct objcache *oc, struct oc_percpu *pc, int ocflags)
{
	void *obj = oc->alloc(oc->allocator_args, ocflags);

	if (obj != NULL) {
		if (oc->ctor(obj, oc->privdata, ocflags)) {
			OC_ADD(&oc->nalloc, 1);
			if (pc != NULL)
				SK_OWNER_ADD(&pc->gets, 1);
			else
				OC_ADD(&oc->shared_gets, 1);
			return obj;
		}
		oc->free(obj, oc->allocator_args);
	}
	oc_budget_return(oc, 1);
	OC_ADD(&oc->nfailed, 1);
	return NULL;
}

#define OC_RETRY ((void *)1)

/*
 * The depot part of objcache_get (spec 2.3 steps 4-7).  With pc (the
 * caller's slot, both magazines empty) it trades magazines and returns
 * OC_RETRY; without (shared slot) it pops one object off a full magazine.
 */
static void *
oc_depot_get(struct objcache *oc, struct oc_percpu *pc, int ocflags)
{
	struct oc_depot *d = &oc->depot;
	struct oc_magazine *m;
	void *obj;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		if (d->full.head != NULL) {
			if (pc != NULL) {
				/* step 5 */
				m = oc_full_pop(d);
				oc_list_push(&d->empty, pc->previous);
				pc->previous = pc->loaded;
				pc->loaded = m;
				pthread_mutex_unlock(&d->lock);
				return OC_RETRY;
			}
			m = d->full.head;
			obj = m->objects[--m->rounds];
			SK_TRACK_SHOW(obj, 0);
			if (m->rounds == 0)
				oc_list_push(&d->empty, oc_full_pop(d));
			pthread_mutex_unlock(&d->lock);
			OC_ADD(&oc->shared_gets, 1);
			return obj;
		}
		if (d->unlimited || d->unallocated > 0) {
			/* step 6 */
			if (!d->unlimited)
				d->unallocated--;
			pthread_mutex_unlock(&d->lock);
			return oc_alloc_new(oc, pc, ocflags);
		}
		/* step 7 */
		OC_ADD(&oc->nexhausted, 1);
		if (!oc->exhausted_warned) {
			oc->exhausted_warned = true;
			sk_warn("objcache_get",
			    "Warning, objcache(%s): Exhausted!", oc->name);
		}
		if ((ocflags & (M_WAITOK | M_NULLOK)) != M_WAITOK)
			break;
		d->waiting++;
		SK_STORE(&oc->waiters, d->waiting);
		pthread_cond_wait(&d->wait, &d->lock);
		d->waiting--;
		SK_STORE(&oc->waiters, d->waiting);
	}
	pthread_mutex_unlock(&d->lock);
	OC_ADD(&oc->nfailed, 1);
	return NULL;
}

static __attribute__((noinline)) void *
oc_get_slow(struct objcache *oc, int ocflags)
{
	struct sk_shard *sh = sk_shard_get();
	struct oc_percpu *pc;
	struct oc_magazine *m;
	void *obj;

	if (sh->slot >= SK_SLOT_SHARED)
		return oc_depot_get(oc, NULL, ocflags);
	pc = oc_attach(oc, sh,
	    (ocflags & (M_WAITOK | M_NULLOK)) == M_WAITOK ? M_INTWAIT : M_NOWAIT);
	if (pc == NULL)
		return oc_depot_get(oc, NULL, ocflags);
	for (;;) {
		m = pc->loaded;
		if (m->rounds > 0) {
			obj = m->objects[--m->rounds];
			SK_TRACK_SHOW(obj, 0);
			SK_OWNER_ADD(&pc->gets, 1);
			return obj;
		}
		if (pc->previous->rounds > 0) {
			/* step 3: swap on "non-empty" (Bonwick: on "full") */
			pc->loaded = pc->previous;
			pc->previous = m;
			continue;
		}
		obj = oc_depot_get(oc, pc, ocflags);
		if (obj != OC_RETRY)
			return obj;
	}
}

/* objcache_get with M_ZERO (a panic) or heap tracking on. */
static __attribute__((noinline)) void *
oc_get_special(struct objcache *oc, int ocflags)
{
	struct oc_percpu *pc;
	struct oc_magazine *m;
	void *obj;

	if (ocflags & M_ZERO)
		oc_panic_zero(oc);
	pc = SK_LOAD(&oc->percpu[sk_shard_current()->slot]);
	m = pc->loaded;
	if (m->rounds > 0) {
		obj = m->objects[--m->rounds];
		SK_TRACK_SHOW(obj, 0);
		SK_OWNER_ADD(&pc->gets, 1);
		return obj;
	}
	return oc_get_slow(oc, ocflags); /* it shows what it hands out */
}

/*
 * objcache_get: any thread; see objcache.h for the flags.  The fast path
 * pops the calling thread's loaded magazine: no lock, no atomic RMW.
 */
void *
objcache_get(struct objcache *oc, int ocflags)
{
	struct oc_percpu *pc;
	struct oc_magazine *m;
	int r;

	/* M_ZERO and heap tracking leave by a tail call, so the fast path
	 * makes no call and saves no register. */
	if (SK_UNLIKELY((ocflags & M_ZERO) || sk_opt.track))
		return oc_get_special(oc, ocflags);
	pc = SK_LOAD(&oc->percpu[sk_shard_current()->slot]);
	m = pc->loaded;
	r = m->rounds;
	if (SK_LIKELY(r > 0)) {
		m->rounds = r - 1;
		SK_OWNER_ADD(&pc->gets, 1);
		return m->objects[r - 1];
	}
	return oc_get_slow(oc, ocflags);
}

/* ------------------------------------------------------------------ */
/* objcache_put */

/*
 * Put one object straight into the depot: for shared slots, and when
 * getters sleep on the budget (they can reach the depot, not another
 * thread's magazine).  With no room anywhere the object is destroyed.
 */
static void
oc_depot_put(struct objcache *oc, void *obj)
{
	struct oc_depot *d = &oc->depot;
	struct oc_magazine *m;

	OC_ADD(&oc->shared_puts, 1);
	pthread_mutex_lock(&d->lock);
	m = d->full.head;
	if (m == NULL || m->rounds == m->capacity) {
		m = oc_list_pop(&d->empty);
		if (m == NULL) {
			oc_budget_return_locked(oc, 1);
			pthread_mutex_unlock(&d->lock);
			oc_destruct(oc, obj);
			return;
		}
		oc_list_push(&d->full, m);
	}
	m->objects[m->rounds++] = obj;
	if (d->waiting > 0)
		pthread_cond_broadcast(&d->wait);
	pthread_mutex_unlock(&d->lock);
}

static __attribute__((noinline)) void
oc_put_slow(struct objcache *oc, void *obj)
{
	struct sk_shard *sh = sk_shard_get();
	struct oc_depot *d = &oc->depot;
	struct oc_percpu *pc;
	struct oc_magazine *m, *e;

	if (sh->slot >= SK_SLOT_SHARED || SK_LOAD(&oc->waiters) != 0) {
		oc_depot_put(oc, obj);
		return;
	}
	pc = oc_attach(oc, sh, M_NOWAIT); /* a put never blocks */
	if (pc == NULL) {
		oc_depot_put(oc, obj);
		return;
	}
	for (;;) {
		m = pc->loaded;
		if (m->rounds < m->capacity) {
			m->objects[m->rounds++] = obj;
			SK_OWNER_ADD(&pc->puts, 1);
			return;
		}
		if (pc->previous->rounds < pc->previous->capacity) {
			/* spec 2.4 step 3: swap on "non-full" (Bonwick: empty) */
			pc->loaded = pc->previous;
			pc->previous = m;
			continue;
		}
		pthread_mutex_lock(&d->lock);
		if ((e = oc_list_pop(&d->empty)) != NULL) {
			/* step 4 */
			bool full = pc->previous->rounds > 0;

			oc_list_push(full ? &d->full : &d->empty, pc->previous);
			pc->previous = m;
			pc->loaded = e;
			if (full && d->waiting > 0)
				pthread_cond_broadcast(&d->wait);
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		/* step 5: no empty magazine; the object leaves the cache */
		oc_budget_return_locked(oc, 1);
		pthread_mutex_unlock(&d->lock);
		SK_OWNER_ADD(&pc->puts, 1);
		oc_destruct(oc, obj);
		return;
	}
}

/* objcache_put with heap tracking on: hide the object, then put it. */
static __attribute__((noinline)) void
oc_put_tracked(struct objcache *oc, void *obj)
{
	SK_TRACK_HIDE(obj, 0); /* until objcache_get hands it out again */
	oc_put_slow(oc, obj);
}

/*
 * objcache_put: any thread; obj must be constructed.  The fast path
 * pushes on the calling thread's loaded magazine: no lock, no atomic RMW.
 */
void
objcache_put(struct objcache *oc, void *obj)
{
	struct oc_percpu *pc;
	struct oc_magazine *m;
	int r;

	if (SK_UNLIKELY(sk_opt.track)) {
		oc_put_tracked(oc, obj);
		return;
	}
	pc = SK_LOAD(&oc->percpu[sk_shard_current()->slot]);
	m = pc->loaded;
	r = m->rounds;
	if (SK_LIKELY(r < m->capacity && SK_LOAD(&oc->waiters) == 0)) {
		m->objects[r] = obj;
		m->rounds = r + 1;
		SK_OWNER_ADD(&pc->puts, 1);
		return;
	}
	oc_put_slow(oc, obj);
}

/* objcache_dtor: any thread; destroys obj now and wakes a blocked getter. */
void
objcache_dtor(struct objcache *oc, void *obj)
{
	OC_ADD(&oc->ndtor, 1);
	oc_budget_return(oc, 1);
	oc_destruct(oc, obj);
}

/* ------------------------------------------------------------------ */
/* Reclaim, reaper, limit */

/* spec 2.5, for one cache; returns the number of objects freed. */
static long
oc_reclaim_one(struct objcache *oc, struct sk_shard *sh)
{
	struct oc_depot *d = &oc->depot;
	struct oc_magazine *list, *m;
	long n = 0;

	if (sh->slot < SK_SLOT_SHARED) {
		struct oc_percpu *pc = SK_LOAD(&oc->percpu[sh->slot]);

		n = oc_mag_purge(oc, pc->loaded);
		if (n == 0)
			n = oc_mag_purge(oc, pc->previous);
		if (n > 0) {
			oc_budget_return(oc, n);
			return n;
		}
	}
	pthread_mutex_lock(&d->lock);
	list = d->full.head;
	d->full.head = NULL;
	d->full.count = 0;
	d->full_min = 0;
	for (m = list; m != NULL; m = m->next)
		n += m->rounds;
	if (n > 0)
		oc_budget_return_locked(oc, n);
	pthread_mutex_unlock(&d->lock);
	/* The depot shrinks for good: the magazines go too. */
	while ((m = list) != NULL) {
		list = m->next;
		oc_mag_purge(oc, m);
		oc_mag_free(oc, m);
	}
	return n;
}

/*
 * objcache_reclaimlist: any thread (destructors run on it).  Frees from
 * the first cache in the list that has something to give; TRUE iff
 * anything was freed.
 */
boolean_t
objcache_reclaimlist(struct objcache *oclist[], int nlist, int ocflags)
{
	struct sk_shard *sh = sk_shard_current();

	(void)ocflags;
	if (sk_opt.verbose)
		sk_warn("objcache_reclaimlist", "objcache_reclaimlist");
	for (int i = 0; i < nlist; i++)
		if (oc_reclaim_one(oclist[i], sh) > 0)
			return TRUE;
	return FALSE;
}

/* kmalloc's M_WAITOK page-shortage hook: reclaim from every cache. */
static int
oc_reclaim_hook(void)
{
	struct sk_shard *sh = sk_shard_current();
	long n = 0;

	if (oc_in_reclaim)
		return 0;
	/* trylock: this may run inside a kmalloc made while the list lock
	 * is held (stats printing); then there is nothing to reclaim now */
	if (pthread_mutex_trylock(&oc_list_lock) != 0)
		return 0;
	oc_in_reclaim = 1;
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next)
		n += oc_reclaim_one(oc, sh);
	pthread_mutex_unlock(&oc_list_lock);
	oc_in_reclaim = 0;
	return n > 0;
}

/*
 * The reaper's pass over one cache: the full magazines that stayed in the
 * depot through the whole interval (the low mark) are the working set's
 * excess; destroy their objects (the oldest, at the tail of the list) and
 * keep the magazines as empty ones.
 */
static long
oc_reap_one(struct objcache *oc)
{
	struct oc_depot *d = &oc->depot;
	struct oc_magazine *list = NULL, *m, **mp;
	long n = 0;
	int keep;

	pthread_mutex_lock(&d->lock);
	keep = d->full.count - d->full_min;
	mp = &d->full.head;
	while (keep-- > 0 && *mp != NULL)
		mp = &(*mp)->next;
	list = *mp;
	*mp = NULL;
	for (m = list; m != NULL; m = m->next) {
		n += m->rounds;
		d->full.count--;
	}
	d->full_min = d->full.count;
	pthread_mutex_unlock(&d->lock);
	if (list == NULL)
		return 0;
	for (m = list; m != NULL; m = m->next)
		oc_mag_purge(oc, m);
	pthread_mutex_lock(&d->lock);
	while ((m = list) != NULL) {
		list = m->next;
		oc_list_push(&d->empty, m);
	}
	oc_budget_return_locked(oc, n);
	pthread_mutex_unlock(&d->lock);
	return n;
}

long
sk_objcache_reap(void)
{
	long n = 0;

	pthread_mutex_lock(&oc_list_lock);
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next)
		n += oc_reap_one(oc);
	pthread_mutex_unlock(&oc_list_lock);
	return n;
}

static pthread_mutex_t reaper_set_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reaper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reaper_cv = PTHREAD_COND_INITIALIZER;
static pthread_t reaper_tid;
static bool reaper_running; /* under reaper_set_lock */
static bool reaper_stop;    /* under reaper_lock */
static int reaper_ms;       /* under reaper_lock */

static void *
oc_reaper_main(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&reaper_lock);
	while (!reaper_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += reaper_ms / 1000;
		ts.tv_nsec += (long)(reaper_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (pthread_cond_timedwait(&reaper_cv, &reaper_lock, &ts) !=
		        ETIMEDOUT ||
		    reaper_stop)
			continue;
		pthread_mutex_unlock(&reaper_lock);
		sk_objcache_reap();
		pthread_mutex_lock(&reaper_lock);
	}
	pthread_mutex_unlock(&reaper_lock);
	return NULL;
}

/* objcache_reaper_set: any thread; see objcache.h. */
int
objcache_reaper_set(int interval_ms)
{
	int rc = 0;

	if (interval_ms < 0)
		return EINVAL;
	pthread_mutex_lock(&reaper_set_lock);
	pthread_mutex_lock(&reaper_lock);
	reaper_ms = interval_ms;
	reaper_stop = interval_ms == 0;
	pthread_cond_signal(&reaper_cv);
	pthread_mutex_unlock(&reaper_lock);
	if (interval_ms == 0 && reaper_running) {
		pthread_join(reaper_tid, NULL);
		reaper_running = false;
	} else if (interval_ms > 0 && !reaper_running) {
		sigset_t all, old;

		/* the reaper frees under allocator locks: no signal of the
		 * program's may run its handler there */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&reaper_tid, NULL, oc_reaper_main, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		reaper_running = rc == 0;
	}
	pthread_mutex_unlock(&reaper_set_lock);
	return rc;
}

/* objcache_set_cluster_limit: any thread; see objcache.h. */
void
objcache_set_cluster_limit(struct objcache *oc, int cluster_limit)
{
	struct oc_depot *d = &oc->depot;

	if (cluster_limit < 0)
		sk_panic("objcache_set_cluster_limit",
		    "objcache(%s): negative limit %d", oc->name, cluster_limit);
	pthread_mutex_lock(&d->lock);
	if (cluster_limit == 0) {
		d->unlimited = true;
		d->unallocated = 0;
	} else if (d->unlimited) {
		long live = (long)(SK_LOAD(&oc->nalloc) - SK_LOAD(&oc->nfreed));

		/* spec 2.2 step 3, less the objects already alive. */
		d->unallocated =
		    (long)oc->ncpus * d->magcapacity * 2 + cluster_limit - live;
		d->unlimited = false;
	} else {
		d->unallocated += (long)cluster_limit - oc->cluster_limit;
	}
	SK_STORE(&oc->cluster_limit, cluster_limit);
	if (d->waiting > 0)
		pthread_cond_broadcast(&d->wait);
	pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------ */
/* Creation and destruction */

static boolean_t
oc_null_ctor(void *obj, void *privdata, int ocflags)
{
	(void)obj;
	(void)privdata;
	(void)ocflags;
	return TRUE;
}

static void
oc_null_dtor(void *obj, void *privdata)
{
	(void)obj;
	(void)privdata;
}

/*
 * objcache_create: any thread; may block in kmalloc.  See objcache.h.
 */
struct objcache *
(objcache_create)(const char *name, int cluster_limit, int nom_cache,
    objcache_ctor_fn *ctor, objcache_dtor_fn *dtor, void *privdata,
    objcache_alloc_fn *allocfn, objcache_free_fn *freefn, void *allocator_args)
{
	struct sk_oc_sizing sz;
	struct objcache *oc, **pp;
	struct oc_depot *d;

	sk_init();
	sk_once(&oc_once, oc_init_once);
	/* SLABKIT_OPTIONS=objcache_reap=MS starts the reaper with the first
	 * cache (options.c calls no allocator, so the check lives here). */
	if (SK_LOAD(&sk_opt.objcache_reap_ms) > 0)
		objcache_reaper_set(SK_LOAD(&sk_opt.objcache_reap_ms));
	if (name == NULL)
		name = "objcache";
	if (cluster_limit < 0 || nom_cache < 0)
		sk_panic("objcache_create",
		    "objcache(%s): negative cluster_limit %d or nom_cache %d",
		    name, cluster_limit, nom_cache);
	if (allocfn == NULL || freefn == NULL)
		sk_panic("objcache_create", "objcache(%s): no allocator", name);
	oc = kmalloc(sizeof(*oc), M_OBJCACHE, M_WAITOK | M_ZERO | M_CACHEALIGN);
	oc->name = kstrdup(name, M_OBJCACHE);
	oc->ctor = ctor != NULL ? ctor : oc_null_ctor;
	oc->dtor = dtor != NULL ? dtor : oc_null_dtor;
	oc->privdata = privdata;
	oc->alloc = allocfn;
	oc->free = freefn;
	oc->allocator_args = allocator_args;
	oc->cluster_limit = cluster_limit;
	oc->ncpus = sk_os_ncpus();
	for (int i = 0; i < SK_NSLOTS; i++)
		oc->percpu[i] = &oc_dummy_pc;

	sk_objcache_sizing(oc->ncpus, cluster_limit, nom_cache, &sz);
	d = &oc->depot;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wait, NULL);
	d->magcapacity = sz.mag_capacity;
	d->unlimited = sz.budget < 0;
	d->unallocated = sz.budget < 0 ? 0 : sz.budget;
	for (int i = 0; i < sz.nmagdepot; i++)
		oc_list_push(&d->empty,
		    oc_mag_alloc(oc, sz.mag_capacity, M_INTWAIT));

	pthread_mutex_lock(&oc_list_lock);
	for (pp = &oc_list; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = oc;
	pthread_mutex_unlock(&oc_list_lock);
	return oc;
}

/* objcache_create_simple: any thread; may block in kmalloc. */
struct objcache *
objcache_create_simple(malloc_type_t mtype, size_t objsize)
{
	return objcache_create_mbacked(mtype, objsize, 0, 0, NULL, NULL, NULL);
}

/* objcache_create_mbacked: any thread; may block in kmalloc. */
struct objcache *
(objcache_create_mbacked)(malloc_type_t mtype, size_t objsize, int cluster_limit,
    int nom_cache, objcache_ctor_fn *ctor, objcache_dtor_fn *dtor,
    void *privdata)
{
	struct objcache *oc;

	if (mtype == NULL || mtype->ks_magic != M_MAGIC)
		sk_panic("objcache_create_mbacked",
		    "malloc type lacks magic "
		    "(ptr %p)",
		    (void *)mtype);
	oc = objcache_create(mtype->ks_shortdesc, cluster_limit, nom_cache,
	    ctor, dtor, privdata, objcache_malloc_alloc, objcache_malloc_free,
	    NULL);
	oc->margs.objsize = objsize;
	oc->margs.mtype = mtype;
	oc->allocator_args = &oc->margs;
	return oc;
}

/*
 * objcache_destroy: the caller guarantees that no thread uses the cache
 * any more.  Destructs every cached object once; reports outstanding ones.
 */
void
objcache_destroy(struct objcache *oc)
{
	struct oc_depot *d = &oc->depot;
	struct objcache **pp;
	struct oc_magazine *m;
	long live;

	/* Unlinked, it is invisible to exit hooks, reclaim and the reaper. */
	pthread_mutex_lock(&oc_list_lock);
	for (pp = &oc_list; *pp != NULL && *pp != oc; pp = &(*pp)->next)
		;
	if (*pp == NULL) {
		pthread_mutex_unlock(&oc_list_lock);
		sk_panic("objcache_destroy", "not an object cache (ptr %p)",
		    (void *)oc);
	}
	*pp = oc->next;
	pthread_mutex_unlock(&oc_list_lock);

	for (int i = 0; i < SK_SLOT_SHARED; i++) {
		struct oc_percpu *pc = oc->percpu[i];

		if (pc == &oc_dummy_pc)
			continue;
		oc_mag_purge(oc, pc->loaded);
		oc_mag_purge(oc, pc->previous);
		oc_mag_free(oc, pc->loaded);
		oc_mag_free(oc, pc->previous);
		kfree(pc, M_OBJCACHE);
	}
	while ((m = oc_list_pop(&d->full)) != NULL) {
		oc_mag_purge(oc, m);
		oc_mag_free(oc, m);
	}
	while ((m = oc_list_pop(&d->empty)) != NULL)
		oc_mag_free(oc, m);
	live = (long)(SK_LOAD(&oc->nalloc) - SK_LOAD(&oc->nfreed));
	if (live > 0)
		sk_warn("objcache_destroy",
		    "objcache(%s): %ld objects still outstanding", oc->name,
		    live);
	pthread_cond_destroy(&d->wait);
	pthread_mutex_destroy(&d->lock);
	kfree(oc->name, M_OBJCACHE);
	kfree(oc, M_OBJCACHE);
}

/* ------------------------------------------------------------------ */
/* Backends */

/* objcache_malloc_alloc: any thread; blocks as kmalloc with ocflags. */
void *
objcache_malloc_alloc(void *allocator_args, int ocflags)
{
	struct objcache_malloc_args *a = allocator_args;

	return kmalloc(a->objsize, a->mtype, ocflags & OC_MFLAGS);
}

/* objcache_malloc_alloc_zero: as objcache_malloc_alloc, zero-filled. */
void *
objcache_malloc_alloc_zero(void *allocator_args, int ocflags)
{
	struct objcache_malloc_args *a = allocator_args;

	return kmalloc(a->objsize, a->mtype, (ocflags & OC_MFLAGS) | M_ZERO);
}

/* objcache_malloc_free: any thread. */
void
objcache_malloc_free(void *obj, void *allocator_args)
{
	struct objcache_malloc_args *a = allocator_args;

	kfree(obj, a->mtype);
}

/* objcache_nop_alloc: any thread; always NULL. */
void *
objcache_nop_alloc(void *allocator_args, int ocflags)
{
	(void)allocator_args;
	(void)ocflags;
	return NULL;
}

/* objcache_nop_free: any thread; does nothing. */
void
objcache_nop_free(void *obj, void *allocator_args)
{
	(void)obj;
	(void)allocator_args;
}

/* ------------------------------------------------------------------ */
/* Statistics */

static unsigned long
oc_clamp(int64_t v)
{
	return v < 0 ? 0 : (unsigned long)v;
}

/* One record (spec 2.6); caller holds the list lock. */
static void
oc_stats_fill(struct objcache *oc, struct objcache_stats *st)
{
	int64_t gets, puts, live, used;
	int limit = SK_LOAD(&oc->cluster_limit);

	memset(st, 0, sizeof(*st));
	strncpy(st->oc_name, oc->name, OBJCACHE_NAMELEN - 1);
	gets = (int64_t)SK_LOAD(&oc->shared_gets);
	puts = (int64_t)SK_LOAD(&oc->shared_puts);
	for (int i = 0; i < SK_SLOT_SHARED; i++) {
		struct oc_percpu *pc = SK_LOAD_ACQ(&oc->percpu[i]);

		if (pc == &oc_dummy_pc)
			continue;
		gets += (int64_t)SK_LOAD(&pc->gets);
		puts += (int64_t)SK_LOAD(&pc->puts);
	}
	live = (int64_t)SK_LOAD(&oc->nalloc) - (int64_t)SK_LOAD(&oc->nfreed);
	used = gets - puts - (int64_t)SK_LOAD(&oc->ndtor);
	st->oc_limit = limit == 0 ? OBJCACHE_UNLIMITED : (unsigned long)limit;
	st->oc_requested = oc_clamp(gets + (int64_t)SK_LOAD(&oc->nfailed));
	st->oc_used = oc_clamp(used);
	st->oc_cached = oc_clamp(live - used);
	st->oc_exhausted = (unsigned long)SK_LOAD(&oc->nexhausted);
	st->oc_failed = (unsigned long)SK_LOAD(&oc->nfailed);
	st->oc_allocated = (unsigned long)SK_LOAD(&oc->nalloc);
}

/*
 * objcache_stats_snapshot: any thread.  Fills up to nmax records (buf may
 * be NULL with nmax 0) and returns the number of caches.
 */
int
objcache_stats_snapshot(struct objcache_stats *buf, int nmax)
{
	int n = 0;

	pthread_mutex_lock(&oc_list_lock);
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next) {
		if (buf != NULL && n < nmax)
			oc_stats_fill(oc, &buf[n]);
		n++;
	}
	pthread_mutex_unlock(&oc_list_lock);
	return n;
}

static void
oc_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(fp, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

/* The objcache table (text) or the "objcache" member (JSON); stats.c. */
void
sk_objcache_stats_print(FILE *fp, int json)
{
	struct objcache_stats st;
	int n = 0;

	if (json)
		fprintf(fp, "  \"objcache\": [");
	else {
		sk_stats_title(fp, "Object caches");
		fprintf(fp,
		    "%-31s %10s %10s %8s %8s %9s "
		    "%8s %9s\n",
		    "NAME", "LIMIT", "REQUESTS", "USED", "CACHED", "EXHAUSTED",
		    "FAILED", "ALLOCATED");
	}
	pthread_mutex_lock(&oc_list_lock);
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next, n++) {
		oc_stats_fill(oc, &st);
		if (json) {
			fprintf(fp, "%s\n    {\"name\": ", n ? "," : "");
			oc_json_string(fp, st.oc_name);
			fprintf(fp,
			    ", \"limit\": %lu, \"unlimited\": %s, "
			    "\"requested\": %lu, \"used\": %lu, "
			    "\"cached\": %lu, \"exhausted\": %lu, "
			    "\"failed\": %lu, \"allocated\": %lu}",
			    st.oc_limit,
			    st.oc_limit >= OBJCACHE_UNLIMITED ? "true"
			                                      : "false",
			    st.oc_requested, st.oc_used, st.oc_cached,
			    st.oc_exhausted, st.oc_failed, st.oc_allocated);
		} else if (st.oc_limit >= OBJCACHE_UNLIMITED) {
			fprintf(fp,
			    "%-31s %10s %10lu %8lu %8lu %9lu %8lu %9lu\n",
			    st.oc_name, "-", st.oc_requested, st.oc_used,
			    st.oc_cached, st.oc_exhausted, st.oc_failed,
			    st.oc_allocated);
		} else {
			fprintf(fp,
			    "%-31s %10lu %10lu %8lu %8lu %9lu %8lu %9lu\n",
			    st.oc_name, st.oc_limit, st.oc_requested,
			    st.oc_used, st.oc_cached, st.oc_exhausted,
			    st.oc_failed, st.oc_allocated);
		}
	}
	pthread_mutex_unlock(&oc_list_lock);
	if (json)
		fprintf(fp, n ? "\n  ]" : "]");
}

/* ------------------------------------------------------------------ */
/* Test views, fork, set-up */

void
sk_objcache_view(struct objcache *oc, struct sk_oc_view *v)
{
	struct sk_shard *sh = sk_shard_current();
	struct oc_percpu *pc = SK_LOAD(&oc->percpu[sh->slot]);
	struct oc_depot *d = &oc->depot;

	memset(v, 0, sizeof(*v));
	v->loaded_rounds = pc->loaded->rounds;
	v->previous_rounds = pc->previous->rounds;
	v->loaded_capacity = pc->loaded->capacity;
	v->previous_capacity = pc->previous->capacity;
	pthread_mutex_lock(&d->lock);
	v->capacity = d->magcapacity;
	v->nfull = d->full.count;
	v->nempty = d->empty.count;
	for (struct oc_magazine *m = d->full.head; m != NULL; m = m->next)
		v->full_rounds += m->rounds;
	v->budget = d->unlimited ? -1 : d->unallocated;
	v->waiting = d->waiting;
	pthread_mutex_unlock(&d->lock);
	v->nmags = SK_LOAD(&oc->nmags);
}

static void
oc_prefork(void)
{
	pthread_mutex_lock(&reaper_set_lock);
	pthread_mutex_lock(&reaper_lock);
	pthread_mutex_lock(&oc_list_lock);
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next)
		pthread_mutex_lock(&oc->depot.lock);
}

static void
oc_postfork_parent(void)
{
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next)
		pthread_mutex_unlock(&oc->depot.lock);
	pthread_mutex_unlock(&oc_list_lock);
	pthread_mutex_unlock(&reaper_lock);
	pthread_mutex_unlock(&reaper_set_lock);
}

static void
oc_postfork_child(void)
{
	/*
	 * The forking thread holds every lock here too: unlock them.  Only
	 * this thread exists in the child, so nobody sleeps on a depot and
	 * no reaper runs: fresh condition variables, zero waiters.
	 */
	for (struct objcache *oc = oc_list; oc != NULL; oc = oc->next) {
		pthread_cond_init(&oc->depot.wait, NULL);
		oc->depot.waiting = 0;
		SK_STORE(&oc->waiters, 0);
		pthread_mutex_unlock(&oc->depot.lock);
	}
	pthread_mutex_unlock(&oc_list_lock);
	pthread_cond_init(&reaper_cv, NULL);
	reaper_running = false;
	reaper_stop = false;
	pthread_mutex_unlock(&reaper_lock);
	pthread_mutex_unlock(&reaper_set_lock);
}

static void
oc_init_once(void)
{
	sk_shard_register_exit_hook(oc_shard_exit);
	sk_kmalloc_register_reclaim(oc_reclaim_hook);
	sk_os_atfork(oc_prefork, oc_postfork_parent, oc_postfork_child);
}
