/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit(1): run programs on the malloc drop-in, look at a running
 * program's allocator tables, run the benchmark suite.
 *
 *   slabkit run [--stats[=text|json]] [--stats-file=PATH] [--stats-shm]
 *       [--] CMD [ARGS...]
 *	Replaces itself with CMD, with libslabkit-malloc preloaded and
 *	SLABKIT_OPTIONS extended with what was asked for, so the exit status
 *	(or the signal) is CMD's own.  The library prints the tables at exit.
 *   slabkit stat [--json] [PID], slabkit stat -w SECONDS [-c N] PID
 *	The vmstat -m / -z tables of a running process started with
 *	SLABKIT_OPTIONS=stats_shm (slabkit run --stats-shm), read from the
 *	sealed memfd its helper thread keeps current (src/statshm.c) through
 *	/proc/PID/fd; without a PID, the processes that publish one.  -w
 *	prints requests per second by type every SECONDS.
 *   slabkit bench [--quick] [--runs N] [--only RE] [--skip L] [--out DIR]
 *	Runs bench/run.sh from the source tree (or the installed copy) in
 *	its own process group; Ctrl-C stops it and exits 130.
 *   slabkit version, slabkit help
 *
 * The drop-in is looked for relative to this executable, so a build tree
 * and an installed tree both work without configuration: the same
 * directory (build tree), ../lib, ../lib/<multiarch>, ../lib64, then the
 * library directory the build was configured with (SLABKIT_LIBDIR).
 *
 * This is an ordinary program: it uses stdio and malloc freely, and it
 * never loads the drop-in into itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SLABKIT_VERSION_STRING
#define SLABKIT_VERSION_STRING "0.1.0"
#endif
#ifndef SLABKIT_LIBDIR
#define SLABKIT_LIBDIR "/usr/local/lib"
#endif

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
#define MULTIARCH "i386-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define MULTIARCH "riscv64-linux-gnu"
#else
#define MULTIARCH ""
#endif

#define DROPIN "libslabkit-malloc.so"

static const char *progname = "slabkit";

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: slabkit run [--stats[=text|json]] [--stats-file=PATH] "
	    "[--stats-shm]\n"
	    "                   [--] CMD [ARGS...]\n"
	    "       slabkit stat [--json] [PID]\n"
	    "       slabkit stat -w SECONDS [-c COUNT] PID\n"
	    "       slabkit bench [--quick] [--runs N] [--only REGEX] "
	    "[--skip LIST] [--out DIR]\n"
	    "       slabkit version\n"
	    "       slabkit help\n"
	    "\n"
	    "  run    run CMD with the slabkit malloc(3) drop-in preloaded;\n"
	    "         --stats prints every allocator's tables when CMD exits\n"
	    "         (to stderr, or to PATH with --stats-file), --stats-shm\n"
	    "         lets `slabkit stat' read them while CMD runs\n"
	    "  stat   the vmstat -m/-z tables of a running process (see run\n"
	    "         --stats-shm); without PID, the processes that have "
	    "them;\n"
	    "         -w: every SECONDS, requests per second by type (COUNT\n"
	    "         samples, or until the process exits)\n"
	    "  bench  the benchmark suite (bench/run.sh; slabkit bench "
	    "--help)\n"
	    "\n"
	    "See slabkit(1) and slabkit_malloc(3).\n");
}

static void die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* Directory of this executable (no trailing slash), or NULL. */
static char *
exe_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	char *slash;

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	return strdup(buf[0] != '\0' ? buf : "/");
}

static bool
is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* First of dir/rel + name that exists, made absolute; NULL if none. */
static char *
find_under(const char *dir, const char *const *rels, const char *name)
{
	char path[PATH_MAX * 2], real[PATH_MAX];

	for (; *rels != NULL; rels++) {
		if ((*rels)[0] == '\0')
			continue;
		snprintf(path, sizeof(path), "%s/%s%s%s", dir, *rels,
		    (*rels)[strlen(*rels) - 1] == '/' ? "" : "/", name);
		if (is_file(path) && realpath(path, real) != NULL)
			return strdup(real);
	}
	return NULL;
}

