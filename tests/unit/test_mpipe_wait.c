/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mpipe, sleeping and callbacks (spec 3.2, checklist rows 60, 64 and 65):
 * mpipe_alloc_waitok blocks at the limit and wakes on mpipe_free, and
 * after one failure waits only for pipe frees; mpipe_wait; the support
 * thread runs callbacks in FIFO order after frees; mpipe_done stops it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slabkit/mpipe.h>
#include <slabkit/slabkit.h>

#include "harness.h"
#include "internal.h"

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static struct malloc_pipe
snap(struct malloc_pipe *mp)
{
	struct malloc_pipe s;

	sk_mpipe_snapshot(mp, &s);
	return s;
}

/* Wait (up to 5 s) until the pipe has counted `n' sleeps. */
static bool
wait_for_waits(struct malloc_pipe *mp, uint64_t n)
{
	for (int i = 0; i < 5000; i++) {
		if (snap(mp).st_waits >= n)
			return true;
		nap_ms(1);
	}
	return false;
}

static bool
wait_for_flag(atomic_int *f, int v)
{
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(f) >= v)
			return true;
		nap_ms(1);
	}
	return false;
}

static uint64_t
type_calls(struct malloc_type *t)
{
	struct kmalloc_type_stats st;

	kmalloc_type_stats(t, &st);
	return st.calls;
}

struct waiter {
	struct malloc_pipe *mp;
	void *_Atomic got;
	atomic_int done;
};

static void *
waitok_thread(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->got, mpipe_alloc_waitok(w->mp));
	atomic_store(&w->done, 1);
	return NULL;
}

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;

	mpipe_wait(w->mp);
	atomic_store(&w->done, 1);
	return NULL;
}

/* Row 60: waitok blocks at nmax and wakes on mpipe_free. */
TEST(waitok_blocks_at_limit)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct waiter w = {&mp, NULL, 0};
	pthread_t th;
	void *a, *b;

	kmalloc_create(&t, "mp_waitok");
	mpipe_init(&mp, t, 64, 2, 2, 0, NULL, NULL, NULL);
	a = mpipe_alloc_waitok(&mp);
	b = mpipe_alloc_waitok(&mp);
	CHECK(a != NULL && b != NULL && a != b);
	pthread_create(&th, NULL, waitok_thread, &w);
	CHECK(wait_for_waits(&mp, 1));
	nap_ms(20);
	CHECK_EQ(atomic_load(&w.done), 0); /* still asleep */
	CHECK_EQ(snap(&mp).pending, 1);
	mpipe_free(&mp, b);
	pthread_join(th, NULL);
	CHECK_PTR_EQ(atomic_load(&w.got), b);
	CHECK_EQ(snap(&mp).pending, 0);
	mpipe_free(&mp, a);
	mpipe_free(&mp, b);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 60: after one failure waitok waits for pipe frees only: a wakeup
 * without a free does not make it try kmalloc again, even when kmalloc
 * would now succeed. */
TEST(waitok_no_kmalloc_retry)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct waiter w = {&mp, NULL, 0};
	pthread_t th;
	uint64_t calls;
	void *a;

	kmalloc_create(&t, "mp_mfailed");
	mpipe_init(&mp, t, 64 * 1024, 1, 4, 0, NULL, NULL, NULL);
	a = mpipe_alloc_nowait(&mp);
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, -1);
	calls = type_calls(t);
	pthread_create(&th, NULL, waitok_thread, &w);
	CHECK(wait_for_waits(&mp, 1));
	CHECK_EQ(type_calls(t), calls + 1); /* tried kmalloc once */
	slabkit_fault_clear();
	sk_mpipe_kick(&mp);                 /* a wakeup without a free */
	CHECK(wait_for_waits(&mp, 2));      /* went back to sleep */
	CHECK_EQ(type_calls(t), calls + 1); /* no kmalloc retry */
	CHECK_EQ(atomic_load(&w.done), 0);
	CHECK_EQ(snap(&mp).total_count, 1);
	mpipe_free(&mp, a);
	pthread_join(th, NULL);
	CHECK_PTR_EQ(atomic_load(&w.got), a);
	mpipe_free(&mp, a);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 60: below nmax waitok takes a new buffer from kmalloc at once. */
TEST(waitok_overflow_no_sleep)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *b[3];

	kmalloc_create(&t, "mp_waitover");
	mpipe_init(&mp, t, 64, 1, 3, 0, NULL, NULL, NULL);
	for (int i = 0; i < 3; i++)
		CHECK((b[i] = mpipe_alloc_waitok(&mp)) != NULL);
	CHECK_EQ(mp.st_waits, 0);
	CHECK_EQ(mp.total_count, 3);
	for (int i = 0; i < 3; i++)
		mpipe_free(&mp, b[i]);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Row 65: mpipe_wait returns once a buffer is cached. */
