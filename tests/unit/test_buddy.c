/* SPDX-License-Identifier: MIT */
/*
 * test_buddy.c - the page allocator (lib/buddy.c) on a plain descriptor array.
 *
 * rt_buddy_* never dereferences the addresses it manages: `addr` only sets the
 * skew, so the tests pass made-up addresses and check the absolute alignment
 * of every block (addr + (idx - first) * page) against its order.
 */
#include "unit.h"

#define MAXP 5000u
static struct rt_page pages[MAXP];
static struct rt_buddy B;

/* An address aligned to 2^28 pages (1 TiB): any skew we add is exact. */
#define BASE_ADDR ((uintptr_t)1 << 40)

static uintptr_t g_addr;
static uint32_t g_first;

static void setup(uint32_t first, uint32_t skew_pages, uint32_t limit, uint32_t add, unsigned arena)
{
	memset(pages, 0, sizeof(pages));
	memset(&B, 0xa5, sizeof(B)); /* init must set every field */
	g_first = first;
	g_addr = BASE_ADDR + ((uintptr_t)skew_pages << RT_PAGE_SHIFT);
	rt_buddy_init(&B, pages, first, g_addr, limit, arena);
	if (add)
		rt_buddy_add(&B, add);
}

static uintptr_t abs_addr(uint32_t idx) { return g_addr + ((uintptr_t)(idx - g_first) << RT_PAGE_SHIFT); }

static void assert_sound(void)
{
	const char *why = rt_buddy_check(&B);
	if (why)
		fail_msg("rt_buddy_check: %s", why);
}

static unsigned list_len(unsigned k)
{
	unsigned n = 0;
	for (uint32_t i = B.head[k]; i != RT_NIL && n <= MAXP; i = pages[i].next)
		n++;
	return n;
}

/* The block at idx of order k is USED, stamped, aligned in absolute terms and
 * inside the usable range. */
static void assert_block(uint32_t idx, unsigned k, unsigned arena)
{
	assert_int_not_equal(idx, RT_NIL);
	assert_true(idx >= g_first);
	assert_int_equal(pages[idx].state, RT_PS_USED);
	assert_int_equal(pages[idx].order, k);
	assert_int_equal(pages[idx].arena, arena);
	uintptr_t a = abs_addr(idx);
	assert_int_equal(a & ((RT_PAGE_SIZE << k) - 1), 0);
	uint32_t v = idx - B.first + B.skew;
	assert_true(v >= B.skew);
	assert_true((uint64_t)v + (1u << k) <= B.committed);
}

/* ---- basics --------------------------------------------------------------- */

static void init_empty(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 1024, 0, 0);
	assert_int_equal(B.top_order, 10);
	assert_int_equal(B.skew, 0);
	assert_int_equal(B.committed, 0);
	assert_int_equal(B.limit, 1024);
	assert_int_equal(B.free_pages, 0);
	assert_int_equal(B.min_free_pages, 0);
	assert_int_equal(B.nonempty, 0);
	for (unsigned k = 0; k < RT_NORDERS; k++)
		assert_int_equal(B.head[k], RT_NIL);
	assert_int_equal(rt_buddy_alloc(&B, 0), RT_NIL);
	assert_sound();

	/* top_order is floor(log2(limit)), capped at RT_ORDER_MAX. */
	setup(0, 0, 1000, 0, 0);
	assert_int_equal(B.top_order, 9);
	setup(0, 0, 1, 0, 0);
	assert_int_equal(B.top_order, 0);
	setup(0, 0, UINT32_MAX / 2, 0, 0);
	assert_int_equal(B.top_order, 30);
	setup(0, 0, 0, 0, 0);
	assert_int_equal(B.top_order, 0);
	assert_int_equal(rt_buddy_alloc(&B, 0), RT_NIL);
	assert_sound();
}

static void one_block_after_add(void **state)
{
	UNUSED_STATE(state);
	setup(7, 0, 1024, 1024, 3);
	assert_int_equal(B.committed, 1024);
	assert_int_equal(B.free_pages, 1024);
	assert_int_equal(B.min_free_pages, 1024);
	assert_int_equal(B.nonempty, 1ULL << 10);
	assert_int_equal(B.head[10], 7);
	assert_int_equal(pages[7].state, RT_PS_FREE);
	assert_int_equal(pages[7].order, 10);
	assert_int_equal(pages[7].arena, 3);
	assert_int_equal(pages[7].cls, 0);
	for (uint32_t i = 8; i < 7 + 1024; i++)
		assert_int_equal(pages[i].state, RT_PS_TAIL);
	/* Descriptors outside [first, first + limit) are never touched. */
	for (uint32_t i = 0; i < 7; i++)
		assert_int_equal(pages[i].state, 0);
	assert_int_equal(pages[7 + 1024].state, 0);
	assert_sound();
}

