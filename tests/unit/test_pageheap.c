/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page-run heap (src/os/pageheap.c): runs split and coalesce, grow and
 * shrink in place, retained pages are reused without a system call and
 * given back by a purge (mincore shows them gone), and a program that
 * frees everything and idles for the purge delay returns its pages.  The
 * front cache (large_cache) hands a freed block of up to 64 KiB to the
 * next one of its size, still reads as free, gives way to injected
 * faults without losing the run, goes back at a purge and when idle, and
 * survives threads that race it and the purge.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>

#include "default_mode.h"
#include "harness.h"
#include "internal.h"
#include "os/pageheap.h"

static size_t ps;

/* Pages of [p, p + bytes) resident now. */
static size_t
resident(void *p, size_t bytes)
{
	unsigned char vec[4096];
	size_t n = bytes / ps, r = 0;

	if (n > sizeof(vec) || mincore(p, bytes, vec) != 0)
		return (size_t)-1;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

TEST(split_and_coalesce)
{
	bool z;
	int why;
	char *a = sk_ph_alloc(4, 0, &z, &why);
	char *b = sk_ph_alloc(4, 0, &z, &why);
	char *c = sk_ph_alloc(4, 0, &z, &why);
	char *d;

	CHECK(a != NULL && b != NULL && c != NULL);
	CHECK(sk_ph_owns(a) && sk_ph_owns(c));
	CHECK(!sk_ph_is_free(a));
	memset(a, 1, 4 * ps);
	memset(b, 2, 4 * ps);
	memset(c, 3, 4 * ps);
	sk_ph_free(a, 4);
	CHECK(sk_ph_is_free(a));
	sk_ph_free(c, 4);
	sk_ph_free(b, 4); /* coalesces with both neighbours */
	CHECK(sk_ph_is_free(b));
	/* one run of 12 pages again: a 12-page request fits at a's place */
	d = sk_ph_alloc(12, 0, &z, &why);
	CHECK_PTR_EQ(d, a);
	CHECK(!z); /* retained: old data, no fault */
	sk_ph_free(d, 12);
}

/*
 * Retained pages are taken before clean ones, even when a clean run of a
 * smaller size bin fits (the large workload's peak RSS was 1.25x glibc's
 * while retained runs sat unused).
 */
TEST(retained_runs_first)
{
	bool z;
	int why;
	char *x = sk_ph_alloc(8, 0, &z, &why);
	char *y = sk_ph_alloc(1, 0, &z, &why);
	char *d = sk_ph_alloc(32, 0, &z, &why);
	char *w = sk_ph_alloc(1, 0, &z, &why);
	char *q;

	CHECK(x != NULL && y != NULL && d != NULL && w != NULL);
	memset(x, 1, 8 * ps);
	memset(d, 2, 32 * ps);
	sk_ph_free(x, 8);
	sk_ph_purge(true); /* x: a clean run of 8 pages between blocks */
	sk_ph_free(d, 32); /* d: a retained run of 32 pages */
	q = sk_ph_alloc(6, 0, &z, &why);
	CHECK(q >= d && q < d + 32 * ps); /* not x's clean pages */
	CHECK(!z);
	sk_ph_free(q, 6);
	sk_ph_free(y, 1);
	sk_ph_free(w, 1);
	sk_ph_purge(true);
}

TEST(aligned_runs)
{
	bool z;
	int why;
	char *p = sk_ph_alloc(3, 64 * 1024, &z, &why);

	CHECK(p != NULL);
	CHECK_EQ((uintptr_t)p % (64 * 1024), 0);
	sk_ph_free(p, 3);
}

TEST(grow_and_shrink_in_place)
{
	bool z;
	int why;
	char *a = sk_ph_alloc(6, 0, &z, &why);

	CHECK(a != NULL);
	memset(a, 7, 6 * ps);
	sk_ph_shrink(a, 6, 2); /* its last 4 pages go back */
	CHECK(sk_ph_is_free(a + 2 * ps));
	CHECK(!sk_ph_is_free(a));
	CHECK(sk_ph_grow(a, 2, 5, &z)); /* and come back in place */
	CHECK(!z);
	CHECK(a[4 * ps] == 7);
	/* no run can grow past its segment */
	CHECK(!sk_ph_grow(a, 5, SK_PH_SEGMENT / ps, &z));
	sk_ph_free(a, 5);
}

TEST(purge_gives_pages_back)
{
	struct sk_ph_stats st;
	bool z;
	int why;
	size_t n = 256; /* 1 MiB */
	char *p = sk_ph_alloc(n, 0, &z, &why);

	CHECK(p != NULL);
	memset(p, 5, n * ps);
	CHECK_EQ(resident(p, n * ps), n);
	sk_ph_free(p, n);
	sk_ph_stats(&st);
	CHECK(st.retained >= n * ps);
	CHECK_EQ(resident(p, n * ps), n); /* retained, still committed */
	CHECK(sk_ph_purge(true) >= n * ps);
	sk_ph_stats(&st);
	CHECK_EQ(st.retained, 0);
	CHECK_EQ(resident(p, n * ps), 0);
	/* a purged run reads as zero */
	p = sk_ph_alloc(n, 0, &z, &why);
	CHECK(z);
	CHECK(p[0] == 0 && p[n * ps - 1] == 0);
	sk_ph_free(p, n);
}

/* Retained pages beyond the budget go back at once, oldest first. */
TEST(retain_budget)
{
	struct sk_ph_stats st;
	size_t old = sk_opt.retain_mb;
	char *blk[8];
	bool z;
	int why;

	sk_ph_purge(true);
	sk_opt.retain_mb = 2;
	for (int i = 0; i < 8; i++) {
		blk[i] = sk_ph_alloc(256, 0, &z, &why);
		memset(blk[i], 1, 256 * ps);
	}
	for (int i = 0; i < 8; i++)
		sk_ph_free(blk[i], 256);
	sk_ph_stats(&st);
	CHECK(st.retained <= (size_t)2 << 20);
	sk_opt.retain_mb = old;
	sk_ph_purge(true);
}

/* Large kmalloc blocks live on the heap; a freed one is reused as is. */
TEST(large_blocks_on_the_heap)
{
	void *p = kmalloc(65536, M_TEMP, M_WAITOK);
	void *q;

	CHECK(sk_ph_owns(p));
	CHECK_EQ(kmalloc_usable_size(p), 65536);
	kfree(p, M_TEMP);
	q = kmalloc(65536, M_TEMP, M_WAITOK);
	CHECK_PTR_EQ(q, p);
	kfree(q, M_TEMP);
}

/* Wait for the purge thread to leave nothing retained (up to 5 s on a
 * loaded machine); the statistics at the end in *st. */
static void
wait_purged(struct sk_ph_stats *st)
{
	for (int i = 0; i < 250; i++) {
		usleep(20000);
		sk_ph_stats(st);
		if (st->retained == 0)
			break;
	}
}

/* Free everything, idle for the purge delay: the pages are gone. */
TEST(idle_purge)
{
	struct sk_ph_stats st;
	void *blk[16];

	if (sk_t_under_valgrind())
		return; /* the purge thread may not run on time there */
#ifdef SLABKIT_TSAN
	return; /* no purge thread in ThreadSanitizer builds (pageheap.c) */
#endif
	slabkit_set_option("purge_ms", "100");
	for (int i = 0; i < 16; i++) {
		blk[i] = kmalloc(1 << 20, M_TEMP, M_WAITOK);
		memset(blk[i], 3, 1 << 20);
	}
	for (int i = 0; i < 16; i++)
		kfree(blk[i], M_TEMP);
	sk_ph_stats(&st);
	CHECK(st.retained >= (size_t)16 << 20);
	wait_purged(&st);
	CHECK_EQ(st.retained, 0);
	slabkit_set_option("purge_ms", "1000");
}

/* Pages of a 20 KiB block, or 0 where it would not fit the front cache
 * (pages above 16 KiB). */
static size_t
fc_pages(void)
{
	size_t n = (20480 + ps - 1) / ps;

	return n * ps <= 65536 ? n : 0;
}

/* large_cache=on with the thread kept on the CPU it runs on (the cache
 * is per CPU): the pages of a cached block, 0 when none fits; fc_end
 * restores the mask saved in *old. */
static size_t
fc_begin(cpu_set_t *old)
{
	cpu_set_t one;
	int cpu = sched_getcpu();

	if (fc_pages() == 0)
		return 0;
	slabkit_set_option("large_cache", "on");
	sched_getaffinity(0, sizeof(*old), old);
	CPU_ZERO(&one);
	CPU_SET(cpu < 0 ? 0 : cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
	return fc_pages();
}

static void
fc_end(cpu_set_t *old)
{
	sched_setaffinity(0, sizeof(*old), old);
	sk_ph_purge(true);
	slabkit_set_option("large_cache", "auto");
}

/* large_cache=auto in a program whose threads never waited for the heap:
 * a freed block goes back to the heap, where it coalesces. */
TEST(front_cache_off_without_contention)
{
	struct sk_ph_stats st;
	size_t n = fc_pages();
	char *p;

	if (n == 0)
		return;
	slabkit_set_option("large_cache", "auto");
	sk_ph_purge(true);
	p = kmalloc(n * ps, M_TEMP, M_WAITOK);
	kfree(p, M_TEMP);
	sk_ph_stats(&st);
	CHECK_EQ(st.cached, 0);
	CHECK(sk_ph_is_free(p));
}

TEST(front_cache_reuse_and_purge)
{
	struct sk_ph_stats st;
	cpu_set_t old;
	size_t n = fc_begin(&old);
	char *p, *q;

	if (n == 0)
		return;
	sk_ph_purge(true);
	p = kmalloc(n * ps, M_TEMP, M_WAITOK);
	CHECK(sk_ph_owns(p));
	memset(p, 9, n * ps);
	kfree(p, M_TEMP);
	/* cached: free to kfree's checks, retained to the statistics */
	CHECK(sk_ph_is_free(p));
	CHECK(sk_ph_is_free(p + ps));
	sk_ph_stats(&st);
	CHECK_EQ(st.cached, n * ps);
	CHECK(st.retained >= n * ps);
	/* the next block of its size, zeroed although the run is not */
	q = kmalloc(n * ps, M_TEMP, M_WAITOK | M_ZERO);
	CHECK_PTR_EQ(q, p);
	CHECK(q[0] == 0 && q[n * ps - 1] == 0);
	CHECK(!sk_ph_is_free(q));
	CHECK_EQ(kmalloc_usable_size(q), n * ps);
	sk_ph_stats(&st);
	CHECK_EQ(st.cached, 0);
	kfree(q, M_TEMP);
	/* a purge takes cached runs back and gives their pages away */
	CHECK(sk_ph_purge(true) >= n * ps);
	sk_ph_stats(&st);
	CHECK_EQ(st.cached, 0);
	CHECK_EQ(st.retained, 0);
	CHECK_EQ(resident(p, n * ps), 0);
	fc_end(&old);
}

/* An injected failure hits a block the cache could give, and the cached
 * run is still there for the next try. */
TEST(front_cache_fault_loses_nothing)
{
	cpu_set_t old;
	size_t n = fc_begin(&old);
	char *p, *q;

	if (n == 0)
		return;
	p = kmalloc(n * ps, M_TEMP, M_WAITOK);
	kfree(p, M_TEMP);
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, 1);
	q = kmalloc(n * ps, M_TEMP, M_NOWAIT | M_NULLOK);
	CHECK(q == NULL);
	slabkit_fault_clear();
	q = kmalloc(n * ps, M_TEMP, M_WAITOK);
	CHECK_PTR_EQ(q, p);
	kfree(q, M_TEMP);
	fc_end(&old);
}

/* Cached runs go back by themselves once the program idles. */
TEST(front_cache_idle_purge)
{
	struct sk_ph_stats st;
	size_t n = fc_pages();
	void *blk[8];

	if (n == 0 || sk_t_under_valgrind())
		return; /* the purge thread may not run on time there */
#ifdef SLABKIT_TSAN
	return; /* no purge thread in ThreadSanitizer builds (pageheap.c) */
#endif
	slabkit_set_option("large_cache", "on");
	slabkit_set_option("purge_ms", "100");
	sk_ph_purge(true);
	for (int i = 0; i < 8; i++) {
		/* 8 sizes, so that each finds a free slot */
		blk[i] = kmalloc((n - 1 + (size_t)i % 4) * ps + 1, M_TEMP,
		    M_WAITOK);
		memset(blk[i], 3, (n - 1 + (size_t)i % 4) * ps);
	}
	for (int i = 0; i < 8; i++)
		kfree(blk[i], M_TEMP);
	sk_ph_stats(&st);
	CHECK(st.cached > 0);
	wait_purged(&st);
	CHECK_EQ(st.cached, 0);
	CHECK_EQ(st.retained, 0);
	slabkit_set_option("purge_ms", "1000");
	slabkit_set_option("large_cache", "auto");
}

/* Threads allocate and free blocks of every cached size while another
 * purges: each block keeps what its owner wrote (no run handed out
 * twice), and at the end the heap holds what it held before. */
#define FC_THREADS 4
#define FC_LIVE    8
static int fc_stop;
static long fc_bad;

static void *
fc_worker(void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	char *live[FC_LIVE] = {0};
	size_t sz[FC_LIVE] = {0};
	uint64_t x = me * 0x9E3779B97F4A7C15ull + 1;
	long iters = sk_t_scale(20000);

	for (long i = 0; i < iters; i++) {
		int k = (int)(i % FC_LIVE);
		size_t bytes;

		if (live[k] != NULL) {
			uintptr_t *w = (uintptr_t *)live[k];
			uintptr_t *e = (uintptr_t *)(live[k] + sz[k]) - 1;

			if (w[0] != me + (uintptr_t)i || *e != ~(me + (uintptr_t)i))
				__atomic_fetch_add(&fc_bad, 1, __ATOMIC_RELAXED);
			kfree(live[k], M_TEMP);
		}
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bytes = (16384 + x % (65536 - 16384)) & ~(size_t)7;
		live[k] = kmalloc(bytes, M_TEMP, M_WAITOK);
		sz[k] = bytes;
		/* stamps for the free FC_LIVE iterations on */
		((uintptr_t *)live[k])[0] = me + (uintptr_t)(i + FC_LIVE);
		((uintptr_t *)(live[k] + bytes))[-1] = ~(me + (uintptr_t)(i + FC_LIVE));
	}
	for (int k = 0; k < FC_LIVE; k++)
		kfree(live[k], M_TEMP);
	return NULL;
}

static void *
fc_purger(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&fc_stop, __ATOMIC_ACQUIRE)) {
		sk_ph_purge(true);
		usleep(500);
	}
	return NULL;
}

