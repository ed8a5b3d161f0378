/* SPDX-License-Identifier: MIT */
/*
 * test_heap_threads.c - heaps with several threads and processes: a waiter
 * woken by a free, a timeout, destroy under a waiter, priority order
 * (SCHED_FIFO), two processes sharing a named heap, a process killed while
 * holding the heap's lock, and a thread bound to its heap while another
 * exhausts the process's pool (RTALLOC_POOL_SIZE=4M, RTALLOC_ON_EXHAUST=fail
 * from meson).
 */
#include <sys/mman.h>

#include "heap_test.h"

struct waiter {
	rtalloc_heap_t *h;
	size_t size;
	const struct timespec *deadline;
	void *got;
	int err;
	uint64_t waited_ns;
	int prio;
	int *order, *norder; /* where it records its turn */
	pthread_mutex_t *order_lock;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = now_ns();
	errno = 0;
	w->got = rtalloc_heap_alloc_timed(w->h, w->size, w->deadline);
	w->err = errno;
	w->waited_ns = now_ns() - t0;
	if (w->order) {
		pthread_mutex_lock(w->order_lock);
		int i = __atomic_load_n(w->norder, __ATOMIC_RELAXED);
		w->order[i] = w->prio;
		__atomic_store_n(w->norder, i + 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(w->order_lock);
	}
	return NULL;
}

static void wait_for_waiters(rtalloc_heap_t *h, unsigned n)
{
	for (int i = 0; i < 5000 && info_of(h).waiters < n; i++) /* at most 5 s */
		sleep_ms(1);
	assert_int_equal(info_of(h).waiters, n);
}

static void woken_by_free(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create("woken", 64 << 10, 0);
	assert_non_null(h);
	static void *b[64];
	size_t n = fill_heap(h, 4096, b, 64);
	assert_int_equal(n, 16);
	struct timespec dl = in_ms(10000);
	struct waiter w = {.h = h, .size = 4000, .deadline = &dl};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	wait_for_waiters(h, 1);
	sleep_ms(20);
	rtalloc_free(b[5]); /* the free hands the block to the waiter */
	pthread_join(t, NULL);
	assert_ptr_equal(w.got, b[5]);
	assert_true(w.waited_ns >= 20000000u && w.waited_ns < 5000000000u);
	assert_int_equal(info_of(h).waiters, 0);
	b[5] = w.got;
	/* no free: the timeout */
	dl = in_ms(100);
	w = (struct waiter){.h = h, .size = 4000, .deadline = &dl};
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	pthread_join(t, NULL);
	assert_null(w.got);
	assert_int_equal(w.err, ETIMEDOUT);
	assert_true(w.waited_ns >= 90000000u);
	assert_int_equal(info_of(h).waiters, 0);
	assert_heap_sound(h);
	for (size_t i = 0; i < n; i++)
		rtalloc_heap_free(h, b[i]);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

static void destroy_wakes_waiters(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 16 << 10, 0);
	assert_non_null(h);
	void *all = rtalloc_heap_alloc(h, 16 << 10);
	assert_non_null(all);
	struct waiter w[2] = {{.h = h, .size = 64}, {.h = h, .size = 8192}}; /* no timeout */
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
	wait_for_waiters(h, 2);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_null(w[i].got);
		assert_int_equal(w[i].err, EIDRM);
	}
}

