/* SPDX-License-Identifier: MIT */
/*
 * test_api.c - the malloc family's semantics through the rtalloc_* names
 * (lib/alloc.c), glibc's documented behaviour being the contract, and the
 * fatal errors (invalid and double frees), each checked in a forked child
 * whose stderr is captured.
 *
 * The process initialises once (group setup) on a small OS pool.
 */
#include "unit.h"
#include "stats.h"

#define MiB ((size_t)1 << 20)
#define PTRDIFF_LIMIT ((size_t)PTRDIFF_MAX)

static int group_setup(void **state)
{
	UNUSED_STATE(state);
	return unit_init(4 * MiB, 32 * MiB, RTALLOC_STACK_PREFAULT_NONE, RTALLOC_EXHAUST_UNSET);
}

static int group_teardown(void **state)
{
	UNUSED_STATE(state);
	return rtalloc_check() == 0 ? 0 : -1;
}

static void assert_sound(void) { assert_int_equal(rtalloc_check(), 0); }

/* Expect NULL with errno ENOMEM from an expression. */
#define ASSERT_ENOMEM(expr)                                                              \
	do {                                                                             \
		errno = 0;                                                               \
		void *r_ = (expr);                                                       \
		if (r_ != NULL)                                                          \
			fail_msg("%s returned %p, want NULL", #expr, r_);                \
		if (errno != ENOMEM)                                                     \
			fail_msg("%s: errno %d, want ENOMEM", #expr, errno);             \
	} while (0)

#define ASSERT_EINVAL(expr)                                                              \
	do {                                                                             \
		errno = 0;                                                               \
		void *r_ = (expr);                                                       \
		if (r_ != NULL)                                                          \
			fail_msg("%s returned %p, want NULL", #expr, r_);                \
		if (errno != EINVAL)                                                     \
			fail_msg("%s: errno %d, want EINVAL", #expr, errno);             \
	} while (0)

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- malloc / free --------------------------------------------------------- */

static void malloc_zero_unique(void **state)
{
	UNUSED_STATE(state);
	enum { N = 1000 };
	static void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = rtalloc_malloc(0);
		assert_non_null(p[i]);
		assert_true(rtalloc_malloc_usable_size(p[i]) >= 1);
		*(char *)p[i] = (char)i; /* usable */
	}
	qsort(p, N, sizeof(p[0]), cmp_ptr);
	for (int i = 1; i < N; i++)
		assert_ptr_not_equal(p[i - 1], p[i]);
	for (int i = 0; i < N; i++)
		rtalloc_free(p[i]);
	assert_sound();
}

static void free_null(void **state)
{
	UNUSED_STATE(state);
	errno = EDOM;
	rtalloc_free(NULL);
	assert_int_equal(errno, EDOM);
	rtalloc_free_sized(NULL, 0);
	rtalloc_free_sized(NULL, 100);
	rtalloc_free_aligned_sized(NULL, 64, 100);
	assert_int_equal(errno, EDOM);
	assert_int_equal(rtalloc_malloc_usable_size(NULL), 0);
}

static void free_preserves_errno(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {1, 16, 100, 2048, 4096, 20000, 32768, 40000, 300000};
	enum { N = 200 }; /* enough to flush every class's cache */
	static void *p[N];
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		size_t n = sizes[s] > 32768 ? 4 : N;
		for (size_t i = 0; i < n; i++) {
			p[i] = rtalloc_malloc(sizes[s]);
			assert_non_null(p[i]);
		}
		for (size_t i = 0; i < n; i++) {
			errno = 4321;
			rtalloc_free(p[i]);
			if (errno != 4321)
				fail_msg("free of a %zu-byte block (#%zu) changed errno to %d", sizes[s], i, errno);
		}
	}
	/* A pointer librtalloc did not hand out: ignored (counted), errno kept. */
	int local;
	struct rt_totals t0, t1;
	rt_stats_totals(&t0);
	errno = 4321;
	rtalloc_free(&local);
	assert_int_equal(errno, 4321);
	rt_stats_totals(&t1);
	assert_int_equal(t1.foreign_frees, t0.foreign_frees + 1);
	assert_int_equal(rtalloc_malloc_usable_size(&local), 0);
	assert_sound();
}

/* Blocks of the usual sizes are writable over their whole usable size. */
static void usable_size(void **state)
{
	UNUSED_STATE(state);
	for (size_t n = 1; n < 70000; n = n < 64 ? n + 1 : n * 5 / 4) {
		char *p = rtalloc_malloc(n);
		assert_non_null(p);
		size_t u = rtalloc_malloc_usable_size(p);
		if (u < n)
			fail_msg("malloc_usable_size(malloc(%zu)) = %zu", n, u);
		assert_true(u <= (n <= 16 ? 16 : 2 * n + 2 * RT_PAGE_SIZE)); /* power-of-two rounding */
		memset(p, 0xcd, u);
		rtalloc_free(p);
	}
	assert_sound();
}

/* ---- calloc ------------------------------------------------------------------ */

static void calloc_zeroes(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {1, 15, 16, 17, 100, 1000, 2048, 4000, 4096, 10000, 32768, 40000, 200000};
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		size_t n = sizes[s];
		void *dirty[8];
		for (int i = 0; i < 8; i++) {
			dirty[i] = rtalloc_malloc(n);
			assert_non_null(dirty[i]);
			memset(dirty[i], 0xa5, rtalloc_malloc_usable_size(dirty[i]));
		}
		for (int i = 0; i < 8; i++)
			rtalloc_free(dirty[i]);
		/* The same blocks come back (most recently freed first). */
		for (int i = 0; i < 8; i++) {
			unsigned char *p = rtalloc_calloc(1, n);
			assert_non_null(p);
			for (size_t j = 0; j < n; j++)
				if (p[j])
					fail_msg("calloc(1, %zu): byte %zu is 0x%02x", n, j, p[j]);
			dirty[i] = p;
		}
		for (int i = 0; i < 8; i++)
			rtalloc_free(dirty[i]);
	}
	/* nmemb x size, both sides. */
	unsigned *q = rtalloc_calloc(1000, sizeof(unsigned));
	assert_non_null(q);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(q[i], 0);
	rtalloc_free(q);
	void *z = rtalloc_calloc(0, 5);
	assert_non_null(z);
	rtalloc_free(z);
	z = rtalloc_calloc(5, 0);
	assert_non_null(z);
	rtalloc_free(z);
	assert_sound();
}

static void calloc_overflow(void **state)
{
	UNUSED_STATE(state);
	ASSERT_ENOMEM(rtalloc_calloc(SIZE_MAX / 2 + 1, 2));
	ASSERT_ENOMEM(rtalloc_calloc(2, SIZE_MAX / 2 + 1));
	ASSERT_ENOMEM(rtalloc_calloc(SIZE_MAX, SIZE_MAX));
	ASSERT_ENOMEM(rtalloc_calloc((size_t)1 << 32, (size_t)1 << 32));
	ASSERT_ENOMEM(rtalloc_calloc(SIZE_MAX / 3 + 1, 3));
	/* No overflow, but too large. */
	ASSERT_ENOMEM(rtalloc_calloc(1, PTRDIFF_LIMIT + 1));
	ASSERT_ENOMEM(rtalloc_calloc((size_t)1 << 31, (size_t)1 << 31));
}

/* ---- realloc ---------------------------------------------------------------- */

static void realloc_null_is_malloc(void **state)
{
	UNUSED_STATE(state);
	void *p = rtalloc_realloc(NULL, 100);
	assert_non_null(p);
	assert_true(rtalloc_malloc_usable_size(p) >= 100);
	rtalloc_free(p);
	p = rtalloc_realloc(NULL, 0);
	assert_non_null(p);
	rtalloc_free(p);
	p = rtalloc_realloc(NULL, 100000);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % RT_PAGE_SIZE, 0);
	rtalloc_free(p);
	ASSERT_ENOMEM(rtalloc_realloc(NULL, SIZE_MAX));
	assert_sound();
}