TEST(wait_returns_on_free)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct waiter w = {&mp, NULL, 0};
	pthread_t th;
	void *a;

	kmalloc_create(&t, "mp_wait");
	mpipe_init(&mp, t, 32, 1, 1, 0, NULL, NULL, NULL);
	mpipe_wait(&mp); /* a buffer is cached: returns at once */
	a = mpipe_alloc_nowait(&mp);
	pthread_create(&th, NULL, wait_thread, &w);
	CHECK(wait_for_waits(&mp, 1));
	nap_ms(20);
	CHECK_EQ(atomic_load(&w.done), 0);
	CHECK(snap(&mp).mpflags & MPF_QUEUEWAIT);
	mpipe_free(&mp, a);
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&w.done), 1);
	CHECK_EQ(mp.free_count, 1); /* wait takes nothing */
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

/* Callback bookkeeping. */
static pthread_mutex_t cb_mtx = PTHREAD_MUTEX_INITIALIZER;
static int cb_order[16];
static atomic_int cb_count;
static pthread_t cb_thread;
static struct malloc_pipe *cb_pipe;
static void *_Atomic cb_got;

static void
cb_record(void *arg1, void *arg2)
{
	pthread_mutex_lock(&cb_mtx);
	cb_order[atomic_load(&cb_count) % 16] =
	    (int)(intptr_t)arg1 * 100 + (int)(intptr_t)arg2;
	cb_thread = pthread_self();
	pthread_mutex_unlock(&cb_mtx);
	atomic_fetch_add(&cb_count, 1);
}

/* Retries the allocation, as a callback is meant to. */
static void
cb_retry(void *arg1, void *arg2)
{
	atomic_store(&cb_got, mpipe_alloc_nowait(cb_pipe));
	cb_record(arg1, arg2);
}

static int
count_threads(const char *prefix)
{
	char path[320], comm[32];
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(
		    path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL &&
		    strncmp(comm, prefix, strlen(prefix)) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Row 64: failed mpipe_alloc_callback queues func(arg1, arg2); the
 * support thread runs the queue in FIFO order after a free. */
TEST(callbacks_fifo_after_free)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *a;

	atomic_store(&cb_count, 0);
	kmalloc_create(&t, "cbfifo");
	CHECK_EQ(count_threads("mpipe_cbfifo"), 0);
	mpipe_init(&mp, t, 32, 1, 1, MPF_CALLBACK, NULL, NULL, NULL);
	CHECK_EQ(count_threads("mpipe_cbfifo"), 1);
	a = mpipe_alloc_callback(&mp, cb_record, (void *)1, (void *)0);
	CHECK(a != NULL);
	for (int i = 1; i <= 4; i++)
		CHECK(mpipe_alloc_callback(&mp, cb_record, (void *)2,
		          (void *)(intptr_t)i) == NULL);
	nap_ms(30);
	CHECK_EQ(atomic_load(&cb_count), 0); /* nothing freed yet */
	CHECK_EQ(snap(&mp).st_fails, 4);
	mpipe_free(&mp, a);
	CHECK(wait_for_flag(&cb_count, 4));
	pthread_mutex_lock(&cb_mtx);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(cb_order[i], 200 + i + 1);
	CHECK(!pthread_equal(cb_thread, pthread_self()));
	pthread_mutex_unlock(&cb_mtx);
	CHECK_EQ(snap(&mp).st_callbacks, 4);
	/* A non-NULL return means the callback is never called. */
	a = mpipe_alloc_callback(&mp, cb_record, (void *)9, (void *)9);
	CHECK(a != NULL);
	mpipe_free(&mp, a);
	nap_ms(30);
	CHECK_EQ(atomic_load(&cb_count), 4);
	mpipe_done(&mp);
	/* thread stopped: joined, so gone from /proc/self/task at once on
	 * Linux; under qemu-user a moment later (up to a second here) */
	for (int i = 0; i < 100 && count_threads("mpipe_cbfifo") != 0; i++)
		nap_ms(10);
	CHECK_EQ(count_threads("mpipe_cbfifo"), 0);
	kmalloc_destroy(&t);
}

/* Row 64: callbacks run only while buffers are cached: one that takes
 * the last buffer holds the rest of the queue back until the next free. */
TEST(callbacks_wait_for_buffers)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	void *a, *got;

	atomic_store(&cb_count, 0);
	atomic_store(&cb_got, NULL);
	kmalloc_create(&t, "cbretry");
	mpipe_init(&mp, t, 32, 1, 0, MPF_CALLBACK, NULL, NULL, NULL);
	cb_pipe = &mp;
	a = mpipe_alloc_nowait(&mp);
	CHECK(
	    mpipe_alloc_callback(&mp, cb_retry, (void *)1, (void *)1) == NULL);
	CHECK(
	    mpipe_alloc_callback(&mp, cb_record, (void *)2, (void *)2) == NULL);
	mpipe_free(&mp, a);
	CHECK(wait_for_flag(&cb_count, 1));
	got = atomic_load(&cb_got);
	CHECK_PTR_EQ(got, a); /* the retry got the freed buffer */
	nap_ms(30);
	CHECK_EQ(atomic_load(&cb_count), 1); /* second one still queued */
	mpipe_free(&mp, got);
	CHECK(wait_for_flag(&cb_count, 2));
	pthread_mutex_lock(&cb_mtx);
	CHECK_EQ(cb_order[0], 101);
	CHECK_EQ(cb_order[1], 202);
	pthread_mutex_unlock(&cb_mtx);
	mpipe_done(&mp);
	kmalloc_destroy(&t);
}

