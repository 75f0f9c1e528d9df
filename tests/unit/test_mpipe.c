/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mpipe, single-threaded semantics (spec 3.2, checklist rows 57-59 and
 * 61-66): normalisation, the nnom guarantee under kmalloc failure,
 * overflow, zeroing, construct/deconstruct, LIFO reuse, mpipe_done and the
 * statistics table.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <slabkit/compat/sys/mpipe.h>
#include <slabkit/slabkit.h>

#include "default_mode.h"
#include "harness.h"
#include "internal.h"

/* construct/deconstruct bookkeeping, passed as priv */
struct counts {
	int ctor;
	int dtor;
	void *last_ctor;
	void *last_dtor;
	void *seen[64]; /* buffers constructed, in order */
};

static void
ctor(void *buf, void *priv)
{
	struct counts *c = priv;

	if (c->ctor < 64)
		c->seen[c->ctor] = buf;
	c->ctor++;
	c->last_ctor = buf;
}

static void
dtor(void *buf, void *priv)
{
	struct counts *c = priv;

	c->dtor++;
	c->last_dtor = buf;
}

static uint64_t
type_calls(struct malloc_type *t)
{
	struct kmalloc_type_stats st;

	kmalloc_type_stats(t, &st);
	return st.calls;
}

static size_t
type_inuse(struct malloc_type *t)
{
	struct kmalloc_type_stats st;

	kmalloc_type_stats(t, &st);
	return st.inuse;
}

static bool
all_bytes(const void *p, int v, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)v)
			return false;
	return true;
}

/* Row 57: nnom < 1 -> 1; nmax < 0 -> unlimited; nmax < nnom -> nnom. */
TEST(init_normalises)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c;

	kmalloc_create(&t, "mp_norm");
	memset(&mp, 0xa5, sizeof(mp)); /* old contents are ignored */
	memset(&c, 0, sizeof(c));
	mpipe_init(&mp, t, 64, 0, 0, 0, ctor, dtor, &c);
	CHECK_EQ(mp.ary_count, 1);
	CHECK_EQ(mp.max_count, 1);
	CHECK_EQ(mp.total_count, 1);
	CHECK_EQ(mp.free_count, 1);
	CHECK_EQ(c.ctor, 1);
	mpipe_done(&mp);
	CHECK_EQ(c.dtor, 1);

	mpipe_init(&mp, t, 64, 4, -1, 0, NULL, NULL, NULL);
	CHECK_EQ(mp.max_count, 0x7FFF0000);
	mpipe_done(&mp);
	mpipe_init(&mp, t, 64, 4, 2, 0, NULL, NULL, NULL);
	CHECK_EQ(mp.max_count, 4);
	mpipe_done(&mp);
	/* nmax == 0 means nnom, not unlimited */
	mpipe_init(&mp, t, 64, 4, 0, 0, NULL, NULL, NULL);
	CHECK_EQ(mp.max_count, 4);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

static void
done_outstanding(void *arg)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;

	(void)arg;
	kmalloc_create(&t, "mp_outst");
	mpipe_init(&mp, t, 32, 2, 2, 0, NULL, NULL, NULL);
	(void)mpipe_alloc_nowait(&mp);
	mpipe_done(&mp);
}

/* Row 57: exactly nnom buffers pre-allocated, each constructed once. */
TEST(init_preallocates_nnom)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c;
	uint64_t calls;

	kmalloc_create(&t, "mp_prealloc");
	memset(&c, 0, sizeof(c));
	calls = type_calls(t);
	mpipe_init(&mp, t, 200, 5, 10, 0, ctor, dtor, &c);
	CHECK_EQ(type_calls(t) - calls, 5);
	CHECK_EQ(type_inuse(t), 5);
	CHECK_EQ(c.ctor, 5);
	CHECK_EQ(mp.total_count, 5);
	CHECK_EQ(mp.free_count, 5);
	CHECK_EQ(mp.max_count, 10);
	for (int i = 0; i < 5; i++) {
		CHECK_PTR_EQ(mp.array[i], c.seen[i]);
		for (int j = 0; j < i; j++)
			CHECK(c.seen[i] != c.seen[j]);
	}
	CHECK_EQ(mp.mflags, M_ZERO);
	mpipe_done(&mp);
	CHECK_EQ(type_inuse(t), 0);

	mpipe_init(&mp, t, 8, 1, 1, MPF_NOZERO | MPF_INT, NULL, NULL, NULL);
	CHECK_EQ(mp.mflags, M_USE_RESERVE | M_USE_INTERRUPT_RESERVE);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 58: nnom allocations need no kmalloc, even when kmalloc fails. */
