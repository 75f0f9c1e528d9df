/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Misuse: cross-thread double free.  The main thread allocates, a second
 * thread frees the block (a remote free onto the zone's atomic list), then
 * the owner frees it again.  Expected: abort, "slabkit: free: ... already
 * free ... (ptr 0x...)" (the zone's remote bitmap has the chunk).
 */
#include <pthread.h>

#include "misuse.h"

static void *
remote_free(void *arg)
{
	free(arg);
	return NULL;
}

int
main(void)
{
	char *p = sk_m_hide(malloc(64));
	pthread_t t;

	if (pthread_create(&t, NULL, remote_free, p) != 0 ||
	    pthread_join(t, NULL) != 0)
		return 2;
	SK_M_ARMED();
	free(sk_m_hide(p));
	SK_M_SURVIVED();
	sk_m_overlap_check(64);
	return 0;
}
