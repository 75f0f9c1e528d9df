/*
 * Misuse: read after free of a large block.  Large blocks are unmapped at
 * free, so the read faults.  Expected in every mode: death by SIGSEGV
 * (no slabkit message: the fault is the detection).
 */
#include "misuse.h"

#define SIZE (512 * 1024)

int
main(void)
{
	volatile char *p = sk_m_hide(malloc(SIZE));
	char c;

	p[100] = 7;
	free((void *)p);
	SK_M_ARMED();
	c = p[100];
	SK_M_SURVIVED();
	return c;
}