static void priority_order(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create("prio", 32 << 10, RTALLOC_HEAP_PRIO);
	assert_non_null(h);
	static void *b[16];
	size_t n = fill_heap(h, 4096, b, 16);
	assert_int_equal(n, 8);
	static const int prios[] = {10, 30, 20, 5};
	struct waiter w[4];
	pthread_t t[4];
	int order[4], norder = 0;
	pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){.h = h, .size = 4096, .prio = prios[i], .order = order,
				       .norder = &norder, .order_lock = &order_lock};
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&at, SCHED_FIFO);
		struct sched_param sp = {.sched_priority = prios[i]};
		pthread_attr_setschedparam(&at, &sp);
		int e = pthread_create(&t[i], &at, wait_thread, &w[i]);
		pthread_attr_destroy(&at);
		if (e == EPERM) {
			assert_int_equal(i, 0);
			for (size_t k = 0; k < n; k++)
				rtalloc_heap_free(h, b[k]);
			rtalloc_heap_destroy(h);
			skip(); /* prints the skip; message below for the log */
		}
		assert_int_equal(e, 0);
		wait_for_waiters(h, (unsigned)i + 1); /* arrival order: 10, 30, 20, 5 */
	}
	for (int i = 0; i < 4; i++) {
		rtalloc_free(b[i]);
		for (int k = 0; k < 5000 && __atomic_load_n(&norder, __ATOMIC_ACQUIRE) <= i; k++)
			sleep_ms(1);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(norder, 4);
	assert_int_equal(order[0], 30);
	assert_int_equal(order[1], 20);
	assert_int_equal(order[2], 10);
	assert_int_equal(order[3], 5);
	for (int i = 0; i < 4; i++) {
		assert_non_null(w[i].got);
		rtalloc_free(w[i].got);
	}
	for (size_t k = 4; k < n; k++)
		rtalloc_free(b[k]);
	assert_heap_sound(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* FIFO without RTALLOC_HEAP_PRIO, whatever the priorities. */
static void fifo_order(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 16 << 10, 0);
	assert_non_null(h);
	static void *b[8];
	size_t n = fill_heap(h, 4096, b, 8);
	assert_int_equal(n, 4);
	struct waiter w[3];
	pthread_t t[3];
	int order[3], norder = 0;
	pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
	for (int i = 0; i < 3; i++) {
		w[i] = (struct waiter){.h = h, .size = 100, .prio = i, .order = order, .norder = &norder,
				       .order_lock = &order_lock};
		assert_int_equal(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
		wait_for_waiters(h, (unsigned)i + 1);
	}
	rtalloc_free(b[0]); /* one page: 4096 / 128 blocks, enough for all three, in order */
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 3; i++) {
		assert_non_null(w[i].got);
		assert_true(w[i].got < w[(i + 1) % 3].got || i == 2); /* carved in arrival order */
		rtalloc_free(w[i].got);
	}
	for (size_t k = 1; k < n; k++)
		rtalloc_free(b[k]);
	assert_heap_sound(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* A name of this run; a leftover of the same name (an earlier run that
 * failed before destroying, with the same pid) is removed. */
static void heap_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "test-%s-%d", what, (int)getpid());
	char path[128];
	snprintf(path, sizeof(path), "/rtalloc-heap-%s", buf);
	shm_unlink(path);
}

static void two_processes(void **state)
{
	(void)state;
	char name[64];
	heap_name(name, sizeof(name), "share");
	rtalloc_heap_t *h = rtalloc_heap_create(name, 1 << 20, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	assert_null(rtalloc_heap_create(name, 1 << 20, RTALLOC_HEAP_SHARED));
	assert_int_equal(errno, EEXIST);
	char *msg = rtalloc_heap_alloc(h, 100);
	assert_non_null(msg);
	strcpy(msg, "hello from the parent");
	size_t off = rtalloc_heap_offset(h, msg);
	int to_child[2], to_parent[2];
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t o;
		if (read(to_child[0], &o, sizeof(o)) != sizeof(o))
			_exit(10);
		struct timespec dl = in_ms(2000);
		rtalloc_heap_t *c = rtalloc_heap_bind(name, &dl);
		if (!c)
			_exit(11);
		char *p = rtalloc_heap_ptr(c, o);
		if (!p || strcmp(p, "hello from the parent") != 0)
			_exit(12);
		rtalloc_heap_free(c, p);
		char *q = rtalloc_heap_alloc(c, 3000);
		if (!q)
			_exit(13);
		strcpy(q, "hello from the child");
		size_t qo = rtalloc_heap_offset(c, q);
		if (write(to_parent[1], &qo, sizeof(qo)) != sizeof(qo))
			_exit(14);
		if (rt_heap_check(c) || rtalloc_heap_unbind(c) != 0)
			_exit(15);
		_exit(0);
	}
	assert_int_equal(write(to_child[1], &off, sizeof(off)), sizeof(off));
	size_t qo;
	assert_int_equal(read(to_parent[0], &qo, sizeof(qo)), sizeof(qo));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	char *q = rtalloc_heap_ptr(h, qo);
	assert_non_null(q);
	assert_string_equal(q, "hello from the child");
	assert_int_equal(info_of(h).live_blocks, 1);
	rtalloc_free(q);
	assert_heap_whole(h);
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
	assert_null(rtalloc_heap_bind(name, NULL)); /* the name is gone */
	assert_int_equal(errno, ENOENT);
}

/* A process waits in bind for the creation; a waiter in another process is
 * served by this process's free. */
static void bind_waits_and_cross_process_waiter(void **state)
{
	(void)state;
	char name[64];
	heap_name(name, sizeof(name), "late");
	int to_parent[2];
	assert_int_equal(pipe(to_parent), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct timespec dl = in_ms(5000);
		rtalloc_heap_t *c = rtalloc_heap_bind(name, &dl);
		if (!c)
			_exit(20);
		char ok = 'b';
		if (write(to_parent[1], &ok, 1) != 1)
			_exit(21);
		dl = in_ms(5000);
		char *p = rtalloc_heap_alloc_timed(c, 8192, &dl); /* full: waits for the parent */
		if (!p)
			_exit(22);
		strcpy(p, "served");
		_exit(0);
	}
	sleep_ms(30);
	rtalloc_heap_t *h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	void *all = rtalloc_heap_alloc(h, 64 << 10);
	assert_non_null(all);
	char c;
	assert_int_equal(read(to_parent[0], &c, 1), 1);
	wait_for_waiters(h, 1);
	rtalloc_heap_free(h, all);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	struct rtalloc_heap_info in = info_of(h);
	assert_int_equal(in.live_blocks, 1);
	assert_int_equal(in.waiters, 0);
	assert_heap_sound(h);
	close(to_parent[0]);
	close(to_parent[1]);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* Processes killed while they wait on a shared heap leave no trace: a free
 * drops the record of a dead waiter instead of granting it a block, and a
 * waiter that finds every record taken reclaims those of dead processes. */
static pid_t spawn_waiter(const char *name, int ready_fd)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL);
		if (!c)
			_exit(20);
		char ok = 'w';
		if (write(ready_fd, &ok, 1) != 1)
			_exit(21);
		struct timespec dl = in_ms(20000);
		rtalloc_heap_alloc_timed(c, 8192, &dl); /* killed in here */
		_exit(22);
	}
	return pid;
}

