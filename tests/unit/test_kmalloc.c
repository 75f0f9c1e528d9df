/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc: checklist rows 1-42 of the spec (see tests/README.md for the
 * row-to-test table).  Internals are visible: the zone header of a chunk is
 * at ptr & ZoneMask, the shard is sk_tls_shard.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "default_mode.h"
#include "harness.h"
#include "internal.h"
#include "kmalloc_impl.h"
#include "os/pageheap.h"

MALLOC_DEFINE(M_TESTK, "testk", "kmalloc unit tests");
MALLOC_DECLARE(M_TESTK);

static struct sk_slzone *
zone_of(void *p)
{
	return sk_zone_at((uintptr_t)p);
}

static size_t
stat_inuse(struct malloc_type *t)
{
	struct kmalloc_type_stats st;

	kmalloc_type_stats(t, &st);
	return st.inuse;
}

static size_t
stat_memuse(struct malloc_type *t)
{
	struct kmalloc_type_stats st;

	kmalloc_type_stats(t, &st);
	return st.memuse;
}

/* Row 8: flag values bit for bit. */
TEST(flags_values)
{
	CHECK_EQ(M_RNOWAIT, 0x0001);
	CHECK_EQ(M_WAITOK, 0x0002);
	CHECK_EQ(M_ZERO, 0x0100);
	CHECK_EQ(M_USE_RESERVE, 0x0200);
	CHECK_EQ(M_NULLOK, 0x0400);
	CHECK_EQ(M_PASSIVE_ZERO, 0x0800);
	CHECK_EQ(M_USE_INTERRUPT_RESERVE, 0x1000);
	CHECK_EQ(M_POWEROF2, 0x2000);
	CHECK_EQ(M_CACHEALIGN, 0x4000);
	CHECK_EQ(M_NOWAIT, 0x0001 | 0x0400 | 0x0200);
	CHECK_EQ(M_INTNOWAIT, 0x0001 | 0x0400 | 0x0200 | 0x1000);
	CHECK_EQ(M_SYSNOWAIT, 0x0001 | 0x0400 | 0x0200);
	CHECK_EQ(M_INTWAIT, 0x0002 | 0x0200 | 0x1000);
	CHECK_EQ(M_SYSWAIT, 0x0002 | 0x0200);
	CHECK_EQ(M_SYSALLOC, M_SYSWAIT);
	CHECK_EQ(M_MAGIC, 877983977);
	CHECK_PTR_EQ(ZERO_LENGTH_PTR, (void *)-8);
}

/* Row 1: type without magic. */
static void
free_with_bad_type(void *arg)
{
	struct malloc_type bad = {0};
	void *p = kmalloc(32, M_TESTK, M_WAITOK);

	(void)arg;
	kfree(p, &bad);
}

static void
init_bad_type(void *arg)
{
	static struct malloc_type bad = {.ks_shortdesc = "bad"};

	(void)arg;
	malloc_init(&bad);
}

TEST(type_magic)
{
	CHECK_ABORTS(free_with_bad_type, NULL, "lacks magic");
	CHECK_ABORTS(init_bad_type, NULL, "lacks magic");
}

/* Row 2: MALLOC_DEFINE registers before first use; row 42 iteration. */
static int
find_type(struct malloc_type *t, const struct kmalloc_type_stats *st, void *arg)
{
	(void)st;
	return t == arg ? 1 : 0;
}

TEST(malloc_define_registered)
{
	CHECK(M_TESTK->ks_limit != 0); /* constructor ran before main */
	CHECK_EQ(kmalloc_type_foreach(find_type, M_TESTK), 1);
	CHECK_EQ(kmalloc_type_foreach(find_type, M_TEMP), 1);
	CHECK_STR_EQ(M_TEMP->ks_shortdesc, "temp");
	CHECK_STR_EQ(M_DEVBUF->ks_shortdesc, "devbuf");
	CHECK_STR_EQ(M_CACHE->ks_shortdesc, "cache");
}

/* Row 3: kmalloc_create / kmalloc_destroy. */
TEST(create_destroy)
{
	struct malloc_type *t = NULL, *keep;

	kmalloc_create(&t, "dyn");
	CHECK(t != NULL);
	keep = t;
	kmalloc_create(&t, "other"); /* no-op on non-NULL */
	CHECK_PTR_EQ(t, keep);
	CHECK_STR_EQ(t->ks_shortdesc, "dyn");
	CHECK_EQ(kmalloc_type_foreach(find_type, t), 1);
	void *p = kmalloc(100, t, M_WAITOK);
	CHECK(p != NULL);
	kfree(p, t);
	kmalloc_destroy(&t);
	CHECK(t == NULL);
	CHECK_EQ(kmalloc_type_foreach(find_type, keep), 0);
	kmalloc_destroy(&t); /* no-op on NULL */
	CHECK(t == NULL);
}

/* Row 3: a leak at destroy is reported. */
static void
destroy_with_leak(void *arg)
{
	struct malloc_type *t = NULL;

	(void)arg;
	kmalloc_create(&t, "leaky");
	(void)kmalloc(64, t, M_WAITOK);
	kmalloc_destroy(&t);
	abort(); /* the message was printed before */
}

TEST(destroy_reports_leak)
{
	CHECK_ABORTS(destroy_with_leak, NULL, "still allocated");
}

/* Row 4 and 7: limits. */
TEST(limits)
{
	struct malloc_type *t = NULL;
	size_t ten = kmem_lim_size() * 1024 * 1024 / 10;

	kmalloc_create(&t, "limits");
	CHECK_EQ(kmalloc_limit(t), (long)ten);
	kmalloc_raise_limit(t, 1024); /* never lowers */
	CHECK_EQ(kmalloc_limit(t), (long)ten);
	kmalloc_raise_limit(t, ten * 2);
	CHECK_EQ(kmalloc_limit(t), (long)(ten * 2));
	kmalloc_set_unlimited(t);
	CHECK_EQ(kmalloc_limit(t), (long)(kmem_lim_size() * 1024 * 1024));
	kmalloc_raise_limit(t, 0); /* 0: maximum */
	CHECK(kmalloc_limit(t) > (long)(kmem_lim_size() * 1024 * 1024));
	kmalloc_destroy(&t);
}

/* Rows 5 and 6: enforcement and the lazy estimate. */
static struct malloc_type *limit_type;

static void
alloc_past_limit(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++)
		(void)kmalloc(65536, limit_type, M_WAITOK);
}

TEST(limit_enforced)
{
	struct malloc_type t[1] = {
	    {.ks_magic = M_MAGIC, .ks_shortdesc = "tinylimit"}};
	void *blocks[200];
	int n = 0, m;

	malloc_init(t);
	t->ks_limit = 1 << 20; /* 1 MiB; a test may set the field */
	while (n < 200 && (blocks[n] = kmalloc(65536, t, M_NOWAIT)) != NULL)
		n++;
	CHECK(n >= 14 && n <= 20); /* the estimate lags by at most a zone */
	CHECK(kmalloc(65536, t, M_WAITOK | M_NULLOK) == NULL);
	/* freeing makes room again (row 6) */
	kfree(blocks[--n], t);
	kfree(blocks[--n], t);
	m = 0;
	while ((blocks[n] = kmalloc(65536, t, M_NOWAIT)) != NULL) {
		n++;
		m++;
	}
	CHECK(m >= 1);
	while (n > 0)
		kfree(blocks[--n], t);
	CHECK_EQ(stat_memuse(t), 0);
	limit_type = t;
	CHECK_ABORTS(
	    alloc_past_limit, NULL, "tinylimit: malloc limit exceeded");
	/* the message says what the limit is and how to raise it */
	CHECK_ABORTS(
	    alloc_past_limit, NULL, "by default 10% of the usable memory");
	CHECK_ABORTS(alloc_past_limit, NULL,
	    "raise it with kmalloc_raise_limit() or SLABKIT_OPTIONS=memlimit");
	malloc_uninit(t);
}

/* Row 9: bad flags reaching the backend. */
static void
alloc_bad_flags(void *arg)
{
	(void)arg;
	(void)kmalloc(20000, M_TESTK, 0);
}

TEST(bad_flags)
{
	CHECK_ABORTS(alloc_bad_flags, NULL, "bad flags");
}

/* Rows 10, 11: every size's usable size, and the zone index formulas. */
static size_t
expected_chunk(size_t n)
{
	if (n < 128)
		return (n + 7) & ~(size_t)7;
	if (n < 256)
		return (n + 15) & ~(size_t)15;
	if (n < 512)
		return (n + 31) & ~(size_t)31;
	if (n < 1024)
		return (n + 63) & ~(size_t)63;
	if (n < 2048)
		return (n + 127) & ~(size_t)127;
	if (n < 4096)
		return (n + 255) & ~(size_t)255;
	if (n < 8192)
		return (n + 511) & ~(size_t)511;
	return (n + 1023) & ~(size_t)1023;
}

static int
expected_index(size_t n)
{
	size_t r = expected_chunk(n);

	if (n < 128)
		return (int)(r / 8 - 1);
	if (n < 256)
		return (int)(r / 16 + 7);
	if (n < 512)
		return (int)(r / 32 + 15);
	if (n < 1024)
		return (int)(r / 64 + 23);
	if (n < 2048)
		return (int)(r / 128 + 31);
	if (n < 4096)
		return (int)(r / 256 + 39);
	if (n < 8192)
		return (int)(r / 512 + 47);
	return (int)(r / 1024 + 55);
}

