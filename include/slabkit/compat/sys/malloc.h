/* SPDX-License-Identifier: BSD-3-Clause */
/* Kernel include path compatibility: <sys/malloc.h> -> slabkit/kmalloc.h. */
#ifndef SLABKIT_COMPAT_SYS_MALLOC_H
#define SLABKIT_COMPAT_SYS_MALLOC_H
#include <slabkit/kmalloc.h>
#endif
