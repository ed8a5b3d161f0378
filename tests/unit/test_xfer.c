/* SPDX-License-Identifier: MIT */
/*
 * test_xfer.c - blocks that one thread frees and another allocates move
 * between the two through the transfer rings, whole batches at a time,
 * without the arena lock (tcache.c): the shape of a real-time pipeline (a
 * receive thread allocates messages, a control thread frees them), where
 * every flush and refill meeting on the arena's lock made a convoy once
 * there were more threads than cores.  Counted, never timed: the arena's
 * own counts of refills and flushes say whether its lock was taken.  The
 * memory the slots hold comes out of the cache budget and goes back to the
 * pool when it runs out.
 */
#include <pthread.h>

#include "unit.h"

#define POOL (16u << 20)
#define SIZE 64 /* class 3: 64 blocks cached, batches of 32 */
#define N (64 * 6)

static void *blocks[N];

static uint64_t arena_flushes(void) { return rt_g.arenas[0].flushes; }
static uint64_t arena_refills(void) { return rt_g.arenas[0].refills; }

static uint64_t freer_flushes;

static void *freer(void *arg)
{
	(void)arg;
	uint64_t f0 = arena_flushes();
	for (int i = 0; i < N; i++)
		rtalloc_free(blocks[i]);
	freer_flushes = arena_flushes() - f0;
	return NULL;
}

static uint64_t taker_refills;
static int taker_bad;

static void *taker(void *arg)
{
	(void)arg;
	uint64_t r0 = arena_refills();
	/* the first refill sets the thread up; what follows is counted */
	void *first = rtalloc_malloc(SIZE);
	rtalloc_free(first);
	r0 = arena_refills();
	for (int i = 0; i < 4 * 32; i++) {
		blocks[i] = rtalloc_malloc(SIZE);
		if (!blocks[i])
			taker_bad++;
	}
	taker_refills = arena_refills() - r0;
	for (int i = 0; i < 4 * 32; i++)
		rtalloc_free(blocks[i]);
	return NULL;
}

static void handed_batches_skip_the_arena_lock(void **state)
{
	UNUSED_STATE(state);
	for (int i = 0; i < N; i++) {
		blocks[i] = rtalloc_malloc(SIZE);
		assert_non_null(blocks[i]);
	}
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, freer, NULL), 0);
	pthread_join(t, NULL);
	/* 384 frees: 64 fill the freer's list, then a batch of 32 goes every 32
	 * frees (10 batches), all into the class's transfer ring (4 slots once:
	 * 6 of them took the arena lock). */
	print_message("the freer's batches that took the arena lock: %llu of 10\n",
		      (unsigned long long)freer_flushes);
	assert_int_equal(freer_flushes, 0);
	assert_int_equal(pthread_create(&t, NULL, taker, NULL), 0);
	pthread_join(t, NULL);
	/* 128 mallocs: 4 batches of 32, all from the slots */
	assert_int_equal(taker_bad, 0);
	print_message("the taker's refills that took the arena lock: %llu of 4\n",
		      (unsigned long long)taker_refills);
	assert_int_equal(taker_refills, 0);
	flush_my_cache();
	assert_int_equal(rtalloc_check(), 0);
}

/* The shape of bench/rtbench classic xmalloc, where a pipeline convoyed on
 * the arena lock: a consumer frees far more than a few batches before the
 * producer runs again (a queue of 16 batches of 256 messages between them),
 * so 4 slots overflowed and most batches took the lock (60 of 64 here).
 * 64 batches of 32 blocks (all of the 128 KiB a 16 MiB pool lets the rings
 * hold) all park; the producer's refills take them
 * back without it. */
#define MANY (2048 + 64)
static void *many[MANY];

static void *many_freer(void *arg)
{
	(void)arg;
	uint64_t f0 = arena_flushes();
	for (int i = 0; i < MANY; i++)
		rtalloc_free(many[i]);
	freer_flushes = arena_flushes() - f0;
	return NULL;
}

static void *many_taker(void *arg)
{
	(void)arg;
	void *first = rtalloc_malloc(SIZE); /* set up: takes one parked batch (of 64) */
	rtalloc_free(first);
	uint64_t r0 = arena_refills();
	for (int i = 0; i < 2048; i++) {
		many[i] = rtalloc_malloc(SIZE);
		if (!many[i])
			taker_bad++;
	}
	taker_refills = arena_refills() - r0;
	for (int i = 0; i < 2048; i++)
		rtalloc_free(many[i]);
	return NULL;
}

