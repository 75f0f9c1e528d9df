/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * many-threads: far more threads than cores (64 on a 2-core machine), each
 * churning its own small working set, with every fourth block handed to a
 * neighbour thread to free (the thread-scaling run of allocator benchmark
 * suites).  Measures per-thread overhead: the memory each thread's heap or
 * cache keeps, and the cost of threads preempting each other inside the
 * allocator.
 */
#include "common.h"

#define THREADS 64
#define SLOTS   256
#define MINSZ   8
#define MAXSZ   256
#define MAILBOX 64

struct mailbox {
	pthread_mutex_t mtx;
	void *item[MAILBOX];
	int count;
};

static struct mailbox box[THREADS];
static long steps;

static void
mail(struct mailbox *m, void *p)
{
	void *old = NULL;

	pthread_mutex_lock(&m->mtx);
	if (m->count == MAILBOX)
		old = m->item[--m->count];
	m->item[m->count++] = p;
	pthread_mutex_unlock(&m->mtx);
	free(old); /* full: the sender frees the newest waiting block */
}

static void
drain(struct mailbox *m)
{
	void *tmp[MAILBOX];
	int n;

	pthread_mutex_lock(&m->mtx);
	n = m->count;
	memcpy(tmp, m->item, (size_t)n * sizeof(void *));
	m->count = 0;
	pthread_mutex_unlock(&m->mtx);
	for (int i = 0; i < n; i++)
		free(tmp[i]);
}

static void *
worker(void *arg)
{
	int id = (int)(long)arg;
	unsigned char *slot[SLOTS] = {0};
	struct wl_rng r;

	wl_rng_init(&r, (uint64_t)id);
	for (long s = 0; s < steps; s++) {
		uint64_t x = wl_next(&r);
		size_t i = (size_t)(x % SLOTS);
		size_t n = MINSZ + (size_t)((x >> 32) % (MAXSZ - MINSZ + 1));

		if (slot[i] != NULL) {
			if ((x >> 24) % 4 == 0)
				mail(&box[(id + 1) % THREADS], slot[i]);
			else
				free(slot[i]);
		}
		slot[i] = wl_xmalloc(n);
		slot[i][0] = slot[i][n - 1] = (unsigned char)s;
		if (s % 1024 == 0)
			drain(&box[id]);
	}
	for (int i = 0; i < SLOTS; i++)
		free(slot[i]);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t t[THREADS];
	double t0, t1;

	steps = wl_scaled(500000, wl_scale(argc, argv));
	for (int k = 0; k < THREADS; k++)
		pthread_mutex_init(&box[k].mtx, NULL);
	t0 = wl_now();
	for (int k = 0; k < THREADS; k++)
		wl_spawn(&t[k], worker, (void *)(long)k);
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	t1 = wl_now();
	for (int k = 0; k < THREADS; k++)
		drain(&box[k]);
	wl_report("many-threads", (long)THREADS * steps, t1 - t0, "threads=64");
	return 0;
}
