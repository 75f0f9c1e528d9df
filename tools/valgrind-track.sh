#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# valgrind-track.sh: memcheck sees slabkit's own heaps when
# SLABKIT_OPTIONS=track=valgrind (src/track.h).  Builds a tiny program
# against a build's static library and checks that:
#   - a use-after-free of a kmalloc chunk, an objcache object, a zone item,
#     an mpipe buffer and a hardened chunk is an "Invalid read";
#   - without track=valgrind the same kmalloc read goes unseen (why the
#     option exists);
#   - ordinary use (threads, remote frees, zones released, every
#     allocator, hardened mode) is memcheck-clean, and so is the
#     track=valgrind mode of unit-test_track.
# Usage: tools/valgrind-track.sh [build-dir]   (default build/release; not
# a sanitizer build)
set -u
build=${1:-build/release}
root=$(cd "$(dirname "$0")/.." && pwd)
lib=$build/libslabkit.a
if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind-track: valgrind is not installed"; exit 1
fi
if [ ! -f "$lib" ]; then
	echo "valgrind-track: no $lib (build first)"; exit 1
fi
if grep -q '^SLABKIT_SANITIZE:STRING=.\+' "$build/CMakeCache.txt" 2>/dev/null
then
	echo "valgrind-track: $build is a sanitizer build"; exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cat >"$tmp/uaf.c" <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <slabkit/kmalloc.h>
#include <slabkit/mpipe.h>
#include <slabkit/objcache.h>
#include <slabkit/zone.h>

MALLOC_DEFINE(M_VGT, "vgtrack", "valgrind-track.sh");

static volatile char sink;
static char *v[400];

static void *
free_all(void *arg)
{
	(void)arg;
	for (int i = 0; i < 400; i++)
		kfree(v[i], M_VGT);
	return NULL;
}

static void
clean(void)
{
	struct objcache *oc = objcache_create_simple(M_VGT, 120);
	vm_zone_t z = zinit("vgt", 64, 0, ZONE_DESTROYABLE);
	static struct malloc_pipe mp;
	void *o[32], *it[32], *b[4];
	pthread_t t;

	slabkit_set_option("zone_cache", "0");
	for (int r = 0; r < 3; r++) {
		for (int i = 0; i < 400; i++) {
			v[i] = kmalloc(i % 3 ? 50 + i : 30000, M_VGT, M_WAITOK);
			memset(v[i], i, kmalloc_usable_size(v[i]));
			v[i] = krealloc(v[i], 100 + i, M_VGT, M_WAITOK);
			sink = v[i][99];
		}
		pthread_create(&t, NULL, free_all, NULL);
		pthread_join(t, NULL);
		slab_cleanup();
	}
	for (int i = 0; i < 32; i++) {
		o[i] = objcache_get(oc, M_WAITOK);
		memset(o[i], 1, 120);
		it[i] = zalloc(z);
		memset(it[i], 2, 64);
	}
	for (int i = 0; i < 32; i++) {
		objcache_put(oc, o[i]);
		zfree(z, it[i]);
	}
	objcache_destroy(oc);
	zdestroy(z);
	mpipe_init(&mp, M_VGT, 200, 2, 4, 0, NULL, NULL, NULL);
	for (int i = 0; i < 4; i++)
		memset(b[i] = mpipe_alloc_nowait(&mp), 3, 200);
	for (int i = 0; i < 4; i++)
		mpipe_free(&mp, b[i]);
	mpipe_done(&mp);
}

int
main(int argc, char **argv)
{
	const char *w = argc > 1 ? argv[1] : "clean";
	char *p;

	if (strcmp(w, "kmalloc") == 0) {
		p = kmalloc(48, M_VGT, M_WAITOK);
		kfree(p, M_VGT);
		sink = p[3];
	} else if (strcmp(w, "objcache") == 0) {
		struct objcache *oc = objcache_create_simple(M_VGT, 100);

		p = objcache_get(oc, M_WAITOK);
		objcache_put(oc, p);
		sink = p[3];
	} else if (strcmp(w, "zone") == 0) {
		vm_zone_t z = zinit("vgt", 64, 0, 0);

		p = zalloc(z);
		zfree(z, p);
		sink = p[30];
	} else if (strcmp(w, "mpipe") == 0) {
		static struct malloc_pipe mp;

		mpipe_init(&mp, M_VGT, 100, 2, 4, 0, NULL, NULL, NULL);
		p = mpipe_alloc_nowait(&mp);
		mpipe_free(&mp, p);
		sink = p[3];
	} else {
		clean();
	}
	return 0;
}
EOF
if ! cc -g -O1 -I"$root/include" "$tmp/uaf.c" "$lib" -lpthread \
    -o "$tmp/uaf" 2>"$tmp/cc.log"; then
	cat "$tmp/cc.log"; exit 1
fi

pass=0 fail=0
# check NAME EXPECT(report|clean) OPTIONS ARGS...
check() {
	name=$1 expect=$2 opts=$3
	shift 3
	SLABKIT_OPTIONS=$opts valgrind --error-exitcode=99 "$@" \
	    >"$tmp/out" 2>&1
	rc=$?
	ok=0
	case $expect in
	report) [ $rc = 99 ] && grep -q 'Invalid read' "$tmp/out" && ok=1 ;;
	clean) [ $rc = 0 ] && ok=1 ;;
	esac
	if [ $ok = 1 ]; then
		pass=$((pass + 1)); echo "ok   $name"
	else
		fail=$((fail + 1)); echo "FAIL $name (rc $rc)"
		tail -25 "$tmp/out"
	fi
}

for w in kmalloc objcache zone mpipe; do
	check "$w use-after-free is an Invalid read" report track=valgrind \
	    "$tmp/uaf" $w
done
check "hardened kmalloc use-after-free is an Invalid read" report \
    track=valgrind,hardened "$tmp/uaf" kmalloc
check "without track=valgrind memcheck sees nothing" clean "" \
    "$tmp/uaf" kmalloc
check "ordinary use is clean" clean track=valgrind "$tmp/uaf" clean
check "ordinary use, hardened, is clean" clean track=valgrind,hardened \
    "$tmp/uaf" clean
if [ -x "$build/tests/unit-test_track" ]; then
	check "unit-test_track's valgrind mode is clean" clean "" \
	    "$build/tests/unit-test_track" valgrind
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