static void kill_all(pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(kill(pids[i], SIGKILL), 0);
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFSIGNALED(st));
	}
}

static void killed_while_waiting(void **state)
{
	(void)state;
	char name[64];
	heap_name(name, sizeof(name), "wdead");
	rtalloc_heap_t *h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	void *all = rtalloc_heap_alloc(h, 64 << 10);
	assert_non_null(all);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pids[RTALLOC_HEAP_WAITERS];
	char c;

	/* one dead waiter, then a free */
	pids[0] = spawn_waiter(name, fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	wait_for_waiters(h, 1);
	kill_all(pids, 1);
	assert_int_equal(info_of(h).waiters, 1); /* its record is still there */
	rtalloc_heap_free(h, all);
	struct rtalloc_heap_info in = info_of(h);
	assert_int_equal(in.waiters, 0);
	assert_int_equal(in.live_blocks, 0); /* nothing granted to the dead */
	assert_heap_whole(h);

	/* every record taken by dead waiters, then a new waiter */
	all = rtalloc_heap_alloc(h, 64 << 10);
	assert_non_null(all);
	for (unsigned i = 0; i < RTALLOC_HEAP_WAITERS; i++) {
		pids[i] = spawn_waiter(name, fds[1]);
		assert_int_equal(read(fds[0], &c, 1), 1);
	}
	wait_for_waiters(h, RTALLOC_HEAP_WAITERS);
	kill_all(pids, RTALLOC_HEAP_WAITERS);
	struct timespec soon = in_ms(20);
	errno = 0;
	assert_null(rtalloc_heap_alloc_timed(h, 8192, &soon));
	assert_int_equal(errno, ETIMEDOUT); /* not EAGAIN: it found a record */
	assert_int_equal(info_of(h).waiters, 0);
	rtalloc_heap_free(h, all);
	assert_heap_whole(h);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* A shared heap whose processes are all gone (the creator crashed and
 * nobody is bound) gives its name to the next creator; one with a live
 * process bound keeps it (EEXIST). */
static pid_t create_and_die(const char *name)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED) ? 0 : 1); /* no destroy */
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return pid;
}

