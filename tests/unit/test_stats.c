/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The statistics report (src/stats.c): the process header, the kmalloc
 * heap summary, the size-class table, the real Free column, and the same
 * content in JSON.  The program is single-threaded, so the class walk is
 * exact.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>
#include <slabkit/stats.h>

#include "default_mode.h"
#include "harness.h"
#include "internal.h"

MALLOC_DEFINE(M_STATT, "stats-test", "test_stats");

#define N    100
#define SIZE 200 /* class 208 */

/* The report as a string (caller frees). */
static char *
report(int flags)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		return NULL;
	slabkit_stats_print(fp, flags);
	fclose(fp);
	return buf;
}

static const struct sk_class_stat *
class_of(struct sk_class_stat *cls, size_t size)
{
	sk_kmalloc_class_stats(cls);
	for (int zi = 0; zi < SK_NZONES; zi++)
		if (cls[zi].size == size)
			return &cls[zi];
	return NULL;
}

TEST(header_names_the_process)
{
	char comm[64] = "", want[128];
	FILE *f = fopen("/proc/self/comm", "r");
	char *text, *json;

	CHECK(f != NULL);
	if (f != NULL) {
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
	}
	comm[strcspn(comm, "\n")] = '\0';
	CHECK(comm[0] != '\0');
	text = report(SLABKIT_STATS_TEXT);
	json = report(SLABKIT_STATS_JSON);
	CHECK(text != NULL && json != NULL);
	snprintf(want, sizeof(want), "slabkit statistics of pid %d (%s)\n",
	    (int)getpid(), comm);
	CHECK(text != NULL && strncmp(text, want, strlen(want)) == 0);
	snprintf(want, sizeof(want), "kmalloc heap of pid %d (%s)",
	    (int)getpid(), comm);
	CHECK(text != NULL && strstr(text, want) != NULL);
	snprintf(want, sizeof(want), "kmalloc size classes of pid %d (%s)",
	    (int)getpid(), comm);
	CHECK(text != NULL && strstr(text, want) != NULL);
	snprintf(want, sizeof(want), "Memory statistics by type of pid %d (%s)",
	    (int)getpid(), comm);
	CHECK(text != NULL && strstr(text, want) != NULL);
	{
		static const char *titles[] = {"Object caches",
		    "MPIPE statistics", "zone(9) zones (vm.zone)",
		    "zone(9) zones (vmstat -z)"};

		for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]);
		     i++) {
			snprintf(want, sizeof(want), "\n%s of pid %d (%s)\n",
			    titles[i], (int)getpid(), comm);
			CHECK(text != NULL && strstr(text, want) != NULL);
		}
	}
	snprintf(want, sizeof(want),
	    "\"process\": {\"pid\": %d, \"command\": \"%s\"}", (int)getpid(),
	    comm);
	CHECK(json != NULL && strstr(json, want) != NULL);
	free(text);
	free(json);
}

TEST(class_table_counts_chunks)
{
	struct sk_class_stat cls[SK_NZONES];
	const struct sk_class_stat *c;
	void *p[N];
	char row[64], *text, *json;

	for (int i = 0; i < N; i++)
		p[i] = kmalloc(SIZE, M_STATT, M_WAITOK);
	c = class_of(cls, 208);
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK(c->zones >= 1);
		CHECK(c->inuse >= N);
		CHECK(c->inuse + c->free <=
		      c->zones * sk_slab.zone_size / c->size);
		CHECK(c->header > 0);
	}
	text = report(SLABKIT_STATS_TEXT);
	json = report(SLABKIT_STATS_JSON);
	snprintf(row, sizeof(row), "\n%7d %6zu %9zu %9zu", 208,
	    c ? c->zones : 0, c ? c->inuse : 0, c ? c->free : 0);
	CHECK(text != NULL && strstr(text, row) != NULL);
	snprintf(row, sizeof(row), "{\"size\": 208, \"zones\": %zu",
	    c ? c->zones : 0);
	CHECK(json != NULL && strstr(json, row) != NULL);
	snprintf(
	    row, sizeof(row), "\"inuse_bytes\": %zu}", c ? c->inuse * 208 : 0);
	CHECK(json != NULL && strstr(json, row) != NULL);
	free(text);
	free(json);
	for (int i = 0; i < N; i++)
		kfree(p[i], M_STATT);
}

/* The "Free" of the Memory Totals line, in KiB. */
static long
totals_free(const char *text)
{
	const char *t = text ? strstr(text, "Memory Totals:") : NULL;
	long inuse = -1, fr = -1;

	if (t == NULL || (t = strchr(t, '\n')) == NULL ||
	    sscanf(t, " %ldK %ldK", &inuse, &fr) != 2)
		return -1;
	return fr;
}

TEST(free_column_is_real)
{
	struct sk_class_stat cls[SK_NZONES];
	struct sk_heap_summary h;
	const struct sk_class_stat *c;
	void *p[N];
	size_t before;
	char *text, *json, key[64];

	for (int i = 0; i < N; i++)
		p[i] = kmalloc(SIZE, M_STATT, M_WAITOK);
	c = class_of(cls, 208);
	before = c ? c->free : 0;
	for (int i = 0; i < N; i += 2) /* the zone keeps the other half */
		kfree(p[i], M_STATT);
	c = class_of(cls, 208);
	CHECK(c != NULL && c->free >= before + N / 2);
	sk_heap_summary(&h, NULL);
	CHECK(h.free_chunk_bytes >= (N / 2) * 208);
	CHECK(h.free_chunks >= N / 2);
	text = report(SLABKIT_STATS_TEXT);
	json = report(SLABKIT_STATS_JSON);
	CHECK(totals_free(text) > 0);
	CHECK(json != NULL && strstr(json, "\"free_bytes\": 0,") == NULL);
	snprintf(key, sizeof(key), "\"free_bytes\": ");
	CHECK(json != NULL && strstr(json, key) != NULL);
	free(text);
	free(json);
	for (int i = 1; i < N; i += 2)
		kfree(p[i], M_STATT);
}

