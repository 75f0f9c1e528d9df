/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc's fast paths, inline: kmalloc.c builds kmalloc/kfree from them
 * and malloc.c the malloc(3) drop-in's malloc and free, specialised for
 * its one type and constant flags.
 *
 * Both work on a shard they hold for the length of the call
 * (sk_kshard_try/leave, internal.h): the thread's own, or with shards per
 * CPU the current CPU's, taken with a restartable sequence (cpu.c); a
 * shard that another thread holds sends the call to its slow path, which
 * waits.  Each fast path is compiled twice, one copy per kind of shard
 * (sk_kshard_take): only the CPU's copy ends with the store that gives
 * the shard back.  The public entry points go further: kmalloc, kfree,
 * malloc and free are one indirect jump to a function per kind of shard,
 * built for the baseline and again for BMI2 (internal.h, "The copies of
 * the entry points"), so that they test no mode at all.
 *
 * A request of 1..1024 bytes finds its zone with one load from the
 * shard's direct table (indexed by size / 8, or size / 16 for malloc):
 * the current zone of the class, or the sentinel zone whose free list is
 * always empty.  Every "not now" case (no zone yet, a zone that ran dry,
 * a debug option, a shard without its own statistics slot) is that one
 * empty-list test.  The chunk comes off the zone's local list; its link
 * is stored encoded with the zone's key and must decode to an address in
 * the same zone, else the list was written after free and kmalloc stops
 * with "free list of zone ... corrupted, use after free?".  The chunk's
 * bit in the zone's granule bitmap (one bit per 8 bytes, counted from the
 * zone's base so that word and bit come from the address alone: two
 * instructions fewer a pair than counting from the header) is set, and
 * if it was set already the list led to a chunk in use: the same
 * message.
 * Statistics are one single-instruction add to the shard's slot of the
 * type: the zone's z_statinc, (chunksize << 16) + 1, which counts the
 * call in the low 16 bits and its bytes for the lazy limit estimate of
 * spec 1.4 step 3 in the high ones, biased so that the add's sign flag
 * says "a ZoneSize worth was allocated: fold".  kfree adds the same to
 * the slot's free word, folded the same way (sk_kfree_folded); kmalloc.c
 * derives InUse, MemUse and calls from the words on read.
 *
 * kfree finds the zone by masking, after one range test proves the
 * pointer lies in the zone arena (so reading the header is safe; anything
 * else, NULL and large blocks included, takes the slow path which looks
 * at the page tags) and is 8-aligned (the same compare, on the offset
 * rotated right by 3 bits: sk_zarena_has_aligned).  It is a local free
 * when the zone's z_fastowner is the shard's fastkey (the shard itself
 * unless a debug option is on).  The pointer must not be waiting in the
 * remote bitmap, and its bit in the granule bitmap must be set: the bit
 * is set only on the first granule of a chunk in use, so interior
 * pointers and double frees fail that one test whatever the program wrote
 * into the chunk, and the slow path says which it was.
 */
#ifndef SK_KMALLOC_FAST_H
#define SK_KMALLOC_FAST_H

#include <string.h>

#include "internal.h"

static_assert(M_RNOWAIT == 1 && M_WAITOK == 2 && M_POWEROF2 > 3 &&
	M_CACHEALIGN > 3, "the fast path's flag test needs these values");

/* The bitmaps of an ordinary zone start right after its header, sized
 * for its ZoneSize (64 KiB: 1 KiB a map), interleaved 64 bits at a time
 * (internal.h): the rbits of a granule sit 8 bytes after its abits. */
#define SK_ZABITS(z) ((uint32_t *)((struct sk_slzone *)(z) + 1))
#define SK_ZRBITS(z) (SK_ZABITS(z) + 2)

/*
 * The owner's bit operations on the granule of chunk address p in map w
 * (SK_ZABITS or SK_ZRBITS of p's zone).  Granules count from the zone's
 * base (sk_zone_granule, internal.h), so both the word and the bit come
 * from p alone, with no subtraction of the header's address: the bit is
 * bit p / 8 mod 64 of the 64-bit word sk_gbit_word(w, p).
 */
/* The byte offset of p's pair of 64-bit words (abits, then rbits: 16
 * bytes a pair, one pair per 64 granules) from the start of the maps. */
