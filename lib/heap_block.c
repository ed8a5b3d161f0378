/* SPDX-License-Identifier: MIT */
/*
 * heap_block.c - the blocks inside a heap: the layout of its memory, pages
 * from its regions' buddies, small blocks carved from pages of their
 * class, the operations made under the heap's lock (alloc, free, a block's
 * validation, offsets), the lock itself with the recovery after a holder
 * that died, and the checker the tests call (rt_heap_check).  Which heap
 * file does what, the bounds and the synchronization table are in heap.c;
 * what the files share is in heap_int.h.
 *
 * A heap is self-contained memory: a header (struct rt_heap_hdr), the page
 * descriptors of all its regions, then the data pages; where the library
 * maps the heap (rtalloc_heap_create, bind), a PROT_NONE guard page sits
 * between the descriptors and the data, so an underflow from the first
 * block faults instead of rewriting metadata.  Pages are managed
 * by buddy.c (one struct rt_buddy per region, over the heap's own
 * descriptor array, stamping the region number into the descriptors'
 * `arena` byte); blocks of up to RT_PAGE_SIZE / 2 bytes are carved from
 * single pages of their class, with per-page free lists of in-page offsets
 * and one partial-page list per class (page indices; a page that becomes
 * empty goes straight back to the buddy); larger requests are a
 * buddy block each.  Every block is aligned to its size, and every region's
 * data to its largest power of two (so block positions are the same in
 * every process).  Nothing inside a heap is a pointer, except struct
 * rt_buddy's `pages`, which a private heap's users set, and which a shared
 * heap's processes never read: each keeps its own copy of the region's
 * buddy (struct rtalloc_heap.bud).  So a shared heap works at any address in
 * any process.
 *
 * Recovery (a process killed while holding a shared heap's lock): the
 * descriptors are the truth.  A used head of a huge block or a small page
 * is kept; any other page becomes free (a half-made allocation is thus
 * reclaimed); buddy lists are rebuilt; each small page's free list is
 * checked and, if broken, dropped (its blocks leak: counted live).  What can
 * leak: blocks the dead process held (its live blocks stay allocated:
 * nobody else knows whether they are still referenced), blocks of a broken
 * per-page list, and a block granted to a waiter of the dead process.
 * It walks every page (O(pages * RT_ORDER_MAX)): not real-time, and rare.
 */
#include "heap_int.h"

void rt_heap_corrupt(const char *what, const void *where)
{
	rt_fatal("rtalloc_heap", what, where);
}

/* The buddy of region r that this process works on (lock held). */
static inline struct rt_buddy *bud(struct rtalloc_heap *h, unsigned r)
{
	return h->shared ? &h->bud : &h->hdr->reg[r].buddy;
}

static inline const struct rt_buddy *cbud(const struct rtalloc_heap *h, unsigned r)
{
	return h->shared ? &h->bud : &h->hdr->reg[r].buddy;
}

/* A page index read from the heap's memory: in range, or fatal. */
static inline uint32_t idx_ok(const struct rtalloc_heap *h, uint32_t idx)
{
	if (rt_unlikely(idx >= h->npages))
		rt_heap_corrupt("heap corruption (a page index out of range)", h->hdr);
	return idx;
}

/* ---- pages -------------------------------------------------------------------- */

/* Address of page idx (a valid index); its region is read from its
 * descriptor, so it is checked. */
static inline char *page_addr(const struct rtalloc_heap *h, uint32_t idx)
{
	unsigned r = h->desc[idx].arena;
	if (rt_unlikely(r >= h->nregions || idx - h->first[r] >= (h->dend[r] - h->data[r]) >> RT_PAGE_SHIFT))
		rt_heap_corrupt("heap corruption (a page descriptor names the wrong region)", &h->desc[idx]);
	return (char *)h->data[r] + ((size_t)(idx - h->first[r]) << RT_PAGE_SHIFT);
}