static void realloc_zero_frees(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {100, 8192, 100000};
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		void *p = rtalloc_malloc(sizes[s]);
		assert_non_null(p);
		uint64_t frees = my_counts().frees;
		errno = 0;
		assert_null(rtalloc_realloc(p, 0));
		assert_int_equal(errno, 0); /* not a failure */
		assert_int_equal(my_counts().frees, frees + 1);
	}
	/* reallocarray with a zero count is realloc(p, 0) too. */
	void *p = rtalloc_malloc(64);
	assert_non_null(p);
	uint64_t frees = my_counts().frees;
	assert_null(rtalloc_reallocarray(p, 0, 64));
	assert_int_equal(my_counts().frees, frees + 1);
	assert_sound();
}

/* Every allocation and free counts once, with its usable size in bytes, on the
 * fast path (cached classes) and on the slow paths (first use, huge blocks);
 * rtalloc_stats() sees the calling thread's counts at once. */
static void counters_count_blocks_and_bytes(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {1, 16, 17, 100, 2048, 4096, 5000, 40000, 100000, 1u << 20};
	for (int round = 0; round < 2; round++) { /* the first round also takes the slow paths */
		for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
			struct rtalloc_stats s0 = {.size = sizeof(s0)}, s1 = {.size = sizeof(s1)};
			struct rt_tcounters c0 = my_counts();
			assert_int_equal(rtalloc_stats(&s0), 0);
			void *p = rtalloc_malloc(sizes[i]);
			assert_non_null(p);
			size_t usable = rtalloc_malloc_usable_size(p);
			struct rt_tcounters c1 = my_counts();
			assert_int_equal(c1.mallocs - c0.mallocs, 1);
			assert_int_equal(c1.bytes_allocated - c0.bytes_allocated, usable);
			rtalloc_free(p);
			struct rt_tcounters c2 = my_counts();
			assert_int_equal(c2.frees - c1.frees, 1);
			assert_int_equal(c2.bytes_freed - c1.bytes_freed, usable);
			assert_int_equal(rtalloc_stats(&s1), 0);
			assert_int_equal(s1.version, RTALLOC_STATS_VERSION);
			assert_int_equal(s1.size, sizeof(s1));
			assert_int_equal(s1.mallocs - s0.mallocs, 1);
			assert_int_equal(s1.frees - s0.frees, 1);
			assert_int_equal(s1.bytes_allocated - s0.bytes_allocated, usable);
			assert_int_equal(s1.bytes_freed - s0.bytes_freed, usable);
		}
	}
	/* A caller built against version 1 gets exactly its struct back. */
	struct rtalloc_stats v1;
	memset(&v1, 0xa5, sizeof(v1));
	v1.size = (uint32_t)offsetof(struct rtalloc_stats, bytes_allocated);
	assert_int_equal(rtalloc_stats(&v1), 0);
	assert_int_equal(v1.size, offsetof(struct rtalloc_stats, bytes_allocated));
	assert_int_equal(v1.bytes_allocated, 0xa5a5a5a5a5a5a5a5ULL);
	assert_sound();
}

