/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc's shards per CPU, as in the kernel (SLGlobalData per CPU).
 *
 * The kernel's fast path runs in a critical section on the current CPU:
 * nothing else touches that CPU's zones until it is done.  Userspace has
 * no critical sections, but Linux has restartable sequences (rseq): glibc
 * 2.35 and later register one area per thread (at __rseq_offset from the
 * thread pointer) in which the kernel keeps the current CPU number, and a
 * thread that is preempted, migrated or signalled while its instruction
 * pointer is inside a registered critical section resumes at the
 * section's abort handler instead.
 *
 * A critical section commits with its last store, and kmalloc's fast
 * paths make several stores that must all happen (the list head, the
 * chunk's bit, the statistics slot).  So the sequence does not run the
 * fast path; it takes the CPU's shard: read the CPU number, load that
 * shard's lock word, and if it is 0 store this thread's pointer into it.
 * Two threads can only both read 0 if neither was preempted between the
 * read and the store, that is if they ran on different CPUs, and then they
 * read different shards' words.  The fast path then runs as it always
 * did, on a shard it holds alone, and a plain store of 0 gives it back.
 * The cost is 9 instructions per call and no atomic
 * read-modify-write.  A thread preempted while it holds a shard keeps it:
 * the others that run on that CPU meanwhile find it held (sk_kshard_wait).
 * The CPU number indexes the table without a bounds test: every number
 * the kernel may report has an entry (/sys/devices/system/cpu/possible),
 * and -1 and -2 (registration not done or failed) read the two entries
 * before it, both sk_cpu_absent, which is always held.
 *
 * When: a process starts with shards per thread, and CPU shards start
 * once more threads are alive with a shard than a thread per CPU plus one
 * (sk_cpu_thread_started says why).  The fast paths first test
 * sk_cpu.active, a global flag (one compare with memory): set, they run
 * the rseq sequence; clear, they read the per-thread pointer
 * sk_tls_kshard, the thread's own shard.  (They used to read that pointer
 * first and find a marker shard in it whose flag sent them to the
 * sequence: two instructions more a call on the CPU path.)
 *
 * What stays per thread: a thread's own shard, used by kmalloc before CPU
 * shards start and after only as a fallback (shards=thread, a kernel or
 * libc without rseq, valgrind, ThreadSanitizer builds, CPUs beyond the
 * table, a signal handler that interrupted its thread while it held its
 * CPU's shard, or a shard held too long), and by the layers above kmalloc
 * (objcache magazines, the zone allocator's per-thread caches,
 * kmalloc_obj's slabs), whose state is per thread by design
 * (docs/deviations.md, entry 1).
 *
 * Threads that are not on a shard's CPU take it with a compare-and-swap
 * followed by membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) aimed at
 * that CPU: the barrier restarts a sequence that read 0 before the swap
 * and had not yet stored, and one that stored first shows in the word
 * when it is read again.  slab_cleanup() and malloc_trim() use it to
 * empty every CPU's shard, and fork() to hold them all while it copies
 * the process, so the child finds every shard consistent and free.
 * Without that membarrier command (Linux before 5.10) shards stay per
 * thread.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* Always held: the entry of a CPU number no shard serves (internal.h). */
struct sk_shard sk_cpu_absent = {
	SK_SHARD_STATIC_INIT,
	.cpulock = 1,
};

struct sk_cpu_shards sk_cpu = {
	.unregistered = {&sk_cpu_absent, &sk_cpu_absent},
};
static_assert(offsetof(struct sk_cpu_shards, shard) ==
        offsetof(struct sk_cpu_shards, unregistered) +
            2 * sizeof(struct sk_shard *),
    "cpu_id -2 and -1 index the two entries before the table");

/* glibc 2.35+: where this thread's rseq area is, and its size. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

static const char *cpu_why = "not initialised"; /* atomic */

#ifdef SK_HAVE_RSEQ
static inline uintptr_t
thread_pointer(void)
{
	uintptr_t tp;

	__asm__("movq %%fs:0, %0" : "=r"(tp));
	return tp;
}

/* The current CPU as the kernel last wrote it (or < 0: unregistered). */
static inline int
rseq_cpu(ptrdiff_t off)
{
	int32_t cpu;

	__asm__ volatile("movl %%fs:%c1(%2), %0"
	                 : "=r"(cpu)
	                 : "i"(SK_RSEQ_CPU_ID), "r"(off));
	return cpu;
}

static int
membarrier(int cmd, unsigned flags, int cpu)
{
	return (int)syscall(__NR_membarrier, cmd, flags, cpu);
}
#endif

/*
 * The current CPU's shard was held.  If this thread holds it (a signal
 * handler interrupted this thread inside kmalloc), the thread's own shard
 * serves the handler.  Otherwise wait: try again (the holder may be done,
 * or we may have moved), spinning a little, then yielding; a holder that
 * stays away that long (preempted, or waiting for memory) is left alone
 * and the thread's own shard serves this call.
 */
struct sk_shard *
sk_kshard_wait(void)
{
#ifdef SK_HAVE_RSEQ
	ptrdiff_t off = sk_cpu.rseq_off;

	for (unsigned n = 0; n < 64 + 128; n++) {
		struct sk_shard *sh;
		int cpu = rseq_cpu(off);

		/* not registered, or a CPU without a shard of its own (the
		 * entries from ncpu on are sk_cpu_absent) */
		if (cpu < 0 || (unsigned)cpu >= sk_cpu.ncpu)
			break;
		if (SK_LOAD(&sk_cpu.shard[cpu]->cpulock) == thread_pointer())
			break;
		if (n < 64)
			sk_cpu_relax();
		else
			sched_yield();
		if ((sh = sk_kshard_cpu_take()) != NULL)
			return sh; /* the CPU's, or the thread's */
	}
#endif
	return sk_tls_shard;
}

/*
 * Take sh from a thread that may run on another CPU (see the top).  False
 * when membarrier fails (a seccomp filter installed after start): the
 * shard is then left alone, and its holder, if any, keeps it.
 */
bool
sk_kshard_lock_remote(struct sk_shard *sh)
{
#ifdef SK_HAVE_RSEQ
	uintptr_t me = thread_pointer();

	for (;;) {
		uintptr_t expect = 0;

		if (__atomic_compare_exchange_n(&sh->cpulock, &expect, me,
		        false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
			        MEMBARRIER_CMD_FLAG_CPU, sh->cpu) != 0 &&
			    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0,
			        0) != 0) {
				/* give it back only if no sequence took it */
				expect = me;
				__atomic_compare_exchange_n(&sh->cpulock,
				    &expect, 0, false, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
				return false;
			}
			if (SK_LOAD_ACQ(&sh->cpulock) == me)
				return true;
		}
		sched_yield();
	}
#else
	(void)sh;
	return false;
#endif
}

