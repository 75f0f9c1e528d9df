/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The slabkit test harness: a handful of macros, no framework.
 *
 * A test binary defines cases with TEST(name), runs them with RUN(name)
 * from main, and ends with `return sk_t_done();`, which prints the line
 * "N passed, N failed" that ctest logs and CI read.  A case fails when any
 * CHECK in it fails; checks print file:line and both operands and keep
 * going, so one run shows every broken assertion.
 *
 * sk_t_expect_abort() runs a function in a forked child with stderr
 * captured, and asserts that the child died of SIGABRT after printing a
 * message containing the given text: that is how the documented panics
 * ("slabkit: kfree: trying to free NULL pointer") are tested.
 *
 * SK_TEST_ONLY=<case> runs one case; SK_TEST_SKIP=<case>[,<case>...]
 * skips the cases named (each printed "skip <case>"; the aarch64 preset
 * skips those that qemu-user cannot run, tests/README.md).
 */
#ifndef SK_HARNESS_H
#define SK_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int sk_t_case_failed;

#define TEST(name) static void name(void)
#define RUN(name) sk_t_run(#name, name)

#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond))                                             \
			sk_t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

#define CHECK_EQ(a, b)                                                   \
	do {                                                             \
		long long sk_t_a = (long long)(a);                       \
		long long sk_t_b = (long long)(b);                       \
		if (sk_t_a != sk_t_b)                                    \
			sk_t_fail(__FILE__, __LINE__,                    \
			    "CHECK_EQ(%s, %s): %lld != %lld", #a, #b,    \
			    sk_t_a, sk_t_b);                             \
	} while (0)

#define CHECK_PTR_EQ(a, b)                                               \
	do {                                                             \
		const void *sk_t_a = (const void *)(a);                  \
		const void *sk_t_b = (const void *)(b);                  \
		if (sk_t_a != sk_t_b)                                    \
			sk_t_fail(__FILE__, __LINE__,                    \
			    "CHECK_PTR_EQ(%s, %s): %p != %p", #a, #b,    \
			    sk_t_a, sk_t_b);                             \
	} while (0)

#define CHECK_STR_EQ(a, b)                                               \
	do {                                                             \
		const char *sk_t_a = (a), *sk_t_b = (b);                 \
		if (sk_t_a == NULL || sk_t_b == NULL ||                  \
		    strcmp(sk_t_a, sk_t_b) != 0)                         \
			sk_t_fail(__FILE__, __LINE__,                    \
			    "CHECK_STR_EQ(%s, %s): \"%s\" != \"%s\"", #a, \
			    #b, sk_t_a ? sk_t_a : "(null)",              \
			    sk_t_b ? sk_t_b : "(null)");                 \
	} while (0)

/* Expect fn(arg) to abort in a child, printing text containing `msg`. */
#define CHECK_ABORTS(fn, arg, msg)                                       \
	do {                                                             \
		if (!sk_t_expect_abort((fn), (arg), (msg)))              \
			sk_t_fail(__FILE__, __LINE__,                    \
			    "CHECK_ABORTS(%s): no abort with \"%s\"",    \
			    #fn, (msg));                                 \
	} while (0)

void sk_t_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sk_t_run(const char *name, void (*fn)(void));
int sk_t_done(void);
int sk_t_expect_abort(void (*fn)(void *), void *arg, const char *msg);

/* Small deterministic generator (xorshift64*), seeded per test. */
static inline uint64_t
sk_t_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Scale a loop count down under valgrind/sanitizers (SK_TEST_SCALE=..%). */
long sk_t_scale(long n);

/* True under tools/valgrind-unit.sh (SK_TEST_VALGRIND set): timing- and
 * signal-rate targets are dropped there (valgrind runs one thread at a
 * time, so a signalling thread may not run at all), never correctness
 * checks. */
int sk_t_under_valgrind(void);

#endif
