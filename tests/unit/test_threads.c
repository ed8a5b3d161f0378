/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c - librtalloc with several threads (suite 'threads', also run
 * under TSan): mixed workloads with content checks, cross-thread frees,
 * thousands of short-lived threads, rtalloc_thread_prepare, cancellation and
 * allocation from TLS destructors after a thread's cache is gone.
 *
 * The main thread never allocates from librtalloc, so once the workers are
 * gone every page must be back: free in a buddy allocator or an idle small
 * page (all blocks free) on its class's partial list.
 *
 * CMocka's assertions are not thread-safe: workers record failures with
 * tfail() and the main thread asserts after joining them.
 */
#include <sched.h>
#include <stdatomic.h>

#include "unit.h"
#include "stats.h"

#define MiB ((size_t)1 << 20)
#define POOL (16 * MiB)

/* ---- failures in worker threads ------------------------------------------ */

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static int nfail;
static char first_fail[512];

__attribute__((format(printf, 1, 2))) static void tfail(const char *fmt, ...)
{
	pthread_mutex_lock(&fail_lock);
	if (nfail++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(first_fail, sizeof(first_fail), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fail_lock);
}

static void reset_failures(void)
{
	pthread_mutex_lock(&fail_lock);
	nfail = 0;
	first_fail[0] = '\0';
	pthread_mutex_unlock(&fail_lock);
}

static void assert_no_failures(void)
{
	pthread_mutex_lock(&fail_lock);
	int n = nfail;
	char msg[sizeof(first_fail)];
	memcpy(msg, first_fail, sizeof(msg));
	pthread_mutex_unlock(&fail_lock);
	if (n)
		fail_msg("%d failure(s) in worker threads; first: %s", n, msg);
}

/* ---- accounting --------------------------------------------------------- */


/* Pages neither free in a buddy allocator nor idle small pages. */
static size_t pages_held(void)
{
	size_t total = 0, avail = 0;
	for (unsigned i = 0; i < rt_g.narenas; i++) {
		struct rt_arena *a = &rt_g.arenas[i];
		rt_arena_lock(a);
		total += a->buddy.committed - a->buddy.skew;
		avail += a->buddy.free_pages;
		avail += a->nempty; /* idle small pages (S3) */
		rt_arena_unlock(a);
	}
	return total - avail;
}

static size_t free_bytes(void)
{
	struct rt_totals t;
	rt_stats_totals(&t);
	return t.free_bytes;
}

static void assert_everything_back(void)
{
	assert_int_equal(rtalloc_check(), 0);
	rt_tcache_xfer_drain(); /* batches parked between threads (tcache.c) */
	size_t held = pages_held();
	if (held)
		fail_msg("%zu pages (%zu KiB) still held with no thread alive and nothing allocated", held,
			 held * 4);
}

static int group_setup(void **state)
{
	UNUSED_STATE(state);
	return unit_init(POOL, POOL, MiB, RTALLOC_EXHAUST_FAIL);
}

static void start_threads(pthread_t *t, int n, void *(*fn)(void *), void *args, size_t argsize)
{
	for (int i = 0; i < n; i++) {
		int e = pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * argsize);
		if (e)
			fail_msg("pthread_create: %s", strerror(e));
	}
}

