/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc stress: waves of short-lived threads allocate random sizes
 * (1 B to 1 MiB, skewed small), stamp each block with a pattern derived
 * from a per-block seed, and swap blocks through a shared array of slots so
 * that about half of all frees happen on a thread other than the
 * allocating one (remote frees through the zones' atomic lists, frees into
 * zones of exited threads' parked shards).  Every block's pattern is
 * verified when it is freed.  Thousands of threads are created and exit
 * during the run.  At the end every slot is drained and both types must
 * show inuse == 0 and memuse == 0.
 *
 * SK_TEST_SCALE=N (percent) shortens the run for valgrind and TSan.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

MALLOC_DEFINE(M_STRESS_A, "stress_a", "stress test type A");
MALLOC_DEFINE(M_STRESS_B, "stress_b", "stress test type B");

#define NSLOTS 4096

struct block {
	uint64_t seed;
	size_t	size;
	struct malloc_type *type;
};

static struct block *_Atomic slots[NSLOTS];
static atomic_long bad_blocks, total_ops, remote_frees;
static long ops_per_thread;

static unsigned char
pattern_byte(uint64_t seed, size_t i)
{
	return (unsigned char)((seed >> ((i & 7) * 8)) ^ (i * 131));
}

static void
stamp(struct block *b)
{
	unsigned char *p = (unsigned char *)b;
	size_t step = b->size <= 4096 ? 1 : 4093;

	for (size_t i = sizeof(*b); i < b->size; i += step)
		p[i] = pattern_byte(b->seed, i);
	if (b->size > sizeof(*b))
		p[b->size - 1] = pattern_byte(b->seed, b->size - 1);
}

static void
verify_and_free(struct block *b)
{
	unsigned char *p = (unsigned char *)b;
	size_t step = b->size <= 4096 ? 1 : 4093;
	int ok = 1;

	for (size_t i = sizeof(*b); i < b->size; i += step)
		if (p[i] != pattern_byte(b->seed, i))
			ok = 0;
	if (b->size > sizeof(*b) &&
	    p[b->size - 1] != pattern_byte(b->seed, b->size - 1))
		ok = 0;
	if (!ok)
		atomic_fetch_add(&bad_blocks, 1);
	kfree(b, b->type);
}

static size_t
random_size(uint64_t *rng)
{
	uint64_t r = sk_t_rand(rng);
	unsigned pick = (unsigned)(r % 1000);

	if (pick < 800)
		return sizeof(struct block) + (r >> 16) % 256;
	if (pick < 970)
		return 256 + (r >> 16) % (16384 - 256);
	return 16384 + (r >> 16) % ((1 << 20) - 16384);
}

static void *
worker(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
	struct block *mine[16];
	int nmine = 0;

	for (long i = 0; i < ops_per_thread; i++) {
		size_t size = random_size(&rng);
		struct malloc_type *t = (i & 1) ? M_STRESS_A : M_STRESS_B;
		struct block *b = kmalloc(size, t, M_WAITOK);

		b->seed = sk_t_rand(&rng);
		b->size = size;
		b->type = t;
		stamp(b);
		if (sk_t_rand(&rng) & 1) {
			/* pass it on: whoever was in the slot is freed here */
			struct block *old = atomic_exchange(
			    &slots[sk_t_rand(&rng) % NSLOTS], b);

			if (old != NULL) {
				verify_and_free(old);
				atomic_fetch_add(&remote_frees, 1);
			}
		} else if (nmine < 16) {
			mine[nmine++] = b;
		} else {
			verify_and_free(b);
		}
		if (nmine == 16 || (sk_t_rand(&rng) % 8) == 0) {
			while (nmine > 0)
				verify_and_free(mine[--nmine]);
		}
		atomic_fetch_add(&total_ops, 1);
	}
	while (nmine > 0)
		verify_and_free(mine[--nmine]);
	return NULL;
}

TEST(stress_threads_churn)
{
	long threads = sk_t_scale(2000);
	int wave = 8;
	pthread_t th[8];
	long started = 0;
	struct kmalloc_type_stats a, b;

	ops_per_thread = sk_t_scale(400) < 50 ? 50 : sk_t_scale(400);
	while (started < threads) {
		for (int i = 0; i < wave; i++)
			pthread_create(&th[i], NULL, worker,
			    (void *)(uintptr_t)(started + i + 1));
		for (int i = 0; i < wave; i++)
			pthread_join(th[i], NULL);
		started += wave;
	}
	for (int i = 0; i < NSLOTS; i++) {
		struct block *old = atomic_exchange(&slots[i], NULL);

		if (old != NULL)
			verify_and_free(old);
	}
	slab_cleanup();
	kmalloc_type_stats(M_STRESS_A, &a);
	kmalloc_type_stats(M_STRESS_B, &b);
	printf("  %ld threads, %ld operations, %ld remote frees\n", started,
	    atomic_load(&total_ops), atomic_load(&remote_frees));
	CHECK_EQ(atomic_load(&bad_blocks), 0);
	CHECK_EQ(a.inuse, 0);
	CHECK_EQ(a.memuse, 0);
	CHECK_EQ(b.inuse, 0);
	CHECK_EQ(b.memuse, 0);
	CHECK(a.calls + b.calls == (uint64_t)atomic_load(&total_ops));
	CHECK(atomic_load(&remote_frees) > 0);
}

int
main(void)
{
	RUN(stress_threads_churn);
	return sk_t_done();
}
