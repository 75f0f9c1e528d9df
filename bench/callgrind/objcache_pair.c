/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * objcache_pair: the instruction-count loop of malloc_pair.c for
 * objcache_get/objcache_put on a malloc-backed cache of 32-byte objects
 * (the loaded-magazine fast path).  Same method: two callgrind runs.
 * Modes: fixed32 (get, put), ws32 (1024 objects out, oldest put back).
 * Usage: objcache_pair MODE N
 */
#include <stdlib.h>
#include <string.h>

#include <slabkit/kmalloc.h>
#include <slabkit/objcache.h>

MALLOC_DEFINE(M_PAIR, "pair", "objcache_pair objects");

static void *volatile sink;

int
main(int argc, char **argv)
{
	static void *ws[1024];
	struct objcache *oc;
	long n;

	if (argc < 3)
		return 2;
	n = atol(argv[2]);
	oc = objcache_create_simple(M_PAIR, 32);
	if (strcmp(argv[1], "fixed32") == 0) {
		for (long i = 0; i < n; i++) {
			sink = objcache_get(oc, M_WAITOK);
			objcache_put(oc, sink);
		}
	} else if (strcmp(argv[1], "ws32") == 0) {
		for (int i = 0; i < 1024; i++)
			ws[i] = objcache_get(oc, M_WAITOK);
		for (long i = 0; i < n; i++) {
			objcache_put(oc, ws[i & 1023]);
			ws[i & 1023] = sink = objcache_get(oc, M_WAITOK);
		}
		for (int i = 0; i < 1024; i++)
			objcache_put(oc, ws[i]);
	} else {
		return 2;
	}
	return 0;
}
