/* SPDX-License-Identifier: MIT */
/*
 * arena.c - McKusick-Karels size classes over the buddy allocator, per arena.
 *
 * Small classes (16 B .. 2 KiB) are carved from single pages.  A page's free
 * blocks are threaded through the blocks (an encoded link in word 0, the
 * stamp RT_STAMP_HELD in word 1: rt.h, "links and stamps") and counted in its
 * descriptor; pages with free blocks sit on their class's partial list.  A
 * page is carved lazily: `carved` bytes have been handed out at least once,
 * the rest is untouched.  Cached classes (4 KiB .. 1 MiB) are buddy blocks
 * of their own.  Huge blocks are buddy blocks not cached.  Every block that
 * crosses between a thread and the arena is checked (its page, class and
 * stamp) and re-stamped for its new holder.
 *
 * Threads move blocks in batches: refill takes up to `want` blocks, flush
 * returns a chain of n blocks.  Both hold one arena lock (priority
 * inheriting) for at most one batch:
 *   refill  <= want blocks, each O(1), plus at most want pages from the buddy
 *           (each <= top_order splits) and at most one growth;
 *   flush   <= n blocks, each O(1); a page that becomes empty moves to the
 *           arena's empty list (O(1)), and when that makes more than
 *           RT_EMPTY_KEEP pages idle, one goes back to the buddy (<= top
 *           merges): at most n pages per flush.
 *   exhaustion (the buddy has no block of the order asked): the idle pages
 *           go back to the buddy (at most RT_EMPTY_KEEP, by S4), then growth,
 *           then failure.
 * S4: an arena never holds more than RT_EMPTY_KEEP idle pages once its lock
 * is released, so no operation's work depends on the pool's size or on the
 * program's history.  a->steps counts the pages each operation moves (the
 * tests bound one call's work with it).
 * Refill takes a class's partial pages first, then an idle page of the
 * empty list (re-stamped if it served another class), then the buddy.
 * want and n are at most the largest tcache batch (see tcache.c).
 *
 * No OS call here: the arena's grow hook is the only way out, and the unit
 * tests run all of this on a static array.
 */
#include <errno.h>

#include "rt.h"

static inline unsigned blocks_per_page(unsigned c) { return (unsigned)(RT_PAGE_SIZE >> (c + 3)); }
static inline uint32_t npages(void) { return (uint32_t)(rt_g.span >> RT_PAGE_SHIFT); }

int rt_arena_init(struct rt_arena *a, unsigned index, int node, uint32_t first, uint32_t committed,
		  uint32_t limit)
{
	int e = rt_mutex_init(&a->lock, RT_MUTEX_PI);
	if (e)
		return e;
	a->index = index;
	a->node = node;
	a->grow = NULL;
	for (unsigned c = 0; c <= RT_NSMALL; c++)
		a->partial[c] = RT_NIL;
	a->empty = RT_NIL;
	a->nempty = 0;
	rt_buddy_init(&a->buddy, rt_g.pages, first, (uintptr_t)rt_page_addr(first), limit, index);
	rt_buddy_add(&a->buddy, committed);
	return 0;
}

/* The arena's statistics record (stats.c) after a refill or flush: when pages
 * moved (the buddy's free count or the idle pages changed), else every 64th
 * time for the counters.  Lock held. */
static void publish_if_changed(struct rt_arena *a)
{
	size_t mark = a->buddy.free_pages + ((size_t)a->nempty << 32);
	if (mark != a->published_mark || ((a->refills + a->flushes) & 63) == 0) {
		a->published_mark = mark;
		rt_stats_publish_arena(a);
	}
}

/* RT_EMPTY_KEEP (rt.h): idle empty pages an arena keeps (S4). */

/* The empty list: small pages with every block free (S3), any class,
 * threaded through next/prev like the partial lists.  Lock held. */
