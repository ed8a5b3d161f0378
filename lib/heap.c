/* SPDX-License-Identifier: MIT */
/*
 * heap.c - heaps: pools apart from the process's pool (rtalloc_heap_*).
 * Named shared heaps' binding and the checks of an object another process
 * made are in heap_shm.c; the types both files use in heap_int.h.
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
 * A shared heap's memory is written by other processes, which need not be
 * trusted: bind checks every field of the header against the object and
 * the layout rtalloc_heap_create makes (hdr_check), and refuses objects of
 * another owner (owner_ok); afterwards every index read from the heap's
 * memory is checked where it is used (idx_ok, page_addr, bud_in,
 * live_block, small_alloc, buddy.c's list links), and what is impossible
 * aborts with a message instead of reaching outside the mapping.  What no
 * check can stop: a peer that may write the object can corrupt the blocks
 * and lists (within the mapping), hold the lock for ever, or rewrite the
 * lock's own words while another process holds it (glibc keeps a robust
 * mutex's list links in the mutex).
 *
 * Bounds: alloc = one bit scan + at most RT_ORDER_MAX splits per region
 * tried (at most RTALLOC_HEAP_REGIONS); free = at most RT_ORDER_MAX merges,
 * plus, when threads wait, at most RTALLOC_HEAP_WAITERS rounds each
 * choosing among RTALLOC_HEAP_WAITERS records (a round drops the record of
 * a dead waiter, or ends), and at most one block handed over.  A free that
 * hands a block to a waiter makes one system call (FUTEX_WAKE); the waiter,
 * once it has the block, hands the next one (the baton), so a free that
 * makes room for several waiters still wakes one.  Whether a waiter lives
 * is a load of its record's robust lock, not a system call.  Nothing else
 * on the alloc/free paths calls the kernel, except a heap's growth
 * (RTALLOC_HEAP_GROW).  rtalloc_heap_alloc_timed reads the caller's
 * priority (pthread_getschedparam) before it takes the lock.  Recovery
 * after a process died holding the lock walks every page
 * (O(pages * RT_ORDER_MAX)): not real-time, and rare.
 *
 * Synchronization table
 *   what                        written by                    read by
 *   header, descriptors, data   the holder of hdr->lock       the holder of hdr->lock
 *     hdr->lock: PTHREAD_PRIO_INHERIT, ROBUST, and PROCESS_SHARED for
 *     shared heaps.  hdr->dirty is 1 while a holder works: a holder that
 *     dies leaves it set, and the next locker (EOWNERDEAD) rebuilds the
 *     lists and counters from the descriptors (recover()), then marks the
 *     mutex consistent.
 *   shared header's buddy lists the holder, from its own bud  the next holder, into its bud
 *                               (bud_out, before the unlock)  (bud_in, checked)
 *   waiter record futex word    a freer under the lock        its waiter, in FUTEX_WAIT
 *                               (release store, then wake)
 *   waiter record `alive`       its waiter (locked while the  freers, recovery: the holder
 *                               record is in use); the kernel word (load), under hdr->lock
 *                               when that thread dies
 *   registry slot (reg[i])      create/bind/destroy under      heap_of(): lock-free; fields
 *                               rt_heap_reg_lock; `active`     before `active` (acquire)
 *                               published last (release),
 *                               cleared first
 *   slot `users`                alloc_timed callers (atomic)   destroy, which waits for 0
 *   stats heaps[i] (stats.h)    the heap lock's holder, with   rtalloc-stat (seqlock)
 *                               the seqlock pattern of stats.c
 *   hdr->fig (shared heaps)     the heap lock's holder, of     rtalloc-stat, mapping the
 *                               any process (seqlock)          object read-only
 *   rt_heap_reg_lock            PTHREAD_PRIO_INHERIT; taken before any heap's lock
 * fork (pthread_atfork, registered by the first heap call): the forking
 * thread takes rt_heap_reg_lock and every private heap's lock; the child
 * makes them anew and drops the waiter records of the threads it does not
 * have.
 * The registry is read without locks and without RCU: a slot is never
 * unmapped memory (a static array), and a heap's memory goes only at
 * rtalloc_heap_destroy, after which using its blocks is the caller's error.
 *
 * Recovery (a process killed while holding a shared heap's lock): the
 * descriptors are the truth.  A used head of a huge block or a small page
 * is kept; any other page becomes free (a half-made allocation is thus
 * reclaimed); buddy lists are rebuilt; each small page's free list is
 * checked and, if broken, dropped (its blocks leak: counted live).  What can
 * leak: blocks the dead process held (its live blocks stay allocated:
 * nobody else knows whether they are still referenced), blocks of a broken
 * per-page list, and a block granted to a waiter of the dead process.
 */
#include <stdlib.h>

#include "fastpath.h"
#include "heap_int.h"

static struct rtalloc_heap reg[RTALLOC_HEAP_MAX];

/* The buddy of region r that this process works on (lock held). */
static inline struct rt_buddy *bud(struct rtalloc_heap *h, unsigned r)
{
	return h->shared ? &h->bud : &h->hdr->reg[r].buddy;
}
static inline const struct rt_buddy *cbud(const struct rtalloc_heap *h, unsigned r)
{
	return h->shared ? &h->bud : &h->hdr->reg[r].buddy;
}

/* Shared memory said something impossible: a peer corrupted the heap. */
static RT_NORETURN RT_COLD void corrupt(const char *what, const void *where)
{
	rt_fatal("rtalloc_heap", what, where);
}

/* Tests: what this thread's heap calls asked of the kernel on the paths
 * that the documentation bounds (rt_heap_debug_syscalls). */
static __thread unsigned dbg_wakes, dbg_probes;
static __thread unsigned dbg_locked, dbg_prio_reads, dbg_prio_locked; /* heap locks held; priority reads */

/* The caller's scheduling priority (pthread_getschedparam): never with a
 * heap lock held (counted for the tests). */
static int thread_prio(void)
{
	dbg_prio_reads++;
	dbg_prio_locked += dbg_locked != 0;
	return rt_os_thread_prio();
}

