/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cache-thrash: active false sharing, after the cache-thrash test of the
 * Hoard allocator (Berger et al., ASPLOS 2000).  Each thread repeatedly
 * allocates one small object, writes it many times and frees it.  An
 * allocator that hands objects in the same cache line to different threads
 * makes the lines bounce between cores, and the time explodes; one that
 * gives each thread its own memory runs at the speed of the writes.
 */
#include "common.h"

#define THREADS 2
#define OBJSIZE 8
#define REPS    20000 /* writes of the whole object per allocation */

static long iterations;

static void *
worker(void *arg)
{
	(void)arg;
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
	double t0, t1;

	iterations = wl_scaled(5000, wl_scale(argc, argv));
	t0 = wl_now();
	for (int k = 0; k < THREADS; k++)
		wl_spawn(&t[k], worker, NULL);
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	t1 = wl_now();
	wl_report("cache-thrash", THREADS * iterations, t1 - t0, "threads=2");
	return 0;
}
