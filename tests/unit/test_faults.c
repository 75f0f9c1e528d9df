/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault injection sweep over the public calls (issue 8, checklist rows 5,
 * 37, 50, 57-59, 69).
 *
 * A fixed workload calls kmalloc with M_NOWAIT, M_WAITOK|M_NULLOK and
 * M_WAITOK (small, zone-crossing and large sizes), krealloc, objcache
 * (create, get with M_WAITOK, M_WAITOK|M_NULLOK and M_NOWAIT, put,
 * destroy), zones (zinit of a normal and an interrupt zone, zalloc,
 * zfree, zdestroy) and mpipe (mpipe_init, mpipe_alloc_nowait within the
 * reserve, beyond it and beyond nmax, mpipe_free, mpipe_done).  A first
 * run in a forked child counts the os layer's map calls
 * (slabkit_fault_calls(SLABKIT_FAULT_MAP)); then, for every N from 1 to
 * that count, a child re-runs the workload with the Nth map call failing
 * (slabkit_fault_inject(SLABKIT_FAULT_MAP, N, 1), a transient page
 * shortage).  Every call must behave as documented:
 *  - M_NOWAIT may return NULL (and a failed krealloc leaves the old block
 *    intact); M_WAITOK and M_WAITOK|M_NULLOK retry and succeed;
 *  - objcache_get with M_WAITOK (with or without M_NULLOK) succeeds,
 *    with M_NOWAIT it may return NULL; objcache_create never fails;
 *  - zinit and zalloc may return NULL (no memory), never crash;
 *  - mpipe_init succeeds, the first nnom mpipe_alloc_nowait calls succeed
 *    from the reserve, the ones up to nmax may fail, the one past nmax
 *    returns NULL;
 *  - no crash, and the statistics stay consistent: while blocks are live
 *    each type's inuse equals the blocks the workload holds, and at the
 *    end inuse and memuse are 0 for every type and the zone has no item
 *    in use.
 * A second sweep makes every map call fail from the Nth on (count -1)
 * during a phase that uses only the non-blocking calls.  Then a random
 * run (slabkit_fault_random, fixed seed) repeats the whole workload, and
 * a last case checks exhausted address space (SLABKIT_FAULT_MAP_EXHAUST):
 * NULL with M_NULLOK, a panic without.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabkit/mpipe.h>
#include <slabkit/objcache.h>
#include <slabkit/zone.h>

#include "harness.h"
#include "internal.h"

MALLOC_DEFINE(M_FLT_A, "flt_a", "fault sweep type A");
MALLOC_DEFINE(M_FLT_B, "flt_b", "fault sweep type B");
MALLOC_DEFINE(M_FLT_OC, "flt_oc", "fault sweep objcache backing");
MALLOC_DEFINE(M_FLT_MP, "flt_mp", "fault sweep mpipe buffers");

#define NSMALL	300	/* 1 KiB blocks: several 128 KiB zones */
#define NNOW	64
#define NCLASS	10
#define NLARGE	12
#define NOBJ	40
#define NZITEMS	200
#define MP_NNOM	4
#define MP_NMAX	12

/* ------------------------------------------------------------------ */
/* Checks inside a forked child: print, count, keep going. */

static int w_failed;
static long w_run;	/* the N of this child, for messages */
static long w_nulls;	/* NULL returns seen (allowed ones) */

#define WCHECK(cond)                                                       \
	do {                                                               \
		if (!(cond))                                               \
			w_fail(__LINE__, #cond);                           \
	} while (0)

static void
w_fail(int line, const char *what)
{
	if (w_failed < 5)
		fprintf(stderr, "  run %ld: line %d: %s\n", w_run, line, what);
	w_failed++;
}

static void
fill(void *p, size_t n, unsigned char seed)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)(seed + i * 7);
}

static bool
filled(const void *p, size_t n, unsigned char seed)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != (unsigned char)(seed + i * 7))
			return false;
	return true;
}

static size_t
type_inuse(struct malloc_type *t, size_t *memuse)
{
	struct kmalloc_type_stats st;

	kmalloc_type_stats(t, &st);
	if (memuse != NULL)
		*memuse = st.memuse;
	return st.inuse;
}

