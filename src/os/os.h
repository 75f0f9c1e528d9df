/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The os layer: the only code in slabkit that makes system calls for memory
 * or asks the system about itself.  Porting slabkit means writing one file
 * that implements this contract (linux.c is the Linux one).
 *
 * Contract, stated once:
 * - Every function may be called from any thread, before main, and from a
 *   forked child.  None allocates memory through malloc, none takes a lock
 *   that an allocator path holds, and none writes through stdio.
 * - Mapping functions return memory that reads as zero, readable and
 *   writable, aligned as asked; on failure they return NULL and say why in
 *   *why: SK_OS_SHORTAGE (the system is short of memory now: a caller that
 *   may block can retry later) or SK_OS_EXHAUSTED (no address space or a
 *   hard limit: retrying will not help).
 * - Fault injection (slabkit_fault_inject) is applied here, and only here,
 *   so every layer above sees injected failures exactly like real ones.
 */
#ifndef SK_OS_H
#define SK_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SK_OS_SHORTAGE	1
#define SK_OS_EXHAUSTED	2

/* Page size in bytes (4096 on the platforms we know) and its shift. */
size_t sk_os_page_size(void);
unsigned sk_os_page_shift(void);

/*
 * Map size bytes (a multiple of the page size) aligned to align (a power of
 * two, at least a page).  Zero-filled.  NULL and *why on failure.
 */
void *sk_os_map(size_t size, size_t align, int *why);

/* sk_os_map without fault injection, page aligned (slabkit's own tables). */
void *sk_os_map_untracked(size_t size, int *why);

/* Unmap a range returned by sk_os_map or sk_os_reserve (or a page-aligned
 * part of one). */
void sk_os_unmap(void *addr, size_t size);

/*
 * Resize a mapping made by sk_os_map (page multiples), moving it if need
 * be; the old range is gone on success.  NULL and *why on failure (the old
 * mapping is then untouched).
 */
void *sk_os_remap(void *addr, size_t oldsize, size_t newsize, int *why);

/* Give the pages back but keep the range mapped (reads as zero later).
 * Returns 0, or -1 when the system refused. */
int sk_os_decommit(void *addr, size_t size);

/* Reserve address space without memory (PROT_NONE), aligned as sk_os_map. */
void *sk_os_reserve(size_t size, size_t align, int *why);
/* Reserve address space that is readable and writable at once, pages
 * committed by the kernel only when touched (MAP_NORESERVE): the zone
 * arena.  Same failure contract as sk_os_map. */
void *sk_os_reserve_rw(size_t size, size_t align, int *why);
/* Map size bytes read-write exactly at addr, never over an existing
 * mapping: NULL with *why SK_OS_EXHAUSTED when the range is taken (or the
 * kernel cannot place it there), SK_OS_SHORTAGE when memory is short.
 * No fault injection here: the caller runs sk_os_fault_check. */
void *sk_os_map_at(void *addr, size_t size, int *why);

/* Make part of a reservation usable (zero-filled).  0 or -1. */
int sk_os_commit(void *addr, size_t size);

/* Make part of a mapping inaccessible (guard pages).  0 or -1. */
int sk_os_protect_none(void *addr, size_t size);

/*
 * Guard pages that split no mapping (Linux >= 6.13, MADV_GUARD_INSTALL):
 * install makes [addr, addr + size) fault on access and drops its pages;
 * remove makes it ordinary zero-filled memory again.  0, or -1 where the
 * kernel lacks them (sk_os_guard_supported says so once).
 */
int sk_os_guard_install(void *addr, size_t size);
int sk_os_guard_remove(void *addr, size_t size);
bool sk_os_guard_supported(void);

/* vm.max_map_count: the mappings a process may have (65530 if unknown). */
long sk_os_max_map_count(void);

/* Usable memory in MiB: min(RAM, cgroup memory.max, RLIMIT_AS). */
size_t sk_os_usable_memory_mb(void);

/* Number of CPUs this process may run on (at least 1). */
int sk_os_ncpus(void);

/* Whether the CPU has BMI2 (x86-64; false elsewhere).  Safe to call from
 * anywhere, start-up included: no relocation, no thread pointer, no libc. */
bool sk_os_cpu_bmi2(void);

/* Write all of buf to fd, retrying on EINTR; errors are ignored. */
void sk_os_write(int fd, const char *buf, size_t len);

/* Sleep for ns nanoseconds (EINTR restarts). */
void sk_os_sleep_ns(long ns);

/* Monotonic clock in nanoseconds. */
uint64_t sk_os_now_ns(void);
uint64_t sk_os_now_coarse_ns(void); /* tick resolution, cheaper */

/* An unpredictable 64-bit value (getrandom, else clock and address bits). */
uint64_t sk_os_random(void);

/* Value of an environment variable, ignored (NULL) in setuid programs. */
const char *sk_os_getenv(const char *name);

/*
 * pthread_atfork: the same handlers, registered for this library (so that
 * they go when it is unloaded).  pthread_atfork itself is a stub glibc
 * links into every library that calls it, at the end of its code: a call
 * to it kept the last 64 KiB of slabkit's code resident in every program.
 */
int sk_os_atfork(
    void (*prepare)(void), void (*parent)(void), void (*child)(void));

/*
 * Injected-fault bookkeeping: counts calls of each kind (in stripes by
 * the thread's lock id, summed by slabkit_fault_calls) and says whether
 * this one fails.  Inline while nothing is armed: a test of one flag and
 * an add (a large malloc/free pair made two calls of 33 instructions).
 */
#define SK_OS_FAULT_STRIPES 16
struct sk_os_fault_stripe {
	long total[4]; /* relaxed: a count lost to a race only blurs */
} __attribute__((aligned(64)));
extern struct sk_os_fault_stripe sk_os_fault_total[SK_OS_FAULT_STRIPES];
extern int sk_os_faults_armed; /* atomic: some kind is armed */
extern __thread uint32_t sk_tls_lockid;
uint32_t sk_mutex_id_slow(void);
int sk_os_fault_check_armed(int kind);

static inline void
sk_os_fault_count(int kind)
{
	uint32_t id = sk_tls_lockid;
	long *t;

	if (__builtin_expect(id == 0, 0))
		id = sk_mutex_id_slow();
	t = &sk_os_fault_total[id % SK_OS_FAULT_STRIPES].total[kind];
	__atomic_store_n(
	    t, __atomic_load_n(t, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static inline int
sk_os_fault_check(int kind)
{
	if (__builtin_expect(
	        !__atomic_load_n(&sk_os_faults_armed, __ATOMIC_RELAXED), 1)) {
		sk_os_fault_count(kind);
		return 0;
	}
	return sk_os_fault_check_armed(kind);
}

#endif /* SK_OS_H */
