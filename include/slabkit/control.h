/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * slabkit/control.h: run-time options, the panic handler and the os
 * layer's fault injection (for tests).
 *
 * Options are the keys of SLABKIT_OPTIONS (see slabkit(3)); the environment
 * is read once at initialisation and ignored in setuid/setgid programs.
 */
#ifndef SLABKIT_CONTROL_H
#define SLABKIT_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SLABKIT_API
#define SLABKIT_API __attribute__((visibility("default")))
#endif

/*
 * Set one option as SLABKIT_OPTIONS would ("invariants", "1"; "zone_cache",
 * "8").  value may be NULL for a boolean key.  Returns 0, ENOENT for an
 * unknown key, EINVAL for a bad value, ERANGE for a number out of range,
 * ENOTSUP for track=asan or track=valgrind in a build without that
 * support or for shards=cpu where restartable sequences are missing, EBUSY for a key that can only be set before the first
 * allocation (memlimit) or no longer changed (track, hardened off).
 */
SLABKIT_API int slabkit_set_option(const char *key, const char *value);

/*
 * Parse a whole option string ("stats,zone_cache=4"); returns the first
 * error as above.  Every rejected item is reported on stderr with its key
 * and the reason; the others take effect.
 */
SLABKIT_API int slabkit_set_options(const char *list);

/*
 * Read an option's value in effect ("memlimit" -> "15890M", "track" ->
 * "none", booleans "0" or "1"), as text slabkit_set_option() accepts;
 * values that were not set are shown as derived (the measured memlimit,
 * the derived zone_cache).  Initialises the library if needed.  Returns 0,
 * ENOENT for an unknown key, ERANGE when len is too small (buf then holds
 * a truncated value), EINVAL for a NULL key or buffer.  Any thread.
 */
SLABKIT_API int slabkit_get_option(const char *key, char *buf, size_t len);

/*
 * The panic handler receives the whole message ("slabkit: kfree: ...\n").
 * The default writes it to stderr.  When the handler returns, slabkit
 * calls abort(): a panic never returns to the caller.  Returns the old one.
 */
typedef void slabkit_panic_fn(const char *msg);
SLABKIT_API slabkit_panic_fn *slabkit_set_panic_handler(slabkit_panic_fn *fn);

/*
 * Fault injection in the os layer.  Calls to the given kind of primitive
 * are counted from the moment of arming; calls nth .. nth+count-1 fail
 * (count < 0: every call from nth on).  SLABKIT_FAULT_MAP fails like a page
 * shortage (ENOMEM, transient); SLABKIT_FAULT_MAP_EXHAUST like exhausted
 * address space; SLABKIT_FAULT_ADVISE fails madvise/mprotect.
 */
#define SLABKIT_FAULT_MAP		1
#define SLABKIT_FAULT_MAP_EXHAUST	2
#define SLABKIT_FAULT_ADVISE		3
SLABKIT_API void slabkit_fault_inject(int kind, long nth, long count);

/* Fail each call of the kind with probability permille/1000 (seeded). */
SLABKIT_API void slabkit_fault_random(int kind, unsigned permille,
    uint64_t seed);

/* Disarm every fault; returns the number of faults injected so far. */
SLABKIT_API long slabkit_fault_clear(void);

/* Number of os-layer calls of the kind since start (to size sweeps). */
SLABKIT_API long slabkit_fault_calls(int kind);

/*
 * Interrupt context, the kernel's notion mapped onto userspace: code that
 * runs between slabkit_intr_enter() and slabkit_intr_exit() on a thread
 * (a signal handler, say) is treated as interrupt context.  There, kfree of
 * a large block does not unmap it; the block is queued on the thread's
 * shard and unmapped by its next blocking kmalloc (docs/dragonfly.md
 * 1.6 step 2).
 * Calls nest.
 */
SLABKIT_API void slabkit_intr_enter(void);
SLABKIT_API void slabkit_intr_exit(void);

#ifdef __cplusplus
}
#endif

#endif /* SLABKIT_CONTROL_H */