static char *
find_dropin(void)
{
	static const char *const rels[] = {
	    ".", "../lib", "../lib/" MULTIARCH, "../lib64", NULL};
	static const char *const names[] = {DROPIN, DROPIN ".0", NULL};
	static const char *const abs_dir[] = {".", NULL};
	char *dir = exe_dir(), *found = NULL;

	for (int i = 0; names[i] != NULL && found == NULL; i++) {
		if (dir != NULL)
			found = find_under(dir, rels, names[i]);
		if (found == NULL)
			found = find_under(SLABKIT_LIBDIR, abs_dir, names[i]);
	}
	free(dir);
	return found;
}

/* Append ",item" (or "item") to an environment variable's value. */
static void
env_append(const char *var, const char *item, const char *sep)
{
	const char *old = getenv(var);
	char *val;

	if (old != NULL && old[0] != '\0') {
		if (asprintf(&val, "%s%s%s", old, sep, item) < 0)
			die(1, "out of memory");
	} else {
		val = strdup(item);
	}
	if (val == NULL || setenv(var, val, 1) != 0)
		die(1, "cannot set %s", var);
	free(val);
}

/* The library goes first in LD_PRELOAD so its malloc wins. */
static void
env_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *val;

	if (old != NULL && old[0] != '\0') {
		if (asprintf(&val, "%s:%s", lib, old) < 0)
			die(1, "out of memory");
	} else {
		val = strdup(lib);
	}
	if (val == NULL || setenv("LD_PRELOAD", val, 1) != 0)
		die(1, "cannot set LD_PRELOAD");
	free(val);
}

static int
cmd_run(int argc, char **argv)
{
	const char *stats = NULL, *stats_file = NULL;
	bool shm = false;
	char *lib, *abs_file = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (strcmp(a, "--stats") == 0 || strcmp(a, "--stats=text") == 0)
			stats = "stats";
		else if (strcmp(a, "--stats=json") == 0)
			stats = "stats=json";
		else if (strncmp(a, "--stats-file=", 13) == 0)
			stats_file = a + 13;
		else if (strcmp(a, "--stats-shm") == 0)
			shm = true;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "%s: run: unknown option %s\n",
			    progname, a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "%s: run: no command given\n", progname);
		usage(stderr);
		return 2;
	}
	lib = find_dropin();
	if (lib == NULL)
		die(2,
		    "run: cannot find %s (looked beside %s, in ../lib and "
		    "in %s)",
		    DROPIN, "this executable", SLABKIT_LIBDIR);
	if (stats_file != NULL) {
		if (stats_file[0] == '\0' || strchr(stats_file, ',') != NULL)
			die(2, "run: --stats-file needs a path without commas");
		if (stats_file[0] != '/') {
			char cwd[PATH_MAX];

			if (getcwd(cwd, sizeof(cwd)) == NULL)
				die(1, "run: getcwd: %s", strerror(errno));
			if (asprintf(&abs_file, "%s/%s", cwd, stats_file) < 0)
				die(1, "out of memory");
		} else {
			abs_file = strdup(stats_file);
		}
		if (strlen(abs_file) >= 256)
			die(2, "run: --stats-file path is too long (255 bytes "
			       "at most)");
		if (stats == NULL)
			stats = "stats";
	}
	env_preload(lib);
	if (stats != NULL)
		env_append("SLABKIT_OPTIONS", stats, ",");
	if (abs_file != NULL) {
		char *item;

		if (asprintf(&item, "stats_file=%s", abs_file) < 0)
			die(1, "out of memory");
		env_append("SLABKIT_OPTIONS", item, ",");
		free(item);
	}
	if (shm)
		env_append("SLABKIT_OPTIONS", "stats_shm", ",");
	fflush(NULL);
	execvp(argv[i], argv + i);
	die(errno == ENOENT ? 127 : 126, "run: cannot execute %s: %s", argv[i],
	    strerror(errno));
	return 127;
}

/* ------------------------------------------------------------------ */
/* stat */

/*
 * A process's live statistics are an anonymous, sealed memory file named
 * "slabkit-stats" among its descriptors (src/statshm.c).  They are reached
 * only through /proc/PID/fd, which the kernel lets through only for users
 * allowed to inspect the process; nothing is read from a shared directory,
 * so nobody can plant, forge or pre-empt them.  Whatever the process wrote
 * is still treated as hostile: the file is opened without blocking, must be
 * a sealed regular file of bounded size, and every byte printed is
 * sanitised.
 */
