/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * objcache storm: many threads get, put, objcache_dtor, hand objects to
 * each other, reclaim and exit, on an unlimited cache, a limited cache
 * used with M_NOWAIT and a limited cache used with M_WAITOK (sleeping and
 * waking under load), then more threads alive at once than there are
 * shard slots (the depot-only path).  Every object carries an id; at the
 * end every id ever constructed must have been destructed exactly once,
 * and no object may have been handed out twice at the same time.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#include <slabkit/objcache.h>

#define OBJ_MAGIC 0x73746f72u
#define MAXIDS    (1 << 20)
#define HOLD_MAX  64
#define NTHREADS  4

struct sobj {
	uint32_t magic;
	uint32_t id;
	int out; /* atomic: 1 while handed out */
	char pad[100];
};

static uint8_t id_state[MAXIDS]; /* atomic: 0 never, 1 alive, 2 gone */
static uint32_t next_id;         /* atomic */
static long ctors, dtors;        /* atomic */
static long errors;              /* atomic: double dtor, bad state */
static long dups;                /* atomic: handed out while out */
static long shared_slot_seen;    /* atomic */

static boolean_t
s_ctor(void *obj, void *priv, int flags)
{
	struct sobj *o = obj;
	uint32_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);

	(void)priv;
	(void)flags;
	if (id >= MAXIDS) {
		__atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
		return FALSE;
	}
	o->magic = OBJ_MAGIC;
	o->id = id;
	__atomic_store_n(&o->out, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&id_state[id], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&ctors, 1, __ATOMIC_RELAXED);
	return TRUE;
}

static void
s_dtor(void *obj, void *priv)
{
	struct sobj *o = obj;

	(void)priv;
	if (o->magic != OBJ_MAGIC || o->id >= MAXIDS ||
	    __atomic_load_n(&o->out, __ATOMIC_RELAXED) != 0 ||
	    __atomic_exchange_n(&id_state[o->id], 2, __ATOMIC_RELAXED) != 1)
		__atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
	o->magic = 0;
	__atomic_fetch_add(&dtors, 1, __ATOMIC_RELAXED);
}

MALLOC_DEFINE(M_STORM, "storm", "objcache storm objects");

static struct objcache_malloc_args storm_args = {sizeof(struct sobj), M_STORM};

static struct objcache *
storm_cache(const char *name, int limit, int nom)
{
	return objcache_create(name, limit, nom, s_ctor, s_dtor, NULL,
	    objcache_malloc_alloc, objcache_malloc_free, &storm_args);
}

static void
took(struct sobj *o)
{
	if (o->magic != OBJ_MAGIC ||
	    __atomic_exchange_n(&o->out, 1, __ATOMIC_RELAXED) != 0)
		__atomic_fetch_add(&dups, 1, __ATOMIC_RELAXED);
}

static void
giving(struct sobj *o)
{
	__atomic_store_n(&o->out, 0, __ATOMIC_RELAXED);
}

/* A mailbox: objects passed from one thread to another. */
static pthread_mutex_t mbox_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct objcache *oc;
	struct sobj *o;
} mbox[256];
static int mbox_n;

static int grabbed; /* atomic */

static struct objcache_stats stats_of(const char *name);

struct worker {
	const char *name;
	struct objcache *oc;
	int flags;
	int hold_max;
	bool use_mbox;   /* mailbox objects count against no hold */
	bool grab_first; /* start by taking hold_max objects */
	long ops;
	uint64_t seed;
	struct objcache **all;
	int nall;
};

