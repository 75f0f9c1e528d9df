/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit/kmalloc.h: DragonFly BSD's kmalloc(9) slab allocator in userspace.
 *
 * Every allocation names a malloc type, which carries statistics, a byte
 * limit and a magic number.  Define a type once at file scope with
 * MALLOC_DEFINE(M_FOO, "foo", "long description"), declare it elsewhere with
 * MALLOC_DECLARE(M_FOO), and use M_FOO as a pointer.  Types made at run time
 * come from kmalloc_create() and go with kmalloc_destroy().
 *
 * Names, flag values and semantics are DragonFly's (kern_slaballoc.c,
 * 2019-2021), so kernel code compiles unchanged; see kmalloc(3),
 * docs/dragonfly.md and docs/deviations.md.
 *
 * Thread safety: every function may be called from any thread.  kmalloc
 * with M_WAITOK may block (page shortage: retry with back-off); M_RNOWAIT
 * never blocks.  None of these calls is async-signal-safe.
 */
#ifndef SLABKIT_KMALLOC_H
#define SLABKIT_KMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SLABKIT_API
#define SLABKIT_API __attribute__((visibility("default")))
#endif

/* Flags (sys/malloc.h values, bit for bit). */
#define M_RNOWAIT		0x0001	/* do not block */
#define M_WAITOK		0x0002	/* may block for pages */
#define M_ZERO			0x0100	/* zero the returned memory */
#define M_USE_RESERVE		0x0200	/* may dig into the reserve */
#define M_NULLOK		0x0400	/* NULL instead of a panic at the limit */
#define M_PASSIVE_ZERO		0x0800	/* internal: memory known to be zero */
#define M_USE_INTERRUPT_RESERVE	0x1000	/* may exhaust the free list */
#define M_POWEROF2		0x2000	/* round the size up to a power of 2 */
#define M_CACHEALIGN		0x4000	/* cache-line (64 byte) alignment */

#define M_NOWAIT	(M_RNOWAIT | M_NULLOK | M_USE_RESERVE)
#define M_INTNOWAIT	(M_RNOWAIT | M_NULLOK | M_USE_RESERVE | \
			 M_USE_INTERRUPT_RESERVE)
#define M_SYSNOWAIT	(M_RNOWAIT | M_NULLOK | M_USE_RESERVE)
#define M_INTWAIT	(M_WAITOK | M_USE_RESERVE | M_USE_INTERRUPT_RESERVE)
#define M_SYSWAIT	(M_WAITOK | M_USE_RESERVE)
#define M_SYSALLOC	M_SYSWAIT

#define M_MAGIC		877983977	/* ks_magic of a valid type */
#define MINALLOCSIZE	sizeof(void *)
#define KSF_OBJSIZE	0x00000001	/* a kmalloc_obj type (one size) */
#define KSF_POLLING	0x00000002	/* internal: the poller is on it */

/* kmalloc(0) returns this; never dereference it. */
#define ZERO_LENGTH_PTR	((void *)-8)

/*
 * Per-slot statistics.  A slot belongs to one thread ("CPU"); a free on
 * another thread decrements that thread's slot, so slots are meaningful only
 * as a sum (which may be read while it changes).  Cache-line sized.
 */
struct kmalloc_use {
	size_t	memuse;		/* bytes (rounded sizes) */
	size_t	inuse;		/* allocations */
	int64_t	calls;		/* kmalloc calls, failures included */
	size_t	loosememuse;	/* not yet folded into ks_loosememuse */
	size_t	reserved[4];
};

/*
 * A malloc type (sys/_malloc.h, newest layout, plus slabkit's high-water
 * mark).  Statically defined types are initialised by MALLOC_DEFINE; treat
 * every field as read-only.
 */
