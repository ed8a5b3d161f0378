/* SPDX-License-Identifier: MIT */
/*
 * tcounters.h - a thread's counters: the one list of them (an X-macro), for
 * the core that counts (rt.h: struct rt_tcache) and for the export format
 * that carries them (stats.h: the slots and the exited totals).  Nothing
 * else: rt.h includes this, not the export format.
 */
#ifndef RT_TCOUNTERS_H
#define RT_TCOUNTERS_H

#include <stdint.h>

/* Per-thread counters, in the order of struct rt_tcounters: the X-macro keeps
 * the struct, publishing, summing and printing in step.  X(field, key, text):
 * key is the name rtalloc-stat's JSON gives it (the real-time section
 * counters keep their "rt_" keys; in the code "rt_" is only the prefix). */
#define RT_TCOUNTERS(X)                                                                          \
	X(mallocs, "mallocs", "allocations")                                                     \
	X(frees, "frees", "frees")                                                               \
	X(slow_mallocs, "slow_mallocs", "allocations on the slow path")                          \
	X(slow_frees, "slow_frees", "frees on the slow path")                                    \
	X(refills, "refills", "refills of a thread cache")                                       \
	X(flushes, "flushes", "flushes of a thread cache")                                       \
	X(failed, "failed", "failed allocations")                                                \
	X(sections, "rt_sections", "real-time sections ended")                                   \
	X(sect_minflt, "rt_minflt", "minor faults in real-time sections")                        \
	X(sect_majflt, "rt_majflt", "major faults in real-time sections")                        \
	X(sect_slow, "rt_slow", "slow-path entries in real-time sections")                       \
	X(bytes_allocated, "bytes_allocated", "bytes allocated (the blocks' usable sizes)")      \
	X(bytes_freed, "bytes_freed", "bytes freed (the blocks' usable sizes)")                  \
	X(lock_waits, "lock_waits", "waits for an arena's or a heap's lock")                     \
	X(sect_lock_waits, "rt_lock_waits", "waits for a lock in real-time sections")

/* A thread's maxima, after the counters in struct rt_tcounters: never summed
 * (a sum of threads, or the exited totals, keeps the largest). */
#define RT_TMAXIMA(X)                                                                            \
	X(lock_wait_max_ns, "lock_wait_max_ns", "the longest wait for a lock (ns)")              \
	X(sect_lock_wait_max_ns, "rt_lock_wait_max_ns", "the longest wait for a lock in real-time sections (ns)")

/* lock_waits and lock_wait_max_ns are lock.c's (struct rt_lock_waits, the
 * thread's own): stats.c copies them in for the slot, the exited totals and
 * a reader; the thread cache's own copy (rt_tcache.st) keeps 0 there.  The
 * real-time ones are counted at rtalloc_rt_end (tcache.c). */
struct rt_tcounters {
#define RT_X_FIELD(name, key, text) uint64_t name;
	RT_TCOUNTERS(RT_X_FIELD)
	RT_TMAXIMA(RT_X_FIELD)
#undef RT_X_FIELD
};

#endif /* RT_TCOUNTERS_H */
