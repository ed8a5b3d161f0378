/* SPDX-License-Identifier: MIT */
/*
 * test_arena.c - size classes and huge blocks (lib/arena.c, through
 * lib/tcache.c) on caller memory: rtalloc_init with .memory = a static array,
 * no mlock, RTALLOC_EXHAUST_FAIL, then rtalloc_malloc / rtalloc_free.
 *
 * The allocator initialises once per process.  Group "init" runs first, each
 * test in a forked child of a process that has not initialised yet (odd
 * offsets, bad configurations, abort on exhaustion).  Group "bucket" then
 * initialises this process once (group setup) and runs everything else.
 *
 * Accounting: with nothing allocated and the calling thread's cache flushed,
 * every data page is either free in the buddy allocator or an idle small page
 * (all blocks free) on its class's partial list.
 */
#include <sys/mman.h>

#include "unit.h"
#include "stats.h"

/* 1888 pages: librtalloc puts 11 descriptor pages first (an odd number), so
 * a pool starting on an odd page (aligned to 4096 and to nothing larger) has
 * its data pages on a 32 KiB boundary.  See medium_classes_unaligned_base for
 * why the data must start there (a library bug). */
#define POOL_PAGES 1888u
#define POOL_BYTES ((size_t)POOL_PAGES << RT_PAGE_SHIFT)
#define ALIGN_32K ((size_t)32 << 10)
static char pool_space[POOL_BYTES + 16 * RT_PAGE_SIZE] __attribute__((aligned(32768)));

/* Descriptor pages librtalloc takes from caller memory of `total` pages
 * (lib/pool.c setup_user_memory: enough for the pages after them). */
static size_t desc_pages(size_t total)
{
	return (total * sizeof(struct rt_page) + RT_PAGE_SIZE + sizeof(struct rt_page) - 1) /
	       (RT_PAGE_SIZE + sizeof(struct rt_page));
}

/* Where the data pages of caller memory [mem, mem + len) start. */
static uintptr_t data_base(uintptr_t mem, size_t len)
{
	uintptr_t start = (mem + RT_PAGE_SIZE - 1) & ~(RT_PAGE_SIZE - 1);
	uintptr_t end = (mem + len) & ~(RT_PAGE_SIZE - 1);
	return start + (desc_pages((end - start) >> RT_PAGE_SHIFT) << RT_PAGE_SHIFT);
}

/* Memory of len bytes at byte offset `byte` (0..4095) from a page of
 * pool_space, chosen so that its data pages start at an address whose
 * remainder modulo 32 KiB is base_mod.  Odd pages are preferred. */
static char *choose_memory(size_t byte, size_t len, uintptr_t base_mod)
{
	char *best = NULL;
	for (size_t m = 0; m < 8; m++) {
		char *mem = pool_space + m * RT_PAGE_SIZE + byte;
		if (data_base((uintptr_t)mem, len) % ALIGN_32K != base_mod)
			continue;
		if (!best || (m & 1))
			best = mem;
	}
	return best;
}

static char *pool_start(void) { return choose_memory(0, POOL_BYTES, 0); }

static struct rtalloc_config user_config(void *mem, size_t len, int exhaust)
{
	return (struct rtalloc_config){
		.size = sizeof(struct rtalloc_config),
		.stack_prefault = RTALLOC_STACK_PREFAULT_NONE,
		.mlock = RTALLOC_MLOCK_OFF,
		.on_exhaust = exhaust,
		.memory = mem,
		.memory_size = len,
	};
}

/* ---- accounting helpers (single-threaded) ------------------------------- */

static inline unsigned per_page(unsigned c) { return (unsigned)(RT_PAGE_SIZE >> (c + 3)); }

static size_t total_pages(void) { return rt_g.span >> RT_PAGE_SHIFT; }
static size_t buddy_free(void) { return rt_g.arenas[0].buddy.free_pages; }

/* Small pages last used by class c (0: any class) whose blocks are all free:
 * the arena's empty list (invariant S3). */
static size_t idle_small_pages(unsigned only)
{
	size_t n = 0;
	for (uint32_t i = rt_g.arenas[0].empty; i != RT_NIL; i = rt_g.pages[i].next)
		n += !only || rt_g.pages[i].cls == only;
	return n;
}

/* Free blocks of class c held by the arena's partial pages (incl. uncarved). */
static size_t partial_blocks(unsigned c)
{
	size_t n = 0;
	for (uint32_t i = rt_g.arenas[0].partial[c]; i != RT_NIL; i = rt_g.pages[i].next)
		n += rt_g.pages[i].nfree;
	return n;
}

