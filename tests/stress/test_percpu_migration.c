/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Migration and preemption stress: kmalloc's shards must stay correct when
 * the thread using one is moved to another CPU, preempted in the middle of
 * an allocation, or outnumbers the CPUs several times over.
 *
 * With per-CPU shards (SLABKIT_OPTIONS=shards=cpu, restartable sequences)
 * a thread may be preempted or migrated between reading its CPU number and
 * committing to that CPU's lists; the kernel then aborts the sequence and
 * the allocator must restart it on whatever CPU it now runs on.  A bug
 * there loses an object (never handed out again, the type's statistics
 * never return to zero) or hands one out twice (two owners write the same
 * memory).  With per-thread shards (shards=thread, the fallback) the same
 * workload checks that migration is invisible, as it should be.
 *
 * migrate_pinned: T = max(8, 4 x online CPUs) threads, more threads than
 * CPUs.  Every 16-64 operations a thread pins itself to one CPU picked at
 * random from the process's allowed set (sched_getaffinity at the start),
 * or unpins itself again (the whole set), so that the kernel migrates it
 * at a point the allocator does not choose; now and then it yields.  It
 * allocates with kmalloc (a type of its own, M_WAITOK, 1..1024 bytes and
 * some 2..64 KiB) and with malloc, keeps a private working set of up to
 * 32 blocks and frees random members of it, and hands about a third of its
 * blocks to another thread's mailbox (a mutex-protected ring) so that many
 * frees happen on another thread and another CPU (remote frees).
 *
 * oversubscribed_churn: max(64, 16 x online CPUs) threads, no pinning,
 * short bursts of 1-16 operations with sched_yield between them: many more
 * runnable threads than CPUs, so the scheduler preempts threads inside
 * the allocator all the time.
 *
 * The checks, in both: every block is stamped over its whole requested
 * size with a pattern derived from (thread id, sequence number), and the
 * pattern is verified in full before every free (a wrong byte means that
 * another owner wrote the block: handed out twice).  Every address handed
 * out is entered into a hash set of live addresses (1024 mutex-striped
 * open-addressing tables with backward-shift deletion; the locks are taken
 * after kmalloc returns and before kfree is called, so they add no
 * ordering inside the allocator that TSan could mistake for its own):
 * entering an address that is already live is "handed out twice",
 * removing an absent one is a failure too.  At the end the working sets
 * and the mailboxes are drained; the allocation and free counts must
 * match, the live set must be empty and kmalloc_type_stats must show
 * inuse == 0 and memuse == 0 for the case's type, with calls equal to the
 * number of kmalloc calls made.
 *
 * mode_reported prints the shard mode in effect (slabkit_get_option
 * "shards": "cpu" or "thread"; "unknown" where the library does not know
 * the option); when SLABKIT_EXPECT_SHARDS is set it must equal it.  The
 * second ctest registration runs this binary with shards=thread.
 *
 * sched_setaffinity may be refused in a container (EINVAL, EPERM): the run
 * then goes on without pinning and says so.  malloc is the C library's (or
 * the sanitizer's): the test binary links the static library without the
 * drop-in, so malloc blocks interleave other memory traffic with
 * kmalloc's and share the same checks.
 *
 * Duration: the operation counts are per thread and the thread counts
 * follow the CPUs, so the run takes about as long on any machine: about
 * 1.5 s per case in a release build, 1-4 s per case under ASan and TSan
 * (which run a quarter of the operations).  SK_TEST_SCALE=N (percent)
 * scales the counts (5 for valgrind: about 8 s).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>
#include <slabkit/stats.h>

#include "harness.h"

MALLOC_DEFINE(M_PCPU_MIG, "pcpu_migrate", "per-CPU migration stress");
MALLOC_DEFINE(M_PCPU_CHURN, "pcpu_churn", "per-CPU preemption stress");

#define WS_MAX      32   /* private working set of a thread */
#define MBOX_CAP    64   /* blocks waiting in one thread's mailbox */
#define NSTRIPES    1024 /* live-set stripes (power of 2) */
#define STRIPE_CAP  512  /* slots per stripe (power of 2) */
#define MAX_REPORTS 20   /* detailed failure reports printed */
#define MAX_THREADS 1024

enum { K_KMALLOC, K_MALLOC };

