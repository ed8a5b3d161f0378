/* SPDX-License-Identifier: MIT */
/*
 * test_lockwait.c - lock waits counted (rt.h: struct rt_lock_waits; stats.c
 * publishes them, rtalloc_stats() reads them): a thread that had to wait for
 * an arena's or a heap's lock counts the wait and its length, inside a
 * real-time section apart; a thread that never waited shows 0; the
 * process's figures keep an exited thread's waits and longest wait.
 *
 * Deterministic: the main thread holds the lock until the waiter is asleep
 * in the kernel on it (the lock word's FUTEX_WAITERS bit, set by the
 * waiter's own futex call), so the waiter always waits; no timing is
 * checked (only that a wait took some time: > 0 ns).
 */
#include <linux/futex.h>
#include <pthread.h>
#include <time.h>

#include "heap_int.h" /* before cmocka, whose fail() is a macro */
#include "unit.h"

static struct rtalloc_stats stats_now(void)
{
	struct rtalloc_stats s = {.size = sizeof(s)};
	assert_int_equal(rtalloc_stats(&s), 0);
	assert_int_equal(s.version, RTALLOC_STATS_VERSION);
	return s;
}

/* What the waiter saw, from its own rtalloc_stats() call after the wait. */
struct waiter {
	pthread_mutex_t *lock; /* the lock the main thread holds */
	int kind;              /* 0: an arena (a large block), 1: a heap */
	bool in_rt;            /* wait inside a real-time section */
	rtalloc_heap_t *heap;
	int ready;             /* set by the waiter once it is set up */
	int go;                /* set by main once it holds the lock */
	struct rtalloc_stats before, after;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	rtalloc_free(rtalloc_malloc(16)); /* set up (a cache, a slot) before the wait */
	w->before = stats_now();
	__atomic_store_n(&w->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&w->go, __ATOMIC_ACQUIRE)) /* bound: main sets it at once */
		sched_yield();
	if (w->in_rt)
		rtalloc_rt_begin();
	if (w->kind == 0) {
		void *p = rtalloc_malloc(1 << 20); /* a huge block: the arena's lock */
		assert_non_null(p);
		rtalloc_free(p);
	} else {
		void *p = rtalloc_heap_alloc(w->heap, 64);
		assert_non_null(p);
		rtalloc_heap_free(w->heap, p);
	}
	if (w->in_rt)
		rtalloc_rt_end();
	w->after = stats_now();
	return NULL;
}

/* Hold the lock until a thread sleeps on it (bound: 10 s of 1 ms naps). */
static void hold_until_waited(pthread_mutex_t *m)
{
	const struct timespec ms = {0, 1000000};
	int naps = 0;
	while (!(__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) & FUTEX_WAITERS)) {
		assert_true(++naps < 10000); /* bound: 10 s */
		nanosleep(&ms, NULL);
	}
}

static void run_waiter(struct waiter *w, void (*take)(void *), void (*drop)(void *), void *obj)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, waiter_main, w), 0);
	/* the waiter is set up before main takes the lock (it allocates) */
	while (!__atomic_load_n(&w->ready, __ATOMIC_ACQUIRE)) /* bound: the waiter's setup */
		sched_yield();
	take(obj);
	__atomic_store_n(&w->go, 1, __ATOMIC_RELEASE);
	hold_until_waited(w->lock);
	drop(obj);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static void arena_take(void *a) { rt_arena_lock(a); }
static void arena_drop(void *a) { rt_arena_unlock(a); }
static void heap_take(void *h) { assert_int_equal(rt_heap_lock(h), 0); }
static void heap_drop(void *h) { rt_heap_unlock(h); }

static struct rt_arena *waiters_arena(void)
{
	/* a new thread's home arena: the one of its node; one arena or the
	 * test cannot know which, and holds every one of them then */
	return &rt_g.arenas[0];
}

