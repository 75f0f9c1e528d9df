/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Re-entry of the allocator's mutexes (struct sk_mutex, src/internal.h):
 * a signal handler that allocates after interrupting an allocation of
 * its own thread would wait for a lock its thread holds; slabkit aborts
 * instead, naming the lock.  Each case takes a lock through the internal
 * API (or holds it in a callback run under it), raises a signal whose
 * handler allocates, and expects the abort in a forked child; an alarm
 * turns a deadlock into a failure rather than a hung test.  The other
 * cases check that nothing else aborts: another thread waits as usual,
 * and the fork handlers leave the locks usable in parent and child.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabkit/kmalloc.h>

#include "harness.h"
#include "internal.h"
#include "os/pageheap.h"

#define MSG                                                                    \
	"slabkit: kmalloc: re-entered from a signal handler while this "       \
	"thread holds the "

static struct sk_mutex test_mu = SK_MUTEX_INITIALIZER("test");

/* In the child: a deadlock ends in SIGALRM, not in a hung test. */
static void
child_setup(void (*handler)(int))
{
	struct sigaction sa;

	alarm(10);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigaction(SIGUSR1, &sa, NULL);
}

static void
relock(void *arg)
{
	(void)arg;
	alarm(10);
	sk_mutex_lock(&test_mu);
	sk_mutex_lock(&test_mu);
}

TEST(relock_by_the_holder_aborts)
{
	CHECK_ABORTS(relock, NULL,
	    "re-entered from a signal handler while this thread holds the "
	    "test lock (allocating in a signal handler that interrupted an "
	    "allocation is not supported)");
}

/* A large block from a handler: the page-run heap serves it, except in
 * hardened and track modes, where large blocks are mapped alone and
 * never touch the heap; there the handler asks the heap itself. */
static void
large_handler(int sig)
{
	(void)sig;
	if (sk_opt.hardened || sk_opt.track) {
		bool z;
		int why;

		sk_ph_alloc(256, 0, &z, &why);
	} else {
		kfree(kmalloc(1 << 20, M_TEMP, M_WAITOK), M_TEMP);
	}
}

static void
heap_reentered(void *arg)
{
	(void)arg;
	child_setup(large_handler);
	sk_ph_lock();
	raise(SIGUSR1);
	sk_ph_unlock();
}

TEST(large_block_in_handler_under_heap_lock_aborts)
{
	CHECK_ABORTS(heap_reentered, NULL, MSG "page-run heap lock");
}

/* A one-time set-up (sk_once: hardened mode's secret, its fault handler,
 * its tables) interrupted by a handler that needs the same set-up: with
 * pthread_once the thread waited for itself for ever (signal-alloc under
 * SLABKIT_OPTIONS=hardened hung 4 runs in 200 when the first SIGALRM came
 * during the first large block's fault-handler set-up). */
static struct sk_once test_once = SK_ONCE_INITIALIZER("test set-up");

static void
once_nothing(void)
{
}

static void
once_handler(int sig)
{
	(void)sig;
	sk_once(&test_once, once_nothing);
}

static void
once_raising(void)
{
	raise(SIGUSR1);
}

static void
once_reentered(void *arg)
{
	(void)arg;
	child_setup(once_handler);
	sk_once(&test_once, once_raising);
}

TEST(once_in_handler_during_the_set_up_aborts)
{
	CHECK_ABORTS(once_reentered, NULL, MSG "test set-up lock");
}

/* Done once, a set-up is a load, also in a handler. */
TEST(once_done_is_not_a_reentry)
{
	static struct sk_once o = SK_ONCE_INITIALIZER("done set-up");

	sk_once(&o, once_nothing);
	sk_once(&o, once_nothing);
	CHECK(__atomic_load_n(&o.done, __ATOMIC_ACQUIRE));
}

/* A new malloc type from a handler registers under the types lock. */
static void
type_handler(int sig)
{
	struct malloc_type *t = NULL;

	(void)sig;
	kmalloc_create(&t, "reentry");
}

static void
types_reentered(void *arg)
{
	(void)arg;
	child_setup(type_handler);
	sk_types_lock();
	raise(SIGUSR1);
	sk_types_unlock();
}

TEST(new_type_in_handler_under_types_lock_aborts)
{
	CHECK_ABORTS(types_reentered, NULL, MSG "malloc types lock");
}