/* Blocks of 2^k pages the buddy allocator can still hand out. */
static size_t buddy_blocks(unsigned k)
{
	const struct rt_buddy *b = &rt_g.arenas[0].buddy;
	size_t n = 0;
	for (unsigned j = k; j < RT_NORDERS; j++)
		for (uint32_t i = b->head[j]; i != RT_NIL; i = rt_g.pages[i].next)
			n += (size_t)1 << (j - k);
	return n;
}

static void assert_heap_sound(void)
{
	assert_int_equal(rtalloc_check(), 0);
}

/* Nothing allocated: every page is back (in the buddy or an idle small page). */
static void assert_all_back(void)
{
	flush_my_cache();
	assert_heap_sound();
	assert_int_equal(buddy_free() + idle_small_pages(0), total_pages());
}

static void assert_in_pool(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;
	assert_true(a >= rt_g.base);
	assert_true(a + n <= rt_g.base + rt_g.span);
}

/* ======================================================================
 * Group "init": forked children of a process that has not initialised.
 * ====================================================================== */

/* A short workload: every class and a few huge sizes, checked. */
static int child_workload(char *lo, char *hi)
{
	static void *ptr[64];
	for (unsigned c = 1; c <= RT_NMED + 3; c++) {
		size_t size = (size_t)8 << c;
		int n = c <= RT_NMED ? 64 : 4; /* large classes: 64 KiB .. 256 KiB */
		for (int i = 0; i < n; i++) {
			ptr[i] = rtalloc_malloc(size);
			CHILD_CHECK(ptr[i] != NULL);
			CHILD_CHECK((char *)ptr[i] >= lo && (char *)ptr[i] + size <= hi);
			CHILD_CHECK(((uintptr_t)ptr[i] & (size - 1)) == 0);
			CHILD_CHECK(rtalloc_malloc_usable_size(ptr[i]) == size);
			fill_pattern(ptr[i], size, c * 1000 + (unsigned)i);
		}
		for (int i = 0; i < n; i++) {
			CHILD_CHECK(check_pattern(ptr[i], size, c * 1000 + (unsigned)i) == size);
			rtalloc_free(ptr[i]);
		}
		CHILD_CHECK(rtalloc_check() == 0);
	}
	return 0;
}

static int child_odd_offset(void *arg)
{
	(void)arg;
	size_t len = ((size_t)4 << 20) + 123;
	char *mem = choose_memory(1, len, 0); /* odd byte offset */
	CHILD_CHECK(mem != NULL && ((uintptr_t)mem & 1));
	struct rtalloc_config cfg = user_config(mem, len, RTALLOC_EXHAUST_FAIL);
	CHILD_CHECK(rtalloc_init(&cfg) == 0);
	CHILD_CHECK(rt_g.user_memory);
	CHILD_CHECK((char *)rt_g.pages >= mem);
	CHILD_CHECK(((uintptr_t)rt_g.pages & (RT_PAGE_SIZE - 1)) == 0);
	CHILD_CHECK(rt_g.base % RT_PAGE_SIZE == 0);
	CHILD_CHECK((char *)rt_g.base + rt_g.span <= mem + len);
	/* Descriptors cover the data pages and sit below them. */
	CHILD_CHECK((uintptr_t)(rt_g.pages + (rt_g.span >> RT_PAGE_SHIFT)) <= rt_g.base);
	CHILD_CHECK(rtalloc_check() == 0);
	int e = child_workload(mem, mem + len);
	if (e)
		return e;
	/* Exhaustion on caller memory: NULL and ENOMEM, never a crash. */
	static void *big[1024];
	size_t n = 0;
	errno = 0;
	while (n < 1024 && (big[n] = rtalloc_malloc(32768)) != NULL)
		n++;
	CHILD_CHECK(n < 1024 && errno == ENOMEM);
	CHILD_CHECK(n >= 100); /* 4 MiB holds ~127 blocks of 32 KiB */
	for (size_t i = 0; i < n; i++)
		rtalloc_free(big[i]);
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void init_odd_offset(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_odd_offset, NULL, &r);
	assert_child_ok(&r);
}

static int child_too_small(void *arg)
{
	(void)arg;
	struct rtalloc_config cfg = user_config(pool_start(), 3 * RT_PAGE_SIZE + 100, RTALLOC_EXHAUST_FAIL);
	CHILD_CHECK(rtalloc_init(&cfg) == EINVAL);
	/* Nothing was set up: a corrected call can still succeed. */
	CHILD_CHECK(!rt_ready());
	static char good[(size_t)1 << 20] __attribute__((aligned(4096)));
	cfg = user_config(good, sizeof(good), RTALLOC_EXHAUST_FAIL);
	CHILD_CHECK(rtalloc_init(&cfg) == 0);
	CHILD_CHECK(rt_g.user_memory);
	void *p = rtalloc_malloc(10);
	CHILD_CHECK(p != NULL);
	rtalloc_free(p);
	rtalloc_free(NULL);
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void init_memory_too_small(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_too_small, NULL, &r);
	assert_child_ok(&r);
}