/* The partial lists are rt_plist lists (rt.h), their links checked
 * against the heap's pages as they are read. */
static void partial_push(struct rtalloc_heap *h, unsigned c, uint32_t idx)
{
	rt_plist_push(h->desc, h->npages, &h->hdr->partial[c], idx);
}

static void partial_unlink(struct rtalloc_heap *h, unsigned c, uint32_t idx)
{
	rt_plist_unlink(h->desc, h->npages, &h->hdr->partial[c], idx);
}

/* A free small block's identity: its page in the heap and its offset in the
 * page, the same in every process; its stamp (word 1) and the mask of its
 * link (word 0, the next free block's offset in the page + 1, or 0) are
 * bound to it (rt.h, "links and stamps"): a stamp copied to another block is
 * no stamp, and a link rewritten by an overflow decodes to an offset the
 * checks refuse or to a block whose stamp does not match. */
static inline uintptr_t block_id(uint32_t idx, uintptr_t in_page) { return ((uintptr_t)idx << RT_PAGE_SHIFT) + in_page; }

static inline uint64_t block_stamp(const struct rt_heap_hdr *H, uint32_t idx, uintptr_t in_page)
{
	return rt_stamp_key(H->key, block_id(idx, in_page), RT_STAMP_HELD);
}

static inline uintptr_t block_next(const struct rt_heap_hdr *H, uint32_t idx, uintptr_t in_page, const uint64_t *w)
{
	return (uintptr_t)w[0] ^ rt_link_mask_key(H->link_key, block_id(idx, in_page));
}

/* Walk a small page's free list: its length, or -1 if it is broken. */
static int small_list_len(const struct rtalloc_heap *h, uint32_t idx)
{
	const struct rt_page *pg = &h->desc[idx];
	size_t sz = rt_class_size(pg->cls);
	unsigned bpp = (unsigned)(RT_PAGE_SIZE / sz);
	const char *page = page_addr(h, idx);
	uintptr_t f = (uintptr_t)pg->free;
	int n = 0;
	while (f) { /* bound: bpp links, then it is a cycle */
		uintptr_t off = f - 1;
		if (off >= pg->carved || (off & (sz - 1)) || ++n > (int)bpp)
			return -1;
		const uint64_t *w = (const uint64_t *)(const void *)(page + off);
		if (w[1] != block_stamp(h->hdr, idx, off))
			return -1;
		f = block_next(h->hdr, idx, off, w);
	}
	return n;
}

/* ---- figures ---------------------------------------------------------------- */

size_t rt_heap_free_bytes(const struct rtalloc_heap *h)
{
	size_t f = h->hdr->small_free;
	for (unsigned r = 0; r < h->nregions; r++) /* bound: RTALLOC_HEAP_REGIONS */
		f += cbud(h, r)->free_pages << RT_PAGE_SHIFT;
	return f;
}

size_t rt_heap_largest_free(const struct rtalloc_heap *h)
{
	const struct rt_heap_hdr *H = h->hdr;
	size_t best = 0;
	for (unsigned r = 0; r < h->nregions; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		uint64_t ne = cbud(h, r)->nonempty;
		if (ne) {
			size_t s = RT_PAGE_SIZE << (63 - __builtin_clzll(ne));
			best = s > best ? s : best;
		}
	}
	for (unsigned c = RT_NSMALL; !best && c >= 1; c--) /* bound: RT_NSMALL */
		if (H->partial[c] != RT_NIL)
			best = rt_class_size(c);
	return best;
}

/* ---- the lock and recovery ------------------------------------------------------ */

/* The lock was held by a thread that died mid-update (hdr->dirty): the
 * lists and counters are rebuilt from the descriptors (see the top). */
