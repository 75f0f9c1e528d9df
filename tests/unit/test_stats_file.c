/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * stats_file at exit (sk_stats_at_exit, src/stats.c): a link in the last
 * component, a FIFO, a directory and another user's file are refused with
 * one line naming the path and the reason (the report goes to stderr and
 * nothing is written there); a failed write is reported with its errno;
 * an own file is truncated; /dev/stderr and /dev/fd/N are this process's
 * descriptors.  Each case runs the at-exit report in a forked child with
 * stderr captured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabkit/control.h>
#include <slabkit/kmalloc.h>

#include "harness.h"
#include "internal.h"

static char dir[64];
static char err[16384];

#define REPORT "slabkit statistics of pid"

/* Run the at-exit report with stats_file=path in a child; its stderr in
 * err. */
static int
report_to(const char *path)
{
	int fds[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	err[0] = '\0';
	if (pipe(fds) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		alarm(20);
		close(fds[0]);
		dup2(fds[1], 2);
		if (slabkit_set_option("stats", "text") != 0 ||
		    slabkit_set_option("stats_file", path) != 0)
			_exit(3);
		sk_stats_at_exit();
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], err + len, sizeof(err) - 1 - len)) > 0)
		len += (size_t)n;
	err[len] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *
path_of(const char *name)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

/* The one line about path: "slabkit: stats_file PATH: what". */
static int
said(const char *path, const char *what)
{
	char line[512];

	snprintf(
	    line, sizeof(line), "slabkit: stats_file %s: %s\n", path, what);
	return strstr(err, line) != NULL;
}

static size_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (size_t)st.st_size : (size_t)-1;
}

TEST(symlink_is_refused)
{
	char target[128], *link = path_of("link");

	snprintf(target, sizeof(target), "%s/target", dir);
	CHECK(symlink(target, link) == 0);
	CHECK_EQ(report_to(link), 0);
	CHECK(said(link, "is a symbolic link; not followed; statistics go to "
	                 "stderr"));
	CHECK(access(target, F_OK) != 0);   /* not created through the link */
	CHECK(strstr(err, REPORT) != NULL); /* the report went to stderr */
}

TEST(fifo_is_refused)
{
	char *fifo = path_of("fifo");
	char buf[64];
	int rd;

	CHECK(mkfifo(fifo, 0600) == 0);
	/* no reader: refused at once instead of blocking in open */
	CHECK_EQ(report_to(fifo), 0);
	CHECK(said(fifo, "is a FIFO with no reader; statistics go to stderr"));
	/* with a reader: refused after fstat, nothing written into it */
	rd = open(fifo, O_RDONLY | O_NONBLOCK);
	CHECK(rd >= 0);
	CHECK_EQ(report_to(fifo), 0);
	CHECK(said(fifo, "is not a regular file or a character device (a "
	                 "FIFO); statistics go to stderr"));
	CHECK(read(rd, buf, sizeof(buf)) <= 0);
	close(rd);
	CHECK(strstr(err, REPORT) != NULL);
}

TEST(directory_is_refused)
{
	char *d = path_of("dir");

	CHECK(mkdir(d, 0700) == 0);
	CHECK_EQ(report_to(d), 0);
	CHECK(said(d, "cannot open: Is a directory; statistics go to stderr"));
	CHECK(strstr(err, REPORT) != NULL);
}

TEST(another_users_file_is_refused)
{
	char *f = path_of("theirs");
	char buf[16] = {0};
	int fd;

	if (geteuid() != 0) {
		printf("  not root: no file of another user to try; "
		       "own files are truncated (own_file_is_truncated)\n");
		return;
	}
	fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0666);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "keep me\n", 8), 8);
	close(fd);
	CHECK(chown(f, 65534, 65534) == 0);
	CHECK_EQ(report_to(f), 0);
	CHECK(said(f, "is owned by uid 65534, not by this process's user (uid "
	              "0); statistics go to stderr"));
	fd = open(f, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof(buf) - 1), 8);
	close(fd);
	CHECK_STR_EQ(buf, "keep me\n"); /* neither truncated nor written */
}

TEST(write_failure_is_reported)
{
	if (access("/dev/full", W_OK) != 0) {
		printf("  no /dev/full\n");
		return;
	}
	CHECK_EQ(report_to("/dev/full"), 0);
	CHECK(said("/dev/full", "write failed: No space left on device"));
}

TEST(own_file_is_truncated)
{
	char *f = path_of("mine");
	char big[65536];
	size_t sz;
	int fd;

	memset(big, 'x', sizeof(big));
	fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, big, sizeof(big)), (long long)sizeof(big));
	close(fd);
	CHECK_EQ(report_to(f), 0);
	CHECK(strstr(err, "slabkit:") == NULL); /* nothing to say */
	sz = file_size(f);
	CHECK(sz > 0 && sz < sizeof(big)); /* the old tail is gone */
	/* and a new file is created */
	CHECK_EQ(report_to(path_of("new")), 0);
	CHECK(file_size(path_of("new")) == sz);
}

TEST(own_descriptors)
{
	char path[32];
	char buf[256];
	int fds[2];
	ssize_t n;

	CHECK_EQ(report_to("/dev/stderr"), 0);
	CHECK(strstr(err, "slabkit: stats_file") == NULL);
	CHECK(strstr(err, REPORT) != NULL);
	/* /dev/fd/N: a pipe the child inherits */
	CHECK(pipe(fds) == 0);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	snprintf(path, sizeof(path), "/dev/fd/%d", fds[1]);
	CHECK_EQ(report_to(path), 0);
	CHECK(strstr(err, REPORT) == NULL);
	n = read(fds[0], buf, sizeof(buf) - 1);
	CHECK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(strstr(buf, REPORT) != NULL);
	close(fds[0]);
	close(fds[1]);
	/* a descriptor that is not open */
	CHECK_EQ(report_to("/dev/fd/987"), 0);
	CHECK(said("/dev/fd/987", "cannot use the descriptor: Bad file "
	                          "descriptor; statistics go to stderr"));
}

int
main(void)
{
	char cmd[96];

	kfree(kmalloc(16, M_TEMP, M_WAITOK), M_TEMP);
	snprintf(dir, sizeof(dir), "%s/sk-statsfile.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(symlink_is_refused);
	RUN(fifo_is_refused);
	RUN(directory_is_refused);
	RUN(another_users_file_is_refused);
	RUN(write_failure_is_reported);
	RUN(own_file_is_truncated);
	RUN(own_descriptors);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("  could not remove %s\n", dir);
	return sk_t_done();
}
