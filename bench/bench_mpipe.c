/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_mpipe: mpipe alloc/free against kmalloc/kfree and malloc/free doing
 * the same job, for one buffer size (256 bytes), with the A/B pattern of
 * bench/README.md: the same operation sequence for every API, the APIs
 * alternated round by round, one warm-up round, medians of the counted
 * rounds, ratios.
 *
 * A pipe zeroes buffers by default, so the fair peers zero too:
 *   mpipe         default flags (zeroed on free, 256 bytes of memset)
 *   kmalloc-zero  kmalloc(M_WAITOK | M_ZERO)
 *   calloc        calloc(1, 256)
 * and without zeroing:
 *   mpipe-nozero  MPF_NOZERO
 *   mpipe-int     MPF_NOZERO | MPF_INT (signals blocked around the lock)
 *   kmalloc       kmalloc(M_WAITOK)
 *   malloc        malloc(256)
 * Cases, each with 1 and 2 threads sharing one pipe / type / heap:
 *   pair   allocate one buffer, write a word, free it
 *   ws     a working set of 64 buffers per thread; each step frees the
 *          oldest and allocates a new one (FIFO)
 * Every pipe has nnom = 256, so no case leaves the reserve.
 *
 * Usage: bench_mpipe [steps] [rounds]
 *        bench_mpipe loop API CASE N    N steps of one API and case (for
 *                                       callgrind: run two N, divide the
 *                                       instruction difference)
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
#include <slabkit/mpipe.h>

#include "bench_timing.h"

MALLOC_DEFINE(M_BENCHMP, "benchmpipe", "bench_mpipe buffers");

#define BUFSIZE 256
#define WS      64
#define NNOM    256
#define NAPI    7
#define NCASE   2

enum api {
	API_MPIPE,
	API_KZERO,
	API_CALLOC,
	API_MPNOZERO,
	API_MPINT,
	API_KMALLOC,
	API_MALLOC
};
static const char *api_names[NAPI] = {"mpipe", "kmalloc-zero", "calloc",
    "mpipe-nozero", "mpipe-int", "kmalloc", "malloc"};
static const char *case_names[NCASE] = {"pair", "ws"};

static struct malloc_pipe pipe_zero, pipe_nozero, pipe_int;
static void *volatile sink;

static inline void *
buf_alloc(enum api api)
{
	void *p;

	switch (api) {
	case API_MPIPE:
		p = mpipe_alloc_nowait(&pipe_zero);
		break;
	case API_MPNOZERO:
		p = mpipe_alloc_nowait(&pipe_nozero);
		break;
	case API_MPINT:
		p = mpipe_alloc_nowait(&pipe_int);
		break;
	case API_KZERO:
		p = kmalloc(BUFSIZE, M_BENCHMP, M_WAITOK | M_ZERO);
		break;
	case API_KMALLOC:
		p = kmalloc(BUFSIZE, M_BENCHMP, M_WAITOK);
		break;
	case API_CALLOC:
		p = calloc(1, BUFSIZE);
		break;
	default:
		p = malloc(BUFSIZE);
		break;
	}
	if (p == NULL) {
		fprintf(stderr, "bench_mpipe: %s: no buffer\n", api_names[api]);
		exit(1);
	}
	return p;
}

static inline void
buf_free(enum api api, void *p)
{
	switch (api) {
	case API_MPIPE:
		mpipe_free(&pipe_zero, p);
		break;
	case API_MPNOZERO:
		mpipe_free(&pipe_nozero, p);
		break;
	case API_MPINT:
		mpipe_free(&pipe_int, p);
		break;
	case API_KZERO:
	case API_KMALLOC:
		kfree(p, M_BENCHMP);
		break;
	default:
		free(p);
		break;
	}
}

static void
run_case(enum api api, int which, long steps)
{
	long *ws[WS];

	if (which == 0) {
		for (long i = 0; i < steps; i++) {
			long *p = buf_alloc(api);

			p[0] = i;
			sink = p;
			buf_free(api, p);
		}
		return;
	}
	for (int i = 0; i < WS; i++) {
		ws[i] = buf_alloc(api);
		ws[i][0] = i;
	}
	for (long i = 0; i < steps; i++) {
		buf_free(api, ws[i % WS]);
		ws[i % WS] = buf_alloc(api);
		ws[i % WS][0] = i;
	}
	for (int i = 0; i < WS; i++)
		buf_free(api, ws[i]);
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
make_pipes(void)
{
	mpipe_init(
	    &pipe_zero, M_BENCHMP, BUFSIZE, NNOM, NNOM, 0, NULL, NULL, NULL);
	mpipe_init(&pipe_nozero, M_BENCHMP, BUFSIZE, NNOM, NNOM, MPF_NOZERO,
	    NULL, NULL, NULL);
	mpipe_init(&pipe_int, M_BENCHMP, BUFSIZE, NNOM, NNOM,
	    MPF_NOZERO | MPF_INT, NULL, NULL, NULL);
}

static int
loop_mode(int argc, char **argv)
{
	int api, which;
	long n;

	if (bench_parse_loop(argc, argv, api_names, NAPI, case_names, NCASE,
		&api, &which, &n) != 0)
		return 2;
	make_pipes();
	run_case((enum api)api, which, n);
	return 0;
}

int
main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 1000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	static double v[NAPI][64];
	double res[NCASE][2][NAPI];

	if (argc > 1 && strcmp(argv[1], "loop") == 0)
		return loop_mode(argc, argv);
	if (steps <= 0 || rounds <= 0 || rounds > 63) {
		fprintf(stderr, "usage: bench_mpipe [steps] [rounds]\n"
		                "       bench_mpipe loop API CASE N\n");
		return 2;
	}
	make_pipes();
	printf("bench_mpipe: %d-byte buffers, %ld steps per thread, median "
	       "of %d rounds (+1 warm-up), malloc=%s\n",
	    BUFSIZE, steps, rounds, malloc_name());
	for (int c = 0; c < NCASE; c++) {
		for (int th = 0; th < 2; th++) {
			for (int r = 0; r <= rounds; r++)
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
	printf("\n%-5s %3s", "case", "thr");
	for (int a = 0; a < NAPI; a++)
		printf(" %12s", api_names[a]);
	printf("\n");
	for (int c = 0; c < NCASE; c++)
		for (int th = 0; th < 2; th++) {
			printf("%-5s %3d", case_names[c], th + 1);
			for (int a = 0; a < NAPI; a++)
				printf(" %12.2f", res[c][th][a]);
			printf("\n");
		}
	printf("\nratios (< 1: mpipe faster)\n%-5s %3s %14s %14s %14s "
	       "%14s\n",
	    "case", "thr", "mpipe/kzero", "mpipe/calloc", "nozero/kmalloc",
	    "nozero/malloc");
	for (int c = 0; c < NCASE; c++)
		for (int th = 0; th < 2; th++) {
			double *r = res[c][th];

			printf("%-5s %3d %14.2f %14.2f %14.2f %14.2f\n",
			    case_names[c], th + 1, r[API_MPIPE] / r[API_KZERO],
			    r[API_MPIPE] / r[API_CALLOC],
			    r[API_MPNOZERO] / r[API_KMALLOC],
			    r[API_MPNOZERO] / r[API_MALLOC]);
		}
	printf("\n(ns per alloc/free pair per thread)\n");
	mpipe_done(&pipe_zero);
	mpipe_done(&pipe_nozero);
	mpipe_done(&pipe_int);
	return 0;
}