static void *
worker_main(void *p)
{
	struct worker *w = p;
	struct sobj *held[HOLD_MAX];
	int nheld = 0;
	uint64_t rs = w->seed;

	while (w->grab_first && nheld < w->hold_max) {
		struct sobj *o = objcache_get(w->oc, w->flags);

		if (o == NULL)
			break;
		took(o);
		held[nheld++] = o;
	}
	if (w->grab_first) {
		/* Hold on until the budget ran out somewhere (together the
		 * grabbers want more than it) or everyone has grabbed. */
		__atomic_fetch_add(&grabbed, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&grabbed, __ATOMIC_SEQ_CST) < NTHREADS &&
		       stats_of(w->name).oc_exhausted == 0)
			usleep(100);
	}
	for (long i = 0; i < w->ops; i++) {
		unsigned r = (unsigned)(sk_t_rand(&rs) % 100);

		if (r < 45 && nheld < w->hold_max) {
			struct sobj *o = objcache_get(w->oc, w->flags);

			if (o == NULL) {
				if (!(w->flags & M_NULLOK))
					__atomic_fetch_add(
					    &errors, 1, __ATOMIC_RELAXED);
				continue;
			}
			took(o);
			held[nheld++] = o;
		} else if (r < 88 && nheld > 0) {
			int k = (int)(sk_t_rand(&rs) % (uint64_t)nheld);
			struct sobj *o = held[k];

			held[k] = held[--nheld];
			giving(o);
			objcache_put(w->oc, o);
		} else if (r < 92 && nheld > 0) {
			struct sobj *o = held[--nheld];

			giving(o);
			objcache_dtor(w->oc, o);
		} else if (r < 96 && nheld > 0 && w->use_mbox) {
			pthread_mutex_lock(&mbox_lock);
			if (mbox_n < 256) {
				mbox[mbox_n].oc = w->oc;
				mbox[mbox_n++].o = held[--nheld];
			}
			pthread_mutex_unlock(&mbox_lock);
		} else if (r < 99 && nheld < w->hold_max && w->use_mbox) {
			struct sobj *o = NULL;

			pthread_mutex_lock(&mbox_lock);
			for (int j = mbox_n - 1; j >= 0; j--) {
				if (mbox[j].oc == w->oc) {
					o = mbox[j].o;
					mbox[j] = mbox[--mbox_n];
					break;
				}
			}
			pthread_mutex_unlock(&mbox_lock);
			if (o != NULL)
				held[nheld++] = o; /* still marked out */
		} else {
			objcache_reclaimlist(w->all, w->nall, M_WAITOK);
		}
	}
	while (nheld > 0) {
		struct sobj *o = held[--nheld];

		giving(o);
		objcache_put(w->oc, o);
	}
	return NULL;
}

static void
drain_mbox(void)
{
	pthread_mutex_lock(&mbox_lock);
	while (mbox_n > 0) {
		mbox_n--;
		giving(mbox[mbox_n].o);
		objcache_put(mbox[mbox_n].oc, mbox[mbox_n].o);
	}
	pthread_mutex_unlock(&mbox_lock);
}

static long
ops_per_thread(void)
{
#if defined(SLABKIT_TSAN) || defined(SLABKIT_ASAN)
	return sk_t_scale(40000);
#else
	return sk_t_scale(400000);
#endif
}

static struct objcache_stats
stats_of(const char *name)
{
	struct objcache_stats all[32], st;
	int n = objcache_stats_snapshot(all, 32);

	memset(&st, 0xff, sizeof(st));
	for (int i = 0; i < n && i < 32; i++)
		if (strcmp(all[i].oc_name, name) == 0)
			st = all[i];
	return st;
}