/* Every workload type must be back to zero. */
static void
check_types_empty(void)
{
	struct malloc_type *types[] = {M_FLT_A, M_FLT_B, M_FLT_OC, M_FLT_MP};
	size_t memuse;

	slab_cleanup();
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		WCHECK(type_inuse(types[i], &memuse) == 0);
		WCHECK(memuse == 0);
	}
}

/* ------------------------------------------------------------------ */
/* The workload */

struct live {
	void	*small[NSMALL];
	void	*now[NNOW];
	void	*cls[NCLASS];
	void	*large[NLARGE];
	void	*objs[NOBJ + 16];
	void	*items[NZITEMS];
	void	*bufs[MP_NMAX + 1];
	void	*w1, *w2, *big, *zeroed, *r;
	size_t	na, nb;		/* blocks held per type */
};

static void
kmalloc_part(struct live *l)
{
	void *p;

	/* M_NOWAIT: NULL allowed */
	p = kmalloc(64, M_FLT_A, M_NOWAIT);
	if (p == NULL)
		w_nulls++;
	else
		kfree(p, M_FLT_A);
	/* M_WAITOK: never NULL */
	l->w1 = kmalloc(64, M_FLT_A, M_WAITOK);
	WCHECK(l->w1 != NULL);
	if (l->w1 != NULL) {
		fill(l->w1, 64, 1);
		l->na++;
	}
	/* M_WAITOK|M_NULLOK: a shortage is retried, so it succeeds */
	l->big = kmalloc(100000, M_FLT_A, M_WAITOK | M_NULLOK);
	WCHECK(l->big != NULL);
	if (l->big != NULL) {
		fill(l->big, 100000, 2);
		l->na++;
	}
	p = kmalloc(200000, M_FLT_B, M_NOWAIT);
	if (p == NULL)
		w_nulls++;
	else
		kfree(p, M_FLT_B);
	l->zeroed = kmalloc(3000, M_FLT_B, M_WAITOK | M_ZERO);
	WCHECK(l->zeroed != NULL);
	if (l->zeroed != NULL) {
		for (int i = 0; i < 3000; i++)
			if (((unsigned char *)l->zeroed)[i] != 0) {
				WCHECK(!"M_ZERO block not zero");
				break;
			}
		l->nb++;
	}
	/* enough 1 KiB blocks to need several new zones */
	for (int i = 0; i < NSMALL; i++) {
		l->small[i] = kmalloc(1024, M_FLT_A,
		    (i & 1) ? M_WAITOK : M_WAITOK | M_NULLOK);
		WCHECK(l->small[i] != NULL);
		if (l->small[i] != NULL) {
			fill(l->small[i], 1024, (unsigned char)i);
			l->na++;
		}
	}
	for (int i = 0; i < NNOW; i++) {
		l->now[i] = kmalloc(2048 + (i & 3) * 1024, M_FLT_B, M_NOWAIT);
		if (l->now[i] == NULL)
			w_nulls++;
		else
			l->nb++;
	}
	/* krealloc: M_WAITOK grows into a new class and into pages */
	if (l->w1 != NULL) {
		p = krealloc(l->w1, 5000, M_FLT_A, M_WAITOK);
		WCHECK(p != NULL);
		if (p != NULL) {
			WCHECK(filled(p, 64, 1));
			l->w1 = p;
			p = krealloc(l->w1, 300000, M_FLT_A, M_WAITOK);
			WCHECK(p != NULL);
			if (p != NULL) {
				WCHECK(filled(p, 64, 1));
				l->w1 = p;
			}
		}
	}
	/* krealloc M_NOWAIT: NULL leaves the old block valid */
	l->r = kmalloc(128, M_FLT_B, M_WAITOK);
	WCHECK(l->r != NULL);
	if (l->r != NULL) {
		fill(l->r, 128, 3);
		l->nb++;
		p = krealloc(l->r, 600000, M_FLT_B, M_NOWAIT);
		if (p == NULL) {
			w_nulls++;
			WCHECK(filled(l->r, 128, 3));
		} else {
			WCHECK(filled(p, 128, 3));
			l->r = p;
		}
	}
	/* one block in each of several classes: a new zone for each */
	for (int i = 0; i < NCLASS; i++) {
		static const size_t sizes[NCLASS] = {16, 48, 96, 200, 400,
		    800, 1600, 3200, 6000, 12000};
		static const int flags[3] = {M_WAITOK, M_WAITOK | M_NULLOK,
		    M_NOWAIT};

		l->cls[i] = kmalloc(sizes[i], M_FLT_B, flags[i % 3]);
		if (flags[i % 3] != M_NOWAIT)
			WCHECK(l->cls[i] != NULL);
		if (l->cls[i] == NULL) {
			w_nulls++;
		} else {
			fill(l->cls[i], sizes[i], (unsigned char)(40 + i));
			l->nb++;
		}
	}
	/* large blocks: one mapping each */
	for (int i = 0; i < NLARGE; i++) {
		static const int flags[3] = {M_NOWAIT, M_WAITOK,
		    M_WAITOK | M_NULLOK};

		l->large[i] = kmalloc(20000 + (size_t)i * 30000, M_FLT_A,
		    flags[i % 3]);
		if (flags[i % 3] != M_NOWAIT)
			WCHECK(l->large[i] != NULL);
		if (l->large[i] == NULL) {
			w_nulls++;
		} else {
			fill(l->large[i], 4096, (unsigned char)(80 + i));
			l->na++;
		}
	}
	/* the statistics count exactly what is held */
	WCHECK(type_inuse(M_FLT_A, NULL) == l->na);
	WCHECK(type_inuse(M_FLT_B, NULL) == l->nb);
}

