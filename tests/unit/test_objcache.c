/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * objcache: sizing, hot path, swap rules, depot exchange, backend and
 * ctor, M_ZERO, put overflow, objcache_dtor, reclaim, destroy, backends,
 * statistics, thread exit and the reaper (spec 2, checklist rows 44-56;
 * the limit and blocking, row 50, are in test_objcache_limit.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "default_mode.h"
#include "harness.h"
#include "internal.h"

#include <slabkit/objcache.h>
#include <slabkit/slabkit.h>

MALLOC_DEFINE(M_OCTEST, "octest", "objcache test objects");

#define TOBJ_MAGIC 0x6f626a31u

struct tobj {
	uint32_t magic;
	int id;
	char payload[48];
};

/* A cache whose every callback is counted (plain malloc backend). */
struct counting {
	int allocs, frees, ctors, dtors;
	int ctor_fail; /* ctor returns FALSE while set */
	int next_id;
	char log[64]; /* 'A' alloc, 'C' ctor, 'D' dtor, 'F' free */
	int nlog;
};

static void
note(struct counting *c, char what)
{
	if (c->nlog < (int)sizeof(c->log) - 1)
		c->log[c->nlog++] = what;
}

static void *
c_alloc(void *args, int ocflags)
{
	struct counting *c = args;

	(void)ocflags;
	c->allocs++;
	note(c, 'A');
	return malloc(sizeof(struct tobj));
}

static void
c_free(void *obj, void *args)
{
	struct counting *c = args;

	c->frees++;
	note(c, 'F');
	free(obj);
}

static boolean_t
c_ctor(void *obj, void *priv, int ocflags)
{
	struct counting *c = priv;
	struct tobj *o = obj;

	(void)ocflags;
	note(c, 'C');
	if (c->ctor_fail)
		return FALSE;
	c->ctors++;
	o->magic = TOBJ_MAGIC;
	o->id = c->next_id++;
	return TRUE;
}

static void
c_dtor(void *obj, void *priv)
{
	struct counting *c = priv;
	struct tobj *o = obj;

	if (o->magic == TOBJ_MAGIC)
		__atomic_fetch_add(&c->dtors, 1, __ATOMIC_SEQ_CST);
	o->magic = 0;
	note(c, 'D');
}

static struct objcache *
counting_cache(struct counting *c, const char *name, int limit, int nom)
{
	memset(c, 0, sizeof(*c));
	return objcache_create(
	    name, limit, nom, c_ctor, c_dtor, c, c_alloc, c_free, c);
}

static struct sk_oc_view
view(struct objcache *oc)
{
	struct sk_oc_view v;

	sk_objcache_view(oc, &v);
	return v;
}

/* Run fn with fd 2 sent to a file; return what it wrote (static). */
static const char *
capture_stderr(void (*fn)(void *), void *arg)
{
	static char buf[4096];
	char path[] = "/tmp/sk-oc-XXXXXX";
	int fd = mkstemp(path), saved;
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Row 44: sizing */

TEST(sizing_formulas)
{
	static const struct {
		int ncpus, limit, nom;
		int cap, nmag;
		long budget;
	} t[] = {
	    /* nom 0 and no limit: 128 = 2 x INITIAL_MAG_CAPACITY */
	    {1, 0, 0, 33, 4, -1},
	    {4, 0, 0, 13, 10, -1},
	    /* nom defaults to limit/2; budget = ncpus*cap*2 + limit */
	    {2, 100, 0, 9, 6, 136},
	    /* nom clamped to the limit; capacity clamped up to 4 */
	    {8, 10, 1000, 4, 3, 74},
	    /* capacity clamped down to 128 */
	    {1, 0, 10000, 128, 79, -1},
	    /* limit/2 == 0 falls back to 128 after the clamp */
	    {64, 1, 0, 4, 33, 513},
	    /* depot stocked with at least 2 magazines */
	    {1, 0, 1, 4, 2, -1},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sk_oc_sizing sz;

		sk_objcache_sizing(t[i].ncpus, t[i].limit, t[i].nom, &sz);
		CHECK_EQ(sz.mag_capacity, t[i].cap);
		CHECK_EQ(sz.nmagdepot, t[i].nmag);
		CHECK_EQ(sz.budget, t[i].budget);
	}
}

TEST(create_uses_sizing)
{
	struct counting c;
	struct sk_oc_sizing sz;
	struct objcache *oc = counting_cache(&c, "sizing", 50, 0);
	struct sk_oc_view v = view(oc);

	sk_objcache_sizing(sk_os_ncpus(), 50, 0, &sz);
	CHECK_EQ(v.capacity, sz.mag_capacity);
	CHECK_EQ(v.nempty, sz.nmagdepot);
	CHECK_EQ(v.nfull, 0);
	CHECK_EQ(v.budget, sz.budget);
	CHECK_EQ(v.nmags, sz.nmagdepot);
	CHECK_EQ(c.allocs, 0); /* nothing pre-allocated */
	objcache_destroy(oc);

	oc = counting_cache(&c, "unlimited", 0, 0);
	CHECK_EQ(view(oc).budget, -1);
	objcache_destroy(oc);
}

/* ------------------------------------------------------------------ */
/* Row 45: hot path, LIFO */

TEST(hot_path_reuses_without_ctor)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "hot", 0, 0);
	void *a, *b, *x, *y, *z;

	a = objcache_get(oc, M_WAITOK);
	CHECK(a != NULL);
	CHECK_EQ(c.allocs, 1);
	CHECK_EQ(c.ctors, 1);
	objcache_put(oc, a);
	b = objcache_get(oc, M_WAITOK);
	CHECK_PTR_EQ(b, a);
	CHECK_EQ(c.allocs, 1);
	CHECK_EQ(c.ctors, 1);
	CHECK_EQ(((struct tobj *)b)->magic, TOBJ_MAGIC);

	/* LIFO within a magazine */
	x = b;
	y = objcache_get(oc, M_WAITOK);
	z = objcache_get(oc, M_WAITOK);
	objcache_put(oc, x);
	objcache_put(oc, y);
	objcache_put(oc, z);
	CHECK_PTR_EQ(objcache_get(oc, M_WAITOK), z);
	CHECK_PTR_EQ(objcache_get(oc, M_WAITOK), y);
	CHECK_PTR_EQ(objcache_get(oc, M_WAITOK), x);
	CHECK_EQ(c.ctors, 3);
	objcache_put(oc, x);
	objcache_put(oc, y);
	objcache_put(oc, z);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 3);
	CHECK_EQ(c.frees, 3);
}