#define STATS_MEMFD "/memfd:slabkit-stats"
#define STATS_MAX   (8u << 20) /* bytes: far above any real snapshot */

struct stat_type {
	char name[64];
	unsigned long long inuse, memuse, calls;
};

struct snapshot {
	char *data; /* whole file, NUL-terminated */
	int version;
	long pid;
	unsigned long seq;
	double updated; /* seconds since the epoch */
	long interval_ms;
	struct stat_type *types;
	size_t ntypes;
	const char *text;
	size_t text_len;
	const char *json;
	size_t json_len;
};

static void
snapshot_free(struct snapshot *s)
{
	free(s->data);
	free(s->types);
	memset(s, 0, sizeof(*s));
}

/* Print untrusted bytes: printable ASCII, newline and tab; '?' for the
 * rest, so no escape sequence reaches the terminal. */
static void
put_clean(FILE *fp, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		fputc(
		    (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' ? c : '?',
		    fp);
	}
}

/* In place, for short strings (command names, type names). */
static void
clean_str(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

/* Parse the format of src/statshm.c (version 2); false if it is not one. */
static bool
snapshot_parse(struct snapshot *s, size_t len)
{
	char *p = s->data, *end = s->data + len, *nl;
	unsigned long long n = 0;
	unsigned long ntypes = 0;

	if (sscanf(p, "slabkit-stats %d", &s->version) != 1 || s->version != 2)
		return false;
	for (;;) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return false;
		*nl = '\0';
		if (sscanf(p, "pid %ld", &s->pid) == 1 ||
		    sscanf(p, "seq %lu", &s->seq) == 1 ||
		    sscanf(p, "updated %lf", &s->updated) == 1 ||
		    sscanf(p, "interval_ms %ld", &s->interval_ms) == 1 ||
		    strncmp(p, "slabkit-stats ", 14) == 0) {
			p = nl + 1;
			continue;
		}
		if (sscanf(p, "types %lu", &ntypes) == 1)
			break;
		return false;
	}
	p = nl + 1;
	if (ntypes > 100000)
		return false;
	s->types = calloc(ntypes + 1, sizeof(*s->types));
	if (s->types == NULL)
		return false;
	for (unsigned long i = 0; i < ntypes; i++) {
		struct stat_type *t = &s->types[i];
		char *tab;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return false;
		*nl = '\0';
		tab = strchr(p, '\t');
		if (tab == NULL || sscanf(tab, "\t%llu\t%llu\t%llu", &t->inuse,
		                       &t->memuse, &t->calls) != 3)
			return false;
		*tab = '\0';
		snprintf(t->name, sizeof(t->name), "%s", p);
		clean_str(t->name);
		p = nl + 1;
	}
	s->ntypes = ntypes;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL || sscanf(p, "text %llu", &n) != 1)
		return false;
	p = nl + 1;
	if (n > (unsigned long long)(end - p))
		return false;
	s->text = p;
	s->text_len = (size_t)n;
	p += n;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL || sscanf(p, "json %llu", &n) != 1)
		return false;
	p = nl + 1;
	if (n > (unsigned long long)(end - p))
		return false;
	s->json = p;
	s->json_len = (size_t)n;
	return true;
}

enum stat_result {
	STAT_OK,
	STAT_NOPROC,  /* no such process */
	STAT_DENIED,  /* not allowed to inspect it */
	STAT_NONE,    /* it publishes nothing */
	STAT_INVALID, /* it publishes something that is not a snapshot */
};

/* Read one descriptor's file, at most STATS_MAX bytes, never blocking. */
static char *
read_stats_fd(const char *path, size_t *len, const char **why)
{
	struct stat pre, st;
	size_t n = 0;
	char *buf;
	int fd, seals;

	/*
	 * Look before opening: only an unnamed regular file (a memfd has no
	 * link) is opened, so no device or FIFO of the process's is ever
	 * opened, whatever it is called.
	 */
	if (stat(path, &pre) != 0) {
		*why = errno == EACCES || errno == EPERM ? "denied" : NULL;
		return NULL;
	}
	if (!S_ISREG(pre.st_mode) || pre.st_nlink != 0) {
		*why = "not a memory file";
		return NULL;
	}
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		*why = errno == EACCES || errno == EPERM ? "denied" : NULL;
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_dev != pre.st_dev || st.st_ino != pre.st_ino) {
		*why = "not a regular file";
		goto fail;
	}
	if (st.st_size < 0 || (unsigned long long)st.st_size > STATS_MAX) {
		*why = "larger than any statistics snapshot";
		goto fail;
	}
	/* A snapshot is complete once sealed against writing. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_WRITE) || !(seals & F_SEAL_GROW)) {
		*why = "not sealed";
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		die(1, "out of memory");
	while (n < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	close(fd);
	return NULL;
}

/*
 * The newest complete snapshot that process pid publishes.  *why says
 * what was wrong for STAT_INVALID.
 */
