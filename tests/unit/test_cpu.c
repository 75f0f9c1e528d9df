/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc's shards per CPU (cpu.c), from the inside.
 *
 * Threads are pinned with sched_setaffinity so that "the current CPU" is
 * known, and the tests look at which shard owns the zone a chunk came
 * from, at the shards' lock words and at the remote-free bitmaps:
 *
 * - the mode in effect and, when shards are per thread, why;
 * - a pinned thread allocates from its CPU's shard and leaves it free;
 * - two threads on one CPU share its zones: a free by the other one is a
 *   local free (the chunk is back at the head of the list, nothing waits
 *   in the remote bitmap), while a free from another CPU is remote;
 * - mutual exclusion: threads on one CPU, threads that migrate, and a
 *   thread taking the shard from another CPU (CAS plus membarrier) all
 *   increment plain counters under the shards' locks, and no increment
 *   is lost;
 * - a thread that holds its CPU's shard and allocates again (a signal
 *   handler interrupting kmalloc) is served by its own shard, and so is
 *   a thread that finds the shard held too long;
 * - slab_cleanup() empties every CPU's shard from another CPU; fork()
 *   while other threads allocate leaves a child that can allocate;
 *   switching shards=thread and back at run time keeps every block valid.
 *
 * Where the system gives no shards per CPU (valgrind, ThreadSanitizer
 * builds, old kernels) the cases check that the mode says so and why.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>

#include "default_mode.h"
#include "harness.h"
#include "internal.h"
#include "kmalloc_fast.h"

MALLOC_DEFINE(M_TCPU, "test_cpu", "shards per CPU tests");

static cpu_set_t allowed;
static int cpus[SK_MAX_CPU_SHARDS];
static int ncpus;

static bool
percpu(void)
{
	char mode[16] = "";

	CHECK_EQ(slabkit_get_option("shards", mode, sizeof(mode)), 0);
	if (strcmp(mode, "cpu") == 0)
		return true;
	CHECK(strcmp(mode, "thread") == 0);
	CHECK(sk_cpu_mode_why()[0] != '\0');
	printf("# shards per thread here (%s): nothing more to check\n",
	    sk_cpu_mode_why());
	return false;
}

static bool
pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return sched_setaffinity(0, sizeof(s), &s) == 0;
}

static void
unpin(void)
{
	sched_setaffinity(0, sizeof(allowed), &allowed);
}

/* Point this thread's fast paths at the mode in effect, as its next slow
 * path would. */
static void
refresh(void)
{
	sk_kshard_leave(sk_kshard_get());
}

static struct sk_slzone *
zone_of(void *p)
{
	return sk_zone_at((uintptr_t)p);
}

/* A chunk of the first thread's shard freed by another thread. */
static void *
free_other(void *p)
{
	kfree(p, M_TCPU);
	return NULL;
}

static pthread_barrier_t start_bar;

static void *
alloc_and_wait(void *arg)
{
	(void)arg;
	kfree(kmalloc(40, M_TCPU, M_WAITOK), M_TCPU);
	pthread_barrier_wait(&start_bar); /* all alive at once */
	pthread_barrier_wait(&start_bar); /* the main thread looked */
	return NULL;
}

/*
 * A thread per CPU plus one: shards per thread.  One more thread alive
 * and allocating starts the CPU shards; the first thread's chunks are then
 * freed locally by it and drained from its shard when others free them.
 */
