/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The os layer on Linux: mmap/munmap/madvise/mprotect, sysconf, cgroups,
 * and the fault-injection counters.  The contract is in os.h.
 *
 * Aligned mappings over-map by the alignment and trim both ends, so the
 * result is exactly the asked range (munmap of it later is exact too).
 * Nothing here allocates or takes a lock: counters are atomics, and files
 * (cgroup, meminfo) are read with open/read into stack buffers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"

static size_t os_page_size;
static unsigned os_page_shift;

/* Fault injection state (control.h), per kind 1..3. */
struct os_fault {
	atomic_long calls;	/* calls since arming */
	atomic_long nth;	/* first failing call (1-based); 0: off */
	atomic_long count;	/* failing calls; < 0: all from nth on */
	atomic_uint permille;	/* random mode */
	atomic_ullong seed;
};
static struct os_fault os_faults[4];

/*
 * Calls since start (slabkit_fault_calls), in stripes picked by the
 * thread's lock id and summed on read (os.h): one counter written by every
 * thread at every heap allocation moved between CPUs on each, 1.3% of
 * mstress's time (8 threads, 2 CPUs, 1.5% of its blocks large).
 */
struct sk_os_fault_stripe sk_os_fault_total[SK_OS_FAULT_STRIPES];
int sk_os_faults_armed;

/* Re-derive sk_os_faults_armed after a change of any kind's state. */
static void
os_faults_rearm(void)
{
	int any = 0;

	for (int k = 1; k <= 3; k++)
		if (atomic_load(&os_faults[k].nth) > 0 ||
		    atomic_load(&os_faults[k].permille) > 0)
			any = 1;
	__atomic_store_n(&sk_os_faults_armed, any, __ATOMIC_SEQ_CST);
}
static atomic_long os_faults_injected;

size_t
sk_os_page_size(void)
{
	if (SK_UNLIKELY(os_page_size == 0)) {
		/* from the auxiliary vector: sysconf would be the only caller
		 * of its 64 KiB of libc in many programs (see sk_os_ncpus) */
		unsigned long ps = getauxval(AT_PAGESZ);
		size_t v = ps > 0 ? (size_t)ps : 4096;
		unsigned shift = 0;

		while (((size_t)1 << shift) < v)
			shift++;
		os_page_shift = shift;
		os_page_size = v;
	}
	return os_page_size;
}

unsigned
sk_os_page_shift(void)
{
	sk_os_page_size();
	return os_page_shift;
}

int
sk_os_fault_check_armed(int kind)
{
	struct os_fault *f = &os_faults[kind];
	long n, nth, count;
	unsigned pm;

	nth = atomic_load_explicit(&f->nth, memory_order_relaxed);
	pm = atomic_load_explicit(&f->permille, memory_order_relaxed);
	sk_os_fault_count(kind);
	if (nth <= 0 && pm == 0)
		return 0; /* another kind is armed, not this one */
	n = atomic_fetch_add_explicit(&f->calls, 1, memory_order_relaxed) + 1;
	if (nth > 0) {
		count = atomic_load_explicit(&f->count, memory_order_relaxed);
		if (n >= nth && (count < 0 || n < nth + count))
			goto fail;
	}
	if (pm > 0) {
		/* splitmix64 step on a shared seed: racy but fine for tests */
		unsigned long long z = atomic_fetch_add_explicit(&f->seed,
		    0x9E3779B97F4A7C15ULL, memory_order_relaxed);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		z ^= z >> 31;
		if (z % 1000 < pm)
			goto fail;
	}
	return 0;
fail:
	atomic_fetch_add_explicit(&os_faults_injected, 1, memory_order_relaxed);
	return 1;
}

void
slabkit_fault_inject(int kind, long nth, long count)
{
	struct os_fault *f;

	if (kind < 1 || kind > 3)
		return;
	f = &os_faults[kind];
	atomic_store(&f->nth, 0);
	atomic_store(&f->calls, 0);
	atomic_store(&f->count, count);
	atomic_store(&f->nth, nth);
	os_faults_rearm();
}

void
slabkit_fault_random(int kind, unsigned permille, uint64_t seed)
{
	if (kind < 1 || kind > 3)
		return;
	atomic_store(&os_faults[kind].seed, seed);
	atomic_store(&os_faults[kind].permille, permille > 1000 ? 1000 : permille);
	os_faults_rearm();
}

