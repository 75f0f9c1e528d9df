/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Slots stress: a shared array of slots that threads swap blocks through,
 * so that most frees happen on a thread other than the allocating one.
 *
 * Eight workers run at once; each lives for a random number of operations
 * (or 50-400 ms, whichever ends first) and exits, and the main thread
 * starts a new one in its place, so threads start and exit all through
 * the run (their shards are parked and adopted, their zones keep
 * receiving remote frees).  A block comes from
 * one of four sources: kmalloc with type A or type B (sizes skewed small,
 * some of them large blocks up to 1 MiB), an objcache of 192-byte objects
 * and a zone of 96-byte items.  Every block carries a header (seed, size,
 * source, allocating thread, a live marker) and a pattern derived from
 * its seed; the pattern is checked at every free and every krealloc, and
 * a block whose live marker is already set when it is handed out is one
 * handed out twice.  At the end every slot is drained: the allocation and
 * free counts must match per source, kmalloc_type_stats of all three
 * types (A, B and the objcache's backing type) must show inuse == 0 and
 * memuse == 0, and the zone must have no item in use.
 *
 * Duration: 10 s in a release build, 4 s under ASan, 3 s under TSan
 * (SLABKIT_ASAN / SLABKIT_TSAN), scaled by SK_TEST_SCALE; the environment
 * variable SK_STRESS_SECONDS sets it for longer runs by hand.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slabkit/objcache.h>
#include <slabkit/zone.h>

#include "harness.h"
#include "internal.h"

MALLOC_DEFINE(M_SLOTS_A, "slots_a", "slots stress type A");
MALLOC_DEFINE(M_SLOTS_B, "slots_b", "slots stress type B");
MALLOC_DEFINE(M_SLOTS_OC, "slots_oc", "slots stress objcache backing");

#define NSLOTS		8192
#define NWORKERS	8
#define NSTASH		16
#define OC_SIZE		192
#define ZONE_SIZE	96
#define LIVE		0x4c495645u /* "LIVE" */
#define DEAD		0x44454144u /* "DEAD" */

enum source { SRC_A, SRC_B, SRC_OC, SRC_ZONE, NSRC };

/*
 * The first 16 bytes of a free block belong to the allocator (free-list
 * links in kmalloc chunks and zone items), so the live marker sits after
 * them.  The pattern covers the bytes after the header.
 */
struct hdr {
	uint64_t seed;
	uint32_t tid;		/* allocating worker */
	uint32_t src;
	uint32_t live;		/* LIVE while handed out, DEAD before free */
	uint32_t pad;
	uint64_t size;
};

static struct hdr *_Atomic slots[NSLOTS];
static struct objcache *oc;
static vm_zone_t zone;
static atomic_long allocs[NSRC], frees[NSRC];
static atomic_long bad_pattern, twice, remote, local_frees, reallocs, ops;
static atomic_long large_blocks;
static atomic_int stop;
static atomic_uint next_tid;

static unsigned char
pattern_byte(uint64_t seed, size_t i)
{
	return (unsigned char)((seed >> ((i & 7) * 8)) ^ (i * 151));
}

/* Every byte for small blocks, a sparse walk (and the last byte) for
 * large ones, so 1 MiB blocks do not dominate the run. */
static size_t
pattern_step(size_t size)
{
	return size <= 8192 ? 1 : 509;
}

static void
stamp(struct hdr *h, size_t from)
{
	unsigned char *p = (unsigned char *)h;
	size_t step = pattern_step(h->size);

	if (from < sizeof(*h))
		from = sizeof(*h);
	for (size_t i = from; i < h->size; i += step)
		p[i] = pattern_byte(h->seed, i);
	if (h->size > sizeof(*h))
		p[h->size - 1] = pattern_byte(h->seed, h->size - 1);
}

/* Check the pattern up to `upto' bytes; false on a mismatch. */
static bool
pattern_ok(const struct hdr *h, size_t upto)
{
	const unsigned char *p = (const unsigned char *)h;
	size_t step = pattern_step(h->size);

	for (size_t i = sizeof(*h); i < upto; i += step)
		if (p[i] != pattern_byte(h->seed, i))
			return false;
	if (upto == h->size && upto > sizeof(*h) &&
	    p[upto - 1] != pattern_byte(h->seed, upto - 1))
		return false;
	return true;
}

static size_t
kmalloc_size(uint64_t *rng)
{
	uint64_t r = sk_t_rand(rng);
	unsigned pick = (unsigned)(r % 1000);

	if (pick < 750)
		return sizeof(struct hdr) + (r >> 16) % 224;
	if (pick < 980)
		return 256 + (r >> 16) % (16384 - 256);
	return 16384 + (r >> 16) % ((1 << 20) - 16384);
}

static struct hdr *
block_new(uint64_t *rng, uint32_t tid)
{
	unsigned src = (unsigned)(sk_t_rand(rng) % 8);
	struct hdr *h;
	size_t size;

	/* half kmalloc A, a quarter kmalloc B, an eighth each cache/zone */
	src = src < 4 ? SRC_A : src < 6 ? SRC_B : src < 7 ? SRC_OC : SRC_ZONE;
	switch (src) {
	case SRC_A:
	case SRC_B:
		size = kmalloc_size(rng);
		h = kmalloc(size, src == SRC_A ? M_SLOTS_A : M_SLOTS_B,
		    M_WAITOK);
		break;
	case SRC_OC:
		size = OC_SIZE;
		h = objcache_get(oc, M_WAITOK);
		break;
	default:
		size = ZONE_SIZE;
		h = zalloc(zone);
		break;
	}
	if (h == NULL)
		return NULL;
	if (atomic_load_explicit((_Atomic uint32_t *)&h->live,
		memory_order_relaxed) == LIVE)
		atomic_fetch_add(&twice, 1);
	atomic_fetch_add(&allocs[src], 1);
	if (size >= 16384)
		atomic_fetch_add(&large_blocks, 1);
	h->seed = sk_t_rand(rng);
	h->tid = tid;
	h->src = src;
	h->size = size;
	atomic_store_explicit((_Atomic uint32_t *)&h->live, LIVE,
	    memory_order_relaxed);
	stamp(h, 0);
	return h;
}

static void
block_free(struct hdr *h, uint32_t tid)
{
	unsigned src = h->src;

	if (atomic_load_explicit((_Atomic uint32_t *)&h->live,
		memory_order_relaxed) != LIVE || src >= NSRC) {
		atomic_fetch_add(&twice, 1);
		return; /* not ours any more: leave it alone */
	}
	if (!pattern_ok(h, h->size))
		atomic_fetch_add(&bad_pattern, 1);
	if (h->tid != tid)
		atomic_fetch_add(&remote, 1);
	else
		atomic_fetch_add(&local_frees, 1);
	atomic_store_explicit((_Atomic uint32_t *)&h->live, DEAD,
	    memory_order_relaxed);
	atomic_fetch_add(&frees[src], 1);
	switch (src) {
	case SRC_A:
		kfree(h, M_SLOTS_A);
		break;
	case SRC_B:
		kfree(h, M_SLOTS_B);
		break;
	case SRC_OC:
		objcache_put(oc, h);
		break;
	default:
		zfree(zone, h);
		break;
	}
}

/* krealloc a kmalloc block to a new size; the common prefix must
 * survive, and the block is restamped for its new size. */
static struct hdr *
block_realloc(struct hdr *h, uint64_t *rng, uint32_t tid)
{
	struct malloc_type *t = h->src == SRC_A ? M_SLOTS_A : M_SLOTS_B;
	size_t nsize = kmalloc_size(rng);
	size_t keep = nsize < h->size ? nsize : h->size;
	struct hdr *n;

	if (!pattern_ok(h, h->size))
		atomic_fetch_add(&bad_pattern, 1);
	/* the old block may be freed inside krealloc: mark it first */
	atomic_store_explicit((_Atomic uint32_t *)&h->live, DEAD,
	    memory_order_relaxed);
	n = krealloc(h, nsize, t, M_WAITOK);
	if (n == NULL)
		n = h; /* cannot happen with M_WAITOK; keep the old */
	atomic_store_explicit((_Atomic uint32_t *)&n->live, LIVE,
	    memory_order_relaxed);
	if (!pattern_ok(n, keep))
		atomic_fetch_add(&bad_pattern, 1);
	n->size = nsize;
	n->tid = tid; /* the old block was freed by this thread */
	stamp(n, 0); /* the pattern step may change with the size */
	atomic_fetch_add(&reallocs, 1);
	return n;
}

struct worker {
	pthread_t th;
	uint64_t seed;
	long nops;		/* exits after nops operations ... */
	double until;		/* ... or at this time, whichever is first */
	atomic_int done;
	bool running;
};

static double now_s(void);

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = w->seed;
	uint32_t tid = atomic_fetch_add(&next_tid, 1) + 1;
	struct hdr *stash[NSTASH];
	int nstash = 0;

	for (long i = 0; i < w->nops && !atomic_load(&stop); i++) {
		unsigned op = (unsigned)(sk_t_rand(&rng) % 100);
		size_t s = (size_t)(sk_t_rand(&rng) % NSLOTS);
		struct hdr *h, *old;

		if ((i & 63) == 63 && now_s() > w->until)
			break;
		if (op < 80) {
			/* the main move: swap a new block for a slot's */
			h = block_new(&rng, tid);
			if (h == NULL)
				continue;
			old = atomic_exchange(&slots[s], h);
			if (old != NULL)
				block_free(old, tid);
		} else if (op < 88) {
			/* take a block out of a slot and krealloc it */
			old = atomic_exchange(&slots[s], NULL);
			if (old != NULL && old->src <= SRC_B)
				old = block_realloc(old, &rng, tid);
			if (old != NULL) {
				h = atomic_exchange(&slots[s], old);
				if (h != NULL)
					block_free(h, tid);
			}
		} else if (op < 98) {
			/* private blocks, freed by this thread */
			h = block_new(&rng, tid);
			if (h == NULL)
				continue;
			if (nstash == NSTASH)
				while (nstash > 0)
					block_free(stash[--nstash], tid);
			stash[nstash++] = h;
		} else {
			/* empty a slot */
			old = atomic_exchange(&slots[s], NULL);
			if (old != NULL)
				block_free(old, tid);
		}
		atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
	}
	while (nstash > 0)
		block_free(stash[--nstash], tid);
	atomic_store(&w->done, 1);
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
run_seconds(void)
{
	const char *env = getenv("SK_STRESS_SECONDS");
	double s;

	if (env != NULL && (s = strtod(env, NULL)) > 0)
		return s;
#if defined(SLABKIT_TSAN)
	s = 3;
#elif defined(SLABKIT_ASAN)
	s = 4;
#else
	s = 10;
#endif
	return (double)sk_t_scale((long)(s * 1000)) / 1000.0;
}

static void
worker_start(struct worker *w, uint64_t *rng)
{
	w->seed = sk_t_rand(rng) | 1;
	w->nops = 500 + (long)(sk_t_rand(rng) % 20000);
	w->until = now_s() + 0.05 + (double)(sk_t_rand(rng) % 350) / 1000.0;
	atomic_store(&w->done, 0);
	w->running = pthread_create(&w->th, NULL, worker_main, w) == 0;
}

TEST(slots_stress)
{
	static struct worker workers[NWORKERS];
	struct kmalloc_type_stats a, b, o;
	struct vm_zone_stats zs;
	uint64_t rng = 0x5eed5107u;
	long started = 0, failed_starts = 0;
	double secs = run_seconds(), t0 = now_s(), elapsed;
	long total_allocs = 0;

	oc = objcache_create_mbacked(M_SLOTS_OC, OC_SIZE, 0, 0, NULL, NULL,
	    NULL);
	zone = zinit("slots", ZONE_SIZE, 0, ZONE_DESTROYABLE);
	CHECK(oc != NULL);
	CHECK(zone != NULL);
	/* the default limit (10% of memory) is not under test here */
	kmalloc_raise_limit(M_SLOTS_A, 0);
	kmalloc_raise_limit(M_SLOTS_B, 0);
	if (oc == NULL || zone == NULL)
		return;
	for (int i = 0; i < NWORKERS; i++) {
		worker_start(&workers[i], &rng);
		started += workers[i].running;
		failed_starts += !workers[i].running;
	}
	while (now_s() - t0 < secs) {
		struct timespec nap = {0, 1000000};

		for (int i = 0; i < NWORKERS; i++) {
			if (workers[i].running &&
			    !atomic_load(&workers[i].done))
				continue;
			if (workers[i].running)
				pthread_join(workers[i].th, NULL);
			worker_start(&workers[i], &rng);
			started += workers[i].running;
			failed_starts += !workers[i].running;
		}
		nanosleep(&nap, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NWORKERS; i++)
		if (workers[i].running)
			pthread_join(workers[i].th, NULL);
	elapsed = now_s() - t0;
	for (int i = 0; i < NSLOTS; i++) {
		struct hdr *h = atomic_exchange(&slots[i], NULL);

		if (h != NULL)
			block_free(h, 0);
	}
	slab_cleanup();

	for (int s = 0; s < NSRC; s++) {
		CHECK_EQ(atomic_load(&allocs[s]), atomic_load(&frees[s]));
		CHECK(atomic_load(&allocs[s]) > 0);
		total_allocs += atomic_load(&allocs[s]);
	}
	printf("  %d workers at a time, %ld threads started, %ld operations "
	       "in %.1f s\n",
	    NWORKERS, started, atomic_load(&ops), elapsed);
	printf("  %ld blocks (%ld kmalloc A, %ld kmalloc B, %ld objcache, "
	       "%ld zone; %ld large), %ld kreallocs\n",
	    total_allocs, atomic_load(&allocs[SRC_A]),
	    atomic_load(&allocs[SRC_B]), atomic_load(&allocs[SRC_OC]),
	    atomic_load(&allocs[SRC_ZONE]), atomic_load(&large_blocks),
	    atomic_load(&reallocs));
	printf("  frees: %ld remote, %ld local (%.0f%% remote)\n",
	    atomic_load(&remote), atomic_load(&local_frees),
	    100.0 * (double)atomic_load(&remote) /
		(double)(atomic_load(&remote) + atomic_load(&local_frees)));
	CHECK_EQ(failed_starts, 0);
	CHECK(started > NWORKERS); /* threads did exit and start */
	CHECK_EQ(atomic_load(&bad_pattern), 0);
	CHECK_EQ(atomic_load(&twice), 0);
	CHECK(atomic_load(&large_blocks) > 0);
	CHECK(atomic_load(&reallocs) > 0);
	/* most frees are remote */
	CHECK(atomic_load(&remote) > atomic_load(&local_frees));

	CHECK_EQ(slabkit_zone_stats(zone, &zs), 0);
	CHECK_EQ(zs.used, 0);
	zdestroy(zone);
	objcache_destroy(oc);
	slab_cleanup();
	CHECK_EQ(kmalloc_type_stats(M_SLOTS_A, &a), 0);
	CHECK_EQ(kmalloc_type_stats(M_SLOTS_B, &b), 0);
	CHECK_EQ(kmalloc_type_stats(M_SLOTS_OC, &o), 0);
	printf("  at the end: A inuse %zu memuse %zu, B inuse %zu memuse %zu, "
	       "objcache type inuse %zu memuse %zu, zone used %ld\n",
	    a.inuse, a.memuse, b.inuse, b.memuse, o.inuse, o.memuse, zs.used);
	CHECK_EQ(a.inuse, 0);
	CHECK_EQ(a.memuse, 0);
	CHECK_EQ(b.inuse, 0);
	CHECK_EQ(b.memuse, 0);
	CHECK_EQ(o.inuse, 0);
	CHECK_EQ(o.memuse, 0);
}

int
main(void)
{
	RUN(slots_stress);
	return sk_t_done();
}