TEST(size_classes)
{
	int bad = 0, badidx = 0;

	for (size_t n = 1; n < 16384; n++) {
		size_t b1 = n, b2 = n, a1, a2;
		int z1 = sk_zoneindex_ladder(&b1, &a1);
		int z2 = sk_zoneindex(&b2, &a2);

		if (z1 != expected_index(n) || b1 != expected_chunk(n))
			badidx++;
		if (z1 != z2 || b1 != b2 || ((b1 & (b1 - 1)) != 0 && a1 != a2))
			badidx++;
	}
	CHECK_EQ(badidx, 0);
	for (size_t n = 1; n < 16384; n++) {
		void *p = kmalloc(n, M_TESTK, M_WAITOK);
		size_t want = expected_chunk(n);

		if ((n & 4095) == 0 && n > 8192)
			want = n; /* page multiple > 2 pages: large */
		if (n >= sk_slab.zone_limit)
			want = (n + 4095) & ~(size_t)4095;
		if (kmalloc_usable_size(p) != want)
			bad++;
		kfree(p, M_TESTK);
	}
	CHECK_EQ(bad, 0);
	/* boundary sizes share an index */
	{
		size_t b = 128, a;

		CHECK_EQ(sk_zoneindex_ladder(&b, &a), 15);
		b = 256;
		CHECK_EQ(sk_zoneindex_ladder(&b, &a), 23);
		b = 8192;
		CHECK_EQ(sk_zoneindex_ladder(&b, &a), 63);
		b = 16383;
		CHECK_EQ(sk_zoneindex_ladder(&b, &a), 71);
		b = 16384;
		CHECK_EQ(sk_zoneindex_ladder(&b, &a), -1);
	}
	CHECK_EQ(SK_NZONES, 72);
}

/* Row 12: alignment. */
TEST(alignment)
{
	int bad = 0;

	for (size_t s = 8; s <= 8192; s <<= 1) {
		for (int i = 0; i < 50; i++) {
			void *p = kmalloc(s, M_TESTK, M_WAITOK);

			if ((uintptr_t)p % s != 0)
				bad++;
			kfree(p, M_TESTK);
		}
	}
	CHECK_EQ(bad, 0);
	for (size_t n = 1; n < 8192; n += 7) {
		void *p = kmalloc(n, M_TESTK, M_WAITOK);
		size_t b = n, a;

		sk_zoneindex_ladder(&b, &a);
		if ((uintptr_t)p % a != 0)
			bad++;
		kfree(p, M_TESTK);
	}
	CHECK_EQ(bad, 0);
	{
		void *p = kmalloc(100000, M_TESTK, M_WAITOK);

		CHECK_EQ((uintptr_t)p % 4096, 0);
		kfree(p, M_TESTK);
		p = kmalloc(300, M_TESTK, M_WAITOK | M_POWEROF2);
		CHECK_EQ((uintptr_t)p % 512, 0);
		kfree(p, M_TESTK);
	}
}

/* Rows 13, 14: M_POWEROF2 and M_CACHEALIGN. */
TEST(pow2_cachealign)
{
	void *p;

	p = kmalloc(0, M_TESTK, M_WAITOK | M_POWEROF2);
	CHECK_PTR_EQ(p, ZERO_LENGTH_PTR);
	p = kmalloc(100, M_TESTK, M_WAITOK | M_POWEROF2);
	CHECK_EQ(kmalloc_usable_size(p), 128);
	kfree(p, M_TESTK);
	p = kmalloc(1024, M_TESTK, M_WAITOK | M_POWEROF2);
	CHECK_EQ(kmalloc_usable_size(p), 1024);
	kfree(p, M_TESTK);
	p = kmalloc(1, M_TESTK, M_WAITOK | M_CACHEALIGN);
	CHECK_EQ(kmalloc_usable_size(p), 64);
	CHECK_EQ((uintptr_t)p % 64, 0);
	kfree(p, M_TESTK);
	p = kmalloc(200, M_TESTK, M_WAITOK | M_CACHEALIGN);
	CHECK_EQ(kmalloc_usable_size(p), 256);
	CHECK_EQ((uintptr_t)p % 64, 0);
	kfree(p, M_TESTK);
	p = kmalloc(600, M_TESTK, M_WAITOK | M_CACHEALIGN);
	CHECK_EQ(kmalloc_usable_size(p), 640);
	CHECK_EQ((uintptr_t)p % 64, 0);
	kfree(p, M_TESTK);
	p = kmalloc_cachealign(70, M_TESTK, M_WAITOK);
	CHECK_EQ(kmalloc_usable_size(p), 128);
	CHECK_EQ((uintptr_t)p % 64, 0);
	kfree(p, M_TESTK);
	for (size_t n = 1; n < 9000; n += 13) {
		p = kmalloc(n, M_TESTK, M_WAITOK | M_CACHEALIGN);
		if ((uintptr_t)p % 64 != 0)
			CHECK_EQ((uintptr_t)p % 64, 0);
		kfree(p, M_TESTK);
	}
}

/* Rows 15, 16: M_ZERO on every path, passive zeroing. */
static int
all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != 0)
			return 0;
	return 1;
}

TEST(zeroing)
{
	struct malloc_type *t = NULL;
	void *p, *q;
	uint64_t before;

	kmalloc_create(&t, "zero");
	/* a fresh zone: passive zero, counted */
	before = sk_kmalloc_passive_zero_count();
	p = kmalloc(1800, t, M_WAITOK | M_ZERO);
	CHECK(all_zero(p, 1800));
	CHECK(sk_kmalloc_passive_zero_count() > before);
	memset(p, 0xab, 1800);
	kfree(p, t);
	/* a recycled chunk is bzero'd */
	q = kmalloc(1800, t, M_WAITOK | M_ZERO);
	CHECK_PTR_EQ(q, p);
	CHECK(all_zero(q, 1800));
	kfree(q, t);
	/* large block */
	p = kmalloc(200000, t, M_WAITOK | M_ZERO);
	CHECK(all_zero(p, 200000));
	kfree(p, t);
	kmalloc_destroy(&t);
}

/* Row 15: a reused free zone is marked UNOTZEROD and zeroed explicitly. */
TEST(zero_reused_zone)
{
	struct sk_shard *sh = sk_shard_get();
	void *ptrs[4096];
	size_t n = 0, sz = 3000;
	struct sk_slzone *first;
	int found = 0;

	/* fill two zones of class 3072 then free everything: the second
	 * zone goes to FreeZones, dirty */
	first = NULL;
	while (n < 4096) {
		ptrs[n] = kmalloc(sz, M_TESTK, M_WAITOK);
		memset(ptrs[n], 0x5a, sz);
		if (first == NULL)
			first = zone_of(ptrs[0]);
		if (zone_of(ptrs[n]) != first && ++found > 2)
			break;
		n++;
	}
	for (size_t i = 0; i <= n && i < 4096; i++)
		kfree(ptrs[i], M_TESTK);
	CHECK(sh->nfreezones >= 1);
	/* the next new zone of another class comes from FreeZones */
	{
		void *a[64];
		int dirty = 0;

		for (int i = 0; i < 64; i++) {
			a[i] = kmalloc(5000, M_TESTK, M_WAITOK | M_ZERO);
			if (!all_zero(a[i], 5000))
				dirty++;
		}
		CHECK_EQ(dirty, 0);
		CHECK(zone_of(a[0])->z_flags & SLZF_UNOTZEROD);
		for (int i = 0; i < 64; i++)
			kfree(a[i], M_TESTK);
	}
}

/* Row 17: size 0. */
TEST(zero_size)
{
	void *p = kmalloc(0, M_TESTK, M_WAITOK);

	CHECK_PTR_EQ(p, ZERO_LENGTH_PTR);
	kfree(p, M_TESTK); /* no-op */
	CHECK_EQ(kmalloc_usable_size(p), 0);
	CHECK_EQ(kmalloc_usable_size(NULL), 0);
	p = krealloc(ZERO_LENGTH_PTR, 50, M_TESTK, M_WAITOK);
	CHECK(p != NULL && p != ZERO_LENGTH_PTR);
	CHECK_EQ(kmalloc_usable_size(p), 56);
	kfree(p, M_TESTK);
}

/* Row 18: kfree(NULL). */
static void
free_null(void *arg)
{
	(void)arg;
	kfree(NULL, M_TESTK);
}

TEST(kfree_null)
{
	CHECK_ABORTS(free_null, NULL, "trying to free NULL pointer");
}

/* Row 19: ZoneSize derivation. */
TEST(zone_sizing)
{
	struct sk_slab_config c;

	sk_kmalloc_sizing(32, 2, &c);
	CHECK_EQ(c.zone_size, 32 * 1024);
	CHECK_EQ(c.zone_limit, 8 * 1024);
	sk_kmalloc_sizing(64, 2, &c);
	CHECK_EQ(c.zone_size, 32 * 1024);
	sk_kmalloc_sizing(65, 2, &c);
	CHECK_EQ(c.zone_size, 64 * 1024);
	CHECK_EQ(c.zone_limit, 16 * 1024);
	sk_kmalloc_sizing(128, 2, &c);
	CHECK_EQ(c.zone_size, 64 * 1024);
	sk_kmalloc_sizing(129, 2, &c);
	CHECK_EQ(c.zone_size, 128 * 1024);
	sk_kmalloc_sizing(24000, 2, &c);
	CHECK_EQ(c.zone_size, 128 * 1024);
	CHECK_EQ(c.zone_limit, 16 * 1024);
	CHECK_EQ(c.zone_mask, ~(uintptr_t)(128 * 1024 - 1));
	/* Row 30: ZoneRelsThresh scaling */
	sk_kmalloc_sizing(4 * 1024, 2, &c);
	CHECK_EQ(c.zone_rels_thresh, 32);
	sk_kmalloc_sizing(7 * 1024, 2, &c);
	CHECK_EQ(c.zone_rels_thresh, 64);
	sk_kmalloc_sizing(15 * 1024, 2, &c);
	CHECK_EQ(c.zone_rels_thresh, 128);
	sk_kmalloc_sizing(31 * 1024, 2, &c);
	CHECK_EQ(c.zone_rels_thresh, 256);
	sk_kmalloc_sizing(63 * 1024, 2, &c);
	CHECK_EQ(c.zone_rels_thresh, 512);
	sk_kmalloc_sizing(127 * 1024, 2, &c);
	CHECK_EQ(c.zone_rels_thresh, 1024);
	sk_kmalloc_sizing(1024 * 1024, 2, &c);
	CHECK_EQ(c.zone_rels_thresh, 1024);
	sk_kmalloc_sizing(127 * 1024, 64, &c);
	CHECK_EQ(c.zone_rels_thresh, 512);
}