static void test_arena_wait_outside_section(void **state)
{
	UNUSED_STATE(state);
	if (rt_g.narenas != 1)
		skip(); /* which arena a new thread takes depends on its CPU */
	struct waiter w = {.lock = &waiters_arena()->lock, .kind = 0};
	run_waiter(&w, arena_take, arena_drop, waiters_arena());
	assert_int_equal(w.before.thread_lock_waits, 0);
	assert_true(w.after.thread_lock_waits >= 1);
	assert_true(w.after.thread_lock_wait_max_ns > 0);
	/* not inside a section: none counted there */
	assert_int_equal(w.after.thread_rt_lock_waits, 0);
	assert_int_equal(w.after.thread_rt_lock_wait_max_ns, 0);
	/* the process's figures include the live waiter's */
	assert_true(w.after.lock_waits >= w.after.thread_lock_waits);
	assert_true(w.after.lock_wait_max_ns >= w.after.thread_lock_wait_max_ns);
	/* the main thread never waited */
	struct rtalloc_stats mine = stats_now();
	assert_int_equal(mine.thread_lock_waits, 0);
	assert_int_equal(mine.thread_lock_wait_max_ns, 0);
	/* the waiter exited: its waits and its longest stay in the process's */
	assert_true(mine.lock_waits >= 1);
	assert_true(mine.lock_wait_max_ns >= w.after.thread_lock_wait_max_ns);
}

static void test_arena_wait_inside_section(void **state)
{
	UNUSED_STATE(state);
	if (rt_g.narenas != 1)
		skip();
	struct rtalloc_stats s0 = stats_now();
	struct waiter w = {.lock = &waiters_arena()->lock, .kind = 0, .in_rt = true};
	run_waiter(&w, arena_take, arena_drop, waiters_arena());
	assert_true(w.after.thread_lock_waits >= 1);
	assert_true(w.after.thread_rt_lock_waits >= 1);
	assert_true(w.after.thread_rt_lock_wait_max_ns > 0);
	assert_true(w.after.thread_rt_lock_wait_max_ns <= w.after.thread_lock_wait_max_ns);
	struct rtalloc_stats s1 = stats_now();
	assert_true(s1.rt_lock_waits >= s0.rt_lock_waits + 1);
	assert_true(s1.rt_lock_wait_max_ns >= w.after.thread_rt_lock_wait_max_ns);
	assert_int_equal(s1.thread_rt_lock_waits, 0); /* the main thread's */
}

static void test_heap_wait(void **state)
{
	UNUSED_STATE(state);
	rtalloc_heap_t *h = rtalloc_heap_create("lockwait", 256 << 10, 0);
	assert_non_null(h);
	struct waiter w = {.lock = &h->hdr->lock, .kind = 1, .in_rt = true, .heap = h};
	run_waiter(&w, heap_take, heap_drop, h);
	assert_int_equal(w.before.thread_lock_waits, 0);
	assert_true(w.after.thread_lock_waits >= 1);
	assert_true(w.after.thread_lock_wait_max_ns > 0);
	assert_true(w.after.thread_rt_lock_waits >= 1);
	assert_true(w.after.thread_rt_lock_wait_max_ns > 0);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* An old caller's struct (the layout before lock waits) is filled up to its
 * size and no further. */
static void test_old_caller(void **state)
{
	UNUSED_STATE(state);
	union {
		struct rtalloc_stats s;
		unsigned char b[sizeof(struct rtalloc_stats)];
	} u;
	memset(&u, 0xa5, sizeof(u));
	size_t old = offsetof(struct rtalloc_stats, lock_waits);
	u.s.size = (uint32_t)old;
	assert_int_equal(rtalloc_stats(&u.s), 0);
	assert_int_equal(u.s.size, old);
	for (size_t i = old; i < sizeof(u); i++)
		assert_int_equal(u.b[i], 0xa5);
}

int main(void)
{
	rtalloc_free(rtalloc_malloc(16));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_wait_outside_section),
		cmocka_unit_test(test_arena_wait_inside_section),
		cmocka_unit_test(test_heap_wait),
		cmocka_unit_test(test_old_caller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
