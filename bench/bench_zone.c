/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_zone: zalloc/zfree against kmalloc/kfree and malloc/free for one
 * fixed-size object (64 bytes), the A/B pattern of bench/README.md: the same
 * operation sequence for every API, the APIs alternated round by round,
 * one warm-up round, medians of the counted rounds, ratios.
 *
 * Cases, each with 1 and 2 threads (each thread runs its own stream on
 * the shared zone / type / heap):
 *   pair   allocate one object, write it, free it (the cache fast path)
 *   ws     a working set of 1024 objects; each step frees the oldest and
 *          allocates a new one (FIFO: no LIFO reuse of the same pointer)
 * APIs: zone (normal zone, per-thread caches), zone-intr (ZONE_INTERRUPT:
 * the lock-free, signal-safe list), kmalloc (M_WAITOK), malloc (whatever
 * malloc the process has: glibc, or a preloaded peer; see the malloc=
 * line).
 *
 * Usage: bench_zone [steps] [rounds]        the timing table
 *        bench_zone loop API CASE N         only N steps of one API and
 *                                           case, for callgrind: run two
 *                                           N and divide the difference
 *                                           in instructions by the
 *                                           difference in N
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
#include <slabkit/zone.h>

#include "bench_timing.h"

MALLOC_DEFINE(M_BENCHZ, "benchzone", "bench_zone objects");

#define OBJSIZE 64
#define WS      1024
#define NAPI    4
#define NCASE   2

struct obj {
	void *scratch[2]; /* the zone's words */
	long id;
	char pad[OBJSIZE - 2 * sizeof(void *) - sizeof(long)];
};

_Static_assert(sizeof(struct obj) == OBJSIZE, "fixed-size object");

enum api { API_ZONE, API_ZINTR, API_KMALLOC, API_MALLOC };
static const char *api_names[NAPI] = {"zone", "zone-intr", "kmalloc", "malloc"};
static const char *case_names[NCASE] = {"pair", "ws"};

static vm_zone_t zone_normal, zone_intr;
static void *volatile sink;

static inline struct obj *
obj_alloc(enum api api)
{
	struct obj *o;

	switch (api) {
	case API_ZONE:
		o = zalloc(zone_normal);
		break;
	case API_ZINTR:
		o = zalloc(zone_intr);
		break;
	case API_KMALLOC:
		o = kmalloc(sizeof(*o), M_BENCHZ, M_WAITOK);
		break;
	default:
		o = malloc(sizeof(*o));
		break;
	}
	if (o == NULL) {
		fprintf(
		    stderr, "bench_zone: %s: out of memory\n", api_names[api]);
		exit(1);
	}
	return o;
}

static inline void
obj_free(enum api api, struct obj *o)
{
	switch (api) {
	case API_ZONE:
		zfree(zone_normal, o);
		break;
	case API_ZINTR:
		zfree(zone_intr, o);
		break;
	case API_KMALLOC:
		kfree(o, M_BENCHZ);
		break;
	default:
		free(o);
		break;
	}
}

/* The measured loop: steps alloc/free pairs of one case. */
static void
run_case(enum api api, int which, long steps)
{
	struct obj *ws[WS];

	if (which == 0) {
		for (long i = 0; i < steps; i++) {
			struct obj *o = obj_alloc(api);

			o->id = i;
			sink = o;
			obj_free(api, o);
		}
		return;
	}
	for (int i = 0; i < WS; i++) {
		ws[i] = obj_alloc(api);
		ws[i]->id = i;
	}
	for (long i = 0; i < steps; i++) {
		obj_free(api, ws[i % WS]);
		ws[i % WS] = obj_alloc(api);
		ws[i % WS]->id = i;
	}
	for (int i = 0; i < WS; i++)
		obj_free(api, ws[i]);
}

/* run_case through the shared timing helpers (bench_timing.h) */
static void
run_case_any(int api, int which, long steps)
{
	run_case((enum api)api, which, steps);
}

static double
time_case(enum api api, int which, int nthreads, long steps)
{
	return bench_time_case(run_case_any, (int)api, which, nthreads, steps);
}

#define now_s bench_now_s
#define cmp_double bench_cmp_double
#define malloc_name bench_malloc_name

static void
make_zones(void)
{
	zone_normal = zinit("benchzone", sizeof(struct obj), 0, 0);
	/* room for 2 threads' working sets */
	zone_intr =
	    zinit("benchintr", sizeof(struct obj), 4 * WS, ZONE_INTERRUPT);
	if (zone_normal == NULL || zone_intr == NULL) {
		fprintf(stderr, "bench_zone: zinit failed\n");
		exit(1);
	}
}

static int
loop_mode(int argc, char **argv)
{
	int api, which;
	long n;

	if (bench_parse_loop(argc, argv, api_names, NAPI, case_names, NCASE,
		&api, &which, &n) != 0)
		return 2;
	make_zones();
	run_case((enum api)api, which, n);
	return 0;
}

int
main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 2000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	double res[NCASE][2][NAPI];

	if (argc > 1 && strcmp(argv[1], "loop") == 0)
		return loop_mode(argc, argv);
	if (steps <= 0 || rounds <= 0) {
		fprintf(stderr, "usage: bench_zone [steps] [rounds]\n"
		                "       bench_zone loop API CASE N\n");
		return 2;
	}
	make_zones();
	printf("bench_zone: %d-byte objects, %ld steps per thread, "
	       "median of %d rounds (+1 warm-up), malloc=%s\n",
	    OBJSIZE, steps, rounds, malloc_name());
	for (int c = 0; c < NCASE; c++) {
		for (int th = 0; th < 2; th++) {
			double v[NAPI][64];

			for (int r = 0; r <= rounds && r < 64; r++)
				for (int a = 0; a < NAPI; a++) {
					double ns = time_case(
					    (enum api)a, c, th + 1, steps);

					if (r > 0)
						v[a][r - 1] = ns;
				}
			for (int a = 0; a < NAPI; a++) {
				qsort(v[a], (size_t)rounds, sizeof(double),
				    cmp_double);
				res[c][th][a] = v[a][rounds / 2];
			}
		}
	}
	printf("\n%-6s %7s", "case", "threads");
	for (int a = 0; a < NAPI; a++)
		printf(" %10s", api_names[a]);
	printf("   %12s %12s\n", "zone/kmalloc", "zone/malloc");
	for (int c = 0; c < NCASE; c++)
		for (int th = 0; th < 2; th++) {
			printf("%-6s %7d", case_names[c], th + 1);
			for (int a = 0; a < NAPI; a++)
				printf(" %10.2f", res[c][th][a]);
			printf("   %12.2f %12.2f\n",
			    res[c][th][API_ZONE] / res[c][th][API_KMALLOC],
			    res[c][th][API_ZONE] / res[c][th][API_MALLOC]);
		}
	printf("\n(ns per alloc/free pair per thread; ratios < 1: zone "
	       "faster)\n");
	return 0;
}
