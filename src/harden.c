/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * harden.c: hardened mode (SLABKIT_OPTIONS=hardened) and the checker
 * tracking of track.h (SLABKIT_OPTIONS=track=valgrind|asan).
 *
 * The kernel's slab trusts its callers; a userspace heap faces programs
 * with bugs and, sometimes, an attacker who turns a heap bug into control
 * of the allocator.  Hardened mode makes the usual heap exploits and the
 * usual heap bugs fail loudly, at a price paid only by the processes that
 * ask for it.  Each mechanism, for a zone set up while the option is on:
 *
 * - Encoded free-list links.  A free chunk's c_next holds
 *   next ^ key ^ (slot address >> 4), with a random 64-bit key per zone,
 *   on the local and on the remote list.  Every decode checks that the
 *   result is a chunk of the same zone in the state the list implies (free
 *   on a local list, remote-freed on the remote list); anything else
 *   panics "free list of zone ... corrupted".  A use-after-free write can
 *   no longer point the next allocation at memory of its choosing.
 * - Randomised carving.  Never-used chunks are carved from a random start
 *   with a random stride coprime with NMax, so the first allocations of a
 *   zone are not neighbours in a predictable order.  A walk with such a
 *   stride visits every chunk once before it comes back to its start, so
 *   the kernel's "corrupted zone" test keeps its meaning.
 * - Guard pages.  The last page of every zone is a guard (zones stay
 *   ZoneSize-aligned; the zone serves fewer chunks), so running off the
 *   end of a zone faults instead of reaching the next zone's header.  A
 *   large block is a run of the page-run heap with a guard page before
 *   and after it inside the run, and ends where its trailing guard starts
 *   (right-aligned at the request's alignment: 16 bytes, the size's power
 *   of two up to a page, or the alignment asked for; page multiples stay
 *   page-aligned), so even a one-byte overflow faults; kfree seals the
 *   whole run (every page a guard, its memory dropped) until a block takes
 *   it again, so a touch after free faults too.  Guards are installed with
 *   MADV_GUARD_INSTALL (Linux 6.13), which splits no mapping: 100,000 live
 *   blocks cost a few dozen mappings, not two each (vm.max_map_count is
 *   65530 by default).  Where the kernel lacks it (probed once), guards
 *   are mprotect'ed, large blocks are mapped alone as before, and the
 *   guards may add at most half of vm.max_map_count mappings; past that
 *   new zones and blocks get none (large ones come from the heap), which
 *   is said once on stderr ("slabkit: hardened: guard pages cost ...")
 *   and counted in guard_failures.  The guards are address space, not
 *   memory: the type statistics count the block's pages, sk_harden_counters
 *   counts the guards.
 * - The fault handler.  With the first hardened zone or block, SIGSEGV
 *   and SIGBUS get a handler (SA_SIGINFO | SA_ONSTACK) that looks the
 *   address up without locks (page tags, the block registry, a ring of
 *   recently freed blocks, the zone header) and, when it is a guard page
 *   or a freed large block, writes one line with write(2): "slabkit:
 *   hardened: buffer overflow: access to guard page ... after large block
 *   ... (ptr ...)" or "... use after free: access to ... in large block
 *   ..., freed already (ptr ...)".  It then restores the default action
 *   and returns: the access faults again and the process dies of the
 *   signal, as it would have without slabkit.  Other faults go to the
 *   handler that was installed before.
 * - Canaries.  Every chunk ends with an 8-byte word derived from a
 *   per-process secret and the chunk's address.  A request is served from
 *   the smallest class that holds it plus the canary at the alignment the
 *   request would have had without it (a power-of-two size keeps its
 *   power-of-two alignment), and kmalloc_usable_size says 8 bytes less.
 *   kfree checks the word: running into the next chunk must cross it, and
 *   panics "buffer overflow detected".
 * - Zero on free, checked at reuse.  kfree zero-fills the chunk except the
 *   link word; the allocation that hands it out again checks every other
 *   byte and panics "write after free detected".  Hardened zones are zero
 *   when set up, so every hand-out is checked and M_ZERO is passive.
 * - Delayed reuse.  A freed chunk waits in a per-shard FIFO quarantine of
 *   SK_QUARANTINE chunks; it is freed for real (and checked for writes)
 *   only when it leaves.  It keeps its "handed out" bit meanwhile and
 *   gets its "remote free" bit too, so the bitmaps alone make a second
 *   kfree (from any thread, whatever the program wrote into the chunk)
 *   panic "already free".  A mark in its first word (secret ^ address)
 *   is checked when it leaves, and every hardened allocation and free
 *   checks the newest chunk of its shard's quarantine in full and one
 *   more in turn (its mark), so a write through a pointer just freed (a
 *   forged link, say) stops the next call, named after it ("malloc",
 *   "free", "realloc").  The type statistics count it as freed at once.
 *
 * Who pays.  Hardened and tracked zones carry a z_hflags bit; with either
 * option on, sk_opt.debug is set, so kmalloc's fast paths (which test
 * sk_opt.debug already) send everything to the slow paths, where the hooks
 * below are called behind a test of z_hflags.  A process that never turns
 * the options on runs exactly the code it ran before.  Both options are
 * sticky: once a hardened (or tracked) zone or block exists they cannot be
 * switched off (EBUSY), since the fast paths cannot read encoded links.
 * Switching them on late covers only zones and blocks set up afterwards.
 *
 * Limits.  The XOR encoding resists blind overwrites, not an attacker who
 * can read a free chunk and knows what it points to.  Canaries catch
 * linear overflows that cross the end of the chunk, not a stray write
 * into another chunk.  The quarantine is per shard and bounded, and a
 * read after free of a small chunk is not reported (it reads zeros).  The
 * large block registry holds 2^18 blocks; beyond that blocks are served
 * without guards (said once, counted in large_unguarded).  Blocks freed in
 * interrupt context are not sealed.  Tracked blocks (track=) are mapped
 * alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "internal.h"
#include "os/pageheap.h"
#include "track.h"

#define SK_QUARANTINE 64      /* chunks per shard */
#define HZ_MAGIC      0x6861u /* "ha" */

/* Per-zone state of a hardened zone, just after the header bitmaps. */
struct sk_hzone {
	uint64_t key;    /* link encoding */
	uint32_t stride; /* carve step, coprime with NMax */
	uint16_t magic;
	uint16_t guarded; /* the last page is PROT_NONE */
};

struct sk_quarantine {
	uint32_t head;
	uint32_t count;
	uint64_t entered; /* atomic (owner writes): chunks that came in */
	uint64_t left;    /* atomic (owner writes): chunks that left */
	uint32_t cursor;  /* rolling check: next slot (from head) */
	struct sk_chunk *slot[SK_QUARANTINE];
};

bool sk_harden_engaged; /* atomic: a hardened zone or block exists */
bool sk_track_engaged;  /* atomic: a tracked zone or block exists */
long sk_harden_nlarge;  /* atomic: blocks in the large registry */