static void wake(uint32_t *word, bool shared)
{
	dbg_wakes++;
	rt_os_futex_wake(word, 1, shared);
}

bool rt_heap_pid_alive(int pid)
{
	dbg_probes++;
	return pid > 0 && rt_os_pid_alive(pid);
}

/* A waiter record not W_FREE whose thread is gone: the kernel cleared the
 * holder of its alive lock (or nobody ever held it). */
static bool waiter_dead(const struct rt_heap_waiter *w)
{
	uint32_t word = __atomic_load_n((const uint32_t *)(const void *)&w->alive, __ATOMIC_ACQUIRE);
	return (word & FUTEX_TID_MASK) == 0;
}

/* A page index read from the heap's memory: in range, or fatal. */
static inline uint32_t idx_ok(const struct rtalloc_heap *h, uint32_t idx)
{
	if (rt_unlikely(idx >= h->npages))
		corrupt("heap corruption (a page index out of range)", h->hdr);
	return idx;
}

static unsigned reg_hi; /* slots [0, reg_hi) may be active (grows only) */
/* Priority-inheriting (rt_heap_registry_init): a real-time thread that
 * creates, binds or destroys a heap while a lower-priority one does boosts
 * it. */
pthread_mutex_t rt_heap_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
int rt_heap_pid; /* getpid(), cached (renewed in a forked child) */

/* ---- names, registry ---------------------------------------------------- */

bool rt_heap_name_ok(const char *name)
{
	size_t n = 0;
	for (; name[n]; n++) { /* bound: RTALLOC_HEAP_NAME_MAX + 1 */
		char c = name[n];
		if (n >= RTALLOC_HEAP_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return n > 0;
}

static bool valid(const rtalloc_heap_t *h)
{
	uintptr_t off = (uintptr_t)h - (uintptr_t)reg;
	return h && off < sizeof(reg) && off % sizeof(reg[0]) == 0 &&
	       __atomic_load_n(&h->active, __ATOMIC_ACQUIRE);
}

static struct rtalloc_heap *heap_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	unsigned n = __atomic_load_n(&reg_hi, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++) { /* bound: RTALLOC_HEAP_MAX */
		struct rtalloc_heap *h = &reg[i];
		if (!__atomic_load_n(&h->active, __ATOMIC_ACQUIRE))
			continue;
		unsigned nr = __atomic_load_n(&h->nregions, __ATOMIC_ACQUIRE); /* grows: see grow() */
		for (unsigned r = 0; r < nr; r++) /* bound: RTALLOC_HEAP_REGIONS */
			if (a - h->rbase[r] < h->rsize[r])
				return h;
	}
	return NULL;
}

/* A free slot, under rt_heap_reg_lock; NULL when RTALLOC_HEAP_MAX are in use. */
struct rtalloc_heap *rt_heap_slot_claim(void)
{
	for (unsigned i = 0; i < RTALLOC_HEAP_MAX; i++) { /* bound: RTALLOC_HEAP_MAX */
		struct rtalloc_heap *h = &reg[i];
		if (!h->active && !h->hdr) {
			memset(h, 0, sizeof(*h));
			return h;
		}
	}
	return NULL;
}

void rt_heap_slot_publish(struct rtalloc_heap *h)
{
	unsigned i = (unsigned)(h - reg);
	__atomic_store_n(&h->active, 1, __ATOMIC_RELEASE);
	if (i + 1 > reg_hi)
		__atomic_store_n(&reg_hi, i + 1, __ATOMIC_RELEASE);
}

/* ---- fork, and the registry lock ------------------------------------------ */

/* The registry's lock: priority inheritance (not robust: a thread that dies
 * holding it has left the registry half-updated anyway). */
static void pi_lock_init(pthread_mutex_t *m) { rt_mutex_init(m, RT_MUTEX_PI); }
static void *heap_ptr_of(const struct rtalloc_heap *h, size_t off);
static void do_free(struct rtalloc_heap *h, void *p, const char *call);

static uint64_t fork_locked; /* bit i: the forking thread holds reg[i]'s lock */

/* Heaps across fork(2), like the pool's arenas: the forking thread takes
 * the registry lock and the lock of every private heap (lock order: the
 * registry, then heaps, as create/bind/destroy take them; these handlers
 * are registered after the pool's, so they run before its prepare and
 * after its child and parent handlers), so the child finds every private
 * heap between two operations.  A shared heap's lock is not taken: a
 * parent thread that holds it at the fork releases it in the parent, where
 * it still runs, and the child waits for it like any other process. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&rt_heap_reg_lock);
	uint64_t locked = 0;
	unsigned n = reg_hi;
	for (unsigned i = 0; i < n; i++) /* bound: RTALLOC_HEAP_MAX */
		if (reg[i].active && !reg[i].shared && rt_heap_lock(&reg[i]) == 0)
			locked |= 1ULL << i;
	fork_locked = locked;
}

static void fork_parent(void)
{
	for (unsigned i = reg_hi; i-- > 0;) /* bound: RTALLOC_HEAP_MAX */
		if (fork_locked & (1ULL << i))
			rt_heap_unlock(&reg[i]);
	pthread_mutex_unlock(&rt_heap_reg_lock);
}

/* The child has one thread, this one under another TID: the locks it
 * inherited held are made anew.  The parent's other threads are gone: the
 * waiter records they had in private heaps are dropped (a block already
 * handed to one goes back to its heap) and no thread of this process is
 * inside rtalloc_heap_alloc_timed. */
