/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc_obj stress: waves of short-lived threads allocate objects of
 * three kmalloc_obj types, stamp each with a pattern derived from a
 * per-object seed, and swap objects through a shared array of slots, so
 * that most frees happen on a thread other than the allocating one
 * (lock-free ring frees into slabs that other threads hold as active or
 * alternate, or that exited threads handed back to the global lists).  The
 * poller thread runs fast (100 passes a second, retiring one slab each),
 * so slabs are sorted, retired into free-slab caches and reused by other
 * types while the run goes on.  Every object's pattern is checked when it
 * is freed.  At the end every slot is drained, every type must show
 * inuse == 0 and memuse == 0, and destroying the types must report no
 * slab as still holding objects.
 *
 * SK_TEST_SCALE=N (percent) shortens the run for valgrind; TSan builds
 * run a tenth of it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <slabkit/control.h>
#include <slabkit/stats.h>

#include "harness.h"
#include "internal.h"
#include "kmalloc_obj.h"

#define NSLOTS 2048
#define NTYPES 3

static const size_t obj_sizes[NTYPES] = {64, 200, 1000};
static struct malloc_type *types[NTYPES];

struct obj {
	uint64_t seed;
	int ti; /* index into types[] */
};

static struct obj *_Atomic slots[NSLOTS];
static atomic_long bad_objs, total_ops;
static long ops_per_thread;

static unsigned char
pattern_byte(uint64_t seed, size_t i)
{
	return (unsigned char)((seed >> ((i & 7) * 8)) ^ (i * 131));
}

static void
stamp(struct obj *o)
{
	unsigned char *p = (unsigned char *)o;

	for (size_t i = sizeof(*o); i < types[o->ti]->ks_objsize; i++)
		p[i] = pattern_byte(o->seed, i);
}

static void
verify_and_free(struct obj *o)
{
	unsigned char *p = (unsigned char *)o;

	for (size_t i = sizeof(*o); i < types[o->ti]->ks_objsize; i++) {
		if (p[i] != pattern_byte(o->seed, i)) {
			atomic_fetch_add(&bad_objs, 1);
			break;
		}
	}
	kfree_obj(o, types[o->ti]);
}

static void *
worker(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;

	for (long n = 0; n < ops_per_thread; n++) {
		uint64_t r = sk_t_rand(&rng);
		size_t slot = r % NSLOTS;
		int ti = (int)((r >> 20) % NTYPES);
		struct obj *o, *old;

		if ((r >> 40) % 4 == 0) {
			/* a burst that stays on this thread */
			struct obj *local[32];

			for (int i = 0; i < 32; i++) {
				local[i] = kmalloc_obj(
				    obj_sizes[ti], types[ti], M_WAITOK);
				local[i]->seed = sk_t_rand(&rng);
				local[i]->ti = ti;
				stamp(local[i]);
			}
			for (int i = 31; i >= 0; i--)
				verify_and_free(local[i]);
			continue;
		}
		o = kmalloc_obj(obj_sizes[ti], types[ti], M_WAITOK);
		o->seed = sk_t_rand(&rng);
		o->ti = ti;
		stamp(o);
		old = atomic_exchange(&slots[slot], o);
		if (old != NULL)
			verify_and_free(old);
	}
	atomic_fetch_add(&total_ops, ops_per_thread);
	return NULL;
}

TEST(waves_of_threads_with_remote_frees)
{
	int waves = (int)sk_t_scale(40), per_wave = 8;
	struct kmalloc_type_stats st;
	struct sk_kobj_view v;
	size_t retired = 0;

	ops_per_thread = sk_t_scale(4000);
#if defined(SLABKIT_TSAN)
	/* TSan runs every access through its shadow: a tenth of the work */
	waves /= 4;
	ops_per_thread /= 3;
#endif
	if (waves < 2)
		waves = 2;
	if (ops_per_thread < 200)
		ops_per_thread = 200;
	for (int w = 0; w < waves; w++) {
		pthread_t td[8];

		for (int i = 0; i < per_wave; i++)
			pthread_create(&td[i], NULL, worker,
			    (void *)(uintptr_t)(w * per_wave + i + 1));
		for (int i = 0; i < per_wave; i++)
			pthread_join(td[i], NULL);
	}
	for (int i = 0; i < NSLOTS; i++) {
		struct obj *o = atomic_exchange(&slots[i], NULL);

		if (o != NULL)
			verify_and_free(o);
	}
	CHECK_EQ(atomic_load(&bad_objs), 0);
	CHECK_EQ(
	    atomic_load(&total_ops), (long)waves * per_wave * ops_per_thread);
	for (int ti = 0; ti < NTYPES; ti++) {
		kmalloc_type_stats(types[ti], &st);
		CHECK_EQ(st.inuse, 0);
		CHECK_EQ(st.memuse, 0);
		sk_kobj_view(types[ti], &v);
		/* every object of every slab the type holds is free */
		CHECK_EQ(v.free_objs, v.nslabs * v.slab_count);
		retired += v.retired;
	}
	/* the poller ran: with thousands of objects freed, slabs retire */
	for (int i = 0; i < 20 && retired == 0; i++)
		retired += (size_t)slabkit_kmalloc_obj_poll();
	CHECK(retired > 0);
}

int
main(void)
{
	slabkit_set_option("kzone_pollfreq", "100");
	slabkit_set_option("kzone_bretire", "1");
	for (int i = 0; i < NTYPES; i++) {
		static const char *names[NTYPES] = {
		    "objstress64", "objstress200", "objstress1000"};

		kmalloc_create_obj(&types[i], names[i], obj_sizes[i]);
	}
	RUN(waves_of_threads_with_remote_frees);
	for (int i = 0; i < NTYPES; i++)
		kmalloc_destroy_obj(&types[i]);
	return sk_t_done();
}