/*
 * Absorbs the statistics of a chunk's real free: the user's type was
 * charged at its kfree.  Never registered, so never listed; it has slots
 * of its own so that charging it costs no atomic operation.
 */
static struct kmalloc_use sink_use[SK_NSLOTS] SK_ALIGNED(SK_CACHELINE);
struct malloc_type sk_harden_sink[1] = {{
    .ks_magic = M_MAGIC,
    .ks_shortdesc = "hardened-sink", /* limit 0: kfree's slow path */
    .ks_use = sink_use,
}};

static uint64_t h_secret;  /* canaries and quarantine marks */
static uint64_t h_counter; /* atomic: zone key sequence */
static struct sk_once h_once = SK_ONCE_INITIALIZER("hardened set-up");
static int q_hook = -1; /* hook_data slot of the quarantine */
static struct sk_once q_once = SK_ONCE_INITIALIZER("hardened set-up");
static __thread int q_releasing;         /* kfree of a chunk leaving */
__thread const char *sk_harden_api;      /* the call allocating, if set */
static __thread const char *h_alloc_api; /* the call allocating now */

static struct sk_harden_counters h_cnt; /* atomic fields */

#define GM_MADVISE 1 /* guards: MADV_GUARD_INSTALL */
#define GM_PROTECT 2 /* guards: mprotect, within a budget */

static int guard_mode(void);
static bool guard_on(void *p, size_t n, long nmaps);
static long h_gmaps; /* atomic: mappings the mprotect guards add */

#define CNT_ADD(f, n) __atomic_fetch_add(&h_cnt.f, (n), __ATOMIC_RELAXED)

/* ------------------------------------------------------------------ */
/* Secrets */

static uint64_t
mix64(uint64_t x)
{
	/* splitmix64's finaliser */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
h_init(void)
{
	uint64_t s = sk_os_random();

	if (s == 0)
		s = 0x5eed5eed5eed5eedULL;
	SK_STORE(&h_secret, s);
}

static inline uint64_t
secret(void)
{
	sk_once(&h_once, h_init);
	return SK_LOAD(&h_secret);
}

static inline uint64_t
canary_of(const void *c)
{
	return SK_LOAD(&h_secret) ^ ((uintptr_t)c * 0x9e3779b97f4a7c15ULL);
}

static inline uint64_t
qmark_of(const void *c)
{
	return ~SK_LOAD(&h_secret) ^ (uintptr_t)c;
}

/* ------------------------------------------------------------------ */
/* Raw access to memory that a checker may have hidden */

static inline bool
track_valgrind(void)
{
	return SK_TRACK_HAVE_VALGRIND && sk_opt.track == SK_TRACK_VALGRIND;
}

SK_NO_ASAN static uint64_t
raw_load(const void *p)
{
	return *(const volatile uint64_t *)p;
}

SK_NO_ASAN static void
raw_store(void *p, uint64_t v)
{
	*(volatile uint64_t *)p = v;
}

/*
 * Offset of the first non-zero byte of [p + from, p + n), or 0; p 8-byte
 * aligned, from and n multiples of 8 (chunk sizes are).
 */
SK_NO_ASAN static size_t
raw_nonzero(const void *p, size_t from, size_t n)
{
	const uint64_t *w = p;

	for (size_t i = from / 8; i < n / 8; i++)
		if (w[i] != 0)
			return i * 8 + (size_t)__builtin_ctzll(w[i]) / 8;
	return 0;
}

/* Read a word that memcheck may hold inaccessible; keep it so. */
static uint64_t
word_get(const void *p, bool tracked)
{
	uint64_t v;

	if (!tracked || !track_valgrind())
		return raw_load(p);
#if SK_TRACK_HAVE_VALGRIND
	VALGRIND_MAKE_MEM_DEFINED(p, 8);
	v = raw_load(p);
	VALGRIND_MAKE_MEM_NOACCESS(p, 8);
#else
	v = raw_load(p);
#endif
	return v;
}

static void
word_set(void *p, uint64_t v, bool tracked)
{
	if (!tracked || !track_valgrind()) {
		raw_store(p, v);
		return;
	}
#if SK_TRACK_HAVE_VALGRIND
	VALGRIND_MAKE_MEM_UNDEFINED(p, 8);
	raw_store(p, v);
	VALGRIND_MAKE_MEM_NOACCESS(p, 8);
#else
	raw_store(p, v);
#endif
}

/* ------------------------------------------------------------------ */
/* Checker tracking (track.h) */

int
sk_track_supported(int mode)
{
	if (mode == SK_TRACK_VALGRIND && !SK_TRACK_HAVE_VALGRIND)
		return ENOTSUP;
	if (mode == SK_TRACK_ASAN && !SK_TRACK_HAVE_ASAN)
		return ENOTSUP;
	return 0;
}

#if SK_TRACK_HAVE_ASAN
/* Give [p, p + n) the shadow of freed heap memory (ASan's 0xfd), so a
 * touch reports "heap-use-after-free".  Whole granules only. */
SK_NO_ASAN static void
asan_mark_freed(const void *p, size_t n)
{
	static size_t scale, offset;
	uintptr_t a = (uintptr_t)p, e = a + n;
	volatile unsigned char *s;

	if (scale == 0)
		__asan_get_shadow_mapping(&scale, &offset);
	a = (a + ((uintptr_t)1 << scale) - 1) & ~(((uintptr_t)1 << scale) - 1);
	e &= ~(((uintptr_t)1 << scale) - 1);
	if (e <= a)
		return;
	s = (volatile unsigned char *)((a >> scale) + offset);
	for (size_t i = 0; i < (e - a) >> scale; i++)
		s[i] = 0xfd;
}
#endif

static void
track_hide(const void *p, size_t n)
{
	if (n == 0)
		return;
#if SK_TRACK_HAVE_VALGRIND
	if (sk_opt.track == SK_TRACK_VALGRIND)
		VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
#if SK_TRACK_HAVE_ASAN
	if (sk_opt.track == SK_TRACK_ASAN)
		asan_mark_freed(p, n);
#endif
	(void)p;
}

static void
track_show(const void *p, size_t n, bool defined)
{
	if (n == 0)
		return;
#if SK_TRACK_HAVE_VALGRIND
	if (sk_opt.track == SK_TRACK_VALGRIND) {
		if (defined)
			VALGRIND_MAKE_MEM_DEFINED(p, n);
		else
			VALGRIND_MAKE_MEM_UNDEFINED(p, n);
	}
#endif
#if SK_TRACK_HAVE_ASAN
	if (sk_opt.track == SK_TRACK_ASAN)
		__asan_unpoison_memory_region(p, (n + 7) & ~(size_t)7);
#endif
	(void)p;
	(void)defined;
}

/* A block handed out / given back (kmalloc chunks and large blocks). */
static void
track_alloc(const void *p, size_t n, bool zeroed)
{
#if SK_TRACK_HAVE_VALGRIND
	if (sk_opt.track == SK_TRACK_VALGRIND) {
		VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, zeroed);
		return;
	}
#endif
	track_show(p, n, zeroed);
}