/* "Faults since init" never wraps: a reader that races a later rtalloc_init()
 * moving the fault baseline past the count it read sees 0, not 2^64 - n. */
static void faults_since_init_never_wrap(void **state)
{
	UNUSED_STATE(state);
	struct rt_stats_region *r = rt_stats;
	uint64_t saved_min = r->init_minflt, saved_maj = r->init_majflt;
	r->init_minflt = r->init_majflt = UINT64_MAX / 2; /* a baseline ahead of any count */
	struct rtalloc_stats s = {.size = sizeof(s)};
	assert_int_equal(rtalloc_stats(&s), 0);
	r->init_minflt = saved_min;
	r->init_majflt = saved_maj;
	assert_int_equal(s.minflt_since_init, 0);
	assert_int_equal(s.majflt_since_init, 0);
}

/* The thread's slot (what rtalloc-stat reads) trails the exact counts by what
 * the slow paths have not folded yet, never more, and matches them after a
 * real-time section ends. */
static void slot_counts_trail_then_match(void **state)
{
	UNUSED_STATE(state);
	void *p[600];
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < ARRAY_LEN(p); i++)
			p[i] = rtalloc_malloc((size_t)16 << (i % 12));
		for (size_t i = 0; i < ARRAY_LEN(p); i++)
			rtalloc_free(p[i]);
		const struct rt_stats_slot *slot = rt_tc.slot;
		assert_non_null(slot);
		struct rt_tcounters exact = my_counts();
		uint64_t folded = 0;
		for (unsigned c = 1; c <= RT_NCLASS; c++) {
			assert_true(rt_tc.bin[c].folded_allocs <= rt_tc.bin[c].allocs);
			folded += rt_tc.bin[c].folded_allocs;
		}
		assert_int_equal(rt_tc.fold.mallocs, folded);
		assert_true(slot->c.mallocs <= exact.mallocs && slot->c.bytes_freed <= exact.bytes_freed);
		assert_int_equal(slot->c.refills, exact.refills); /* slow-path counts: exact */
		rtalloc_rt_begin();
		rtalloc_rt_end();
		exact = my_counts();
		assert_memory_equal(&slot->c, &exact, sizeof(exact));
	}
}

static void realloc_same_class_in_place(void **state)
{
	UNUSED_STATE(state);
	for (unsigned c = 1; c <= RT_NCLASS; c++) {
		size_t size = rt_class_size(c), lo = c == 1 ? 1 : size / 2 + 1;
		char *p = rtalloc_malloc(lo);
		assert_non_null(p);
		fill_pattern(p, lo, c);
		char *q = rtalloc_realloc(p, size);
		if (q != p)
			fail_msg("realloc(%zu -> %zu) moved the block (%p -> %p)", lo, size, (void *)p, (void *)q);
		assert_int_equal(check_pattern(q, lo, c), lo);
		q = rtalloc_realloc(p, lo);
		assert_ptr_equal(q, p);
		q = rtalloc_realloc(p, (lo + size) / 2);
		assert_ptr_equal(q, p);
		assert_int_equal(check_pattern(q, lo, c), lo);
		rtalloc_free(q);
	}
	/* Huge blocks: same buddy order, same place. */
	char *h = rtalloc_malloc(40000); /* 64 KiB block */
	assert_non_null(h);
	fill_pattern(h, 40000, 5);
	assert_ptr_equal(rtalloc_realloc(h, 65536), h);
	assert_ptr_equal(rtalloc_realloc(h, 32769), h);
	assert_ptr_equal(rtalloc_realloc(h, 50000), h);
	assert_int_equal(check_pattern(h, 32769, 5), 32769);
	rtalloc_free(h);
	assert_sound();
}

