/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Memory kept by idle threads (issue 16, item 6): 32 threads each
 * allocate 32 MiB in large blocks (256 KiB to 1 MiB), touch every page,
 * free it all and then idle, blocked, without exiting.  The freed pages
 * must go back to the system:
 *
 *   idle_threads trim    malloc_trim(0) at once: resident memory falls to
 *                        within 16 MiB of where it started
 *   idle_threads purge   no call at all: within the purge delay (1 s by
 *                        default; the program waits up to 5 s) the same
 *   idle_threads trim-small, purge-small
 *                        the same with 16 MiB a thread in chunks of 16 to
 *                        2,048 bytes, within 4 MiB a thread (128 MiB): the
 *                        zones that held them give their pages back, but
 *                        for their headers and maps and a zone a size
 *                        class keeps listed (about 3 MiB a thread on
 *                        threads' own shards; glibc, jemalloc, mimalloc
 *                        and tcmalloc keep 220-570 MiB of the 512 MiB)
 *
 * Run on the malloc drop-in (LD_PRELOAD); prints "N passed, N failed".
 * glibc's malloc_trim gives back what its arenas hold too, so the check
 * is meaningful for any allocator; a caching allocator fails "purge".
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 32
#define PER_THREAD (32UL << 20)
#define SLACK_MIB 16
#define SLACK_SMALL_MIB (THREADS * 4)

#define PER_THREAD_SMALL (16UL << 20)

static pthread_barrier_t freed;
static int small; /* chunks instead of large blocks */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int stop;

/* Resident memory in MiB, from /proc/self/statm. */
static double
rss_mib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return (double)rss * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

/*
 * Blocks of min to min + spread - 1 bytes until total bytes, each
 * touched, then all freed: large blocks (256 KiB to 1 MiB, 32 MiB) or
 * small chunks (16 to 2,048 bytes, 16 MiB).
 */
static void
alloc_touch_free(unsigned *seed, size_t min, size_t spread, size_t total)
{
	size_t cap = total / min, n = 0, sum = 0;
	char **v = malloc(cap * sizeof(*v));

	if (v == NULL)
		return;
	while (sum < total && n < cap) {
		size_t sz = min + (rand_r(seed) % spread);
		char *p = malloc(sz);

		if (p == NULL)
			break;
		memset(p, 0x5a, sz);
		v[n++] = p;
		sum += sz;
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void *
worker(void *arg)
{
	unsigned seed = (unsigned)(unsigned long)arg * 2654435761u;

	if (small)
		alloc_touch_free(&seed, 16, 2033, PER_THREAD_SMALL);
	else
		alloc_touch_free(&seed, 256UL << 10, 768UL << 10, PER_THREAD);
	pthread_barrier_wait(&freed);
	pthread_mutex_lock(&idle_lock); /* idle: blocked, alive */
	while (!stop)
		pthread_cond_wait(&idle_cond, &idle_lock);
	pthread_mutex_unlock(&idle_lock);
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "trim";
	pthread_t t[THREADS];
	double start, peak, after = 0, slack;
	int failed = 0;

	small = strstr(mode, "-small") != NULL;
	slack = small ? SLACK_SMALL_MIB : SLACK_MIB;
	start = rss_mib();
	pthread_barrier_init(&freed, NULL, THREADS + 1);
	for (long i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
			printf("pthread_create failed\n0 passed, 1 failed\n");
			return 1;
		}
	pthread_barrier_wait(&freed);
	peak = rss_mib();
	if (strncmp(mode, "trim", 4) == 0) {
		malloc_trim(0);
		after = rss_mib();
	} else {
		for (int i = 0; i < 50; i++) { /* up to 5 s */
			struct timespec ts = {0, 100 * 1000 * 1000};

			nanosleep(&ts, NULL);
			after = rss_mib();
			if (after <= start + slack)
				break;
		}
	}
	printf("%s: rss start %.1f MiB, all freed %.1f MiB, after %.1f MiB\n",
	    mode, start, peak, after);
	if (!(after <= start + slack)) {
		printf("FAIL %s: %.1f MiB kept by idle threads\n", mode,
		    after - start);
		failed = 1;
	}
	pthread_mutex_lock(&idle_lock);
	stop = 1;
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("%d passed, %d failed\n", !failed, failed);
	return failed;
}