static int child_bad_size_field(void *arg)
{
	(void)arg;
	char *mem = choose_memory(0, (size_t)1 << 20, 0);
	struct rtalloc_config cfg = user_config(mem, (size_t)1 << 20, RTALLOC_EXHAUST_FAIL);
	cfg.size = 8; /* smaller than any version of the struct */
	CHILD_CHECK(rtalloc_init(&cfg) == EINVAL);
	/* Nothing was set up: a correct call still works. */
	cfg.size = 0; /* "this version" */
	CHILD_CHECK(rtalloc_init(&cfg) == 0);
	void *p = rtalloc_malloc(100);
	CHILD_CHECK(p != NULL && (char *)p >= mem && (char *)p < mem + ((size_t)1 << 20));
	rtalloc_free(p);
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void init_bad_size_field(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_bad_size_field, NULL, &r);
	assert_child_ok(&r);
}

/* A struct that ends before .memory (size == offsetof(memory)): librtalloc
 * must refuse it (EINVAL) without reading the fields the caller does not
 * have.  The struct is put at the end of a page followed by an inaccessible
 * one. */
static int child_short_config(void *arg)
{
	(void)arg;
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(m != MAP_FAILED);
	CHILD_CHECK(mprotect(m + pg, (size_t)pg, PROT_NONE) == 0);
	size_t sz = offsetof(struct rtalloc_config, memory);
	struct rtalloc_config *cfg = (struct rtalloc_config *)(void *)(m + pg - sz);
	memset(cfg, 0, sz);
	cfg->size = sz;
	cfg->pool_size = (size_t)1 << 20;
	cfg->pool_max = (size_t)4 << 20;
	cfg->stack_prefault = RTALLOC_STACK_PREFAULT_NONE;
	cfg->mlock = RTALLOC_MLOCK_OFF;
	cfg->on_exhaust = RTALLOC_EXHAUST_FAIL;
	cfg->numa = RTALLOC_NUMA_OFF;
	/* A config shorter than the caller says it is known to the library is
	 * refused before anything past its end is read. */
	CHILD_CHECK(rtalloc_init(cfg) == EINVAL);
	CHILD_CHECK(!rt_ready());
	void *p = rtalloc_malloc(1000); /* the default pool, from the environment */
	CHILD_CHECK(p != NULL);
	rtalloc_free(p);
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void init_short_config(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_short_config, NULL, &r);
	if (r.signaled && r.signo == SIGSEGV)
		fail_msg("rtalloc_init() read past a config of size offsetof(struct rtalloc_config, memory) "
			 "(lib/pool.c rt_init reads cfg->memory without checking cfg->size): SIGSEGV");
	assert_child_ok(&r);
}

static int child_exhaust_abort(void *arg)
{
	(void)arg;
	struct rtalloc_config cfg = user_config(choose_memory(0, (size_t)2 << 20, 0), (size_t)2 << 20,
						RTALLOC_EXHAUST_FAIL);
	CHILD_CHECK(rtalloc_init(&cfg) == 0);
	size_t n = 0;
	errno = 0;
	while (rtalloc_malloc(32768))
		CHILD_CHECK(++n < 1000);
	CHILD_CHECK(errno == ENOMEM);
	/* Re-configure: exhaustion now aborts with a message. */
	struct rtalloc_config again = {.on_exhaust = RTALLOC_EXHAUST_ABORT};
	CHILD_CHECK(rtalloc_init(&again) == 0);
	rtalloc_malloc(32768); /* aborts */
	return 99;
}

static void exhaust_abort_policy(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_exhaust_abort, NULL, &r);
	assert_aborted_with(&r, "rtalloc: ", "out of memory", "32768", NULL);
	assert_int_equal(count_lines(r.out), 1);
}

/* Caller memory whose data pages do not start on a 32 KiB boundary (any
 * memory aligned only to a page can be so).  Blocks of the cached classes
 * 8, 16 and 32 KiB are aligned to their size in absolute terms, but the
 * malloc fast path (lib/fastpath.h rt_malloc_fast) checks the next link's
 * offset from rt_g.base against the class mask: with base not aligned to the
 * class size every valid link fails and malloc aborts with "heap corruption". */