static void split_and_coalesce(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 1024, 1024, 1);
	uint32_t a = rt_buddy_alloc(&B, 0);
	assert_int_equal(a, 0);
	assert_block(a, 0, 1);
	assert_int_equal(B.free_pages, 1023);
	/* One split per order: a free block of every order 0..9 at 2^k. */
	assert_int_equal(B.nonempty, (1ULL << 10) - 1);
	for (unsigned k = 0; k < 10; k++) {
		assert_int_equal(B.head[k], 1u << k);
		assert_int_equal(list_len(k), 1);
		assert_int_equal(pages[1u << k].state, RT_PS_FREE);
		assert_int_equal(pages[1u << k].order, k);
	}
	assert_sound();

	/* Its buddy, then the buddy's buddy ... come from the split pieces. */
	uint32_t b = rt_buddy_alloc(&B, 0);
	assert_int_equal(b, 1);
	uint32_t c = rt_buddy_alloc(&B, 1);
	assert_int_equal(c, 2);
	assert_sound();

	/* Freeing in any order merges everything back into one block. */
	rt_buddy_free(&B, b);
	assert_sound();
	assert_int_equal(list_len(0), 1); /* b's buddy a is still used */
	rt_buddy_free(&B, a);
	assert_sound();
	assert_int_equal(list_len(0), 0);
	assert_int_equal(list_len(1), 1); /* merged 0+1, buddy c still used */
	rt_buddy_free(&B, c);
	assert_sound();
	assert_int_equal(B.nonempty, 1ULL << 10);
	assert_int_equal(B.head[10], 0);
	assert_int_equal(B.free_pages, 1024);
	for (uint32_t i = 1; i < 1024; i++) {
		assert_int_equal(pages[i].state, RT_PS_TAIL);
		assert_int_equal(pages[i].cls, 0);
	}
}

static void every_order(void **state)
{
	UNUSED_STATE(state);
	setup(5, 0, 1024, 1024, 2);
	for (unsigned k = 0; k <= 10; k++) {
		uint32_t idx = rt_buddy_alloc(&B, k);
		assert_block(idx, k, 2);
		assert_int_equal(B.free_pages, 1024 - (1u << k));
		assert_sound();
		rt_buddy_free(&B, idx);
		assert_sound();
		assert_int_equal(B.nonempty, 1ULL << 10);
		assert_int_equal(B.free_pages, 1024);
	}
	/* Orders above the top never fit. */
	assert_int_equal(rt_buddy_alloc(&B, 11), RT_NIL);
	assert_int_equal(rt_buddy_alloc(&B, RT_ORDER_MAX), RT_NIL);
	assert_int_equal(rt_buddy_alloc(&B, 63), RT_NIL);
	assert_int_equal(B.free_pages, 1024);
	assert_sound();
}

static void shuffle(uint32_t *v, size_t n, struct rng *r)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(r, i);
		uint32_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

static void exhaustion_every_order(void **state)
{
	UNUSED_STATE(state);
	static uint32_t got[1024];
	static uint8_t owner[1024];
	struct rng r;
	rng_seed(&r, 42);
	setup(0, 0, 1024, 1024, 0);
	for (unsigned k = 0; k <= 10; k++) {
		memset(owner, 0, sizeof(owner));
		size_t n = 0;
		for (;;) {
			uint32_t idx = rt_buddy_alloc(&B, k);
			if (idx == RT_NIL)
				break;
			assert_true(n < 1024);
			assert_block(idx, k, 0);
			for (uint32_t t = 0; t < (1u << k); t++) {
				assert_int_equal(owner[idx + t], 0); /* no overlap */
				owner[idx + t] = 1;
			}
			got[n++] = idx;
		}
		assert_int_equal(n, 1024u >> k);
		assert_int_equal(B.free_pages, 0);
		assert_int_equal(B.min_free_pages, 0);
		assert_int_equal(B.nonempty, 0);
		assert_int_equal(rt_buddy_alloc(&B, 0), RT_NIL);
		assert_sound();
		shuffle(got, n, &r);
		for (size_t i = 0; i < n; i++) {
			rt_buddy_free(&B, got[i]);
			if (i % 37 == 0)
				assert_sound();
		}
		assert_sound();
		assert_int_equal(B.free_pages, 1024);
		assert_int_equal(B.nonempty, 1ULL << 10);
	}
}

