/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * realloc-growth: buffers that grow by appending, the way string builders,
 * vectors and I/O buffers grow in real programs (the realloc pattern of
 * allocator test suites).  A working set of 256 buffers; at each step one
 * buffer grows by 1-64 bytes with realloc to exactly its new length, and
 * when it reaches its random target length (16 B to 64 KiB, log-uniform)
 * it is freed and a new buffer starts.  Rewards in-place growth and size
 * classes with room to grow into.
 */
#include "common.h"

#define BUFS 256

struct buf {
	unsigned char *p;
	size_t len, target;
};

int
main(int argc, char **argv)
{
	long steps = wl_scaled(8000000, wl_scale(argc, argv));
	static struct buf b[BUFS];
	struct wl_rng r;
	long reallocs = 0;
	double t0, t1;

	wl_rng_init(&r, 0);
	for (int i = 0; i < BUFS; i++)
		b[i].target = wl_log_range(&r, 16, 64 << 10);
	t0 = wl_now();
	for (long s = 0; s < steps; s++) {
		uint64_t x = wl_next(&r);
		struct buf *bb = &b[x % BUFS];
		size_t add = 1 + (size_t)((x >> 16) % 64);
		unsigned char *np;

		if (bb->len + add > bb->target) {
			free(bb->p);
			bb->p = NULL;
			bb->len = 0;
			bb->target = wl_log_range(&r, 16, 64 << 10);
			continue;
		}
		np = realloc(bb->p, bb->len + add);
		if (np == NULL)
			wl_die("realloc");
		memset(np + bb->len, (int)s, add);
		bb->p = np;
		bb->len += add;
		reallocs++;
	}
	t1 = wl_now();
	for (int i = 0; i < BUFS; i++)
		free(b[i].p);
	wl_report("realloc-growth", reallocs, t1 - t0, NULL);
	return 0;
}