static void recover(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	struct rt_page *d = h->desc;
	H->recoveries++;
	rt_heap_waiters_recover(H);
	for (unsigned c = 0; c <= RT_NSMALL; c++)
		H->partial[c] = RT_NIL;
	uint64_t live = 0, small_free = 0;
	for (unsigned r = 0; r < H->nregions; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		struct rt_buddy *b = bud(h, r);
		size_t old_min = b->min_free_pages;
		/* Pass 1: keep the trusted heads, clear every other page. */
		for (uint32_t v = b->skew; v < b->committed;) { /* bound: the region's pages */
			uint32_t idx = v - b->skew + b->first;
			struct rt_page *pg = &d[idx];
			unsigned k = pg->order;
			bool keep = false;
			if (pg->state == RT_PS_USED && pg->cls == RT_CLS_HUGE)
				keep = k <= b->top_order && !(v & ((1u << k) - 1)) &&
				       (uint64_t)v + (1u << k) <= b->committed;
			else if (pg->state == RT_PS_USED && pg->cls >= 1 && pg->cls <= RT_NSMALL && k == 0) {
				size_t sz = rt_class_size(pg->cls);
				unsigned bpp = (unsigned)(RT_PAGE_SIZE / sz);
				if (pg->carved > RT_PAGE_SIZE || (pg->carved & (sz - 1))) {
					pg->carved = RT_PAGE_SIZE; /* unknown: every block stays live */
					pg->free = NULL;
				}
				int n = small_list_len(h, idx);
				if (n < 0) { /* broken list: its blocks leak */
					pg->free = NULL;
					n = 0;
				}
				pg->nfree = (uint16_t)(n + (int)bpp - (int)(pg->carved / sz));
				keep = pg->nfree < bpp;
				if (keep) {
					live += bpp - pg->nfree;
					small_free += (uint64_t)pg->nfree * sz;
					if (pg->nfree)
						partial_push(h, pg->cls, idx);
				}
			}
			if (keep) {
				pg->arena = (uint8_t)r;
				if (pg->cls == RT_CLS_HUGE)
					live++;
				for (uint32_t t = 1; t < (1u << k); t++) { /* bound: the block's pages */
					struct rt_page *tp = &d[idx + t];
					memset(tp, 0, sizeof(*tp));
					tp->next = tp->prev = RT_NIL;
				}
				v += 1u << k;
			} else {
				memset(pg, 0, sizeof(*pg));
				pg->next = pg->prev = RT_NIL;
				v++;
			}
		}
		/* Pass 2: free every cleared page; the buddy merges them. */
		for (unsigned k = 0; k < RT_NORDERS; k++)
			b->head[k] = RT_NIL;
		b->nonempty = 0;
		b->free_pages = 0;
		for (uint32_t v = b->skew; v < b->committed;) { /* bound: the region's pages */
			uint32_t idx = v - b->skew + b->first;
			struct rt_page *pg = &d[idx];
			if (pg->state == RT_PS_USED) {
				v += 1u << pg->order;
				continue;
			}
			pg->state = RT_PS_USED;
			pg->order = 0;
			rt_buddy_free(b, idx);
			v++;
		}
		b->min_free_pages = old_min < b->free_pages ? old_min : b->free_pages;
	}
	H->live = live;
	H->small_free = small_free;
	size_t f = rt_heap_free_bytes(h);
	if (f < H->min_free)
		H->min_free = f;
}

/* The lists of a buddy as a header holds them: heads in range (or RT_NIL)
 * and of orders up to top, free counts within the pages. */
bool rt_heap_bud_lists_ok(const struct rt_buddy *S, uint32_t npages, unsigned top)
{
	for (unsigned k = 0; k < RT_NORDERS; k++) { /* bound: RT_NORDERS */
		uint32_t i = S->head[k];
		if (i != RT_NIL && (i >= npages || k > top))
			return false;
	}
	return S->free_pages <= npages && S->min_free_pages <= S->free_pages;
}

/* Shared heap, lock just taken: the header's lists into h->bud, checked
 * (fatal when a peer left them impossible); with trust_none (a holder died
 * mid-update: recover() rebuilds them), emptied instead. */