static void exhaustion_mixed(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 1024, 1024, 0);
	uint32_t a = rt_buddy_alloc(&B, 9);
	uint32_t b = rt_buddy_alloc(&B, 8);
	uint32_t c = rt_buddy_alloc(&B, 7);
	uint32_t d = rt_buddy_alloc(&B, 7);
	assert_int_not_equal(a, RT_NIL);
	assert_int_not_equal(b, RT_NIL);
	assert_int_not_equal(c, RT_NIL);
	assert_int_not_equal(d, RT_NIL);
	assert_int_equal(B.free_pages, 0);
	assert_int_equal(rt_buddy_alloc(&B, 0), RT_NIL);
	rt_buddy_free(&B, c);
	assert_int_equal(rt_buddy_alloc(&B, 8), RT_NIL); /* 128 free pages: no order 8 */
	uint32_t e = rt_buddy_alloc(&B, 7);
	assert_int_equal(e, c);
	rt_buddy_free(&B, e);
	rt_buddy_free(&B, d);
	uint32_t f = rt_buddy_alloc(&B, 8); /* c and d merged */
	assert_int_equal(f, c < d ? c : d);
	rt_buddy_free(&B, f);
	rt_buddy_free(&B, a);
	rt_buddy_free(&B, b);
	assert_sound();
	assert_int_equal(B.nonempty, 1ULL << 10);
}

/* ---- growth ------------------------------------------------------------------ */

static void growth(void **state)
{
	UNUSED_STATE(state);
	setup(2, 0, 1024, 100, 0);
	assert_int_equal(B.committed, 100);
	assert_int_equal(B.free_pages, 100);
	assert_int_equal(B.min_free_pages, 100);
	/* 100 = 64 + 32 + 4, largest aligned blocks first. */
	assert_int_equal(B.nonempty, (1ULL << 6) | (1ULL << 5) | (1ULL << 2));
	assert_int_equal(B.head[6], 2);
	assert_int_equal(B.head[5], 2 + 64);
	assert_int_equal(B.head[2], 2 + 96);
	assert_sound();
	assert_int_equal(rt_buddy_alloc(&B, 7), RT_NIL);

	uint32_t x = rt_buddy_alloc(&B, 6);
	assert_block(x, 6, 0);
	assert_int_equal(rt_buddy_alloc(&B, 6), RT_NIL);

	/* Grow to 300 pages: the new pages merge with the free ones below. */
	rt_buddy_add(&B, 300);
	assert_int_equal(B.committed, 300);
	assert_int_equal(B.free_pages, 300 - 64);
	assert_int_equal(B.min_free_pages, 36); /* growth keeps the low-water mark */
	assert_sound();
	uint32_t y = rt_buddy_alloc(&B, 7);
	assert_block(y, 7, 0);
	assert_sound();

	/* Grow past the limit: clamped to it. */
	rt_buddy_add(&B, 5000);
	assert_int_equal(B.committed, 1024);
	assert_int_equal(B.free_pages, 1024 - 64 - 128);
	assert_sound();
	rt_buddy_free(&B, x);
	rt_buddy_free(&B, y);
	assert_sound();
	assert_int_equal(B.free_pages, 1024);
	assert_int_equal(B.nonempty, 1ULL << 10); /* one block again */
	assert_int_equal(B.head[10], 2);

	/* Adding what is there already changes nothing. */
	rt_buddy_add(&B, 1024);
	assert_int_equal(B.free_pages, 1024);
	assert_sound();
}

/* Growth one page at a time ends in the same single block. */
static void growth_page_by_page(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 512, 0, 0);
	for (uint32_t n = 1; n <= 512; n++) {
		rt_buddy_add(&B, n);
		assert_int_equal(B.free_pages, n);
		assert_int_equal(B.committed, n);
		assert_sound();
	}
	assert_int_equal(B.nonempty, 1ULL << 9);
}

/* The documented contract is "grows only": a smaller count must not shrink
 * the usable range under blocks that are already there. */
