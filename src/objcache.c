/* Placeholder until the objcache allocator lands: prints an empty table. */
#include "internal.h"

void
sk_objcache_stats_print(FILE *fp, int json)
{
	if (json)
		fprintf(fp, "  \"objcache\": []");
}
