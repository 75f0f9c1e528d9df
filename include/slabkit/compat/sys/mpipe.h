/* SPDX-License-Identifier: BSD-3-Clause */
/* Kernel include path compatibility: <sys/mpipe.h> -> slabkit/mpipe.h. */
#ifndef SLABKIT_COMPAT_SYS_MPIPE_H
#define SLABKIT_COMPAT_SYS_MPIPE_H
#include <slabkit/mpipe.h>
#endif
