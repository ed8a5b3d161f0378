/* SPDX-License-Identifier: MIT */
/*
 * test_harden.c - the attacker's and the buggy program's view of the free
 * lists: forged links, one-byte overflows into a freed neighbour,
 * use-after-free writes followed by double frees, and the stale stamps a
 * valid program may copy around.  Each corruption must end in an abort with
 * a message (never a live, chosen or repeated block handed out), and
 * rtalloc_check() must see it; a valid program must never be aborted.
 *
 * Every corrupting case runs in a child (run_child): the parent's pool stays
 * sound for the next case.  A child exits with 42 when the allocator handed
 * out what it must not: that is the failure these tests look for.
 */
#include "unit.h"

#define POOL (4u << 20)
#define HANDED_OUT_BAD 42

static int group_setup(void **state)
{
	UNUSED_STATE(state);
	return unit_init(POOL, POOL, 0, RTALLOC_EXHAUST_FAIL);
}

static bool inside(const void *p, const void *lo, size_t len)
{
	return (uintptr_t)p >= (uintptr_t)lo && (uintptr_t)p < (uintptr_t)lo + len;
}

/* ---- forged links ------------------------------------------------------------ */

/* Issue: a freed 16 B block's link overwritten with the address of a live
 * 64 B-aligned block whose first word is a pool pointer; the second malloc
 * returned the live block. */
static int child_link_to_live_block(void *arg)
{
	(void)arg;
	void **live = rtalloc_malloc(64);
	void **other = rtalloc_malloc(64);
	live[0] = other; /* a pool pointer in word 0, as the attack wants */
	live[1] = (void *)rt_g.key; /* even the old stamp: the attacker read it */
	void **f = rtalloc_malloc(16);
	rtalloc_free(f);
	f[0] = live; /* use after free: the link now names the live block */
	void *a = rtalloc_malloc(16);
	void *b = rtalloc_malloc(16);
	if (a == (void *)live || b == (void *)live)
		return HANDED_OUT_BAD;
	return 0;
}

static void link_to_live_block_aborts(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_link_to_live_block, NULL, &r);
	assert_aborted_with(&r, "rtalloc: ", "malloc()", "heap corruption", NULL);
}

/* A chain forged in a 1 MiB buffer (inside the pool, so every address of it
 * passes the "inside the pool" test): each forged block links to the next and
 * carries the stamp as it was stored before links were encoded. */
struct forge {
	size_t size;
};

static int child_forged_chain(void *arg)
{
	const struct forge *fg = arg;
	size_t len = 1u << 20;
	char *buf = rtalloc_malloc(len);
	if (!buf)
		return 2;
	for (size_t off = 0; off + fg->size < len; off += fg->size) {
		void **w = (void **)(buf + off);
		w[0] = buf + off + fg->size;
		w[1] = (void *)rt_g.key;
	}
	void **f = rtalloc_malloc(fg->size);
	rtalloc_free(f);
	f[0] = buf; /* the only corrupting write into freed memory */
	for (int i = 0; i < 8; i++) {
		void *p = rtalloc_malloc(fg->size);
		if (inside(p, buf, len))
			return HANDED_OUT_BAD;
	}
	return 0;
}

static void forged_chain_aborts(void **state)
{
	UNUSED_STATE(state);
	static const size_t sizes[] = {16, 1024, 4096, 32768};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		struct forge fg = {sizes[i]};
		struct child_result r;
		run_child(child_forged_chain, &fg, &r);
		assert_aborted_with(&r, "rtalloc: ", "malloc()", "heap corruption", NULL);
	}
}

/* ---- a one-byte overflow into a freed neighbour ------------------------------- */

/* The classic off-by-one NUL of a string copy: the byte after a live 16 B
 * block is the low byte of its freed neighbour's link.  Before, the list then
 * skipped ahead and its sentinel (the pool base) was handed out again and
 * again.  Whatever the link decodes to, no block may be handed out twice. */