/* ------------------------------------------------------------------ */
/* Rows 46-47: swap rules and depot exchange */

TEST(depot_exchange)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "exchange", 0, 0);
	struct sk_oc_view v;
	void **objs, **drained;
	int cap, n0;

	v = view(oc);
	cap = v.capacity;
	n0 = v.nempty;
	objs = calloc((size_t)(3 * cap), sizeof(void *));
	drained = calloc((size_t)(cap + 2), sizeof(void *));
	for (int i = 0; i < 3 * cap; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	CHECK_EQ(c.allocs, 3 * cap);
	/* 2 x cap puts fill loaded, swap, fill the other */
	for (int i = 0; i < 2 * cap; i++)
		objcache_put(oc, objs[i]);
	v = view(oc);
	CHECK_EQ(v.loaded_rounds, cap);
	CHECK_EQ(v.previous_rounds, cap);
	CHECK_EQ(v.nfull, 0);
	CHECK_EQ(v.nempty, n0);
	/* overfull: full previous goes to the depot, an empty one loads */
	objcache_put(oc, objs[2 * cap]);
	v = view(oc);
	CHECK_EQ(v.loaded_rounds, 1);
	CHECK_EQ(v.previous_rounds, cap);
	CHECK_EQ(v.nfull, 1);
	CHECK_EQ(v.nempty, n0 - 1);
	CHECK_EQ(v.full_rounds, cap);
	/* drain both magazines: 1 + cap gets, no depot traffic */
	for (int i = 0; i < 1 + cap; i++) {
		drained[i] = objcache_get(oc, M_WAITOK);
		CHECK(drained[i] != NULL);
	}
	v = view(oc);
	CHECK_EQ(v.loaded_rounds, 0);
	CHECK_EQ(v.previous_rounds, 0);
	CHECK_EQ(v.nfull, 1);
	/* exhausted: the empty previous goes back, the full one loads */
	drained[1 + cap] = objcache_get(oc, M_WAITOK);
	CHECK_PTR_EQ(drained[1 + cap], objs[cap - 1]);
	v = view(oc);
	CHECK_EQ(v.loaded_rounds, cap - 1);
	CHECK_EQ(v.previous_rounds, 0);
	CHECK_EQ(v.nfull, 0);
	CHECK_EQ(v.nempty, n0);
	CHECK_EQ(c.allocs, 3 * cap); /* never went to the backend */
	/* give everything back: each object destructed exactly once */
	for (int i = 2 * cap + 1; i < 3 * cap; i++)
		objcache_put(oc, objs[i]);
	for (int i = 0; i < 2 + cap; i++)
		objcache_put(oc, drained[i]);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 3 * cap);
	CHECK_EQ(c.frees, 3 * cap);
	free(drained);
	free(objs);
}

