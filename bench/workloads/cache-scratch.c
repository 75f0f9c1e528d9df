/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cache-scratch: passive false sharing, after the cache-scratch test of the
 * Hoard allocator (Berger et al., ASPLOS 2000).  The main thread allocates
 * one small object per worker, side by side, and hands each worker its
 * object.  The worker frees it, then repeatedly allocates an object of the
 * same size, writes it many times and frees it.  An allocator that puts the
 * freed object in the worker's cache and hands it out again makes the
 * workers write to one cache line: the allocator itself created the false
 * sharing the program did not have.
 */
#include "common.h"

#define THREADS 2
#define OBJSIZE 8
#define REPS    20000

static long iterations;

static void *
worker(void *arg)
{
	free(arg);
	for (long i = 0; i < iterations; i++) {
		volatile unsigned char *o = wl_xmalloc(OBJSIZE);

		for (int r = 0; r < REPS; r++)
			for (int k = 0; k < OBJSIZE; k++)
				o[k]++;
		free((void *)o);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t t[THREADS];
	void *obj[THREADS];
	double t0, t1;

	iterations = wl_scaled(5000, wl_scale(argc, argv));
	for (int k = 0; k < THREADS; k++) {
		obj[k] = wl_xmalloc(OBJSIZE);
		memset(obj[k], 0, OBJSIZE);
	}
	t0 = wl_now();
	for (int k = 0; k < THREADS; k++)
		wl_spawn(&t[k], worker, obj[k]);
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	t1 = wl_now();
	wl_report("cache-scratch", THREADS * iterations, t1 - t0, "threads=2");
	return 0;
}
