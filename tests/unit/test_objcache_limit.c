/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * objcache budget (spec 2.3 step 7, checklist rows 50 and 52): the
 * "Exhausted!" warning once per cache, NULL for M_NOWAIT and
 * M_WAITOK|M_NULLOK, and M_WAITOK sleeping until another thread's put,
 * objcache_dtor, reclaim, limit raise or exit makes room; plus reclaim
 * from kmalloc's M_WAITOK page-shortage path.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#include <slabkit/objcache.h>

struct counting {
	int allocs, ctors, dtors, frees; /* atomic */
};

static void *
c_alloc(void *args, int ocflags)
{
	struct counting *c = args;

	(void)ocflags;
	__atomic_fetch_add(&c->allocs, 1, __ATOMIC_SEQ_CST);
	return malloc(64);
}

static void
c_free(void *obj, void *args)
{
	struct counting *c = args;

	__atomic_fetch_add(&c->frees, 1, __ATOMIC_SEQ_CST);
	free(obj);
}

static boolean_t
c_ctor(void *obj, void *priv, int ocflags)
{
	struct counting *c = priv;

	(void)obj;
	(void)ocflags;
	__atomic_fetch_add(&c->ctors, 1, __ATOMIC_SEQ_CST);
	return TRUE;
}

static void
c_dtor(void *obj, void *priv)
{
	struct counting *c = priv;

	(void)obj;
	__atomic_fetch_add(&c->dtors, 1, __ATOMIC_SEQ_CST);
}

static int
cnt(int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

#define LIMIT 3

/* A limited cache with every unit of its budget handed out. */
struct full_cache {
	struct counting c;
	struct objcache *oc;
	void **held;
	long nheld;
};

static void
fill(struct full_cache *f, const char *name)
{
	struct sk_oc_view v;

	memset(&f->c, 0, sizeof(f->c));
	f->oc = objcache_create(
	    name, LIMIT, 1, c_ctor, c_dtor, &f->c, c_alloc, c_free, &f->c);
	sk_objcache_view(f->oc, &v);
	f->held = calloc((size_t)v.budget, sizeof(void *));
	f->nheld = 0;
	for (long i = 0; i < v.budget; i++) {
		f->held[i] = objcache_get(f->oc, M_WAITOK);
		if (f->held[i] != NULL)
			f->nheld++;
	}
}

static void
unfill(struct full_cache *f)
{
	for (long i = 0; i < f->nheld; i++)
		if (f->held[i] != NULL)
			objcache_put(f->oc, f->held[i]);
	objcache_destroy(f->oc);
	free(f->held);
}

static struct sk_oc_view
view(struct objcache *oc)
{
	struct sk_oc_view v;

	sk_objcache_view(oc, &v);
	return v;
}

/* Run fn with fd 2 sent to a file; return what it wrote (static). */
static const char *
capture_stderr(void (*fn)(void *), void *arg)
{
	static char buf[4096];
	char path[] = "/tmp/sk-oc-XXXXXX";
	int fd = mkstemp(path), saved;
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	unlink(path);
	saved = dup(2);
	dup2(fd, 2);
	fn(arg);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static int
count_substr(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what)) != NULL) {
		n++;
		s += strlen(what);
	}
	return n;
}

struct try_get {
	struct objcache *oc;
	int flags;
	void *got;
};

static void
try_get(void *p)
{
	struct try_get *t = p;

	t->got = objcache_get(t->oc, t->flags);
}

TEST(exhausted_returns_null_and_warns_once)
{
	struct full_cache f;
	struct objcache_stats st[16];
	struct sk_oc_sizing sz;
	struct try_get t;
	const char *out;
	int n;

	fill(&f, "limited");
	sk_objcache_sizing(sk_os_ncpus(), LIMIT, 1, &sz);
	CHECK_EQ(f.nheld, sz.budget);
	CHECK_EQ(view(f.oc).budget, 0);
	t.oc = f.oc;
	t.flags = M_NOWAIT;
	t.got = &t;
	out = capture_stderr(try_get, &t);
	CHECK(t.got == NULL);
	CHECK_EQ(count_substr(out, "slabkit: objcache_get: Warning, "
	                           "objcache(limited): Exhausted!"),
	    1);
	t.flags = M_WAITOK | M_NULLOK;
	t.got = &t;
	out = capture_stderr(try_get, &t);
	CHECK(t.got == NULL);
	CHECK_EQ(count_substr(out, "Exhausted!"), 0); /* once per cache */
	t.flags = M_INTNOWAIT;
	t.got = &t;
	capture_stderr(try_get, &t);
	CHECK(t.got == NULL);
	n = objcache_stats_snapshot(st, 16);
	for (int i = 0; i < n && i < 16; i++) {
		if (strcmp(st[i].oc_name, "limited") != 0)
			continue;
		CHECK_EQ(st[i].oc_exhausted, 3);
		CHECK_EQ(st[i].oc_failed, 3);
		CHECK_EQ(st[i].oc_limit, LIMIT);
		CHECK_EQ(st[i].oc_used, f.nheld);
	}
	CHECK_EQ(cnt(&f.c.ctors), f.nheld);
	unfill(&f);
}