static int child_medium_unaligned(void *arg)
{
	uintptr_t base_mod = (uintptr_t)arg;
	size_t len = (size_t)2 << 20;
	char *mem = choose_memory(0, len, base_mod);
	CHILD_CHECK(mem != NULL);
	struct rtalloc_config cfg = user_config(mem, len, RTALLOC_EXHAUST_FAIL);
	CHILD_CHECK(rtalloc_init(&cfg) == 0);
	(void)base_mod; /* the library aligns the data start itself */
	CHILD_CHECK(rt_g.base % ALIGN_32K == 0);
	static const size_t sizes[] = {4096, 8192, 16384, 32768};
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		void *p[8];
		for (int i = 0; i < 8; i++) {
			p[i] = rtalloc_malloc(sizes[s]);
			CHILD_CHECK(p[i] != NULL);
			CHILD_CHECK(((uintptr_t)p[i] & (sizes[s] - 1)) == 0);
			memset(p[i], 0x5c, sizes[s]);
		}
		for (int i = 0; i < 8; i++)
			rtalloc_free(p[i]);
	}
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void medium_classes_unaligned_base(void **state)
{
	UNUSED_STATE(state);
	for (uintptr_t mod = 0; mod < ALIGN_32K; mod += RT_PAGE_SIZE) {
		struct child_result r;
		run_child(child_medium_unaligned, (void *)mod, &r);
		if (r.signaled && strstr(r.out, "heap corruption"))
			fail_msg("caller memory with its data pages at 32 KiB boundary + %lu: malloc of an 8-32 KiB "
				 "block aborts: \"%s\"",
				 (unsigned long)mod, r.out);
		assert_child_ok(&r);
	}
}

/* ---- empty small pages go back to the buddy allocator (fresh heaps) -------
 *
 * Each child initialises a fresh 4 MiB heap, so that these tests neither
 * depend on nor disturb the others. */

static int fresh_heap(void)
{
	size_t len = (size_t)4 << 20;
	struct rtalloc_config cfg = user_config(choose_memory(0, len, 0), len, RTALLOC_EXHAUST_FAIL);
	return rtalloc_init(&cfg);
}

static void shuffle_ptrs(void **v, size_t n, uint64_t seed)
{
	struct rng rg;
	rng_seed(&rg, seed);
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(&rg, i);
		void *t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Allocate `pages` pages' worth of class c, free them (in order, or shuffled
 * with seed), flush this thread's cache; return the class's idle pages. */
static size_t class_cycle(unsigned c, size_t pages, uint64_t seed, int *err)
{
	size_t n = pages * per_page(c);
	void **v = malloc(n * sizeof(*v));
	*err = 0;
	if (!v)
		return (size_t)(*err = 1);
	for (size_t i = 0; i < n; i++)
		if (!(v[i] = rtalloc_malloc(rt_class_size(c)))) {
			fprintf(stderr, "class %u: malloc failed at block %zu of %zu\n", c, i, n);
			*err = 1;
			n = i;
			break;
		}
	if (seed)
		shuffle_ptrs(v, n, seed);
	for (size_t i = 0; i < n; i++)
		rtalloc_free(v[i]);
	free(v);
	flush_my_cache();
	if (rtalloc_check() != 0)
		*err = 1;
	if (buddy_free() + idle_small_pages(0) != total_pages()) {
		fprintf(stderr, "class %u: pages lost: %zu free + %zu idle of %zu\n", c, buddy_free(),
			idle_small_pages(0), total_pages());
		*err = 1;
	}
	return idle_small_pages(c);
}

/* When every block of a class has been freed, its pages are back in the buddy
 * allocator (one kept at most, by design: the class's last partial page). */
/* Cycle classes (every class in order, or every other one freed in random
 * order): no page is lost (buddy + idle = all), idle pages serve any class,
 * and they go back to the buddy on demand: a block of a quarter of the pool
 * is there afterwards. */
static int released_pages(unsigned step, size_t pages, bool random)
{
	CHILD_CHECK(fresh_heap() == 0);
	int bad = 0;
	for (unsigned c = 1; c <= RT_NSMALL; c += step) {
		int err;
		size_t idle = class_cycle(c, pages, random ? 1234 + c : 0, &err);
		CHILD_CHECK(!err);
		if (idle > pages) {
			fprintf(stderr, "class %zu B: %zu idle pages of %zu; ", rt_class_size(c), idle, pages);
			bad = 1;
		}
	}
	void *big = rtalloc_malloc((total_pages() << RT_PAGE_SHIFT) / 4);
	CHILD_CHECK(big != NULL);
	rtalloc_free(big);
	CHILD_CHECK(rtalloc_check() == 0);
	return bad ? 200 : 0;
}

static int child_released_in_order(void *arg)
{
	(void)arg;
	return released_pages(1, 100, false);
}

static void pages_released_in_order(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_released_in_order, NULL, &r);
	assert_child_ok(&r);
}

static int child_released_random(void *arg)
{
	(void)arg;
	return released_pages(2, 200, true);
}

