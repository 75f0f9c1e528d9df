/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Checker tracking (src/track.h): with track=asan, a use-after-free of a
 * kmalloc chunk, an objcache object, a zone item or an mpipe buffer is
 * reported by AddressSanitizer, and ordinary use (remote frees, zones
 * released and mapped again, hardened zones) is not.  The faulting code
 * runs in a forked child whose stderr is captured.  Those cases need an
 * ASan build (SLABKIT_SANITIZE=address) and say so when skipped; the
 * option rules and the track=valgrind code paths (client requests are
 * no-ops outside valgrind; tools/valgrind-track.sh runs them under
 * memcheck) are checked in every build.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabkit/mpipe.h>
#include <slabkit/objcache.h>
#include <slabkit/zone.h>

#include "default_mode.h"
#include "harness.h"
#include "internal.h"
#include "track.h"

MALLOC_DEFINE(M_TRK, "track", "tracking unit tests");

static int track_rc = -1;
static char **obj_v; /* workload's blocks, for free_remote_obj */
static const char *self;

static struct sk_slzone *
zone_of(const void *p)
{
	return sk_zone_at((uintptr_t)p);
}

/*
 * Run fn in a child with stderr captured; true when the child failed
 * (ASan exits 1 after its report) and said `msg'.
 */
static int
child_reports(void (*fn)(void), const char *msg)
{
	char buf[16384];
	size_t len = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	fflush(NULL);
	if (pipe(fds) != 0)
		return 0;
	if ((pid = fork()) < 0)
		return 0;
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		fn();
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		if ((len += (size_t)n) == sizeof(buf) - 1)
			break;
	buf[len] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fprintf(stderr, "  child finished without a report\n");
		return 0;
	}
	if (strstr(buf, msg) == NULL) {
		fprintf(stderr, "  child said: %.2000s\n", buf);
		return 0;
	}
	return 1;
}

/* Ordinary use of every allocator; nothing here may be reported. */
static void *
free_remote(void *arg)
{
	char **v = arg;

	for (int i = 0; i < 500; i++)
		kfree(v[i], M_TRK);
	return NULL;
}

static void *
free_remote_obj(void *arg)
{
	struct malloc_type **tp = arg;
	char **v = obj_v;

	for (int i = 0; i < 500; i++)
		kfree_obj(v[i], *tp);
	return NULL;
}

static int
workload(void)
{
	struct objcache *oc = objcache_create_simple(M_TRK, 200);
	static struct malloc_pipe mp;
	vm_zone_t z = zinit("track", 96, 0, ZONE_DESTROYABLE);
	static char *v[500];
	void *o[64], *zi[64], *b[4];

	obj_v = v;
	pthread_t t;
	int bad = 0;

	/* release every wholly free zone: the next mappings reuse them */
	slabkit_set_option("zone_cache", "0");
	for (int round = 0; round < 3; round++) {
		/* many zones of one class, freed: zones are released */
		for (int i = 0; i < 500; i++) {
			v[i] = kmalloc(3000, M_TRK, M_WAITOK);
			memset(v[i], i, kmalloc_usable_size(v[i]));
		}
		for (int i = 0; i < 500; i++)
			kfree(v[i], M_TRK);
		slab_cleanup();
		/* new mappings may land where those zones were */
		for (int i = 0; i < 500; i++) {
			v[i] = kmalloc(i % 2 ? 40 : 20000, M_TRK, M_WAITOK);
			memset(v[i], 1, kmalloc_usable_size(v[i]));
		}
		/* remote frees (links written by another thread) */
		pthread_create(&t, NULL, free_remote, v);
		pthread_join(t, NULL);
		for (int i = 0; i < 500; i++) {
			v[i] = krealloc(NULL, 16 + i, M_TRK, M_WAITOK);
			v[i] = krealloc(v[i], 600 + i, M_TRK, M_WAITOK);
			bad += kmalloc_usable_size(v[i]) < 600 + (size_t)i;
		}
		for (int i = 0; i < 500; i++)
			kfree(v[i], M_TRK);
	}
	for (int i = 0; i < 64; i++) {
		o[i] = objcache_get(oc, M_WAITOK);
		memset(o[i], 2, 200);
		zi[i] = zalloc(z);
		memset(zi[i], 3, 96);
	}
	for (int i = 0; i < 64; i++) {
		objcache_put(oc, o[i]);
		zfree(z, zi[i]);
	}
	for (int i = 0; i < 64; i++) {
		o[i] = objcache_get(oc, M_WAITOK);
		memset(o[i], 4, 200);
		objcache_put(oc, o[i]);
	}
	objcache_destroy(oc);
	zdestroy(z);
	mpipe_init(&mp, M_TRK, 300, 2, 4, 0, NULL, NULL, NULL);
	for (int r = 0; r < 10; r++) {
		for (int i = 0; i < 4; i++) {
			b[i] = mpipe_alloc_nowait(&mp);
			memset(b[i], 5, 300);
		}
		for (int i = 0; i < 4; i++)
			mpipe_free(&mp, b[i]);
	}
	mpipe_done(&mp);
	/* kmalloc_obj: remote frees, slabs retired into the cache and set
	 * up again for another object size */
	for (int round = 0; round < 2; round++) {
		struct malloc_type *ot = NULL;
		size_t osz = round ? 64 : 1000;

		kmalloc_create_obj(&ot, "track_objs", osz);
		for (int i = 0; i < 500; i++) {
			v[i] = kmalloc_obj(osz, ot, M_WAITOK | M_ZERO);
			memset(v[i], 6, osz);
		}
		pthread_create(&t, NULL, free_remote_obj, &ot);
		pthread_join(t, NULL);
		kmalloc_destroy_obj(&ot);
	}
	return bad;
}