static void fork_child(void)
{
	rt_heap_pid = rt_os_getpid();
	pi_lock_init(&rt_heap_reg_lock);
	dbg_locked = 0; /* the locks fork_prepare took are made anew, not released */
	for (unsigned i = 0; i < reg_hi; i++) { /* bound: RTALLOC_HEAP_MAX */
		struct rtalloc_heap *h = &reg[i];
		h->users = 0;
		if (!(fork_locked & (1ULL << i)))
			continue;
		struct rt_heap_hdr *H = h->hdr;
		rt_heap_lock_init(&H->lock, false);
		H->dirty = 0;
		uint64_t granted[NWAIT];
		unsigned ng = 0;
		for (unsigned k = 0; k < NWAIT; k++) { /* bound: RTALLOC_HEAP_WAITERS */
			if (H->w[k].state == W_GRANTED)
				granted[ng++] = H->w[k].result;
			H->w[k].state = W_FREE;
		}
		H->nwaiters = 0;
		if (ng && rt_heap_lock(h) == 0) {
			for (unsigned k = 0; k < ng; k++) /* bound: RTALLOC_HEAP_WAITERS */
				do_free(h, heap_ptr_of(h, granted[k]), "fork");
			rt_heap_unlock(h);
		}
	}
	fork_locked = 0;
}

static void registry_once(void)
{
	pi_lock_init(&rt_heap_reg_lock);
	rt_heap_pid = rt_os_getpid();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Before the registry is used: its lock made priority-inheriting, the fork
 * handlers registered (the first heap call of the process; not on an
 * allocation path). */
void rt_heap_registry_init(void)
{
	pthread_once(&reg_once, registry_once);
}

/* ---- statistics (the seqlock writer of stats.h) --------------------------- */

static struct rt_stats_heap *stats_rec(const struct rtalloc_heap *h)
{
	unsigned i = (unsigned)(h - reg);
	return rt_stats && i < RT_STATS_HEAPS ? &rt_stats->heaps[i] : NULL;
}

/* ---- figures ---------------------------------------------------------------- */

static size_t free_bytes(const struct rtalloc_heap *h)
{
	size_t f = h->hdr->small_free;
	for (unsigned r = 0; r < h->nregions; r++) /* bound: RTALLOC_HEAP_REGIONS */
		f += cbud(h, r)->free_pages << RT_PAGE_SHIFT;
	return f;
}

static size_t largest_free(const struct rtalloc_heap *h)
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

static unsigned count_waiters(const struct rt_heap_hdr *H) { return H->nwaiters; }

static size_t data_bytes(const struct rt_heap_hdr *H)
{
	return (size_t)H->npages << RT_PAGE_SHIFT;
}

static void put_figures(struct rt_stats_heap *s, const struct rtalloc_heap *h)
{
	const struct rt_heap_hdr *H = h->hdr;
	rt_seq_write_begin(&s->seq);
	uint64_t name[RTALLOC_HEAP_NAME_MAX / 8];
	memcpy(name, H->name, sizeof(name));
	for (unsigned i = 0; i < RTALLOC_HEAP_NAME_MAX / 8; i++) /* bound: 8 words */
		RT_SEQ_PUT(((uint64_t *)(void *)s->name)[i], name[i]);
	RT_SEQ_PUT(s->flags, H->flags | RT_STATS_HEAP_USED);
	RT_SEQ_PUT(s->size, (uint64_t)data_bytes(H));
	RT_SEQ_PUT(s->free, (uint64_t)free_bytes(h));
	RT_SEQ_PUT(s->min_free, H->min_free);
	RT_SEQ_PUT(s->largest_free, (uint64_t)largest_free(h));
	RT_SEQ_PUT(s->live_blocks, H->live);
	RT_SEQ_PUT(s->waiters, (uint64_t)count_waiters(H));
	rt_seq_write_end(&s->seq);
}

/* Lock held: this process's record, and a shared heap's own. */
void rt_heap_publish(struct rtalloc_heap *h)
{
	struct rt_stats_heap *s = stats_rec(h);
	if (s)
		put_figures(s, h);
	if (h->shared)
		put_figures(&h->hdr->fig, h);
}

static void unpublish(struct rtalloc_heap *h)
{
	struct rt_stats_heap *s = stats_rec(h);
	if (!s)
		return;
	rt_seq_write_begin(&s->seq);
	RT_SEQ_PUT(s->flags, 0);
	RT_SEQ_PUT(s->size, 0);
	rt_seq_write_end(&s->seq);
}

/* ---- the lock and recovery ------------------------------------------------------ */

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
		corrupt("heap corruption (the shared header's free lists)", h->hdr);
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

static void recover(struct rtalloc_heap *h);

static int lock_heap(struct rtalloc_heap *h);

/* 0, or EIDRM when the heap cannot be used (destroyed, or unrecoverable). */
int rt_heap_lock(struct rtalloc_heap *h)
{
	int e = lock_heap(h);
	dbg_locked += e == 0;
	return e;
}

static int lock_heap(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	int e = pthread_mutex_lock(&H->lock);
	if (rt_unlikely(e == EOWNERDEAD)) {
		bool dirty = H->dirty != 0;
		if (h->shared)
			bud_in(h, dirty);
		else
			fix_pointers(h);
		if (dirty)
			recover(h);
		pthread_mutex_consistent(&H->lock);
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

void rt_heap_unlock(struct rtalloc_heap *h)
{
	dbg_locked--;
	if (h->shared)
		bud_out(h);
	h->hdr->dirty = 0;
	pthread_mutex_unlock(&h->hdr->lock);
}

/* Address of page idx (a valid index); its region is read from its
 * descriptor, so it is checked. */
static inline char *page_addr(const struct rtalloc_heap *h, uint32_t idx)
{
	unsigned r = h->desc[idx].arena;
	if (rt_unlikely(r >= h->nregions || idx - h->first[r] >= (h->dend[r] - h->data[r]) >> RT_PAGE_SHIFT))
		corrupt("heap corruption (a page descriptor names the wrong region)", &h->desc[idx]);
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
		if (w[1] != h->hdr->key)
			return -1;
		f = (uintptr_t)w[0];
	}
	return n;
}

static void recover(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	struct rt_page *d = h->desc;
	H->recoveries++;
	unsigned nw = 0;
	for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
		struct rt_heap_waiter *w = &H->w[i];
		if (w->state != W_FREE && waiter_dead(w))
			w->state = W_FREE;
		nw += w->state == W_WAITING;
	}
	H->nwaiters = nw;
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
	size_t f = free_bytes(h);
	if (f < H->min_free)
		H->min_free = f;
}

/* ---- blocks (lock held) -------------------------------------------------------- */

static uint32_t buddy_alloc(struct rtalloc_heap *h, unsigned order)
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
		corrupt("heap corruption (a partial list holds a page of another class)", &d[idx]);
	if (idx == RT_NIL) {
		idx = buddy_alloc(h, 0);
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
		corrupt("heap corruption (a small page's descriptor)", pg);
	if (f) {
		w = (uint64_t *)(void *)(page + f - 1);
		uintptr_t next = (uintptr_t)w[0];
		if (rt_unlikely(w[1] != H->key || (next && (next - 1 >= pg->carved || ((next - 1) & (sz - 1))))))
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

static void *do_alloc(struct rtalloc_heap *h, size_t n)
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
		uint32_t idx = order <= RT_ORDER_MAX ? buddy_alloc(h, order) : RT_NIL;
		if (idx == RT_NIL)
			return NULL;
		rt_store(&h->desc[idx].cls, (uint8_t)RT_CLS_HUGE);
		p = page_addr(h, idx);
	}
	if (!p)
		return NULL;
	H->live++;
	size_t f = free_bytes(h);
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
static struct rt_page *live_block(struct rtalloc_heap *h, const void *p, const char *call, size_t *size,
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
			corrupt("heap corruption (a large block's order)", pg);
		*size = RT_PAGE_SIZE << k;
		return pg;
	}
	if (pg->state != RT_PS_USED || pg->cls < 1 || pg->cls > RT_NSMALL)
		rt_fatal(call, "invalid pointer (not a heap block, or already freed)", p);
	if (rt_unlikely(k != 0 || pg->carved > RT_PAGE_SIZE))
		corrupt("heap corruption (a small page's descriptor)", pg);
	size_t sz = rt_class_size(pg->cls);
	if ((in_page & (sz - 1)) || in_page >= pg->carved)
		rt_fatal(call, "invalid pointer (not the start of a heap block)", p);
	if (((const uint64_t *)p)[1] == h->hdr->key)
		rt_fatal(call, "double free (heap block already freed)", p);
	*size = sz;
	return pg;
}

static size_t heap_offset_of(const struct rtalloc_heap *h, const void *p);
static void *heap_ptr_of(const struct rtalloc_heap *h, size_t off);

/* Hand a block to the first waiter in line, if it fits: one FUTEX_WAKE at
 * most.  The waiter passes the baton: once it has its block, it serves the
 * next in line the same way (rtalloc_heap_alloc_timed), so a free that
 * makes room for several waiters still wakes one.  Records of waiters that
 * died are dropped on the way (waiter_dead: a load, no system call). */
static void serve_waiters(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	bool prio = H->flags & RTALLOC_HEAP_PRIO;
	/* bound: RTALLOC_HEAP_WAITERS rounds (each drops a dead record or
	 * ends), each choosing among RTALLOC_HEAP_WAITERS records */
	for (unsigned round = 0; H->nwaiters && round < NWAIT; round++) {
		struct rt_heap_waiter *best = NULL;
		for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
			struct rt_heap_waiter *w = &H->w[i];
			if (w->state != W_WAITING)
				continue;
			if (!best || (prio && w->prio > best->prio) ||
			    ((!prio || w->prio == best->prio) && w->ticket < best->ticket))
				best = w;
		}
		if (!best)
			return;
		if (rt_unlikely(waiter_dead(best))) {
			/* killed while it waited: its record goes, no block is
			 * granted to it */
			best->state = W_FREE;
			H->nwaiters--;
			continue;
		}
		void *p = do_alloc(h, best->size);
		if (!p)
			return; /* the first in line is not overtaken by smaller requests */
		best->result = heap_offset_of(h, p);
		best->state = W_GRANTED;
		H->nwaiters--;
		__atomic_store_n(&best->futex, 1, __ATOMIC_RELEASE);
		wake(&best->futex, h->shared);
		return;
	}
}

