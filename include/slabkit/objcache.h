/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit/objcache.h: DragonFly BSD's objcache(9) object cache in userspace.
 *
 * An object cache keeps objects in their constructed state: objcache_get
 * hands out an object that the constructor initialised at some earlier
 * time, and objcache_put takes it back without destroying it, so the cost
 * of construction (locks, tables, linked sub-objects) is paid once per
 * object rather than once per use.  The destructor runs only when an
 * object leaves the cache for good.  Objects come from a pluggable backend
 * (the kmalloc one is provided) and sit in per-thread magazines in front
 * of a shared depot, after Bonwick and Adams' magazine layer.
 *
 * Names, signatures and flag values are those of the newest DragonFly
 * header (int cluster_limit, nom_cache, objcache_set_cluster_limit, struct
 * objcache_stats), so kernel code compiles unchanged; see objcache(3) and
 * docs/deviations.md.
 *
 * Thread safety: every function may be called from any thread.  Only
 * objcache_get with M_WAITOK (and without M_NULLOK) blocks on the cache's
 * limit; the backend may block as kmalloc does.  None of these calls is
 * async-signal-safe.
 */
#ifndef SLABKIT_OBJCACHE_H
#define SLABKIT_OBJCACHE_H

#include <stddef.h>

#include <slabkit/kmalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SLABKIT_API
#define SLABKIT_API __attribute__((visibility("default")))
#endif

/*
 * The kernel's boolean_t.  A program that has its own typedef defines
 * SLABKIT_HAVE_BOOLEAN_T before including this header.
 */
#ifndef SLABKIT_HAVE_BOOLEAN_T
#define SLABKIT_HAVE_BOOLEAN_T 1
typedef int boolean_t;
#endif
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define OC_MFLAGS 0x0000ffff /* the kmalloc flags within ocflags */

/*
 * Constructor: initialise a freshly allocated object; return TRUE, or FALSE
 * to have objcache_get free the object and return NULL.  Runs only on new
 * objects, never on cached ones.
 */
typedef boolean_t(objcache_ctor_fn)(void *obj, void *privdata, int ocflags);
/* Destructor: undo the constructor; runs once, when the object leaves. */
typedef void(objcache_dtor_fn)(void *obj, void *privdata);

/* The underlying allocator. */
typedef void *(objcache_alloc_fn)(void *allocator_args, int ocflags);
typedef void(objcache_free_fn)(void *obj, void *allocator_args);

struct objcache;

/*
 * objcache_create: any thread; may block (kmalloc M_WAITOK).
 *
 * cluster_limit bounds the objects alive at once (0: no limit); the real
 * budget adds room for the objects that per-thread magazines may hold.
 * nom_cache is the nominal number of objects to keep cached (0: derived
 * from the limit, else 128); it sets the magazine capacity.  NULL ctor or
 * dtor mean "nothing to do".  The name is copied.  Never returns NULL.
 */
SLABKIT_API struct objcache *objcache_create(const char *name,
    int cluster_limit, int nom_cache, objcache_ctor_fn *ctor,
    objcache_dtor_fn *dtor, void *privdata, objcache_alloc_fn *allocfn,
    objcache_free_fn *freefn, void *allocator_args);

/* kmalloc-backed, named after the type, no limit, no ctor/dtor. */
SLABKIT_API struct objcache *objcache_create_simple(
    malloc_type_t mtype, size_t objsize);

/* kmalloc-backed with every other parameter of objcache_create. */
SLABKIT_API struct objcache *objcache_create_mbacked(malloc_type_t mtype,
    size_t objsize, int cluster_limit, int nom_cache, objcache_ctor_fn *ctor,
    objcache_dtor_fn *dtor, void *privdata);

/*
 * Older DragonFly releases (and objcache(9) to this day) declare
 * cluster_limit as `int *cluster_limit0', in and out.  Such a call would
 * convert the pointer to an int with at most a warning and run with a
 * nonsense limit, so in C both functions are wrapped: a cluster_limit of
 * any type but an integer one fails to compile ("'_Generic' selector of
 * type 'int *' is not compatible with any association").  C++ already
 * rejects the conversion.  (objcache_create) in parentheses reaches the
 * function itself.
 */
#if !defined(__cplusplus)
#define SLABKIT_OC_INT_ARG(x)                                              \
	_Generic((x), char: (x), signed char: (x), unsigned char: (x),      \
	    short: (x), unsigned short: (x), int: (x), unsigned int: (x),   \
	    long: (x), unsigned long: (x), long long: (x),                  \
	    unsigned long long: (x), _Bool: (x))
