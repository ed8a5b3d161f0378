/* SPDX-License-Identifier: MIT */
/*
 * test_heap_shared.c - shared heaps between processes: every size class of
 * heap up to 1 GiB (blocks written in one process, read and freed through
 * offsets in the other), the guard page between a heap's metadata and its
 * data, and peers that cannot be trusted: a header corrupted field by
 * field, an object of another owner, the object's permissions.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "heap_test.h"

/* A name of this run; a leftover of an earlier run with the same pid goes. */
static void heap_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "test-%s-%d", what, (int)getpid());
	char path[128];
	snprintf(path, sizeof(path), "/rtalloc-heap-%s", buf);
	shm_unlink(path);
}

static __attribute__((unused)) void shm_file(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "/dev/shm/rtalloc-heap-%s", name);
}

static int child_status(pid_t pid)
{
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void expect_exit0(pid_t pid)
{
	int st = child_status(pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("child: %s %d", WIFEXITED(st) ? "exit" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* ---- every size of shared heap, across processes ----------------------------- */

#define MAXB 32

/* The child: bind, check and free the parent's block, allocate blocks of
 * every class that fits, mark them, send their offsets back. */
static size_t pow2_floor(size_t n) { return (size_t)1 << (63 - __builtin_clzll(n)); }

static int size_child(const char *name, size_t size, int rfd, int wfd)
{
	size_t big = pow2_floor(size);
	size_t off;
	if (read(rfd, &off, sizeof(off)) != sizeof(off))
		return 10;
	struct timespec dl = in_ms(5000);
	rtalloc_heap_t *c = rtalloc_heap_bind(name, &dl);
	if (!c)
		return 11;
	unsigned char *p = rtalloc_heap_ptr(c, off);
	if (!p || p[0] != 0x5a || p[big / 2] != 0x77 || p[big - 1] != 0xa5)
		return 12;
	if (rtalloc_malloc_usable_size(p) != big)
		return 13;
	rtalloc_heap_free(c, p);
	size_t offs[MAXB], n = 0;
	for (size_t b = 16; b <= size / 4 && n < MAXB; b *= 2) {
		unsigned char *q = rtalloc_heap_alloc(c, b);
		if (!q)
			break;
		q[0] = (unsigned char)n;
		q[b - 1] = (unsigned char)(n + 1);
		offs[n++] = rtalloc_heap_offset(c, q);
	}
	if (n == 0 || write(wfd, &n, sizeof(n)) != sizeof(n) ||
	    write(wfd, offs, n * sizeof(offs[0])) != (ssize_t)(n * sizeof(offs[0])))
		return 14;
	if (rt_heap_check(c) || rtalloc_heap_unbind(c) != 0)
		return 15;
	return 0;
}

static void one_size(size_t size)
{
	char name[64];
	heap_name(name, sizeof(name), "size");
	rtalloc_heap_t *h = rtalloc_heap_create(name, size, RTALLOC_HEAP_SHARED);
	if (!h)
		fail_msg("create of %zu bytes: %s", size, strerror(errno));
	assert_int_equal(info_of(h).size, size);
	size_t big = pow2_floor(size); /* the largest block: the whole heap when a power of two */
	unsigned char *p = rtalloc_heap_alloc(h, big);
	if (!p)
		fail_msg("a block of %zu bytes in a heap of %zu: %s", big, size, strerror(errno));
	assert_true(((uintptr_t)p & (big - 1)) == 0);
	p[0] = 0x5a;
	p[big / 2] = 0x77;
	p[big - 1] = 0xa5;
	size_t off = rtalloc_heap_offset(h, p);
	int tc[2], tp[2];
	assert_int_equal(pipe(tc), 0);
	assert_int_equal(pipe(tp), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(size_child(name, size, tc[0], tp[1]));
	assert_int_equal(write(tc[1], &off, sizeof(off)), sizeof(off));
	size_t n = 0, offs[MAXB];
	ssize_t got = read(tp[0], &n, sizeof(n));
	if (got == sizeof(n))
		assert_int_equal(read(tp[0], offs, n * sizeof(offs[0])), (ssize_t)(n * sizeof(offs[0])));
	expect_exit0(pid);
	assert_int_equal(got, sizeof(n));
	size_t b = 16;
	for (size_t i = 0; i < n; i++, b *= 2) {
		unsigned char *q = rtalloc_heap_ptr(h, offs[i]);
		assert_non_null(q);
		assert_int_equal(q[0], (unsigned char)i);
		assert_int_equal(q[b - 1], (unsigned char)(i + 1));
		assert_int_equal(rtalloc_malloc_usable_size(q), b);
		rtalloc_heap_free(h, q);
	}
	assert_heap_whole(h);
	for (int i = 0; i < 4; i++)
		close(i < 2 ? tc[i] : tp[i - 2]);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

static void every_size_across_processes(void **state)
{
	(void)state;
	for (unsigned k = 12; k <= 30; k++) /* 4 KiB .. 1 GiB */
		one_size((size_t)1 << k);
	one_size(3 << 20);              /* not a power of two */
	one_size((5 << 20) + 4096);
}

/* ---- the guard page ------------------------------------------------------------- */

/* In a child: write the byte before the heap's first block; the child must
 * die of SIGSEGV. */
static void expect_underflow_faults(rtalloc_heap_t *h, size_t size)
{
	char *p = rtalloc_heap_alloc(h, size); /* the whole heap: its first block */
	assert_non_null(p);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* not cmocka's handler */
		((volatile char *)p)[-1] = 1;
		_exit(0);
	}
	int st = child_status(pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
		fail_msg("an underflow from the first block did not fault (status %#x)", st);
	assert_heap_sound(h);
	rtalloc_heap_free(h, p);
}

static void guard_before_the_data(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 64 << 10, 0);
	assert_non_null(h);
	expect_underflow_faults(h, 64 << 10);
	assert_int_equal(rtalloc_heap_destroy(h), 0);

	h = rtalloc_heap_create("guard-grow", 64 << 10, RTALLOC_HEAP_GROW);
	assert_non_null(h);
	expect_underflow_faults(h, 64 << 10);
	assert_int_equal(rtalloc_heap_destroy(h), 0);

	char name[64];
	heap_name(name, sizeof(name), "guard");
	h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	expect_underflow_faults(h, 64 << 10);
	/* and in a process that binds it */
	void *all = rtalloc_heap_alloc(h, 64 << 10);
	assert_non_null(all);
	size_t off = rtalloc_heap_offset(h, all);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL);
		if (!c)
			_exit(20);
		char *q = rtalloc_heap_ptr(c, off);
		if (!q)
			_exit(21);
		signal(SIGSEGV, SIG_DFL);
		((volatile char *)q)[-1] = 1;
		_exit(0);
	}
	int st = child_status(pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
		fail_msg("an underflow in a bound process did not fault (status %#x)", st);
	assert_heap_sound(h);
	rtalloc_heap_free(h, all);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_size_across_processes),
		cmocka_unit_test(guard_before_the_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
