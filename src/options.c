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
 *   purge_ms=MS          give back large-block pages retained this long;
 *                        0: only beyond retain [1000]
 *   retain=SIZE          retained large-block pages purged at once beyond
 *                        this, K/M/G suffixes [64M]
 *   purge=dontneed|free|none  how pages go back [dontneed]
 *   large_cache=auto|on|off  the page-run heap's per-CPU front cache for
 *                        large blocks up to 64 KiB; auto: once threads
 *                        found the heap's lock held [auto]
 *   shards=cpu|thread    kmalloc's shards per CPU (restartable sequences)
 *                        or per thread [cpu where the system allows]
 *   kzone_pollfreq=N     kmalloc_obj poller passes per second, 0 off [1]
 *   kzone_bretire=N      slabs the poller retires per type and pass [4]
 *   kzone_cache=N        free slabs cached per thread [128]
 *   kzone_debug[=0|1]    report each retirement [0]
 *                        (the kzone_* keys are parsed in kmalloc_obj.c)
 *   waitok_timeout=MS    bound on an M_WAITOK page-shortage wait, then
 *                        panic; 0 waits forever [60000]
 *   hardened[=0|1]       hardened mode [0]
 *   track=none|valgrind|asan  tell a checker about slabkit's heaps [none]
 *                        (also the environment variable SLABKIT_TRACK)
 *   stats_shm[=0|1]      live statistics for `slabkit stat PID' [0]
 *   verbose[=0|1]        print every option's value in effect at start [0]
 *
 * A bad value is rejected (the option keeps its value) with a message that
 * names the key and says why; slabkit_get_option() reads any option back
 * as text that slabkit_set_option() accepts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kmalloc_obj.h"

struct sk_options sk_opt = {
    .zone_cache = -1,
    .colour = -1,
    .purge_ms = 1000,
    .retain_mb = 64,
    .zone_burst = 32,
    .waitok_timeout_ms = 60000,
#if defined(SLABKIT_ASAN) && defined(SLABKIT_ASAN_TRACK_DEFAULT)
    /* track=asan by default under -fsanitize=address (docs/hardening.md) */
    .track = 2,
    .debug = true,
#endif
};

/* Why a value was rejected: set by the parsers, printed by the callers. */
struct why {
	const char *text;
	long min, max; /* for "out of range" */
};

static int
reject(struct why *w, const char *text, int err)
{
	w->text = text;
	return err;
}

/* The keys whose value is one of three names, stored as its index. */
static const char *const purge_modes[3] = {"dontneed", "free", "none"};
static const char *const large_cache_modes[3] = {"auto", "on", "off"};

static int
parse_choice(const char *v, const char *const names[3], int *out,
    const char *why, struct why *w)
{
	for (int i = 0; i < 3; i++) {
		if (v != NULL && strcmp(v, names[i]) == 0) {
			SK_STORE(out, i);
			return 0;
		}
	}
	return reject(w, why, EINVAL);
}

static int
parse_bool(const char *v, bool *out, struct why *w)
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
	return reject(
	    w, "expects 0 or 1 (or yes/no, on/off, true/false)", EINVAL);
}

/* A decimal number of digits only: no sign, space or suffix. */
static int
parse_long(const char *v, long min, long max, long *out, struct why *w)
{
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return reject(w, "needs a value", EINVAL);
	if (*v < '0' || *v > '9')
		return reject(w, "not a whole number of digits", EINVAL);
	errno = 0;
	n = strtol(v, &end, 10);
	if (*end != '\0')
		return reject(w, "not a whole number of digits", EINVAL);
	if (errno != 0 || n < min || n > max) {
		w->min = min;
		w->max = max;
		return reject(w, "out of range", ERANGE);
	}
	*out = n;
	return 0;
}

/* "512M", "2G", "65536K", "1048576" (bytes) -> MiB. */
static int
parse_size_mb(const char *v, size_t *mb, struct why *w)
{
	unsigned long long n, shift = 0;
	char *end;

	if (v == NULL || *v == '\0')
		return reject(w, "needs a size (such as 512M or 2G)", EINVAL);
	if (*v < '0' || *v > '9')
		goto bad;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return reject(w, "too large", ERANGE);
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	case '\0':
		break;
	default:
		goto bad;
	}
	if (shift != 0 && *end == 'i')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0')
		goto bad;
	if (n > (~0ULL >> shift) || (n << shift) >> 20 > (size_t)-1 >> 20)
		return reject(w, "too large", ERANGE);
	n <<= shift;
	if (n < (1ULL << 20))
		return reject(w, "below the minimum of 1M", ERANGE);
	*mb = (size_t)(n >> 20);
	return 0;
bad:
	return reject(w,
	    "not a size (digits and an optional K, M, G or T suffix)", EINVAL);
}

static void
refresh_debug(void)
{
	SK_STORE(&sk_opt.debug, sk_opt.invariants || sk_opt.pattern ||
	                            sk_opt.weird || sk_opt.hardened ||
	                            sk_opt.track != 0);
	/* the fast paths read no option: kmalloc switches them off or on */
	if (atomic_load(&sk_initialized) == 2)
		sk_kmalloc_debug_changed();
}

static const char *const track_names[] = {"none", "valgrind", "asan"};

static int
set_track(const char *key, const char *value, struct why *w)
{
	int err, n;

	for (n = 0; n < 3; n++)
		if (value != NULL && strcmp(value, track_names[n]) == 0)
			break;
	if (value == NULL)
		n = 0;
	if (n == 3)
		return reject(w, "expects none, valgrind or asan", EINVAL);
	err = sk_harden_option(key, n);
	if (err == ENOTSUP)
		return reject(w,
		    n == 2
		        ? "this build lacks AddressSanitizer (build "
		          "with the asan preset, -DSLABKIT_SANITIZE=address)"
		        : "this build lacks valgrind support "
		          "(<valgrind/memcheck.h> was missing at build time)",
		    err);
	if (err == EBUSY)
		return reject(w,
		    "tracked memory exists already (set it before the "
		    "first allocation)",
		    err);
	if (err != 0)
		return reject(w, "refused", err);
	SK_STORE(&sk_opt.track, n);
	refresh_debug();
	return 0;
}

static const struct {
	const char *name;
	bool *flag;
} bool_options[] = {
    {"invariants", &sk_opt.invariants},
    {"pattern", &sk_opt.pattern},
    {"weird", &sk_opt.weird},
    {"hardened", &sk_opt.hardened},
    {"stats_shm", &sk_opt.stats_shm},
    {"verbose", &sk_opt.verbose},
};
#define NBOOL (sizeof(bool_options) / sizeof(bool_options[0]))

static int
set_option(const char *key, const char *value, struct why *w)
{
	long n;
	bool b;
	int err;

	if (strcmp(key, "memlimit") == 0) {
		size_t mb;

		if ((err = parse_size_mb(value, &mb, w)) != 0)
			return err;
		if (atomic_load(&sk_initialized) == 2)
			return reject(w,
			    "can only be set before the first allocation "
			    "(use SLABKIT_OPTIONS)",
			    EBUSY);
		sk_opt.memlimit_mb = mb;
		return 0;
	}
	if (strcmp(key, "zone_cache") == 0) {
		if ((err = parse_long(value, 0, 1 << 20, &n, w)) != 0)
			return err;
		sk_opt.zone_cache = (int)n;
		if (atomic_load(&sk_initialized) == 2)
			SK_STORE(&sk_slab.zone_rels_thresh, (int)n);
		return 0;
	}
	if (strcmp(key, "zone_burst") == 0) {
		if ((err = parse_long(value, 1, 1 << 20, &n, w)) != 0)
			return err;
		SK_STORE(&sk_opt.zone_burst, (int)n);
		return 0;
	}
	if (strcmp(key, "colour") == 0 || strcmp(key, "color") == 0) {
		if ((err = parse_bool(value, &b, w)) != 0)
			return err;
		SK_STORE(&sk_opt.colour, b ? 1 : 0);
		return 0;
	}
	if (strcmp(key, "purge_ms") == 0) {
		if ((err = parse_long(value, 0, 1L << 30, &n, w)) != 0)
			return err;
		SK_STORE(&sk_opt.purge_ms, n);
		return 0;
	}
	if (strcmp(key, "retain") == 0) {
		size_t mb = 0;

		if ((value == NULL || strcmp(value, "0") != 0) &&
		    (err = parse_size_mb(value, &mb, w)) != 0)
			return err;
		SK_STORE(&sk_opt.retain_mb, mb);
		return 0;
	}
	if (strcmp(key, "purge") == 0)
		return parse_choice(value, purge_modes, &sk_opt.purge,
		    "not dontneed, free or none", w);
	if (strcmp(key, "large_cache") == 0)
		return parse_choice(value, large_cache_modes,
		    &sk_opt.large_cache, "not auto, on or off", w);
	if (strcmp(key, "shards") == 0) {
		bool thread;

		if (value != NULL && strcmp(value, "cpu") == 0)
			thread = false;
		else if (value != NULL && strcmp(value, "thread") == 0)
			thread = true;
		else
			return reject(w, "not cpu or thread", EINVAL);
		if (atomic_load(&sk_initialized) == 2 &&
		    !sk_cpu_set_mode(!thread))
			return reject(w, sk_cpu_mode_why(), ENOTSUP);
		sk_opt.shards_thread = thread;
		return 0;
	}
	if (strncmp(key, "kzone_", 6) == 0)
		return sk_kobj_set_option(key, value);
	if (strcmp(key, "objcache_reap") == 0) {
		if ((err = parse_long(value, 0, 3600000, &n, w)) != 0)
			return err;
		SK_STORE(&sk_opt.objcache_reap_ms, (int)n);
		return 0;
	}
	if (strcmp(key, "waitok_timeout") == 0) {
		if ((err = parse_long(value, 0, 1L << 40, &n, w)) != 0)
			return err;
		sk_opt.waitok_timeout_ms = n;
		return 0;
	}
	if (strcmp(key, "stats") == 0) {
		if (value == NULL || *value == '\0' ||
		    strcmp(value, "text") == 0 || strcmp(value, "1") == 0)
			sk_opt.stats = 1;
		else if (strcmp(value, "json") == 0)
			sk_opt.stats = 2;
		else if (strcmp(value, "0") == 0 || strcmp(value, "off") == 0)
			sk_opt.stats = 0;
		else
			return reject(w, "expects text, json or off", EINVAL);
		return 0;
	}
	if (strcmp(key, "stats_file") == 0) {
		if (value == NULL || *value == '\0')
			return reject(w, "needs a path", EINVAL);
		if (strlen(value) >= sizeof(sk_opt.stats_file))
			return reject(w, "path too long (255 bytes at most)",
			    ENAMETOOLONG);
		strcpy(sk_opt.stats_file, value);
		return 0;
	}
	if (strcmp(key, "track") == 0)
		return set_track(key, value, w);
	for (size_t i = 0; i < NBOOL; i++) {
		if (strcmp(key, bool_options[i].name) != 0)
			continue;
		if ((err = parse_bool(value, &b, w)) != 0)
			return err;
		if (bool_options[i].flag == &sk_opt.hardened &&
		    (err = sk_harden_option(key, b)) != 0)
			return reject(w,
			    "hardened zones exist already (it cannot be "
			    "turned off now)",
			    err);
		SK_STORE(bool_options[i].flag, b);
		refresh_debug();
		return 0;
	}
	return reject(w, "unknown option", ENOENT);
}

int
slabkit_set_option(const char *key, const char *value)
{
	struct why w = {NULL, 0, 0};

	if (key == NULL)
		return EINVAL;
	return set_option(key, value, &w);
}

/* "slabkit: SLABKIT_OPTIONS: memlimit=-5 rejected: not a size (...)" */
static void
report_rejected(const char *src, const char *key, const char *value, int err,
    const struct why *w)
{
	if (err == ENOENT) {
		sk_warn(src, "unknown option '%s' ignored", key);
		return;
	}
	if (w->text != NULL && strcmp(w->text, "out of range") == 0)
		sk_warn(src, "%s%s%s rejected: out of range (%ld to %ld)", key,
		    value != NULL ? "=" : "", value != NULL ? value : "",
		    w->min, w->max);
	else
		sk_warn(src, "%s%s%s rejected: %s", key,
		    value != NULL ? "=" : "", value != NULL ? value : "",
		    w->text != NULL ? w->text : "bad value");
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
		bool has_val = false, too_long = false;
		struct why w = {NULL, 0, 0};
		int err;

		while (*list == ',' || *list == ' ')
			list++;
		if (*list == '\0')
			break;
		while (*list != '\0' && *list != ',' && *list != '=') {
			if (kl + 1 < sizeof(key))
				key[kl++] = *list;
			else
				too_long = true;
			list++;
		}
		key[kl] = '\0';
		if (*list == '=') {
			has_val = true;
			list++;
			while (*list != '\0' && *list != ',') {
				if (vl + 1 < sizeof(val))
					val[vl++] = *list;
				else
					too_long = true;
				list++;
			}
		}
		val[vl] = '\0';
		if (too_long)
			err = reject(&w, "too long (truncated)", ENAMETOOLONG);
		else
			err = set_option(key, has_val ? val : NULL, &w);
		if (err != 0) {
			report_rejected("SLABKIT_OPTIONS", key,
			    has_val ? val : NULL, err, &w);
			if (first_err == 0)
				first_err = err;
		}
	}
	return first_err;
}

/* ------------------------------------------------------------------ */
/* Reading options back */

static const char *const option_keys[] = {
    "memlimit",
    "zone_cache",
    "zone_burst",
    "colour",
    "purge_ms",
    "retain",
    "purge",
    "large_cache",
    "shards",
    "invariants",
    "pattern",
    "weird",
    "hardened",
    "track",
    "objcache_reap",
    "waitok_timeout",
    "stats",
    "stats_file",
    "stats_shm",
    "verbose",
};
#define NKEYS (sizeof(option_keys) / sizeof(option_keys[0]))

/*
 * The value in effect of option i as text slabkit_set_option() accepts;
 * *note says where it came from when it was not set ("measured").  The
 * library is initialised (derived values are known).  Returns the length
 * the value needs, as snprintf.
 */
static size_t
format_option(size_t i, char *buf, size_t len, const char **note)
{
	const char *key = option_keys[i];

	*note = NULL;
	if (strcmp(key, "memlimit") == 0) {
		if (sk_opt.memlimit_mb == 0)
			*note = "measured: RAM, cgroup and RLIMIT_AS";
		return sk_fmt(buf, len, "%zuM", sk_slab.lim_mb);
	}
	if (strcmp(key, "zone_cache") == 0) {
		if (sk_opt.zone_cache < 0)
			*note = "derived from memlimit";
		return sk_fmt(
		    buf, len, "%d", SK_LOAD(&sk_slab.zone_rels_thresh));
	}
	if (strcmp(key, "zone_burst") == 0)
		return sk_fmt(buf, len, "%d", SK_LOAD(&sk_opt.zone_burst));
	if (strcmp(key, "colour") == 0) {
		int c = SK_LOAD(&sk_opt.colour);

		if (c < 0) {
			c = &sk_malloc_dropin == NULL;
			*note = c ? "default" : "default in the malloc drop-in";
		}
		return sk_fmt(buf, len, "%d", c);
	}
	if (strcmp(key, "track") == 0)
		return sk_fmt(
		    buf, len, "%s", track_names[SK_LOAD(&sk_opt.track)]);
	if (strcmp(key, "purge_ms") == 0)
		return sk_fmt(buf, len, "%ld", SK_LOAD(&sk_opt.purge_ms));
	if (strcmp(key, "retain") == 0)
		return sk_fmt(buf, len, "%zuM", SK_LOAD(&sk_opt.retain_mb));
	if (strcmp(key, "purge") == 0)
		return sk_fmt(
		    buf, len, "%s", purge_modes[SK_LOAD(&sk_opt.purge)]);
	if (strcmp(key, "large_cache") == 0)
		return sk_fmt(buf, len, "%s",
		    large_cache_modes[SK_LOAD(&sk_opt.large_cache)]);
	if (strcmp(key, "shards") == 0) {
		if (sk_cpu_mode_why()[0] != '\0')
			*note = sk_cpu_mode_why();
		return sk_fmt(buf, len, "%s", sk_cpu_mode() ? "cpu" : "thread");
	}
	if (strcmp(key, "objcache_reap") == 0)
		return sk_fmt(
		    buf, len, "%d", SK_LOAD(&sk_opt.objcache_reap_ms));
	if (strcmp(key, "waitok_timeout") == 0)
		return sk_fmt(buf, len, "%ld", sk_opt.waitok_timeout_ms);
	if (strcmp(key, "stats") == 0)
		return sk_fmt(buf, len, "%s",
		    sk_opt.stats == 2 ? "json"
		    : sk_opt.stats    ? "text"
		                      : "off");
	if (strcmp(key, "stats_file") == 0) {
		if (sk_opt.stats_file[0] == '\0')
			*note = "standard error";
		return sk_fmt(buf, len, "%s", sk_opt.stats_file);
	}
	for (size_t j = 0; j < NBOOL; j++)
		if (strcmp(key, bool_options[j].name) == 0)
			return sk_fmt(buf, len, "%d",
			    SK_LOAD(bool_options[j].flag) ? 1 : 0);
	return sk_fmt(buf, len, "?");
}

int
slabkit_get_option(const char *key, char *buf, size_t len)
{
	const char *note;

	if (key == NULL || buf == NULL || len == 0)
		return EINVAL;
	if (strcmp(key, "color") == 0)
		key = "colour";
	sk_init();
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(key, option_keys[i]) == 0)
			return format_option(i, buf, len, &note) < len ? 0
			                                               : ERANGE;
	buf[0] = '\0';
	return ENOENT;
}

/*
 * verbose: the configuration in effect, one key=value per line on stderr,
 * once initialisation has derived what was not set.  Called by sk_init.
 */
void sk_options_report(void);
void
sk_options_report(void)
{
	char line[400], val[300];
	const char *note;
	size_t n;

	for (size_t i = 0; i < NKEYS; i++) {
		format_option(i, val, sizeof(val), &note);
		n = sk_fmt(line, sizeof(line),
		    "slabkit: options: %s=%s%s%s%s\n", option_keys[i], val,
		    note != NULL ? " (" : "", note != NULL ? note : "",
		    note != NULL ? ")" : "");
		sk_os_write(2, line, n < sizeof(line) ? n : sizeof(line) - 1);
	}
}

void
sk_options_init(void)
{
	const char *env = sk_os_getenv("SLABKIT_OPTIONS");
	const char *track = sk_os_getenv("SLABKIT_TRACK");
	struct why w = {NULL, 0, 0};
	int err;

	if (env != NULL)
		slabkit_set_options(env);
	/* SLABKIT_TRACK=valgrind|asan|none is a shorthand for track=... */
	if (track != NULL && (err = set_option("track", track, &w)) != 0)
		report_rejected("SLABKIT_TRACK", "track", track, err, &w);
}
