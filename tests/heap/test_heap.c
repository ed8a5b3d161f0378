/* SPDX-License-Identifier: MIT */
/*
 * test_heap.c - heaps, single-threaded: caller memory (one array, several
 * regions), own memory, exhaustion and recovery, the figures, offsets,
 * free/realloc/malloc_usable_size of heap blocks, argument checks.
 */
#include "heap_test.h"

static _Alignas(4096) char one[1 << 20];
static _Alignas(4096) char reg_a[256 << 10];
static char gap1[12345];
static _Alignas(64) char reg_b[300 << 10];
static char gap2[4321];
static _Alignas(4096) char reg_c[128 << 10];

static void check_aligned_to_size(void *p, size_t n)
{
	size_t sz = rtalloc_malloc_usable_size(p);
	assert_true(sz >= n);
	assert_true((sz & (sz - 1)) == 0); /* a power of two */
	assert_true(((uintptr_t)p & (sz - 1)) == 0);
}

static void static_array(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create_in("array", &(struct rtalloc_region){one, sizeof(one)}, 1, 0);
	assert_non_null(h);
	struct rtalloc_heap_info in = info_of(h);
	assert_string_equal(in.name, "array");
	assert_true(in.size > sizeof(one) * 9 / 10 && in.size < sizeof(one));
	assert_int_equal(in.free_bytes, in.size);
	assert_int_equal(in.live_blocks, 0);
	static const size_t sizes[] = {1, 16, 17, 100, 2048, 2049, 4096, 5000, 40000, 100000};
	void *p[ARRAY_LEN(sizes)];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p[i] = rtalloc_heap_alloc(h, sizes[i]);
		assert_non_null(p[i]);
		assert_true((char *)p[i] >= one && (char *)p[i] < one + sizeof(one));
		check_aligned_to_size(p[i], sizes[i]);
		memset(p[i], 0xa5, sizes[i]);
	}
	assert_int_equal(info_of(h).live_blocks, ARRAY_LEN(sizes));
	assert_heap_sound(h);
	/* the malloc family works on heap blocks */
	void *q = rtalloc_realloc(p[2], 3000);
	assert_non_null(q);
	assert_true((char *)q >= one && (char *)q < one + sizeof(one));
	assert_int_equal(((unsigned char *)q)[16], 0xa5);
	p[2] = q;
	assert_ptr_equal(rtalloc_realloc(p[3], 120), p[3]); /* same class: in place */
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		if (i % 2)
			rtalloc_free(p[i]);
		else
			rtalloc_heap_free(h, p[i]);
	}
	in = info_of(h);
	assert_int_equal(in.live_blocks, 0);
	assert_int_equal(in.free_bytes, in.size);
	assert_true(in.min_free_bytes < in.size);
	assert_heap_sound(h);
	void *a = rtalloc_heap_aligned_alloc(h, 65536, 10);
	assert_non_null(a);
	assert_true(((uintptr_t)a & 65535) == 0);
	rtalloc_free(a);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
	assert_int_equal(rtalloc_heap_destroy(h), EINVAL);
}

