/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mpipe stress: many threads hammer one pipe with mpipe_alloc_nowait,
 * mpipe_alloc_waitok, mpipe_alloc_callback, mpipe_wait and mpipe_free.
 * Every buffer carries an owner word taken with an atomic exchange, so a
 * buffer handed out twice is caught; at the end every buffer is back,
 * nothing was lost, total_count stayed within [nnom, nmax], construct and
 * deconstruct balance, and mpipe_done finds nothing outstanding.
 *
 * Progress: a thread only calls a blocking entry point while it holds no
 * buffer, and threads that hold buffers never block, so some buffer is
 * always on its way back to the pipe.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include <slabkit/mpipe.h>
#include <slabkit/stats.h>

#include "harness.h"
#include "internal.h"

#define NTHREADS 8
#define MAXHELD  3
#define BUFSZ    64

struct buf {
	atomic_int owner; /* 0 free, else thread id + 1 */
	int stamp;
	char rest[BUFSZ - 2 * sizeof(int)];
};

struct shared {
	struct malloc_pipe mp;
	atomic_long handed, freed, dup, dirty, cb_timeouts;
	atomic_int ctor, dtor;
	atomic_int max_total_seen;
};

struct worker {
	struct shared *sh;
	pthread_barrier_t *bar;
	int id;
	uint64_t seed;
	long iters;
	long n_nowait, n_waitok, n_callback, n_wait;
	atomic_int flag; /* set by our queued callback; outlives the call */
};

static void
ctor(void *b, void *priv)
{
	(void)b;
	atomic_fetch_add(&((struct shared *)priv)->ctor, 1);
}

static void
dtor(void *b, void *priv)
{
	(void)b;
	atomic_fetch_add(&((struct shared *)priv)->dtor, 1);
}

static void
cb_flag(void *arg1, void *arg2)
{
	(void)arg2;
	atomic_store((atomic_int *)arg1, 1);
}

static void
receive(struct worker *w, struct buf *b)
{
	struct shared *sh = w->sh;
	int old = atomic_exchange(&b->owner, w->id + 1);

	if (old != 0)
		atomic_fetch_add(&sh->dup, 1);
	if (b->stamp != 0) /* zeroed on free and when new */
		atomic_fetch_add(&sh->dirty, 1);
	b->stamp = w->id + 1;
	atomic_fetch_add(&sh->handed, 1);
}

static void
give_back(struct worker *w, struct buf *b)
{
	struct shared *sh = w->sh;

	if (b->stamp != w->id + 1 || atomic_exchange(&b->owner, 0) != w->id + 1)
		atomic_fetch_add(&sh->dup, 1);
	atomic_fetch_add(&sh->freed, 1);
	mpipe_free(&sh->mp, b);
}