/* Rows 20, 23: zone alignment, header lookup (at the zone's colour) and
 * page tags. */
TEST(zone_header_and_tags)
{
	struct sk_shard *sh = sk_shard_get();
	int bad = 0;

	for (size_t n = 8; n < 8192; n += 40) {
		void *p = kmalloc(n, M_TESTK, M_WAITOK);
		struct sk_slzone *z = zone_of(p);

		if (sk_zone_base(z) % sk_slab.zone_size != 0 ||
		    (uintptr_t)z - sk_zone_base(z) !=
		        SK_ZCOLOUR(sk_zone_base(z)) ||
		    z->z_magic != SK_SLAB_MAGIC ||
		    sk_pagemap_get((uintptr_t)z) != -(sh->id + 1) ||
		    z->z_owner != sh)
			bad++;
		kfree(p, M_TESTK);
	}
	CHECK_EQ(bad, 0);
}

/* Rows 21, 22: the large path rule and tracking. */
TEST(large_path)
{
	void *a = kmalloc(4096, M_TESTK, M_WAITOK);
	void *b = kmalloc(8192, M_TESTK, M_WAITOK);
	void *c = kmalloc(12288, M_TESTK, M_WAITOK);
	void *d = kmalloc(sk_slab.zone_limit, M_TESTK, M_WAITOK);
	void *e = kmalloc(sk_slab.zone_limit - 1, M_TESTK, M_WAITOK);

	CHECK(sk_pagemap_get((uintptr_t)a & sk_slab.zone_mask) < 0);
	CHECK(sk_pagemap_get((uintptr_t)b & sk_slab.zone_mask) < 0);
	CHECK_EQ(sk_pagemap_get((uintptr_t)c), 3);
	CHECK_EQ(
	    sk_pagemap_get((uintptr_t)d), (int)(sk_slab.zone_limit / 4096));
	CHECK(sk_pagemap_get((uintptr_t)e & sk_slab.zone_mask) < 0);
	CHECK_EQ(kmalloc_usable_size(c), 12288);
	kfree(c, M_TESTK);
	CHECK_EQ(sk_pagemap_get((uintptr_t)c), 0);
	kfree(a, M_TESTK);
	kfree(b, M_TESTK);
	kfree(d, M_TESTK);
	kfree(e, M_TESTK);
	{
		void *big = kmalloc(5 << 20, M_TESTK, M_WAITOK);

		CHECK_EQ(sk_pagemap_get((uintptr_t)big), (5 << 20) / 4096);
		CHECK_EQ(kmalloc_usable_size(big), 5 << 20);
		kfree(big, M_TESTK);
	}
}

/* Rows 24, 25, 27, 36: shards, LIFO, remote frees, statistics. */
struct xarg {
	void *ptrs[1000];
	struct sk_shard *shard;
	struct malloc_type *type;
};

static void *
alloc_thread(void *arg)
{
	struct xarg *x = arg;

	for (int i = 0; i < 1000; i++)
		x->ptrs[i] = kmalloc(64, M_TESTK, M_WAITOK);
	x->shard = sk_tls_shard;
	return NULL;
}

static void *
free_thread(void *arg)
{
	struct xarg *x = arg;

	for (int i = 0; i < 1000; i++)
		kfree(x->ptrs[i], x->type != NULL ? x->type : M_TESTK);
	return NULL;
}

TEST(lifo_and_shards)
{
	struct sk_shard *me = sk_shard_get();
	struct xarg x = {.type = NULL};
	pthread_t t;
	void *p, *q;

	p = kmalloc(48, M_TESTK, M_WAITOK);
	kfree(p, M_TESTK);
	q = kmalloc(48, M_TESTK, M_WAITOK);
	CHECK_PTR_EQ(p, q);
	kfree(q, M_TESTK);
	pthread_create(&t, NULL, alloc_thread, &x);
	pthread_join(t, NULL);
	CHECK(x.shard != me);
	for (int i = 0; i < 1000; i++)
		if (zone_of(x.ptrs[i])->z_owner == me)
			CHECK(zone_of(x.ptrs[i])->z_owner != me);
	/* my own allocations never come from the other shard's zones */
	for (int i = 0; i < 100; i++) {
		void *m = kmalloc(64, M_TESTK, M_WAITOK);

		if (zone_of(m)->z_owner != me)
			CHECK(zone_of(m)->z_owner == me);
		kfree(m, M_TESTK);
	}
	CHECK_EQ(me->zoneary[7].head != NULL, 1);
	/* free them remotely, from this thread */
	size_t before = stat_inuse(M_TESTK);
	for (int i = 0; i < 1000; i++)
		kfree(x.ptrs[i], M_TESTK);
	CHECK_EQ(stat_inuse(M_TESTK), before - 1000);
}

TEST(remote_free_stats_balance)
{
	struct malloc_type *t = NULL;
	struct xarg x;
	pthread_t a, b;

	kmalloc_create(&t, "remote");
	x.type = t;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 1000; i++)
			x.ptrs[i] = kmalloc(1 + i * 7, t, M_WAITOK);
		CHECK_EQ(stat_inuse(t), 1000);
		pthread_create(&b, NULL, free_thread, &x);
		pthread_join(b, NULL);
		CHECK_EQ(stat_inuse(t), 0);
		CHECK_EQ(stat_memuse(t), 0);
	}
	/* allocated by a thread, freed by this one, which owns no zone */
	(void)a;
	slab_cleanup();
	kmalloc_destroy(&t);
}

/* Row 28: an exhausted zone is re-listed after remote frees. */
static void *
free_one_thread(void *arg)
{
	kfree(arg, M_TESTK);
	return NULL;
}

static void *
free_one_settled_thread(void *arg)
{
	kfree(kmalloc(16, M_TESTK, M_WAITOK), M_TESTK); /* its own shard */
	kfree(arg, M_TESTK);
	return NULL;
}

TEST(rsignal_relist)
{
	struct sk_shard *sh = sk_shard_get();
	struct sk_slzone *z;
	void **ptrs;
	int n = 0, nmax;
	pthread_t t;
	size_t sz = 4000; /* class 4096: few chunks per zone */
	int zi;
	size_t b = sz, a;

	zi = sk_zoneindex_ladder(&b, &a);
	ptrs = calloc(4096, sizeof(void *));
	/* allocate until we own a zone that becomes exhausted */
	ptrs[n++] = kmalloc(sz, M_TESTK, M_WAITOK);
	z = zone_of(ptrs[0]);
	nmax = z->z_nmax;
	while (n < 4096) {
		void *p = kmalloc(sz, M_TESTK, M_WAITOK);

		ptrs[n++] = p;
		if (z->z_nused == z->z_nmax && !(z->z_flags & 0x8000))
			break;
	}
	CHECK_EQ(z->z_nmax - z->z_nused, 0);
	CHECK(z->z_rsignal == 1);
	/* find a chunk of z and free it from another thread */
	void *victim = NULL;
	for (int i = 0; i < n; i++)
		if (zone_of(ptrs[i]) == z) {
			victim = ptrs[i];
			ptrs[i] = NULL;
			break;
		}
	CHECK(victim != NULL);
	pthread_create(&t, NULL, free_one_thread, victim);
	pthread_join(t, NULL);
	CHECK(sh->pend == z); /* doorbell rung */
	CHECK_EQ(z->z_rcount, 1);
	slab_cleanup();
	CHECK(z->z_flags & 0x8000); /* listed again */
	CHECK_EQ(z->z_rcount, 0);
	CHECK_EQ(z->z_nmax - z->z_nused, 1);
	for (int i = 0; i < n; i++)
		if (ptrs[i] != NULL)
			kfree(ptrs[i], M_TESTK);
	(void)nmax;
	(void)zi;
	free(ptrs);
}

/*
 * A remote free that read RSignal just before the owner set it rings no
 * doorbell; zone_new looks at a few exhausted zones each time a class
 * runs dry (SK_EXH_SCAN, from where it stopped), so the chunk comes back
 * within (exhausted zones / SK_EXH_SCAN) + 1 new zones.
 */
TEST(stranded_remote_free_found_by_bounded_scan)
{
	enum { MAXP = 8192 };
	struct sk_shard *sh = sk_shard_get();
	struct sk_slzone *z = NULL, *last = NULL;
	void **ptrs = calloc(MAXP, sizeof(void *));
	void *victim = NULL;
	int n = 0, nexh = 0, newzones = 0, bound;
	bool back = false;
	pthread_t t;

	/* forty zones of class 4096 that ran dry */
	while (n < MAXP && nexh < 40) {
		void *p = kmalloc(4000, M_TESTK, M_WAITOK);
		struct sk_slzone *pz = zone_of(p);

		ptrs[n++] = p;
		if (pz != last) {
			if (last != NULL && (last->z_flags & ZF_EXHAUSTED))
				nexh++;
			last = pz;
		}
	}
	CHECK_EQ(nexh, 40);
	z = zone_of(ptrs[0]); /* the oldest: the end of the exhausted list */
	CHECK(z->z_flags & ZF_EXHAUSTED);
	CHECK_EQ(z->z_rsignal, 1);
	victim = ptrs[0];
	ptrs[0] = NULL;
	/* the race: the freer read RSignal as 0 (a thread with a shard of
	 * its own, so that its free takes the inline remote path) */
	z->z_rsignal = 0;
	pthread_create(&t, NULL, free_one_settled_thread, victim);
	pthread_join(t, NULL);
	z->z_rsignal = 1;
	CHECK(sh->pend != z); /* no doorbell */
	CHECK(z->z_flags & ZF_EXHAUSTED);
	bound = 0;
	for (struct sk_slzone *e = sh->exhausted.head; e != NULL; e = e->z_next)
		bound++;
	bound = bound / SK_EXH_SCAN + 2;
	while (n < MAXP && newzones <= bound) {
		void *p = kmalloc(4000, M_TESTK, M_WAITOK);

		ptrs[n++] = p;
		if (p == victim || (z->z_flags & ZF_ONLIST)) {
			back = true;
			break;
		}
		if (zone_of(p) != last) {
			last = zone_of(p);
			newzones++;
		}
	}
	CHECK(back);
	CHECK(newzones <= bound);
	CHECK(newzones >= 1); /* not found by the first look: bounded */
	for (int i = 0; i < n; i++)
		if (ptrs[i] != NULL)
			kfree(ptrs[i], M_TESTK);
	free(ptrs);
}