static void
kmalloc_release(struct live *l)
{
	if (l->big != NULL) {
		WCHECK(filled(l->big, 100000, 2));
		kfree(l->big, M_FLT_A);
	}
	if (l->w1 != NULL)
		kfree(l->w1, M_FLT_A);
	if (l->zeroed != NULL)
		kfree(l->zeroed, M_FLT_B);
	if (l->r != NULL)
		kfree(l->r, M_FLT_B);
	for (int i = 0; i < NSMALL; i++)
		if (l->small[i] != NULL) {
			WCHECK(filled(l->small[i], 1024, (unsigned char)i));
			kfree(l->small[i], M_FLT_A);
		}
	for (int i = 0; i < NNOW; i++)
		if (l->now[i] != NULL)
			kfree(l->now[i], M_FLT_B);
	for (int i = 0; i < NCLASS; i++)
		if (l->cls[i] != NULL) {
			WCHECK(filled(l->cls[i], 16, (unsigned char)(40 + i)));
			kfree(l->cls[i], M_FLT_B);
		}
	for (int i = 0; i < NLARGE; i++)
		if (l->large[i] != NULL) {
			WCHECK(filled(l->large[i], 4096,
			    (unsigned char)(80 + i)));
			kfree(l->large[i], M_FLT_A);
		}
}

static void
objcache_part(struct live *l)
{
	struct objcache *oc = objcache_create_simple(M_FLT_OC, 256);
	int n = 0;

	WCHECK(oc != NULL);
	if (oc == NULL)
		return;
	for (int i = 0; i < NOBJ; i++) {
		int flags = (i % 3 == 0) ? M_WAITOK | M_NULLOK : M_WAITOK;

		l->objs[n] = objcache_get(oc, flags);
		WCHECK(l->objs[n] != NULL);
		if (l->objs[n] != NULL)
			n++;
	}
	for (int i = 0; i < 16; i++) {
		l->objs[n] = objcache_get(oc, M_NOWAIT);
		if (l->objs[n] == NULL)
			w_nulls++;
		else
			n++;
	}
	WCHECK(type_inuse(M_FLT_OC, NULL) == (size_t)n);
	while (n > 0)
		objcache_put(oc, l->objs[--n]);
	objcache_destroy(oc);
}

