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
 *   slabkit stat [--json] [PID]
 *	The vmstat -m / -z tables of a running process started with
 *	SLABKIT_OPTIONS=stats_shm (slabkit run --stats-shm), read from the
 *	file its helper thread keeps current (src/statshm.c); without a PID,
 *	the processes that publish one.
 *   slabkit bench [ARGS...]
 *	Runs bench/run.sh from the source tree (or the installed copy).
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
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

#define STATSHM_DIR "/dev/shm"
#define DROPIN      "libslabkit-malloc.so"

static const char *progname = "slabkit";

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: slabkit run [--stats[=text|json]] [--stats-file=PATH] "
	    "[--stats-shm]\n"
	    "                   [--] CMD [ARGS...]\n"
	    "       slabkit stat [--json] [PID]\n"
	    "       slabkit bench [ARGS...]\n"
	    "       slabkit version\n"
	    "       slabkit help\n"
	    "\n"
	    "  run    run CMD with the slabkit malloc(3) drop-in preloaded;\n"
	    "         --stats prints every allocator's tables when CMD exits\n"
	    "         (to stderr, or to PATH with --stats-file), --stats-shm\n"
	    "         lets `slabkit stat' read them while CMD runs\n"
	    "  stat   the vmstat -m/-z tables of a running process (see run\n"
	    "         --stats-shm); without PID, the processes that have them\n"
	    "  bench  the benchmark suite (bench/run.sh)\n"
	    "\n"
	    "See slabkit(1) and slabkit_malloc(3).\n");
}

static void die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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

struct snapshot {
	char *data; /* whole file, NUL-terminated */
	int version;
	long pid;
	double updated; /* seconds since the epoch */
	long interval_ms;
	const char *text;
	size_t text_len;
	const char *json;
	size_t json_len;
};

