/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The malloc(3) contract of the slabkit drop-in, checked from the outside:
 * the same program is built three ways (tests/programs/CMakeLists.txt),
 *   SK_CONTRACT_MODE 1  plain executable run with LD_PRELOAD,
 *   SK_CONTRACT_MODE 2  linked against libslabkit-malloc.so,
 *   SK_CONTRACT_MODE 3  linked statically with src/malloc.c and libslabkit.a,
 * and each must behave like glibc on x86-64 where glibc defines the
 * behaviour: 16-byte alignment, malloc(0), errno values, overflow, bad
 * alignments, fork in a multithreaded parent, dlopen/dlclose, thread exit,
 * C++ operators, glibc's internal allocations.  Bad pointers must be
 * reported with slabkit's message and abort.
 *
 * "Is this block slabkit's?" is answered through the statistics API: the
 * drop-in's type "malloc" counts live blocks, so a call that allocated
 * through slabkit moves the count and a block from another heap does not.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabkit/stats.h>

#include "harness.h"

#ifndef SK_CONTRACT_MODE
#define SK_CONTRACT_MODE 1
#endif
#define MODE_PRELOAD 1
#define MODE_LINKED  2
#define MODE_STATIC  3

/* C23 functions glibc 2.36 does not declare. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

typedef int type_foreach_fn(
    int (*)(struct malloc_type *, const struct kmalloc_type_stats *, void *),
    void *);
static type_foreach_fn *type_foreach;

/* Sizes the compiler cannot see through (no -Walloc-size warnings). */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;
/* Alignments that are wrong on purpose, hidden from the compiler too. */
static volatile size_t v_zero = 0, v_24 = 24;

static int
find_malloc_type(
    struct malloc_type *t, const struct kmalloc_type_stats *st, void *arg)
{
	(void)t;
	if (st->shortdesc != NULL && strcmp(st->shortdesc, "malloc") == 0) {
		*(struct kmalloc_type_stats *)arg = *st;
		return 1;
	}
	return 0;
}

/* Live blocks of the drop-in's heap; -1 when it cannot be read. */
static long
heap_inuse(void)
{
	struct kmalloc_type_stats st;

	if (type_foreach == NULL || type_foreach(find_malloc_type, &st) != 1)
		return -1;
	return (long)st.inuse;
}

static void
setup(void)
{
#if SK_CONTRACT_MODE == MODE_PRELOAD
	type_foreach =
	    (type_foreach_fn *)dlsym(RTLD_DEFAULT, "kmalloc_type_foreach");
#else
	type_foreach = kmalloc_type_foreach;
#endif
}

static int
aligned(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

/* Blocks allocated before main, by a constructor of the program. */
static char *early_block, *early_str;

__attribute__((constructor)) static void
allocate_before_main(void)
{
	early_block = malloc(1000);
	if (early_block != NULL)
		memset(early_block, 0x5a, 1000);
	early_str = strdup("allocated before main");
}

/* ------------------------------------------------------------------ */

#if SK_CONTRACT_MODE != MODE_STATIC
static const char *
owner_of(void *fn)
{
	Dl_info info;

	if (dladdr(fn, &info) == 0 || info.dli_fname == NULL)
		return "?";
	return info.dli_fname;
}
#endif

/* SLABKIT_OPTIONS asks for hardened mode: the few checks below whose
 * answer the mode changes on purpose say which answer they expect. */
static int
hardened_env(void)
{
	const char *o = getenv("SLABKIT_OPTIONS");

	if (o == NULL)
		return 0;
	for (const char *k = o; (k = strstr(k, "hardened")) != NULL; k++)
		if ((k == o || k[-1] == ',') &&
		    (k[8] == '\0' || k[8] == ',' ||
		        strncmp(k + 8, "=1", 2) == 0))
			return 1;
	return 0;
}

TEST(preload_took)
{
	long base = heap_inuse();
	void *p;

	CHECK(base >= 0);
#if SK_CONTRACT_MODE != MODE_STATIC
	{
		void *fns[] = {(void *)malloc, (void *)free, (void *)calloc,
		    (void *)realloc, (void *)reallocarray,
		    (void *)posix_memalign, (void *)aligned_alloc,
		    (void *)memalign, (void *)valloc, (void *)pvalloc,
		    (void *)malloc_usable_size};

		for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
			const char *o = owner_of(fns[i]);

			if (strstr(o, "libslabkit-malloc") == NULL) {
				fprintf(stderr, "  function %zu lives in %s\n",
				    i, o);
				CHECK(0);
			}
		}
		CHECK(strstr(owner_of(dlsym(RTLD_DEFAULT, "malloc")),
		          "libslabkit-malloc") != NULL);
	}
#endif
#if SK_CONTRACT_MODE == MODE_PRELOAD
	CHECK(getenv("LD_PRELOAD") != NULL &&
	      strstr(getenv("LD_PRELOAD"), "libslabkit-malloc") != NULL);
#endif
	p = malloc(10);
	CHECK(p != NULL);
	CHECK_EQ(heap_inuse(), base + 1);
	free(p);
	CHECK_EQ(heap_inuse(), base);
}

TEST(allocated_before_main)
{
	long base = heap_inuse();
	size_t bad = 0;

	CHECK(early_block != NULL && early_str != NULL);
	if (early_block == NULL || early_str == NULL)
		return;
	for (int i = 0; i < 1000; i++)
		bad += (unsigned char)early_block[i] != 0x5a;
	CHECK_EQ(bad, 0);
	CHECK_STR_EQ(early_str, "allocated before main");
	CHECK(malloc_usable_size(early_block) >= 1000);
	free(early_block);
	free(early_str);
	CHECK_EQ(heap_inuse(), base - 2);
}