static void stale_name_after_its_processes_died(void **state)
{
	(void)state;
	char name[64];
	heap_name(name, sizeof(name), "stale");
	create_and_die(name);
	rtalloc_heap_t *h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h); /* the dead creator's heap was reclaimed */
	assert_null(rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED));
	assert_int_equal(errno, EEXIST); /* this creator lives */
	assert_int_equal(rtalloc_heap_destroy(h), 0);

	/* creator dead, but a live process bound: the name stays taken */
	create_and_die(name);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL);
		char x = c ? 'b' : 'x';
		if (write(fds[1], &x, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char x;
	assert_int_equal(read(fds[0], &x, 1), 1);
	assert_int_equal(x, 'b');
	errno = 0;
	assert_null(rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED));
	assert_int_equal(errno, EEXIST);
	kill_all(&pid, 1);
	h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
	close(fds[0]);
	close(fds[1]);
}

static void killed_holding_the_lock(void **state)
{
	(void)state;
	char name[64];
	heap_name(name, sizeof(name), "kill");
	rtalloc_heap_t *h = rtalloc_heap_create(name, 256 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	static void *b[64];
	for (int i = 0; i < 64; i++) {
		b[i] = rtalloc_heap_alloc(h, i % 2 ? 48 : 1500);
		assert_non_null(b[i]);
	}
	for (int i = 0; i < 64; i += 4)
		rtalloc_heap_free(h, b[i]);
	size_t free_before = info_of(h).free_bytes;
	for (int scramble = 0; scramble < 2; scramble++) {
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL);
			if (!c)
				_exit(30);
			rt_heap_debug_hold(c, scramble, fds[1]);
		}
		char x;
		assert_int_equal(read(fds[0], &x, 1), 1);
		kill_all(&pid, 1); /* SIGKILL, reaped, died of the signal */
		close(fds[0]);
		close(fds[1]);
		/* this process carries on: the next lock recovers the heap */
		void *p = rtalloc_heap_alloc(h, 100);
		assert_non_null(p);
		assert_int_equal(rt_heap_recoveries(h), (unsigned)scramble + 1);
		assert_heap_sound(h);
		rtalloc_heap_free(h, p);
		/* a half-made allocation (scramble) was reclaimed: nothing leaked */
		assert_int_equal(info_of(h).free_bytes, free_before);
	}
	for (int i = 0; i < 64; i++)
		if (i % 4)
			rtalloc_free(b[i]);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* ---- a thread on its own heap while another exhausts the pool ---------------- */

static pthread_barrier_t bar;
static int exhausted;

static void *exhauster(void *arg)
{
	(void)arg;
	static void *blocks[4096];
	size_t n = 0;
	pthread_barrier_wait(&bar);
	for (; n < 4096; n++) {
		blocks[n] = rtalloc_malloc(64 << 10);
		if (!blocks[n])
			break;
	}
	__atomic_store_n(&exhausted, n < 4096 && errno == ENOMEM ? 1 : -1, __ATOMIC_RELEASE);
	pthread_barrier_wait(&bar); /* the heap thread allocates meanwhile */
	pthread_barrier_wait(&bar);
	for (size_t i = 0; i < n; i++)
		rtalloc_free(blocks[i]);
	return NULL;
}

