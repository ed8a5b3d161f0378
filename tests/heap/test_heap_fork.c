/* SPDX-License-Identifier: MIT */
/*
 * test_heap_fork.c - heaps across fork(2): children that use a private heap
 * right after a fork while other threads of the parent hammer it (and the
 * registry), and a child of a parent whose thread waits on a heap.  Every
 * child is bounded by a timeout: a hang is a failure, not a stuck test.
 * And the registry's lock inherits the priority of a thread it blocks.
 */
#include <sys/syscall.h>

#include "heap_test.h"

struct hammer {
	rtalloc_heap_t *h;
	int stop;
	long rounds;
};

/* Allocations and frees on the heap, without pause. */
static void *hammer_heap(void *arg)
{
	struct hammer *a = arg;
	void *keep[8] = {0};
	for (long i = 0; !__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE); i++) {
		unsigned k = (unsigned)i & 7;
		rtalloc_heap_free(a->h, keep[k]);
		keep[k] = rtalloc_heap_alloc(a->h, ((size_t)i % 9000) + 1);
		__atomic_store_n(&a->rounds, i, __ATOMIC_RELAXED);
	}
	for (unsigned k = 0; k < 8; k++)
		rtalloc_heap_free(a->h, keep[k]);
	return NULL;
}

/* Heaps created and destroyed, without pause: the registry's lock. */
static void *hammer_registry(void *arg)
{
	struct hammer *a = arg;
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		rtalloc_heap_t *t = rtalloc_heap_create(NULL, 16 << 10, 0);
		if (t)
			rtalloc_heap_destroy(t);
	}
	return NULL;
}

/* Wait at most ms for the child; false (and the child killed) if it hangs. */
static bool wait_bounded(pid_t pid, int ms, int *st)
{
	for (int i = 0; i < ms; i++) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid)
			return true;
		sleep_ms(1);
	}
	kill(pid, SIGKILL);
	waitpid(pid, st, 0);
	return false;
}

static int child_uses_heap(rtalloc_heap_t *h)
{
	void *p = rtalloc_heap_alloc(h, 100);
	if (!p)
		return 1;
	memset(p, 1, 100);
	rtalloc_heap_free(h, p);
	rtalloc_heap_t *t = rtalloc_heap_create(NULL, 16 << 10, 0); /* the registry */
	if (!t)
		return 2;
	if (rtalloc_heap_destroy(t) != 0)
		return 3;
	if (rt_heap_check(h))
		return 4;
	return 0;
}

static void children_use_a_busy_heap(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create("busy", 1 << 20, 0);
	assert_non_null(h);
	struct hammer a = {.h = h};
	pthread_t t[2];
	assert_int_equal(pthread_create(&t[0], NULL, hammer_heap, &a), 0);
	assert_int_equal(pthread_create(&t[1], NULL, hammer_registry, &a), 0);
	while (__atomic_load_n(&a.rounds, __ATOMIC_RELAXED) < 1000)
		sleep_ms(1);
	unsigned hung = 0, failed = 0;
	for (int i = 0; i < 16; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_uses_heap(h));
		int st;
		if (!wait_bounded(pid, 5000, &st))
			hung++;
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	assert_int_equal(hung, 0);
	assert_int_equal(failed, 0);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

struct waiter {
	rtalloc_heap_t *h;
	void *got;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	struct timespec dl = in_ms(20000);
	w->got = rtalloc_heap_alloc_timed(w->h, 4096, &dl);
	return NULL;
}

/* The child of a parent whose thread waits on a heap: the waiter is not in
 * the child, so the child's free does not hand it the block, and the child
 * can destroy the heap (nobody of its own waits). */
static int child_of_waiter(rtalloc_heap_t *h, void *all)
{
	rtalloc_heap_free(h, all);
	struct rtalloc_heap_info in;
	if (rtalloc_heap_inquire(h, &in) != 0 || in.waiters != 0)
		return 1;
	void *p = rtalloc_heap_alloc(h, 16 << 10);
	if (!p)
		return 2; /* granted to a thread this process does not have */
	rtalloc_heap_free(h, p);
	if (rt_heap_check(h))
		return 3;
	return rtalloc_heap_destroy(h) == 0 ? 0 : 4;
}

static void child_of_a_waiting_parent(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 16 << 10, 0);
	assert_non_null(h);
	void *all = rtalloc_heap_alloc(h, 16 << 10);
	assert_non_null(all);
	struct waiter w = {.h = h};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	for (int i = 0; i < 5000 && info_of(h).waiters < 1; i++)
		sleep_ms(1);
	assert_int_equal(info_of(h).waiters, 1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_of_waiter(h, all));
	int st;
	bool done = wait_bounded(pid, 5000, &st);
	rtalloc_heap_free(h, all); /* the parent's waiter is served */
	pthread_join(t, NULL);
	assert_true(done);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(w.got);
	rtalloc_heap_free(h, w.got);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* ---- the registry lock inherits priorities ------------------------------------- */

/* A thread's effective priority as the kernel schedules it (/proc stat
 * field 18: -1 - its real-time priority, boosts included). */
static long effective_prio(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long v = 0;
	for (int field = 2; p && field <= 18; field++) { /* p at the end of field 2 (comm) */
		p = strchr(p + 1, ' ');
		if (p && field == 17)
			v = strtol(p + 1, NULL, 10);
	}
	return v;
}

struct holder {
	int fd;
	int release;
	pid_t tid;
};

static void *hold_registry(void *arg)
{
	struct holder *a = arg;
	__atomic_store_n(&a->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	rt_heap_debug_hold_registry(a->fd, &a->release);
	return NULL;
}

static void *create_one(void *arg)
{
	*(rtalloc_heap_t **)arg = rtalloc_heap_create(NULL, 16 << 10, 0);
	return NULL;
}

static int start_fifo(pthread_t *t, int prio, void *(*fn)(void *), void *arg)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&at, SCHED_FIFO);
	struct sched_param sp = {.sched_priority = prio};
	pthread_attr_setschedparam(&at, &sp);
	int e = pthread_create(t, &at, fn, arg);
	pthread_attr_destroy(&at);
	return e;
}

/* A SCHED_FIFO 10 thread holds the registry lock; a SCHED_FIFO 30 thread
 * that creates a heap blocks on it and boosts the holder to 30. */
static void registry_lock_inherits(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct holder a = {.fd = fds[1]};
	pthread_t lo, hi;
	int e = start_fifo(&lo, 10, hold_registry, &a);
	if (e == EPERM) {
		close(fds[0]);
		close(fds[1]);
		skip();
	}
	assert_int_equal(e, 0);
	char c;
	assert_int_equal(read(fds[0], &c, 1), 1);
	pid_t tid = __atomic_load_n(&a.tid, __ATOMIC_ACQUIRE);
	assert_int_equal(effective_prio(tid), -11);
	rtalloc_heap_t *made = NULL;
	assert_int_equal(start_fifo(&hi, 30, create_one, &made), 0);
	long boosted = 0;
	for (int i = 0; i < 2000 && (boosted = effective_prio(tid)) != -31; i++)
		sleep_ms(1);
	__atomic_store_n(&a.release, 1, __ATOMIC_RELEASE);
	pthread_join(lo, NULL);
	pthread_join(hi, NULL);
	assert_int_equal(boosted, -31);
	assert_non_null(made);
	assert_int_equal(rtalloc_heap_destroy(made), 0);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(children_use_a_busy_heap),
		cmocka_unit_test(child_of_a_waiting_parent),
		cmocka_unit_test(registry_lock_inherits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
