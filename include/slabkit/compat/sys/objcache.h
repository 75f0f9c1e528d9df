/* SPDX-License-Identifier: BSD-3-Clause */
/* Kernel include path compatibility: <sys/objcache.h> -> slabkit/objcache.h. */
#ifndef SLABKIT_COMPAT_SYS_OBJCACHE_H
#define SLABKIT_COMPAT_SYS_OBJCACHE_H
#include <slabkit/objcache.h>
#endif