TEST(guarantee_under_map_faults)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	enum { BIG = 64 * 1024, NNOM = 4 };
	void *b[NNOM + 1];
	uint64_t calls;

	kmalloc_create(&t, "mp_fault");
	/* BIG is beyond ZoneLimit: every kmalloc of it maps pages. */
	mpipe_init(&mp, t, BIG, NNOM, 16, 0, NULL, NULL, NULL);
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, -1);
	CHECK(kmalloc(BIG, t, M_NOWAIT) == NULL); /* kmalloc does fail */
	for (int round = 0; round < 3; round++) {
		calls = type_calls(t);
		for (int i = 0; i < NNOM; i++) {
			b[i] = mpipe_alloc_nowait(&mp);
			CHECK(b[i] != NULL);
			for (int j = 0; j < i; j++)
				CHECK(b[i] != b[j]);
		}
		CHECK_EQ(type_calls(t), calls); /* kmalloc not even called */
		/* Beyond nnom the pipe tries kmalloc, which fails. */
		CHECK(mpipe_alloc_nowait(&mp) == NULL);
		CHECK_EQ(type_calls(t), calls + 1);
		CHECK_EQ(mp.total_count, NNOM);
		for (int i = 0; i < NNOM; i++)
			mpipe_free(&mp, b[i]);
		CHECK_EQ(mp.free_count, NNOM);
	}
	CHECK(slabkit_fault_clear() > 0);
	for (int i = 0; i <= NNOM; i++)
		CHECK((b[i] = mpipe_alloc_nowait(&mp)) != NULL);
	CHECK_EQ(mp.total_count, NNOM + 1);
	for (int i = 0; i <= NNOM; i++)
		mpipe_free(&mp, b[i]);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

struct conc {
	struct malloc_pipe *mp;
	pthread_barrier_t *bar;
	void *got;
};

static void *
conc_alloc(void *arg)
{
	struct conc *c = arg;

	pthread_barrier_wait(c->bar);
	c->got = mpipe_alloc_nowait(c->mp);
	return NULL;
}

/* Row 58: nnom concurrent mpipe_alloc_nowait calls under kmalloc faults. */
TEST(guarantee_concurrent)
{
	enum { NNOM = 6 };
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	pthread_barrier_t bar;
	pthread_t th[NNOM];
	struct conc c[NNOM];

	kmalloc_create(&t, "mp_conc");
	mpipe_init(&mp, t, 64 * 1024, NNOM, -1, 0, NULL, NULL, NULL);
	pthread_barrier_init(&bar, NULL, NNOM);
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, -1);
	for (int i = 0; i < NNOM; i++) {
		c[i] = (struct conc){&mp, &bar, NULL};
		pthread_create(&th[i], NULL, conc_alloc, &c[i]);
	}
	for (int i = 0; i < NNOM; i++)
		pthread_join(th[i], NULL);
	slabkit_fault_clear();
	for (int i = 0; i < NNOM; i++) {
		CHECK(c[i].got != NULL);
		for (int j = 0; j < i; j++)
			CHECK(c[i].got != c[j].got);
	}
	CHECK_EQ(mp.free_count, 0);
	CHECK_EQ(mp.total_count, NNOM);
	for (int i = 0; i < NNOM; i++)
		mpipe_free(&mp, c[i].got);
	mpipe_done(&mp);
	pthread_barrier_destroy(&bar);
	kmalloc_destroy(&t);
}