TEST(alignment_every_size)
{
	void *keep[64] = {0};

	for (size_t n = 0; n <= 20000; n += n < 4200 ? 1 : 97) {
		char *p = malloc(n), *q;
		size_t u;

		CHECK(p != NULL);
		if (p == NULL)
			return;
		if (!aligned(p, 16)) {
			fprintf(stderr, "  malloc(%zu) = %p\n", n, (void *)p);
			CHECK(0);
		}
		u = malloc_usable_size(p);
		CHECK(u >= n);
		memset(p, 0xab, u);
		q = calloc(1, n);
		CHECK(q != NULL && aligned(q, 16));
		for (size_t i = 0; q != NULL && i < n; i++)
			if (q[i] != 0) {
				CHECK(q[i] == 0);
				break;
			}
		free(q);
		free(keep[n % 64]);
		keep[n % 64] = p;
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	for (int s = 4; s <= 24; s++) {
		for (int d = -1; d <= 1; d++) {
			size_t n = ((size_t)1 << s) + (size_t)d;
			char *p = malloc(n);

			CHECK(p != NULL && aligned(p, 16));
			CHECK(malloc_usable_size(p) >= n);
			if (p != NULL)
				p[n - 1] = 1;
			free(p);
		}
	}
}

TEST(malloc_zero_unique)
{
	void *p[64];
	long base = heap_inuse();
	void *q;

	for (int i = 0; i < 64; i++) {
		p[i] = malloc(0);
		CHECK(p[i] != NULL && aligned(p[i], 16));
		for (int j = 0; j < i; j++)
			CHECK(p[i] != p[j]);
	}
	CHECK_EQ(heap_inuse(), base + 64);
	for (int i = 0; i < 64; i++)
		free(p[i]);
	CHECK_EQ(heap_inuse(), base);
	q = calloc(0, 5);
	CHECK(q != NULL);
	free(q);
	q = calloc(5, 0);
	CHECK(q != NULL);
	free(q);
	q = realloc(NULL, 0);
	CHECK(q != NULL);
	free(q);
	q = aligned_alloc(64, 0);
	CHECK(q != NULL && aligned(q, 64));
	free(q);
	q = NULL;
	CHECK_EQ(posix_memalign(&q, 4096, 0), 0);
	CHECK(q != NULL && aligned(q, 4096));
	free(q);
	q = memalign(1 << 16, 0);
	CHECK(q != NULL && aligned(q, 1 << 16));
	free(q);
	q = valloc(0);
	CHECK(q != NULL && aligned(q, 4096));
	free(q);
	q = pvalloc(0);
	CHECK(q != NULL && aligned(q, 4096));
	free(q);
	CHECK_EQ(heap_inuse(), base);
}

TEST(errno_kept_on_success)
{
	void *p, *q;

	errno = 4242;
	p = malloc(1);
	CHECK_EQ(errno, 4242);
	q = malloc(300000);
	CHECK_EQ(errno, 4242);
	p = realloc(p, 100000);
	CHECK_EQ(errno, 4242);
	q = realloc(q, 16);
	CHECK_EQ(errno, 4242);
	free(p);
	free(q);
	p = calloc(100, 100);
	CHECK_EQ(errno, 4242);
	free(p);
	CHECK_EQ(posix_memalign(&p, 256, 1000), 0);
	CHECK_EQ(errno, 4242);
	free(p);
	p = aligned_alloc(1 << 20, 10);
	CHECK(p != NULL);
	CHECK_EQ(errno, 4242);
	free(p);
	free(NULL);
	CHECK_EQ(errno, 4242);
}

TEST(enomem_and_overflow)
{
	size_t big = v_size_max, pmax = v_ptrdiff_max;
	char *p = malloc(100), *r;
	void *q = (void *)&q;
	/* Through pointers: the compiler must not assume the old block
	 * is gone after a failed call. */
	void *(*volatile re)(void *, size_t) = realloc;
	void *(*volatile rea)(void *, size_t, size_t) = reallocarray;

	memset(p, 7, 100);
#define FAILS(expr)                                                            \
	do {                                                                   \
		errno = 0;                                                     \
		void *x_ = (expr);                                             \
		CHECK(x_ == NULL);                                             \
		CHECK_EQ(errno, ENOMEM);                                       \
		if (x_ != NULL)                                                \
			free(x_);                                              \
	} while (0)
	FAILS(malloc(big));
	FAILS(malloc(big - 15));
	FAILS(malloc(pmax + 1));
	FAILS(malloc(pmax));
	FAILS(malloc(pmax - 4096));
	FAILS(calloc(big / 2 + 1, 2));
	FAILS(calloc(1, big));
	FAILS(calloc(big, big));
	FAILS(calloc(pmax / 16, 32));
	FAILS(valloc(big));
	FAILS(pvalloc(big));
	FAILS(pvalloc(big - 4000));
	FAILS(memalign(64, big));
	FAILS(aligned_alloc(64, big));
	FAILS(aligned_alloc(4096, pmax + 1));
	FAILS(reallocarray(NULL, big / 2 + 1, 2));
	/* A failed realloc leaves the old block alone. */
	errno = 0;
	r = re(p, big);
	CHECK(r == NULL);
	CHECK_EQ(errno, ENOMEM);
	errno = 0;
	r = re(p, pmax + 1);
	CHECK(r == NULL);
	CHECK_EQ(errno, ENOMEM);
	errno = 0;
	r = rea(p, big / 2 + 1, 2);
	CHECK(r == NULL);
	CHECK_EQ(errno, ENOMEM);
	for (int i = 0; i < 100; i++)
		if (p[i] != 7) {
			CHECK(p[i] == 7);
			break;
		}
	CHECK_EQ(posix_memalign(&q, 64, big), ENOMEM);
	CHECK(q == (void *)&q);
	free(p);
#undef FAILS
}

TEST(einval_bad_alignment)
{
	void *q = (void *)&q;

	errno = 77;
	CHECK_EQ(posix_memalign(&q, 0, 8), EINVAL);
	CHECK_EQ(posix_memalign(&q, 3, 8), EINVAL);
	CHECK_EQ(posix_memalign(&q, 4, 8), EINVAL);
	CHECK_EQ(posix_memalign(&q, 24, 8), EINVAL);
	CHECK_EQ(posix_memalign(&q, ((size_t)1 << 20) + 8, 8), EINVAL);
	CHECK(q == (void *)&q);
	CHECK_EQ(errno, 77);
	errno = 0;
	CHECK(aligned_alloc(v_zero, 8) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(aligned_alloc(v_24, 48) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(memalign(v_size_max, 8) == NULL);
	CHECK_EQ(errno, EINVAL);
	/* memalign rounds an odd alignment up, as glibc does. */
	q = memalign(v_24, 100);
	CHECK(q != NULL && aligned(q, 32));
	free(q);
}

TEST(aligned_family)
{
	for (size_t a = 8; a <= ((size_t)1 << 22); a <<= 1) {
		size_t sizes[] = {1, a - 1, a, a + 1, 3 * a, 100000};

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i] ? sizes[i] : 1;
			void *p = NULL, *q, *r;

			CHECK_EQ(posix_memalign(&p, a, n), 0);
			CHECK(p != NULL && aligned(p, a));
			q = aligned_alloc(a, n);
			CHECK(q != NULL && aligned(q, a));
			r = memalign(a, n);
			CHECK(r != NULL && aligned(r, a));
			if (p == NULL || q == NULL || r == NULL)
				return;
			CHECK(malloc_usable_size(p) >= n);
			memset(p, 1, n);
			memset(q, 2, n);
			memset(r, 3, n);
			CHECK(((char *)p)[n - 1] == 1 && ((char *)q)[0] == 2);
			free(p);
			free(q);
			free(r);
		}
	}
	{
		void *v = valloc(5000), *pv = pvalloc(5000);

		CHECK(v != NULL && aligned(v, 4096));
		CHECK(pv != NULL && aligned(pv, 4096));
		CHECK(malloc_usable_size(pv) >= 8192);
		free(v);
		free(pv);
	}
}

TEST(realloc_semantics)
{
	long base = heap_inuse();
	size_t sizes[] = {10, 100, 1000, 5000, 20000, 100000, 1000000, 3000000,
	    50000, 700, 24, 1};
	size_t prev = 10;
	unsigned char *p = malloc(10), *q;

	for (size_t i = 0; i < 10; i++)
		p[i] = (unsigned char)(i * 7 + 1);
	for (size_t k = 1; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k], keep = prev < n ? prev : n, bad = 0;

		q = realloc(p, n);
		CHECK(q != NULL && aligned(q, 16));
		if (q == NULL)
			return;
		for (size_t i = 0; i < keep; i++)
			bad += q[i] != (unsigned char)(i * 7 + 1);
		CHECK_EQ(bad, 0);
		for (size_t i = keep; i < n; i++)
			q[i] = (unsigned char)(i * 7 + 1);
		p = q;
		prev = n;
	}
	CHECK_EQ(heap_inuse(), base + 1);
	q = realloc(p, malloc_usable_size(p));
	/* hardened: a block may move (its old chunk goes through the
	 * quarantine) */
	CHECK(q == p || (hardened_env() && q != NULL));
	CHECK(realloc(q, 0) == NULL);
	CHECK_EQ(heap_inuse(), base);
	p = realloc(NULL, 50);
	CHECK(p != NULL);
	CHECK_EQ(heap_inuse(), base + 1);
	p = reallocarray(p, 100, 10);
	CHECK(p != NULL && malloc_usable_size(p) >= 1000);
	free(p);
	CHECK_EQ(heap_inuse(), base);
}