static void join_threads(pthread_t *t, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

/* A request size: mostly small, some cached classes, rarely huge. */
static size_t pick_size(struct rng *r)
{
	uint64_t x = rng_next(r);
	switch (x & 31) {
	case 0:
		return 32769 + (size_t)((x >> 8) % (96 << 10));
	case 1: case 2: case 3: case 4: case 5:
		return 2049 + (size_t)((x >> 8) % (32768 - 2048));
	default:
		return 1 + (size_t)((x >> 8) % 2048);
	}
}

/* ---- mixed workloads ---------------------------------------------------- */

struct mixed_arg {
	unsigned id;
	unsigned ops;
};

static void *mixed_worker(void *arg)
{
	const struct mixed_arg *ma = arg;
	enum { SLOTS = 256 };
	struct {
		unsigned char *p;
		size_t n;
		uint64_t tag;
	} live[SLOTS];
	memset(live, 0, sizeof(live));
	struct rng r;
	rng_seed(&r, 1000 + ma->id);
	size_t live_bytes = 0;
	for (unsigned op = 0; op < ma->ops; op++) {
		size_t s = (size_t)rng_below(&r, SLOTS);
		if (live[s].p) {
			size_t bad = check_pattern(live[s].p, live[s].n, live[s].tag);
			if (bad != live[s].n)
				tfail("thread %u: block %p (%zu bytes) byte %zu changed", ma->id, (void *)live[s].p,
				      live[s].n, bad);
			rtalloc_free(live[s].p);
			live_bytes -= live[s].n;
			live[s].p = NULL;
			continue;
		}
		size_t n = pick_size(&r);
		if (live_bytes + n > 1 * MiB)
			continue;
		unsigned char *p = rtalloc_malloc(n);
		if (!p) {
			tfail("thread %u: malloc(%zu) failed (errno %d)", ma->id, n, errno);
			break;
		}
		size_t align = n <= RT_CACHE_MAX ? class_size_for(n) : (RT_PAGE_SIZE << rt_order_of(n));
		if ((uintptr_t)p & (align - 1))
			tfail("thread %u: %p misaligned for %zu", ma->id, (void *)p, n);
		uint64_t tag = ((uint64_t)ma->id << 32) | op;
		fill_pattern(p, n, tag);
		live[s].p = p;
		live[s].n = n;
		live[s].tag = tag;
		live_bytes += n;
		if (op % 4096 == 0 && rtalloc_check() != 0) /* concurrently with the others */
			tfail("thread %u: rtalloc_check failed at op %u", ma->id, op);
	}
	for (size_t s = 0; s < SLOTS; s++)
		if (live[s].p) {
			if (check_pattern(live[s].p, live[s].n, live[s].tag) != live[s].n)
				tfail("thread %u: block %p changed", ma->id, (void *)live[s].p);
			rtalloc_free(live[s].p);
		}
	return NULL;
}

static void mixed_threads(void **state)
{
	UNUSED_STATE(state);
	enum { NT = 4 };
	pthread_t t[NT];
	struct mixed_arg a[NT];
	reset_failures();
	for (unsigned i = 0; i < NT; i++)
		a[i] = (struct mixed_arg){i, 20000};
	start_threads(t, NT, mixed_worker, a, sizeof(a[0]));
	join_threads(t, NT);
	assert_no_failures();
	assert_everything_back();
}

/* ---- producer / consumer: blocks freed by another thread -------------------- */

#define RING 128

struct item {
	unsigned char *p;
	size_t n;
	uint64_t tag;
};

static struct {
	pthread_mutex_t m;
	pthread_cond_t nonempty, nonfull;
	struct item buf[RING];
	size_t head, count;
	int producers_left;
	uint64_t consumed;
} ring = {
	.m = PTHREAD_MUTEX_INITIALIZER,
	.nonempty = PTHREAD_COND_INITIALIZER,
	.nonfull = PTHREAD_COND_INITIALIZER,
};

struct pc_arg {
	unsigned id;
	unsigned items;
};

static void *producer(void *arg)
{
	const struct pc_arg *pa = arg;
	struct rng r;
	rng_seed(&r, 77 + pa->id);
	for (unsigned i = 0; i < pa->items; i++) {
		size_t n = pick_size(&r);
		unsigned char *p = rtalloc_malloc(n);
		if (!p) {
			tfail("producer %u: malloc(%zu) failed", pa->id, n);
			break;
		}
		uint64_t tag = ((uint64_t)pa->id << 40) | i;
		fill_pattern(p, n, tag);
		pthread_mutex_lock(&ring.m);
		while (ring.count == RING)
			pthread_cond_wait(&ring.nonfull, &ring.m);
		ring.buf[(ring.head + ring.count) % RING] = (struct item){p, n, tag};
		ring.count++;
		pthread_cond_signal(&ring.nonempty);
		pthread_mutex_unlock(&ring.m);
	}
	pthread_mutex_lock(&ring.m);
	ring.producers_left--;
	pthread_cond_broadcast(&ring.nonempty);
	pthread_mutex_unlock(&ring.m);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&ring.m);
		while (ring.count == 0 && ring.producers_left > 0)
			pthread_cond_wait(&ring.nonempty, &ring.m);
		if (ring.count == 0) {
			pthread_mutex_unlock(&ring.m);
			return NULL;
		}
		struct item it = ring.buf[ring.head];
		ring.head = (ring.head + 1) % RING;
		ring.count--;
		ring.consumed++;
		pthread_cond_signal(&ring.nonfull);
		pthread_mutex_unlock(&ring.m);
		size_t bad = check_pattern(it.p, it.n, it.tag);
		if (bad != it.n)
			tfail("consumer: block %p (%zu bytes, tag %llx) byte %zu changed", (void *)it.p, it.n,
			      (unsigned long long)it.tag, bad);
		if (rtalloc_malloc_usable_size(it.p) < it.n)
			tfail("consumer: usable size of %p below %zu", (void *)it.p, it.n);
		rtalloc_free(it.p);
	}
}