/* Row 58: the same with the type at its limit. */
TEST(guarantee_at_type_limit)
{
	enum { NNOM = 4 };
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *b[NNOM + 1];

	kmalloc_create(&t, "mp_limit");
	mpipe_init(&mp, t, 256, NNOM, 2 * NNOM, 0, NULL, NULL, NULL);
	/* Put the type over its limit: a 1-byte limit, and the lazy
	 * estimate at it so that every kmalloc takes the exact check. */
	SK_STORE(&t->ks_limit, (size_t)1);
	SK_STORE(&t->ks_loosememuse, (size_t)1);
	CHECK(kmalloc(16, t, M_NOWAIT) == NULL);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < NNOM; i++)
			CHECK((b[i] = mpipe_alloc_nowait(&mp)) != NULL);
		CHECK(mpipe_alloc_nowait(&mp) == NULL);
		for (int i = 0; i < NNOM; i++)
			mpipe_free(&mp, b[i]);
	}
	kmalloc_raise_limit(t, 0);
	for (int i = 0; i <= NNOM; i++)
		CHECK((b[i] = mpipe_alloc_nowait(&mp)) != NULL);
	for (int i = 0; i <= NNOM; i++)
		mpipe_free(&mp, b[i]);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 59: between nnom and nmax: kmalloc'd and constructed; then NULL. */
TEST(overflow_to_nmax)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c;
	void *b[5];
	uint64_t calls;

	kmalloc_create(&t, "mp_over");
	memset(&c, 0, sizeof(c));
	mpipe_init(&mp, t, 48, 2, 4, 0, ctor, dtor, &c);
	calls = type_calls(t);
	b[0] = mpipe_alloc_nowait(&mp);
	b[1] = mpipe_alloc_nowait(&mp);
	CHECK_EQ(type_calls(t), calls);
	CHECK_EQ(c.ctor, 2);
	b[2] = mpipe_alloc_nowait(&mp);
	CHECK(b[2] != NULL);
	CHECK_EQ(type_calls(t), calls + 1);
	CHECK_EQ(c.ctor, 3);
	CHECK_PTR_EQ(c.last_ctor, b[2]);
	b[3] = mpipe_alloc_nowait(&mp);
	CHECK(b[3] != NULL);
	CHECK_EQ(c.ctor, 4);
	CHECK_EQ(mp.total_count, 4);
	b[4] = mpipe_alloc_nowait(&mp);
	CHECK(b[4] == NULL); /* at nmax: no kmalloc either */
	CHECK_EQ(type_calls(t), calls + 2);
	CHECK_EQ(mp.total_count, 4);
	for (int i = 0; i < 4; i++)
		mpipe_free(&mp, b[i]);
	mpipe_done(&mp);
	CHECK_EQ(c.dtor, 4);
	kmalloc_destroy(&t);
}

/* Row 61: default flags zero new and reused buffers. */
TEST(zero_default)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *a, *b, *p;

	kmalloc_create(&t, "mp_zero");
	mpipe_init(&mp, t, 100, 1, 2, 0, NULL, NULL, NULL);
	a = mpipe_alloc_nowait(&mp);
	CHECK(all_bytes(a, 0, 100));
	memset(a, 0xab, 100);
	mpipe_free(&mp, a);
	CHECK_PTR_EQ(mpipe_alloc_nowait(&mp), a); /* LIFO reuse */
	CHECK(all_bytes(a, 0, 100));
	/* A recycled kmalloc chunk comes back zeroed (M_ZERO). */
	p = kmalloc(100, t, M_WAITOK);
	memset(p, 0xcd, 100);
	kfree(p, t);
	b = mpipe_alloc_nowait(&mp);
	CHECK_PTR_EQ(b, p);
	CHECK(all_bytes(b, 0, 100));
	mpipe_free(&mp, b);
	mpipe_free(&mp, a);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 61: MPF_CACHEDATA keeps old contents on reuse; new ones are zero. */
TEST(zero_cachedata)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *a, *b, *p;

	kmalloc_create(&t, "mp_cache");
	mpipe_init(&mp, t, 100, 1, 2, MPF_CACHEDATA, NULL, NULL, NULL);
	CHECK(mp.mflags & M_ZERO);
	a = mpipe_alloc_nowait(&mp);
	CHECK(all_bytes(a, 0, 100));
	memset(a, 0xab, 100);
	mpipe_free(&mp, a);
	CHECK_PTR_EQ(mpipe_alloc_nowait(&mp), a);
	CHECK(all_bytes(a, 0xab, 100));
	p = kmalloc(100, t, M_WAITOK);
	memset(p, 0xcd, 100);
	kfree(p, t);
	b = mpipe_alloc_nowait(&mp);
	CHECK_PTR_EQ(b, p);
	CHECK(all_bytes(b, 0, 100)); /* new buffers are still zeroed */
	mpipe_free(&mp, b);
	mpipe_free(&mp, a);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 61: MPF_NOZERO never zeroes, new or reused. */