static void pages_released_random_order(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_released_random, NULL, &r);
	assert_child_ok(&r);
}

/* What a program sees: fill the pool with blocks of one small class, free them
 * all, and the pool must serve 32 KiB blocks again. */
static int child_reusable(void *arg)
{
	size_t small = (size_t)(uintptr_t)arg;
	CHILD_CHECK(fresh_heap() == 0);
	size_t pages = total_pages();
	for (int shuffled = 0; shuffled < 2; shuffled++) {
		size_t cap = pages * (RT_PAGE_SIZE / small) + 64, n = 0;
		void **v = malloc(cap * sizeof(*v));
		CHILD_CHECK(v != NULL);
		while (n < cap && (v[n] = rtalloc_malloc(small)) != NULL)
			n++;
		CHILD_CHECK(n < cap && errno == ENOMEM);
		if (shuffled)
			shuffle_ptrs(v, n, 99);
		for (size_t i = 0; i < n; i++)
			rtalloc_free(v[i]);
		flush_my_cache();
		size_t m = 0;
		while (n && (v[m] = rtalloc_malloc(32768)) != NULL)
			m++;
		for (size_t i = 0; i < m; i++)
			rtalloc_free(v[i]);
		free(v);
		flush_my_cache();
		CHILD_CHECK(rtalloc_check() == 0);
		/* 32 KiB blocks are 8 pages; allow the class's last page and the
		 * alignment at both ends of the pool. */
		if (m * 8 + 24 < pages) {
			fprintf(stderr, "after %zu blocks of %zu B were freed (%s order), only %zu blocks of 32 KiB "
					"(%zu of %zu pages) could be allocated: %zu empty pages stay on the %zu-byte "
					"class's partial list",
				n, small, shuffled ? "random" : "allocation", m, m * 8, pages,
				idle_small_pages(rt_class_of(small)), small);
			return 200;
		}
	}
	return 0;
}

static void memory_reusable_by_other_classes(void **state)
{
	UNUSED_STATE(state);
	static const size_t smalls[] = {16, 64, 256, 1024, 2048};
	char msgs[4096] = "";
	for (size_t i = 0; i < ARRAY_LEN(smalls); i++) {
		struct child_result r;
		run_child(child_reusable, (void *)(uintptr_t)smalls[i], &r);
		if (!r.exited || r.exit_code != 0) {
			size_t l = strlen(msgs), room = sizeof(msgs) - l;
			if (room > 8) {
				msgs[l] = '[';
				memcpy(msgs + l + 1, r.out, strnlen(r.out, room - 4) + 1);
				l = strlen(msgs);
				memcpy(msgs + l, "] ", 3);
			}
		}
	}
	if (msgs[0])
		fail_msg("%s", msgs);
}

/* ======================================================================
 * Group "bucket": this process, initialised once on the static array.
 * ====================================================================== */

static int group_setup(void **state)
{
	UNUSED_STATE(state);
	struct rtalloc_config cfg = user_config(pool_start(), POOL_BYTES, RTALLOC_EXHAUST_FAIL);
	int e = rtalloc_init(&cfg);
	if (e) {
		fprintf(stderr, "rtalloc_init on a static array failed: %d\n", e);
		return -1;
	}
	return 0;
}

static void layout(void **state)
{
	UNUSED_STATE(state);
	char *start = pool_start();
	size_t total = POOL_BYTES >> RT_PAGE_SHIFT;
	/* Descriptor pages first, enough for the data pages after them. */
	size_t d = (size_t)(rt_g.base - (uintptr_t)start) >> RT_PAGE_SHIFT;
	assert_ptr_equal(rt_g.pages, start);
	assert_true(d >= 1);
	assert_true(d * RT_PAGE_SIZE >= (total - d) * sizeof(struct rt_page));
	assert_true((d - 1) * RT_PAGE_SIZE < (total - d + 1) * sizeof(struct rt_page)); /* not more than needed */
	assert_int_equal(rt_g.span, (total - d) << RT_PAGE_SHIFT);
	assert_true(rt_g.user_memory);
	assert_int_equal(rt_g.narenas, 1);
	assert_null(rt_g.arenas[0].grow); /* caller memory never grows */
	const struct rt_buddy *b = &rt_g.arenas[0].buddy;
	assert_int_equal(b->committed - b->skew, total - d);
	assert_int_equal(b->limit, b->committed);
	/* Nothing allocated yet: one free run of every data page. */
	assert_int_equal(buddy_free(), total - d);
	assert_int_equal(b->skew, (rt_g.base >> RT_PAGE_SHIFT) & ((1u << b->top_order) - 1));
	assert_heap_sound();
	struct rt_totals t;
	rt_stats_totals(&t);
	assert_int_equal(t.pool_bytes, rt_g.span);
	assert_int_equal(t.free_bytes, rt_g.span);
}

