/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit/mpipe.h: DragonFly BSD's malloc pipelines (MPIPE) in userspace.
 *
 * A malloc pipe hands out fixed-size buffers of one malloc type and keeps
 * a reserve of `nnom' of them that never goes back to kmalloc, so nnom
 * buffers can always be had, even when kmalloc cannot give memory.  Beyond
 * the reserve the pipe allocates up to `nmax' buffers with M_NOWAIT and
 * gives the extra ones back to kmalloc when they are freed.
 * mpipe_alloc_waitok() never fails: it sleeps until a buffer is freed.
 *
 * The caller owns the storage of the struct (embed it anywhere); treat its
 * fields as read-only.  Names, flag values and semantics are DragonFly's
 * (kern_mpipe.c, 2020), so kernel code compiles unchanged; see mpipe(3).
 *
 * Thread safety: every function may be called from any thread, except
 * that mpipe_init() and mpipe_done() must not race with other calls on the
 * same pipe.  mpipe_init(), mpipe_alloc_waitok(), mpipe_alloc_callback()
 * and mpipe_wait() may block.  On a pipe made with MPF_INT,
 * mpipe_alloc_nowait() and mpipe_free() are async-signal-safe in a signal
 * handler that brackets them with slabkit_intr_enter()/slabkit_intr_exit()
 * (<slabkit/control.h>); nothing else here is.
 */
#ifndef SLABKIT_MPIPE_H
#define SLABKIT_MPIPE_H

#include <stdint.h>

#include <slabkit/kmalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SLABKIT_API
#define SLABKIT_API __attribute__((visibility("default")))
#endif

struct mpipe_callback;
struct mpipe_thread;

/*
 * A malloc pipe (sys/mpipe.h, newest layout, plus slabkit's own fields at
 * the end).  Fields are protected by `token', slabkit's lock word.
 */
struct malloc_pipe {
	malloc_type_t type; /* malloc type of the buffers */
	int bytes;          /* buffer size */
	int mpflags;        /* MPF_* flags */
	int mflags;         /* kmalloc flags derived from mpflags */
	int pending;        /* an mpipe_alloc_waitok() sleeps */
	int free_count;     /* buffers cached in array[] */
	int total_count;    /* buffers in existence */
	int ary_count;      /* nnom: the reserve */
	int max_count;      /* nmax: hard maximum */
	unsigned int token; /* lock word (the kernel's lwkt_token) */
	void **array;       /* LIFO stack of cached buffers */
	void (*construct)(void *buf, void *priv);
	void (*deconstruct)(void *buf, void *priv);
	void *priv;
	struct mpipe_thread *thread;  /* support thread (MPF_CALLBACK) */
	struct mpipe_callback *queue; /* pending callbacks, FIFO */
	struct mpipe_callback **queue_tail;
	/* slabkit */
	int ary_cap;                  /* capacity of array[] */
	unsigned int magic;           /* set by mpipe_init, cleared by done */
	unsigned int wseq;            /* bumped to wake alloc_waitok sleepers */
	unsigned int qseq;            /* bumped to wake the queue sleepers */
	struct malloc_pipe *reg_next; /* registry of live pipes */
	struct malloc_pipe **reg_prevp;
	uint64_t st_allocs;    /* buffers handed out */
	uint64_t st_kmallocs;  /* buffers made by kmalloc */
	uint64_t st_kfrees;    /* buffers given back to kmalloc */
	uint64_t st_fails;     /* nowait/callback calls that got NULL */
	uint64_t st_waits;     /* sleeps in alloc_waitok and wait */
	uint64_t st_callbacks; /* callbacks run */
	uint64_t st_reserved[2];
};

typedef struct malloc_pipe *malloc_pipe_t;

