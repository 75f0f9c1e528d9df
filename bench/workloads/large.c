/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * large: allocation of large blocks, 64 KiB to 4 MiB (log-uniform), the
 * pattern of image, network and database buffers.  A working set of 16
 * blocks; each step frees a random one and allocates a new one, writing
 * one byte per page of it, as a program would fill it.  Measures how the
 * allocator maps, caches and returns large blocks (mmap, munmap, page
 * faults) and what it keeps resident.
 */
#include "common.h"

#define BLOCKS 16
#define MINSZ  (64 << 10)
#define MAXSZ  (4 << 20)

int
main(int argc, char **argv)
{
	long steps = wl_scaled(8000, wl_scale(argc, argv));
	static unsigned char *blk[BLOCKS];
	struct wl_rng r;
	double t0, t1;

	wl_rng_init(&r, 0);
	t0 = wl_now();
	for (long s = 0; s < steps; s++) {
		size_t i = (size_t)(wl_next(&r) % BLOCKS);
		size_t n = wl_log_range(&r, MINSZ, MAXSZ);

		free(blk[i]);
		blk[i] = wl_xmalloc(n);
		for (size_t o = 0; o < n; o += 4096)
			blk[i][o] = (unsigned char)s;
		blk[i][n - 1] = 1;
	}
	t1 = wl_now();
	for (int i = 0; i < BLOCKS; i++)
		free(blk[i]);
	wl_report("large", steps, t1 - t0, NULL);
	return 0;
}