TEST(cpu_shards_start_beyond_a_thread_per_cpu_and_one)
{
	pthread_t th[SK_MAX_CPU_SHARDS + 2];
	struct kmalloc_type_stats st;
	struct sk_shard *me;
	void *a, *b, *v[64];
	pthread_t t;
	char mode[16] = "";

	CHECK_EQ(slabkit_get_option("shards", mode, sizeof(mode)), 0);
	if (strcmp(mode, "cpu") != 0 || getenv("SLABKIT_OPTIONS") != NULL) {
		printf(
		    "# shards=%s, options set: lazy start not checked\n", mode);
		return;
	}
	a = kmalloc(700, M_TCPU, M_WAITOK);
	b = kmalloc(700, M_TCPU, M_WAITOK);
	me = sk_tls_shard;
	CHECK(!sk_cpu_active());
	CHECK(zone_of(a)->z_owner == me);
	CHECK(strlen(sk_cpu_mode_why()) > 0);
	/* a thread per CPU and this one: still per thread */
	pthread_barrier_init(&start_bar, NULL, (unsigned)ncpus + 1);
	for (int i = 0; i < ncpus; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, alloc_and_wait, NULL), 0);
	pthread_barrier_wait(&start_bar);
	CHECK(!sk_cpu_active());
	pthread_barrier_wait(&start_bar);
	for (int i = 0; i < ncpus; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&start_bar);
	/* one more */
	pthread_barrier_init(&start_bar, NULL, (unsigned)ncpus + 2);
	for (int i = 0; i < ncpus + 1; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, alloc_and_wait, NULL), 0);
	pthread_barrier_wait(&start_bar);
	CHECK(sk_cpu_active());
	pthread_barrier_wait(&start_bar);
	for (int i = 0; i < ncpus + 1; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&start_bar);
	CHECK_EQ(sk_cpu_mode_why()[0], 0);
	refresh(); /* what this thread's next slow path does */
	v[0] = kmalloc(700, M_TCPU, M_WAITOK);
	CHECK(zone_of(v[0])->z_owner->cpu >= 0);
	kfree(v[0], M_TCPU);
	kfree(a, M_TCPU); /* its own shard's chunk: a local free */
	CHECK_EQ(pthread_create(&t, NULL, free_other, b), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	/* slow paths of this thread drain and give back its old zone */
	for (int r = 0; r < 200 && !me->retired; r++) {
		for (int i = 0; i < 64; i++)
			v[i] = kmalloc(2000 + 8 * r, M_TCPU, M_WAITOK);
		for (int i = 0; i < 64; i++)
			kfree(v[i], M_TCPU);
	}
	CHECK(me->retired);
	CHECK_EQ(kmalloc_type_stats(M_TCPU, &st), 0);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.memuse, 0);
}

TEST(mode_and_shards)
{
	if (!percpu())
		return;
	CHECK(sk_cpu.ncpu >= 1);
	for (uint32_t i = 0; i < sk_cpu.ncpu; i++) {
		CHECK_EQ(sk_cpu.shard[i]->cpu, (long)i);
		CHECK(sk_cpu.shard[i]->slot < SK_SLOT_SHARED);
		CHECK_EQ(sk_cpu.shard[i]->cpulock, 0);
	}
}

TEST(pinned_thread_uses_its_cpu)
{
	if (!percpu())
		return;
	for (int i = 0; i < ncpus; i++) {
		int c = cpus[i];
		void *p;

		if (!pin(c) || (unsigned)c >= sk_cpu.ncpu)
			continue;
		refresh();
		p = kmalloc(64, M_TCPU, M_WAITOK);
		CHECK(zone_of(p)->z_owner == sk_cpu.shard[c]);
		CHECK_EQ(SK_LOAD(&sk_cpu.shard[c]->cpulock), 0);
		kfree(p, M_TCPU);
		CHECK_EQ(SK_LOAD(&sk_cpu.shard[c]->cpulock), 0);
	}
	unpin();
}

/* A block handed from one thread to another through a pipe-like slot. */
struct handoff {
	int cpu;
	void *p;
	bool local_head; /* the freed chunk heads its zone's list */
	bool remote_bit; /* the freed chunk waits in the remote bitmap */
};

static void *
free_on(void *arg)
{
	struct handoff *h = arg;
	struct sk_slzone *z = zone_of(h->p);

	if (!pin(h->cpu))
		return (void *)1;
	refresh();
	kfree(h->p, M_TCPU);
	h->local_head = z->z_lchunks == h->p;
	h->remote_bit = sk_gbit_test(SK_ZRBITS(z), (uintptr_t)h->p);
	return NULL;
}

TEST(same_cpu_free_is_local_other_cpu_remote)
{
	struct kmalloc_type_stats st;
	struct handoff h;
	pthread_t t;
	void *rc;
	int c0 = cpus[0];

	if (!percpu() || !pin(c0))
		return;
	/* two live chunks keep the zone on its list */
	void *keep = kmalloc(200, M_TCPU, M_WAITOK);

	h = (struct handoff){.cpu = c0, .p = kmalloc(200, M_TCPU, M_WAITOK)};
	CHECK_EQ(pthread_create(&t, NULL, free_on, &h), 0);
	CHECK_EQ(pthread_join(t, &rc), 0);
	CHECK(rc == NULL);
	CHECK(h.local_head);
	CHECK(!h.remote_bit);
	if (ncpus >= 2) {
		h = (struct handoff){
		    .cpu = cpus[1], .p = kmalloc(200, M_TCPU, M_WAITOK)};
		CHECK_EQ(pthread_create(&t, NULL, free_on, &h), 0);
		CHECK_EQ(pthread_join(t, &rc), 0);
		CHECK(rc == NULL);
		CHECK(h.remote_bit);
	}
	kfree(keep, M_TCPU);
	slab_cleanup();
	CHECK_EQ(kmalloc_type_stats(M_TCPU, &st), 0);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.memuse, 0);
	unpin();
}