/* Row 26: colouring. */
TEST(colouring)
{
	struct sk_shard *sh = sk_shard_get();
	size_t j0 = sh->junkindex;
	void *p = kmalloc(16000 - 2048, M_TESTK, M_WAITOK); /* a new class */
	struct sk_slzone *z = zone_of(p);

	/* the first chunk handed out sits at JunkIndex % NMax */
	if (sh->junkindex == ((j0 + 20) & (128 * 1024 - 1))) {
		CHECK_EQ(z->z_uendindex, (int)(j0 % (size_t)z->z_nmax));
		CHECK_PTR_EQ(
		    p, z->z_baseptr + (size_t)z->z_uendindex * z->z_chunksize);
	}
	CHECK_EQ(sh->junkindex % 20, j0 % 20);
	kfree(p, M_TESTK);
}

/* Rows 29, 31, 32: free-zone retention, deferred large free, cleanup. */
/*
 * A wholly free zone taken from the free list by another class keeps its
 * granule maps without clearing them again (they are clear: no chunk is
 * handed out or waiting remote when a zone is freed): the new class's
 * chunks come and go through them as in a fresh zone, remote frees
 * included, and with invariants on zone_setup checks every map word.
 */
static void *
free_from_here(void *p)
{
	kfree(p, M_TESTK);
	return NULL;
}