static int child_off_by_one(void *arg)
{
	(void)arg;
	enum { N = 40 };
	char *blk[4];
	for (int i = 0; i < 4; i++)
		blk[i] = rtalloc_malloc(16);
	/* lo right below hi: consecutive blocks of one refill are neighbours */
	char *lo = NULL, *hi = NULL, *other = NULL, *live2 = NULL;
	for (int i = 0; i < 4 && !lo; i++)
		for (int j = 0; j < 4; j++)
			if (blk[j] == blk[i] + 16) {
				lo = blk[i];
				hi = blk[j];
				break;
			}
	if (!lo)
		return 3;
	for (int i = 0; i < 4; i++)
		if (blk[i] != lo && blk[i] != hi)
			*(other ? &live2 : &other) = blk[i];
	rtalloc_free(other);
	rtalloc_free(hi); /* the list: hi -> other -> ... */
	memset(lo, 'A', 16);
	lo[16] = '\0'; /* one byte too many: the low byte of hi's link */
	void *got[N];
	for (int i = 0; i < N; i++) {
		got[i] = rtalloc_malloc(16);
		if (!got[i])
			return 4;
		if (got[i] == (void *)rt_g.base && rt_g.base != (uintptr_t)blk[0])
			return HANDED_OUT_BAD;
		for (int j = 0; j < i; j++)
			if (got[j] == got[i])
				return HANDED_OUT_BAD;
		if (got[i] == lo || got[i] == live2)
			return HANDED_OUT_BAD; /* live blocks */
	}
	return 0;
}

static void off_by_one_never_repeats(void **state)
{
	UNUSED_STATE(state);
	/* The encoding's mask is random per process: try several processes. */
	for (int t = 0; t < 16; t++) {
		struct child_result r;
		run_child(child_off_by_one, NULL, &r);
		if (r.exited) {
			assert_int_not_equal(r.exit_code, HANDED_OUT_BAD);
			assert_child_ok(&r);
		} else {
			assert_aborted_with(&r, "rtalloc: ", "heap corruption", NULL);
		}
	}
}

/* ---- use after free, then a double free ----------------------------------------- */

/* Word 1 (the free stamp) cleared after free, then the block freed again:
 * before, the same block was handed out three times. */
static int child_uaf_then_double_free(void *arg)
{
	(void)arg;
	void **p = rtalloc_malloc(64);
	rtalloc_free(p);
	p[1] = NULL; /* use after free */
	rtalloc_free(p); /* not seen as free any more */
	void *a = rtalloc_malloc(64);
	void *b = rtalloc_malloc(64);
	void *c = rtalloc_malloc(64);
	if ((a == p) + (b == p) + (c == p) > 1)
		return HANDED_OUT_BAD;
	return 0;
}

static void uaf_then_double_free_aborts(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_uaf_then_double_free, NULL, &r);
	assert_aborted_with(&r, "rtalloc: ", "heap corruption", NULL);
}

/* The same, but the thread's list is flushed to the arena before any
 * malloc: the flush must not take the block twice into its page. */
static int child_uaf_double_free_flushed(void *arg)
{
	(void)arg;
	void **p = rtalloc_malloc(64);
	rtalloc_free(p);
	p[1] = NULL;
	rtalloc_free(p);
	flush_my_cache();
	return 0;
}

static void uaf_double_free_flushed_aborts(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_uaf_double_free_flushed, NULL, &r);
	assert_aborted_with(&r, "rtalloc: ", "free()", NULL);
}

/* ---- rtalloc_check sees each corrupted state ---------------------------------------- */

enum corruption { C_LINK, C_ONE_BYTE, C_STAMP, C_PAGE_LINK };

static int child_check_sees(void *arg)
{
	enum corruption what = *(const enum corruption *)arg;
	void **keep = rtalloc_malloc(64); /* keeps the page in use */
	void **a = rtalloc_malloc(64);
	void **b = rtalloc_malloc(64);
	(void)keep;
	rtalloc_free(a);
	rtalloc_free(b); /* the thread's list: b -> a */
	if (rtalloc_check() != 0)
		return 5;
	switch (what) {
	case C_LINK:
		b[0] = keep;
		break;
	case C_ONE_BYTE:
		*(unsigned char *)&b[0] ^= 0x40; /* some bit of the low byte */
		break;
	case C_STAMP:
		a[1] = NULL;
		break;
	case C_PAGE_LINK:
		flush_my_cache(); /* a and b now on their page's list in the arena */
		b[0] = keep;
		a[0] = keep;
		break;
	}
	return rtalloc_check() == -1 ? 0 : 6;
}

