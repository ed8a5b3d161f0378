/* SPDX-License-Identifier: MIT */
/*
 * test_bounds.c - every allocation path's work is bounded by a constant that
 * does not depend on the pool's size or the program's history.
 *
 * Work is counted, never timed: struct rt_arena's `steps` counts the pages an
 * arena operation moves (pages set up or taken for a refill, emptied,
 * released to the buddy), so the difference around one call is that call's
 * work.  Each case runs in a child process that initialises a pool of its
 * own size (this process never initialises), with a 16 MiB and a 256 MiB
 * pool, and the two children must report the same figures.
 */
#include "unit.h"

/* One flush empties at most RT_BATCH_MAX pages and releases as many (S4);
 * one refill sets up at most RT_BATCH_MAX pages, and gives back at most
 * RT_EMPTY_KEEP idle pages first when the buddy has no block. */
#define BATCH_MAX 32
#define STEP_BOUND (2 * BATCH_MAX + RT_EMPTY_KEEP + 1)
#define NBIG 5

struct bound_result {
	uint64_t max_free_steps, max_malloc_steps;
	uint64_t big_steps[NBIG]; /* malloc of the sizes big[] after the pattern */
	uint32_t big_limit[NBIG]; /* the thread's limit of their class (its share of the budget) */
	uint32_t nempty_max;
	int ok;
};

static uint64_t steps(void) { return rt_g.arenas[0].steps; }

/* 32 KiB, and the large classes 64 KiB .. 1 MiB, and a huge block */
static const size_t big[NBIG] = {32768, 65536, 262144, 1u << 20, 2u << 20};

static int pipe_fd = -1;

/* The fragmenting pattern of the issue: fill the pool with 16 B blocks,
 * free all but one block per page, free the survivors, then ask for a
 * 32 KiB block, blocks of the large classes (64 KiB, 256 KiB, 1 MiB) and a
 * huge one (2 MiB), twice each with a free between (the second from the
 * thread's cache when its share caches the class). */