static void producer_consumer(void **state)
{
	UNUSED_STATE(state);
	enum { NP = 2, NC = 2, ITEMS = 20000 };
	pthread_t tp[NP], tc[NC];
	struct pc_arg pa[NP];
	reset_failures();
	pthread_mutex_lock(&ring.m);
	ring.head = ring.count = 0;
	ring.producers_left = NP;
	ring.consumed = 0;
	pthread_mutex_unlock(&ring.m);
	for (unsigned i = 0; i < NP; i++)
		pa[i] = (struct pc_arg){i + 1, ITEMS};
	start_threads(tc, NC, consumer, NULL, 0);
	start_threads(tp, NP, producer, pa, sizeof(pa[0]));
	join_threads(tp, NP);
	join_threads(tc, NC);
	assert_no_failures();
	assert_int_equal(ring.consumed, (uint64_t)NP * ITEMS);
	assert_everything_back();
}

/* ---- thousands of short-lived threads --------------------------------------- */

static void *short_lived(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	void *keep[RT_NMED + 2];
	size_t k = 0;
	/* One block of every class up to 32 KiB and a large one, written and
	 * freed: they stay in this thread's cache until it exits. */
	for (unsigned c = 1; c <= RT_NMED + 1; c++) {
		size_t n = rt_class_size(c) - (id % 7);
		unsigned char *p = rtalloc_malloc(n);
		if (!p) {
			tfail("short-lived thread %u: malloc(%zu) failed", id, n);
			continue;
		}
		fill_pattern(p, n, id * 31 + c);
		if (check_pattern(p, n, id * 31 + c) != n)
			tfail("short-lived thread %u: block %p changed", id, (void *)p);
		keep[k++] = p;
	}
	for (size_t i = 0; i < k; i++)
		rtalloc_free(keep[i]);
	/* A few more small ones, freed in another order. */
	void *s[24];
	for (int i = 0; i < 24; i++)
		s[i] = rtalloc_malloc(24 + (size_t)i * 40);
	for (int i = 23; i >= 0; i--)
		rtalloc_free(s[i]);
	return NULL;
}

static void many_short_lived_threads(void **state)
{
	UNUSED_STATE(state);
	enum { TOTAL = 2000, WAVE = 16 };
	reset_failures();
	size_t free0 = free_bytes();
	size_t held_max = 0;
	for (unsigned done = 0; done < TOTAL; done += WAVE) {
		pthread_t t[WAVE];
		for (unsigned i = 0; i < WAVE; i++) {
			int e = pthread_create(&t[i], NULL, short_lived, (void *)(uintptr_t)(done + i));
			if (e)
				fail_msg("pthread_create #%u: %s", done + i, strerror(e));
		}
		join_threads(t, WAVE);
		size_t held = pages_held();
		if (held > held_max)
			held_max = held;
	}
	assert_no_failures();
	/* Exited threads hold nothing: memory in use does not grow with the
	 * number of threads that have come and gone. */
	assert_int_equal(held_max, 0);
	assert_everything_back();
	size_t free1 = free_bytes();
	/* The buddy allocators' free bytes are back, up to small pages kept idle
	 * on their partial lists (a few per class). */
	if (free1 + 8 * RT_NSMALL * RT_PAGE_SIZE < free0)
		fail_msg("free bytes %zu -> %zu after %d threads", free0, free1, TOTAL);
}