static void empty_push(struct rt_arena *a, uint32_t idx)
{
	rt_plist_push(rt_g.pages, npages(), &a->empty, idx);
	a->nempty++;
}

static uint32_t empty_pop(struct rt_arena *a)
{
	uint32_t idx = rt_plist_pop(rt_g.pages, npages(), &a->empty);
	if (idx != RT_NIL)
		a->nempty--;
	return idx;
}

/* An idle page back to the buddy.  Lock held. */
static void release_idle(struct rt_arena *a)
{
	uint32_t idx = empty_pop(a);
	if (idx == RT_NIL)
		return;
	struct rt_page *pg = &rt_g.pages[idx];
	pg->free = NULL;
	pg->nfree = 0;
	rt_store(&pg->carved, 0);
	rt_buddy_free(&a->buddy, idx);
	a->steps++;
}

/* A block of the buddy; when there is none, give back the idle pages, then
 * grow the arena once if allowed.  Lock held. */
static uint32_t buddy_get(struct rt_arena *a, unsigned order, bool *grown)
{
	uint32_t idx = rt_buddy_alloc(&a->buddy, order);
	if (idx == RT_NIL && a->nempty) {
		while (a->empty != RT_NIL) /* bound: RT_EMPTY_KEEP idle pages (S4) */
			release_idle(a);
		idx = rt_buddy_alloc(&a->buddy, order);
	}
	if (idx == RT_NIL && a->grow && !*grown) { /* *grown starts true when growth is not allowed */
		*grown = true;
		if (a->grow(a, order) == 0) /* the hook counts a growth in a->grows */
			idx = rt_buddy_alloc(&a->buddy, order);
	}
	if (idx == RT_NIL)
		a->failed++;
	return idx;
}

static void partial_push(struct rt_arena *a, unsigned c, uint32_t idx)
{
	rt_plist_push(rt_g.pages, npages(), &a->partial[c], idx);
}

static void partial_unlink(struct rt_arena *a, unsigned c, uint32_t idx)
{
	rt_plist_unlink(rt_g.pages, npages(), &a->partial[c], idx);
}

/* Stamp every block of a fresh page as held by the arena (S1): word 1 of
 * each block.  Bound: blocks per page, at most 256 stores, unrolled. */
static void stamp_page(char *page, size_t size)
{
	uintptr_t stamp = rt_stamp(page, RT_STAMP_HELD); /* the page's first block's */
#pragma GCC unroll 8
	for (size_t off = 0; off < RT_PAGE_SIZE; off += size)
		((uintptr_t *)(page + off))[1] = stamp ^ off;
}

static RT_NORETURN RT_COLD void arena_list_corrupt(const void *b)
{
	rt_fatal("malloc", "heap corruption (use after free or overflow?): a page's free list "
			   "leads to a block that is not free:", b);
}

