/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The drop-in's copies of malloc and free (malloc.c): one for shards per
 * thread and one for shards per CPU, each built for the baseline and for
 * BMI2.  malloc and free jump to the pair chosen for the CPU and the mode,
 * so on a machine with BMI2 the baseline copies never run unless called
 * by name, as here.  Linked with the static drop-in, so that the copies'
 * internal names resolve.
 *
 *  - every copy allocates and frees blocks of every small size and a few
 *    large ones, blocks from one copy freed by every other, contents kept;
 *  - the pair chosen follows the CPU (BMI2 or not) and the mode, and
 *    changes when the mode does (slabkit_set_option("shards", ...));
 *  - every free copy reports a double free and an interior pointer, and
 *    every malloc copy a free list written after free.
 */
#define _GNU_SOURCE
#include <slabkit/control.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#if SK_COPIES
static const char *const names[SK_NCOPIES] = {
    [SK_COPY_THREAD_BASE] = "thread_base",
    [SK_COPY_THREAD_BMI2] = "thread_bmi2",
    [SK_COPY_CPU_BASE] = "cpu_base",
    [SK_COPY_CPU_BMI2] = "cpu_bmi2",
};
#define NCOPIES SK_NCOPIES

static bool have_bmi2, have_cpu;

/* Whether copy i can run now (the CPU copies read the restartable
 * sequence's CPU number, which exists only while shards per CPU are in
 * effect). */
static bool
runnable(size_t i, bool cpu_mode)
{
	if (SK_COPY_IS_BMI2(i) && !have_bmi2)
		return false;
	return SK_COPY_IS_CPU(i) == cpu_mode;
}

#define NBLK 600

/* Blocks from copy a, checked and freed by copy b. */
static void
exchange(size_t a, size_t b)
{
	static unsigned char *blk[NBLK];
	static size_t len[NBLK];
	uint64_t r = 0x9e3779b97f4a7c15u ^ (a * 8 + b);

	for (int i = 0; i < NBLK; i++) {
		/* every small size, a few zero and large ones */
		len[i] = i % 97 == 0   ? 0
		         : i % 89 == 0 ? 20000 + (size_t)(sk_t_rand(&r) % 70000)
		                       : 1 + (size_t)(i * 7) % 1024;
		blk[i] = sk_malloc_copies[a](len[i]);
		CHECK(blk[i] != NULL);
		if (blk[i] == NULL)
			return;
		CHECK_EQ((uintptr_t)blk[i] % 16, 0);
		memset(blk[i], (int)(i & 0xff), len[i]);
	}
	for (int i = 0; i < NBLK; i++) {
		size_t bad = 0;

		for (size_t k = 0; k < len[i]; k++)
			bad += blk[i][k] != (unsigned char)(i & 0xff);
		CHECK_EQ(bad, 0);
		sk_free_copies[b](blk[i]);
	}
	sk_free_copies[b](NULL);
}

static void
exchange_all(bool cpu_mode)
{
	for (size_t a = 0; a < NCOPIES; a++)
		for (size_t b = 0; b < NCOPIES; b++)
			if (runnable(a, cpu_mode) && runnable(b, cpu_mode))
				exchange(a, b);
}

/* The pair malloc and free jump to now: this mode's, BMI2's where the
 * CPU has it. */
static void
check_chosen(bool cpu_mode)
{
	int c = (cpu_mode ? SK_COPY_CPU_BASE : SK_COPY_THREAD_BASE) + have_bmi2;

	CHECK(SK_LOAD(&sk_malloc_copy) == sk_malloc_copies[c]);
	CHECK(SK_LOAD(&sk_free_copy) == sk_free_copies[c]);
}

TEST(copies_serve_per_thread_mode)
{
	CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	check_chosen(false);
	exchange_all(false);
	/* and through the public names */
	void *p = malloc(40);
	CHECK(p != NULL);
	free(p);
}

TEST(copies_serve_per_cpu_mode)
{
	if (!have_cpu) {
		printf("  (no shards per CPU here: %s)\n",
		    "restartable sequences unavailable");
		return;
	}
	CHECK_EQ(slabkit_set_option("shards", "cpu"), 0);
	check_chosen(true);
	exchange_all(true);
	CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	check_chosen(false);
}

/* The misuse each copy must still report (in a child). */
static size_t cur;

static void
double_free(void *arg)
{
	void *p = sk_malloc_copies[cur](48);

	(void)arg;
	sk_free_copies[cur](p);
	sk_free_copies[cur](p);
}

static void
interior_free(void *arg)
{
	char *p = sk_malloc_copies[cur](64);

	(void)arg;
	sk_free_copies[cur](p + 16);
}

static void
forged_link(void *arg)
{
	void *keep = sk_malloc_copies[cur](64), *a = sk_malloc_copies[cur](64);
	static char other[64];

	(void)arg;
	sk_free_copies[cur](a);
	*(void **)a = other; /* use after free: the link written */
	(void)sk_malloc_copies[cur](64);
	(void)sk_malloc_copies[cur](64);
	(void)keep;
}

static void
misuse_in(bool cpu_mode)
{
	for (cur = 0; cur < NCOPIES; cur++) {
		if (!runnable(cur, cpu_mode))
			continue;
		printf("  %s\n", names[cur]);
		CHECK_ABORTS(double_free, NULL, "already free");
		CHECK_ABORTS(
		    interior_free, NULL, "is not the start of a chunk");
		/* (hardened mode finds the write first: "write after free") */
		CHECK_ABORTS(forged_link, NULL, "after free");
	}
}

TEST(every_copy_reports_misuse)
{
	CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	misuse_in(false);
	if (have_cpu && slabkit_set_option("shards", "cpu") == 0) {
		misuse_in(true);
		CHECK_EQ(slabkit_set_option("shards", "thread"), 0);
	}
}

int
main(void)
{
	have_bmi2 = sk_os_cpu_bmi2();
	/* shards per CPU need restartable sequences (not under valgrind) */
	have_cpu = slabkit_set_option("shards", "cpu") == 0;
	slabkit_set_option("shards", "thread");
	printf("BMI2: %s; shards per CPU: %s\n", have_bmi2 ? "yes" : "no",
	    have_cpu ? "yes" : "no");
	RUN(copies_serve_per_thread_mode);
	RUN(copies_serve_per_cpu_mode);
	RUN(every_copy_reports_misuse);
	return sk_t_done();
}
#else
int
main(void)
{
	printf("the drop-in has one copy of malloc and free here\n");
	printf("0 passed, 0 failed\n");
	return 77;
}
#endif