/* ---- rtalloc_thread_prepare ------------------------------------------------- */

struct prep_result {
	int rc;
	unsigned short_bins;        /* classes whose cache holds less than half the limit */
	uint64_t slow_after_prepare; /* slow mallocs during one malloc of every class */
	int done;
};

static void *prepare_worker(void *arg)
{
	struct prep_result *r = arg;
	r->rc = rtalloc_thread_prepare();
	for (unsigned c = 1; c <= RT_NCLASS; c++) /* the large classes: the thread's share */
		if (rt_tc.bin[c].count < (c <= RT_NMED ? rt_tcache_limit(c) : rt_tc.bin[c].limit) / 2)
			r->short_bins++;
	void *p[RT_NCLASS + 1];
	for (unsigned c = 1; c <= RT_NCLASS; c++) {
		/* every class the thread's share of the budget caches (a small
		 * pool leaves the large ones to the slow path) */
		uint64_t slow0 = rt_tc.st.slow_mallocs;
		bool cached = rt_tc.bin[c].limit > 0;
		p[c] = rtalloc_malloc(rt_class_size(c));
		if (cached)
			r->slow_after_prepare += rt_tc.st.slow_mallocs - slow0;
		if (p[c])
			memset(p[c], 0x11, rt_class_size(c));
	}
	for (unsigned c = 1; c <= RT_NCLASS; c++)
		rtalloc_free(p[c]);
	/* A second prepare tops the caches up again. */
	if (rtalloc_thread_prepare() != 0)
		r->rc = -1;
	r->done = 1;
	return NULL;
}

static void thread_prepare(void **state)
{
	UNUSED_STATE(state);
	struct prep_result r = {0};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, prepare_worker, &r), 0);
	pthread_join(t, NULL);
	assert_true(r.done);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.short_bins, 0);
	assert_int_equal(r.slow_after_prepare, 0);
	assert_everything_back();

	/* A thread with a small stack: the stack pre-fault (1 MiB configured)
	 * must stay within it. */
	struct prep_result r2 = {0};
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 << 10);
	assert_int_equal(pthread_create(&t, &at, prepare_worker, &r2), 0);
	pthread_attr_destroy(&at);
	pthread_join(t, NULL);
	assert_true(r2.done);
	assert_int_equal(r2.rc, 0);
	assert_everything_back();
}

/* ---- cancellation while holding cached blocks ------------------------------- */

static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int ready;
} cancel_sync = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void *cancel_victim(void *arg)
{
	(void)arg;
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	void *p[64];
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 64; i++)
			p[i] = rtalloc_malloc((size_t)16 << (i % 12));
		for (int i = 0; i < 64; i++)
			rtalloc_free(p[i]);
	}
	pthread_mutex_lock(&cancel_sync.m);
	cancel_sync.ready = 1;
	pthread_cond_signal(&cancel_sync.cv);
	pthread_mutex_unlock(&cancel_sync.m);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
	/* Until cancelled.  The cancellation point is pthread_testcancel, not a
	 * blocking call: TSan loses track of a thread cancelled inside one of
	 * its interceptors (nanosleep...) and then reports false races. */
	for (;;) {
		pthread_testcancel();
		sched_yield();
	}
	return NULL;
}

static void cancelled_thread_returns_cache(void **state)
{
	UNUSED_STATE(state);
	size_t held0 = pages_held();
	assert_int_equal(held0, 0);
	pthread_t t;
	cancel_sync.ready = 0;
	assert_int_equal(pthread_create(&t, NULL, cancel_victim, NULL), 0);
	pthread_mutex_lock(&cancel_sync.m);
	while (!cancel_sync.ready)
		pthread_cond_wait(&cancel_sync.cv, &cancel_sync.m);
	pthread_mutex_unlock(&cancel_sync.m);
	/* The victim's cache holds blocks now. */
	assert_true(pages_held() > 0);
	assert_int_equal(pthread_cancel(t), 0);
	void *ret = NULL;
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, PTHREAD_CANCELED);
	assert_everything_back();
}

/* ---- allocation from TLS destructors after the cache is gone ---------------- */

static pthread_key_t late_key;
static struct {
	int state_seen;
	int ok;
	int ran;
} late;

