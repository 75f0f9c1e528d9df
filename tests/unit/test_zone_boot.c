/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zone, checklist row 68: zbootinit works from a caller's static array
 * before anything else in slabkit has run.  A constructor of the same
 * priority as the library's, earlier in link order, makes a boot zone and
 * uses it while the library is still uninitialised; main then checks that
 * nothing was mapped (the os layer counts every map), that the library had
 * not been initialised by it, and that a later zinitna lets it grow.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <slabkit/zone.h>

#include "harness.h"
#include "internal.h"

#define NBOOT 16

struct bitem {
	void *scratch[2]; /* the zone's two words */
	long id;
	long payload;
};

static struct vm_zone bootz;
static struct bitem boot_items[NBOOT];

static struct {
	int init_before, init_after;
	long maps_before, maps_after;
	int all_zero, all_in_array, extra_null, lifo, last_first;
	struct bitem *got[NBOOT];
#if !defined(SLABKIT_ASAN) && !defined(SLABKIT_TSAN)
	struct mallinfo2 mi_before, mi_after;
#endif
} early;

__attribute__((constructor(101))) static void
early_boot(void)
{
	struct bitem *again;

	early.init_before = atomic_load(&sk_initialized);
	early.maps_before = slabkit_fault_calls(SLABKIT_FAULT_MAP);
#if !defined(SLABKIT_ASAN) && !defined(SLABKIT_TSAN)
	early.mi_before = mallinfo2();
#endif
	memset(boot_items, 0x77, sizeof(boot_items));
	zbootinit(&bootz, "earlyboot", sizeof(struct bitem), boot_items, NBOOT);
	early.all_zero = 1;
	early.all_in_array = 1;
	for (int i = 0; i < NBOOT; i++) {
		struct bitem *b = zalloc(&bootz);

		early.got[i] = b;
		if (b < boot_items || b >= boot_items + NBOOT) {
			early.all_in_array = 0;
			continue;
		}
		if (b->scratch[0] || b->scratch[1] || b->id || b->payload)
			early.all_zero = 0;
		b->id = i;
		b->payload = 1000 + i;
	}
	/* the kernel threads the array so that the last item comes first */
	early.last_first = 1;
	for (int i = 0; i < NBOOT; i++)
		if (early.got[i] != &boot_items[NBOOT - 1 - i])
			early.last_first = 0;
	early.extra_null = zalloc(&bootz) == NULL;
	zfree(&bootz, early.got[5]);
	again = zalloc(&bootz);
	early.lifo = again == early.got[5] && again->payload == 1005;
#if !defined(SLABKIT_ASAN) && !defined(SLABKIT_TSAN)
	early.mi_after = mallinfo2();
#endif
	early.maps_after = slabkit_fault_calls(SLABKIT_FAULT_MAP);
	early.init_after = atomic_load(&sk_initialized);
}

TEST(boot_zone_before_library_init)
{
	/* The constructor really ran before slabkit initialised itself... */
	CHECK_EQ(early.init_before, 0);
	/* ...and the boot zone did not initialise it either. */
	CHECK_EQ(early.init_after, 0);
	/* No mapping: the os layer counts every map and reserve. */
	CHECK_EQ(early.maps_after, early.maps_before);
	CHECK_EQ(early.maps_before, 0);
#if !defined(SLABKIT_ASAN) && !defined(SLABKIT_TSAN)
	/* No malloc: the heap did not change. */
	CHECK_EQ(early.mi_after.arena, early.mi_before.arena);
	CHECK_EQ(early.mi_after.uordblks, early.mi_before.uordblks);
	CHECK_EQ(early.mi_after.hblks, early.mi_before.hblks);
#endif
	CHECK(early.all_in_array);
	CHECK(early.all_zero);   /* zeroed by zbootinit, first use */
	CHECK(early.extra_null); /* count/limit = nitems */
	CHECK(early.lifo);
	CHECK(early.last_first);
	CHECK_EQ(bootz.zmax, NBOOT);
	CHECK_EQ(bootz.ztotal, NBOOT);
	CHECK_EQ(bootz.zsize, (long)sizeof(struct bitem)); /* not rounded */
	CHECK_EQ(bootz.zfreemin, 0);
	CHECK_EQ(bootz.zflags, ZONE_BOOT);
	for (int i = 0; i < NBOOT; i++)
		CHECK_EQ(early.got[i]->id, i);
}

TEST(boot_zone_grows_after_zinitna)
{
	struct vm_zone_stats st;
	long n = 0;

	CHECK(zalloc(&bootz) == NULL); /* still bounded */
	CHECK_EQ(zinitna(&bootz, "ignored", 64, 0, 0), 1);
	CHECK_EQ(bootz.zmax, 0);
	CHECK_EQ(bootz.zsize, (long)sizeof(struct bitem));
	/* the items handed out before zinitna are still valid and ours */
	for (int i = 0; i < NBOOT; i++)
		CHECK_EQ(early.got[i]->payload, 1000 + i);
	for (n = 0; n < 1000; n++) {
		struct bitem *b = zalloc(&bootz);

		CHECK(b != NULL);
		if (b == NULL)
			break;
		CHECK(b < boot_items || b >= boot_items + NBOOT);
		b->id = -1;
	}
	slabkit_zone_stats(&bootz, &st);
	CHECK(st.total > NBOOT);
	CHECK_EQ(st.used, NBOOT + 1000);
	/* boot items freed now go through the normal (cached) path */
	for (int i = 0; i < NBOOT; i++)
		zfree(&bootz, early.got[i]);
	slabkit_zone_stats(&bootz, &st);
	CHECK_EQ(st.used, 1000);
}

int
main(void)
{
	RUN(boot_zone_before_library_init);
	RUN(boot_zone_grows_after_zinitna);
	return sk_t_done();
}
