/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Statistics: merged snapshots and the vmstat-style printers.
 *
 * Each allocator keeps its own counters (kmalloc: per-slot kmalloc_use in
 * each type; objcache, mpipe and zone in their own structures) and exports
 * a printer; this file owns the kmalloc table (`vmstat -m', spec 5), the
 * JSON framing, and the at-exit report of SLABKIT_OPTIONS=stats.
 * kmalloc_obj types appear twice: as ordinary rows of the kmalloc table
 * (they are malloc types) and in their own table of slabs.
 *
 * The report names the process (pid and command) and adds two tables of
 * its own: the kmalloc heap (mapped, resident, retained, metadata and
 * allocated bytes) and the size classes (zones, chunks in use and free).
 * The size classes come from a walk of every shard's zone lists that does
 * not stop their owners (sk_kmalloc_class_stats): exact when the program
 * is quiescent (at exit, or between phases), approximate while other
 * threads allocate.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "kmalloc_obj.h"
#include "os/pageheap.h"

/* ------------------------------------------------------------------ */
/* The process and the heap summary */

/* Read a small /proc file into buf (no stdio, no malloc); its length. */
static size_t
read_proc(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return (size_t)n;
}

/* The command name, read from /proc/self/comm once. */
static char proc_comm_buf[32];
static struct sk_once proc_comm_once =
    SK_ONCE_INITIALIZER("statistics set-up");

static void
proc_comm_read(void)
{
	char *buf = proc_comm_buf;
	size_t n = read_proc("/proc/self/comm", buf, sizeof(proc_comm_buf));

	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++) /* printable text only */
		if ((unsigned char)buf[i] < 0x20 ||
		    (unsigned char)buf[i] >= 0x7f)
			buf[i] = '?';
	if (n == 0)
		memcpy(buf, "?", 2);
}

static const char *
proc_comm(void)
{
	sk_once(&proc_comm_once, proc_comm_read);
	return proc_comm_buf;
}

/* The process's resident set in bytes (/proc/self/statm), 0 unknown. */
static size_t
proc_resident(void)
{
	char buf[128], *p = buf;
	unsigned long long pages = 0;

	if (read_proc("/proc/self/statm", buf, sizeof(buf)) == 0)
		return 0;
	while (*p != '\0' && *p != ' ')
		p++;
	while (*p == ' ')
		p++;
	while (*p >= '0' && *p <= '9')
		pages = pages * 10 + (unsigned long long)(*p++ - '0');
	return (size_t)pages * sk_os_page_size();
}

void
sk_stats_title(FILE *fp, const char *title)
{
	fprintf(fp, "\n%s of pid %d (%s)\n", title, (int)getpid(), proc_comm());
}

void
sk_heap_summary(struct sk_heap_summary *h, struct sk_class_stat *cls)
{
	struct sk_class_stat own[SK_NZONES];
	struct sk_zone_totals zt;
	struct sk_ph_stats ph;
	size_t ps = sk_os_page_size();

	if (cls == NULL)
		cls = own;
	memset(h, 0, sizeof(*h));
	sk_kmalloc_class_stats(cls);
	sk_kmalloc_zone_totals(&zt);
	sk_ph_stats(&ph);
	for (int zi = 0; zi < SK_NZONES; zi++) {
		h->allocated += cls[zi].inuse * cls[zi].size;
		h->free_chunks += cls[zi].free;
		h->free_chunk_bytes += cls[zi].free * cls[zi].size;
		h->metadata += cls[zi].header;
	}
	h->mapped =
	    zt.arena_mapped + zt.outside_mapped + ph.mapped + zt.large_mapped;
	h->resident = proc_resident();
	h->heap_retained = ph.retained;
	h->retained = ph.retained + zt.free_zone_bytes;
	h->metadata += (size_t)sk_shard_count() *
	                   ((sizeof(struct sk_shard) + ps - 1) & ~(ps - 1)) +
	               ph.metadata;
	h->allocated += ph.allocated + zt.large_mapped;
	h->large_count = zt.large_count;
	h->large_bytes = zt.large_mapped;
}

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

/* The vmstat -m table; free: bytes held for reuse (free chunks in zones
 * and retained pages). */
static void
vmstat_m(FILE *fp, int json, size_t free)
{
	struct vm_totals tot = {fp, 0, 0, json, 0};

	if (json) {
		fprintf(fp, "  \"kmalloc\": [");
		kmalloc_type_foreach(print_type_row, &tot);
		fprintf(fp,
		    "\n  ],\n  \"kmalloc_totals\": {\"inuse_bytes\": %zu, "
		    "\"free_bytes\": %zu, \"requests\": %llu}",
		    tot.memuse, free, (unsigned long long)tot.calls);
		return;
	}
	fprintf(fp, "\nMemory statistics by type of pid %d (%s)\n",
	    (int)getpid(), proc_comm());
	fprintf(fp, "                                                       "
	            "                Type  Kern\n");
	fprintf(fp, "               Type  InUse   MemUse  HighUse      Limit  "
		    "Requests Limit Limit\n");
	kmalloc_type_foreach(print_type_row, &tot);
	fprintf(fp, "\nMemory Totals:  In Use    Free    Requests\n");
	fprintf(fp, "              %7zuK %6zuK %11llu\n",
	    (tot.memuse + 1023) / 1024, (free + 1023) / 1024,
	    (unsigned long long)tot.calls);
}

void
slabkit_print_vmstat_m(FILE *fp)
{
	struct sk_heap_summary h;

	sk_heap_summary(&h, NULL);
	vmstat_m(fp, 0, h.free_chunk_bytes + h.retained);
	fflush(fp);
}

static void
print_process(FILE *fp, int json)
{
	if (json) {
		fprintf(fp, "  \"process\": {\"pid\": %d, \"command\": ",
		    (int)getpid());
		print_json_string(fp, proc_comm());
		fprintf(fp, "}");
	} else {
		fprintf(fp, "slabkit statistics of pid %d (%s)\n",
		    (int)getpid(), proc_comm());
	}
}

#define KB(x) (((x) + 1023) / 1024)

static void
print_heap(FILE *fp, int json, const struct sk_heap_summary *h)
{
	if (json) {
		fprintf(fp,
		    "  \"heap\": {\"mapped_bytes\": %zu, "
		    "\"process_resident_bytes\": %zu, "
		    "\"retained_bytes\": %zu, \"metadata_bytes\": %zu, "
		    "\"allocated_bytes\": %zu, \"free_bytes\": %zu, "
		    "\"free_chunks\": %zu, \"free_chunk_bytes\": %zu, "
		    "\"large_mapped_count\": %zu, "
		    "\"large_mapped_bytes\": %zu}",
		    h->mapped, h->resident, h->retained, h->metadata,
		    h->allocated, h->free_chunk_bytes + h->retained,
		    h->free_chunks, h->free_chunk_bytes, h->large_count,
		    h->large_bytes);
		return;
	}
	fprintf(
	    fp, "\nkmalloc heap of pid %d (%s)\n", (int)getpid(), proc_comm());
	fprintf(fp, "  Mapped %10zuK  zones, page-run heap, large blocks\n",
	    KB(h->mapped));
	fprintf(fp, "  Resident %8zuK  the whole process (/proc)\n",
	    KB(h->resident));
	fprintf(fp, "  Retained %8zuK  free pages kept for reuse\n",
	    KB(h->retained));
	fprintf(fp, "  Metadata %8zuK  zone headers, shards, page tags\n",
	    KB(h->metadata));
	fprintf(fp, "  Allocated %7zuK  chunks and blocks in use\n",
	    KB(h->allocated));
	fprintf(fp, "  Free %12zuK  free chunks (%zu) and retained pages\n",
	    KB(h->free_chunk_bytes + h->retained), h->free_chunks);
	fprintf(fp, "  Large %11zuK  in %zu blocks mapped alone\n",
	    KB(h->large_bytes), h->large_count);
}

static void
print_classes(FILE *fp, int json, const struct sk_class_stat *cls)
{
	int n = 0;

	if (json)
		fprintf(fp, "  \"size_classes\": [");
	else
		fprintf(fp,
		    "\nkmalloc size classes of pid %d (%s)\n%7s %6s %9s "
		    "%9s %9s\n",
		    (int)getpid(), proc_comm(), "Size", "Zones", "InUse",
		    "Free", "MemUse");
	for (int zi = 0; zi < SK_NZONES; zi++) {
		const struct sk_class_stat *c = &cls[zi];

		if (c->zones == 0)
			continue;
		if (json)
			fprintf(fp,
			    "%s\n    {\"size\": %zu, \"zones\": %zu, "
			    "\"inuse\": %zu, \"free\": %zu, "
			    "\"inuse_bytes\": %zu}",
			    n ? "," : "", c->size, c->zones, c->inuse, c->free,
			    c->inuse * c->size);
		else
			fprintf(fp, "%7zu %6zu %9zu %9zu %8zuK\n", c->size,
			    c->zones, c->inuse, c->free,
			    KB(c->inuse * c->size));
		n++;
	}
	if (json)
		fprintf(fp, n ? "\n  ]" : "]");
}

void
slabkit_stats_print(FILE *fp, int flags)
{
	int json = (flags & SLABKIT_STATS_JSON) != 0;
	struct sk_class_stat cls[SK_NZONES];
	struct sk_heap_summary h;
	size_t free;

	sk_heap_summary(&h, cls);
	free = h.free_chunk_bytes + h.retained;
	if (json) {
		fprintf(fp, "{\n  \"version\": %d,\n", SLABKIT_STATS_VERSION);
		print_process(fp, 1);
		fprintf(fp, ",\n");
		print_heap(fp, 1, &h);
		fprintf(fp, ",\n");
		print_classes(fp, 1, cls);
		fprintf(fp, ",\n");
		vmstat_m(fp, 1, free);
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
		print_process(fp, 0);
		print_heap(fp, 0, &h);
		print_classes(fp, 0, cls);
		vmstat_m(fp, 0, free);
		sk_kobj_stats_print(fp, 0);
		sk_objcache_stats_print(fp, 0);
		sk_mpipe_stats_print(fp, 0);
		sk_zone_stats_print(fp, 0);
	}
	fflush(fp);
}

/*
 * stats_file at exit.  The report must not become a way to write through
 * someone's link or over someone's file (a setuid program ignores
 * SLABKIT_OPTIONS, but a root shell with a stale option does not):
 * - /dev/stdout, /dev/stderr and /dev/fd/N name this process's own
 *   descriptors (they are links into /proc): the report goes to that
 *   descriptor as it is, never truncated;
 * - any other path is opened without following a link in its last
 *   component (a link is refused) and without blocking (a FIFO with no
 *   reader is refused at once);
 * - a regular file is truncated only when this process's effective user
 *   owns it (a new file is), else refused; a character device (/dev/null,
 *   a terminal) is written as it is; anything else (FIFO, socket,
 *   directory, block device) is refused.
 * A refusal prints one line naming the path and the reason, and the report
 * goes to stderr instead.  A failed write, flush or close is reported.
 */
static void
stats_file_warn(const char *what, const char *why)
{
	char func[sizeof(sk_opt.stats_file) + 16];

	sk_fmt(func, sizeof(func), "stats_file %s", sk_opt.stats_file);
	sk_warn(func, "%s%s", what, why);
}

/* A refusal: the line says where the report goes instead. */
static void
stats_file_refuse(const char *what, const char *why)
{
	char line[160];

	sk_fmt(line, sizeof(line), "%s%s; statistics go to stderr", what, why);
	stats_file_warn(line, "");
}

static int
stats_file_open(const char *path)
{
	struct stat st;
	int fd, e, own = -1;

	if (strcmp(path, "/dev/stdout") == 0)
		own = 1;
	else if (strcmp(path, "/dev/stderr") == 0)
		own = 2;
	else if (strncmp(path, "/dev/fd/", 8) == 0 && path[8] != '\0' &&
	         strspn(path + 8, "0123456789") == strlen(path + 8))
		own = atoi(path + 8);
	if (own >= 0) {
		if ((fd = dup(own)) < 0)
			stats_file_refuse(
			    "cannot use the descriptor: ", strerror(errno));
		return fd;
	}
	fd = open(path,
	    O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			stats_file_refuse(
			    "is a symbolic link", "; not followed");
		else if (e == ENXIO)
			stats_file_refuse("is a FIFO with no reader", "");
		else
			stats_file_refuse("cannot open: ", strerror(e));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		stats_file_refuse("cannot fstat: ", strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		if (st.st_uid != geteuid()) {
			char why[96];

			sk_fmt(why, sizeof(why),
			    " by uid %u, not by this process's user (uid %u)",
			    (unsigned)st.st_uid, (unsigned)geteuid());
			stats_file_refuse("is owned", why);
		} else if (ftruncate(fd, 0) != 0) {
			stats_file_refuse("cannot truncate: ", strerror(errno));
		} else {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			return fd;
		}
	} else if (S_ISCHR(st.st_mode)) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		return fd;
	} else {
		stats_file_refuse("is not a regular file or a character device",
		    S_ISFIFO(st.st_mode)   ? " (a FIFO)"
		    : S_ISSOCK(st.st_mode) ? " (a socket)"
		    : S_ISDIR(st.st_mode)  ? " (a directory)"
		                           : "");
	}
	close(fd);
	return -1;
}

void
sk_stats_at_exit(void)
{
	FILE *fp = stderr;
	int fd, e;

	if (sk_opt.stats_file[0] == '\0') {
		slabkit_stats_print(
		    fp, sk_opt.stats == 2 ? SLABKIT_STATS_JSON : 0);
		return;
	}
	if (strcmp(sk_opt.stats_file, "/dev/stdout") == 0)
		fflush(stdout); /* the program's output first */
	fd = stats_file_open(sk_opt.stats_file);
	if (fd >= 0 && (fp = fdopen(fd, "w")) == NULL) {
		stats_file_refuse("cannot open a stream: ", strerror(errno));
		close(fd);
	}
	if (fp == NULL || fd < 0) {
		slabkit_stats_print(
		    stderr, sk_opt.stats == 2 ? SLABKIT_STATS_JSON : 0);
		return;
	}
	/* the printer flushes at its end: its errno is the likely cause */
	errno = 0;
	slabkit_stats_print(fp, sk_opt.stats == 2 ? SLABKIT_STATS_JSON : 0);
	e = errno;
	errno = 0;
	if (fflush(fp) != 0)
		e = errno != 0 ? errno : EIO;
	else if (!ferror(fp))
		e = 0;
	else if (e == 0)
		e = EIO;
	if (fclose(fp) != 0 && e == 0)
		e = errno != 0 ? errno : EIO;
	if (e != 0)
		stats_file_warn("write failed: ", strerror(e));
}