long
slabkit_fault_clear(void)
{
	for (int k = 1; k <= 3; k++) {
		atomic_store(&os_faults[k].nth, 0);
		atomic_store(&os_faults[k].permille, 0);
		atomic_store(&os_faults[k].calls, 0);
	}
	os_faults_rearm();
	return atomic_load(&os_faults_injected);
}

long
slabkit_fault_calls(int kind)
{
	if (kind < 1 || kind > 3)
		return 0;
	{
		long n = 0;

		for (int i = 0; i < SK_OS_FAULT_STRIPES; i++)
			n += __atomic_load_n(&sk_os_fault_total[i].total[kind],
			    __ATOMIC_RELAXED);
		return n;
	}
}

/* Map with PROT, aligned; shared by sk_os_map and sk_os_reserve. */
static void *
os_map_aligned(size_t size, size_t align, int prot, int extra, int *why)
{
	size_t ps = sk_os_page_size();
	uintptr_t base, aligned;
	void *p;

	/* Injected failures look like real ones, errno included. */
	if (sk_os_fault_check(SLABKIT_FAULT_MAP)) {
		errno = ENOMEM;
		*why = SK_OS_SHORTAGE;
		return NULL;
	}
	if (sk_os_fault_check(SLABKIT_FAULT_MAP_EXHAUST)) {
		errno = ENOMEM;
		*why = SK_OS_EXHAUSTED;
		return NULL;
	}
	if (size == 0 || size > ((size_t)1 << 47)) {
		*why = SK_OS_EXHAUSTED;
		return NULL;
	}
	if (align <= ps) {
		p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra,
		    -1, 0);
		if (p == MAP_FAILED) {
			*why = errno == ENOMEM ? SK_OS_SHORTAGE : SK_OS_EXHAUSTED;
			return NULL;
		}
		return p;
	}
	/* Try the exact size first: often the kernel hands out aligned space. */
	p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
	if (p == MAP_FAILED) {
		*why = errno == ENOMEM ? SK_OS_SHORTAGE : SK_OS_EXHAUSTED;
		return NULL;
	}
	if (((uintptr_t)p & (align - 1)) == 0)
		return p;
	munmap(p, size);
	if (size + align < size) {
		*why = SK_OS_EXHAUSTED;
		return NULL;
	}
	p = mmap(NULL, size + align, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra,
	    -1, 0);
	if (p == MAP_FAILED) {
		*why = errno == ENOMEM ? SK_OS_SHORTAGE : SK_OS_EXHAUSTED;
		return NULL;
	}
	base = (uintptr_t)p;
	aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
	if (aligned > base)
		munmap(p, aligned - base);
	if (aligned + size < base + size + align)
		munmap((void *)(aligned + size), base + align - aligned);
	return (void *)aligned;
}

void *
sk_os_map(size_t size, size_t align, int *why)
{
	return os_map_aligned(size, align, PROT_READ | PROT_WRITE, 0, why);
}

void *
sk_os_map_untracked(size_t size, int *why)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		*why = errno == ENOMEM ? SK_OS_SHORTAGE : SK_OS_EXHAUSTED;
		return NULL;
	}
	return p;
}

void *
sk_os_reserve(size_t size, size_t align, int *why)
{
	return os_map_aligned(size, align, PROT_NONE, MAP_NORESERVE, why);
}

void *
sk_os_map_at(void *addr, size_t size, int *why)
{
	void *p;

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
	p = mmap(addr, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED) {
		*why = errno == ENOMEM ? SK_OS_SHORTAGE : SK_OS_EXHAUSTED;
		return NULL;
	}
	if (p != addr) {
		/* an old kernel took the flag for a hint */
		munmap(p, size);
		*why = SK_OS_EXHAUSTED;
		return NULL;
	}
	return p;
}

void *
sk_os_reserve_rw(size_t size, size_t align, int *why)
{
	return os_map_aligned(size, align, PROT_READ | PROT_WRITE,
	    MAP_NORESERVE, why);
}

