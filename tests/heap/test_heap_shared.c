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

static void shm_file(char *buf, size_t len, const char *name)
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

/* ---- a peer that cannot be trusted ---------------------------------------------- */

static void default_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
	for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
		signal(sigs[i], SIG_DFL);
}

/* The address range of this process's mapping of the heap's object. */
static bool mapping_of(const char *name, uintptr_t *lo, uintptr_t *hi)
{
	char path[128], line[512];
	shm_file(path, sizeof(path), name);
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return false;
	*lo = UINTPTR_MAX;
	*hi = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (strstr(line, path) && sscanf(line, "%lx-%lx", &a, &b) == 2) {
			*lo = a < *lo ? a : *lo;
			*hi = b > *hi ? b : *hi;
		}
	}
	fclose(f);
	return *hi > *lo;
}

static bool inside(const void *p, size_t n, uintptr_t lo, uintptr_t hi)
{
	return (uintptr_t)p >= lo && (uintptr_t)p + n <= hi && (uintptr_t)p + n >= (uintptr_t)p;
}

/* A process that binds a heap whose header a peer wrote: what it gets must
 * be inside its mapping.  Exit 0 (bound, all inside), 1 (bind refused), 2
 * (a pointer outside the mapping). */
static int use_corrupted(const char *name, size_t creator_off)
{
	alarm(10); /* a hang is a failure (SIGALRM) */
	rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL);
	if (!c)
		return errno == EINVAL || errno == EACCES || errno == ENOMEM || errno == EAGAIN || errno == ENOENT ? 1 : 3;
	uintptr_t lo, hi;
	if (!mapping_of(name, &lo, &hi))
		return 4;
	static const size_t sizes[] = {16, 100, 3000, 5000, 40000};
	void *p[ARRAY_LEN(sizes)];
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		p[i] = rtalloc_heap_alloc(c, sizes[i]);
		if (!p[i])
			continue;
		if (!inside(p[i], sizes[i], lo, hi) || !inside(p[i], rtalloc_malloc_usable_size(p[i]), lo, hi))
			return 2;
		memset(p[i], 0x3c, sizes[i]);
		if (rtalloc_heap_ptr(c, rtalloc_heap_offset(c, p[i])) != p[i])
			return 2;
	}
	static const size_t offs[] = {0, 4096, 1 << 16, 1 << 20, (size_t)1 << 40, ~(size_t)0 >> 1};
	for (size_t i = 0; i < ARRAY_LEN(offs); i++) {
		void *q = rtalloc_heap_ptr(c, offs[i]);
		if (q && !inside(q, 1, lo, hi))
			return 2;
	}
	char *mine = rtalloc_heap_ptr(c, creator_off); /* a block of the creator */
	if (!mine || !inside(mine, 200, lo, hi) || mine[0] != 0x11)
		return 2;
	rtalloc_heap_free(c, mine);
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
		rtalloc_heap_free(c, p[i]);
	struct rtalloc_heap_info in;
	rtalloc_heap_inquire(c, &in);
	struct timespec now = in_ms(1);
	void *w = rtalloc_heap_alloc_timed(c, 1 << 20, &now); /* larger than the heap: waits, times out */
	if (w)
		return 2;
	rtalloc_heap_unbind(c);
	return 0;
}

/* One case: a creator makes the heap, a peer writes value into word i of
 * its header, a third process binds it.  The binder's fate, encoded: its
 * exit code, or 100 + the signal that killed it. */