/* A thread blocked in objcache_get(M_WAITOK). */
struct getter {
	struct objcache *oc;
	void *got;
	int done; /* atomic */
	pthread_t tid;
};

static void *
getter_main(void *p)
{
	struct getter *g = p;

	g->got = objcache_get(g->oc, M_WAITOK);
	__atomic_store_n(&g->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Start a getter and wait until it sleeps on the depot. */
static int
start_blocked_getter(struct getter *g, struct objcache *oc)
{
	g->oc = oc;
	g->got = NULL;
	g->done = 0;
	pthread_create(&g->tid, NULL, getter_main, g);
	for (int i = 0; i < 5000; i++) {
		if (view(oc).waiting == 1)
			break;
		usleep(1000);
	}
	usleep(10000);
	return view(oc).waiting == 1 &&
	       __atomic_load_n(&g->done, __ATOMIC_SEQ_CST) == 0;
}

TEST(waitok_woken_by_put_from_other_thread)
{
	struct full_cache f;
	struct getter g;
	void *obj;
	int allocs;

	fill(&f, "wake-put");
	allocs = cnt(&f.c.allocs);
	CHECK(start_blocked_getter(&g, f.oc));
	obj = f.held[0];
	f.held[0] = NULL;
	objcache_put(f.oc, obj);
	pthread_join(g.tid, NULL);
	CHECK_PTR_EQ(g.got, obj); /* handed over through the depot */
	CHECK_EQ(cnt(&f.c.allocs), allocs);
	CHECK_EQ(view(f.oc).waiting, 0);
	f.held[0] = g.got;
	unfill(&f);
	CHECK_EQ(cnt(&f.c.dtors), cnt(&f.c.ctors));
}

TEST(waitok_woken_by_dtor)
{
	struct full_cache f;
	struct getter g;
	int allocs;

	fill(&f, "wake-dtor");
	allocs = cnt(&f.c.allocs);
	CHECK(start_blocked_getter(&g, f.oc));
	objcache_dtor(f.oc, f.held[0]);
	CHECK_EQ(cnt(&f.c.dtors), 1); /* destructed at once */
	f.held[0] = NULL;
	pthread_join(g.tid, NULL);
	CHECK(g.got != NULL);
	CHECK_EQ(cnt(&f.c.allocs), allocs + 1); /* a new object */
	f.held[0] = g.got;
	unfill(&f);
	CHECK_EQ(cnt(&f.c.dtors), cnt(&f.c.ctors));
}

TEST(waitok_woken_by_reclaim)
{
	struct full_cache f;
	struct getter g;
	int allocs;

	fill(&f, "wake-reclaim");
	/* Cached in this thread's magazine: no getter is waiting yet. */
	objcache_put(f.oc, f.held[0]);
	f.held[0] = NULL;
	CHECK_EQ(view(f.oc).loaded_rounds, 1);
	allocs = cnt(&f.c.allocs);
	/* The getter cannot reach this thread's magazine: it sleeps. */
	CHECK(start_blocked_getter(&g, f.oc));
	CHECK_EQ(objcache_reclaimlist(&f.oc, 1, M_WAITOK), TRUE);
	pthread_join(g.tid, NULL);
	CHECK(g.got != NULL);
	CHECK_EQ(cnt(&f.c.dtors), 1);
	CHECK_EQ(cnt(&f.c.allocs), allocs + 1);
	f.held[0] = g.got;
	unfill(&f);
	CHECK_EQ(cnt(&f.c.dtors), cnt(&f.c.ctors));
}

TEST(waitok_woken_by_limit_raise)
{
	struct full_cache f;
	struct getter g;

	fill(&f, "wake-limit");
	CHECK(start_blocked_getter(&g, f.oc));
	objcache_set_cluster_limit(f.oc, LIMIT + 1);
	pthread_join(g.tid, NULL);
	CHECK(g.got != NULL);
	objcache_put(f.oc, g.got);
	unfill(&f);
	CHECK_EQ(cnt(&f.c.dtors), cnt(&f.c.ctors));
}

/* A thread that caches one object and exits when told. */
struct holder {
	struct objcache *oc;
	void *obj;
	int fds[2];
};

static void *
holder_main(void *p)
{
	struct holder *h = p;
	char ch;

	objcache_put(h->oc, h->obj);
	if (write(h->fds[1], "p", 1) != 1)
		return NULL;
	if (read(h->fds[0], &ch, 1) != 1)
		return NULL;
	return NULL; /* exit: the shard's hook returns the magazine */
}

TEST(waitok_woken_by_thread_exit)
{
	struct full_cache f;
	struct getter g;
	struct holder h;
	int up[2], down[2], allocs;
	pthread_t t;
	char ch;

	fill(&f, "wake-exit");
	CHECK(pipe(up) == 0 && pipe(down) == 0);
	h.oc = f.oc;
	h.obj = f.held[0];
	f.held[0] = NULL;
	h.fds[0] = down[0];
	h.fds[1] = up[1];
	pthread_create(&t, NULL, holder_main, &h);
	CHECK_EQ(read(up[0], &ch, 1), 1); /* object cached in its magazine */
	allocs = cnt(&f.c.allocs);
	CHECK(start_blocked_getter(&g, f.oc));
	CHECK_EQ(write(down[1], "x", 1), 1);
	pthread_join(t, NULL);
	pthread_join(g.tid, NULL);
	CHECK_PTR_EQ(g.got, h.obj); /* not stranded, not destroyed */
	CHECK_EQ(cnt(&f.c.allocs), allocs);
	CHECK_EQ(cnt(&f.c.dtors), 0);
	f.held[0] = g.got;
	unfill(&f);
	CHECK_EQ(cnt(&f.c.dtors), cnt(&f.c.ctors));
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

/* fork() while a getter sleeps: the child has no sleeper and no lock. */
TEST(fork_with_sleeping_getter)
{
	struct full_cache f;
	struct getter g;
	pid_t pid;
	int status = -1;

	fill(&f, "fork");
	CHECK(start_blocked_getter(&g, f.oc));
	pid = fork();
	if (pid == 0) {
		struct objcache *oc2;
		void *o;
		int ok;

		ok = view(f.oc).waiting == 0;
		objcache_put(f.oc, f.held[0]); /* no sleeper: own magazine */
		ok &= view(f.oc).loaded_rounds == 1;
		o = objcache_get(f.oc, M_NOWAIT);
		ok &= o == f.held[0];
		oc2 = objcache_create(
		    "child", 0, 0, NULL, NULL, NULL, c_alloc, c_free, &f.c);
		objcache_put(oc2, objcache_get(oc2, M_WAITOK));
		objcache_destroy(oc2);
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	objcache_dtor(f.oc, f.held[0]);
	f.held[0] = NULL;
	pthread_join(g.tid, NULL);
	CHECK(g.got != NULL);
	f.held[0] = g.got;
	unfill(&f);
}

MALLOC_DEFINE(M_OCLIMIT, "oclimit", "objcache limit test");

TEST(kmalloc_shortage_reclaims_objcaches)
{
	struct counting c;
	struct objcache *oc;
	void *objs[3], *big;

	memset(&c, 0, sizeof(c));
	oc = objcache_create(
	    "shortage", 0, 0, c_ctor, c_dtor, &c, c_alloc, c_free, &c);
	for (int i = 0; i < 3; i++)
		objs[i] = objcache_get(oc, M_WAITOK);
	for (int i = 0; i < 3; i++)
		objcache_put(oc, objs[i]);
	CHECK_EQ(view(oc).loaded_rounds, 3);
	/* The first mapping fails: M_WAITOK runs the reclaim hooks. */
	slabkit_fault_inject(SLABKIT_FAULT_MAP, 1, 1);
	big = kmalloc(1 << 20, M_OCLIMIT, M_WAITOK);
	slabkit_fault_clear();
	CHECK(big != NULL);
	CHECK_EQ(cnt(&c.dtors), 3);
	CHECK_EQ(view(oc).loaded_rounds, 0);
	kfree(big, M_OCLIMIT);
	objcache_destroy(oc);
	CHECK_EQ(cnt(&c.dtors), 3);
}

int
main(void)
{
	RUN(exhausted_returns_null_and_warns_once);
	RUN(waitok_woken_by_put_from_other_thread);
	RUN(waitok_woken_by_dtor);
	RUN(waitok_woken_by_reclaim);
	RUN(waitok_woken_by_limit_raise);
	RUN(waitok_woken_by_thread_exit);
	RUN(fork_with_sleeping_getter);
	RUN(kmalloc_shortage_reclaims_objcaches);
	return sk_t_done();
}