static inline size_t
sk_gbit_off(uintptr_t p)
{
	/* p >> 5 (the bits rotated in land above zone_wmask) */
	return SK_ROTR(p, 5) & sk_slab.zone_wmask;
}

static inline uint64_t *
sk_gbit_word(const uint32_t *w, uintptr_t p)
{
	return (uint64_t *)((uintptr_t)w + sk_gbit_off(p));
}

#if defined(__x86_64__) && !defined(SLABKIT_TSAN)
/*
 * On x86-64 they load the 64-bit word, use the register forms of
 * bts/btr/bt (one micro-op each; the memory forms with a register bit
 * offset are microcoded and cost more than the load and store) and store
 * it back.  The register forms take the bit number modulo 64: p / 8, or
 * p rotated right by 3, the same modulo 64 and one rorx with BMI2.
 */
/* Set p's bit of an owner-only map; the bit's old value. */
static inline bool
sk_gbit_set_old(uint32_t *w, uintptr_t p)
{
	uint64_t *q = sk_gbit_word(w, p), x;
	bool old;

	/* one block, so that the load and the store both address the word
	 * (the compiler would compute the address into a register first) */
	__asm__("movq %0, %1\n\tbtsq %3, %1\n\tmovq %1, %0"
	        : "+m"(*q), "=&r"(x), "=@ccc"(old)
	        : "r"((uint64_t)SK_ROTR(p, 3)));
	return old;
}
/* Clear p's bit of an owner-only map; the bit's old value. */
static inline bool
sk_gbit_clear_old(uint32_t *w, uintptr_t p)
{
	uint64_t *q = sk_gbit_word(w, p), x;
	bool old;

	__asm__("movq %0, %1\n\tbtrq %3, %1\n\tmovq %1, %0"
	        : "+m"(*q), "=&r"(x), "=@ccc"(old)
	        : "r"((uint64_t)SK_ROTR(p, 3)));
	return old;
}
static inline bool
sk_gbit_test(const uint32_t *w, uintptr_t p)
{
	uint64_t x = *sk_gbit_word(w, p);
	bool v;

	__asm__("btq %2, %1"
	        : "=@ccc"(v)
	        : "r"(x), "r"((uint64_t)SK_ROTR(p, 3)));
	return v;
}
#else
static inline bool
sk_gbit_set_old(uint32_t *w, uintptr_t p)
{
	size_t b = sk_zone_granule(p);
	uint32_t x = SK_LOAD(&w[SK_ZWORD(b)]), m = 1u << (b & 31);

	SK_STORE(&w[SK_ZWORD(b)], x | m);
	return (x & m) != 0;
}
static inline bool
sk_gbit_clear_old(uint32_t *w, uintptr_t p)
{
	size_t b = sk_zone_granule(p);
	uint32_t x = SK_LOAD(&w[SK_ZWORD(b)]), m = 1u << (b & 31);

	SK_STORE(&w[SK_ZWORD(b)], x & ~m);
	return (x & m) != 0;
}
static inline bool
sk_gbit_test(const uint32_t *w, uintptr_t p)
{
	size_t b = sk_zone_granule(p);

	return (SK_LOAD(&w[SK_ZWORD(b)]) >> (b & 31)) & 1;
}
#endif

/*
 * A relaxed load of a word only other threads' debug switch writes, or of
 * the zone arena's size (it only grows: an old value sends a pointer in a
 * new zone to the slow path, which reads it again): a plain load, which
 * lets the compiler fold it into the instruction that uses it
 * (ThreadSanitizer builds keep the atomic).
 */
#ifdef SLABKIT_TSAN
#define SK_LOAD_FAST(p) SK_LOAD(p)
#else
#define SK_LOAD_FAST(p) (*(p))
#endif

/*
 * Keep pointer p in the return register from here on: the chunk a fast
 * path pops is what it returns, and GCC, left alone, gave that register
 * to the zone and moved the chunk over before the ret (one instruction a
 * call).  Only a hint to the register allocator: no code of its own.
 */
#if defined(__x86_64__) && !defined(SLABKIT_TSAN)
#define SK_IN_RETURN_REG(p) __asm__("" : "+a"(p))
#else
#define SK_IN_RETURN_REG(p) ((void)0)
#endif