static enum stat_result
stats_open(long pid, struct snapshot *out, const char **why)
{
	char dir[64], path[PATH_MAX], link[PATH_MAX];
	enum stat_result res = STAT_NONE;
	struct dirent *e;
	DIR *d;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT                     ? STAT_NOPROC
		       : errno == EACCES || errno == EPERM ? STAT_DENIED
		                                           : STAT_NOPROC;
	while ((e = readdir(d)) != NULL) {
		struct snapshot s;
		const char *w = NULL;
		size_t len = 0;
		ssize_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, STATS_MEMFD, strlen(STATS_MEMFD)) != 0)
			continue;
		memset(&s, 0, sizeof(s));
		s.data = read_stats_fd(path, &len, &w);
		if (s.data == NULL) {
			if (w != NULL && strcmp(w, "denied") == 0) {
				if (res == STAT_NONE)
					res = STAT_DENIED;
			} else if (w != NULL && res != STAT_OK) {
				res = STAT_INVALID;
				*why = w;
			}
			continue;
		}
		if (!snapshot_parse(&s, len) || s.pid != pid) {
			snapshot_free(&s);
			if (res != STAT_OK) {
				res = STAT_INVALID;
				*why = "not a slabkit statistics snapshot";
			}
			continue;
		}
		if (res != STAT_OK || s.seq > out->seq) {
			snapshot_free(out);
			*out = s;
			res = STAT_OK;
		} else {
			snapshot_free(&s);
		}
	}
	closedir(d);
	return res;
}

static bool
pid_alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void
pid_comm(long pid, char *buf, size_t len)
{
	char path[64];
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	buf[0] = '\0';
	fp = fopen(path, "r");
	if (fp == NULL)
		return;
	if (fgets(buf, (int)len, fp) != NULL)
		buf[strcspn(buf, "\n")] = '\0';
	fclose(fp);
	clean_str(buf);
}

static double
now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
stat_list(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();
	int n = 0;

	if (d == NULL)
		die(1, "stat: cannot read /proc: %s", strerror(errno));
	printf("%8s %8s %s\n", "PID", "AGE", "COMMAND");
	while ((e = readdir(d)) != NULL) {
		struct snapshot s;
		const char *why;
		char comm[64], *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end != '\0' || pid <= 0 || pid == self)
			continue;
		if (stats_open(pid, &s, &why) != STAT_OK)
			continue;
		pid_comm(pid, comm, sizeof(comm));
		printf("%8ld %7.1fs %s\n", pid, now_real() - s.updated,
		    comm[0] != '\0' ? comm : "?");
		snapshot_free(&s);
		n++;
	}
	closedir(d);
	if (n == 0)
		printf("(no process you may inspect publishes statistics; "
		       "start one with `slabkit run --stats-shm -- CMD')\n");
	return 0;
}

/* The snapshot of pid, or exit 1 with the reason. */
static void
stats_get(long pid, struct snapshot *s)
{
	const char *why;

	switch (stats_open(pid, s, &why)) {
	case STAT_OK:
		return;
	case STAT_NOPROC:
		die(1, "stat: no process %ld", pid);
	case STAT_DENIED:
		die(1,
		    "stat: not allowed to inspect process %ld (its "
		    "statistics are readable by whoever may ptrace it)",
		    pid);
	case STAT_INVALID:
		die(1, "stat: process %ld publishes no valid statistics (%s)",
		    pid, why != NULL ? why : "?");
	case STAT_NONE:
		break;
	}
	die(1,
	    "stat: process %ld publishes no statistics (start it with "
	    "SLABKIT_OPTIONS=stats_shm, or `slabkit run --stats-shm')",
	    pid);
}