#define objcache_create(name, cluster_limit, ...)                          \
	objcache_create((name), SLABKIT_OC_INT_ARG(cluster_limit), __VA_ARGS__)
#define objcache_create_mbacked(mtype, objsize, cluster_limit, ...)        \
	objcache_create_mbacked((mtype), (objsize),                         \
	    SLABKIT_OC_INT_ARG(cluster_limit), __VA_ARGS__)
#endif

/*
 * Change the limit (0: none).  The budget moves by the change; lowering it
 * below the objects now alive destroys nothing but lets no new object be
 * made until enough have gone.  Wakes blocked getters when it grows.
 */
SLABKIT_API void objcache_set_cluster_limit(
    struct objcache *oc, int cluster_limit);

/*
 * objcache_get: any thread.  Returns a constructed object, most recently
 * cached first.  ocflags are kmalloc flags (passed to the backend and the
 * constructor); M_ZERO is a fatal error (a cached object is constructed,
 * zeroing it would be meaningless).  At the limit, M_WAITOK without
 * M_NULLOK sleeps until an object is put back, destroyed or reclaimed;
 * M_NOWAIT and M_WAITOK|M_NULLOK return NULL.  NULL also when the backend
 * or the constructor fails.
 */
SLABKIT_API void *objcache_get(struct objcache *oc, int ocflags);

/* objcache_put: any thread; obj must be in its constructed state. */
SLABKIT_API void objcache_put(struct objcache *oc, void *obj);

/*
 * objcache_dtor: any thread.  Give back an object that must not be
 * reused: it is destructed and freed at once, and a getter blocked on the
 * limit is woken.
 */
SLABKIT_API void objcache_dtor(struct objcache *oc, void *obj);

/*
 * objcache_reclaimlist: any thread.  For each cache in turn, destroy the
 * objects cached by the calling thread (loaded magazine, else previous),
 * else every full magazine of the depot (magazines included); stops at
 * the first cache that freed something and returns TRUE, else FALSE.
 * ocflags is unused.
 */
SLABKIT_API boolean_t objcache_reclaimlist(
    struct objcache *oc[], int nlist, int ocflags);

/*
 * objcache_destroy: no other thread may use the cache any more.  Destructs
 * and frees every cached object once, frees the magazines and the cache;
 * objects still outstanding are reported (a warning), not freed.
 */
SLABKIT_API void objcache_destroy(struct objcache *oc);

/*
 * Beyond DragonFly: a working-set reaper (Bonwick and Adams' depot
 * trimming).  Every interval_ms milliseconds a background thread destroys,
 * in every cache, the full depot magazines that stayed unused during the
 * whole interval.  0 (the default) stops it: DragonFly has no reaper and
 * nothing is ever trimmed behind the program's back.  Any thread; blocks
 * until a running reaper has stopped.  Returns 0, EINVAL for a negative
 * interval, or the error of pthread_create.
 */
SLABKIT_API int objcache_reaper_set(int interval_ms);

/* kmalloc backend: allocator_args is a struct objcache_malloc_args. */
struct objcache_malloc_args {
	size_t objsize;
	malloc_type_t mtype;
};

/* kmalloc(objsize, mtype, ocflags & OC_MFLAGS); _zero adds M_ZERO. */
SLABKIT_API void *objcache_malloc_alloc(void *allocator_args, int ocflags);
SLABKIT_API void *objcache_malloc_alloc_zero(void *allocator_args, int ocflags);
/* kfree(obj, mtype). */
SLABKIT_API void objcache_malloc_free(void *obj, void *allocator_args);

/* For pre-populated caches: alloc always fails, free does nothing. */
SLABKIT_API void *objcache_nop_alloc(void *allocator_args, int ocflags);
SLABKIT_API void objcache_nop_free(void *obj, void *allocator_args);

#define OBJCACHE_UNLIMITED 0x40000000
#define OBJCACHE_NAMELEN   32

/* One cache's statistics (objcache_stats_snapshot in slabkit/stats.h). */
struct objcache_stats {
	char oc_name[OBJCACHE_NAMELEN]; /* NUL-terminated, truncated */
	unsigned long oc_limit;         /* >= OBJCACHE_UNLIMITED: no limit */
	unsigned long oc_requested;     /* objcache_get calls */
	unsigned long oc_used;          /* objects handed out, not back */
	unsigned long oc_cached;        /* objects held in magazines */
	unsigned long oc_exhausted;     /* times a get found the limit */
	unsigned long oc_failed;        /* gets that returned NULL */
	unsigned long oc_allocated;     /* backend allocations */
	unsigned long oc_reserved[5];   /* 0 */
};

#ifdef __cplusplus
}
#endif

#endif /* SLABKIT_OBJCACHE_H */