/* Out of line (kmalloc_zone.c). */
void *sk_kmalloc_slow(size_t size, struct malloc_type *type, int flags);
void sk_kfree_slow(void *ptr, struct malloc_type *type, const char *api);
/* ptr, type and api first: where sk_kfree_slow, to which it may jump,
 * wants them (and where free's caller put ptr), so no register moves */
void sk_kfree_notlocal(void *ptr, struct malloc_type *type, const char *api,
    struct sk_shard *sh, struct sk_slzone *z);
void sk_kfree_emptied(struct sk_shard *sh, struct sk_slzone *z);
/* These never return; not declared noreturn so that the fast paths leave
 * by a jump and need no stack frame of their own. */
__attribute__((cold)) void *sk_zone_link_corrupted(
    struct sk_slzone *z, struct sk_chunk *c, uintptr_t v);
__attribute__((cold)) void *sk_zone_chunk_in_use(
    struct sk_slzone *z, struct sk_chunk *c);

/* The stored form of a link to next in an ordinary zone of key key. */
static inline struct sk_chunk *
sk_zone_link_enc(uintptr_t next, uintptr_t key)
{
	return (struct sk_chunk *)(next ^ key);
}

/* The decoded link of free chunk c of ordinary zone z (unchecked). */
static inline uintptr_t
sk_zone_link(struct sk_slzone *z, struct sk_chunk *c)
{
	return (uintptr_t)c->c_next ^ z->z_key;
}

/* A decoded link must lead into the same zone (or be the zone itself,
 * which ends the list). */
static inline bool
sk_zone_link_bad(struct sk_chunk *c, uintptr_t n)
{
	return SK_UNLIKELY((n ^ (uintptr_t)c) >= sk_slab.zone_size);
}

/*
 * Hand out c, the head of z's list (the caller counted it in its slot
 * already), and give back sh, the shard the caller holds (a CPU's when
 * cpu).  Written so that the corruption reports are jumps, not calls
 * (they never return, and the shard stays held).
 */
static inline void *
sk_zone_take_fast(
    struct sk_shard *sh, struct sk_slzone *z, struct sk_chunk *c, bool cpu)
{
	uintptr_t n = sk_zone_link(z, c);

	if (sk_zone_link_bad(c, n))
		return sk_zone_link_corrupted(z, c, n);
	z->z_lchunks = (struct sk_chunk *)n;
	if (SK_UNLIKELY(sk_gbit_set_old(SK_ZABITS(z), (uintptr_t)c)))
		return sk_zone_chunk_in_use(z, c);
	z->z_nused++;
	sk_kshard_done(sh, cpu);
	return c;
}


void *sk_kmalloc_zeroed(
    struct sk_shard *sh, struct sk_slzone *z, struct sk_chunk *c);
void sk_kfree_folded(
    struct sk_shard *sh, struct sk_slzone *z, struct kmalloc_use *u);

/*
 * The end of a local free: one chunk fewer in use, and sh given back.  A
 * wholly free zone leaves its list unless it is the only one of its class
 * (spec 1.6 step 6): the one-object case stays here, off the "empty slab
 * cliff".  Shared by the inline kfree and sk_kfree_folded.
 */
static inline void
sk_zone_freed_leave(struct sk_shard *sh, struct sk_slzone *z, bool cpu)
{
	/* (the links or'ed: one test for both, 72.1 -> 71.1 a pair with one
	 * object live) */
	if (SK_UNLIKELY(--z->z_nused == 0) &&
	    ((uintptr_t)z->z_next | (uintptr_t)z->z_prev) != 0) {
		sk_kfree_emptied(sh, z); /* gives sh back */
		return;
	}
	sk_kshard_done(sh, cpu);
}

/*
 * The shard sk_kshard_try() takes, and in *cpu whether it is a CPU's.
 * The fast paths branch on *cpu right away and run a copy of their rest
 * for each kind, with cpu a constant in each.  The branch carries no
 * hint: a process with more threads than CPUs runs the CPU's copy on
 * every call, and an "unlikely" copy is laid out as cold code (its
 * common exits became taken jumps, larson 2% slower).
 */
enum sk_take {
	SK_TAKE_ANY,    /* the kind sk_cpu.active says */
	SK_TAKE_THREAD, /* the thread's (a copy for shards per thread) */
	SK_TAKE_CPU     /* the CPU's (a copy for shards per CPU) */
};

