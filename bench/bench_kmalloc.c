/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_kmalloc: kmalloc/kfree against malloc/free doing the same job, the
 * A/B micro-benchmark pattern (same operation sequence, the two APIs
 * alternated round by round, medians compared).  Cases:
 *
 *   pair-32       allocate 32 bytes and free it at once (the fast path,
 *                 and the "empty slab" case: one live object)
 *   random-small  a working set of 4096 blocks of 8-512 bytes, a random
 *                 one replaced at each step (mixed size classes)
 *   remote-64     thread A allocates 64-byte blocks, thread B frees them
 *                 (2 threads only: every free is remote)
 *
 * each with 1 and 2 threads (every thread runs the case on its own data).
 * "malloc" is whatever malloc the process has: glibc, or a peer when
 * bench/run.sh preloads one; the malloc= line says which.
 * Usage: bench_kmalloc [scale] [rounds]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slabkit/kmalloc.h>

#include "bench_timing.h"

MALLOC_DEFINE(M_BENCH, "bench", "bench_kmalloc blocks");

#define SLOTS 4096
#define MINSZ 8
#define MAXSZ 512
#define RING  1024 /* remote-64 hand-off ring */

enum api { API_KMALLOC, API_MALLOC };

struct job {
	enum api api;
	int which; /* case index */
	int id;    /* thread index */
	long steps;
	struct job *peer; /* remote-64: the other side */
};

static void *volatile *ring;
static _Atomic long ring_head, ring_tail;

static inline void *
bench_alloc(enum api api, size_t n)
{
	void *p =
	    api == API_KMALLOC ? kmalloc(n, M_BENCH, M_WAITOK) : malloc(n);

	if (p == NULL) {
		fprintf(stderr, "bench_kmalloc: out of memory\n");
		exit(1);
	}
	return p;
}

static inline void
bench_free(enum api api, void *p)
{
	if (api == API_KMALLOC)
		kfree(p, M_BENCH);
	else
		free(p);
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
run_pair32(struct job *j)
{
	for (long s = 0; s < j->steps; s++) {
		unsigned char *volatile p = bench_alloc(j->api, 32);

		p[0] = (unsigned char)s;
		bench_free(j->api, p);
	}
}

static void
run_random_small(struct job *j)
{
	unsigned char **slot = calloc(SLOTS, sizeof(*slot));
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(j->id + 1);

	for (int i = 0; i < SLOTS; i++)
		slot[i] = bench_alloc(j->api, MINSZ + (size_t)i % MAXSZ);
	for (long s = 0; s < j->steps; s++) {
		uint64_t x = rng_next(&seed);
		size_t i = (size_t)(x % SLOTS);
		size_t n = MINSZ + (size_t)((x >> 32) % (MAXSZ - MINSZ + 1));

		bench_free(j->api, slot[i]);
		slot[i] = bench_alloc(j->api, n);
		slot[i][0] = slot[i][n - 1] = (unsigned char)s;
	}
	for (int i = 0; i < SLOTS; i++)
		bench_free(j->api, slot[i]);
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
		bench_free(j->api, ring[ring_tail % RING]);
		ring_tail++;
	}
}

static const struct bcase {
	const char *name;
	void (*fn)(struct job *);
	long steps; /* per thread, at scale 1 */
	int threads[2];
} cases[] = {
    {"pair-32", run_pair32, 20000000, {1, 2}},
    {"random-small", run_random_small, 10000000, {1, 2}},
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
		j[k] = (struct job){api, which, k, steps, NULL};
		if (pthread_create(&t[k], NULL, thread_main, &j[k]) != 0) {
			fprintf(stderr, "bench_kmalloc: pthread_create\n");
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


static const char *
malloc_provider(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");

	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
		return "unknown";
	return info.dli_fname;
}

int
main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	double kt[16], mt[16];

	if (scale <= 0)
		scale = 1.0;
	if (rounds < 1 || rounds > 16)
		rounds = 5;
	ring = calloc(RING, sizeof(void *));
	printf("bench_kmalloc: kmalloc/kfree against malloc/free, "
	       "median of %d alternating rounds, ns per pair\n",
	    rounds);
	printf("malloc=%s\n", malloc_provider());
	printf("%-14s %7s %9s %9s %7s\n", "case", "threads", "kmalloc",
	    "malloc", "ratio");
	for (int c = 0; c < (int)(sizeof(cases) / sizeof(cases[0])); c++) {
		for (int ti = 0; ti < 2 && cases[c].threads[ti]; ti++) {
			int nt = cases[c].threads[ti];
			long steps = (long)((double)cases[c].steps * scale);

			if (steps < 1000)
				steps = 1000;
			/* warm-up, then A B A B ... */
			run_once(c, nt, API_KMALLOC, steps / 10);
			run_once(c, nt, API_MALLOC, steps / 10);
			for (int r = 0; r < rounds; r++) {
				kt[r] = run_once(c, nt, API_KMALLOC, steps);
				mt[r] = run_once(c, nt, API_MALLOC, steps);
			}
			qsort(kt, (size_t)rounds, sizeof(double), bench_cmp_double);
			qsort(mt, (size_t)rounds, sizeof(double), bench_cmp_double);
			printf("%-14s %7d %9.2f %9.2f %7.2f\n", cases[c].name,
			    nt, kt[rounds / 2], mt[rounds / 2],
			    kt[rounds / 2] / mt[rounds / 2]);
			fflush(stdout);
		}
	}
	return 0;
}
