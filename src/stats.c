/*
 * Statistics: merged snapshots and the vmstat-style printers.
 *
 * Each allocator keeps its own counters (kmalloc: per-slot kmalloc_use in
 * each type; objcache, mpipe and zone in their own structures) and exports
 * a printer; this file owns the kmalloc table (`vmstat -m', spec 5), the
 * JSON framing, and the at-exit report of SLABKIT_OPTIONS=stats.
 * kmalloc_obj types appear twice: as ordinary rows of the kmalloc table
 * (they are malloc types) and in their own table of slabs.
 */
#include <string.h>

#include "internal.h"
#include "kmalloc_obj.h"

int
kmalloc_type_stats(struct malloc_type *type, struct kmalloc_type_stats *st)
{
	if (type == NULL || st == NULL || type->ks_magic != M_MAGIC)
		return 22; /* EINVAL */
	sk_type_sum(type, st);
	return 0;
}

int
kmalloc_type_foreach(int (*fn)(struct malloc_type *,
			 const struct kmalloc_type_stats *, void *),
    void *arg)
{
	struct kmalloc_type_stats st;
	int rc = 0;

	sk_init();
	sk_types_lock();
	for (struct malloc_type *t = sk_type_list; t != NULL; t = t->ks_next) {
		sk_type_sum(t, &st);
		if ((rc = fn(t, &st, arg)) != 0)
			break;
	}
	sk_types_unlock();
	return rc;
}

static void
print_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(fp, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

struct vm_totals {
	FILE	*fp;
	size_t	memuse;
	uint64_t calls;
	int	json;
	int	n;
};

static int
print_type_row(struct malloc_type *t, const struct kmalloc_type_stats *st,
    void *arg)
{
	struct vm_totals *tot = arg;

	(void)t;
	if (st->calls == 0)
		return 0;
	if (tot->json) {
		fprintf(tot->fp, "%s\n    {\"type\": ", tot->n ? "," : "");
		print_json_string(tot->fp, st->shortdesc);
		fprintf(tot->fp,
		    ", \"inuse\": %zu, \"memuse\": %zu, \"maxused\": %zu, "
		    "\"limit\": %zu, \"requests\": %llu}",
		    st->inuse, st->memuse, st->maxused, st->limit,
		    (unsigned long long)st->calls);
	} else {
		/* Type Limit / Kern Limit (ks_limblocks, ks_mapblocks) are
		 * never updated by the slab: 0, as in DragonFly. */
		char lim[32];

		/* "unlimited" (2^47 and more, the address space) prints "-" */
		if (st->limit >= ((size_t)1 << 47))
			snprintf(lim, sizeof(lim), "-");
		else
			snprintf(lim, sizeof(lim), "%zuK",
			    (st->limit + 1023) / 1024);
		fprintf(tot->fp, "%19s%7zu%8zuK%8zuK%11s%10llu%6u%6u\n",
		    st->shortdesc, st->inuse, (st->memuse + 1023) / 1024,
		    (st->maxused + 1023) / 1024, lim,
		    (unsigned long long)st->calls, 0u, 0u);
	}
	tot->memuse += st->memuse;
	tot->calls += st->calls;
	tot->n++;
	return 0;
}

static void
vmstat_m(FILE *fp, int json)
{
	struct vm_totals tot = {fp, 0, 0, json, 0};

	if (json) {
		fprintf(fp, "  \"kmalloc\": [");
		kmalloc_type_foreach(print_type_row, &tot);
		fprintf(fp, "\n  ],\n  \"kmalloc_totals\": {\"inuse_bytes\": %zu, "
			    "\"free_bytes\": 0, \"requests\": %llu}",
		    tot.memuse, (unsigned long long)tot.calls);
		return;
	}
	fprintf(fp, "\nMemory statistics by type                              "
		    "                Type  Kern\n");
	fprintf(fp, "               Type  InUse   MemUse  HighUse      Limit  "
		    "Requests Limit Limit\n");
	kmalloc_type_foreach(print_type_row, &tot);
	fprintf(fp, "\nMemory Totals:  In Use    Free    Requests\n");
	fprintf(fp, "              %7zuK %6zuK %11llu\n",
	    (tot.memuse + 1023) / 1024, (size_t)0,
	    (unsigned long long)tot.calls);
}

void
slabkit_print_vmstat_m(FILE *fp)
{
	vmstat_m(fp, 0);
	fflush(fp);
}

void
slabkit_stats_print(FILE *fp, int flags)
{
	int json = (flags & SLABKIT_STATS_JSON) != 0;

	if (json) {
		fprintf(fp, "{\n  \"version\": %d,\n", SLABKIT_STATS_VERSION);
		vmstat_m(fp, 1);
		fprintf(fp, ",\n");
		sk_kobj_stats_print(fp, 1);
		fprintf(fp, ",\n");
		sk_objcache_stats_print(fp, 1);
		fprintf(fp, ",\n");
		sk_mpipe_stats_print(fp, 1);
		fprintf(fp, ",\n");
		sk_zone_stats_print(fp, 1);
		fprintf(fp, "\n}\n");
	} else {
		vmstat_m(fp, 0);
		sk_kobj_stats_print(fp, 0);
		sk_objcache_stats_print(fp, 0);
		sk_mpipe_stats_print(fp, 0);
		sk_zone_stats_print(fp, 0);
	}
	fflush(fp);
}

void
sk_stats_at_exit(void)
{
	FILE *fp = stderr;
	bool close_it = false;

	if (sk_opt.stats_file[0] != '\0') {
		FILE *f = fopen(sk_opt.stats_file, "w");

		if (f != NULL) {
			fp = f;
			close_it = true;
		} else {
			sk_warn("stats", "cannot open %s; using stderr",
			    sk_opt.stats_file);
		}
	}
	slabkit_stats_print(fp, sk_opt.stats == 2 ? SLABKIT_STATS_JSON : 0);
	if (close_it)
		fclose(fp);
}
