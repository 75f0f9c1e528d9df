/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * thread-scaling: the same total work done by 2, 64 or 1024 threads.  The
 * live set (64Ki blocks of 16-512 B) and the number of replacements (20M
 * at scale 1) are fixed and split evenly among the threads; each thread
 * fills its share of the slots, then replaces a random one per step, and
 * hands about a third of the blocks it replaces to a random other thread,
 * through that thread's mailbox, to be freed there.  The mailboxes share a
 * fixed capacity too, so the blocks in flight do not grow with the number
 * of threads.  Every thread is started, on a 64 KiB stack, before any
 * begins (a barrier), so they all overlap; two more barriers, once every
 * thread has filled its slots and once every thread is done replacing,
 * keep the whole live set live at once however few cores run them.
 *
 * What the program asks of the allocator is the same whatever the number
 * of threads; only the thread stacks grow with it, and they cost every
 * allocator the same.  So the growth of peak RSS from 2 to 1024
 * threads is what the allocator keeps per thread (heaps, caches, arenas),
 * and the growth of the time is what it pays for having more threads than
 * cores.  Second argument: the number of threads (default 64).
 */
#include "common.h"

#include <errno.h>

#define SLOTS_TOTAL (64 * 1024)
#define OPS_TOTAL   20000000L /* replacements at scale 1 */
#define MINSZ       16
#define MAXSZ       512
#define BOX_TOTAL   4096 /* blocks in flight, all mailboxes together */
#define BOX_MIN     4
#define MAX_THREADS 4096
#define STACK_SIZE  (64 * 1024)

struct mailbox {
	pthread_mutex_t mtx;
	void **item;  /* senders append here, under mtx */
	void **spare; /* the owner frees from here, outside mtx */
	int count;
};

struct worker {
	unsigned char **slot;
	int id;
};

static struct mailbox *box;
static struct worker *wk;
static pthread_barrier_t start, phase;
static int nthreads, boxcap;
static long nslots, steps; /* per thread */

/* As many-threads.c's, except that the buffer is read under the lock:
 * drain() swaps it for the spare. */
static void
mail(struct mailbox *m, void *p)
{
	void *old = NULL;

	pthread_mutex_lock(&m->mtx);
	if (m->count == boxcap)
		old = m->item[--m->count];
	m->item[m->count++] = p;
	pthread_mutex_unlock(&m->mtx);
	free(old); /* full: the sender frees the newest waiting block */
}

static void
drain(struct mailbox *m)
{
	void **tmp;
	int n;

	pthread_mutex_lock(&m->mtx);
	tmp = m->item;
	m->item = m->spare;
	m->spare = tmp;
	n = m->count;
	m->count = 0;
	pthread_mutex_unlock(&m->mtx);
	for (int i = 0; i < n; i++)
		free(tmp[i]);
}

static void *
worker(void *arg)
{
	struct worker *w = arg;
	unsigned char **slot = w->slot;
	struct wl_rng r;

	wl_rng_init(&r, (uint64_t)w->id);
	pthread_barrier_wait(&start);
	for (long i = 0; i < nslots; i++) {
		size_t n = wl_range(&r, MINSZ, MAXSZ);

		slot[i] = wl_xmalloc(n);
		slot[i][0] = slot[i][n - 1] = (unsigned char)i;
	}
	/* the whole live set at once, however the threads are scheduled */
	pthread_barrier_wait(&phase);
	for (long s = 0; s < steps; s++) {
		uint64_t x = wl_next(&r);
		size_t i = (size_t)(x % (uint64_t)nslots);
		size_t n = MINSZ + (size_t)((x >> 32) % (MAXSZ - MINSZ + 1));

		if ((x >> 24) % 3 == 0 && nthreads > 1) {
			/* a random thread other than this one */
			int to =
			    (w->id + 1 +
			        (int)((x >> 48) % (uint64_t)(nthreads - 1))) %
			    nthreads;

			mail(&box[to], slot[i]);
		} else {
			free(slot[i]);
		}
		slot[i] = wl_xmalloc(n);
		slot[i][0] = slot[i][n - 1] = (unsigned char)s;
		if (s % boxcap == 0)
			drain(&box[w->id]);
	}
	pthread_barrier_wait(&phase);
	for (long i = 0; i < nslots; i++)
		free(slot[i]);
	drain(&box[w->id]);
	return NULL;
}

int
main(int argc, char **argv)
{
	double scale = wl_scale(argc, argv);
	pthread_attr_t attr;
	pthread_t *t;
	double t0, t1;
	char extra[64];
	int e;

	nthreads = argc > 2 ? atoi(argv[2]) : 64;
	if (nthreads < 1 || nthreads > MAX_THREADS) {
		fprintf(stderr, "thread-scaling: threads must be 1 to %d\n",
		    MAX_THREADS);
		return 2;
	}
	nslots = SLOTS_TOTAL / nthreads > 0 ? SLOTS_TOTAL / nthreads : 1;
	steps = wl_scaled(OPS_TOTAL, scale) / nthreads;
	boxcap =
	    BOX_TOTAL / nthreads > BOX_MIN ? BOX_TOTAL / nthreads : BOX_MIN;

	t = wl_xmalloc((size_t)nthreads * sizeof(*t));
	box = wl_xmalloc((size_t)nthreads * sizeof(*box));
	wk = wl_xmalloc((size_t)nthreads * sizeof(*wk));
	for (int k = 0; k < nthreads; k++) {
		pthread_mutex_init(&box[k].mtx, NULL);
		box[k].item = wl_xmalloc((size_t)boxcap * sizeof(void *));
		box[k].spare = wl_xmalloc((size_t)boxcap * sizeof(void *));
		box[k].count = 0;
		wk[k].slot = wl_xmalloc((size_t)nslots * sizeof(void *));
		wk[k].id = k;
	}
	if (pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1) != 0 ||
	    pthread_barrier_init(&phase, NULL, (unsigned)nthreads) != 0)
		wl_die("pthread_barrier_init");
	/* a small stack, so that 1024 threads are cheap whatever the malloc */
	pthread_attr_init(&attr);
	if (pthread_attr_setstacksize(&attr, STACK_SIZE) != 0)
		wl_die("pthread_attr_setstacksize");
	for (int k = 0; k < nthreads; k++) {
		e = pthread_create(&t[k], &attr, worker, &wk[k]);
		if (e != 0) {
			errno = e;
			perror("thread-scaling: pthread_create");
			return 1;
		}
	}
	pthread_attr_destroy(&attr);
	pthread_barrier_wait(&start);
	t0 = wl_now();
	for (int k = 0; k < nthreads; k++)
		pthread_join(t[k], NULL);
	t1 = wl_now();
	for (int k = 0; k < nthreads; k++) {
		drain(&box[k]);
		pthread_mutex_destroy(&box[k].mtx);
		free(box[k].item);
		free(box[k].spare);
		free(wk[k].slot);
	}
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&phase);
	free(wk);
	free(box);
	free(t);
	snprintf(
	    extra, sizeof(extra), "threads=%d slots=%ld", nthreads, nslots);
	wl_report("thread-scaling", (long)nthreads * (nslots + steps), t1 - t0,
	    extra);
	return 0;
}