TEST(json_has_the_same_content)
{
	static const char *keys[] = {"\"version\"", "\"process\"", "\"pid\"",
	    "\"command\"", "\"heap\"", "\"mapped_bytes\"",
	    "\"process_resident_bytes\"", "\"retained_bytes\"",
	    "\"metadata_bytes\"", "\"allocated_bytes\"", "\"free_bytes\"",
	    "\"free_chunks\"", "\"large_mapped_count\"",
	    "\"large_mapped_bytes\"", "\"size_classes\"", "\"zones\"",
	    "\"inuse\"", "\"free\"", "\"inuse_bytes\"", "\"kmalloc\"",
	    "\"kmalloc_totals\""};
	static const char *labels[] = {"Mapped", "Resident", "Retained",
	    "Metadata", "Allocated", "Free", "Large", "Size", "Zones", "InUse",
	    "MemUse", "Memory Totals"};
	void *p = kmalloc(SIZE, M_STATT, M_WAITOK);
	char *text = report(SLABKIT_STATS_TEXT);
	char *json = report(SLABKIT_STATS_JSON);

	CHECK(text != NULL && json != NULL);
	for (size_t i = 0; json && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strstr(json, keys[i]) == NULL)
			sk_t_fail(__FILE__, __LINE__, "JSON lacks %s", keys[i]);
	for (size_t i = 0; text && i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strstr(text, labels[i]) == NULL)
			sk_t_fail(
			    __FILE__, __LINE__, "text lacks %s", labels[i]);
	free(text);
	free(json);
	kfree(p, M_STATT);
}

TEST(mapped_covers_allocated)
{
	struct sk_heap_summary h;
	void *big = kmalloc(200000, M_STATT, M_WAITOK);
	void *huge = kmalloc((size_t)20 << 20, M_STATT, M_WAITOK);

	sk_heap_summary(&h, NULL);
	CHECK(h.allocated > 0);
	CHECK(h.mapped >= h.allocated);
	CHECK(h.mapped >= h.allocated + h.retained);
	CHECK(h.metadata > 0);
	CHECK(h.resident > 0);
	CHECK(h.large_count >= 1);
	CHECK(h.large_bytes >= ((size_t)20 << 20));
	kfree(huge, M_STATT);
	sk_heap_summary(&h, NULL);
	CHECK(h.large_bytes < ((size_t)20 << 20));
	kfree(big, M_STATT);
}

TEST(retained_follows_large_frees)
{
	struct sk_heap_summary a, b, c;
	void *big = kmalloc((size_t)1 << 20, M_STATT, M_WAITOK);

	memset(big, 1, (size_t)1 << 20);
	slab_cleanup();
	sk_heap_summary(&a, NULL);
	kfree(big, M_STATT);
	sk_heap_summary(&b, NULL);
	CHECK(b.retained >= a.retained + ((size_t)1 << 20));
	CHECK(b.heap_retained >= ((size_t)1 << 20));
	slab_cleanup();
	sk_heap_summary(&c, NULL);
	CHECK(c.retained < b.retained);
	CHECK(c.heap_retained == 0);
}

static atomic_int churn_stop, churn_rounds;

/* Zones come and go on every list while the report walks them. */
static void *
churn(void *arg)
{
	void *p[256] = {0};
	unsigned r = (unsigned)(uintptr_t)arg * 2654435761u + 1;

	while (!atomic_load(&churn_stop)) {
		for (int i = 0; i < 256; i++) {
			r = r * 1103515245u + 12345u;
			if (p[i] != NULL)
				kfree(p[i], M_STATT);
			p[i] = kmalloc(1 + (r >> 8) % 20000, M_STATT, M_WAITOK);
		}
		for (int i = 0; i < 256; i += 2) {
			kfree(p[i], M_STATT);
			p[i] = NULL;
		}
		slab_cleanup();
		atomic_fetch_add(&churn_rounds, 1);
	}
	for (int i = 0; i < 256; i++)
		if (p[i] != NULL)
			kfree(p[i], M_STATT);
	return NULL;
}

TEST(report_while_threads_allocate)
{
	pthread_t th[3];
	FILE *null = fopen("/dev/null", "w");
	struct sk_heap_summary h;

	CHECK(null != NULL);
	atomic_store(&churn_stop, 0);
	atomic_store(&churn_rounds, 0);
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)i);
	for (int i = 0;
	     null != NULL && (i < 60 || atomic_load(&churn_rounds) < 300);
	     i++) {
		slabkit_stats_print(null, i & 1);
		sk_heap_summary(&h, NULL);
		CHECK(h.mapped > 0);
	}
	atomic_store(&churn_stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	if (null != NULL)
		fclose(null);
}

int
main(void)
{
	sk_t_default_mode(
	    "the size-class and retained tables describe the zone arena and "
	    "the page-run heap of the default mode");
	/* no purge thread between a free and the check that follows it */
	setenv("SLABKIT_OPTIONS", "purge_ms=0", 1);
	kfree(kmalloc(16, M_TEMP, M_WAITOK), M_TEMP);
	RUN(header_names_the_process);
	RUN(class_table_counts_chunks);
	RUN(free_column_is_real);
	RUN(json_has_the_same_content);
	RUN(mapped_covers_allocated);
	RUN(retained_follows_large_frees);
	RUN(report_while_threads_allocate);
	return sk_t_done();
}
