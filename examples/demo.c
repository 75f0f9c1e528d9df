/*
 * The slabkit demo: named malloc types used from several threads, with
 * cross-thread frees, then the `vmstat -m' table.  Run it with
 * `make demo'; SLABKIT_OPTIONS=stats prints every allocator's table too.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <slabkit/slabkit.h>

MALLOC_DEFINE(M_DEMO_CONN, "demo_conn", "demo connection records");
MALLOC_DEFINE(M_DEMO_BUF, "demo_buf", "demo I/O buffers");

#define NTHREADS 4
#define NOPS 20000

struct conn {
	int	id;
	char	name[40];
	char	*buf;
};

static struct conn *handoff[NTHREADS][NOPS / 2];

static void *
worker(void *arg)
{
	int t = (int)(long)arg;

	for (int i = 0; i < NOPS; i++) {
		struct conn *c = kmalloc(sizeof(*c), M_DEMO_CONN,
		    M_WAITOK | M_ZERO);

		c->id = i;
		snprintf(c->name, sizeof(c->name), "conn-%d-%d", t, i);
		c->buf = kmalloc(64 + (size_t)(i % 4000), M_DEMO_BUF, M_WAITOK);
		memset(c->buf, t, 64);
		if (i % 2 == 0) {
			/* half the connections are closed by another thread */
			handoff[t][i / 2] = c;
		} else {
			kfree(c->buf, M_DEMO_BUF);
			kfree(c, M_DEMO_CONN);
		}
	}
	return NULL;
}

static void *
reaper(void *arg)
{
	int t = (int)(long)arg;

	for (int i = 0; i < NOPS / 2; i++) {
		struct conn *c = handoff[t][i];

		kfree(c->buf, M_DEMO_BUF);
		kfree(c, M_DEMO_CONN);
	}
	return NULL;
}

int
main(void)
{
	pthread_t th[NTHREADS];
	struct kmalloc_type_stats st;

	printf("slabkit demo: %d threads, %d connections each, half of them\n"
	       "freed by another thread\n", NTHREADS, NOPS);
	for (long t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	kmalloc_type_stats(M_DEMO_CONN, &st);
	printf("\nafter the workers: %zu connections (%zu bytes) still open\n",
	    st.inuse, st.memuse);
	slabkit_print_vmstat_m(stdout);
	for (long t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, reaper, (void *)t);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	slab_cleanup();
	kmalloc_type_stats(M_DEMO_CONN, &st);
	printf("\nafter the reapers: %zu connections open (high-water %zu "
	       "KiB)\n", st.inuse, (st.maxused + 1023) / 1024);
	slabkit_print_vmstat_m(stdout);
	return st.inuse == 0 ? 0 : 1;
}