static void bud_in(struct rtalloc_heap *h, bool trust_none)
{
	const struct rt_buddy *S = &h->hdr->reg[0].buddy;
	struct rt_buddy *b = &h->bud;
	if (trust_none) {
		for (unsigned k = 0; k < RT_NORDERS; k++) /* bound: RT_NORDERS */
			b->head[k] = RT_NIL;
		b->nonempty = 0;
		b->free_pages = 0;
		b->min_free_pages = S->min_free_pages <= h->npages ? S->min_free_pages : 0;
		return;
	}
	if (rt_unlikely(!rt_heap_bud_lists_ok(S, h->npages, b->top_order)))
		rt_heap_corrupt("heap corruption (the shared header's free lists)", h->hdr);
	uint64_t ne = 0;
	for (unsigned k = 0; k < RT_NORDERS; k++) { /* bound: RT_NORDERS */
		b->head[k] = S->head[k];
		ne |= (uint64_t)(b->head[k] != RT_NIL) << k;
	}
	b->nonempty = ne; /* derived, not read */
	b->free_pages = S->free_pages;
	b->min_free_pages = S->min_free_pages;
}

/* Shared heap, before the unlock: h->bud (all of it) back into the header. */
static void bud_out(struct rtalloc_heap *h)
{
	struct rt_buddy *S = &h->hdr->reg[0].buddy;
	memcpy(S, &h->bud, sizeof(*S));
	S->pages = NULL; /* an address of this process: meaningless to the others */
}

static void fix_pointers(struct rtalloc_heap *h)
{
	for (unsigned r = 0; r < h->nregions; r++) /* bound: RTALLOC_HEAP_REGIONS */
		h->hdr->reg[r].buddy.pages = h->desc;
}

static int lock_heap(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	int e = rt_mutex_lock_counted(&H->lock);
	if (rt_unlikely(e == EOWNERDEAD)) {
		bool dirty = H->dirty != 0;
		if (h->shared)
			bud_in(h, dirty);
		else
			fix_pointers(h);
		if (dirty)
			recover(h);
		rt_mutex_consistent(&H->lock);
		H->dirty = 1;
		return 0;
	}
	if (e)
		return EIDRM;
	H->dirty = 1;
	if (h->shared)
		bud_in(h, false);
	return 0;
}

/* 0, or EIDRM when the heap cannot be used (destroyed, or unrecoverable). */
int rt_heap_lock(struct rtalloc_heap *h)
{
	int e = lock_heap(h);
	rt_heap_counts.locked += e == 0;
	return e;
}

void rt_heap_unlock(struct rtalloc_heap *h)
{
	rt_heap_counts.locked--;
	if (h->shared)
		bud_out(h);
	h->hdr->dirty = 0;
	rt_mutex_unlock(&h->hdr->lock);
}

/* A heap's lock: priority-inheriting and robust; process-shared in a
 * shared heap. */
int rt_heap_lock_init(pthread_mutex_t *m, bool shared)
{
	return rt_mutex_init(m, RT_MUTEX_PI | RT_MUTEX_ROBUST | (shared ? RT_MUTEX_SHARED : 0));
}

/* ---- blocks (lock held) -------------------------------------------------------- */

uint32_t rt_heap_pages_alloc(struct rtalloc_heap *h, unsigned order)
{
	for (unsigned r = 0; r < h->nregions; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		uint32_t idx = rt_buddy_alloc(bud(h, r), order);
		if (idx != RT_NIL)
			return idx;
	}
	return RT_NIL;
}

