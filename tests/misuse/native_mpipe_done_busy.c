/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Native misuse: mpipe_done while a buffer is still outstanding
 * (checklist row 65).  Expected: abort, "slabkit: mpipe_done: 1 buffer(s)
 * still outstanding in pipe temp (ptr 0x...)".
 */
#include <slabkit/mpipe.h>

#include "misuse.h"

int
main(void)
{
	struct malloc_pipe mp;
	void *buf;

	mpipe_init(&mp, M_TEMP, 128, 2, 4, 0, NULL, NULL, NULL);
	buf = mpipe_alloc_nowait(&mp);
	if (buf == NULL)
		return 2;
	SK_M_ARMED();
	mpipe_done(&mp);
	SK_M_SURVIVED();
	return 0;
}