/*
 * A block of 64 bytes or less that grows gets the size asked for, no
 * headroom (Lua grows every small table 16 -> 32 bytes once: a quarter
 * more would be kept for nothing); above 64 bytes a quarter more.
 */
TEST(realloc_small_growth_exact)
{
	unsigned char *p = malloc(16), *q, *r;

	CHECK(p != NULL);
	memset(p, 7, 16);
	/* the block malloc itself would give (hardened mode's classes are
	 * other sizes) */
	q = realloc(p, 32);
	r = malloc(32);
	CHECK(q != NULL && r != NULL && q[0] == 7 && q[15] == 7);
	CHECK_EQ(malloc_usable_size(q), malloc_usable_size(r));
	free(r);
	p = realloc(q, 64);
	r = malloc(64);
	CHECK(p != NULL && r != NULL && p[15] == 7);
	CHECK_EQ(malloc_usable_size(p), malloc_usable_size(r));
	free(r);
	q = realloc(p, 100); /* 100 + 25, rounded to its class */
	CHECK(q != NULL && q[0] == 7);
	if (!hardened_env())
		CHECK(malloc_usable_size(q) >= 125);
	free(q);
}

/*
 * Blocks of a full zone (12 KiB chunks: ten to a zone) stay where they are
 * for a size they still hold, and move with their contents for one they
 * do not: the keeping path takes full zones too.
 */
TEST(realloc_keeps_in_full_zone)
{
	enum { N = 40 };
	unsigned char *p[N], *q;
	int kept = 0, good = 0;

	for (int i = 0; i < N; i++) {
		p[i] = malloc(12000);
		CHECK(p[i] != NULL);
		if (p[i] == NULL)
			return;
		memset(p[i], i + 1, 12000);
	}
	for (int i = 0; i < N; i++) {
		q = realloc(p[i], 11000);
		kept += q == p[i];
		if (q != NULL)
			p[i] = q;
	}
	CHECK_EQ(kept, N);
	for (int i = 0; i < N; i++) {
		q = realloc(p[i], 20000);
		CHECK(q != NULL);
		if (q == NULL)
			continue;
		good += q[0] == i + 1 && q[10999] == i + 1;
		p[i] = q;
	}
	CHECK_EQ(good, N);
	for (int i = 0; i < N; i++)
		free(p[i]);
}