struct blk {
	unsigned char *p;
	uint64_t seq;  /* per-thread sequence number */
	uint32_t size; /* requested size, all of it stamped */
	uint16_t tid;  /* allocating thread */
	uint8_t kind;
	int16_t cpu; /* CPU at allocation (-1: unknown) */
};

struct stripe {
	pthread_mutex_t lock;
	uint32_t n;
	uintptr_t key[STRIPE_CAP];
	uint64_t tag[STRIPE_CAP]; /* tid << 48 | seq */
} __attribute__((aligned(64)));

struct mbox {
	pthread_mutex_t lock;
	int n;
	struct blk b[MBOX_CAP];
} __attribute__((aligned(64)));

struct cfg {
	struct malloc_type *type;
	int nthreads;
	long ops;    /* per thread */
	bool pin;    /* pin/unpin every 16-64 operations */
	bool bursts; /* yield after every burst of 1-16 operations */
};

struct worker {
	pthread_t th;
	int id;
	uint64_t rng;
	uint64_t seq;
	struct blk ws[WS_MAX];
	int nws;
	bool pinned;
	int lastcpu;
	/* counters, summed by the main thread after the join */
	long kmallocs, mallocs, frees, remote, crosscpu, sent;
	long pins, unpins, pinmiss, yields, migrations;
} __attribute__((aligned(64)));

static struct stripe live[NSTRIPES];
static struct mbox *mboxes;
static struct worker *workers;
static const struct cfg *cur;
static pthread_barrier_t start_bar, stop_bar;
static cpu_set_t allowed;
static int allowed_cpus[CPU_SETSIZE], nallowed;
static atomic_int pin_off; /* sched_setaffinity refused: no pinning */
static atomic_long bad_stamps, dup_inserts, missing, tag_mismatch, set_full,
    null_allocs, reports;
static char shard_mode[32] = "unknown";

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
report(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&reports, 1) >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBULL;
	x ^= x >> 31;
	return x;
}

/* Word i of a block's pattern; byte j of the block is byte j % 8 of word
 * j / 8 (little- or big-endian alike: stamp and check agree). */
static uint64_t
pattern_word(uint16_t tid, uint64_t seq, size_t i)
{
	return mix64(((uint64_t)tid << 48) ^ seq) ^
	       ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL);
}

static void
stamp(const struct blk *b)
{
	size_t nw = b->size / 8, i;
	uint64_t w;

	for (i = 0; i < nw; i++) {
		w = pattern_word(b->tid, b->seq, i);
		memcpy(b->p + i * 8, &w, 8);
	}
	if (b->size % 8 != 0) {
		w = pattern_word(b->tid, b->seq, nw);
		memcpy(b->p + nw * 8, &w, b->size % 8);
	}
}

/* Check the whole block; on a mismatch print where and what. */
static bool
verify(const struct blk *b, int by)
{
	size_t nw = (b->size + 7) / 8, i, first = SIZE_MAX, nbad = 0;
	unsigned char want[8], got[8];

	for (i = 0; i < nw; i++) {
		uint64_t w = pattern_word(b->tid, b->seq, i);
		size_t len = i + 1 < nw || b->size % 8 == 0 ? 8 : b->size % 8;

		memcpy(want, &w, 8);
		memcpy(got, b->p + i * 8, len);
		for (size_t j = 0; j < len; j++) {
			if (want[j] == got[j])
				continue;
			if (first == SIZE_MAX)
				first = i * 8 + j;
			nbad++;
		}
	}
	if (nbad == 0)
		return true;
	atomic_fetch_add(&bad_stamps, 1);
	report("  stamp overwritten (handed out twice?): %s block %p size %u "
	       "of thread %u seq %llu, checked by thread %d: %zu bad bytes, "
	       "first at offset %zu (0x%02x, want 0x%02x)\n",
	    b->kind == K_KMALLOC ? "kmalloc" : "malloc", (void *)b->p, b->size,
	    b->tid, (unsigned long long)b->seq, by, nbad, first, b->p[first],
	    (unsigned)(unsigned char)(pattern_word(b->tid, b->seq, first / 8) >>
	                              (8 * (first % 8))));
	return false;
}

/* Live set. */
static uint64_t
addr_hash(uintptr_t a)
{
	return ((uint64_t)a >> 3) * 0x9E3779B97F4A7C15ULL;
}