static void add_smaller_count_does_not_shrink(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 1024, 512, 0);
	uint32_t a = rt_buddy_alloc(&B, 8);
	assert_int_not_equal(a, RT_NIL);
	rt_buddy_add(&B, 100);
	assert_int_equal(B.committed, 512);
	assert_sound();
	rt_buddy_free(&B, a);
	assert_sound();
	assert_int_equal(B.free_pages, 512);
}

static void low_water_mark(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 1024, 1024, 0);
	uint32_t a = rt_buddy_alloc(&B, 0);
	uint32_t b = rt_buddy_alloc(&B, 1);
	uint32_t c = rt_buddy_alloc(&B, 0);
	assert_int_equal(B.free_pages, 1020);
	assert_int_equal(B.min_free_pages, 1020);
	rt_buddy_free(&B, a);
	rt_buddy_free(&B, b);
	rt_buddy_free(&B, c);
	assert_int_equal(B.free_pages, 1024);
	assert_int_equal(B.min_free_pages, 1020); /* frees do not raise it */
	uint32_t d = rt_buddy_alloc(&B, 5);
	assert_int_equal(B.min_free_pages, 992);
	uint32_t e = rt_buddy_alloc(&B, 0);
	assert_int_equal(B.min_free_pages, 991);
	rt_buddy_free(&B, e);
	rt_buddy_free(&B, d);
	assert_int_equal(B.min_free_pages, 991);
	/* A failed allocation does not move it. */
	assert_int_equal(rt_buddy_alloc(&B, 11), RT_NIL);
	assert_int_equal(B.min_free_pages, 991);
	assert_sound();

	/* The first add sets it; an add of 0 pages first does not count. */
	setup(0, 0, 1024, 0, 0);
	rt_buddy_add(&B, 0);
	assert_int_equal(B.min_free_pages, 0);
	rt_buddy_add(&B, 256);
	assert_int_equal(B.min_free_pages, 256);
	uint32_t f = rt_buddy_alloc(&B, 7);
	assert_int_equal(B.min_free_pages, 128);
	rt_buddy_add(&B, 1024);
	assert_int_equal(B.free_pages, 1024 - 128);
	assert_int_equal(B.min_free_pages, 128);
	rt_buddy_free(&B, f);
	assert_int_equal(B.min_free_pages, 128);
	assert_sound();
}

/* ---- skew: a range that does not start on an aligned address ---------------- */

static size_t aligned_slots(uint32_t lo, uint32_t hi, unsigned k)
{
	uint64_t s = 1ULL << k;
	uint64_t first = (lo + s - 1) / s, last = hi / s;
	return last > first ? (size_t)(last - first) : 0;
}

static void skew_alignment(void **state)
{
	UNUSED_STATE(state);
	static const uint32_t skews[] = {1, 3, 5, 64, 100, 255, 511, 512 + 17, 1023, 4096 + 3};
	static const uint32_t firsts[] = {0, 9};
	static uint32_t got[1024];
	static uint32_t heads0[RT_NORDERS];
	for (size_t f = 0; f < ARRAY_LEN(firsts); f++) {
		for (size_t s = 0; s < ARRAY_LEN(skews); s++) {
			const uint32_t L = 1000;
			setup(firsts[f], skews[s], L, L, 1);
			assert_int_equal(B.top_order, 9);
			assert_int_equal(B.skew, skews[s] & 511); /* offset from a 2^9-page boundary */
			assert_int_equal(B.free_pages, L);
			assert_sound();
			for (unsigned k = 0; k < RT_NORDERS; k++)
				heads0[k] = list_len(k);
			for (unsigned k = 0; k <= B.top_order; k++) {
				size_t n = 0;
				for (uint32_t idx; (idx = rt_buddy_alloc(&B, k)) != RT_NIL;) {
					assert_true(n < 1024);
					assert_block(idx, k, 1);
					uintptr_t a = abs_addr(idx);
					assert_true(a >= g_addr);
					assert_true(a + (RT_PAGE_SIZE << k) <= g_addr + ((uintptr_t)L << RT_PAGE_SHIFT));
					got[n++] = idx;
				}
				/* Every aligned 2^k-page slot inside the range is served. */
				assert_int_equal(n, aligned_slots(B.skew, B.skew + L, k));
				assert_sound();
				for (size_t i = 0; i < n; i++)
					rt_buddy_free(&B, got[n - 1 - i]);
				assert_sound();
				assert_int_equal(B.free_pages, L);
				for (unsigned j = 0; j < RT_NORDERS; j++)
					assert_int_equal(list_len(j), heads0[j]);
			}
		}
	}
}

