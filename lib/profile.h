/* SPDX-License-Identifier: MIT */
/*
 * profile.h - the recorded profile's text format, shared by librtalloc
 * (lib/profile.c: RTALLOC_PROFILE_SAVE at exit, RTALLOC_PROFILE at start-up)
 * and rtalloc-stat --profile PID: one writer, one parser, one collector from
 * a statistics region (lib/profile_fmt.c).  Like statread.h it needs nothing
 * of the allocator (no rt.h) and nothing of libc but its string functions:
 * the parser runs during initialisation (no malloc, no stdio), on a static
 * buffer.
 *
 * The format, version 1 (one item a line, '#' lines and blank lines ignored):
 *   rtalloc-profile 1                       the first line, exactly
 *   pool_peak_bytes N                       the pool's high-water mark
 *   large_peak_blocks N                     huge blocks (> 1 MiB) live at once
 *   class SIZE peak N                       per class (SIZE: 16 .. 1048576),
 *                                           over the process: the sum of its
 *                                           threads' peaks
 *   thread "NAME" class SIZE peak N         per thread name (at most 15 bytes)
 *   heap "NAME" bytes N peak N              a heap's size and high-water mark
 * Names are written between double quotes; '"', '\' and bytes below 0x20 or
 * from 0x7f as \xHH.  Numbers are decimal, at most 2^63 - 1 (a thread's peaks: 2^31 - 1).
 */
#ifndef RT_PROFILE_H
#define RT_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

#ifndef RT_HIDDEN
#define RT_HIDDEN __attribute__((visibility("hidden")))
#endif

#define RT_PF_MAGIC "rtalloc-profile"
#define RT_PF_TEXT_MAX 65536 /* the largest file read (the loader's static buffer) */
#define RT_PF_PEAK_MAX 0x7fffffffu
#define RT_PF_HEAP_NAME 64

struct rt_pf_thread {
	char name[RT_PROFILE_NAME]; /* NUL-terminated */
	uint32_t peak[RT_PROFILE_CLASSES];
};

struct rt_pf_heap {
	char name[RT_PF_HEAP_NAME + 1]; /* NUL-terminated */
	uint64_t bytes, peak;
};

struct rt_pf {
	uint64_t pool_peak;  /* bytes */
	uint64_t large_peak; /* blocks */
	uint64_t class_peak[RT_PROFILE_CLASSES]; /* the process's: sum over its threads */
	unsigned nthreads;
	struct rt_pf_thread threads[RT_PROFILE_THREADS];
	unsigned nheaps;
	struct rt_pf_heap heaps[RT_STATS_HEAPS];
};

/* The profile as text into buf (len bytes, NUL-terminated when len > 0):
 * the length it needed.  A comment line names who wrote it (may be NULL). */
RT_HIDDEN size_t rt_pf_format(const struct rt_pf *p, const char *comment, char *buf, size_t len);
/* Parse text[0 .. len) (need not be NUL-terminated) into *p.  NULL, or what
 * is wrong, with *line the line it is on (1-based). */
RT_HIDDEN const char *rt_pf_parse(const char *text, size_t len, struct rt_pf *p, unsigned *line);
/* The peaks of the thread named name, or NULL. */
RT_HIDDEN const struct rt_pf_thread *rt_pf_thread(const struct rt_pf *p, const char *name);
/* The threads' records and large blocks of a region's profile part (read
 * word by word: another process may write it meanwhile; records of one name
 * merged), the pool's high-water mark and the heaps given by the caller
 * (statread.h's figures and records); class_peak computed. */
RT_HIDDEN void rt_pf_collect(const struct rt_stats_profile *m, uint64_t pool_peak,
			     const struct rt_stats_heap *heaps, unsigned nheaps, struct rt_pf *p);

#endif /* RT_PROFILE_H */
