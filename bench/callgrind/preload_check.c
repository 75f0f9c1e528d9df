/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * preload_check: prints the object that provides malloc in this process
 * (dladdr on dlsym(RTLD_DEFAULT, "malloc")), the usual way to confirm
 * that an LD_PRELOAD allocator really took.  bench/run.sh runs it under
 * each allocator before measuring anything.  It also allocates and frees
 * once, so a preload that crashes at first use is found here.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int
main(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	void *volatile p = malloc(100);

	free(p);
	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) {
		puts("unknown");
		return 1;
	}
	puts(info.dli_fname);
	return 0;
}
