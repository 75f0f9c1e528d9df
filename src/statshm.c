/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live statistics for `slabkit stat PID': the sysctl side of vmstat(8).
 *
 * In the kernel, vmstat -m and -z read the allocators' counters through
 * sysctl while the system runs.  A process has no sysctl, so with
 * SLABKIT_OPTIONS=stats_shm the library keeps its tables in an anonymous
 * memory file (memfd_create) named "slabkit-stats", rewritten by a helper
 * thread every STATSHM_INTERVAL_MS.  `slabkit stat PID' finds it among the
 * process's descriptors (/proc/PID/fd) and opens it from there.
 *
 * Why a memfd and not a named file.  The file has no name in any
 * directory, so nobody can plant, replace or pre-empt it, and it vanishes
 * with the last descriptor, whatever way the process ends (exit, _exit,
 * a signal).  /proc/PID/fd can be followed only by users allowed to
 * inspect the process (ptrace access mode), which is who may see its
 * statistics.  Each snapshot is a new memfd, written whole and then sealed
 * (no write, grow or shrink) before the previous one is closed, so a
 * reader that sees the seals has a complete, immutable snapshot and never
 * needs a lock.
 *
 * Cost.  Off (the default) nothing runs and nothing is checked on any
 * allocation path: the option is looked at once, at start-up.  On, one
 * thread wakes twice a second, merges the counters exactly as
 * slabkit_stats_print() does, and replaces the memfd.  The process has one
 * more descriptor open (close-on-exec).
 *
 * Format (version 2), all text:
 *     slabkit-stats 2
 *     pid <pid>
 *     seq <snapshot number, from 1>
 *     updated <seconds since the epoch, with milliseconds>
 *     interval_ms <milliseconds between rewrites>
 *     types <n>
 *     <n lines: name TAB inuse TAB memuse TAB calls>   (for rates)
 *     text <bytes>
 *     <the tables of slabkit_stats_print(), text form>
 *     json <bytes>
 *     <the same tables as one JSON object>
 * Type names are the program's own strings: control characters are
 * written as '?' in the types lines; readers sanitise the rest.
 *
 * Lifetime.  A child made by fork() closes its copy of the descriptor (the
 * helper thread does not survive fork, so the copy would only go stale),
 * and exec closes it (O_CLOEXEC).  If the program closes the descriptor
 * behind the library's back (closefrom) and reuses the number, the helper
 * sees that the number no longer refers to its memfd and leaves it alone.
 * The helper is started by the malloc drop-in's constructor and by the
 * library's constructor (init.c), which also links this file into static
 * programs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include <slabkit/stats.h>

#define STATSHM_NAME        "slabkit-stats"
#define STATSHM_INTERVAL_MS 500
#define STATSHM_VERSION     2

static atomic_int statshm_started;
static pthread_mutex_t statshm_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t statshm_cv;
static bool statshm_stopping;
static pid_t statshm_pid;
static unsigned long statshm_seq;
/* The memfd now published, and its identity (to see it was not replaced). */
static int statshm_fd = -1;
static dev_t statshm_dev;
static ino_t statshm_ino;

/* Render one form of the tables into a malloc'd buffer. */
static char *
render(int flags, size_t *len)
{
	char *buf = NULL;
	FILE *fp = open_memstream(&buf, len);

	if (fp == NULL)
		return NULL;
	slabkit_stats_print(fp, flags);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct types_out {
	FILE *fp;
	unsigned n;
};

static int
type_line(
    struct malloc_type *type, const struct kmalloc_type_stats *st, void *arg)
{
	struct types_out *o = arg;
	const char *s = st->shortdesc != NULL ? st->shortdesc : "?";

	(void)type;
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, o->fp);
	fprintf(o->fp, "\t%zu\t%zu\t%llu\n", st->inuse, st->memuse,
	    (unsigned long long)st->calls);
	o->n++;
	return 0;
}

/* "name\tinuse\tmemuse\tcalls" per type, for rates; *n lines. */
static char *
render_types(size_t *len, unsigned *n)
{
	struct types_out o = {NULL, 0};
	char *buf = NULL;

	o.fp = open_memstream(&buf, len);
	if (o.fp == NULL)
		return NULL;
	kmalloc_type_foreach(type_line, &o);
	if (fclose(o.fp) != 0) {
		free(buf);
		return NULL;
	}
	*n = o.n;
	return buf;
}

static bool
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Is fd still the memfd we published (the program may have closed it)? */
static bool
still_ours(int fd)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == statshm_dev &&
	       st.st_ino == statshm_ino;
}

