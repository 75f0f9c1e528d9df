/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness: the input bytes are a program of operations over
 * the four allocators (kmalloc/kfree/krealloc with two types, sizes and
 * flags; objcache get/put; zalloc/zfree; mpipe alloc/free), run against
 * a table of live objects.  After every operation it checks:
 *  - a new object does not overlap any live one, and its usable size
 *    (kmalloc_usable_size, or the fixed object size) covers the request;
 *  - M_ZERO objects are zero, M_CACHEALIGN ones 64-byte aligned, every
 *    kmalloc result at least 8-byte aligned;
 *  - every live object still carries the pattern stamped when it was
 *    made (checked when it is freed or reallocated, and krealloc keeps
 *    the common prefix);
 *  - the statistics match the table: inuse and memuse of each kmalloc
 *    type, the objcache's objects in use, the zone's items in use, the
 *    pipe's outstanding buffers.
 * At the end of each input everything is freed and every count must be
 * back to zero, so inputs do not depend on each other.
 *
 * Input format: a sequence of records; the first byte picks the
 * operation, the following bytes its arguments (missing bytes read 0).
 * Built and run by run_fuzz.sh with clang -fsanitize=fuzzer,address.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>
#include <slabkit/mpipe.h>
#include <slabkit/objcache.h>
#include <slabkit/stats.h>
#include <slabkit/zone.h>

MALLOC_DEFINE(M_FZ_A, "fuzz_a", "fuzz type A");
MALLOC_DEFINE(M_FZ_B, "fuzz_b", "fuzz type B");
MALLOC_DEFINE(M_FZ_OC, "fuzz_oc", "fuzz objcache backing");
MALLOC_DEFINE(M_FZ_MP, "fuzz_mp", "fuzz mpipe buffers");

#define NLIVE		128
#define OC_SIZE		136
#define ZONE_ITEM	72
#define MP_BYTES	300
#define MP_NNOM		4
#define MP_NMAX		12

enum kind { K_FREE, K_KA, K_KB, K_OC, K_ZONE, K_MP };

struct obj {
	unsigned char *p;
	size_t	req;		/* requested size */
	size_t	usable;		/* bytes the object really has */
	uint8_t	kind;
	uint8_t	seed;
};

static struct obj live[NLIVE];
static struct objcache *oc;
static vm_zone_t zone;
static struct malloc_pipe mp;
static bool hardened; /* SLABKIT_OPTIONS=hardened: memuse >= the table */

struct input {
	const uint8_t *data;
	size_t	len;
	size_t	pos;
};

static uint8_t
byte(struct input *in)
{
	return in->pos < in->len ? in->data[in->pos++] : 0;
}

static void
fail(const char *what, const void *p)
{
	fprintf(stderr, "fuzz_ops: %s (ptr %p)\n", what, p);
	abort();
}

static struct malloc_type *
type_of(int kind)
{
	return kind == K_KA ? M_FZ_A : M_FZ_B;
}

/* The pattern covers the whole object, sparsely above 4 KiB. */
static size_t
step_of(size_t n)
{
	return n <= 4096 ? 1 : 251;
}

static unsigned char
pat(uint8_t seed, size_t i)
{
	return (unsigned char)(seed * 31 + i * 7 + (i >> 8));
}

static void
stamp(struct obj *o, size_t from)
{
	size_t step = step_of(o->req);

	for (size_t i = from; i < o->req; i += step)
		o->p[i] = pat(o->seed, i);
	if (o->req > 0)
		o->p[o->req - 1] = pat(o->seed, o->req - 1);
}

static void
verify(const struct obj *o, size_t upto)
{
	size_t step = step_of(o->req);

	for (size_t i = 0; i < upto; i += step)
		if (o->p[i] != pat(o->seed, i))
			fail("pattern of a live object changed", o->p);
	/* the last byte is stamped too (when not on the sparse walk) */
	if (upto == o->req && upto > 0 &&
	    o->p[upto - 1] != pat(o->seed, upto - 1))
		fail("last byte of a live object changed", o->p);
}

static void
no_overlap(const struct obj *o)
{
	if (o->usable == 0)
		return;
	for (int i = 0; i < NLIVE; i++) {
		const struct obj *q = &live[i];

		if (q == o || q->kind == K_FREE || q->usable == 0)
			continue;
		if (o->p < q->p + q->usable && q->p < o->p + o->usable)
			fail("two live objects overlap", o->p);
	}
}

static struct obj *
slot_free(void)
{
	for (int i = 0; i < NLIVE; i++)
		if (live[i].kind == K_FREE)
			return &live[i];
	return NULL;
}