/* A large limit with a small descriptor array: only committed pages are read. */
static void large_limit_small_array(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 1u << 20, 4096, 0);
	assert_int_equal(B.top_order, 20);
	assert_int_equal(B.free_pages, 4096);
	assert_int_equal(B.nonempty, 1ULL << 12);
	assert_int_equal(rt_buddy_alloc(&B, 13), RT_NIL);
	uint32_t a = rt_buddy_alloc(&B, 12);
	assert_int_equal(a, 0);
	rt_buddy_free(&B, a); /* must not try to merge with pages past committed */
	assert_sound();
	assert_int_equal(B.nonempty, 1ULL << 12);
	rt_buddy_add(&B, 4096 + 300);
	assert_int_equal(B.free_pages, 4396);
	assert_sound();
}

/* ---- blocks of any number of pages (rt_buddy_alloc_pages, rt_buddy_trim) -- */

/* Every n of a 1024-page arena: exactly n pages leave the free count, the
 * rest of the 2^k block is free at once, and freeing merges it all back. */
static void pages_keep_exactly(void **state)
{
	UNUSED_STATE(state);
	for (uint32_t n = 1; n <= 1024; n++) {
		setup(0, 0, 1024, 1024, 0);
		uint32_t idx = rt_buddy_alloc_pages(&B, n);
		assert_int_not_equal(idx, RT_NIL);
		assert_int_equal(B.free_pages, 1024 - n);
		assert_int_equal(rt_buddy_pages(&B, idx), n);
		assert_block(idx, 31 - (unsigned)__builtin_clz(n), 0);
		assert_sound();
		/* What was given back is usable: the largest power of two it holds. */
		if (n < 512) {
			uint32_t q = rt_buddy_alloc(&B, 9);
			assert_int_not_equal(q, RT_NIL);
			rt_buddy_free(&B, q);
		}
		assert_true(rt_buddy_free_pages(&B, idx));
		assert_int_equal(B.free_pages, 1024);
		assert_int_equal(B.nonempty, 1ULL << 10);
		assert_sound();
	}
}

/* 513 pages of 1024: 511 stay free (not 0), in at most 9 blocks. */
static void pages_tail_pieces(void **state)
{
	UNUSED_STATE(state);
	setup(0, 0, 1024, 1024, 0);
	uint32_t idx = rt_buddy_alloc_pages(&B, 513);
	assert_int_equal(idx, 0);
	assert_int_equal(B.free_pages, 511);
	unsigned blocks = 0;
	for (unsigned k = 0; k < RT_NORDERS; k++)
		blocks += list_len(k);
	assert_int_equal(blocks, 9); /* 1 + 2 + ... + 256 pages */
	/* The second piece (one page, at 512) is no block of its own. */
	assert_int_equal(pages[512].state, RT_PS_USED);
	assert_int_equal(pages[512].cls, 0);
	assert_int_equal(rt_buddy_pages(&B, 512), 0);
	assert_false(rt_buddy_free_pages(&B, 512));
	assert_int_equal(B.free_pages, 511);
	assert_true(rt_buddy_free_pages(&B, idx));
	assert_int_equal(B.free_pages, 1024);
	assert_sound();
}

/* Random blocks of any size, freed in random order, with skew: sound after
 * every step, and everything merges back at the end. */
static void pages_random(void **state)
{
	UNUSED_STATE(state);
	uint64_t seed = 12345;
	for (unsigned round = 0; round < 20; round++) {
		setup(7, round * 3, 4000, 4000, 1);
		size_t total = B.free_pages;
		uint32_t held[64], held_n[64];
		unsigned nh = 0;
		for (unsigned step = 0; step < 400; step++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			uint32_t r = (uint32_t)(seed >> 33);
			if (nh < 64 && (r & 1)) {
				uint32_t n = 1 + (r >> 1) % (r & 2 ? 40 : 700);
				uint32_t idx = rt_buddy_alloc_pages(&B, n);
				if (idx != RT_NIL) {
					assert_int_equal(rt_buddy_pages(&B, idx), n);
					held[nh] = idx;
					held_n[nh++] = n;
				}
			} else if (nh) {
				unsigned i = (r >> 1) % nh;
				assert_true(rt_buddy_free_pages(&B, held[i]));
				held[i] = held[--nh];
				held_n[i] = held_n[nh];
			}
			size_t in_use = 0;
			for (unsigned i = 0; i < nh; i++)
				in_use += held_n[i];
			assert_int_equal(B.free_pages, total - in_use);
			assert_sound();
		}
		while (nh)
			assert_true(rt_buddy_free_pages(&B, held[--nh]));
		assert_int_equal(B.free_pages, total);
		assert_sound();
	}
}