static bool cpu_capable;	/* rseq and membarrier work here */
static bool cpu_wanted;		/* atomic: shards=cpu, not started yet */
static int cpu_threads;		/* atomic: threads alive with a shard */
static int cpu_count;		/* CPUs this process may run on */

/* Shards per CPU in effect, or wanted and waiting for a second thread. */
bool
sk_cpu_mode(void)
{
	return SK_LOAD(&sk_cpu.active) || SK_LOAD(&cpu_wanted);
}

/* Shards per CPU in effect (the ones a thread switches to). */
bool
sk_cpu_active(void)
{
	return SK_LOAD(&sk_cpu.active);
}

/*
 * The shard a slow path works on, held: the CPU's or the thread's (made
 * on first use).  Also points the thread's fast paths at the mode in
 * effect, which is how a change of mode reaches a thread.
 */
struct sk_shard *
sk_kshard_get(void)
{
	struct sk_shard *sh;

	sk_tls_kshard = sk_tls_shard;
	sh = sk_kshard_enter();
	if (SK_UNLIKELY(sh->empty)) {
		/* the thread's own shard, made now: shards are per thread, or
		 * this thread has no CPU shard (or starts them, for the next
		 * call) */
		sh = sk_shard_get_slow();
		sk_tls_kshard = sh;
	}
	return sh;
}