static void check_sees_corruption(void **state)
{
	UNUSED_STATE(state);
	static const enum corruption all[] = {C_LINK, C_ONE_BYTE, C_STAMP, C_PAGE_LINK};
	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		struct child_result r;
		run_child(child_check_sees, (void *)&all[i], &r);
		if (!r.exited || r.exit_code != 0)
			fail_msg("corruption %zu: rtalloc_check did not report it (exit %d, signal %d): %s", i,
				 r.exit_code, r.signo, r.out);
		assert_non_null(strstr(r.out, "rtalloc_check"));
	}
}

/* ---- a valid program is never aborted ------------------------------------------------ */

/* Issue: free stamps survived inside reused memory.  Small blocks freed,
 * their page reused by a larger class; the larger block's uninitialised
 * interior still held stamps, and copying those bytes into a new small block
 * (legal, if sloppy) made its free abort as a double free. */
static void stale_stamps_never_abort(void **state)
{
	UNUSED_STATE(state);
	enum { PER_PAGE = RT_PAGE_SIZE / 16 };
	for (int round = 0; round < 4; round++) {
		void *small[PER_PAGE * 4];
		for (size_t i = 0; i < ARRAY_LEN(small); i++)
			small[i] = rtalloc_malloc(16);
		for (size_t i = 0; i < ARRAY_LEN(small); i++)
			rtalloc_free(small[i]);
		flush_my_cache(); /* the pages are idle now, any class may take them */
		for (int k = 0; k < 64; k++) {
			unsigned char *big = rtalloc_malloc(256 << (round % 3));
			size_t n = rtalloc_malloc_usable_size(big);
			for (size_t off = 0; off + 16 <= n; off += 8) {
				void *q = rtalloc_malloc(16);
				memcpy(q, big + off, 16); /* uninitialised bytes, copied */
				rtalloc_free(q);
			}
			void *q = rtalloc_malloc(n);
			memcpy(q, big, n);
			rtalloc_free(q);
			rtalloc_free(big);
		}
		flush_my_cache();
		assert_int_equal(rtalloc_check(), 0);
	}
}

/* The stamp of a block at one address copied to a block at another, word for
 * word (realloc copies whole blocks; a program may copy a struct that
 * happens to sit where a freed block's stamp was). */
static void copied_blocks_never_abort(void **state)
{
	UNUSED_STATE(state);
	for (size_t n = 16; n <= 4096; n *= 2) {
		void *v[64];
		for (int i = 0; i < 64; i++)
			v[i] = rtalloc_malloc(n);
		for (int i = 0; i < 64; i += 2)
			rtalloc_free(v[i]);
		for (int i = 1; i < 64; i += 2) {
			void *q = rtalloc_malloc(n);
			memcpy(q, v[i], n); /* whatever v[i] holds */
			rtalloc_free(v[i]);
			void *r = rtalloc_realloc(q, 2 * n);
			rtalloc_free(r);
		}
	}
	flush_my_cache();
	assert_int_equal(rtalloc_check(), 0);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]); /* one test by name */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stale_stamps_never_abort),
		cmocka_unit_test(copied_blocks_never_abort),
		cmocka_unit_test(link_to_live_block_aborts),
		cmocka_unit_test(forged_chain_aborts),
		cmocka_unit_test(off_by_one_never_repeats),
		cmocka_unit_test(uaf_then_double_free_aborts),
		cmocka_unit_test(uaf_double_free_flushed_aborts),
		cmocka_unit_test(check_sees_corruption),
	};
	return cmocka_run_group_tests_name("harden", tests, group_setup, NULL);
}