static void realloc_moves_and_copies(void **state)
{
	UNUSED_STATE(state);
	static const size_t chain[] = {10, 100, 1000, 5000, 30000, 50000, 300000, 70000, 3000, 20, 1};
	size_t have = chain[0];
	char *p = rtalloc_malloc(have);
	assert_non_null(p);
	fill_pattern(p, have, 1);
	for (size_t i = 1; i < ARRAY_LEN(chain); i++) {
		size_t n = chain[i];
		char *q = rtalloc_realloc(p, n);
		assert_non_null(q);
		assert_true(rtalloc_malloc_usable_size(q) >= n);
		size_t keep = have < n ? have : n;
		size_t bad = check_pattern(q, keep, i);
		if (bad != keep)
			fail_msg("realloc %zu -> %zu: byte %zu not preserved", have, n, bad);
		if (n > RT_CACHE_MAX)
			assert_int_equal((uintptr_t)q % (RT_PAGE_SIZE << rt_order_of(n)), 0);
		else
			assert_int_equal((uintptr_t)q % class_size_for(n), 0);
		fill_pattern(q, n, i + 1);
		p = q;
		have = n;
	}
	rtalloc_free(p);
	assert_sound();
}

static void realloc_failure_keeps_block(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {1000, 8192, 100000};
	static const size_t too_big[] = {(size_t)1 << 40, PTRDIFF_LIMIT, PTRDIFF_LIMIT + 1, SIZE_MAX};
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		char *p = rtalloc_malloc(sizes[s]);
		assert_non_null(p);
		size_t u = rtalloc_malloc_usable_size(p);
		fill_pattern(p, sizes[s], 42);
		for (size_t b = 0; b < ARRAY_LEN(too_big); b++) {
			ASSERT_ENOMEM(rtalloc_realloc(p, too_big[b]));
			assert_int_equal(rtalloc_malloc_usable_size(p), u);
			assert_int_equal(check_pattern(p, sizes[s], 42), sizes[s]);
		}
		ASSERT_ENOMEM(rtalloc_reallocarray(p, SIZE_MAX / 2, 3));
		ASSERT_ENOMEM(rtalloc_reallocarray(p, 3, SIZE_MAX / 2));
		ASSERT_ENOMEM(rtalloc_reallocarray(p, (size_t)1 << 33, (size_t)1 << 33));
		assert_int_equal(check_pattern(p, sizes[s], 42), sizes[s]);
		/* Still a live block: it can grow afterwards. */
		char *q = rtalloc_realloc(p, sizes[s] * 2);
		assert_non_null(q);
		assert_int_equal(check_pattern(q, sizes[s], 42), sizes[s]);
		rtalloc_free(q);
	}
	assert_sound();
}

static void reallocarray_works(void **state)
{
	UNUSED_STATE(state);
	int *a = rtalloc_reallocarray(NULL, 10, sizeof(int));
	assert_non_null(a);
	for (int i = 0; i < 10; i++)
		a[i] = i * 7;
	a = rtalloc_reallocarray(a, 5000, sizeof(int));
	assert_non_null(a);
	assert_true(rtalloc_malloc_usable_size(a) >= 5000 * sizeof(int));
	for (int i = 0; i < 10; i++)
		assert_int_equal(a[i], i * 7);
	rtalloc_free(a);
	assert_sound();
}

static void too_large_requests(void **state)
{
	UNUSED_STATE(state);
	static const size_t big[] = {PTRDIFF_LIMIT + 1, SIZE_MAX, SIZE_MAX - 4096, PTRDIFF_LIMIT,
				     (size_t)1 << 40, (size_t)1 << 62};
	for (size_t i = 0; i < ARRAY_LEN(big); i++) {
		ASSERT_ENOMEM(rtalloc_malloc(big[i]));
		ASSERT_ENOMEM(rtalloc_calloc(1, big[i]));
		ASSERT_ENOMEM(rtalloc_realloc(NULL, big[i]));
		ASSERT_ENOMEM(rtalloc_aligned_alloc(64, big[i]));
		ASSERT_ENOMEM(rtalloc_memalign(4096, big[i]));
		ASSERT_ENOMEM(rtalloc_valloc(big[i]));
		ASSERT_ENOMEM(rtalloc_pvalloc(big[i]));
		void *m = (void *)0x1;
		errno = 0;
		assert_int_equal(rtalloc_posix_memalign(&m, 64, big[i]), ENOMEM);
		assert_ptr_equal(m, (void *)0x1);
	}
	assert_sound();
}

/* ---- posix_memalign, aligned_alloc, memalign, valloc, pvalloc -------------- */