/* Threads for the swap-rule tests (they must adopt the same slot). */
struct swap_arg {
	struct objcache *oc;
	void **objs;
	int nput;
	void *got;
	struct sk_oc_view before, after;
};

static void *
put_and_exit(void *p)
{
	struct swap_arg *a = p;

	for (int i = 0; i < a->nput; i++)
		objcache_put(a->oc, a->objs[i]);
	a->before = view(a->oc);
	return NULL;
}

static void *
get_after_adopt(void *p)
{
	struct swap_arg *a = p;

	a->got = objcache_get(a->oc, M_WAITOK);
	a->after = view(a->oc);
	return NULL;
}

static void *
put_after_adopt(void *p)
{
	struct swap_arg *a = p;

	sk_shard_get();
	/* the first put attaches: empty loaded, partial previous */
	objcache_put(a->oc, a->objs[0]);
	a->before = view(a->oc);
	for (int i = 1; i < a->nput; i++)
		objcache_put(a->oc, a->objs[i]);
	a->after = view(a->oc);
	return NULL;
}

static void
run_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	pthread_create(&t, NULL, fn, arg);
	pthread_join(t, NULL);
}

TEST(exit_returns_partial_magazine_to_full_list)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "exit", 0, 0);
	struct swap_arg a = {.oc = oc};
	struct sk_oc_view v0, v1;
	void *objs[3];

	for (int i = 0; i < 3; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	v0 = view(oc);
	a.objs = objs;
	a.nput = 3;
	run_thread(put_and_exit, &a);
	CHECK_EQ(a.before.loaded_rounds, 3);
	v1 = view(oc);
	/* the thread's partial loaded went on the full list, its empty
	 * previous on the empty list: nothing stranded */
	CHECK_EQ(v1.nfull, v0.nfull + 1);
	CHECK_EQ(v1.full_rounds, v0.full_rounds + 3);
	CHECK_EQ(v1.nempty, v0.nempty + 1);
	CHECK_EQ(c.dtors, 0);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 3); /* each exactly once */
	CHECK_EQ(c.frees, 3);
}

TEST(get_swaps_on_nonempty_previous)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "getswap", 0, 0);
	struct swap_arg a = {.oc = oc}, b = {.oc = oc};
	void *objs[3];
	int cap = view(oc).capacity;

	for (int i = 0; i < 3; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	a.objs = objs;
	a.nput = 3;
	run_thread(put_and_exit, &a);
	/* The next thread adopts the parked shard and takes the partial
	 * magazine (3 of cap rounds) as previous, an empty one as loaded.
	 * Loaded empty, previous non-empty but not full: DragonFly swaps
	 * (Bonwick would go to the depot and, with no full magazine there,
	 * to the backend). */
	run_thread(get_after_adopt, &b);
	CHECK(cap > 3);
	CHECK_PTR_EQ(b.got, objs[2]);
	CHECK_EQ(b.after.loaded_rounds, 2);
	CHECK_EQ(b.after.previous_rounds, 0);
	CHECK_EQ(c.allocs, 3);
	objcache_put(oc, b.got);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 3);
}