TEST(zero_nozero)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *a, *b, *p;

	kmalloc_create(&t, "mp_nozero");
	mpipe_init(&mp, t, 100, 1, 2, MPF_NOZERO, NULL, NULL, NULL);
	CHECK(!(mp.mflags & M_ZERO));
	a = mpipe_alloc_nowait(&mp);
	memset(a, 0xab, 100);
	mpipe_free(&mp, a);
	CHECK_PTR_EQ(mpipe_alloc_nowait(&mp), a);
	CHECK(all_bytes(a, 0xab, 100));
	p = kmalloc(100, t, M_WAITOK);
	memset(p, 0xcd, 100);
	kfree(p, t);
	b = mpipe_alloc_nowait(&mp);
	CHECK_PTR_EQ(b, p);
	/* Not zeroed when new: past kfree's free-list link, the chunk
	 * still holds what was written before it was freed. */
	CHECK(
	    all_bytes((char *)b + sizeof(void *), 0xcd, 100 - sizeof(void *)));
	mpipe_free(&mp, b);
	mpipe_free(&mp, a);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 62: construct only on new buffers, deconstruct only on kfree. */
TEST(construct_deconstruct)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c;
	void *a, *b, *x;

	kmalloc_create(&t, "mp_ctor");
	memset(&c, 0, sizeof(c));
	mpipe_init(&mp, t, 32, 2, 3, MPF_CACHEDATA, ctor, dtor, &c);
	CHECK_EQ(c.ctor, 2);
	for (int i = 0; i < 50; i++) {
		a = mpipe_alloc_nowait(&mp);
		b = mpipe_alloc_waitok(&mp);
		mpipe_free(&mp, a);
		mpipe_free(&mp, b);
	}
	CHECK_EQ(c.ctor, 2); /* reuse never constructs */
	CHECK_EQ(c.dtor, 0); /* cached frees never deconstruct */
	a = mpipe_alloc_nowait(&mp);
	b = mpipe_alloc_nowait(&mp);
	x = mpipe_alloc_nowait(&mp); /* overflow */
	CHECK_EQ(c.ctor, 3);
	CHECK_PTR_EQ(c.last_ctor, x);
	mpipe_free(&mp, a);
	mpipe_free(&mp, b);
	CHECK_EQ(c.dtor, 0);
	mpipe_free(&mp, x); /* the array holds nnom: x goes back */
	CHECK_EQ(c.dtor, 1);
	CHECK_PTR_EQ(c.last_dtor, x);
	mpipe_done(&mp);
	CHECK_EQ(c.dtor, 3);
	CHECK_EQ(c.ctor, c.dtor);
	kmalloc_destroy(&t);
}

/* Row 63: a free with a full array deconstructs, kfrees, total--. */
TEST(free_overflow)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c;
	void *b[4];
	size_t inuse;

	kmalloc_create(&t, "mp_freeover");
	memset(&c, 0, sizeof(c));
	mpipe_init(&mp, t, 64, 2, 4, 0, ctor, dtor, &c);
	for (int i = 0; i < 4; i++)
		b[i] = mpipe_alloc_nowait(&mp);
	CHECK_EQ(mp.total_count, 4);
	inuse = type_inuse(t);
	/* Free the reserve-made ones last: whatever is freed first is
	 * cached, whatever finds the array full goes back. */
	mpipe_free(&mp, b[2]);
	mpipe_free(&mp, b[3]);
	CHECK_EQ(mp.free_count, 2);
	CHECK_EQ(c.dtor, 0);
	mpipe_free(&mp, b[0]);
	CHECK_EQ(c.dtor, 1);
	CHECK_PTR_EQ(c.last_dtor, b[0]);
	CHECK_EQ(mp.total_count, 3);
	CHECK_EQ(mp.free_count, 2);
	CHECK_EQ(type_inuse(t), inuse - 1);
	mpipe_free(&mp, b[1]);
	CHECK_EQ(mp.total_count, 2);
	CHECK_EQ(type_inuse(t), inuse - 2);
	CHECK_EQ(mp.st_kfrees, 2);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Spec 3.2: the array is a LIFO stack. */