/* Request sizes of class c: the smallest, an odd one, the largest. */
static void class_requests(unsigned c, size_t out[3])
{
	size_t size = rt_class_size(c);
	out[0] = c == 1 ? 1 : size / 2 + 1;
	out[1] = size - (size > 16 ? 5 : 1);
	out[2] = size;
}

static void every_class(void **state)
{
	UNUSED_STATE(state);
	enum { MAXN = 3 * 256 + 1 };
	static void *p[MAXN];
	uint64_t mallocs0 = my_counts().mallocs;
	uint64_t count = 0;
	for (unsigned c = 1; c <= RT_NCLASS; c++) {
		size_t size = rt_class_size(c), req[3];
		class_requests(c, req);
		/* Three pages' worth (the carving crosses pages), or 8 blocks. */
		size_t n = c <= RT_NSMALL ? 3 * per_page(c) + 1 : c <= RT_NMED ? 8 : 2;
		for (int r = 0; r < 3; r++) {
			for (size_t i = 0; i < n; i++) {
				p[i] = rtalloc_malloc(req[r]);
				assert_non_null(p[i]);
				count++;
				if ((uintptr_t)p[i] & (size - 1))
					fail_msg("class %u: block %p not aligned to %zu", c, p[i], size);
				assert_in_pool(p[i], size);
				assert_int_equal(rtalloc_malloc_usable_size(p[i]), size);
				const struct rt_page *pg = &rt_g.pages[rt_page_index(p[i])];
				/* a large class the thread's share does not cache: huge */
				bool cached = c <= RT_NMED || rt_tc.bin[c].limit > 0;
				assert_int_equal(pg->cls, cached ? c : RT_CLS_HUGE);
				assert_int_equal(pg->state, RT_PS_USED);
				fill_pattern(p[i], size, (c << 20) + i);
			}
			for (size_t i = 0; i < n; i++) {
				size_t bad = check_pattern(p[i], size, (c << 20) + i);
				if (bad != size)
					fail_msg("class %u block %zu: byte %zu overwritten", c, i, bad);
				for (size_t j = i + 1; j < n && j < i + 4; j++)
					assert_ptr_not_equal(p[i], p[j]);
			}
			assert_heap_sound();
			for (size_t i = 0; i < n; i++)
				rtalloc_free(p[n - 1 - i]);
			assert_heap_sound();
		}
	}
	assert_int_equal(my_counts().mallocs - mallocs0, count);
	assert_all_back();
}

static void huge_sizes(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {
		RT_CACHE_MAX + 1, 2u << 20, /* 64 KiB .. 1 MiB are cached classes (every_class) */
	};
	/* Pages each keeps: its buddy block (below 16 MiB, RT_TRIM_ORDER, the
	 * rest is not given back: tests/system/mlockmode.sh tests beyond). */
	static const uint32_t keep[] = {512, 512};
	struct rt_totals t0, t1;
	rt_stats_totals(&t0);
	size_t free0 = buddy_free();
	void *p[ARRAY_LEN(sizes)];
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		unsigned k = rt_order_of(sizes[i]);
		size_t block = RT_PAGE_SIZE << k;
		p[i] = rtalloc_malloc(sizes[i]);
		assert_non_null(p[i]);
		if ((uintptr_t)p[i] & (block - 1))
			fail_msg("huge %zu: block %p not aligned to %zu", sizes[i], p[i], block);
		assert_in_pool(p[i], block);
		size_t kept = (size_t)keep[i] << RT_PAGE_SHIFT;
		assert_int_equal(rtalloc_malloc_usable_size(p[i]), kept);
		const struct rt_page *pg = &rt_g.pages[rt_page_index(p[i])];
		assert_int_equal(pg->cls, RT_CLS_HUGE);
		assert_int_equal(pg->order, 31 - __builtin_clz(keep[i])); /* its first piece */
		fill_pattern(p[i], kept, 77 + i);
		if (i == 0)
			assert_int_equal(buddy_free(), free0 - keep[0]); /* only the kept pages are gone */
	}
	rt_stats_totals(&t1);
	assert_int_equal(t1.huge_allocs - t0.huge_allocs, ARRAY_LEN(sizes));
	assert_heap_sound();
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		size_t kept = (size_t)keep[i] << RT_PAGE_SHIFT;
		assert_int_equal(check_pattern(p[i], kept, 77 + i), kept);
		rtalloc_free(p[i]);
	}
	/* Huge blocks are never cached: the pages are back at once. */
	assert_int_equal(buddy_free(), free0);
	assert_int_equal(rt_g.arenas[0].huge_frees - rt_g.arenas[0].huge_allocs, 0);
	/* Larger than the pool: NULL and ENOMEM. */
	errno = 0;
	assert_null(rtalloc_malloc(POOL_BYTES));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(rtalloc_malloc((size_t)1 << 40));
	assert_int_equal(errno, ENOMEM);
	assert_all_back();
}

