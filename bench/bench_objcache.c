/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_objcache: what an object cache buys for objects that are costly
 * to construct.
 *
 * The object is 1 KiB: a pthread mutex and a 120-entry table that the
 * constructor fills.  Three ways to get one, use it (lock, touch the
 * table, unlock) and give it back:
 *   objcache   objcache_get / objcache_put on a kmalloc-backed cache
 *              (constructed once, reused constructed);
 *   kmalloc    kmalloc + construct ... destruct + kfree every time;
 *   malloc     malloc + construct ... destruct + free every time.
 * Workloads: one thread; two threads each on its own objects; and a
 * producer thread handing objects to a consumer thread through a ring
 * (every object is freed on the other thread), once with the default
 * nominal cache (128 objects: the magazines cannot hold the 1024 objects
 * in flight, so puts overflow and gets construct anew) and once with
 * nom_cache 2048.  Each cell is the median
 * of 5 runs, modes interleaved (bench/README.md); ratios are objcache's
 * throughput over the other's.
 *
 * `bench_objcache --pairs N objcache|kmalloc|kmalloc-keep' runs N bare
 * get+put (or kmalloc+kfree) pairs of 1 KiB without constructor, for
 * callgrind: instructions per pair = difference of two runs / difference
 * of N.  kmalloc-keep keeps one more chunk of the zone allocated, so no
 * kfree empties the zone.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slabkit/kmalloc.h>
#include <slabkit/objcache.h>

#define OBJ_SIZE 1024
#define TABLE_N  120
#define BATCH    8
#define RUNS     5
#define RING     1024

struct bobj {
	pthread_mutex_t mtx;
	uint64_t table[TABLE_N];
	char pad[OBJ_SIZE - sizeof(pthread_mutex_t) -
	         TABLE_N * sizeof(uint64_t)];
};
_Static_assert(sizeof(struct bobj) == OBJ_SIZE, "1 KiB object");

MALLOC_DEFINE(M_BENCH, "bench", "bench_objcache objects");

static boolean_t
construct(void *obj, void *priv, int flags)
{
	struct bobj *o = obj;

	(void)priv;
	(void)flags;
	pthread_mutex_init(&o->mtx, NULL);
	for (int i = 0; i < TABLE_N; i++)
		o->table[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
	return TRUE;
}

static void
destruct(void *obj, void *priv)
{
	struct bobj *o = obj;

	(void)priv;
	pthread_mutex_destroy(&o->mtx);
}

static void
use(struct bobj *o)
{
	pthread_mutex_lock(&o->mtx);
	o->table[o->table[1] % TABLE_N]++;
	pthread_mutex_unlock(&o->mtx);
}

enum mode { M_OBJCACHE, M_KMALLOC, M_MALLOC, NMODES };
static const char *mode_name[NMODES] = {
    "objcache", "kmalloc+ctor", "malloc+ctor"};
static struct objcache *oc; /* the cache in use */
static struct objcache *oc_default, *oc_big;

static struct bobj *
obj_get(enum mode m)
{
	struct bobj *o;

	switch (m) {
	case M_OBJCACHE:
		return objcache_get(oc, M_WAITOK);
	case M_KMALLOC:
		o = kmalloc(OBJ_SIZE, M_BENCH, M_WAITOK);
		construct(o, NULL, 0);
		return o;
	default:
		o = malloc(OBJ_SIZE);
		construct(o, NULL, 0);
		return o;
	}
}

static void
obj_put(enum mode m, struct bobj *o)
{
	switch (m) {
	case M_OBJCACHE:
		objcache_put(oc, o);
		break;
	case M_KMALLOC:
		destruct(o, NULL);
		kfree(o, M_BENCH);
		break;
	default:
		destruct(o, NULL);
		free(o);
		break;
	}
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct job {
	enum mode mode;
	long ops;
};

/* ops objects, BATCH live at a time, all on this thread. */
static void *
local_loop(void *p)
{
	struct job *j = p;
	struct bobj *b[BATCH];

	for (long i = 0; i < j->ops; i += BATCH) {
		for (int k = 0; k < BATCH; k++) {
			b[k] = obj_get(j->mode);
			use(b[k]);
		}
		for (int k = 0; k < BATCH; k++)
			obj_put(j->mode, b[k]);
	}
	return NULL;
}

/* Single-producer single-consumer ring. */
static struct bobj *ring[RING];
static unsigned long ring_head, ring_tail; /* atomic */

static void *
producer(void *p)
{
	struct job *j = p;

	for (long i = 0; i < j->ops; i++) {
		struct bobj *o = obj_get(j->mode);
		unsigned long h = __atomic_load_n(&ring_head, __ATOMIC_RELAXED);

		use(o);
		while (
		    h - __atomic_load_n(&ring_tail, __ATOMIC_ACQUIRE) >= RING)
			sched_yield();
		ring[h % RING] = o;
		__atomic_store_n(&ring_head, h + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *
consumer(void *p)
{
	struct job *j = p;

	for (long i = 0; i < j->ops; i++) {
		unsigned long t = __atomic_load_n(&ring_tail, __ATOMIC_RELAXED);
		struct bobj *o;

		while (__atomic_load_n(&ring_head, __ATOMIC_ACQUIRE) == t)
			sched_yield();
		o = ring[t % RING];
		__atomic_store_n(&ring_tail, t + 1, __ATOMIC_RELEASE);
		use(o);
		obj_put(j->mode, o);
	}
	return NULL;
}

enum workload { W_ONE, W_TWO, W_PRODCONS, W_PRODCONS_BIG, NWORK };
static const char *work_name[NWORK] = {
    "1 thread", "2 threads", "producer/consumer", "  nom_cache 2048"};

/* Millions of objects per second (get + use + put). */
static double
run(enum workload w, enum mode m, long ops)
{
	struct job j = {m, ops};
	pthread_t t[2];
	double t0, t1;

	oc = w == W_PRODCONS_BIG ? oc_big : oc_default;
	t0 = now_s();
	switch (w) {
	case W_ONE:
		local_loop(&j);
		break;
	case W_TWO:
		pthread_create(&t[0], NULL, local_loop, &j);
		pthread_create(&t[1], NULL, local_loop, &j);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
		ops *= 2;
		break;
	default:
		pthread_create(&t[0], NULL, producer, &j);
		pthread_create(&t[1], NULL, consumer, &j);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
		break;
	}
	t1 = now_s();
	return (double)ops / (t1 - t0) / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
pairs(long n, const char *what)
{
	struct objcache *bare;
	void *p;

	if (strcmp(what, "objcache") == 0) {
		bare = objcache_create_simple(M_BENCH, OBJ_SIZE);
		objcache_put(bare, objcache_get(bare, M_WAITOK)); /* warm */
		for (long i = 0; i < n; i++) {
			p = objcache_get(bare, M_WAITOK);
			__asm__ volatile("" : : "r"(p) : "memory");
			objcache_put(bare, p);
		}
		objcache_destroy(bare);
		return 0;
	}
	if (strcmp(what, "kmalloc") == 0 || strcmp(what, "kmalloc-keep") == 0) {
		/* kmalloc-keep holds one other chunk of the zone, so that no
		 * kfree leaves the zone wholly free (the empty-zone path). */
		void *keep = kmalloc(OBJ_SIZE, M_BENCH, M_WAITOK);

		if (strcmp(what, "kmalloc") == 0) {
			kfree(keep, M_BENCH);
			keep = NULL;
		}
		kfree(kmalloc(OBJ_SIZE, M_BENCH, M_WAITOK), M_BENCH); /* warm */
		for (long i = 0; i < n; i++) {
			p = kmalloc(OBJ_SIZE, M_BENCH, M_WAITOK);
			__asm__ volatile("" : : "r"(p) : "memory");
			kfree(p, M_BENCH);
		}
		if (keep != NULL)
			kfree(keep, M_BENCH);
		return 0;
	}
	fprintf(stderr,
	    "bench_objcache: --pairs N objcache|kmalloc|kmalloc-keep\n");
	return 2;
}

int
main(int argc, char **argv)
{
	double res[NWORK][NMODES][RUNS];
	long ops = 200000;

	if (argc == 4 && strcmp(argv[1], "--pairs") == 0)
		return pairs(atol(argv[2]), argv[3]);
	if (argc == 2)
		ops = atol(argv[1]);
	/* The default nominal cache (128 objects), and one that covers the
	 * producer/consumer ring (1024 objects in flight). */
	oc_default = objcache_create_mbacked(
	    M_BENCH, OBJ_SIZE, 0, 0, construct, destruct, NULL);
	oc_big = objcache_create_mbacked(
	    M_BENCH, OBJ_SIZE, 0, 2 * RING, construct, destruct, NULL);
	for (int w = 0; w < NWORK; w++)
		for (int m = 0; m < NMODES; m++)
			run(w, m, ops / 10); /* warm-up */
	for (int r = 0; r < RUNS; r++)
		for (int w = 0; w < NWORK; w++)
			for (int m = 0; m < NMODES; m++)
				res[w][m][r] = run(w, m, ops);
	printf("1 KiB objects, ctor = mutex init + 120-entry table; "
	       "Mobj/s (median of %d), %ld objects per thread\n",
	    RUNS, ops);
	printf("%-18s %10s %13s %12s %10s %10s\n", "workload", mode_name[0],
	    mode_name[1], mode_name[2], "oc/kmal", "oc/mal");
	for (int w = 0; w < NWORK; w++) {
		double med[NMODES];

		for (int m = 0; m < NMODES; m++) {
			qsort(res[w][m], RUNS, sizeof(double), cmp_double);
			med[m] = res[w][m][RUNS / 2];
		}
		printf("%-18s %10.2f %13.2f %12.2f %9.2fx %9.2fx\n",
		    work_name[w], med[0], med[1], med[2], med[0] / med[1],
		    med[0] / med[2]);
	}
	objcache_destroy(oc_default);
	objcache_destroy(oc_big);
	return 0;
}