static char *
read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (fp == NULL)
		return NULL;
	do {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (nb == NULL) {
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, fp);
		n += got;
	} while (got > 0);
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Parse the file format of src/statshm.c; false when it is not one. */
static bool
snapshot_parse(struct snapshot *s, size_t len)
{
	char *p = s->data, *end = s->data + len, *nl;
	unsigned long long n;

	if (sscanf(p, "slabkit-stats %d", &s->version) != 1 || s->version != 1)
		return false;
	for (;;) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return false;
		*nl = '\0';
		if (sscanf(p, "pid %ld", &s->pid) == 1 ||
		    sscanf(p, "updated %lf", &s->updated) == 1 ||
		    sscanf(p, "interval_ms %ld", &s->interval_ms) == 1) {
			p = nl + 1;
			continue;
		}
		if (sscanf(p, "text %llu", &n) == 1)
			break;
		p = nl + 1;
	}
	p = nl + 1;
	if (n > (unsigned long long)(end - p))
		return false;
	s->text = p;
	s->text_len = (size_t)n;
	p += n;
	if (sscanf(p, "json %llu", &n) != 1 ||
	    (nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return false;
	p = nl + 1;
	if (n > (unsigned long long)(end - p))
		return false;
	s->json = p;
	s->json_len = (size_t)n;
	return true;
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
	DIR *d = opendir(STATSHM_DIR);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		die(1, "stat: cannot read %s: %s", STATSHM_DIR,
		    strerror(errno));
	printf("%8s %8s %-7s %s\n", "PID", "AGE", "STATE", "COMMAND");
	while ((e = readdir(d)) != NULL) {
		struct snapshot s;
		char path[PATH_MAX], comm[64];
		size_t len;
		char *end;
		long pid;

		if (strncmp(e->d_name, "slabkit.", 8) != 0)
			continue;
		pid = strtol(e->d_name + 8, &end, 10);
		if (*end != '\0' || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", STATSHM_DIR, e->d_name);
		memset(&s, 0, sizeof(s));
		if ((s.data = read_all(path, &len)) == NULL)
			continue;
		if (snapshot_parse(&s, len)) {
			bool alive = pid_alive(pid);

			pid_comm(pid, comm, sizeof(comm));
			printf("%8ld %7.1fs %-7s %s\n", pid,
			    now_real() - s.updated, alive ? "running" : "gone",
			    comm[0] != '\0' ? comm : "?");
			n++;
		}
		free(s.data);
	}
	closedir(d);
	if (n == 0)
		printf("(no process publishes statistics; start one with "
		       "`slabkit run --stats-shm -- CMD')\n");
	return 0;
}

static int
cmd_stat(int argc, char **argv)
{
	bool json = false;
	const char *pidarg = NULL;
	struct snapshot s;
	char path[PATH_MAX], comm[64];
	size_t len;
	double age;
	char *end;
	long pid;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "-h") == 0 ||
		         strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && pidarg == NULL)
			pidarg = argv[i];
		else {
			fprintf(stderr, "%s: stat: unexpected argument %s\n",
			    progname, argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (pidarg == NULL)
		return stat_list();
	pid = strtol(pidarg, &end, 10);
	if (*end != '\0' || pid <= 0 || pid > INT_MAX)
		die(2, "stat: not a process id: %s", pidarg);
	snprintf(path, sizeof(path), "%s/slabkit.%ld", STATSHM_DIR, pid);
	memset(&s, 0, sizeof(s));
	s.data = read_all(path, &len);
	if (s.data == NULL) {
		if (errno == EACCES)
			die(1, "stat: cannot read %s: %s", path,
			    strerror(errno));
		if (!pid_alive(pid))
			die(1, "stat: no process %ld", pid);
		die(1,
		    "stat: process %ld publishes no statistics (start it "
		    "with SLABKIT_OPTIONS=stats_shm, or `slabkit run "
		    "--stats-shm')",
		    pid);
	}
	if (!snapshot_parse(&s, len) || s.pid != pid)
		die(1, "stat: %s is not a slabkit statistics file", path);
	if (!pid_alive(pid))
		die(1, "stat: process %ld is gone; %s is left over from it",
		    pid, path);
	age = now_real() - s.updated;
	if (s.interval_ms > 0 && age * 1000.0 > 5.0 * (double)s.interval_ms)
		fprintf(stderr,
		    "%s: stat: warning: process %ld last updated its "
		    "statistics %.1f s ago\n",
		    progname, pid, age);
	if (json) {
		fwrite(s.json, 1, s.json_len, stdout);
	} else {
		pid_comm(pid, comm, sizeof(comm));
		printf("process %ld (%s), statistics %.1f s old\n", pid,
		    comm[0] != '\0' ? comm : "?", age < 0 ? 0.0 : age);
		fwrite(s.text, 1, s.text_len, stdout);
	}
	free(s.data);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* bench */

static int
cmd_bench(int argc, char **argv)
{
	static const char *const rels[] = {
	    "../../bench", "../bench", "../share/slabkit/bench", NULL};
	static const char *const here[] = {"bench", NULL};
	const char *src = getenv("SLABKIT_SOURCE_DIR");
	char *dir = exe_dir(), *script = NULL, self[PATH_MAX];
	char **args;
	ssize_t n;

	if (src != NULL && src[0] != '\0')
		script = find_under(src, here, "run.sh");
	if (script == NULL && dir != NULL)
		script = find_under(dir, rels, "run.sh");
	if (script == NULL)
		die(2,
		    "bench: cannot find bench/run.sh (looked in "
		    "%s/../../bench, "
		    "%s/../bench, %s/../share/slabkit/bench%s); run slabkit "
		    "from a build tree inside the source tree, or set "
		    "SLABKIT_SOURCE_DIR",
		    dir ? dir : "?", dir ? dir : "?", dir ? dir : "?",
		    src ? " and $SLABKIT_SOURCE_DIR/bench" : "");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		setenv("SLABKIT_BIN", self, 1);
	}
	args = calloc((size_t)argc + 2, sizeof(*args));
	if (args == NULL)
		die(1, "out of memory");
	args[0] = script;
	for (int i = 1; i < argc; i++)
		args[i] = argv[i];
	fflush(NULL);
	if (access(script, X_OK) == 0) {
		execv(script, args);
	} else {
		/* not executable (a tarball lost the bit): ask sh */
		memmove(args + 1, args, sizeof(*args) * (size_t)argc);
		args[0] = "sh";
		execvp("sh", args);
	}
	die(126, "bench: cannot execute %s: %s", script, strerror(errno));
	return 126;
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