/*
 * Small growths move under one hold of the shard (malloc.c, realloc_on):
 * from a zone with free chunks and from a full one (the old chunk then
 * goes back through kfree's slow path), with the contents kept and the
 * bytes in use back where they started once everything is freed.
 */
TEST(realloc_small_moves_keep_contents_and_counts)
{
	enum { N = 3000 }; /* more 48-byte chunks than one zone holds */
	static unsigned char *p[N];
	struct mallinfo2 before, after;
	int good = 0;

	before = mallinfo2();
	for (int i = 0; i < N; i++) {
		p[i] = malloc(40);
		CHECK(p[i] != NULL);
		if (p[i] == NULL)
			return;
		memset(p[i], (i % 250) + 1, 40);
	}
	/* every zone but the last is full now: grow in both kinds */
	for (int i = 0; i < N; i++) {
		unsigned char *q = realloc(p[i], 100 + (size_t)(i % 3) * 300);

		CHECK(q != NULL);
		if (q == NULL)
			continue;
		good += q[0] == (i % 250) + 1 && q[39] == (i % 250) + 1;
		p[i] = q;
	}
	CHECK_EQ(good, N);
	for (int i = 0; i < N; i++)
		free(p[i]);
	after = mallinfo2();
	CHECK_EQ(after.uordblks, before.uordblks);
}

/*
 * A buffer grown a few bytes at a time is copied once per quarter of
 * growth, and never moved back to a smaller block while it grows (the
 * regression: a chunk given headroom was "shrunk" by the next, slightly
 * larger realloc, and the one after that moved it up again).
 */
TEST(realloc_growth_moves)
{
	unsigned char *p = NULL, *q;
	size_t len = 0, usable = 0, moves = 0, shrunk = 0, bad = 0;

	while (len < 64 * 1024) {
		len += 32;
		q = realloc(p, len);
		CHECK(q != NULL);
		if (q == NULL)
			break;
		if (q != p) {
			moves++;
			shrunk += malloc_usable_size(q) < usable;
			usable = malloc_usable_size(q);
		}
		if (len > 32)
			bad += q[len - 33] != 1 || q[0] != 1;
		memset(q + len - 32, 1, 32);
		p = q;
	}
	CHECK_EQ(shrunk, 0);
	CHECK_EQ(bad, 0);
	CHECK(moves <= 32); /* 32 B to 64 KiB by a quarter: about 30 */
	q = realloc(p, len - 4096); /* a little smaller: kept */
	CHECK(q == p);
	q = realloc(p, 100); /* much smaller: moved, contents kept */
	CHECK(q != NULL && q != p && q[99] == 1);
	free(q);
}

TEST(calloc_zeroes_reused_memory)
{
	size_t sizes[] = {
	    16, 48, 100, 1000, 4100, 8000, 16384, 70000, 1 << 20, 20 << 20};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned char *p = malloc(n), *q;
		size_t bad = 0;

		memset(p, 0xff, n);
		free(p);
		q = calloc(n / 4, 4);
		CHECK(q != NULL);
		if (q == NULL)
			return;
		for (size_t k = 0; k < n; k++)
			bad += q[k] != 0;
		CHECK_EQ(bad, 0);
		free(q);
	}
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

TEST(glibc_internal_allocations_agree)
{
	long base = heap_inuse();
	char *s, *line = NULL, *buf = NULL;
	size_t cap = 0, len = 0;
	FILE *fp;
	regex_t re;
	DIR *d;
	int *a;

	s = strdup("slabkit");
	CHECK_EQ(heap_inuse(), base + 1);
	CHECK(malloc_usable_size(s) >= 8);
	free(s);
	s = strndup("slabkit drop-in", 7);
	CHECK_EQ(heap_inuse(), base + 1);
	free(s);
	CHECK(asprintf(&s, "%d-%s", 42, "x") == 4);
	CHECK_EQ(heap_inuse(), base + 1);
	free(s);
	s = realpath(".", NULL);
	CHECK(s != NULL);
	CHECK_EQ(heap_inuse(), base + 1);
	free(s);
	CHECK_EQ(heap_inuse(), base);

	fp = open_memstream(&buf, &len);
	CHECK(fp != NULL);
	for (int i = 0; i < 10000; i++)
		fprintf(fp, "line %d\n", i);
	fclose(fp);
	CHECK(len > 10000 && malloc_usable_size(buf) >= len);
	fp = fmemopen(buf, len, "r");
	CHECK(fp != NULL);
	for (int i = 0; i < 10000; i++) {
		ssize_t n = getline(&line, &cap, fp);

		if (n <= 0 || atoi(line + 5) != i) {
			CHECK(0);
			break;
		}
	}
	fclose(fp);
	CHECK(malloc_usable_size(line) >= cap);
	free(line);
	free(buf);
	CHECK_EQ(heap_inuse(), base);

	fp = fopen("/proc/self/status", "r");
	CHECK(fp != NULL && heap_inuse() > base);
	while (fp != NULL && fgetc(fp) != EOF)
		;
	if (fp != NULL)
		fclose(fp);
	d = opendir("/proc/self");
	CHECK(d != NULL && heap_inuse() > base);
	while (d != NULL && readdir(d) != NULL)
		;
	if (d != NULL)
		closedir(d);
	CHECK_EQ(regcomp(&re, "^(a|b)+[0-9]{2,5}$", REG_EXTENDED), 0);
	CHECK_EQ(regexec(&re, "abba123", 0, NULL, 0), 0);
	regfree(&re);
	a = malloc(200000 * sizeof(*a));
	for (int i = 0; i < 200000; i++)
		a[i] = (int)((i * 2654435761u) >> 8);
	qsort(a, 200000, sizeof(*a), cmp_int);
	for (int i = 1; i < 200000; i++)
		if (a[i - 1] > a[i]) {
			CHECK(0);
			break;
		}
	free(a);
	CHECK_EQ(heap_inuse(), base);
}