void *
sk_os_remap(void *addr, size_t oldsize, size_t newsize, int *why)
{
	void *p;

	if (sk_os_fault_check(SLABKIT_FAULT_MAP)) {
		errno = ENOMEM;
		*why = SK_OS_SHORTAGE;
		return NULL;
	}
#ifdef SLABKIT_TSAN
	/* ThreadSanitizer does not forget the old range's history on mremap
	 * and then reports races with whoever maps that range next: callers
	 * fall back to map-copy-unmap in TSan builds. */
	(void)addr;
	(void)oldsize;
	(void)newsize;
	*why = SK_OS_SHORTAGE;
	return NULL;
#endif
	p = mremap(addr, oldsize, newsize, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) {
		*why = errno == ENOMEM ? SK_OS_SHORTAGE : SK_OS_EXHAUSTED;
		return NULL;
	}
	return p;
}

void
sk_os_unmap(void *addr, size_t size)
{
	if (addr != NULL && size != 0)
		munmap(addr, size);
}

int
sk_os_decommit(void *addr, size_t size)
{
	if (sk_os_fault_check(SLABKIT_FAULT_ADVISE))
		return -1;
	return madvise(addr, size, MADV_DONTNEED) == 0 ? 0 : -1;
}

int
sk_os_commit(void *addr, size_t size)
{
	if (sk_os_fault_check(SLABKIT_FAULT_ADVISE))
		return -1;
	return mprotect(addr, size, PROT_READ | PROT_WRITE) == 0 ? 0 : -1;
}

int
sk_os_protect_none(void *addr, size_t size)
{
	return mprotect(addr, size, PROT_NONE) == 0 ? 0 : -1;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

int
sk_os_guard_install(void *addr, size_t size)
{
	return madvise(addr, size, MADV_GUARD_INSTALL) == 0 ? 0 : -1;
}

int
sk_os_guard_remove(void *addr, size_t size)
{
	return madvise(addr, size, MADV_GUARD_REMOVE) == 0 ? 0 : -1;
}

/*
 * Does the page at p refuse to be read?  The kernel says so without a
 * signal: write(2) from it into a pipe fails with EFAULT.  Unknown (a
 * pipe could not be made) counts as no.
 */
static bool
os_page_unreadable(const void *p)
{
	int fd[2], saved = errno;
	bool refused = false;

	if (pipe2(fd, O_CLOEXEC) == 0) {
		refused = write(fd[1], p, 1) < 0 && errno == EFAULT;
		close(fd[0]);
		close(fd[1]);
	}
	errno = saved;
	return refused;
}

/*
 * Probed once: a guard installed in a scratch page must make that page
 * unreadable, leave its neighbour alone and come off again.  The read
 * test is there because an emulator may accept the call and do nothing:
 * qemu-user answers 0 to MADV_GUARD_INSTALL and installs no guard, and
 * hardened mode then had no guard pages at all, silently.  Where the
 * probe fails, guards are PROT_NONE pages (sk_os_protect_none).
 */
bool
sk_os_guard_supported(void)
{
	static int known; /* atomic: 0 unknown, 1 yes, 2 no */
	int k = __atomic_load_n(&known, __ATOMIC_ACQUIRE);
	size_t ps = sk_os_page_size();
	void *p;

	if (k != 0)
		return k == 1;
	k = 2;
	p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED) {
		if (sk_os_guard_install(p, ps) == 0) {
			bool works = os_page_unreadable(p) &&
			             !os_page_unreadable((char *)p + ps);

			if (sk_os_guard_remove(p, ps) == 0 && works &&
			    !os_page_unreadable(p))
				k = 1;
		}
		munmap(p, 2 * ps);
	}
	__atomic_store_n(&known, k, __ATOMIC_RELEASE);
	return k == 1;
}