static void late_destructor(void *v)
{
	(void)v;
	late.ran = 1;
	late.state_seen = rt_tc.state;
	int ok = 1;
	void *p[RT_NCLASS + 2];
	for (unsigned c = 1; c <= RT_NCLASS + 1; c++) {
		p[c] = rtalloc_malloc(rt_class_size(c));
		if (!p[c]) {
			ok = 0;
			continue;
		}
		fill_pattern(p[c], rt_class_size(c), c);
	}
	for (unsigned c = 1; c <= RT_NCLASS + 1; c++)
		if (p[c]) {
			if (check_pattern(p[c], rt_class_size(c), c) != rt_class_size(c))
				ok = 0;
			rtalloc_free(p[c]);
		}
	/* Nothing is cached by an exited thread. */
	for (unsigned c = 1; c <= RT_NCLASS; c++)
		if (rt_tc.bin[c].count)
			ok = 0;
	late.ok = ok;
}

static void *late_worker(void *arg)
{
	(void)arg;
	void *p = rtalloc_malloc(100);
	rtalloc_free(p); /* the thread has a live cache */
	pthread_setspecific(late_key, (void *)1);
	return NULL;
}

static void allocation_in_tls_destructor(void **state)
{
	UNUSED_STATE(state);
	/* Created after librtalloc's key: glibc runs destructors in key order, so
	 * this one runs after the thread's cache was returned. */
	assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
	memset(&late, 0, sizeof(late));
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, late_worker, NULL), 0);
	pthread_join(t, NULL);
	pthread_key_delete(late_key);
	assert_true(late.ran);
	assert_int_equal(late.state_seen, RT_TC_DEAD);
	assert_true(late.ok);
	assert_everything_back();
}

/* ---- huge blocks from many threads at once ---------------------------------- */

static void *huge_worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct rng r;
	rng_seed(&r, 5 + id);
	for (int i = 0; i < 2000; i++) {
		size_t n = 32769 + (size_t)rng_below(&r, 200 << 10);
		unsigned char *p = rtalloc_malloc(n);
		if (!p) {
			tfail("huge thread %u: malloc(%zu) failed", id, n);
			return NULL;
		}
		p[0] = (unsigned char)id;
		p[n - 1] = (unsigned char)i;
		if (p[0] != (unsigned char)id || p[n - 1] != (unsigned char)i)
			tfail("huge thread %u: block changed", id);
		rtalloc_free(p);
	}
	return NULL;
}

static void concurrent_huge_blocks(void **state)
{
	UNUSED_STATE(state);
	enum { NT = 4 };
	pthread_t t[NT];
	reset_failures();
	for (unsigned i = 0; i < NT; i++)
		assert_int_equal(pthread_create(&t[i], NULL, huge_worker, (void *)(uintptr_t)i), 0);
	join_threads(t, NT);
	assert_no_failures();
	assert_everything_back();
}

/* ---- fork while other threads allocate ------------------------------------ */

static volatile int hammer_stop;

static void *hammer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct rng r;
	rng_seed(&r, 31 + id);
	void *keep[32] = {0};
	while (!__atomic_load_n(&hammer_stop, __ATOMIC_RELAXED)) {
		size_t i = (size_t)rng_below(&r, 32);
		rtalloc_free(keep[i]);
		keep[i] = rtalloc_malloc(pick_size(&r));
		if (!keep[i])
			tfail("hammer %u: malloc failed", id);
	}
	for (size_t i = 0; i < 32; i++)
		rtalloc_free(keep[i]);
	return NULL;
}

/* In the child only the forking thread exists: the arena locks must be free
 * and the heap consistent, whatever the other threads were doing. */
static int fork_child(void *arg)
{
	(void)arg;
	void *p[64];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 64; i++) {
			p[i] = rtalloc_malloc((size_t)16 << (i % 14));
			CHILD_CHECK(p[i] != NULL);
			memset(p[i], i, (size_t)16 << (i % 14));
		}
		for (int i = 0; i < 64; i++)
			rtalloc_free(p[i]);
	}
	CHILD_CHECK(rtalloc_check() == 0);
	return 0;
}

