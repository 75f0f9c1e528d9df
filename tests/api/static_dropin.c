/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * api/static_dropin: a program linked with libslabkit-malloc.a (pkg-config
 * slabkit-malloc or slabkit::malloc, -static or not) must run on slabkit:
 * its malloc blocks show up in slabkit's "malloc" type, and free gives
 * them back there.  Prints "N passed, N failed".
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabkit/stats.h>

#define NBLOCKS 1000

static int passed, failed;

static void
check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

static int
find_malloc(
    struct malloc_type *type, const struct kmalloc_type_stats *st, void *arg)
{
	(void)type;
	if (strcmp(st->shortdesc, "malloc") == 0) {
		*(size_t *)arg = st->inuse;
		return 1; /* stop */
	}
	return 0;
}

static size_t
malloc_inuse(void)
{
	size_t inuse = (size_t)-1;

	kmalloc_type_foreach(find_malloc, &inuse);
	return inuse;
}

int
main(void)
{
	static void *blocks[NBLOCKS];
	size_t before, during, after;

	before = malloc_inuse();
	check(before != (size_t)-1, "slabkit's malloc type exists");
	for (int i = 0; i < NBLOCKS; i++) {
		blocks[i] = malloc(24 + (size_t)i % 200);
		if (blocks[i] != NULL)
			memset(blocks[i], 0x5a, 24);
	}
	during = malloc_inuse();
	check(during != (size_t)-1 && during >= before + NBLOCKS,
	    "malloc'd blocks are counted by slabkit");
	check(malloc_usable_size(blocks[0]) >= 24, "malloc_usable_size");
	for (int i = 0; i < NBLOCKS; i++)
		free(blocks[i]);
	after = malloc_inuse();
	check(after != (size_t)-1 && after + NBLOCKS <= during,
	    "free gives them back to slabkit");
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
