/* SPDX-License-Identifier: BSD-3-Clause */
/* Kernel include path compatibility: <vm/vm_zone.h> -> slabkit/zone.h. */
#ifndef SLABKIT_COMPAT_VM_VM_ZONE_H
#define SLABKIT_COMPAT_VM_VM_ZONE_H
#include <slabkit/zone.h>
#endif