TEST(put_swaps_on_nonfull_previous)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "putswap", 0, 0);
	struct swap_arg a = {.oc = oc}, b = {.oc = oc};
	struct sk_oc_view v0;
	void **objs;
	int cap = view(oc).capacity;

	objs = calloc((size_t)(cap + 4), sizeof(void *));
	for (int i = 0; i < cap + 4; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	a.objs = objs;
	a.nput = 3;
	run_thread(put_and_exit, &a);
	v0 = view(oc);
	/* Adopter: loaded empty, previous 3 of cap.  cap puts fill loaded;
	 * the next one finds loaded full and previous non-full (not empty):
	 * DragonFly swaps, Bonwick would trade at the depot. */
	b.objs = objs + 3;
	b.nput = cap + 1;
	run_thread(put_after_adopt, &b);
	CHECK_EQ(b.before.loaded_rounds, 1);
	CHECK_EQ(b.before.previous_rounds, 3);
	CHECK_EQ(b.after.loaded_rounds, 4);
	CHECK_EQ(b.after.previous_rounds, cap);
	/* no depot traffic beyond the adoption itself */
	CHECK_EQ(view(oc).nmags, v0.nmags);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, cap + 4);
	CHECK_EQ(c.frees, cap + 4);
	free(objs);
}

/* ------------------------------------------------------------------ */
/* Row 48: backend and ctor */

TEST(backend_then_ctor_and_ctor_failure)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "ctorfail", 20, 0);
	long budget0 = view(oc).budget;
	struct objcache_stats st;
	void *o;

	o = objcache_get(oc, M_WAITOK);
	CHECK(o != NULL);
	CHECK_STR_EQ(c.log, "AC");
	CHECK_EQ(view(oc).budget, budget0 - 1);
	c.ctor_fail = 1;
	c.nlog = 0;
	memset(c.log, 0, sizeof(c.log));
	CHECK(objcache_get(oc, M_WAITOK) == NULL);
	CHECK_STR_EQ(c.log, "ACF"); /* raw object freed, no dtor */
	CHECK_EQ(c.frees, 1);
	CHECK_EQ(c.dtors, 0);
	CHECK_EQ(view(oc).budget, budget0 - 1); /* budget given back */
	CHECK_EQ(objcache_stats_snapshot(NULL, 0) >= 1, 1);
	{
		struct objcache_stats all[64];
		int n = objcache_stats_snapshot(all, 64);

		memset(&st, 0, sizeof(st));
		for (int i = 0; i < n && i < 64; i++)
			if (strcmp(all[i].oc_name, "ctorfail") == 0)
				st = all[i];
	}
	CHECK_EQ(st.oc_failed, 1);
	CHECK_EQ(st.oc_requested, 2);
	CHECK_EQ(st.oc_allocated, 1);
	c.ctor_fail = 0;
	objcache_put(oc, o);
	objcache_destroy(oc);
}

static void *
null_alloc(void *args, int flags)
{
	(void)args;
	(void)flags;
	return NULL;
}

TEST(backend_failure_returns_null)
{
	struct counting c;
	struct objcache *oc;

	memset(&c, 0, sizeof(c));
	oc = objcache_create(
	    "nullback", 5, 0, c_ctor, c_dtor, &c, null_alloc, c_free, &c);
	long budget0 = view(oc).budget;

	CHECK(objcache_get(oc, M_WAITOK) == NULL);
	CHECK_EQ(c.ctors, 0);
	CHECK_EQ(view(oc).budget, budget0);
	objcache_destroy(oc);
}

/* ------------------------------------------------------------------ */
/* Row 49: M_ZERO */

static void
get_zero(void *arg)
{
	objcache_get(arg, M_WAITOK | M_ZERO);
}

TEST(m_zero_aborts)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "zero", 0, 0);

	CHECK_ABORTS(get_zero, oc, "slabkit: objcache_get: M_ZERO");
	/* on the fast path too */
	objcache_put(oc, objcache_get(oc, M_WAITOK));
	CHECK_ABORTS(get_zero, oc, "M_ZERO is not allowed");
	objcache_destroy(oc);
}

/* ------------------------------------------------------------------ */
/* Row 51: put overflow; row 52: objcache_dtor */

