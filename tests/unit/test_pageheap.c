/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page-run heap (src/os/pageheap.c): runs split and coalesce, grow and
 * shrink in place, retained pages are reused without a system call and
 * given back by a purge (mincore shows them gone), and a program that
 * frees everything and idles for the purge delay returns its pages.
 */
#define _GNU_SOURCE
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
	for (int i = 0; i < 250; i++) { /* up to 5 s on a loaded machine */
		usleep(20000);
		sk_ph_stats(&st);
		if (st.retained == 0)
			break;
	}
	CHECK_EQ(st.retained, 0);
	slabkit_set_option("purge_ms", "1000");
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
	return sk_t_done();
}