struct malloc_type {
	struct malloc_type *ks_next;	/* registry link (vmstat -m walks it) */
	size_t	ks_loosememuse;		/* up-only estimate of bytes in use */
	size_t	ks_limit;		/* byte limit; 0: not initialised */
	uint64_t ks_unused0;
	uint32_t ks_flags;
	uint32_t ks_magic;		/* M_MAGIC */
	const char *ks_shortdesc;	/* name shown by vmstat -m */
	size_t	ks_objsize;
	struct kmalloc_use *ks_use;	/* per-slot counters */
	struct kmalloc_use ks_use0;	/* the slot used before malloc_init */
	size_t	ks_maxused;		/* high-water mark of memuse (bytes) */
	uint32_t ks_state;		/* internal registration state */
	uint32_t ks_reserved0;
	void	*ks_reserved[2];
};

typedef struct malloc_type *malloc_type_t;

SLABKIT_API void malloc_init(void *type);
SLABKIT_API void malloc_uninit(void *type);

#define MALLOC_DECLARE(type) extern struct malloc_type type[1]

/*
 * MALLOC_DEFINE registers the type from a constructor before main (and
 * lazily on first use if another constructor allocates earlier), and
 * unregisters it from a destructor, so a type inside a dlopen'ed object
 * leaves the registry when that object is unloaded.  `static MALLOC_DEFINE'
 * works as in the kernel.
 */
#ifdef __cplusplus
/* C++ before C++20 has no designated initializers: every field in order. */
#define SLABKIT_MALLOC_TYPE_INIT(type, shortdesc)                            \
	{{0, 0, 0, 0, 0, M_MAGIC, (shortdesc), 0, &type[0].ks_use0,         \
	    {0, 0, 0, 0, {0, 0, 0, 0}}, 0, 0, 0, {0, 0}}}
#else
#define SLABKIT_MALLOC_TYPE_INIT(type, shortdesc)                            \
	{{.ks_magic = M_MAGIC, .ks_shortdesc = (shortdesc),                 \
	    .ks_use = &type[0].ks_use0}}
#endif
#define MALLOC_DEFINE(type, shortdesc, longdesc)                             \
	struct malloc_type type[1] =                                         \
	    SLABKIT_MALLOC_TYPE_INIT(type, shortdesc);                       \
	__attribute__((constructor)) static void                            \
	slabkit_malloc_init_##type(void)                                    \
	{                                                                    \
		malloc_init(type);                                           \
	}                                                                    \
	__attribute__((destructor)) static void                             \
	slabkit_malloc_uninit_##type(void)                                  \
	{                                                                    \
		malloc_uninit(type);                                         \
	}                                                                    \
	static void slabkit_malloc_uninit_##type(void)

/* Predefined types (sys/malloc.h and kern_slaballoc.c, see kmalloc(3)). */
MALLOC_DECLARE(M_CACHE);	/* "cache" */
MALLOC_DECLARE(M_DEVBUF);	/* "devbuf" */
MALLOC_DECLARE(M_TEMP);		/* "temp" */
MALLOC_DECLARE(M_DRM);		/* "m_drm" */
MALLOC_DECLARE(M_IP6OPT);	/* "ip6opt" */
MALLOC_DECLARE(M_IP6NDP);	/* "ip6ndp" */
MALLOC_DECLARE(M_IOV);		/* "iov" */

/*
 * kmalloc: allocate size bytes of the given type.  Returns NULL only when
 * the flags allow it: M_NULLOK (or M_NOWAIT) at the type's limit, M_RNOWAIT
 * when no memory can be had at once.  size 0 returns ZERO_LENGTH_PTR.
 * Without M_NULLOK, exceeding the limit panics ("<type>: malloc limit
 * exceeded"); the limit never blocks.  Exactly one of M_WAITOK and
 * M_RNOWAIT must be set ("bad flags" otherwise).
 */
SLABKIT_API void *kmalloc(unsigned long size, struct malloc_type *type,
    int flags) __attribute__((malloc));

