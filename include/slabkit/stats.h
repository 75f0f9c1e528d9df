/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit/stats.h: statistics snapshots and the vmstat-style printers.
 *
 * Counters are kept per thread slot and merged when read, so a snapshot
 * taken while other threads allocate is a consistent-enough sum, never a
 * torn value (negative sums read as 0, as in vmstat).
 *
 * Thread safety: any thread; the printers take the registry lock, so a
 * callback given to kmalloc_type_foreach must not create or destroy types.
 */
#ifndef SLABKIT_STATS_H
#define SLABKIT_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <slabkit/kmalloc.h>
#include <slabkit/objcache.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLABKIT_STATS_VERSION 1

/* One malloc type's merged statistics (vmstat -m row). */
struct kmalloc_type_stats {
	uint32_t size;		/* sizeof(struct kmalloc_type_stats) */
	uint32_t version;	/* SLABKIT_STATS_VERSION */
	const char *shortdesc;	/* the type's name */
	size_t	inuse;		/* live allocations */
	size_t	memuse;		/* bytes in live allocations (rounded) */
	size_t	maxused;	/* high-water mark of memuse */
	uint64_t calls;		/* kmalloc calls, failures and size 0 too */
	size_t	limit;		/* byte limit (ks_limit) */
	uint64_t reserved[4];
};

/* Fill *st for one type; returns 0, or EINVAL for a type without magic. */
SLABKIT_API int kmalloc_type_stats(struct malloc_type *type,
    struct kmalloc_type_stats *st);

/*
 * Call fn for every registered type, in registration order, until it
 * returns non-zero (which is then returned).  Returns 0 after the last type.
 */
SLABKIT_API int kmalloc_type_foreach(
    int (*fn)(struct malloc_type *type, const struct kmalloc_type_stats *st,
	void *arg),
    void *arg);

/* The `vmstat -m' table of every type with calls. */
SLABKIT_API void slabkit_print_vmstat_m(FILE *fp);

/* Printer flags. */
#define SLABKIT_STATS_TEXT	0x0000
#define SLABKIT_STATS_JSON	0x0001

/*
 * Every allocator's tables: kmalloc (vmstat -m), objcache, mpipe and zone
 * (vm.zone and vmstat -z).  With SLABKIT_STATS_JSON, one JSON object.
 * SLABKIT_OPTIONS=stats prints this to stderr at exit.
 */
SLABKIT_API void slabkit_stats_print(FILE *fp, int flags);

/*
 * Object caches (objcache.h): fill up to nmax records, one per cache in
 * creation order (buf may be NULL when nmax is 0), and return the number
 * of caches.  Any thread.
 */
SLABKIT_API int objcache_stats_snapshot(struct objcache_stats *buf,
    int nmax);

/* Zones (zone.h): one zone's merged statistics (vm.zone row). */
struct vm_zone;
struct vm_zone_stats {
	uint32_t size;		/* sizeof(struct vm_zone_stats) */
	uint32_t version;	/* SLABKIT_STATS_VERSION */
	const char *name;	/* zname */
	size_t	itemsize;	/* zsize */
	long	limit;		/* zmax; 0: unlimited */
	long	total;		/* ztotal: items created */
	long	used;		/* total - free */
	long	free;		/* global list plus thread caches */
	long	cached;		/* of which in thread caches */
	uint64_t requests;	/* znalloc, summed over the caches */
	uint32_t flags;		/* ZONE_* */
	uint32_t reserved0;
	long	pages;		/* pages mapped or committed */
	uint64_t reserved[4];
};

/* Fill *st for one zone; returns 0, or EINVAL for NULL. */
SLABKIT_API int slabkit_zone_stats(struct vm_zone *z,
    struct vm_zone_stats *st);

/* Call fn for every listed zone, newest first, until it returns non-zero
 * (returned); fn must not create or destroy zones. */
SLABKIT_API int slabkit_zone_foreach(
    int (*fn)(struct vm_zone *z, const struct vm_zone_stats *st, void *arg),
    void *arg);

/* The sysctl vm.zone table and the `vmstat -z' lines. */
SLABKIT_API void slabkit_print_vm_zone(FILE *fp);
SLABKIT_API void slabkit_print_vmstat_z(FILE *fp);

#ifdef __cplusplus
}
#endif

#endif /* SLABKIT_STATS_H */