TEST(usable_size_is_usable)
{
	unsigned char *p[200];
	size_t u[200];

	CHECK_EQ(malloc_usable_size(NULL), 0);
	for (int i = 0; i < 200; i++) {
		p[i] = malloc((size_t)(i * 37 % 3000));
		u[i] = malloc_usable_size(p[i]);
		CHECK(u[i] >= (size_t)(i * 37 % 3000));
		memset(p[i], i, u[i]);
	}
	for (int i = 0; i < 200; i++) {
		size_t bad = 0;

		for (size_t k = 0; k < u[i]; k++)
			bad += p[i][k] != (unsigned char)i;
		CHECK_EQ(bad, 0);
		free(p[i]);
	}
}

TEST(free_sized_and_libc_aliases)
{
	long base = heap_inuse();
	void *(*lmalloc)(size_t), *(*lcalloc)(size_t, size_t);
	void *(*lrealloc)(void *, size_t), *(*lmemalign)(size_t, size_t);
	void (*lfree)(void *);
	void (*fsized)(void *, size_t), (*fasized)(void *, size_t, size_t);
	void *p;

#if SK_CONTRACT_MODE == MODE_STATIC
	{
		extern void *__libc_malloc(size_t);
		extern void *__libc_calloc(size_t, size_t);
		extern void *__libc_realloc(void *, size_t);
		extern void *__libc_memalign(size_t, size_t);
		extern void __libc_free(void *);

		lmalloc = __libc_malloc;
		lcalloc = __libc_calloc;
		lrealloc = __libc_realloc;
		lmemalign = __libc_memalign;
		lfree = __libc_free;
		fsized = free_sized;
		fasized = free_aligned_sized;
	}
#else
	lmalloc = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
	lcalloc =
	    (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
	lrealloc =
	    (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
	lmemalign =
	    (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
	lfree = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
	fsized = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
	fasized = (void (*)(void *, size_t, size_t))dlsym(
	    RTLD_DEFAULT, "free_aligned_sized");
	CHECK(lmalloc != NULL &&
	      strstr(owner_of((void *)lmalloc), "libslabkit-malloc") != NULL);
	CHECK(lfree != NULL &&
	      strstr(owner_of((void *)lfree), "libslabkit-malloc") != NULL);
#endif
	CHECK(lmalloc && lcalloc && lrealloc && lmemalign && lfree && fsized &&
	      fasized);
	if (!(lmalloc && lcalloc && lrealloc && lmemalign && lfree && fsized &&
	        fasized))
		return;
	p = lmalloc(100);
	CHECK_EQ(heap_inuse(), base + 1);
	p = lrealloc(p, 5000);
	CHECK(malloc_usable_size(p) >= 5000);
	free(p);
	p = malloc(77);
	lfree(p);
	p = lcalloc(10, 10);
	CHECK(p != NULL && ((char *)p)[99] == 0);
	CHECK_EQ(heap_inuse(), base + 1);
	fsized(p, 100);
	p = lmemalign(512, 10);
	CHECK(p != NULL && aligned(p, 512));
	fasized(p, 512, 10);
	CHECK_EQ(heap_inuse(), base);
}

TEST(glibc_tuning_calls_are_harmless)
{
	struct mallinfo2 mi;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;
	void *p = malloc(1000);

	CHECK_EQ(mallopt(M_ARENA_MAX, 1), 1);
	CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
	mi = mallinfo2();
	CHECK(mi.uordblks >= 1000);
	malloc_trim(0);
	fp = open_memstream(&buf, &len);
	CHECK(fp != NULL && malloc_info(0, fp) == 0);
	fclose(fp);
	CHECK(buf != NULL && strstr(buf, "slabkit") != NULL);
	free(buf);
	free(p);
}

/* mallinfo2's fields mean what slabkit_malloc.3 says. */
TEST(mallinfo2_fields_are_consistent)
{
	struct mallinfo2 a, b, c;
	void *small[64], *big;

	for (int i = 0; i < 64; i++)
		small[i] = malloc(100);
	big = malloc((size_t)32 << 20); /* mapped alone */
	a = mallinfo2();
	CHECK(a.uordblks >= 64 * 100 + ((size_t)32 << 20));
	CHECK(a.arena >= a.uordblks);
	CHECK(a.arena >= a.uordblks + a.fordblks);
	CHECK(a.hblks >= 1);
	CHECK(a.hblkhd >= ((size_t)32 << 20));
	CHECK(a.arena >= a.hblkhd);
	/* hardened zones lie outside the zone arena, which the class walk
	 * covers: there the free-chunk figures stay 0 */
	CHECK(a.ordblks > 0 || hardened_env());
	CHECK(a.fordblks >= a.keepcost);
	for (int i = 0; i < 64; i += 2)
		free(small[i]);
	b = mallinfo2();
	if (!hardened_env()) {
		CHECK(b.ordblks >= a.ordblks + 32);
		CHECK(b.fordblks >= a.fordblks + 32 * 100);
	}
	CHECK(b.uordblks < a.uordblks);
	free(big);
	c = mallinfo2();
	CHECK(c.hblkhd + ((size_t)32 << 20) <= b.hblkhd);
	for (int i = 1; i < 64; i += 2)
		free(small[i]);
}

/* ------------------------------------------------------------------ */
/* Threads */

#define NT         8
#define PER_THREAD 1500
static void *handoff[NT][PER_THREAD];

static size_t
block_size(unsigned i)
{
	unsigned r = (i * 2654435761u) >> 7;

	return r % 50 == 0 ? 20000 + r % 200000 : r % 3000;
}

static void *
churn_thread(void *arg)
{
	int t = (int)(intptr_t)arg;
	void *mine[PER_THREAD];

	for (unsigned i = 0; i < PER_THREAD; i++) {
		size_t n = block_size(i + (unsigned)t * 7919);
		unsigned char *p = malloc(n + 1);

		if (p == NULL)
			return (void *)1;
		memset(p, t, n + 1);
		if (i % 2)
			handoff[t][i] = p;
		else
			mine[i] = p;
	}
	for (unsigned i = 0; i < PER_THREAD; i += 2)
		free(mine[i]);
	return NULL;
}

TEST(thread_exit_and_cross_thread_free)
{
	long base = -1, after = -1;

	for (int round = 0; round < 12; round++) {
		pthread_t th[NT];

		for (int t = 0; t < NT; t++)
			CHECK_EQ(pthread_create(&th[t], NULL, churn_thread,
			             (void *)(intptr_t)t),
			    0);
		for (int t = 0; t < NT; t++) {
			void *rv = (void *)2;

			pthread_join(th[t], &rv);
			CHECK(rv == NULL);
		}
		for (int t = 0; t < NT; t++) {
			for (unsigned i = 1; i < PER_THREAD; i += 2) {
				unsigned char *p = handoff[t][i];

				if (p[0] != (unsigned char)t) {
					CHECK(p[0] == (unsigned char)t);
					return;
				}
				free(p);
				handoff[t][i] = NULL;
			}
		}
		/* Round 0 fills glibc's thread-stack cache (each cached stack
		 * keeps its TLS vector): count from round 1 on. */
		if (round == 1)
			base = heap_inuse();
		after = heap_inuse();
	}
	CHECK(base >= 0);
	CHECK_EQ(after, base);
}

static atomic_int stop_churn;
static void *_Atomic shared_slots[256];

static void *
background_churn(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	while (!atomic_load(&stop_churn)) {
		void *p = malloc(block_size(i++) + 1);
		void *old = atomic_exchange(&shared_slots[i % 256], p);

		free(old);
	}
	return NULL;
}

/* In the child: allocate and free, small and large, and glibc's own. */
static int
child_allocates(void)
{
	void *p[500];
	char *s;

	alarm(20); /* a deadlock shows up as SIGALRM, not a hung test */
	for (int i = 0; i < 500; i++) {
		p[i] = malloc(block_size((unsigned)i) + 1);
		if (p[i] == NULL)
			return 1;
		memset(p[i], i, block_size((unsigned)i) + 1);
	}
	for (int i = 0; i < 500; i++)
		free(p[i]);
	s = strdup("child");
	if (s == NULL || strcmp(s, "child") != 0)
		return 2;
	free(s);
	for (int i = 0; i < 256; i++) /* blocks of the parent's threads */
		free(atomic_exchange(&shared_slots[i], NULL));
	return 0;
}

/* ... and start threads that allocate (they adopt parked shards). */
static int
child_starts_threads(void)
{
	pthread_t th[2];
	int rc = child_allocates();

	if (rc != 0)
		return rc;
	for (int t = 0; t < 2; t++)
		if (pthread_create(
		        &th[t], NULL, churn_thread, (void *)(intptr_t)t) != 0)
			return 3;
	for (int t = 0; t < 2; t++) {
		void *rv = (void *)1;

		pthread_join(th[t], &rv);
		if (rv != NULL)
			return 4;
		for (unsigned i = 1; i < PER_THREAD; i += 2)
			free(handoff[t][i]);
	}
	return 0;
}

static int
fork_children(int n, int (*work)(void))
{
	int ok = 0;

	for (int k = 0; k < n; k++) {
		int status = 0;
		pid_t pid = fork();

		if (pid == 0)
			_exit(work());
		CHECK(pid > 0);
		if (pid < 0)
			break;
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			ok++;
		else
			fprintf(stderr, "  child %d: status 0x%x\n", k, status);
		free(malloc(100));
	}
	return ok;
}

static void
churn_start(pthread_t *th, int n)
{
	atomic_store(&stop_churn, 0);
	for (int t = 0; t < n; t++)
		pthread_create(&th[t], NULL, background_churn,
		    (void *)(uintptr_t)(t * 1000));
}

static void
churn_stop(pthread_t *th, int n)
{
	atomic_store(&stop_churn, 1);
	for (int t = 0; t < n; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < 256; i++)
		free(atomic_exchange(&shared_slots[i], NULL));
}

/* Four threads allocate and free all the time; children allocate. */
TEST(fork_in_multithreaded_parent)
{
	pthread_t th[4];
	int ok;

	churn_start(th, 4);
	ok = fork_children(40, child_allocates);
	churn_stop(th, 4);
	CHECK_EQ(ok, 40);
}

static pthread_mutex_t idle_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_count, idle_release;

/* Allocate for a while, then wait (outside malloc) until released. */
static void *
churn_then_idle(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	for (int k = 0; k < 20000; k++) {
		void *p = malloc(block_size(i++) + 1);

		free(atomic_exchange(&shared_slots[i % 256], p));
	}
	pthread_mutex_lock(&idle_mtx);
	idle_count++;
	pthread_cond_broadcast(&idle_cv);
	while (!idle_release)
		pthread_cond_wait(&idle_cv, &idle_mtx);
	pthread_mutex_unlock(&idle_mtx);
	return NULL;
}

/*
 * The parent's four threads are alive but idle when it forks; children
 * start threads of their own, which adopt the shards the child's missing
 * threads left.  With SK_TEST_FORK_RACE=1 the parent's threads keep
 * allocating while it forks: then the shard layer must retire, not
 * adopt, those shards (one may be forked in the middle of an update).
 */
TEST(fork_child_starts_threads)
{
	const char *race = getenv("SK_TEST_FORK_RACE");
	pthread_t th[4];
	int ok;

	if (race != NULL && strcmp(race, "1") == 0) {
		churn_start(th, 4);
		ok = fork_children(20, child_starts_threads);
		churn_stop(th, 4);
		CHECK_EQ(ok, 20);
		return;
	}
	idle_count = idle_release = 0;
	for (int t = 0; t < 4; t++)
		pthread_create(&th[t], NULL, churn_then_idle,
		    (void *)(uintptr_t)(t * 1000));
	pthread_mutex_lock(&idle_mtx);
	while (idle_count < 4)
		pthread_cond_wait(&idle_cv, &idle_mtx);
	pthread_mutex_unlock(&idle_mtx);
	ok = fork_children(20, child_starts_threads);
	pthread_mutex_lock(&idle_mtx);
	idle_release = 1;
	pthread_cond_broadcast(&idle_cv);
	pthread_mutex_unlock(&idle_mtx);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < 256; i++)
		free(atomic_exchange(&shared_slots[i], NULL));
	CHECK_EQ(ok, 20);
}

/* The common case: the handler allocates, the interrupted code does not. */
static volatile sig_atomic_t handler_runs;

static void
alloc_in_handler(int sig)
{
	char *p = malloc(64 + (size_t)handler_runs % 2000);

	(void)sig;
	if (p != NULL) {
		p[0] = 1;
		free(p);
		handler_runs++;
	}
}

TEST(signal_handler_allocates)
{
	struct itimerval it = {{0, 500}, {0, 500}}, off = {{0, 0}, {0, 0}};
	struct sigaction sa;
	long base = heap_inuse();
	volatile double x = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alloc_in_handler;
	sigaction(SIGALRM, &sa, NULL);
	handler_runs = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	for (long i = 0; i < 400000000L && handler_runs < 200; i++)
		x += (double)i * 0.5;
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	CHECK(x >= 0);
	CHECK(handler_runs >= 20);
	CHECK_EQ(heap_inuse(), base);
}

#if SK_CONTRACT_MODE != MODE_STATIC
TEST(dlopen_dlclose_module)
{
	long steady = -1;

	for (int i = 0; i < 25; i++) {
		void *h = dlopen(SK_DL_MODULE, RTLD_NOW | RTLD_LOCAL);
		char *(*hello)(int);
		int (*check)(void);
		char expect[64];
		char *s;

		CHECK(h != NULL);
		if (h == NULL) {
			fprintf(stderr, "  dlopen: %s\n", dlerror());
			return;
		}
		hello = (char *(*)(int))dlsym(h, "dl_module_hello");
		check = (int (*)(void))dlsym(h, "dl_module_check");
		CHECK(hello != NULL && check != NULL);
		if (hello == NULL || check == NULL)
			return;
		s = hello(i);
		snprintf(expect, sizeof(expect), "hello %d from the module", i);
		CHECK_STR_EQ(s, expect);
		CHECK(malloc_usable_size(s) >= 64);
		free(s);
		CHECK_EQ(check(), 1);
		CHECK_EQ(dlclose(h), 0);
		if (i == 2)
			steady = heap_inuse();
	}
	CHECK(steady > 0);
	CHECK_EQ(heap_inuse(), steady);
}

TEST(cxx_operators_use_the_drop_in)
{
	void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL);
	void *(*nw)(size_t), *(*nwa)(size_t), *(*nwal)(size_t, size_t);
	void (*del)(void *), (*dela)(void *), (*delal)(void *, size_t);
	long base;
	void *p, *q, *r;

	if (h == NULL) {
		fprintf(stderr, "  (libstdc++.so.6 not installed)\n");
		CHECK(dlerror() != NULL);
		return;
	}
	nw = (void *(*)(size_t))dlsym(h, "_Znwm");
	nwa = (void *(*)(size_t))dlsym(h, "_Znam");
	nwal = (void *(*)(size_t, size_t))dlsym(h, "_ZnwmSt11align_val_t");
	del = (void (*)(void *))dlsym(h, "_ZdlPv");
	dela = (void (*)(void *))dlsym(h, "_ZdaPv");
	delal = (void (*)(void *, size_t))dlsym(h, "_ZdlPvSt11align_val_t");
	CHECK(nw && nwa && nwal && del && dela && delal);
	if (!(nw && nwa && nwal && del && dela && delal))
		return;
	base = heap_inuse();
	p = nw(40);
	q = nwa(4000);
	r = nwal(100, 256);
	CHECK_EQ(heap_inuse(), base + 3);
	CHECK(malloc_usable_size(p) >= 40 && malloc_usable_size(q) >= 4000);
	CHECK(aligned(r, 256));
	del(p);
	dela(q);
	delal(r, 256);
	CHECK_EQ(heap_inuse(), base);
	dlclose(h);
}
#endif

/* Running out of memory returns NULL with ENOMEM; it never aborts. */
static int
oom_child(void)
{
	struct rlimit rl;
	void **keep = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t nkeep = 0, cap = (1 << 20) / sizeof(void *);
	FILE *fp = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	void *p;
	int got_null = 0;

	alarm(30);
	if (fp == NULL || fscanf(fp, "%lu", &pages) != 1 || keep == MAP_FAILED)
		return 10;
	fclose(fp);
	rl.rlim_cur = rl.rlim_max = pages * 4096 + (96ul << 20);
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 11;
	/* Large blocks until the address space runs out. */
	while (nkeep < cap) {
		errno = 0;
		p = malloc(1 << 20);
		if (p == NULL) {
			if (errno != ENOMEM)
				return 12;
			got_null++;
			break;
		}
		keep[nkeep++] = p;
	}
	/* Then zone-sized blocks. */
	while (nkeep < cap) {
		errno = 0;
		p = malloc(3000);
		if (p == NULL) {
			if (errno != ENOMEM)
				return 13;
			got_null++;
			break;
		}
		keep[nkeep++] = p;
	}
	errno = 0;
	if (calloc(1, 64 << 20) != NULL || errno != ENOMEM)
		return 14;
	if (got_null != 2)
		return 15;
	while (nkeep > 0)
		free(keep[--nkeep]);
	p = malloc(8 << 20);
	if (p == NULL)
		return 16;
	memset(p, 1, 8 << 20);
	free(p);
	return 0;
}

TEST(out_of_memory_returns_null)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(oom_child());
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "  oom child: status 0x%x\n", status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ------------------------------------------------------------------ */
/* Bad pointers: reported with slabkit's message, then abort. */

static void
free_stack(void *arg)
{
	char buf[64];

	(void)arg;
	free(buf + (((uintptr_t)buf & 15) ? 16 - ((uintptr_t)buf & 15) : 0));
}

static void
free_literal(void *arg)
{
	(void)arg;
	free((void *)"a string literal");
}

static void
free_wild(void *arg)
{
	free(arg);
}

static void
free_mmap_page(void *arg)
{
	void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)arg;
	free(p);
}

