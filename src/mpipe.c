/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mpipe: DragonFly BSD's malloc pipelines (kern_mpipe.c, 2020) on kmalloc.
 *
 * Model.  A pipe owns a reserve: an array of `ary_count' (nnom) buffers
 * made by kmalloc at mpipe_init and never given back before mpipe_done.
 * The array is a LIFO stack; `free_count' buffers sit in it, the others
 * are held by callers.  Every one of the nnom reserve buffers is either in
 * the array or held, so nnom concurrent allocations always succeed without
 * calling kmalloc; that is the whole point of a pipe (spec 3.2, checklist
 * 58).  When the array is empty the pipe makes an overflow buffer with
 * kmalloc(M_NOWAIT) while fewer than `max_count' (nmax) exist; a buffer
 * freed while the array already holds nnom is deconstructed and kfree'd.
 * So at most nnom buffers are ever cached, and total_count never exceeds
 * nmax.  construct runs once per buffer kmalloc makes, never on reuse;
 * deconstruct once per buffer given back to kmalloc (overflow free or
 * mpipe_done).  Buffers are zeroed when made (M_ZERO) and when cached
 * again, except that MPF_CACHEDATA keeps the old contents on reuse and
 * MPF_NOZERO never zeroes.
 *
 * Locking.  The kernel serialises a pipe with an LWKT token; here `token'
 * is a three-state futex lock word (0 free, 1 held, 2 held with sleepers)
 * that takes one CAS and one exchange when uncontended.  A futex rather
 * than a pthread mutex because mpipe_free must be able to wake sleepers
 * from a signal handler, and futex(2) and atomics are async-signal-safe
 * where pthread mutexes and condition variables are not.  Sleepers wait on
 * sequence words: mpipe_alloc_waitok on `wseq', mpipe_wait and the support
 * thread on `qseq'.  A sleeper reads the word under the lock and sleeps
 * only while it is unchanged, so a wakeup between its unlock and its sleep
 * is never lost.  Sleepers are woken with the lock held, so once
 * mpipe_done (which takes the lock) has returned, no wakeup can still
 * touch the pipe's memory (only the lock's own hand-off follows a
 * release, as in any futex mutex).  kmalloc, kfree, construct,
 * deconstruct and callbacks run with the lock dropped: a slot is claimed
 * (total_count++) before an overflow kmalloc and given back if it fails.
 *
 * Promises.  Buffers have kmalloc's alignment for `bytes'.  Every function
 * may be called from any thread.  mpipe_alloc_nowait and mpipe_free never
 * sleep except for the short wait on the lock; mpipe_init,
 * mpipe_alloc_waitok, mpipe_wait, mpipe_alloc_callback and mpipe_done may.
 *
 * Signals (the kernel's MPF_INT, interrupt context).  A pipe made with
 * MPF_INT may be used from a signal handler that brackets its calls with
 * slabkit_intr_enter()/slabkit_intr_exit(): there mpipe_alloc_nowait and
 * mpipe_free are async-signal-safe.  Two things make them so, both paid
 * only by MPF_INT pipes.  (1) Every critical section of an MPF_INT pipe
 * runs with all signals blocked, so a handler never finds its own thread
 * holding the lock (it can only wait, briefly, for another thread).  (2)
 * In interrupt context the pipe never calls kmalloc or kfree, which are
 * not reentrant on the interrupted thread: an allocation is served from
 * the array or fails, and a free always goes into the array, which for
 * MPF_INT pipes is kept at least as large as the number of buffers in
 * existence (grown, in thread context, when an overflow buffer is made).
 * Buffers cached beyond nnom that way are given back to kmalloc by the
 * next mpipe_free in thread context.  The nnom guarantee therefore holds
 * inside signal handlers too.  Pipes without MPF_INT pay nothing and are
 * not async-signal-safe.
 *
 * Callbacks.  With MPF_CALLBACK, mpipe_init starts a support thread
 * ("mpipe_<type>", all signals blocked).  mpipe_alloc_callback queues
 * {func, arg1, arg2} when it cannot hand out a buffer; the thread runs
 * queued callbacks in FIFO order while the array holds buffers, without
 * the lock, and frees each record.  mpipe_done stops and joins it.
 *
 * fork().  As with any lock, a pipe whose lock another thread held at the
 * fork stays locked in the child, and support threads do not exist there:
 * a child should not use its parent's pipes.
 *
 * Statistics.  Live pipes are kept in a registry (added by mpipe_init,
 * removed by mpipe_done) that sk_mpipe_stats_print walks for
 * slabkit_stats_print.
 *
 * Deviations from DragonFly (docs/deviations.md): a futex lock instead of
 * a token, with signals blocked for MPF_INT pipes; kmalloc, construct and
 * deconstruct run outside the lock; the MPF_INT interrupt-context rules
 * above; mpipe_alloc_callback panics instead of queueing a callback that
 * no thread would run on a pipe without MPF_CALLBACK; mpipe_done frees
 * callback records that never ran (the kernel leaks them) and the support
 * thread starts no callback once mpipe_done has begun; mpipe_init panics
 * on a pipe that is still live; when an overflow kmalloc fails but a
 * buffer was freed into the array while the lock was dropped for it, that
 * buffer is returned instead of NULL (the kernel holds its token across
 * the kmalloc, so nothing can be freed meanwhile).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <slabkit/mpipe.h>

#include "internal.h"
#include "track.h"

#define MPIPE_MAGIC     0x6d706970u /* "mpip" */
#define MPIPE_UNLIMITED 0x7FFF0000  /* nmax < 0 (spec 3.2) */

static MALLOC_DEFINE(M_MPIPEARY, "MPipe Array", "Auxiliary MPIPE structure");

struct mpipe_callback {
	struct mpipe_callback *next;
	void (*func)(void *arg1, void *arg2);
	void *arg1;
	void *arg2;
};

struct mpipe_thread {
	pthread_t tid;
};

/* The registry of live pipes, in creation order. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct malloc_pipe *reg_head;
static struct malloc_pipe **reg_tailp = &reg_head;

/* ------------------------------------------------------------------ */
/* Futex lock and sleep (belongs in the sync layer once there is one) */

static void
mp_futex_wait(unsigned int *word, unsigned int val)
{
	int saved = errno;

	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
	errno = saved;
}

static void
mp_futex_wake(unsigned int *word)
{
	int saved = errno;

	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	errno = saved;
}

/* What a critical section must undo: the signal mask of an MPF_INT pipe. */
struct mp_hold {
	sigset_t old;
	bool masked;
};

static void
mp_lock_slow(struct malloc_pipe *mp)
{
	unsigned int zero;

	for (int i = 0; i < 100; i++) {
		zero = 0;
		if (SK_LOAD(&mp->token) == 0 &&
		    __atomic_compare_exchange_n(&mp->token, &zero, 1, false,
		        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		sk_cpu_relax();
	}
	while (__atomic_exchange_n(&mp->token, 2, __ATOMIC_ACQUIRE) != 0)
		mp_futex_wait(&mp->token, 2);
}

static __attribute__((noinline)) void
mp_block_signals(struct mp_hold *h)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &h->old);
}

static __attribute__((noinline)) void
mp_restore_signals(struct mp_hold *h)
{
	pthread_sigmask(SIG_SETMASK, &h->old, NULL);
}

static inline void
mp_lock(struct malloc_pipe *mp, struct mp_hold *h)
{
	unsigned int zero = 0;

	h->masked = (SK_LOAD(&mp->mpflags) & MPF_INT) != 0;
	/* Before taking the lock: a handler must never find it held by its
	 * own thread. */
	if (SK_UNLIKELY(h->masked))
		mp_block_signals(h);
	if (SK_UNLIKELY(!__atomic_compare_exchange_n(&mp->token, &zero, 1,
	        false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)))
		mp_lock_slow(mp);
}

static inline void
mp_unlock(struct malloc_pipe *mp, struct mp_hold *h)
{
	if (SK_UNLIKELY(
	        __atomic_exchange_n(&mp->token, 0, __ATOMIC_RELEASE) == 2))
		mp_futex_wake(&mp->token);
	if (SK_UNLIKELY(h->masked))
		mp_restore_signals(h);
}

/* Sleep on *seq (read under the lock as `val'); the lock is dropped. */
static void
mp_sleep(struct malloc_pipe *mp, struct mp_hold *h, unsigned int *seq)
{
	unsigned int val = *seq;

	mp_unlock(mp, h);
	mp_futex_wait(seq, val);
	mp_lock(mp, h);
}

static inline void
mp_flag_set(struct malloc_pipe *mp, unsigned int flag)
{
	__atomic_fetch_or(&mp->mpflags, (int)flag, __ATOMIC_RELAXED);
}

static inline void
mp_flag_clear(struct malloc_pipe *mp, unsigned int flag)
{
	__atomic_fetch_and(&mp->mpflags, (int)~flag, __ATOMIC_RELAXED);
}

/* A buffer came back into the array: wake whoever waits (spec 3.2 free). */
static __attribute__((noinline)) void
mp_wakeup_slow(struct malloc_pipe *mp)
{
	if (SK_LOAD(&mp->mpflags) & MPF_QUEUEWAIT) {
		mp_flag_clear(mp, MPF_QUEUEWAIT);
		SK_STORE(&mp->qseq, mp->qseq + 1);
		mp_futex_wake(&mp->qseq);
	}
	if (mp->pending) {
		mp->pending = 0;
		SK_STORE(&mp->wseq, mp->wseq + 1);
		mp_futex_wake(&mp->wseq);
	}
}

static inline void
mp_wakeup(struct malloc_pipe *mp)
{
	if (SK_UNLIKELY((SK_LOAD(&mp->mpflags) & MPF_QUEUEWAIT) || mp->pending))
		mp_wakeup_slow(mp);
}

/* ------------------------------------------------------------------ */
/* Buffers */

static inline bool
mp_in_intr(struct malloc_pipe *mp)
{
	return (SK_LOAD(&mp->mpflags) & MPF_INT) && sk_tls_intr > 0;
}

/* Give one buffer back to kmalloc (lock not held). */
static void
mp_release(struct malloc_pipe *mp, void *buf)
{
	SK_TRACK_SHOW(buf, 0); /* it may come from the array (track.h) */
	if (mp->deconstruct != NULL)
		mp->deconstruct(buf, mp->priv);
	sk_kfree(buf, mp->type);
}

/*
 * MPF_INT: keep the array able to take every buffer in existence, so that
 * a free in interrupt context never has to kfree.  Lock held on entry and
 * on return; false when the bigger array cannot be had.
 */
static bool
mp_grow(struct malloc_pipe *mp, struct mp_hold *h)
{
	while (mp->ary_cap < mp->total_count) {
		size_t ncap = (size_t)mp->ary_cap * 2;
		void **na, **old;

		if (ncap < (size_t)mp->total_count)
			ncap = (size_t)mp->total_count;
		mp_unlock(mp, h);
		na = sk_kmalloc(ncap * sizeof(void *), M_MPIPEARY, M_NOWAIT);
		mp_lock(mp, h);
		if (na == NULL)
			return false;
		old = na;
		if (ncap > (size_t)mp->ary_cap) {
			memcpy(na, mp->array,
			    (size_t)mp->free_count * sizeof(void *));
			old = mp->array;
			mp->array = na;
			mp->ary_cap = (int)ncap;
		}
		mp_unlock(mp, h);
		sk_kfree(old, M_MPIPEARY);
		mp_lock(mp, h);
	}
	return true;
}

/*
 * The kernel's _mpipe_alloc_locked (spec 3.2): a cached buffer (LIFO), else
 * NULL at nmax or after a failure, else a new one from kmalloc(M_NOWAIT).
 * In interrupt context (MPF_INT) only the array is used.  Lock held on
 * entry and on return; it is dropped around kmalloc and construct.
 */
static void *
mp_take(struct malloc_pipe *mp, struct mp_hold *h, bool mfailed, bool intr)
{
	void *buf;

	if (SK_LIKELY(mp->free_count > 0)) {
		buf = mp->array[--mp->free_count];
		mp->array[mp->free_count] = NULL;
		mp->st_allocs++;
		return buf;
	}
	if (mp->total_count >= mp->max_count || mfailed || intr)
		return NULL;
	mp->total_count++; /* claim the slot, then drop the lock */
	mp_unlock(mp, h);
	buf = sk_kmalloc(
	    (unsigned long)mp->bytes, mp->type, M_NOWAIT | mp->mflags);
	if (buf != NULL && mp->construct != NULL)
		mp->construct(buf, mp->priv); /* new buffers only */
	mp_lock(mp, h);
	if (buf != NULL && (SK_LOAD(&mp->mpflags) & MPF_INT) &&
	    !mp_grow(mp, h)) {
		mp->total_count--;
		mp_unlock(mp, h);
		mp_release(mp, buf);
		mp_lock(mp, h);
		buf = NULL;
	}
	if (buf == NULL) {
		mp->total_count--;
		/* Sleepers that saw our claim at nmax may try again. */
		mp_wakeup(mp);
		if (mp->free_count > 0) {
			/* Freed while we were in kmalloc. */
			buf = mp->array[--mp->free_count];
			mp->array[mp->free_count] = NULL;
			mp->st_allocs++;
		}
		return buf;
	}
	mp->st_kmallocs++;
	mp->st_allocs++;
	return buf;
}

/*
 * MPF_INT, thread context: give back to kmalloc the buffers that frees in
 * interrupt context cached beyond nnom.  Lock held on entry and on return.
 */
static void
mp_trim(struct malloc_pipe *mp, struct mp_hold *h)
{
	while (mp->free_count > mp->ary_count) {
		void *buf = mp->array[--mp->free_count];

		mp->array[mp->free_count] = NULL;
		mp->total_count--;
		mp->st_kfrees++;
		mp_unlock(mp, h);
		mp_release(mp, buf);
		mp_lock(mp, h);
	}
}

/* ------------------------------------------------------------------ */
/* Registry */

static bool
reg_contains(struct malloc_pipe *mp)
{
	struct malloc_pipe *p;

	pthread_mutex_lock(&reg_lock);
	for (p = reg_head; p != NULL && p != mp; p = p->reg_next)
		;
	pthread_mutex_unlock(&reg_lock);
	return p != NULL;
}

static void
reg_insert(struct malloc_pipe *mp)
{
	pthread_mutex_lock(&reg_lock);
	mp->reg_next = NULL;
	mp->reg_prevp = reg_tailp;
	*reg_tailp = mp;
	reg_tailp = &mp->reg_next;
	pthread_mutex_unlock(&reg_lock);
}

static void
reg_remove(struct malloc_pipe *mp)
{
	pthread_mutex_lock(&reg_lock);
	if (mp->reg_prevp != NULL) {
		if (mp->reg_next != NULL)
			mp->reg_next->reg_prevp = mp->reg_prevp;
		else
			reg_tailp = mp->reg_prevp;
		*mp->reg_prevp = mp->reg_next;
		mp->reg_next = NULL;
		mp->reg_prevp = NULL;
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ------------------------------------------------------------------ */
/* The support thread (MPF_CALLBACK) */

static void *
mp_support_main(void *arg)
{
	struct malloc_pipe *mp = arg;
	struct mpipe_callback *mcb;
	struct mp_hold h;

	mp_lock(mp, &h);
	while (!(SK_LOAD(&mp->mpflags) & MPF_EXITING)) {
		/* FIFO, while buffers are cached (spec 3.2 callback). */
		while (mp->free_count > 0 && (mcb = mp->queue) != NULL &&
		       !(SK_LOAD(&mp->mpflags) & MPF_EXITING)) {
			if ((mp->queue = mcb->next) == NULL)
				mp->queue_tail = &mp->queue;
			mp->st_callbacks++;
			mp_unlock(mp, &h);
			mcb->func(mcb->arg1, mcb->arg2);
			sk_kfree(mcb, M_MPIPEARY);
			mp_lock(mp, &h);
		}
		if (SK_LOAD(&mp->mpflags) & MPF_EXITING)
			break;
		if (mp->queue != NULL)
			mp_flag_set(mp, MPF_QUEUEWAIT);
		mp_sleep(mp, &h, &mp->qseq);
	}
	mp_unlock(mp, &h);
	return NULL;
}

static void
mp_support_start(struct malloc_pipe *mp)
{
	struct mpipe_thread *t;
	sigset_t all, old;
	char name[16];
	int rc;

	t = sk_kmalloc(sizeof(*t), M_MPIPEARY, M_WAITOK | M_ZERO);
	/* The thread inherits a full mask: no signal is delivered to it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->tid, NULL, mp_support_main, mp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		sk_panic("mpipe_init",
		    "cannot start the support thread of "
		    "pipe %s (error %d, ptr %p)",
		    mp->type->ks_shortdesc, rc, (void *)mp);
	snprintf(name, sizeof(name), "mpipe_%s", mp->type->ks_shortdesc);
	pthread_setname_np(t->tid, name);
	mp->thread = t;
}

/* ------------------------------------------------------------------ */
/* API */

void
mpipe_init(malloc_pipe_t mp, malloc_type_t type, int bytes, int nnom, int nmax,
    int mpflags, void (*construct)(void *, void *),
    void (*deconstruct)(void *, void *), void *priv)
{
	sk_init();
	if (mp == NULL)
		sk_panic("mpipe_init", "NULL pipe");
	if (type == NULL || type->ks_magic != M_MAGIC)
		sk_panic("mpipe_init", "malloc type lacks magic (type %p)",
		    (void *)type);
	if (bytes < 0)
		sk_panic("mpipe_init", "negative buffer size %d (ptr %p)",
		    bytes, (void *)mp);
	/* The registry first: a fresh pipe's storage may be uninitialised,
	 * and only a registered pipe's magic may be read. */
	if (reg_contains(mp) && mp->magic == MPIPE_MAGIC)
		sk_panic("mpipe_init",
		    "pipe is already initialised; call "
		    "mpipe_done first (ptr %p)",
		    (void *)mp);
	/* spec 3.2: nmax == 0 means nnom, not unlimited */
	if (nnom < 1)
		nnom = 1;
	if (nmax < 0)
		nmax = MPIPE_UNLIMITED;
	if (nmax < nnom)
		nmax = nnom;
	memset(mp, 0, sizeof(*mp));
	mp->type = type;
	mp->bytes = bytes;
	mp->mpflags = mpflags & ~(int)(MPF_QUEUEWAIT | MPF_EXITING);
	mp->construct = construct;
	mp->deconstruct = deconstruct;
	mp->priv = priv;
	if (!(mpflags & MPF_NOZERO))
		mp->mflags |= M_ZERO;
	if (mpflags & MPF_INT)
		mp->mflags |= M_USE_RESERVE | M_USE_INTERRUPT_RESERVE;
	mp->ary_count = nnom;
	mp->ary_cap = nnom;
	mp->max_count = nmax;
	mp->queue_tail = &mp->queue;
	mp->array = sk_kmalloc(
	    (size_t)nnom * sizeof(void *), M_MPIPEARY, M_WAITOK | M_ZERO);
	if (mp->array == NULL)
		sk_panic("mpipe_init",
		    "cannot allocate the array of pipe %s "
		    "(ptr %p)",
		    type->ks_shortdesc, (void *)mp);
	while (mp->free_count < nnom) {
		void *buf = sk_kmalloc(
		    (unsigned long)bytes, type, M_WAITOK | mp->mflags);

		if (buf == NULL)
			sk_panic("mpipe_init",
			    "cannot allocate the reserve of "
			    "pipe %s (ptr %p)",
			    type->ks_shortdesc, (void *)mp);
		if (construct != NULL)
			construct(buf, priv);
		mp->array[mp->free_count++] = buf;
		mp->total_count++;
		mp->st_kmallocs++;
	}
	mp->magic = MPIPE_MAGIC;
	if (mpflags & MPF_CALLBACK)
		mp_support_start(mp);
	reg_insert(mp);
}

void
mpipe_done(malloc_pipe_t mp)
{
	struct mpipe_callback *queue, *next;
	struct mpipe_thread *t;
	struct mp_hold h;
	void **array;
	int n;

	if (mp == NULL)
		return;
	mp_lock(mp, &h);
	if (mp->free_count != mp->total_count) {
		int out = mp->total_count - mp->free_count;

		mp_unlock(mp, &h);
		sk_panic("mpipe_done",
		    "%d buffer(s) still outstanding in pipe "
		    "%s (ptr %p)",
		    out, mp->type != NULL ? mp->type->ks_shortdesc : "?",
		    (void *)mp);
	}
	if (mp->magic != MPIPE_MAGIC) {
		/* zeroed or already finished: nothing to do */
		mp_unlock(mp, &h);
		return;
	}
	t = mp->thread;
	if (t != NULL && pthread_equal(t->tid, pthread_self())) {
		mp_unlock(mp, &h);
		sk_panic("mpipe_done",
		    "called from the support thread of pipe "
		    "%s (ptr %p)",
		    mp->type->ks_shortdesc, (void *)mp);
	}
	mp_flag_set(mp, MPF_EXITING);
	SK_STORE(&mp->qseq, mp->qseq + 1);
	mp_futex_wake(&mp->qseq);
	mp_unlock(mp, &h);
	reg_remove(mp);
	if (t != NULL) {
		pthread_join(t->tid, NULL);
		sk_kfree(t, M_MPIPEARY);
	}

	mp_lock(mp, &h);
	if (mp->free_count != mp->total_count) {
		/* A callback took a buffer while the thread was stopping. */
		int out = mp->total_count - mp->free_count;

		mp_unlock(mp, &h);
		sk_panic("mpipe_done",
		    "%d buffer(s) still outstanding in pipe %s (ptr %p)", out,
		    mp->type->ks_shortdesc, (void *)mp);
	}
	array = mp->array;
	n = mp->free_count;
	queue = mp->queue;
	mp->array = NULL;
	mp->thread = NULL;
	mp->queue = NULL;
	mp->queue_tail = &mp->queue;
	mp->free_count = 0;
	mp->total_count = 0;
	mp->ary_cap = 0;
	mp->magic = 0;
	mp_unlock(mp, &h);

	while (n > 0) {
		void *buf = array[--n];

		mp->st_kfrees++;
		mp_release(mp, buf);
	}
	if (array != NULL)
		sk_kfree(array, M_MPIPEARY);
	/* Callbacks that never ran: dropped, as the kernel does, but not
	 * leaked. */
	for (; queue != NULL; queue = next) {
		next = queue->next;
		sk_kfree(queue, M_MPIPEARY);
	}
}

void *
mpipe_alloc_nowait(malloc_pipe_t mp)
{
	struct mp_hold h;
	void *buf;

	mp_lock(mp, &h);
	buf = mp_take(mp, &h, false, SK_UNLIKELY(h.masked) && mp_in_intr(mp));
	if (buf == NULL)
		mp->st_fails++;
	mp_unlock(mp, &h);
	SK_TRACK_SHOW_RETURN(buf, 0); /* it may come from the array */
	return buf;
}

void *
mpipe_alloc_waitok(malloc_pipe_t mp)
{
	struct mp_hold h;
	bool mfailed = false;
	void *buf;

	mp_lock(mp, &h);
	while ((buf = mp_take(mp, &h, mfailed, false)) == NULL) {
		/* spec 3.2: after one failure, wait for pipe frees only */
		mp->pending = 1;
		mp->st_waits++;
		mp_sleep(mp, &h, &mp->wseq);
		mfailed = true;
	}
	mp_unlock(mp, &h);
	SK_TRACK_SHOW_RETURN(buf, 0); /* it may come from the array */
	return buf;
}

void *
mpipe_alloc_callback(
    malloc_pipe_t mp, void (*func)(void *, void *), void *arg1, void *arg2)
{
	struct mpipe_callback *mcb = NULL;
	struct mp_hold h;
	void *buf;

	mp_lock(mp, &h);
	buf = mp_take(mp, &h, false, false);
	if (buf == NULL) {
		mp_unlock(mp, &h);
		mcb = sk_kmalloc(sizeof(*mcb), M_MPIPEARY, M_INTWAIT);
		mp_lock(mp, &h);
		buf = mp_take(mp, &h, false, false);
		if (buf == NULL) {
			if (!(SK_LOAD(&mp->mpflags) & MPF_CALLBACK)) {
				mp_unlock(mp, &h);
				sk_panic("mpipe_alloc_callback",
				    "pipe %s has no MPF_CALLBACK: the callback "
				    "would never run (ptr %p)",
				    mp->type->ks_shortdesc, (void *)mp);
			}
			mcb->next = NULL;
			mcb->func = func;
			mcb->arg1 = arg1;
			mcb->arg2 = arg2;
			*mp->queue_tail = mcb;
			mp->queue_tail = &mcb->next;
			mp_flag_set(mp, MPF_QUEUEWAIT);
			mp->st_fails++;
			mcb = NULL;
		}
	}
	mp_unlock(mp, &h);
	if (mcb != NULL)
		sk_kfree(mcb, M_MPIPEARY);
	SK_TRACK_SHOW_RETURN(buf, 0); /* it may come from the array */
	return buf;
}

void
mpipe_wait(malloc_pipe_t mp)
{
	struct mp_hold h;

	mp_lock(mp, &h);
	while (!(SK_LOAD(&mp->mpflags) & MPF_EXITING) && mp->free_count == 0) {
		mp_flag_set(mp, MPF_QUEUEWAIT);
		mp->st_waits++;
		mp_sleep(mp, &h, &mp->qseq);
	}
	mp_unlock(mp, &h);
}

void
mpipe_free(malloc_pipe_t mp, void *buf)
{
	struct mp_hold h;
	bool intr;

	if (buf == NULL)
		return;
	mp_lock(mp, &h);
	intr = SK_UNLIKELY(h.masked) && mp_in_intr(mp);
	if (SK_LIKELY(mp->free_count < mp->ary_count) || intr) {
		if (SK_UNLIKELY(mp->free_count >= mp->ary_cap)) {
			mp_unlock(mp, &h);
			sk_panic("mpipe_free",
			    "array of pipe %s overflows (ptr "
			    "%p)",
			    mp->type->ks_shortdesc, buf);
		}
		if (!(mp->mpflags & (MPF_CACHEDATA | MPF_NOZERO)) &&
		    mp->bytes > 0)
			memset(buf, 0, (size_t)mp->bytes);
		SK_TRACK_HIDE(buf, 0); /* until mp_take hands it out again */
		mp->array[mp->free_count++] = buf;
		mp_wakeup(mp);
		mp_unlock(mp, &h);
		return;
	}
	/* The array is full: an excess buffer goes back to kmalloc. */
	mp->total_count--;
	mp->st_kfrees++;
	if (SK_UNLIKELY(mp->free_count > mp->ary_count))
		mp_trim(mp, &h);
	mp_unlock(mp, &h);
	mp_release(mp, buf);
}

/* ------------------------------------------------------------------ */
/* Statistics and test hooks */

void
sk_mpipe_kick(struct malloc_pipe *mp)
{
	struct mp_hold h;

	mp_lock(mp, &h);
	SK_STORE(&mp->wseq, mp->wseq + 1);
	mp_futex_wake(&mp->wseq);
	SK_STORE(&mp->qseq, mp->qseq + 1);
	mp_futex_wake(&mp->qseq);
	mp_unlock(mp, &h);
}

/* Copy a pipe under its lock; the lock word itself is read atomically. */
static void
mp_copy(struct malloc_pipe *out, struct malloc_pipe *mp)
{
	size_t off = offsetof(struct malloc_pipe, token);
	size_t rest = off + sizeof(mp->token);

	memcpy(out, mp, off);
	out->token = SK_LOAD(&mp->token);
	memcpy((char *)out + rest, (char *)mp + rest, sizeof(*mp) - rest);
}

void
sk_mpipe_snapshot(struct malloc_pipe *mp, struct malloc_pipe *out)
{
	struct mp_hold h;

	mp_lock(mp, &h);
	mp_copy(out, mp);
	mp_unlock(mp, &h);
}

static void
mp_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(fp, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

void
sk_mpipe_stats_print(FILE *fp, int json)
{
	int n = 0;

	pthread_mutex_lock(&reg_lock);
	if (json)
		fprintf(fp, "  \"mpipe\": [");
	else {
		sk_stats_title(fp, "MPIPE statistics");
		fprintf(fp,
		    "%-20s %8s %6s %10s %6s %6s "
		    "%10s %8s %8s %8s %8s\n",
		    "NAME", "SIZE", "NNOM", "NMAX", "TOTAL", "FREE", "ALLOCS",
		    "KMALLOCS", "FAILS", "WAITS", "CALLBACK");
	}
	for (struct malloc_pipe *mp = reg_head; mp != NULL; mp = mp->reg_next) {
		struct malloc_pipe s;
		struct mp_hold h;

		mp_lock(mp, &h);
		mp_copy(&s, mp);
		mp_unlock(mp, &h);
		if (json) {
			fprintf(fp, "%s\n    {\"name\": ", n ? "," : "");
			mp_json_string(fp, s.type->ks_shortdesc);
			fprintf(fp,
			    ", \"size\": %d, \"nnom\": %d, \"nmax\": %d, "
			    "\"total\": %d, \"free\": %d, \"allocs\": %llu, "
			    "\"kmallocs\": %llu, \"kfrees\": %llu, "
			    "\"fails\": %llu, \"waits\": %llu, "
			    "\"callbacks\": %llu}",
			    s.bytes, s.ary_count, s.max_count, s.total_count,
			    s.free_count, (unsigned long long)s.st_allocs,
			    (unsigned long long)s.st_kmallocs,
			    (unsigned long long)s.st_kfrees,
			    (unsigned long long)s.st_fails,
			    (unsigned long long)s.st_waits,
			    (unsigned long long)s.st_callbacks);
		} else {
			fprintf(fp,
			    "%-20.20s %8d %6d %10d %6d %6d %10llu %8llu %8llu "
			    "%8llu %8llu\n",
			    s.type->ks_shortdesc, s.bytes, s.ary_count,
			    s.max_count, s.total_count, s.free_count,
			    (unsigned long long)s.st_allocs,
			    (unsigned long long)s.st_kmallocs,
			    (unsigned long long)s.st_fails,
			    (unsigned long long)s.st_waits,
			    (unsigned long long)s.st_callbacks);
		}
		n++;
	}
	if (json)
		fprintf(fp, "\n  ]");
	pthread_mutex_unlock(&reg_lock);
}
