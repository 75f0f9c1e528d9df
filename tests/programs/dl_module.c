/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small shared object for the drop-in's dlopen/dlclose test: it
 * allocates in its constructor, hands out and takes back blocks through
 * its functions, and frees everything in its destructor.  Loaded by
 * malloc_contract.c with dlopen, so its malloc calls bind to whatever
 * malloc the process uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *dl_module_hello(int n);
int dl_module_check(void);

static char *table[64];

__attribute__((constructor)) static void
dl_module_init(void)
{
	for (int i = 0; i < 64; i++) {
		table[i] = malloc((size_t)(16 + i * 40));
		if (table[i] != NULL)
			memset(table[i], i, (size_t)(16 + i * 40));
	}
}

__attribute__((destructor)) static void
dl_module_fini(void)
{
	for (int i = 0; i < 64; i++) {
		free(table[i]);
		table[i] = NULL;
	}
}

/* A malloc'd string the caller frees with free(). */
char *
dl_module_hello(int n)
{
	char *s = malloc(64);

	if (s != NULL)
		snprintf(s, 64, "hello %d from the module", n);
	return s;
}

/* 1 when the constructor's blocks are intact. */
int
dl_module_check(void)
{
	for (int i = 0; i < 64; i++) {
		if (table[i] == NULL)
			return 0;
		for (int j = 0; j < 16 + i * 40; j++)
			if ((unsigned char)table[i][j] != (unsigned char)i)
				return 0;
	}
	return 1;
}
