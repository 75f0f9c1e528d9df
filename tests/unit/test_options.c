/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Options: every bad value is refused with an error code and, through
 * SLABKIT_OPTIONS, a message naming the key and the reason; `verbose'
 * prints every option's value in effect at start; slabkit_get_option()
 * reads them back.  The environment cases run this program again with
 * SLABKIT_OPTIONS set and read its stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include <slabkit/slabkit.h>

TEST(bad_values_refused)
{
	CHECK_EQ(slabkit_set_option("memlimit", "-5"), EINVAL);
	CHECK_EQ(slabkit_set_option("memlimit", "12x"), EINVAL);
	CHECK_EQ(slabkit_set_option("memlimit", "100"), ERANGE);
	CHECK_EQ(slabkit_set_option("memlimit", "99999999999T"), ERANGE);
	CHECK_EQ(slabkit_set_option("memlimit", NULL), EINVAL);
	CHECK_EQ(slabkit_set_option("memlimit", "64M"), EBUSY);
	CHECK_EQ(slabkit_set_option("zone_burst", "0"), ERANGE);
	CHECK_EQ(slabkit_set_option("zone_burst", "-3"), EINVAL);
	CHECK_EQ(slabkit_set_option("zone_burst", " 5"), EINVAL);
	CHECK_EQ(slabkit_set_option("zone_burst", "5x"), EINVAL);
	CHECK_EQ(slabkit_set_option("zone_burst", "+5"), EINVAL);
	CHECK_EQ(slabkit_set_option("zone_burst", ""), EINVAL);
	CHECK_EQ(
	    slabkit_set_option("zone_burst", "99999999999999999999"), ERANGE);
	CHECK_EQ(sk_opt.zone_burst, 32);
	CHECK_EQ(slabkit_set_option("waitok_timeout", "-1"), EINVAL);
	CHECK_EQ(slabkit_set_option("objcache_reap", "3600001"), ERANGE);
	CHECK_EQ(slabkit_set_option("invariants", "2"), EINVAL);
	CHECK_EQ(slabkit_set_option("stats", "xml"), EINVAL);
	CHECK_EQ(slabkit_set_option("stats_file", ""), EINVAL);
	{
		char longpath[400];

		memset(longpath, 'a', sizeof(longpath) - 1);
		longpath[sizeof(longpath) - 1] = '\0';
		CHECK_EQ(
		    slabkit_set_option("stats_file", longpath), ENAMETOOLONG);
	}
	CHECK_EQ(slabkit_set_option("track", "bogus"), EINVAL);
#ifndef SLABKIT_ASAN
	CHECK_EQ(slabkit_set_option("track", "asan"), ENOTSUP);
#endif
	CHECK_EQ(slabkit_set_option("no_such_key", "1"), ENOENT);
}

TEST(get_option)
{
	char buf[300], want[64];

	snprintf(want, sizeof(want), "%zuM", kmem_lim_size());
	CHECK_EQ(slabkit_get_option("memlimit", buf, sizeof(buf)), 0);
	CHECK_STR_EQ(buf, want);
	CHECK_EQ(slabkit_set_option("zone_burst", "17"), 0);
	CHECK_EQ(slabkit_get_option("zone_burst", buf, sizeof(buf)), 0);
	CHECK_STR_EQ(buf, "17");
	CHECK_EQ(slabkit_set_option("zone_burst", "32"), 0);
	CHECK_EQ(slabkit_get_option("track", buf, sizeof(buf)), 0);
	CHECK_STR_EQ(buf, "none");
	CHECK_EQ(slabkit_get_option("stats", buf, sizeof(buf)), 0);
	CHECK_STR_EQ(buf, "off");
	CHECK_EQ(slabkit_get_option("invariants", buf, sizeof(buf)), 0);
	CHECK_STR_EQ(buf, "0");
	CHECK_EQ(slabkit_get_option("color", buf, sizeof(buf)), 0);
	CHECK_STR_EQ(buf, "1"); /* the plain library colours zones */
	snprintf(want, sizeof(want), "%d", sk_slab.zone_rels_thresh);
	CHECK_EQ(slabkit_get_option("zone_cache", buf, sizeof(buf)), 0);
	CHECK_STR_EQ(buf, want);
	/* what comes back is accepted back */
	CHECK_EQ(slabkit_set_option("zone_cache", buf), 0);
	CHECK_EQ(slabkit_get_option("memlimit", buf, 3), ERANGE);
	CHECK_EQ(strlen(buf), 2);
	CHECK_EQ(slabkit_get_option("no_such_key", buf, sizeof(buf)), ENOENT);
	CHECK_EQ(slabkit_get_option(NULL, buf, sizeof(buf)), EINVAL);
	CHECK_EQ(slabkit_get_option("memlimit", NULL, 0), EINVAL);
}

/* Run this program with SLABKIT_OPTIONS=opts; its stderr into buf. */
static int
run_self(const char *opts, char *buf, size_t len)
{
	char self[4096];
	int fd[2], status;
	size_t len_read = 0;
	ssize_t got, n;
	pid_t pid;

	if (pipe(fd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		setenv("SLABKIT_OPTIONS", opts, 1);
		unsetenv("SLABKIT_TRACK");
		/* the path, not /proc/self/exe: under valgrind that is the
		 * tool, while readlink shows the program */
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = '\0';
			execl(self, "test_options", "--child", (char *)NULL);
		}
		_exit(127);
	}
	close(fd[1]);
	while (len_read + 1 < len &&
	       (got = read(fd[0], buf + len_read, len - len_read - 1)) > 0)
		len_read += (size_t)got;
	buf[len_read] = '\0';
	close(fd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(verbose_prints_configuration)
{
	static const char *const keys[] = {"memlimit", "zone_cache",
	    "zone_burst", "colour", "invariants", "pattern", "weird",
	    "hardened", "track", "objcache_reap", "waitok_timeout", "stats",
	    "stats_file", "stats_shm", "verbose"};
	static char out[16384];
	char line[64];

	CHECK_EQ(
	    run_self("verbose,zone_burst=9,memlimit=256M", out, sizeof(out)),
	    0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(line, sizeof(line), "slabkit: options: %s=", keys[i]);
		if (strstr(out, line) == NULL)
			sk_t_fail(
			    __FILE__, __LINE__, "no '%s' in:\n%s", line, out);
	}
	CHECK(strstr(out, "slabkit: options: zone_burst=9\n") != NULL);
	CHECK(strstr(out, "slabkit: options: memlimit=256M\n") != NULL);
	CHECK(strstr(out, "slabkit: options: zone_cache=") != NULL &&
	      strstr(out, "(derived") != NULL);
	/* nothing without verbose */
	CHECK_EQ(run_self("zone_burst=9", out, sizeof(out)), 0);
	CHECK_STR_EQ(out, "");
}

TEST(environment_messages)
{
	static char out[16384];

	CHECK_EQ(run_self("memlimit=-5,zone_burst=abc,zone_burst=0,"
	                  "invariants=maybe,nosuchkey,track=asan",
	             out, sizeof(out)),
	    0);
	CHECK(strstr(out, "slabkit: SLABKIT_OPTIONS: memlimit=-5 rejected: "
	                  "not a size") != NULL);
	CHECK(
	    strstr(out, "zone_burst=abc rejected: not a whole number") != NULL);
	CHECK(
	    strstr(out, "zone_burst=0 rejected: out of range (1 to ") != NULL);
	CHECK(strstr(out, "invariants=maybe rejected: expects 0 or 1") != NULL);
	CHECK(strstr(out, "unknown option 'nosuchkey'") != NULL);
#ifndef SLABKIT_ASAN
	CHECK(strstr(out, "track=asan rejected: this build lacks "
	                  "AddressSanitizer") != NULL);
	CHECK(strstr(out, "bad value") == NULL);
#endif
	if (sk_t_case_failed)
		printf("child stderr:\n%s", out);
}

/*
 * The machine facts start-up reads with raw system calls (os/linux.c: no
 * sysconf, sched_getaffinity or strtoull, whose corners of libc would
 * cost a program 64 KiB of RSS each) agree with what libc says.
 */
TEST(machine_facts_match_libc)
{
	cpu_set_t set;
	long pages = sysconf(_SC_PHYS_PAGES);

	CHECK_EQ(sk_os_page_size(), (size_t)sysconf(_SC_PAGESIZE));
	CHECK_EQ((size_t)1 << sk_os_page_shift(), sk_os_page_size());
	CHECK_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	CHECK_EQ(sk_os_ncpus(), CPU_COUNT(&set));
	/* RAM, or less under a cgroup limit or RLIMIT_AS */
	CHECK(pages > 0);
	CHECK(sk_os_usable_memory_mb() >= 1);
	CHECK(sk_os_usable_memory_mb() <=
	      (size_t)pages * (size_t)sysconf(_SC_PAGESIZE) >> 20);
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--child") == 0) {
		/* start-up has printed what it had to; use the library */
		void *p = kmalloc(32, M_TEMP, M_WAITOK);

		kfree(p, M_TEMP);
		return 0;
	}
	RUN(bad_values_refused);
	RUN(get_option);
	RUN(verbose_prints_configuration);
	RUN(environment_messages);
	RUN(machine_facts_match_libc);
	return sk_t_done();
}