/* Mutual exclusion: plain increments under the shards' locks. */
#define EXCL_ROUNDS 200000
static unsigned long excl_count[SK_MAX_CPU_SHARDS];
static atomic_long excl_done;

struct excl_arg {
	int cpu;     /* pin here, or -1: migrate freely */
	bool remote; /* take shard `cpu' with the CAS + membarrier path */
	int rounds;
};

static void *
excl_worker(void *arg)
{
	struct excl_arg *a = arg;

	if (a->cpu >= 0 && !a->remote && !pin(a->cpu))
		return (void *)1;
	refresh();
	for (int i = 0; i < a->rounds; i++) {
		struct sk_shard *sh;

		if (a->remote) {
			sh = sk_cpu.shard[a->cpu];
			sk_kshard_lock_remote(sh);
		} else {
			sh = sk_kshard_enter();
		}
		if (sh->cpu >= 0) {
			unsigned long v = excl_count[sh->cpu];

			if ((i & 255) == 0)
				sched_yield(); /* be preempted holding it */
			excl_count[sh->cpu] = v + 1;
			atomic_fetch_add(&excl_done, 1);
		}
		sk_kshard_leave(sh);
	}
	return NULL;
}

static unsigned long
excl_sum(void)
{
	unsigned long n = 0;

	for (int i = 0; i < SK_MAX_CPU_SHARDS; i++)
		n += excl_count[i];
	return n;
}

static void
excl_run(struct excl_arg *args, int n)
{
	pthread_t t[16];
	void *rc;

	memset(excl_count, 0, sizeof(excl_count));
	atomic_store(&excl_done, 0);
	for (int i = 0; i < n; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, excl_worker, &args[i]), 0);
	for (int i = 0; i < n; i++) {
		CHECK_EQ(pthread_join(t[i], &rc), 0);
		CHECK(rc == NULL);
	}
	CHECK_EQ(excl_sum(), (unsigned long)atomic_load(&excl_done));
	CHECK(atomic_load(&excl_done) > 0);
}

TEST(mutual_exclusion_one_cpu)
{
	struct excl_arg a[6];

	if (!percpu())
		return;
	for (int i = 0; i < 6; i++)
		a[i] = (struct excl_arg){cpus[0], false, EXCL_ROUNDS};
	excl_run(a, 6);
}

TEST(mutual_exclusion_migrating)
{
	struct excl_arg a[8];

	if (!percpu())
		return;
	for (int i = 0; i < 8; i++)
		a[i] = (struct excl_arg){-1, false, EXCL_ROUNDS};
	excl_run(a, 8);
}

TEST(mutual_exclusion_remote_taker)
{
	struct excl_arg a[5];

	if (!percpu())
		return;
	for (int i = 0; i < 4; i++)
		a[i] = (struct excl_arg){cpus[0], false, EXCL_ROUNDS};
	/* from any CPU, 2,000 takes of cpus[0]'s shard (a syscall each) */
	a[4] = (struct excl_arg){cpus[0], true, 2000};
	excl_run(a, 5);
}

TEST(held_by_self_uses_thread_shard)
{
	struct sk_shard *sh;
	void *p;

	if (!percpu() || !pin(cpus[0]))
		return;
	refresh();
	sh = sk_kshard_enter();
	CHECK(sh == sk_cpu.shard[cpus[0]]);
	/* what a signal handler interrupting kmalloc would do */
	p = kmalloc(96, M_TCPU, M_WAITOK);
	CHECK(p != NULL);
	CHECK(!sk_tls_shard->empty);
	CHECK(zone_of(p)->z_owner == sk_tls_shard);
	CHECK(SK_LOAD(&sh->cpulock) != 0); /* still ours */
	sk_kshard_leave(sh);
	kfree(p, M_TCPU);
	unpin();
}

