/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The malloc(3) drop-in: the C library's allocation interface on kmalloc,
 * the way DragonFly's own libc (nmalloc.c) put its userland malloc on a
 * port of the kernel slab allocator.
 *
 * Model.  Every block belongs to one library malloc type, "malloc"
 * (M_LIBC), so `vmstat -m' style statistics show the whole program's heap
 * as one row.  malloc(n) is kmalloc(n rounded up to 16, M_LIBC, flags); the
 * rounding gives the 16-byte alignment glibc promises on x86-64 (kmalloc's
 * zone chunk bases are 16-aligned and every multiple of 16 below 128 is a
 * class of its own, so a multiple-of-16 request lands on a 16-aligned
 * chunk; larger classes are coarser, large blocks are page aligned).  free
 * is kfree; realloc is krealloc; the aligned family uses
 * sk_kmalloc_aligned, which picks a power-of-two class or aligned pages.
 *
 * The fast paths are one rounding, one range test and a direct call to
 * the hidden sk_ function: no lock, no atomic, no errno access.  malloc
 * and free are tail calls (7 and 4 instructions on x86-64).  Size 0 and
 * sizes too large for any block are caught by the same unsigned compare
 * and handled out of line.  malloc leaves a failure's errno to kmalloc,
 * whose only way to fail with these flags and an unlimited type is a
 * refused mapping (mmap's ENOMEM); the other entry points check for NULL
 * and set ENOMEM themselves.
 *
 * The contract is glibc's on x86-64 (see slabkit_malloc(3)):
 * - malloc(0) returns a unique, freeable 16-byte block, never NULL
 *   (kmalloc(0) would return ZERO_LENGTH_PTR, which free must not see);
 * - failure returns NULL with errno = ENOMEM and never aborts: the flags
 *   are M_WAITOK | M_NULLOK | SK_M_NORETRY, so a failed mapping gets one
 *   reclaim pass and then NULL, and the type's limit is raised to the
 *   whole address space so it never trips;
 * - sizes above PTRDIFF_MAX (indeed above 8 TiB, the largest block a
 *   32-bit page tag describes) and overflowing products (calloc,
 *   reallocarray, pvalloc) fail with ENOMEM, bad alignments with EINVAL;
 * - errno is not touched on success;
 * - bad pointers given to free, realloc or malloc_usable_size (never
 *   allocated, interior, already freed) are reported as
 *   "slabkit: free: ... (ptr 0x...)" and abort, like glibc's
 *   "free(): invalid pointer", because kmalloc's page tags and chunk
 *   bitmaps see them before anything is written.
 *
 * Start-up order.  The dynamic loader and other libraries' constructors
 * may call malloc before this library's constructor runs.  That is fine:
 * the first kmalloc initialises the library and registers M_LIBC with the
 * kernel's default limit (10% of memory), the constructor below raises it,
 * and an allocation that fails while the limit is still the default
 * raises it and retries.  M_LIBC is not made with MALLOC_DEFINE because
 * that macro unregisters the type from a destructor: the heap of a
 * process must stay registered (and listed by the at-exit statistics)
 * until the very end, since other destructors still allocate.
 *
 * Threads, fork, dlopen.  Each thread allocates from its own shard (see
 * shard.c); its zones are parked when it exits and adopted by the next
 * thread.  fork() is handled by the shard layer's atfork handlers, which
 * hold the only locks an allocation can take, so the child of a
 * multithreaded parent can allocate at once.  Memory glibc allocates for
 * itself (strdup, getline, stdio buffers, thread stacks' TLS, dlopen's
 * link maps) comes through these same entry points, because glibc routes
 * its internal calls through the interposable symbols; the __libc_*
 * aliases below cover code that names glibc's internal entry points.
 *
 * Not async-signal-safe, like glibc's malloc: a signal handler that
 * allocates while the interrupted code is inside malloc on the same
 * thread may corrupt that thread's lists.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kmalloc_fast.h"

#define MALLOC_API   __attribute__((visibility("default")))
#define MALLOC_FLAGS (M_WAITOK | M_NULLOK | SK_M_NORETRY)
#define MALLOC_ALIGN 16
/* The largest block: kmalloc keeps a large block's page count in a 32-bit
 * page tag, so 2^31 - 1 pages of 4 KiB (8 TiB less a page); far below
 * PTRDIFF_MAX.  Larger requests fail here with ENOMEM. */
#define MALLOC_MAX   ((size_t)INT32_MAX << 12)
#define LIMIT_RAISED ((size_t)1 << 47) /* kmalloc_raise_limit(type, 0) */

/*
 * The library's malloc type.  It is registered by the first allocation
 * (kmalloc's lazy malloc_init) or by the constructor, whichever comes
 * first, and never unregistered.
 */
/* Tells kmalloc_zone.c it serves malloc(3) (zone colouring off by default). */
const int sk_malloc_dropin = 1;

/* Its statistics slots exist from the start, so the inline paths never
 * meet an uninitialised type (malloc_init keeps an array it finds).  A
 * slot is one cache line, written by its own shard only: aligned, so that
 * no two shards' counters share a line. */
struct kmalloc_use sk_dropin_use[SK_NSLOTS] SK_ALIGNED(SK_CACHELINE);
static_assert(__alignof__(sk_dropin_use) >= SK_CACHELINE,
    "the drop-in's statistics slots start on a cache line");

struct malloc_type M_LIBC[1] = {{
    .ks_magic = M_MAGIC,
    .ks_shortdesc = "malloc",
    .ks_use = sk_dropin_use,
}};

/* Round a request up to 16 bytes.  Sizes 0 and > MALLOC_MAX come out as
 * values whose predecessor is >= MALLOC_MAX: one compare catches both. */
static inline size_t
round16(size_t size)
{
	return (size + (MALLOC_ALIGN - 1)) & ~(size_t)(MALLOC_ALIGN - 1);
}

static inline bool
size_unusual(size_t rounded)
{
	return rounded - 1 >= MALLOC_MAX;
}

static void
libc_limit_raise(void)
{
	kmalloc_raise_limit(M_LIBC, 0);
}

static inline bool
libc_limit_low(void)
{
	return SK_LOAD(&M_LIBC->ks_limit) < LIMIT_RAISED;
}

/* An allocation returned NULL: raise a default limit and retry once, or
 * fail the way malloc(3) fails. */
__attribute__((noinline, cold)) static void *
alloc_failed(size_t rounded, size_t align, int flags)
{
	void *p = NULL;

	if (libc_limit_low()) {
		int saved = errno;

		libc_limit_raise();
		errno = saved;
		p = align <= MALLOC_ALIGN
		        ? sk_kmalloc(rounded, M_LIBC, flags)
		        : sk_kmalloc_aligned(rounded, align, M_LIBC, flags);
		if (p != NULL) {
			errno = saved;
			return p;
		}
	}
	errno = ENOMEM;
	return NULL;
}

/* Size 0 (a real 16-byte block) or a size beyond MALLOC_MAX (ENOMEM). */
__attribute__((noinline)) static void *
malloc_unusual(size_t size, int flags)
{
	void *p;

	if (size != 0) {
		errno = ENOMEM;
		return NULL;
	}
	p = sk_kmalloc(MALLOC_ALIGN, M_LIBC, flags);
	if (SK_UNLIKELY(p == NULL))
		return alloc_failed(MALLOC_ALIGN, 0, flags);
	return p;
}

/* Everything malloc's inline path does not serve. */
__attribute__((noinline)) static void *
malloc_slow(size_t size)
{
	size_t n = round16(size);

	if (SK_UNLIKELY(size_unusual(n)))
		return malloc_unusual(size, MALLOC_FLAGS);
	/* A tail call: every way kmalloc fails with these flags and this
	 * type (a refused mapping) has already set errno to ENOMEM. */
	return sk_kmalloc(n, M_LIBC, MALLOC_FLAGS);
}

/*
 * kmalloc's fast path (kmalloc_fast.h) specialised for M_LIBC: no type
 * checks (its slots always exist, its limit is the address space), the
 * direct table by 16-byte steps (so every block is 16-aligned), no
 * M_ZERO.  Sizes 1..1024 with a chunk on the zone's list; the rest is
 * malloc_slow.
 */
__attribute__((always_inline)) static inline void *
malloc_on(size_t size, struct sk_shard *sh, bool cpu)
{
	struct kmalloc_use *u;
	struct sk_slzone *z;
	struct sk_chunk *c;
	uint64_t inc;

	z = SK_LOAD_FAST(&sh->direct16[(size - 1) >> 4]);
	c = z->z_lchunks;
	SK_IN_RETURN_REG(c);
	if (SK_UNLIKELY(c == (struct sk_chunk *)z))
		goto slow;
	u = sh->dropin_use;
	inc = z->z_statinc;
	if (SK_UNLIKELY(sk_slot_add_nonneg(&u->loosememuse, inc))) {
		sk_slot_sub(&u->loosememuse, inc); /* the slow path folds */
		goto slow;
	}
	return sk_zone_take_fast(sh, z, c, cpu);
slow:
	sk_kshard_done(sh, cpu);
	return malloc_slow(size);
}

__attribute__((always_inline)) static inline void *
malloc_inline(size_t size, enum sk_take how)
{
	struct sk_shard *sh;
	bool cpu;

	if (SK_UNLIKELY(size - 1 >= SK_DIRECT16 * 16))
		return malloc_slow(size);
	sh = sk_kshard_take(&cpu, how);
	if (cpu) {
		if (SK_UNLIKELY(sh == NULL))
			return malloc_slow(size);
		return malloc_on(size, sh, true);
	}
	return malloc_on(size, sh, false);
}

/* free(NULL) is allowed; everything else goes to kfree's slow path. */
__attribute__((noinline)) static void
free_slow(void *ptr, struct malloc_type *type, const char *api)
{
	if (ptr != NULL)
		sk_kfree_slow(ptr, type, api);
}

__attribute__((always_inline)) static inline void
free_inline(void *ptr, enum sk_take how)
{
	sk_kfree_inline(ptr, M_LIBC, NULL, "free", free_slow, true, how);
}

#if SK_COPIES
/* The copies of malloc and free (internal.h, "The copies of the entry
 * points"): per kind of shard, baseline and BMI2. */
static void *
malloc_thread_base(size_t size)
{
	return malloc_inline(size, SK_TAKE_THREAD);
}

static void *
malloc_cpu_base(size_t size)
{
	return malloc_inline(size, SK_TAKE_CPU);
}

SK_BMI2 static void *
malloc_thread_bmi2(size_t size)
{
	return malloc_inline(size, SK_TAKE_THREAD);
}

SK_BMI2 static void *
malloc_cpu_bmi2(size_t size)
{
	return malloc_inline(size, SK_TAKE_CPU);
}

static void
free_thread_base(void *ptr)
{
	free_inline(ptr, SK_TAKE_THREAD);
}

static void
free_cpu_base(void *ptr)
{
	free_inline(ptr, SK_TAKE_CPU);
}

SK_BMI2 static void
free_thread_bmi2(void *ptr)
{
	free_inline(ptr, SK_TAKE_THREAD);
}

SK_BMI2 static void
free_cpu_bmi2(void *ptr)
{
	free_inline(ptr, SK_TAKE_CPU);
}

sk_malloc_fn *const sk_malloc_copies[SK_NCOPIES] = {
    [SK_COPY_THREAD_BASE] = malloc_thread_base,
    [SK_COPY_THREAD_BMI2] = malloc_thread_bmi2,
    [SK_COPY_CPU_BASE] = malloc_cpu_base,
    [SK_COPY_CPU_BMI2] = malloc_cpu_bmi2,
};
sk_free_fn *const sk_free_copies[SK_NCOPIES] = {
    [SK_COPY_THREAD_BASE] = free_thread_base,
    [SK_COPY_THREAD_BMI2] = free_thread_bmi2,
    [SK_COPY_CPU_BASE] = free_cpu_base,
    [SK_COPY_CPU_BMI2] = free_cpu_bmi2,
};
/* Until the first sk_copies_select, the baseline's for shards per thread
 * (right in either mode, only slower). */
sk_malloc_fn *sk_malloc_copy = malloc_thread_base;
sk_free_fn *sk_free_copy = free_thread_base;

void
sk_dropin_select(enum sk_copy c)
{
	SK_STORE(&sk_malloc_copy, sk_malloc_copies[c]);
	SK_STORE(&sk_free_copy, sk_free_copies[c]);
}

/* One indirect jump to the copy for the mode and the CPU. */
MALLOC_API void *
malloc(size_t size)
{
	sk_malloc_fn *copy = SK_LOAD_FAST(&sk_malloc_copy);

	return copy(size);
}

MALLOC_API void
free(void *ptr)
{
	sk_free_fn *copy = SK_LOAD_FAST(&sk_free_copy);

	copy(ptr);
}
#else
MALLOC_API void *
malloc(size_t size)
{
	return malloc_inline(size, SK_TAKE_ANY);
}

MALLOC_API void
free(void *ptr)
{
	free_inline(ptr, SK_TAKE_ANY);
}
#endif

MALLOC_API void *
calloc(size_t nmemb, size_t size)
{
	size_t bytes, n;
	void *p;

	if (SK_UNLIKELY(__builtin_mul_overflow(nmemb, size, &bytes))) {
		errno = ENOMEM;
		return NULL;
	}
	n = round16(bytes);
	if (SK_UNLIKELY(size_unusual(n)))
		return malloc_unusual(bytes, MALLOC_FLAGS | M_ZERO);
	p = sk_kmalloc(n, M_LIBC, MALLOC_FLAGS | M_ZERO);
	if (SK_UNLIKELY(p == NULL))
		return alloc_failed(n, 0, MALLOC_FLAGS | M_ZERO);
	return p;
}

/*
 * realloc(ptr != NULL, size != 0).  krealloc keeps the block when the
 * class (or page count) is unchanged and leaves it valid on failure; on
 * top of that a block that grows gets a quarter more room than asked, and
 * a smaller size keeps the block while a growth to it would have been
 * given one at least as big (or it is one class below), so a buffer grown
 * a little at a time is copied once per quarter, never back and forth.
 * Large blocks grow and shrink in place in the page-run heap when they
 * can.
 */
__attribute__((noinline)) static void *
realloc_block(void *ptr, size_t size, const char *api)
{
	size_t n = round16(size);
	void *p;

	if (SK_UNLIKELY(size_unusual(n))) {
		errno = ENOMEM;
		return NULL;
	}
	p = sk_krealloc_api(ptr, n, M_LIBC, MALLOC_FLAGS | SK_M_SLACK, api);
	if (SK_UNLIKELY(p == NULL)) {
		if (libc_limit_low()) {
			libc_limit_raise();
			p = sk_krealloc_api(
			    ptr, n, M_LIBC, MALLOC_FLAGS | SK_M_SLACK, api);
			if (p != NULL)
				return p;
		}
		errno = ENOMEM;
	}
	return p;
}

/* realloc(ptr, 0): glibc frees and returns NULL. */
__attribute__((noinline)) static void *
realloc_free(void *ptr)
{
	sk_kfree_api(ptr, M_LIBC, "realloc");
	return NULL;
}

/* realloc of a live chunk of osize bytes of a zone this shard serves,
 * which the quick test of realloc_nonnull did not keep. */
__attribute__((noinline)) static void *
realloc_zone(void *ptr, size_t size, size_t osize)
{
	if (size <= osize) {
		if (sk_km_slack_keeps(size, osize))
			return ptr;
	} else if (size < MALLOC_MAX / 2) { /* its headroom stays below MAX */
		size_t n = round16(sk_slack_grow(size));
		void *q = n <= SK_DIRECT16 * 16
		              ? malloc_inline(n, SK_TAKE_ANY)
		              : sk_kmalloc(n, M_LIBC, MALLOC_FLAGS);

		if (SK_LIKELY(q != NULL)) {
			memcpy(q, ptr, osize);
			sk_kfree_inline(ptr, M_LIBC, NULL, "realloc", free_slow,
			    true, SK_TAKE_ANY);
			return q;
		}
	}
	return realloc_block(ptr, size, "realloc");
}

/*
 * Whether a block of osize bytes, a multiple of unit (a power of two: 1
 * for a zone chunk, the page size for a large block), stays for a size
 * it holds (size <= osize, tested by the caller): a growth to size would
 * have been given no less (sk_slack_grow rounded up to unit).  For a
 * large block that is sk_large_keeps with slack, since size's own pages
 * are never more than its growth's.
 */
static inline bool
realloc_keeps(size_t size, size_t osize, size_t unit)
{
	return ((sk_slack_grow(size) + unit - 1) & ~(unit - 1)) >= osize;
}

/*
 * realloc(ptr != NULL, size): the common cases without krealloc's full
 * path (which names every misuse), with the same rules:
 *  - a live chunk of a zone this shard serves (the inline free's tests)
 *    stays while the new size keeps it, and grows into a new chunk with
 *    a quarter of headroom, copied and freed inline (realloc_zone);
 *  - a large block (page-aligned, outside the zone arena, its page tag
 *    and no zone's around it, which needs no look when no zone was ever
 *    mapped outside the arena) stays while its pages keep the new size.
 * Whether a buffer still fits is data the branch predictor cannot learn,
 * so realloc_keeps decides it without a branch of its own: realloc-growth
 * mispredicted it on about half its calls (cachegrind's branch model:
 * 1.68 M mispredicts in 0.8 M reallocs, 1.48 M after; 9 interleaved
 * runs: 0.229 -> 0.211 s).  Only a growth past the block, which a
 * program does steadily or rarely, keeps its branch in front (Lua grows
 * tables past their chunk: 0.8% of its instructions went to computing
 * the rest for nothing).  Which kind ptr is stays a branch: computing
 * both kinds' tests side by side without one took out another 0.35 M
 * mispredicts but cost 95 instructions a call, and was slower (0.234 s).
 * Anything else, and a growth that found no memory (the limit, errno),
 * takes realloc_block.  Every call out is a tail call, so the keeping
 * cases need no stack frame.
 */
__attribute__((noinline)) static void *
realloc_nonnull(void *ptr, size_t size)
{
	size_t osize;

	if (size == 0)
		return realloc_free(ptr);
	osize = sk_chunk_size_local(ptr);
	if (osize != 0) {
		/* a growth past the chunk (every Lua table that grows) leaves
		 * by a branch of its own before the rest is computed */
		if (size <= osize && realloc_keeps(size, osize, 1))
			return ptr;
		return realloc_zone(ptr, size, osize);
	}
	if (!sk_opt.debug) {
		int32_t tag = sk_large_pages_quick(ptr);
		size_t lsize = (size_t)tag << sk_slab.page_shift;

		if (tag > 0 && size <= lsize &&
		    realloc_keeps(size, lsize, sk_slab.page_size))
			return ptr;
	}
	return realloc_block(ptr, size, "realloc");
}

/* realloc(NULL, n) is malloc's inline path (Lua allocates that way). */
MALLOC_API void *
realloc(void *ptr, size_t size)
{
	if (ptr == NULL)
		return malloc_inline(size, SK_TAKE_ANY);
	return realloc_nonnull(ptr, size);
}

MALLOC_API void *
reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(nmemb, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	if (ptr == NULL)
		return malloc(bytes);
	if (bytes == 0) {
		sk_kfree_api(ptr, M_LIBC, "reallocarray");
		return NULL;
	}
	return realloc_block(ptr, bytes, "reallocarray");
}

/* align: a power of two.  Any size, 0 included (a real block). */
static void *
aligned_block(size_t align, size_t size)
{
	size_t n = round16(size);
	void *p;

	if (SK_UNLIKELY(size_unusual(n))) {
		if (size != 0) {
			errno = ENOMEM;
			return NULL;
		}
		n = MALLOC_ALIGN;
	}
	if (align <= MALLOC_ALIGN) {
		p = sk_kmalloc(n, M_LIBC, MALLOC_FLAGS);
	} else {
		if (SK_UNLIKELY(align > MALLOC_MAX)) {
			errno = ENOMEM;
			return NULL;
		}
		p = sk_kmalloc_aligned(n, align, M_LIBC, MALLOC_FLAGS);
	}
	if (SK_UNLIKELY(p == NULL))
		return alloc_failed(n, align, MALLOC_FLAGS);
	return p;
}

MALLOC_API int
posix_memalign(void **memptr, size_t alignment, size_t size)
{
	int saved = errno;
	void *p;

	if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
		return EINVAL;
	p = aligned_block(alignment, size);
	if (p == NULL) {
		errno = saved; /* posix_memalign reports through its result */
		return ENOMEM;
	}
	*memptr = p;
	return 0;
}

/* C11: the alignment must be a power of two (glibc 2.38 and later). */
MALLOC_API void *
aligned_alloc(size_t alignment, size_t size)
{
	if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return aligned_block(alignment, size);
}

/* glibc: alignments that are not powers of two are rounded up; ones
 * that cannot be rounded fail with EINVAL. */
MALLOC_API void *
memalign(size_t alignment, size_t size)
{
	if (alignment > (SIZE_MAX >> 1) + 1) {
		errno = EINVAL;
		return NULL;
	}
	if ((alignment & (alignment - 1)) != 0)
		alignment = (size_t)1 << (64 - __builtin_clzl(alignment));
	return aligned_block(alignment, size);
}

MALLOC_API void *
valloc(size_t size)
{
	return aligned_block(sk_os_page_size(), size);
}

MALLOC_API void *
pvalloc(size_t size)
{
	size_t ps = sk_os_page_size();
	size_t bytes = (size + ps - 1) & ~(ps - 1);

	if (bytes < size) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned_block(ps, bytes == 0 ? ps : bytes);
}

MALLOC_API size_t
malloc_usable_size(void *ptr)
{
	if (ptr == NULL)
		return 0;
	return sk_kmalloc_usable_size_api(ptr, "malloc_usable_size");
}

/* C23.  The size is a hint slabkit does not need: the chunk knows. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

MALLOC_API void
free_sized(void *ptr, size_t size)
{
	(void)size;
	if (ptr != NULL)
		sk_kfree_api(ptr, M_LIBC, "free_sized");
}

MALLOC_API void
free_aligned_sized(void *ptr, size_t alignment, size_t size)
{
	(void)alignment;
	(void)size;
	if (ptr != NULL)
		sk_kfree_api(ptr, M_LIBC, "free_aligned_sized");
}

/*
 * glibc's internal names, for code that calls them directly (old
 * libraries, debugging tools): the same functions, so no pointer ever
 * crosses from one heap to another.
 */
void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
void *__libc_calloc(size_t nmemb, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9
#define ALIAS(f) __attribute__((alias(#f), copy(f)))
#else
#define ALIAS(f) __attribute__((alias(#f)))
#endif

MALLOC_API void *__libc_malloc(size_t size) ALIAS(malloc);
MALLOC_API void __libc_free(void *ptr) ALIAS(free);
MALLOC_API void *__libc_calloc(size_t nmemb, size_t size) ALIAS(calloc);
MALLOC_API void *__libc_realloc(void *ptr, size_t size) ALIAS(realloc);
MALLOC_API void *__libc_memalign(size_t alignment, size_t size) ALIAS(memalign);
MALLOC_API void *__libc_valloc(size_t size) ALIAS(valloc);
MALLOC_API void *__libc_pvalloc(size_t size) ALIAS(pvalloc);

/*
 * glibc's tuning and reporting calls, answered harmlessly so that
 * glibc's own versions never run against a heap they do not own.
 */
MALLOC_API int
mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1; /* accepted; slabkit has nothing to tune here */
}

MALLOC_API int
malloc_trim(size_t pad)
{
	(void)pad;
	slab_cleanup();
	return 0;
}

static size_t
libc_memuse(size_t *inuse)
{
	struct kmalloc_type_stats st;

	sk_type_sum(M_LIBC, &st);
	if (inuse != NULL)
		*inuse = st.inuse;
	return st.memuse;
}

/*
 * mallinfo's fields (slabkit_malloc.3): arena, every byte mapped for
 * kmalloc (zones, the page-run heap, blocks mapped alone); ordblks, free
 * chunks in zones; hblks and hblkhd, blocks mapped alone and their bytes
 * (also in arena); uordblks, bytes malloc has handed out (the "malloc"
 * type's MemUse); fordblks, free bytes held for reuse (free chunks and
 * retained pages); keepcost, page-run heap bytes malloc_trim would give
 * back.  smblks, fsmblks and usmblks stay 0.
 */
struct mi_fields {
	size_t arena, ordblks, hblks, hblkhd, uordblks, fordblks, keepcost;
};

static void
mi_fill(struct mi_fields *f)
{
	struct sk_heap_summary h;

	sk_heap_summary(&h, NULL);
	f->arena = h.mapped;
	f->ordblks = h.free_chunks;
	f->hblks = h.large_count;
	f->hblkhd = h.large_bytes;
	f->uordblks = libc_memuse(NULL);
	f->fordblks = h.free_chunk_bytes + h.retained;
	f->keepcost = h.heap_retained;
}

static int
mi_int(size_t v)
{
	return (int)(v > (size_t)INT32_MAX ? INT32_MAX : v);
}

MALLOC_API struct mallinfo
mallinfo(void)
{
	struct mallinfo mi;
	struct mi_fields f;

	mi_fill(&f);
	memset(&mi, 0, sizeof(mi));
	mi.arena = mi_int(f.arena);
	mi.ordblks = mi_int(f.ordblks);
	mi.hblks = mi_int(f.hblks);
	mi.hblkhd = mi_int(f.hblkhd);
	mi.uordblks = mi_int(f.uordblks);
	mi.fordblks = mi_int(f.fordblks);
	mi.keepcost = mi_int(f.keepcost);
	return mi;
}

#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
MALLOC_API struct mallinfo2
mallinfo2(void)
{
	struct mallinfo2 mi;
	struct mi_fields f;

	mi_fill(&f);
	memset(&mi, 0, sizeof(mi));
	mi.arena = f.arena;
	mi.ordblks = f.ordblks;
	mi.hblks = f.hblks;
	mi.hblkhd = f.hblkhd;
	mi.uordblks = f.uordblks;
	mi.fordblks = f.fordblks;
	mi.keepcost = f.keepcost;
	return mi;
}
#endif

MALLOC_API void
malloc_stats(void)
{
	slabkit_stats_print(stderr, SLABKIT_STATS_TEXT);
}

MALLOC_API int
malloc_info(int options, FILE *fp)
{
	size_t inuse, used = libc_memuse(&inuse);

	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	fprintf(fp,
	    "<malloc version=\"slabkit-1\">\n"
	    "<total type=\"inuse\" count=\"%zu\" size=\"%zu\"/>\n"
	    "</malloc>\n",
	    inuse, used);
	return 0;
}

/* Raise the limit before main; also starts the live statistics segment
 * when SLABKIT_OPTIONS asks for it (statshm.c). */
__attribute__((constructor(102))) static void
malloc_constructor(void)
{
	int saved = errno;

	sk_init();
	libc_limit_raise();
	sk_statshm_start();
	errno = saved;
}