/* ------------------------------------------------------------------ */
/* Every build: the option's rules, and the valgrind paths */

TEST(option_rules)
{
	CHECK_EQ(slabkit_set_option("track", "bogus"), EINVAL);
	if (SK_TRACK_HAVE_ASAN) {
		CHECK_EQ(track_rc, 0);
		CHECK_EQ(sk_opt.track, SK_TRACK_ASAN);
	} else {
		CHECK_EQ(track_rc, ENOTSUP); /* no ASan runtime to tell */
		CHECK_EQ(sk_opt.track, SK_TRACK_NONE);
	}
}

static int
valgrind_mode(void)
{
	char *p;
	int bad = 0;

	if (slabkit_set_option("track", "valgrind") != 0)
		return 1;
	bad += !sk_opt.debug;
	p = kmalloc(100, M_TRK, M_WAITOK);
	bad += !(zone_of(p)->z_hflags & SK_ZF_TRACKED);
	kfree(p, M_TRK);
	bad += slabkit_set_option("track", "none") != EBUSY;
	bad += workload();
	/* hardened zones are tracked too */
	bad += slabkit_set_option("hardened", "1") != 0;
	p = kmalloc(5000, M_TRK, M_WAITOK);
	bad += zone_of(p)->z_hflags != (SK_ZF_TRACKED | SK_ZF_HARDENED);
	kfree(p, M_TRK);
	bad += workload();
	return bad;
}