/* Why shards are per thread (or will be per CPU; "" when they are). */
const char *
sk_cpu_mode_why(void)
{
	if (SK_LOAD(&sk_cpu.active))
		return "";
	if (SK_LOAD(&cpu_wanted))
		return "no more threads than CPUs plus one so far: per CPU "
		       "from then on";
	return SK_LOAD(&cpu_why);
}

struct sk_shard *
sk_cpu_shard_at(int i)
{
	return (unsigned)i < sk_cpu.ncpu ? sk_cpu.shard[i] : NULL;
}

/*
 * fork(): hold every CPU's shard across it.  Their prepare handler runs
 * before the other layers' (registered last), so the layers' locks nest
 * inside, as they do on the allocation paths.  A shard that could not be
 * taken (no membarrier) stays as it is: in the child, one held by a
 * thread of the parent stays held, and the child's calls on that CPU use
 * the thread's own shard.
 */
static uint8_t cpu_forkheld[SK_MAX_CPU_SHARDS];

static void
cpu_prefork(void)
{
	for (uint32_t i = 0; i < sk_cpu.ncpu; i++)
		cpu_forkheld[i] = sk_kshard_lock_remote(sk_cpu.shard[i]);
}

static void
cpu_postfork(void)
{
	for (uint32_t i = 0; i < sk_cpu.ncpu; i++)
		if (cpu_forkheld[i])
			sk_kshard_leave(sk_cpu.shard[i]);
}

#ifdef SK_HAVE_RSEQ
static struct sk_mutex cpu_lock = SK_MUTEX_INITIALIZER("CPU shards");
#endif

#ifdef SK_HAVE_RSEQ
/*
 * The CPU numbers the kernel may ever report: the highest in
 * /sys/devices/system/cpu/possible, plus one ("0-3,8-11" -> 12); -1 when
 * it cannot be read.
 */
static long
cpu_possible(void)
{
	char buf[256];
	long hi = -1, v = -1;
	ssize_t n;
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || n == (ssize_t)sizeof(buf) - 1)
		return -1;
	buf[n] = '\0';
	for (char *c = buf; *c != '\0'; c++) {
		if (*c >= '0' && *c <= '9') {
			v = (v < 0 ? 0 : v * 10) + (*c - '0');
			if (v > 1L << 20)
				return -1;
		} else {
			if (v > hi)
				hi = v;
			v = -1;
			if (*c != '-' && *c != ',' && *c != '\n')
				return -1;
		}
	}
	if (v > hi)
		hi = v;
	return hi < 0 ? -1 : hi + 1;
}
#endif

/* Make the CPU shards (once) and turn the mode on; false if it cannot. */
static bool
cpu_start(void)
{
#ifdef SK_HAVE_RSEQ
	long ncpu;

	if (!cpu_capable)
		return false;
	sk_mutex_lock(&cpu_lock);
	if (sk_cpu.ncpu == 0) {
		/* every number the kernel may report gets an entry: the
		 * sequence reads the table without a bounds test */
		ncpu = cpu_possible();
		if (ncpu < 1 || ncpu > SK_MAX_CPU_SHARDS) {
			sk_mutex_unlock(&cpu_lock);
			SK_STORE(&cpu_why,
			    ncpu < 1 ? "cannot read "
			               "/sys/devices/system/cpu/possible"
			             : "more possible CPUs than 1024");
			return false;
		}
		for (long i = 0; i < ncpu; i++)
			sk_cpu.shard[i] = &sk_cpu_absent;
		for (long i = 0; i < ncpu; i++) {
			struct sk_shard *sh = sk_shard_new_cpu((int)i);

			if (sh == NULL)
				break; /* the rest use their threads' */
			sk_cpu.shard[i] = sh;
			SK_STORE_REL(&sk_cpu.ncpu, (uint32_t)(i + 1));
		}
	}
	sk_mutex_unlock(&cpu_lock);
	if (sk_cpu.ncpu == 0) {
		SK_STORE(&cpu_why, "out of memory for the CPU shards");
		return false;
	}
	SK_STORE_REL(&sk_cpu.rseq_off, __rseq_offset);
	SK_STORE_REL(&sk_cpu.active, true);
#if SK_COPIES
	sk_copies_select();
#endif
	SK_STORE(&cpu_wanted, false);
	SK_STORE(&cpu_why, "");
	return true;
#else
	return false;
#endif
}