static void posix_memalign_einval(void **state)
{
	UNUSED_STATE(state);
	static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 100, 4095, 4097, (size_t)3 << 20, SIZE_MAX};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		void *m = (void *)0x1;
		errno = 1234;
		int rc = rtalloc_posix_memalign(&m, bad[i], 64);
		if (rc != EINVAL)
			fail_msg("posix_memalign(align %zu) = %d, want EINVAL", bad[i], rc);
		assert_ptr_equal(m, (void *)0x1); /* untouched */
		assert_int_equal(errno, 1234);    /* reports through its result */
	}
}

static void posix_memalign_enomem(void **state)
{
	UNUSED_STATE(state);
	void *m = (void *)0x1;
	errno = 1234;
	assert_int_equal(rtalloc_posix_memalign(&m, 64, SIZE_MAX), ENOMEM);
	assert_ptr_equal(m, (void *)0x1);
	assert_int_equal(errno, ENOMEM); /* as glibc: a failure also sets errno */
	errno = 1234;
	assert_int_equal(rtalloc_posix_memalign(&m, (size_t)1 << 41, 1), ENOMEM);
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(rtalloc_posix_memalign(&m, SIZE_MAX / 2 + 1, 1), ENOMEM);
	errno = 1234;
	assert_int_equal(rtalloc_posix_memalign(&m, (size_t)1 << 30, 1), ENOMEM); /* beyond pool_max */
	assert_ptr_equal(m, (void *)0x1);
	assert_int_equal(errno, ENOMEM);
	/* A success leaves errno alone. */
	errno = 1234;
	assert_int_equal(rtalloc_posix_memalign(&m, 64, 100), 0);
	assert_int_equal(errno, 1234);
	rtalloc_free(m);
}

/* Allocate with an alignment, check it, write it, return it. */
typedef void *(*aligned_fn)(size_t align, size_t size);

static void *via_posix_memalign(size_t align, size_t size)
{
	void *p = NULL;
	int rc = rtalloc_posix_memalign(&p, align, size);
	if (rc != 0)
		fail_msg("posix_memalign(%zu, %zu) = %d", align, size, rc);
	return p;
}

static void check_aligned(aligned_fn fn, const char *name, size_t align, size_t size, bool sized_free)
{
	char *p = fn(align, size);
	if (!p)
		fail_msg("%s(%zu, %zu) returned NULL (errno %d)", name, align, size, errno);
	if ((uintptr_t)p & (align - 1))
		fail_msg("%s(%zu, %zu) = %p: misaligned", name, align, size, (void *)p);
	size_t u = rtalloc_malloc_usable_size(p);
	if (u < size)
		fail_msg("%s(%zu, %zu): usable size %zu", name, align, size, u);
	if (size)
		memset(p, 0x3c, size);
	if (sized_free)
		rtalloc_free_aligned_sized(p, align, size);
	else
		rtalloc_free(p);
}

static void posix_memalign_every_alignment(void **state)
{
	UNUSED_STATE(state);
	for (size_t a = sizeof(void *); a <= MiB; a <<= 1) {
		const size_t sizes[] = {0, 1, a - 1, a, a + 1, a + a / 2, 3 * (size_t)4096 + 5};
		for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
			check_aligned(via_posix_memalign, "posix_memalign", a, sizes[i], i % 2);
	}
	assert_sound();
}

static void aligned_alloc_rules(void **state)
{
	UNUSED_STATE(state);
	static const size_t bad[] = {0, 3, 6, 12, 24, 1000, 4097, SIZE_MAX};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ASSERT_EINVAL(rtalloc_aligned_alloc(bad[i], 64));
	/* Any power of two, including those below sizeof(void *), and a size
	 * that is not a multiple of the alignment. */
	for (size_t a = 1; a <= MiB; a <<= 1) {
		const size_t sizes[] = {1, 3, a + 5, a / 2 + 1, 10000};
		for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
			check_aligned(rtalloc_aligned_alloc, "aligned_alloc", a, sizes[i], i & 1);
	}
	/* Too much alignment: no such block. */
	ASSERT_ENOMEM(rtalloc_aligned_alloc((size_t)1 << 41, 1));
	ASSERT_ENOMEM(rtalloc_aligned_alloc(SIZE_MAX / 2 + 1, 1));
	assert_sound();
}