static void *
reuse_in_new_shard(void *arg)
{
	struct sk_shard *sh = sk_shard_get();
	size_t n = 2000, m = 0;
	void **a = calloc(n, sizeof(void *));
	struct sk_slzone *fz;
	pthread_t t;
	char *p;

	(void)arg;
	for (size_t i = 0; i < n; i++)
		a[i] = kmalloc(1000, M_TESTK, M_WAITOK); /* 16+ zones */
	for (size_t i = 0; i < n; i++)
		kfree(a[i], M_TESTK);
	fz = sh->freezones.head;
	CHECK(fz != NULL);
	if (fz == NULL || (fz->z_flags & ZF_GRANULE) == 0) {
		free(a);
		return NULL;
	}
	/* 48-byte chunks: a class this new shard has no zone of takes fz */
	for (m = 0; m < n; m++) {
		a[m] = kmalloc(48, M_TESTK, M_WAITOK);
		if (zone_of(a[m]) != fz)
			break;
	}
	CHECK(m > 1);
	CHECK(zone_of(a[0]) == fz);
	CHECK_EQ(fz->z_chunksize, 48);
	/* every chunk taken has exactly its own bit, and frees work, local
	 * and remote */
	for (size_t i = 0; i < m && i < 64; i++)
		CHECK(sk_gbit_test(SK_ZABITS(fz), (uintptr_t)a[i]));
	CHECK(!sk_gbit_test(SK_ZABITS(fz), (uintptr_t)a[0] + 8));
	p = a[1];
	CHECK_EQ(pthread_create(&t, NULL, free_from_here, p), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK(sk_gbit_test(SK_ZRBITS(fz), (uintptr_t)p));
	for (size_t i = 0; i <= m && i < n; i++)
		if (i != 1)
			kfree(a[i], M_TESTK);
	free(a);
	return NULL;
}

TEST(free_zone_reused_by_another_class)
{
	pthread_t t;

	slabkit_set_option("invariants", "1");
	CHECK_EQ(pthread_create(&t, NULL, reuse_in_new_shard, NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	slabkit_set_option("invariants", "0");
}

TEST(free_zone_retention)
{
	struct sk_shard *sh = sk_shard_get();
	void **ptrs = calloc(20000, sizeof(void *));
	int old = sk_slab.zone_rels_thresh;
	int n = 0;

	slabkit_set_option("zone_cache", "2");
	CHECK_EQ(sk_slab.zone_rels_thresh, 2);
	for (n = 0; n < 20000; n++)
		ptrs[n] = kmalloc(2000, M_TESTK, M_WAITOK);
	for (int i = 0; i < n; i++)
		kfree(ptrs[i], M_TESTK);
	CHECK(sh->nfreezones > 2);
	/* row 23: a zone on FreeZones has lost its page tag and magic */
	for (struct sk_slzone *fz = sh->freezones.head; fz != NULL;
	     fz = fz->z_next) {
		CHECK_EQ(sk_pagemap_get((uintptr_t)fz), 0);
		CHECK(fz->z_magic != SK_SLAB_MAGIC);
	}
	CHECK(sh->zoneary[sk_zoneindex_ladder(&(size_t){2000}, &(size_t){0})]
	          .head != NULL); /* one zone stays listed */
	/* M_RNOWAIT never releases */
	int before = sh->nfreezones;
	void *p = kmalloc(32, M_TESTK, M_NOWAIT);
	CHECK_EQ(sh->nfreezones, before);
	/* the next blocking alloc does */
	void *q = kmalloc(32, M_TESTK, M_WAITOK);
	CHECK(sh->nfreezones <= 2);
	kfree(p, M_TESTK);
	kfree(q, M_TESTK);
	/* deferred large free in interrupt context */
	void *big = kmalloc(100000, M_TESTK, M_WAITOK);
	slabkit_intr_enter();
	kfree(big, M_TESTK);
	slabkit_intr_exit();
	CHECK(sh->freeovzones != NULL);
	CHECK_EQ(sk_pagemap_get((uintptr_t)big), 0);
	(void)kmalloc(0, M_TESTK, M_NOWAIT);
	p = kmalloc(64, M_TESTK, M_NOWAIT);
	CHECK(sh->freeovzones != NULL); /* RNOWAIT: still queued */
	q = kmalloc(64, M_TESTK, M_WAITOK);
	CHECK(sh->freeovzones == NULL);
	kfree(p, M_TESTK);
	kfree(q, M_TESTK);
	/* released: back in the page-run heap as a free run */
	CHECK(sk_ph_is_free(big));
	slabkit_set_option("zone_cache", old == 0 ? "0" : "32");
	sk_slab.zone_rels_thresh = old;
	free(ptrs);
}

static void *
alloc_keep_thread(void *arg)
{
	void **v = arg;

	for (int i = 0; i < 200; i++)
		v[i] = kmalloc(700, M_TESTK, M_WAITOK);
	return NULL;
}

TEST(slab_cleanup_drains)
{
	struct sk_shard *sh = sk_shard_get();
	void *v[200];
	pthread_t t;
	struct sk_slzone *z;
	int before;

	/* allocate here, free elsewhere: only remote lists hold the chunks */
	for (int i = 0; i < 200; i++)
		v[i] = kmalloc(900, M_TESTK, M_WAITOK);
	z = zone_of(v[100]);
	{
		struct xarg x = {.type = NULL};

		for (int i = 0; i < 200; i++)
			x.ptrs[i] = v[i];
		for (int i = 200; i < 1000; i++)
			x.ptrs[i] = kmalloc(8, M_TESTK, M_WAITOK);
		pthread_create(&t, NULL, free_thread, &x);
		pthread_join(t, NULL);
	}
	CHECK(z->z_rhint != 0 || z->z_nused == 0);
	before = sh->nfreezones;
	slab_cleanup();
	CHECK(z->z_rhint == 0 || z->z_magic != SK_SLAB_MAGIC);
	CHECK(sh->nfreezones >= before);
	/* zones of an exited thread are adopted; cleanup handles orphans */
	pthread_create(&t, NULL, alloc_keep_thread, v);
	pthread_join(t, NULL);
	for (int i = 0; i < 200; i++)
		kfree(v[i], M_TESTK);
	slab_cleanup();
	CHECK_EQ(stat_inuse(M_TESTK) < 1000000, 1);
}

/* Large blocks live on the page-run heap: a freed block's pages are
 * reused by the next large block without a new mapping, the usable size
 * is the page-rounded size (row 33's sizes), M_ZERO zeroes reused pages,
 * and slab_cleanup() gives the retained pages back. */
TEST(large_retained)
{
	struct sk_ph_stats st;
	size_t segs;
	void *p, *q;

	slab_cleanup();
	p = kmalloc(300000, M_TESTK, M_WAITOK);
	CHECK_EQ(kmalloc_usable_size(p), 303104);
	memset(p, 0x77, 300000);
	kfree(p, M_TESTK);
	sk_ph_stats(&st);
	CHECK(st.retained >= 303104);
	segs = st.segments;
	q = kmalloc(200000, M_TESTK, M_WAITOK | M_ZERO);
	CHECK_PTR_EQ(q, p);
	sk_ph_stats(&st);
	CHECK_EQ(st.segments, segs);              /* no new mapping */
	CHECK_EQ(kmalloc_usable_size(q), 200704); /* exact, not the old size */
	CHECK(((char *)q)[0] == 0 && ((char *)q)[200703] == 0);
	kfree(q, M_TESTK);
	slab_cleanup();
	sk_ph_stats(&st);
	CHECK_EQ(st.retained, 0);
}

/*
 * A large block that takes pages the process did not have resident makes
 * its shard release wholly free zones (as many as the block's size covers,
 * keeping two), so that zones a program stopped using for small chunks
 * do not stay resident beside its large blocks; a block served from
 * retained pages, or asked for with M_RNOWAIT, releases none.
 */
TEST(free_zones_yield_to_large)
{
	struct sk_shard *sh = sk_shard_get();
	size_t zs = sk_slab.zone_size, n = 0;
	size_t cap = 16 * (zs / 2000 + 1);
	void **ptrs = calloc(cap, sizeof(void *));
	struct sk_zone_totals t0, t1;
	int before;
	void *big, *big2, *nowait;

	CHECK(ptrs != NULL);
	/* about 16 zones of class 2048, then all free: they stay resident on
	 * the shard's FreeZones (ZoneRelsThresh is 32 or more) */
	for (n = 0; n < cap; n++)
		ptrs[n] = kmalloc(2000, M_TESTK, M_WAITOK);
	for (size_t i = 0; i < n; i++)
		kfree(ptrs[i], M_TESTK);
	CHECK(sh->nfreezones >= 12);
	sk_ph_purge(true); /* no retained pages: the next block is fresh */
	sk_kmalloc_zone_totals(&t0);
	before = sh->nfreezones;
	/* M_RNOWAIT releases nothing */
	nowait = kmalloc(4 * zs, M_TESTK, M_RNOWAIT);
	CHECK(nowait != NULL);
	CHECK_EQ(sh->nfreezones, before);
	/* four zones' worth of fresh pages: four zones go back to the arena,
	 * decommitted */
	big = kmalloc(4 * zs, M_TESTK, M_WAITOK);
	CHECK(big != NULL);
	CHECK_EQ(sh->nfreezones, before - 4);
	sk_kmalloc_zone_totals(&t1);
	CHECK_EQ(t1.arena_decommitted, t0.arena_decommitted + 4 * zs);
	/* more than all of them: two stay */
	big2 = kmalloc(64 * zs, M_TESTK, M_WAITOK);
	CHECK(big2 != NULL);
	CHECK_EQ(sh->nfreezones, 2);
	/* freed blocks are retained: a block from those pages takes nothing
	 * from the zones the shard frees meanwhile */
	kfree(big2, M_TESTK);
	for (n = 0; n < 200; n++)
		ptrs[n] = kmalloc(2000, M_TESTK, M_WAITOK);
	for (size_t i = 0; i < n; i++)
		kfree(ptrs[i], M_TESTK);
	before = sh->nfreezones;
	CHECK(before >= 3);
	big2 = kmalloc(8 * zs, M_TESTK, M_WAITOK);
	CHECK_EQ(sh->nfreezones, before);
	kfree(big2, M_TESTK);
	kfree(big, M_TESTK);
	kfree(nowait, M_TESTK);
	free(ptrs);
}

/*
 * A class that outgrew its zone and shrank again: before the new zone
 * (the class's current one) carves never-used chunks, the chunks freed
 * into the old zone are handed out again.
 */
TEST(freed_chunks_before_fresh_ones)
{
	size_t cap = sk_slab.zone_size / 1024 + 8, n, na, inb = 0;
	void **ptrs = calloc(cap, sizeof(void *));
	struct sk_slzone *a, *b;
	int32_t carved;

	CHECK(ptrs != NULL);
	/* fill a zone of class 1024 and start the next */
	ptrs[0] = kmalloc(1000, M_TESTK, M_WAITOK);
	a = zone_of(ptrs[0]);
	for (n = 1; n < cap; n++) {
		ptrs[n] = kmalloc(1000, M_TESTK, M_WAITOK);
		if (zone_of(ptrs[n]) != a)
			break;
	}
	CHECK(n < cap);
	b = zone_of(ptrs[n]);
	na = n;
	/* half of the old zone's chunks come back */
	for (size_t i = 0; i < na; i += 2)
		kfree(ptrs[i], M_TESTK);
	carved = b->z_carved;
	/* as many again: what b carved already, then a's freed chunks,
	 * and not one more never-used chunk of b */
	for (size_t i = 0; i < na; i += 2) {
		ptrs[i] = kmalloc(1000, M_TESTK, M_WAITOK);
		CHECK(zone_of(ptrs[i]) == a || zone_of(ptrs[i]) == b);
		inb += zone_of(ptrs[i]) == b;
	}
	CHECK_EQ(b->z_carved, carved);
	CHECK(inb < (size_t)carved);
	for (size_t i = 0; i <= n; i++)
		kfree(ptrs[i], M_TESTK);
	free(ptrs);
}

/* Resident pages of [p, p + len), page-aligned p. */
static size_t
resident_pages(const void *p, size_t len)
{
	size_t ps = sk_slab.page_size, n = (len + ps - 1) / ps, r = 0;
	unsigned char *vec = malloc(n);

	if (vec == NULL || mincore((void *)p, len, vec) != 0) {
		free(vec);
		return (size_t)-1;
	}
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	free(vec);
	return r;
}

/*
 * Wholly free zones kept on a shard's FreeZones give their chunk pages
 * back: all at once on slab_cleanup's purge (sk_ph_purge(true)), and by
 * the purge thread once they sat there for purge_ms.  Header and maps
 * stay; the zone serves again, its chunks read as new.
 */
TEST(free_zones_purged_when_idle)
{
	struct sk_shard *sh = sk_shard_get();
	size_t zs = sk_slab.zone_size, ps = sk_slab.page_size;
	size_t cap = 8 * (zs / 1024), n;
	void **ptrs = calloc(cap, sizeof(void *));
	struct sk_slzone *fz;
	uintptr_t from;
#ifndef SLABKIT_TSAN
	long old_ms = sk_opt.purge_ms;
#endif

	CHECK(ptrs != NULL);
	for (int round = 0; round < 2; round++) {
#ifndef SLABKIT_TSAN /* no purge thread there */
		/* the delay in effect when the zones go free (the thread is
		 * started then, even if SLABKIT_OPTIONS said purge_ms=0) */
		if (round == 1)
			sk_opt.purge_ms = 200;
#endif
		for (n = 0; n < cap; n++) {
			ptrs[n] = kmalloc(1000, M_TESTK, M_WAITOK);
			memset(ptrs[n], 0x6b, 1000);
		}
		for (size_t i = 0; i < n; i++)
			kfree(ptrs[i], M_TESTK);
		fz = sh->freezones.head;
		CHECK(fz != NULL && sh->nfreezones >= 4);
		if (fz == NULL)
			break;
		CHECK_EQ(fz->z_purge, 1); /* ZP_IDLE */
		from = ((uintptr_t)((uint32_t *)(fz + 1) + 2 * fz->z_bitwords) +
		           ps - 1) &
		       ~(uintptr_t)(ps - 1);
		CHECK(resident_pages(
		          (void *)from, sk_zone_base(fz) + zs - from) > 0);
		if (round == 0) {
			sk_ph_purge(true); /* what malloc_trim does */
		} else {
#ifndef SLABKIT_TSAN
			for (int i = 0; i < 300 && SK_LOAD(&fz->z_purge) != 3;
			     i++)
				usleep(10000);
			sk_opt.purge_ms = old_ms;
#else
			sk_ph_purge(true);
#endif
		}
		CHECK_EQ(SK_LOAD(&fz->z_purge), 3); /* ZP_PURGED */
		CHECK_EQ(
		    resident_pages((void *)from, sk_zone_base(fz) + zs - from),
		    0);
		CHECK(resident_pages((void *)sk_zone_base(fz), ps) == 1);
	}
	/* purged zones serve again: every chunk new, stats exact */
	for (n = 0; n < cap; n++) {
		ptrs[n] = kmalloc(1000, M_TESTK, M_WAITOK | M_ZERO);
		CHECK(((char *)ptrs[n])[999] == 0);
		memset(ptrs[n], (int)(n & 0xff), 1000);
	}
	for (size_t i = 0; i < n; i++) {
		CHECK(((unsigned char *)ptrs[i])[500] == (i & 0xff));
		kfree(ptrs[i], M_TESTK);
	}
	free(ptrs);
}

static atomic_int purge_race_done;

static void *
purge_race_churn(void *arg)
{
	size_t n = 1500;
	unsigned char **v = malloc(n * sizeof(*v));
	int bad = 0;

	for (int round = 0; round < 30 && v != NULL; round++) {
		for (size_t i = 0; i < n; i++) {
			v[i] = kmalloc(1000, M_TESTK, M_WAITOK);
			memset(v[i], (int)((i + (size_t)arg) & 0xff), 1000);
		}
		for (size_t i = 0; i < n; i++) {
			bad += v[i][0] != ((i + (size_t)arg) & 0xff) ||
			       v[i][999] != ((i + (size_t)arg) & 0xff);
			kfree(v[i], M_TESTK);
		}
	}
	free(v);
	atomic_fetch_add(&purge_race_done, 1);
	return (void *)(intptr_t)bad;
}

/* Zones purged by another thread (malloc_trim's purge) while their
 * owners take them off FreeZones and fill them again: no chunk loses
 * what was written into it. */
TEST(free_zone_purge_races_reuse)
{
	pthread_t t[3];
	void *bad;
	long purges = 0;

	atomic_store(&purge_race_done, 0);
	for (long i = 0; i < 3; i++)
		CHECK_EQ(
		    pthread_create(&t[i], NULL, purge_race_churn, (void *)i),
		    0);
	while (atomic_load(&purge_race_done) < 3) {
		sk_ph_purge(true);
		purges++;
	}
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(pthread_join(t[i], &bad), 0);
		CHECK(bad == NULL);
	}
	CHECK(purges > 0);
}

/* Row 33: krealloc. */
static void
realloc_zero_flag(void *arg)
{
	void *p = kmalloc(10, M_TESTK, M_WAITOK);

	(void)arg;
	(void)krealloc(p, 20, M_TESTK, M_WAITOK | M_ZERO);
}

TEST(krealloc_semantics)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK), *q;

	memset(p, 'x', 100);
	q = krealloc(p, 103, M_TESTK, M_WAITOK); /* same class 104 */
	CHECK_PTR_EQ(q, p);
	q = krealloc(p, 300, M_TESTK, M_WAITOK);
	CHECK(q != p);
	CHECK(q[0] == 'x' && q[99] == 'x');
	p = krealloc(q, 40, M_TESTK, M_WAITOK);
	CHECK(p[0] == 'x' && p[39] == 'x');
	CHECK(krealloc(p, 0, M_TESTK, M_WAITOK) == NULL);
	p = kmalloc(100000, M_TESTK, M_WAITOK);
	q = krealloc(p, 100001, M_TESTK, M_WAITOK); /* same page count */
	CHECK_PTR_EQ(q, p);
	memset(p, 'y', 100001);
	q = krealloc(
	    p, 300000, M_TESTK, M_WAITOK); /* grows in place or moves */
	CHECK(q != NULL);
	CHECK(((char *)q)[0] == 'y' && ((char *)q)[100000] == 'y');
	CHECK_EQ(kmalloc_usable_size(q), 303104);
	CHECK_EQ(sk_pagemap_get((uintptr_t)q), 74);
	if (q != p)
		CHECK_EQ(sk_pagemap_get((uintptr_t)p), 0);
	p = krealloc(q, 20000, M_TESTK, M_WAITOK); /* shrinks */
	CHECK(((char *)p)[0] == 'y' && ((char *)p)[19999] == 'y');
	CHECK_EQ(kmalloc_usable_size(p), 20480);
	q = krealloc(p, 100, M_TESTK, M_WAITOK); /* large to zone */
	CHECK(((char *)q)[99] == 'y');
	CHECK_EQ(kmalloc_usable_size(q), 104);
	kfree(q, M_TESTK);
	CHECK_ABORTS(realloc_zero_flag, NULL, "M_ZERO");
	/* failure leaves the old block valid */
	{
		struct malloc_type t[1] = {
		    {.ks_magic = M_MAGIC, .ks_shortdesc = "rfail"}};
		char *r;

		malloc_init(t);
		r = kmalloc(100, t, M_WAITOK);
		strcpy(r, "keep");
		t->ks_limit = 1; /* everything over the limit now */
		t->ks_loosememuse = 1;
		CHECK(krealloc(r, 5000, t, M_NOWAIT) == NULL);
		CHECK_STR_EQ(r, "keep");
		t->ks_limit = 1 << 20;
		kfree(r, t);
		malloc_uninit(t);
	}
	/* row 33: a 12288-byte block (three pages: the large path) to 12288
	 * and to a size of the same page count keeps its pointer */
	p = kmalloc(12288, M_TESTK, M_WAITOK);
	CHECK_EQ(kmalloc_usable_size(p), 12288);
	CHECK_PTR_EQ(krealloc(p, 12288, M_TESTK, M_WAITOK), p);
	CHECK_PTR_EQ(krealloc(p, 12000, M_TESTK, M_WAITOK), p);
	kfree(p, M_TESTK);
	/* row 36: a failed large-to-large krealloc counts one call */
	{
		struct malloc_type *t = NULL;
		struct kmalloc_type_stats st;
		char *r;

		kmalloc_create(&t, "rcalls");
		r = kmalloc(100000, t, M_WAITOK);
		kmalloc_type_stats(t, &st);
		CHECK_EQ(st.calls, 1);
		t->ks_limit = 1; /* over the limit: the growth must fail */
		t->ks_loosememuse = 1;
		CHECK(krealloc(r, 400000, t, M_NOWAIT) == NULL);
		kmalloc_type_stats(t, &st);
		CHECK_EQ(st.calls, 2);
		CHECK_EQ(st.inuse, 1);
		CHECK_EQ(st.memuse, 102400);
		t->ks_limit = 1 << 20;
		kfree(r, t);
		kmalloc_destroy(&t);
	}
}