/*
 * Per CPU or per thread from now on (slabkit_set_option("shards")).  Either
 * way is safe at any time: a zone belongs to the shard that made it, and
 * frees from a shard of the other kind are remote frees.  Returns false
 * when shards per CPU are asked for and cannot be had.
 */
bool
sk_cpu_set_mode(bool percpu)
{
	if (!percpu) {
		SK_STORE(&cpu_wanted, false);
		SK_STORE(&sk_cpu.active, false);
#if SK_COPIES
		sk_copies_select();
#endif
		if (!sk_tls_shard->empty) /* the caller at once, others later */
			sk_tls_kshard = sk_tls_shard;
		SK_STORE(&cpu_why, "shards=thread");
		return true;
	}
	return cpu_start();
}

/*
 * Find out whether the system allows shards per CPU and turn them on
 * unless shards=thread; from sk_init, before the library is ready
 * (allocates nothing but the shards' own pages).
 */
void
sk_cpu_init(void)
{
#ifdef SK_HAVE_RSEQ
	if (&__rseq_offset == NULL || &__rseq_size == NULL || __rseq_size < 8) {
		SK_STORE(&cpu_why,
		    "the C library registers no restartable sequences");
		return;
	}
	if (rseq_cpu(__rseq_offset) < 0) {
		SK_STORE(&cpu_why, "this thread has no restartable sequence "
		                   "(kernel, seccomp or valgrind)");
		return;
	}
	if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) !=
	    0) {
		SK_STORE(&cpu_why,
		    "membarrier cannot restart sequences (Linux < 5.10)");
		return;
	}
	cpu_capable = true;
	cpu_count = sk_os_ncpus();
	if (sk_opt.shards_thread)
		SK_STORE(&cpu_why, "shards=thread");
	else
		SK_STORE(&cpu_wanted, true); /* sk_cpu_thread_started */
#else
	SK_STORE(&cpu_why, "a build without restartable sequences "
	                   "(ThreadSanitizer, or not x86-64)");
#endif
}

/*
 * A thread made (or adopted) its shard: its first allocation.  As long as
 * no more threads allocate than the process has CPUs, a shard per thread
 * costs no more memory than a shard per CPU, and often less: a thread
 * keeps its zones when the scheduler moves it, where CPU shards would see
 * each thread's working set move from one CPU's zones to another's (two
 * threads swapping CPUs leave two sets of half-used zones), and its fast
 * path takes no CPU's shard (9 instructions).  So shards per CPU start
 * when more threads are alive with a shard than one per CPU plus one (the
 * common main thread that starts a worker per CPU and waits for them), and
 * stay.  The earlier threads' zones stay theirs: kmalloc_zone.c frees
 * their chunks locally and drains them while the threads work on CPU
 * shards.
 */
void
sk_cpu_thread_started(void)
{
	if (__atomic_add_fetch(&cpu_threads, 1, __ATOMIC_RELAXED) >
	        SK_LOAD(&cpu_count) + 1 &&
	    SK_LOAD(&cpu_wanted))
		cpu_start();
}

/* A thread with a shard exits. */
void
sk_cpu_thread_exited(void)
{
	__atomic_sub_fetch(&cpu_threads, 1, __ATOMIC_RELAXED);
}

/* After the library is ready: the fork handlers (registered last, so that
 * their prepare handler runs first). */
void
sk_cpu_init_late(void)
{
	if (cpu_capable)
		sk_os_atfork(cpu_prefork, cpu_postfork, cpu_postfork);
}