static void *small_alloc(struct rtalloc_heap *h, unsigned c)
{
	struct rt_heap_hdr *H = h->hdr;
	struct rt_page *d = h->desc;
	size_t sz = rt_class_size(c);
	uint32_t idx = H->partial[c];
	if (idx != RT_NIL && rt_unlikely(d[idx_ok(h, idx)].cls != c || d[idx].state != RT_PS_USED))
		rt_heap_corrupt("heap corruption (a partial list holds a page of another class)", &d[idx]);
	if (idx == RT_NIL) {
		idx = rt_heap_pages_alloc(h, 0);
		if (idx == RT_NIL)
			return NULL;
		struct rt_page *pg = &d[idx];
		pg->free = NULL;
		pg->carved = 0;
		pg->nfree = (uint16_t)(RT_PAGE_SIZE / sz);
		rt_store(&pg->cls, (uint8_t)c);
		H->small_free += RT_PAGE_SIZE;
		partial_push(h, c, idx);
	}
	struct rt_page *pg = &d[idx];
	char *page = page_addr(h, idx);
	uintptr_t f = (uintptr_t)pg->free;
	size_t carved = pg->carved;
	uint64_t *w;
	/* the descriptor's offsets are checked before they address anything */
	if (rt_unlikely(carved > RT_PAGE_SIZE || (carved & (sz - 1)) ||
			(f ? f - 1 >= carved || ((f - 1) & (sz - 1)) : carved == RT_PAGE_SIZE)))
		rt_heap_corrupt("heap corruption (a small page's descriptor)", pg);
	if (f) {
		w = (uint64_t *)(void *)(page + f - 1);
		uintptr_t next = block_next(H, idx, f - 1, w);
		if (rt_unlikely(w[1] != block_stamp(H, idx, f - 1) ||
				(next && (next - 1 >= pg->carved || ((next - 1) & (sz - 1))))))
			rt_fatal("rtalloc_heap_alloc", "heap corruption (use after free or overflow?) in block", w);
		pg->free = (void *)next;
	} else {
		w = (uint64_t *)(void *)(page + pg->carved);
		pg->carved = (uint16_t)(carved + sz);
	}
	if (--pg->nfree == 0)
		partial_unlink(h, c, idx);
	w[0] = 0;
	w[1] = 0;
	H->small_free -= sz;
	return w;
}

void *rt_heap_block_alloc(struct rtalloc_heap *h, size_t n)
{
	struct rt_heap_hdr *H = h->hdr;
	if (n == 0)
		n = 1;
	if (n > PTRDIFF_MAX)
		return NULL;
	void *p;
	unsigned c = rt_class_of(n);
	if (c <= RT_NSMALL) {
		p = small_alloc(h, c);
	} else {
		unsigned order = rt_order_of(n);
		uint32_t idx = order <= RT_ORDER_MAX ? rt_heap_pages_alloc(h, order) : RT_NIL;
		if (idx == RT_NIL)
			return NULL;
		rt_store(&h->desc[idx].cls, (uint8_t)RT_CLS_HUGE);
		p = page_addr(h, idx);
	}
	if (!p)
		return NULL;
	H->live++;
	size_t f = rt_heap_free_bytes(h);
	if (f < H->min_free)
		H->min_free = f;
	return p;
}

static int region_of(const struct rtalloc_heap *h, const void *p)
{
	for (unsigned r = 0; r < h->nregions; r++) /* bound: RTALLOC_HEAP_REGIONS */
		if ((uintptr_t)p - h->data[r] < h->dend[r] - h->data[r])
			return (int)r;
	return -1;
}

/* The descriptor of live block p (and its region in *region), or fatal
 * naming call. */