TEST(put_overflow_destroys)
{
	struct counting c;
	/* nom_cache 1: capacity 4, two depot magazines */
	struct objcache *oc = counting_cache(&c, "overflow", 100, 1);
	struct sk_oc_view v = view(oc);
	void *objs[17];
	long budget0 = v.budget;

	CHECK_EQ(v.capacity, 4);
	CHECK_EQ(v.nempty, 2);
	for (int i = 0; i < 17; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	CHECK_EQ(view(oc).budget, budget0 - 17);
	/* 8 in the slot's pair + 2 depot magazines of 4 = 16 cached */
	for (int i = 0; i < 16; i++)
		objcache_put(oc, objs[i]);
	v = view(oc);
	CHECK_EQ(v.nempty, 0);
	CHECK_EQ(v.nfull, 2);
	CHECK_EQ(c.dtors, 0);
	objcache_put(oc, objs[16]);
	CHECK_EQ(c.dtors, 1);
	CHECK_EQ(c.frees, 1);
	CHECK_EQ(view(oc).budget, budget0 - 16);
	CHECK_EQ(view(oc).nmags, 4); /* no magazine allocated on demand */
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 17);
}

TEST(dtor_destroys_at_once)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "dtor", 10, 0);
	long budget0 = view(oc).budget;
	void *o = objcache_get(oc, M_WAITOK);

	objcache_dtor(oc, o);
	CHECK_EQ(c.dtors, 1);
	CHECK_EQ(c.frees, 1);
	CHECK_EQ(view(oc).budget, budget0);
	/* not cached: the next get constructs a new object */
	o = objcache_get(oc, M_WAITOK);
	CHECK_EQ(c.ctors, 2);
	objcache_put(oc, o);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 2);
}

/* ------------------------------------------------------------------ */
/* Row 53: reclaim */

TEST(reclaimlist_order)
{
	struct counting c, c2;
	struct objcache *oc = counting_cache(&c, "reclaim", 100, 1);
	struct objcache *other = counting_cache(&c2, "reclaim2", 0, 0);
	struct objcache *list[2] = {other, oc};
	struct sk_oc_view v;
	void *objs[10];
	long budget0 = view(oc).budget;

	CHECK_EQ(objcache_reclaimlist(list, 2, M_WAITOK), FALSE);
	for (int i = 0; i < 10; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	/* capacity 4: 8 fill the pair, the 9th trades the full previous
	 * for an empty depot magazine, so loaded 2, previous 4, depot 4 */
	for (int i = 0; i < 10; i++)
		objcache_put(oc, objs[i]);
	v = view(oc);
	CHECK_EQ(v.loaded_rounds, 2);
	CHECK_EQ(v.previous_rounds, 4);
	CHECK_EQ(v.nfull, 1);
	/* loaded first */
	CHECK_EQ(objcache_reclaimlist(list, 2, 0), TRUE);
	CHECK_EQ(c.dtors, 2);
	CHECK_EQ(c2.dtors, 0);
	v = view(oc);
	CHECK_EQ(v.loaded_rounds, 0);
	CHECK_EQ(v.previous_rounds, 4);
	CHECK_EQ(v.budget, budget0 - 8);
	/* then previous */
	CHECK_EQ(objcache_reclaimlist(list, 2, 0), TRUE);
	CHECK_EQ(c.dtors, 6);
	CHECK_EQ(view(oc).previous_rounds, 0);
	/* then the depot's full magazines, which are discarded */
	int nmags = view(oc).nmags;
	CHECK_EQ(objcache_reclaimlist(list, 2, 0), TRUE);
	CHECK_EQ(c.dtors, 10);
	v = view(oc);
	CHECK_EQ(v.nfull, 0);
	CHECK_EQ(v.nmags, nmags - 1);
	CHECK_EQ(v.budget, budget0);
	/* nothing left anywhere */
	CHECK_EQ(objcache_reclaimlist(list, 2, 0), FALSE);
	CHECK_EQ(c.dtors, 10);
	CHECK_EQ(c.frees, 10);
	objcache_destroy(oc);
	objcache_destroy(other);
	CHECK_EQ(c.dtors, 10);
}

/* ------------------------------------------------------------------ */
/* Row 54: destroy */

TEST(destroy_destructs_each_cached_object_once)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "destroy", 0, 1);
	void *objs[40];

	for (int i = 0; i < 40; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	for (int i = 0; i < 40; i++)
		objcache_put(oc, objs[i]);
	/* some in the pair, some in the depot, some destroyed by overflow */
	CHECK(c.dtors > 0);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 40);
	CHECK_EQ(c.frees, 40);
	CHECK_EQ(c.ctors, 40);
}

