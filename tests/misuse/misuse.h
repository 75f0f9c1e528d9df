/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the misuse programs (one program per bad-input case,
 * run by run_misuse.sh, which checks the documented outcome).
 *
 * Each program prints "misuse: armed" just before the bad call, so the
 * runner knows the failure happened there and not in the set-up, and
 * "misuse: survived" if the bad call returned: a case that must abort
 * fails when that line appears.  Cases that must return normally print
 * "misuse: ok" after checking their results, and exit 0.
 *
 * sk_m_hide() launders a pointer through an empty asm statement, so the
 * compiler can neither see the misuse (-Wfree-nonheap-object,
 * -Wuse-after-free) nor optimise it away.
 */
#ifndef SK_MISUSE_H
#define SK_MISUSE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void *
sk_m_hide(void *p)
{
	__asm__ volatile("" : "+r"(p) : : "memory");
	return p;
}

/* With write(2), not stdio: stdio's first line allocates its buffer, and
 * in hardened mode that malloc may report the misuse before "armed". */
static inline void
sk_m_say(const char *what)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "misuse: %s\n", what);

	fflush(stdout);
	if (n > 0 &&
	    write(1, line,
	        (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		exit(2);
}

#define SK_M_ARMED()    sk_m_say("armed")
#define SK_M_SURVIVED() sk_m_say("survived")

/* A check in a case that must return: report and exit 1 on failure. */
#define SK_M_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("misuse: check failed at line %d: %s\n",        \
			    __LINE__, #cond);                                  \
			exit(1);                                               \
		}                                                              \
	} while (0)

/*
 * After a double free that was not caught: the allocator may now hand the
 * same block out twice.  Allocate twice and say so if the two overlap.
 */
static inline void
sk_m_overlap_check(size_t size)
{
	char *a = sk_m_hide(malloc(size));
	char *b = sk_m_hide(malloc(size));

	if (a != NULL && b != NULL && a < b + size && b < a + size)
		sk_m_say("overlap: one block handed out twice");
}

#endif /* SK_MISUSE_H */
