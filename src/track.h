/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * track.h: telling a memory checker about slabkit's own heaps.
 *
 * Valgrind's memcheck and AddressSanitizer see only the system's mmap and
 * the C library's malloc.  To them a zone of kmalloc chunks is one big
 * mapping, so a read of a chunk after kfree is a perfectly valid load and
 * goes unreported.  SLABKIT_OPTIONS=track=valgrind or track=asan (the
 * latter is the default in a -fsanitize=address build, where CMake defines
 * SLABKIT_ASAN) makes slabkit describe every hand-out and every give-back:
 *
 *   kmalloc chunks      valgrind: MALLOCLIKE_BLOCK at allocation,
 *                       FREELIKE_BLOCK at kfree (so memcheck prints "Invalid
 *                       read ... inside a block of size N free'd" with both
 *                       stacks); ASan: the chunk's shadow is set to the
 *                       freed-heap value, so the report is the familiar
 *                       "heap-use-after-free".  Chunks never handed out are
 *                       poisoned too.
 *   large blocks        valgrind: MALLOCLIKE/FREELIKE; ASan: nothing, the
 *                       pages are unmapped at kfree and a late access faults.
 *   objcache objects    while an object sits in a magazine it is hidden
 *   mpipe buffers       (memcheck: no access; ASan: freed-heap shadow) and
 *   zone items          shown again when it is handed out.  A zone item
 *                       keeps its first two words visible: zone.c links
 *                       free items through them.
 *
 * The one subtlety is that slabkit reads and writes its free-list links
 * inside free chunks.  Every such access in kmalloc.c goes through
 * sk_link_get/sk_link_set (internal.h, harden.c block), which take a slow
 * path for a tracked zone: the word is made readable for memcheck around
 * the access, and the access itself is compiled without ASan
 * instrumentation.  The same accessors decode the links of hardened zones.
 *
 * Tracking is decided per zone when the zone is set up (z_hflags), and per
 * large block when it is mapped, so switching it on after the first
 * allocation only covers what is created afterwards; it cannot be switched
 * off (or changed) once a tracked zone exists (EBUSY).  Tracked zones take
 * kmalloc's slow paths; the fast paths are untouched.  The hooks placed in
 * objcache.c, mpipe.c and zone.c cost one load and one predicted branch
 * when tracking is off.
 *
 * Client requests need no valgrind installation at run time: they are a
 * few no-op instructions outside valgrind.  <valgrind/memcheck.h> is used
 * when present; otherwise the amd64 request sequence is written out here
 * (on other machines track=valgrind is refused with ENOTSUP).
 */
#ifndef SK_TRACK_H
#define SK_TRACK_H

#include "internal.h"

#define SK_TRACK_NONE     0
#define SK_TRACK_VALGRIND 1
#define SK_TRACK_ASAN     2

#if defined(__SANITIZE_ADDRESS__) || defined(SLABKIT_ASAN)
#include <sanitizer/asan_interface.h>
#define SK_TRACK_HAVE_ASAN 1
#define SK_NO_ASAN         __attribute__((no_sanitize_address))
#else
#define SK_TRACK_HAVE_ASAN 0
#define SK_NO_ASAN
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SK_TRACK_HAVE_VALGRIND 1
#endif
#endif

#if !defined(SK_TRACK_HAVE_VALGRIND) && defined(__x86_64__) && defined(__GNUC__)
/*
 * The amd64 client request of valgrind.h (a preamble of rotations that
 * leaves %rdi unchanged, then xchg %rbx,%rbx): valgrind recognises the
 * sequence and answers in %rdx; on a real CPU it does nothing.
 */
static inline unsigned long
sk_vg_request(unsigned long dflt, unsigned long req, unsigned long a1,
    unsigned long a2, unsigned long a3, unsigned long a4)
{
	volatile unsigned long args[6] = {req, a1, a2, a3, a4, 0};
	volatile unsigned long res;

	__asm__ volatile("rolq $3,  %%rdi ; rolq $13, %%rdi\n\t"
	                 "rolq $61, %%rdi ; rolq $51, %%rdi\n\t"
	                 "xchgq %%rbx,%%rbx"
	                 : "=d"(res)
	                 : "a"(&args[0]), "0"(dflt)
	                 : "cc", "memory");
	return res;
}
#define SK_VG_MC(n) ((('M' & 0xffu) << 24 | ('C' & 0xffu) << 16) + (n))
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, z)                                 \
	((void)sk_vg_request(0, 0x1301, (unsigned long)(p),                    \
	    (unsigned long)(n), (unsigned long)(rz), (unsigned long)(z)))
