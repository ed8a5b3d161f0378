/* SPDX-License-Identifier: MIT */
/*
 * stat_hammer.c - rtalloc_stats() read in a tight loop while threads allocate,
 * free, enter real-time sections, and come and go (tests/stat; also in suite
 * 'threads').  Linked with the core static library (rtalloc_* names only).
 *
 * Every counter of struct rtalloc_stats only grows: a reader that ever sees
 * one go down has read a torn or double-counted value (a slot being written,
 * or a thread's totals counted both in its slot and in the exited totals).
 * Also within one read: in_use <= high_water <= pool <= pool_max.
 *
 * Exit 0 when no read ever went wrong; else 1 with the first violation.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtalloc.h"

/* lib/alloc.c calls rt_realloc_foreign(), which only lib/interpose.c defines, so
 * the core alone does not link: a weak stand-in (never called here: this test
 * reallocs nothing) that gives way to the library's own once the core has it. */
void *rt_realloc_foreign(void *p, size_t n);
__attribute__((weak)) void *rt_realloc_foreign(void *p, size_t n)
{
	(void)p;
	(void)n;
	abort();
}

#define WORKERS 4
#define CHURNERS 2
#define READERS 2
#define RUN_NS 1500000000ull /* 1.5 s */

static atomic_int stop;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Allocation traffic across every class, huge blocks included, and sections. */
static void work(unsigned seed, long rounds)
{
	void *keep[256] = {0};
	for (long i = 0; rounds < 0 || i < rounds; i++) {
		if (rounds < 0 && (i & 1023) == 0 && atomic_load_explicit(&stop, memory_order_relaxed))
			break;
		seed = seed * 1103515245u + 12345u;
		unsigned k = (seed >> 8) % 256;
		size_t size = (size_t)16 << ((seed >> 20) % 13); /* 16 B .. 64 KiB */
		if ((i & 255) == 0)
			rtalloc_rt_begin();
		rtalloc_free(keep[k]);
		keep[k] = rtalloc_malloc(size);
		if (!keep[k]) {
			fprintf(stderr, "FAIL stat_hammer: rtalloc_malloc(%zu) returned NULL\n", size);
			exit(1);
		}
		if ((i & 255) == 128)
			rtalloc_rt_end();
	}
	rtalloc_rt_end();
	for (unsigned k = 0; k < 256; k++)
		rtalloc_free(keep[k]);
}

static void *worker(void *arg)
{
	work((unsigned)(uintptr_t)arg, -1);
	return NULL;
}

/* Short-lived threads: each exit moves a slot's counters to the exited totals. */
static void *short_lived(void *arg)
{
	work((unsigned)(uintptr_t)arg, 3000);
	return NULL;
}

static void *churner(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, (void *)(uintptr_t)seed++) != 0)
			continue;
		pthread_join(t, NULL);
	}
	return NULL;
}

#define FIELDS(X)                                                                                  \
	X(mallocs) X(frees) X(slow_mallocs) X(slow_frees) X(refills) X(flushes) X(failed_allocs)   \
	X(rt_sections) X(rt_minflt) X(rt_majflt) X(rt_slow) X(grows) X(pool_bytes)                 \
	X(high_water_bytes) X(pool_max_bytes) X(bytes_allocated) X(bytes_freed)

struct reader_result {
	long reads;
	char error[512];
};

static void *reader(void *arg)
{
	struct reader_result *res = arg;
	struct rtalloc_stats prev = {.size = sizeof(prev)}, cur;
	rtalloc_stats(&prev);
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !res->error[0]) {
		memset(&cur, 0, sizeof(cur));
		cur.size = sizeof(cur);
		if (rtalloc_stats(&cur) != 0) {
			snprintf(res->error, sizeof(res->error), "rtalloc_stats failed");
			break;
		}
		res->reads++;
#define CHECK_GROWS(f)                                                                             \
	if (cur.f < prev.f && !res->error[0])                                                     \
		snprintf(res->error, sizeof(res->error),                                          \
			 "read %ld: %s went down from %llu to %llu", res->reads, #f,               \
			 (unsigned long long)prev.f, (unsigned long long)cur.f);
		FIELDS(CHECK_GROWS)
#undef CHECK_GROWS
		if (!res->error[0] && !(cur.in_use_bytes <= cur.high_water_bytes &&
					cur.high_water_bytes <= cur.pool_bytes &&
					cur.pool_bytes <= cur.pool_max_bytes))
			snprintf(res->error, sizeof(res->error),
				 "read %ld: in_use %llu, high water %llu, pool %llu, max %llu out of order",
				 res->reads, (unsigned long long)cur.in_use_bytes,
				 (unsigned long long)cur.high_water_bytes, (unsigned long long)cur.pool_bytes,
				 (unsigned long long)cur.pool_max_bytes);
		if (!res->error[0] && cur.frees > cur.mallocs + 100000)
			snprintf(res->error, sizeof(res->error), "read %ld: frees %llu far above mallocs %llu",
				 res->reads, (unsigned long long)cur.frees, (unsigned long long)cur.mallocs);
		prev = cur;
	}
	return NULL;
}

int main(void)
{
	struct rtalloc_config cfg = {.size = sizeof(cfg), .pool_size = 32u << 20, .mlock = RTALLOC_MLOCK_OFF};
	if (rtalloc_init(&cfg) != 0) {
		fprintf(stderr, "FAIL stat_hammer: rtalloc_init failed\n");
		return 1;
	}
	pthread_t w[WORKERS], c[CHURNERS], r[READERS];
	struct reader_result res[READERS];
	memset(res, 0, sizeof(res));
	for (unsigned i = 0; i < READERS; i++)
		pthread_create(&r[i], NULL, reader, &res[i]);
	for (unsigned i = 0; i < WORKERS; i++)
		pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i * 7919 + 1));
	for (unsigned i = 0; i < CHURNERS; i++)
		pthread_create(&c[i], NULL, churner, (void *)(uintptr_t)(i * 104729 + 3));
	uint64_t end = now_ns() + RUN_NS;
	while (now_ns() < end) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
		if (res[0].error[0] || res[1].error[0])
			break;
	}
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < WORKERS; i++)
		pthread_join(w[i], NULL);
	for (unsigned i = 0; i < CHURNERS; i++)
		pthread_join(c[i], NULL);
	for (unsigned i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	struct rtalloc_stats s = {.size = sizeof(s)};
	rtalloc_stats(&s);
	for (unsigned i = 0; i < READERS; i++) {
		if (res[i].error[0]) {
			fprintf(stderr, "FAIL stat_hammer: reader %u: %s\n", i, res[i].error);
			return 1;
		}
	}
	printf("stat_hammer: %ld + %ld reads, %llu allocations, %llu frees, %llu sections, %u live threads: "
	       "no counter ever went down\n",
	       res[0].reads, res[1].reads, (unsigned long long)s.mallocs, (unsigned long long)s.frees,
	       (unsigned long long)s.rt_sections, s.threads);
	if (s.mallocs == 0 || s.rt_sections == 0) {
		fprintf(stderr, "FAIL stat_hammer: the counters did not move\n");
		return 1;
	}
	return 0;
}