struct leak_arg {
	struct objcache *oc;
};

static void
destroy_it(void *p)
{
	objcache_destroy(((struct leak_arg *)p)->oc);
}

TEST(destroy_reports_outstanding)
{
	struct counting c;
	struct leak_arg la;
	void *kept[3], *o;
	const char *msg;

	la.oc = counting_cache(&c, "leaky", 0, 0);
	for (int i = 0; i < 3; i++)
		kept[i] = objcache_get(la.oc, M_WAITOK);
	o = objcache_get(la.oc, M_WAITOK);
	objcache_put(la.oc, o);
	msg = capture_stderr(destroy_it, &la);
	CHECK(strstr(msg, "slabkit: objcache_destroy: objcache(leaky): 3 "
	                  "objects still outstanding") != NULL);
	CHECK_EQ(c.dtors, 1);
	for (int i = 0; i < 3; i++)
		free(kept[i]);
}

TEST(destroy_quiet_without_leaks)
{
	struct counting c;
	struct leak_arg la;

	la.oc = counting_cache(&c, "clean", 0, 0);
	objcache_put(la.oc, objcache_get(la.oc, M_WAITOK));
	CHECK_STR_EQ(capture_stderr(destroy_it, &la), "");
	CHECK_EQ(c.dtors, 1);
}

/* ------------------------------------------------------------------ */
/* Row 55: backends */

static void
alloc_with_high_bits(void *arg)
{
	struct objcache_malloc_args *a = arg;

	/* Every mapping fails.  Unmasked, SK_M_NORETRY would make kmalloc
	 * give up and return NULL; masked, M_WAITOK waits its bound out. */
	slabkit_set_option("waitok_timeout", "20");
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, -1);
	if (objcache_malloc_alloc(a, M_WAITOK | SK_M_NORETRY) == NULL)
		_exit(0);
	_exit(0);
}

TEST(malloc_backend)
{
	struct objcache_malloc_args a = {200, M_OCTEST};
	struct objcache_malloc_args big = {1 << 20, M_OCTEST};
	struct kmalloc_type_stats st0, st1;
	unsigned char *p, *q;

	CHECK_EQ(OC_MFLAGS, 0xffff);
	kmalloc_type_stats(M_OCTEST, &st0);
	p = objcache_malloc_alloc(&a, M_WAITOK | 0x7fff0000);
	CHECK(p != NULL);
	CHECK(kmalloc_usable_size(p) >= 200);
	kmalloc_type_stats(M_OCTEST, &st1);
	CHECK_EQ(st1.inuse, st0.inuse + 1);
	memset(p, 0xab, 200);
	objcache_malloc_free(p, &a);
	kmalloc_type_stats(M_OCTEST, &st1);
	CHECK_EQ(st1.inuse, st0.inuse);
	q = objcache_malloc_alloc_zero(&a, M_WAITOK);
	CHECK_PTR_EQ(q, p); /* LIFO: the dirty chunk, zeroed */
	for (int i = 0; i < 200; i++)
		if (q[i] != 0) {
			CHECK_EQ(q[i], 0);
			break;
		}
	objcache_malloc_free(q, &a);
	CHECK_ABORTS(alloc_with_high_bits, &big, "out of memory");
}

TEST(nop_backend)
{
	struct counting c;
	struct objcache *oc;

	memset(&c, 0, sizeof(c));
	CHECK(objcache_nop_alloc(NULL, M_WAITOK) == NULL);
	objcache_nop_free(&c, NULL);
	oc = objcache_create("nop", 4, 0, c_ctor, c_dtor, &c,
	    objcache_nop_alloc, objcache_nop_free, NULL);
	long budget0 = view(oc).budget;
	CHECK(objcache_get(oc, M_WAITOK) == NULL);
	CHECK_EQ(c.ctors, 0);
	CHECK_EQ(view(oc).budget, budget0);
	objcache_destroy(oc);
}

