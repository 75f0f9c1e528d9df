/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc_pair: the instruction-count loop of malloc_pair.c for the native
 * kmalloc/kfree API (same modes, same method: two callgrind runs, the
 * difference divided by the difference in pairs).
 * Usage: kmalloc_pair MODE N
 */
#include <stdlib.h>
#include <string.h>

#include <slabkit/kmalloc.h>

MALLOC_DEFINE(M_PAIR, "pair", "kmalloc_pair blocks");

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
			sink = kmalloc(32, M_PAIR, M_WAITOK);
			kfree(sink, M_PAIR);
		}
	} else if (strcmp(argv[1], "mixed") == 0) {
		for (long i = 0; i < n; i++) {
			sink = kmalloc(mixed[i & 15], M_PAIR, M_WAITOK);
			kfree(sink, M_PAIR);
		}
	} else if (strcmp(argv[1], "ws32") == 0) {
		for (int i = 0; i < 1024; i++)
			ws[i] = kmalloc(32, M_PAIR, M_WAITOK);
		for (long i = 0; i < n; i++) {
			kfree(ws[i & 1023], M_PAIR);
			ws[i & 1023] = sink = kmalloc(32, M_PAIR, M_WAITOK);
		}
		for (int i = 0; i < 1024; i++)
			kfree(ws[i], M_PAIR);
	} else if (strcmp(argv[1], "wsmixed") == 0) {
		for (int i = 0; i < 1024; i++)
			ws[i] = kmalloc(mixed[i & 15], M_PAIR, M_WAITOK);
		for (long i = 0; i < n; i++) {
			kfree(ws[i & 1023], M_PAIR);
			ws[i & 1023] = sink =
			    kmalloc(mixed[(i + 7) & 15], M_PAIR, M_WAITOK);
		}
		for (int i = 0; i < 1024; i++)
			kfree(ws[i], M_PAIR);
	} else if (strcmp(argv[1], "ring") == 0) {
		for (int i = 0; i < 64; i++)
			ws[i] = kmalloc(32, M_PAIR, M_WAITOK);
		for (long i = 0; i < n; i++) {
			kfree(ws[i & 63], M_PAIR);
			ws[i & 63] = sink = kmalloc(32, M_PAIR, M_WAITOK);
		}
		for (int i = 0; i < 64; i++)
			kfree(ws[i], M_PAIR);
	} else if (strcmp(argv[1], "mix") == 0) {
		for (int i = 0; i < 64; i++)
			ws[i] = kmalloc(mix1k[i & 15], M_PAIR, M_WAITOK);
		for (long i = 0; i < n; i++) {
			kfree(ws[i & 63], M_PAIR);
			ws[i & 63] = sink = kmalloc(mix1k[(i + 5) & 15], M_PAIR, M_WAITOK);
		}
		for (int i = 0; i < 64; i++)
			kfree(ws[i], M_PAIR);
	} else if (strcmp(argv[1], "one") == 0) {
		for (long i = 0; i < n; i++) {
			sink = kmalloc(32, M_PAIR, M_WAITOK);
			kfree(sink, M_PAIR);
		}
	} else {
		return 2;
	}
	return 0;
}