/* A thread's first allocation makes its shard under the shard list lock:
 * a handler interrupting the walk of that list, on a thread that has not
 * allocated yet, needs the lock for its own shard. */
static void
small_handler(int sig)
{
	(void)sig;
	kfree(kmalloc(32, M_TEMP, M_WAITOK), M_TEMP);
}

static void
raise_once(struct sk_shard *sh, void *arg)
{
	int *done = arg;

	(void)sh;
	if (!*done) {
		*done = 1;
		raise(SIGUSR1);
	}
}

static void *
fresh_thread(void *arg)
{
	int done = 0;

	(void)arg;
	sk_shard_foreach(raise_once, &done);
	return NULL;
}

static void
shards_reentered(void *arg)
{
	pthread_t t;

	/* with shards per CPU the handler's kmalloc needs no shard of its
	 * thread: see the next test */
	slabkit_set_option("shards", "thread");
	(void)arg;
	child_setup(small_handler);
	pthread_create(&t, NULL, fresh_thread, NULL);
	pthread_join(t, NULL);
}

TEST(first_allocation_in_handler_under_shard_lock_aborts)
{
	CHECK_ABORTS(shards_reentered, NULL, MSG "shard list lock");
}

/* With shards per CPU the same handler allocates from its CPU's shard
 * and the walk goes on. */
TEST(first_allocation_in_handler_under_shard_lock_per_cpu)
{
	struct sigaction sa;
	pthread_t t;
	char mode[16] = "";

	slabkit_set_option("shards", "cpu"); /* now, not at a second thread */
	slabkit_get_option("shards", mode, sizeof(mode));
	if (strcmp(mode, "cpu") != 0) {
		printf(
		    "# shards per thread here (%s): nothing to check\n", mode);
		CHECK(strcmp(mode, "thread") == 0);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = small_handler;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	CHECK_EQ(pthread_create(&t, NULL, fresh_thread, NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	signal(SIGUSR1, SIG_DFL);
}

/* Another thread asking for a held lock waits for it, as always. */
static int waited;

static void *
waiter(void *arg)
{
	(void)arg;
	sk_mutex_lock(&test_mu);
	waited = 1;
	sk_mutex_unlock(&test_mu);
	return NULL;
}

TEST(another_thread_waits)
{
	pthread_t t;

	sk_mutex_lock(&test_mu);
	CHECK(pthread_create(&t, NULL, waiter, NULL) == 0);
	usleep(50 * 1000);
	CHECK_EQ(SK_LOAD(&waited), 0);
	sk_mutex_unlock(&test_mu);
	pthread_join(t, NULL);
	CHECK_EQ(waited, 1);
	/* and the holder takes it again after unlocking */
	sk_mutex_lock(&test_mu);
	sk_mutex_unlock(&test_mu);
}

/* The fork handlers hold every lock across fork and release them on both
 * sides: neither side may find a lock still marked as its own. */
static int
large_round(void)
{
	void *p = kmalloc(1 << 20, M_TEMP, M_WAITOK);
	struct malloc_type *t = NULL;

	if (p == NULL)
		return 1;
	memset(p, 1, 4096);
	kfree(p, M_TEMP);
	kmalloc_create(&t, "after fork");
	kmalloc_destroy(&t);
	sk_ph_lock();
	sk_ph_unlock();
	return 0;
}

TEST(locks_usable_after_fork)
{
	int status = -1;
	pid_t pid;

	CHECK_EQ(large_round(), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(10);
		_exit(large_round());
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(large_round(), 0);
}

int
main(void)
{
	kfree(kmalloc(16, M_TEMP, M_WAITOK), M_TEMP);
	RUN(relock_by_the_holder_aborts);
	RUN(large_block_in_handler_under_heap_lock_aborts);
	RUN(new_type_in_handler_under_types_lock_aborts);
	RUN(once_in_handler_during_the_set_up_aborts);
	RUN(once_done_is_not_a_reentry);
	RUN(first_allocation_in_handler_under_shard_lock_aborts);
	RUN(first_allocation_in_handler_under_shard_lock_per_cpu);
	RUN(another_thread_waits);
	RUN(locks_usable_after_fork);
	return sk_t_done();
}
