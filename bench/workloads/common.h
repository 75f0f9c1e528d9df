/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * common.h: what every workload shares, in the usual shape of allocator
 * benchmark drivers (a seeded generator, a wall clock, one result line).
 *
 * A workload is a plain malloc(3) program: bench/run.sh runs it under each
 * allocator with LD_PRELOAD.  It takes one optional argument, a scale
 * factor on its amount of work (QUICK=1 passes a smaller one), and prints
 * one line of key=value pairs that bench/runner.py parses:
 *
 *   workload=larson ops=4000000 secs=0.812 mops=4.93 maxrss_kb=10432
 *       malloc=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
 *
 * malloc= names the object that provides malloc in this process (dladdr),
 * so a preload that did not take shows up in every result.  Seeds are
 * fixed: the same scale always does the same work.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define WL_SEED 0x5eed5eed2026ULL

/* xorshift64*: small, fast, good enough to pick sizes and slots. */
struct wl_rng {
	uint64_t s;
};

static inline void
wl_rng_init(struct wl_rng *r, uint64_t stream)
{
	/* splitmix64 of the seed and the stream: distinct, never zero */
	uint64_t z = WL_SEED + (stream + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	r->s = (z ^ (z >> 31)) | 1;
}

static inline uint64_t
wl_next(struct wl_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [lo, hi]; the bias of a 64-bit modulo is negligible here. */
static inline size_t
wl_range(struct wl_rng *r, size_t lo, size_t hi)
{
	return lo + (size_t)(wl_next(r) % (hi - lo + 1));
}

/* Log-uniform in [lo, hi]: as many 64-128 KiB blocks as 2-4 MiB ones. */
static inline size_t
wl_log_range(struct wl_rng *r, size_t lo, size_t hi)
{
	size_t lo_bits = 63 - (size_t)__builtin_clzll(lo);
	size_t hi_bits = 63 - (size_t)__builtin_clzll(hi);
	size_t bits = wl_range(r, lo_bits, hi_bits);
	size_t base = (size_t)1 << bits;
	size_t sz = base + (size_t)(wl_next(r) % base);

	return sz < lo ? lo : sz > hi ? hi : sz;
}

static inline double
wl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double
wl_scale(int argc, char **argv)
{
	double s = argc > 1 ? atof(argv[1]) : 1.0;

	return s > 0 ? s : 1.0;
}

static inline long
wl_scaled(long n, double scale)
{
	long v = (long)((double)n * scale);

	return v > 0 ? v : 1;
}

static inline void
wl_die(const char *what)
{
	fprintf(stderr, "workload: %s failed\n", what);
	exit(1);
}

static inline void *
wl_xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		wl_die("malloc");
	return p;
}

/* Write one byte per cache line so the block is really used. */
static inline void
wl_touch(void *p, size_t n, unsigned char v)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i += 64)
		b[i] = v;
	b[n - 1] = v;
}

static inline const char *
wl_malloc_provider(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");

	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
		return "unknown";
	return info.dli_fname;
}

static inline void
wl_report(const char *name, long ops, double secs, const char *extra)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	printf("workload=%s ops=%ld secs=%.4f mops=%.3f maxrss_kb=%ld%s%s "
	       "malloc=%s\n",
	    name, ops, secs, secs > 0 ? (double)ops / secs / 1e6 : 0.0,
	    ru.ru_maxrss, extra ? " " : "", extra ? extra : "",
	    wl_malloc_provider());
	fflush(stdout);
}

static inline void
wl_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(t, NULL, fn, arg) != 0)
		wl_die("pthread_create");
}

#endif /* WL_COMMON_H */
