/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SLABKIT_OPTIONS: "key[=value],key[=value],...", read once at
 * initialisation without allocating, and ignored in setuid/setgid programs
 * (secure_getenv), as jemalloc and DragonFly's libc do.  Unknown keys and
 * bad values are reported on stderr, never silently dropped.
 *
 * Keys (defaults in brackets; slabkit(3) documents each):
 *   memlimit=SIZE        usable memory, K/M/G suffixes [measured]
 *   zone_cache=N         free zones kept per shard, ZoneRelsThresh [derived]
 *   zone_burst=N         zalloc per-shard refill burst [32]
 *   invariants[=0|1]     INVARIANTS checks [0]
 *   pattern[=0|1]        0xff-fill non-zeroed allocations [0]
 *   weird[=0|1]          0xdeadc0de over freed chunks [0]
 *   stats[=text|json]    print every table at exit [off]
 *   stats_file=PATH      where stats go [stderr]
 *   objcache_reap=MS     objcache working-set reaper interval [0: off]
 *   colour[=0|1]         zone colouring [on; off in the malloc drop-in]
 *   waitok_timeout=MS    bound on an M_WAITOK page-shortage wait, then
 *                        panic; 0 waits forever [60000]
 *   hardened[=0|1]       hardened mode [0]
 *   track=none|valgrind|asan  tell a checker about slabkit's heaps [none]
 *                        (also the environment variable SLABKIT_TRACK)
 *   stats_shm[=0|1]      live statistics for `slabkit stat PID' [0]
 *   verbose[=0|1]        say what was configured [0]
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct sk_options sk_opt = {
	.zone_cache = -1,
	.colour = -1,
	.zone_burst = 32,
	.waitok_timeout_ms = 60000,
#if defined(SLABKIT_ASAN) && defined(SLABKIT_ASAN_TRACK_DEFAULT)
	/* track=asan by default under -fsanitize=address (docs/hardening.md) */
	.track = 2,
	.debug = true,
#endif
};

static int
parse_bool(const char *v, bool *out)
{
	if (v == NULL || *v == '\0' || strcmp(v, "1") == 0 ||
	    strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
	    strcmp(v, "on") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 ||
	    strcmp(v, "no") == 0 || strcmp(v, "off") == 0) {
		*out = false;
		return 0;
	}
	return EINVAL;
}

static int
parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return EINVAL;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return EINVAL;
	*out = n;
	return 0;
}

/* "512M", "2G", "65536K", "1048576" (bytes) -> MiB. */
static int
parse_size_mb(const char *v, size_t *mb)
{
	unsigned long long n, shift = 0;
	char *end;

	if (v == NULL || *v == '\0')
		return EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || end == v)
		return EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case '\0': break;
	default: return EINVAL;
	}
	if (*end == 'b' || *end == 'B' || *end == 'i')
		end++;
	if (*end == 'B')
		end++;
	if (*end != '\0' || n > (~0ULL >> shift))
		return EINVAL;
	n <<= shift;
	if (n < (1ULL << 20))
		return EINVAL;
	*mb = (size_t)(n >> 20);
	return 0;
}

int
slabkit_set_option(const char *key, const char *value)
{
	long n;
	bool b;
	int err;

	if (key == NULL)
		return EINVAL;
	if (strcmp(key, "memlimit") == 0) {
		size_t mb;

		if (atomic_load(&sk_initialized) == 2)
			return EBUSY;
		if ((err = parse_size_mb(value, &mb)) != 0)
			return err;
		sk_opt.memlimit_mb = mb;
		return 0;
	}
	if (strcmp(key, "zone_cache") == 0) {
		if ((err = parse_long(value, 0, 1 << 20, &n)) != 0)
			return err;
		sk_opt.zone_cache = (int)n;
		if (atomic_load(&sk_initialized) == 2)
			SK_STORE(&sk_slab.zone_rels_thresh, (int)n);
		return 0;
	}
	if (strcmp(key, "zone_burst") == 0) {
		if ((err = parse_long(value, 1, 1 << 20, &n)) != 0)
			return err;
		SK_STORE(&sk_opt.zone_burst, (int)n);
		return 0;
	}
	if (strcmp(key, "colour") == 0 || strcmp(key, "color") == 0) {
		if ((err = parse_bool(value, &b)) != 0)
			return err;
		SK_STORE(&sk_opt.colour, b ? 1 : 0);
		return 0;
	}
	if (strcmp(key, "objcache_reap") == 0) {
		if ((err = parse_long(value, 0, 3600000, &n)) != 0)
			return err;
		SK_STORE(&sk_opt.objcache_reap_ms, (int)n);
		return 0;
	}
	if (strcmp(key, "waitok_timeout") == 0) {
		if ((err = parse_long(value, 0, 1L << 40, &n)) != 0)
			return err;
		sk_opt.waitok_timeout_ms = n;
		return 0;
	}
	if (strcmp(key, "stats") == 0) {
		if (value == NULL || *value == '\0' || strcmp(value, "text") == 0 ||
		    strcmp(value, "1") == 0)
			sk_opt.stats = 1;
		else if (strcmp(value, "json") == 0)
			sk_opt.stats = 2;
		else if (strcmp(value, "0") == 0 || strcmp(value, "off") == 0)
			sk_opt.stats = 0;
		else
			return EINVAL;
		return 0;
	}
	if (strcmp(key, "stats_file") == 0) {
		if (value == NULL || strlen(value) >= sizeof(sk_opt.stats_file))
			return EINVAL;
		strcpy(sk_opt.stats_file, value);
		return 0;
	}
	if (strcmp(key, "track") == 0) {
		if (value == NULL || strcmp(value, "none") == 0)
			n = 0;
		else if (strcmp(value, "valgrind") == 0)
			n = 1;
		else if (strcmp(value, "asan") == 0)
			n = 2;
		else
			return EINVAL;
		if ((err = sk_harden_option(key, (int)n)) != 0)
			return err; /* ENOTSUP, or EBUSY once in use */
		SK_STORE(&sk_opt.track, (int)n);
		SK_STORE(&sk_opt.debug, sk_opt.invariants || sk_opt.pattern ||
		    sk_opt.weird || sk_opt.hardened || sk_opt.track != 0);
		return 0;
	}
	{
		static const struct {
			const char *name;
			bool *flag;
		} bools[] = {
			{"invariants", &sk_opt.invariants},
			{"pattern", &sk_opt.pattern},
			{"weird", &sk_opt.weird},
			{"hardened", &sk_opt.hardened},
			{"stats_shm", &sk_opt.stats_shm},
			{"verbose", &sk_opt.verbose},
		};
		for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
			if (strcmp(key, bools[i].name) != 0)
				continue;
			if ((err = parse_bool(value, &b)) != 0)
				return err;
			if (bools[i].flag == &sk_opt.hardened &&
			    (err = sk_harden_option(key, b)) != 0)
				return err; /* EBUSY: hardened zones exist */
			SK_STORE(bools[i].flag, b);
			SK_STORE(&sk_opt.debug, sk_opt.invariants ||
			    sk_opt.pattern || sk_opt.weird || sk_opt.hardened ||
			    sk_opt.track != 0);
			return 0;
		}
	}
	return ENOENT;
}

int
slabkit_set_options(const char *list)
{
	char key[64], val[300];
	int first_err = 0;

	if (list == NULL)
		return 0;
	while (*list != '\0') {
		size_t kl = 0, vl = 0;
		bool has_val = false;
		int err;

		while (*list == ',' || *list == ' ')
			list++;
		if (*list == '\0')
			break;
		while (*list != '\0' && *list != ',' && *list != '=') {
			if (kl + 1 < sizeof(key))
				key[kl++] = *list;
			list++;
		}
		key[kl] = '\0';
		if (*list == '=') {
			has_val = true;
			list++;
			while (*list != '\0' && *list != ',') {
				if (vl + 1 < sizeof(val))
					val[vl++] = *list;
				list++;
			}
		}
		val[vl] = '\0';
		err = slabkit_set_option(key, has_val ? val : NULL);
		if (err == ENOENT)
			sk_warn("SLABKIT_OPTIONS", "unknown option '%s' ignored",
			    key);
		else if (err != 0)
			sk_warn("SLABKIT_OPTIONS", "bad value '%s' for '%s' ignored",
			    val, key);
		if (err != 0 && first_err == 0)
			first_err = err;
	}
	return first_err;
}

void
sk_options_init(void)
{
	const char *env = sk_os_getenv("SLABKIT_OPTIONS");
	const char *track = sk_os_getenv("SLABKIT_TRACK");

	if (env != NULL)
		slabkit_set_options(env);
	/* SLABKIT_TRACK=valgrind|asan|none is a shorthand for track=... */
	if (track != NULL && slabkit_set_option("track", track) != 0)
		sk_warn("SLABKIT_TRACK", "bad value '%s' ignored", track);
}