#ifdef SK_HAVE_RSEQ
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

struct unreg_arg {
	int cpu_id;		/* read after unregistering */
	int ok;			/* allocations that came back right */
	struct sk_shard *owner;
};

/* Unregister this thread's restartable sequence (as a failed registration
 * leaves it: cpu_id negative), then allocate: no table entry may be read
 * for a negative number (there is no bounds test), the slow path serves
 * the thread from its own shard. */
static void *
alloc_unregistered(void *arg)
{
	struct unreg_arg *u = arg;
	char *area = (char *)__builtin_thread_pointer() + __rseq_offset;

	/* the length glibc registered: 32 (its area) where __rseq_size
	 * gives the 20 bytes of the features in use */
	if (syscall(__NR_rseq, area, 32, 1 /* RSEQ_FLAG_UNREGISTER */,
	        SK_RSEQ_SIG) != 0 &&
	    syscall(__NR_rseq, area, __rseq_size, 1, SK_RSEQ_SIG) != 0)
		return (void *)1;
	u->cpu_id = *(volatile int32_t *)(area + SK_RSEQ_CPU_ID);
	refresh();
	for (int i = 0; i < 1000; i++) {
		char *p = kmalloc(64 + (size_t)(i % 7) * 16, M_TCPU, M_WAITOK);
		char *q = malloc(40);

		if (p != NULL && q != NULL) {
			u->owner = zone_of(p)->z_owner;
			p[0] = q[0] = 1;
			u->ok += u->owner == sk_tls_shard;
		}
		kfree(p, M_TCPU);
		free(q);
	}
	return NULL;
}
#endif

TEST(unregistered_thread_uses_its_own_shard)
{
#ifdef SK_HAVE_RSEQ
	struct unreg_arg u = {.cpu_id = 0};
	pthread_t t;
	void *rc;

	if (!percpu())
		return;
	CHECK_EQ(pthread_create(&t, NULL, alloc_unregistered, &u), 0);
	CHECK_EQ(pthread_join(t, &rc), 0);
	if (rc != NULL) {
		printf("# rseq unregistration refused here: nothing to check\n");
		return;
	}
	CHECK(u.cpu_id < 0);
	CHECK_EQ(u.ok, 1000);
	CHECK(u.owner != NULL && u.owner->cpu == -1);
#endif
}

struct busy_arg {
	int cpu;
	void *p;
	struct sk_shard *owner;
};

static void *
alloc_on(void *arg)
{
	struct busy_arg *b = arg;

	if (!pin(b->cpu))
		return (void *)1;
	refresh();
	b->p = kmalloc(120, M_TCPU, M_WAITOK);
	b->owner = b->p != NULL ? zone_of(b->p)->z_owner : NULL;
	return NULL;
}

TEST(shard_held_too_long_falls_back)
{
	struct busy_arg b = {.cpu = cpus[0]};
	struct sk_shard *sh;
	pthread_t t;
	void *rc;

	if (!percpu())
		return;
	sh = sk_cpu.shard[cpus[0]];
	sk_kshard_lock_remote(sh); /* held by us, wherever we run */
	CHECK_EQ(pthread_create(&t, NULL, alloc_on, &b), 0);
	CHECK_EQ(pthread_join(t, &rc), 0);
	CHECK(rc == NULL);
	CHECK(b.p != NULL);
	CHECK(b.owner != sh);
	CHECK(b.owner != NULL && b.owner->cpu == -1); /* its own shard */
	sk_kshard_leave(sh);
	kfree(b.p, M_TCPU);
}

TEST(slab_cleanup_empties_every_cpu)
{
	enum { N = 4000 };
	static void *v[N];
	struct sk_shard *sh;
	int c = cpus[ncpus - 1];

	if (!percpu() || !pin(c))
		return;
	sh = sk_cpu.shard[c];
	for (int i = 0; i < N; i++)
		v[i] = kmalloc(512, M_TCPU, M_WAITOK);
	for (int i = 0; i < N; i++)
		kfree(v[i], M_TCPU);
	CHECK(SK_LOAD(&sh->nfreezones) > 0);
	if (ncpus >= 2)
		pin(cpus[0]); /* clean it from another CPU */
	slab_cleanup();
	CHECK_EQ(SK_LOAD(&sh->nfreezones), 0);
	CHECK_EQ(SK_LOAD(&sh->cpulock), 0);
	unpin();
}