static unsigned refill_small(struct rt_arena *a, unsigned c, unsigned want, void **head,
			     bool may_grow)
{
	size_t size = rt_class_size(c);
	bool grown = !may_grow;
	void *chain = NULL; /* where thread lists end */
	unsigned n = 0;
	while (n < want) { /* bound: each round empties a page or reaches want */
		a->steps++;
		uint32_t idx = a->partial[c];
		if (idx == RT_NIL) {
			idx = empty_pop(a);
			if (idx != RT_NIL && rt_g.pages[idx].cls == c) {
				/* idle page of this very class: as it was, all free */
				partial_push(a, c, idx);
				a->class_units[rt_stats_class(c)]++;
			} else {
				if (idx == RT_NIL)
					idx = buddy_get(a, 0, &grown);
				if (idx == RT_NIL)
					break;
				struct rt_page *np = &rt_g.pages[idx];
				stamp_page(rt_page_addr(idx), size);
				rt_store(&np->carved, 0);
				np->nfree = (uint16_t)blocks_per_page(c);
				np->free = NULL;
				rt_store(&np->cls, (uint8_t)c);
				partial_push(a, c, idx);
				a->class_units[rt_stats_class(c)]++;
			}
		}
		struct rt_page *pg = &rt_g.pages[idx];
		char *page = rt_page_addr(idx);
		unsigned got = 0;
		/* The page's free blocks first (each checked: of this page and
		 * class, held by the arena), then never-carved ones; each is
		 * linked and stamped for the thread's list. */
		for (void **b = pg->free; b && n + got < want; b = pg->free) { /* bound: want */
			if (rt_unlikely((uintptr_t)b - (uintptr_t)page >= RT_PAGE_SIZE ||
					rt_block_why(pg, b, c, RT_STAMP_HELD)))
				arena_list_corrupt(b);
			pg->free = rt_link_get(b);
			rt_link_set(b, chain);
			rt_stamp_set(b, RT_STAMP_CACHED);
			chain = b;
			got++;
		}
		unsigned carve = (unsigned)((RT_PAGE_SIZE - pg->carved) / size);
		if (carve > want - n - got)
			carve = want - n - got;
		char *p = page + pg->carved;
		for (unsigned i = 0; i < carve; i++, p += size) { /* bound: want */
			rt_link_set(p, chain);
			rt_stamp_set(p, RT_STAMP_CACHED);
			chain = p;
		}
		rt_store(&pg->carved, (uint16_t)(pg->carved + carve * size));
		got += carve;
		if (rt_unlikely(got == 0 || got > pg->nfree)) /* S1 broken: would not progress */
			rt_fatal("malloc", "heap corruption: free count of a page is wrong at", page);
		pg->nfree = (uint16_t)(pg->nfree - got);
		if (pg->nfree == 0)
			partial_unlink(a, c, idx);
		n += got;
	}
	*head = chain;
	return n;
}

static unsigned refill_cached(struct rt_arena *a, unsigned c, unsigned want, void **head,
			      bool may_grow)
{
	unsigned order = c - RT_NSMALL - 1;
	bool grown = !may_grow;
	void *chain = NULL; /* where thread lists end */
	unsigned n = 0;
	while (n < want) { /* bound: want buddy allocations */
		a->steps++;
		uint32_t idx = buddy_get(a, order, &grown);
		if (idx == RT_NIL)
			break;
		struct rt_page *pg = &rt_g.pages[idx];
		rt_store(&pg->carved, (uint16_t)RT_PAGE_SIZE);
		rt_store(&pg->cls, (uint8_t)c);
		a->class_units[rt_stats_class(c)]++;
		void **b = rt_page_addr(idx);
		rt_link_set(b, chain);
		rt_stamp_set(b, RT_STAMP_CACHED);
		chain = b;
		n++;
	}
	*head = chain;
	return n;
}

unsigned rt_arena_refill(struct rt_arena *a, unsigned c, unsigned want, void **head,
			  bool may_grow)
{
	rt_arena_lock(a);
	unsigned n = c <= RT_NSMALL ? refill_small(a, c, want, head, may_grow)
				    : refill_cached(a, c, want, head, may_grow);
	a->refills++;
	publish_if_changed(a);
	rt_arena_unlock(a);
	return n;
}

/* Return one block to its page (lock of its arena held).  A page that became
 * empty leaves its class for the empty list (S3); if that makes more than
 * RT_EMPTY_KEEP pages idle, one goes back to the buddy (S4). */
static void flush_small(struct rt_arena *a, struct rt_page *pg, void **b, unsigned c)
{
	uint32_t idx = (uint32_t)(pg - rt_g.pages);
	rt_link_set(b, pg->free);
	rt_stamp_set(b, RT_STAMP_HELD);
	pg->free = b;
	if (++pg->nfree == 1)
		partial_push(a, c, idx);
	if (pg->nfree == blocks_per_page(c)) {
		partial_unlink(a, c, idx);
		a->class_units[rt_stats_class(c)]--;
		empty_push(a, idx);
		a->steps++;
		if (a->nempty > RT_EMPTY_KEEP)
			release_idle(a);
	}
}

