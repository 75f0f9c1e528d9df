/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation of the test harness described in harness.h.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int sk_t_case_failed;
static int passed, failed;

void
sk_t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	sk_t_case_failed = 1;
}

/* Is name one of the comma-separated names in list? */
static int
sk_t_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

void
sk_t_run(const char *name, void (*fn)(void))
{
	const char *only = getenv("SK_TEST_ONLY");
	const char *skip = getenv("SK_TEST_SKIP");

	if (only != NULL && strcmp(only, name) != 0)
		return;
	if (skip != NULL && sk_t_listed(skip, name)) {
		printf("skip %s (SK_TEST_SKIP)\n", name);
		fflush(stdout);
		return;
	}
	sk_t_case_failed = 0;
	fn();
	if (sk_t_case_failed) {
		failed++;
		printf("FAIL %s\n", name);
	} else {
		passed++;
		printf("ok   %s\n", name);
	}
	fflush(stdout);
}

int
sk_t_done(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	fflush(stdout);
	return failed == 0 && passed > 0 ? 0 : 1;
}

long
sk_t_scale(long n)
{
	const char *s = getenv("SK_TEST_SCALE");
	long pct;

	if (s == NULL)
		return n;
	pct = strtol(s, NULL, 10);
	if (pct <= 0)
		return n;
	n = n * pct / 100;
	return n > 0 ? n : 1;
}

int
sk_t_under_valgrind(void)
{
	return getenv("SK_TEST_VALGRIND") != NULL;
}

int
sk_t_expect_abort(void (*fn)(void *), void *arg, const char *msg)
{
	char buf[8192];
	size_t len = 0;
	int fds[2], status;
	pid_t pid;
	ssize_t n;

	fflush(NULL);
	if (pipe(fds) != 0)
		return 0;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		struct sigaction sa;

		/* The child must die of SIGABRT, not of a core dump helper. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGABRT, &sa, NULL);
		close(fds[0]);
		dup2(fds[1], 2);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0) {
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
		fprintf(stderr, "  child did not abort (status 0x%x); said: %s\n",
		    status, buf);
		return 0;
	}
	if (strstr(buf, msg) == NULL) {
		fprintf(stderr, "  child aborted saying: %s\n", buf);
		return 0;
	}
	return 1;
}