/* Row 34: kstrdup / kstrndup. */
TEST(kstrdup_kstrndup)
{
	char *s;

	CHECK(kstrdup(NULL, M_TESTK) == NULL);
	CHECK(kstrndup(NULL, 3, M_TESTK) == NULL);
	s = kstrdup("hello", M_TESTK);
	CHECK_STR_EQ(s, "hello");
	kfree(s, M_TESTK);
	s = kstrndup("hello", 3, M_TESTK);
	CHECK_STR_EQ(s, "hel");
	kfree(s, M_TESTK);
	s = kstrndup("hi", 10, M_TESTK);
	CHECK_STR_EQ(s, "hi");
	kfree(s, M_TESTK);
}

/* Row 36: calls counts every call, failures and size 0 included. */
TEST(stats_calls)
{
	struct malloc_type *t = NULL;
	struct kmalloc_type_stats st;
	void *p;

	kmalloc_create(&t, "calls");
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.calls, 0);
	p = kmalloc(0, t, M_WAITOK);
	p = kmalloc(10, t, M_WAITOK);
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.calls, 2);
	CHECK_EQ(st.inuse, 1);
	CHECK_EQ(st.memuse, 16);
	CHECK_EQ(st.maxused, 16);
	t->ks_limit = 1;
	t->ks_loosememuse = 1;
	CHECK(kmalloc(10, t, M_NOWAIT) == NULL);
	kfree(p, t);
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.calls, 3);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.memuse, 0);
	CHECK_EQ(st.maxused, 16);
	t->ks_limit = 1 << 20;
	kmalloc_destroy(&t);
}

/*
 * The fast paths count a call and its bytes in one packed word per side
 * (kmalloc.c, "Statistics updates"), folded every ZoneSize bytes: exact
 * across many folds and more than 2^16 calls of the smallest chunks, on
 * either side, and with the slot arrays aligned to cache lines (a slot is
 * written by one shard only; a shared line costs every free a miss).
 */
TEST(stats_packed_folds)
{
	enum { N = 40000, ROUNDS = 3 };
	struct malloc_type *t = NULL;
	struct kmalloc_type_stats st;
	void **v = malloc(N * sizeof(*v));

	kmalloc_create(&t, "packed");
	CHECK_EQ((uintptr_t)t->ks_use % SK_CACHELINE, 0);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < N; i++)
			v[i] = kmalloc(8, t, M_WAITOK);
		kmalloc_type_stats(t, &st);
		CHECK_EQ(st.calls, (uint64_t)(r + 1) * N);
		CHECK_EQ(st.inuse, N);
		CHECK_EQ(st.memuse, 8 * N);
		for (int i = 0; i < N / 2; i++)
			kfree(v[i], t);
		kmalloc_type_stats(t, &st);
		CHECK_EQ(st.inuse, N - N / 2);
		CHECK_EQ(st.memuse, 8 * (N - N / 2));
		for (int i = N / 2; i < N; i++)
			kfree(v[i], t);
		kmalloc_type_stats(t, &st);
		CHECK_EQ(st.inuse, 0);
		CHECK_EQ(st.memuse, 0);
	}
	/* mixed sizes: the bytes fields carry the sizes, the counts one each */
	for (int i = 0; i < N; i++)
		v[i] = kmalloc((size_t)(i % 1024) + 1, t, M_WAITOK);
	for (int i = 0; i < N; i += 2)
		kfree(v[i], t);
	{
		size_t bytes = 0;

		for (int i = 1; i < N; i += 2)
			bytes += kmalloc_usable_size(v[i]);
		kmalloc_type_stats(t, &st);
		CHECK_EQ(st.inuse, N / 2);
		CHECK_EQ(st.memuse, bytes);
	}
	for (int i = 1; i < N; i += 2)
		kfree(v[i], t);
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.memuse, 0);
	CHECK_EQ(st.calls, (uint64_t)(ROUNDS + 1) * N);
	kmalloc_destroy(&t);
	free(v);
}

/* Row 37: page shortage and address-space exhaustion. */
TEST(backend_shortage)
{
	void *p;

	/* M_RNOWAIT fails at once when no memory can be had (after
	 * slab_cleanup() has purged the page-run heap) */
	slab_cleanup();
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, -1);
	p = kmalloc(200000, M_TESTK, M_NOWAIT);
	CHECK(p == NULL);
	slabkit_fault_clear();
	/* M_WAITOK retries until memory appears: 5 failures, then success */
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, 5);
	p = kmalloc(200000, M_TESTK, M_WAITOK);
	CHECK(p != NULL);
	CHECK(slabkit_fault_clear() >= 5);
	kfree(p, M_TESTK);
	slab_cleanup(); /* the block's pages were retained by the heap */
	/* exhausted address space: NULL with M_NULLOK */
	slabkit_fault_inject(SLABKIT_FAULT_MAP_EXHAUST, 1, -1);
	p = kmalloc(200000, M_TESTK, M_WAITOK | M_NULLOK);
	CHECK(p == NULL);
	slabkit_fault_clear();
}

static void
exhaust_panics(void *arg)
{
	(void)arg;
	slabkit_fault_inject(SLABKIT_FAULT_MAP_EXHAUST, 1, -1);
	(void)kmalloc(200000, M_TESTK, M_WAITOK);
}

static void
waitok_times_out(void *arg)
{
	(void)arg;
	slabkit_set_option("waitok_timeout", "50");
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, -1);
	(void)kmalloc(200000, M_TESTK, M_WAITOK);
}

TEST(backend_exhausted)
{
	CHECK_ABORTS(exhaust_panics, NULL, "ran out of space");
	CHECK_ABORTS(waitok_times_out, NULL, "out of memory");
}