static void *heap_user(void *arg)
{
	rtalloc_heap_t *h = arg;
	long bad = 0;
	if (rtalloc_thread_use_heap(h) != 0)
		return (void *)1;
	pthread_barrier_wait(&bar);
	for (int round = 0; round < 2000; round++) {
		void *p = rtalloc_malloc((size_t)(round % 50) * 40 + 1);
		void *q = rtalloc_calloc(3, 100);
		void *r = NULL;
		if (rtalloc_posix_memalign(&r, 1024, 10) != 0)
			r = NULL;
		bad += !p || !q || !r || rtalloc_heap_offset(h, p) == RTALLOC_HEAP_BAD_OFFSET ||
		       rtalloc_heap_offset(h, r) == RTALLOC_HEAP_BAD_OFFSET || ((uintptr_t)r & 1023);
		rtalloc_free(p);
		rtalloc_free(q);
		rtalloc_free(r);
	}
	pthread_barrier_wait(&bar);
	for (int round = 0; round < 2000; round++) { /* the pool is empty now */
		void *p = rtalloc_malloc(200);
		bad += !p || rtalloc_heap_offset(h, p) == RTALLOC_HEAP_BAD_OFFSET;
		p = rtalloc_realloc(p, 5000);
		bad += !p || rtalloc_heap_offset(h, p) == RTALLOC_HEAP_BAD_OFFSET;
		rtalloc_free(p);
	}
	pthread_barrier_wait(&bar);
	rtalloc_thread_use_heap(NULL);
	void *d = rtalloc_malloc(100); /* the default pool again (freed by now? not yet: may fail) */
	rtalloc_free(d);
	return (void *)bad;
}