static void
zone_part(struct live *l)
{
	struct vm_zone_stats st;
	vm_zone_t z, zi;
	int n = 0;

	z = zinit("flt", 128, 0, ZONE_DESTROYABLE);
	if (z == NULL) {
		w_nulls++;
	} else {
		for (int i = 0; i < NZITEMS; i++) {
			void *p = zalloc(z);

			if (p == NULL) {
				w_nulls++;
				continue;
			}
			fill(p, 128, (unsigned char)i);
			l->items[n++] = p;
		}
		WCHECK(slabkit_zone_stats(z, &st) == 0 && st.used == n);
		while (n > 0)
			zfree(z, l->items[--n]);
		WCHECK(slabkit_zone_stats(z, &st) == 0 && st.used == 0);
		zdestroy(z);
	}
	/* an interrupt zone reserves its address space at zinit */
	zi = zinit("flt-int", 64, 256, ZONE_INTERRUPT);
	if (zi == NULL) {
		w_nulls++;
		return;
	}
	for (int i = 0; i < 64; i++) {
		void *p = zalloc(zi);

		if (p == NULL) {
			w_nulls++;
			continue;
		}
		l->items[n++] = p;
	}
	while (n > 0)
		zfree(zi, l->items[--n]);
	WCHECK(slabkit_zone_stats(zi, &st) == 0 && st.used == 0);
	/* interrupt zones are never destroyed (as in the kernel) */
}

static void
mpipe_part(struct live *l)
{
	struct malloc_pipe mp;
	int n = 0;

	mpipe_init(&mp, M_FLT_MP, 512, MP_NNOM, MP_NMAX, 0, NULL, NULL, NULL);
	for (int i = 0; i < MP_NMAX + 1; i++) {
		void *b = mpipe_alloc_nowait(&mp);

		if (i < MP_NNOM)
			WCHECK(b != NULL); /* the reserve */
		else if (i >= MP_NMAX)
			WCHECK(b == NULL); /* past nmax */
		if (b == NULL) {
			if (i < MP_NMAX)
				w_nulls++;
			continue;
		}
		l->bufs[n++] = b;
	}
	while (n > 0)
		mpipe_free(&mp, l->bufs[--n]);
	mpipe_done(&mp);
}

/* The whole workload; the fault (if any) is armed by the caller. */
static void
workload(void)
{
	static struct live l;

	memset(&l, 0, sizeof(l));
	kmalloc_part(&l);
	objcache_part(&l);
	zone_part(&l);
	mpipe_part(&l);
	slabkit_fault_clear();
	kmalloc_release(&l);
	check_types_empty();
}

/*
 * The non-blocking phase for the count -1 sweep: objects are set up
 * before arming (their creation may block), then only calls that never
 * wait run while every map call from the Nth on fails.
 */
struct nowait_env {
	struct objcache *oc;
	vm_zone_t z;
	struct malloc_pipe mp;
};

static void
nowait_setup(struct nowait_env *e)
{
	e->oc = objcache_create_simple(M_FLT_OC, 256);
	/* this thread's first get attaches its magazines (M_WAITOK) */
	objcache_put(e->oc, objcache_get(e->oc, M_WAITOK));
	e->z = zinit("flt-now", 128, 0, ZONE_DESTROYABLE);
	mpipe_init(&e->mp, M_FLT_MP, 512, MP_NNOM, MP_NMAX, 0, NULL, NULL,
	    NULL);
}

static void
nowait_phase(struct nowait_env *e, long nth)
{
	static void *blk[400], *objs[32], *items[NZITEMS], *bufs[MP_NMAX + 1];
	static struct malloc_type *blk_type[400];
	int nblk = 0, nobj = 0, nit = 0, nbuf = 0;
	struct vm_zone_stats st;

	if (nth > 0)
		slabkit_fault_inject(SLABKIT_FAULT_MAP, nth, -1);
	for (int i = 0; i < 400; i++) {
		size_t size = i % 50 == 49 ? 70000 + (size_t)i * 100
					   : 512 + (size_t)(i % 7) * 512;
		struct malloc_type *t = (i & 1) ? M_FLT_A : M_FLT_B;
		void *p = kmalloc(size, t, M_NOWAIT);

		if (p == NULL) {
			w_nulls++;
			continue;
		}
		fill(p, 64, (unsigned char)nblk);
		blk_type[nblk] = t;
		blk[nblk++] = p;
	}
	for (int i = 0; i < 32; i++) {
		void *o = objcache_get(e->oc, M_NOWAIT);

		if (o == NULL)
			w_nulls++;
		else
			objs[nobj++] = o;
	}
	if (e->z != NULL) {
		for (int i = 0; i < NZITEMS; i++) {
			void *p = zalloc(e->z);

			if (p == NULL)
				w_nulls++;
			else
				items[nit++] = p;
		}
	}
	for (int i = 0; i < MP_NMAX + 1; i++) {
		void *b = mpipe_alloc_nowait(&e->mp);

		if (i < MP_NNOM)
			WCHECK(b != NULL); /* the reserve */
		else if (i >= MP_NMAX)
			WCHECK(b == NULL); /* past nmax */
		if (b != NULL)
			bufs[nbuf++] = b;
		else if (i < MP_NMAX)
			w_nulls++;
	}
	WCHECK(type_inuse(M_FLT_OC, NULL) == (size_t)nobj);
	WCHECK(type_inuse(M_FLT_A, NULL) + type_inuse(M_FLT_B, NULL) ==
	    (size_t)nblk);
	slabkit_fault_clear();
	while (nblk > 0) {
		nblk--;
		WCHECK(filled(blk[nblk], 64, (unsigned char)nblk));
		kfree(blk[nblk], blk_type[nblk]);
	}
	while (nobj > 0)
		objcache_put(e->oc, objs[--nobj]);
	while (nit > 0)
		zfree(e->z, items[--nit]);
	while (nbuf > 0)
		mpipe_free(&e->mp, bufs[--nbuf]);
	if (e->z != NULL) {
		WCHECK(slabkit_zone_stats(e->z, &st) == 0 && st.used == 0);
		zdestroy(e->z);
	}
	objcache_destroy(e->oc);
	mpipe_done(&e->mp);
	check_types_empty();
}