/* Row 38: double free and handing out twice. */
static void
double_free_local(void *arg)
{
	void *p = kmalloc(40, M_TESTK, M_WAITOK);

	(void)arg;
	kfree(p, M_TESTK);
	kfree(p, M_TESTK);
}

static void
double_free_overwritten(void *arg)
{
	char *p = kmalloc(40, M_TESTK, M_WAITOK);

	(void)arg;
	kfree(p, M_TESTK);
	memset(p, 0x41, 40); /* scribble over the free-list link */
	kfree(p, M_TESTK);
}

static void *
thread_free(void *arg)
{
	kfree(arg, M_TESTK);
	return NULL;
}

static void
double_free_remote(void *arg)
{
	void *p = kmalloc(40, M_TESTK, M_WAITOK);
	pthread_t t;

	(void)arg;
	pthread_create(&t, NULL, thread_free, p);
	pthread_join(t, NULL);
	pthread_create(&t, NULL, thread_free, p);
	pthread_join(t, NULL);
}

static void
double_free_remote_then_local(void *arg)
{
	void *p = kmalloc(40, M_TESTK, M_WAITOK);
	pthread_t t;

	(void)arg;
	pthread_create(&t, NULL, thread_free, p);
	pthread_join(t, NULL);
	kfree(p, M_TESTK);
}

static void
handed_out_twice(void *arg)
{
	char *p = kmalloc(40, M_TESTK, M_WAITOK);
	struct sk_slzone *z = zone_of(p);
	size_t g = sk_zone_granule((uintptr_t)p); /* its granule bit */

	(void)arg;
	slabkit_set_option("invariants", "1");
	kfree(p, M_TESTK);
	/* corrupt: mark the free chunk allocated */
	z->z_abits[SK_ZWORD(g)] |= 1u << (g & 31);
	(void)kmalloc(40, M_TESTK, M_WAITOK);
}

static void
free_interior(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	kfree(p + 8, M_TESTK);
}

/* kfree(q) from another thread, which owns no zone of q: a remote free */
static void
kfree_from_thread(void *q)
{
	pthread_t t;

	pthread_create(&t, NULL, thread_free, q);
	pthread_join(t, NULL);
}

/* The same from another thread (the remote free's own tests), and a
 * pointer into the zone's header, below its first chunk, whose granule
 * bit is never set. */
static void
free_interior_remote(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	kfree_from_thread(p + 8);
}

static void
free_header_remote(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	kfree_from_thread((char *)zone_of(p) + 64);
}

/* Misaligned pointers into a live chunk, local and remote: the inline
 * range test (which also proves 8-alignment) sends them to the slow path,
 * and no later test on the fast paths looks at the low bits again. */
static void
free_misaligned_local(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	kfree(p + 3, M_TESTK);
}

static void
free_misaligned_remote(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	kfree_from_thread(p + 1);
}

static void
free_foreign(void *arg)
{
	static char buf[64];

	(void)arg;
	kfree(buf + 16, M_TESTK);
}

TEST(double_free_detection)
{
	CHECK_ABORTS(double_free_local, NULL, "already free");
	CHECK_ABORTS(double_free_overwritten, NULL, "already free");
	CHECK_ABORTS(double_free_remote, NULL, "already free");
	CHECK_ABORTS(double_free_remote_then_local, NULL, "already free");
	CHECK_ABORTS(handed_out_twice, NULL, "already allocated");
	CHECK_ABORTS(free_interior, NULL, "not the start of a chunk");
	CHECK_ABORTS(free_interior_remote, NULL, "not the start of a chunk");
	CHECK_ABORTS(free_header_remote, NULL, "not the start of a chunk");
	CHECK_ABORTS(free_misaligned_local, NULL, "not the start of a chunk");
	CHECK_ABORTS(free_misaligned_remote, NULL, "not the start of a chunk");
	CHECK_ABORTS(free_foreign, NULL, "not allocated by slabkit");
}

/*
 * kmalloc_usable_size of a live chunk of the caller's own zone is answered
 * by kfree's fast-path tests (sk_chunk_size_local), of anything else by
 * the page tags: both give the class size, and freed, remote-freed (still
 * waiting in rbits), interior and misaligned pointers still abort.
 */
static void *
usable_size_there(void *arg)
{
	return (void *)(uintptr_t)kmalloc_usable_size(arg);
}

TEST(usable_size_fast_and_slow_agree)
{
	/* zone sizes (12288, three pages, would be a large block) */
	static const size_t sizes[] = {1, 8, 24, 100, 256, 1000, 4000, 8000};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *p = kmalloc(sizes[i], M_TESTK, M_WAITOK);
		size_t want = zone_of(p)->z_chunksize, there;
		pthread_t t;
		void *r;

		CHECK(want != 0);
		CHECK_EQ(sk_chunk_size_local(p), want);
		CHECK_EQ(kmalloc_usable_size(p), want);
		CHECK(want >= sizes[i]);
		/* another thread: not its zone, the page-tag path */
		CHECK_EQ(pthread_create(&t, NULL, usable_size_there, p), 0);
		CHECK_EQ(pthread_join(t, &r), 0);
		there = (size_t)(uintptr_t)r;
		CHECK_EQ(there, want);
		kfree(p, M_TESTK);
	}
}

static void
usable_freed_local(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	kfree(p, M_TESTK);
	(void)kmalloc_usable_size(p);
}

static void
usable_freed_remote(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	kfree_from_thread(p); /* its bit waits in rbits, not drained */
	CHECK_EQ(sk_chunk_size_local(p), 0);
	(void)kmalloc_usable_size(p);
}

static void
usable_interior(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	(void)kmalloc_usable_size(p + 16);
}

static void
usable_misaligned(void *arg)
{
	char *p = kmalloc(100, M_TESTK, M_WAITOK);

	(void)arg;
	(void)kmalloc_usable_size(p + 4);
}

TEST(usable_size_misuse)
{
	CHECK_ABORTS(usable_freed_local, NULL, "is free");
	CHECK_ABORTS(usable_freed_remote, NULL, "is free");
	CHECK_ABORTS(usable_interior, NULL, "not the start of a chunk");
	CHECK_ABORTS(usable_misaligned, NULL, "not the start of a chunk");
}

/* Row 39: fill patterns. */
static void
patterns_child(void *arg)
{
	unsigned char *p;
	uint32_t *w;
	int ok = 1;

	(void)arg;
	slabkit_set_option("invariants", "1");
	slabkit_set_option("pattern", "1");
	slabkit_set_option("weird", "1");
	p = kmalloc(200, M_TESTK, M_WAITOK);
	kfree(p, M_TESTK);
	w = (uint32_t *)p;
	for (int i = 2; i < 16; i++) /* first words hold the link */
		if (w[i] != 0xdeadc0de)
			ok = 0;
	p = kmalloc(200, M_TESTK, M_WAITOK);
	for (int i = 8; i < 200; i++)
		if (p[i] != 0xff)
			ok = 0;
	if (*(void **)p != (void *)-1)
		ok = 0;
	if (ok)
		abort(); /* report success through the abort path */
	_exit(3);
}

TEST(fill_patterns)
{
	CHECK_ABORTS(patterns_child, NULL, "");
}

/* Row 40: corrupted zone. */
static void
corrupt_zone(void *arg)
{
	char *p = kmalloc(6000, M_TESTK, M_WAITOK);
	struct sk_slzone *z = zone_of(p);

	(void)arg;
	/* make the next carve wrap to UEndIndex while chunks remain */
	z->z_uindex =
	    z->z_uendindex - 1 < 0 ? z->z_nmax - 1 : z->z_uendindex - 1;
	z->z_lchunks = (z->z_flags & 0x2000) ? (struct sk_chunk *)z : NULL;
	if (z->z_carved > z->z_nmax - 2)
		z->z_carved = z->z_nmax - 2;
	(void)kmalloc(6000, M_TESTK, M_WAITOK);
}

TEST(corrupted_zone)
{
	CHECK_ABORTS(corrupt_zone, NULL, "slaballoc: corrupted zone");
}

/* Row 42: the vmstat -m table. */
TEST(vmstat_m)
{
	char buf[8192];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	void *p = kmalloc(10, M_TESTK, M_WAITOK);

	slabkit_print_vmstat_m(f);
	fclose(f);
	CHECK(strstr(buf, "Memory statistics by type") != NULL);
	CHECK(strstr(buf, "Type") && strstr(buf, "InUse") &&
	      strstr(buf, "MemUse") && strstr(buf, "HighUse") &&
	      strstr(buf, "Limit") && strstr(buf, "Requests") &&
	      strstr(buf, "Kern"));
	CHECK(strstr(buf, "testk") != NULL);
	CHECK(strstr(buf, "Memory Totals:  In Use    Free    Requests"));
	kfree(p, M_TESTK);
}

/* Options: unknown keys are refused and reported. */
TEST(options)
{
	CHECK_EQ(slabkit_set_option("no_such_key", "1"), ENOENT);
	CHECK_EQ(slabkit_set_option("zone_cache", "abc"), EINVAL);
	CHECK_EQ(slabkit_set_option("memlimit", "1G"), EBUSY);
	CHECK_EQ(slabkit_set_option("zone_burst", "16"), 0);
	CHECK_EQ(sk_opt.zone_burst, 16);
	CHECK_EQ(slabkit_set_option("zone_burst", "32"), 0);
	CHECK_EQ(slabkit_set_options("bogus,zone_burst=32"), ENOENT);
	CHECK_EQ(slabkit_set_option("objcache_reap", "x"), EINVAL);
	CHECK_EQ(slabkit_set_option("objcache_reap", "0"), 0);
	CHECK_EQ(sk_opt.objcache_reap_ms, 0);
}