TEST(valgrind_paths)
{
	pid_t pid;
	int status = -1;

	if (!SK_TRACK_HAVE_VALGRIND) {
		printf(
		    "  skipped: no valgrind client requests on this machine\n");
		CHECK_EQ(slabkit_set_option("track", "valgrind"), ENOTSUP);
		return;
	}
	fflush(NULL);
	if ((pid = fork()) == 0) {
		execl(self, self, "valgrind", (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

/* ------------------------------------------------------------------ */
/* ASan builds: use-after-free is reported, ordinary use is not */

static volatile char sink;

static void
uaf_kmalloc(void)
{
	char *p = kmalloc(48, M_TRK, M_WAITOK);

	p[5] = 1;
	kfree(p, M_TRK);
	sink = p[5];
}

static void
uaf_kmalloc_obj(void)
{
	static struct malloc_type *t;
	char *p;

	kmalloc_create_obj(&t, "track_obj", 96);
	p = kmalloc_obj(96, t, M_WAITOK);
	p[70] = 1;
	kfree_obj(p, t);
	sink = p[70];
}

static void
read_never_handed_out_obj(void)
{
	static struct malloc_type *t;
	char *p;

	kmalloc_create_obj(&t, "track_obj2", 64);
	p = kmalloc_obj(64, t, M_WAITOK);
	sink = p[64 + 3]; /* the next object, never handed out */
}

static void
uaf_kmalloc_link_word(void)
{
	char *p = kmalloc(200, M_TRK, M_WAITOK);

	kfree(p, M_TRK);
	sink = p[0]; /* where slabkit keeps the free-list link */
}

static void
uaf_objcache(void)
{
	struct objcache *oc = objcache_create_simple(M_TRK, 64);
	char *o = objcache_get(oc, M_WAITOK);

	objcache_put(oc, o);
	sink = o[10];
}

static void
uaf_zalloc(void)
{
	vm_zone_t z = zinit("uaf", 128, 0, 0);
	char *item = zalloc(z);

	zfree(z, item);
	sink = item[40];
}

static void
uaf_mpipe(void)
{
	static struct malloc_pipe mp;
	char *b;

	mpipe_init(&mp, M_TRK, 100, 2, 4, 0, NULL, NULL, NULL);
	b = mpipe_alloc_nowait(&mp);
	mpipe_free(&mp, b);
	sink = b[50];
}

static void
uaf_hardened(void)
{
	char *p;

	slabkit_set_option("hardened", "1");
	p = kmalloc(300, M_TRK, M_WAITOK);
	kfree(p, M_TRK); /* into the quarantine */
	sink = p[100];
}

static void
read_never_allocated(void)
{
	/* a fresh zone: only p was ever handed out */
	char *p = kmalloc(7000, M_TRK, M_WAITOK);
	struct sk_slzone *z = zone_of(p);
	long i = (p - z->z_baseptr) / z->z_chunksize;

	sink = z->z_baseptr[(size_t)((i + 2) % z->z_nmax) * z->z_chunksize];
}

TEST(use_after_free_reported)
{
	if (!SK_TRACK_HAVE_ASAN) {
		printf("  skipped: use-after-free reports need an ASan build "
		       "(SLABKIT_SANITIZE=address)\n");
		CHECK(!SK_TRACK_HAVE_ASAN);
		return;
	}
	CHECK(child_reports(uaf_kmalloc, "heap-use-after-free"));
	CHECK(child_reports(uaf_kmalloc_link_word, "use-after-free"));
	CHECK(child_reports(uaf_kmalloc_obj, "use-after-free"));
	CHECK(child_reports(read_never_handed_out_obj, "AddressSanitizer"));
	CHECK(child_reports(uaf_objcache, "use-after-free"));
	CHECK(child_reports(uaf_zalloc, "use-after-free"));
	CHECK(child_reports(uaf_mpipe, "use-after-free"));
	CHECK(child_reports(uaf_hardened, "use-after-free"));
	CHECK(child_reports(read_never_allocated, "AddressSanitizer"));
}

TEST(zones_are_tracked)
{
	char *p = kmalloc(64, M_TRK, M_WAITOK);

	if (SK_TRACK_HAVE_ASAN) {
		CHECK(zone_of(p)->z_hflags & SK_ZF_TRACKED);
		CHECK_EQ(slabkit_set_option("track", "none"), EBUSY);
		CHECK_EQ(slabkit_set_option("track", "valgrind"), EBUSY);
		CHECK_EQ(slabkit_set_option("track", "asan"), 0);
	} else {
		CHECK_EQ(zone_of(p)->z_hflags, 0);
	}
	kfree(p, M_TRK);
}

TEST(ordinary_use_not_reported)
{
	/* an ASan report here kills the whole binary */
	CHECK_EQ(workload(), 0);
}

int
main(int argc, char **argv)
{
	sk_t_default_mode(
	    "it sets track itself; hardened zones would hide what it checks");
	self = argv[0];
	if (argc > 1 && strcmp(argv[1], "valgrind") == 0)
		return valgrind_mode() == 0 ? 0 : 1;
	track_rc = slabkit_set_option("track", "asan");
	RUN(option_rules);
	RUN(valgrind_paths);
	RUN(use_after_free_reported);
	RUN(zones_are_tracked);
	RUN(ordinary_use_not_reported);
	return sk_t_done();
}
