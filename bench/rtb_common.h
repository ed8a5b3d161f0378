/* SPDX-License-Identifier: MIT */
/*
 * rtb_common.h - helpers shared by the benchmark (rtbench) and the demo.
 *
 * Everything here is careful not to call the allocator under test while a
 * measurement runs: bookkeeping memory comes from mmap() and is pre-faulted,
 * sorting needs no malloc, and timing uses the TSC read with rdtscp.
 */
#ifndef RTB_COMMON_H
#define RTB_COMMON_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define RTB_HAVE_TSC 1
#else
#define RTB_HAVE_TSC 0
#endif

/* ---------------------------------------------------------------- time */

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t rtb_now_ns(void);

/*
 * Cheap timestamp in "ticks".  On x86 this is rdtscp, which waits for the
 * previous instructions to finish, so the timed call is inside the window.
 * Elsewhere it falls back to CLOCK_MONOTONIC (ticks are then nanoseconds).
 */
static inline uint64_t rtb_ticks(void)
{
#if RTB_HAVE_TSC
	unsigned aux;
	return __rdtscp(&aux);
#else
	return rtb_now_ns();
#endif
}

/* Measure the tick rate against CLOCK_MONOTONIC for about ms milliseconds. */
void rtb_clock_calibrate(unsigned ms);
/* Nanoseconds per tick, valid after rtb_clock_calibrate(). */
double rtb_ns_per_tick(void);
static inline double rtb_ticks_to_ns(uint64_t ticks)
{
	return (double)ticks * rtb_ns_per_tick();
}

/* ---------------------------------------------------------------- PRNG */

/* splitmix64: tiny, fast, good enough to draw sizes and slots, and fully
 * determined by its seed so every contender sees the same request stream. */
typedef struct {
	uint64_t state;
} rtb_rng;

static inline uint64_t rtb_rand(rtb_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (multiply-shift, no modulo bias worth caring). */
static inline uint32_t rtb_below(rtb_rng *r, uint32_t n)
{
	return (uint32_t)(((rtb_rand(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static inline size_t rtb_between(rtb_rng *r, size_t lo, size_t hi)
{
	return lo + rtb_below(r, (uint32_t)(hi - lo + 1));
}

/*
 * The request-size mix of peers.md: 90% 8-512 B, 9.5% 513 B-64 KiB,
 * 0.5% 64 KiB-1 MiB, each range uniform.
 */
size_t rtb_mixed_size(rtb_rng *r);

/* ------------------------------------------------ bookkeeping memory */

/* Zeroed, pre-faulted memory straight from mmap (never from malloc). */
void *rtb_map(size_t bytes);
void rtb_unmap(void *p, size_t bytes);

/* Touch `bytes` of the current thread's stack so later use takes no fault. */
void rtb_prefault_stack(size_t bytes);

/* ------------------------------------------------- latency samples */

typedef struct {
	uint32_t *v;      /* tick counts, saturated at UINT32_MAX */
	size_t n, cap;
	uint64_t dropped; /* samples that did not fit */
} rtb_samples;

int rtb_samples_init(rtb_samples *s, size_t cap);
void rtb_samples_release(rtb_samples *s);

static inline void rtb_samples_add(rtb_samples *s, uint64_t ticks)
{
	if (s->n < s->cap)
		s->v[s->n++] = ticks > UINT32_MAX ? UINT32_MAX : (uint32_t)ticks;
	else
		s->dropped++;
}

/* Append all of src to dst (as far as dst has room). */
void rtb_samples_merge(rtb_samples *dst, const rtb_samples *src);

/* Sort in place (radix sort, no malloc).  Needed before the queries below. */
void rtb_samples_sort(rtb_samples *s);

/* Value at quantile q in [0,1] of sorted samples, in ns (nearest rank). */
double rtb_quantile_ns(const rtb_samples *s, double q);

/* Number of sorted samples strictly above ns nanoseconds. */
uint64_t rtb_count_above_ns(const rtb_samples *s, double ns);

/* ---------------------------------------------------------- faults */

typedef struct {
	long minor, major;
} rtb_faults;

rtb_faults rtb_faults_self(void);   /* whole process */
rtb_faults rtb_faults_thread(void); /* calling thread */

/* ------------------------------------------------------ strace marks */

/*
 * A marker is madvise(RTB_MARK_BASE + (2*id+end)*4096, 0, MADV_NORMAL): a
 * memory system call no allocator makes, with a recognisable address and
 * no effect.  `strace -e trace=%memory` therefore sees the markers in the
 * same stream as the calls it counts; bench/report.py counts between them.
 */
#define RTB_MARK_BASE 0x5254420000ul /* "RTB" */
void rtb_marker(unsigned id, bool end);

/* -------------------------------------------------------- threads */

/* pthread_create with a small (256 KiB) stack, so that mlockall()ed
 * contenders do not lock and fault in the default 8 MiB per thread. */
int rtb_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/*
 * Pin the calling thread to the n-th CPU it is allowed on (n modulo their
 * number), saving its previous mask in *saved when saved is non-NULL.
 * Returns false when that is not possible (one CPU, or no permission).
 */
bool rtb_pin_self(unsigned n, cpu_set_t *saved);
void rtb_unpin_self(const cpu_set_t *saved);

/* ------------------------------------------------------- output */

/*
 * Results go to stdout as lines "R<TAB>scope<TAB>metric<TAB>value", which
 * bench/report.py collects; everything else (notes) goes to stderr.
 */
void rtb_out_init(void);
void rtb_emit(const char *scope, const char *metric, double value);
void rtb_emitf(const char *metric, double value, const char *scope_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Read a "VmXXX:   1234 kB" field of /proc/self/status, in KiB (-1 if absent). */
long rtb_proc_status_kib(const char *field);

/* Parse "64M", "1G", "4096" into bytes (0 on error). */
size_t rtb_parse_size(const char *s);

#endif /* RTB_COMMON_H */