static void several_regions(void **state)
{
	(void)state;
	(void)gap1;
	(void)gap2;
	struct rtalloc_region r[3] = {{reg_a, sizeof(reg_a)}, {reg_b + 1, sizeof(reg_b) - 1}, {reg_c, sizeof(reg_c)}};
	rtalloc_heap_t *h = rtalloc_heap_create_in(NULL, r, 3, RTALLOC_HEAP_PRIO);
	assert_non_null(h);
	struct rtalloc_heap_info in = info_of(h);
	assert_string_equal(in.name, "");
	static void *b[1024];
	size_t n = fill_heap(h, 4096, b, 1024);
	assert_int_equal(n * 4096, in.size);
	bool seen[3] = {false, false, false};
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 3; k++)
			if ((char *)b[i] >= (char *)r[k].base && (char *)b[i] + 4096 <= (char *)r[k].base + r[k].size)
				seen[k] = true;
		size_t off = rtalloc_heap_offset(h, b[i]);
		assert_true(off != RTALLOC_HEAP_BAD_OFFSET);
		assert_ptr_equal(rtalloc_heap_ptr(h, off), b[i]);
		memset(b[i], (int)i, 4096);
	}
	assert_true(seen[0] && seen[1] && seen[2]);
	assert_int_equal(rtalloc_heap_offset(h, gap1), RTALLOC_HEAP_BAD_OFFSET);
	assert_null(rtalloc_heap_ptr(h, sizeof(reg_a) + sizeof(reg_b) + sizeof(reg_c)));
	in = info_of(h);
	assert_int_equal(in.free_bytes, 0);
	assert_int_equal(in.min_free_bytes, 0);
	assert_int_equal(in.largest_free, 0);
	assert_heap_sound(h);
	for (size_t i = 0; i < n; i++)
		rtalloc_free(b[i]);
	in = info_of(h);
	assert_int_equal(in.free_bytes, in.size);
	assert_int_equal(in.min_free_bytes, 0);
	assert_heap_sound(h);
	/* overlapping regions, too many, SHARED over caller memory */
	assert_null(rtalloc_heap_create_in(NULL, (struct rtalloc_region[]){{one, 65536}, {one + 4096, 65536}}, 2, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_create_in(NULL, r, 3, 0)); /* already a heap's */
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
	assert_null(rtalloc_heap_create_in("x", r, 9, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_create_in("x", r, 1, RTALLOC_HEAP_SHARED));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_create_in("x", (struct rtalloc_region[]){{one, 8192}}, 1, 0)); /* no room */
	assert_int_equal(errno, EINVAL);
}