static struct stripe *
stripe_of(uintptr_t a)
{
	return &live[addr_hash(a) >> (64 - 10)];
}

static uint32_t
home_of(uintptr_t a)
{
	return (uint32_t)(addr_hash(a) >> 20) & (STRIPE_CAP - 1);
}

static void
live_insert(const struct blk *b)
{
	uintptr_t a = (uintptr_t)b->p;
	struct stripe *s = stripe_of(a);
	uint64_t tag = (uint64_t)b->tid << 48 | b->seq;
	uint32_t i = home_of(a);

	pthread_mutex_lock(&s->lock);
	while (s->key[i] != 0) {
		if (s->key[i] == a) {
			uint64_t old = s->tag[i];

			pthread_mutex_unlock(&s->lock);
			atomic_fetch_add(&dup_inserts, 1);
			report(
			    "  handed out twice: %s returned %p (size %u) to "
			    "thread %u seq %llu while thread %u seq %llu "
			    "still holds it\n",
			    b->kind == K_KMALLOC ? "kmalloc" : "malloc",
			    (void *)b->p, b->size, b->tid,
			    (unsigned long long)b->seq, (unsigned)(old >> 48),
			    (unsigned long long)(old & 0xffffffffffffULL));
			return;
		}
		i = (i + 1) & (STRIPE_CAP - 1);
	}
	if (s->n >= STRIPE_CAP * 3 / 4) {
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add(&set_full, 1);
		report("  live set stripe full (%u entries)\n", s->n);
		return;
	}
	s->key[i] = a;
	s->tag[i] = tag;
	s->n++;
	pthread_mutex_unlock(&s->lock);
}

static void
live_remove(const struct blk *b, int by)
{
	uintptr_t a = (uintptr_t)b->p;
	struct stripe *s = stripe_of(a);
	uint64_t tag = (uint64_t)b->tid << 48 | b->seq;
	uint32_t i = home_of(a), j, k;

	pthread_mutex_lock(&s->lock);
	while (s->key[i] != a) {
		if (s->key[i] == 0) {
			pthread_mutex_unlock(&s->lock);
			atomic_fetch_add(&missing, 1);
			report("  freed block %p (thread %u seq %llu) not in "
			       "the live set, freed by thread %d\n",
			    (void *)b->p, b->tid, (unsigned long long)b->seq,
			    by);
			return;
		}
		i = (i + 1) & (STRIPE_CAP - 1);
	}
	if (s->tag[i] != tag) {
		atomic_fetch_add(&tag_mismatch, 1);
		report("  live set holds %p for thread %u seq %llu, freed as "
		       "thread %u seq %llu\n",
		    (void *)b->p, (unsigned)(s->tag[i] >> 48),
		    (unsigned long long)(s->tag[i] & 0xffffffffffffULL), b->tid,
		    (unsigned long long)b->seq);
	}
	/* Backward-shift deletion keeps every probe chain unbroken. */
	j = i;
	for (;;) {
		j = (j + 1) & (STRIPE_CAP - 1);
		if (s->key[j] == 0)
			break;
		k = home_of(s->key[j]);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->key[i] = s->key[j];
		s->tag[i] = s->tag[j];
		i = j;
	}
	s->key[i] = 0;
	s->n--;
	pthread_mutex_unlock(&s->lock);
}

static long
live_count(void)
{
	long n = 0;

	for (int i = 0; i < NSTRIPES; i++) {
		pthread_mutex_lock(&live[i].lock);
		n += live[i].n;
		pthread_mutex_unlock(&live[i].lock);
	}
	return n;
}

/* Blocks. */
static uint32_t
random_size(uint64_t *rng)
{
	uint64_t r = sk_t_rand(rng);

	if (r % 10 != 0)
		return 1 + (uint32_t)((r >> 8) % 1024);
	return 2048 + (uint32_t)((r >> 8) % (64 * 1024 - 2048 + 1));
}

static bool
blk_alloc(struct worker *w, struct blk *b)
{
	uint64_t r = sk_t_rand(&w->rng);

	b->kind = (r & 1) ? K_MALLOC : K_KMALLOC;
	b->size = random_size(&w->rng);
	b->tid = (uint16_t)w->id;
	b->seq = ++w->seq;
	b->cpu = (int16_t)sched_getcpu();
	if (b->kind == K_KMALLOC) {
		b->p = kmalloc(b->size, cur->type, M_WAITOK);
		w->kmallocs++;
	} else {
		b->p = malloc(b->size);
		w->mallocs++;
	}
	if (b->p == NULL) {
		atomic_fetch_add(&null_allocs, 1);
		report("  %s(%u) returned NULL\n",
		    b->kind == K_KMALLOC ? "kmalloc" : "malloc", b->size);
		return false;
	}
	live_insert(b);
	stamp(b);
	return true;
}