static void
free_interior(void *arg)
{
	char *p = malloc((size_t)(uintptr_t)arg);

	free(p + 16);
}

static void
double_free(void *arg)
{
	void *p = malloc((size_t)(uintptr_t)arg);

	free(p);
	free(p);
}

static void *
free_it(void *p)
{
	free(p);
	return NULL;
}

static void
double_free_cross_thread(void *arg)
{
	void *p = malloc(48);
	pthread_t th;

	(void)arg;
	pthread_create(&th, NULL, free_it, p);
	pthread_join(th, NULL);
	free(p);
}

static void
realloc_foreign(void *arg)
{
	char buf[32];

	(void)arg;
	if (realloc(buf, 100) != NULL)
		_exit(3);
}

static void
realloc_freed(void *arg)
{
	void *p = malloc(200);

	(void)arg;
	free(p);
	if (realloc(p, 100) != NULL)
		_exit(3);
}

static void *
free_there(void *p)
{
	free(p);
	return NULL;
}

/* a block another thread freed (its bit waits in the remote bitmap) */
static void
realloc_remote_freed(void *arg)
{
	void *p = malloc(40);
	pthread_t t;

	(void)arg;
	pthread_create(&t, NULL, free_there, p);
	pthread_join(t, NULL);
	if (realloc(p, 400) != NULL)
		_exit(3);
}