struct rt_page *rt_heap_block_live(struct rtalloc_heap *h, const void *p, const char *call, size_t *size,
				  unsigned *region)
{
	int r = region_of(h, p);
	if (r < 0)
		rt_fatal(call, "invalid pointer (inside a heap, not a block)", p);
	*region = (unsigned)r;
	uint32_t idx = h->first[r] + (uint32_t)(((uintptr_t)p - h->data[r]) >> RT_PAGE_SHIFT);
	struct rt_page *pg = &h->desc[idx];
	uintptr_t in_page = (uintptr_t)p & (RT_PAGE_SIZE - 1);
	unsigned k = pg->order;
	if (pg->state == RT_PS_USED && pg->cls == RT_CLS_HUGE) {
		if (in_page)
			rt_fatal(call, "invalid pointer (inside a large heap block)", p);
		/* the order comes from the heap's memory: the block must lie
		 * inside its region, aligned as the buddy makes it */
		const struct rt_buddy *b = cbud(h, (unsigned)r);
		uint32_t v = idx - b->first + b->skew;
		if (rt_unlikely(k > b->top_order || (v & ((1u << k) - 1)) || (uint64_t)v + (1u << k) > b->committed))
			rt_heap_corrupt("heap corruption (a large block's order)", pg);
		*size = RT_PAGE_SIZE << k;
		return pg;
	}
	if (pg->state != RT_PS_USED || pg->cls < 1 || pg->cls > RT_NSMALL)
		rt_fatal(call, "invalid pointer (not a heap block, or already freed)", p);
	if (rt_unlikely(k != 0 || pg->carved > RT_PAGE_SIZE))
		rt_heap_corrupt("heap corruption (a small page's descriptor)", pg);
	size_t sz = rt_class_size(pg->cls);
	if ((in_page & (sz - 1)) || in_page >= pg->carved)
		rt_fatal(call, "invalid pointer (not the start of a heap block)", p);
	if (((const uint64_t *)p)[1] == block_stamp(h->hdr, idx, in_page))
		rt_fatal(call, "double free (heap block already freed)", p);
	*size = sz;
	return pg;
}

void rt_heap_block_free(struct rtalloc_heap *h, void *p, const char *call)
{
	struct rt_heap_hdr *H = h->hdr;
	size_t sz;
	unsigned r;
	struct rt_page *pg = rt_heap_block_live(h, p, call, &sz, &r);
	uint32_t idx = (uint32_t)(pg - h->desc);
	H->live--;
	if (pg->cls == RT_CLS_HUGE) {
		rt_buddy_free(bud(h, r), idx);
	} else {
		unsigned c = pg->cls, bpp = (unsigned)(RT_PAGE_SIZE / sz);
		uint64_t *w = p;
		uintptr_t in_page = (uintptr_t)p & (RT_PAGE_SIZE - 1);
		w[0] = (uint64_t)((uintptr_t)pg->free ^ rt_link_mask_key(H->link_key, block_id(idx, in_page)));
		w[1] = block_stamp(H, idx, in_page);
		pg->free = (void *)(in_page + 1);
		H->small_free += sz;
		if (++pg->nfree == 1)
			partial_push(h, c, idx);
		if (pg->nfree == bpp) {
			/* empty: back to the buddy at once, so that a heap with
			 * nothing allocated has all of its memory in one piece */
			partial_unlink(h, c, idx);
			pg->free = NULL;
			pg->carved = 0;
			pg->nfree = 0;
			H->small_free -= RT_PAGE_SIZE;
			rt_buddy_free(bud(h, r), idx);
		}
	}
	if (H->nwaiters)
		rt_heap_serve_waiters(h);
}

/* ---- offsets --------------------------------------------------------------------- */

size_t rt_heap_offset_of(const struct rtalloc_heap *h, const void *p)
{
	unsigned nr = __atomic_load_n(&h->nregions, __ATOMIC_ACQUIRE);
	for (unsigned r = 0; r < nr; r++) /* bound: RTALLOC_HEAP_REGIONS */
		if ((uintptr_t)p - h->rbase[r] < h->rsize[r])
			return h->hdr->reg[r].base_off + ((uintptr_t)p - h->rbase[r]);
	return RTALLOC_HEAP_BAD_OFFSET;
}

