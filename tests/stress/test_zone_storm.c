/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zone stress: threads storm a normal zone (per-shard caches, refills,
 * growth, cross-thread frees) and an interrupt zone (lock-free list,
 * growth to its limit) in waves, so exiting threads hand their caches back
 * and new threads adopt their shards.  Every item carries a claim word
 * (beyond the zone's two scratch words) that its holder sets with an
 * atomic exchange: an item handed out twice at once is caught at once.
 * At the end every item must be free exactly once: the free lists are
 * walked, counted and checked for duplicates.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <slabkit/zone.h>

#include "harness.h"
#include "internal.h"

#define NTHREADS 4
#define NWAVES   3
#define BATCH    96
#define INTR_MAX 40

struct sitem {
	void *scratch[2];
	_Atomic long claim; /* holder's token; 0 while free */
	long seq;
	char pad[32];
};

struct mailbox {
	pthread_mutex_t mtx;
	struct sitem *slot[64];
	int n;
};

static vm_zone_t zn, zi;
static struct mailbox boxes[NTHREADS];
static atomic_long allocs, frees, dups, bad, intr_nulls, handoffs;

static void
claim(struct sitem *it, long token)
{
	long expect = 0;

	if (!atomic_compare_exchange_strong(&it->claim, &expect, token))
		atomic_fetch_add(&dups, 1);
	it->seq = token;
}

static void
release(vm_zone_t z, struct sitem *it, long token)
{
	long expect = token;

	if (it->seq != token)
		atomic_fetch_add(&bad, 1);
	if (!atomic_compare_exchange_strong(&it->claim, &expect, 0))
		atomic_fetch_add(&bad, 1);
	zfree(z, it);
	atomic_fetch_add(&frees, 1);
}

/* Items passed between threads are freed by the receiver. */
static void
post(int to, struct sitem *it)
{
	struct mailbox *b = &boxes[to];

	pthread_mutex_lock(&b->mtx);
	if (b->n < 64) {
		b->slot[b->n++] = it;
		it = NULL;
	}
	pthread_mutex_unlock(&b->mtx);
	if (it != NULL)
		release(zn, it, it->seq);
	else
		atomic_fetch_add(&handoffs, 1);
}

static void
drain(int me)
{
	struct mailbox *b = &boxes[me];
	struct sitem *v[64];
	int n;

	pthread_mutex_lock(&b->mtx);
	n = b->n;
	memcpy(v, b->slot, sizeof(v[0]) * (size_t)n);
	b->n = 0;
	pthread_mutex_unlock(&b->mtx);
	for (int i = 0; i < n; i++)
		release(zn, v[i], v[i]->seq);
}

static void *
storm(void *arg)
{
	long id = (long)arg, seq = 0;
	int me = (int)(id % NTHREADS);
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	struct sitem *held[BATCH] = {0}, *ih[BATCH] = {0};
	long rounds = sk_t_scale(300000);

	for (long r = 0; r < rounds; r++) {
		int k = (int)(sk_t_rand(&rng) % BATCH);
		long token = (id << 40) | ++seq;

		if (held[k] != NULL) {
			if (sk_t_rand(&rng) % 4 == 0)
				post((me + 1) % NTHREADS, held[k]);
			else
				release(zn, held[k], held[k]->seq);
			held[k] = NULL;
		} else {
			held[k] = zalloc(zn);
			if (held[k] == NULL) {
				atomic_fetch_add(&bad, 1);
			} else {
				claim(held[k], token);
				atomic_fetch_add(&allocs, 1);
			}
		}
		k = (int)(sk_t_rand(&rng) % BATCH);
		if (ih[k] != NULL) {
			release(zi, ih[k], ih[k]->seq);
			ih[k] = NULL;
		} else if ((ih[k] = zalloc(zi)) != NULL) {
			claim(ih[k], token);
			atomic_fetch_add(&allocs, 1);
		} else {
			atomic_fetch_add(&intr_nulls, 1);
		}
		if (r % 64 == 0)
			drain(me);
	}
	for (int k = 0; k < BATCH; k++) {
		if (held[k] != NULL)
			release(zn, held[k], held[k]->seq);
		if (ih[k] != NULL)
			release(zi, ih[k], ih[k]->seq);
	}
	return NULL;
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Walk the global list of a normal zone and the calling thread's cache
 * (the only live one): every item once, none lost.
 */
static void
check_normal_free_lists(vm_zone_t z)
{
	long n = 0, total = z->ztotal;
	uintptr_t *v = calloc((size_t)total + 1, sizeof(*v));
	struct vm_zpcpu *pc = &z->zpcpu[sk_shard_get()->slot];
	int dup = 0;

	for (void **it = z->zitems; it != NULL && n <= total; it = it[0])
		v[n++] = (uintptr_t)it;
	CHECK_EQ(n, z->zfreecnt);
	for (void **it = pc->zitems; it != NULL && n <= total; it = it[0])
		v[n++] = (uintptr_t)it;
	CHECK_EQ(n, z->zfreecnt + pc->zfreecnt);
	CHECK_EQ(n, total);
	qsort(v, (size_t)n, sizeof(*v), cmp_ptr);
	for (long i = 1; i < n; i++)
		dup |= v[i] == v[i - 1];
	CHECK(!dup);
	free(v);
}

TEST(zone_storm)
{
	struct vm_zone_stats st;
	struct sitem *v[INTR_MAX + 1];
	long n = 0;

	zn = zinit("storm", sizeof(struct sitem), 0, ZONE_DESTROYABLE);
	zi = zinit("stormintr", sizeof(struct sitem), INTR_MAX,
	    ZONE_INTERRUPT | ZONE_DESTROYABLE);
	CHECK(zn != NULL && zi != NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_mutex_init(&boxes[i].mtx, NULL);
	for (int w = 0; w < NWAVES; w++) {
		pthread_t t[NTHREADS];

		for (long i = 0; i < NTHREADS; i++)
			pthread_create(
			    &t[i], NULL, storm, (void *)(w * NTHREADS + i + 1));
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < NTHREADS; i++)
			drain(i);
	}
	CHECK_EQ(atomic_load(&dups), 0);
	CHECK_EQ(atomic_load(&bad), 0);
	CHECK_EQ(atomic_load(&allocs), atomic_load(&frees));
	CHECK(atomic_load(&handoffs) > 0);
	CHECK(atomic_load(&intr_nulls) > 0); /* the limit was hit */
	printf("  %ld allocations, %ld handed to another thread, "
	       "%ld interrupt-zone NULLs\n",
	    atomic_load(&allocs), atomic_load(&handoffs),
	    atomic_load(&intr_nulls));

	/*
	 * Every storm thread has exited and handed its cache back: only this
	 * thread's cache (the mailbox drains above) may hold items.
	 */
	slabkit_zone_stats(zn, &st);
	CHECK_EQ(st.cached, zn->zpcpu[sk_shard_get()->slot].zfreecnt);
	CHECK_EQ(st.used, 0);
	CHECK_EQ(st.free, st.total);
	check_normal_free_lists(zn);

	slabkit_zone_stats(zi, &st);
	CHECK_EQ(st.used, 0);
	CHECK(st.total <= INTR_MAX);
	/* every interrupt item is reachable: the zone fills to its limit */
	while (n <= INTR_MAX && (v[n] = zalloc(zi)) != NULL) {
		CHECK_EQ(atomic_load(&v[n]->claim), 0);
		n++;
	}
	CHECK_EQ(n, INTR_MAX);
	qsort(v, (size_t)n, sizeof(v[0]), cmp_ptr);
	for (long i = 1; i < n; i++)
		CHECK(v[i] != v[i - 1]);
	for (long i = 0; i < n; i++)
		zfree(zi, v[i]);
	zdestroy(zn);
	zdestroy(zi);
}

int
main(void)
{
	RUN(zone_storm);
	return sk_t_done();
}