static void thread_on_its_heap(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create("mine", 1 << 20, 0);
	assert_non_null(h);
	pthread_barrier_init(&bar, NULL, 2);
	pthread_t a, b;
	assert_int_equal(pthread_create(&a, NULL, heap_user, h), 0);
	assert_int_equal(pthread_create(&b, NULL, exhauster, NULL), 0);
	void *bad;
	pthread_join(a, &bad);
	pthread_join(b, NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(__atomic_load_n(&exhausted, __ATOMIC_ACQUIRE), 1);
	assert_null(bad);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_check(), 0);
	void *p = rtalloc_malloc(100); /* this thread was never bound: the pool */
	assert_non_null(p);
	assert_int_equal(rtalloc_heap_offset(h, p), RTALLOC_HEAP_BAD_OFFSET);
	rtalloc_free(p);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* ---- several threads on one heap; blocks freed by other threads --------------- */

#define NT 4
#define SLOTS 256
static void *shared_slots[SLOTS];

struct churn_arg {
	rtalloc_heap_t *h;
	unsigned seed;
	long errors;
};

static void *churn(void *arg)
{
	struct churn_arg *a = arg;
	unsigned s = a->seed;
	for (int i = 0; i < 20000; i++) {
		s = s * 1103515245u + 12345u;
		unsigned k = (s >> 8) % SLOTS;
		size_t size = ((s >> 16) % 6000) + 1;
		void *mine = rtalloc_heap_alloc(a->h, size);
		if (mine) {
			memset(mine, (int)(k & 0xff), size < 64 ? size : 64);
		} else if (errno != ENOMEM) {
			a->errors++;
		}
		void *old = __atomic_exchange_n(&shared_slots[k], mine, __ATOMIC_ACQ_REL);
		if (old) {
			if (i % 2)
				rtalloc_free(old); /* plain free of another thread's heap block */
			else
				rtalloc_heap_free(a->h, old);
		}
	}
	return NULL;
}

static void threads_share_a_heap(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create("churn", 512 << 10, 0);
	assert_non_null(h);
	pthread_t t[NT];
	struct churn_arg a[NT];
	for (int i = 0; i < NT; i++) {
		a[i] = (struct churn_arg){.h = h, .seed = (unsigned)i * 7919u + 1};
		assert_int_equal(pthread_create(&t[i], NULL, churn, &a[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].errors, 0);
	}
	assert_heap_sound(h);
	for (int k = 0; k < SLOTS; k++)
		if (shared_slots[k])
			rtalloc_free(shared_slots[k]);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* ---- what a free costs ---------------------------------------------------------- */

/* A free that makes room for three waiters wakes one (FUTEX_WAKE once, no
 * kill(pid, 0), no getpid); each waiter, once served, serves the next.
 * Then the same with a waiter in another process of a shared heap. */
static void one_wake_per_free(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 16 << 10, 0);
	assert_non_null(h);
	static void *b[8];
	size_t n = fill_heap(h, 4096, b, 8);
	assert_int_equal(n, 4);
	struct waiter w[3];
	pthread_t t[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct waiter){.h = h, .size = 100};
		assert_int_equal(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
		wait_for_waiters(h, (unsigned)i + 1);
	}
	unsigned wakes0, probes0, wakes1, probes1;
	rt_heap_debug_syscalls(&wakes0, &probes0);
	rtalloc_free(b[0]); /* one page: room for all three */
	rt_heap_debug_syscalls(&wakes1, &probes1);
	assert_int_equal(wakes1 - wakes0, 1);
	assert_int_equal(probes1 - probes0, 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_non_null(w[i].got); /* served down the line */
		rtalloc_free(w[i].got);
	}
	for (size_t k = 1; k < n; k++)
		rtalloc_free(b[k]);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);

	char name[64];
	heap_name(name, sizeof(name), "wake");
	h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	void *all = rtalloc_heap_alloc(h, 64 << 10);
	assert_non_null(all);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL);
		char ok = 'w';
		if (!c || write(fds[1], &ok, 1) != 1)
			_exit(20);
		struct timespec dl = in_ms(10000);
		_exit(rtalloc_heap_alloc_timed(c, 8192, &dl) ? 0 : 21);
	}
	char c;
	assert_int_equal(read(fds[0], &c, 1), 1);
	wait_for_waiters(h, 1);
	rt_heap_debug_syscalls(&wakes0, &probes0);
	rtalloc_heap_free(h, all);
	rt_heap_debug_syscalls(&wakes1, &probes1);
	assert_int_equal(wakes1 - wakes0, 1);
	assert_int_equal(probes1 - probes0, 0); /* before: kill(pid, 0) for the other process's waiter */
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* rtalloc_heap_alloc_timed on a RTALLOC_HEAP_PRIO heap reads the caller's
 * priority once, and never while it holds the heap's lock. */
static void *timed_prio_reads(void *arg)
{
	static unsigned r[2];
	struct timespec dl = in_ms(30);
	void *p = rtalloc_heap_alloc_timed(arg, 4096, &dl); /* full: waits, times out */
	rt_heap_debug_prio_reads(&r[0], &r[1]);
	return p ? NULL : r;
}

static void priority_read_outside_the_lock(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 16 << 10, RTALLOC_HEAP_PRIO);
	assert_non_null(h);
	void *all = rtalloc_heap_alloc(h, 16 << 10);
	assert_non_null(all);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, timed_prio_reads, h), 0);
	unsigned *r;
	pthread_join(t, (void **)&r);
	assert_non_null(r);
	assert_int_equal(r[0], 1); /* read once */
	assert_int_equal(r[1], 0); /* not under the lock */
	rtalloc_heap_free(h, all);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(woken_by_free),
		cmocka_unit_test(destroy_wakes_waiters),
		cmocka_unit_test(priority_order),
		cmocka_unit_test(fifo_order),
		cmocka_unit_test(two_processes),
		cmocka_unit_test(bind_waits_and_cross_process_waiter),
		cmocka_unit_test(killed_while_waiting),
		cmocka_unit_test(stale_name_after_its_processes_died),
		cmocka_unit_test(killed_holding_the_lock),
		cmocka_unit_test(thread_on_its_heap),
		cmocka_unit_test(threads_share_a_heap),
		cmocka_unit_test(one_wake_per_free),
		cmocka_unit_test(priority_read_outside_the_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
