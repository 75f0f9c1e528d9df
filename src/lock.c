/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The allocator's own mutexes (struct sk_mutex in internal.h): the shard
 * list, the page-run heap, the zone arena and the malloc types.
 *
 * Model.  The lock word holds the id of the thread that holds the lock
 * (0 when free) and a bit that says someone sleeps on it (the futex
 * mutex of Drepper's "Futexes Are Tricky", with the owner in the word).
 * Taking the lock is one compare-and-swap from 0 to the caller's id,
 * releasing it one exchange with 0 (and a wake when the bit was set).
 *
 * Re-entry.  Because the id is stored by the very instruction that takes
 * the lock and cleared by the one that releases it, a thread that finds
 * its own id in the word holds the lock, always: it was interrupted
 * inside a critical section by a signal handler that now allocates (or a
 * hook called under the lock allocates).  Waiting would never end, so it
 * aborts with a message naming the lock, like glibc's abort on a
 * re-entered malloc, instead of hanging.
 *
 * Contention.  A thread that finds the lock taken first spins a little
 * (SPIN_TRIES reads with a pause between, a few microseconds) when the
 * process may run on more than one CPU: the allocator's critical
 * sections are short, so the holder usually lets go while it runs on
 * another CPU, and a sleep and a wake cost two system calls and two
 * context switches.  wl-mstress (8 threads on 2 CPUs, large blocks from
 * the page-run heap's one lock) made 7,069 futex calls and 883
 * sched_yields in a run without it, 42 and 227 with it, and ran 5%
 * faster.  Only then does it sleep on the futex.  A spinner may take the
 * lock ahead of a thread just woken (which then sleeps again): throughput
 * over order, as in glibc's adaptive mutexes.
 *
 * Ids are handed out from a counter on a thread's first lock, 31 bits,
 * never 0; a forked child's thread keeps its id and new threads of the
 * child continue the parent's counter, so ids stay unique in each
 * process (until 2^31 threads have taken an allocator lock).  Errno is
 * preserved: malloc must not change it when it succeeds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

__thread uint32_t sk_tls_lockid;
static uint32_t lock_next_id; /* atomic */

uint32_t
sk_mutex_id_slow(void)
{
	uint32_t id;

	do
		id = __atomic_add_fetch(&lock_next_id, 1, __ATOMIC_RELAXED) &
		     SK_MUTEX_ID;
	while (id == 0);
	sk_tls_lockid = id;
	return id;
}

static void
futex_wait(uint32_t *word, uint32_t val, long ms)
{
	struct timespec ts, *tp = NULL;

	if (ms >= 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		tp = &ts;
	}
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void
futex_wake(uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/*
 * A thread found its own id in a lock's word (it holds the lock it asks
 * for) or is inside the sk_once set-up it asks for.
 * The drop-in names malloc, the library kmalloc: whichever call the
 * handler made, that allocator was re-entered.
 */
static _Noreturn void
reentered(const char *name)
{
	sk_panic(&sk_malloc_dropin != NULL ? "malloc" : "kmalloc",
	    "re-entered from a signal handler while this thread holds the "
	    "%s lock (allocating in a signal handler that interrupted an "
	    "allocation is not supported)",
	    name);
}

/* The sk_once set-ups this thread is inside, innermost first. */
struct once_frame {
	struct sk_once *o;
	struct once_frame *up;
};
static __thread struct once_frame *once_frames;

void
sk_once_slow(struct sk_once *o, void (*fn)(void))
{
	struct once_frame me = {o, once_frames};

	for (struct once_frame *f = once_frames; f != NULL; f = f->up)
		if (f->o == o)
			reentered(o->name);
	once_frames = &me;
	pthread_once(&o->once, fn);
	__atomic_store_n(&o->done, true, __ATOMIC_RELEASE);
	once_frames = me.up;
}

#define SPIN_TRIES 200

/* SPIN_TRIES, or 0 when this process runs on one CPU (the holder cannot
 * let go while we spin); found once. */
static int
spin_tries(void)
{
	static int tries = -1; /* atomic */
	int t = __atomic_load_n(&tries, __ATOMIC_RELAXED);

	if (SK_UNLIKELY(t < 0)) {
		t = sk_os_ncpus() > 1 ? SPIN_TRIES : 0;
		__atomic_store_n(&tries, t, __ATOMIC_RELAXED);
	}
	return t;
}

void
sk_mutex_lock_slow(struct sk_mutex *m, uint32_t id)
{
	int saved = errno;

	for (int n = spin_tries(); n > 0; n--) {
		uint32_t v = __atomic_load_n(&m->word, __ATOMIC_RELAXED);

		if (v == 0 && __atomic_compare_exchange_n(&m->word, &v, id,
		                  false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return; /* errno untouched */
		if ((v & SK_MUTEX_ID) == id)
			reentered(m->name);
		sk_cpu_relax();
	}
	for (;;) {
		uint32_t v = __atomic_load_n(&m->word, __ATOMIC_RELAXED);

		if (v == 0) {
			/* taken with the bit set: others may still sleep */
			if (__atomic_compare_exchange_n(&m->word, &v,
			        id | SK_MUTEX_WAITERS, false, __ATOMIC_ACQUIRE,
			        __ATOMIC_RELAXED))
				break;
			continue;
		}
		if ((v & SK_MUTEX_ID) == id)
			reentered(m->name);
		if (!(v & SK_MUTEX_WAITERS)) {
			if (!__atomic_compare_exchange_n(&m->word, &v,
			        v | SK_MUTEX_WAITERS, false, __ATOMIC_RELAXED,
			        __ATOMIC_RELAXED))
				continue;
			v |= SK_MUTEX_WAITERS;
		}
		futex_wait(&m->word, v, -1);
	}
	errno = saved;
}

void
sk_mutex_wake(struct sk_mutex *m)
{
	int saved = errno;

	futex_wake(&m->word, 1);
	errno = saved;
}

void
sk_mutex_wait(struct sk_mutex *m, uint32_t *seq, long ms)
{
	uint32_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
	int saved = errno;

	sk_mutex_unlock(m);
	futex_wait(seq, s, ms);
	sk_mutex_lock(m);
	errno = saved;
}

void
sk_mutex_signal(uint32_t *seq)
{
	int saved = errno;

	__atomic_add_fetch(seq, 1, __ATOMIC_RELEASE);
	futex_wake(seq, INT_MAX);
	errno = saved;
}
