/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit/zone.h: DragonFly BSD's zone allocator (vm/vm_zone.h) in
 * userspace.
 *
 * A zone hands out items of one fixed size.  It is type-stable: memory
 * given to a zone is never returned to the system until zdestroy(), and a
 * free item keeps its contents except its first two pointer-sized words,
 * which thread the free lists.  Put two pointers' worth of scratch at the
 * start of a zone item, or treat those words as garbage after each zalloc.
 * Items are zero on their first use.
 *
 * DragonFly deprecates zones in favour of objcache(3); they remain the
 * tool for items that must exist before anything else (zbootinit), for a
 * hard item limit with address space reserved up front, and for items
 * allocated from a signal handler (ZONE_INTERRUPT).  See zone(3).
 *
 * Names, flag values and prototypes are DragonFly's newest (zinit(name,
 * size, nentries, flags)), so kernel code compiles unchanged; the name
 * parameters take const char * (kernel callers pass char * and still
 * compile).
 *
 * Thread safety: every function may be called from any thread, except
 * that zbootinit/zinitna of one zone must not race with other calls on
 * that zone.  zalloc on a normal zone may block (mmap).  On a zone set up
 * by zinitna or zinit with ZONE_INTERRUPT, zalloc and zfree are
 * async-signal-safe and never take a lock a signal could interrupt.
 */
#ifndef SLABKIT_ZONE_H
#define SLABKIT_ZONE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SLABKIT_API
#define SLABKIT_API __attribute__((visibility("default")))
#endif

/* Flags (vm_zone.h values, bit for bit). */
#define ZONE_INTERRUPT   0x0001 /* fixed limit, signal-safe zalloc/zfree */
#define ZONE_PANICFAIL   0x0002 /* zalloc panics instead of returning NULL */
#define ZONE_SPECIAL     0x0004 /* kernel: vm_map_entry zone (no effect) */
#define ZONE_BOOT        0x0010 /* internal: made by zbootinit */
#define ZONE_USE_RESERVE 0x0020 /* kernel: may use reserve (no effect) */
#define ZONE_DESTROYABLE 0x0040 /* zinit only: may be zdestroy'ed */

#define ZONE_MAXPGLOAD 8 /* most pages one growth maps */

/*
 * Per-thread caches, one per statistics slot of a thread's shard (the
 * kernel's SMP_MAXCPU per-CPU caches).  Threads beyond these share the
 * zone's global list.
 */
#define ZONE_NCACHES 255

/* One thread's cache; only that thread touches it. */
struct vm_zpcpu {
	void *zitems;  /* free items, linked through word 0 */
	long zfreecnt; /* items on zitems (racy reads by stats) */
	long znalloc;  /* allocations served here */
} __attribute__((aligned(64)));

typedef struct vm_zpcpu vm_zpcpu_t;

/*
 * The zone (newest vm_zone layout plus slabkit's fields).  zbootinit and
 * zinitna take a zone the caller owns, which must be zero-filled (a static
 * or zeroed object) before the first call; zinit allocates its own.  Every
 * field is private to slabkit: read statistics with slabkit_zone_stats().
 */
