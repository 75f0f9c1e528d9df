/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc_obj (spec 1.10, checklist row 43): sizing, slabs found by
 * masking, the ring indices, the active/alternate swap, the global lists,
 * remote frees from other threads, the double-free bitmap, the limit, the
 * poller and the free-slab cache, thread exit, destroy, statistics.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slabkit/control.h>
#include <slabkit/stats.h>

#include "harness.h"
#include "internal.h"
#include "kmalloc_obj.h"

/* Run fn with stderr going to a file; return what it wrote (static). */
static const char *
capture_stderr(void (*fn)(void *), void *arg)
{
	static char buf[8192];
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	fflush(stderr);
	dup2(fileno(tmp), 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

TEST(create_rounds_to_cache_line)
{
	struct malloc_type *t = NULL, *keep;
	size_t off, n;

	kmalloc_create_obj(&t, "kobj_round", 100);
	CHECK(t != NULL);
	CHECK_EQ(t->ks_objsize, 128);
	CHECK(t->ks_flags & KSF_OBJSIZE);
	CHECK_EQ(t->ks_magic, M_MAGIC);
	CHECK(t->ks_limit > 0);
	keep = t;
	kmalloc_create_obj(&t, "other", 64); /* no-op on a non-NULL *typep */
	CHECK_PTR_EQ(t, keep);
	CHECK_EQ(t->ks_objsize, 128);
	kmalloc_destroy_obj(&t);
	CHECK(t == NULL);
	kmalloc_destroy_obj(&t); /* no-op on NULL */

	for (size_t sz = 64; sz <= 65536; sz *= 2) {
		sk_kobj_sizing(sz, &off, &n);
		CHECK(n > 0);
		CHECK(n <= KMALLOC_SLAB_MAXOBJS);
		CHECK_EQ(off % 64, 0);
		CHECK(off >= offsetof(struct sk_kobj_slab, fobjs) +
		                 n * sizeof(void *));
		CHECK(off + n * sz <= KMALLOC_SLAB_SIZE);
		/* one more object would not fit */
		CHECK(offsetof(struct sk_kobj_slab, fobjs) +
		          (n + 1) * (sizeof(void *) + sz) >
		      KMALLOC_SLAB_SIZE);
	}
	sk_kobj_sizing(KMALLOC_SLAB_SIZE, &off, &n);
	CHECK_EQ(n, 0);
	/* the division-free index is exact for every object size and offset */
	for (size_t sz = 64; sz < KMALLOC_SLAB_SIZE; sz += 64) {
		uint64_t mul = ((uint64_t)1 << SK_KOBJ_MUL_SHIFT) / sz + 1;
		int bad = 0;

		for (size_t o = 0; o < KMALLOC_SLAB_SIZE; o += 61)
			bad += sk_kobj_index(mul, o) != o / sz;
		for (size_t k = 1; k * sz < KMALLOC_SLAB_SIZE; k++)
			bad += sk_kobj_index(mul, k * sz - 1) != k - 1 ||
			       sk_kobj_index(mul, k * sz) != k;
		if (bad)
			CHECK_EQ(sz, 0); /* names the failing size */
	}
}

TEST(objects_come_from_masked_slabs)
{
	struct malloc_type *t = NULL;
	void *p[300];
	struct sk_kobj_view v;

	kmalloc_create_obj(&t, "kobj_mask", 200);
	for (int i = 0; i < 300; i++) {
		struct sk_kobj_slab *s;

		p[i] = kmalloc_obj(200, t, M_WAITOK);
		CHECK(p[i] != NULL);
		CHECK_EQ((uintptr_t)p[i] % 64, 0);
		s = sk_kobj_slab_of(p[i]);
		CHECK_EQ((uintptr_t)s % KMALLOC_SLAB_SIZE, 0);
		CHECK_EQ(s->magic, KMALLOC_SLAB_MAGIC);
		CHECK_PTR_EQ(s->type, t);
		CHECK_EQ(s->objsize, 256);
		memset(p[i], 0xa5, 256);
		if (i > 0)
			CHECK(p[i] != p[i - 1]);
	}
	sk_kobj_view(t, &v);
	CHECK(v.nslabs >= 1);
	CHECK_EQ(v.objsize, 256);
	for (int i = 0; i < 300; i++)
		kfree_obj(p[i], t);
	kmalloc_destroy_obj(&t);
}

TEST(ring_indices)
{
	struct malloc_type *t = NULL;
	struct sk_kobj_slab *s;
	void *first, *second, *p;
	size_t n;

	kmalloc_create_obj(&t, "kobj_ring", 64);
	first = kmalloc_obj(64, t, M_WAITOK);
	s = sk_kobj_slab_of(first);
	n = s->ncount;
	/* a new slab: every object in the ring, handed out in order */
	CHECK_EQ(s->aindex, 1);
	CHECK_EQ(s->findex, n);
	CHECK_EQ(s->xindex, n);
	CHECK_PTR_EQ(first, (char *)s + s->offset);
	second = kmalloc_obj(64, t, M_WAITOK);
	CHECK_PTR_EQ(second, (char *)first + 64);
	CHECK_EQ(s->aindex, 2);
	CHECK_EQ(s->bmap[0] & 3, 3);

	/* a free goes to the slot at findex; findex and xindex move on */
	kfree_obj(first, t);
	CHECK_EQ(s->findex, n + 1);
	CHECK_EQ(s->xindex, n + 1);
	CHECK_PTR_EQ(s->fobjs[n % n], first);
	CHECK_EQ(s->bmap[0] & 1, 0);
	CHECK(s->aindex <= s->xindex && s->xindex <= s->findex);
	CHECK_EQ(s->findex - s->aindex, n - 1);

	/* the ring is FIFO: the freed object comes back after the others */
	p = kmalloc_obj(64, t, M_WAITOK);
	CHECK_PTR_EQ(p, (char *)first + 128);
	for (size_t i = 3; i < n; i++)
		p = kmalloc_obj(64, t, M_WAITOK);
	CHECK_EQ(s->aindex, n);
	p = kmalloc_obj(64, t, M_WAITOK);
	CHECK_PTR_EQ(p, first);
	CHECK_EQ(s->aindex, n + 1);
	CHECK_EQ(s->findex - s->aindex, 0);
	/* the slab is exhausted: the next object comes from a new slab */
	p = kmalloc_obj(64, t, M_WAITOK);
	CHECK(sk_kobj_slab_of(p) != s);
	kfree_obj(p, t);
	for (size_t i = 0; i < n; i++)
		kfree_obj((char *)s + s->offset + i * 64, t);
	CHECK_EQ(s->findex - s->aindex, n);
	kmalloc_destroy_obj(&t);
}

TEST(alternate_slab_swap)
{
	struct malloc_type *t = NULL;
	struct sk_kobj_pcpu *m;
	struct sk_kobj_slab *a, *b;
	void **objs, *x;
	size_t n, k = 0;

	kmalloc_create_obj(&t, "kobj_alt", 512);
	m = sk_kobj_mine(t);
	x = kmalloc_obj(512, t, M_WAITOK);
	a = sk_kobj_slab_of(x);
	n = a->ncount;
	objs = calloc(2 * n + 2, sizeof(void *));
	objs[k++] = x;
	for (size_t i = 1; i < n; i++)
		objs[k++] = kmalloc_obj(512, t, M_WAITOK);
	CHECK_PTR_EQ(m->active, a);
	/* a exhausted: a new slab b becomes active, a the alternate */
	x = kmalloc_obj(512, t, M_WAITOK);
	b = sk_kobj_slab_of(x);
	objs[k++] = x;
	CHECK(b != a);
	CHECK_PTR_EQ(m->active, b);
	CHECK_PTR_EQ(m->alternate, a);
	/* a regains one object; b serves until it runs dry, then a and b
	 * swap and the freed object comes back */
	kfree_obj(objs[0], t);
	for (size_t i = 1; i < n; i++) {
		x = kmalloc_obj(512, t, M_WAITOK);
		CHECK_PTR_EQ(sk_kobj_slab_of(x), b);
		objs[k++] = x;
	}
	x = kmalloc_obj(512, t, M_WAITOK);
	CHECK_PTR_EQ(x, objs[0]);
	CHECK_PTR_EQ(m->active, a);
	CHECK_PTR_EQ(m->alternate, b);
	objs[0] = x;
	for (size_t i = 0; i < k; i++)
		kfree_obj(objs[i], t);
	free(objs);
	kmalloc_destroy_obj(&t);
}

TEST(global_lists_rotation)
{
	struct malloc_type *t = NULL;
	struct sk_kobj_view v;
	struct sk_kobj_pcpu *m;
	void **objs;
	size_t n, total;

	slabkit_set_option("kzone_pollfreq", "0");
	kmalloc_create_obj(&t, "kobj_lists", 1024);
	sk_kobj_sizing(1024, &v.slab_offset, &n);
	total = 4 * n;
	objs = calloc(total, sizeof(void *));
	for (size_t i = 0; i < total; i++)
		objs[i] = kmalloc_obj(1024, t, M_WAITOK);
	/* four slabs: two held, the two displaced alternates on "empty" */
	sk_kobj_view(t, &v);
	CHECK_EQ(v.nslabs, 4);
	CHECK_EQ(v.active, 2);
	CHECK_EQ(v.nempty, 2);
	CHECK_EQ(v.npartial + v.nfull, 0);
	CHECK_EQ(v.free_objs, 0);
	/* frees never move slabs: the first slab regains objects on "empty" */
	for (size_t i = 0; i < n; i++)
		kfree_obj(objs[i], t);
	kfree_obj(objs[n], t);
	sk_kobj_view(t, &v);
	CHECK_EQ(v.nempty, 2);
	CHECK_EQ(v.free_objs, n + 1);
	/* the next allocation finds both held slabs dry, sorts "empty"
	 * (slab 1 to full, slab 2 to partial) and rotates partial in */
	m = sk_kobj_mine(t);
	objs[0] = kmalloc_obj(1024, t, M_WAITOK);
	CHECK_PTR_EQ(objs[0], objs[n]);
	CHECK_PTR_EQ(m->active, sk_kobj_slab_of(objs[n]));
	sk_kobj_view(t, &v);
	CHECK_EQ(v.nfull, 1);
	CHECK_EQ(v.npartial, 0);
	CHECK_EQ(v.nempty, 1);
	for (size_t i = 1; i <= n; i++)
		objs[i] = NULL;
	for (size_t i = 0; i < total; i++)
		if (objs[i] != NULL)
			kfree_obj(objs[i], t);
	free(objs);
	kmalloc_destroy_obj(&t);
}

struct remote_arg {
	void **objs;
	size_t n;
	struct malloc_type *t;
};

static void *
remote_freer(void *arg)
{
	struct remote_arg *ra = arg;

	for (size_t i = 0; i < ra->n; i++)
		kfree_obj(ra->objs[i], ra->t);
	return NULL;
}

TEST(remote_frees_from_other_threads)
{
	struct malloc_type *t = NULL;
	struct kmalloc_type_stats st;
	struct remote_arg ra[4];
	pthread_t td[4];
	size_t per = 3000;
	void **objs = calloc(4 * per, sizeof(void *));

	kmalloc_create_obj(&t, "kobj_remote", 96);
	for (size_t i = 0; i < 4 * per; i++)
		objs[i] = kmalloc_obj(96, t, M_WAITOK);
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.inuse, 4 * per);
	CHECK_EQ(st.memuse, 4 * per * 128);
	for (int i = 0; i < 4; i++) {
		ra[i] = (struct remote_arg){objs + i * per, per, t};
		pthread_create(&td[i], NULL, remote_freer, &ra[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(td[i], NULL);
	/* counts balance as a sum over the threads' slots */
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.memuse, 0);
	CHECK_EQ(st.calls, 4 * per);
	/* every object is back in some ring and can be handed out again */
	for (size_t i = 0; i < 4 * per; i++) {
		objs[i] = kmalloc_obj(96, t, M_WAITOK);
		CHECK(objs[i] != NULL);
	}
	for (size_t i = 0; i < 4 * per; i++)
		kfree_obj(objs[i], t);
	free(objs);
	kmalloc_destroy_obj(&t);
}

static void
do_double_free(void *arg)
{
	struct malloc_type *t = NULL;
	void *p;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_df", 64);
	p = kmalloc_obj(64, t, M_WAITOK);
	kfree_obj(p, t);
	memset(p, 0x5a, 64); /* whatever the program wrote there */
	kfree_obj(p, t);
}

static void *
free_in_thread(void *p)
{
	struct malloc_type **tp = p;
	void *obj = kmalloc_obj(64, *tp, M_WAITOK);

	kfree_obj(obj, *tp);
	return obj;
}

static void
do_remote_double_free(void *arg)
{
	struct malloc_type *t = NULL;
	pthread_t td;
	void *obj;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_rdf", 64);
	pthread_create(&td, NULL, free_in_thread, &t);
	pthread_join(td, &obj);
	kfree_obj(obj, t); /* freed already by the other thread */
}

static void
do_foreign_free(void *arg)
{
	struct malloc_type *t = NULL;
	char local[64];

	(void)arg;
	kmalloc_create_obj(&t, "kobj_foreign", 64);
	kfree_obj(local, t);
}

static void
do_interior_free(void *arg)
{
	struct malloc_type *t = NULL;
	char *p;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_interior", 64);
	p = kmalloc_obj(64, t, M_WAITOK);
	kfree_obj(p + 8, t);
}

static void
do_null_free(void *arg)
{
	struct malloc_type *t = NULL;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_null", 64);
	kfree_obj(NULL, t);
}

static void
do_wrong_size(void *arg)
{
	struct malloc_type *t = NULL;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_size", 64);
	kmalloc_obj(65, t, M_WAITOK);
}

static void
do_not_obj_type(void *arg)
{
	(void)arg;
	kmalloc_obj(64, M_TEMP, M_WAITOK);
}

TEST(double_free_and_bad_pointers_panic)
{
	CHECK_ABORTS(do_double_free, NULL,
	    "slabkit: kfree_obj: double free of an object of 'kobj_df' (ptr "
	    "0x");
	CHECK_ABORTS(do_remote_double_free, NULL, "kfree_obj: double free");
	CHECK_ABORTS(do_foreign_free, NULL,
	    "slabkit: kfree_obj: pointer not from kmalloc_obj (ptr 0x");
	CHECK_ABORTS(
	    do_interior_free, NULL, "kfree_obj: not the start of an object");
	CHECK_ABORTS(
	    do_null_free, NULL, "kfree_obj: trying to free NULL pointer");
	CHECK_ABORTS(do_wrong_size, NULL,
	    "kmalloc_obj: kobj_size: size 65 is not the object size 64");
	CHECK_ABORTS(do_not_obj_type, NULL,
	    "kmalloc_obj: 'temp' is not a kmalloc_obj type");
}

TEST(sizes_rounding_to_the_object_size_are_accepted)
{
	struct malloc_type *t = NULL;
	void *p;

	kmalloc_create_obj(&t, "kobj_sz", 40);
	p = kmalloc_obj(40, t, M_WAITOK | M_ZERO);
	for (int i = 0; i < 64; i++)
		CHECK_EQ(((unsigned char *)p)[i], 0);
	kfree_obj(p, t);
	p = kmalloc_obj(64, t, M_WAITOK);
	memset(p, 0xee, 64);
	kfree_obj(p, t);
	kmalloc_destroy_obj(&t);
}

static void
do_limit_panic(void *arg)
{
	struct malloc_type *t = NULL;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_lim", 64);
	t->ks_limit = 64 * 1024;
	for (;;)
		kmalloc_obj(64, t, M_WAITOK);
}

TEST(limit_exact_on_overflow)
{
	struct malloc_type *t = NULL;
	struct kmalloc_type_stats st;
	size_t lim = 1024 * 1024, count = 0, cap = lim / 64 + 16;
	void **objs = calloc(cap, sizeof(void *));
	void *p;

	kmalloc_create_obj(&t, "kobj_limit", 64);
	t->ks_limit = lim; /* tests may: the header says read-only */
	while (count < cap && (p = kmalloc_obj(64, t, M_NULLOK)) != NULL)
		objs[count++] = p;
	/* the estimate folds every 512 KiB; when it reaches the limit the
	 * exact sum is taken: exactly limit / objsize objects fit */
	CHECK_EQ(count, lim / 64);
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.memuse, lim);
	CHECK(kmalloc_obj(64, t, M_NOWAIT) == NULL);
	/* freeing makes the exact sum drop below: the next one succeeds */
	kfree_obj(objs[--count], t);
	p = kmalloc_obj(64, t, M_NULLOK);
	CHECK(p != NULL);
	objs[count++] = p;
	while (count > 0)
		kfree_obj(objs[--count], t);
	free(objs);
	kmalloc_destroy_obj(&t);
	CHECK_ABORTS(do_limit_panic, NULL,
	    "slabkit: kmalloc_obj: kobj_lim: malloc limit exceeded");
}

/* Fill then free nslabs slabs of t on this thread. */
static void
fill_and_free(struct malloc_type *t, size_t size, size_t nslabs)
{
	size_t off, n, total;
	void **objs;

	sk_kobj_sizing(t->ks_objsize, &off, &n);
	total = n * nslabs;
	objs = calloc(total, sizeof(void *));
	for (size_t i = 0; i < total; i++)
		objs[i] = kmalloc_obj(size, t, M_WAITOK);
	for (size_t i = 0; i < total; i++)
		kfree_obj(objs[i], t);
	free(objs);
}

TEST(poller_retires_slabs_into_the_cache)
{
	struct malloc_type *t = NULL;
	struct sk_kobj_view v;
	struct sk_kobj_params pr;
	size_t cached0;

	CHECK_EQ(slabkit_set_option("kzone_pollfreq", "0"), 0);
	CHECK_EQ(slabkit_set_option("kzone_bretire", "4"), 0);
	CHECK_EQ(slabkit_set_option("kzone_bretire", "0"), 22); /* EINVAL */
	CHECK_EQ(slabkit_set_option("kzone_bogus", "1"), 2);    /* ENOENT */
	kmalloc_create_obj(&t, "kobj_poll", 2048);
	fill_and_free(t, 2048, 10);
	sk_kobj_view(t, &v);
	cached0 = v.cached;
	CHECK_EQ(v.nslabs, 10);
	CHECK_EQ(v.active, 2);
	CHECK_EQ(v.nempty, 8);
	/* pass 1 sorts "empty": eight wholly free slabs to "full" */
	CHECK_EQ(slabkit_kmalloc_obj_poll(), 0);
	sk_kobj_view(t, &v);
	CHECK_EQ(v.nfull, 8);
	CHECK_EQ(v.nempty, 0);
	/* pass 2: not free for long enough yet (existence grace) */
	CHECK_EQ(slabkit_kmalloc_obj_poll(), 0);
	/* pass 3 retires kzone_bretire of the slabs beyond MAXFREEMAGS */
	CHECK_EQ(slabkit_kmalloc_obj_poll(), 4);
	sk_kobj_view(t, &v);
	CHECK_EQ(v.nfull, KMALLOC_MAXFREEMAGS);
	CHECK_EQ(v.retired, 4);
	CHECK_EQ(v.nslabs, 6);
	/* into this thread's free-slab cache, which the next slab comes from */
	CHECK_EQ(v.cached, cached0 + 4);
	CHECK_EQ(slabkit_kmalloc_obj_poll(), 0); /* keeps MAXFREEMAGS */
	kmalloc_destroy_obj(&t);

	/* the thread: 100 passes a second, one retirement per pass */
	CHECK_EQ(slabkit_set_option("kzone_bretire", "1"), 0);
	kmalloc_create_obj(&t, "kobj_pollthr", 2048);
	fill_and_free(t, 2048, 9);
	CHECK_EQ(slabkit_set_option("kzone_pollfreq", "100"), 0);
	for (int i = 0; i < 300; i++) {
		sk_kobj_view(t, &v);
		/* one consistent picture while the thread retires: seven
		 * free slabs are empty, full or retired, never two or none */
		CHECK_EQ(v.nempty + v.nfull + v.npartial + v.retired, 7);
		if (v.retired >= 3)
			break;
		usleep(10000);
	}
	sk_kobj_params(&pr);
	CHECK(pr.running);
	CHECK_EQ(pr.pollfreq, 100);
	CHECK_EQ(v.retired, 3);
	CHECK_EQ(v.nfull, KMALLOC_MAXFREEMAGS);
	/* switched off: the thread stops */
	CHECK_EQ(slabkit_set_option("kzone_pollfreq", "0"), 0);
	for (int i = 0; i < 200; i++) {
		sk_kobj_params(&pr);
		if (!pr.running)
			break;
		usleep(5000);
	}
	CHECK(!pr.running);
	slabkit_set_option("kzone_bretire", "4");
	kmalloc_destroy_obj(&t);
}

static void *
exiting_thread(void *arg)
{
	struct malloc_type *t = arg;
	void *keep = kmalloc_obj(128, t, M_WAITOK);

	fill_and_free(t, 128, 3);
	return keep;
}

TEST(thread_exit_hands_slabs_back)
{
	struct malloc_type *t = NULL;
	struct sk_kobj_view v;
	pthread_t td;
	void *keep, *p;

	kmalloc_create_obj(&t, "kobj_exit", 128);
	pthread_create(&td, NULL, exiting_thread, t);
	pthread_join(td, &keep);
	sk_kobj_view(t, &v);
	/* no thread holds a slab of t; all four are on the global lists */
	CHECK_EQ(v.active, 0);
	CHECK_EQ(v.nslabs, 4);
	CHECK_EQ(v.npartial + v.nfull + v.nempty, 4);
	CHECK_EQ(v.free_objs, 4 * v.slab_count - 1);
	/* this thread takes its slabs from those lists, mapping nothing */
	p = kmalloc_obj(128, t, M_WAITOK);
	sk_kobj_view(t, &v);
	CHECK_EQ(v.nslabs, 4);
	CHECK_EQ(v.active, 1);
	kfree_obj(p, t);
	kfree_obj(keep, t);
	kmalloc_destroy_obj(&t);
}

static void
destroy_with_leak(void *arg)
{
	struct malloc_type *t = NULL;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_leak", 64);
	(void)kmalloc_obj(64, t, M_WAITOK);
	kmalloc_destroy_obj(&t);
}

static void
kfree_after_destroy(void *arg)
{
	struct malloc_type *t = NULL, *t2 = NULL;
	void *p;

	(void)arg;
	kmalloc_create_obj(&t, "kobj_gone", 64);
	kmalloc_create_obj(&t2, "kobj_other", 64);
	p = kmalloc_obj(64, t, M_WAITOK);
	kmalloc_destroy_obj(&t);
	kfree_obj(p, t2);
}

TEST(destroy_releases_free_slabs_and_reports_the_rest)
{
	const char *out = capture_stderr(destroy_with_leak, NULL);

	CHECK(strstr(out, "slabkit: kmalloc_destroy_obj: kobj_leak: slab 0x") !=
	      NULL);
	CHECK(strstr(out, " 1 objects were still allocated") != NULL);
	CHECK_ABORTS(kfree_after_destroy, NULL,
	    "kfree_obj: object of a released slab or a destroyed type");
}

static void
print_text(void *arg)
{
	(void)arg;
	slabkit_stats_print(stderr, 0);
}

static void
print_json(void *arg)
{
	(void)arg;
	slabkit_stats_print(stderr, SLABKIT_STATS_JSON);
}

TEST(statistics_tables)
{
	struct malloc_type *t = NULL;
	void *p;
	const char *out;

	kmalloc_create_obj(&t, "kobj_stats\"q", 64);
	p = kmalloc_obj(64, t, M_WAITOK);
	out = capture_stderr(print_text, NULL);
	CHECK(strstr(out, "Memory statistics by type") != NULL);
	CHECK(strstr(out, "kmalloc_obj zones") != NULL);
	CHECK(strstr(out, "kobj_stats\"q") != NULL);
	out = capture_stderr(print_json, NULL);
	CHECK(strstr(out, "\"kmalloc_obj\": [") != NULL);
	CHECK(strstr(out,
	          "{\"type\": \"kobj_stats\\\"q\", \"objsize\": 64, ") != NULL);
	kfree_obj(p, t);
	kmalloc_destroy_obj(&t);
}

TEST(predefined_types_and_reinit)
{
	void *p;

	CHECK_STR_EQ(M_DRM->ks_shortdesc, "m_drm");
	CHECK_STR_EQ(M_IP6OPT->ks_shortdesc, "ip6opt");
	CHECK_STR_EQ(M_IP6NDP->ks_shortdesc, "ip6ndp");
	CHECK_STR_EQ(M_IOV->ks_shortdesc, "iov");
	malloc_reinit_ncpus();
	malloc_reinit_ncpus();
	p = kmalloc(100, M_IP6NDP, M_WAITOK);
	CHECK(kmalloc_limit(M_IP6NDP) > 0);
	kfree(p, M_IP6NDP);
	p = kmalloc(10, M_DRM, M_WAITOK);
	kfree(p, M_DRM);
}

int
main(void)
{
	/* The poller thread runs only where a test asks for it. */
	slabkit_set_option("kzone_pollfreq", "0");
	RUN(create_rounds_to_cache_line);
	RUN(objects_come_from_masked_slabs);
	RUN(ring_indices);
	RUN(alternate_slab_swap);
	RUN(global_lists_rotation);
	RUN(remote_frees_from_other_threads);
	RUN(double_free_and_bad_pointers_panic);
	RUN(sizes_rounding_to_the_object_size_are_accepted);
	RUN(limit_exact_on_overflow);
	RUN(poller_retires_slabs_into_the_cache);
	RUN(thread_exit_hands_slabs_back);
	RUN(destroy_releases_free_slabs_and_reports_the_rest);
	RUN(statistics_tables);
	RUN(predefined_types_and_reinit);
	return sk_t_done();
}