static void do_free(struct rtalloc_heap *h, void *p, const char *call);

/* Every waiter record in use and some of them may be of threads that died
 * while waiting, or before they took the block granted to them: free those
 * records (and such blocks).  No system call (waiter_dead).  Returns a free
 * record, or NULL. */
static struct rt_heap_waiter *reclaim_dead_waiter(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	struct rt_heap_waiter *found = NULL;
	for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
		struct rt_heap_waiter *w = &H->w[i];
		if (w->state == W_FREE || !waiter_dead(w))
			continue;
		if (w->state == W_WAITING)
			H->nwaiters--;
		uint64_t granted = w->state == W_GRANTED ? w->result : RTALLOC_HEAP_BAD_OFFSET;
		w->state = W_FREE;
		if (granted != RTALLOC_HEAP_BAD_OFFSET)
			do_free(h, heap_ptr_of(h, granted), "rtalloc_heap_alloc_timed");
		if (!found && w->state == W_FREE)
			found = w;
	}
	return found;
}

static void do_free(struct rtalloc_heap *h, void *p, const char *call)
{
	struct rt_heap_hdr *H = h->hdr;
	size_t sz;
	unsigned r;
	struct rt_page *pg = live_block(h, p, call, &sz, &r);
	uint32_t idx = (uint32_t)(pg - h->desc);
	H->live--;
	if (pg->cls == RT_CLS_HUGE) {
		rt_buddy_free(bud(h, r), idx);
	} else {
		unsigned c = pg->cls, bpp = (unsigned)(RT_PAGE_SIZE / sz);
		uint64_t *w = p;
		w[0] = (uint64_t)(uintptr_t)pg->free;
		w[1] = H->key;
		pg->free = (void *)(((uintptr_t)p & (RT_PAGE_SIZE - 1)) + 1);
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
		serve_waiters(h);
}

/* ---- offsets --------------------------------------------------------------------- */

static size_t heap_offset_of(const struct rtalloc_heap *h, const void *p)
{
	unsigned nr = __atomic_load_n(&h->nregions, __ATOMIC_ACQUIRE);
	for (unsigned r = 0; r < nr; r++) /* bound: RTALLOC_HEAP_REGIONS */
		if ((uintptr_t)p - h->rbase[r] < h->rsize[r])
			return h->hdr->reg[r].base_off + ((uintptr_t)p - h->rbase[r]);
	return RTALLOC_HEAP_BAD_OFFSET;
}

static void *heap_ptr_of(const struct rtalloc_heap *h, size_t off)
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

/* A waiter record's alive lock: robust, not priority-inheriting (nobody
 * ever waits for it), process-shared in a shared heap. */
static int alive_init(pthread_mutex_t *m, bool shared)
{
	return rt_mutex_init(m, RT_MUTEX_ROBUST | (shared ? RT_MUTEX_SHARED : 0));
}

int rt_heap_lock_init(pthread_mutex_t *m, bool shared)
{
	return rt_mutex_init(m, RT_MUTEX_PI | RT_MUTEX_ROBUST | (shared ? RT_MUTEX_SHARED : 0));
}

/* The handle's view of a formatted header: local addresses of regions. */
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
static int format(struct rtalloc_heap *h, const char *name, unsigned flags, uintptr_t const base[],
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
	H->min_free = free_bytes(h);
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

/* The guard page of a heap mapped by rtalloc_heap_create or bind: no access
 * between the metadata and the first block.  0 or ENOMEM. */
int rt_heap_guard_page(void *map, size_t data_off)
{
	return rt_os_guard((char *)map + data_off - RT_PAGE_SIZE, RT_PAGE_SIZE) ? ENOMEM : 0;
}

/* Pre-fault and lock memory per the process's mlock policy: 0 or EPERM. */
int rt_heap_prepare_memory(void *p, size_t len)
{
	int e = rt_os_populate(p, len);
	if (e)
		return ENOMEM;
	if (rt_g.opt.mlock != RTALLOC_MLOCK_OFF && rt_os_mlock(p, len) != 0) {
		if (rt_g.opt.mlock == RTALLOC_MLOCK_REQUIRE)
			return EPERM;
		rt_say("cannot lock a heap of %zu bytes (%s): it is pre-faulted but not locked", len,
		       strerrorname_np(errno));
	}
	return 0;
}

RT_EXPORT rtalloc_heap_t *rtalloc_heap_create(const char *name, size_t size, unsigned flags)
{
	bool shared = flags & RTALLOC_HEAP_SHARED;
	bool grows = flags & RTALLOC_HEAP_GROW;
	if (flags & ~KNOWN_FLAGS || size == 0 || size > ((size_t)RT_NIL / 2 / NREG) << RT_PAGE_SHIFT)
		return fail(EINVAL);
	if (grows && shared)
		return fail(ENOTSUP); /* every bound process would have to map the new regions */
	if ((flags & RTALLOC_HEAP_SHARED_GROUP) && !shared)
		return fail(EINVAL);
	if (shared ? !name || !rt_heap_name_ok(name) : name && name[0] && !rt_heap_name_ok(name))
		return fail(EINVAL);
	if (!rt_ready() && rt_init_lazy() != 0)
		return fail(ENOMEM);
	rt_heap_registry_init();
	size_t pages = rt_page_round(size) >> RT_PAGE_SHIFT;
	size_t reserve = grows ? (NREG - 1) * pages : 0; /* descriptors of the regions to come */
	size_t data_off = rt_heap_data_offset(pages, reserve);
	size_t len = data_off + (pages << RT_PAGE_SHIFT);
	size_t align = rt_heap_region_align(pages << RT_PAGE_SHIFT);
	char path[sizeof(SHM_PREFIX) + RTALLOC_HEAP_NAME_MAX];
	int fd = -1, e = 0;
	pthread_mutex_lock(&rt_heap_reg_lock);
	struct rtalloc_heap *h = rt_heap_slot_claim();
	if (!h) {
		e = ENOMEM;
		goto out;
	}
	if (shared) {
		/* 0600, or 0660 for the group: whatever the umask says */
		mode_t mode = flags & RTALLOC_HEAP_SHARED_GROUP ? 0660 : 0600;
		rt_heap_shm_path(path, name);
		fd = rt_os_shm_open(path, O_RDWR | O_CREAT | O_EXCL, mode);
		if (fd < 0 && errno == EEXIST && rt_heap_reclaim_stale(path, name))
			fd = rt_os_shm_open(path, O_RDWR | O_CREAT | O_EXCL, mode);
		if (fd < 0) {
			e = errno == EEXIST ? EEXIST : errno == EACCES ? EACCES : ENOMEM;
			goto out;
		}
		if (rt_os_fchmod(fd, mode) != 0 || rt_os_ftruncate(fd, len) != 0) {
			e = ENOMEM;
			goto out_unlink;
		}
	}
	void *map = rt_os_map_aligned(len, align, data_off, fd);
	if (!map) {
		e = ENOMEM;
		goto out_unlink;
	}
	e = rt_heap_prepare_memory(map, len);
	uintptr_t base[1] = {(uintptr_t)map};
	size_t sz[1] = {len};
	if (!e)
		e = format(h, name, flags, base, sz, 1, reserve, true);
	if (!e && (h->data[0] != (uintptr_t)map + data_off || h->dend[0] - h->data[0] != pages << RT_PAGE_SHIFT))
		e = EINVAL; /* cannot happen: format lays the data out as rt_heap_data_offset() says */
	if (!e)
		e = rt_heap_guard_page(map, data_off);
	if (e) {
		rt_os_unmap(map, len);
		goto out_unlink;
	}
	h->hdr->map_bytes = len;
	h->hdr->map_align = align;
	h->hdr->procs[0] = rt_heap_pid;
	h->map = map;
	h->map_len = len;
	h->own_map = true;
	__atomic_store_n(&h->hdr->magic, HEAP_MAGIC, __ATOMIC_RELEASE);
	rt_heap_lock(h);
	rt_heap_publish(h);
	rt_heap_unlock(h);
	rt_heap_slot_publish(h);
	goto out;
out_unlink:
	if (fd >= 0)
		rt_os_shm_unlink(path);
out:
	if (e && h)
		memset(h, 0, sizeof(*h));
	pthread_mutex_unlock(&rt_heap_reg_lock);
	if (fd >= 0)
		rt_os_close(fd);
	return e ? fail(e) : h;
}

RT_EXPORT rtalloc_heap_t *rtalloc_heap_create_in(const char *name, const struct rtalloc_region *regions,
						 size_t n, unsigned flags)
{
	if (!regions || n == 0 || n > NREG || flags & ~KNOWN_FLAGS || flags & RTALLOC_HEAP_SHARED ||
	    (name && name[0] && !rt_heap_name_ok(name)))
		return fail(EINVAL);
	if (flags & RTALLOC_HEAP_GROW)
		return fail(EINVAL); /* the caller's memory is all there is */
	uintptr_t base[NREG];
	size_t size[NREG];
	for (size_t r = 0; r < n; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		base[r] = (uintptr_t)regions[r].base;
		size[r] = regions[r].size;
		if (!base[r] || size[r] == 0 || base[r] + size[r] < base[r] || rt_page_of(regions[r].base) ||
		    heap_of(regions[r].base))
			return fail(EINVAL);
		for (size_t q = 0; q < r; q++) /* bound: RTALLOC_HEAP_REGIONS */
			if (base[r] < base[q] + size[q] && base[q] < base[r] + size[r])
				return fail(EINVAL);
	}
	rt_heap_registry_init();
	pthread_mutex_lock(&rt_heap_reg_lock);
	struct rtalloc_heap *h = rt_heap_slot_claim();
	int e = h ? format(h, name, flags, base, size, (unsigned)n, 0, false) : ENOMEM;
	if (!e) {
		__atomic_store_n(&h->hdr->magic, HEAP_MAGIC, __ATOMIC_RELEASE);
		rt_heap_lock(h);
		rt_heap_publish(h);
		rt_heap_unlock(h);
		rt_heap_slot_publish(h);
	} else if (h) {
		memset(h, 0, sizeof(*h));
	}
	pthread_mutex_unlock(&rt_heap_reg_lock);
	return e ? fail(e) : h;
}

void rt_heap_slot_release(struct rtalloc_heap *h)
{
	__atomic_store_n(&h->active, 0, __ATOMIC_RELEASE);
	unpublish(h);
	if (h->own_map)
		rt_os_unmap(h->map, h->map_len);
	for (unsigned r = 1; r < NREG; r++) /* bound: RTALLOC_HEAP_REGIONS */
		if (h->grown[r])
			rt_os_unmap(h->grown[r], h->grown_len[r]);
	memset(h, 0, sizeof(*h));
}

RT_EXPORT int rtalloc_heap_unbind(rtalloc_heap_t *h)
{
	rt_heap_registry_init();
	pthread_mutex_lock(&rt_heap_reg_lock);
	if (!valid(h) || !h->shared) {
		pthread_mutex_unlock(&rt_heap_reg_lock);
		return EINVAL;
	}
	if (rt_heap_lock(h) == 0) {
		rt_heap_procs_update(h->hdr, -rt_heap_pid);
		rt_heap_unlock(h);
	}
	rt_heap_slot_release(h);
	pthread_mutex_unlock(&rt_heap_reg_lock);
	return 0;
}

RT_EXPORT int rtalloc_heap_destroy(rtalloc_heap_t *h)
{
	rt_heap_registry_init();
	pthread_mutex_lock(&rt_heap_reg_lock);
	if (!valid(h)) {
		pthread_mutex_unlock(&rt_heap_reg_lock);
		return EINVAL;
	}
	struct rt_heap_hdr *H = h->hdr;
	if (rt_heap_lock(h) == 0) {
		H->dead = 1;
		for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
			struct rt_heap_waiter *w = &H->w[i];
			if (w->state != W_WAITING)
				continue;
			w->state = W_CANCELLED;
			__atomic_store_n(&w->futex, 1, __ATOMIC_RELEASE);
			wake(&w->futex, h->shared);
		}
		H->nwaiters = 0;
		rt_heap_unlock(h);
	}
	/* Wait until this process's waiters have left the heap's memory. */
	for (int i = 0; __atomic_load_n(&h->users, __ATOMIC_ACQUIRE) > 0; i++) { /* bound: 10 s */
		if (i == 10000) {
			pthread_mutex_unlock(&rt_heap_reg_lock);
			return EBUSY;
		}
		rt_os_sleep_ns(1000000);
	}
	if (h->shared) {
		char path[sizeof(SHM_PREFIX) + RTALLOC_HEAP_NAME_MAX];
		rt_heap_shm_path(path, H->name);
		rt_os_shm_unlink(path);
	} else if (!h->own_map) {
		__atomic_store_n(&H->magic, 0, __ATOMIC_RELAXED);
		pthread_mutex_destroy(&H->lock);
	}
	rt_heap_slot_release(h);
	pthread_mutex_unlock(&rt_heap_reg_lock);
	return 0;
}

/* ---- allocation ------------------------------------------------------------------ */

/* RTALLOC_HEAP_GROW: when an allocation finds no room, the heap adds a
 * region of its first region's size (mapped, pre-faulted and locked like the
 * first; descriptors reserved at creation), at most RTALLOC_HEAP_REGIONS - 1
 * times.  A non-real-time event: system calls under the heap's lock.
 * Requests larger than the biggest block a new region holds never grow it.
 * Lock held.  True when a region was added. */
static bool grow(struct rtalloc_heap *h, size_t n)
{
	struct rt_heap_hdr *H = h->hdr;
	unsigned r = h->nregions;
	if (!(H->flags & RTALLOC_HEAP_GROW) || r >= NREG || !h->own_map)
		return false;
	const struct rt_buddy *b0 = &H->reg[0].buddy;
	uint32_t np = b0->limit - b0->skew;
	size_t len = (size_t)np << RT_PAGE_SHIFT;
	size_t align = rt_heap_region_align(len);
	if (n > align)
		return false; /* no region of this heap can hold it */
	void *map = rt_os_map_aligned(len, align, 0, -1);
	if (!map)
		return false;
	if (rt_heap_prepare_memory(map, len) != 0) {
		rt_os_unmap(map, len);
		return false;
	}
	struct rt_heap_region *R = &H->reg[r];
	R->base_off = H->reg[r - 1].base_off + H->reg[r - 1].bytes;
	R->bytes = len;
	R->data_off = 0;
	rt_buddy_init(&R->buddy, h->desc, H->npages, (uintptr_t)map, np, r);
	rt_buddy_add(&R->buddy, np);
	h->grown[r] = map;
	h->grown_len[r] = len;
	h->rbase[r] = (uintptr_t)map;
	h->rsize[r] = len;
	h->data[r] = (uintptr_t)map;
	h->dend[r] = (uintptr_t)map + len;
	h->first[r] = H->npages;
	H->npages += np;
	h->npages = H->npages; /* idx_ok: the new region's pages are valid indices */
	H->nregions = r + 1;
	/* heap_of() reads the regions without the lock: they are complete
	 * before the count that covers them is published */
	__atomic_store_n(&h->nregions, r + 1, __ATOMIC_RELEASE);
	rt_say("heap %s grew by %zu KiB to %zu KiB (region %u of %u): a non-real-time event",
	       H->name[0] ? H->name : "(unnamed)", len >> 10, data_bytes(H) >> 10, r + 1, NREG);
	return true;
}

static void *alloc_or_grow(struct rtalloc_heap *h, size_t n)
{
	void *p = do_alloc(h, n);
	if (rt_unlikely(!p) && grow(h, n))
		p = do_alloc(h, n);
	return p;
}

static void *alloc_locked(struct rtalloc_heap *h, size_t n)
{
	if (rt_heap_lock(h) != 0)
		return fail(EIDRM);
	if (h->hdr->dead) {
		rt_heap_unlock(h);
		return fail(EIDRM);
	}
	void *p = alloc_or_grow(h, n);
	rt_heap_publish(h);
	rt_heap_unlock(h);
	if (!p)
		errno = ENOMEM;
	return p;
}

RT_EXPORT void *rtalloc_heap_alloc(rtalloc_heap_t *h, size_t size)
{
	if (!valid(h))
		return fail(EINVAL);
	return alloc_locked(h, size);
}


RT_EXPORT void *rtalloc_heap_aligned_alloc(rtalloc_heap_t *h, size_t align, size_t size)
{
	if (!valid(h) || !rt_pow2(align))
		return fail(EINVAL);
	if (align > RT_MAX_ALIGN)
		return fail(ENOMEM);
	return alloc_locked(h, size > align ? size : align); /* blocks are aligned to their size */
}

RT_EXPORT void rtalloc_heap_free(rtalloc_heap_t *h, void *p)
{
	if (!p)
		return;
	if (!valid(h))
		rt_fatal("rtalloc_heap_free", "not a heap", h);
	if (heap_of(p) != h)
		rt_fatal("rtalloc_heap_free", "pointer not in this heap", p);
	int saved = errno;
	if (rt_heap_lock(h) == 0) {
		do_free(h, p, "rtalloc_heap_free");
		rt_heap_publish(h);
		rt_heap_unlock(h);
	}
	errno = saved;
}

RT_EXPORT void *rtalloc_heap_alloc_timed(rtalloc_heap_t *h, size_t size, const struct timespec *abs)
{
	if (!valid(h) || !ts_ok(abs))
		return fail(EINVAL);
	__atomic_fetch_add(&h->users, 1, __ATOMIC_ACQ_REL);
	struct rt_heap_hdr *H = h->hdr;
	/* read before the lock: no system call while holding it */
	int prio = H->flags & RTALLOC_HEAP_PRIO ? thread_prio() : 0;
	void *p = NULL;
	int e = rt_heap_lock(h);
	if (e)
		goto out_unlocked;
	struct rt_heap_waiter *w = NULL;
	/* bound: the timeout; each round sleeps until a free hands a block
	 * over, the heap is destroyed or the time passes */
	for (;;) {
		if (H->dead) {
			e = EIDRM;
			break;
		}
		if (w && w->state == W_GRANTED) { /* a free handed a block over */
			p = heap_ptr_of(h, w->result);
			if (rt_unlikely(!p))
				corrupt("heap corruption (a waiter's block is outside the heap)", w);
			break;
		}
		if (w && w->state == W_CANCELLED) {
			e = EIDRM;
			break;
		}
		/* Try ourselves only before queueing: once queued, frees serve
		 * the queue in order. */
		if (!w && (p = alloc_or_grow(h, size)) != NULL)
			break;
		if (abs && rt_os_now_ns() >= ts_ns(abs)) {
			e = ETIMEDOUT;
			break;
		}
		if (!w) {
			for (unsigned i = 0; i < NWAIT && !w; i++) /* bound: RTALLOC_HEAP_WAITERS */
				if (H->w[i].state == W_FREE)
					w = &H->w[i];
			if (!w)
				w = reclaim_dead_waiter(h);
			if (!w) {
				e = EAGAIN;
				break;
			}
			/* free by construction (the record was): a trylock, no
			 * system call, and no lock order with hdr->lock */
			if (alive_init(&w->alive, h->shared) || pthread_mutex_trylock(&w->alive) != 0) {
				w = NULL;
				e = EAGAIN;
				break;
			}
			w->state = W_WAITING;
			w->prio = prio;
			w->pid = rt_heap_pid;
			w->ticket = H->ticket++;
			w->size = size;
			H->nwaiters++;
			rt_heap_publish(h);
		}
		__atomic_store_n(&w->futex, 0, __ATOMIC_RELAXED);
		rt_heap_unlock(h);
		rt_os_futex_wait(&w->futex, 0, abs, h->shared);
		if (rt_heap_lock(h) != 0) {
			e = EIDRM;
			pthread_mutex_unlock(&w->alive); /* not left on this thread's robust list */
			w = NULL;
			goto out_unlocked;
		}
	}
	if (w) {
		if (w->state == W_WAITING)
			H->nwaiters--;
		pthread_mutex_unlock(&w->alive);
		w->state = W_FREE;
		if (p && H->nwaiters)
			serve_waiters(h); /* the baton: the next in line */
	}
	rt_heap_publish(h);
	rt_heap_unlock(h);
out_unlocked:
	__atomic_fetch_sub(&h->users, 1, __ATOMIC_ACQ_REL);
	if (!p)
		errno = e ? e : ENOMEM;
	return p;
}

RT_EXPORT int rtalloc_heap_inquire(rtalloc_heap_t *h, struct rtalloc_heap_info *info)
{
	if (!valid(h) || !info)
		return EINVAL;
	if (rt_heap_lock(h) != 0)
		return EIDRM;
	const struct rt_heap_hdr *H = h->hdr;
	memset(info, 0, sizeof(*info));
	memcpy(info->name, H->name, RTALLOC_HEAP_NAME_MAX);
	info->flags = H->flags;
	info->size = data_bytes(H);
	info->free_bytes = free_bytes(h);
	info->min_free_bytes = H->min_free;
	info->largest_free = largest_free(h);
	info->live_blocks = H->live;
	info->waiters = count_waiters(H);
	rt_heap_publish(h);
	rt_heap_unlock(h);
	return 0;
}

RT_EXPORT size_t rtalloc_heap_offset(rtalloc_heap_t *h, const void *p)
{
	size_t off = valid(h) ? heap_offset_of(h, p) : RTALLOC_HEAP_BAD_OFFSET;
	if (off == RTALLOC_HEAP_BAD_OFFSET)
		errno = EINVAL;
	return off;
}

RT_EXPORT void *rtalloc_heap_ptr(rtalloc_heap_t *h, size_t off)
{
	void *p = valid(h) ? heap_ptr_of(h, off) : NULL;
	if (!p)
		errno = EINVAL;
	return p;
}

RT_EXPORT int rtalloc_thread_use_heap(rtalloc_heap_t *h)
{
	if (h && !valid(h))
		return EINVAL;
	struct rt_tcache *tc = &rt_tc;
	if (rt_tcache_setup() != 0)
		return ENOMEM;
	if (h) {
		rt_tcache_flush_all(tc); /* every limit 0: each malloc and free takes the slow path */
		tc->heap = h;
	} else if (tc->heap) {
		tc->heap = NULL;
		rt_tcache_restore_limits(tc);
	}
	return 0;
}

/* ---- the core's hooks --------------------------------------------------------------- */

bool rt_heap_free_foreign(void *ptr, const char *call)
{
	struct rtalloc_heap *h = heap_of(ptr);
	if (!h)
		return false;
	if (rt_heap_lock(h) == 0) {
		do_free(h, ptr, call);
		rt_heap_publish(h);
		rt_heap_unlock(h);
	}
	return true;
}

size_t rt_heap_block_size(const void *ptr, const char *call)
{
	struct rtalloc_heap *h = heap_of(ptr);
	if (!h || rt_heap_lock(h) != 0)
		return 0;
	size_t sz;
	unsigned r;
	live_block(h, ptr, call, &sz, &r);
	rt_heap_unlock(h);
	return sz;
}

void *rt_heap_realloc(void *p, size_t n)
{
	struct rtalloc_heap *h = heap_of(p);
	if (!h)
		rt_fatal("realloc", "pointer not allocated by librtalloc (its size is unknown)", p);
	size_t have = rt_heap_block_size(p, "realloc");
	if (n > PTRDIFF_MAX)
		return fail(ENOMEM);
	bool same = have <= RT_PAGE_SIZE / 2 ? n <= have && rt_class_of(n) == rt_class_of(have)
					     : n > RT_PAGE_SIZE / 2 && n <= have && rt_order_of(n) == rt_order_of(have);
	if (same)
		return p;
	void *q = alloc_locked(h, n);
	if (!q)
		return NULL;
	memcpy(q, p, have < n ? have : n);
	rt_heap_free_foreign(p, "realloc");
	return q;
}

void *rt_heap_thread_alloc(void *heap, size_t n)
{
	struct rtalloc_heap *h = heap;
	if (!valid(h))
		return fail(ENOMEM);
	return alloc_locked(h, n);
}

/* ---- tests ------------------------------------------------------------------------- */

const char *rt_heap_check(rtalloc_heap_t *h)
{
	if (!valid(h))
		return "not a heap";
	if (rt_heap_lock(h) != 0)
		return "heap lock unrecoverable";
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
	if (!why && H->min_free > free_bytes(h))
		why = "heap: lowest free above the free count";
	rt_heap_unlock(h);
	return why;
}

void rt_heap_debug_hold(rtalloc_heap_t *h, int scramble, int notify_fd)
{
	if (!valid(h) || rt_heap_lock(h) != 0)
		_exit(3);
	if (scramble) /* a page taken from the buddy, not yet given a class */
		buddy_alloc(h, 0);
	if (write(notify_fd, "x", 1) < 0)
		_exit(4);
	for (;;) /* bound: none, on purpose: this process waits to be killed */
		pause();
}

unsigned rt_heap_recoveries(rtalloc_heap_t *h)
{
	return valid(h) ? h->hdr->recoveries : 0;
}

size_t rt_heap_header_bytes(void)
{
	return sizeof(struct rt_heap_hdr);
}

void rt_heap_debug_syscalls(unsigned *wakes, unsigned *probes)
{
	*wakes = dbg_wakes;
	*probes = dbg_probes;
}

void rt_heap_debug_prio_reads(unsigned *reads, unsigned *under_lock)
{
	*reads = dbg_prio_reads;
	*under_lock = dbg_prio_locked;
}

void rt_heap_debug_hold_registry(int notify_fd, const int *release)
{
	rt_heap_registry_init();
	pthread_mutex_lock(&rt_heap_reg_lock);
	if (write(notify_fd, "r", 1) != 1)
		abort();
	while (!__atomic_load_n(release, __ATOMIC_ACQUIRE)) /* bound: none (a test's holder) */
		rt_os_sleep_ns(1000000);
	pthread_mutex_unlock(&rt_heap_reg_lock);
}