static void exhaustion_and_recovery(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create("exhaust", 256 << 10, 0);
	assert_non_null(h);
	struct rtalloc_heap_info in = info_of(h);
	assert_int_equal(in.size, 256 << 10);
	assert_int_equal(in.largest_free, 256 << 10);
	static void *b[40000];
	/* mixed sizes until it is full */
	size_t n = 0;
	for (;; n++) {
		assert_true(n < 40000);
		b[n] = rtalloc_heap_alloc(h, (n % 7) * 300 + 16);
		if (!b[n])
			break;
	}
	assert_int_equal(errno, ENOMEM);
	assert_null(rtalloc_heap_alloc(h, 1 << 20));
	assert_int_equal(errno, ENOMEM);
	in = info_of(h);
	size_t lowest = in.min_free_bytes;
	assert_true(lowest <= in.free_bytes);
	assert_true(lowest < 8 * 4096); /* free blocks of partial pages of 7 classes at most */
	assert_int_equal(in.live_blocks, n);
	assert_heap_sound(h);
	/* timed allocation with a past or zero timeout never waits */
	struct timespec zero = {0, 0};
	uint64_t t0 = now_ns();
	assert_null(rtalloc_heap_alloc_timed(h, 4096, &zero));
	assert_int_equal(errno, ETIMEDOUT);
	struct timespec past = in_ms(-5);
	assert_null(rtalloc_heap_alloc_timed(h, 4096, &past));
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(now_ns() - t0 < 100000000u);
	assert_null(rtalloc_heap_alloc_timed(h, 4096, &(struct timespec){0, 1000000000L}));
	assert_int_equal(errno, EINVAL);
	for (size_t i = 0; i < n; i += 2)
		rtalloc_heap_free(h, b[i]);
	for (size_t i = 1; i < n; i += 2)
		rtalloc_free(b[i]);
	in = info_of(h);
	assert_int_equal(in.free_bytes, in.size);
	assert_int_equal(in.live_blocks, 0);
	assert_int_equal(in.min_free_bytes, lowest); /* lowest ever stays */
	assert_int_equal(in.largest_free, 256 << 10);
	assert_heap_sound(h);
	void *big = rtalloc_heap_alloc(h, 256 << 10); /* all of it again: nothing leaked */
	assert_non_null(big);
	assert_int_equal(rtalloc_malloc_usable_size(big), 256 << 10);
	assert_null(rtalloc_realloc(big, 300 << 10)); /* the heap's, and it is full */
	assert_int_equal(errno, ENOMEM);
	rtalloc_free(big);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

static void bad_arguments(void **state)
{
	(void)state;
	errno = 0;
	assert_null(rtalloc_heap_create("bad/name", 65536, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_create("", 65536, RTALLOC_HEAP_SHARED));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_create(NULL, 65536, RTALLOC_HEAP_SHARED));
	assert_int_equal(errno, EINVAL);
	char longname[70];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	assert_null(rtalloc_heap_create(longname, 65536, 0));
	assert_int_equal(errno, EINVAL);
	longname[64] = '\0'; /* 64 characters: fine */
	rtalloc_heap_t *h = rtalloc_heap_create(longname, 65536, 0);
	assert_non_null(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
	assert_null(rtalloc_heap_create("ok", 0, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_create("ok", 65536, 0x100));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_create("ok", 65536, RTALLOC_HEAP_GROW | RTALLOC_HEAP_SHARED));
	assert_int_equal(errno, ENOTSUP);
	assert_null(rtalloc_heap_create_in("ok", &(struct rtalloc_region){one, sizeof(one)}, 1, RTALLOC_HEAP_GROW));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_alloc(NULL, 16));
	assert_int_equal(errno, EINVAL);
	assert_null(rtalloc_heap_alloc((rtalloc_heap_t *)one, 16));
	assert_int_equal(errno, EINVAL);
	h = rtalloc_heap_create(NULL, 65536, 0);
	assert_non_null(h);
	assert_null(rtalloc_heap_aligned_alloc(h, 24, 16));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rtalloc_heap_inquire(h, NULL), EINVAL);
	assert_int_equal(rtalloc_heap_inquire(NULL, &(struct rtalloc_heap_info){0}), EINVAL);
	assert_int_equal(rtalloc_heap_unbind(h), EINVAL); /* not shared */
	assert_null(rtalloc_heap_bind("no-such-heap-here", NULL));
	assert_int_equal(errno, ENOENT);
	struct timespec t = in_ms(30);
	uint64_t t0 = now_ns();
	assert_null(rtalloc_heap_bind("no-such-heap-here", &t));
	assert_int_equal(errno, ENOENT);
	assert_true(now_ns() - t0 >= 25000000u);
	assert_int_equal(rtalloc_thread_use_heap((rtalloc_heap_t *)one), EINVAL);
	rtalloc_heap_free(h, NULL);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
	assert_int_equal(rtalloc_heap_destroy(NULL), EINVAL);
}

static void invalid_free_aborts(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 65536, 0);
	assert_non_null(h);
	char *p = rtalloc_heap_alloc(h, 64);
	assert_non_null(p);
	for (int kind = 0; kind < 3; kind++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 2);
			if (kind == 0)
				rtalloc_free(p + 16); /* not a block start */
			if (kind == 1) {
				rtalloc_free(p);
				rtalloc_free(p); /* double free */
			}
			if (kind == 2)
				rtalloc_heap_free(h, (char *)rtalloc_malloc(32)); /* not this heap's */
			_exit(0);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	}
	rtalloc_free(p);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* Run fn in a child with stderr closed; its end: exit status, or 128 + signal. */
