/* SPDX-License-Identifier: MIT */
/*
 * difftest.c - differential fuzz test of the whole malloc family (tests/fuzz).
 *
 * Seeded random sequences of malloc, calloc, realloc, reallocarray, free,
 * free_sized, posix_memalign, aligned_alloc, memalign, valloc, pvalloc and
 * malloc_usable_size, in several threads that pass blocks to each other, are
 * checked against a model of what glibc promises (doc/rtalloc.3, "rtalloc_malloc()
 * and the rest"):
 *   - every block is aligned (16 bytes; the alignment asked; a page), its
 *     usable size covers the request (pvalloc: whole pages), calloc's is zero;
 *   - a pattern written over all its usable bytes is intact when the block is
 *     passed on, reallocated (the common prefix) or freed;
 *   - no two live blocks overlap (one address-ordered table of all threads');
 *   - errors exactly when due: EINVAL for bad alignments, ENOMEM for sizes
 *     above PTRDIFF_MAX and overflowing products, a failed realloc leaves the
 *     block as it was; an ordinary request fails (ENOMEM) only when the pool
 *     could not hold it, and after the phase a single thread fills the pool
 *     (it must get at least half of it), frees all, and gets it again;
 *   - rtalloc_check() finds the heap sound at the end.
 *
 * Built twice: plain names, run under LD_PRELOAD=librtalloc.so (suite
 * 'system'), and with -DDIFF_CORE against the core's rtalloc_* names (suites
 * 'unit' and 'threads': ASan+UBSan and TSan run it).  The pool is
 * DIFF_POOL_MIB MiB and must not grow (RTALLOC_ON_EXHAUST=fail; the core
 * build passes it to rtalloc_init).
 *
 *   difftest [--seed N] [--ops N] [--threads N] [--seconds S]
 * Defaults: seed 1, 200000 operations per thread, 3 threads; --seconds runs
 * until that much time has passed instead (RTALLOC_DIFFTEST_SECONDS and
 * RTALLOC_DIFFTEST_SEED too: what tools/fuzz sets for a long run).  A failure
 * prints its seed and aborts.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rtalloc.h"

#ifdef DIFF_CORE
#define M(name) rtalloc_##name
#else
#include <dlfcn.h>
#include <malloc.h>
#define M(name) name
/* C23's free_sized is not in glibc 2.36: librtalloc's, found at start. */
static void (*free_sized_fn)(void *, size_t);
#define free_sized free_sized_fn
#endif

#define DIFF_POOL_MIB 16
#define POOL ((size_t)DIFF_POOL_MIB << 20)
#define MAX_THREADS 8
#define MAX_LIVE 128       /* blocks a thread holds at most */
#define MAILBOX 32         /* blocks waiting for a thread */
#define BIG (1u << 20)     /* the largest ordinary request */
#define PAGE 4096u
/* Bytes the other threads' caches may hold without it being a leak (per
 * thread: the cached classes' lists, RT_BATCH_MAX blocks of up to 32 KiB,
 * twice), plus rounding and the pool's own pages. */
#define CACHE_SLACK ((size_t)4 << 20)

struct blk {
	unsigned char *p;
	size_t size, usable;
	unsigned tag; /* pattern offset, 0..255 */
};

static unsigned char pat[256 + 2 * BIG + 2 * PAGE]; /* pat[tag + i]: byte i of a block */

static unsigned nthreads = 3;
static uint64_t seed = 1, ops = 200000;
static double seconds;

#define FAIL(...)                                                                       \
	do {                                                                            \
		fprintf(stderr, "difftest (seed %" PRIu64 "): ", seed);                 \
		fprintf(stderr, __VA_ARGS__);                                           \
		fputc('\n', stderr);                                                    \
		abort();                                                                \
	} while (0)

static uint64_t rnd(uint64_t *s) /* xorshift64* */
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static size_t usable_of(void *p) { return M(malloc_usable_size)(p); }

/* ---- all live blocks of all threads, by address -------------------------------------- */

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uintptr_t lo, hi;
} table[MAX_THREADS * (MAX_LIVE + MAILBOX) + 16];
static size_t ntable, live_bytes;