TEST(lifo_reuse)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *x, *y, *z;

	kmalloc_create(&t, "mp_lifo");
	mpipe_init(&mp, t, 16, 3, 3, 0, NULL, NULL, NULL);
	x = mpipe_alloc_nowait(&mp);
	y = mpipe_alloc_nowait(&mp);
	z = mpipe_alloc_nowait(&mp);
	mpipe_free(&mp, x);
	mpipe_free(&mp, z);
	mpipe_free(&mp, y);
	CHECK_PTR_EQ(mpipe_alloc_nowait(&mp), y);
	CHECK_PTR_EQ(mpipe_alloc_nowait(&mp), z);
	CHECK_PTR_EQ(mpipe_alloc_nowait(&mp), x);
	mpipe_free(&mp, x);
	mpipe_free(&mp, y);
	mpipe_free(&mp, z);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* bytes == 0: kmalloc(0)'s sentinel, as in the kernel; counts still hold. */
TEST(zero_size_buffers)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c;
	void *b[3];

	kmalloc_create(&t, "mp_zerosize");
	memset(&c, 0, sizeof(c));
	mpipe_init(&mp, t, 0, 2, 3, 0, ctor, dtor, &c);
	for (int i = 0; i < 3; i++) {
		b[i] = mpipe_alloc_nowait(&mp);
		CHECK_PTR_EQ(b[i], ZERO_LENGTH_PTR);
	}
	CHECK(mpipe_alloc_nowait(&mp) == NULL);
	CHECK_EQ(mp.total_count, 3);
	for (int i = 0; i < 3; i++)
		mpipe_free(&mp, b[i]);
	CHECK_EQ(mp.total_count, 2);
	CHECK_EQ(c.dtor, 1);
	mpipe_done(&mp);
	CHECK_EQ(c.ctor, 3);
	CHECK_EQ(c.dtor, 3);
	kmalloc_destroy(&t);
}

/* Row 66: mpipe_free(NULL) is a no-op. */
TEST(free_null)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c;

	kmalloc_create(&t, "mp_null");
	memset(&c, 0, sizeof(c));
	mpipe_init(&mp, t, 16, 2, 2, 0, ctor, dtor, &c);
	mpipe_free(&mp, mpipe_alloc_nowait(&mp));
	CHECK_EQ(mp.free_count, 2);
	mpipe_free(&mp, NULL);
	CHECK_EQ(mp.free_count, 2);
	CHECK_EQ(mp.total_count, 2);
	CHECK_EQ(c.dtor, 0);
	CHECK_EQ(mp.st_kfrees, 0);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 65: done asserts no outstanding buffers, frees every cached one,
 * and is a no-op on a zeroed or finished pipe. */
TEST(done_rules)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp, zero;
	struct counts c;

	CHECK_ABORTS(done_outstanding, NULL,
	    "slabkit: mpipe_done: 1 buffer(s) still outstanding in pipe "
	    "mp_outst");
	memset(&zero, 0, sizeof(zero));
	mpipe_done(&zero);
	mpipe_done(&zero);
	CHECK(zero.array == NULL);

	kmalloc_create(&t, "mp_done");
	memset(&c, 0, sizeof(c));
	mpipe_init(&mp, t, 40, 3, 6, 0, ctor, dtor, &c);
	mpipe_free(&mp, mpipe_alloc_nowait(&mp));
	mpipe_done(&mp);
	CHECK_EQ(c.dtor, 3);
	CHECK(mp.array == NULL);
	CHECK_EQ(mp.total_count, 0);
	CHECK_EQ(mp.free_count, 0);
	CHECK_EQ(type_inuse(t), 0);
	mpipe_done(&mp); /* finished: no-op */
	CHECK_EQ(c.dtor, 3);
	/* A finished pipe can be set up again. */
	mpipe_init(&mp, t, 40, 1, 1, 0, ctor, dtor, &c);
	CHECK_EQ(c.ctor, 4);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

