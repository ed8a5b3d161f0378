/* SPDX-License-Identifier: MIT */
/*
 * test_bigcache.c - the large cached classes (64 KiB .. 1 MiB): a steady
 * loop of such blocks in a thread runs without the arena lock once warm;
 * what a thread caches stays within its documented bound and the pool's
 * cache budget; a thread that exits gives its blocks and its share of the
 * budget back; double and invalid frees of these blocks still abort naming
 * the call and the pointer.
 *
 * Counted, never timed: every arena operation that takes the arena's lock
 * counts itself (refills, flushes, huge allocations and frees), so their sum
 * says whether a loop took the lock.  Each case runs in a child process with
 * a pool of its own (run_child).
 */
#include <pthread.h>

#include "unit.h"

#define POOL (64u << 20)
#define SMALL_POOL (16u << 20)
/* The documented bound of one thread's caches (README "Guarantees and
 * bounds"): 383 KiB of the classes up to 32 KiB, 2.25 MiB of the classes
 * 64 KiB .. 1 MiB. */
#define THREAD_CACHE_MAX ((size_t)392192 + ((size_t)2304 << 10))
#define FIRST_BIG 13 /* 64 KiB */
#define LAST_BIG 17  /* 1 MiB */

static uint64_t arena_lock_takes(void)
{
	const struct rt_arena *a = &rt_g.arenas[0];
	return a->refills + a->flushes + a->huge_allocs + a->huge_frees;
}

static size_t my_cached_bytes(unsigned from, unsigned to)
{
	size_t n = 0;
	for (unsigned c = from; c <= to && c <= RT_NCLASS; c++)
		n += (size_t)rt_tc.bin[c].count * rt_class_size(c);
	return n;
}

static const size_t sizes[] = {65536, 262144, 1u << 20};

/* ---- a steady loop takes no lock ------------------------------------------ */

struct steady {
	uint64_t takes;
	int bad;
};

static void one_round(int *bad)
{
	void *p[3];
	for (int i = 0; i < 3; i++) {
		p[i] = rtalloc_malloc(sizes[i]);
		if (!p[i]) {
			(*bad)++;
			continue;
		}
		memset(p[i], 0x5a, 64);
		((char *)p[i])[sizes[i] - 1] = 1;
	}
	for (int i = 0; i < 3; i++)
		rtalloc_free(p[i]);
	for (int i = 0; i < 3; i++) { /* and one at a time */
		void *q = rtalloc_malloc(sizes[i]);
		if (!q)
			(*bad)++;
		rtalloc_free(q);
	}
}

static void *steady_thread(void *arg)
{
	struct steady *s = arg;
	for (int i = 0; i < 4; i++) /* warm-up: the thread's first refills */
		one_round(&s->bad);
	uint64_t t0 = arena_lock_takes();
	for (int i = 0; i < 1000; i++)
		one_round(&s->bad);
	s->takes = arena_lock_takes() - t0;
	return NULL;
}

