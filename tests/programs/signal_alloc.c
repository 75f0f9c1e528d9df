/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program that allocates in a signal handler (unsupported, as in
 * glibc): SIGALRM every 200 us, its handler allocates and frees a large
 * block, while the main loop does the same for the seconds given.  On
 * slabkit the run must end, either normally ("done") or by the re-entry
 * abort when the signal interrupted an allocation holding a lock; it must
 * never hang (signal_alloc.sh runs it under a timeout).  Large blocks
 * only: a small allocation interrupted in its lock-free fast path has no
 * lock to detect the re-entry with.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void
on_alarm(int sig)
{
	char *p = malloc(300 * 1024);

	(void)sig;
	if (p != NULL) {
		p[0] = 1;
		free(p);
	}
	handled++;
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	struct itimerval it = {{0, 200}, {0, 200}};
	struct sigaction sa;
	struct timespec t0, t;
	unsigned long rounds = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 64; i++) {
			size_t n = (size_t)(128 + (i * 37) % 900) * 1024;
			char *p = malloc(n);

			if (p == NULL)
				return 2;
			p[n - 1] = (char)i;
			free(p);
			rounds++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) +
	             (double)(t.tv_nsec - t0.tv_nsec) / 1e9 <
	         secs);
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	printf("done: %lu rounds, %d signals handled\n", rounds, (int)handled);
	return 0;
}