void rt_arena_flush(unsigned c, void *head, unsigned n)
{
	struct rt_arena *held = NULL;
	void **b = head;
	for (unsigned i = 0; i < n; i++) { /* bound: n, the batch */
		struct rt_page *pg = rt_page_of(b);
		if (rt_unlikely(!pg))
			rt_fatal("free", "heap corruption: a thread cache list points to", b);
		struct rt_arena *a = &rt_g.arenas[pg->arena];
		if (a != held) {
			if (held) {
				held->flushes++;
				publish_if_changed(held);
				rt_arena_unlock(held);
			}
			rt_arena_lock(a);
			held = a;
		}
		/* Each block must be a block start of the list's class, stamped as
		 * on a thread list: a block listed twice (freed twice after a use
		 * after free cleared its stamp) is caught at its second time. */
		if (rt_unlikely(rt_block_why(pg, b, c, RT_STAMP_CACHED) != NULL)) {
			rt_arena_unlock(a);
			rt_fatal("free", "heap corruption or double free: a thread's free list holds a "
					 "block that is not free or not of its class:", b);
		}
		void **next = rt_link_get(b);
		if (c <= RT_NSMALL) {
			flush_small(a, pg, b, c);
		} else {
			b[1] = NULL; /* back to the buddy: no stamp stays behind */
			rt_buddy_free(&a->buddy, (uint32_t)(pg - rt_g.pages));
			a->class_units[rt_stats_class(c)]--;
			a->steps++;
		}
		b = next;
	}
	if (held) {
		held->flushes++;
		publish_if_changed(held);
		rt_arena_unlock(held);
	}
}

void *rt_arena_huge_alloc(struct rt_arena *a, uint32_t pages, bool may_grow)
{
	bool grown = !may_grow;
	unsigned order = pages <= 1 ? 0 : 64 - (unsigned)__builtin_clzll((uint64_t)pages - 1);
	rt_arena_lock(a);
	uint32_t idx = buddy_get(a, order, &grown);
	if (idx != RT_NIL) {
		rt_buddy_trim(&a->buddy, idx, pages); /* the rest of the block back to the buddy */
		rt_store(&rt_g.pages[idx].cls, (uint8_t)RT_CLS_HUGE);
		rt_store(&rt_g.pages[idx].carved, (uint16_t)RT_PAGE_SIZE);
		a->huge_allocs++;
		a->class_units[rt_stats_class(RT_CLS_HUGE)]++;
		a->steps++;
	}
	rt_stats_publish_arena(a);
	rt_arena_unlock(a);
	return idx == RT_NIL ? NULL : rt_page_addr(idx);
}

/* pg is the descriptor of p's page; the checks are redone under the lock, so
 * two threads freeing the same huge block cannot both succeed. */
void rt_arena_huge_free(void *p, struct rt_page *pg)
{
	struct rt_arena *a = &rt_g.arenas[pg->arena];
	uint32_t idx = (uint32_t)(pg - rt_g.pages);
	rt_arena_lock(a);
	if (rt_unlikely(rt_block_why(pg, p, RT_CLS_HUGE, RT_BLOCK_LIVE) != NULL)) {
		rt_arena_unlock(a);
		rt_fatal("free", "invalid pointer or double free", p);
	}
	if (rt_unlikely(!rt_buddy_free_pages(&a->buddy, idx))) {
		rt_arena_unlock(a);
		rt_fatal("free", "heap corruption (a large block's pieces)", p);
	}
	a->huge_frees++;
	a->steps++;
	a->class_units[rt_stats_class(RT_CLS_HUGE)]--;
	rt_stats_publish_arena(a);
	rt_arena_unlock(a);
}

