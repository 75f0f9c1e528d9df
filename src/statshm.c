/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live statistics for `slabkit stat PID': the sysctl side of vmstat(8).
 *
 * In the kernel, vmstat -m and -z read the allocators' counters through
 * sysctl while the system runs.  A process has no sysctl, so with
 * SLABKIT_OPTIONS=stats_shm the library publishes its tables in a small
 * file in shared memory, /dev/shm/slabkit.<pid>, rewritten by a helper
 * thread every STATSHM_INTERVAL_MS.  `slabkit stat PID' reads it.
 *
 * Cost.  Off (the default) nothing runs and nothing is checked on any
 * allocation path: the option is looked at once, at start-up.  On, one
 * thread wakes twice a second, merges the counters exactly as
 * slabkit_stats_print() does, and replaces the file.
 *
 * Format (version 1), all text:
 *     slabkit-stats 1
 *     pid <pid>
 *     updated <seconds since the epoch, with milliseconds>
 *     interval_ms <milliseconds between rewrites>
 *     text <bytes>
 *     <the tables of slabkit_stats_print(), text form>
 *     json <bytes>
 *     <the same tables as one JSON object>
 * A snapshot is written to a temporary name and renamed over the old one,
 * so a reader always sees a whole snapshot and never needs a lock.
 *
 * Lifetime.  The file is removed by a destructor at exit.  A process
 * killed by a signal leaves it behind; `slabkit stat' sees that the pid is
 * gone (or that `updated' stopped moving) and says so.  A child made by
 * fork() does not publish (the helper thread does not survive fork) and
 * never removes its parent's file.  The helper is started by the malloc
 * drop-in's constructor and by a constructor here (the shared library);
 * statically linked programs that do not use the drop-in start it with
 * the first call that references this file (see the README).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define STATSHM_DIR         "/dev/shm"
#define STATSHM_INTERVAL_MS 500
#define STATSHM_VERSION     1

static atomic_int statshm_started;
static pthread_mutex_t statshm_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t statshm_cv;
static bool statshm_stopping;
static pid_t statshm_pid;
static char statshm_path[64];
static char statshm_tmp[64];

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

/* Write one snapshot; false when the file cannot be written. */
static bool
publish(void)
{
	char head[256];
	size_t tlen = 0, jlen = 0, hlen;
	char *text, *json;
	struct timespec now;
	bool ok = false;
	int fd;

	text = render(SLABKIT_STATS_TEXT, &tlen);
	json = render(SLABKIT_STATS_JSON, &jlen);
	if (text == NULL || json == NULL)
		goto out;
	clock_gettime(CLOCK_REALTIME, &now);
	hlen = (size_t)snprintf(head, sizeof(head),
	    "slabkit-stats %d\npid %d\nupdated %ld.%03ld\ninterval_ms %d\n"
	    "text %zu\n",
	    STATSHM_VERSION, (int)statshm_pid, (long)now.tv_sec,
	    now.tv_nsec / 1000000, STATSHM_INTERVAL_MS, tlen);
	/* A fresh file of our own: never one somebody else put there. */
	unlink(statshm_tmp);
	fd = open(statshm_tmp,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto out;
	sk_os_write(fd, head, hlen);
	sk_os_write(fd, text, tlen);
	hlen = (size_t)snprintf(head, sizeof(head), "json %zu\n", jlen);
	sk_os_write(fd, head, hlen);
	sk_os_write(fd, json, jlen);
	ok = close(fd) == 0 && rename(statshm_tmp, statshm_path) == 0;
	if (!ok)
		unlink(statshm_tmp);
out:
	free(text);
	free(json);
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
			    "cannot write %s: no live statistics",
			    statshm_path);
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
	sk_fmt(statshm_path, sizeof(statshm_path), "%s/slabkit.%d", STATSHM_DIR,
	    (int)statshm_pid);
	sk_fmt(statshm_tmp, sizeof(statshm_tmp), "%s/.slabkit.%d.tmp",
	    STATSHM_DIR, (int)statshm_pid);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&statshm_cv, &ca);
	pthread_condattr_destroy(&ca);
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
	/* Only the process that made the file removes it: a forked child
	 * may even have inherited the mutex locked. */
	if (!atomic_load(&statshm_started) || getpid() != statshm_pid)
		return;
	pthread_mutex_lock(&statshm_mtx);
	statshm_stopping = true;
	pthread_cond_signal(&statshm_cv);
	unlink(statshm_path);
	unlink(statshm_tmp);
	pthread_mutex_unlock(&statshm_mtx);
}