/* The idx-th live object of the given kind (any kind if 0). */
static struct obj *
pick(uint8_t idx, int kind)
{
	int n = 0, k = 0;

	for (int i = 0; i < NLIVE; i++)
		if (live[i].kind != K_FREE &&
		    (kind == 0 || live[i].kind == kind ||
			(kind == K_KA && live[i].kind == K_KB)))
			n++;
	if (n == 0)
		return NULL;
	idx %= n;
	for (int i = 0; i < NLIVE; i++)
		if (live[i].kind != K_FREE &&
		    (kind == 0 || live[i].kind == kind ||
			(kind == K_KA && live[i].kind == K_KB)) &&
		    k++ == idx)
			return &live[i];
	return NULL;
}

static size_t
size_of(struct input *in)
{
	uint8_t sel = byte(in);
	size_t v = (size_t)byte(in) | (size_t)byte(in) << 8;

	switch (sel % 8) {
	case 0:
		return v % 17;		/* tiny, 0 included */
	case 1:
	case 2:
	case 3:
		return v % 257;
	case 4:
	case 5:
		return v % 8193;
	case 6:
		return 8192 + v % 16385;	/* around the zone limit */
	default:
		return v * 8 % (1 << 19);	/* large, up to 512 KiB */
	}
}

static void
kmalloc_op(struct input *in, int kind)
{
	static const int flagset[] = {M_WAITOK, M_NOWAIT, M_WAITOK | M_ZERO,
	    M_WAITOK | M_POWEROF2, M_WAITOK | M_CACHEALIGN,
	    M_NOWAIT | M_ZERO, M_INTWAIT};
	struct obj *o = slot_free();
	size_t size = size_of(in);
	int flags = flagset[byte(in) % (sizeof(flagset) / sizeof(int))];
	unsigned char *p;

	if (o == NULL)
		return;
	p = kmalloc(size, type_of(kind), flags);
	if (size == 0) {
		if (p != ZERO_LENGTH_PTR && !(flags & (M_POWEROF2 |
		    M_CACHEALIGN)))
			fail("kmalloc(0) is not ZERO_LENGTH_PTR", p);
		if (p == ZERO_LENGTH_PTR) {
			if (kmalloc_usable_size(p) != 0)
				fail("usable size of ZERO_LENGTH_PTR", p);
			kfree(p, type_of(kind));
			return;
		}
	}
	if (p == NULL) {
		if (!(flags & M_RNOWAIT))
			fail("M_WAITOK kmalloc returned NULL", p);
		return;
	}
	if ((uintptr_t)p % 8 != 0)
		fail("kmalloc result not 8-byte aligned", p);
	if ((flags & M_CACHEALIGN) && (uintptr_t)p % 64 != 0)
		fail("M_CACHEALIGN result not 64-byte aligned", p);
	o->p = p;
	o->req = size;
	o->usable = kmalloc_usable_size(p);
	o->kind = (uint8_t)kind;
	o->seed = byte(in);
	if (o->usable < size)
		fail("usable size below the request", p);
	if (flags & M_ZERO)
		for (size_t i = 0; i < o->usable; i += step_of(o->usable))
			if (p[i] != 0)
				fail("M_ZERO object not zero", p);
	no_overlap(o);
	stamp(o, 0);
}

static void
kfree_op(struct input *in)
{
	struct obj *o = pick(byte(in), K_KA);

	if (o == NULL)
		return;
	verify(o, o->req);
	kfree(o->p, type_of(o->kind));
	o->kind = K_FREE;
}

static void
krealloc_op(struct input *in)
{
	struct obj *o = pick(byte(in), K_KA);
	size_t size = size_of(in), keep;
	unsigned char *n;

	if (o == NULL)
		return;
	verify(o, o->req);
	n = krealloc(o->p, size, type_of(o->kind), M_WAITOK);
	if (size == 0) {
		if (n != NULL)
			fail("krealloc(p, 0) did not return NULL", n);
		o->kind = K_FREE;
		return;
	}
	if (n == NULL)
		fail("M_WAITOK krealloc returned NULL", o->p);
	keep = size < o->req ? size : o->req;
	o->p = n;
	verify(o, keep);
	o->req = size;
	o->usable = kmalloc_usable_size(n);
	if (o->usable < size)
		fail("usable size below the request after krealloc", n);
	no_overlap(o);
	stamp(o, 0);
}

static void
fixed_get(struct input *in, int kind)
{
	struct obj *o = slot_free();
	unsigned char *p;
	size_t size;

	if (o == NULL)
		return;
	switch (kind) {
	case K_OC:
		p = objcache_get(oc, (byte(in) & 1) ? M_WAITOK : M_NOWAIT);
		size = OC_SIZE;
		break;
	case K_ZONE:
		p = zalloc(zone);
		size = ZONE_ITEM;
		if (p == NULL)
			fail("zalloc of a normal zone returned NULL", p);
		break;
	default:
		p = mpipe_alloc_nowait(&mp);
		size = MP_BYTES;
		break;
	}
	if (p == NULL)
		return;
	o->p = p;
	o->req = size;
	o->usable = size;
	o->kind = (uint8_t)kind;
	o->seed = byte(in);
	no_overlap(o);
	stamp(o, 0);
}