/* kfree: NULL panics (as in DragonFly); ZERO_LENGTH_PTR is a no-op. */
SLABKIT_API void kfree(void *ptr, struct malloc_type *type);

/*
 * krealloc: M_ZERO is rejected.  NULL or ZERO_LENGTH_PTR acts as kmalloc;
 * size 0 frees and returns NULL; the same pointer comes back when the
 * chunk size (or page count) is unchanged; on failure NULL is returned and
 * the old block stays valid.
 */
SLABKIT_API void *krealloc(void *ptr, unsigned long size,
    struct malloc_type *type, int flags);
SLABKIT_API char *kstrdup(const char *s, struct malloc_type *type);
SLABKIT_API char *kstrndup(const char *s, size_t maxlen,
    struct malloc_type *type);
SLABKIT_API size_t kmalloc_usable_size(const void *ptr);
SLABKIT_API void *kmalloc_cachealign(unsigned long size,
    struct malloc_type *type, int flags);

SLABKIT_API long kmalloc_limit(struct malloc_type *type);
SLABKIT_API void kmalloc_raise_limit(struct malloc_type *type, size_t bytes);
SLABKIT_API void kmalloc_set_unlimited(struct malloc_type *type);
SLABKIT_API void kmalloc_create(struct malloc_type **typep,
    const char *descr);
SLABKIT_API void kmalloc_destroy(struct malloc_type **typep);

/*
 * malloc_reinit_ncpus: in the kernel, swaps each type's boot-time counter
 * slot for a per-CPU array once the CPUs are counted.  slabkit gives a
 * type its per-thread slots when the type is initialised, so there is
 * nothing left to do: a no-op, safe to call at any time from any thread.
 */
SLABKIT_API void malloc_reinit_ncpus(void);

/*
 * kmalloc_obj (kern_kmalloc.c, 2021): type-stable zones of one object
 * size.  A type made by kmalloc_create_obj() serves objects of objsize
 * bytes rounded up to a cache line, carved from 128 KiB slabs aligned to
 * their size; each thread keeps an active and an alternate slab, frees
 * from any thread are lock-free, wholly free slabs are retired by a
 * poller thread.  See kmalloc_obj(3).
 */
#define KMALLOC_SLAB_SIZE	((size_t)128 * 1024)
#define KMALLOC_SLAB_MASK	(KMALLOC_SLAB_SIZE - 1)
#define KMALLOC_SLAB_MAXOBJS	(KMALLOC_SLAB_SIZE / 64)
#define KMALLOC_LOOSE_SIZE	(KMALLOC_SLAB_SIZE * 4)
#define KMALLOC_SLAB_MAGIC	0x6b736c62
#define KMALLOC_MAXFREEMAGS	4	/* wholly free slabs kept per type */
#define KMGD_MAXFREESLABS	128	/* default per-thread free-slab cache */

/*
 * kmalloc_create_obj: no-op when *typep is not NULL; otherwise makes a
 * registered type (KSF_OBJSIZE, ks_objsize = objsize rounded up to 64)
 * and stores it in *typep.  Panics when objsize is 0 or too large for a
 * slab.  Any thread; may block.
 */
SLABKIT_API void kmalloc_create_obj(struct malloc_type **typep,
    const char *descr, size_t objsize);

/*
 * kmalloc_destroy_obj: no-op when *typep is NULL.  Releases every slab
 * whose objects are all free, reports each slab that still holds objects
 * ("<type>: slab 0x... N objects were still allocated") and leaks it,
 * unregisters and frees the type, and sets *typep to NULL.  No other
 * thread may use the type during or after the call.
 */
SLABKIT_API void kmalloc_destroy_obj(struct malloc_type **typep);

/*
 * kmalloc_obj: one object of a kmalloc_obj type.  size must round up to
 * the type's object size (a panic otherwise).  M_ZERO zeroes it.  At the
 * type's limit: NULL with M_NULLOK, else a panic ("<type>: malloc limit
 * exceeded").  A new slab is always mapped as with M_WAITOK, whatever the
 * flags (as in the kernel).  Any thread.
 */
