/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc's private interface, shared by kmalloc.c (sizing, types,
 * statistics, entry points), kmalloc_zone.c (zones, remote frees, the zone
 * arena, the backend) and kmalloc_large.c (large blocks) only; the rest of
 * the library sees internal.h.  Functions called across these files are
 * named sk_km_<verb>; the tiny, hot ones are static inline here.  Nothing
 * on the paths of sk_kmalloc_inline() and sk_kfree_inline()
 * (kmalloc_fast.h) calls into this header's out-of-line functions.
 */
#ifndef SK_KMALLOC_IMPL_H
#define SK_KMALLOC_IMPL_H

#include "internal.h"
#include "kmalloc_fast.h"

/* z_flags bits of kmalloc (the low bits are SLZF_*). */
#define ZF_ONLIST    0x8000 /* z_flags: listed in ZoneAry */
#define ZF_EXHAUSTED 0x4000 /* z_flags: on the shard's exhausted list */
#define ZF_GRANULE   0x2000 /* z_flags: granule bitmaps, encoded links */
/* Zones of the exhausted list one bounded look visits (zone_new). */
#define SK_EXH_SCAN  8

/* Chunk index of p in z, or -1 when p is not a chunk boundary of z. */
static inline long
zone_chunk_index(struct sk_slzone *z, const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)z->z_baseptr;
	uintptr_t idx;

	if (SK_UNLIKELY((uintptr_t)p < (uintptr_t)z->z_baseptr))
		return -1;
	idx = (uintptr_t)(((uint64_t)off * z->z_chunkmul) >> 32);
	if (SK_UNLIKELY(
	        idx >= (uintptr_t)z->z_nmax || idx * z->z_chunksize != off))
		return -1;
	return (long)idx;
}

/* The bit of chunk c (a chunk boundary) in z's bitmaps. */
static inline size_t
zone_bit(struct sk_slzone *z, const void *c)
{
	if (SK_LIKELY(SK_LOAD(&z->z_flags) & ZF_GRANULE))
		return sk_zone_granule((uintptr_t)c);
	return (size_t)zone_chunk_index(z, c);
}

static inline bool
bit_get(uint32_t *w, size_t b)
{
	return (SK_LOAD(&w[SK_ZWORD(b)]) >> (b & 31)) & 1;
}

static inline void
bit_put(uint32_t *w, size_t b, bool v)
{
	uint32_t x = SK_LOAD(&w[SK_ZWORD(b)]);

	if (v)
		x |= 1u << (b & 31);
	else
		x &= ~(1u << (b & 31));
	SK_STORE(&w[SK_ZWORD(b)], x);
}

/* Handed out and not remote-freed: a live chunk. */
static inline bool
zone_chunk_live(struct sk_slzone *z, const void *c)
{
	size_t b = zone_bit(z, c);

	return bit_get(z->z_abits, b) && !bit_get(z->z_rbits, b);
}

/* kmalloc.c: types and statistics (spec 1.2, 1.4 steps 1-3 and 9). */
void sk_km_type_check(struct malloc_type *type, const char *api);
void sk_km_stats_alloc(
    struct malloc_type *type, struct sk_shard *sh, size_t bytes);
void sk_km_stats_calls(struct malloc_type *type, struct sk_shard *sh);
void sk_km_stats_free(
    struct malloc_type *type, struct sk_shard *sh, size_t bytes);
size_t sk_km_round_flags(size_t size, int *flags);
void sk_km_fold_frees(struct kmalloc_use *u);
void sk_km_maxused_note(struct malloc_type *type);
bool sk_km_limit_check(struct malloc_type *type, int flags);

/* kmalloc_zone.c: set-up, the backend, release, reports. */
void sk_km_zone_init(void);
/* What sk_km_backend maps: pages of their own, a zone (from the zone
 * arena), or a run of the page-run heap; *zeroed: it reads as zero. */
#define SK_KM_MAP	0
#define SK_KM_ZONE	1
#define SK_KM_HEAP	2
void *sk_km_backend(struct sk_shard *sh, size_t size, size_t align, int flags,
    int kind, bool *zeroed);
void sk_km_release_free_zones(struct sk_shard *sh, int keep);
void sk_km_set_release(struct sk_shard *sh);
void sk_km_shard_update_slow(struct sk_shard *sh);
long sk_km_chunk_index(struct sk_slzone *z, const void *ptr, const char *api);
__attribute__((noreturn)) void sk_km_bad_pointer(
    const void *ptr, const char *api);

/* kmalloc_large.c */
/* The shard a large block's work runs on: a CPU's shard is given back
 * first (the caller gives back the one returned instead). */
struct sk_shard *sk_km_large_shard(struct sk_shard *sh);
void *sk_km_large(struct sk_shard *sh, size_t size, size_t align,
    struct malloc_type *type, int flags);
/* Frees a large block, counted on *shp (held), then sets *shp to the
 * shard sk_km_large_shard gives for the rest of the work. */
void sk_km_large_free(struct sk_shard **shp, void *ptr, int32_t npages,
    struct malloc_type *type);
void *sk_km_large_realloc(
    void *ptr, size_t osize, size_t size, struct malloc_type *type, int flags);

#endif /* SK_KMALLOC_IMPL_H */
