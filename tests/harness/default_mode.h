/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * For test binaries that check the default mode's own behaviour (LIFO
 * reuse, usable sizes, zone and page-heap states, statistics of the
 * arena): under SLABKIT_OPTIONS=hardened or track=..., say so on stdout
 * and leave that mode before the first allocation, instead of failing on
 * a behaviour the mode changes on purpose or silently passing unhardened.
 * Needs the library linked in (unit tests), not only preloaded.
 */
#ifndef SK_DEFAULT_MODE_H
#define SK_DEFAULT_MODE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabkit/control.h>

static inline void
sk_t_default_mode(const char *why)
{
	char h[16] = "0", t[16] = "none";

	slabkit_get_option("hardened", h, sizeof(h));
	slabkit_get_option("track", t, sizeof(t));
	if (strcmp(h, "0") == 0 && strcmp(t, "none") == 0)
		return;
	printf("runs in default mode (%s): hardened=%s track=%s of "
	       "SLABKIT_OPTIONS ignored\n",
	    why, h, t);
	if (slabkit_set_option("hardened", "0") != 0 ||
	    slabkit_set_option("track", "none") != 0) {
		printf(
		    "cannot leave hardened/track mode\n0 passed, 1 failed\n");
		exit(1);
	}
}

#endif
