/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_kmalloc_obj: kmalloc_obj/kfree_obj against kmalloc/kfree doing the
 * same job on objects of one size (the choice kernel code makes between a
 * kmalloc_obj zone and a plain malloc type), in the A/B pattern of
 * bench_kmalloc (same operation sequence, the two APIs alternated round by
 * round, medians compared).  Cases:
 *
 *   pair-64       allocate a 64-byte object and free it at once (the
 *                 active slab's ring against kmalloc's fast path)
 *   set-200       a working set of 4096 objects of 200 bytes, a random one
 *                 replaced at each step (slab rotation, FIFO ring reuse)
 *   remote-64     thread A allocates 64-byte objects, thread B frees them
 *                 (2 threads only: every free is a lock-free remote free)
 *
 * pair and set with 1 and 2 threads (every thread runs the case on its own
 * data).  The poller runs at its default rate.
 * Usage: bench_kmalloc_obj [scale] [rounds]; QUICK=1 in the environment
 * (bench/run.sh quick mode) makes the defaults 0.2 and 3.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slabkit/kmalloc.h>

#include "bench_timing.h"

MALLOC_DEFINE(M_BENCH, "bench_obj_kmalloc", "bench_kmalloc_obj kmalloc blocks");
static struct malloc_type *obj64, *obj200;

#define SLOTS 4096
#define RING  1024 /* remote-64 hand-off ring */

enum api { API_KMALLOC_OBJ, API_KMALLOC };

struct job {
	enum api api;
	int which; /* case index */
	int id;    /* thread index */
	long steps;
};

static void *volatile *ring;
static _Atomic long ring_head, ring_tail;

static inline void *
bench_alloc(enum api api, size_t n)
{
	struct malloc_type *t = n == 64 ? obj64 : obj200;

	return api == API_KMALLOC_OBJ ? kmalloc_obj(n, t, M_WAITOK)
	                              : kmalloc(n, M_BENCH, M_WAITOK);
}

static inline void
bench_free(enum api api, size_t n, void *p)
{
	if (api == API_KMALLOC_OBJ)
		kfree_obj(p, n == 64 ? obj64 : obj200);
	else
		kfree(p, M_BENCH);
}

static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static void
run_pair64(struct job *j)
{
	for (long s = 0; s < j->steps; s++) {
		unsigned char *volatile p = bench_alloc(j->api, 64);

		p[0] = (unsigned char)s;
		bench_free(j->api, 64, p);
	}
}

static void
run_set200(struct job *j)
{
	unsigned char **slot = calloc(SLOTS, sizeof(*slot));
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(j->id + 1);

	for (int i = 0; i < SLOTS; i++)
		slot[i] = bench_alloc(j->api, 200);
	for (long s = 0; s < j->steps; s++) {
		size_t i = (size_t)(rng_next(&seed) % SLOTS);

		bench_free(j->api, 200, slot[i]);
		slot[i] = bench_alloc(j->api, 200);
		slot[i][0] = slot[i][199] = (unsigned char)s;
	}
	for (int i = 0; i < SLOTS; i++)
		bench_free(j->api, 200, slot[i]);
	free(slot);
}

/* Single-producer single-consumer ring: id 0 allocates, id 1 frees. */
static void
run_remote64(struct job *j)
{
	if (j->id == 0) {
		for (long s = 0; s < j->steps; s++) {
			unsigned char *p = bench_alloc(j->api, 64);

			p[0] = (unsigned char)s;
			while (ring_head - ring_tail >= RING)
				sched_yield();
			ring[ring_head % RING] = p;
			ring_head++;
		}
		return;
	}
	for (long s = 0; s < j->steps; s++) {
		while (ring_tail == ring_head)
			sched_yield();
		bench_free(j->api, 64, ring[ring_tail % RING]);
		ring_tail++;
	}
}

static const struct bcase {
	const char *name;
	void (*fn)(struct job *);
	long steps; /* per thread, at scale 1 */
	int threads[2];
} cases[] = {
    {"pair-64", run_pair64, 20000000, {1, 2}},
    {"set-200", run_set200, 10000000, {1, 2}},
    {"remote-64", run_remote64, 4000000, {2, 0}},
};

static void *
thread_main(void *arg)
{
	struct job *j = arg;

	cases[j->which].fn(j);
	return NULL;
}


/* One timed run; returns nanoseconds per allocation/free pair. */
static double
run_once(int which, int nthreads, enum api api, long steps)
{
	pthread_t t[2];
	struct job j[2];
	double t0;

	ring_head = ring_tail = 0;
	t0 = bench_now_s();
	for (int k = 0; k < nthreads; k++) {
		j[k] = (struct job){api, which, k, steps};
		if (pthread_create(&t[k], NULL, thread_main, &j[k]) != 0) {
			fprintf(stderr, "bench_kmalloc_obj: pthread_create\n");
			exit(1);
		}
	}
	for (int k = 0; k < nthreads; k++)
		pthread_join(t[k], NULL);
	/* remote-64: two threads, but one pair per step */
	if (cases[which].fn == run_remote64)
		nthreads = 1;
	return (bench_now_s() - t0) * 1e9 / ((double)steps * nthreads);
}


int
main(int argc, char **argv)
{
	const char *quick = getenv("QUICK");
	bool q = quick != NULL && strcmp(quick, "1") == 0;
	double scale = argc > 1 ? atof(argv[1]) : q ? 0.2 : 1.0;
	int rounds = argc > 2 ? atoi(argv[2]) : q ? 3 : 5;
	double kt[16], mt[16];

	if (scale <= 0)
		scale = 1.0;
	if (rounds < 1 || rounds > 16)
		rounds = 5;
	ring = calloc(RING, sizeof(void *));
	kmalloc_create_obj(&obj64, "bench_obj64", 64);
	kmalloc_create_obj(&obj200, "bench_obj200", 200);
	printf("bench_kmalloc_obj: kmalloc_obj/kfree_obj against "
	       "kmalloc/kfree, median of %d alternating rounds, ns per pair\n",
	    rounds);
	printf("%-14s %7s %11s %9s %7s\n", "case", "threads", "kmalloc_obj",
	    "kmalloc", "ratio");
	for (int c = 0; c < (int)(sizeof(cases) / sizeof(cases[0])); c++) {
		for (int ti = 0; ti < 2 && cases[c].threads[ti]; ti++) {
			int nt = cases[c].threads[ti];
			long steps = (long)((double)cases[c].steps * scale);

			if (steps < 1000)
				steps = 1000;
			/* warm-up, then A B A B ... */
			run_once(c, nt, API_KMALLOC_OBJ, steps / 10);
			run_once(c, nt, API_KMALLOC, steps / 10);
			for (int r = 0; r < rounds; r++) {
				kt[r] = run_once(c, nt, API_KMALLOC_OBJ, steps);
				mt[r] = run_once(c, nt, API_KMALLOC, steps);
			}
			qsort(kt, (size_t)rounds, sizeof(double), bench_cmp_double);
			qsort(mt, (size_t)rounds, sizeof(double), bench_cmp_double);
			printf("%-14s %7d %11.2f %9.2f %7.2f\n", cases[c].name,
			    nt, kt[rounds / 2], mt[rounds / 2],
			    kt[rounds / 2] / mt[rounds / 2]);
			fflush(stdout);
		}
	}
	kmalloc_destroy_obj(&obj64);
	kmalloc_destroy_obj(&obj200);
	return 0;
}
