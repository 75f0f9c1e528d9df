/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One-time initialisation of the whole library (the kernel's kmeminit plus
 * the SYSINITs of the allocators).
 *
 * It runs from a constructor, or earlier from the first allocation if some
 * other constructor (or the dynamic loader, through the malloc drop-in)
 * allocates first.  The sequence allocates nothing: options, size classes
 * and the global sizing come first; registrations that may call malloc
 * (pthread_atfork) run only after the library is marked ready, so a
 * recursive malloc from them takes the normal path.
 */
#include <sched.h>
#include <stdlib.h>

#include "internal.h"
#include "os/pageheap.h"

/* options.c: print the configuration in effect (SLABKIT_OPTIONS=verbose). */
void sk_options_report(void);

atomic_int sk_initialized;

void
sk_init_slow(void)
{
	int expect = 0;

	if (!atomic_compare_exchange_strong(&sk_initialized, &expect, 1)) {
		while (atomic_load_explicit(&sk_initialized,
			   memory_order_acquire) != 2)
			sched_yield();
		return;
	}
	sk_os_page_size();
	sk_options_init();
	sk_sizeclass_init();
	sk_ph_init();
	sk_kmalloc_init();
	sk_shard_init();
	sk_cpu_init();
	atomic_store_explicit(&sk_initialized, 2, memory_order_release);
	sk_shard_init_late();
	sk_cpu_init_late();
	if (sk_opt.verbose)
		sk_options_report();
}

__attribute__((constructor(101))) static void
sk_constructor(void)
{
	sk_init();
	/* Referencing statshm.c here also links it into static programs. */
	sk_statshm_start();
}

__attribute__((destructor)) static void
sk_destructor(void)
{
	if (sk_opt.stats)
		sk_stats_at_exit();
}