/* Exhaust the pool with one request size; return how many blocks it gave. */
static size_t exhaust(size_t req, void ***out)
{
	size_t cap = 1024, n = 0;
	void **v = malloc(cap * sizeof(*v));
	assert_non_null(v);
	for (;;) {
		errno = 0;
		void *p = rtalloc_malloc(req);
		if (!p) {
			assert_int_equal(errno, ENOMEM);
			break;
		}
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		*(uint64_t *)p = n; /* an index in every block: overlaps would show */
		v[n++] = p;
	}
	for (size_t i = 0; i < n; i++)
		if (*(uint64_t *)v[i] != i)
			fail_msg("size %zu: block %zu at %p handed out twice", req, i, v[i]);
	*out = v;
	return n;
}

static size_t expected_blocks(size_t req)
{
	unsigned c = rt_class_of(req);
	if (c <= RT_NSMALL)
		return (buddy_free() + idle_small_pages(0)) * per_page(c) + partial_blocks(c);
	return buddy_blocks(c <= RT_NCLASS ? c - RT_NSMALL - 1 : rt_order_of(req));
}

static void exhaustion(void **state)
{
	UNUSED_STATE(state);
	/* Largest first: what the small classes leave on their partial lists
	 * cannot serve the larger ones (see pages_released_in_order). */
	static const size_t reqs[] = {1 << 20, 65536, 32768, 20000, 4096, 2048, 100, 16};
	for (size_t r = 0; r < ARRAY_LEN(reqs); r++) {
		flush_my_cache();
		size_t want = expected_blocks(reqs[r]);
		void **v;
		size_t n = exhaust(reqs[r], &v);
		/* At least what the buddy and partial pages hold; more when the
		 * exhaustion path reclaims the empty pages kept per class. */
		if (n < want)
			fail_msg("size %zu: %zu blocks before ENOMEM, %zu available", reqs[r], n, want);
		if (n == 0)
			fail_msg("size %zu: no block at all (buddy free %zu pages, idle small pages %zu)", reqs[r],
				 buddy_free(), idle_small_pages(0));
		assert_heap_sound();
		/* Still out of memory, and a size of another class too. */
		errno = 0;
		assert_null(rtalloc_malloc(reqs[r]));
		assert_int_equal(errno, ENOMEM);
		if (reqs[r] >= RT_PAGE_SIZE) {
			errno = 0;
			assert_null(rtalloc_malloc(reqs[r] * 2));
			assert_int_equal(errno, ENOMEM);
		}
		/* One free makes room for one block of that size again. */
		rtalloc_free(v[n / 2]);
		v[n / 2] = rtalloc_malloc(reqs[r]);
		assert_non_null(v[n / 2]);
		*(uint64_t *)v[n / 2] = n / 2;
		for (size_t i = 0; i < n; i++)
			rtalloc_free(v[i]);
		free(v);
		assert_all_back();
		/* And all of it is usable again. */
		flush_my_cache();
		assert_true(expected_blocks(reqs[r]) >= want);
	}
}

/* A random mix of sizes against a model: contents survive, nothing overlaps,
 * the heap stays sound. */
static void random_mix_contents(void **state)
{
	UNUSED_STATE(state);
	enum { SLOTS = 1500, OPS = 60000 };
	static struct {
		void *p;
		size_t n;
		uint64_t tag;
	} live[SLOTS];
	struct rng rg;
	rng_seed(&rg, 0xb0c4e7);
	size_t live_bytes = 0;
	memset(live, 0, sizeof(live));
	for (int op = 0; op < OPS; op++) {
		size_t s = (size_t)rng_below(&rg, SLOTS);
		if (live[s].p) {
			size_t bad = check_pattern(live[s].p, live[s].n, live[s].tag);
			if (bad != live[s].n)
				fail_msg("op %d: block %p of %zu bytes: byte %zu overwritten", op, live[s].p,
					 live[s].n, bad);
			rtalloc_free(live[s].p);
			live_bytes -= live[s].n;
			live[s].p = NULL;
			continue;
		}
		uint64_t x = rng_next(&rg);
		size_t n;
		if ((x & 15) < 11)
			n = 1 + (size_t)((x >> 8) % 2048);
		else if ((x & 15) < 15)
			n = 2049 + (size_t)((x >> 8) % (32768 - 2048));
		else
			n = 32769 + (size_t)((x >> 8) % (300 << 10));
		if (live_bytes + n > ((size_t)4 << 20))
			continue;
		void *p = rtalloc_malloc(n);
		if (!p)
			fail_msg("op %d: malloc(%zu) failed with %zu bytes live", op, n, live_bytes);
		size_t u = rtalloc_malloc_usable_size(p);
		assert_true(u >= n);
		size_t align = n <= RT_CACHE_MAX ? class_size_for(n) : (RT_PAGE_SIZE << rt_order_of(n));
		assert_int_equal((uintptr_t)p & (align - 1), 0);
		assert_in_pool(p, u);
		live[s].p = p;
		live[s].n = n;
		live[s].tag = (uint64_t)op;
		live_bytes += n;
		fill_pattern(p, n, (uint64_t)op);
		if (op % 5000 == 0)
			assert_heap_sound();
	}
	for (size_t s = 0; s < SLOTS; s++)
		if (live[s].p) {
			assert_int_equal(check_pattern(live[s].p, live[s].n, live[s].tag), live[s].n);
			rtalloc_free(live[s].p);
		}
	assert_all_back();
}