/* ---- random sequence against a model ------------------------------------- */

struct live {
	uint32_t idx;
	unsigned order;
};

static void random_against_model(void **state)
{
	UNUSED_STATE(state);
	enum { L = 3000, FIRST = 3, SKEW = 37, STEPS = 20000 };
	static uint8_t used[L + 64]; /* by position v */
	static struct live live[L];
	size_t nlive = 0, used_pages = 0;
	struct rng r;
	rng_seed(&r, 0x5eed);
	setup(FIRST, SKEW, L, 1500, 4);
	size_t min_free = B.free_pages;
	uint32_t committed_pages = 1500;
	memset(used, 0, sizeof(used));
	for (int step = 0; step < STEPS; step++) {
		if (step == STEPS / 3) {
			rt_buddy_add(&B, 2200);
			committed_pages = 2200;
		} else if (step == 2 * STEPS / 3) {
			rt_buddy_add(&B, L);
			committed_pages = L;
		}
		uint64_t x = rng_next(&r);
		bool do_alloc = nlive == 0 || (x & 1023) < 560;
		if (do_alloc) {
			/* Mostly small orders, sometimes large ones. */
			unsigned k = (unsigned)__builtin_ctzll((x >> 10) | (1ULL << 11));
			if (k > B.top_order)
				k = B.top_order;
			uint32_t idx = rt_buddy_alloc(&B, k);
			if (idx == RT_NIL) {
				/* Only when no aligned 2^k slot of usable positions is free. */
				uint32_t s = 1u << k;
				for (uint32_t v = (B.skew + s - 1) & ~(s - 1); v + s <= B.committed; v += s) {
					bool all_free = true;
					for (uint32_t t = 0; t < s && all_free; t++)
						all_free = !used[v + t];
					if (all_free)
						fail_msg("step %d: order %u failed with slot %u free", step, k, v);
				}
			} else {
				assert_block(idx, k, 4);
				uint32_t v = idx - B.first + B.skew;
				for (uint32_t t = 0; t < (1u << k); t++) {
					if (used[v + t])
						fail_msg("step %d: block %u order %u overlaps a live block", step, idx, k);
					used[v + t] = 1;
				}
				live[nlive++] = (struct live){idx, k};
				used_pages += 1u << k;
			}
		} else {
			size_t i = (size_t)rng_below(&r, nlive);
			struct live l = live[i];
			live[i] = live[--nlive];
			rt_buddy_free(&B, l.idx);
			uint32_t v = l.idx - B.first + B.skew;
			for (uint32_t t = 0; t < (1u << l.order); t++)
				used[v + t] = 0;
			used_pages -= 1u << l.order;
		}
		if (B.free_pages < min_free)
			min_free = B.free_pages;
		const char *why = rt_buddy_check(&B);
		if (why)
			fail_msg("step %d: %s", step, why);
		assert_int_equal(B.free_pages, committed_pages - used_pages);
		assert_int_equal(B.min_free_pages, min_free);
	}
	while (nlive) {
		rt_buddy_free(&B, live[--nlive].idx);
		assert_sound();
	}
	assert_int_equal(B.free_pages, L);
}

/* ---- rt_buddy_check finds corruption ------------------------------------- */

/* A heap with used and free blocks of several orders. */
static uint32_t corr_a, corr_b, corr_c;

static void corruption_heap(void)
{
	setup(0, 0, 1024, 1024, 0);
	corr_a = rt_buddy_alloc(&B, 0); /* 0 */
	corr_b = rt_buddy_alloc(&B, 2); /* 4 */
	corr_c = rt_buddy_alloc(&B, 0); /* 1 */
	assert_sound();
}

static void expect_broken(const char *what, const char *needle)
{
	const char *why = rt_buddy_check(&B);
	if (!why)
		fail_msg("rt_buddy_check did not notice: %s", what);
	if (needle && !strstr(why, needle))
		fail_msg("%s: unexpected message \"%s\"", what, why);
}

