/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Predefined malloc types beyond the three kmalloc.c defines, and
 * malloc_reinit_ncpus.
 *
 * DragonFly's sys/malloc.h declares M_CACHE, M_DEVBUF, M_TEMP, M_IP6OPT,
 * M_IP6NDP and M_IOV, and kern_slaballoc.c also defines M_DRM (the DRM
 * drivers declare it themselves).  kmalloc.c keeps the first three; the
 * others live here with the kernel's short names: "m_drm", "ip6opt",
 * "ip6ndp" and "iov" (the kernel defines M_IOV beside its system calls).
 * They are ordinary types: registered before main, exported so that code
 * written for the kernel links, and shown by vmstat -m once used.
 *
 * malloc_reinit_ncpus.  The kernel starts every type with one counter slot
 * (ks_use0) and, once the CPUs are counted, gives each type an array of
 * per-CPU slots.  slabkit gives a type its per-thread slots in malloc_init
 * itself, so the call has nothing to do.  It is kept so kernel code links;
 * any thread may call it, any number of times.
 */
#include "internal.h"

SLABKIT_API MALLOC_DEFINE(M_DRM, "m_drm", "DRM memory allocations");
SLABKIT_API MALLOC_DEFINE(M_IP6OPT, "ip6opt", "IPv6 options");
SLABKIT_API MALLOC_DEFINE(M_IP6NDP, "ip6ndp", "IPv6 Neighbor Discovery");
SLABKIT_API MALLOC_DEFINE(M_IOV, "iov", "large iov's");

void
malloc_reinit_ncpus(void)
{
	sk_init();
}