/* Queue a callback and wait for it; retry until a buffer comes. */
static struct buf *
alloc_by_callback(struct worker *w)
{
	struct malloc_pipe *mp = &w->sh->mp;
	struct buf *b;

	for (;;) {
		atomic_store(&w->flag, 0);
		b = mpipe_alloc_callback(mp, cb_flag, &w->flag, NULL);
		if (b != NULL)
			return b;
		for (long spin = 0; !atomic_load(&w->flag); spin++) {
			struct timespec ts = {0, 50000};

			if (spin > 200000) { /* 10 s */
				atomic_fetch_add(&w->sh->cb_timeouts, 1);
				return mpipe_alloc_waitok(mp);
			}
			nanosleep(&ts, NULL);
		}
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct malloc_pipe *mp = &w->sh->mp;
	struct buf *held[MAXHELD], *b;
	int nheld = 0;

	pthread_barrier_wait(w->bar);

	for (long i = 0; i < w->iters; i++) {
		unsigned r = (unsigned)(sk_t_rand(&w->seed) % 16);

		if (nheld == MAXHELD || (nheld > 0 && r < 6)) {
			unsigned k = (unsigned)(sk_t_rand(&w->seed) % nheld);

			give_back(w, held[k]);
			held[k] = held[--nheld];
			continue;
		}
		b = NULL;
		if (nheld > 0 || r < 10) {
			b = mpipe_alloc_nowait(mp);
			w->n_nowait++;
		} else if (r < 13) {
			b = mpipe_alloc_waitok(mp);
			w->n_waitok++;
			if (b == NULL)
				atomic_fetch_add(&w->sh->dup, 1000);
		} else if (r < 15) {
			b = alloc_by_callback(w);
			w->n_callback++;
		} else {
			mpipe_wait(mp);
			w->n_wait++;
		}
		if (b != NULL) {
			receive(w, b);
			held[nheld++] = b;
		}
		if (nheld > 0 && (r & 3) == 0)
			sched_yield(); /* hold buffers across a switch */
		if ((i & 255) == 0) {
			struct malloc_pipe s;

			sk_mpipe_snapshot(mp, &s);
			if (s.total_count > atomic_load(&w->sh->max_total_seen))
				atomic_store(
				    &w->sh->max_total_seen, s.total_count);
		}
	}
	while (nheld > 0)
		give_back(w, held[--nheld]);
	return NULL;
}

static void
hammer(int nnom, int nmax, long iters)
{
	static struct shared sh;
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct malloc_type *t = NULL;
	struct kmalloc_type_stats st;
	long nw = 0, nk = 0, nc = 0, nwait = 0;
	pthread_barrier_t bar;

	memset(&sh, 0, sizeof(sh));
	pthread_barrier_init(&bar, NULL, NTHREADS);
	kmalloc_create(&t, "mp_stress");
	mpipe_init(&sh.mp, t, sizeof(struct buf), nnom, nmax, MPF_CALLBACK,
	    ctor, dtor, &sh);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){&sh, &bar, i,
		    0x9e3779b97f4a7c15ULL * (i + 1), iters, 0, 0, 0, 0, 0};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		nw += w[i].n_waitok;
		nk += w[i].n_nowait;
		nc += w[i].n_callback;
		nwait += w[i].n_wait;
	}
	CHECK_EQ(atomic_load(&sh.dup), 0);
	CHECK_EQ(atomic_load(&sh.dirty), 0);
	CHECK_EQ(atomic_load(&sh.cb_timeouts), 0);
	CHECK_EQ(atomic_load(&sh.handed), atomic_load(&sh.freed));
	CHECK(atomic_load(&sh.handed) > 0);
	CHECK(nw > 0 && nk > 0 && nc > 0 && nwait > 0);
	CHECK(atomic_load(&sh.max_total_seen) <= sh.mp.max_count);
	/* Nothing lost: every buffer is back in the pipe. */
	CHECK_EQ(sh.mp.free_count, sh.mp.total_count);
	CHECK(sh.mp.total_count >= nnom);
	CHECK(sh.mp.total_count <= sh.mp.max_count);
	CHECK(sh.mp.free_count <= nnom);
	CHECK_EQ(
	    atomic_load(&sh.ctor) - atomic_load(&sh.dtor), sh.mp.total_count);
	printf("  nnom %d nmax %d: %ld handed out (%ld nowait, %ld waitok, "
	       "%ld callback, %ld wait), %llu sleeps, %llu callbacks run\n",
	    nnom, sh.mp.max_count, atomic_load(&sh.handed), nk, nw, nc, nwait,
	    (unsigned long long)sh.mp.st_waits,
	    (unsigned long long)sh.mp.st_callbacks);
	mpipe_done(&sh.mp);
	pthread_barrier_destroy(&bar);
	CHECK_EQ(atomic_load(&sh.ctor), atomic_load(&sh.dtor));
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.inuse, 0);
	kmalloc_destroy(&t);
}

/* The reserve only: nmax == nnom, far fewer buffers than wanted. */
TEST(stress_reserve_only)
{
	hammer(6, 0, sk_t_scale(150000));
}

/* Reserve plus overflow: kmalloc, deconstruct on overflow frees. */
TEST(stress_with_overflow)
{
	hammer(4, 12, sk_t_scale(150000));
}

int
main(void)
{
	RUN(stress_reserve_only);
	RUN(stress_with_overflow);
	return sk_t_done();
}
