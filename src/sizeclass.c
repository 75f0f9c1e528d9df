/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The size-class tables behind sizeclass.h, built once from the ladder so
 * that the table and the kernel's formulas can never disagree.
 */
#include "internal.h"

uint16_t sk_class_size[SK_NZONES];
uint16_t sk_class_align[SK_NZONES];
uint8_t sk_small_class[SK_SMALL_TABLE_MAX / 8 + 1];

void
sk_sizeclass_init(void)
{
	for (size_t n = 1; n < SK_ZONE_LIMIT; n++) {
		size_t bytes = n, align;
		int zi = sk_zoneindex_ladder(&bytes, &align);

		sk_class_size[zi] = (uint16_t)bytes;
		sk_class_align[zi] = (uint16_t)align;
	}
	for (size_t i = 0; i <= SK_SMALL_TABLE_MAX / 8; i++) {
		size_t bytes = i == 0 ? 1 : i * 8, align;

		sk_small_class[i] = (uint8_t)sk_zoneindex_ladder(&bytes, &align);
	}
}