static void memalign_rules(void **state)
{
	UNUSED_STATE(state);
	/* Powers of two as they are. */
	for (size_t a = 1; a <= MiB; a <<= 1)
		check_aligned(rtalloc_memalign, "memalign", a, 100, false);
	/* Others are rounded up to the next power of two. */
	static const struct {
		size_t ask, got;
	} round[] = {{0, 1}, {3, 4}, {5, 8}, {24, 32}, {48, 64}, {1000, 1024}, {4097, 8192}, {100000, 131072}};
	for (size_t i = 0; i < ARRAY_LEN(round); i++) {
		for (int rep = 0; rep < 16; rep++) { /* one block could be aligned by chance */
			char *p = rtalloc_memalign(round[i].ask, 10);
			assert_non_null(p);
			if ((uintptr_t)p & (round[i].got - 1))
				fail_msg("memalign(%zu) = %p: not aligned to %zu", round[i].ask, (void *)p,
					 round[i].got);
			rtalloc_free(p);
		}
	}
	ASSERT_EINVAL(rtalloc_memalign(SIZE_MAX / 2 + 2, 1));
	ASSERT_EINVAL(rtalloc_memalign(SIZE_MAX, 1));
	ASSERT_ENOMEM(rtalloc_memalign(SIZE_MAX / 2 + 1, 1)); /* the largest power of two: no block */
	assert_sound();
}

static void valloc_pvalloc(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 65536, 100000};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		size_t n = sizes[i];
		char *v = rtalloc_valloc(n);
		assert_non_null(v);
		assert_int_equal((uintptr_t)v % RT_PAGE_SIZE, 0);
		assert_true(rtalloc_malloc_usable_size(v) >= n);
		memset(v, 1, n);
		rtalloc_free(v);

		char *pv = rtalloc_pvalloc(n);
		assert_non_null(pv);
		assert_int_equal((uintptr_t)pv % RT_PAGE_SIZE, 0);
		size_t rounded = (n + RT_PAGE_SIZE - 1) & ~(RT_PAGE_SIZE - 1);
		if (!rounded)
			rounded = RT_PAGE_SIZE;
		size_t u = rtalloc_malloc_usable_size(pv);
		if (u < rounded)
			fail_msg("pvalloc(%zu): usable %zu, want at least %zu (a whole page)", n, u, rounded);
		memset(pv, 2, rounded); /* the rounded size is usable */
		rtalloc_free(pv);
	}
	ASSERT_ENOMEM(rtalloc_pvalloc(SIZE_MAX));
	ASSERT_ENOMEM(rtalloc_pvalloc(SIZE_MAX - RT_PAGE_SIZE + 2));
	assert_sound();
}

/* ---- sized frees ------------------------------------------------------------ */

static void sized_frees_accept_correct_sizes(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {0, 1, 16, 17, 100, 2048, 3000, 4096, 30000, 32768, 40000, 100000};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		size_t n = sizes[i];
		void *p = rtalloc_malloc(n);
		assert_non_null(p);
		rtalloc_free_sized(p, n);
		p = rtalloc_malloc(n);
		assert_non_null(p);
		rtalloc_free_sized(p, rtalloc_malloc_usable_size(p)); /* the whole block */
		p = rtalloc_calloc(n ? n : 1, 3);
		assert_non_null(p);
		rtalloc_free_sized(p, (n ? n : 1) * 3);
		p = rtalloc_realloc(NULL, n);
		assert_non_null(p);
		rtalloc_free_sized(p, n);
		for (size_t a = 1; a <= 8192; a <<= 2) {
			void *q = rtalloc_aligned_alloc(a, n);
			assert_non_null(q);
			rtalloc_free_aligned_sized(q, a, n);
		}
		void *q = NULL;
		assert_int_equal(rtalloc_posix_memalign(&q, 256, n), 0);
		rtalloc_free_aligned_sized(q, 256, n);
		q = rtalloc_memalign(64, n);
		assert_non_null(q);
		rtalloc_free_aligned_sized(q, 64, n);
	}
	/* Pointers librtalloc did not hand out are ignored, as by free. */
	int local;
	rtalloc_free_sized(&local, sizeof(local));
	rtalloc_free_aligned_sized(&local, sizeof(int), sizeof(local));
	assert_sound();
}

/* ---- fatal errors, in children ------------------------------------------ */

enum op {
	OP_FREE,
	OP_REALLOC,
	OP_FREE_SIZED,
	OP_FREE_ALIGNED_SIZED,
	OP_USABLE_SIZE,
	OP_DOUBLE_FREE,
	OP_REALLOC_AFTER_FREE,
};

struct fatal_case {
	enum op op;
	void *ptr;     /* what is passed */
	void *block;   /* the block it belongs to (for OP_DOUBLE_FREE...) */
	size_t size;   /* size / alignment argument */
	size_t align;
};

static int child_fatal(void *arg)
{
	const struct fatal_case *fc = arg;
	switch (fc->op) {
	case OP_FREE:
		rtalloc_free(fc->ptr);
		break;
	case OP_REALLOC:
		rtalloc_realloc(fc->ptr, fc->size);
		break;
	case OP_FREE_SIZED:
		rtalloc_free_sized(fc->ptr, fc->size);
		break;
	case OP_FREE_ALIGNED_SIZED:
		rtalloc_free_aligned_sized(fc->ptr, fc->align, fc->size);
		break;
	case OP_USABLE_SIZE:
		rtalloc_malloc_usable_size(fc->ptr);
		break;
	case OP_DOUBLE_FREE:
		rtalloc_free(fc->ptr);
		rtalloc_free(fc->ptr);
		break;
	case OP_REALLOC_AFTER_FREE:
		rtalloc_free(fc->ptr);
		rtalloc_realloc(fc->ptr, fc->size);
		break;
	}
	return 0; /* not aborted: the test fails */
}