static const struct stat_type *
find_type(const struct snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->ntypes; i++)
		if (strcmp(s->types[i].name, name) == 0)
			return &s->types[i];
	return NULL;
}

/* One sample of `stat -w': vmstat -m's columns plus rates since prev. */
static void
watch_print(long pid, const struct snapshot *s, const struct snapshot *prev,
    double interval, bool clear)
{
	double dt = prev != NULL ? s->updated - prev->updated : 0;
	unsigned long long tot_calls = 0, tot_mem = 0;
	char comm[64], when[32];
	time_t t = (time_t)s->updated;
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	pid_comm(pid, comm, sizeof(comm));
	if (clear)
		fputs("\033[H\033[2J", stdout);
	printf("process %ld (%s) at %s, every %g s%s\n", pid,
	    comm[0] != '\0' ? comm : "?", when, interval,
	    prev == NULL ? " (first sample: no rates yet)" : "");
	printf("%19s %8s %9s %10s %10s %10s\n", "Type", "InUse", "MemUse",
	    "Requests", "Req/s", "InUse/s");
	for (size_t i = 0; i < s->ntypes; i++) {
		const struct stat_type *ty = &s->types[i];
		const struct stat_type *old =
		    prev != NULL ? find_type(prev, ty->name) : NULL;

		tot_calls += ty->calls;
		tot_mem += ty->memuse;
		printf("%19.19s %8llu %8lluK %10llu", ty->name, ty->inuse,
		    (ty->memuse + 1023) / 1024, ty->calls);
		if (prev != NULL && dt > 0) {
			double c = (double)ty->calls -
			           (old != NULL ? (double)old->calls : 0);
			double u = (double)ty->inuse -
			           (old != NULL ? (double)old->inuse : 0);

			printf(" %10.0f %+10.0f\n", c / dt, u / dt);
		} else {
			printf(" %10s %10s\n", "-", "-");
		}
	}
	printf("%19s %8s %8lluK %10llu\n\n", "total", "",
	    (tot_mem + 1023) / 1024, tot_calls);
	fflush(stdout);
}

static int
stat_watch(long pid, double interval, long count)
{
	struct snapshot prev, cur;
	bool have_prev = false;
	bool clear = isatty(STDOUT_FILENO);

	memset(&prev, 0, sizeof(prev));
	for (long i = 0; count <= 0 || i < count; i++) {
		struct timespec ts;

		if (i > 0) {
			ts.tv_sec = (time_t)interval;
			ts.tv_nsec =
			    (long)((interval - (double)ts.tv_sec) * 1e9);
			while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
				;
			if (!pid_alive(pid)) {
				printf("process %ld has exited\n", pid);
				break;
			}
		}
		stats_get(pid, &cur);
		watch_print(
		    pid, &cur, have_prev ? &prev : NULL, interval, clear);
		snapshot_free(&prev);
		prev = cur;
		have_prev = true;
	}
	snapshot_free(&prev);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
cmd_stat(int argc, char **argv)
{
	bool json = false;
	const char *pidarg = NULL;
	double interval = 0;
	long count = 0;
	struct snapshot s;
	char comm[64];
	double age;
	char *end;
	long pid;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--json") == 0) {
			json = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-w") == 0 || strcmp(a, "-c") == 0) {
			if (i + 1 >= argc)
				die(2, "stat: %s needs a value", a);
			if (a[1] == 'w') {
				interval = strtod(argv[++i], &end);
				if (*end != '\0' || end == argv[i] ||
				    !(interval >= 0.1 && interval <= 86400))
					die(2,
					    "stat: -w wants seconds between "
					    "0.1 and 86400, not '%s'",
					    argv[i]);
			} else {
				count = strtol(argv[++i], &end, 10);
				if (*end != '\0' || end == argv[i] || count < 1)
					die(2,
					    "stat: -c wants a count of at "
					    "least 1, not '%s'",
					    argv[i]);
			}
		} else if (a[0] != '-' && pidarg == NULL) {
			pidarg = a;
		} else {
			fprintf(stderr, "%s: stat: unexpected argument %s\n",
			    progname, a);
			usage(stderr);
			return 2;
		}
	}
	if (pidarg == NULL) {
		if (interval > 0 || count > 0 || json)
			die(2, "stat: --json, -w and -c need a PID");
		return stat_list();
	}
	pid = strtol(pidarg, &end, 10);
	if (*end != '\0' || pid <= 0 || pid > INT_MAX)
		die(2, "stat: not a process id: %s", pidarg);
	if (count > 0 && interval == 0)
		interval = 1;
	if (interval > 0) {
		if (json)
			die(2, "stat: -w shows rates as text; --json takes "
			       "one snapshot");
		return stat_watch(pid, interval, count);
	}
	stats_get(pid, &s);
	age = now_real() - s.updated;
	if (s.interval_ms > 0 && age * 1000.0 > 5.0 * (double)s.interval_ms)
		fprintf(stderr,
		    "%s: stat: warning: process %ld last updated its "
		    "statistics %.1f s ago\n",
		    progname, pid, age);
	if (json) {
		put_clean(stdout, s.json, s.json_len);
	} else {
		pid_comm(pid, comm, sizeof(comm));
		printf("process %ld (%s), statistics %.1f s old\n", pid,
		    comm[0] != '\0' ? comm : "?", age < 0 ? 0.0 : age);
		put_clean(stdout, s.text, s.text_len);
	}
	snapshot_free(&s);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* bench */