typedef struct vm_zone {
	int zspin;           /* lock of the global part */
	int zgrow;           /* interrupt zones: growth lock */
	void *zitems;        /* global free list, linked through word 0 */
	long zfreecnt;       /* items on zitems */
	long zfreemin;       /* reserve never moved to thread caches */
	long znalloc;        /* allocations served from the global part */
	uintptr_t zkva;      /* interrupt zones: reserved item space */
	long zpagecount;     /* pages committed (interrupt) */
	long zpagemax;       /* pages reserved (interrupt) */
	long zmax;           /* item limit; 0: unlimited */
	long zmax_pcpu;      /* cap of each thread cache */
	long ztotal;         /* items created */
	long zsize;          /* item size */
	long zalloc;         /* pages per growth */
	long zflags;         /* ZONE_* */
	uint32_t zallocflag; /* kernel VM flags (unused) */
	uint32_t zstate;     /* slabkit: initialisation state */
	const char *zname;   /* name for statistics and panics */
	struct {
		struct vm_zone *le_next;
		struct vm_zone **le_prev;
	} zlink;           /* entry in the zone list */
	uintptr_t *zkmvec; /* destroyable normal zones: mapped blocks */
	long zkmcur;       /* blocks recorded */
	long zkmmax;       /* room in zkmvec */
	/* slabkit: the lock-free free list of interrupt zones */
	uint64_t zhead;   /* atomic: tag << 32 | (index + 1) */
	uint32_t *zlinks; /* atomic: next index + 1 per item */
	long zlinkpages;  /* pages of zlinks committed */
	long zcarved;     /* atomic: items carved from zkva */
	char *zbootbase;  /* zbootinit's array */
	long zbootcnt;    /* items in it */
	size_t zresv;     /* bytes reserved at zkva (items + links) */
	long zpages;      /* pages mapped by normal growth */
	void *zreserved[4];
	vm_zpcpu_t zpcpu[ZONE_NCACHES];
} * vm_zone_t;

/*
 * Make a zone whose structure slabkit allocates (mmap, not kmalloc).
 * size is rounded up to a multiple of 32.  nentries counts only for
 * ZONE_INTERRUPT: the most items the zone will ever hold, whose address
 * space is reserved now.  ZONE_DESTROYABLE makes zdestroy() legal.
 * Returns NULL when the structure or the reservation cannot be mapped.
 * Any thread; may block.
 */
SLABKIT_API vm_zone_t zinit(
    const char *name, size_t size, long nentries, uint32_t flags);

/*
 * Initialise a caller-provided zone, or finish one made by zbootinit (its
 * size and items are kept, and it may grow from now on).  Returns 1, or 0
 * when an interrupt zone's address space cannot be reserved.  Panics if
 * ZONE_DESTROYABLE is asked for or preset.  The zone stays listed for the
 * life of the process: its storage must outlive every use.
 */
SLABKIT_API int zinitna(
    vm_zone_t z, const char *name, size_t size, long nentries, uint32_t flags);

/*
 * Make a zone from the caller's array of nitems items of size bytes
 * (zeroed here), usable before anything else in slabkit has run: it maps
 * nothing, allocates nothing and does not initialise the library.  The
 * size is not rounded; it must be a multiple of the pointer size and hold
 * two pointers.  The zone cannot grow until zinitna() is called on it.
 */
SLABKIT_API void zbootinit(
    vm_zone_t z, const char *name, size_t size, void *item, long nitems);

/*
 * An item, or NULL when the zone cannot grow (interrupt zone full, boot
 * zone before zinitna, mmap failure); ZONE_PANICFAIL panics instead.
 * Any thread; a normal zone may block in mmap; interrupt zones are
 * async-signal-safe.
 */
SLABKIT_API void *zalloc(vm_zone_t z);

/* Give an item back.  Any thread; async-signal-safe on interrupt zones. */
SLABKIT_API void zfree(vm_zone_t z, void *item);

/*
 * Unmap everything a ZONE_DESTROYABLE zone made by zinit() owns, the zone
 * structure included.  Panics for any other zone.  No other call on the
 * zone may run or follow.
 */
SLABKIT_API void zdestroy(vm_zone_t z);

/* zerror() codes (vm_zone.c). */
#define ZONE_ERROR_INVALID     0 /* "zone: invalid zone" */
#define ZONE_ERROR_NOTFREE     1 /* "zone: entry not free" */
#define ZONE_ERROR_ALREADYFREE 2 /* "zone: freeing free entry" */

/*
 * zerror: the kernel's INVARIANTS diagnostic, a panic whose message names
 * the error ("slabkit: zerror: zone: freeing free entry"); an unknown code
 * gives "zone: invalid error".  Never returns.  Any thread.
 */
SLABKIT_API void zerror(int error) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* SLABKIT_ZONE_H */
