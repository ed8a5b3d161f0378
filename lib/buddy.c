/* SPDX-License-Identifier: MIT */
/*
 * buddy.c - the page allocator: binary buddy blocks of 2^order pages.
 *
 * It works on a range of page descriptors it is handed and touches nothing
 * else: no OS call, no user memory.  Free blocks are kept on one doubly
 * linked list per order, threaded through the descriptors (page indices), and
 * a bitmap of non-empty orders finds the smallest fitting block in one
 * instruction.
 *
 * Positions: block arithmetic uses v = idx - first + skew, where page v = 0
 * is aligned to 2^top_order pages in the address space.  An OS pool is
 * reserved aligned (skew = 0); memory handed in by the caller may start
 * anywhere (skew = its page offset from the previous aligned address).  So a
 * block of order k is always aligned to 2^k pages in absolute terms, and
 * usable pages are v in [skew, committed).
 *
 * A block of n pages that is not a power of two (rt_buddy_alloc_pages: the
 * arena's huge blocks) keeps only its n pages: the block of 2^k >= n pages
 * is split into the pieces of n's binary digits, largest first from its
 * start (each aligned to its size: a buddy block of its own, USED; the
 * first is the head and holds n in its descriptor's next field, the others
 * have no class), and the rest is given back as free blocks.  It is freed
 * piece by piece (rt_buddy_free_pages), which merges it back whole.
 *
 * Bounds (top = b->top_order, at most RT_ORDER_MAX; 14 for a 64 MiB arena):
 *   alloc   one bit scan + at most top splits
 *   free    at most top merges
 *   add     at most 2 * top blocks, each freed as above
 *   alloc_pages  alloc + at most top pieces kept + at most top given back
 *   free_pages   at most top + 1 pieces, each freed as above
 */
#include "rt.h"

static inline uint32_t vpos(const struct rt_buddy *b, uint32_t idx) { return idx - b->first + b->skew; }
static inline uint32_t vidx(const struct rt_buddy *b, uint32_t v) { return v + b->first - b->skew; }

static void list_push(struct rt_buddy *b, uint32_t idx, unsigned k)
{
	struct rt_page *pg = &b->pages[idx];
	pg->state = RT_PS_FREE;
	pg->order = (uint8_t)k;
	pg->arena = b->arena;
	rt_store(&pg->cls, 0);
	rt_plist_push(b->pages, b->first + b->limit - b->skew, &b->head[k], idx);
	b->nonempty |= 1ULL << k;
}

/* Links are checked against the buddy's descriptors (rt_plist_*): a shared
 * heap's are in memory other processes write (heap_shm.c). */
static void list_unlink(struct rt_buddy *b, uint32_t idx, unsigned k)
{
	rt_plist_unlink(b->pages, b->first + b->limit - b->skew, &b->head[k], idx);
	if (b->head[k] == RT_NIL)
		b->nonempty &= ~(1ULL << k);
}

static void make_tail(struct rt_buddy *b, uint32_t idx)
{
	struct rt_page *pg = &b->pages[idx];
	rt_store(&pg->cls, 0);
	pg->state = RT_PS_TAIL;
	pg->order = 0;
}

/* Put the block (idx, k) back, merging with free buddies: at most top merges. */
static void free_block(struct rt_buddy *b, uint32_t idx, unsigned k)
{
	uint32_t r = vpos(b, idx);
	while (k < b->top_order) { /* bound: top_order - k iterations */
		uint32_t br = r ^ (1u << k);
		if (br < b->skew || (uint64_t)br + (1u << k) > b->committed)
			break;
		struct rt_page *bp = &b->pages[vidx(b, br)];
		if (bp->state != RT_PS_FREE || bp->order != k)
			break;
		list_unlink(b, vidx(b, br), k);
		uint32_t hi = r > br ? r : br;
		make_tail(b, vidx(b, hi));
		r = r < br ? r : br;
		k++;
	}
	list_push(b, vidx(b, r), k);
}