TEST(create_simple_and_mbacked)
{
	struct kmalloc_type_stats st0, st1;
	struct objcache *oc;
	struct counting c;
	void *o;

	kmalloc_type_stats(M_OCTEST, &st0);
	oc = objcache_create_simple(M_OCTEST, 96);
	o = objcache_get(oc, M_WAITOK);
	CHECK(o != NULL);
	CHECK(kmalloc_usable_size(o) >= 96);
	kmalloc_type_stats(M_OCTEST, &st1);
	CHECK_EQ(st1.inuse, st0.inuse + 1);
	{
		struct objcache_stats all[64];
		int n = objcache_stats_snapshot(all, 64), found = 0;

		for (int i = 0; i < n && i < 64; i++)
			if (strcmp(all[i].oc_name, "octest") == 0 &&
			    all[i].oc_limit >= OBJCACHE_UNLIMITED)
				found = 1;
		CHECK(found);
	}
	objcache_put(oc, o);
	objcache_destroy(oc);
	kmalloc_type_stats(M_OCTEST, &st1);
	CHECK_EQ(st1.inuse, st0.inuse);

	memset(&c, 0, sizeof(c));
	oc = objcache_create_mbacked(
	    M_OCTEST, sizeof(struct tobj), 8, 0, c_ctor, c_dtor, &c);
	o = objcache_get(oc, M_WAITOK);
	CHECK_EQ(((struct tobj *)o)->magic, TOBJ_MAGIC);
	CHECK_EQ(c.ctors, 1);
	objcache_put(oc, o);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 1);
	kmalloc_type_stats(M_OCTEST, &st1);
	CHECK_EQ(st1.inuse, st0.inuse);
}

/* ------------------------------------------------------------------ */
/* Row 56: statistics */

static struct objcache_stats
find_stats(const char *name)
{
	struct objcache_stats all[64], st;
	int n = objcache_stats_snapshot(all, 64);

	memset(&st, 0xff, sizeof(st));
	for (int i = 0; i < n && i < 64; i++)
		if (strcmp(all[i].oc_name, name) == 0)
			st = all[i];
	return st;
}

static void
print_json(void *arg)
{
	(void)arg;
	sk_objcache_stats_print(stderr, 1);
}

static void
print_text(void *arg)
{
	(void)arg;
	sk_objcache_stats_print(stderr, 0);
}

TEST(stats_snapshot)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "statcache", 10, 0);
	struct objcache *longname = counting_cache(
	    &c, "a-very-long-object-cache-name-that-does-not-fit", 0, 0);
	struct objcache_stats st;
	const char *out;
	void *a, *b, *d;
	int n, n0;

	n0 = objcache_stats_snapshot(NULL, 0);
	a = objcache_get(oc, M_WAITOK);
	b = objcache_get(oc, M_WAITOK);
	d = objcache_get(oc, M_WAITOK);
	c.ctor_fail = 1;
	CHECK(objcache_get(oc, M_WAITOK) == NULL);
	c.ctor_fail = 0;
	objcache_put(oc, a);
	st = find_stats("statcache");
	CHECK_EQ(st.oc_limit, 10);
	CHECK_EQ(st.oc_requested, 4);
	CHECK_EQ(st.oc_used, 2);
	CHECK_EQ(st.oc_cached, 1);
	CHECK_EQ(st.oc_exhausted, 0);
	CHECK_EQ(st.oc_failed, 1);
	CHECK_EQ(st.oc_allocated, 3);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(st.oc_reserved[i], 0);
	CHECK_EQ(sizeof(st.oc_name), 32);
	objcache_dtor(oc, b);
	st = find_stats("statcache");
	CHECK_EQ(st.oc_used, 1);
	CHECK_EQ(st.oc_cached, 1);

	st = find_stats("a-very-long-object-cache-name-t");
	CHECK_EQ(strlen(st.oc_name), 31);
	CHECK(st.oc_limit >= OBJCACHE_UNLIMITED);

	{
		struct objcache_stats one[1];

		n = objcache_stats_snapshot(one, 1);
		CHECK_EQ(n, n0);
		CHECK(n >= 2);
	}
	out = capture_stderr(print_json, NULL);
	CHECK(strncmp(out, "  \"objcache\": [", 15) == 0);
	CHECK(strstr(out, "{\"name\": \"statcache\", \"limit\": 10,") != NULL);
	CHECK(out[strlen(out) - 1] == ']');
	CHECK(strstr(out, "},\n  ]") == NULL);
	out = capture_stderr(print_text, NULL);
	CHECK(strstr(out, "NAME") != NULL);
	CHECK(strstr(out, "statcache") != NULL);

	objcache_put(oc, d);
	objcache_destroy(oc);
	objcache_destroy(longname);
	CHECK_EQ(objcache_stats_snapshot(NULL, 0), n0 - 2);
}