static void check_detects_corruption(void **state)
{
	UNUSED_STATE(state);
	struct rt_page save;

	/* A tail page inside a free block claims to be a head. */
	corruption_heap();
	uint32_t h = B.head[9]; /* the free block of order 9 at 512 */
	assert_int_equal(h, 512);
	save = pages[h + 5];
	pages[h + 5].state = RT_PS_FREE;
	expect_broken("tail marked free", "B1");
	pages[h + 5] = save;
	assert_sound();

	/* A tail of a used block carries a class. */
	pages[corr_b + 1].cls = 3;
	expect_broken("tail with a class", "B1");
	pages[corr_b + 1].cls = 0;
	assert_sound();

	/* A free head with the wrong order. */
	pages[h].order = 8;
	expect_broken("free head of the wrong order", NULL);
	pages[h].order = 9;
	assert_sound();

	/* A head at a position not aligned to its order. */
	save = pages[corr_c];
	pages[corr_c].order = 1; /* page 1 is not aligned to 2 pages */
	expect_broken("misaligned head", "aligned");
	pages[corr_c] = save;
	assert_sound();

	/* Free block carrying a class. */
	pages[h].cls = 2;
	expect_broken("free block with a class", "class");
	pages[h].cls = 0;
	assert_sound();

	/* Counters. */
	B.free_pages++;
	expect_broken("free_pages off by one", "count");
	B.free_pages--;
	B.min_free_pages = B.free_pages + 1;
	expect_broken("low-water mark above the free count", "low-water");
	B.min_free_pages = B.free_pages;
	assert_sound();

	/* The bitmap. */
	B.nonempty ^= 1ULL << 9;
	expect_broken("bitmap bit cleared", "bitmap");
	B.nonempty ^= 1ULL << 9;
	B.nonempty |= 1ULL << 20;
	expect_broken("bitmap bit set for an empty order", "bitmap");
	B.nonempty &= ~(1ULL << 20);
	assert_sound();

	/* List links. */
	uint32_t nx = pages[h].prev;
	pages[h].prev = 77;
	expect_broken("back link", "back link");
	pages[h].prev = nx;
	uint32_t hd = B.head[9];
	B.head[9] = RT_NIL;
	expect_broken("block missing from its list", NULL);
	B.head[9] = hd;
	pages[h].next = h; /* a cycle */
	expect_broken("cycle in a free list", NULL);
	pages[h].next = RT_NIL;
	B.head[3] = 5000; /* outside the arena */
	expect_broken("list points outside", "outside");
	B.head[3] = 8;
	assert_sound();

	/* Two free buddies that were not merged (B2): free a and c by hand. */
	pages[corr_a].state = RT_PS_FREE;
	pages[corr_c].state = RT_PS_FREE;
	expect_broken("unmerged buddies", "B2");
	pages[corr_a].state = RT_PS_USED;
	pages[corr_c].state = RT_PS_USED;
	assert_sound();

	/* Committed range outside [skew, limit]. */
	uint32_t cm = B.committed;
	B.committed = B.limit + 1;
	expect_broken("committed beyond the limit", "committed");
	B.committed = cm;
	assert_sound();

	rt_buddy_free(&B, corr_a);
	rt_buddy_free(&B, corr_b);
	rt_buddy_free(&B, corr_c);
	assert_sound();
	assert_int_equal(B.free_pages, 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_empty),
		cmocka_unit_test(one_block_after_add),
		cmocka_unit_test(split_and_coalesce),
		cmocka_unit_test(every_order),
		cmocka_unit_test(exhaustion_every_order),
		cmocka_unit_test(exhaustion_mixed),
		cmocka_unit_test(growth),
		cmocka_unit_test(growth_page_by_page),
		cmocka_unit_test(add_smaller_count_does_not_shrink),
		cmocka_unit_test(low_water_mark),
		cmocka_unit_test(skew_alignment),
		cmocka_unit_test(large_limit_small_array),
		cmocka_unit_test(random_against_model),
		cmocka_unit_test(check_detects_corruption),
		cmocka_unit_test(pages_keep_exactly),
		cmocka_unit_test(pages_tail_pieces),
		cmocka_unit_test(pages_random),
	};
	return cmocka_run_group_tests_name("buddy", tests, NULL, NULL);
}