#define MPF_CACHEDATA 0x0001     /* do not zero buffers on reuse */
#define MPF_NOZERO    0x0002     /* never zero buffers */
#define MPF_INT       0x0004     /* interrupt (signal) context use */
#define MPF_QUEUEWAIT 0x0008     /* internal: someone waits on queue */
#define MPF_CALLBACK  0x0010     /* start a support thread */
#define MPF_EXITING   0x80000000 /* internal: mpipe_done running */

/*
 * mpipe_init: set up the pipe at *mpipe (its old contents are ignored)
 * for buffers of `bytes' bytes of `type'.  nnom < 1 counts as 1; nmax < 0
 * means unlimited; nmax < nnom (nmax == 0 included) means nnom.  Allocates
 * and constructs the nnom reserve buffers with M_WAITOK, so it may block,
 * and panics where kmalloc(M_WAITOK) would (the type's limit).
 * construct(buf, priv) runs once per buffer made by kmalloc, never on
 * reuse; deconstruct(buf, priv) once per buffer given back to kmalloc.
 * Either may be NULL.  MPF_CALLBACK starts the support thread that runs
 * mpipe_alloc_callback()'s callbacks.  Any thread; may block.
 */
SLABKIT_API void mpipe_init(malloc_pipe_t mpipe, malloc_type_t type, int bytes,
    int nnom, int nmax, int mpflags, void (*construct)(void *buf, void *priv),
    void (*deconstruct)(void *buf, void *priv), void *priv);

/*
 * mpipe_done: stop the support thread, deconstruct and free every cached
 * buffer and the array.  Panics when buffers are still outstanding.  A
 * no-op on a zeroed or already finished pipe.  Any thread but the pipe's
 * own support thread; may block.
 */
SLABKIT_API void mpipe_done(malloc_pipe_t mpipe);

/*
 * mpipe_alloc_nowait: a cached buffer, else a new one from kmalloc
 * (M_NOWAIT) below nmax; NULL when neither can be had.  Never sleeps
 * (apart from a short wait for the pipe's lock).  Any thread; see the top
 * of this file for signal handlers.
 */
SLABKIT_API void *mpipe_alloc_nowait(malloc_pipe_t mpipe);

/*
 * mpipe_alloc_waitok: as mpipe_alloc_nowait, but sleeps until a buffer is
 * freed into the pipe instead of returning NULL; after one failure it only
 * waits for such frees (it does not retry kmalloc).  Never returns NULL.
 * Any thread; may block.
 */
SLABKIT_API void *mpipe_alloc_waitok(malloc_pipe_t mpipe);

/*
 * mpipe_alloc_callback: as mpipe_alloc_nowait; when that fails, queue
 * func(arg1, arg2) and return NULL.  The support thread runs queued
 * callbacks in FIFO order once buffers are back in the pipe; a callback is
 * a hint to retry, it receives no buffer.  A non-NULL return means func
 * is never called.  Needs MPF_CALLBACK (panics when it would queue on a
 * pipe without it).  Any thread; may block briefly (M_INTWAIT kmalloc).
 */
SLABKIT_API void *mpipe_alloc_callback(malloc_pipe_t mpipe,
    void (*func)(void *arg1, void *arg2), void *arg1, void *arg2);

/*
 * mpipe_wait: sleep until the pipe caches a buffer (or is being torn
 * down).  A following mpipe_alloc_nowait can still fail.  Any thread; may
 * block.
 */
SLABKIT_API void mpipe_wait(malloc_pipe_t mpipe);

/*
 * mpipe_free: give buf back.  NULL is a no-op.  The buffer is cached
 * (LIFO, zeroed unless MPF_CACHEDATA or MPF_NOZERO) while fewer than nnom
 * are cached, and wakes sleepers; otherwise it is deconstructed and
 * kfree'd.  Any thread; see the top of this file for signal handlers.
 */
SLABKIT_API void mpipe_free(malloc_pipe_t mpipe, void *buf);

#ifdef __cplusplus
}
#endif

#endif /* SLABKIT_MPIPE_H */