/* Invariants S1, S2 and B3 for one arena, then the buddy's.  Lock held by caller. */
static const char *check_locked(struct rt_arena *a)
{
	const char *why = rt_buddy_check(&a->buddy);
	if (why)
		return why;
	const struct rt_buddy *bd = &a->buddy;
	uint32_t partial_pages[RT_NSMALL + 1] = {0}, empty_pages = 0;
	for (uint32_t r = bd->skew; r < bd->committed;) {
		const struct rt_page *pg = &rt_g.pages[bd->first + r - bd->skew];
		unsigned c = pg->cls;
		if (pg->state == RT_PS_USED && c >= 1 && c <= RT_NSMALL) {
			if (pg->order != 0)
				return "arena: a small-class page is not a single page (B3)";
			unsigned cap = blocks_per_page(c), carved = pg->carved / (unsigned)rt_class_size(c);
			if (pg->carved % rt_class_size(c) || carved > cap)
				return "arena: carved count is not a whole number of blocks (S1)";
			unsigned listed = 0;
			for (void **b = pg->free; b; b = rt_link_get(b)) { /* bound: cap */
				if (rt_page_of(b) != pg)
					return "arena: a page's free list holds a foreign block";
				if (rt_block_why(pg, b, c, RT_STAMP_HELD))
					return "arena: a free block lost its free stamp (use after free?)";
				if (++listed > cap)
					return "arena: a page's free list is longer than the page (cycle?)";
			}
			if (listed + (cap - carved) != pg->nfree)
				return "arena: nfree differs from the free and uncarved blocks (S1)";
			if (pg->nfree == cap)
				empty_pages++;
			else if (pg->nfree)
				partial_pages[c]++;
		} else if (pg->state == RT_PS_USED && c > RT_NSMALL && c <= RT_NCLASS) {
			if (pg->order != c - RT_NSMALL - 1)
				return "arena: a cached block's order does not match its class (B3)";
		} else if (pg->state == RT_PS_USED && c != RT_CLS_HUGE) {
			return "arena: an allocated block has no class (B3)";
		} else if (pg->state == RT_PS_USED) { /* huge: its pieces are passed with it */
			uint32_t n = rt_buddy_pages(bd, bd->first + r - bd->skew);
			if (!n)
				return "arena: a large block's pieces do not match its size (B3)";
			r += n;
			continue;
		}
		r += 1u << pg->order;
	}
	for (unsigned c = 1; c <= RT_NSMALL; c++) {
		uint32_t n = 0;
		for (uint32_t i = a->partial[c]; i != RT_NIL; i = rt_g.pages[i].next) {
			const struct rt_page *pg = &rt_g.pages[i];
			if (pg->cls != c || pg->nfree == 0)
				return "arena: partial list holds a full page or one of another class (S2)";
			if (pg->nfree == blocks_per_page(c))
				return "arena: an empty page is on a partial list (S3)";
			if (++n > partial_pages[c])
				return "arena: partial list longer than its pages (cycle?)";
		}
		if (n != partial_pages[c])
			return "arena: a page with free blocks is missing from its partial list (S2)";
	}
	uint32_t n = 0;
	for (uint32_t i = a->empty; i != RT_NIL; i = rt_g.pages[i].next) {
		const struct rt_page *pg = &rt_g.pages[i];
		if (pg->cls < 1 || pg->cls > RT_NSMALL || pg->nfree != blocks_per_page(pg->cls))
			return "arena: the empty list holds a page that is not an empty small page (S3)";
		if (++n > empty_pages)
			return "arena: empty list longer than the empty pages (cycle?)";
	}
	if (n != empty_pages || n != a->nempty)
		return "arena: an empty page is missing from the empty list (S3)";
	if (a->nempty > RT_EMPTY_KEEP)
		return "arena: more idle pages than RT_EMPTY_KEEP (S4)";
	return NULL;
}

const char *rt_arena_check(struct rt_arena *a)
{
	rt_arena_lock(a);
	const char *why = check_locked(a);
	rt_arena_unlock(a);
	return why;
}
