/* Placeholder until the mpipe allocator lands: prints an empty table. */
#include "internal.h"

void
sk_mpipe_stats_print(FILE *fp, int json)
{
	if (json)
		fprintf(fp, "  \"mpipe\": []");
}
