/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * measure: run a command and report its wall time and peak RSS, the job
 * of /usr/bin/time -f "%e %M" done the way benchmark harnesses need it.
 *
 * Why not wait4 from the runner itself: Linux carries the peak RSS of the
 * image a process replaces through execve (signal->maxrss), so a program
 * forked from a 20 MB Python runner reports at least 20 MB.  measure is
 * small, and its child's counters start from measure's own few hundred
 * KiB, so the figure is the program's own.
 *
 * Usage: measure OUTFILE CMD [ARGS...]
 * Writes "wall_s=S maxrss_kb=K status=N signal=N" to OUTFILE, then the
 * child's CPU time (user_s, sys_s), page faults (minflt, majflt) and
 * context switches (nvcsw, nivcsw): where time goes that callgrind, which
 * counts user-space instructions only, cannot see.  The child inherits
 * stdin, stdout and stderr.  Exits 0 unless measure itself fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	double t0, t1;
	FILE *out;

	if (argc < 3) {
		fprintf(stderr, "usage: measure OUTFILE CMD [ARGS...]\n");
		return 2;
	}
	t0 = now();
	pid = fork();
	if (pid < 0) {
		perror("measure: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "measure: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("measure: wait4");
			return 2;
		}
	}
	t1 = now();
	out = fopen(argv[1], "w");
	if (out == NULL) {
		perror("measure: output file");
		return 2;
	}
	fprintf(out,
	    "wall_s=%.6f maxrss_kb=%ld status=%d signal=%d user_s=%.6f "
	    "sys_s=%.6f minflt=%ld majflt=%ld nvcsw=%ld nivcsw=%ld\n",
	    t1 - t0, ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	    WIFSIGNALED(status) ? WTERMSIG(status) : 0,
	    (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6,
	    ru.ru_minflt, ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw);
	fclose(out);
	return 0;
}