static atomic_int fork_stop;

static void *
fork_churn(void *arg)
{
	void *v[64] = {0};
	unsigned r = (unsigned)(uintptr_t)arg;

	while (!atomic_load(&fork_stop)) {
		r = r * 1103515245 + 12345;
		int i = (r >> 8) & 63;

		if (v[i] != NULL)
			kfree(v[i], M_TCPU);
		v[i] = kmalloc(16 + (r >> 16) % 1000, M_TCPU, M_WAITOK);
	}
	for (int i = 0; i < 64; i++)
		if (v[i] != NULL)
			kfree(v[i], M_TCPU);
	return NULL;
}

TEST(fork_while_others_allocate)
{
	pthread_t t[3];

	if (!percpu())
		return;
	atomic_store(&fork_stop, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, fork_churn,
		             (void *)(uintptr_t)(i + 1)),
		    0);
	for (int k = 0; k < 20; k++) {
		int st = -1;
		pid_t pid = fork();

		if (pid == 0) {
			void *v[100];

			for (uint32_t i = 0; i < sk_cpu.ncpu; i++)
				if (SK_LOAD(&sk_cpu.shard[i]->cpulock) != 0)
					_exit(3);
			for (int i = 0; i < 100; i++)
				v[i] = kmalloc(8 * (i + 1), M_TCPU, M_WAITOK);
			for (int i = 0; i < 100; i++)
				kfree(v[i], M_TCPU);
			_exit(0);
		}
		CHECK(pid > 0);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	atomic_store(&fork_stop, 1);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
}

/* Double frees with CPU shards: the second free on the same CPU, on
 * another CPU (a remote free after a local one), and twice remotely. */
struct df_arg {
	void *p;
	int cpu;
};

static void *
df_free_on(void *arg)
{
	struct df_arg *d = arg;

	pin(d->cpu);
	refresh();
	kfree(d->p, M_TCPU);
	return NULL;
}

static void
double_free(void *arg)
{
	int how = (int)(intptr_t)arg;
	struct df_arg d = {NULL, cpus[ncpus - 1]};
	pthread_t t;
	void *keep;

	pin(cpus[0]);
	refresh();
	keep = kmalloc(64, M_TCPU, M_WAITOK); /* keeps the zone listed */
	d.p = kmalloc(64, M_TCPU, M_WAITOK);
	*(void **)d.p = keep; /* whatever the program wrote */
	if (how == 0) {
		kfree(d.p, M_TCPU);
		kfree(d.p, M_TCPU);
	} else {
		if (how == 1)
			kfree(d.p, M_TCPU);
		else
			df_free_on(&d);
		pthread_create(&t, NULL, df_free_on, &d);
		pthread_join(t, NULL);
	}
}

TEST(double_frees_reported)
{
	if (!percpu())
		return;
	CHECK_ABORTS(double_free, (void *)0, "already free");
	CHECK_ABORTS(double_free, (void *)1, "already free");
	CHECK_ABORTS(double_free, (void *)2, "already free");
}

/* Refuse membarrier(2) from now on, as a sandbox installed after start
 * would (EPERM). */