void *rt_heap_ptr_of(const struct rtalloc_heap *h, size_t off)
{
	unsigned nr = __atomic_load_n(&h->nregions, __ATOMIC_ACQUIRE);
	for (unsigned r = 0; r < nr; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		uint64_t b = h->hdr->reg[r].base_off;
		if (off - b < h->rsize[r])
			return (void *)(h->rbase[r] + (off - b));
	}
	return NULL;
}

/* ---- setting a heap up ------------------------------------------------------------ */

/* The handle's view of a formatted header H: local addresses of regions.
 * The geometry comes from G: H itself, or for a shared heap bound by this
 * process, the copy of its header that bind checked (map_object). */
void rt_heap_handle_fill(struct rtalloc_heap *h, const struct rt_heap_hdr *G, struct rt_heap_hdr *H,
			uintptr_t const rbase[])
{
	h->hdr = H;
	h->nregions = G->nregions;
	h->npages = G->npages;
	h->desc = (struct rt_page *)(rbase[0] + G->desc_off);
	h->shared = G->flags & RTALLOC_HEAP_SHARED;
	if (h->shared) {
		h->bud = G->reg[0].buddy;
		h->bud.pages = h->desc;
	}
	for (unsigned r = 0; r < G->nregions; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		const struct rt_heap_region *R = &G->reg[r];
		h->rbase[r] = rbase[r];
		h->rsize[r] = R->bytes;
		h->data[r] = rbase[r] + R->data_off;
		h->dend[r] = h->data[r] + ((size_t)(R->buddy.limit - R->buddy.skew) << RT_PAGE_SHIFT);
		h->first[r] = R->buddy.first;
	}
}

/* Pages of descriptors for x pages of data and metadata together, minus
 * the descriptors' own pages: the least d with d pages holding the
 * descriptors of x - d pages. */
static size_t desc_pages(size_t x)
{
	const size_t per = RT_PAGE_SIZE + sizeof(struct rt_page);
	return (x * sizeof(struct rt_page) + per - 1) / per;
}

/* Format a heap over n regions; region 0 starts with the header, then the
 * descriptors of every data page and of `reserve` pages more (the regions a
 * heap created to grow may add), then, with guard, one page the caller
 * makes PROT_NONE, then its data.  A heap that rtalloc_heap_create made of
 * P pages of data thus has its data at rt_heap_data_offset(P, reserve).  Returns 0
 * or EINVAL. */
int rt_heap_format(struct rtalloc_heap *h, const char *name, unsigned flags, uintptr_t const base[],
		  size_t const size[], unsigned n, size_t reserve, bool guard)
{
	uintptr_t start[NREG], stop[NREG];
	size_t total = 0;
	for (unsigned r = 0; r < n; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		start[r] = rt_page_round(base[r]);
		stop[r] = (base[r] + size[r]) & ~(RT_PAGE_SIZE - 1);
		if (stop[r] > start[r])
			total += (stop[r] - start[r]) >> RT_PAGE_SHIFT;
	}
	size_t fixed = (HDR_BYTES >> RT_PAGE_SHIFT) + guard;
	if (total <= fixed || total + reserve > RT_NIL / 2)
		return EINVAL;
	size_t dbytes = desc_pages(total - fixed + reserve) << RT_PAGE_SHIFT;
	uintptr_t hdr_at = start[0], desc_at = hdr_at + HDR_BYTES;
	uintptr_t data0 = desc_at + dbytes + (guard ? RT_PAGE_SIZE : 0);
	if (stop[0] < data0)
		return EINVAL;
	start[0] = data0;
	struct rt_heap_hdr *H = (struct rt_heap_hdr *)hdr_at;
	memset(H, 0, sizeof(*H));
	memset((void *)desc_at, 0, dbytes);
	H->version = HEAP_VERSION;
	H->flags = flags;
	if (name)
		memcpy(H->name, name, strlen(name));
	H->key = rt_os_random() | 1;
	H->link_key = rt_os_random();
	H->desc_off = desc_at - base[0];
	H->nregions = n;
	for (unsigned c = 0; c <= RT_NSMALL; c++)
		H->partial[c] = RT_NIL;
	if (rt_heap_lock_init(&H->lock, flags & RTALLOC_HEAP_SHARED))
		return EINVAL;
	uint32_t first = 0;
	uint64_t off = 0;
	for (unsigned r = 0; r < n; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		struct rt_heap_region *R = &H->reg[r];
		uint32_t np = stop[r] > start[r] ? (uint32_t)((stop[r] - start[r]) >> RT_PAGE_SHIFT) : 0;
		R->base_off = off;
		R->bytes = size[r];
		R->data_off = start[r] - base[r];
		off += size[r];
		rt_buddy_init(&R->buddy, (struct rt_page *)desc_at, first, start[r], np, r);
		if (np)
			rt_buddy_add(&R->buddy, np);
		first += np;
	}
	H->npages = first;
	if (!first)
		return EINVAL;
	rt_heap_handle_fill(h, H, H, base);
	H->min_free = rt_heap_free_bytes(h);
	return 0;
}

