/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit internal declarations, grouped under the file that defines them.
 *
 * Everything here has hidden visibility (the library is built with
 * -fvisibility=hidden); public symbols carry SLABKIT_API in include/.
 * Layers, from the bottom: os <- panic/options <- pagemap <- shard <-
 * kmalloc <- objcache/mpipe <- malloc; zone sits on os and shard.
 */
#ifndef SK_INTERNAL_H
#define SK_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>
#include <slabkit/stats.h>

/* Every internal declaration names a hidden symbol: the compiler may then
 * address globals directly (one RIP-relative operand, no GOT). */
#pragma GCC visibility push(hidden)

#include "os/os.h"
#include "sizeclass.h"

#define SK_LIKELY(x)	__builtin_expect(!!(x), 1)
#define SK_UNLIKELY(x)	__builtin_expect(!!(x), 0)
#define SK_CACHELINE	64
#define SK_ALIGNED(n)	__attribute__((aligned(n)))

/* Relaxed accessors for fields racing between threads (atomic tag). */
#define SK_LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define SK_STORE(p, v)		__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define SK_LOAD_ACQ(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define SK_STORE_REL(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* x rotated right by n (0 < n < 64): where the bits rotated in do not
 * matter (they land above a mask, or are zero), one rorx in the BMI2
 * copies, where a shift would first copy x to another register. */
#define SK_ROTR(x, n) (((uintptr_t)(x) >> (n)) | ((uintptr_t)(x) << (64 - (n))))

/* Owner-only counter update: a load and a store, no read-modify-write. */
#define SK_OWNER_ADD(p, v)	SK_STORE((p), SK_LOAD(p) + (v))

/*
 * The same as one instruction: a non-locked add to memory.  Other threads
 * only read these counters (statistics), and an aligned 8-byte store is
 * never torn on x86-64; C11 relaxed atomics cannot express "add to
 * memory" without a lock prefix, hence the asm.  ThreadSanitizer builds
 * (which cannot see into asm) and other machines use SK_OWNER_ADD.
 */
#if defined(__x86_64__) && !defined(SLABKIT_TSAN)
static inline void
sk_slot_add(size_t *p, size_t v)
{
	__asm__("addq %1, %0" : "+m"(*p) : "er"(v));
}
static inline void
sk_slot_sub(size_t *p, size_t v)
{
	__asm__("subq %1, %0" : "+m"(*p) : "er"(v));
}
/* Add and tell whether the result is >= 0 as a signed value. */
static inline bool
sk_slot_add_nonneg(size_t *p, size_t v)
{
	bool nonneg;

	__asm__("addq %2, %0" : "+m"(*p), "=@ccns"(nonneg) : "er"(v));
	return nonneg;
}
#else
static inline void
sk_slot_add(size_t *p, size_t v)
{
	SK_OWNER_ADD(p, v);
}
static inline void
sk_slot_sub(size_t *p, size_t v)
{
	SK_OWNER_ADD(p, -v);
}
static inline bool
sk_slot_add_nonneg(size_t *p, size_t v)
{
	size_t n = SK_LOAD(p) + v;

	SK_STORE(p, n);
	return (ptrdiff_t)n >= 0;
}
#endif

/* ------------------------------------------------------------------ */
/* panic.c: diagnostics that never allocate */

/*
 * Panic: "slabkit: <func>: <formatted what>\n" through the panic handler
 * (default: write(2) to stderr), then abort().  The formatter understands
 * %s %d %u %ld %lu %zu %zd %x %lx %p %c and %%.
 */
_Noreturn void sk_panic(const char *func, const char *fmt, ...);
void sk_vpanic(const char *func, const char *fmt, va_list ap)
    __attribute__((noreturn));
/* Warning with the same prefix; never aborts. */
void sk_warn(const char *func, const char *fmt, ...);
/* A printf-like formatter that does not allocate; returns the length. */
size_t sk_vfmt(char *buf, size_t len, const char *fmt, va_list ap);
size_t sk_fmt(char *buf, size_t len, const char *fmt, ...);

/* ------------------------------------------------------------------ */
/* lock.c: the allocator's own mutexes */

/* The pause of a spin-wait loop (lets the sibling hyperthread run). */
static inline void
sk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * The locks of the shard list, the page-run heap, the zone arena and the
 * malloc types: a futex mutex whose lock word is the holder's id, so that
 * taking the lock and recording who holds it are one compare-and-swap.  A
 * thread asking again for a lock it holds can only be a signal handler
 * that allocates after interrupting an allocation of its own thread
 * (unsupported, as in glibc): it would wait for itself forever, so the
 * slow path aborts instead, naming the lock.  Only slow paths lock; the
 * fast paths take no lock and carry none of this.  Acquire and release
 * atomics order the data under the lock (ThreadSanitizer follows them).
 * A forked child's thread keeps its id, so the fork handlers lock before
 * fork and unlock on both sides as with any mutex.
 */
#define SK_MUTEX_WAITERS 0x80000000u /* word: someone sleeps */
#define SK_MUTEX_ID      0x7fffffffu /* word: holder's id; 0 free */

struct sk_mutex {
	uint32_t word;    /* atomic: holder id | SK_MUTEX_WAITERS, 0 free */
	const char *name; /* "page-run heap": the abort names the lock */
};
#define SK_MUTEX_INITIALIZER(lockname)                                         \
	{                                                                      \
		0, (lockname)                                                  \
	}

extern __thread uint32_t sk_tls_lockid; /* this thread's id; 0: none yet */
uint32_t sk_mutex_id_slow(void);
void sk_mutex_lock_slow(struct sk_mutex *m, uint32_t id);
void sk_mutex_wake(struct sk_mutex *m);

static inline void
sk_mutex_lock(struct sk_mutex *m)
{
	uint32_t id = sk_tls_lockid, free = 0;

	if (SK_UNLIKELY(id == 0))
		id = sk_mutex_id_slow();
	if (SK_UNLIKELY(!__atomic_compare_exchange_n(&m->word, &free, id, false,
	        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)))
		sk_mutex_lock_slow(m, id);
}

/* Take m if it is free, without waiting; false when it is held (*word:
 * its holder's word). */