static void
blk_free(struct worker *w, const struct blk *b)
{
	int cpu = sched_getcpu();

	verify(b, w->id);
	live_remove(b, w->id);
	if (b->kind == K_KMALLOC)
		kfree(b->p, cur->type);
	else
		free(b->p);
	w->frees++;
	if (b->tid != w->id)
		w->remote++;
	if (cpu >= 0 && b->cpu >= 0 && cpu != b->cpu)
		w->crosscpu++;
}

/* Hand a block to another thread; false when its mailbox is full. */
static bool
mbox_send(struct worker *w, const struct blk *b)
{
	int to = (int)(sk_t_rand(&w->rng) % (uint64_t)(cur->nthreads - 1));
	struct mbox *m;
	bool ok = false;

	if (to >= w->id)
		to++;
	m = &mboxes[to];
	pthread_mutex_lock(&m->lock);
	if (m->n < MBOX_CAP) {
		m->b[m->n++] = *b;
		ok = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (ok)
		w->sent++;
	return ok;
}

static void
mbox_drain(struct worker *w, struct mbox *m)
{
	struct blk got[MBOX_CAP];
	int n;

	pthread_mutex_lock(&m->lock);
	n = m->n;
	memcpy(got, m->b, (size_t)n * sizeof(got[0]));
	m->n = 0;
	pthread_mutex_unlock(&m->lock);
	for (int i = 0; i < n; i++)
		blk_free(w, &got[i]);
}

/* Pinning. */
static void
pin_toggle(struct worker *w)
{
	cpu_set_t set;
	int cpu = -1, err;

	if (atomic_load(&pin_off))
		return;
	if (w->pinned) {
		set = allowed;
	} else {
		cpu = allowed_cpus[sk_t_rand(&w->rng) % (uint64_t)nallowed];
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		err = errno;
		if (atomic_exchange(&pin_off, 1) == 0)
			printf("  note: sched_setaffinity: %s: pinning "
			       "skipped from here on\n",
			    strerror(err));
		return;
	}
	w->pinned = !w->pinned;
	if (w->pinned) {
		w->pins++;
		/* The kernel moves the caller before the call returns. */
		if (sched_getcpu() != cpu)
			w->pinmiss++;
	} else {
		w->unpins++;
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct mbox *mine = &mboxes[w->id];
	long next_pin, next_yield;
	struct blk b;
	int cpu;

	pthread_barrier_wait(&start_bar);
	next_pin = cur->pin ? 1 + (long)(sk_t_rand(&w->rng) % 64) : -1;
	next_yield = 1 + (long)(sk_t_rand(&w->rng) % 16);
	w->lastcpu = sched_getcpu();
	for (long i = 0; i < cur->ops; i++) {
		if (i == next_pin) {
			pin_toggle(w);
			next_pin = i + 16 + (long)(sk_t_rand(&w->rng) % 49);
		}
		if (cur->bursts ? i == next_yield
		                : sk_t_rand(&w->rng) % 64 == 0) {
			sched_yield();
			w->yields++;
			next_yield = i + 1 + (long)(sk_t_rand(&w->rng) % 16);
		}
		if ((i & 7) == 0)
			mbox_drain(w, mine);
		if ((i & 15) == 0) {
			cpu = sched_getcpu();
			if (cpu != w->lastcpu)
				w->migrations++;
			w->lastcpu = cpu;
		}
		if (w->nws == 0 ||
		    (w->nws < WS_MAX && sk_t_rand(&w->rng) % 8 < 5)) {
			if (!blk_alloc(w, &b))
				continue;
			if (sk_t_rand(&w->rng) % 3 == 0 && mbox_send(w, &b))
				continue;
			w->ws[w->nws++] = b;
		} else {
			int k = (int)(sk_t_rand(&w->rng) % (uint64_t)w->nws);

			b = w->ws[k];
			w->ws[k] = w->ws[--w->nws];
			blk_free(w, &b);
		}
	}
	while (w->nws > 0)
		blk_free(w, &w->ws[--w->nws]);
	/* Nobody sends after this barrier: drain what was left for us. */
	pthread_barrier_wait(&stop_bar);
	mbox_drain(w, mine);
	if (w->pinned) {
		sched_setaffinity(0, sizeof(allowed), &allowed);
		w->pinned = false;
	}
	return NULL;
}

static long
scaled_ops(long n)
{
#if defined(SLABKIT_ASAN) || defined(SLABKIT_TSAN) ||                          \
    defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	n /= 4;
#endif
	n = sk_t_scale(n);
	return n < 100 ? 100 : n;
}

static int
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}

static void
run_case(const struct cfg *c, const char *what)
{
	struct worker sum;
	struct kmalloc_type_stats st;
	long allocs, mbox_left = 0;
	double t0, t1;

	memset(&sum, 0, sizeof(sum));
	cur = c;
	atomic_store(&pin_off, 0);
	atomic_store(&bad_stamps, 0);
	atomic_store(&dup_inserts, 0);
	atomic_store(&missing, 0);
	atomic_store(&tag_mismatch, 0);
	atomic_store(&set_full, 0);
	atomic_store(&null_allocs, 0);
	nallowed = 0;
	CPU_ZERO(&allowed);
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
		if (c->pin)
			printf("  note: sched_getaffinity: %s: no pinning\n",
			    strerror(errno));
		CPU_ZERO(&allowed);
	}
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &allowed))
			allowed_cpus[nallowed++] = i;
	if (c->pin && nallowed == 1)
		printf(
		    "  note: 1 CPU allowed: pinning does not move threads\n");
	if (!c->pin || nallowed == 0)
		atomic_store(&pin_off, 1);
	/* Both are cache-line aligned types: aligned_alloc, not calloc. */
	mboxes = aligned_alloc(64, (size_t)c->nthreads * sizeof(*mboxes));
	workers = aligned_alloc(64, (size_t)c->nthreads * sizeof(*workers));
	if (mboxes == NULL || workers == NULL) {
		CHECK(mboxes != NULL && workers != NULL);
		free(mboxes);
		free(workers);
		return;
	}
	memset(mboxes, 0, (size_t)c->nthreads * sizeof(*mboxes));
	memset(workers, 0, (size_t)c->nthreads * sizeof(*workers));
	pthread_barrier_init(&start_bar, NULL, (unsigned)c->nthreads);
	pthread_barrier_init(&stop_bar, NULL, (unsigned)c->nthreads);
	for (int i = 0; i < c->nthreads; i++) {
		pthread_mutex_init(&mboxes[i].lock, NULL);
		workers[i].id = i;
		workers[i].rng = mix64((uint64_t)i + 1 +
		                       ((uint64_t)(uintptr_t)c->type << 16)) |
		                 1;
	}
	t0 = now_s();
	for (int i = 0; i < c->nthreads; i++) {
		int err = pthread_create(
		    &workers[i].th, NULL, worker_main, &workers[i]);

		if (err != 0) {
			/* The barriers count on every thread: give up. */
			fprintf(
			    stderr, "  pthread_create: %s\n", strerror(err));
			CHECK_EQ(err, 0);
			abort();
		}
	}
	for (int i = 0; i < c->nthreads; i++) {
		struct worker *w = &workers[i];

		pthread_join(w->th, NULL);
		sum.kmallocs += w->kmallocs;
		sum.mallocs += w->mallocs;
		sum.frees += w->frees;
		sum.remote += w->remote;
		sum.crosscpu += w->crosscpu;
		sum.sent += w->sent;
		sum.pins += w->pins;
		sum.unpins += w->unpins;
		sum.pinmiss += w->pinmiss;
		sum.yields += w->yields;
		sum.migrations += w->migrations;
	}
	t1 = now_s();
	/* Every mailbox was drained by its owner after the stop barrier. */
	for (int i = 0; i < c->nthreads; i++) {
		mbox_left += mboxes[i].n;
		if (mboxes[i].n > 0) {
			struct worker mainw;

			memset(&mainw, 0, sizeof(mainw));
			mainw.id = -1;
			mbox_drain(&mainw, &mboxes[i]);
			sum.frees += mainw.frees;
		}
		pthread_mutex_destroy(&mboxes[i].lock);
	}
	pthread_barrier_destroy(&start_bar);
	pthread_barrier_destroy(&stop_bar);
	slab_cleanup();
	CHECK_EQ(kmalloc_type_stats(c->type, &st), 0);
	allocs = sum.kmallocs + sum.mallocs - atomic_load(&null_allocs);
	printf("  %s, shards=%s: %d threads on %d CPUs (%d allowed), %ld "
	       "ops each, %.2f s\n",
	    what, shard_mode, c->nthreads, online_cpus(), CPU_COUNT(&allowed),
	    c->ops, t1 - t0);
	printf("  %ld kmalloc + %ld malloc, %ld frees (%ld on another "
	       "thread, %ld on another CPU), %ld handed over\n",
	    sum.kmallocs, sum.mallocs, sum.frees, sum.remote, sum.crosscpu,
	    sum.sent);
	printf("  %ld pins (%ld not on the CPU asked for), %ld unpins, %ld "
	       "yields, %ld migrations seen%s\n",
	    sum.pins, sum.pinmiss, sum.unpins, sum.yields, sum.migrations,
	    c->pin && atomic_load(&pin_off) ? " (pinning skipped)" : "");
	printf("  type %s: inuse %zu memuse %zu calls %llu maxused %zu\n",
	    st.shortdesc, st.inuse, st.memuse, (unsigned long long)st.calls,
	    st.maxused);
	CHECK_EQ(atomic_load(&bad_stamps), 0);
	CHECK_EQ(atomic_load(&dup_inserts), 0);
	CHECK_EQ(atomic_load(&missing), 0);
	CHECK_EQ(atomic_load(&tag_mismatch), 0);
	CHECK_EQ(atomic_load(&set_full), 0);
	CHECK_EQ(atomic_load(&null_allocs), 0);
	CHECK_EQ(mbox_left, 0);
	CHECK_EQ(allocs, sum.frees);
	CHECK_EQ(live_count(), 0);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.memuse, 0);
	CHECK_EQ(st.calls, sum.kmallocs);
	CHECK(sum.remote > 0);
	if (c->pin && !atomic_load(&pin_off))
		CHECK(sum.pins > 0);
	free(mboxes);
	free(workers);
	mboxes = NULL;
	workers = NULL;
}

