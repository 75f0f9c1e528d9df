// SPDX-License-Identifier: BSD-3-Clause
// api/cxx_consumer: the public headers from C++11, built with -Wall -Wextra
// -pedantic -Werror (MALLOC_DEFINE used to need C++20's designated
// initializers).  Prints "N passed, N failed".
#include <cstdio>
#include <cstring>

#include <slabkit/slabkit.h>

MALLOC_DEFINE(M_CXX, "cxx", "C++ consumer");
static MALLOC_DEFINE(M_CXX_STATIC, "cxx_static", "C++ consumer, static");

struct item {
	long key;
	char name[24];
};

static int passed, failed;

static void
check(bool ok, const char *what)
{
	std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

int
main()
{
	struct kmalloc_type_stats st;
	item *it = static_cast<item *>(
	    kmalloc(sizeof(item), M_CXX, M_WAITOK | M_ZERO));

	check(it != nullptr && it->key == 0, "kmalloc M_ZERO");
	std::strcpy(it->name, "c++");
	check(kmalloc_type_stats(M_CXX, &st) == 0 && st.inuse == 1,
	    "the type counts the allocation");
	kfree(it, M_CXX);

	char *s = kstrdup("static type", M_CXX_STATIC);
	check(s != nullptr && std::strcmp(s, "static type") == 0,
	    "kstrdup on a static MALLOC_DEFINE");
	kfree(s, M_CXX_STATIC);

	struct objcache *oc = objcache_create_simple(M_CXX, sizeof(item));
	void *o = objcache_get(oc, M_WAITOK);
	check(o != nullptr, "objcache_get");
	objcache_put(oc, o);
	objcache_destroy(oc);

	vm_zone_t z = zinit("cxx_zone", sizeof(item), 0, 0);
	void *zi = z != nullptr ? zalloc(z) : nullptr;
	check(zi != nullptr, "zinit and zalloc");
	if (zi != nullptr)
		zfree(z, zi);

	check(kmalloc_type_stats(M_CXX, &st) == 0 && st.inuse == 0,
	    "nothing left in use");
	std::printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
