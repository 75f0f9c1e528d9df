/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mpipe in signal handlers (the kernel's MPF_INT, interrupt context): on
 * an MPF_INT pipe, mpipe_alloc_nowait and mpipe_free are async-signal-safe
 * between slabkit_intr_enter() and slabkit_intr_exit().  In a handler the
 * reserve still guarantees nnom buffers; no kmalloc or kfree is made
 * there; excess buffers freed there are given back by the next free in
 * thread context; and a handler interrupting the same pipe on the same
 * thread, at any point, never deadlocks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slabkit/control.h>
#include <slabkit/mpipe.h>
#include <slabkit/stats.h>

#include "harness.h"
#include "internal.h"

static struct malloc_pipe *sig_pipe;
static int sig_want;       /* buffers the handler allocates */
static void *sig_bufs[16]; /* the handler frees these, if set */
static int sig_nfree;
static volatile sig_atomic_t sig_runs, sig_fails, sig_zero_bad;

struct counts {
	int ctor;
	int dtor;
};

static void
ctor(void *buf, void *priv)
{
	(void)buf;
	((struct counts *)priv)->ctor++;
}

static void
dtor(void *buf, void *priv)
{
	(void)buf;
	((struct counts *)priv)->dtor++;
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

/* Allocates sig_want buffers, checks them, frees them; then frees
 * sig_bufs[0..sig_nfree). */
static void
handler(int sig)
{
	void *got[8];
	int saved = errno;

	(void)sig;
	slabkit_intr_enter();
	sig_runs++;
	for (int i = 0; i < sig_want; i++) {
		got[i] = mpipe_alloc_nowait(sig_pipe);
		if (got[i] == NULL)
			sig_fails++;
		else if (*(volatile unsigned char *)got[i] != 0)
			sig_zero_bad++;
	}
	for (int i = 0; i < sig_want; i++)
		mpipe_free(sig_pipe, got[i]);
	for (int i = 0; i < sig_nfree; i++)
		mpipe_free(sig_pipe, sig_bufs[i]);
	sig_nfree = 0;
	slabkit_intr_exit();
	errno = saved;
}

static void
install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

/* The reserve serves a handler without kmalloc. */
TEST(handler_allocates_from_reserve)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	uint64_t calls;
	void *a, *b;

	kmalloc_create(&t, "mp_sig_res");
	mpipe_init(&mp, t, 128, 4, 8, MPF_INT, NULL, NULL, NULL);
	a = mpipe_alloc_nowait(&mp);
	b = mpipe_alloc_nowait(&mp);
	sig_pipe = &mp;
	sig_want = 2;
	sig_runs = sig_fails = sig_zero_bad = 0;
	calls = type_calls(t);
	raise(SIGUSR1);
	CHECK_EQ(sig_runs, 1);
	CHECK_EQ(sig_fails, 0);
	CHECK_EQ(sig_zero_bad, 0);
	CHECK_EQ(type_calls(t), calls);
	CHECK_EQ(mp.free_count, 2);
	mpipe_free(&mp, a);
	mpipe_free(&mp, b);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* In interrupt context an empty reserve fails instead of calling
 * kmalloc, even below nmax; thread context still overflows. */
TEST(handler_never_kmallocs)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	uint64_t calls;
	void *b[5];

	kmalloc_create(&t, "mp_sig_nok");
	mpipe_init(&mp, t, 128, 4, 8, MPF_INT, NULL, NULL, NULL);
	for (int i = 0; i < 4; i++)
		b[i] = mpipe_alloc_nowait(&mp);
	sig_pipe = &mp;
	sig_want = 1;
	sig_runs = sig_fails = 0;
	calls = type_calls(t);
	raise(SIGUSR1);
	CHECK_EQ(sig_runs, 1);
	CHECK_EQ(sig_fails, 1);
	CHECK_EQ(type_calls(t), calls);
	CHECK_EQ(mp.total_count, 4);
	b[4] = mpipe_alloc_nowait(&mp); /* thread context: kmalloc */
	CHECK(b[4] != NULL);
	CHECK_EQ(type_calls(t), calls + 1);
	for (int i = 0; i < 5; i++)
		mpipe_free(&mp, b[i]);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Excess buffers freed in a handler are cached (no kfree there) and
 * given back by the next free in thread context. */
TEST(handler_free_parks_excess)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c = {0, 0};
	size_t inuse;
	void *x;

	kmalloc_create(&t, "mp_sig_park");
	mpipe_init(&mp, t, 96, 2, 6, MPF_INT, ctor, dtor, &c);
	for (int i = 0; i < 5; i++)
		sig_bufs[i] = mpipe_alloc_nowait(&mp);
	CHECK_EQ(mp.total_count, 5);
	CHECK(mp.ary_cap >= 5);
	CHECK_EQ(c.ctor, 5);
	inuse = type_inuse(t);
	sig_pipe = &mp;
	sig_want = 0;
	sig_nfree = 5;
	raise(SIGUSR1);
	CHECK_EQ(mp.free_count, 5);
	CHECK_EQ(mp.total_count, 5);
	CHECK_EQ(c.dtor, 0);
	CHECK_EQ(type_inuse(t), inuse);
	x = mpipe_alloc_nowait(&mp);
	mpipe_free(&mp, x);
	CHECK_EQ(mp.free_count, 2);
	CHECK_EQ(mp.total_count, 2);
	CHECK_EQ(c.dtor, 3);
	CHECK_EQ(type_inuse(t), inuse - 3);
	mpipe_done(&mp);
	CHECK_EQ(c.dtor, 5);
	kmalloc_destroy(&t);
}

struct sender {
	pthread_t target;
	atomic_int stop;
	long sent;
};

static void *
sender_main(void *arg)
{
	struct sender *s = arg;
	struct timespec ts = {0, 20000};

	while (!atomic_load(&s->stop)) {
		pthread_kill(s->target, SIGUSR1);
		s->sent++;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Signals land anywhere in the main thread's own calls on the same pipe
 * (inside the lock, in kmalloc, in the array growth): no deadlock, the
 * reserve never fails the handler, and the counts balance. */
TEST(handler_races_thread_calls)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct counts c = {0, 0};
	struct sender s;
	pthread_t th;
	void *held[16]; /* 14 used; room silences -Warray-bounds */
	int nheld = 0;
	long iters = sk_t_scale(200000);
	uint64_t seed = 42;

	alarm(60); /* a deadlock kills the test */
	kmalloc_create(&t, "mp_sig_race");
	mpipe_init(&mp, t, 64, 8, 16, MPF_INT, ctor, dtor, &c);
	sig_pipe = &mp;
	sig_nfree = 0;
	sig_runs = sig_fails = sig_zero_bad = 0;
	s.target = pthread_self();
	atomic_store(&s.stop, 0);
	s.sent = 0;
	pthread_create(&th, NULL, sender_main, &s);
	/* Phase A: main holds at most 4 of the 8 reserve buffers, the
	 * handler takes 3: it must never fail. */
	sig_want = 3;
	for (long i = 0; i < iters; i++) {
		if (nheld < 4 && (nheld == 0 || sk_t_rand(&seed) & 1)) {
			held[nheld] = mpipe_alloc_nowait(&mp);
			CHECK(held[nheld] != NULL);
			nheld++;
		} else {
			mpipe_free(&mp, held[--nheld]);
		}
	}
	while (nheld > 0)
		mpipe_free(&mp, held[--nheld]);
	CHECK_EQ(sig_fails, 0);
	CHECK_EQ(sig_zero_bad, 0);
	CHECK(sig_runs > 10 || sk_t_under_valgrind());
	/* Phase B: main overflows up to 14 buffers (kmalloc, growth of the
	 * array, kfree, trims) while the handler takes and frees one. */
	sig_want = 1;
	for (long i = 0; i < iters; i++) {
		if (nheld < 14 && (nheld == 0 || sk_t_rand(&seed) % 3 != 0)) {
			/* at most 13 + 1 (handler) exist: below nmax */
			held[nheld] = mpipe_alloc_nowait(&mp);
			CHECK(held[nheld] != NULL);
			nheld++;
		} else {
			mpipe_free(&mp, held[--nheld]);
		}
		if (nheld == 14)
			while (nheld > 0)
				mpipe_free(&mp, held[--nheld]);
	}
	while (nheld > 0)
		mpipe_free(&mp, held[--nheld]);
	atomic_store(&s.stop, 1);
	pthread_join(th, NULL);
	alarm(0);
	/* a last thread-context free trims what handlers left */
	mpipe_free(&mp, mpipe_alloc_nowait(&mp));
	CHECK_EQ(mp.free_count, mp.total_count);
	CHECK(mp.total_count >= 8 && mp.total_count <= 16);
	CHECK_EQ(c.ctor - c.dtor, mp.total_count);
	mpipe_done(&mp);
	CHECK_EQ(c.ctor, c.dtor);
	CHECK_EQ(type_inuse(t), 0);
	printf("  %ld signals sent, %d handled\n", s.sent, (int)sig_runs);
	kmalloc_destroy(&t);
}

int
main(void)
{
	install();
	RUN(handler_allocates_from_reserve);
	RUN(handler_never_kmallocs);
	RUN(handler_free_parks_excess);
	RUN(handler_races_thread_calls);
	return sk_t_done();
}