static void fork_while_threads_allocate(void **state)
{
	UNUSED_STATE(state);
	enum { NT = 3, FORKS = 20 };
	pthread_t t[NT];
	reset_failures();
	__atomic_store_n(&hammer_stop, 0, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < NT; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)i), 0);
	for (int f = 0; f < FORKS; f++) {
		struct child_result r;
		run_child(fork_child, NULL, &r);
		if (!r.exited || r.exit_code != 0) {
			__atomic_store_n(&hammer_stop, 1, __ATOMIC_RELAXED);
			join_threads(t, NT);
			assert_child_ok(&r);
		}
	}
	__atomic_store_n(&hammer_stop, 1, __ATOMIC_RELAXED);
	join_threads(t, NT);
	assert_no_failures();
	assert_everything_back();
}

/* ---- statistics read live (the thread registry) -------------------------- */

#define LIVE_PAIRS 10000

struct live_arg {
	atomic_int phase; /* 1: counted, waiting; 2: may exit */
	uint64_t slow_before, slow_after;
};

static void *live_worker(void *arg)
{
	struct live_arg *a = arg;
	assert_int_equal(rtalloc_thread_prepare(), 0);
	struct rt_tcounters c = my_counts();
	a->slow_before = c.slow_mallocs + c.slow_frees + c.refills + c.flushes;
	for (int i = 0; i < LIVE_PAIRS; i++) { /* one block back and forth: the fast paths only */
		void *p = rtalloc_malloc(64);
		rtalloc_free(p);
	}
	c = my_counts();
	a->slow_after = c.slow_mallocs + c.slow_frees + c.refills + c.flushes;
	atomic_store(&a->phase, 1);
	while (atomic_load(&a->phase) != 2)
		sched_yield();
	return NULL;
}

/* Another thread reads a live thread's fast-path counts at once (no slow path
 * published them), and keeps them after the thread exits. */
static void stats_read_live(void **state)
{
	UNUSED_STATE(state);
	struct rtalloc_stats s0 = {.size = sizeof(s0)}, s1 = {.size = sizeof(s1)}, s2 = {.size = sizeof(s2)};
	assert_int_equal(rtalloc_stats(&s0), 0);
	struct live_arg a = {0};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, live_worker, &a), 0);
	while (atomic_load(&a.phase) != 1)
		sched_yield();
	assert_int_equal(a.slow_after, a.slow_before);
	assert_int_equal(rtalloc_stats(&s1), 0);
	assert_int_equal(s1.threads, s0.threads + 1);
	if (s1.mallocs - s0.mallocs < LIVE_PAIRS || s1.frees - s0.frees < LIVE_PAIRS)
		fail_msg("a live thread's %d pairs not seen: %llu allocations, %llu frees", LIVE_PAIRS,
			 (unsigned long long)(s1.mallocs - s0.mallocs),
			 (unsigned long long)(s1.frees - s0.frees));
	assert_true(s1.bytes_allocated - s0.bytes_allocated >= 64u * LIVE_PAIRS);
	assert_true(s1.bytes_freed - s0.bytes_freed >= 64u * LIVE_PAIRS);
	atomic_store(&a.phase, 2);
	join_threads(&t, 1);
	assert_int_equal(rtalloc_stats(&s2), 0);
	assert_int_equal(s2.threads, s0.threads);
	assert_true(s2.mallocs >= s1.mallocs && s2.frees >= s1.frees);
	assert_true(s2.bytes_allocated >= s1.bytes_allocated && s2.bytes_freed >= s1.bytes_freed);
	assert_everything_back();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mixed_threads),
		cmocka_unit_test(producer_consumer),
		cmocka_unit_test(many_short_lived_threads),
		cmocka_unit_test(thread_prepare),
		cmocka_unit_test(cancelled_thread_returns_cache),
		cmocka_unit_test(allocation_in_tls_destructor),
		cmocka_unit_test(concurrent_huge_blocks),
		cmocka_unit_test(fork_while_threads_allocate),
		cmocka_unit_test(stats_read_live),
	};
	int failed = cmocka_run_group_tests_name("threads", tests, group_setup, NULL);
	rt_stats_remove(); /* when run by hand with RTALLOC_STATS=1: not left to the destructor */
	return failed;
}
