/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page-tag table: the userspace stand-in for the kernel's per-page
 * ku_pagecnt (spec 1.6, "Large-allocation tracking").
 *
 * Each 4 KiB page of the 47-bit user address space has a 32-bit tag:
 * > 0 on the first page of a large block (its page count), < 0 on the first
 * page of a kmalloc zone (-(owner shard + 1)), 0 elsewhere.  kfree() and
 * free() read it to tell large blocks from zone chunks, and to recognise a
 * pointer slabkit never handed out without touching the pointed-to memory.
 *
 * Layout: a static root of 2^18 leaf pointers (2 MiB of bss, touched only
 * where used) over leaves of 2^18 tags (1 MiB each, mapped on demand and
 * never freed, so a reader can never see a leaf vanish).  Reads are two
 * dependent loads and no lock; a leaf is installed with a CAS.
 */
#include "internal.h"

#define PM_ADDR_BITS	SK_PM_ADDR_BITS
#define PM_LEAF_BITS	SK_PM_LEAF_BITS

int32_t *sk_pm_root[(size_t)1 << SK_PM_ROOT_BITS];
unsigned sk_pm_shift = 12;

static inline size_t
pm_page_index(uintptr_t addr)
{
	return addr >> sk_pm_shift;
}

int
sk_pagemap_set_slow(uintptr_t addr, int32_t tag)
{
	size_t idx, top;
	int32_t *leaf, *fresh, *expect;
	int why;

	if (addr >> PM_ADDR_BITS)
		return -1;
	idx = pm_page_index(addr);
	top = (idx >> PM_LEAF_BITS) & (((size_t)1 << SK_PM_ROOT_BITS) - 1);
	leaf = SK_LOAD_ACQ(&sk_pm_root[top]);
	if (leaf == NULL) {
		if (tag == 0)
			return 0;
		/* Not subject to fault injection: a tag table that fails
		 * only under injection would test nothing real. */
		fresh = sk_os_map_untracked(sizeof(int32_t) << PM_LEAF_BITS,
		    &why);
		if (fresh == NULL)
			return -1;
		expect = NULL;
		if (__atomic_compare_exchange_n(&sk_pm_root[top], &expect, fresh,
			false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			leaf = fresh;
		} else {
			sk_os_unmap(fresh, sizeof(int32_t) << PM_LEAF_BITS);
			leaf = expect;
		}
	}
	SK_STORE_REL(&leaf[idx & (((size_t)1 << PM_LEAF_BITS) - 1)], tag);
	return 0;
}