static inline bool
sk_mutex_trylock(struct sk_mutex *m, uint32_t *word)
{
	uint32_t id = sk_tls_lockid;

	if (SK_UNLIKELY(id == 0))
		id = sk_mutex_id_slow();
	*word = 0;
	return __atomic_compare_exchange_n(
	    &m->word, word, id, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static inline void
sk_mutex_unlock(struct sk_mutex *m)
{
	if (SK_UNLIKELY(__atomic_exchange_n(&m->word, 0u, __ATOMIC_RELEASE) &
	                SK_MUTEX_WAITERS))
		sk_mutex_wake(m);
}

/*
 * A condition to wait for under an sk_mutex: *seq is bumped (under the
 * mutex) by sk_mutex_signal.  sk_mutex_wait releases m, sleeps until the
 * next signal or ms milliseconds (< 0: no limit), and takes m again; the
 * caller checks its condition again, as with pthread_cond_wait.
 */
void sk_mutex_wait(struct sk_mutex *m, uint32_t *seq, long ms);
void sk_mutex_signal(uint32_t *seq);

/*
 * A set-up run once (pthread_once underneath, which stays right across
 * fork) that a signal handler re-entering it on the same thread cannot
 * deadlock on: pthread_once would wait for itself for ever; sk_once aborts
 * with the same message as a lock held by this thread (name names it).
 */
struct sk_once {
	pthread_once_t once;
	bool	done;		/* atomic: fn has run */
	const char *name;
};
#define SK_ONCE_INITIALIZER(oncename)                                          \
	{                                                                      \
		PTHREAD_ONCE_INIT, false, (oncename)                           \
	}
void sk_once_slow(struct sk_once *o, void (*fn)(void));
static inline void
sk_once(struct sk_once *o, void (*fn)(void))
{
	if (SK_LIKELY(__atomic_load_n(&o->done, __ATOMIC_ACQUIRE)))
		return;
	sk_once_slow(o, fn);
}

/* ------------------------------------------------------------------ */
/* options.c: SLABKIT_OPTIONS */

struct sk_options {
	size_t	memlimit_mb;	/* 0: measured (sk_os_usable_memory_mb) */
	int	zone_cache;	/* ZoneRelsThresh override; -1: derived */
	int	zone_burst;	/* zalloc per-shard refill (default 32) */
	bool	invariants;	/* INVARIANTS checks */
	bool	pattern;	/* debug.use_malloc_pattern */
	bool	weird;		/* debug.use_weird_array */
	int	stats;		/* print at exit: 0 no, 1 text, 2 json */
	char	stats_file[256];	/* "" = stderr */
	long	waitok_timeout_ms;	/* M_WAITOK page-shortage wait bound */
	bool	hardened;	/* hardened mode (issue 8) */
	int	track;		/* 0 none, 1 valgrind, 2 asan */
	bool	stats_shm;	/* live statistics segment for `slabkit stat` */
	bool	verbose;
	bool	debug;		/* any of invariants, pattern, weird */
	int	objcache_reap_ms; /* objcache working-set reaper; 0 off */
	int	colour;		/* zone colouring: 1 on, 0 off, -1 auto */
	long	purge_ms;	/* page heap: purge pages retained this long */
	size_t	retain_mb;	/* page heap: purge at once beyond this */
	int	purge;		/* 0 MADV_DONTNEED, 1 MADV_FREE, 2 never */
	int	large_cache;	/* page heap's front cache: 0 auto, 1 on, 2 off */
	bool	shards_thread;	/* shards=thread: no shards per CPU */
};
extern struct sk_options sk_opt;

/* Read SLABKIT_OPTIONS (not in setuid programs); called once by sk_init. */
void sk_options_init(void);

/* ------------------------------------------------------------------ */
/* init.c: one-time initialisation */

extern atomic_int sk_initialized; /* atomic: 0 no, 1 running, 2 done */
void sk_init_slow(void);
static inline void
sk_init(void)
{
	if (SK_UNLIKELY(atomic_load_explicit(&sk_initialized,
			    memory_order_acquire) != 2))
		sk_init_slow();
}

/* ------------------------------------------------------------------ */
/* pagemap.c: page tags (the kernel's ku_pagecnt) */

/*
 * A tag per page: > 0 first page of a large block of that many pages,
 * < 0 first page of a slab zone owned by shard (-tag - 1), 0 nothing.
 * Reads are lock-free and never fault, for any address.
 */
#define SK_PM_ADDR_BITS	47
#define SK_PM_LEAF_BITS	18
#define SK_PM_ROOT_BITS	18
extern int32_t *sk_pm_root[(size_t)1 << SK_PM_ROOT_BITS]; /* atomic */
extern unsigned sk_pm_shift;	/* the page shift; 12 until init */

static inline int32_t
sk_pagemap_get(uintptr_t addr)
{
	size_t idx;
	int32_t *leaf;

	if (SK_UNLIKELY(addr >> SK_PM_ADDR_BITS))
		return 0;
	idx = addr >> sk_pm_shift;
	leaf = SK_LOAD_ACQ(&sk_pm_root[(idx >> SK_PM_LEAF_BITS) &
	    (((size_t)1 << SK_PM_ROOT_BITS) - 1)]);
	if (SK_UNLIKELY(leaf == NULL))
		return 0;
	return SK_LOAD(&leaf[idx & (((size_t)1 << SK_PM_LEAF_BITS) - 1)]);
}
/* Set the tag of addr's page; -1 when the table could not grow.  Inline
 * where the leaf exists (a store), else the slow path maps it. */
int sk_pagemap_set_slow(uintptr_t addr, int32_t tag);
static inline int
sk_pagemap_set(uintptr_t addr, int32_t tag)
{
	size_t idx = addr >> sk_pm_shift;
	int32_t *leaf;

	if (SK_UNLIKELY(addr >> SK_PM_ADDR_BITS))
		return -1;
	leaf = SK_LOAD_ACQ(&sk_pm_root[(idx >> SK_PM_LEAF_BITS) &
	                               (((size_t)1 << SK_PM_ROOT_BITS) - 1)]);
	if (SK_UNLIKELY(leaf == NULL))
		return sk_pagemap_set_slow(addr, tag);
	SK_STORE_REL(&leaf[idx & (((size_t)1 << SK_PM_LEAF_BITS) - 1)], tag);
	return 0;
}

/* ------------------------------------------------------------------ */
/* kmalloc zones (the kernel's SLZone), kept in shards */

#define SK_SLAB_MAGIC	0x736c6162u	/* ZALLOC_SLAB_MAGIC "slab" */
#define SK_OVSZ_MAGIC	0x736c6163u	/* ZALLOC_OVSZ_MAGIC */
#define SK_SLAB_SLIDE	20		/* ZALLOC_SLAB_SLIDE */
#define SK_MAX_ZONE_SIZE (128 * 1024)	/* ZALLOC_MAX_ZONE_SIZE */
#define SK_MIN_ZONE_SIZE (32 * 1024)	/* ZALLOC_MIN_ZONE_SIZE */
#define SK_ZONE_RELS_THRESH 32		/* ZONE_RELS_THRESH */
#define SLZF_UNOTZEROD	0x0001
#define SK_SLAB_DEBUG_ENTRIES 32

struct sk_chunk {
	struct sk_chunk *c_next;
};

struct sk_shard;

/*
 * A zone.  Its header's first cache line is what the owner's fast paths
 * write on every call, its second what another thread's free reads (the
 * owner test, the zone's identity and maps), so that a remote free does
 * not take the first line from the owner (thread-scaling with 2 threads,
 * a third of its frees remote: 0.431 -> 0.410 s).  Free-list
 * links of ordinary zones are stored encoded (next ^ z_key) and the list
 * ends at the zone itself, so the one "list empty" test also rejects the
 * sentinel zone; hardened and tracked zones keep NULL-terminated lists
 * whose links harden.c encodes.  Bitmaps follow the header: ordinary zones
 * (ZF_GRANULE) have one bit per 8-byte granule of the zone, counted from
 * the zone's base (sk_zone_granule), set on the first granule of every
 * chunk handed out (abits) or freed by another thread and not yet drained
 * (rbits); hardened and tracked zones one bit per chunk index.  The two
 * maps are interleaved 64 bits at a time (abits bits 0-63, rbits bits
 * 0-63, abits 64-127, ...), so the free path's two
 * tests of a chunk read one cache line: z_rbits is z_abits + 2 and bit b
 * of either map lives in 32-bit word SK_ZWORD(b) of it.
 */
#define SK_ZWORD(b) ((((size_t)(b) >> 6) << 2) | (((size_t)(b) >> 5) & 1))
/* Remote-free hints of an ordinary zone: one byte per 256 granules. */
#define SK_ZRGROUPS (SK_MAX_ZONE_SIZE / 8 / 256)

struct sk_slzone {
	/* Line 0, written by the owner on every call (the fast paths' pop
	 * and push read nothing else but the owner test below). */
	struct sk_chunk *z_lchunks;	/* local free list head */
	uintptr_t z_key;		/* link key (ordinary zones) */
	uint64_t z_statinc;             /* (chunksize << 16) + 1: what the fast
					   paths add to a slot's packed count
					   (kmalloc.c, "Statistics updates") */
	int32_t	z_nused;		/* chunks handed out (owner's view:
					   remote frees count until drained) */
	int32_t	z_carved;		/* never-used chunks carved so far */
	struct sk_slzone *z_next;       /* ZoneAry / FreeZones links */
	struct sk_slzone *z_prev;
	int32_t z_uindex;
	int32_t z_uendindex;
	/* Line 1, what another thread's free reads (the owner test, the
	 * zone's identity, its maps): written only when the zone is set up
	 * or changes lists, so a remote free does not take line 0 from the
	 * owner, who writes it on every call. */
	struct sk_shard *z_fastowner SK_ALIGNED(SK_CACHELINE); /* owner while
					   the fast paths may serve this zone,
					   else NULL */
	struct sk_shard *z_owner;       /* atomic: owning shard (z_CpuGd) */
	uint32_t z_magic;		/* SK_SLAB_MAGIC; -1 when free */
	uint32_t z_chunksize;
	uint16_t z_zoneindex;
	uint16_t z_flags;		/* SLZF_UNOTZEROD, ZF_* */
	int32_t	z_nmax;
	char	*z_baseptr;
	uint32_t z_chunkmul;		/* ceil(2^32 / chunksize): no division */
	uint32_t z_bitwords;
	uint32_t *z_abits;		/* words: chunk handed out */
	uint32_t *z_rbits;		/* atomic words: remote-freed */
	uint32_t z_id;			/* debug: allocation-site table use */
	uint16_t z_hflags;		/* harden.c: SK_ZF_* (fixed) */
	bool	z_inarena;		/* carved from the zone arena */
#ifdef SLABKIT_SLAB_DEBUG
	struct {
		const char *file;
		int	line;
		int	count;
	} z_sources[SK_SLAB_DEBUG_ENTRIES];
#endif
	/* Written by other threads: keep off the owner's cache line. */
	struct sk_chunk *z_rchunks SK_ALIGNED(SK_CACHELINE); /* atomic:
					   remote list (hardened/tracked) */
	int32_t	z_rsignal;		/* atomic */
	int32_t	z_rcount;		/* atomic */
	struct sk_slzone *z_pend_next;	/* atomic: owner's doorbell list */
	int32_t	z_pending;		/* atomic: on the doorbell list */
	int32_t	z_rhint;		/* atomic: remote frees may wait in
					   rbits (ordinary zones) */
	uint8_t	z_rgroups[SK_ZRGROUPS];	/* atomic: the same, per group of
					   four rbits words (256 granules) */
	struct sk_slzone *z_arena_next;	/* zone arena free list */
	int32_t z_purge;                /* atomic: ZP_* while on FreeZones */
	uint32_t z_freed_ms;            /* atomic: when it went there */
};

/* The zone every empty direct-table entry points at: its list is empty. */
extern struct sk_slzone sk_zone_sentinel;

/*
 * The zone arena: one reservation from which ordinary zones are carved,
 * never unmapped.  A pointer p is in a zone of the arena when
 * p - sk_zarena_base < sk_zarena_used (one compare on the free path; a
 * zone outside it, mapped when the arena is full or absent, takes the
 * slow path).
 */
extern uintptr_t sk_zarena_base;
extern size_t sk_zarena_used;	/* atomic: grows only */
extern size_t sk_zarena_used8;  /* atomic: sk_zarena_used / 8, set after it */

/*
 * Whether p is an 8-aligned address in the zone arena, with one compare:
 * p's offset from the base, rotated right by 3 bits, is the offset / 8
 * when its low 3 bits are 0, and at least 2^61 (above any arena's size
 * / 8) when they are not; an address below the base wraps around to a
 * huge offset.  used8 is sk_zarena_used8 as the caller loaded it (a stale
 * value is smaller: a pointer in a new zone takes the slow path, which
 * looks again).
 */
static inline bool
sk_zarena_has_aligned(uintptr_t p, size_t used8)
{
	uintptr_t off = p - sk_zarena_base;

	return ((off >> 3) | (off << (8 * sizeof(off) - 3))) < used8;
}
/* Set (for good) once a zone was mapped outside the arena: until then an
 * address outside the arena lies in no zone. */
extern bool sk_zones_outside_ever;

struct sk_zonelist {
	struct sk_slzone *head;
	struct sk_slzone *tail;
};

/* ------------------------------------------------------------------ */
/* shard.c: the per-thread "CPU" */

#define SK_NSLOTS	256		/* statistics slots; the last is shared */
#define SK_SLOT_SHARED	(SK_NSLOTS - 1)
/*
 * An owned slot's packed counts (kmalloc.c, "Statistics updates"): bytes
 * in the high 48 bits, a count in the low 16, so that the fast paths
 * count a call and its bytes with one add of z_statinc.  SK_USE_FREES is
 * the free side's word.
 */
#define SK_PACK_SHIFT	16
#define SK_PACK_COUNT(v)	((size_t)(v) & 0xffff)
#define SK_PACK_BYTES(v)	((long long)(v) >> SK_PACK_SHIFT)
#define SK_USE_FREES(u)	(&(u)->reserved[3])
static_assert(sizeof(struct kmalloc_use) == SK_CACHELINE,
    "a statistics slot is one cache line (arrays of them are aligned)");
#define SK_MAX_EXIT_HOOKS 8
#define SK_SHARD_SLOW_ALWAYS	0x01	/* empty or shared-slot shard */
#define SK_SHARD_SLOW_RELEASE	0x02	/* free zones to release */

/*
 * A shard is one thread's allocator state (SLGlobalData).  Only its owner
 * thread touches the zone lists; other threads reach it only through the
 * atomic doorbell list z_pend.  When the thread exits, the whole shard is
 * parked on the orphan list and adopted by the next thread that starts.
 */
#define SK_DIRECT8	128	/* kmalloc sizes 1..1024, by (n - 1) / 8 */
#define SK_DIRECT16	64	/* malloc sizes 1..1024, by (n - 1) / 16 */

struct sk_shard {
	/* The fast paths read only these: the zone serving each small size
	 * (its class's current zone, or the sentinel), the offset of this
	 * shard's statistics slot in a type's slot array, and the key a
	 * zone's z_fastowner must equal for a local fast free. */
	struct sk_slzone *direct16[SK_DIRECT16]; /* atomic (relaxed) */
	struct sk_slzone *direct8[SK_DIRECT8];	/* atomic (relaxed) */
	uintptr_t cpulock;			/* atomic: holder's thread
						   pointer, or 0 (cpu.c) */
	size_t	uoff;				/* slot * sizeof(kmalloc_use) */
	struct sk_shard *fastkey;		/* atomic: self, or 1 */
	struct kmalloc_use *dropin_use;		/* the drop-in type's slot */
	struct sk_zonelist zoneary[SK_NZONES];	/* zones with free chunks */
	struct sk_zonelist freezones;		/* wholly free zones */
	struct sk_zonelist exhausted;		/* zones off ZoneAry, no free
						   chunk (kmalloc.c) */
	struct sk_slzone *exh_cursor;		/* where the next bounded look
						   at exhausted goes on */
	int	nfreezones;
	struct sk_slzone *freeovzones;		/* deferred large frees */
	size_t	junkindex;			/* colouring */
	int	id;				/* shard number, >= 0 */
	int	slot;				/* statistics slot */
	int	cpu;				/* the CPU it serves, or -1:
						   a thread's shard */
	uint8_t	slow;				/* SK_SHARD_SLOW_* */
	bool	empty;				/* the static empty shard */
	bool	orphan;				/* owner thread gone */
	bool	exiting;
	bool	retired;			/* a thread's shard that owns
						   no zone while CPU shards
						   serve it (kmalloc_zone.c) */
	uint32_t retire_tick;
	struct sk_slzone *pend;			/* atomic: doorbell list */
	struct sk_shard *all_next;		/* registry of every shard */
	struct sk_shard *orphan_next;
	/* kmalloc counters of the slab layer itself (stats only). */
	uint64_t passive_zero;			/* chunks not bzero'd */
	uint64_t zkeyseq;			/* zone set-ups (link keys) */
	uint64_t zones_mapped;
	uint64_t zones_released;
	void	*hook_data[SK_MAX_EXIT_HOOKS];	/* per-layer per-shard state */
};

extern __thread struct sk_shard *sk_tls_shard;

/* A static shard nothing is allocated from: every direct-table entry the
 * sentinel zone, a fastkey no zone matches, always the slow path (the
 * empty shard of shard.c, sk_cpu_absent of cpu.c). */
#define SK_SHARD_STATIC_INIT                                             \
	.direct8 = {[0 ... SK_DIRECT8 - 1] = &sk_zone_sentinel},         \
	.direct16 = {[0 ... SK_DIRECT16 - 1] = &sk_zone_sentinel},       \
	.fastkey = (struct sk_shard *)1, .empty = true,                  \
	.slow = SK_SHARD_SLOW_ALWAYS, .id = -1, .cpu = -1,               \
	.slot = SK_SLOT_SHARED

/* The calling thread's shard; the static empty one before first use. */
static inline struct sk_shard *
sk_shard_current(void)
{
	return sk_tls_shard;
}

/* The calling thread's real shard, created (or adopted) on first use. */
struct sk_shard *sk_shard_get_slow(void);
/* A shard for CPU cpu (cpu.c, at initialisation); NULL: out of memory. */
struct sk_shard *sk_shard_new_cpu(int cpu);
static inline struct sk_shard *
sk_shard_get(void)
{
	struct sk_shard *sh = sk_tls_shard;

	if (SK_UNLIKELY(sh->empty))
		sh = sk_shard_get_slow();
	return sh;
}

/* ------------------------------------------------------------------ */
/* cpu.c: kmalloc's shards per CPU */

/*
 * kmalloc serves every request from a shard it holds: the current CPU's
 * shard, taken with a restartable sequence (x86-64 with glibc's rseq
 * registration), or the thread's own shard (shards=thread, no rseq,
 * ThreadSanitizer builds, a thread whose rseq registration failed, or a
 * signal handler that interrupted its own thread holding the CPU's
 * shard).  cpu.c explains
 * the protocol; everything kmalloc does to a shard's lists, zones and
 * statistics slot happens between sk_kshard_enter() and
 * sk_kshard_leave().
 */
#define SK_MAX_CPU_SHARDS 1024

/*
 * The table the restartable sequence indexes with the rseq area's cpu_id
 * as a signed number, without a bounds test: it has a shard for every
 * CPU number the kernel may report (all of /sys/devices/system/cpu/
 * possible, or shards per CPU do not start), and the two entries before
 * it, for cpu_id -2 and -1 (a thread whose registration failed, or not
 * yet done), are sk_cpu_absent, which is always held: such a thread
 * takes the slow path, which gives it its own shard.
 */
struct sk_cpu_shards {
	ptrdiff_t rseq_off;	/* glibc's __rseq_offset (once started) */
	uint32_t ncpu;		/* shards in the table */
	bool	active;		/* atomic: shards per CPU in effect */
	struct sk_shard *unregistered[2]; /* shard[-2], shard[-1] */
	struct sk_shard *shard[SK_MAX_CPU_SHARDS];
};
extern struct sk_cpu_shards sk_cpu;
extern struct sk_shard sk_cpu_absent;

/*
 * The thread's own shard for the fast paths when shards are per thread
 * (the static empty shard before its first allocation); with shards per
 * CPU (sk_cpu.active) they take the CPU's shard and do not read it.  Set
 * by the slow path (sk_kshard_get); both kinds of shard are safe together
 * at any time, so a change of mode needs no handshake.
 */
extern __thread struct sk_shard *sk_tls_kshard;

/*
 * Whether the fast paths take the CPU's shard: sk_cpu.active, read with
 * a plain load that the compiler folds into its test (one instruction
 * and a branch, the same as reading a flag of the thread's shard cost,
 * and no load of that shard's pointer on the CPU path).  Only where
 * SK_HAVE_RSEQ is defined, which ThreadSanitizer builds are not.
 */
#define SK_CPU_FAST_ACTIVE() (sk_cpu.active)

#define SK_RSEQ_CPU_ID	4	/* struct rseq: cpu_id */
#define SK_RSEQ_CS	8	/* struct rseq: rseq_cs */
#define SK_RSEQ_SIG	0x53053053 /* glibc's signature on x86 */

struct sk_shard *sk_kshard_wait(void);
bool sk_kshard_lock_remote(struct sk_shard *sh);
void sk_cpu_init(void);
void sk_cpu_init_late(void);
bool sk_cpu_mode(void);
bool sk_cpu_active(void);
const char *sk_cpu_mode_why(void);
bool sk_cpu_set_mode(bool percpu);
void sk_cpu_thread_started(void);
void sk_cpu_thread_exited(void);
struct sk_shard *sk_cpu_shard_at(int i);

#if defined(__x86_64__) && !defined(SLABKIT_TSAN)
#define SK_HAVE_RSEQ 1
/*
 * Take the current CPU's shard: one restartable sequence that reads the
 * CPU number, finds its shard and, if the shard's lock word is 0, stores
 * this thread's pointer in it (the commit).  Preemption, migration or a
 * signal between the read and the commit restarts it from the top, so
 * two threads can only both see 0 if they run on different CPUs, and then
 * they read different words.  Jumps to `busy' when the shard is held
 * (sk_cpu_absent always is).
 */
#define SK_RSEQ_ACQUIRE(off, sh, tmp, busy)                                  \
	__asm__ goto(".pushsection __rseq_cs, \"aw\"\n\t"                   \
		     ".balign 32\n\t"                                          \
		     "66:\n\t"                                                 \
		     ".long 0, 0\n\t"                                          \
		     ".quad 1f, 2f - 1f, 4f\n\t"                               \
		     ".popsection\n\t"                                         \
		     ".pushsection __rseq_failure, \"ax\"\n\t"                 \
		     ".byte 0x0f, 0xb9, 0x3d\n\t"                              \
		     ".long %c[sig]\n\t"                                       \
		     "4:\n\t"                                                  \
		     "jmp 0f\n\t"                                              \
		     ".popsection\n\t"                                         \
		     "0:\n\t"                                                  \
		     "leaq 66b(%%rip), %[s]\n\t"                               \
		     "movq %[s], %%fs:%c[cs](%[o])\n\t"                        \
		     "1:\n\t"                                                  \
		     "movslq %%fs:%c[id](%[o]), %q[t]\n\t"                     \
		     "leaq sk_cpu+%c[tb](%%rip), %[s]\n\t"                     \
		     "movq (%[s], %q[t], 8), %[s]\n\t"                         \
		     "cmpq $0, %c[lk](%[s])\n\t"                               \
		     "jne %l[" #busy "]\n\t"                                   \
		     "movq %%fs:0, %q[t]\n\t"                                  \
		     "movq %q[t], %c[lk](%[s])\n\t"                            \
		     "2:\n\t"                                                  \
		     : [s] "=&r"(sh), [t] "=&r"(tmp)                           \
		     : [o] "r"(off),                                           \
		     [tb] "i"(offsetof(struct sk_cpu_shards, shard)),          \
		     [sig] "i"(SK_RSEQ_SIG),                                   \
		     [cs] "i"(SK_RSEQ_CS), [id] "i"(SK_RSEQ_CPU_ID),           \
		     [lk] "i"(offsetof(struct sk_shard, cpulock))              \
		     : "memory", "cc" /* an acquire: nothing moves above */   \
		     : busy)
#endif

/*
 * The copies of the entry points: for each kind of shard (no test of
 * sk_cpu.active: the kind is a constant in each) and each for the baseline
 * and for BMI2.  kmalloc, kfree, malloc and free are one indirect jump to
 * the copy sk_copies_select() chose (kmalloc.c), which cpu.c calls again
 * whenever the mode changes.  Not ifuncs: a library relocated before the
 * one defining an ifunc it calls makes the dynamic loader print "Relink
 * ... for IFUNC symbol" (libc itself calls malloc, and is relocated first
 * when binding is immediate, as Debian's is).
 */
#if defined(SK_HAVE_RSEQ) && defined(__GNUC__) && !defined(SLABKIT_ASAN)
#define SK_COPIES 1
/* the copies compiled for CPUs with BMI2, whose rorx computes the granule
 * maps' word and bit offsets and the zone header's colour from a pointer
 * without copying it to another register first (SK_ROTR) */
#define SK_BMI2 __attribute__((target("bmi2")))
enum sk_copy {
	SK_COPY_THREAD_BASE,
	SK_COPY_THREAD_BMI2,
	SK_COPY_CPU_BASE,
	SK_COPY_CPU_BMI2,
	SK_NCOPIES
};
#define SK_COPY_IS_CPU(c)  ((c) >= SK_COPY_CPU_BASE)
#define SK_COPY_IS_BMI2(c) (((c)&1) != 0)
struct malloc_type;
typedef void *sk_kmalloc_fn(unsigned long, struct malloc_type *, int);
typedef void sk_kfree_fn(void *, struct malloc_type *);
typedef void *sk_malloc_fn(size_t);
typedef void sk_free_fn(void *);
extern sk_kmalloc_fn *const sk_kmalloc_copies[SK_NCOPIES]; /* kmalloc.c */
extern sk_kfree_fn *const sk_kfree_copies[SK_NCOPIES];
extern sk_kmalloc_fn *sk_kmalloc_copy; /* atomic: the copies that run */
extern sk_kfree_fn *sk_kfree_copy;
extern sk_malloc_fn *const sk_malloc_copies[SK_NCOPIES]; /* malloc.c */
extern sk_free_fn *const sk_free_copies[SK_NCOPIES];
extern sk_malloc_fn *sk_malloc_copy;
extern sk_free_fn *sk_free_copy;
/* Point every family at the copy for the mode in effect and this CPU. */
void sk_copies_select(void);
/* The drop-in's part (a weak symbol: the kmalloc library has none). */
void sk_dropin_select(enum sk_copy c) __attribute__((weak));
#else
#define SK_COPIES 0
#endif

/*
 * The current CPU's shard, held; NULL when it is held already (by another
 * thread, or for good: sk_cpu_absent, whose callers sk_kshard_wait sends
 * to their own shard).  Only once sk_cpu.active was seen set.
 */
static inline struct sk_shard *
sk_kshard_cpu_take(void)
{
#ifdef SK_HAVE_RSEQ
	ptrdiff_t off = sk_cpu.rseq_off; /* set before sk_cpu.active */
	struct sk_shard *sh;
	uint64_t t;

	SK_RSEQ_ACQUIRE(off, sh, t, busy);
	if (sh == NULL)
		__builtin_unreachable(); /* lets the caller's test fold away */
	return sh;
busy:
	return NULL;
#else
	if (sk_tls_shard == NULL)
		__builtin_unreachable();
	return sk_tls_shard;
#endif
}

/*
 * The shard kmalloc works on, held until sk_kshard_leave(); NULL when the
 * CPU's shard is held by another thread (the fast paths then take their
 * slow path, which waits in sk_kshard_enter()).
 */
static inline struct sk_shard *
sk_kshard_try(void)
{
	struct sk_shard *sh;

#ifdef SK_HAVE_RSEQ
	if (SK_UNLIKELY(SK_CPU_FAST_ACTIVE()))
		return sk_kshard_cpu_take();
#endif
	sh = sk_tls_kshard;
	if (sh == NULL)
		__builtin_unreachable();
	return sh;
}

/* sk_kshard_try(), waiting for a held shard. */
static inline struct sk_shard *
sk_kshard_enter(void)
{
	struct sk_shard *sh = sk_kshard_try();

	return SK_LIKELY(sh != NULL) ? sh : sk_kshard_wait();
}

/* Give back what sk_kshard_enter() returned (a thread's shard too: its
 * lock word is never looked at). */
static inline void
sk_kshard_leave(struct sk_shard *sh)
{
	SK_STORE_REL(&sh->cpulock, 0);
}

/*
 * sk_kshard_leave() where the caller knows which kind of shard it took: a
 * thread's own shard (cpu false, a constant) has no lock word to clear.
 * The inline fast paths are built twice, once for each kind, so that the
 * thread's copy ends without the store.
 */
static inline void
sk_kshard_done(struct sk_shard *sh, bool cpu)
{
	if (cpu)
		sk_kshard_leave(sh);
}

/* sk_kshard_enter() for the slow paths: a thread's shard is made (or
 * adopted) on first use, and the thread's fast-path pointer follows the
 * mode in effect (cpu.c). */
struct sk_shard *sk_kshard_get(void);

/*
 * Register a hook run on the owner thread when a thread exits (before its
 * shard is orphaned), in registration order.  Returns the hook's index,
 * also the index of the shard's hook_data slot reserved for the caller.
 */
int sk_shard_register_exit_hook(void (*fn)(struct sk_shard *sh));

/* Call fn for every shard ever made (live and orphaned), under a lock. */
void sk_shard_foreach(void (*fn)(struct sk_shard *sh, void *arg), void *arg);

/* Highest shard id + 1 ever handed out (bounds per-slot loops). */
int sk_shard_count(void);

/* Lock the orphan list; call fn on each orphaned shard. */
void sk_shard_foreach_orphan(void (*fn)(struct sk_shard *sh, void *arg),
    void *arg);

/* Process set-up (thread-exit key, fork handlers); from sk_init. */
void sk_shard_init(void);
void sk_shard_init_late(void);

/* ------------------------------------------------------------------ */
/* kmalloc: kmalloc.c (types, statistics, entry points), kmalloc_zone.c
 * (zones, the zone arena, remote frees, slow paths), kmalloc_large.c;
 * their private interface is kmalloc_impl.h */

/* Global slab sizing (kmeminit), fixed at initialisation. */
struct sk_slab_config {
	size_t	lim_mb;		/* kmem_lim_size() */
	size_t	zone_size;	/* ZoneSize */
	size_t	zone_limit;	/* ZoneLimit */
	uintptr_t zone_mask;	/* ZoneMask */
	size_t	fast_limit;	/* largest size the fast path serves */
	int	zone_rels_thresh; /* ZoneRelsThresh (derived or zone_cache) */
	size_t	page_size;
	unsigned page_shift;
	uintptr_t zone_wmask; /* ((ZoneSize - 1) >> 5) & ~15: see
				   sk_zone_granule */
};
extern struct sk_slab_config sk_slab;

/*
 * Zone headers are coloured.  Zones are ZoneSize-aligned, so headers at
 * their starts would all fall in one set of a set-associative cache and
 * evict each other as soon as a program uses more zones than the cache
 * has ways (a malloc/free benchmark with 32 classes misses on nearly every
 * header).  The header of the zone at base b sits SK_ZCOLOUR(b) bytes in
 * instead: one of 32 cache lines, from address bits 17-21, so neighbouring
 * zones use different sets and the colour costs no load to find.  A zone
 * pointer (struct sk_slzone *) is always the header's address, which lies
 * in the zone's first page; sk_zone_at() finds it from any address in the
 * zone and sk_zone_base() goes back.
 */
#define SK_ZCOLOURS 32
/* (b is ZoneSize-aligned: the bits SK_ROTR rotates in are zero) */
#define SK_ZCOLOUR(b) (SK_ROTR(b, 11) & (uintptr_t)((SK_ZCOLOURS - 1) << 6))

static inline uintptr_t
sk_zone_base(const void *z)
{
	return (uintptr_t)z & sk_slab.zone_mask;
}

static inline struct sk_slzone *
sk_zone_at(uintptr_t p)
{
	uintptr_t b = p & sk_slab.zone_mask;

	return (struct sk_slzone *)(b + SK_ZCOLOUR(b));
}

/*
 * The granule of p (any address in an ordinary zone) in its zone's
 * bitmaps: granules count from the zone's base, not from its header, so
 * that the fast paths find a granule's bit from the pointer alone.  The
 * base is ZoneSize-aligned, so bit b mod 64 is p / 8 mod 64 (what x86's
 * bit instructions take), and the pair of 64-bit words that holds it sits
 * (p >> 5) & sk_slab.zone_wmask bytes into the maps.
 */
static inline size_t
sk_zone_granule(uintptr_t p)
{
	return (p & ~sk_slab.zone_mask) >> 3;
}

/* Pure sizing rule of spec 1.5 (testable for any memory size). */
void sk_kmalloc_sizing(size_t lim_mb, int ncpus, struct sk_slab_config *c);
void sk_kmalloc_init(void);

/*
 * Internal flag: may block for hysteresis release and one reclaim pass,
 * but a mapping failure returns NULL (the malloc(3) drop-in's contract).
 */
#define SK_M_NORETRY	0x00100000
/*
 * Internal krealloc flag (the malloc drop-in's realloc): give a block that
 * grows a quarter more room than asked, and keep a block for any smaller
 * size such a growth would have given it (or one class below), so buffers
 * grown a little at a time are copied once per quarter.
 */
#define SK_M_SLACK	0x00200000

/*
 * The size a block that grows to size is given under SK_M_SLACK: a
 * quarter more, rounded to 16 bytes (size itself if that overflows), for
 * sizes above SK_SLACK_MIN.  Smaller blocks get exactly their size: a
 * copy of 64 bytes costs little, and programs that grow small objects
 * once (Lua's tables, 16 -> 32 bytes, 334,516 times in binary-trees 12)
 * would keep a quarter more of each for nothing (lua binary-trees 15:
 * 0.63 -> 0.61 s, peak RSS 19.9 -> 18.5 MiB).
 */
#define SK_SLACK_MIN 64

/* x, through an empty asm the compiler cannot see through: a
 * comparison's result stays a value instead of being turned back into
 * the branches it was written to avoid. */
static inline size_t
sk_opaque(size_t x)
{
	__asm__("" : "+r"(x));
	return x;
}

/* Without a branch (a mask select): the drop-in's realloc asks it on
 * every call, and whether a buffer still fits is data the branch
 * predictor cannot learn (malloc.c, realloc_nonnull). */
static inline size_t
sk_slack_grow(size_t size)
{
	size_t h = size + size / 4 + 15;
	size_t grow = sk_opaque((size > SK_SLACK_MIN) & (h > size));

	return size + (((h & ~(size_t)15) - size) & (0 - grow));
}

/*
 * The drop-in's realloc (SK_M_SLACK) keeps a zone chunk of osize bytes
 * for a new size that a growth to it would have been given (a quarter
 * more, rounded to its class) or that is at most one class smaller, so a
 * buffer that grows by small steps is copied once per quarter, never back
 * and forth between a chunk with headroom and one without (kmalloc.c).
 */
bool sk_km_slack_keeps(size_t size, size_t osize);

/*
 * A large block of osize usable bytes stays for size when size rounds to
 * the same pages (a hardened block ends at its guard page, so osize may
 * be less than its pages: size must fit too), or with slack (the drop-in)
 * when a growth to size would have been given as many pages.
 */
static inline bool
sk_large_keeps(size_t size, size_t osize, bool slack)
{
	size_t ps = sk_slab.page_size;

	if (size > osize || size + ps < size)
		return false;
	if (((size + ps - 1) & ~(ps - 1)) == ((osize + ps - 1) & ~(ps - 1)))
		return true;
	return slack &&
	    ((sk_slack_grow(size) + ps - 1) & ~(ps - 1)) >= osize;
}

/*
 * The page count of the large block that starts at ptr, from its page
 * tag alone, or 0: page-aligned, outside the zone arena, a positive tag,
 * and no zone around it (no look needed while no zone was ever mapped
 * outside the arena).  The keep tests of krealloc and the drop-in's
 * realloc, which go through the checked path when it says 0.
 */
static inline int32_t
sk_large_pages_quick(const void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	int32_t tag;

	if ((p & (sk_slab.page_size - 1)) != 0 ||
	    p - sk_zarena_base < SK_LOAD(&sk_zarena_used))
		return 0;
	tag = sk_pagemap_get(p);
	if (tag <= 0 || (SK_LOAD(&sk_zones_outside_ever) &&
	                    sk_pagemap_get(sk_zone_base(ptr)) < 0))
		return 0;
	return tag;
}

/*
 * Entry points naming the API the caller used, so a message about a bad
 * pointer says "free" or "kfree" as the user wrote it.
 */
void sk_kfree_api(void *ptr, struct malloc_type *type, const char *api);
size_t sk_kmalloc_usable_size_api(const void *ptr, const char *api);
void *sk_krealloc_api(void *ptr, size_t size, struct malloc_type *type,
    int flags, const char *api);
/* size bytes aligned to align (power of two, any size). */
void *sk_kmalloc_aligned(size_t size, size_t align, struct malloc_type *type,
    int flags);
/* Classify a pointer: 1 zone chunk, 2 large block, 0 not slabkit's. */
int sk_kmalloc_owns(const void *ptr);

/* The kmalloc fast paths without the public wrappers (direct calls). */
void *sk_kmalloc(size_t size, struct malloc_type *type, int flags);
void sk_kfree(void *ptr, struct malloc_type *type);

/* Interrupt context (spec 1.6 step 2): large frees are deferred. */
extern __thread int sk_tls_intr;

/* Passive-zero and zone counters of the calling shard (tests). */
uint64_t sk_kmalloc_passive_zero_count(void);

/* A reclaim hook (objcache registers one) run on M_WAITOK shortage. */
void sk_kmalloc_register_reclaim(int (*fn)(void));

/* The drop-in's slot array (malloc.c; a weak reference here). */
extern struct kmalloc_use sk_dropin_use[] __attribute__((weak));
/* A new shard: its direct tables point at the sentinel zone. */
void sk_kmalloc_shard_setup(struct sk_shard *sh);
/* A debug-class option changed: keep or leave the fast paths. */
void sk_kmalloc_debug_changed(void);

/* Shard exit: drain, release free zones, return deferred frees. */
void sk_kmalloc_shard_exit(struct sk_shard *sh);
/* slab_cleanup for one shard (owner thread, or an orphan under lock); all:
 * scan every zone for remote frees, not only the hinted ones. */
void sk_kmalloc_shard_cleanup(struct sk_shard *sh, bool all);

/* Defined only by the malloc drop-in (malloc.c); a weak reference here. */
extern const int sk_malloc_dropin __attribute__((weak));

/* Registry of types (stats.c walks it). */
extern struct malloc_type *sk_type_list;
void sk_types_lock(void);
void sk_types_unlock(void);
/* Merge the per-slot counters of one type. */
void sk_type_sum(struct malloc_type *type, struct kmalloc_type_stats *st);

/*
 * Statistics of the zones (kmalloc_zone.c), for stats.c and mallinfo.
 * sk_kmalloc_class_stats walks every shard's zone lists without stopping
 * their owners: it follows a link only while it points into the zone
 * arena (never unmapped), so it never faults, and it is exact only while
 * the program is quiescent.  Zones outside the arena (hardened and track
 * modes, or a full arena) are not seen.
 */
struct sk_class_stat {
	size_t size;   /* chunk size */
	size_t zones;  /* zones of this class */
	size_t inuse;  /* chunks handed out */
	size_t free;   /* chunks free (never carved included) */
	size_t header; /* bytes of zone headers (metadata) */
};
void sk_kmalloc_class_stats(struct sk_class_stat *out /* [SK_NZONES] */);

struct sk_zone_totals {
	size_t arena_mapped;      /* bytes of the zone arena mapped */
	size_t arena_decommitted; /* free zones in the arena, decommitted */
	size_t outside_mapped;    /* zones mapped outside the arena */
	size_t free_zones;        /* wholly free zones kept by shards */
	size_t free_zone_bytes;
	size_t large_mapped; /* large blocks mapped alone: bytes */
	size_t large_count;  /* and how many */
};
void sk_kmalloc_zone_totals(struct sk_zone_totals *t);
/* kmalloc_large.c: large blocks mapped alone (relaxed atomics). */
extern size_t sk_km_lone_bytes, sk_km_lone_count;

/* stats.c: the heap summary shared by the report and mallinfo. */
struct sk_heap_summary {
	size_t mapped;           /* zones + page-run heap + lone blocks */
	size_t resident;         /* the process's resident set */
	size_t retained;         /* free pages kept committed for reuse */
	size_t metadata;         /* zone headers, shards, heap metadata */
	size_t allocated;        /* bytes in chunks and blocks in use */
	size_t free_chunk_bytes; /* free chunks in zones */
	size_t free_chunks;
	size_t heap_retained;            /* page-run heap retained bytes */
	size_t large_count, large_bytes; /* blocks mapped alone */
};
/* Print "\n<title> of pid N (command)\n": every table names the process. */
void sk_stats_title(FILE *fp, const char *title);
void sk_heap_summary(struct sk_heap_summary *h,
    struct sk_class_stat *cls /* [SK_NZONES] or NULL */);

/* The library's own type for internal metadata. */
MALLOC_DECLARE(M_SLABKIT);

/* ------------------------------------------------------------------ */
/* Per-allocator statistics printers, called by stats.c. */
void sk_objcache_stats_print(FILE *fp, int json);
void sk_mpipe_stats_print(FILE *fp, int json);
void sk_zone_stats_print(FILE *fp, int json);
/* stats.c: print what SLABKIT_OPTIONS=stats asked for, at exit. */
void sk_stats_at_exit(void);

/* statshm.c */

/*
 * Start the live statistics file for `slabkit stat' (SLABKIT_OPTIONS=
 * stats_shm): a helper thread rewrites /dev/shm/slabkit.<pid>.  Does
 * nothing when the option is off or the helper already runs; any thread.
 */
void sk_statshm_start(void);

/* objcache.c */

/* The sizing of spec 2.2, for any CPU count (objcache_create uses it). */
struct sk_oc_sizing {
	int	nom_cache;	/* after defaulting and clamping */
	int	mag_capacity;
	int	nmagdepot;	/* empty magazines stocked in the depot */
	long	budget;		/* unallocated_objects; -1: unlimited */
};
void sk_objcache_sizing(int ncpus, int cluster_limit, int nom_cache,
    struct sk_oc_sizing *sz);

/* What the calling thread's slot and the depot hold (tests). */
struct sk_oc_view {
	int	loaded_rounds, loaded_capacity;
	int	previous_rounds, previous_capacity;
	int	capacity;	/* depot magcapacity */
	int	nfull, nempty;	/* depot lists */
	int	full_rounds;	/* objects on the full list */
	int	waiting;	/* getters asleep on the budget */
	int	nmags;		/* magazines alive */
	long	budget;		/* -1: unlimited */
};
void sk_objcache_view(struct objcache *oc, struct sk_oc_view *v);

/* One reaper pass over every cache; returns the objects destroyed. */
long sk_objcache_reap(void);

/* ------------------------------------------------------------------ */
/* mpipe.c */
struct malloc_pipe;
/* Wake every sleeper of the pipe without freeing anything (tests: a
 * spurious wakeup). */
void sk_mpipe_kick(struct malloc_pipe *mp);
/* Copy *mp under its lock (tests read counters without racing). */
void sk_mpipe_snapshot(struct malloc_pipe *mp, struct malloc_pipe *out);

/* ------------------------------------------------------------------ */
/* zone.c */

/* sysctl vm.zone_kmem_pages, vm.zone_kern_pages, vm.zone_kmem_kvaspace. */
void sk_zone_page_counts(long *kmem_pages, long *kern_pages, long *kvaspace);

/* ------------------------------------------------------------------ */
/* harden.c: hardened mode and checker tracking (docs/hardening.md) */

/*
 * z_hflags bits, set when a zone is set up and fixed until it is retired
 * (remote freers read them without a lock, so they are not in z_flags).
 * Zones with either bit take kmalloc's slow paths only (sk_opt.debug).
 */
#define SK_ZF_HARDENED	0x1	/* encoded links, canaries, quarantine */
#define SK_ZF_TRACKED	0x2	/* valgrind or ASan knows every chunk */

extern bool sk_harden_engaged;	/* atomic: a hardened zone/block exists */
extern bool sk_track_engaged;	/* atomic: a tracked zone/block exists */
extern long sk_harden_nlarge;	/* atomic: large blocks registered */
/* Takes the statistics of a chunk's real free after its quarantine. */
extern struct malloc_type sk_harden_sink[1];

/* options.c: may `hardened' or `track' take this value now? 0 or errno. */
int sk_harden_option(const char *key, int value);

/* zone_setup (end): hardened layout, tracking; zone_new/release: before
 * a zone is set up again or unmapped. */
void sk_harden_zone_setup(struct sk_slzone *z, bool fresh);
void sk_harden_zone_retire(struct sk_slzone *z);
/* zone_take_chunk: next never-used chunk of a hardened zone. */
int32_t sk_harden_carve_next(struct sk_slzone *z);
/* zone_take_chunk: c of a hardened/tracked zone is handed out. */
void sk_harden_chunk_taken(struct sk_slzone *z, struct sk_chunk *c,
    int flags);
/* kmalloc_slow: after chunk_finish (writes the canary). */
void sk_harden_chunk_done(struct sk_slzone *z, void *c);
/* kmalloc_slow: the class of a hardened request; -1 for the large path,
 * with *align the alignment the request would have had. */
int sk_harden_class(int zi, size_t size, size_t *chunk, size_t *align);
/* kfree_slow: checks, zero fill, quarantine; the chunk to free now (the
 * one leaving the quarantine, maybe another) or NULL. */
struct sk_chunk *sk_harden_chunk_free(struct sk_shard *sh,
    struct sk_slzone *z, struct sk_chunk *c, long idx, const char *api);
/* kmalloc_slow, hardened: look for writes into the shard's quarantine
 * (panics "write after free detected", naming the program's call). */
void sk_harden_alloc_check(struct sk_shard *sh, struct malloc_type *type);
/* The malloc(3) function allocating in this thread, when not malloc. */
extern __thread const char *sk_harden_api;
/* Is c (a chunk of a hardened zone) in a quarantine now?  (Tests.) */
bool sk_harden_quarantined(const void *c);
/* block_size: usable bytes of a chunk of a hardened/tracked zone (panics
 * for a chunk in the quarantine). */
size_t sk_harden_block_size(struct sk_slzone *z, const void *ptr,
    const char *api);
/*
 * kmalloc_large: extra bytes to map or take from the page-run heap
 * (guards); whether the heap serves total bytes; then place the block
 * (its usable bytes end at the trailing guard).  NULL: no memory.
 */
size_t sk_harden_large_extra(size_t align);
bool sk_harden_large_heap(size_t total);
void *sk_harden_large_setup(void *base, size_t size, size_t bytes,
    size_t align, size_t extra, bool heap, size_t *usable, bool *zeroed);
/* kfree_large: true when harden.c released the block (and its guards);
 * else *p and *npages say what to release or queue, as a plain block. */
bool sk_harden_large_free(struct sk_shard *sh, void **p, size_t *npages);
/* Is p (its page tagged > 0) the start of a large block?  Its usable
 * bytes (bytes: the pages). */
bool sk_harden_large_start(uintptr_t p);
size_t sk_harden_large_usable(const void *p, size_t bytes);
/* Was p the pointer of a guarded large block freed lately (the ring the
 * fault handler reads)?  For the message of a second free of a block
 * mapped alone, whose pages are gone (guards made with mprotect). */
bool sk_harden_large_freed(const void *p);
/* Tests: guards made with mprotect from now on, as on a kernel without
 * MADV_GUARD_INSTALL (call before any guarded block exists). */
void sk_harden_guards_force_protect(void);
/* Install the fault handler of hardened mode (once). */
void sk_harden_fault_setup(void);

static inline bool
sk_large_start(uintptr_t p)
{
	if (SK_UNLIKELY(SK_LOAD(&sk_harden_nlarge) != 0))
		return sk_harden_large_start(p);
	return (p & (sk_slab.page_size - 1)) == 0;
}

struct sk_chunk *sk_harden_link_get(struct sk_slzone *z,
    struct sk_chunk **slot, bool remote);
void sk_harden_link_set(struct sk_slzone *z, struct sk_chunk **slot,
    struct sk_chunk *v);

/* Free-list link accessors for kmalloc's slow paths. */
static inline struct sk_chunk *
sk_link_get(struct sk_slzone *z, struct sk_chunk **slot)
{
	if (SK_LIKELY(z->z_hflags == 0))
		return *slot;
	return sk_harden_link_get(z, slot, false);
}

static inline struct sk_chunk *
sk_link_get_remote(struct sk_slzone *z, struct sk_chunk **slot)
{
	if (SK_LIKELY(z->z_hflags == 0))
		return *slot;
	return sk_harden_link_get(z, slot, true);
}

static inline void
sk_link_set(struct sk_slzone *z, struct sk_chunk **slot, struct sk_chunk *v)
{
	if (SK_LIKELY(z->z_hflags == 0))
		*slot = v;
	else
		sk_harden_link_set(z, slot, v);
}

/* Counters for tests and docs (all since start). */
struct sk_harden_counters {
	long	guard_pages;		/* PROT_NONE pages now mapped */
	long	guard_failures;		/* mprotect refused */
	long	large_unguarded;	/* registry full */
	long	quarantined;		/* chunks that entered */
	long	released;		/* chunks that left */
	long	zones;			/* hardened zones set up */
};
void sk_harden_counters(struct sk_harden_counters *c);

#pragma GCC visibility pop

#endif /* SK_INTERNAL_H */