SLABKIT_API void *kmalloc_obj(unsigned long size, struct malloc_type *type,
    int flags) __attribute__((malloc));

/*
 * kfree_obj: give an object back, from any thread, without a lock.  NULL,
 * a pointer that no kmalloc_obj returned, and a second free of the same
 * object panic.  Statistics are charged to the object's own type.
 */
SLABKIT_API void kfree_obj(void *ptr, struct malloc_type *type);

/*
 * One pass of the kmalloc_obj poller over every kmalloc_obj type, on the
 * calling thread: sorts the slabs on each type's empty list and retires
 * wholly free slabs beyond KMALLOC_MAXFREEMAGS (at most kzone_bretire per
 * type).  For programs that run with the poller thread off
 * (SLABKIT_OPTIONS=kzone_pollfreq=0).  Returns the slabs retired.
 */
SLABKIT_API int slabkit_kmalloc_obj_poll(void);

/* The kernel's entry points behind the macros of the same names. */
#define _kmalloc_create_obj(typep, descr, objsize) \
	kmalloc_create_obj((typep), (descr), (objsize))
#define _kmalloc_obj(size, type, flags) kmalloc_obj((size), (type), (flags))
#define _kfree_obj(ptr, type) kfree_obj((ptr), (type))

/* Usable memory in MiB: min(RAM, cgroup memory.max, RLIMIT_AS). */
SLABKIT_API size_t kmem_lim_size(void);

/*
 * slab_cleanup: the kernel's 10-second housekeeping, on demand: drains the
 * calling thread's remote-free lists, moves wholly free zones to its free
 * list and does the same for the shards of exited threads.
 */
SLABKIT_API void slab_cleanup(void);

/*
 * SLAB_DEBUG call sites (docs/dragonfly.md 1.8): the _debug variants record
 * the caller's file and line in the zone of the returned chunk (up to 32
 * distinct sites per zone) when libslabkit was built with SLABKIT_SLAB_DEBUG
 * (the debug and asan presets).  Define SLAB_DEBUG before including this
 * header to turn kmalloc, krealloc, kstrdup and kstrndup into them, as in
 * the kernel.
 */
SLABKIT_API void *kmalloc_debug(unsigned long size, struct malloc_type *type,
    int flags, const char *file, int line);
SLABKIT_API void *krealloc_debug(void *ptr, unsigned long size,
    struct malloc_type *type, int flags, const char *file, int line);
SLABKIT_API char *kstrdup_debug(const char *s, struct malloc_type *type,
    const char *file, int line);
SLABKIT_API char *kstrndup_debug(const char *s, size_t maxlen,
    struct malloc_type *type, const char *file, int line);

struct slabkit_alloc_site {
	const char *file;
	int	line;
	unsigned count;
};

/* Call sites recorded in the zone holding ptr: returns how many (filling
 * at most nmax), 0 for a large block, -1 when not built with SLAB_DEBUG. */
SLABKIT_API int slabkit_kmalloc_sites(const void *ptr,
    struct slabkit_alloc_site *sites, int nmax);

#ifdef SLAB_DEBUG
#define kmalloc(size, type, flags) \
	kmalloc_debug((size), (type), (flags), __FILE__, __LINE__)
#define krealloc(ptr, size, type, flags) \
	krealloc_debug((ptr), (size), (type), (flags), __FILE__, __LINE__)
#define kstrdup(s, type) kstrdup_debug((s), (type), __FILE__, __LINE__)
#define kstrndup(s, maxlen, type) \
	kstrndup_debug((s), (maxlen), (type), __FILE__, __LINE__)
#endif

#ifdef __cplusplus
}
#endif

#endif /* SLABKIT_KMALLOC_H */