static void
track_free(const void *p, size_t n)
{
#if SK_TRACK_HAVE_VALGRIND
	if (sk_opt.track == SK_TRACK_VALGRIND) {
		VALGRIND_FREELIKE_BLOCK(p, 0);
		return;
	}
#endif
	track_hide(p, n);
}

/* Memory that is not a block at all (chunks never handed out). */
static void
track_poison(const void *p, size_t n)
{
#if SK_TRACK_HAVE_VALGRIND
	if (sk_opt.track == SK_TRACK_VALGRIND)
		VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
#if SK_TRACK_HAVE_ASAN
	if (sk_opt.track == SK_TRACK_ASAN)
		__asan_poison_memory_region(p, n);
#endif
	(void)p;
	(void)n;
}

/* Everything in [p, p + n) back to plain memory (before reuse, unmap). */
static void
track_reset(const void *p, size_t n)
{
#if SK_TRACK_HAVE_VALGRIND
	if (sk_opt.track == SK_TRACK_VALGRIND)
		VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
#if SK_TRACK_HAVE_ASAN
	if (sk_opt.track == SK_TRACK_ASAN)
		__asan_unpoison_memory_region(p, n);
#endif
	(void)p;
	(void)n;
}

/* The kmalloc usable size of p when slabkit owns it as a live block. */
static size_t
object_size(const void *p, size_t size)
{
	if (size != 0)
		return size;
	if (sk_kmalloc_owns(p) == 0)
		return 0;
	return sk_kmalloc_usable_size_api(p, "objcache");
}

void
sk_track_hide(const void *p, size_t size)
{
	if (p != NULL)
		track_hide(p, object_size(p, size));
}

void
sk_track_show(const void *p, size_t size)
{
	if (p != NULL)
		track_show(p, object_size(p, size), true);
}

void *
sk_track_show_ret(void *p, size_t size)
{
	sk_track_show(p, size);
	return p;
}

void *
sk_track_zitem_show_ret(void *item, size_t zsize)
{
	if (zsize > 2 * sizeof(void *))
		track_show((void **)item + 2, zsize - 2 * sizeof(void *), true);
	return item;
}

void
sk_track_reset(const void *p, size_t size)
{
	track_reset(p, size);
}

/* ------------------------------------------------------------------ */
/* Options */

int
sk_harden_option(const char *key, int value)
{
	int err;

	if (strcmp(key, "hardened") == 0) {
		if (!value && SK_LOAD(&sk_harden_engaged))
			return EBUSY;
		return 0;
	}
	if ((err = sk_track_supported(value)) != 0)
		return err;
	if (SK_LOAD(&sk_track_engaged) && value != sk_opt.track)
		return EBUSY;
	return 0;
}

static void
quarantine_sum(struct sk_shard *sh, void *arg)
{
	struct sk_harden_counters *c = arg;
	struct sk_quarantine *q = SK_LOAD(&sh->hook_data[SK_LOAD(&q_hook)]);

	if (q != NULL) {
		c->quarantined += (long)SK_LOAD(&q->entered);
		c->released += (long)SK_LOAD(&q->left);
	}
}

void
sk_harden_counters(struct sk_harden_counters *c)
{
	c->guard_pages = SK_LOAD(&h_cnt.guard_pages);
	c->guard_failures = SK_LOAD(&h_cnt.guard_failures);
	c->large_unguarded = SK_LOAD(&h_cnt.large_unguarded);
	c->quarantined = c->released = 0;
	if (SK_LOAD(&q_hook) >= 0)
		sk_shard_foreach(quarantine_sum, c);
	c->zones = SK_LOAD(&h_cnt.zones);
}

/* ------------------------------------------------------------------ */
/* Zones */

static inline struct sk_hzone *
hzone_of(struct sk_slzone *z)
{
	uintptr_t a = (uintptr_t)(z->z_abits + 2 * z->z_bitwords);

	return (struct sk_hzone *)((a + 7) & ~(uintptr_t)7);
}

