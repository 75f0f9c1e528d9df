/* SPDX-License-Identifier: BSD-3-Clause */
/* uaf_forge_link.c with the forged link pointing into the same zone. */
#define MODE_SAME 1
#include "uaf_forge_link.c"
