/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit.h: the umbrella header.  Includes every public header and
 * nothing else.  See slabkit(3) for which allocator to pick when.
 */
#ifndef SLABKIT_SLABKIT_H
#define SLABKIT_SLABKIT_H

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>
#include <slabkit/mpipe.h>
#include <slabkit/objcache.h>
#include <slabkit/stats.h>
#include <slabkit/zone.h>

#endif /* SLABKIT_SLABKIT_H */
