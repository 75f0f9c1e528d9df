/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mstress: the many-thread stress pattern (as in the mstress test that
 * ships with mimalloc and the "threadtest" family before it).  Rounds of
 * freshly created threads work on a shared set of retained blocks: each
 * thread replaces random slots of one segment (blocks that a thread of an
 * earlier round allocated), allocates and frees short-lived blocks, keeps a
 * ring of medium-lived ones, and now and then takes a large block (64 KiB
 * to 1 MiB).  Thread i of round r takes segment (i + r) % THREADS, so most
 * frees of retained blocks are remote and land on exited threads' memory.
 */
#include "common.h"

#define THREADS  8
#define ROUNDS   10
#define SEGSLOTS 1024
#define RING     64

static unsigned char *retained[THREADS][SEGSLOTS];
static long steps;
static int round_no;

static size_t
pick_size(struct wl_rng *r)
{
	uint64_t x = wl_next(r) % 1000;

	if (x == 0)
		return wl_log_range(r, 64 << 10, 1 << 20);
	if (x < 20)
		return wl_range(r, 1025, 64 << 10);
	return wl_range(r, 8, 1024);
}

static void *
worker(void *arg)
{
	int id = (int)(long)arg;
	unsigned char **seg = retained[(id + round_no) % THREADS];
	unsigned char *ring[RING] = {0};
	struct wl_rng r;

	wl_rng_init(&r, (uint64_t)(round_no * THREADS + id));
	for (long s = 0; s < steps; s++) {
		uint64_t x = wl_next(&r);
		size_t n = pick_size(&r);
		unsigned char *p = wl_xmalloc(n);

		p[0] = p[n - 1] = (unsigned char)s;
		switch (x % 4) {
		case 0: /* short-lived */
			free(p);
			break;
		case 1: /* medium-lived: freed RING steps later */
			free(ring[s % RING]);
			ring[s % RING] = p;
			break;
		default: /* retained across rounds */
			free(seg[(x >> 8) % SEGSLOTS]);
			seg[(x >> 8) % SEGSLOTS] = p;
			break;
		}
	}
	for (int i = 0; i < RING; i++)
		free(ring[i]);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t t[THREADS];
	double t0, t1;

	steps = wl_scaled(300000, wl_scale(argc, argv));
	t0 = wl_now();
	for (round_no = 0; round_no < ROUNDS; round_no++) {
		for (int k = 0; k < THREADS; k++)
			wl_spawn(&t[k], worker, (void *)(long)k);
		for (int k = 0; k < THREADS; k++)
			pthread_join(t[k], NULL);
	}
	t1 = wl_now();
	for (int k = 0; k < THREADS; k++)
		for (int i = 0; i < SEGSLOTS; i++)
			free(retained[k][i]);
	wl_report(
	    "mstress", (long)THREADS * ROUNDS * steps, t1 - t0, "threads=8");
	return 0;
}