/* how: SK_TAKE_ANY, or in the drop-in's copies of malloc and free for
 * one mode (malloc.c), the kind that copy serves, with no test. */
__attribute__((always_inline)) static inline struct sk_shard *
sk_kshard_take(bool *cpu, enum sk_take how)
{
	struct sk_shard *sh;

#ifdef SK_HAVE_RSEQ
	*cpu =
	    how == SK_TAKE_CPU || (how == SK_TAKE_ANY && SK_CPU_FAST_ACTIVE());
	if (*cpu)
		return sk_kshard_cpu_take();
#else
	*cpu = false;
#endif
	sh = sk_tls_kshard;
	if (sh == NULL)
		__builtin_unreachable();
	return sh;
}

/* The rest of kmalloc's fast path, on sh (a CPU's when cpu). */
__attribute__((always_inline)) static inline void *
sk_kmalloc_on(size_t size, struct malloc_type *type, int flags,
    struct sk_shard *sh, bool cpu)
{
	struct kmalloc_use *u;
	struct sk_slzone *z;
	struct sk_chunk *c;
	uint64_t inc;

	z = SK_LOAD_FAST(&sh->direct8[(size - 1) >> 3]);
	c = z->z_lchunks;
	SK_IN_RETURN_REG(c);
	if (SK_UNLIKELY(c == (struct sk_chunk *)z))
		goto slow;
	u = (struct kmalloc_use *)((char *)type->ks_use + sh->uoff);
	/* the call and its bytes, packed (kmalloc.c, "Statistics updates") */
	inc = z->z_statinc;
	if (SK_UNLIKELY(sk_slot_add_nonneg(&u->loosememuse, inc))) {
		sk_slot_sub(&u->loosememuse, inc); /* the slow path folds */
		goto slow;
	}
	if (flags & M_ZERO)
		return sk_kmalloc_zeroed(sh, z, c);
	return sk_zone_take_fast(sh, z, c, cpu);
slow:
	sk_kshard_done(sh, cpu);
	return sk_kmalloc_slow(size, type, flags);
}

/* kmalloc: the kernel's entry checks, then the direct table, on the shard
 * how says. */
__attribute__((always_inline)) static inline void *
sk_kmalloc_inline(
    size_t size, struct malloc_type *type, int flags, enum sk_take how)
{
	struct sk_shard *sh;
	bool cpu;

	/* loose >= limit also catches an uninitialised type (limit 0); the
	 * flags must name M_WAITOK or M_RNOWAIT (or both) and no rounding:
	 * those four bits minus one is below M_RNOWAIT | M_WAITOK */
	if (SK_UNLIKELY(size - 1 >= SK_DIRECT8 * 8 ||
		((unsigned)flags & (M_CACHEALIGN | M_POWEROF2 | M_WAITOK |
				       M_RNOWAIT)) - 1u >=
		    (unsigned)(M_WAITOK | M_RNOWAIT) ||
		SK_LOAD(&type->ks_loosememuse) >= SK_LOAD_FAST(&type->ks_limit)))
		return sk_kmalloc_slow(size, type, flags);
	sh = sk_kshard_take(&cpu, how);
	if (cpu) {
		if (SK_UNLIKELY(sh == NULL))
			return sk_kmalloc_slow(size, type, flags);
		return sk_kmalloc_on(size, type, flags, sh, true);
	}
	return sk_kmalloc_on(size, type, flags, sh, false);
}

typedef void sk_kfree_slow_fn(void *, struct malloc_type *, const char *);

/* The rest of kfree's fast path for ptr in zone z, on sh (a CPU's when
 * cpu). */