static void expect_fatal(struct fatal_case fc, const char *call, const char *what)
{
	char hex[32];
	struct child_result r;
	snprintf(hex, sizeof(hex), "%p", fc.ptr);
	run_child(child_fatal, &fc, &r);
	if (!r.signaled || r.signo != SIGABRT)
		fail_msg("%s on %p (%s): no abort (exit %d, signal %d), stderr \"%s\"", call, fc.ptr, what,
			 r.exited ? r.exit_code : -1, r.signaled ? r.signo : 0, r.out);
	if (!strstr(r.out, call) || !strstr(r.out, hex))
		fail_msg("%s on %p (%s): the message should name \"%s\" and %s: \"%s\"", call, fc.ptr, what,
			 call, hex, r.out);
	if (strncmp(r.out, "rtalloc: ", 9) != 0 || count_lines(r.out) != 1)
		fail_msg("%s (%s): want one line starting \"rtalloc: \", got \"%s\"", call, what, r.out);
}

static void invalid_free_aborts(void **state)
{
	UNUSED_STATE(state);
	char *s = rtalloc_malloc(64);
	char *t = rtalloc_malloc(16);
	char *m = rtalloc_malloc(8192);
	char *h = rtalloc_malloc(100000);
	assert_non_null(s);
	assert_non_null(t);
	assert_non_null(m);
	assert_non_null(h);
	expect_fatal((struct fatal_case){OP_FREE, s + 16, s, 0, 0}, "free()", "inside a small block");
	expect_fatal((struct fatal_case){OP_FREE, s + 1, s, 0, 0}, "free()", "unaligned, inside a small block");
	expect_fatal((struct fatal_case){OP_FREE, t + 8, t, 0, 0}, "free()", "inside a 16-byte block");
	expect_fatal((struct fatal_case){OP_FREE, m + 64, m, 0, 0}, "free()", "inside a medium block");
	expect_fatal((struct fatal_case){OP_FREE, m + 4096, m, 0, 0}, "free()", "second page of a medium block");
	expect_fatal((struct fatal_case){OP_FREE, h + 16, h, 0, 0}, "free()", "inside a huge block");
	expect_fatal((struct fatal_case){OP_FREE, h + 8192, h, 0, 0}, "free()", "a page inside a huge block");
	/* A block of a small page that was never handed out (past `carved`):
	 * fresh pages carry the free stamp in every block. */
	const struct rt_page *sp = &rt_g.pages[rt_page_index(s)];
	uint16_t carved = __atomic_load_n(&sp->carved, __ATOMIC_RELAXED);
	if (carved < RT_PAGE_SIZE) {
		char *uncarved = (char *)((uintptr_t)s & ~(RT_PAGE_SIZE - 1)) + carved;
		expect_fatal((struct fatal_case){OP_FREE, uncarved, NULL, 0, 0}, "free()",
			     "a block of its page never handed out");
		expect_fatal((struct fatal_case){OP_REALLOC, uncarved, NULL, 8, 0}, "realloc()",
			     "a block of its page never handed out");
	}
	/* A page of the pool that was never handed out. */
	const struct rt_buddy *b = &rt_g.arenas[0].buddy;
	uint32_t last = b->first + (b->committed - b->skew) - 1;
	char *never = (char *)rt_page_addr(last);
	if (rt_g.pages[last].state != RT_PS_USED && rt_g.pages[last].cls == 0)
		expect_fatal((struct fatal_case){OP_FREE, never, NULL, 0, 0}, "free()", "a free page of the pool");
	/* realloc and malloc_usable_size check the same way and name themselves. */
	expect_fatal((struct fatal_case){OP_REALLOC, s + 16, s, 100, 0}, "realloc()", "inside a small block");
	expect_fatal((struct fatal_case){OP_REALLOC, h + 16, h, 10, 0}, "realloc()", "inside a huge block");
	expect_fatal((struct fatal_case){OP_USABLE_SIZE, s + 16, s, 0, 0}, "malloc_usable_size()",
		     "inside a small block");
	expect_fatal((struct fatal_case){OP_FREE_SIZED, s + 16, s, 1, 0}, "free_sized()", "inside a small block");
	rtalloc_free(s);
	rtalloc_free(t);
	rtalloc_free(m);
	rtalloc_free(h);
	assert_sound();
}