/* Read a small file into buf (NUL-terminated); returns length or -1. */
static ssize_t
os_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n, total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((size_t)total < len - 1) {
		n = read(fd, buf + total, len - 1 - (size_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

/* The decimal number at the start of s (0 when there is none); no
 * strtoull, whose corner of libc a program may never use otherwise. */
static unsigned long long
os_parse_u64(const char *s)
{
	unsigned long long v = 0;

	while (*s >= '0' && *s <= '9' && v <= (~0ULL - 9) / 10)
		v = v * 10 + (unsigned)(*s++ - '0');
	return v;
}

/* The cgroup v2 (or v1) memory limit of this process, or 0 for none. */
static size_t
os_cgroup_limit(void)
{
	char cg[512], path[700], val[64];
	ssize_t n;
	char *p;

	n = os_read_file("/proc/self/cgroup", cg, sizeof(cg));
	if (n > 0 && (p = strstr(cg, "0::")) != NULL) {
		char *e;

		p += 3;
		e = strchr(p, '\n');
		if (e != NULL)
			*e = '\0';
		sk_fmt(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", p);
		if (os_read_file(path, val, sizeof(val)) > 0 &&
		    strncmp(val, "max", 3) != 0)
			return os_parse_u64(val);
	}
	if (os_read_file("/sys/fs/cgroup/memory.max", val, sizeof(val)) > 0 &&
	    strncmp(val, "max", 3) != 0)
		return os_parse_u64(val);
	if (os_read_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", val,
		sizeof(val)) > 0) {
		unsigned long long v = os_parse_u64(val);

		if (v < ((unsigned long long)1 << 60))
			return v;
	}
	return 0;
}

long
sk_os_max_map_count(void)
{
	char val[32];
	long v;

	if (os_read_file("/proc/sys/vm/max_map_count", val, sizeof(val)) <= 0)
		return 65530;
	v = (long)os_parse_u64(val);
	return v > 0 ? v : 65530;
}

size_t
sk_os_usable_memory_mb(void)
{
	struct sysinfo si;
	size_t bytes =
	    sysinfo(&si) == 0 && si.totalram > 0
	        ? (size_t)si.totalram * (si.mem_unit ? si.mem_unit : 1)
	        : (size_t)1 << 30;
	size_t cg = os_cgroup_limit();
	struct rlimit rl;

	if (cg != 0 && cg < bytes)
		bytes = cg;
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < bytes)
		bytes = rl.rlim_cur;
	bytes >>= 20;
	return bytes > 0 ? bytes : 1;
}

bool
sk_os_cpu_bmi2(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;

	/* the macros, not __get_cpuid_count: no address of a local, so no
	 * stack-protector canary, and no thread pointer needed */
	__cpuid(0, a, b, c, d);
	if (a < 7)
		return false;
	__cpuid_count(7, 0, a, b, c, d);
	return (b & (1u << 8)) != 0; /* CPUID.(EAX=7,ECX=0):EBX.BMI2 */
#else
	return false;
#endif
}

/*
 * The CPUs this process may run on.  Called at start-up, like the page
 * size and the memory size above, with the system call itself rather than
 * sched_getaffinity or sysconf: each libc function in a 64 KiB stretch of
 * libc that the program itself never runs costs its whole 64 KiB of RSS
 * (the kernel maps the pages around a fault), and these three cost every
 * program slabkit started in some 192 KiB.
 */
int
sk_os_ncpus(void)
{
	unsigned long mask[1024 / (8 * sizeof(unsigned long))];
	long n = syscall(SYS_sched_getaffinity, 0, sizeof(mask), mask);

	if (n > 0) {
		int c = 0;

		for (size_t i = 0; i < (size_t)n / sizeof(mask[0]); i++)
			for (unsigned long m = mask[i]; m != 0; m &= m - 1)
				c++;
		if (c > 0)
			return c;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

void
sk_os_write(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void
sk_os_sleep_ns(long ns)
{
	struct timespec ts = {ns / 1000000000L, ns % 1000000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

uint64_t
sk_os_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The same clock at the kernel's tick (1-10 ms): the vDSO reads it
 * without the time-stamp counter, several times cheaper. */
uint64_t
sk_os_now_coarse_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
		return sk_os_now_ns();
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t
sk_os_random(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = sk_os_now_ns() ^ ((uint64_t)(uintptr_t)&v << 16);
	return v;
}

#ifdef __GLIBC__
/* what glibc's pthread_atfork stub calls (libc_nonshared.a) */
extern void *__dso_handle;
extern int __register_atfork(
    void (*)(void), void (*)(void), void (*)(void), void *);
#endif

int
sk_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
#ifdef __GLIBC__
	return __register_atfork(prepare, parent, child, __dso_handle);
#else
	return pthread_atfork(prepare, parent, child);
#endif
}

const char *
sk_os_getenv(const char *name)
{
	return secure_getenv(name);
}