#define VALGRIND_FREELIKE_BLOCK(p, rz)                                         \
	((void)sk_vg_request(                                                  \
	    0, 0x1302, (unsigned long)(p), (unsigned long)(rz), 0, 0))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n)                                       \
	((void)sk_vg_request(                                                  \
	    0, SK_VG_MC(0), (unsigned long)(p), (unsigned long)(n), 0, 0))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n)                                      \
	((void)sk_vg_request(                                                  \
	    0, SK_VG_MC(1), (unsigned long)(p), (unsigned long)(n), 0, 0))
#define VALGRIND_MAKE_MEM_DEFINED(p, n)                                        \
	((void)sk_vg_request(                                                  \
	    0, SK_VG_MC(2), (unsigned long)(p), (unsigned long)(n), 0, 0))
#define RUNNING_ON_VALGRIND    sk_vg_request(0, 0x1001, 0, 0, 0, 0)
#define SK_TRACK_HAVE_VALGRIND 1
#endif

#ifndef SK_TRACK_HAVE_VALGRIND
#define SK_TRACK_HAVE_VALGRIND 0
#endif

/* Is mode t usable in this build?  0, or ENOTSUP. */
int sk_track_supported(int mode);

/*
 * Objects handed out by the allocators built on top (objcache, mpipe,
 * zone).  size 0 means "the kmalloc usable size of p" (objects of unknown
 * size that are not slabkit's are left alone).  Hide when the object goes
 * into a cache, show when it comes out; both are no-ops on memory that is
 * already in the wanted state.
 */
void sk_track_hide(const void *p, size_t size);
void sk_track_show(const void *p, size_t size);

/* Show p and return it: a fast path's last act is then a tail call, so
 * the hook costs the fast path a load and a branch, no stack frame. */
void *sk_track_show_ret(void *p, size_t size);
void *sk_track_zitem_show_ret(void *item, size_t zsize);

/* One-line hooks for objcache.c, mpipe.c and zone.c. */
#define SK_TRACK_HIDE(p, size)                                                 \
	do {                                                                   \
		if (SK_UNLIKELY(sk_opt.track != 0))                            \
			sk_track_hide((p), (size));                            \
	} while (0)
#define SK_TRACK_SHOW(p, size)                                                 \
	do {                                                                   \
		if (SK_UNLIKELY(sk_opt.track != 0))                            \
			sk_track_show((p), (size));                            \
	} while (0)
#define SK_TRACK_SHOW_RETURN(p, size)                                          \
	do {                                                                   \
		if (SK_UNLIKELY(sk_opt.track != 0))                            \
			return sk_track_show_ret((p), (size));                 \
	} while (0)
/* A zone item (z a struct vm_zone *, possibly NULL): its first two words
 * (the free-list link and the ZENTRY_FREE marker) stay visible. */
#define SK_TRACK_ZITEM_HIDE(z, item)                                           \
	do {                                                                   \
		if (SK_UNLIKELY(sk_opt.track != 0) && (z) != NULL &&           \
		    (item) != NULL && (size_t)(z)->zsize > 2 * sizeof(void *)) \
			sk_track_hide((void **)(item) + 2,                     \
			    (size_t)(z)->zsize - 2 * sizeof(void *));          \
	} while (0)
#define SK_TRACK_ZITEM_SHOW(z, item)                                           \
	do {                                                                   \
		if (SK_UNLIKELY(sk_opt.track != 0) &&                          \
		    (size_t)(z)->zsize > 2 * sizeof(void *))                   \
			sk_track_show((void **)(item) + 2,                     \
			    (size_t)(z)->zsize - 2 * sizeof(void *));          \
	} while (0)
#define SK_TRACK_ZITEM_SHOW_RETURN(z, item)                                    \
	do {                                                                   \
		if (SK_UNLIKELY(sk_opt.track != 0))                            \
			return sk_track_zitem_show_ret(                        \
			    (item), (size_t)(z)->zsize);                       \
	} while (0)

/* Memory about to be unmapped: forget what the checker was told about it
 * (ASan's shadow would otherwise outlive the mapping). */
void sk_track_reset(const void *p, size_t size);
#define SK_TRACK_RESET(p, size)                                                \
	do {                                                                   \
		if (SK_UNLIKELY(sk_opt.track != 0))                            \
			sk_track_reset((p), (size));                           \
	} while (0)

#endif /* SK_TRACK_H */