TEST(mode_reported)
{
	const char *expect = getenv("SLABKIT_EXPECT_SHARDS");
	const char *opts = getenv("SLABKIT_OPTIONS");
	char buf[sizeof(shard_mode)];
	int err = slabkit_get_option("shards", buf, sizeof(buf));

	if (err == 0) {
		strcpy(shard_mode, buf);
		CHECK(strcmp(buf, "cpu") == 0 || strcmp(buf, "thread") == 0);
	} else {
		CHECK_EQ(err, ENOENT);
	}
	printf("  shards=%s%s (SLABKIT_OPTIONS=%s, SLABKIT_EXPECT_SHARDS=%s)\n",
	    shard_mode,
	    err == ENOENT ? ": the library does not know the option" : "",
	    opts != NULL ? opts : "", expect != NULL ? expect : "");
	if (expect != NULL && expect[0] != '\0')
		CHECK_STR_EQ(shard_mode, expect);
}

/* per_cpu threads per CPU online, at least min, at most MAX_THREADS */
static int
threads_for(int per_cpu, int min)
{
	int n = per_cpu * online_cpus();

	return n < min ? min : n > MAX_THREADS ? MAX_THREADS : n;
}

TEST(migrate_pinned)
{
	struct cfg c = {
	    .type = M_PCPU_MIG,
	    .nthreads = threads_for(4, 8),
	    .pin = true,
	};

	c.ops = scaled_ops(100000);
	run_case(&c, "migrate_pinned");
}

TEST(oversubscribed_churn)
{
	struct cfg c = {
	    .type = M_PCPU_CHURN,
	    .nthreads = threads_for(16, 64),
	    .bursts = true,
	};

	c.ops = scaled_ops(10000);
	run_case(&c, "oversubscribed_churn");
}

int
main(void)
{
	for (int i = 0; i < NSTRIPES; i++)
		pthread_mutex_init(&live[i].lock, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN(mode_reported);
	RUN(migrate_pinned);
	RUN(oversubscribed_churn);
	return sk_t_done();
}