/* Publish one snapshot; false when no memfd can be made or written. */
static bool
publish(void)
{
	char head[256];
	size_t tlen = 0, jlen = 0, ylen = 0, hlen;
	char *text, *json, *types;
	unsigned ntypes = 0;
	struct timespec now;
	struct stat st;
	bool ok = false;
	int fd;

	text = render(SLABKIT_STATS_TEXT, &tlen);
	json = render(SLABKIT_STATS_JSON, &jlen);
	types = render_types(&ylen, &ntypes);
	if (text == NULL || json == NULL || types == NULL)
		goto out;
	/* (the system call directly: <sys/mman.h> belongs to src/os/) */
	fd = (int)syscall(
	    SYS_memfd_create, STATSHM_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto out;
	clock_gettime(CLOCK_REALTIME, &now);
	hlen = (size_t)snprintf(head, sizeof(head),
	    "slabkit-stats %d\npid %d\nseq %lu\nupdated %ld.%03ld\n"
	    "interval_ms %d\ntypes %u\n",
	    STATSHM_VERSION, (int)statshm_pid, ++statshm_seq, (long)now.tv_sec,
	    now.tv_nsec / 1000000, STATSHM_INTERVAL_MS, ntypes);
	ok = write_all(fd, head, hlen) && write_all(fd, types, ylen);
	hlen = (size_t)snprintf(head, sizeof(head), "text %zu\n", tlen);
	ok = ok && write_all(fd, head, hlen) && write_all(fd, text, tlen);
	hlen = (size_t)snprintf(head, sizeof(head), "json %zu\n", jlen);
	ok = ok && write_all(fd, head, hlen) && write_all(fd, json, jlen);
	ok = ok &&
	     fcntl(fd, F_ADD_SEALS,
	         F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ==
	         0 &&
	     fstat(fd, &st) == 0;
	if (!ok) {
		close(fd);
		goto out;
	}
	/* The new snapshot is complete: retire the old one, if still ours. */
	if (still_ours(statshm_fd))
		close(statshm_fd);
	statshm_fd = fd;
	statshm_dev = st.st_dev;
	statshm_ino = st.st_ino;
out:
	free(text);
	free(json);
	free(types);
	return ok;
}

static void *
statshm_thread(void *arg)
{
	struct timespec deadline;

	(void)arg;
	pthread_mutex_lock(&statshm_mtx);
	while (!statshm_stopping) {
		if (!publish()) {
			sk_warn("stats_shm",
			    "cannot publish a memfd (%s): no live statistics",
			    strerror(errno));
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_nsec += (long)STATSHM_INTERVAL_MS * 1000000L;
		while (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (!statshm_stopping &&
		       pthread_cond_timedwait(
		           &statshm_cv, &statshm_mtx, &deadline) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&statshm_mtx);
	return NULL;
}

/* In a forked child: the parent's snapshot is not the child's. */
static void
statshm_atfork_child(void)
{
	if (still_ours(statshm_fd))
		close(statshm_fd);
	statshm_fd = -1;
	/* The mutex may have been held by the helper, which is not here. */
	pthread_mutex_init(&statshm_mtx, NULL);
}

void
sk_statshm_start(void)
{
	pthread_condattr_t ca;
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int saved = errno;

	sk_init();
	if (!sk_opt.stats_shm || atomic_exchange(&statshm_started, 1) != 0)
		return;
	statshm_pid = getpid();
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&statshm_cv, &ca);
	pthread_condattr_destroy(&ca);
	sk_os_atfork(NULL, NULL, statshm_atfork_child);
	/* The helper takes no signal meant for the program. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&tid, &attr, statshm_thread, NULL) != 0)
		sk_warn("stats_shm", "cannot start the helper thread");
	else
		pthread_setname_np(tid, "slabkit-stats");
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
}

__attribute__((constructor(103))) static void
statshm_constructor(void)
{
	sk_statshm_start();
}

__attribute__((destructor)) static void
statshm_destructor(void)
{
	/* Only the process that started the helper stops it. */
	if (!atomic_load(&statshm_started) || getpid() != statshm_pid)
		return;
	pthread_mutex_lock(&statshm_mtx);
	statshm_stopping = true;
	pthread_cond_signal(&statshm_cv);
	if (still_ours(statshm_fd))
		close(statshm_fd);
	statshm_fd = -1;
	pthread_mutex_unlock(&statshm_mtx);
}