static bool
deny_membarrier(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(
	        BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};

	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/* Without membarrier, slab_cleanup leaves the CPU shards alone and fork
 * still gives a child that allocates. */
TEST(no_membarrier_later)
{
	pid_t pid;
	int st = -1;

	if (!percpu())
		return;
	pid = fork();
	if (pid == 0) {
		pthread_t t[3];
		void *v[200];

		if (!deny_membarrier())
			_exit(2);
		atomic_store(&fork_stop, 0);
		for (int i = 0; i < 3; i++)
			pthread_create(&t[i], NULL, fork_churn,
			    (void *)(uintptr_t)(i + 7));
		slab_cleanup();
		for (int k = 0; k < 5; k++) {
			pid_t c = fork();

			if (c == 0) {
				for (int i = 0; i < 200; i++)
					v[i] =
					    kmalloc(24 + i, M_TCPU, M_WAITOK);
				for (int i = 0; i < 200; i++)
					kfree(v[i], M_TCPU);
				_exit(0);
			}
			if (c < 0 || waitpid(c, &st, 0) != c ||
			    !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				_exit(3);
		}
		atomic_store(&fork_stop, 1);
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		_exit(0);
	}
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

/*
 * A thread that already allocated on its CPU's shard follows a change of
 * mode at its very next call, a fast-path one: the fast paths test the
 * global flag, not a per-thread pointer that only a slow path updates.
 */
static pthread_barrier_t mode_bar;

static void *
follow_mode(void *arg)
{
	void **out = arg;

	out[0] = kmalloc(300, M_TCPU, M_WAITOK); /* on the CPU's shard */
	out[1] = kmalloc(300, M_TCPU, M_WAITOK); /* the same zone, fast */
	pthread_barrier_wait(&mode_bar);         /* main: shards=thread */
	pthread_barrier_wait(&mode_bar);
	out[2] = kmalloc(300, M_TCPU, M_WAITOK);
	out[3] = (void *)sk_tls_shard;
	pthread_barrier_wait(&mode_bar); /* main: shards=cpu */
	pthread_barrier_wait(&mode_bar);
	out[4] = kmalloc(300, M_TCPU, M_WAITOK);
	for (int i = 0; i < 5; i += i == 2 ? 2 : 1) /* out[3]: a shard */
		kfree(out[i], M_TCPU);
	return NULL;
}

TEST(mode_change_reaches_running_threads)
{
	void *out[5];
	pthread_t t;

	if (!percpu())
		return;
	pthread_barrier_init(&mode_bar, NULL, 2);
	CHECK_EQ(pthread_create(&t, NULL, follow_mode, out), 0);
	pthread_barrier_wait(&mode_bar);
	CHECK(zone_of(out[0])->z_owner->cpu >= 0);
	CHECK(zone_of(out[1])->z_owner->cpu >= 0);
	CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	pthread_barrier_wait(&mode_bar);
	pthread_barrier_wait(&mode_bar);
	/* the thread's own shard, made by that call */
	CHECK(zone_of(out[2])->z_owner == (struct sk_shard *)out[3]);
	CHECK(((struct sk_shard *)out[3])->cpu < 0);
	CHECK_EQ(slabkit_set_option("shards", "cpu"), 0);
	pthread_barrier_wait(&mode_bar);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK(zone_of(out[4])->z_owner->cpu >= 0);
	pthread_barrier_destroy(&mode_bar);
}

TEST(switch_modes_at_run_time)
{
	struct kmalloc_type_stats st;
	void *a, *b;

	if (!percpu())
		return;
	a = kmalloc(300, M_TCPU, M_WAITOK);
	CHECK(zone_of(a)->z_owner->cpu >= 0);
	CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	b = kmalloc(300, M_TCPU, M_WAITOK);
	CHECK(zone_of(b)->z_owner == sk_tls_shard);
	kfree(a, M_TCPU); /* a CPU shard's chunk, freed from a thread's */
	CHECK_EQ(slabkit_set_option("shards", "cpu"), 0);
	kfree(b, M_TCPU);
	slab_cleanup();
	CHECK_EQ(kmalloc_type_stats(M_TCPU, &st), 0);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.memuse, 0);
}

int
main(void)
{
	sk_t_default_mode("local and remote frees seen in the zone's list and "
	                  "bitmaps of the default mode");
	sched_getaffinity(0, sizeof(allowed), &allowed);
	for (int c = 0; c < CPU_SETSIZE && ncpus < SK_MAX_CPU_SHARDS; c++)
		if (CPU_ISSET(c, &allowed))
			cpus[ncpus++] = c;
	printf("# %d CPUs allowed\n", ncpus);
	RUN(cpu_shards_start_beyond_a_thread_per_cpu_and_one);
	/* from here on shards per CPU wherever the system has them */
	slabkit_set_option("shards", "cpu");
	RUN(mode_and_shards);
	RUN(pinned_thread_uses_its_cpu);
	RUN(same_cpu_free_is_local_other_cpu_remote);
	RUN(mutual_exclusion_one_cpu);
	RUN(mutual_exclusion_migrating);
	RUN(mutual_exclusion_remote_taker);
	RUN(held_by_self_uses_thread_shard);
	RUN(shard_held_too_long_falls_back);
	RUN(unregistered_thread_uses_its_own_shard);
	RUN(slab_cleanup_empties_every_cpu);
	RUN(fork_while_others_allocate);
	RUN(double_frees_reported);
	RUN(no_membarrier_later);
	RUN(switch_modes_at_run_time);
	RUN(mode_change_reaches_running_threads);
	return sk_t_done();
}
