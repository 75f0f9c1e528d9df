/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Timing helpers shared by the native-API benchmarks (bench_zone.c,
 * bench_mpipe.c; bench_kmalloc.c and bench_kmalloc_obj.c use the clock
 * and the comparison): run one case on 1 or 2 threads released together by a
 * barrier, and time it from the first thread's start to the last one's end
 * (the main thread may not run at all while the workers do, on a busy
 * 2-core machine).
 */
#ifndef BENCH_TIMING_H
#define BENCH_TIMING_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One case: `steps' iterations of API `api', variant `which'. */
typedef void bench_run_fn(int api, int which, long steps);

struct bench_job {
	bench_run_fn *run;
	int	api;
	int	which;
	long	steps;
	pthread_barrier_t *bar;
	double	start, end;	/* measured by the thread itself */
};

static inline double
bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void *
bench_job_main(void *arg)
{
	struct bench_job *j = arg;

	pthread_barrier_wait(j->bar);
	j->start = bench_now_s();
	j->run(j->api, j->which, j->steps);
	j->end = bench_now_s();
	return NULL;
}

/* Nanoseconds per step of each thread, nthreads (1 or 2) at once. */
static inline double
bench_time_case(bench_run_fn *run, int api, int which, int nthreads,
    long steps)
{
	pthread_barrier_t bar;
	pthread_t t[2];
	struct bench_job j[2];
	double start, end;

	pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		j[i] = (struct bench_job){run, api, which, steps, &bar, 0, 0};
		pthread_create(&t[i], NULL, bench_job_main, &j[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	start = j[0].start;
	end = j[0].end;
	for (int i = 1; i < nthreads; i++) {
		if (j[i].start < start)
			start = j[i].start;
		if (j[i].end > end)
			end = j[i].end;
	}
	return (end - start) * 1e9 / (double)steps;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The file name of the library that provides malloc (preload check). */
static inline const char *
bench_malloc_name(void)
{
	Dl_info info;

	if (dladdr((void *)(uintptr_t)malloc, &info) == 0 ||
	    info.dli_fname == NULL)
		return "unknown";
	return strrchr(info.dli_fname, '/') != NULL
	           ? strrchr(info.dli_fname, '/') + 1
	           : info.dli_fname;
}

/*
 * The "loop API CASE N" command line of the callgrind mode: finds API and
 * CASE among the names given; returns 0, or 2 (usage) when either is
 * unknown or N is not positive.
 */
static inline int
bench_parse_loop(int argc, char **argv, const char *const *apis, int napi,
    const char *const *cases, int ncase, int *api, int *which, long *n)
{
	*api = *which = -1;
	if (argc < 5)
		return 2;
	for (int i = 0; i < napi; i++)
		if (strcmp(argv[2], apis[i]) == 0)
			*api = i;
	for (int i = 0; i < ncase; i++)
		if (strcmp(argv[3], cases[i]) == 0)
			*which = i;
	*n = atol(argv[4]);
	return *api < 0 || *which < 0 || *n <= 0 ? 2 : 0;
}

#endif /* BENCH_TIMING_H */