TEST(storm_get_put_dtor_across_threads)
{
	struct objcache *oc[3];
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	struct sk_oc_sizing sz;
	int hold_waitok;

	static const char *names[3] = {
	    "storm-unlimited", "storm-nowait", "storm-waitok"};

	oc[0] = storm_cache(names[0], 0, 0);
	oc[1] = storm_cache(names[1], 40, 0);
	oc[2] = storm_cache(names[2], 12, 1);
	/* Sleepers never own the whole budget between them, so one of them
	 * always wakes: NTHREADS - 1 sleepers hold less than the budget, and
	 * the last thread of the all-M_WAITOK round uses M_NULLOK (it never
	 * sleeps), while all NTHREADS together can want more than it. */
	sk_objcache_sizing(sk_os_ncpus(), 12, 1, &sz);
	hold_waitok = (int)((sz.budget - 1) / (NTHREADS - 1));
	if (hold_waitok > HOLD_MAX)
		hold_waitok = HOLD_MAX;
	CHECK(hold_waitok >= 2);
	CHECK((long)hold_waitok * NTHREADS >= sz.budget);
	/* Rounds of threads: each round's threads exit, and the next round
	 * adopts their shards and magazines from the depot.  In the last
	 * round every thread uses the M_WAITOK cache: objects cached by one
	 * thread can use up the budget while another asks for more. */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < NTHREADS; i++) {
			int which = round == 3 ? 2 : (i + round) % 3;

			w[i].oc = oc[which];
			w[i].name = names[which];
			w[i].flags = which == 1 ? M_NOWAIT : M_WAITOK;
			if (round == 3 && i == NTHREADS - 1)
				w[i].flags = M_WAITOK | M_NULLOK;
			w[i].hold_max = which == 2 ? hold_waitok : HOLD_MAX;
			w[i].use_mbox = which != 2;
			w[i].grab_first = round == 3;
			w[i].ops = ops_per_thread();
			w[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) +
			            (uint64_t)round;
			w[i].all = oc;
			w[i].nall = 3;
			pthread_create(&t[i], NULL, worker_main, &w[i]);
		}
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		drain_mbox();
	}
	CHECK_EQ(__atomic_load_n(&errors, __ATOMIC_RELAXED), 0);
	CHECK_EQ(__atomic_load_n(&dups, __ATOMIC_RELAXED), 0);
	CHECK_EQ(stats_of("storm-unlimited").oc_used, 0);
	CHECK_EQ(stats_of("storm-nowait").oc_used, 0);
	CHECK_EQ(stats_of("storm-waitok").oc_used, 0);
	CHECK(stats_of("storm-waitok").oc_exhausted > 0);
	for (int i = 0; i < 3; i++)
		objcache_destroy(oc[i]);
	CHECK_EQ(ctors, dtors);
	CHECK_EQ(errors, 0);
	for (uint32_t id = 0; id < next_id && id < MAXIDS; id++) {
		if (id_state[id] != 2) {
			CHECK_EQ(id_state[id], 2);
			break;
		}
	}
	CHECK(next_id > 0);
}

/* More threads alive at once than shard slots. */
#define NMANY (SK_NSLOTS + 8)

static pthread_barrier_t many_barrier;

struct many_arg {
	struct objcache *oc;
	int idx;
};

static void *
many_main(void *p)
{
	struct many_arg *a = p;
	struct sobj *o[4];

	pthread_barrier_wait(&many_barrier);
	for (int rep = 0; rep < 20; rep++) {
		for (int i = 0; i < 4; i++) {
			o[i] = objcache_get(a->oc, M_WAITOK);
			took(o[i]);
		}
		for (int i = 0; i < 4; i++) {
			giving(o[i]);
			objcache_put(a->oc, o[i]);
		}
	}
	if (sk_shard_current()->slot == SK_SLOT_SHARED)
		__atomic_fetch_add(&shared_slot_seen, 1, __ATOMIC_RELAXED);
	/* stay alive until everyone is done, so no shard is re-adopted */
	pthread_barrier_wait(&many_barrier);
	return NULL;
}

TEST(more_threads_than_slots)
{
	struct objcache *oc = storm_cache("storm-many", 0, 0);
	static struct many_arg a[NMANY];
	static pthread_t t[NMANY];
	pthread_attr_t attr;
	long c0 = ctors, d0 = dtors;
	int started = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_barrier_init(&many_barrier, NULL, NMANY);
	for (int i = 0; i < NMANY; i++) {
		a[i].oc = oc;
		a[i].idx = i;
		if (pthread_create(&t[i], &attr, many_main, &a[i]) != 0)
			break;
		started++;
	}
	CHECK_EQ(started, NMANY);
	if (started != NMANY)
		abort(); /* the barrier would never open */
	for (int i = 0; i < NMANY; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&many_barrier);
	pthread_attr_destroy(&attr);
	CHECK(__atomic_load_n(&shared_slot_seen, __ATOMIC_RELAXED) > 0);
	CHECK_EQ(__atomic_load_n(&dups, __ATOMIC_RELAXED), 0);
	CHECK_EQ(stats_of("storm-many").oc_used, 0);
	objcache_destroy(oc);
	CHECK_EQ(ctors - c0, dtors - d0);
	CHECK_EQ(__atomic_load_n(&errors, __ATOMIC_RELAXED), 0);
}

int
main(void)
{
	RUN(storm_get_put_dtor_across_threads);
	RUN(more_threads_than_slots);
	return sk_t_done();
}