static int child_steady(void *arg)
{
	(void)arg;
	if (unit_init(POOL, POOL, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	struct steady s = {0};
	pthread_t t;
	CHILD_CHECK(pthread_create(&t, NULL, steady_thread, &s) == 0);
	pthread_join(t, NULL);
	fprintf(stderr, "arena lock taken %llu times in 1000 rounds of 64 KiB, 256 KiB, 1 MiB\n",
		(unsigned long long)s.takes);
	CHILD_CHECK(s.bad == 0);
	CHILD_CHECK(s.takes == 0);
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void steady_large_loop_takes_no_lock(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_steady, NULL, &r);
	print_message("%s", r.out);
	assert_child_ok(&r);
}

/* ---- the per-thread bound and the budget ------------------------------------ */

#define NTHREADS 4

static pthread_barrier_t parked, release;
static size_t cached_all[NTHREADS], cached_big[NTHREADS];
static int over_limit[NTHREADS];

/* Bursts of 8 blocks of every class from 16 B to 1 MiB (each list fills to
 * its limit), then park with everything freed. */
static void *burst_thread(void *arg)
{
	size_t id = (size_t)arg;
	void *v[8];
	for (int round = 0; round < 4; round++)
		for (size_t n = 16; n <= (1u << 20); n *= 2) {
			int k = 0;
			for (; k < 8; k++)
				if (!(v[k] = rtalloc_malloc(n)))
					break;
			while (k-- > 0)
				rtalloc_free(v[k]);
		}
	for (unsigned c = 1; c <= RT_NCLASS; c++)
		if (rt_tc.bin[c].count > rt_tcache_limit(c))
			over_limit[id]++;
	cached_all[id] = my_cached_bytes(1, RT_NCLASS);
	cached_big[id] = my_cached_bytes(FIRST_BIG, LAST_BIG);
	pthread_barrier_wait(&parked);
	pthread_barrier_wait(&release);
	return NULL;
}

static int child_budget(void *arg)
{
	size_t pool = *(const size_t *)arg;
	if (unit_init(pool, pool, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	pthread_barrier_init(&parked, NULL, NTHREADS + 1);
	pthread_barrier_init(&release, NULL, NTHREADS + 1);
	pthread_t t[NTHREADS];
	for (size_t i = 0; i < NTHREADS; i++)
		CHILD_CHECK(pthread_create(&t[i], NULL, burst_thread, (void *)i) == 0);
	pthread_barrier_wait(&parked);
	size_t total = my_cached_bytes(1, RT_NCLASS), max_big = 0;
	for (size_t i = 0; i < NTHREADS; i++) {
		fprintf(stderr, "pool %zu MiB, thread %zu caches %zu bytes, %zu of them 64 KiB .. 1 MiB\n",
			pool >> 20, i, cached_all[i], cached_big[i]);
		CHILD_CHECK(over_limit[i] == 0);
		CHILD_CHECK(cached_all[i] <= THREAD_CACHE_MAX);
		CHILD_CHECK(cached_big[i] <= ((size_t)2304 << 10));
		total += cached_all[i];
		if (cached_big[i] > max_big)
			max_big = cached_big[i];
	}
	CHILD_CHECK(total <= pool / 8); /* the cache budget */
	/* with 64 MiB (a budget of 8 MiB) the first threads cache large blocks; with
	 * 16 MiB the budget may be gone when they reach them */
	CHILD_CHECK(pool < POOL || max_big > 0);
	void *p = rtalloc_malloc(pool / 4); /* the rest of the pool stays usable */
	CHILD_CHECK(p != NULL);
	rtalloc_free(p);
	pthread_barrier_wait(&release);
	for (size_t i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void thread_caches_stay_within_budget(void **state)
{
	UNUSED_STATE(state);
	static const size_t pools[] = {SMALL_POOL, POOL};
	for (size_t i = 0; i < ARRAY_LEN(pools); i++) {
		struct child_result r;
		run_child(child_budget, (void *)&pools[i], &r);
		print_message("%s", r.out);
		assert_child_ok(&r);
	}
}

/* ---- an exiting thread gives everything back ---------------------------- */

static size_t exiting_cached;
static unsigned exiting_limit_1m;

static void *exiting_thread(void *arg)
{
	(void)arg;
	int bad = 0;
	for (int i = 0; i < 8; i++)
		one_round(&bad);
	exiting_cached = bad ? 0 : my_cached_bytes(FIRST_BIG, LAST_BIG);
	exiting_limit_1m = LAST_BIG <= RT_NCLASS ? rt_tc.bin[LAST_BIG].limit : 0;
	return NULL;
}

static int child_exit(void *arg)
{
	(void)arg;
	if (unit_init(POOL, POOL, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	void *warm = rtalloc_malloc(16); /* the main thread set up */
	const struct rt_buddy *b = &rt_g.arenas[0].buddy;
	size_t free0 = b->free_pages;
	/* more threads one after the other than the budget could hold at once:
	 * each finds the share the previous one gave back */
	for (int i = 0; i < 12; i++) {
		pthread_t t;
		exiting_cached = 0;
		CHILD_CHECK(pthread_create(&t, NULL, exiting_thread, NULL) == 0);
		pthread_join(t, NULL);
		CHILD_CHECK(exiting_cached > 0);
		CHILD_CHECK(exiting_limit_1m == rt_tcache_limit(LAST_BIG));
		CHILD_CHECK(b->free_pages == free0);
	}
	fprintf(stderr, "12 threads exited, each had cached %zu bytes of large blocks; free pages %zu "
			"before and after\n",
		exiting_cached, free0);
	rtalloc_free(warm);
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void exiting_thread_returns_its_cache(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_exit, NULL, &r);
	print_message("%s", r.out);
	assert_child_ok(&r);
}

/* ---- a pipeline hands large blocks over without the lock ----------------- */

static void *piped[4];
static uint64_t freer_flushes, taker_refills;
static void *taken;

static void *pipe_freer(void *arg)
{
	(void)arg;
	uint64_t f0 = rt_g.arenas[0].flushes;
	for (int i = 0; i < 4; i++)
		rtalloc_free(piped[i]);
	freer_flushes = rt_g.arenas[0].flushes - f0;
	return NULL;
}

static void *pipe_taker(void *arg)
{
	(void)arg;
	rtalloc_free(rtalloc_malloc(16)); /* set up */
	uint64_t r0 = rt_g.arenas[0].refills;
	taken = rtalloc_malloc(262144);
	taker_refills = rt_g.arenas[0].refills - r0;
	rtalloc_free(taken);
	return NULL;
}

static int child_pipeline(void *arg)
{
	(void)arg;
	if (unit_init(POOL, POOL, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	for (int i = 0; i < 4; i++)
		CHILD_CHECK((piped[i] = rtalloc_malloc(262144)) != NULL);
	/* the main thread gives its large share back (the large shares hold at
	 * most half the budget: with it, the freer's would be halved, its
	 * limit of 1 block 0, every free straight to the arena) */
	flush_my_cache();
	pthread_t t;
	CHILD_CHECK(pthread_create(&t, NULL, pipe_freer, NULL) == 0);
	pthread_join(t, NULL);
	/* 4 frees, a list of 1: 3 batches of one block, the first two into the
	 * class's transfer ring (it holds 2), 1 to the arena */
	fprintf(stderr, "the freer's batches that took the arena lock: %llu of 3; parked %zu blocks\n",
		(unsigned long long)freer_flushes, rt_tcache_xfer_blocks());
	CHILD_CHECK(freer_flushes == 1);
	CHILD_CHECK(pthread_create(&t, NULL, pipe_taker, NULL) == 0);
	pthread_join(t, NULL);
	fprintf(stderr, "the taker's refills that took the arena lock: %llu\n", (unsigned long long)taker_refills);
	CHILD_CHECK(taken == piped[0]); /* the block the freer's first batch held */
	CHILD_CHECK(taker_refills == 0);
	rt_tcache_xfer_drain();
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void pipeline_hands_large_blocks_over(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_pipeline, NULL, &r);
	print_message("%s", r.out);
	assert_child_ok(&r);
}

/* ---- double and invalid frees abort ----------------------------------------- */

enum bad_free { DOUBLE, DOUBLE_AFTER_UAF, INSIDE, TAIL_PAGE, DOUBLE_FLUSHED };

static int child_bad_free(void *arg)
{
	enum bad_free what = *(const enum bad_free *)arg;
	if (unit_init(POOL, POOL, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	void **p = rtalloc_malloc(262144);
	void **keep = rtalloc_malloc(262144);
	if (!p || !keep)
		return 3;
	fprintf(stderr, "block %p\n", (void *)p);
	switch (what) {
	case DOUBLE:
		rtalloc_free(p);
		rtalloc_free(p);
		break;
	case DOUBLE_AFTER_UAF: /* the stamp cleared by a use after free */
		rtalloc_free(p);
		p[1] = NULL;
		rtalloc_free(p);
		if (rtalloc_malloc(262144) == rtalloc_malloc(262144))
			return 42; /* one block handed out twice */
		break;
	case INSIDE:
		rtalloc_free((char *)p + 64);
		break;
	case TAIL_PAGE:
		rtalloc_free((char *)p + 2 * RT_PAGE_SIZE);
		break;
	case DOUBLE_FLUSHED: /* listed twice, then the list goes back to the arena */
		rtalloc_free(p);
		p[1] = NULL;
		rtalloc_free(p);
		flush_my_cache();
		rt_tcache_xfer_drain(); /* a batch parked in a transfer ring is checked there */
		break;
	}
	return 0;
}

static void bad_frees_of_large_blocks_abort(void **state)
{
	UNUSED_STATE(state);
	static const struct {
		enum bad_free what;
		const char *call, *why;
	} cases[] = {
		{DOUBLE, "free()", "double free"},
		{DOUBLE_AFTER_UAF, "()", "heap corruption"}, /* caught at the free or the malloc */
		{INSIDE, "free()", "invalid pointer"},
		{TAIL_PAGE, "free()", "invalid pointer"},
		{DOUBLE_FLUSHED, "free()", "double free"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct child_result r;
		run_child(child_bad_free, (void *)&cases[i].what, &r);
		print_message("case %zu: %s", i, r.out);
		char ptr[64];
		void *p = NULL;
		if (sscanf(r.out, "block %p", &p) != 1)
			fail_msg("no block address in \"%s\"", r.out);
		size_t off = cases[i].what == INSIDE ? 64 : cases[i].what == TAIL_PAGE ? 2 * RT_PAGE_SIZE : 0;
		void *named = (char *)p + off;
		snprintf(ptr, sizeof(ptr), "%p", named);
		assert_aborted_with(&r, "rtalloc: ", cases[i].call, cases[i].why, ptr, NULL);
	}
}

/* ---- large shares leave room for the small ones ------------------------------ */

/* rtalloc_thread_prepare takes a thread's share of the large classes at
 * once (2.25 MiB while the budget has it).  Real-time threads all call it,
 * and with a 32 MiB pool (a budget of 4 MiB) the first one's large share
 * left the next thread half its small-class limits and the ones after it
 * less: their 64-byte batches (half the limit) no longer fit the transfer
 * slots, and every flush and refill of a pipeline took the arena lock.  The
 * large shares together take at most half the budget, so three prepared
 * threads (and the main one) keep their full small-class limits. */
#define PREP_THREADS 4
#define PREP_POOL (32u << 20)
static pthread_barrier_t prep_done;
static unsigned prep_limit[PREP_THREADS], prep_big[PREP_THREADS];

static void *prep_thread(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	rtalloc_thread_prepare();
	__atomic_store_n(&prep_big[i], rt_tc.bin[FIRST_BIG].limit, __ATOMIC_RELEASE);
	__atomic_store_n(&prep_limit[i], rt_tc.bin[3].limit, __ATOMIC_RELEASE); /* 64 B: 64 with the full share */
	pthread_barrier_wait(&prep_done); /* each holds its share until all have one */
	return NULL;
}

static int child_prepare(void *arg)
{
	(void)arg;
	if (unit_init(PREP_POOL, PREP_POOL, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	rtalloc_free(rtalloc_malloc(64)); /* the main thread's share */
	pthread_t t[PREP_THREADS];
	pthread_barrier_init(&prep_done, NULL, PREP_THREADS + 1);
	for (unsigned i = 0; i < PREP_THREADS; i++) {
		CHILD_CHECK(pthread_create(&t[i], NULL, prep_thread, (void *)(uintptr_t)i) == 0);
		while (__atomic_load_n(&prep_limit[i], __ATOMIC_ACQUIRE) == 0 &&
		       __atomic_load_n(&prep_big[i], __ATOMIC_ACQUIRE) == 0)
			sched_yield(); /* one after the other: the order the shares are taken */
	}
	pthread_barrier_wait(&prep_done);
	for (unsigned i = 0; i < PREP_THREADS; i++) {
		pthread_join(t[i], NULL);
		fprintf(stderr, "prepared thread %u: 64 B limit %u, 64 KiB limit %u\n", i, prep_limit[i],
			prep_big[i]);
	}
	for (unsigned i = 0; i < 3; i++)
		CHILD_CHECK(prep_limit[i] == 64);
	CHILD_CHECK(prep_big[0] > 0); /* the first still caches large blocks */
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void prepared_threads_keep_their_small_share(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_prepare, NULL, &r);
	print_message("%s", r.out);
	assert_child_ok(&r);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(steady_large_loop_takes_no_lock),
		cmocka_unit_test(thread_caches_stay_within_budget),
		cmocka_unit_test(exiting_thread_returns_its_cache),
		cmocka_unit_test(pipeline_hands_large_blocks_over),
		cmocka_unit_test(bad_frees_of_large_blocks_abort),
		cmocka_unit_test(prepared_threads_keep_their_small_share),
	};
	return cmocka_run_group_tests_name("bigcache", tests, NULL, NULL);
}