/* ------------------------------------------------------------------ */
/* Limit changes and the reaper (beyond DragonFly) */

TEST(set_cluster_limit_moves_budget)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "setlimit", 10, 0);
	long b0 = view(oc).budget;
	void *o = objcache_get(oc, M_WAITOK);

	objcache_set_cluster_limit(oc, 15);
	CHECK_EQ(view(oc).budget, b0 - 1 + 5);
	objcache_set_cluster_limit(oc, 0);
	CHECK_EQ(view(oc).budget, -1);
	CHECK(find_stats("setlimit").oc_limit >= OBJCACHE_UNLIMITED);
	objcache_set_cluster_limit(oc, 10);
	CHECK_EQ(view(oc).budget, b0 - 1);
	CHECK_EQ(find_stats("setlimit").oc_limit, 10);
	objcache_put(oc, o);
	objcache_destroy(oc);
}

TEST(reaper_trims_idle_full_magazines)
{
	struct counting c;
	struct objcache *oc = counting_cache(&c, "reap", 0, 1);
	void *objs[16];
	long n;

	for (int i = 0; i < 16; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	for (int i = 0; i < 16; i++)
		objcache_put(oc, objs[i]);
	CHECK_EQ(view(oc).nfull, 2);
	/* off by default: nothing is trimmed behind the program's back */
	usleep(20000);
	CHECK_EQ(c.dtors, 0);
	/* first pass: the low mark was 0, nothing trimmed, mark reset */
	sk_objcache_reap();
	CHECK_EQ(c.dtors, 0);
	/* a magazine taken during the interval lowers the mark to 1 */
	for (int i = 0; i < 9; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	CHECK_EQ(view(oc).nfull, 1);
	for (int i = 0; i < 9; i++)
		objcache_put(oc, objs[i]);
	CHECK_EQ(view(oc).nfull, 2);
	n = sk_objcache_reap();
	CHECK(n >= 4);
	CHECK_EQ(c.dtors, 4);
	CHECK_EQ(view(oc).nfull, 1);
	CHECK_EQ(view(oc).nmags, 4); /* kept as an empty magazine */
	/* the background thread */
	CHECK_EQ(objcache_reaper_set(-1), EINVAL);
	CHECK_EQ(objcache_reaper_set(5), 0);
	for (int i = 0;
	     i < 400 && __atomic_load_n(&c.dtors, __ATOMIC_SEQ_CST) < 8; i++)
		usleep(5000);
	CHECK_EQ(objcache_reaper_set(0), 0);
	CHECK_EQ(c.dtors, 8);
	CHECK_EQ(view(oc).nfull, 0);
	CHECK_EQ(view(oc).loaded_rounds + view(oc).previous_rounds, 8);
	objcache_destroy(oc);
	CHECK_EQ(c.dtors, 16);
}

int
main(void)
{
	sk_t_default_mode("the malloc backend case checks LIFO reuse");
	RUN(sizing_formulas);
	RUN(create_uses_sizing);
	RUN(hot_path_reuses_without_ctor);
	RUN(depot_exchange);
	RUN(exit_returns_partial_magazine_to_full_list);
	RUN(get_swaps_on_nonempty_previous);
	RUN(put_swaps_on_nonfull_previous);
	RUN(backend_then_ctor_and_ctor_failure);
	RUN(backend_failure_returns_null);
	RUN(m_zero_aborts);
	RUN(put_overflow_destroys);
	RUN(dtor_destroys_at_once);
	RUN(reclaimlist_order);
	RUN(destroy_destructs_each_cached_object_once);
	RUN(destroy_reports_outstanding);
	RUN(destroy_quiet_without_leaks);
	RUN(malloc_backend);
	RUN(nop_backend);
	RUN(create_simple_and_mbacked);
	RUN(stats_snapshot);
	RUN(set_cluster_limit_moves_budget);
	RUN(reaper_trims_idle_full_magazines);
	return sk_t_done();
}