static void
init_twice(void *arg)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;

	(void)arg;
	kmalloc_create(&t, "mp_twice");
	mpipe_init(&mp, t, 32, 1, 1, 0, NULL, NULL, NULL);
	mpipe_init(&mp, t, 32, 1, 1, 0, NULL, NULL, NULL);
}

static void
cb_nop(void *a1, void *a2)
{
	(void)a1;
	(void)a2;
}

static void
callback_without_flag(void *arg)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;

	(void)arg;
	kmalloc_create(&t, "mp_nocb");
	mpipe_init(&mp, t, 32, 1, 1, 0, NULL, NULL, NULL);
	(void)mpipe_alloc_callback(&mp, cb_nop, NULL, NULL); /* succeeds */
	(void)mpipe_alloc_callback(&mp, cb_nop, NULL, NULL); /* would queue */
}

/* Misuse that the kernel leaves silent gets a clear message here. */
TEST(misuse_messages)
{
	CHECK_ABORTS(init_twice, NULL,
	    "slabkit: mpipe_init: pipe is already initialised");
	CHECK_ABORTS(callback_without_flag, NULL,
	    "slabkit: mpipe_alloc_callback: pipe mp_nocb has no MPF_CALLBACK");
}

static char *
capture_stats(int json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	sk_mpipe_stats_print(fp, json);
	fclose(fp);
	return buf;
}

/* Statistics: registry of live pipes, text and JSON. */
TEST(stats_tables)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	char *s;
	void *a;

	kmalloc_create(&t, "mp_stats_pipe");
	mpipe_init(&mp, t, 24, 3, 5, 0, NULL, NULL, NULL);
	a = mpipe_alloc_nowait(&mp);
	s = capture_stats(0);
	CHECK(strstr(s, "MPIPE statistics") != NULL);
	CHECK(strstr(s, "NAME") != NULL && strstr(s, "WAITS") != NULL);
	CHECK(strstr(s, "mp_stats_pipe") != NULL);
	free(s);
	s = capture_stats(1);
	CHECK(strncmp(s, "  \"mpipe\": [", 12) == 0);
	CHECK(strstr(s, "{\"name\": \"mp_stats_pipe\", \"size\": 24, "
	                "\"nnom\": 3, \"nmax\": 5, \"total\": 3, \"free\": 2, "
	                "\"allocs\": 1,") != NULL);
	CHECK(strstr(s, "\"waits\": 0") != NULL);
	CHECK(s[strlen(s) - 1] == ']');
	free(s);
	mpipe_free(&mp, a);
	mpipe_done(&mp);
	s = capture_stats(1);
	CHECK(strstr(s, "mp_stats_pipe") == NULL); /* left the registry */
	free(s);
	kmalloc_destroy(&t);
}

/* slabkit_stats_print frames the mpipe member as valid JSON. */
TEST(stats_in_slabkit_json)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	kmalloc_create(&t, "mp_json\"quote");
	mpipe_init(&mp, t, 24, 1, 1, 0, NULL, NULL, NULL);
	fp = open_memstream(&buf, &len);
	slabkit_stats_print(fp, SLABKIT_STATS_JSON);
	fclose(fp);
	CHECK(strstr(buf, "\"mpipe\": [") != NULL);
	CHECK(strstr(buf, "\"name\": \"mp_json\\\"quote\"") != NULL);
	free(buf);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

int
main(void)
{
	sk_t_default_mode("M_ZERO cases check LIFO reuse of a freed buffer");
	RUN(init_normalises);
	RUN(init_preallocates_nnom);
	RUN(guarantee_under_map_faults);
	RUN(guarantee_concurrent);
	RUN(guarantee_at_type_limit);
	RUN(overflow_to_nmax);
	RUN(zero_default);
	RUN(zero_cachedata);
	RUN(zero_nozero);
	RUN(construct_deconstruct);
	RUN(free_overflow);
	RUN(lifo_reuse);
	RUN(zero_size_buffers);
	RUN(free_null);
	RUN(done_rules);
	RUN(misuse_messages);
	RUN(stats_tables);
	RUN(stats_in_slabkit_json);
	return sk_t_done();
}