static void long_pipeline_skips_the_arena_lock(void **state)
{
	UNUSED_STATE(state);
	rt_tcache_xfer_drain(); /* what the tests before left parked */
	flush_my_cache();
	for (int i = 0; i < MANY; i++) {
		many[i] = rtalloc_malloc(SIZE);
		assert_non_null(many[i]);
	}
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, many_freer, NULL), 0);
	pthread_join(t, NULL);
	print_message("the freer's batches that took the arena lock: %llu of 64; parked %zu blocks\n",
		      (unsigned long long)freer_flushes, rt_tcache_xfer_blocks());
	assert_int_equal(freer_flushes, 0);
	assert_int_equal(rt_tcache_xfer_blocks(), 64 * 32);
	taker_bad = 0;
	assert_int_equal(pthread_create(&t, NULL, many_taker, NULL), 0);
	pthread_join(t, NULL);
	assert_int_equal(taker_bad, 0);
	/* 2048 mallocs: 32 from the list, then 63 refills: the 63 batches still
	 * parked */
	print_message("the taker's refills that took the arena lock: %llu of 63\n",
		      (unsigned long long)taker_refills);
	assert_int_equal(taker_refills, 0);
	rt_tcache_xfer_drain();
	flush_my_cache();
	assert_int_equal(rtalloc_check(), 0);
}

/* Blocks parked in the slots are not lost when the pool runs out: a request
 * that finds no room takes them back to the arena first. */
static void *park_and_exit(void *arg)
{
	(void)arg;
	for (int i = 0; i < N; i++)
		rtalloc_free(blocks[i]);
	return NULL;
}

static void slots_give_back_when_the_pool_runs_out(void **state)
{
	UNUSED_STATE(state);
	for (int i = 0; i < N; i++)
		blocks[i] = rtalloc_malloc(SIZE);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, park_and_exit, NULL), 0);
	pthread_join(t, NULL);
	size_t parked = rt_tcache_xfer_blocks();
	print_message("blocks parked in the transfer rings: %zu\n", parked);
	assert_true(parked > 0);
	/* take the whole pool in 1 MiB blocks, then in pages */
	static void *big[64];
	int nbig = 0;
	while (nbig < 64 && (big[nbig] = rtalloc_malloc(1u << 20)) != NULL)
		nbig++;
	static void *pages[4096];
	int np = 0;
	while (np < 4096 && (pages[np] = rtalloc_malloc(4096)) != NULL)
		np++;
	/* what the slots held went back to the arena before a request failed */
	const struct rt_buddy *b = &rt_g.arenas[0].buddy;
	print_message("pool full: %d MiB blocks, %d pages; buddy free pages %zu, parked %zu\n", nbig, np,
		      b->free_pages, rt_tcache_xfer_blocks());
	assert_true(b->free_pages == 0);
	assert_int_equal(rt_tcache_xfer_blocks(), 0);
	for (int i = 0; i < np; i++)
		rtalloc_free(pages[i]);
	for (int i = 0; i < nbig; i++)
		rtalloc_free(big[i]);
	flush_my_cache();
	assert_int_equal(rtalloc_check(), 0);
}

/* A child of fork finds the batches parked before it (fork.c's child
 * handler makes each ring anew from its published batches: a position a
 * thread that is gone had claimed would stop a ring for good), and its
 * threads take them without the lock. */
static int child_takes_parked(void *arg)
{
	(void)arg;
	size_t parked = rt_tcache_xfer_blocks();
	fprintf(stderr, "parked in the child: %zu blocks\n", parked);
	if (parked != 10 * 32)
		return 3;
	taker_bad = 0;
	pthread_t t;
	if (pthread_create(&t, NULL, taker, NULL) != 0)
		return 4;
	pthread_join(t, NULL);
	fprintf(stderr, "the child's refills that took the arena lock: %llu of 4\n",
		(unsigned long long)taker_refills);
	if (taker_bad || taker_refills != 0)
		return 5;
	return rtalloc_check() == 0 ? 0 : 6;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#endif

static void parked_batches_survive_fork(void **state)
{
	UNUSED_STATE(state);
#ifdef UNDER_TSAN
	/* ThreadSanitizer does not model a lock the pthread_atfork prepare
	 * handler takes and the child handler makes anew (fork.c): it reports
	 * a double lock at the child's next arena operation.  The other builds
	 * run this test. */
	skip();
#endif
	rt_tcache_xfer_drain();
	flush_my_cache();
	for (int i = 0; i < N; i++) {
		blocks[i] = rtalloc_malloc(SIZE);
		assert_non_null(blocks[i]);
	}
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, freer, NULL), 0);
	pthread_join(t, NULL);
	assert_int_equal(freer_flushes, 0);
	struct child_result r;
	run_child(child_takes_parked, NULL, &r);
	print_message("%s", r.out);
	assert_child_ok(&r);
	rt_tcache_xfer_drain();
	flush_my_cache();
	assert_int_equal(rtalloc_check(), 0);
}

static int group_setup(void **state)
{
	UNUSED_STATE(state);
	return unit_init(POOL, POOL, 0, RTALLOC_EXHAUST_FAIL);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handed_batches_skip_the_arena_lock),
		cmocka_unit_test(slots_give_back_when_the_pool_runs_out),
		cmocka_unit_test(long_pipeline_skips_the_arena_lock),
		cmocka_unit_test(parked_batches_survive_fork),
	};
	return cmocka_run_group_tests_name("xfer", tests, group_setup, NULL);
}