static void double_free_aborts(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {16, 64, 2048, 4096, 8192, 32768, 100000};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		char *p = rtalloc_malloc(sizes[i]);
		assert_non_null(p);
		expect_fatal((struct fatal_case){OP_DOUBLE_FREE, p, p, 0, 0}, "free()", "double free");
		expect_fatal((struct fatal_case){OP_REALLOC_AFTER_FREE, p, p, 10, 0}, "realloc()",
			     "realloc after free");
		rtalloc_free(p);
	}
	/* A block freed long ago, its page since flushed to the arena. */
	enum { N = 300 };
	static void *v[N];
	for (int i = 0; i < N; i++)
		v[i] = rtalloc_malloc(32);
	for (int i = 0; i < N; i++)
		rtalloc_free(v[i]);
	for (int i = 0; i < N; i += 37)
		expect_fatal((struct fatal_case){OP_FREE, v[i], v[i], 0, 0}, "free()", "free of a flushed block");
	assert_sound();
}

static void free_sized_too_large_aborts(void **state)
{
	UNUSED_STATE(state);
	char *p = rtalloc_malloc(100); /* a 128-byte block */
	char *h = rtalloc_malloc(100000); /* a 128 KiB block */
	assert_non_null(p);
	assert_non_null(h);
	expect_fatal((struct fatal_case){OP_FREE_SIZED, p, p, 129, 0}, "free_sized()", "size > block");
	expect_fatal((struct fatal_case){OP_FREE_SIZED, p, p, 4096, 0}, "free_sized()", "size >> block");
	expect_fatal((struct fatal_case){OP_FREE_SIZED, p, p, SIZE_MAX, 0}, "free_sized()", "SIZE_MAX");
	expect_fatal((struct fatal_case){OP_FREE_SIZED, h, h, (128 << 10) + 1, 0}, "free_sized()",
		     "size > huge block");
	/* free_aligned_sized: size too large, or an alignment the block lacks. */
	expect_fatal((struct fatal_case){OP_FREE_ALIGNED_SIZED, p, p, 129, 16}, "free_aligned_sized()",
		     "size > block");
	char *q = NULL;
	for (int i = 0; i < 64 && !q; i++) { /* a 16-byte block not aligned to 4096 */
		char *c = rtalloc_malloc(16);
		if ((uintptr_t)c & 4095)
			q = c;
	}
	assert_non_null(q);
	expect_fatal((struct fatal_case){OP_FREE_ALIGNED_SIZED, q, q, 16, 4096}, "free_aligned_sized()",
		     "alignment the block does not have");
	expect_fatal((struct fatal_case){OP_FREE_ALIGNED_SIZED, q, q, 16, 24}, "free_aligned_sized()",
		     "alignment not a power of two");
	rtalloc_free(p);
	rtalloc_free(h);
	rtalloc_free(q);
	assert_sound();
}

/* realloc of a pointer librtalloc never handed out: its size is unknown, so it
 * must abort with a message rather than guess (lib/alloc.c). */
static void realloc_foreign_pointer(void **state)
{
	UNUSED_STATE(state);
	static char foreign[64];
	struct fatal_case fc = {OP_REALLOC, foreign, foreign, 128, 0};
	char hex[32];
	struct child_result r;
	snprintf(hex, sizeof(hex), "%p", fc.ptr);
	run_child(child_fatal, &fc, &r);
	assert_aborted_with(&r, "realloc()", hex, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(malloc_zero_unique),
		cmocka_unit_test(free_null),
		cmocka_unit_test(free_preserves_errno),
		cmocka_unit_test(usable_size),
		cmocka_unit_test(calloc_zeroes),
		cmocka_unit_test(calloc_overflow),
		cmocka_unit_test(realloc_null_is_malloc),
		cmocka_unit_test(realloc_zero_frees),
		cmocka_unit_test(counters_count_blocks_and_bytes),
		cmocka_unit_test(slot_counts_trail_then_match),
		cmocka_unit_test(realloc_same_class_in_place),
		cmocka_unit_test(realloc_moves_and_copies),
		cmocka_unit_test(realloc_failure_keeps_block),
		cmocka_unit_test(reallocarray_works),
		cmocka_unit_test(too_large_requests),
		cmocka_unit_test(posix_memalign_einval),
		cmocka_unit_test(posix_memalign_enomem),
		cmocka_unit_test(posix_memalign_every_alignment),
		cmocka_unit_test(aligned_alloc_rules),
		cmocka_unit_test(memalign_rules),
		cmocka_unit_test(valloc_pvalloc),
		cmocka_unit_test(sized_frees_accept_correct_sizes),
		cmocka_unit_test(invalid_free_aborts),
		cmocka_unit_test(double_free_aborts),
		cmocka_unit_test(free_sized_too_large_aborts),
		cmocka_unit_test(realloc_foreign_pointer),
		cmocka_unit_test(faults_since_init_never_wrap),
	};
	int failed = cmocka_run_group_tests_name("api", tests, group_setup, group_teardown);
	rt_stats_remove(); /* when run by hand with RTALLOC_STATS=1: not left to the destructor */
	return failed;
}