/* ------------------------------------------------------------------ */
/* Forked runs */

enum mode { COUNT, ONE_FAULT, NOWAIT_COUNT, NOWAIT_FROM, RANDOM };

struct report {
	long	calls;		/* map calls made by the measured part */
	long	injected;	/* faults injected */
	long	nulls;		/* allowed NULL returns */
	int	failed;		/* failed checks */
};

/* Run the workload in a child with the given fault; false when the
 * child crashed or a check failed. */
static bool
run_child(enum mode mode, long n, struct report *rep)
{
	int fds[2], status;
	pid_t pid;

	memset(rep, 0, sizeof(*rep));
	fflush(NULL);
	if (pipe(fds) != 0)
		return false;
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		struct report r;
		struct nowait_env e;
		long before, inj0;

		close(fds[0]);
		w_run = n;
		memset(&r, 0, sizeof(r));
		inj0 = slabkit_fault_clear();
		switch (mode) {
		case COUNT:
		case ONE_FAULT:
			before = slabkit_fault_calls(SLABKIT_FAULT_MAP);
			if (mode == ONE_FAULT)
				slabkit_fault_inject(SLABKIT_FAULT_MAP, n, 1);
			workload();
			r.calls = slabkit_fault_calls(SLABKIT_FAULT_MAP) -
			    before;
			break;
		case NOWAIT_COUNT:
		case NOWAIT_FROM:
			nowait_setup(&e);
			WCHECK(e.oc != NULL);
			before = slabkit_fault_calls(SLABKIT_FAULT_MAP);
			nowait_phase(&e, mode == NOWAIT_FROM ? n : 0);
			r.calls = slabkit_fault_calls(SLABKIT_FAULT_MAP) -
			    before;
			break;
		case RANDOM:
			/* n: iterations; 30% of map calls fail */
			slabkit_fault_random(SLABKIT_FAULT_MAP, 300, 0x5eed);
			for (long i = 0; i < n; i++) {
				workload();
				slabkit_fault_random(SLABKIT_FAULT_MAP, 300,
				    0x5eed + (uint64_t)i + 1);
			}
			slabkit_fault_clear();
			for (long i = 0; i < n; i++) {
				slabkit_fault_random(SLABKIT_FAULT_MAP, 500,
				    0xbeef + (uint64_t)i);
				nowait_setup(&e);
				WCHECK(e.oc != NULL);
				nowait_phase(&e, 0);
			}
			break;
		}
		r.injected = slabkit_fault_clear() - inj0;
		r.nulls = w_nulls;
		r.failed = w_failed;
		if (write(fds[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(3);
		fflush(NULL);
		_exit(w_failed != 0);
	}
	close(fds[1]);
	if (read(fds[0], rep, sizeof(*rep)) != (ssize_t)sizeof(*rep))
		rep->failed = -1;
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return false;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "  mode %d run %ld: child status 0x%x\n",
		    (int)mode, n, status);
		return false;
	}
	return rep->failed == 0;
}

