/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zone_pair: the instruction-count loop of malloc_pair.c for zalloc/zfree
 * on a zone of 32-byte items (the per-CPU cache fast path).  Same method:
 * two callgrind runs.
 * Modes: fixed32 (zalloc, zfree), ws32 (1024 items out, oldest freed).
 * Usage: zone_pair MODE N
 */
#include <stdlib.h>
#include <string.h>

#include <slabkit/zone.h>

static void *volatile sink;

int
main(int argc, char **argv)
{
	static void *ws[1024];
	char name[] = "pair";
	vm_zone_t z;
	long n;

	if (argc < 3)
		return 2;
	n = atol(argv[2]);
	z = zinit(name, 32, 0, 0);
	if (z == NULL)
		return 1;
	if (strcmp(argv[1], "fixed32") == 0) {
		for (long i = 0; i < n; i++) {
			sink = zalloc(z);
			zfree(z, sink);
		}
	} else if (strcmp(argv[1], "ws32") == 0) {
		for (int i = 0; i < 1024; i++)
			ws[i] = zalloc(z);
		for (long i = 0; i < n; i++) {
			zfree(z, ws[i & 1023]);
			ws[i & 1023] = sink = zalloc(z);
		}
		for (int i = 0; i < 1024; i++)
			zfree(z, ws[i]);
	} else {
		return 2;
	}
	return 0;
}