static size_t table_find(uintptr_t lo) /* first entry with .lo >= lo */
{
	size_t a = 0, b = ntable;
	while (a < b) { /* bound: log2(entries) */
		size_t m = (a + b) / 2;
		if (table[m].lo < lo)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

static void table_add(const struct blk *b)
{
	uintptr_t lo = (uintptr_t)b->p, hi = lo + b->usable;
	pthread_mutex_lock(&table_mu);
	size_t i = table_find(lo);
	if (i < ntable && table[i].lo < hi)
		FAIL("block %p+%zu overlaps the live block at %#" PRIxPTR, (void *)b->p, b->usable, table[i].lo);
	if (i > 0 && table[i - 1].hi > lo)
		FAIL("block %p+%zu overlaps the live block %#" PRIxPTR "..%#" PRIxPTR, (void *)b->p, b->usable,
		     table[i - 1].lo, table[i - 1].hi);
	if (ntable == sizeof(table) / sizeof(table[0]))
		FAIL("table full");
	memmove(&table[i + 1], &table[i], (ntable - i) * sizeof(table[0]));
	table[i].lo = lo;
	table[i].hi = hi;
	ntable++;
	live_bytes += b->usable;
	pthread_mutex_unlock(&table_mu);
}

static void table_del(const struct blk *b)
{
	pthread_mutex_lock(&table_mu);
	size_t i = table_find((uintptr_t)b->p);
	if (i == ntable || table[i].lo != (uintptr_t)b->p)
		FAIL("block %p is not in the table", (void *)b->p);
	memmove(&table[i], &table[i + 1], (ntable - i - 1) * sizeof(table[0]));
	ntable--;
	live_bytes -= b->usable;
	pthread_mutex_unlock(&table_mu);
}

static size_t live_now(void)
{
	pthread_mutex_lock(&table_mu);
	size_t n = live_bytes;
	pthread_mutex_unlock(&table_mu);
	return n;
}

/* ---- one block ----------------------------------------------------------------------- */

static void verify(const struct blk *b, size_t n, const char *when)
{
	if (n && memcmp(b->p, pat + b->tag, n) != 0) {
		size_t i = 0;
		while (b->p[i] == pat[b->tag + i]) /* bound: n (memcmp found a difference) */
			i++;
		FAIL("%s: block %p (size %zu) byte %zu is %#x, was written %#x", when, (void *)b->p, b->size, i,
		     b->p[i], pat[b->tag + i]);
	}
}

/* A block just returned: check it, fill it, record it. */
static void adopt(struct blk *b, void *p, size_t size, size_t align, unsigned tag, size_t keep,
		  bool zeroed, const char *call)
{
	b->p = p;
	b->size = size;
	b->tag = tag;
	uintptr_t a = (uintptr_t)p;
	if (a % 16 != 0)
		FAIL("%s(%zu) = %p: not 16-byte aligned", call, size, p);
	if (align && a % align != 0)
		FAIL("%s(%zu, alignment %zu) = %p: misaligned", call, size, align, p);
	b->usable = usable_of(p);
	if (b->usable < size)
		FAIL("%s(%zu) = %p: usable size %zu < request", call, size, p, b->usable);
	if (b->usable > 2 * BIG + PAGE)
		FAIL("%s(%zu) = %p: usable size %zu, more than the test expects", call, size, p, b->usable);
	if (zeroed)
		for (size_t i = 0; i < size; i++) /* bound: size */
			if (b->p[i])
				FAIL("%s(%zu) = %p: byte %zu is not zero", call, size, p, i);
	table_add(b);
	memcpy(b->p + keep, pat + tag + keep, b->usable - keep);
}

static void release(struct blk *b, uint64_t r)
{
	verify(b, b->usable, "free");
	table_del(b);
	if (r & 1)
		M(free_sized)(b->p, b->size);
	else
		M(free)(b->p);
	b->p = NULL;
}

/* ---- threads passing blocks ---------------------------------------------------------- */

struct mailbox {
	pthread_mutex_t mu;
	unsigned n;
	struct blk b[MAILBOX];
};

static struct mailbox boxes[MAX_THREADS];

struct worker {
	unsigned id;
	uint64_t rng, done;
	unsigned nlive;
	struct blk live[MAX_LIVE];
	uint64_t counts[16];
};

static bool time_left(uint64_t n, const struct timespec *t0)
{
	if (seconds <= 0)
		return n < ops;
	if (n % 256)
		return true;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9 < seconds;
}

static size_t rand_size(uint64_t *s)
{
	uint64_t r = rnd(s);
	switch (r % 64) {
	case 0: return (size_t)(r >> 8) % BIG + 1;        /* large */
	case 1: case 2: return (size_t)(r >> 8) % 65536;  /* medium, 0 included */
	default: return (size_t)(r >> 8) % 1024 + 1;      /* small */
	}
}

/* An ordinary request failed: it must say ENOMEM and be due (the pool full). */
static void failed(int err, size_t size, const char *call)
{
	if (err != ENOMEM)
		FAIL("%s(%zu) failed with errno %d, not ENOMEM", call, size, err);
	size_t live = live_now();
	if (live + size + nthreads * CACHE_SLACK < POOL)
		FAIL("%s(%zu) failed (ENOMEM) with %zu bytes live in a %zu-byte pool: not due", call, size, live,
		     POOL);
}

/* The errors that are always due (sizes through volatiles: the compiler
 * would refuse the calls it can see are too large). */
static volatile size_t too_big = (size_t)PTRDIFF_MAX + 1, half_max = SIZE_MAX / 2, quarter_max = SIZE_MAX / 4,
		       not_pow2 = 48;

static void bad_requests(struct worker *w)
{
	void *q = (void *)1;
	errno = 0;
	if ((q = M(malloc)(too_big)) || errno != ENOMEM)
		FAIL("malloc(PTRDIFF_MAX + 1) = %p, errno %d", q, errno);
	errno = 0;
	if ((q = M(calloc)(half_max, 3)) || errno != ENOMEM)
		FAIL("calloc overflowing = %p, errno %d", q, errno);
	void *m = (void *)1;
	int e = M(posix_memalign)(&m, 24, 16);
	if (e != EINVAL || m != (void *)1)
		FAIL("posix_memalign(24) = %d, left %p", e, m);
	e = M(posix_memalign)(&m, sizeof(void *) / 2, 16);
	if (e != EINVAL)
		FAIL("posix_memalign(sizeof(void *) / 2) = %d", e);
	errno = 0;
	if ((q = M(aligned_alloc)(not_pow2, 96)) || errno != EINVAL)
		FAIL("aligned_alloc(48, 96) = %p, errno %d", q, errno);
	if (w->nlive) { /* a failed realloc/reallocarray leaves the block as it was */
		struct blk *b = &w->live[rnd(&w->rng) % w->nlive];
		errno = 0;
		if ((q = M(realloc)(b->p, too_big)) || errno != ENOMEM)
			FAIL("realloc(p, PTRDIFF_MAX + 1) = %p, errno %d", q, errno);
		errno = 0;
		if ((q = M(reallocarray)(b->p, quarter_max, 8)) || errno != ENOMEM)
			FAIL("reallocarray overflowing = %p, errno %d", q, errno);
		if (usable_of(b->p) != b->usable)
			FAIL("a failed realloc changed the block's usable size");
		verify(b, b->usable, "after a failed realloc");
	}
	errno = 1234;
	M(free)(NULL);
	if (errno != 1234)
		FAIL("free(NULL) changed errno");
}

static void one_op(struct worker *w)
{
	uint64_t r = rnd(&w->rng);
	unsigned op = (unsigned)(r % 100);
	unsigned tag = (unsigned)(r >> 56);
	struct mailbox *mine = &boxes[w->id];
	/* take what the others sent */
	if (op < 5) {
		pthread_mutex_lock(&mine->mu);
		while (mine->n && w->nlive < MAX_LIVE) { /* bound: MAILBOX */
			struct blk *b = &w->live[w->nlive++];
			*b = mine->b[--mine->n];
			verify(b, b->usable, "received from another thread");
		}
		pthread_mutex_unlock(&mine->mu);
		w->counts[0]++;
		return;
	}
	if (w->nlive && (op < 40 || w->nlive == MAX_LIVE)) {
		unsigned i = (unsigned)(rnd(&w->rng) % w->nlive);
		struct blk *b = &w->live[i];
		if (op < 10 && nthreads > 1) { /* pass it to another thread */
			unsigned to = (w->id + 1 + (unsigned)(r >> 20) % (nthreads - 1)) % nthreads;
			struct mailbox *box = &boxes[to];
			pthread_mutex_lock(&box->mu);
			bool sent = box->n < MAILBOX;
			if (sent)
				box->b[box->n++] = *b;
			pthread_mutex_unlock(&box->mu);
			if (sent) {
				w->live[i] = w->live[--w->nlive];
				w->counts[1]++;
				return;
			}
		}
		if (op < 25) { /* realloc: grow, shrink, same class; or reallocarray; or to 0 */
			size_t n = (r >> 30) % 8 == 0 ? b->usable : rand_size(&w->rng);
			struct blk old = *b;
			verify(b, b->usable, "before realloc");
			table_del(b);
			void *q;
			const char *call = "realloc";
			errno = 0;
			if ((r >> 33) % 16 == 0 || n == 0) {
				q = M(realloc)(b->p, 0); /* frees: NULL */
				if (q)
					FAIL("realloc(p, 0) = %p, not NULL", q);
				w->live[i] = w->live[--w->nlive];
				w->counts[2]++;
				return;
			}
			if ((r >> 37) % 4 == 0 && n >= 8) {
				call = "reallocarray";
				n &= ~(size_t)7;
				q = M(reallocarray)(b->p, n / 8, 8);
			} else {
				q = M(realloc)(b->p, n);
			}
			if (!q) {
				int e = errno;
				table_add(&old);
				failed(e, n, call);
				verify(&old, old.usable, "after a failed realloc");
				return;
			}
			/* the contents up to the smaller of the two sizes are kept */
			struct blk moved = {q, n, n, old.tag};
			verify(&moved, old.size < n ? old.size : n, call);
			adopt(b, q, n, 0, old.tag, 0, false, call);
			w->counts[3]++;
			return;
		}
		if (op < 27) {
			size_t u = usable_of(b->p);
			if (u != b->usable)
				FAIL("malloc_usable_size(%p) = %zu, was %zu", (void *)b->p, u, b->usable);
		}
		release(b, r >> 40);
		w->live[i] = w->live[--w->nlive];
		w->counts[4]++;
		return;
	}
	if (w->nlive == MAX_LIVE)
		return;
	struct blk *b = &w->live[w->nlive];
	size_t size = rand_size(&w->rng), align = 0;
	void *p = NULL;
	const char *call;
	bool zeroed = false;
	int e;
	errno = 0;
	switch (op % 10) {
	case 0:
		call = "calloc";
		zeroed = true;
		{
			size_t k = (size_t)(r >> 24) % 4 + 1, each = size / k;
			size = k * each;
			p = M(calloc)(k, each);
		}
		break;
	case 1:
		call = "posix_memalign";
		align = (size_t)8 << ((r >> 24) % 14); /* 8 .. 64 KiB */
		e = M(posix_memalign)(&p, align, size);
		if (e) {
			if (p)
				FAIL("posix_memalign failed (%d) and set the pointer", e);
			errno = e;
		}
		break;
	case 2:
		call = "aligned_alloc";
		align = (size_t)1 << ((r >> 24) % 17); /* 1 .. 64 KiB */
		p = M(aligned_alloc)(align, size);
		break;
	case 3: {
		call = "memalign";
		size_t asked = (size_t)((r >> 24) % 5000) + 1; /* not always a power of two */
		align = 1;
		while (align < asked) /* bound: 13 doublings */
			align <<= 1;
		p = M(memalign)(asked, size);
		break;
	}
	case 4:
		if ((r >> 24) % 4)
			goto plain;
		call = "valloc";
		align = PAGE;
		p = M(valloc)(size);
		break;
	case 5:
		if ((r >> 24) % 4)
			goto plain;
		call = "pvalloc";
		align = PAGE;
		p = M(pvalloc)(size);
		size = size ? (size + PAGE - 1) / PAGE * PAGE : PAGE; /* what pvalloc promises usable */
		break;
	case 6:
		if ((r >> 24) % 64 == 0) {
			bad_requests(w);
			w->counts[5]++;
			return;
		}
		/* fall through */
	default:
	plain:
		call = "malloc";
		p = M(malloc)(size);
		break;
	}
	if (!p) {
		failed(errno, size, call);
		return;
	}
	adopt(b, p, size, align, tag, 0, zeroed, call);
	w->nlive++;
	w->counts[6 + op % 10]++;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t n = 0; time_left(n, &t0); n++) { /* bound: ops, or the time */
		one_op(w);
		w->done++;
	}
	/* Leave: free what this thread holds (its mailbox: main(), after all ended). */
	while (w->nlive) { /* bound: MAX_LIVE */
		w->nlive--;
		release(&w->live[w->nlive], w->nlive);
	}
	return NULL;
}

/* One thread fills the pool with blocks of one size (no growth: fail), frees
 * them all and fills it again: the failure comes only when the pool is
 * full, and nothing was lost in between. */
static size_t fill(size_t size, void **keep, size_t max)
{
	size_t n = 0;
	for (;;) { /* bound: max blocks */
		if (n == max)
			FAIL("fill(%zu): more than %zu blocks in a %zu-byte pool", size, max, POOL);
		errno = 0;
		void *p = M(malloc)(size);
		if (!p) {
			if (errno != ENOMEM)
				FAIL("fill(%zu): errno %d, not ENOMEM", size, errno);
			break;
		}
		memset(p, 0x5a, size);
		keep[n++] = p;
	}
	return n;
}

static void exhaust_phase(void)
{
	static void *keep[2 * DIFF_POOL_MIB * 16];
	const size_t size = 128 << 10, max = sizeof(keep) / sizeof(keep[0]);
	size_t a = fill(size, keep, max);
	if (a * size < POOL / 2)
		FAIL("the pool (%zu bytes) ran out after %zu blocks of %zu bytes: not due", POOL, a, size);
	for (size_t i = 0; i < a; i++) /* bound: a */
		M(free)(keep[i]);
	size_t b = fill(size, keep, max);
	if (b < a)
		FAIL("after freeing all, only %zu blocks of %zu bytes fit, %zu did before", b, size, a);
	for (size_t i = 0; i < b; i++) /* bound: b */
		M(free)(keep[i]);
	void *p = M(malloc)(POOL / 8);
	if (!p)
		FAIL("an empty %zu-byte pool cannot serve %zu bytes", POOL, POOL / 8);
	M(free)(p);
	printf("exhaust: %zu blocks of %zu bytes before ENOMEM, %zu again after freeing all\n", a, size, b);
}

static int (*check_fn)(void);

int main(int argc, char **argv)
{
	const char *env = getenv("RTALLOC_DIFFTEST_SECONDS");
	if (env && *env)
		seconds = strtod(env, NULL);
	env = getenv("RTALLOC_DIFFTEST_SEED");
	if (env && *env)
		seed = strtoull(env, NULL, 0);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--seed") == 0 && v)
			seed = strtoull(v, NULL, 0), i++;
		else if (strcmp(argv[i], "--ops") == 0 && v)
			ops = strtoull(v, NULL, 0), i++;
		else if (strcmp(argv[i], "--threads") == 0 && v)
			nthreads = (unsigned)strtoul(v, NULL, 0), i++;
		else if (strcmp(argv[i], "--seconds") == 0 && v)
			seconds = strtod(v, NULL), i++;
		else {
			fprintf(stderr, "usage: difftest [--seed N] [--ops N] [--threads N] [--seconds S]\n");
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > MAX_THREADS)
		nthreads = 3;
#ifdef DIFF_CORE
	struct rtalloc_config cfg = {
		.size = sizeof(cfg), .pool_size = POOL, .pool_max = POOL,
		.mlock = RTALLOC_MLOCK_OFF, .on_exhaust = RTALLOC_EXHAUST_FAIL, .numa = RTALLOC_NUMA_OFF,
	};
	int e = rtalloc_init(&cfg);
	if (e) {
		fprintf(stderr, "difftest: rtalloc_init: %s\n", strerror(e));
		return 1;
	}
	check_fn = rtalloc_check;
#else
	check_fn = (int (*)(void))dlsym(RTLD_DEFAULT, "rtalloc_check");
	free_sized_fn = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
	if (!check_fn || !free_sized_fn) {
		fprintf(stderr, "difftest: librtalloc is not loaded (run it with LD_PRELOAD)\n");
		return 1;
	}
#endif
	uint64_t s = seed ^ 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < sizeof(pat); i++) /* bound: the pattern */
		pat[i] = (unsigned char)(rnd(&s) >> 56);
	static struct worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_mutex_init(&boxes[i].mu, NULL);
		w[i].id = i;
		w[i].rng = seed * 0x100000001b3ull + i + 1;
	}
	for (unsigned i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "difftest: pthread_create failed\n");
			return 1;
		}
	uint64_t total = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += w[i].done;
	}
	for (unsigned i = 0; i < nthreads; i++) /* blocks sent to threads that had left */
		while (boxes[i].n) { /* bound: MAILBOX */
			boxes[i].n--;
			release(&boxes[i].b[boxes[i].n], boxes[i].n);
		}
	if (ntable != 0)
		FAIL("%zu blocks left in the table", ntable);
	if (check_fn() != 0)
		FAIL("rtalloc_check() after the random phase");
	exhaust_phase();
	if (check_fn() != 0)
		FAIL("rtalloc_check() after the exhaustion phase");
	uint64_t c[16] = {0};
	for (unsigned i = 0; i < nthreads; i++)
		for (int k = 0; k < 16; k++)
			c[k] += w[i].counts[k];
	printf("difftest: seed %" PRIu64 ", %u threads, %" PRIu64 " operations: %" PRIu64 " received, %" PRIu64
	       " passed, %" PRIu64 " realloc(0), %" PRIu64 " reallocs, %" PRIu64 " frees, %" PRIu64
	       " error checks, %" PRIu64 " allocations: ok\n",
	       seed, nthreads, total, c[0], c[1], c[2], c[3], c[4], c[5],
	       c[6] + c[7] + c[8] + c[9] + c[10] + c[11] + c[12] + c[13] + c[14] + c[15]);
	return 0;
}
