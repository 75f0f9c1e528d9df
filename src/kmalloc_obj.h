/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc_obj internals shared with stats.c, options.c and the unit
 * tests.  The model is described at the top of kmalloc_obj.c.
 */
#ifndef SK_KMALLOC_OBJ_H
#define SK_KMALLOC_OBJ_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <slabkit/kmalloc.h>

/* Thread ids ("CPUs") with their own slabs; later threads share one. */
#define SK_KOBJ_MAXCPU     256
#define SK_KOBJ_SHARED     SK_KOBJ_MAXCPU /* id of the shared "CPU" */
#define SK_KOBJ_EMPTY_POLL 16             /* empty-list slabs looked at */

/*
 * A slab: this header at the start of a 128 KiB block aligned to its size,
 * then the objects.  The ring fobjs[] lists free objects: positions
 * aindex <= i < xindex hold free objects, xindex <= i < findex are slots
 * reserved by a free still under way (all positions modulo ncount).  The
 * indices only grow.
 */
struct sk_kobj_slab {
	struct sk_kobj_slab *next; /* list link (global lists, caches) */
	struct malloc_type *type;  /* NULL while in a free-slab cache */
	uint32_t magic;            /* KMALLOC_SLAB_MAGIC while live */
	uint32_t orig_cpuid;       /* the "CPU" that mapped it */
	size_t offset;             /* first object */
	size_t objsize;
	size_t ncount;      /* objects */
	size_t aindex;      /* owner only (atomic reads) */
	size_t aslot;       /* owner only: aindex % ncount */
	uint64_t objmul;    /* 2^40 / objsize + 1: index without division */
	uint64_t exis_tick; /* poll tick it became wholly free */
	/* Written by freeing threads: away from the owner's line. */
	size_t findex __attribute__((aligned(64)));      /* atomic */
	size_t xindex;                                   /* atomic */
	uint64_t bmap[(KMALLOC_SLAB_MAXOBJS + 63) / 64]; /* atomic words */
	void *fobjs[];                                   /* atomic */
};

/* A thread's pair of slabs for one type. */
struct sk_kobj_pcpu {
	struct sk_kobj_slab *active;
	struct sk_kobj_slab *alternate;
} __attribute__((aligned(64)));

/*
 * A kmalloc_obj type: the malloc_type first (the pointer users hold), then
 * the global ("rollup") store under `lock', then one slab pair per CPU.
 */
struct sk_kobj_type {
	struct malloc_type t;
	pthread_mutex_t lock;
	struct sk_kobj_slab *partial; /* some objects free */
	struct sk_kobj_slab *full;    /* every object free */
	struct sk_kobj_slab *empty;   /* none free when listed */
	struct sk_kobj_slab **empty_tailp;
	size_t npartial, nfull, nempty;
	size_t slab_offset;        /* first object in a slab */
	size_t slab_count;         /* objects per slab */
	size_t nslabs;             /* atomic: slabs held by the type */
	size_t retired;            /* atomic: slabs the poller retired */
	size_t gcache_count;       /* retired into a free-slab cache */
	int polling;               /* under the registry lock */
	struct sk_kobj_type *next; /* registry */
	struct sk_kobj_pcpu pcpu[SK_KOBJ_MAXCPU + 1];
};

/*
 * Release a kmalloc_obj type's slabs (those still holding objects are
 * reported and leaked), take it off the poller's list and clear its
 * KSF_OBJSIZE; the malloc type itself is left for kmalloc_destroy or
 * malloc_uninit.  kmalloc_destroy_obj is this plus kmalloc_destroy.
 * kmalloc.c's kmalloc_destroy should call it for a KSF_OBJSIZE type.
 */
void sk_kobj_release(struct malloc_type *type);

/* Objects per slab and the first object's offset for an object size. */
void sk_kobj_sizing(size_t objsize, size_t *offset, size_t *count);

/* What a type holds now (tests, statistics). */
struct sk_kobj_view {
	size_t objsize, slab_count, slab_offset;
	size_t nslabs; /* slabs the type holds */
	size_t npartial, nfull, nempty;
	size_t active;    /* slabs held as active/alternate */
	size_t free_objs; /* free objects in all of them */
	size_t retired;   /* slabs retired so far */
	size_t cached;    /* the calling thread's free-slab cache */
};
void sk_kobj_view(struct malloc_type *type, struct sk_kobj_view *v);

/* The calling thread's slab pair for a type (tests). */
struct sk_kobj_pcpu *sk_kobj_mine(struct malloc_type *type);

/*
 * The index of the object at byte offset off from the first object:
 * off * (2^40 / objsize + 1) >> 40 is off / objsize exactly for every
 * off below 2^17 and objsize below 2^17 (the error, under 2^-23, is
 * smaller than any fractional part, at least 1 / objsize).
 */
#define SK_KOBJ_MUL_SHIFT 40
static inline size_t
sk_kobj_index(uint64_t objmul, size_t off)
{
	return (size_t)(((uint64_t)off * objmul) >> SK_KOBJ_MUL_SHIFT);
}

/* The slab holding an object (its 128 KiB-aligned base). */
static inline struct sk_kobj_slab *
sk_kobj_slab_of(const void *obj)
{
	return (struct sk_kobj_slab *)((uintptr_t)obj & ~KMALLOC_SLAB_MASK);
}

/* Poll tick, advanced by every poller pass (existence grace period). */
uint64_t sk_kobj_tick(void);

/* options.c: a kzone_* key; 0, ENOENT or EINVAL. */
int sk_kobj_set_option(const char *key, const char *value);

/* Current poller settings (tests). */
struct sk_kobj_params {
	int pollfreq; /* polls per second; 0: thread off */
	int bretire;  /* slabs retired per type per poll */
	int cache;    /* per-thread free-slab cache cap */
	int debug;    /* log each retirement */
	int running;  /* the poller thread is alive */
};
void sk_kobj_params(struct sk_kobj_params *p);

/* stats.c: the kmalloc_obj table (text) or array (JSON). */
void sk_kobj_stats_print(FILE *fp, int json);

#endif /* SK_KMALLOC_OBJ_H */
