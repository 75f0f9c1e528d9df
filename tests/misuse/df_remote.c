/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: double free entirely on a thread that does not own the block:
 * the main thread allocates, a second thread frees it twice (two remote
 * frees).  Expected: abort on the second, "slabkit: free: ... already
 * free ... (ptr 0x...)".
 */
#include <pthread.h>

#include "misuse.h"

static void *
remote_free_twice(void *arg)
{
	free(arg);
	SK_M_ARMED();
	free(sk_m_hide(arg));
	SK_M_SURVIVED();
	return NULL;
}

int
main(void)
{
	char *p = sk_m_hide(malloc(64));
	pthread_t t;

	if (pthread_create(&t, NULL, remote_free_twice, p) != 0 ||
	    pthread_join(t, NULL) != 0)
		return 2;
	sk_m_overlap_check(64);
	return 0;
}