static uint32_t
gcd32(uint32_t a, uint32_t b)
{
	while (b != 0) {
		uint32_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

void
sk_harden_zone_retire(struct sk_slzone *z)
{
	if (z->z_hflags & SK_ZF_TRACKED)
		track_reset((void *)sk_zone_base(z), sk_slab.zone_size);
	if ((z->z_hflags & SK_ZF_HARDENED) && hzone_of(z)->guarded) {
		/* the guard stays: the zone is unmapped or set up again */
		if (guard_mode() == GM_PROTECT)
			__atomic_fetch_sub(&h_gmaps, 1, __ATOMIC_RELAXED);
		CNT_ADD(guard_pages, -1);
	}
	z->z_hflags = 0;
}

void
sk_harden_zone_setup(struct sk_slzone *z, bool fresh)
{
	size_t ps = sk_slab.page_size, size = z->z_chunksize;
	char *end = (char *)sk_zone_base(z) + sk_slab.zone_size;
	uint16_t hf = 0;

	if (sk_opt.hardened)
		hf |= SK_ZF_HARDENED;
	if (sk_opt.track != 0)
		hf |= SK_ZF_TRACKED;
	if (hf == 0)
		return;
	if (hf & SK_ZF_HARDENED) {
		struct sk_hzone *hz = hzone_of(z);
		char *base = z->z_baseptr;
		uint64_t r;
		uint32_t n, s;

		/* the zone state before the first chunk (whole chunks) */
		if ((char *)(hz + 1) > base)
			base += ((size_t)((char *)(hz + 1) - base) + size - 1) /
			        size * size;
		end -= ps;
		if (!fresh) /* stale chunks: hardened zones start zeroed */
			memset(hz, 0, (size_t)(end - (char *)hz));
		hz->guarded = guard_on(end, ps, 1);
		if (hz->guarded)
			CNT_ADD(guard_pages, 1);
		else
			CNT_ADD(guard_failures, 1);
		n = (uint32_t)((size_t)(end - base) / size);
		z->z_baseptr = base;
		z->z_nmax = (int32_t)n;
		z->z_nused = 0;
		z->z_flags &= ~SLZF_UNOTZEROD;
		hz->key = mix64(secret() + __atomic_add_fetch(&h_counter, 1,
		                               __ATOMIC_RELAXED));
		hz->magic = HZ_MAGIC;
		r = mix64(hz->key);
		s = 1;
		if (n > 2) {
			s = 1 + (uint32_t)(r % (n - 1));
			while (gcd32(s, n) != 1)
				s = s % (n - 1) + 1;
		}
		hz->stride = s;
		z->z_uindex = z->z_uendindex = (int32_t)((r >> 32) % n);
		SK_STORE(&sk_harden_engaged, true);
		sk_harden_fault_setup();
		CNT_ADD(zones, 1);
	}
	z->z_hflags = hf;
	if (hf & SK_ZF_TRACKED) {
		track_poison(z->z_baseptr, (size_t)z->z_nmax * size);
		SK_STORE(&sk_track_engaged, true);
	}
}

int32_t
sk_harden_carve_next(struct sk_slzone *z)
{
	uint32_t u = (uint32_t)z->z_uindex + hzone_of(z)->stride;

	if (u >= (uint32_t)z->z_nmax)
		u -= (uint32_t)z->z_nmax;
	return (int32_t)u;
}

/* ------------------------------------------------------------------ */
/* Links */

static inline uint64_t
link_pad(struct sk_slzone *z, struct sk_chunk **slot)
{
	return hzone_of(z)->key ^ ((uintptr_t)slot >> 4);
}

/* Chunk index of p in z, or -1 (kmalloc_impl.h's zone_chunk_index). */
static long
chunk_index(struct sk_slzone *z, const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)z->z_baseptr;
	uintptr_t idx;

	if ((uintptr_t)p < (uintptr_t)z->z_baseptr)
		return -1;
	idx = (uintptr_t)(((uint64_t)off * z->z_chunkmul) >> 32);
	if (idx >= (uintptr_t)z->z_nmax || idx * z->z_chunksize != off)
		return -1;
	return (long)idx;
}

__attribute__((cold, noreturn, noinline)) static void
link_corrupted(
    struct sk_slzone *z, struct sk_chunk **slot, uint64_t v, const char *what)
{
	sk_panic("kmalloc",
	    "free list of zone %p corrupted: the link in chunk %p decodes to "
	    "%p, %s (ptr %p)",
	    (void *)z, (void *)slot, (void *)(uintptr_t)v, what, (void *)slot);
}

struct sk_chunk *
sk_harden_link_get(struct sk_slzone *z, struct sk_chunk **slot, bool remote)
{
	bool tracked = (z->z_hflags & SK_ZF_TRACKED) != 0;
	uint64_t v;
	long idx;
	uint32_t bit, w;

	if (slot == &z->z_lchunks)
		return *slot;
	v = word_get(slot, tracked);
	if (!(z->z_hflags & SK_ZF_HARDENED))
		return (struct sk_chunk *)(uintptr_t)v;
	v ^= link_pad(z, slot);
	if (v == 0)
		return NULL;
	if ((idx = chunk_index(z, (void *)(uintptr_t)v)) < 0)
		link_corrupted(z, slot, v, "outside its zone");
	bit = 1u << (idx & 31);
	if (remote) {
		w = __atomic_load_n(&z->z_rbits[SK_ZWORD(idx)], __ATOMIC_ACQUIRE);
		if (!(w & bit))
			link_corrupted(z, slot, v, "a chunk not remote-freed");
	} else {
		w = SK_LOAD(&z->z_abits[SK_ZWORD(idx)]) |
		    SK_LOAD(&z->z_rbits[SK_ZWORD(idx)]);
		if (w & bit)
			link_corrupted(z, slot, v, "a chunk in use");
	}
	return (struct sk_chunk *)(uintptr_t)v;
}

void
sk_harden_link_set(
    struct sk_slzone *z, struct sk_chunk **slot, struct sk_chunk *v)
{
	uint64_t w = (uintptr_t)v;

	if (slot == &z->z_lchunks) {
		*slot = v;
		return;
	}
	if (z->z_hflags & SK_ZF_HARDENED)
		w ^= link_pad(z, slot);
	word_set(slot, w, (z->z_hflags & SK_ZF_TRACKED) != 0);
}

/* ------------------------------------------------------------------ */
/* Classes: room for the canary at the same alignment */

/* Alignment every chunk of class zi has (zone_setup's layout rule). */
static size_t
class_alignment(int zi)
{
	size_t c = sk_class_size[zi], a = sk_class_align[zi];

	if ((c & (c - 1)) == 0)
		return c;
	if (a < 16)
		a = 16;
	return (c & -c) < a ? (c & -c) : a;
}

/* For each class: the next one up with the same alignment, or -1. */
static int8_t class_up[SK_NZONES];
static struct sk_once class_once = SK_ONCE_INITIALIZER("hardened set-up");

static void
class_init(void)
{
	for (int zi = 0; zi < SK_NZONES; zi++) {
		class_up[zi] = -1;
		for (int i = zi + 1; i < SK_NZONES; i++) {
			if (sk_class_size[i] > sk_slab.zone_limit)
				break;
			if (class_alignment(i) >= class_alignment(zi)) {
				class_up[zi] = (int8_t)i;
				break;
			}
		}
	}
}

int
sk_harden_class(int zi, size_t size, size_t *chunk, size_t *align)
{
	int up;

	if (sk_class_size[zi] - size >= 8) {
		*chunk = sk_class_size[zi];
		return zi; /* the slack holds the canary */
	}
	sk_once(&class_once, class_init);
	if ((up = class_up[zi]) >= 0)
		*chunk = sk_class_size[up];
	else
		*align = class_alignment(zi); /* pages, at that alignment */
	return up;
}

/* ------------------------------------------------------------------ */
/* Allocation */

__attribute__((cold, noreturn, noinline)) static void
write_after_free(const char *api, const void *c, size_t off)
{
	sk_panic(api,
	    "write after free detected: chunk %p was written at offset %zu "
	    "after it was freed (ptr %p)",
	    c, off, c);
}

void
sk_harden_chunk_taken(struct sk_slzone *z, struct sk_chunk *c, int flags)
{
	size_t size = z->z_chunksize, off;
	bool hard = (z->z_hflags & SK_ZF_HARDENED) != 0;

	if (z->z_hflags & SK_ZF_TRACKED)
		track_alloc(c, size, hard || (flags & M_PASSIVE_ZERO));
	if (hard && (off = raw_nonzero(c, sizeof(void *), size)) != 0)
		write_after_free(
		    h_alloc_api != NULL ? h_alloc_api : "kmalloc", c, off);
}

void
sk_harden_chunk_done(struct sk_slzone *z, void *c)
{
	if (z->z_hflags & SK_ZF_HARDENED)
		raw_store((char *)c + z->z_chunksize - 8, canary_of(c));
}

size_t
sk_harden_block_size(struct sk_slzone *z, const void *ptr, const char *api)
{
	/* a chunk in the quarantine: block_size saw its z_rbits bit */
	(void)ptr;
	(void)api;
	if (!(z->z_hflags & SK_ZF_HARDENED))
		return z->z_chunksize;
	return z->z_chunksize - 8;
}

/* ------------------------------------------------------------------ */
/* Free and quarantine */

static void quarantine_bit(struct sk_chunk *c, bool set);

static void
quarantine_exit(struct sk_shard *sh)
{
	struct sk_quarantine *q = sh->hook_data[SK_LOAD(&q_hook)];

	if (q == NULL)
		return;
	/* kfree each chunk for real (q_releasing skips the quarantine) */
	while (q->count > 0) {
		struct sk_chunk *c = q->slot[q->head];

		q->head = (q->head + 1) % SK_QUARANTINE;
		q->count--;
		quarantine_bit(c, false);
		q_releasing = 1;
		sk_kfree_api(c, sk_harden_sink, "kfree");
		q_releasing = 0;
		SK_OWNER_ADD(&q->left, 1);
	}
}

static void
q_register(void)
{
	SK_STORE(&q_hook, sk_shard_register_exit_hook(quarantine_exit));
}

static struct sk_quarantine *
quarantine_of(struct sk_shard *sh)
{
	struct sk_quarantine *q;
	int why, h;

	if (sh->empty)
		return NULL;
	if (SK_UNLIKELY((h = SK_LOAD(&q_hook)) < 0)) {
		sk_once(&q_once, q_register);
		h = SK_LOAD(&q_hook);
	}
	q = sh->hook_data[h];
	if (q == NULL) {
		q = sk_os_map_untracked((sizeof(*q) + sk_slab.page_size - 1) &
		                            ~(sk_slab.page_size - 1),
		    &why);
		SK_STORE(&sh->hook_data[h], q);
	}
	return q;
}

/* Check that a chunk leaving the quarantine was not written meanwhile. */
static void
quarantine_check(struct sk_chunk *c, const char *api)
{
	struct sk_slzone *z =
	    sk_zone_at((uintptr_t)c);
	bool tracked = (z->z_hflags & SK_ZF_TRACKED) != 0;
	size_t off = 0;

	if (word_get(c, tracked) != qmark_of(c))
		write_after_free(api, c, 0);
	if (tracked && track_valgrind()) {
#if SK_TRACK_HAVE_VALGRIND
		VALGRIND_MAKE_MEM_DEFINED(c, z->z_chunksize);
		off = raw_nonzero(c, sizeof(void *), z->z_chunksize);
		VALGRIND_MAKE_MEM_NOACCESS(c, z->z_chunksize);
#endif
	} else {
		off = raw_nonzero(c, sizeof(void *), z->z_chunksize);
	}
	if (off != 0)
		write_after_free(api, c, off);
}

/*
 * Look at the quarantine of the calling thread's shard on every hardened
 * allocation and free: the newest chunk in full (mark and zero fill: a
 * write through a pointer just freed, such as a forged link, is caught at
 * the next call), and one more chunk in turn, its mark only, so every
 * chunk's first word is looked at within SK_QUARANTINE calls.
 */
static void
quarantine_scan(struct sk_quarantine *q, const char *api)
{
	struct sk_chunk *c;
	struct sk_slzone *z;

	if (q == NULL || q->count == 0)
		return;
	quarantine_check(
	    q->slot[(q->head + q->count - 1) % SK_QUARANTINE], api);
	if (q->cursor >= q->count)
		q->cursor = 0;
	c = q->slot[(q->head + q->cursor++) % SK_QUARANTINE];
	z = sk_zone_at((uintptr_t)c);
	if (word_get(c, (z->z_hflags & SK_ZF_TRACKED) != 0) != qmark_of(c))
		write_after_free(api, c, 0);
}

void
sk_harden_alloc_check(struct sk_shard *sh, struct malloc_type *type)
{
	int h = SK_LOAD(&q_hook);
	const char *api = "kmalloc";

	if (sk_harden_api != NULL)
		api = sk_harden_api;
	else if (&sk_malloc_dropin != NULL &&
	         strcmp(type->ks_shortdesc, "malloc") == 0)
		api = "malloc";
	h_alloc_api = api;
	if (h >= 0 && !sh->empty)
		quarantine_scan(sh->hook_data[h], api);
}

bool
sk_harden_quarantined(const void *c)
{
	struct sk_slzone *z =
	    sk_zone_at((uintptr_t)c);
	long idx = chunk_index(z, c);

	if (!(z->z_hflags & SK_ZF_HARDENED) || idx < 0)
		return false;
	return (SK_LOAD(&z->z_abits[SK_ZWORD(idx)]) &
	           SK_LOAD(&z->z_rbits[SK_ZWORD(idx)]) & (1u << (idx & 31))) != 0;
}

/*
 * Mark or unmark a chunk as quarantined: its bit in z_rbits (with its
 * "handed out" bit still set), so that every "is it free?" check of
 * the kmalloc files and harden.c says yes from the bitmaps alone, whatever
 * the program wrote into the chunk since, and whichever thread asks.
 */
static void
quarantine_bit(struct sk_chunk *c, bool set)
{
	struct sk_slzone *z =
	    sk_zone_at((uintptr_t)c);
	long idx = chunk_index(z, c);
	uint32_t bit = 1u << (idx & 31);

	if (set)
		__atomic_fetch_or(&z->z_rbits[SK_ZWORD(idx)], bit, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(
		    &z->z_rbits[SK_ZWORD(idx)], ~bit, __ATOMIC_RELAXED);
}

struct sk_chunk *
sk_harden_chunk_free(struct sk_shard *sh, struct sk_slzone *z,
    struct sk_chunk *c, long idx, const char *api)
{
	uint32_t bit = 1u << (idx & 31);
	size_t size = z->z_chunksize;
	struct sk_quarantine *q;
	struct sk_chunk *old;

	/* (a quarantined chunk of a tracked zone has its z_rbits bit set) */
	if (!(SK_LOAD(&z->z_abits[SK_ZWORD(idx)]) & bit) ||
	    (SK_LOAD(&z->z_rbits[SK_ZWORD(idx)]) & bit))
		sk_panic(api,
		    "memory chunk %p is already free! (double free, "
		    "ptr %p)",
		    (void *)c, (void *)c);
	if (!(z->z_hflags & SK_ZF_HARDENED)) {
		track_free(c, size);
		return c;
	}
	if (q_releasing)
		return c; /* leaving the quarantine at thread exit */
	if (raw_load((char *)c + size - 8) != canary_of(c))
		sk_panic(api,
		    "buffer overflow detected: the canary after the "
		    "%zu usable bytes of chunk %p was overwritten "
		    "(ptr %p)",
		    size - 8, (void *)c, (void *)c);
	memset((char *)c + sizeof(void *), 0, size - sizeof(void *));
	raw_store(c, qmark_of(c));
	if (z->z_hflags & SK_ZF_TRACKED)
		track_free(c, size);
	if ((q = quarantine_of(sh)) == NULL)
		return c; /* no shard: no quarantine */
	quarantine_scan(q, api);
	quarantine_bit(c, true);
	SK_OWNER_ADD(&q->entered, 1);
	if (q->count < SK_QUARANTINE) {
		q->slot[(q->head + q->count) % SK_QUARANTINE] = c;
		q->count++;
		return NULL;
	}
	old = q->slot[q->head];
	q->slot[q->head] = c;
	q->head = (q->head + 1) % SK_QUARANTINE;
	quarantine_check(old, api); /* named after the caller's free */
	quarantine_bit(old, false);
	SK_OWNER_ADD(&q->left, 1);
	return old;
}

/* ------------------------------------------------------------------ */
/* Guard pages: MADV_GUARD_INSTALL where the kernel has it (Linux 6.13:
 * no mapping is split), else mprotect within a budget of mappings */

static int h_gmode;      /* atomic: 0 unknown, GM_* */
static long h_gbudget;   /* mappings the mprotect guards may add */
static int h_gwarned;    /* atomic */
static long h_map_limit; /* vm.max_map_count */

static int
guard_mode(void)
{
	int m = SK_LOAD_ACQ(&h_gmode);

	if (SK_UNLIKELY(m == 0)) {
		m = sk_os_guard_supported() ? GM_MADVISE : GM_PROTECT;
		h_map_limit = sk_os_max_map_count();
		h_gbudget = h_map_limit / 2;
		SK_STORE_REL(&h_gmode, m);
	}
	return m;
}

void
sk_harden_guards_force_protect(void)
{
	guard_mode();
	SK_STORE_REL(&h_gmode, GM_PROTECT);
}

/* Has the mprotect budget run out?  (Large blocks then come from the
 * page-run heap, unguarded.) */
static bool
guard_budget_spent(void)
{
	return guard_mode() == GM_PROTECT &&
	       SK_LOAD(&h_gmaps) + 2 > SK_LOAD(&h_gbudget);
}

static void
guard_warn(void)
{
	if (__atomic_exchange_n(&h_gwarned, 1, __ATOMIC_RELAXED) == 0)
		sk_warn("hardened",
		    "guard pages cost %ld mappings, half of vm.max_map_count "
		    "(%ld): new zones and large blocks are no longer guarded "
		    "(counted in guard_failures; Linux 6.13 and later guard "
		    "without mappings, MADV_GUARD_INSTALL)",
		    SK_LOAD(&h_gmaps), h_map_limit);
}

/* Make [p, p + n) a guard; nmaps: the mappings an mprotect adds. */
static bool
guard_on(void *p, size_t n, long nmaps)
{
	if (n == 0)
		return true;
	if (guard_mode() == GM_MADVISE)
		return sk_os_guard_install(p, n) == 0;
	if (__atomic_add_fetch(&h_gmaps, nmaps, __ATOMIC_RELAXED) >
	    SK_LOAD(&h_gbudget)) {
		__atomic_fetch_sub(&h_gmaps, nmaps, __ATOMIC_RELAXED);
		guard_warn();
		return false;
	}
	if (sk_os_protect_none(p, n) == 0)
		return true;
	__atomic_fetch_sub(&h_gmaps, nmaps, __ATOMIC_RELAXED);
	return false;
}

/* A guard goes (with madvise guards: made memory again; mprotect guards
 * go with their mapping, the caller unmaps or keeps the zone). */
static void
guard_off(void *p, size_t n, long nmaps)
{
	if (n == 0)
		return;
	if (guard_mode() == GM_MADVISE)
		sk_os_guard_remove(p, n);
	else
		__atomic_fetch_sub(&h_gmaps, nmaps, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Large blocks: a lock-free registry of guarded or tracked blocks */

#define LR_BITS  18
#define LR_SIZE  ((size_t)1 << LR_BITS)
#define LR_TOMB  ((uintptr_t)1)
#define LR_BUSY  ((uintptr_t)2)
#define LR_GUARD 0x1
#define LR_TRACK 0x2
#define LR_HEAP  0x4

/*
 * A hardened block ends where its trailing guard starts (right-aligned
 * at the alignment the request had, so an overflow of one byte faults):
 * ptr is not page-aligned then.  The key is ptr's page, where the page
 * tag is; base..base + len is what was mapped or taken from the heap.
 */
struct lr_entry {
	uintptr_t key;  /* atomic: ptr's page; 0 empty, LR_TOMB gone */
	uintptr_t ptr;  /* atomic: the block */
	uintptr_t end;  /* atomic: its end (the trailing guard) */
	uintptr_t base; /* atomic: the run or mapping */
	uintptr_t len;
	uintptr_t flags; /* atomic: LR_* */
};

static struct lr_entry *lr_table; /* atomic */
static struct sk_once lr_once = SK_ONCE_INITIALIZER("hardened set-up");
static int lr_warned; /* atomic */

static void
lr_init(void)
{
	int why;

	SK_STORE_REL(&lr_table, (struct lr_entry *)sk_os_map_untracked(
	                            LR_SIZE * sizeof(struct lr_entry), &why));
}

static inline size_t
lr_hash(uintptr_t p)
{
	return (size_t)(mix64(p >> 12) & (LR_SIZE - 1));
}

static bool
lr_insert(const struct lr_entry *n)
{
	struct lr_entry *t;
	size_t h = lr_hash(n->key);

	sk_once(&lr_once, lr_init);
	if ((t = SK_LOAD_ACQ(&lr_table)) == NULL)
		return false;
	for (size_t i = 0; i < LR_SIZE; i++) {
		struct lr_entry *e = &t[(h + i) & (LR_SIZE - 1)];
		uintptr_t k = SK_LOAD(&e->key);

		if ((k == 0 || k == LR_TOMB) &&
		    __atomic_compare_exchange_n(&e->key, &k, LR_BUSY, false,
		        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			SK_STORE(&e->ptr, n->ptr);
			SK_STORE(&e->end, n->end);
			SK_STORE(&e->base, n->base);
			SK_STORE(&e->len, n->len);
			SK_STORE(&e->flags, n->flags);
			SK_STORE_REL(&e->key, n->key);
			__atomic_fetch_add(
			    &sk_harden_nlarge, 1, __ATOMIC_RELEASE);
			return true;
		}
	}
	return false;
}

/* The entry of the block whose first page is page, or NULL.  Lock-free
 * and async-signal-safe (the fault handler uses it). */
static struct lr_entry *
lr_find(uintptr_t page)
{
	struct lr_entry *t = SK_LOAD_ACQ(&lr_table);
	size_t h = lr_hash(page);

	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < LR_SIZE; i++) {
		struct lr_entry *e = &t[(h + i) & (LR_SIZE - 1)];
		uintptr_t k = SK_LOAD_ACQ(&e->key);

		if (k == 0)
			return NULL;
		if (k == page)
			return e;
	}
	return NULL;
}

/* Remove the block at ptr into *out; false when it is not registered. */
static bool
lr_remove(uintptr_t ptr, struct lr_entry *out)
{
	uintptr_t page = ptr & ~(uintptr_t)(sk_slab.page_size - 1);
	struct lr_entry *e = lr_find(page);

	if (e == NULL || SK_LOAD(&e->ptr) != ptr)
		return false;
	out->ptr = SK_LOAD(&e->ptr);
	out->end = SK_LOAD(&e->end);
	out->base = SK_LOAD(&e->base);
	out->len = SK_LOAD(&e->len);
	out->flags = SK_LOAD(&e->flags);
	SK_STORE_REL(&e->key, LR_TOMB);
	__atomic_fetch_sub(&sk_harden_nlarge, 1, __ATOMIC_RELAXED);
	return true;
}

bool
sk_harden_large_start(uintptr_t p)
{
	uintptr_t page = p & ~(uintptr_t)(sk_slab.page_size - 1);
	struct lr_entry *e = lr_find(page);

	if (e != NULL)
		return SK_LOAD(&e->ptr) == p;
	return p == page;
}

size_t
sk_harden_large_usable(const void *p, size_t bytes)
{
	uintptr_t a = (uintptr_t)p;
	struct lr_entry *e = lr_find(a & ~(uintptr_t)(sk_slab.page_size - 1));

	if (e == NULL || SK_LOAD(&e->ptr) != a)
		return bytes;
	return SK_LOAD(&e->end) - a;
}

/* Large blocks freed lately, for the fault handler's "use after free". */
#define FR_SIZE 1024
struct fr_entry {
	uintptr_t ptr, base, len; /* atomic */
};
static struct fr_entry fr_ring[FR_SIZE];
static unsigned long fr_next; /* atomic */

static void
fr_record(const struct lr_entry *e)
{
	unsigned long i =
	    __atomic_fetch_add(&fr_next, 1, __ATOMIC_RELAXED) % FR_SIZE;

	SK_STORE(&fr_ring[i].len, 0);
	SK_STORE(&fr_ring[i].ptr, e->ptr);
	SK_STORE(&fr_ring[i].base, e->base);
	SK_STORE_REL(&fr_ring[i].len, e->len);
}

bool
sk_harden_large_freed(const void *p)
{
	uintptr_t a = (uintptr_t)p, ps = sk_slab.page_size;
	unsigned long n = SK_LOAD(&fr_next);

	/* a pointer into a live block (an interior pointer: its address
	 * may be the start of a block freed before, at the same place with
	 * another size) is not a double free; the blocks live on at most
	 * SK_PH_MAX_RUN bytes of pages before it (larger ones are mapped
	 * alone and never in the ring's way for long) */
	for (uintptr_t k = 0; k <= SK_PH_MAX_RUN / ps && k * ps <= a; k++) {
		const struct lr_entry *e = lr_find((a & ~(ps - 1)) - k * ps);

		if (e != NULL && SK_LOAD(&e->ptr) <= a && a < SK_LOAD(&e->end))
			return false;
	}

	for (unsigned long i = 0; i < FR_SIZE && i < n; i++) {
		const struct fr_entry *f = &fr_ring[(n - 1 - i) % FR_SIZE];

		if (SK_LOAD_ACQ(&f->len) != 0 &&
		    SK_LOAD(&f->ptr) == (uintptr_t)p)
			return true;
	}
	return false;
}

size_t
sk_harden_large_extra(size_t align)
{
	size_t ps = sk_slab.page_size;

	if (!sk_opt.hardened)
		return 0;
	return (align > ps ? align : ps) + ps;
}

bool
sk_harden_large_heap(size_t total)
{
	if (!sk_opt.hardened || sk_opt.track || total > SK_PH_MAX_RUN)
		return false;
	return guard_mode() == GM_MADVISE || guard_budget_spent();
}

void *
sk_harden_large_setup(void *base, size_t size, size_t bytes, size_t align,
    size_t extra, bool heap, size_t *usable, bool *zeroed)
{
	size_t ps = sk_slab.page_size, lead = extra != 0 ? extra - ps : 0;
	struct lr_entry e = {0};
	char *b = (char *)base + lead, *end = b + bytes;
	uintptr_t q = (uintptr_t)b;

	e.base = (uintptr_t)base;
	e.len = bytes + extra;
	e.flags = heap ? LR_HEAP : 0;
	if (extra != 0) {
		/* right-aligned at the request's alignment: 16 bytes or the
		 * size's power of two, up to a page, or the one asked for */
		size_t a = size & -size;

		if (a > ps)
			a = ps;
		if (a < 16)
			a = 16;
		if (align > a)
			a = align;
		if (a < ps)
			q = (uintptr_t)end - ((size + a - 1) & ~(a - 1));
		if (heap) {
			/* the run may hold guards of blocks freed before */
			if (guard_mode() == GM_MADVISE)
				sk_os_guard_remove(base, bytes + extra);
		} else if (lead > ps) {
			sk_os_unmap(base, lead - ps);
			e.base = (uintptr_t)(b - ps);
			e.len = bytes + 2 * ps;
			lead = ps;
		}
		if ((!heap || guard_mode() == GM_MADVISE) &&
		    guard_on((void *)e.base, lead, 1)) {
			if (guard_on(end, ps, 1)) {
				e.flags |= LR_GUARD;
				CNT_ADD(guard_pages, 2);
			} else {
				guard_off((void *)e.base, lead, 1);
			}
		}
		if (!(e.flags & LR_GUARD)) {
			if (guard_mode() == GM_PROTECT)
				guard_warn();
			CNT_ADD(guard_failures, 1);
		}
		SK_STORE(&sk_harden_engaged, true);
		sk_harden_fault_setup();
	}
	if (sk_opt.track != 0) {
		e.flags |= LR_TRACK;
		SK_STORE(&sk_track_engaged, true);
	}
	e.key = (uintptr_t)b;
	e.ptr = q;
	e.end = (uintptr_t)end;
	*usable = (uintptr_t)end - q;
	if (lr_insert(&e)) {
		if (e.flags & LR_TRACK)
			track_alloc((void *)q, *usable, true);
		return (void *)q;
	}
	/* registry full: a plain block, said once */
	if (__atomic_exchange_n(&lr_warned, 1, __ATOMIC_RELAXED) == 0)
		sk_warn("hardened",
		    "%zu large blocks are registered, the most the registry "
		    "holds: new large blocks get no guard pages (counted in "
		    "large_unguarded)",
		    (size_t)LR_SIZE);
	CNT_ADD(large_unguarded, 1);
	if (e.flags & LR_GUARD) {
		guard_off((void *)e.base, lead, 1);
		guard_off(end, ps, 1);
		CNT_ADD(guard_pages, -2);
	}
	*usable = bytes;
	if (heap) {
		int why;

		sk_ph_free(base, (bytes + extra) >> sk_slab.page_shift);
		return sk_ph_alloc(
		    bytes >> sk_slab.page_shift, ps, zeroed, &why);
	}
	if (e.flags & LR_GUARD) {
		sk_os_unmap((void *)e.base, lead);
		sk_os_unmap(end, ps);
	}
	return b;
}

bool
sk_harden_large_free(struct sk_shard *sh, void **ptr, size_t *npages)
{
	size_t ps = sk_slab.page_size;
	struct lr_entry e;
	uintptr_t b = (uintptr_t)*ptr & ~(uintptr_t)(ps - 1);
	size_t lead;

	if (!lr_remove((uintptr_t)*ptr, &e))
		return false;
	lead = b - e.base;
#if SK_TRACK_HAVE_VALGRIND
	if ((e.flags & LR_TRACK) && track_valgrind()) {
		/* (ASan: nothing; the pages go away and a late touch faults.
		 * Poisoning them would leave stale shadow for the next
		 * mapping at this address.) */
		VALGRIND_FREELIKE_BLOCK(*ptr, 0);
		/* the deferred-free queue keeps its record in the block */
		VALGRIND_MAKE_MEM_DEFINED((void *)b, sizeof(struct sk_slzone));
	}
#endif
	if (e.flags & LR_GUARD)
		CNT_ADD(guard_pages, -2);
	if (SK_UNLIKELY(sk_tls_intr > 0) && !sh->empty) {
		/* queued (spec 1.6 step 2) as a plain run; its guards go now */
		if (e.flags & LR_GUARD) {
			guard_off((void *)e.base, lead, 1);
			guard_off((void *)e.end, ps, 1);
		}
		if (e.flags & LR_HEAP) {
			*ptr = (void *)e.base;
			*npages = e.len >> sk_slab.page_shift;
			return false;
		}
		if (e.flags & LR_GUARD) {
			sk_os_unmap((void *)e.base, lead);
			sk_os_unmap((void *)e.end, ps);
		}
		*ptr = (void *)b;
		return false;
	}
	if (e.flags & LR_HEAP) {
		/* sealed: every page faults until a block takes it again */
		if ((e.flags & LR_GUARD) &&
		    sk_os_guard_install((void *)e.base, e.len) == 0)
			fr_record(&e);
		sk_ph_free((void *)e.base, e.len >> sk_slab.page_shift);
		return true;
	}
	if (!(e.flags & LR_GUARD)) {
		*ptr = (void *)b; /* tracked only: mapped alone, plain */
		return false;
	}
	guard_off((void *)e.base, lead, 1);
	guard_off((void *)e.end, ps, 1);
	sk_os_unmap((void *)e.base, e.len);
	fr_record(&e);
	return true;
}

/* ------------------------------------------------------------------ */
/* The fault handler: names a touch of a guard page or of a freed large
 * block before the process dies of the signal */

static struct sigaction h_old_segv, h_old_bus;
static struct sk_once h_fault_once =
    SK_ONCE_INITIALIZER("hardened fault-handler set-up");

/*
 * What slabkit knows about address a, as one line in buf; 0 when a is
 * none of its guards or freed blocks.  Async-signal-safe: page tags, the
 * registry and the ring are read without locks, sk_fmt does not allocate.
 */
static size_t
fault_describe(uintptr_t a, char *buf, size_t len)
{
	uintptr_t ps = sk_slab.page_size, page = a & ~(ps - 1);
	uintptr_t zs = sk_slab.zone_size;
	struct sk_slzone *z;
	struct lr_entry *e;
	int32_t t;

	if (ps == 0)
		return 0;
	/* a trailing guard: the first tagged page below is a large block
	 * whose end is this page */
	for (uintptr_t k = 1; k <= ((uintptr_t)1 << 20) && k * ps <= page;
	     k++) {
		if ((t = sk_pagemap_get(page - k * ps)) == 0)
			continue;
		e = t == (int32_t)k ? lr_find(page - k * ps) : NULL;
		if (e != NULL && SK_LOAD(&e->end) == page)
			return sk_fmt(buf, len,
			    "slabkit: hardened: buffer overflow: access to "
			    "guard page %p after large block %p of %zu bytes "
			    "(ptr %p)\n",
			    (void *)a, (void *)SK_LOAD(&e->ptr),
			    (size_t)(page - SK_LOAD(&e->ptr)),
			    (void *)SK_LOAD(&e->ptr));
		break;
	}
	/* a leading guard */
	for (uintptr_t k = 1; k <= 4096; k++) {
		if ((t = sk_pagemap_get(page + k * ps)) == 0)
			continue;
		e = t > 0 ? lr_find(page + k * ps) : NULL;
		if (e != NULL && SK_LOAD(&e->base) <= a)
			return sk_fmt(buf, len,
			    "slabkit: hardened: buffer underflow: access to "
			    "guard page %p before large block %p (ptr %p)\n",
			    (void *)a, (void *)SK_LOAD(&e->ptr),
			    (void *)SK_LOAD(&e->ptr));
		break;
	}
	/* a large block freed lately, newest first */
	for (unsigned long n = SK_LOAD(&fr_next), i = 0; i < FR_SIZE && i < n;
	     i++) {
		struct fr_entry *f = &fr_ring[(n - 1 - i) % FR_SIZE];
		uintptr_t l = SK_LOAD_ACQ(&f->len), b = SK_LOAD(&f->base);

		if (l != 0 && a >= b && a - b < l)
			return sk_fmt(buf, len,
			    "slabkit: hardened: use after free: access to %p "
			    "in large block %p, freed already (ptr %p)\n",
			    (void *)a, (void *)SK_LOAD(&f->ptr),
			    (void *)SK_LOAD(&f->ptr));
	}
	/* the guard page at the end of a hardened zone */
	z = sk_zone_at(a);
	if (sk_pagemap_get((uintptr_t)z) < 0 &&
	    a >= sk_zone_base(z) + zs - ps &&
	    z->z_magic == SK_SLAB_MAGIC && (z->z_hflags & SK_ZF_HARDENED) &&
	    hzone_of(z)->guarded && z->z_nmax > 0) {
		char *last =
		    z->z_baseptr + (size_t)(z->z_nmax - 1) * z->z_chunksize;

		return sk_fmt(buf, len,
		    "slabkit: hardened: buffer overflow: access to guard page "
		    "%p at the end of zone %p, after chunk %p of %u bytes "
		    "(ptr %p)\n",
		    (void *)a, (void *)z, (void *)last, z->z_chunksize,
		    (void *)last);
	}
	if (SK_LOAD(&sk_harden_engaged) && sk_ph_owns((void *)a))
		return sk_fmt(buf, len,
		    "slabkit: hardened: use after free: access to %p in freed "
		    "pages of the large-block heap (ptr %p)\n",
		    (void *)a, (void *)a);
	return 0;
}

static void
h_fault(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *old = sig == SIGBUS ? &h_old_bus : &h_old_segv;
	struct sigaction dfl;
	char buf[320];
	size_t n = fault_describe((uintptr_t)si->si_addr, buf, sizeof(buf));

	if (n == 0) {
		/* not ours: the handler that was there before */
		if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction != NULL) {
			old->sa_sigaction(sig, si, uc);
			return;
		}
		if (!(old->sa_flags & SA_SIGINFO) &&
		    old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
			old->sa_handler(sig);
			return;
		}
	} else {
		sk_os_write(2, buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
	}
	/* die of the signal: the access faults again on return */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
}

static void
fault_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = h_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &h_old_segv);
	sigaction(SIGBUS, &sa, &h_old_bus);
}

void
sk_harden_fault_setup(void)
{
	sk_once(&h_fault_once, fault_install);
}