/* Where rtalloc_heap_create puts the data of a heap of `pages` pages (and
 * descriptors for `reserve` more): header, descriptors, guard page. */
size_t rt_heap_data_offset(size_t pages, size_t reserve)
{
	return HDR_BYTES + rt_page_round((pages + reserve) * sizeof(struct rt_page)) + RT_PAGE_SIZE;
}

/* The alignment of a heap region's data of len bytes: its largest power of
 * two, so that the buddy serves its largest block and the block positions
 * (skew 0) are the same in every process that maps the region. */
size_t rt_heap_region_align(size_t len)
{
	return (size_t)1 << (63 - __builtin_clzll(len));
}

/* ---- the checker ------------------------------------------------------------------ */

/* Lock held: every block invariant of the heap against its descriptors
 * (rt_heap_check, for the tests): NULL when sound, else what broke. */
const char *rt_heap_blocks_check(struct rtalloc_heap *h)
{
	const struct rt_heap_hdr *H = h->hdr;
	const char *why = NULL;
	uint64_t live = 0, small_free = 0;
	for (unsigned r = 0; r < H->nregions && !why; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		const struct rt_buddy *b = cbud(h, r);
		why = rt_buddy_check(b);
		for (uint32_t v = b->skew; v < b->committed && !why;) { /* bound: the pages */
			uint32_t idx = v - b->skew + b->first;
			const struct rt_page *pg = &h->desc[idx];
			if (pg->state == RT_PS_USED && pg->cls == RT_CLS_HUGE) {
				live++;
			} else if (pg->state == RT_PS_USED) {
				if (pg->cls < 1 || pg->cls > RT_NSMALL) {
					why = "heap: used page without a class";
					break;
				}
				size_t sz = rt_class_size(pg->cls);
				unsigned bpp = (unsigned)(RT_PAGE_SIZE / sz);
				int n = small_list_len(h, idx);
				if (n < 0)
					why = "heap: broken free list in a small page";
				else if (pg->nfree != n + bpp - pg->carved / sz)
					why = "heap: small page's free count differs from its list";
				live += bpp - pg->nfree;
				small_free += (uint64_t)pg->nfree * sz;
				bool listed = false;
				for (uint32_t i = H->partial[pg->cls], k = 0; i != RT_NIL && k <= H->npages;
				     i = h->desc[i].next, k++) /* bound: the pages */
					listed |= i == idx;
				if (listed != (pg->nfree > 0))
					why = "heap: partial list membership wrong";
			}
			v += 1u << pg->order;
		}
	}
	if (!why && live != H->live)
		why = "heap: live block count differs";
	if (!why && small_free != H->small_free)
		why = "heap: small free bytes differ";
	if (!why && H->min_free > rt_heap_free_bytes(h))
		why = "heap: lowest free above the free count";
	return why;
}