/* rtalloc_check notices a free block whose stamp was overwritten (a write
 * after free) and says so in one line. */
static void check_reports_use_after_free(void **state)
{
	UNUSED_STATE(state);
	enum { N = 64 };
	void *v[N];
	for (int i = 0; i < N; i++) {
		v[i] = rtalloc_malloc(48);
		assert_non_null(v[i]);
	}
	/* A block whose page holds another live one, so the page stays in use. */
	int pick = -1;
	for (int i = 0; i < N && pick < 0; i++)
		for (int j = 0; j < N; j++)
			if (j != i && rt_page_index(v[i]) == rt_page_index(v[j])) {
				pick = i;
				break;
			}
	assert_true(pick >= 0);
	void **p = v[pick];
	v[pick] = NULL;
	rtalloc_free(p);
	flush_my_cache(); /* p is now on its page's free list in the arena */
	assert_heap_sound();
	void *saved = p[1];
	p[1] = NULL; /* the bug being simulated */
	struct stderr_capture cap;
	char err[512];
	capture_stderr_begin(&cap);
	int rc = rtalloc_check();
	capture_stderr_end(&cap, err, sizeof(err));
	p[1] = saved;
	assert_int_equal(rc, -1);
	assert_int_equal(count_lines(err), 1);
	assert_non_null(strstr(err, "rtalloc"));
	assert_non_null(strstr(err, "stamp"));
	assert_heap_sound();
	for (int i = 0; i < N; i++)
		rtalloc_free(v[i]);
	assert_all_back();
}

/* A thread cache whose free list was overwritten after free: the malloc that
 * would hand out the block the link leads to aborts with a message instead
 * of handing out a wild pointer. */
static int child_corrupt_tcache(void *arg)
{
	(void)arg;
	void **a = rtalloc_malloc(64);
	void **b = rtalloc_malloc(64);
	rtalloc_free(a);
	rtalloc_free(b); /* b -> a on the cache */
	b[0] = (void *)(uintptr_t)0x1234567; /* overwrite b's link */
	void *x = rtalloc_malloc(64); /* b itself is sound */
	void *y = rtalloc_malloc(64); /* the block b's link leads to is not */
	(void)x;
	(void)y;
	return 3;
}

static void corrupted_cache_link_aborts(void **state)
{
	UNUSED_STATE(state);
	flush_my_cache();
	struct child_result r;
	run_child(child_corrupt_tcache, NULL, &r);
	assert_aborted_with(&r, "rtalloc: ", "malloc()", "heap corruption", NULL);
}

int main(void)
{
	const struct CMUnitTest init_tests[] = {
		cmocka_unit_test(init_odd_offset),
		cmocka_unit_test(init_memory_too_small),
		cmocka_unit_test(init_bad_size_field),
		cmocka_unit_test(init_short_config),
		cmocka_unit_test(exhaust_abort_policy),
		cmocka_unit_test(medium_classes_unaligned_base),
		cmocka_unit_test(pages_released_in_order),
		cmocka_unit_test(pages_released_random_order),
		cmocka_unit_test(memory_reusable_by_other_classes),
	};
	const struct CMUnitTest bucket_tests[] = {
		cmocka_unit_test(layout),
		cmocka_unit_test(every_class),
		cmocka_unit_test(huge_sizes),
		cmocka_unit_test(random_mix_contents),
		cmocka_unit_test(check_reports_use_after_free),
		cmocka_unit_test(corrupted_cache_link_aborts),
		cmocka_unit_test(exhaustion), /* last: small classes leave idle pages */
	};
	int failed = cmocka_run_group_tests_name("init", init_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("bucket", bucket_tests, group_setup, NULL);
	return failed;
}
