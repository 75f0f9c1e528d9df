/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Row 41: SLAB_DEBUG call sites.  With SLAB_DEBUG defined, kmalloc and
 * friends record __FILE__/__LINE__ in the zone of each chunk; a zone keeps
 * up to 32 distinct sites.  In builds without SLABKIT_SLAB_DEBUG the
 * recording is compiled out and slabkit_kmalloc_sites() says so (-1).
 */
#define SLAB_DEBUG 1
#include "harness.h"
#include "internal.h"

MALLOC_DEFINE(M_SITES, "sites", "SLAB_DEBUG test");

TEST(call_sites)
{
	struct slabkit_alloc_site sites[40];
	void *p[50];
	int n, line_a, line_b;

	(void)line_a;
	(void)line_b;

	line_a = __LINE__ + 1;
	p[0] = kmalloc(2500, M_SITES, M_WAITOK);
	line_b = __LINE__ + 1;
	p[1] = kmalloc(2500, M_SITES, M_WAITOK);
	p[2] = kmalloc(2500, M_SITES, M_WAITOK);
	n = slabkit_kmalloc_sites(p[0], sites, 40);
#ifdef SLABKIT_SLAB_DEBUG
	CHECK(n >= 3);
	{
		int found_a = 0, found_b = 0;

		for (int i = 0; i < n && i < 40; i++) {
			CHECK(sites[i].file != NULL &&
			    strstr(sites[i].file, "test_slab_debug.c") != NULL);
			if (sites[i].line == line_a && sites[i].count == 1)
				found_a = 1;
			if (sites[i].line == line_b && sites[i].count == 1)
				found_b = 1;
		}
		CHECK(found_a && found_b);
	}
	/* a loop at one line counts, not adds, sites */
	for (int i = 3; i < 50; i++)
		p[i] = kmalloc(2500, M_SITES, M_WAITOK);
	n = slabkit_kmalloc_sites(p[0], sites, 40);
	CHECK(n <= 32);
#else
	printf("  (library built without SLABKIT_SLAB_DEBUG: sites off)\n");
	CHECK_EQ(n, -1);
	for (int i = 3; i < 50; i++)
		p[i] = kmalloc(2500, M_SITES, M_WAITOK);
#endif
	for (int i = 0; i < 50; i++)
		kfree(p[i], M_SITES);
	{
		char *s = kstrdup("x", M_SITES);

		CHECK_STR_EQ(s, "x");
		kfree(s, M_SITES);
	}
}

int
main(void)
{
	RUN(call_sites);
	return sk_t_done();
}