static void
usable_size_foreign(void *arg)
{
	(void)arg;
	if (malloc_usable_size((void *)"literal") > 0)
		_exit(3);
}

TEST(bad_pointers_are_reported)
{
	CHECK_ABORTS(free_stack, NULL,
	    "slabkit: free: pointer was not allocated by slabkit (ptr 0x");
	CHECK_ABORTS(free_literal, NULL,
	    "slabkit: free: pointer was not allocated by slabkit");
	CHECK_ABORTS(free_wild, (void *)0x1000,
	    "slabkit: free: pointer was "
	    "not allocated by slabkit");
	CHECK_ABORTS(free_wild, (void *)0x7ffffffff000,
	    "slabkit: free: pointer was not allocated by slabkit");
	CHECK_ABORTS(free_wild, (void *)0xffffffffffffff00,
	    "slabkit: free: pointer was not allocated by slabkit");
	CHECK_ABORTS(free_mmap_page, NULL,
	    "slabkit: free: pointer was not allocated by slabkit");
	CHECK_ABORTS(
	    free_interior, (void *)(uintptr_t)100, "slabkit: free: pointer 0x");
	CHECK_ABORTS(free_interior, (void *)(uintptr_t)100,
	    "is not the start of a chunk");
	CHECK_ABORTS(free_interior, (void *)(uintptr_t)(1 << 20),
	    "slabkit: free: pointer was not allocated by slabkit");
	CHECK_ABORTS(double_free, (void *)(uintptr_t)32,
	    "slabkit: free: memory chunk 0x");
	CHECK_ABORTS(
	    double_free, (void *)(uintptr_t)32, "(double free, ptr 0x");
	CHECK_ABORTS(double_free, (void *)(uintptr_t)5000,
	    "slabkit: free: memory chunk 0x");
	/* both modes: the page-run heap knows its freed runs (hardened ones
	 * are sealed by guards until reused) */
	CHECK_ABORTS(double_free, (void *)(uintptr_t)(1 << 20),
	    "(double free of a large block, ptr 0x");
	CHECK_ABORTS(
	    double_free_cross_thread, NULL, "slabkit: free: memory chunk 0x");
	CHECK_ABORTS(realloc_foreign, NULL,
	    "slabkit: realloc: pointer was not allocated by slabkit (ptr 0x");
	CHECK_ABORTS(realloc_freed, NULL, "slabkit: realloc: memory chunk 0x");
	CHECK_ABORTS(
	    realloc_remote_freed, NULL, "slabkit: realloc: memory chunk 0x");
	CHECK_ABORTS(usable_size_foreign, NULL,
	    "slabkit: malloc_usable_size: pointer was not allocated");
}