/*
 * The first allocation from a zone just set up carves exactly the chunks
 * that start in the page of its first chunk: none in the next page, so a
 * zone used for a few chunks keeps its header pages and one page of
 * chunks resident, not two (a page's worth from the first chunk on wrote
 * links into the next page as well).
 */
static void *
carve_in_new_shard(void *arg)
{
	size_t ps = sk_slab.page_size, size, n;
	struct sk_slzone *z;
	uintptr_t end;
	char *p, *q;

	(void)arg;
	p = kmalloc(200, M_TESTK, M_WAITOK);
	CHECK(p != NULL);
	z = zone_of(p);
	CHECK((z->z_flags & ZF_GRANULE) != 0);
	size = z->z_chunksize;
	/* p is the first chunk carved; the carving took the chunks that
	 * start in p's page */
	end = ((uintptr_t)p | (ps - 1)) + 1;
	n = (end - (uintptr_t)p - 1) / size + 1;
	CHECK_EQ(z->z_nused, 1);
	CHECK_EQ((size_t)z->z_carved, n);
	/* every one of them starts in that page; the next carving starts
	 * in the next */
	for (size_t i = 1; i < n; i++) {
		q = kmalloc(200, M_TESTK, M_WAITOK);
		CHECK((uintptr_t)q >= (uintptr_t)p && (uintptr_t)q < end);
	}
	q = kmalloc(200, M_TESTK, M_WAITOK);
	CHECK((uintptr_t)q >= end && (uintptr_t)q < end + ps);
	return NULL;
}

TEST(carving_by_page)
{
	pthread_t t;

	/* a thread of its own: a shard with no zone of the class yet (its
	 * chunks stay allocated: the thread's shard is orphaned at exit) */
	CHECK_EQ(pthread_create(&t, NULL, carve_in_new_shard, NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
}

/*
 * ks_maxused follows a peak that no read saw: the sum is sampled every
 * SK_MAXUSED_FOLDS ZoneSizes a shard allocates, so after 4 MiB of small
 * chunks (or of large blocks) freed again, the mark is within 8 ZoneSizes
 * of the peak; until then, at every fold and every large allocation.
 */
TEST(maxused_sampled_between_reads)
{
	struct malloc_type *t = NULL;
	struct kmalloc_type_stats st;
	size_t zs = sk_slab.zone_size, n = 1024, sizes[2] = {4096, 65536};
	void **p = calloc(n, sizeof(void *));

	CHECK(p != NULL);
	kmalloc_create(&t, "maxused");
	kmalloc_raise_limit(t, 0);
	for (int k = 0; k < 2; k++) {
		size_t each = sizes[k], count = ((size_t)4 << 20) / each;

		for (size_t i = 0; i < count; i++)
			p[i] = kmalloc(each, t, M_WAITOK);
		for (size_t i = 0; i < count; i++)
			kfree(p[i], t);
		CHECK_EQ(kmalloc_type_stats(t, &st), 0);
		CHECK_EQ(st.memuse, 0);
		CHECK(st.maxused >= ((size_t)4 << 20) - 8 * zs);
		CHECK(st.maxused <= ((size_t)4 << 20) + (size_t)8 * zs);
	}
	kmalloc_destroy(&t);
	free(p);
	/* a type used a little keeps a mark at every fold and every large
	 * block: one large block (after the first fold, none of its own),
	 * then two ZoneSizes of
	 * small chunks (the second fold sees more than one), no read */
	kmalloc_create(&t, "maxused-small");
	p = calloc(n, sizeof(void *));
	CHECK(p != NULL);
	p[1] = kmalloc(16, t, M_WAITOK); /* the slot's first fold */
	p[0] = kmalloc(20000, t, M_WAITOK);
	kfree(p[0], t);
	kfree(p[1], t);
	CHECK_EQ(kmalloc_type_stats(t, &st), 0);
	CHECK(st.maxused >= 20016);
	for (size_t i = 0; i < 2 * zs / 512 + 1; i++)
		p[i] = kmalloc(512, t, M_WAITOK);
	for (size_t i = 0; i < 2 * zs / 512 + 1; i++)
		kfree(p[i], t);
	CHECK_EQ(kmalloc_type_stats(t, &st), 0);
	CHECK(st.maxused >= zs);
	kmalloc_destroy(&t);
	free(p);
}

/*
 * kmalloc and kfree jump to one of four copies (internal.h, "The copies of
 * the entry points"): per kind of shard, baseline and BMI2.  The copy
 * chosen follows the mode and the CPU; blocks of every small size and a
 * few large ones go out through each copy that can run and back through
 * every other, counted in the type; each copy reports a double free.
 */
#if SK_COPIES
static int kcopy;

static void
kcopy_double_free(void *arg)
{
	void *p = sk_kmalloc_copies[kcopy](40, M_TESTK, M_WAITOK);

	(void)arg;
	sk_kfree_copies[kcopy](p, M_TESTK);
	sk_kfree_copies[kcopy](p, M_TESTK);
}

/* Copy c can run in this mode on this CPU (the CPU copies read the
 * restartable sequence's CPU number, set only while CPU shards are on). */
static bool
kcopy_runnable(int c, bool cpu)
{
	return (!SK_COPY_IS_BMI2(c) || sk_os_cpu_bmi2()) &&
	       SK_COPY_IS_CPU(c) == cpu;
}

static void
kcopies_in(bool cpu)
{
	static char *blk[500];
	struct kmalloc_type_stats st0, st1;
	int64_t pairs = 0;

	/* the copy chosen: this mode's, BMI2's where the CPU has it */
	CHECK(SK_LOAD(&sk_kmalloc_copy) ==
	      sk_kmalloc_copies[(cpu ? SK_COPY_CPU_BASE : SK_COPY_THREAD_BASE) +
	                        sk_os_cpu_bmi2()]);
	CHECK(SK_LOAD(&sk_kfree_copy) ==
	      sk_kfree_copies[(cpu ? SK_COPY_CPU_BASE : SK_COPY_THREAD_BASE) +
	                      sk_os_cpu_bmi2()]);
	st0.size = st1.size = sizeof(st0);
	CHECK_EQ(kmalloc_type_stats(M_TESTK, &st0), 0);
	for (int a = 0; a < SK_NCOPIES; a++)
		for (int b = 0; b < SK_NCOPIES; b++) {
			if (!kcopy_runnable(a, cpu) || !kcopy_runnable(b, cpu))
				continue;
			for (int i = 0; i < 500; i++) {
				size_t len = i % 61 == 0
				                 ? 30000
				                 : 1 + (size_t)i * 3 % 1024;

				blk[i] = sk_kmalloc_copies[a](
				    len, M_TESTK, M_WAITOK);
				CHECK(blk[i] != NULL);
				memset(blk[i], i & 0xff, len);
				CHECK_EQ(
				    (unsigned char)blk[i][len - 1], i & 0xff);
			}
			for (int i = 0; i < 500; i++)
				sk_kfree_copies[b](blk[i], M_TESTK);
			pairs += 500;
		}
	CHECK_EQ(kmalloc_type_stats(M_TESTK, &st1), 0);
	CHECK_EQ(st1.inuse, st0.inuse);
	CHECK_EQ(st1.memuse, st0.memuse);
	CHECK_EQ((int64_t)(st1.calls - st0.calls), pairs);
	CHECK(pairs > 0);
	for (kcopy = 0; kcopy < SK_NCOPIES; kcopy++)
		if (kcopy_runnable(kcopy, cpu))
			CHECK_ABORTS(kcopy_double_free, NULL, "already free");
}
#endif

TEST(kmalloc_copies)
{
#if SK_COPIES
	CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	kcopies_in(false);
	if (slabkit_set_option("shards", "cpu") == 0) {
		kcopies_in(true);
		CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	} else {
		printf("  (no shards per CPU here)\n");
	}
#else
	printf("  (one copy of kmalloc and kfree in this build)\n");
#endif
}

int
main(void)
{
	sk_t_default_mode("LIFO reuse, usable sizes, zone states, fill "
	                  "patterns and SLAB_DEBUG checks of the default mode");
	/* white-box checks of this thread's shard: shards per thread
	 * (test_cpu covers the shards per CPU) */
	CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	RUN(flags_values);
	RUN(zeroing);
	RUN(zero_reused_zone);
	RUN(type_magic);
	RUN(malloc_define_registered);
	RUN(create_destroy);
	RUN(destroy_reports_leak);
	RUN(limits);
	RUN(limit_enforced);
	RUN(bad_flags);
	RUN(size_classes);
	RUN(alignment);
	RUN(pow2_cachealign);
	RUN(zero_size);
	RUN(kfree_null);
	RUN(zone_sizing);
	RUN(zone_header_and_tags);
	RUN(large_path);
	/* before any other remote free: the one it makes must be what
	 * turns the bounded look on */
	RUN(stranded_remote_free_found_by_bounded_scan);
	RUN(lifo_and_shards);
	RUN(remote_free_stats_balance);
	RUN(rsignal_relist);
	RUN(colouring);
	RUN(carving_by_page);
	RUN(free_zone_reused_by_another_class);
	RUN(free_zone_retention);
	RUN(slab_cleanup_drains);
	RUN(large_retained);
	RUN(free_zones_yield_to_large);
	RUN(freed_chunks_before_fresh_ones);
	RUN(free_zones_purged_when_idle);
	RUN(free_zone_purge_races_reuse);
	RUN(krealloc_semantics);
	RUN(kstrdup_kstrndup);
	RUN(stats_calls);
	RUN(stats_packed_folds);
	RUN(backend_shortage);
	RUN(backend_exhausted);
	RUN(double_free_detection);
	RUN(usable_size_fast_and_slow_agree);
	RUN(usable_size_misuse);
	RUN(fill_patterns);
	RUN(corrupted_zone);
	RUN(vmstat_m);
	RUN(options);
	RUN(maxused_sampled_between_reads);
	RUN(kmalloc_copies);
	return sk_t_done();
}
