/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * malloc_pair: the instruction-count loop for malloc's fast path (the
 * "cost per malloc/free pair" measurement that allocator authors make with
 * callgrind or perf).  Run twice under callgrind with N1 and N2 pairs:
 * (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one pair, with startup and
 * exit cancelled out.  Built with -fno-builtin so the compiler cannot
 * delete a malloc/free pair.
 *
 * Modes:
 *   fixed32  malloc(32), free: one live object (the empty-slab case)
 *   mixed    sizes cycle through 16 values from 8 to 512 bytes
 *   ws32     1024 live 32-byte blocks, the oldest freed at each step
 *   wsmixed  1024 live blocks of the 16 mixed sizes, the oldest freed
 *   ring     64 live 32-byte blocks, the oldest freed at each step
 *   mix      64 live blocks, sizes cycling through 16 values 8..1024
 *   one      malloc(32), free: one live object (same as fixed32)
 *
 * Usage: malloc_pair MODE N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t mixed[16] = {
    8, 24, 40, 64, 96, 128, 160, 200, 256, 300, 352, 400, 448, 480, 500, 512};

static const size_t mix1k[16] = {
    8, 24, 48, 64, 96, 128, 176, 256, 320, 384, 448, 512, 640, 768, 896, 1024};

static void *volatile sink;

int
main(int argc, char **argv)
{
	static void *ws[1024];
	long n;

	if (argc < 3)
		return 2;
	n = atol(argv[2]);
	if (strcmp(argv[1], "fixed32") == 0) {
		for (long i = 0; i < n; i++) {
			sink = malloc(32);
			free(sink);
		}
	} else if (strcmp(argv[1], "mixed") == 0) {
		for (long i = 0; i < n; i++) {
			sink = malloc(mixed[i & 15]);
			free(sink);
		}
	} else if (strcmp(argv[1], "ws32") == 0) {
		for (int i = 0; i < 1024; i++)
			ws[i] = malloc(32);
		for (long i = 0; i < n; i++) {
			free(ws[i & 1023]);
			ws[i & 1023] = sink = malloc(32);
		}
		for (int i = 0; i < 1024; i++)
			free(ws[i]);
	} else if (strcmp(argv[1], "wsmixed") == 0) {
		for (int i = 0; i < 1024; i++)
			ws[i] = malloc(mixed[i & 15]);
		for (long i = 0; i < n; i++) {
			free(ws[i & 1023]);
			ws[i & 1023] = sink = malloc(mixed[(i + 7) & 15]);
		}
		for (int i = 0; i < 1024; i++)
			free(ws[i]);
	} else if (strcmp(argv[1], "ring") == 0) {
		for (int i = 0; i < 64; i++)
			ws[i] = malloc(32);
		for (long i = 0; i < n; i++) {
			free(ws[i & 63]);
			ws[i & 63] = sink = malloc(32);
		}
		for (int i = 0; i < 64; i++)
			free(ws[i]);
	} else if (strcmp(argv[1], "mix") == 0) {
		for (int i = 0; i < 64; i++)
			ws[i] = malloc(mix1k[i & 15]);
		for (long i = 0; i < n; i++) {
			free(ws[i & 63]);
			ws[i & 63] = sink = malloc(mix1k[(i + 5) & 15]);
		}
		for (int i = 0; i < 64; i++)
			free(ws[i]);
	} else if (strcmp(argv[1], "one") == 0) {
		for (long i = 0; i < n; i++) {
			sink = malloc(32);
			free(sink);
		}
	} else {
		return 2;
	}
	return 0;
}