__attribute__((always_inline)) static inline void
sk_kfree_on(void *ptr, struct sk_slzone *z, struct malloc_type *type,
    struct kmalloc_use *ubase, const char *api, sk_kfree_slow_fn *slow,
    bool dropin, struct sk_shard *sh, bool cpu)
{
	uintptr_t p = (uintptr_t)ptr;
	struct kmalloc_use *u;

	if (SK_UNLIKELY(SK_LOAD(&z->z_fastowner) != SK_LOAD_FAST(&sh->fastkey))) {
		sk_kfree_notlocal(ptr, type, api, sh, z);
		return;
	}
	if (SK_UNLIKELY(sk_gbit_test(SK_ZRBITS(z), p) ||
	                !sk_gbit_clear_old(SK_ZABITS(z), p))) {
		sk_kshard_done(sh, cpu);
		slow(ptr, type, api);
		return;
	}
	((struct sk_chunk *)ptr)->c_next =
	    sk_zone_link_enc((uintptr_t)z->z_lchunks, z->z_key);
	z->z_lchunks = ptr;
	u = dropin ? sh->dropin_use
		   : (struct kmalloc_use *)((char *)ubase + sh->uoff);
	/* the free and its bytes, packed; every ZoneSize bytes a fold */
	if (SK_UNLIKELY(sk_slot_add_nonneg(SK_USE_FREES(u), z->z_statinc))) {
		sk_kfree_folded(sh, z, u); /* gives sh back */
		return;
	}
	sk_zone_freed_leave(sh, z, cpu);
}

/*
 * kfree of ptr counted in the slot array ubase (type->ks_use, checked by
 * the caller; with dropin, the drop-in's type, whose slot the shard
 * points at), on the shard how says.  slow is the function for everything
 * else.
 */
__attribute__((always_inline)) static inline void
sk_kfree_inline(void *ptr, struct malloc_type *type, struct kmalloc_use *ubase,
    const char *api, sk_kfree_slow_fn *slow, bool dropin, enum sk_take how)
{
	uintptr_t p = (uintptr_t)ptr;
	struct sk_shard *sh;
	bool cpu;

	/* in the arena and 8-aligned (the granule bits cannot tell p from
	 * p rounded down to 8), else the slow path says what it is */
	if (SK_UNLIKELY(
	        !sk_zarena_has_aligned(p, SK_LOAD_FAST(&sk_zarena_used8)))) {
		slow(ptr, type, api);
		return;
	}
	sh = sk_kshard_take(&cpu, how);
	if (cpu) {
		if (SK_UNLIKELY(sh == NULL))
			slow(ptr, type, api);
		else
			sk_kfree_on(ptr, sk_zone_at(p), type, ubase, api, slow,
			    dropin, sh, true);
		return;
	}
	sk_kfree_on(
	    ptr, sk_zone_at(p), type, ubase, api, slow, dropin, sh, false);
}

/*
 * The chunk size of ptr when it is the start of a live chunk of a zone the
 * calling shard owns, else 0: the tests of kfree's fast path without the
 * free.  The drop-in's realloc keeps such a chunk in place without
 * leaving the inline path.  Besides the zones the fast paths serve, this
 * takes the shard's full zones (off their list, z_fastowner cleared):
 * their bitmaps are the shard's to read (without a debug option every
 * zone has granule bitmaps), and a chunk that does not stay is freed
 * through kfree, which takes them slowly.  realloc-growth grows its
 * buffers through chunks of 4-16 KiB, whose zones hold 8-32 chunks and
 * are full much of the time: 36,451 of its 397,273 reallocs went to
 * krealloc's slow path for that alone.
 */
static inline size_t
sk_chunk_size_local(const void *ptr)
{
	struct sk_shard *sh;
	uintptr_t p = (uintptr_t)ptr;
	struct sk_slzone *z;
	size_t size = 0;

	if (SK_UNLIKELY(
	        !sk_zarena_has_aligned(p, SK_LOAD_FAST(&sk_zarena_used8))))
		return 0;
	z = sk_zone_at(p);
	sh = sk_kshard_try();
	if (SK_UNLIKELY(sh == NULL))
		return 0;
	if (SK_LIKELY((SK_LOAD(&z->z_fastowner) == SK_LOAD_FAST(&sh->fastkey) ||
	                  (SK_LOAD(&z->z_owner) == sh &&
	                      SK_LOAD_FAST(&sh->fastkey) == sh &&
	                      z->z_magic == SK_SLAB_MAGIC)) &&
	              !sk_gbit_test(SK_ZRBITS(z), p) &&
	              sk_gbit_test(SK_ZABITS(z), p)))
		size = z->z_chunksize;
	sk_kshard_leave(sh);
	return size;
}

#endif /* SK_KMALLOC_FAST_H */
