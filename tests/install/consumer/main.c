/* SPDX-License-Identifier: BSD-3-Clause */
/* A program built against an installed slabkit: uses the public headers
 * only, and exits 0 when a typed allocation round-trips. */
#include <string.h>

#include <slabkit/slabkit.h>

MALLOC_DEFINE(M_CONSUMER, "consumer", "install test");

int
main(void)
{
	struct kmalloc_type_stats st;
	char *s = kstrdup("installed", M_CONSUMER);

	if (s == NULL || strcmp(s, "installed") != 0)
		return 1;
	kfree(s, M_CONSUMER);
	if (kmalloc_type_stats(M_CONSUMER, &st) != 0 || st.inuse != 0 ||
	    st.calls != 1)
		return 2;
	return 0;
}