TEST(front_cache_threads_and_purge)
{
	struct sk_ph_stats before, after;
	pthread_t t[FC_THREADS], pt;

	if (fc_pages() == 0)
		return;
	slabkit_set_option("large_cache", "on");
	sk_ph_purge(true);
	sk_ph_stats(&before);
	fc_stop = 0;
	fc_bad = 0;
	CHECK_EQ(pthread_create(&pt, NULL, fc_purger, NULL), 0);
	for (uintptr_t i = 0; i < FC_THREADS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, fc_worker,
		             (void *)((i + 1) << 40)),
		    0);
	for (int i = 0; i < FC_THREADS; i++)
		pthread_join(t[i], NULL);
	__atomic_store_n(&fc_stop, 1, __ATOMIC_RELEASE);
	pthread_join(pt, NULL);
	CHECK_EQ(fc_bad, 0);
	sk_ph_purge(true);
	sk_ph_stats(&after);
	CHECK_EQ(after.cached, 0);
	CHECK_EQ(after.allocated, before.allocated);
	CHECK_EQ(after.retained, 0);
	slabkit_set_option("large_cache", "auto");
}

int
main(void)
{
	sk_t_default_mode("large blocks come from the page-run heap only in "
	                  "the default mode");
	kfree(kmalloc(16, M_TEMP, M_WAITOK), M_TEMP); /* initialise */
	ps = sk_os_page_size();
	RUN(split_and_coalesce);
	RUN(retained_runs_first);
	RUN(aligned_runs);
	RUN(grow_and_shrink_in_place);
	RUN(purge_gives_pages_back);
	RUN(retain_budget);
	RUN(large_blocks_on_the_heap);
	RUN(idle_purge);
	RUN(front_cache_off_without_contention);
	RUN(front_cache_reuse_and_purge);
	RUN(front_cache_fault_loses_nothing);
	RUN(front_cache_idle_purge);
	RUN(front_cache_threads_and_purge);
	return sk_t_done();
}