static void
fixed_put(struct input *in, int kind)
{
	struct obj *o = pick(byte(in), kind);

	if (o == NULL)
		return;
	verify(o, o->req);
	if (kind == K_OC)
		objcache_put(oc, o->p);
	else if (kind == K_ZONE)
		zfree(zone, o->p);
	else
		mpipe_free(&mp, o->p);
	o->kind = K_FREE;
}

/* The statistics must describe the table exactly. */
static void
check_stats(void)
{
	size_t inuse[2] = {0, 0}, memuse[2] = {0, 0};
	long noc = 0, nzone = 0, nmp = 0;
	struct kmalloc_type_stats st;
	struct vm_zone_stats zs;
	struct malloc_pipe snap;

	for (int i = 0; i < NLIVE; i++) {
		switch (live[i].kind) {
		case K_KA:
		case K_KB:
			inuse[live[i].kind - K_KA]++;
			memuse[live[i].kind - K_KA] += live[i].usable;
			break;
		case K_OC:
			noc++;
			break;
		case K_ZONE:
			nzone++;
			break;
		case K_MP:
			nmp++;
			break;
		}
	}
	for (int t = 0; t < 2; t++) {
		kmalloc_type_stats(type_of(K_KA + t), &st);
		if (st.inuse != inuse[t])
			fail("kmalloc inuse differs from the live table", NULL);
		/* hardened: chunks in the quarantine are still counted */
		if (hardened ? st.memuse < memuse[t] : st.memuse != memuse[t])
			fail("kmalloc memuse differs from the live table",
			    NULL);
	}
	{
		struct objcache_stats ocs[64];
		int n = objcache_stats_snapshot(ocs, 64);
		bool seen = false;

		for (int i = 0; i < n && i < 64; i++) {
			if (strcmp(ocs[i].oc_name, "fuzz_oc") != 0)
				continue;
			seen = true;
			if ((long)ocs[i].oc_used != noc)
				fail("objcache used differs from the table",
				    NULL);
		}
		if (!seen)
			fail("the objcache is missing from the statistics",
			    NULL);
	}
	slabkit_zone_stats(zone, &zs);
	if (zs.used != nzone)
		fail("zone used differs from the live table", NULL);
	snap = mp;
	if (snap.total_count - snap.free_count != nmp)
		fail("mpipe outstanding differs from the live table", NULL);
}

static void
release_all(void)
{
	for (int i = 0; i < NLIVE; i++) {
		struct obj *o = &live[i];

		if (o->kind == K_FREE)
			continue;
		verify(o, o->req);
		switch (o->kind) {
		case K_KA:
		case K_KB:
			kfree(o->p, type_of(o->kind));
			break;
		case K_OC:
			objcache_put(oc, o->p);
			break;
		case K_ZONE:
			zfree(zone, o->p);
			break;
		default:
			mpipe_free(&mp, o->p);
			break;
		}
		o->kind = K_FREE;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct input in = {data, len, 0};

	if (oc == NULL) {
		char h[8] = "0";

		slabkit_get_option("hardened", h, sizeof(h));
		hardened = strcmp(h, "1") == 0;
		if (hardened)
			fprintf(stderr, "fuzz_ops: hardened mode: kmalloc "
			                "memuse may exceed the live table (the "
			                "quarantine)\n");
		oc = objcache_create_mbacked(M_FZ_OC, OC_SIZE, 0, 0, NULL,
		    NULL, NULL);
		zone = zinit("fuzz_zone", ZONE_ITEM, 0, 0);
		mpipe_init(&mp, M_FZ_MP, MP_BYTES, MP_NNOM, MP_NMAX, 0, NULL,
		    NULL, NULL);
		if (oc == NULL || zone == NULL)
			fail("set-up failed", NULL);
	}
	while (in.pos < in.len) {
		switch (byte(&in) % 12) {
		case 0:
		case 1:
			kmalloc_op(&in, K_KA);
			break;
		case 2:
			kmalloc_op(&in, K_KB);
			break;
		case 3:
		case 4:
			kfree_op(&in);
			break;
		case 5:
			krealloc_op(&in);
			break;
		case 6:
			fixed_get(&in, K_OC);
			break;
		case 7:
			fixed_put(&in, K_OC);
			break;
		case 8:
			fixed_get(&in, K_ZONE);
			break;
		case 9:
			fixed_put(&in, K_ZONE);
			break;
		case 10:
			fixed_get(&in, K_MP);
			break;
		default:
			if (byte(&in) & 1)
				fixed_put(&in, K_MP);
			else
				slab_cleanup();
			break;
		}
		check_stats();
	}
	release_all();
	check_stats();
	return 0;
}
