/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The slabkit demo: a toy connection server that uses all four DragonFly
 * allocators the way a kernel subsystem would, on built-in defaults.
 *
 * - Sessions come from a zone that starts life in a static array before
 *   main runs (zbootinit in a constructor) and may grow later (zinitna).
 * - Connections are objcache objects with an expensive constructor (a
 *   mutex and a lookup table), so reuse skips the construction.
 * - I/O buffers come from an mpipe whose reserve guarantees progress even
 *   when kmalloc cannot deliver.
 * - Names and headers are kmalloc'd with named malloc types.
 *
 * Several worker threads open and close connections; half of them are
 * closed by another thread (remote frees).  At the end every allocator's
 * statistics table is printed and the program checks that nothing leaked.
 * Run it with `make demo'; SLABKIT_OPTIONS=stats also prints the tables at
 * exit.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <slabkit/slabkit.h>

MALLOC_DEFINE(M_DEMO_NAME, "demo_name", "demo connection names");
MALLOC_DEFINE(M_DEMO_CONN, "demo_conn", "demo connection objects");
MALLOC_DEFINE(M_DEMO_BUF, "demo_buf", "demo I/O buffers");

#define NTHREADS 4
#define NOPS 20000
#define BOOT_SESSIONS 64
#define BUFSZ 2048

/* --- sessions: a boot zone ------------------------------------------ */

struct session {
	void	*zone_link[2];	/* the zone's two scratch words */
	int	id;
	int	thread;
};

static struct vm_zone session_zone;
static struct session boot_sessions[BOOT_SESSIONS];

/* Runs before main and before slabkit has initialised itself. */
__attribute__((constructor(101))) static void
demo_boot(void)
{
	zbootinit(&session_zone, "demo_session", sizeof(struct session),
	    boot_sessions, BOOT_SESSIONS);
}

/* --- connections: an objcache with a constructor ------------------ */

struct conn {
	pthread_mutex_t lock;
	int	table[64];	/* built once by the constructor */
	int	id;
	char	*name;
	struct session *sess;
};

static long constructed;

static boolean_t
conn_ctor(void *obj, void *priv, int ocflags)
{
	struct conn *c = obj;

	(void)priv;
	(void)ocflags;
	pthread_mutex_init(&c->lock, NULL);
	for (int i = 0; i < 64; i++)
		c->table[i] = i * i;
	__atomic_fetch_add(&constructed, 1, __ATOMIC_RELAXED);
	return TRUE;
}

static void
conn_dtor(void *obj, void *priv)
{
	(void)priv;
	pthread_mutex_destroy(&((struct conn *)obj)->lock);
}

static struct objcache *conn_cache;
static struct malloc_pipe io_pipe;

static struct conn *handoff[NTHREADS][NOPS / 2];

static struct conn *
conn_open(int t, int i)
{
	struct conn *c = objcache_get(conn_cache, M_WAITOK);
	char tmp[40];

	snprintf(tmp, sizeof(tmp), "conn-%d-%d", t, i);
	c->id = i;
	c->name = kstrdup(tmp, M_DEMO_NAME);
	c->sess = zalloc(&session_zone);
	c->sess->id = i;
	c->sess->thread = t;
	return c;
}

/* One request: the I/O path borrows a buffer from the pipe's reserve. */
static void
conn_io(struct conn *c, int t)
{
	char *buf = mpipe_alloc_waitok(&io_pipe);

	memset(buf, t, 64);
	snprintf(buf + 64, BUFSZ - 64, "%s", c->name);
	mpipe_free(&io_pipe, buf);
}

static void
conn_close(struct conn *c)
{
	zfree(&session_zone, c->sess);
	kfree(c->name, M_DEMO_NAME);
	objcache_put(conn_cache, c);
}

static void *
worker(void *arg)
{
	int t = (int)(long)arg;

	for (int i = 0; i < NOPS; i++) {
		struct conn *c = conn_open(t, i);

		conn_io(c, t);
		if (i % 2 == 0)
			handoff[t][i / 2] = c; /* closed by a reaper thread */
		else
			conn_close(c);
	}
	return NULL;
}

static void *
reaper(void *arg)
{
	int t = (int)(long)arg;

	for (int i = 0; i < NOPS / 2; i++)
		conn_close(handoff[t][i]);
	return NULL;
}

int
main(void)
{
	pthread_t th[NTHREADS];
	struct kmalloc_type_stats st;
	int leaks = 0;

	/* The boot zone may grow from now on. */
	zinitna(&session_zone, "demo_session", sizeof(struct session), 0, 0);
	conn_cache = objcache_create_mbacked(M_DEMO_CONN, sizeof(struct conn),
	    0, 0, conn_ctor, conn_dtor, NULL);
	/* 8 buffers always available, up to 256 in all. */
	mpipe_init(&io_pipe, M_DEMO_BUF, BUFSZ, 8, 256, 0, NULL, NULL, NULL);

	printf("slabkit demo: %d threads, %d connections each, half of them\n"
	       "closed by another thread\n", NTHREADS, NOPS);
	for (long t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	kmalloc_type_stats(M_DEMO_NAME, &st);
	printf("\nafter the workers: %zu connections open, %ld connection "
	       "objects constructed for %d opens\n", st.inuse,
	    __atomic_load_n(&constructed, __ATOMIC_RELAXED), NTHREADS * NOPS);
	for (long t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, reaper, (void *)t);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);

	/* Every allocator's table, while the cache and the pipe are live. */
	slabkit_stats_print(stdout, SLABKIT_STATS_TEXT);
	mpipe_done(&io_pipe);
	objcache_destroy(conn_cache);
	slab_cleanup();
	kmalloc_type_stats(M_DEMO_NAME, &st);
	leaks += st.inuse != 0;
	kmalloc_type_stats(M_DEMO_CONN, &st);
	leaks += st.inuse != 0;
	kmalloc_type_stats(M_DEMO_BUF, &st);
	leaks += st.inuse != 0;
	printf("\n%s\n", leaks ? "LEAK: some type still has live memory"
			       : "all connections closed, nothing leaked");
	return leaks ? 1 : 0;
}