void rt_buddy_init(struct rt_buddy *b, struct rt_page *pages, uint32_t first, uintptr_t addr,
		   uint32_t limit, unsigned arena)
{
	unsigned top = limit ? 63 - (unsigned)__builtin_clzll(limit) : 0;
	top = top > RT_ORDER_MAX ? RT_ORDER_MAX : top;
	uint32_t skew = (uint32_t)((addr >> RT_PAGE_SHIFT) & ((1ULL << top) - 1));
	b->pages = pages;
	b->first = first;
	b->skew = skew;
	b->committed = skew;
	b->limit = skew + limit;
	b->arena = (uint8_t)arena;
	b->top_order = (uint8_t)top;
	b->nonempty = 0;
	for (unsigned k = 0; k < RT_NORDERS; k++)
		b->head[k] = RT_NIL;
	b->free_pages = 0;
	b->min_free_pages = 0;
}

void rt_buddy_add(struct rt_buddy *b, uint32_t pages)
{
	uint32_t committed = b->skew + pages;
	if (committed > b->limit)
		committed = b->limit;
	if (committed <= b->committed) /* grows only */
		return;
	uint32_t r = b->committed;
	bool first_add = r == b->skew;
	b->committed = committed;
	/* Largest aligned blocks that fit: at most 2 * top_order of them. */
	while (r < committed) {
		unsigned k = r ? (unsigned)__builtin_ctz(r) : b->top_order;
		if (k > b->top_order)
			k = b->top_order;
		while (r + (1u << k) > committed) /* bound: k steps */
			k--;
		b->free_pages += (size_t)1 << k;
		free_block(b, vidx(b, r), k);
		r += 1u << k;
	}
	if (first_add) /* growth keeps the lowest free seen before it */
		b->min_free_pages = b->free_pages;
}

uint32_t rt_buddy_alloc(struct rt_buddy *b, unsigned order)
{
	if (order > b->top_order)
		return RT_NIL;
	uint64_t fit = b->nonempty & ~((1ULL << order) - 1);
	if (!fit)
		return RT_NIL;
	unsigned j = (unsigned)__builtin_ctzll(fit);
	uint32_t idx = b->head[j];
	list_unlink(b, idx, j);
	while (j > order) { /* bound: top_order splits */
		j--;
		list_push(b, idx + (1u << j), j);
	}
	struct rt_page *pg = &b->pages[idx];
	pg->state = RT_PS_USED;
	pg->order = (uint8_t)order;
	pg->arena = b->arena;
	b->free_pages -= (size_t)1 << order;
	if (b->free_pages < b->min_free_pages)
		b->min_free_pages = b->free_pages;
	return idx;
}

void rt_buddy_free(struct rt_buddy *b, uint32_t idx)
{
	struct rt_page *pg = &b->pages[idx];
	rt_assert(pg->state == RT_PS_USED);
	unsigned k = pg->order;
	b->free_pages += (size_t)1 << k;
	free_block(b, idx, k);
}

/* The block's order k is the order of n: the low-water mark keeps the 2^k
 * pages taken (the buddy needed that block free), free_pages the n kept. */
void rt_buddy_trim(struct rt_buddy *b, uint32_t idx, uint32_t n)
{
	unsigned k = n <= 1 ? 0 : 64 - (unsigned)__builtin_clzll((uint64_t)n - 1);
	rt_assert(n && b->pages[idx].state == RT_PS_USED && b->pages[idx].order == k);
	/* Kept: the pieces of n's bits, largest first (each aligned to its size,
	 * since the pieces before it are larger powers of two). */
	uint32_t at = 0;
	for (unsigned j = k + 1; j-- > 0;) { /* bound: k + 1 <= top_order + 1 pieces */
		if (!(n & (1u << j)))
			continue;
		struct rt_page *pg = &b->pages[idx + at];
		pg->state = RT_PS_USED;
		pg->order = (uint8_t)j;
		pg->arena = b->arena;
		if (at)
			rt_store(&pg->cls, 0); /* not a block: free and the validator refuse it */
		at += 1u << j;
	}
	/* Given back: [n, 2^k) as aligned free blocks; the buddy of each is
	 * partly kept, so none merges (free_block finds no free buddy). */
	for (uint32_t r = n; r < (1u << k);) { /* bound: k blocks (one per zero bit of n below k) */
		unsigned j = (unsigned)__builtin_ctz(r);
		b->free_pages += (size_t)1 << j;
		free_block(b, idx + r, j);
		r += 1u << j;
	}
	b->pages[idx].next = n;
}

uint32_t rt_buddy_alloc_pages(struct rt_buddy *b, uint32_t n)
{
	unsigned k = n <= 1 ? 0 : 64 - (unsigned)__builtin_clzll((uint64_t)n - 1);
	uint32_t idx = n ? rt_buddy_alloc(b, k) : RT_NIL;
	if (idx != RT_NIL)
		rt_buddy_trim(b, idx, n);
	return idx;
}