static int child_fragment(void *arg)
{
	size_t pool = *(const size_t *)arg;
	struct bound_result res = {0};
	if (unit_init(pool, pool, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	uint64_t n = 0;
	for (;;) { /* fill */
		uint64_t s0 = steps();
		void *p = rtalloc_malloc(16);
		uint64_t d = steps() - s0;
		if (d > res.max_malloc_steps)
			res.max_malloc_steps = d;
		if (!p)
			break;
		n++;
	}
	CHILD_CHECK(n > pool / 16 / 2);
	size_t npages = rt_g.span >> RT_PAGE_SHIFT;
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: every block but the first of each page; pass 1: the first */
		for (size_t i = 0; i < npages; i++) {
			const struct rt_page *pg = &rt_g.pages[i];
			if (pg->state != RT_PS_USED || pg->cls != 1)
				continue;
			char *page = rt_page_addr((uint32_t)i);
			size_t from = pass ? 0 : 16, to = pass ? 16 : RT_PAGE_SIZE;
			for (size_t off = from; off < to; off += 16) {
				void *b = page + off;
				if (off >= pg->carved || rt_stamped(b))
					continue; /* not handed out, or cached by this thread */
				uint64_t s0 = steps();
				rtalloc_free(b);
				uint64_t d = steps() - s0;
				if (d > res.max_free_steps)
					res.max_free_steps = d;
				if (rt_g.arenas[0].nempty > res.nempty_max)
					res.nempty_max = rt_g.arenas[0].nempty;
			}
		}
	}
	for (int k = 0; k < NBIG; k++) {
		for (int rep = 0; rep < 2; rep++) {
			uint64_t s0 = steps();
			void *p = rtalloc_malloc(big[k]);
			uint64_t d = steps() - s0;
			if (d > res.big_steps[k])
				res.big_steps[k] = d;
			CHILD_CHECK(p != NULL);
			s0 = steps();
			rtalloc_free(p);
			d = steps() - s0;
			if (d > res.big_steps[k])
				res.big_steps[k] = d;
		}
		unsigned c = rt_class_of(big[k]);
		res.big_limit[k] = c <= RT_NCLASS ? rt_tc.bin[c].limit : 0;
	}
	CHILD_CHECK(rtalloc_check() == 0);
	res.ok = 1;
	CHILD_CHECK(write(pipe_fd, &res, sizeof(res)) == (ssize_t)sizeof(res));
	return 0;
}

static void run_pattern(size_t pool, struct bound_result *res)
{
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pipe_fd = fd[1];
	struct child_result r;
	run_child(child_fragment, &pool, &r);
	close(fd[1]);
	memset(res, 0, sizeof(*res));
	ssize_t got = read(fd[0], res, sizeof(*res));
	close(fd[0]);
	assert_child_ok(&r);
	assert_int_equal(got, sizeof(*res));
	assert_true(res->ok);
	print_message("pool %zu MiB: max steps of one free %llu, of one malloc %llu; idle pages at most %u\n",
		      pool >> 20, (unsigned long long)res->max_free_steps,
		      (unsigned long long)res->max_malloc_steps, res->nempty_max);
	for (int k = 0; k < NBIG; k++)
		print_message("  malloc/free(%zu K): at most %llu steps (the thread caches %u)\n", big[k] >> 10,
			      (unsigned long long)res->big_steps[k], res->big_limit[k]);
}

static void fragmenting_pattern_is_bounded(void **state)
{
	UNUSED_STATE(state);
	struct bound_result small, large;
	run_pattern(16u << 20, &small);
	run_pattern(256u << 20, &large);
	const struct bound_result *both[2] = {&small, &large};
	for (int i = 0; i < 2; i++) {
		assert_true(both[i]->max_free_steps <= STEP_BOUND);
		assert_true(both[i]->max_malloc_steps <= STEP_BOUND);
		for (int k = 0; k < NBIG; k++)
			assert_true(both[i]->big_steps[k] <= STEP_BOUND);
		assert_true(both[i]->nempty_max <= RT_EMPTY_KEEP);
	}
	/* the same work whatever the pool's size, where the thread's share of the
	 * budget caches as many blocks of the class (a batch is half of it) */
	for (int k = 0; k < NBIG; k++)
		if (small.big_limit[k] == large.big_limit[k])
			assert_int_equal(small.big_steps[k], large.big_steps[k]);
}

/* ---- memory parked in idle threads' caches -------------------------------- */

#define SMALL_POOL (1u << 20)
#define PARKED 3

static pthread_barrier_t parked, release;
static size_t cached_bytes[PARKED];

static size_t my_cached_bytes(void)
{
	size_t n = 0;
	for (unsigned c = 1; c <= RT_NCLASS; c++)
		n += (size_t)rt_tc.bin[c].count * rt_class_size(c);
	return n;
}

/* Allocate and free every cached class in bursts (so each list fills to
 * its limit), then park with everything freed and never call again. */
static void *parking_thread(void *arg)
{
	size_t id = (size_t)arg;
	void *v[64];
	for (int round = 0; round < 8; round++)
		for (size_t n = 16; n <= RT_CACHE_MAX; n *= 2) { /* every cached class */
			int k = 0;
			for (; k < 64; k++)
				if (!(v[k] = rtalloc_malloc(n)))
					break;
			while (k-- > 0)
				rtalloc_free(v[k]);
		}
	cached_bytes[id] = my_cached_bytes();
	pthread_barrier_wait(&parked);
	pthread_barrier_wait(&release);
	return NULL;
}

static int child_parked_caches(void *arg)
{
	(void)arg;
	if (unit_init(SMALL_POOL, SMALL_POOL, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	pthread_barrier_init(&parked, NULL, PARKED + 1);
	pthread_barrier_init(&release, NULL, PARKED + 1);
	pthread_t t[PARKED];
	for (size_t i = 0; i < PARKED; i++)
		CHILD_CHECK(pthread_create(&t[i], NULL, parking_thread, (void *)i) == 0);
	pthread_barrier_wait(&parked);
	size_t total = my_cached_bytes();
	for (size_t i = 0; i < PARKED; i++)
		total += cached_bytes[i];
	fprintf(stderr, "cached by %d parked threads and main: %zu bytes of a %u-byte pool\n", PARKED,
		total, SMALL_POOL);
	CHILD_CHECK(total <= SMALL_POOL / 8); /* the cache budget */
	void *p = rtalloc_malloc(32768);
	CHILD_CHECK(p != NULL);
	void *q = rtalloc_malloc(SMALL_POOL / 2);
	CHILD_CHECK(q != NULL);
	rtalloc_free(q);
	rtalloc_free(p);
	pthread_barrier_wait(&release);
	for (size_t i = 0; i < PARKED; i++)
		pthread_join(t[i], NULL);
	return 0;
}

static void parked_caches_leave_the_pool_usable(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_parked_caches, NULL, &r);
	print_message("%s", r.out);
	assert_child_ok(&r);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fragmenting_pattern_is_bounded),
		cmocka_unit_test(parked_caches_leave_the_pool_usable),
	};
	return cmocka_run_group_tests_name("bounds", tests, NULL, NULL);
}