static void
bench_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: slabkit bench [--quick] [--runs N] [--only REGEX] "
	    "[--skip LIST]\n"
	    "                     [--out DIR] [--build-dir DIR]\n"
	    "\n"
	    "Runs the benchmark suite (bench/run.sh) against glibc, jemalloc,\n"
	    "mimalloc and tcmalloc, and writes a report.  A full run takes a\n"
	    "long while; --quick takes a few minutes.\n"
	    "\n"
	    "  --quick          3 runs per case, smaller sizes\n"
	    "  --runs N         counted runs per allocator (default 5, 3 "
	    "with --quick)\n"
	    "  --only REGEX     only the cases whose name matches\n"
	    "  --skip LIST      comma list of workloads, programs, native,\n"
	    "                   callgrind, profiles\n"
	    "  --out DIR        where the report goes (default "
	    "bench/results in a\n"
	    "                   source tree, ./slabkit-bench otherwise)\n"
	    "  --build-dir DIR  a build tree to measure (source tree only;\n"
	    "                   default build/release)\n"
	    "  -h, --help       this text; runs nothing\n"
	    "\n"
	    "Ctrl-C stops the run (exit 130).\n");
}

static volatile sig_atomic_t bench_signal;

static void
bench_on_signal(int sig)
{
	bench_signal = sig;
}

/* Where run.sh is: a source tree, the installed copy. */
static char *
find_bench_script(void)
{
	static const char *const rels[] = {
	    "../../bench", "../bench", "../share/slabkit/bench", NULL};
	static const char *const here[] = {"bench", NULL};
	static const char *const abs_dir[] = {".", NULL};
	const char *src = getenv("SLABKIT_SOURCE_DIR");
	char *dir = exe_dir(), *script = NULL;

	if (src != NULL && src[0] != '\0')
		script = find_under(src, here, "run.sh");
	if (script == NULL && dir != NULL)
		script = find_under(dir, rels, "run.sh");
#ifdef SLABKIT_BENCHDIR
	if (script == NULL)
		script = find_under(SLABKIT_BENCHDIR, abs_dir, "run.sh");
#else
	(void)abs_dir;
#endif
	if (script == NULL) {
		fprintf(stderr,
		    "%s: bench: cannot find bench/run.sh (looked in "
		    "%s%s../../bench, ../bench and ../share/slabkit/bench "
		    "beside this executable",
		    progname, src != NULL ? "$SLABKIT_SOURCE_DIR/bench, " : "",
		    "");
#ifdef SLABKIT_BENCHDIR
		fprintf(stderr, ", and in %s", SLABKIT_BENCHDIR);
#endif
		fprintf(stderr, "); run slabkit from a build tree inside the "
		                "source tree, install it, or set "
		                "SLABKIT_SOURCE_DIR\n");
		exit(2);
	}
	free(dir);
	return script;
}

