/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Large blocks under an address-space limit (RLIMIT_AS, `ulimit -v'):
 * the page-run heap reserves its segments 64 MiB at a time, and a limit
 * that leaves less room than that must still give a large block mapped
 * on its own, as glibc does.  The program sets its limit to what it maps
 * now plus 32 MiB, before any large block exists, then allocates, grows,
 * reads back and frees 100 blocks of 100,000 bytes (about 10 MiB).
 *
 * Run on the malloc drop-in (LD_PRELOAD); prints "N passed, N failed".
 * Not built with sanitizers, whose shadow memory an address-space limit
 * breaks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NBLOCKS 100
#define BLOCK   100000

int
main(void)
{
	static unsigned char *blk[NBLOCKS];
	unsigned long pages = 0;
	struct rlimit rl;
	int passed = 0, failed = 0, got = 0, good = 0;
	FILE *fp = fopen("/proc/self/statm", "r");

	if (fp == NULL || fscanf(fp, "%lu", &pages) != 1) {
		fprintf(stderr, "as_limit: cannot read /proc/self/statm\n");
		return 1;
	}
	fclose(fp);
	rl.rlim_cur = rl.rlim_max =
	    pages * (unsigned long)sysconf(_SC_PAGESIZE) + (32ul << 20);
	if (setrlimit(RLIMIT_AS, &rl) != 0) {
		fprintf(stderr, "as_limit: setrlimit: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < NBLOCKS; i++) {
		blk[i] = malloc(BLOCK);
		if (blk[i] != NULL) {
			memset(blk[i], i, BLOCK);
			got++;
		}
	}
	/* grow one block: moved or in place, its bytes come along */
	if (blk[0] != NULL) {
		unsigned char *q = realloc(blk[0], 3 * BLOCK);

		if (q != NULL) {
			blk[0] = q;
			memset(q + BLOCK, 0xee, 2 * BLOCK);
		}
	}
	for (int i = 0; i < NBLOCKS; i++) {
		if (blk[i] != NULL && blk[i][0] == (unsigned char)i &&
		    blk[i][BLOCK - 1] == (unsigned char)i)
			good++;
		free(blk[i]);
	}
	if (got == NBLOCKS)
		passed++;
	else {
		failed++;
		fprintf(stderr, "FAIL %d of %d large blocks under the limit\n",
		    got, NBLOCKS);
	}
	if (good == NBLOCKS)
		passed++;
	else {
		failed++;
		fprintf(stderr, "FAIL %d of %d blocks kept their bytes\n", good,
		    NBLOCKS);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
