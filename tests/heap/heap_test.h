/* SPDX-License-Identifier: MIT */
/* heap_test.h - helpers of the heap tests (tests/heap/). */
#ifndef RT_HEAP_TEST_H
#define RT_HEAP_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#include "rtalloc.h"
#include "heap.h"

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC now + ms. */
static inline struct timespec in_ms(long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static inline void assert_heap_sound(rtalloc_heap_t *h)
{
	const char *why = rt_heap_check(h);
	if (why)
		fail_msg("rt_heap_check: %s", why);
}

static inline struct rtalloc_heap_info info_of(rtalloc_heap_t *h)
{
	struct rtalloc_heap_info in;
	assert_int_equal(rtalloc_heap_inquire(h, &in), 0);
	return in;
}

/* Fill h with blocks of size bytes until it refuses (ENOMEM); returns how
 * many, stored in blocks (at most max). */
/* Nothing allocated: no live block, every byte free, invariants hold. */
static inline void assert_heap_whole(rtalloc_heap_t *h)
{
	struct rtalloc_heap_info in = info_of(h);
	assert_int_equal(in.live_blocks, 0);
	assert_int_equal(in.free_bytes, in.size);
	assert_heap_sound(h);
}

static inline size_t fill_heap(rtalloc_heap_t *h, size_t size, void **blocks, size_t max)
{
	size_t n = 0;
	for (; n < max; n++) {
		errno = 0;
		blocks[n] = rtalloc_heap_alloc(h, size);
		if (!blocks[n]) {
			assert_int_equal(errno, ENOMEM);
			break;
		}
	}
	assert_true(n < max);
	return n;
}

#endif
