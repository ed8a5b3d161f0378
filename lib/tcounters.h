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
 * the struct, publishing, summing and printing in step. */
#define RT_TCOUNTERS(X)                                                           \
	X(mallocs, "allocations")                                                 \
	X(frees, "frees")                                                         \
	X(slow_mallocs, "allocations on the slow path")                           \
	X(slow_frees, "frees on the slow path")                                   \
	X(refills, "refills of a thread cache")                                   \
	X(flushes, "flushes of a thread cache")                                   \
	X(failed, "failed allocations")                                           \
	X(rt_sections, "real-time sections ended")                                \
	X(rt_minflt, "minor faults in real-time sections")                        \
	X(rt_majflt, "major faults in real-time sections")                        \
	X(rt_slow, "slow-path entries in real-time sections")                     \
	X(bytes_allocated, "bytes allocated (the blocks' usable sizes)")          \
	X(bytes_freed, "bytes freed (the blocks' usable sizes)")                  \
	X(lock_waits, "waits for an arena's or a heap's lock")                    \
	X(rt_lock_waits, "waits for a lock in real-time sections")

/* A thread's maxima, after the counters in struct rt_tcounters: never summed
 * (a sum of threads, or the exited totals, keeps the largest). */
#define RT_TMAXIMA(X)                                                             \
	X(lock_wait_max_ns, "the longest wait for a lock (ns)")                   \
	X(rt_lock_wait_max_ns, "the longest wait for a lock in real-time sections (ns)")

/* lock_waits and lock_wait_max_ns are lock.c's (struct rt_lock_waits, the
 * thread's own): stats.c copies them in for the slot, the exited totals and
 * a reader; the thread cache's own copy (rt_tcache.st) keeps 0 there.  The
 * real-time ones are counted at rtalloc_rt_end (tcache.c). */
struct rt_tcounters {
#define RT_X_FIELD(name, text) uint64_t name;
	RT_TCOUNTERS(RT_X_FIELD)
	RT_TMAXIMA(RT_X_FIELD)
#undef RT_X_FIELD
};

#endif /* RT_TCOUNTERS_H */
