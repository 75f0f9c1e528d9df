/*
 * Misuse: write after free.  A block is freed, the program writes over
 * all of it (the free-list link in its first word included), then
 * allocates the same size twice.
 *
 * Default mode: nothing checks freed contents, and the first word of a
 * free chunk is its free-list link, so the second allocation follows the
 * scribbled link; the runner documents the result it observes.  With
 * SLABKIT_OPTIONS=hardened the corruption must be reported by a slabkit
 * panic ("slabkit: malloc: ..." or "slabkit: free: ...").
 */
#include <string.h>

#include "misuse.h"

#define SIZE 80

int
main(void)
{
	char *p = sk_m_hide(malloc(SIZE));
	char *q, *r;

	free(p);
	memset(sk_m_hide(p), 0x41, SIZE);
	SK_M_ARMED();
	q = sk_m_hide(malloc(SIZE));
	r = sk_m_hide(malloc(SIZE));
	SK_M_SURVIVED();
	printf("p %p q %p r %p\n", (void *)p, (void *)q, (void *)r);
	if (r != NULL)
		memset(r, 0, SIZE);
	sk_m_say("undetected");
	return 0;
}
