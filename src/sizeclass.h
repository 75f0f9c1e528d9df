/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmalloc size classes: DragonFly's zoneindex() ladder (spec 1.5).
 *
 *   request n      granularity  chunk sizes          index (after rounding)
 *   0 .. 127       8            8, 16, ... 128       n/8 - 1      0 .. 15
 *   128 .. 255     16           144 ... 256          n/16 + 7     15 .. 23
 *   256 .. 511     32           288 ... 512          n/32 + 15    23 .. 31
 *   512 .. 1023    64           576 ... 1024         n/64 + 23    31 .. 39
 *   1024 .. 2047   128          1152 ... 2048        n/128 + 31   39 .. 47
 *   2048 .. 4095   256          2304 ... 4096        n/256 + 39   47 .. 55
 *   4096 .. 8191   512          4608 ... 8192        n/512 + 47   55 .. 63
 *   8192 .. 16383  1024         9216 ... 16384       n/1024 + 55  63 .. 71
 *
 * Boundary sizes (128, 256, ...) land in the same class from both rows,
 * which is why there are 72 classes and not 80.  A power-of-two chunk is
 * aligned to its own size (the zone's chunk base is rounded to it); any
 * other chunk to its granularity.
 *
 * Sizes up to 1024 bytes are mapped through a table (one load instead of a
 * ladder of compares: mixed sizes cost the same as one size); the table is
 * built from the ladder and a unit test checks them against each other
 * for every n.
 */
#ifndef SK_SIZECLASS_H
#define SK_SIZECLASS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define SK_NZONES	72	/* NZONES */
#define SK_ZONE_LIMIT	(16 * 1024) /* ZALLOC_ZONE_LIMIT */
#define SK_SMALL_TABLE_MAX 1024

static_assert(SK_ZONE_LIMIT == 16384, "NZONES assumes a 16 KiB zone limit");

/* The ladder itself: rounds *bytes up, sets *align, returns the index. */
static inline int
sk_zoneindex_ladder(size_t *bytes, size_t *align)
{
	size_t n = *bytes;

	if (n < 128) {
		*bytes = n = (n + 7) & ~(size_t)7;
		*align = 8;
		return (int)(n / 8 - 1);
	}
	if (n < 256) {
		*bytes = n = (n + 15) & ~(size_t)15;
		*align = 16;
		return (int)(n / 16 + 7);
	}
	if (n < 8192) {
		if (n < 512) {
			*bytes = n = (n + 31) & ~(size_t)31;
			*align = 32;
			return (int)(n / 32 + 15);
		}
		if (n < 1024) {
			*bytes = n = (n + 63) & ~(size_t)63;
			*align = 64;
			return (int)(n / 64 + 23);
		}
		if (n < 2048) {
			*bytes = n = (n + 127) & ~(size_t)127;
			*align = 128;
			return (int)(n / 128 + 31);
		}
		if (n < 4096) {
			*bytes = n = (n + 255) & ~(size_t)255;
			*align = 256;
			return (int)(n / 256 + 39);
		}
		*bytes = n = (n + 511) & ~(size_t)511;
		*align = 512;
		return (int)(n / 512 + 47);
	}
	if (n < 16384) {
		*bytes = n = (n + 1023) & ~(size_t)1023;
		*align = 1024;
		return (int)(n / 1024 + 55);
	}
	return -1; /* "Unexpected byte count": the caller panics */
}

/* Chunk size and granularity of every class (filled by sk_sizeclass_init). */
extern uint16_t sk_class_size[SK_NZONES];
extern uint16_t sk_class_align[SK_NZONES];
/* Class of every n <= 1024, indexed by (n + 7) / 8. */
extern uint8_t sk_small_class[SK_SMALL_TABLE_MAX / 8 + 1];

void sk_sizeclass_init(void);

/* zoneindex() with the table fast path; same results as the ladder. */
static inline int
sk_zoneindex(size_t *bytes, size_t *align)
{
	if (*bytes <= SK_SMALL_TABLE_MAX) {
		int zi = sk_small_class[(*bytes + 7) >> 3];

		*bytes = sk_class_size[zi];
		*align = sk_class_align[zi];
		return zi;
	}
	return sk_zoneindex_ladder(bytes, align);
}

#endif /* SK_SIZECLASS_H */