static long sweep_runs;

TEST(sweep_one_fault)
{
	struct report count, rep;
	long bad = 0, injected = 0, nulls = 0;

	CHECK(run_child(COUNT, 0, &count));
	CHECK(count.calls > 0);
	CHECK_EQ(count.injected, 0);
	for (long n = 1; n <= count.calls; n++) {
		if (!run_child(ONE_FAULT, n, &rep))
			bad++;
		injected += rep.injected;
		nulls += rep.nulls;
	}
	sweep_runs += count.calls;
	printf("  workload: %ld map calls; %ld runs with one failing call, "
	       "%ld faults injected, %ld allowed NULL returns, %ld bad runs\n",
	    count.calls, count.calls, injected, nulls, bad);
	CHECK_EQ(bad, 0);
	/* each run hit its fault (a retry adds calls, never skips one) */
	CHECK_EQ(injected, count.calls);
}

TEST(sweep_nowait_from_n)
{
	struct report count, rep;
	long bad = 0, nulls = 0;

	CHECK(run_child(NOWAIT_COUNT, 0, &count));
	CHECK(count.calls > 0);
	for (long n = 1; n <= count.calls; n++) {
		if (!run_child(NOWAIT_FROM, n, &rep))
			bad++;
		nulls += rep.nulls;
		/* from the Nth call on everything fails: at least one did */
		if (rep.injected < 1)
			bad++;
	}
	sweep_runs += count.calls;
	printf("  non-blocking phase: %ld map calls; %ld runs failing every "
	       "call from the Nth on, %ld allowed NULL returns, %ld bad "
	       "runs\n",
	    count.calls, count.calls, nulls, bad);
	CHECK_EQ(bad, 0);
	CHECK(nulls > 0);
}

TEST(random_faults)
{
	struct report rep;
	long iters = sk_t_scale(20);

	CHECK(run_child(RANDOM, iters, &rep));
	printf("  random: %ld workload iterations at 30%% and %ld "
	       "non-blocking phases at 50%% (seeds 0x5eed+i, 0xbeef+i): "
	       "%ld faults injected, %ld allowed NULL returns\n",
	    iters, iters, rep.injected, rep.nulls);
	CHECK(rep.injected > 0);
	CHECK(rep.nulls > 0);
}

/* Exhausted address space: NULL with M_NULLOK, a panic without. */
static void
exhaust_waitok(void *arg)
{
	static void *volatile sink;

	(void)arg;
	slab_cleanup(); /* no cached large block to recycle */
	slabkit_fault_inject(SLABKIT_FAULT_MAP_EXHAUST, 1, 1);
	sink = kmalloc(1 << 20, M_FLT_A, M_WAITOK);
	fprintf(stderr, "kmalloc returned %p\n", sink);
}

TEST(exhausted_address_space)
{
	void *p;

	slab_cleanup(); /* purges the page-run heap's retained pages */
	slabkit_fault_inject(SLABKIT_FAULT_MAP_EXHAUST, 1, 1);
	p = kmalloc(1 << 20, M_FLT_A, M_WAITOK | M_NULLOK);
	slabkit_fault_clear();
	CHECK(p == NULL);
	slabkit_fault_inject(SLABKIT_FAULT_MAP_EXHAUST, 1, 1);
	p = kmalloc(1 << 20, M_FLT_A, M_NOWAIT);
	slabkit_fault_clear();
	CHECK(p == NULL);
	p = kmalloc(1 << 20, M_FLT_A, M_WAITOK);
	CHECK(p != NULL);
	kfree(p, M_FLT_A);
	CHECK_ABORTS(exhaust_waitok, NULL, "address space ran out");
	CHECK_EQ(type_inuse(M_FLT_A, NULL), 0);
}

int
main(void)
{
	void *p;

	/* The shard and the types exist before any child is forked, so
	 * every run starts from the same state. */
	p = kmalloc(16, M_FLT_A, M_WAITOK);
	kfree(p, M_FLT_A);
	RUN(sweep_one_fault);
	RUN(sweep_nowait_from_n);
	RUN(random_faults);
	RUN(exhausted_address_space);
	printf("  fault sweep: %ld forked runs with injected faults\n",
	    sweep_runs);
	return sk_t_done();
}
