/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * alloc-random-small: the classic single-thread malloc/free churn of random
 * small sizes (the "alloc-test" / "random small" pattern of allocator
 * papers).  One thread keeps a working set of 4096 blocks of 8-512 bytes and
 * replaces a random one at each step: free it, allocate a new block of a
 * random size, write its first and last bytes.  Measures the local fast
 * paths with mixed size classes and a working set larger than any one slab.
 */
#include "common.h"

#define SLOTS 4096
#define MINSZ 8
#define MAXSZ 512

int
main(int argc, char **argv)
{
	long steps = wl_scaled(60000000, wl_scale(argc, argv));
	static unsigned char *slot[SLOTS];
	struct wl_rng r;
	unsigned long sum = 0;
	double t0, t1;

	wl_rng_init(&r, 0);
	for (int i = 0; i < SLOTS; i++) {
		size_t n = wl_range(&r, MINSZ, MAXSZ);

		slot[i] = wl_xmalloc(n);
		slot[i][0] = slot[i][n - 1] = (unsigned char)i;
	}
	t0 = wl_now();
	for (long s = 0; s < steps; s++) {
		uint64_t x = wl_next(&r);
		size_t i = (size_t)(x % SLOTS);
		size_t n = MINSZ + (size_t)((x >> 32) % (MAXSZ - MINSZ + 1));

		sum += slot[i][0];
		free(slot[i]);
		slot[i] = wl_xmalloc(n);
		slot[i][0] = slot[i][n - 1] = (unsigned char)s;
	}
	t1 = wl_now();
	for (int i = 0; i < SLOTS; i++)
		free(slot[i]);
	if (sum == 1)
		puts("");
	wl_report("alloc-random-small", steps, t1 - t0, NULL);
	return 0;
}
