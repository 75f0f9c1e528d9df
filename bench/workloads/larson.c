/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * larson: the server simulation of Larson and Krishnan ("Memory allocation
 * for long-running server applications", ISMM 1998).  Several worker
 * lineages run at once; each owns an array of blocks and replaces a random
 * slot with a block of a random size, over and over.  After a fixed number
 * of steps the worker starts its successor, hands it the array and exits,
 * so every block is freed by a thread other than the one that allocated it,
 * by then a thread that no longer exists: remote frees plus thread churn.
 */
#include "common.h"

#define LINEAGES    4
#define SLOTS       2000
#define MINSZ       8
#define MAXSZ       1000
#define GENERATIONS 40

struct lineage {
	unsigned char *slot[SLOTS];
	struct wl_rng r;
	long steps; /* replacements per generation */
	int gen;
};

static pthread_mutex_t done_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done;

static void *
worker(void *arg)
{
	struct lineage *l = arg;
	pthread_t next;

	for (long s = 0; s < l->steps; s++) {
		uint64_t x = wl_next(&l->r);
		size_t i = (size_t)(x % SLOTS);
		size_t n = MINSZ + (size_t)((x >> 32) % (MAXSZ - MINSZ + 1));

		free(l->slot[i]);
		l->slot[i] = wl_xmalloc(n);
		l->slot[i][0] = l->slot[i][n - 1] = (unsigned char)s;
	}
	if (++l->gen < GENERATIONS) {
		wl_spawn(&next, worker, l);
		pthread_detach(next);
		return NULL;
	}
	pthread_mutex_lock(&done_mtx);
	done++;
	pthread_cond_signal(&done_cv);
	pthread_mutex_unlock(&done_mtx);
	return NULL;
}

int
main(int argc, char **argv)
{
	long steps = wl_scaled(300000, wl_scale(argc, argv));
	static struct lineage lin[LINEAGES];
	pthread_t t;
	double t0, t1;

	for (int k = 0; k < LINEAGES; k++) {
		struct lineage *l = &lin[k];

		wl_rng_init(&l->r, (uint64_t)k);
		l->steps = steps;
		for (int i = 0; i < SLOTS; i++) {
			size_t n = wl_range(&l->r, MINSZ, MAXSZ);

			l->slot[i] = wl_xmalloc(n);
			l->slot[i][0] = 1;
		}
	}
	t0 = wl_now();
	for (int k = 0; k < LINEAGES; k++) {
		wl_spawn(&t, worker, &lin[k]);
		pthread_detach(t);
	}
	pthread_mutex_lock(&done_mtx);
	while (done < LINEAGES)
		pthread_cond_wait(&done_cv, &done_mtx);
	pthread_mutex_unlock(&done_mtx);
	t1 = wl_now();
	for (int k = 0; k < LINEAGES; k++)
		for (int i = 0; i < SLOTS; i++)
			free(lin[k].slot[i]);
	wl_report("larson", (long)LINEAGES * GENERATIONS * steps, t1 - t0,
	    "threads=4");
	return 0;
}