int
main(void)
{
	setup();
	RUN(preload_took);
	RUN(allocated_before_main);
	RUN(alignment_every_size);
	RUN(malloc_zero_unique);
	RUN(errno_kept_on_success);
	RUN(enomem_and_overflow);
	RUN(einval_bad_alignment);
	RUN(aligned_family);
	RUN(realloc_semantics);
	RUN(realloc_small_growth_exact);
	RUN(realloc_keeps_in_full_zone);
	RUN(realloc_small_moves_keep_contents_and_counts);
	RUN(realloc_growth_moves);
	RUN(calloc_zeroes_reused_memory);
	RUN(glibc_internal_allocations_agree);
	RUN(usable_size_is_usable);
	RUN(free_sized_and_libc_aliases);
	RUN(glibc_tuning_calls_are_harmless);
	RUN(mallinfo2_fields_are_consistent);
	RUN(thread_exit_and_cross_thread_free);
	RUN(fork_in_multithreaded_parent);
	RUN(fork_child_starts_threads);
	RUN(signal_handler_allocates);
#if SK_CONTRACT_MODE != MODE_STATIC
	RUN(dlopen_dlclose_module);
	RUN(cxx_operators_use_the_drop_in);
#endif
	RUN(out_of_memory_returns_null);
	RUN(bad_pointers_are_reported);
	return sk_t_done();
}
