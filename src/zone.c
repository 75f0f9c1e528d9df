/* Placeholder until the zone allocator lands: prints an empty table. */
#include "internal.h"

void
sk_zone_stats_print(FILE *fp, int json)
{
	if (json)
		fprintf(fp, "  \"zone\": []");
}