static atomic_int slow_started;

static void
cb_slow(void *arg1, void *arg2)
{
	atomic_store(&slow_started, 1);
	/* Finish only once mpipe_done has begun. */
	for (int i = 0; i < 5000 && !(snap(cb_pipe).mpflags & MPF_EXITING); i++)
		nap_ms(1);
	cb_record(arg1, arg2);
}

/* Row 65: done stops the support thread cleanly even with callbacks
 * queued: the one running finishes, the others never run and their
 * records are freed. */
TEST(done_with_queued_callbacks)
{
	struct malloc_type *t = NULL;
	struct malloc_pipe mp;
	struct kmalloc_type_stats st;
	void *a;

	atomic_store(&cb_count, 0);
	atomic_store(&slow_started, 0);
	kmalloc_create(&t, "cbdone");
	mpipe_init(&mp, t, 32, 1, 1, MPF_CALLBACK, NULL, NULL, NULL);
	cb_pipe = &mp;
	a = mpipe_alloc_nowait(&mp);
	CHECK(mpipe_alloc_callback(&mp, cb_slow, (void *)1, NULL) == NULL);
	CHECK(mpipe_alloc_callback(&mp, cb_record, (void *)2, NULL) == NULL);
	CHECK(mpipe_alloc_callback(&mp, cb_record, (void *)3, NULL) == NULL);
	mpipe_free(&mp, a);
	CHECK(wait_for_flag(&slow_started, 1));
	mpipe_done(&mp);                     /* while cb_slow sleeps */
	CHECK_EQ(atomic_load(&cb_count), 1); /* cb_slow finished */
	nap_ms(20);
	CHECK_EQ(atomic_load(&cb_count), 1); /* the others never ran */
	CHECK(mp.queue == NULL);
	CHECK(mp.thread == NULL);
	CHECK_EQ(count_threads("mpipe_cbdone"), 0);
	kmalloc_type_stats(t, &st);
	CHECK_EQ(st.inuse, 0);
	kmalloc_destroy(&t);
}

static void
cb_done(void *arg1, void *arg2)
{
	(void)arg2;
	mpipe_done(arg1);
}

/* mpipe_done from the pipe's own support thread would join itself. */
static void
done_from_callback(void *arg)
{
	struct malloc_type *t = NULL;
	static struct malloc_pipe mp;
	void *a;

	(void)arg;
	kmalloc_create(&t, "cbself");
	mpipe_init(&mp, t, 32, 1, 1, MPF_CALLBACK, NULL, NULL, NULL);
	a = mpipe_alloc_nowait(&mp);
	(void)mpipe_alloc_callback(&mp, cb_done, &mp, NULL);
	mpipe_free(&mp, a);
	nap_ms(2000);
}

TEST(done_from_own_thread_panics)
{
	CHECK_ABORTS(done_from_callback, NULL,
	    "slabkit: mpipe_done: called from the support thread of pipe "
	    "cbself");
}

int
main(void)
{
	RUN(waitok_blocks_at_limit);
	RUN(waitok_no_kmalloc_retry);
	RUN(waitok_overflow_no_sleep);
	RUN(wait_returns_on_free);
	RUN(callbacks_fifo_after_free);
	RUN(callbacks_wait_for_buffers);
	RUN(done_with_queued_callbacks);
	RUN(done_from_own_thread_panics);
	return sk_t_done();
}