static int in_child(void (*fn)(rtalloc_heap_t *), rtalloc_heap_t *h)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		fn(h);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* A program copies bytes that once were a freed heap block (a stale buffer)
 * into a live one: the copy carries the free block's stamp, which is bound
 * to the block it was written for, so freeing the live block is no double
 * free (the stamp was the heap's one key before: it aborted). */
static void copy_stale_then_free(rtalloc_heap_t *h)
{
	uint64_t *a = rtalloc_heap_alloc(h, 64), *b = rtalloc_heap_alloc(h, 64);
	if (!a || !b)
		_exit(2);
	rtalloc_heap_free(h, a);
	uint64_t stale[2];
	memcpy(stale, a, sizeof(stale)); /* what a freed block holds */
	memcpy(b, stale, sizeof(stale));
	rtalloc_heap_free(h, b);
	_exit(rt_heap_check(h) == NULL ? 0 : 3);
}

/* A use after free rewrites a free block's link to a live block and copies
 * a free block's stamp into it: the heap must abort, never hand the live
 * block out a second time (it did while links were plain offsets and the
 * stamp one key). */
static void poison_link(rtalloc_heap_t *h)
{
	uint64_t *a = rtalloc_heap_alloc(h, 64), *b = rtalloc_heap_alloc(h, 64), *c = rtalloc_heap_alloc(h, 64);
	if (!a || !b || !c || (uintptr_t)a >> 12 != (uintptr_t)c >> 12)
		_exit(2);
	rtalloc_heap_free(h, a);
	rtalloc_heap_free(h, b); /* the page's list: b, then a */
	b[0] = ((uintptr_t)c & 4095) + 1; /* the link: c's offset in its page, + 1 */
	c[1] = a[1];                      /* a free block's stamp */
	void *x = rtalloc_heap_alloc(h, 64), *y = rtalloc_heap_alloc(h, 64);
	_exit(x == (void *)c || y == (void *)c ? 4 : 0);
}

static void stamps_bound_to_blocks(void **state)
{
	(void)state;
	rtalloc_heap_t *h = rtalloc_heap_create(NULL, 65536, 0);
	assert_non_null(h);
	assert_int_equal(in_child(copy_stale_then_free, h), 0);
	int e = in_child(poison_link, h);
	if (e != 128 + SIGABRT)
		fail_msg("a poisoned link: the child ended with %d (4: the live block was handed out again)", e);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* Random sizes and frees over a heap of three regions; contents and every
 * invariant checked along the way. */
static void random_mix(void **state)
{
	(void)state;
	static _Alignas(4096) char m1[192 << 10], m2[100000], m3[64 << 10];
	struct rtalloc_region r[3] = {{m1, sizeof(m1)}, {m2, sizeof(m2)}, {m3 + 100, sizeof(m3) - 100}};
	rtalloc_heap_t *h = rtalloc_heap_create_in("mix", r, 3, 0);
	assert_non_null(h);
	enum { N = 512 };
	static unsigned char *blk[N];
	static size_t len[N];
	uint64_t x = 88172645463325252ULL;
	size_t live = 0;
	for (int op = 0; op < 40000; op++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned k = (unsigned)(x % N);
		if (blk[k]) {
			for (size_t i = 0; i < len[k]; i += 61)
				assert_int_equal(blk[k][i], (unsigned char)(k + i));
			if (op % 3 == 0) {
				size_t n = (size_t)(x >> 20) % 9000 + 1;
				unsigned char *q = rtalloc_realloc(blk[k], n);
				if (q) {
					blk[k] = q;
					if (n > len[k])
						for (size_t i = 0; i < n; i++)
							q[i] = (unsigned char)(k + i);
					len[k] = n;
				}
				continue;
			}
			rtalloc_heap_free(h, blk[k]);
			blk[k] = NULL;
			live--;
		} else {
			size_t n = (x >> 32) % 8 ? (size_t)(x >> 40) % 1500 + 1 : (size_t)(x >> 40) % 40000 + 1;
			blk[k] = rtalloc_heap_alloc(h, n);
			if (!blk[k]) {
				assert_int_equal(errno, ENOMEM);
				continue;
			}
			assert_true(rtalloc_malloc_usable_size(blk[k]) >= n);
			len[k] = n;
			for (size_t i = 0; i < n; i++)
				blk[k][i] = (unsigned char)(k + i);
			live++;
		}
		if (op % 5000 == 0) {
			assert_heap_sound(h);
			assert_int_equal(info_of(h).live_blocks, live);
		}
	}
	for (unsigned k = 0; k < N; k++)
		rtalloc_free(blk[k]);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

/* RTALLOC_HEAP_GROW: a full heap adds regions of its first size, up to
 * RTALLOC_HEAP_REGIONS; blocks of every region work with the heap's calls and
 * with plain free; a request no region could hold does not grow it. */
static void grows_when_created_to(void **state)
{
	(void)state;
	enum { STEP = 64 * 1024, BLOCK = 4096, PER = STEP / BLOCK };
	rtalloc_heap_t *h = rtalloc_heap_create("grows", STEP, RTALLOC_HEAP_GROW);
	assert_non_null(h);
	assert_int_equal(info_of(h).size, STEP);
	void *blk[RTALLOC_HEAP_REGIONS * PER + 1];
	size_t n = fill_heap(h, BLOCK, blk, ARRAY_LEN(blk));
	assert_int_equal(n, RTALLOC_HEAP_REGIONS * PER);
	struct rtalloc_heap_info in = info_of(h);
	assert_int_equal(in.size, RTALLOC_HEAP_REGIONS * STEP);
	assert_int_equal(in.free_bytes, 0);
	assert_int_equal(in.min_free_bytes, 0);
	assert_int_equal(in.live_blocks, n);
	assert_heap_sound(h);
	for (size_t i = 0; i < n; i++) {
		memset(blk[i], (int)i, BLOCK);
		size_t off = rtalloc_heap_offset(h, blk[i]);
		assert_true(off != RTALLOC_HEAP_BAD_OFFSET);
		assert_ptr_equal(rtalloc_heap_ptr(h, off), blk[i]);
		assert_int_equal(rtalloc_malloc_usable_size(blk[i]), BLOCK);
	}
	for (size_t i = 0; i < n; i++) { /* half with free(), half with the heap's call */
		assert_int_equal(((unsigned char *)blk[i])[BLOCK - 1], (unsigned char)i);
		if (i % 2)
			rtalloc_free(blk[i]);
		else
			rtalloc_heap_free(h, blk[i]);
	}
	assert_heap_whole(h);
	/* small blocks in the grown regions' pages: their page indices are
	 * beyond the first region's */
	static void *small[RTALLOC_HEAP_REGIONS * PER * 4 + 1];
	size_t ns = fill_heap(h, 1000, small, ARRAY_LEN(small));
	assert_int_equal(ns, RTALLOC_HEAP_REGIONS * PER * 4);
	for (size_t i = 0; i < ns; i += 2)
		rtalloc_free(small[i]); /* every page partial */
	assert_heap_sound(h);
	for (size_t i = 1; i < ns; i += 2)
		rtalloc_heap_free(h, small[i]);
	assert_heap_whole(h);
	/* larger than any region can hold: ENOMEM, no growth */
	errno = 0;
	assert_null(rtalloc_heap_alloc(h, 2 * STEP));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(info_of(h).size, RTALLOC_HEAP_REGIONS * STEP);
	assert_int_equal(rtalloc_heap_destroy(h), 0);

	/* a heap that never filled up never grew */
	h = rtalloc_heap_create(NULL, STEP, RTALLOC_HEAP_GROW);
	assert_non_null(h);
	void *p = rtalloc_heap_alloc(h, STEP / 2);
	assert_non_null(p);
	assert_int_equal(info_of(h).size, STEP);
	rtalloc_free(p);
	assert_heap_whole(h);
	assert_int_equal(rtalloc_heap_destroy(h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(static_array),
		cmocka_unit_test(several_regions),
		cmocka_unit_test(exhaustion_and_recovery),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(invalid_free_aborts),
		cmocka_unit_test(stamps_bound_to_blocks),
		cmocka_unit_test(random_mix),
		cmocka_unit_test(grows_when_created_to),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