uint32_t rt_buddy_pages(const struct rt_buddy *b, uint32_t idx)
{
	const struct rt_page *pg = &b->pages[idx];
	uint32_t n = pg->next;
	if (pg->state != RT_PS_USED || n == 0 || n == RT_NIL || 31 - __builtin_clz(n) != pg->order ||
	    vpos(b, idx) + (uint64_t)n > b->committed)
		return 0;
	uint32_t at = 1u << pg->order;
	for (unsigned j = pg->order; j-- > 0;) { /* bound: order <= top_order pieces */
		if (!(n & (1u << j)))
			continue;
		const struct rt_page *q = &b->pages[idx + at];
		if (q->state != RT_PS_USED || q->order != j || q->cls != 0)
			return 0;
		at += 1u << j;
	}
	return n;
}

bool rt_buddy_free_pages(struct rt_buddy *b, uint32_t idx)
{
	uint32_t n = rt_buddy_pages(b, idx);
	if (!n)
		return false;
	uint32_t at = 0;
	for (unsigned j = 32; j-- > 0;) { /* bound: 32 bits, at most top_order + 1 pieces */
		if (!(n & (1u << j)))
			continue;
		b->pages[idx + at].next = RT_NIL;
		b->free_pages += (size_t)1 << j;
		free_block(b, idx + at, j);
		at += 1u << j;
	}
	return true;
}

/* Walk every page; return NULL when B1/B2 and the counters hold, else what broke. */
const char *rt_buddy_check(const struct rt_buddy *b)
{
	size_t free_pages = 0;
	uint32_t heads_per_order[RT_NORDERS] = {0};
	if (b->committed > b->limit || b->committed < b->skew)
		return "buddy: committed outside [skew, limit]";
	for (uint32_t r = b->skew; r < b->committed;) {
		const struct rt_page *pg = &b->pages[vidx(b, r)];
		if (pg->state != RT_PS_FREE && pg->state != RT_PS_USED)
			return "buddy: a page that is no block's head is not inside a block (B1)";
		unsigned k = pg->order;
		if (k > b->top_order || (r & ((1u << k) - 1)) != 0)
			return "buddy: block not aligned to its order";
		if ((uint64_t)r + (1u << k) > b->committed)
			return "buddy: block extends past the committed pages";
		for (uint32_t t = 1; t < (1u << k); t++) {
			const struct rt_page *tp = &b->pages[vidx(b, r + t)];
			if (tp->state != RT_PS_TAIL || tp->cls != 0)
				return "buddy: tail page of a block is marked as a head (B1)";
		}
		if (pg->state == RT_PS_FREE) {
			if (pg->cls != 0)
				return "buddy: free block carries a size class";
			free_pages += (size_t)1 << k;
			heads_per_order[k]++;
			uint32_t br = r ^ (1u << k);
			if (k < b->top_order && br >= b->skew && (uint64_t)br + (1u << k) <= b->committed) {
				const struct rt_page *bp = &b->pages[vidx(b, br)];
				if (bp->state == RT_PS_FREE && bp->order == k)
					return "buddy: two free buddies were not merged (B2)";
			}
		}
		r += 1u << k;
	}
	if (free_pages != b->free_pages)
		return "buddy: free page count differs from the blocks";
	if (b->min_free_pages > b->free_pages)
		return "buddy: low-water mark above the free count";
	for (unsigned k = 0; k < RT_NORDERS; k++) {
		uint32_t n = 0, prev = RT_NIL;
		for (uint32_t i = b->head[k]; i != RT_NIL; i = b->pages[i].next) {
			if (i < b->first || vpos(b, i) >= b->committed)
				return "buddy: free list points outside the arena";
			const struct rt_page *pg = &b->pages[i];
			if (pg->state != RT_PS_FREE || pg->order != k)
				return "buddy: free list holds a block of another order or state";
			if (pg->prev != prev)
				return "buddy: free list back link broken";
			prev = i;
			if (++n > heads_per_order[k])
				return "buddy: free list longer than its blocks (cycle?)";
		}
		if (n != heads_per_order[k])
			return "buddy: a free block is missing from its list";
		if (!!(b->nonempty & (1ULL << k)) != (n != 0))
			return "buddy: non-empty bitmap out of date";
	}
	return NULL;
}
