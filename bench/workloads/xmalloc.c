/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * xmalloc: the producer/consumer pattern of the xmalloc-test (Lever and
 * Boreham, "malloc() performance in a multithreaded Linux environment",
 * 2000).  Producer threads allocate small blocks and pass them, in batches,
 * to consumer threads that free them: every free is remote.  The queue is
 * bounded, so the number of live blocks stays small and the test measures
 * how the allocator moves memory from the freeing thread back to the
 * allocating one.
 */
#include "common.h"

#define PRODUCERS 2
#define CONSUMERS 2
#define BATCH     256
#define QDEPTH    64 /* batches in flight per queue */
#define MINSZ     16
#define MAXSZ     256

struct queue {
	pthread_mutex_t mtx;
	pthread_cond_t nonempty, nonfull;
	void **ring[QDEPTH];
	int head, count, closed;
};

static struct queue q[PRODUCERS];
static long batches; /* per producer */

static void
queue_put(struct queue *qu, void **b)
{
	pthread_mutex_lock(&qu->mtx);
	while (qu->count == QDEPTH)
		pthread_cond_wait(&qu->nonfull, &qu->mtx);
	qu->ring[(qu->head + qu->count) % QDEPTH] = b;
	qu->count++;
	pthread_cond_signal(&qu->nonempty);
	pthread_mutex_unlock(&qu->mtx);
}

static void **
queue_get(struct queue *qu)
{
	void **b = NULL;

	pthread_mutex_lock(&qu->mtx);
	while (qu->count == 0 && !qu->closed)
		pthread_cond_wait(&qu->nonempty, &qu->mtx);
	if (qu->count > 0) {
		b = qu->ring[qu->head];
		qu->head = (qu->head + 1) % QDEPTH;
		qu->count--;
		pthread_cond_signal(&qu->nonfull);
	}
	pthread_mutex_unlock(&qu->mtx);
	return b;
}

static void *
producer(void *arg)
{
	int k = (int)(long)arg;
	struct wl_rng r;

	wl_rng_init(&r, (uint64_t)k);
	for (long i = 0; i < batches; i++) {
		void **b = wl_xmalloc(BATCH * sizeof(void *));

		for (int j = 0; j < BATCH; j++) {
			size_t n = wl_range(&r, MINSZ, MAXSZ);
			unsigned char *p = wl_xmalloc(n);

			p[0] = p[n - 1] = (unsigned char)j;
			b[j] = p;
		}
		queue_put(&q[k], b);
	}
	pthread_mutex_lock(&q[k].mtx);
	q[k].closed = 1;
	pthread_cond_broadcast(&q[k].nonempty);
	pthread_mutex_unlock(&q[k].mtx);
	return NULL;
}

static void *
consumer(void *arg)
{
	struct queue *qu = &q[(int)(long)arg % PRODUCERS];
	void **b;

	while ((b = queue_get(qu)) != NULL) {
		for (int j = 0; j < BATCH; j++)
			free(b[j]);
		free(b);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t pt[PRODUCERS], ct[CONSUMERS];
	double t0, t1;

	batches = wl_scaled(24000, wl_scale(argc, argv));
	for (int k = 0; k < PRODUCERS; k++) {
		pthread_mutex_init(&q[k].mtx, NULL);
		pthread_cond_init(&q[k].nonempty, NULL);
		pthread_cond_init(&q[k].nonfull, NULL);
	}
	t0 = wl_now();
	for (int k = 0; k < CONSUMERS; k++)
		wl_spawn(&ct[k], consumer, (void *)(long)k);
	for (int k = 0; k < PRODUCERS; k++)
		wl_spawn(&pt[k], producer, (void *)(long)k);
	for (int k = 0; k < PRODUCERS; k++)
		pthread_join(pt[k], NULL);
	for (int k = 0; k < CONSUMERS; k++)
		pthread_join(ct[k], NULL);
	t1 = wl_now();
	wl_report(
	    "xmalloc", (long)PRODUCERS * batches * BATCH, t1 - t0, "threads=4");
	return 0;
}