static int corrupt_case(const char *name, size_t i, uint64_t value)
{
	pid_t creator = fork();
	assert_true(creator >= 0);
	if (creator == 0) {
		default_signals();
		rtalloc_heap_t *h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
		if (!h)
			_exit(90);
		char *a = rtalloc_heap_alloc(h, 200), *b = rtalloc_heap_alloc(h, 9000);
		void *c = rtalloc_heap_alloc(h, 64);
		if (!a || !b || !c)
			_exit(91);
		memset(a, 0x11, 200);
		rtalloc_heap_free(h, c); /* a partial page, free lists of several orders */
		size_t off = rtalloc_heap_offset(h, a);
		char path[128];
		shm_file(path, sizeof(path), name);
		int fd = open(path, O_RDWR);
		if (fd < 0 || pwrite(fd, &value, sizeof(value), (off_t)(i * 8)) != sizeof(value))
			_exit(92);
		close(fd);
		pid_t binder = fork();
		if (binder < 0)
			_exit(93);
		if (binder == 0)
			_exit(use_corrupted(name, off));
		int st;
		if (waitpid(binder, &st, 0) != binder)
			_exit(94);
		char shm[128];
		snprintf(shm, sizeof(shm), "/rtalloc-heap-%s", name);
		shm_unlink(shm);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
	}
	int st = child_status(creator);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void corrupted_header_fields(void **state)
{
	(void)state;
	char name[64];
	heap_name(name, sizeof(name), "hostile");
	static const uint64_t values[] = {~(uint64_t)0, 0x0000400000004000ull, 0x7fffffff00000100ull};
	size_t words = rt_heap_header_bytes() / 8;
	unsigned bound = 0, refused = 0, aborted = 0, bad = 0;
	for (size_t i = 0; i < words; i++) {
		for (size_t v = 0; v < ARRAY_LEN(values); v++) {
			int r = corrupt_case(name, i, values[v]);
			if (r == 0)
				bound++;
			else if (r == 1)
				refused++;
			else if (r == 100 + SIGABRT)
				aborted++;
			else if (++bad <= 20)
				print_error("header word %zu (byte %zu) = %#llx: the binder %s %d\n", i, i * 8,
					    (unsigned long long)values[v], r >= 100 ? "died of signal" : "exited",
					    r >= 100 ? r - 100 : r);
		}
	}
	print_message("%zu words x %zu values: bound %u, refused %u, aborted %u\n", words, ARRAY_LEN(values),
		      bound, refused, aborted);
	assert_int_equal(bad, 0);
	assert_true(refused > 0);
}

/* The page descriptors are shared memory too: each word of the first 16
 * (the pages the creator used, and free ones) set to a large value.  bind
 * cannot check them all; their indices and offsets are checked where they
 * are used, so the binder works inside its mapping or aborts. */
static void corrupted_descriptors(void **state)
{
	(void)state;
	char name[64];
	heap_name(name, sizeof(name), "hostile-desc");
	static const uint64_t values[] = {~(uint64_t)0, 0x0000400000004000ull, 0x7fffffff00000100ull};
	size_t first = (rt_heap_header_bytes() + 4095) / 4096 * 4096 / 8; /* descriptors follow the header */
	size_t words = 16 * 24 / 8;
	unsigned bound = 0, aborted = 0, bad = 0;
	for (size_t i = first; i < first + words; i++) {
		for (size_t v = 0; v < ARRAY_LEN(values); v++) {
			int r = corrupt_case(name, i, values[v]);
			if (r == 0)
				bound++;
			else if (r == 100 + SIGABRT)
				aborted++;
			else if (++bad <= 20)
				print_error("descriptor word %zu (byte %zu) = %#llx: the binder %s %d\n", i - first,
					    (i - first) * 8, (unsigned long long)values[v],
					    r >= 100 ? "died of signal" : "exited", r >= 100 ? r - 100 : r);
		}
	}
	print_message("%zu words x %zu values: bound %u, aborted %u\n", words, ARRAY_LEN(values), bound, aborted);
	assert_int_equal(bad, 0);
}

/* The object's owner and mode: 0600 by default, 0660 for the group; bind
 * refuses another owner (unless the group may), and objects others may
 * write. */
static void owner_and_mode(void **state)
{
	(void)state;
	char name[64], path[128];
	heap_name(name, sizeof(name), "owner");
	shm_file(path, sizeof(path), name);
	rtalloc_heap_t *h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED);
	assert_non_null(h);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL); /* the owner binds */
	assert_non_null(c);
	assert_int_equal(rtalloc_heap_unbind(c), 0);
	assert_int_equal(chown(path, 65534, 65534), 0); /* another user's object */
	errno = 0;
	assert_null(rtalloc_heap_bind(name, NULL));
	assert_int_equal(errno, EACCES);
	assert_int_equal(chown(path, geteuid(), getegid()), 0);
	assert_int_equal(chmod(path, 0666), 0); /* anybody may write it */
	errno = 0;
	assert_null(rtalloc_heap_bind(name, NULL));
	assert_int_equal(errno, EACCES);
	assert_int_equal(chmod(path, 0600), 0);
	c = rtalloc_heap_bind(name, NULL);
	assert_non_null(c);
	assert_int_equal(rtalloc_heap_unbind(c), 0);
	assert_int_equal(rtalloc_heap_destroy(h), 0);

	/* RTALLOC_HEAP_SHARED_GROUP: 0660, members of the group may bind */
	assert_null(rtalloc_heap_create(NULL, 64 << 10, RTALLOC_HEAP_SHARED_GROUP));
	assert_int_equal(errno, EINVAL); /* only with RTALLOC_HEAP_SHARED */
	h = rtalloc_heap_create(name, 64 << 10, RTALLOC_HEAP_SHARED | RTALLOC_HEAP_SHARED_GROUP);
	assert_non_null(h);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(chown(path, 65534, getegid()), 0);
	c = rtalloc_heap_bind(name, NULL);
	assert_non_null(c);
	assert_int_equal(rtalloc_heap_unbind(c), 0);
	assert_int_equal(chown(path, 65534, 65534), 0); /* not this process's group */
	errno = 0;
	assert_null(rtalloc_heap_bind(name, NULL));
	assert_int_equal(errno, EACCES);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_size_across_processes),
		cmocka_unit_test(guard_before_the_data),
		cmocka_unit_test(corrupted_header_fields),
		cmocka_unit_test(corrupted_descriptors),
		cmocka_unit_test(owner_and_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