static int
cmd_bench(int argc, char **argv)
{
	static const char *const with_value[] = {
	    "--runs", "--only", "--skip", "--out", "--build-dir", NULL};
	struct sigaction sa, old_int, old_term, old_hup;
	char *script, self[PATH_MAX];
	char **args;
	int nargs = 0, status;
	ssize_t n;
	pid_t child;

	args = calloc((size_t)argc + 3, sizeof(*args));
	if (args == NULL)
		die(1, "out of memory");
	args[nargs++] = "sh";
	args[nargs++] = NULL; /* the script, once found */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool known = false;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			bench_usage(stdout);
			return 0;
		}
		if (strcmp(a, "--quick") == 0) {
			args[nargs++] = argv[i];
			continue;
		}
		for (int k = 0; with_value[k] != NULL; k++) {
			size_t l = strlen(with_value[k]);

			if (strcmp(a, with_value[k]) == 0) {
				if (i + 1 >= argc) {
					fprintf(stderr,
					    "%s: bench: %s needs a value\n",
					    progname, a);
					return 2;
				}
				args[nargs++] = argv[i];
				args[nargs++] = argv[++i];
				known = true;
			} else if (strncmp(a, with_value[k], l) == 0 &&
			           a[l] == '=') {
				args[nargs++] = argv[i];
				known = true;
			}
			if (known)
				break;
		}
		if (known && strncmp(a, "--runs", 6) == 0) {
			const char *v =
			    strchr(a, '=') ? strchr(a, '=') + 1 : argv[i];
			char *end;
			long r = strtol(v, &end, 10);

			if (*end != '\0' || end == v || r < 1 || r > 1000) {
				fprintf(stderr,
				    "%s: bench: --runs wants a number from 1 "
				    "to 1000, not '%s'\n",
				    progname, v);
				return 2;
			}
		}
		if (!known) {
			fprintf(stderr,
			    "%s: bench: unknown %s %s (see slabkit bench "
			    "--help)\n",
			    progname, a[0] == '-' ? "option" : "argument", a);
			return 2;
		}
	}
	args[nargs] = NULL;
	script = find_bench_script();
	args[1] = script;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		setenv("SLABKIT_BIN", self, 1);
	}
	/*
	 * The suite runs in its own process group, so a Ctrl-C reaches this
	 * process only; it is passed on to the script, which stops its
	 * children quietly (no Python traceback), and we exit 130.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, NULL, &old_int);
	sigaction(SIGTERM, NULL, &old_term);
	sigaction(SIGHUP, NULL, &old_hup);
	/* (a signal ignored on entry, as under nohup, stays ignored) */
	if (old_int.sa_handler != SIG_IGN)
		sigaction(SIGINT, &sa, NULL);
	if (old_term.sa_handler != SIG_IGN)
		sigaction(SIGTERM, &sa, NULL);
	if (old_hup.sa_handler != SIG_IGN)
		sigaction(SIGHUP, &sa, NULL);
	fflush(NULL);
	child = fork();
	if (child < 0)
		die(1, "bench: fork: %s", strerror(errno));
	if (child == 0) {
		setpgid(0, 0);
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
		/* through sh: a run.sh that lost its x bit still runs */
		execvp("sh", args);
		fprintf(stderr, "%s: bench: cannot execute sh %s: %s\n",
		    progname, script, strerror(errno));
		_exit(126);
	}
	setpgid(child, child);
	for (bool forwarded = false;;) {
		pid_t w = waitpid(child, &status, 0);

		if (w == child)
			break;
		if (w < 0 && errno != EINTR)
			die(1, "bench: waitpid: %s", strerror(errno));
		if (bench_signal != 0 && !forwarded) {
			kill(-child, bench_signal);
			forwarded = true;
		}
	}
	free(script);
	free(args);
	if (bench_signal != 0) {
		/* The script says so itself when it caught the signal. */
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 130)
			fprintf(stderr, "%s: bench: interrupted\n", progname);
		return 128 + (bench_signal == SIGINT ? SIGINT : bench_signal);
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int
cmd_version(void)
{
	char *lib = find_dropin();

	printf("slabkit %s\n", SLABKIT_VERSION_STRING);
	printf("drop-in: %s\n", lib != NULL ? lib : "(not found)");
	free(lib);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(cmd, "stat") == 0)
		return cmd_stat(argc - 1, argv + 1);
	if (strcmp(cmd, "bench") == 0)
		return cmd_bench(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 ||
	    strcmp(cmd, "-V") == 0)
		return cmd_version();
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "%s: unknown command '%s'\n", progname, cmd);
	usage(stderr);
	return 2;
}
