/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc_obj: DragonFly BSD's type-stable single-size zones
 * (kern_kmalloc.c, 2021) in userspace.
 *
 * Model.  A kmalloc_obj type is an ordinary malloc type (registered, with
 * its counters, limit and vmstat -m row) that serves one object size, the
 * size given to kmalloc_create_obj() rounded up to a cache line.  Objects
 * live in slabs of KMALLOC_SLAB_SIZE (128 KiB) aligned to their size, so
 * the slab of an object is its address with the low 17 bits cleared.  A
 * slab starts with a header holding a ring of pointers to its free
 * objects; the objects follow, from the first cache line after the ring.
 *
 * Each thread (the kernel's CPU; ids are handed out on first use and
 * reused after the thread exits) keeps two slabs per type, `active' and
 * `alternate'.  kmalloc_obj takes the object at aindex in the active slab's
 * ring; when it is empty it tries the alternate and swaps the two.  When
 * both are empty it rotates a slab in from the type's global store under
 * the type's lock: the `partial' list first, then `full' (every object
 * free), the displaced alternate going to the `empty' list; failing that
 * it sorts up to 16 slabs of the empty list (a slab listed as empty may
 * have received frees since) and tries again; as a last resort it takes a
 * slab from the thread's free-slab cache or maps a new one.
 *
 * kfree_obj takes no lock and may run on any thread: it reserves a ring
 * slot with an atomic fetch-add on findex, stores the pointer there and
 * bumps xindex, the synchroniser.  Ring positions aindex <= i < xindex
 * hold free objects, xindex <= i < findex are slots whose free is still
 * under way; the indices only grow and every position is taken modulo the
 * slab's object count.  Frees never move a slab between lists: a slab on
 * the global empty list that regains objects is found by the next sort.
 *
 * The poller (a thread, SLABKIT_OPTIONS=kzone_pollfreq=N polls per second,
 * 1 by default, 0 to switch it off; slabkit_kmalloc_obj_poll() runs one
 * pass on the caller) looks at one type per period, as the kernel's
 * kmalloc_poller does: it sorts up to 16 slabs of the empty list, moves
 * wholly free slabs among the first 16 of the partial list to the full
 * list (one step past the kernel), and when the full list holds more than
 * KMALLOC_MAXFREEMAGS slabs, retires up to
 * kzone_bretire (4) of the excess that are wholly free, whose frees have
 * all completed (xindex == findex) and that have been wholly free for two
 * poller passes (the stand-in for the kernel's existence lock).  Retired
 * slabs go to the free-slab cache of the thread that mapped them, up to
 * kzone_cache (128) each: pushed on an atomic list the owner takes whole
 * (the kernel's remote_free_slabs); the rest are unmapped.
 *
 * Invariants: a slab is in exactly one place: some thread's active or
 * alternate, one of its type's three global lists (under the type's lock),
 * a free-slab cache, or leaked by kmalloc_destroy_obj (objects were still
 * allocated).  aindex is written only by the thread holding the slab as
 * active or alternate; findex and xindex only grow.  Thread ids, their
 * caches and the slab registry are never freed.
 *
 * With SLABKIT_OPTIONS=track=asan|valgrind (track.h) objects are hidden
 * from the checker from their free (or the slab's set-up) until they are
 * handed out, so a use after kfree_obj is reported.
 *
 * Checks, always on: a double-free bitmap (one bit per object, set by the
 * allocation, cleared by the free with an atomic AND whose old value tells
 * a second free at once, whatever the program wrote into the object); a
 * registry of mapped slabs, so a pointer that kmalloc_obj never returned
 * is reported, never followed; the slab magic; object boundaries.
 *
 * Promises: objects are aligned to 64 bytes; kfree_obj is lock-free;
 * kmalloc_obj blocks only to map a slab.  Statistics go to the calling
 * thread's slot of the type (kmalloc's slots), meaningful only as a sum;
 * the lazy limit estimate folds every KMALLOC_LOOSE_SIZE (512 KiB) and the
 * exact sum is taken when the estimate reaches the limit, as for kmalloc.
 *
 * Deviations from the kernel (README "Deviations"): threads instead of
 * CPUs, with at most SK_KOBJ_MAXCPU ids (later threads share one slab pair
 * per type under a lock); a thread that exits hands its slabs to the
 * type's global lists; the existence lock is two poller passes; the
 * poller thread can be switched off and kzone_pollfreq=0 means off; the
 * poller also promotes wholly free slabs from the partial list; the
 * checks above panic where the kernel asserts only under INVARIANTS; a
 * slab that cannot be mapped is retried for waitok_timeout milliseconds,
 * then panics; kfree_obj of an object of a destroyed type panics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kmalloc_impl.h"
#include "kmalloc_obj.h"
#include "track.h"

/* ------------------------------------------------------------------ */
/* Parameters (sysctl kern.kzone_*) */

static int kzone_pollfreq = 1;              /* atomic */
static int kzone_bretire = 4;               /* atomic */
static int kzone_cache = KMGD_MAXFREESLABS; /* atomic */
static int kzone_debug;                     /* atomic */

/* ------------------------------------------------------------------ */
/* Registry of mapped slabs: one bit per 128 KiB of address space, in a
 * two-level table read without a lock.  Leaves are never freed. */

#define REG_ADDR_BITS  47
#define REG_SLAB_SHIFT 17
#define REG_LEAF_BITS  15 /* slabs per leaf: 32768 bits, 4 KiB */
#define REG_ROOT_N                                                             \
	((size_t)1 << (REG_ADDR_BITS - REG_SLAB_SHIFT - REG_LEAF_BITS))

static uint64_t *reg_root[REG_ROOT_N]; /* atomic */
static pthread_mutex_t reg_mtx = PTHREAD_MUTEX_INITIALIZER;

static bool
reg_test(const void *slab)
{
	uintptr_t a = (uintptr_t)slab;
	size_t idx, bit;
	uint64_t *leaf;

	if (a >> REG_ADDR_BITS)
		return false;
	idx = a >> REG_SLAB_SHIFT;
	leaf = SK_LOAD_ACQ(&reg_root[idx >> REG_LEAF_BITS]);
	if (leaf == NULL)
		return false;
	bit = idx & (((size_t)1 << REG_LEAF_BITS) - 1);
	return (SK_LOAD(&leaf[bit >> 6]) >> (bit & 63)) & 1;
}

static void
reg_set(const void *slab, bool on)
{
	uintptr_t a = (uintptr_t)slab;
	size_t idx = a >> REG_SLAB_SHIFT, bit;
	uint64_t **slot, *leaf;
	int why;

	if (a >> REG_ADDR_BITS)
		sk_panic("kmalloc_obj",
		    "slab beyond the address range (ptr %p)", slab);
	slot = &reg_root[idx >> REG_LEAF_BITS];
	leaf = SK_LOAD_ACQ(slot);
	if (leaf == NULL) {
		pthread_mutex_lock(&reg_mtx);
		leaf = SK_LOAD(slot);
		if (leaf == NULL) {
			leaf = sk_os_map_untracked(
			    ((size_t)1 << REG_LEAF_BITS) / 8, &why);
			if (leaf == NULL) {
				pthread_mutex_unlock(&reg_mtx);
				sk_panic("kmalloc_obj",
				    "cannot map the slab registry");
			}
			SK_STORE_REL(slot, leaf);
		}
		pthread_mutex_unlock(&reg_mtx);
	}
	bit = idx & (((size_t)1 << REG_LEAF_BITS) - 1);
	if (on)
		__atomic_fetch_or(&leaf[bit >> 6], (uint64_t)1 << (bit & 63),
		    __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&leaf[bit >> 6],
		    ~((uint64_t)1 << (bit & 63)), __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ */
/* "CPUs": thread ids, each with a free-slab cache (the kernel's
 * gd_kmslab).  free_slabs is the owner's; others push on remote_free. */

struct kobj_cpu {
	struct sk_kobj_slab *free_slabs;  /* owner only */
	struct sk_kobj_slab *remote_free; /* atomic: pushed by others */
	size_t free_count;                /* atomic */
	int id;
	int next_free; /* free-id stack link */
} __attribute__((aligned(64)));

static struct kobj_cpu kobj_cpus[SK_KOBJ_MAXCPU + 1];
static __thread struct kobj_cpu *kobj_tls;
static pthread_mutex_t cpu_mtx = PTHREAD_MUTEX_INITIALIZER;
static int cpu_next_id;       /* under cpu_mtx */
static int cpu_free_top = -1; /* under cpu_mtx */
static pthread_mutex_t shared_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t cpu_key;
static struct sk_once kobj_once = SK_ONCE_INITIALIZER("kmalloc_obj set-up");

/* An empty slab in every unused active/alternate: no NULL test. */
static struct sk_kobj_slab kslab_dummy;

/* ------------------------------------------------------------------ */
/* Registry of kmalloc_obj types; the poller's cursor. */

static pthread_mutex_t kobj_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kobj_cv = PTHREAD_COND_INITIALIZER;
static struct sk_kobj_type *kobj_types;  /* registration order */
static struct sk_kobj_type *kobj_cursor; /* next type to poll */
static uint64_t kobj_tick;               /* atomic: poll passes */

static pthread_mutex_t poll_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t poll_cv = PTHREAD_COND_INITIALIZER;
static bool poll_running; /* under poll_mtx */

static void kobj_init_once(void);
static void poller_ensure(void);

static inline struct sk_kobj_type *
kobj_type(struct malloc_type *type, const char *api)
{
	if (SK_UNLIKELY(type == NULL))
		sk_panic(api, "NULL malloc type");
	if (SK_UNLIKELY(type->ks_magic != M_MAGIC))
		sk_panic(
		    api, "malloc type lacks magic (type %p)", (void *)type);
	if (SK_UNLIKELY(!(type->ks_flags & KSF_OBJSIZE)))
		sk_panic(api, "'%s' is not a kmalloc_obj type (type %p)",
		    type->ks_shortdesc, (void *)type);
	return (struct sk_kobj_type *)type;
}

uint64_t
sk_kobj_tick(void)
{
	return SK_LOAD(&kobj_tick);
}

/* ------------------------------------------------------------------ */
/* Sizing (malloc_mgt_init) */

void
sk_kobj_sizing(size_t objsize, size_t *offset, size_t *count)
{
	size_t off = offsetof(struct sk_kobj_slab, fobjs);
	size_t n;

	if (objsize == 0 || objsize + sizeof(void *) > KMALLOC_SLAB_SIZE) {
		*offset = 0;
		*count = 0;
		return;
	}
	n = (KMALLOC_SLAB_SIZE - off) / (objsize + sizeof(void *));
	for (;;) {
		off = offsetof(struct sk_kobj_slab, fobjs) + n * sizeof(void *);
		off = (off + SK_CACHELINE - 1) & ~(size_t)(SK_CACHELINE - 1);
		if (n == 0 || off + n * objsize <= KMALLOC_SLAB_SIZE)
			break;
		n--;
	}
	*offset = n ? off : 0;
	*count = n;
}

/* ------------------------------------------------------------------ */
/* Statistics: the calling thread's slot of the type (kmalloc's slots). */

static inline void
stats_charge(struct malloc_type *t, long n, size_t bytes)
{
	struct sk_shard *sh = sk_shard_get();

	/* kmalloc's slot counters, kept the way kmalloc keeps them (see
	 * "Statistics updates" in kmalloc.c): one call per allocation */
	for (; n > 0; n--) {
		sk_km_stats_calls(t, sh);
		sk_km_stats_alloc(t, sh, bytes);
	}
	for (; n < 0; n++)
		sk_km_stats_free(t, sh, bytes);
}

/* spec 1.10 "Limits": the exact sum once the estimate reaches the limit. */
static bool
limit_check(struct malloc_type *t, int flags)
{
	struct kmalloc_type_stats st;

	while (SK_LOAD(&t->ks_loosememuse) >= SK_LOAD(&t->ks_limit)) {
		sk_type_sum(t, &st);
		SK_STORE(&t->ks_loosememuse, st.memuse);
		if (st.memuse >= SK_LOAD(&t->ks_limit)) {
			if (flags & M_NULLOK)
				return false;
			sk_panic("kmalloc_obj", "%s: malloc limit exceeded",
			    t->ks_shortdesc);
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Slabs */

static inline size_t
slab_nfree(struct sk_kobj_slab *s)
{
	return SK_LOAD(&s->findex) - SK_LOAD(&s->aindex);
}

static inline size_t
obj_index(struct sk_kobj_slab *s, const void *obj)
{
	return sk_kobj_index(
	    s->objmul, (uintptr_t)obj - (uintptr_t)s - s->offset);
}

/* The next object of s, or NULL when none (or a free is under way). */
static inline void *
ring_take(struct sk_kobj_slab *s)
{
	size_t a = s->aindex;
	size_t i = s->aslot, bit;
	void *obj = __atomic_load_n(&s->fobjs[i], __ATOMIC_ACQUIRE);
	uint64_t old;

	if (SK_UNLIKELY(obj == NULL))
		return NULL;
	SK_STORE(&s->fobjs[i], NULL);
	SK_STORE(&s->aindex, a + 1);
	s->aslot = i + 1 == s->ncount ? 0 : i + 1;
	bit = obj_index(s, obj);
	old = __atomic_fetch_or(
	    &s->bmap[bit >> 6], (uint64_t)1 << (bit & 63), __ATOMIC_RELAXED);
	if (SK_UNLIKELY(old & ((uint64_t)1 << (bit & 63))))
		sk_panic("kmalloc_obj",
		    "object handed out twice: ring "
		    "corrupted (ptr %p)",
		    obj);
	return obj;
}

/* Push a list of wholly free slabs on their mappers' free-slab caches
 * (gslab_cache); returns what did not fit. */
static struct sk_kobj_slab *
gslab_cache(struct sk_kobj_slab *list)
{
	struct sk_kobj_slab *rest = NULL, *s, *head;
	size_t cap = (size_t)SK_LOAD(&kzone_cache);

	while ((s = list) != NULL) {
		struct kobj_cpu *c = &kobj_cpus[s->orig_cpuid];

		list = s->next;
		if (__atomic_add_fetch(&c->free_count, 1, __ATOMIC_RELAXED) >
		    cap) {
			__atomic_fetch_sub(&c->free_count, 1, __ATOMIC_RELAXED);
			s->next = rest;
			rest = s;
			continue;
		}
		SK_STORE(&s->type, NULL);
		SK_STORE_REL(&s->magic, 0u);
		head = SK_LOAD(&c->remote_free);
		do {
			s->next = head;
		} while (!__atomic_compare_exchange_n(&c->remote_free, &head, s,
		    true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	}
	return rest;
}

/* A slab from the calling thread's cache (gslab_alloc), or NULL. */
static struct sk_kobj_slab *
gslab_alloc(struct kobj_cpu *c)
{
	struct sk_kobj_slab *s = c->free_slabs;

	if (s == NULL)
		s = __atomic_exchange_n(
		    &c->remote_free, NULL, __ATOMIC_ACQUIRE);
	if (s != NULL) {
		c->free_slabs = s->next;
		s->next = NULL;
		__atomic_fetch_sub(&c->free_count, 1, __ATOMIC_RELAXED);
	}
	return s;
}

static void
slab_unmap(struct sk_kobj_slab *s)
{
	SK_TRACK_RESET(s, KMALLOC_SLAB_SIZE);
	reg_set(s, false);
	sk_os_unmap(s, KMALLOC_SLAB_SIZE);
}

/* Map a slab as M_WAITOK would (spec 1.10: whatever the caller's flags). */
static struct sk_kobj_slab *
slab_map(const char *desc)
{
	long waited_ms = 0, step_ms = 1;
	void *p;
	int why;

	for (;;) {
		p = sk_os_map(KMALLOC_SLAB_SIZE, KMALLOC_SLAB_SIZE, &why);
		if (p != NULL)
			break;
		if (why == SK_OS_EXHAUSTED)
			sk_panic("kmalloc_obj",
			    "%s: no address space for a slab", desc);
		if (sk_opt.waitok_timeout_ms > 0 &&
		    waited_ms >= sk_opt.waitok_timeout_ms)
			sk_panic("kmalloc_obj",
			    "%s: no memory for a slab after %ld ms", desc,
			    waited_ms);
		sk_os_sleep_ns(step_ms * 1000000L);
		waited_ms += step_ms;
		if (step_ms < 64)
			step_ms *= 2;
	}
	reg_set(p, true);
	return p;
}

/* Set up a slab (new or from a cache) for kt, mapped by "CPU" cpuid. */
static void
slab_setup(struct sk_kobj_type *kt, struct sk_kobj_slab *s, int cpuid)
{
	char *obj = (char *)s + kt->slab_offset;
	size_t n = kt->slab_count;

	/* A cached slab may have served another size: forget its layout. */
	SK_TRACK_RESET(s, KMALLOC_SLAB_SIZE);
	memset(s, 0, offsetof(struct sk_kobj_slab, fobjs));
	s->orig_cpuid = (uint32_t)cpuid;
	s->ncount = n;
	s->offset = kt->slab_offset;
	s->objsize = kt->t.ks_objsize;
	s->objmul = ((uint64_t)1 << SK_KOBJ_MUL_SHIFT) / s->objsize + 1;
	for (size_t i = 0; i < n; i++, obj += s->objsize)
		s->fobjs[i] = obj;
	s->findex = n;
	s->xindex = n;
	SK_TRACK_HIDE((char *)s + s->offset, n * s->objsize);
	SK_STORE(&s->type, &kt->t);
	SK_STORE_REL(&s->magic, (uint32_t)KMALLOC_SLAB_MAGIC);
	__atomic_fetch_add(&kt->nslabs, 1, __ATOMIC_RELAXED);
}

/* Put a slab on its type's global lists by what it holds (lock held). */
static void
slab_put_global(struct sk_kobj_type *kt, struct sk_kobj_slab *s)
{
	size_t delta = slab_nfree(s);

	s->next = NULL;
	if (delta == s->ncount) {
		s->exis_tick = SK_LOAD(&kobj_tick);
		s->next = kt->full;
		kt->full = s;
		kt->nfull++;
	} else if (delta != 0) {
		s->next = kt->partial;
		kt->partial = s;
		kt->npartial++;
	} else {
		*kt->empty_tailp = s;
		kt->empty_tailp = &s->next;
		kt->nempty++;
	}
}

/*
 * Sort up to count slabs of the empty list (malloc_mgt_poll_empty_locked):
 * wholly free ones to full, others with free objects to partial, the rest
 * back to the tail.  Lock held.  True when something became available.
 */
static bool
poll_empty_locked(struct sk_kobj_type *kt, int count)
{
	struct sk_kobj_slab *marker = kt->empty, *s;
	bool got = false;

	while (count-- > 0 && (s = kt->empty) != NULL) {
		size_t delta;

		kt->empty = s->next;
		s->next = NULL;
		kt->nempty--;
		if (kt->empty_tailp == &s->next)
			kt->empty_tailp = &kt->empty;
		delta = slab_nfree(s);
		if (delta != 0) {
			slab_put_global(kt, s);
			got = true;
		} else {
			*kt->empty_tailp = s;
			kt->empty_tailp = &s->next;
			kt->nempty++;
			if (kt->empty == marker)
				break;
		}
	}
	return got;
}

/*
 * Move wholly free slabs among the first count of the partial list to the
 * full list (lock held).  The kernel leaves them on partial until a CPU
 * rotates them in, so a type whose slabs were freed through partial never
 * gives memory back; looking at a bounded number per poll is cheap.
 */
static void
poll_partial_locked(struct sk_kobj_type *kt, int count)
{
	struct sk_kobj_slab **slabp = &kt->partial, *s;

	while (count-- > 0 && (s = *slabp) != NULL) {
		if (slab_nfree(s) == s->ncount) {
			*slabp = s->next;
			kt->npartial--;
			slab_put_global(kt, s);
		} else {
			slabp = &s->next;
		}
	}
}

/* The allocation proper (spec 1.10 "Allocation"), for the "CPU" c. */
static void *
kobj_take(struct sk_kobj_type *kt, struct kobj_cpu *c)
{
	struct sk_kobj_pcpu *m = &kt->pcpu[c->id];
	struct sk_kobj_slab *s;
	void *obj;

retry:
	s = m->active;
	if (SK_LIKELY(SK_LOAD(&s->findex) != s->aindex)) {
		if ((obj = ring_take(s)) != NULL)
			return obj;
	}
	s = m->alternate;
	if (SK_LOAD(&s->findex) != s->aindex) {
		SK_STORE(&m->alternate, m->active);
		SK_STORE(&m->active, s);
		if ((obj = ring_take(s)) != NULL)
			return obj;
	}

	/* G(partial, full) -> active -> alternate -> G(empty) */
	pthread_mutex_lock(&kt->lock);
rerotate:
	if (kt->partial != NULL || kt->full != NULL) {
		struct sk_kobj_slab *old = m->alternate;

		if (kt->partial != NULL) {
			s = kt->partial;
			kt->partial = s->next;
			kt->npartial--;
		} else {
			s = kt->full;
			kt->full = s->next;
			kt->nfull--;
		}
		s->next = NULL;
		SK_STORE(&m->alternate, m->active);
		SK_STORE(&m->active, s);
		if (old != &kslab_dummy) {
			old->next = NULL;
			*kt->empty_tailp = old;
			kt->empty_tailp = &old->next;
			kt->nempty++;
		}
		pthread_mutex_unlock(&kt->lock);
		goto retry;
	}
	if (poll_empty_locked(kt, SK_KOBJ_EMPTY_POLL))
		goto rerotate;
	pthread_mutex_unlock(&kt->lock);

	/* Nothing anywhere: the thread's free-slab cache, else a new slab. */
	if (SK_LOAD(&c->free_count) == 0 || (s = gslab_alloc(c)) == NULL)
		s = slab_map(kt->t.ks_shortdesc);
	slab_setup(kt, s, c->id);
	poller_ensure();

	/* (NEW) slab -> active -> alternate -> G(empty) */
	pthread_mutex_lock(&kt->lock);
	if (m->alternate != &kslab_dummy) {
		struct sk_kobj_slab *old = m->alternate;

		old->next = NULL;
		*kt->empty_tailp = old;
		kt->empty_tailp = &old->next;
		kt->nempty++;
	}
	SK_STORE(&m->alternate, m->active);
	SK_STORE(&m->active, s);
	pthread_mutex_unlock(&kt->lock);
	goto retry;
}

/* ------------------------------------------------------------------ */
/* Threads */

static inline struct kobj_cpu *
kobj_cpu_get(void)
{
	struct kobj_cpu *c = kobj_tls;

	if (SK_LIKELY(c != NULL))
		return c;
	sk_once(&kobj_once, kobj_init_once);
	pthread_mutex_lock(&cpu_mtx);
	if (cpu_free_top >= 0) {
		c = &kobj_cpus[cpu_free_top];
		cpu_free_top = c->next_free;
	} else if (cpu_next_id < SK_KOBJ_MAXCPU) {
		c = &kobj_cpus[cpu_next_id];
		c->id = cpu_next_id++;
	} else {
		c = &kobj_cpus[SK_KOBJ_SHARED];
	}
	pthread_mutex_unlock(&cpu_mtx);
	kobj_tls = c;
	if (c->id != SK_KOBJ_SHARED)
		pthread_setspecific(cpu_key, c);
	return c;
}

/* Thread exit: every slab pair of the thread goes to its type's lists;
 * the id (and its free-slab cache) waits for the next thread. */
static void
kobj_thread_exit(void *arg)
{
	struct kobj_cpu *c = arg;

	if (c == NULL || c->id == SK_KOBJ_SHARED)
		return;
	pthread_mutex_lock(&kobj_mtx);
	for (struct sk_kobj_type *kt = kobj_types; kt != NULL; kt = kt->next) {
		struct sk_kobj_pcpu *m = &kt->pcpu[c->id];

		pthread_mutex_lock(&kt->lock);
		if (m->active != &kslab_dummy)
			slab_put_global(kt, m->active);
		if (m->alternate != &kslab_dummy)
			slab_put_global(kt, m->alternate);
		SK_STORE(&m->active, &kslab_dummy);
		SK_STORE(&m->alternate, &kslab_dummy);
		pthread_mutex_unlock(&kt->lock);
	}
	pthread_mutex_unlock(&kobj_mtx);
	if (kobj_tls == c)
		kobj_tls = NULL;
	pthread_mutex_lock(&cpu_mtx);
	c->next_free = cpu_free_top;
	cpu_free_top = c->id;
	pthread_mutex_unlock(&cpu_mtx);
}

static void
kobj_prefork(void)
{
	pthread_mutex_lock(&shared_mtx);
	pthread_mutex_lock(&kobj_mtx);
	for (struct sk_kobj_type *kt = kobj_types; kt != NULL; kt = kt->next)
		pthread_mutex_lock(&kt->lock);
	pthread_mutex_lock(&cpu_mtx);
	pthread_mutex_lock(&reg_mtx);
	pthread_mutex_lock(&poll_mtx);
}

static void
kobj_postfork_parent(void)
{
	pthread_mutex_unlock(&poll_mtx);
	pthread_mutex_unlock(&reg_mtx);
	pthread_mutex_unlock(&cpu_mtx);
	for (struct sk_kobj_type *kt = kobj_types; kt != NULL; kt = kt->next)
		pthread_mutex_unlock(&kt->lock);
	pthread_mutex_unlock(&kobj_mtx);
	pthread_mutex_unlock(&shared_mtx);
}

static void
kobj_postfork_child(void)
{
	/* The poller thread does not exist in the child; the next slab
	 * mapped or type made starts one.  The ids of the parent's other
	 * threads stay taken: their slabs may be half-way through an
	 * update. */
	poll_running = false;
	kobj_postfork_parent();
}

static void
kobj_init_once(void)
{
	sk_init();
	if (pthread_key_create(&cpu_key, kobj_thread_exit) != 0)
		sk_panic("kmalloc_obj", "cannot create the thread-exit key");
	sk_os_atfork(kobj_prefork, kobj_postfork_parent, kobj_postfork_child);
	kobj_cpus[SK_KOBJ_SHARED].id = SK_KOBJ_SHARED;
}

/* ------------------------------------------------------------------ */
/* The poller */

/* One poll of one type (malloc_mgt_poll); *retiredp gets the slabs
 * retired.  True when the poller may move on to the next type. */
static bool
poll_type(struct sk_kobj_type *kt, int *retiredp)
{
	struct sk_kobj_slab *base = NULL, **basep = &base, **slabp, *s;
	uint64_t now = __atomic_add_fetch(&kobj_tick, 1, __ATOMIC_RELAXED);
	int bretire = SK_LOAD(&kzone_bretire), retired = 0;
	bool donext = true;
	size_t count;

	pthread_mutex_lock(&kt->lock);
	poll_empty_locked(kt, SK_KOBJ_EMPTY_POLL);
	poll_partial_locked(kt, SK_KOBJ_EMPTY_POLL);
	count = kt->nfull;
	if (count > KMALLOC_MAXFREEMAGS) {
		count -= KMALLOC_MAXFREEMAGS;
		if (count > 16)
			count = 16;
		slabp = &kt->full;
		while (count > 0 && (s = *slabp) != NULL) {
			if (slab_nfree(s) == s->ncount &&
			    __atomic_load_n(&s->xindex, __ATOMIC_ACQUIRE) ==
			        SK_LOAD(&s->findex) &&
			    now >= s->exis_tick + 2) {
				*slabp = s->next;
				*basep = s;
				basep = &s->next;
				kt->nfull--;
				if (++retired == bretire)
					break;
			} else {
				slabp = &s->next;
			}
			count--;
		}
		*basep = NULL;
		donext = *slabp == NULL;
	}
	if (retired > 0) {
		__atomic_fetch_sub(
		    &kt->nslabs, (size_t)retired, __ATOMIC_RELAXED);
		__atomic_fetch_add(
		    &kt->retired, (size_t)retired, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&kt->lock);

	if (retired > 0) {
		if (SK_LOAD(&kzone_debug))
			sk_warn("kmalloc_poll", "%s retire %d",
			    kt->t.ks_shortdesc, retired);
		base = gslab_cache(base);
		while ((s = base) != NULL) {
			base = s->next;
			slab_unmap(s);
		}
	}
	*retiredp = retired;
	return donext;
}

/* Poll the type at the cursor, as the kernel's poller does each period. */
static void
poll_one(void)
{
	struct sk_kobj_type *kt;
	int retired;
	bool donext;

	pthread_mutex_lock(&kobj_mtx);
	kt = kobj_cursor != NULL ? kobj_cursor : kobj_types;
	if (kt == NULL) {
		kobj_cursor = NULL;
		pthread_mutex_unlock(&kobj_mtx);
		return;
	}
	kt->polling++;
	pthread_mutex_unlock(&kobj_mtx);
	donext = poll_type(kt, &retired);
	pthread_mutex_lock(&kobj_mtx);
	if (donext)
		kobj_cursor = kt->next;
	kt->polling--;
	pthread_cond_broadcast(&kobj_cv);
	pthread_mutex_unlock(&kobj_mtx);
}

int
slabkit_kmalloc_obj_poll(void)
{
	struct sk_kobj_type *kt, *next;
	int total = 0, retired;

	sk_init();
	pthread_mutex_lock(&kobj_mtx);
	for (kt = kobj_types; kt != NULL; kt = next) {
		kt->polling++;
		pthread_mutex_unlock(&kobj_mtx);
		poll_type(kt, &retired);
		total += retired;
		pthread_mutex_lock(&kobj_mtx);
		next = kt->next;
		kt->polling--;
		pthread_cond_broadcast(&kobj_cv);
	}
	pthread_mutex_unlock(&kobj_mtx);
	return total;
}

static void *
poller_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&poll_mtx);
	for (;;) {
		int freq = SK_LOAD(&kzone_pollfreq);
		struct timespec ts;
		long ns;

		if (freq <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ns = ts.tv_nsec + 1000000000L / freq;
		ts.tv_sec += ns / 1000000000L;
		ts.tv_nsec = ns % 1000000000L;
		pthread_cond_timedwait(&poll_cv, &poll_mtx, &ts);
		if (SK_LOAD(&kzone_pollfreq) <= 0)
			break;
		pthread_mutex_unlock(&poll_mtx);
		poll_one();
		pthread_mutex_lock(&poll_mtx);
	}
	poll_running = false;
	pthread_cond_broadcast(&poll_cv);
	pthread_mutex_unlock(&poll_mtx);
	return NULL;
}

/* Start the poller thread if it is wanted and not running. */
static void
poller_ensure(void)
{
	pthread_attr_t attr;
	pthread_t td;
	sigset_t all, old;

	if (SK_LOAD(&kzone_pollfreq) <= 0 || SK_LOAD(&kobj_types) == NULL)
		return;
	pthread_mutex_lock(&poll_mtx);
	if (poll_running) {
		pthread_mutex_unlock(&poll_mtx);
		return;
	}
	/* No signal of the program's is ever delivered to the poller. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&td, &attr, poller_main, NULL) == 0)
		poll_running = true;
	else
		sk_warn("kmalloc_obj", "cannot start the poller thread");
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&poll_mtx);
}

int
sk_kobj_set_option(const char *key, const char *value)
{
	long n, max = 1 << 20, min = 0;
	int *dst;
	char *end;

	if (strcmp(key, "kzone_pollfreq") == 0) {
		dst = &kzone_pollfreq;
		max = 1000;
	} else if (strcmp(key, "kzone_bretire") == 0) {
		dst = &kzone_bretire;
		min = 1;
	} else if (strcmp(key, "kzone_cache") == 0) {
		dst = &kzone_cache;
	} else if (strcmp(key, "kzone_debug") == 0) {
		dst = &kzone_debug;
		max = 1;
		if (value == NULL || *value == '\0')
			value = "1";
	} else {
		return ENOENT;
	}
	if (value == NULL || *value == '\0')
		return EINVAL;
	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return EINVAL;
	SK_STORE(dst, (int)n);
	if (dst == &kzone_pollfreq) {
		pthread_mutex_lock(&poll_mtx);
		pthread_cond_broadcast(&poll_cv);
		pthread_mutex_unlock(&poll_mtx);
		if (n > 0)
			poller_ensure();
	}
	return 0;
}

void
sk_kobj_params(struct sk_kobj_params *p)
{
	p->pollfreq = SK_LOAD(&kzone_pollfreq);
	p->bretire = SK_LOAD(&kzone_bretire);
	p->cache = SK_LOAD(&kzone_cache);
	p->debug = SK_LOAD(&kzone_debug);
	pthread_mutex_lock(&poll_mtx);
	p->running = poll_running;
	pthread_mutex_unlock(&poll_mtx);
}

/* ------------------------------------------------------------------ */
/* The API */

void
kmalloc_create_obj(
    struct malloc_type **typep, const char *descr, size_t objsize)
{
	struct sk_kobj_type *kt;
	size_t size =
	    (objsize + SK_CACHELINE - 1) & ~(size_t)(SK_CACHELINE - 1);
	size_t off, n;

	if (*typep != NULL)
		return;
	sk_once(&kobj_once, kobj_init_once);
	sk_kobj_sizing(size, &off, &n);
	if (n == 0)
		sk_panic("kmalloc_create_obj",
		    "%s: object size %zu does not fit a slab", descr, objsize);
	kt = kmalloc(sizeof(*kt), M_TEMP, M_WAITOK | M_ZERO | M_CACHEALIGN);
	kt->t.ks_magic = M_MAGIC;
	kt->t.ks_shortdesc = descr;
	kt->t.ks_flags = KSF_OBJSIZE;
	kt->t.ks_objsize = size;
	kt->t.ks_use = &kt->t.ks_use0;
	pthread_mutex_init(&kt->lock, NULL);
	kt->empty_tailp = &kt->empty;
	kt->slab_offset = off;
	kt->slab_count = n;
	for (int i = 0; i <= SK_KOBJ_MAXCPU; i++) {
		kt->pcpu[i].active = &kslab_dummy;
		kt->pcpu[i].alternate = &kslab_dummy;
	}
	malloc_init(&kt->t);
	/* newest first, as the kernel's kmemstatistics list */
	pthread_mutex_lock(&kobj_mtx);
	kt->next = kobj_types;
	SK_STORE_REL(&kobj_types, kt);
	pthread_mutex_unlock(&kobj_mtx);
	*typep = &kt->t;
	poller_ensure();
}

/* Release a slab that holds no objects, or report and leak it. */
static void
destroy_slab(struct sk_kobj_type *kt, struct sk_kobj_slab *s,
    struct sk_kobj_slab **basep)
{
	size_t delta = slab_nfree(s);

	if (delta == s->ncount &&
	    __atomic_load_n(&s->xindex, __ATOMIC_ACQUIRE) ==
	        SK_LOAD(&s->findex)) {
		s->next = *basep;
		*basep = s;
		return;
	}
	sk_warn("kmalloc_destroy_obj",
	    "%s: slab %p %zu objects were still "
	    "allocated",
	    kt->t.ks_shortdesc, (void *)s, s->ncount - delta);
	/* Leaked: later kfree_obj calls on it are reported. */
	SK_STORE(&s->type, NULL);
}

void
sk_kobj_release(struct malloc_type *type)
{
	struct sk_kobj_type *kt, **pp;
	struct sk_kobj_slab *base = NULL, *s, *next;

	kt = kobj_type(type, "kmalloc_destroy_obj");
	pthread_mutex_lock(&kobj_mtx);
	while (kt->polling)
		pthread_cond_wait(&kobj_cv, &kobj_mtx);
	for (pp = &kobj_types; *pp != NULL && *pp != kt; pp = &(*pp)->next)
		;
	if (*pp == kt)
		SK_STORE(pp, kt->next);
	if (kobj_cursor == kt)
		kobj_cursor = kt->next;
	pthread_mutex_unlock(&kobj_mtx);

	pthread_mutex_lock(&kt->lock);
	for (int i = 0; i <= SK_KOBJ_MAXCPU; i++) {
		struct sk_kobj_pcpu *m = &kt->pcpu[i];

		if (m->active != &kslab_dummy)
			destroy_slab(kt, m->active, &base);
		if (m->alternate != &kslab_dummy)
			destroy_slab(kt, m->alternate, &base);
		m->active = m->alternate = &kslab_dummy;
	}
	for (s = kt->partial; s != NULL; s = next) {
		next = s->next;
		destroy_slab(kt, s, &base);
	}
	for (s = kt->full; s != NULL; s = next) {
		next = s->next;
		destroy_slab(kt, s, &base);
	}
	for (s = kt->empty; s != NULL; s = next) {
		next = s->next;
		destroy_slab(kt, s, &base);
	}
	kt->partial = kt->full = kt->empty = NULL;
	kt->empty_tailp = &kt->empty;
	kt->npartial = kt->nfull = kt->nempty = 0;
	pthread_mutex_unlock(&kt->lock);
	base = gslab_cache(base);
	while ((s = base) != NULL) {
		base = s->next;
		slab_unmap(s);
	}
	pthread_mutex_destroy(&kt->lock);
	/* No longer an object type: a second release finds nothing. */
	kt->t.ks_flags &= ~(uint32_t)KSF_OBJSIZE;
}

void
kmalloc_destroy_obj(struct malloc_type **typep)
{
	if (*typep == NULL)
		return;
	sk_kobj_release(*typep);
	/* The rest is kmalloc_destroy's: unregister, free the type. */
	kmalloc_destroy(typep);
}

void *
kmalloc_obj(unsigned long size, struct malloc_type *type, int flags)
{
	struct sk_kobj_type *kt = kobj_type(type, "kmalloc_obj");
	struct kobj_cpu *c;
	void *obj;

	if (SK_UNLIKELY(size == 0 || ((size + SK_CACHELINE - 1) &
	                                 ~(unsigned long)(SK_CACHELINE - 1)) !=
	                                 type->ks_objsize))
		sk_panic("kmalloc_obj",
		    "%s: size %lu is not the object size %zu",
		    type->ks_shortdesc, size, type->ks_objsize);
	if (SK_UNLIKELY(
	        SK_LOAD(&type->ks_loosememuse) >= SK_LOAD(&type->ks_limit)) &&
	    !limit_check(type, flags))
		return NULL;
	c = kobj_cpu_get();
	if (SK_LIKELY(c->id != SK_KOBJ_SHARED)) {
		obj = kobj_take(kt, c);
	} else {
		pthread_mutex_lock(&shared_mtx);
		obj = kobj_take(kt, c);
		pthread_mutex_unlock(&shared_mtx);
	}
	stats_charge(type, 1, type->ks_objsize);
	SK_TRACK_SHOW(obj, type->ks_objsize);
	if (flags & M_ZERO)
		memset(obj, 0, type->ks_objsize);
	return obj;
}

void
kfree_obj(void *ptr, struct malloc_type *type)
{
	struct sk_kobj_slab *s;
	struct malloc_type *st;
	size_t off, idx, i;
	uint64_t mask, old;

	if (SK_UNLIKELY(ptr == NULL))
		sk_panic("kfree_obj", "trying to free NULL pointer");
	if (SK_UNLIKELY(type == NULL || type->ks_magic != M_MAGIC))
		sk_panic("kfree_obj", "malloc type lacks magic (type %p)",
		    (void *)type);
	s = sk_kobj_slab_of(ptr);
	if (SK_UNLIKELY(!reg_test(s)))
		sk_panic(
		    "kfree_obj", "pointer not from kmalloc_obj (ptr %p)", ptr);
	st = SK_LOAD(&s->type);
	if (SK_UNLIKELY(
	        SK_LOAD_ACQ(&s->magic) != KMALLOC_SLAB_MAGIC || st == NULL))
		sk_panic("kfree_obj",
		    "object of a released slab or a destroyed "
		    "type (ptr %p)",
		    ptr);
	off = (uintptr_t)ptr - (uintptr_t)s - s->offset; /* wraps if below */
	idx = sk_kobj_index(s->objmul, off & KMALLOC_SLAB_MASK);
	if (SK_UNLIKELY(off >= KMALLOC_SLAB_SIZE || idx >= s->ncount ||
	                idx * s->objsize != off))
		sk_panic(
		    "kfree_obj", "not the start of an object (ptr %p)", ptr);
	mask = (uint64_t)1 << (idx & 63);
	old = __atomic_fetch_and(&s->bmap[idx >> 6], ~mask, __ATOMIC_ACQ_REL);
	if (SK_UNLIKELY(!(old & mask)))
		sk_panic("kfree_obj",
		    "double free of an object of '%s' (ptr %p)",
		    st->ks_shortdesc, ptr);
	/* Hidden from a checker before the ring can hand it out again. */
	SK_TRACK_HIDE(ptr, s->objsize);
	/* Statistics before the ring: once xindex moves, s may be retired. */
	stats_charge(st, -1, s->objsize);
	i = __atomic_fetch_add(&s->findex, 1, __ATOMIC_RELAXED) % s->ncount;
	if (SK_UNLIKELY(SK_LOAD(&s->fobjs[i]) != NULL))
		sk_panic("kfree_obj",
		    "free-object ring of '%s' corrupted "
		    "(ptr %p)",
		    st->ks_shortdesc, ptr);
	__atomic_store_n(&s->fobjs[i], ptr, __ATOMIC_RELEASE);
	__atomic_fetch_add(&s->xindex, 1, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ */
/* Views and statistics */

struct sk_kobj_pcpu *
sk_kobj_mine(struct malloc_type *type)
{
	struct sk_kobj_type *kt = kobj_type(type, "sk_kobj_mine");

	return &kt->pcpu[kobj_cpu_get()->id];
}

static size_t
list_free(struct sk_kobj_slab *s, size_t *n)
{
	size_t f = 0;

	for (; s != NULL; s = s->next) {
		f += slab_nfree(s);
		(*n)++;
	}
	return f;
}

void
sk_kobj_view(struct malloc_type *type, struct sk_kobj_view *v)
{
	struct sk_kobj_type *kt = kobj_type(type, "sk_kobj_view");
	size_t dummy;

	memset(v, 0, sizeof(*v));
	v->objsize = type->ks_objsize;
	v->slab_count = kt->slab_count;
	v->slab_offset = kt->slab_offset;
	pthread_mutex_lock(&kt->lock);
	v->npartial = kt->npartial;
	v->nfull = kt->nfull;
	v->nempty = kt->nempty;
	dummy = 0;
	v->free_objs = list_free(kt->partial, &dummy) +
	               list_free(kt->full, &dummy) +
	               list_free(kt->empty, &dummy);
	for (int i = 0; i <= SK_KOBJ_MAXCPU; i++) {
		struct sk_kobj_slab *a = SK_LOAD(&kt->pcpu[i].active);
		struct sk_kobj_slab *b = SK_LOAD(&kt->pcpu[i].alternate);

		if (a != &kslab_dummy) {
			v->active++;
			v->free_objs += slab_nfree(a);
		}
		if (b != &kslab_dummy) {
			v->active++;
			v->free_objs += slab_nfree(b);
		}
	}
	/* Under the lock: the poller moves a slab from "full" to "retired"
	 * under it, and a view must not see it in both or in neither. */
	v->nslabs = SK_LOAD(&kt->nslabs);
	v->retired = SK_LOAD(&kt->retired);
	pthread_mutex_unlock(&kt->lock);
	if (kobj_tls != NULL)
		v->cached = SK_LOAD(&kobj_tls->free_count);
}

void
sk_kobj_stats_print(FILE *fp, int json)
{
	struct kmalloc_type_stats st;
	struct sk_kobj_view v;
	int n = 0;

	if (json)
		fprintf(fp, "  \"kmalloc_obj\": [");
	else if (SK_LOAD_ACQ(&kobj_types) == NULL)
		return; /* no table without kmalloc_obj types */
	else {
		sk_stats_title(fp, "kmalloc_obj zones");
		fprintf(fp,
		    "%19s %7s %7s %7s %8s %6s %7s "
		    "%5s %5s %6s %7s\n",
		    "Type", "ObjSize", "PerSlab", "InUse", "MemUse", "Slabs",
		    "Partial", "Full", "Empty", "Active", "Retired");
	}
	pthread_mutex_lock(&kobj_mtx);
	for (struct sk_kobj_type *kt = kobj_types; kt != NULL; kt = kt->next) {
		sk_type_sum(&kt->t, &st);
		sk_kobj_view(&kt->t, &v);
		if (json) {
			fprintf(fp, "%s\n    {\"type\": \"", n ? "," : "");
			for (const char *p = kt->t.ks_shortdesc; p && *p; p++)
				if (*p == '"' || *p == '\\')
					fprintf(fp, "\\%c", *p);
				else if ((unsigned char)*p < 0x20)
					fprintf(
					    fp, "\\u%04x", (unsigned char)*p);
				else
					fputc(*p, fp);
			fprintf(fp,
			    "\", \"objsize\": %zu, "
			    "\"perslab\": %zu, \"inuse\": %zu, \"memuse\": "
			    "%zu, "
			    "\"slabs\": %zu, \"partial\": %zu, \"full\": %zu, "
			    "\"empty\": %zu, \"active\": %zu, "
			    "\"retired\": %zu}",
			    v.objsize, v.slab_count, st.inuse, st.memuse,
			    v.nslabs, v.npartial, v.nfull, v.nempty, v.active,
			    v.retired);
		} else {
			fprintf(fp,
			    "%19s %7zu %7zu %7zu %7zuK %6zu %7zu %5zu "
			    "%5zu %6zu %7zu\n",
			    kt->t.ks_shortdesc, v.objsize, v.slab_count,
			    st.inuse, (st.memuse + 1023) / 1024, v.nslabs,
			    v.npartial, v.nfull, v.nempty, v.active, v.retired);
		}
		n++;
	}
	pthread_mutex_unlock(&kobj_mtx);
	if (json)
		fprintf(fp, "\n  ]");
}
