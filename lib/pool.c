/* SPDX-License-Identifier: MIT */
/*
 * pool.c - where librtalloc's memory comes from: the reservation and its
 * layout, NUMA placement (arenas per node, a thread's arena), committing and
 * pre-faulting, growth (the arena's grow hook and a later rtalloc_init's),
 * the pool's set-up; and the initialisation sequence and reconfiguration.
 * Beside it: limits.c measures what the machine can give (memory, the
 * process's limits) and fits the pool to it; mlock.c locks the process and
 * pre-faults the stack; fork.c holds the fork handlers.  What these files
 * share is in pool_int.h.
 *
 * Layout of an OS pool
 *   data         one reservation, aligned to a slot of 2^k pages, holding one
 *                slot per arena (one arena per NUMA node, usually one).  Arena
 *                i's first pool_size/narenas bytes are committed: read-write,
 *                bound to its node, pre-faulted and locked.  The rest of the
 *                slot up to pool_max/narenas stays PROT_NONE until the arena
 *                grows.  With one arena, a growth room follows (PROT_NONE,
 *                as much as the memory there is): a later rtalloc_init()
 *                beyond pool_max grows into it.
 *   descriptors  a separate mapping, sizeof(struct rt_page) per page of the
 *                whole reservation.  Readable everywhere (never-committed parts
 *                read as zero: "no block here", so a wild free reads a clean
 *                zero and aborts with a message), writable and pre-faulted
 *                where the data is committed; PROT_NONE over the room.
 * A pool handed in by the caller (rtalloc_config.memory) holds its own
 * descriptors at its start; librtalloc makes no system call on it.
 *
 * Initialisation (rt_init) runs once, at the library's constructor or at the
 * first allocation, whichever comes first.  It calls no malloc, stdio, getenv
 * or dlsym: options come from environ (options.c), messages are written with
 * write(2) (glue.c).  Order: options, fitting them to the machine
 * (limits.c), reservation, commit (huge pages: RTALLOC_HUGEPAGES) + pre-fault,
 * stack pre-fault, locking per RTALLOC_MLOCK (mlock.c), then unlock what was only reserved (so VmLck shows what
 * is really locked; under RLIMIT_MEMLOCK, what is only reserved is left out
 * of the locking altogether: lock_without_tails in mlock.c).
 */
#include <malloc.h>
#include <sched.h>
#include <string.h>

#include "pool_int.h"

struct rt_global rt_g;

extern int __libc_mallopt(int, int); /* glibc's own mallopt: we interpose mallopt */

/* ---- NUMA ----------------------------------------------------------------- */

/* Nodes from /sys/devices/system/node/online ("0", "0-1", "0,2-3").  Returns
 * their number (0 when unknown) and a mask of them. */
static unsigned numa_nodes(unsigned long *mask)
{
	char buf[256];
	*mask = 0;
	if (rt_os_read_file("/sys/devices/system/node/online", buf, sizeof(buf)) <= 0)
		return 0;
	unsigned n = 0;
	for (char *p = buf; *p >= '0' && *p <= '9';) { /* bound: the 256-byte buffer */
		unsigned lo = 0, hi;
		while (*p >= '0' && *p <= '9')
			lo = lo * 10 + (unsigned)(*p++ - '0');
		hi = lo;
		if (*p == '-') {
			hi = 0;
			for (p++; *p >= '0' && *p <= '9';)
				hi = hi * 10 + (unsigned)(*p++ - '0');
		}
		for (unsigned i = lo; i <= hi && i < 64; i++, n++)
			*mask |= 1UL << i;
		if (*p == ',')
			p++;
	}
	return n;
}

/* The arena of the calling thread's node (the first when none is): a new
 * thread's home arena (tcache.c). */
struct rt_arena *rt_pool_arena_for_thread(void)
{
	if (rt_g.narenas == 1)
		return &rt_g.arenas[0];
	int node = rt_os_node();
	for (unsigned i = 0; i < rt_g.narenas; i++) /* bound: RT_MAX_ARENAS */
		if (rt_g.arenas[i].node == node)
			return &rt_g.arenas[i];
	return &rt_g.arenas[0];
}

/* Arenas: one per NUMA node with RTALLOC_NUMA=local on several nodes. */
static unsigned arena_count(void)
{
	unsigned long mask = 0;
	unsigned nodes = numa_nodes(&mask);
	rt_g.nnodes = nodes;
	rt_g.node_mask = mask;
	if (rt_g.opt.numa == RTALLOC_NUMA_LOCAL && nodes > 1)
		return nodes > RT_MAX_ARENAS ? RT_MAX_ARENAS : nodes;
	return 1;
}

/* ---- committing memory ------------------------------------------------------ */

/* Descriptor bytes of pages [from, to), widened to whole OS pages. */
static void desc_range(uint32_t from, uint32_t to, char **p, size_t *len)
{
	uintptr_t lo = (uintptr_t)&rt_g.pages[from] & ~(RT_PAGE_SIZE - 1);
	uintptr_t hi = rt_page_round((uintptr_t)&rt_g.pages[to]);
	*p = (char *)lo;
	*len = hi - lo;
}

/* During initialisation with locking on, the pool is faulted in once, by
 * mlockall (MCL_CURRENT populates what it locks); a second pass of
 * MADV_POPULATE_WRITE would only cost time.  Populated separately if mlockall
 * fails or is off. */
static bool populate_later;

/* Make pages [from, to) of arena a usable: bound to its node, read-write,
 * pre-faulted and, when the process is locked, locked.  Returns 0 or errno. */
static int commit(struct rt_arena *a, uint32_t from, uint32_t to)
{
	char *data = rt_page_addr(from);
	size_t len = (size_t)(to - from) << RT_PAGE_SHIFT;
	char *dp;
	size_t dlen;
	desc_range(from, to, &dp, &dlen);
	if (a->node >= 0)
		rt_os_mbind(data, len, a->node, 0);
	else if (rt_g.opt.numa == RTALLOC_NUMA_INTERLEAVE && rt_g.nnodes > 1)
		rt_os_mbind(data, len, -1, rt_g.node_mask);
	if (rt_os_commit(data, len) != 0 || rt_os_commit(dp, dlen) != 0)
		return errno;
	/* Transparent huge pages, before the first touch: fewer faults to
	 * pre-fault, fewer TLB misses.  Refused (EINVAL) by a kernel without
	 * them: 4 KiB pages then, as with RTALLOC_HUGEPAGES=0, which also keeps
	 * THP "always" off the pool.  The data is aligned to its slot (at least
	 * 1 GiB by default), so whole 2 MiB pages fit.  (populate_later is
	 * off with huge pages: they are made below.) */
	madvise(data, len, rt_g.opt.hugepages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (populate_later)
		return 0; /* initialisation: mlockall will fault it in, in one pass */
	int e = rt_os_populate(data, len);
	/* Pre-faulted: no more huge pages made here.  Else khugepaged could
	 * later collapse the 4 KiB pages left (where no huge page was free, or
	 * at an end not 2 MiB aligned), copying them while the program runs: a
	 * fault for whoever touches them meanwhile.  The huge pages made stay. */
	if (rt_g.opt.hugepages)
		madvise(data, len, MADV_NOHUGEPAGE);
	if (!e)
		e = rt_os_populate(dp, dlen);
	if (e)
		return e;
	if (rt_g.locked && (rt_os_mlock(data, len) != 0 || rt_os_mlock(dp, dlen) != 0))
		rt_say("cannot lock %zu bytes of pool growth (%s): they are pre-faulted but not locked",
		       len, strerrorname_np(errno));
	return 0;
}

/* Fault in every committed page (and its descriptors): when mlockall did
 * not do it at initialisation. */
static void populate_committed(void)
{
	for (unsigned i = 0; i < rt_g.narenas; i++) {
		struct rt_buddy *b = &rt_g.arenas[i].buddy;
		uint32_t n = b->committed - b->skew;
		char *dp;
		size_t dlen;
		desc_range(b->first, b->first + n, &dp, &dlen);
		rt_os_populate(rt_page_addr(b->first), (size_t)n << RT_PAGE_SHIFT);
		rt_os_populate(dp, dlen);
	}
}

/* The committed parts of an OS pool: per arena its committed pages and
 * their descriptors (at most 2 * RT_MAX_ARENAS <= RT_POOL_TAILS), in t;
 * their number.  mlock.c locks them for RTALLOC_MLOCK=pool. */
unsigned rt_pool_parts(struct rt_pool_tail *t)
{
	unsigned n = 0;
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		struct rt_buddy *b = &rt_g.arenas[i].buddy;
		uint32_t pages = b->committed - b->skew;
		char *dp;
		size_t dlen;
		desc_range(b->first, b->first + pages, &dp, &dlen);
		t[n++] = (struct rt_pool_tail){rt_page_addr(b->first), (size_t)pages << RT_PAGE_SHIFT,
					       PROT_READ | PROT_WRITE};
		t[n++] = (struct rt_pool_tail){dp, dlen, PROT_READ | PROT_WRITE};
	}
	return n;
}

/* ---- growth ----------------------------------------------------------------- */

/* Growth is serialised by a lock of its own (priority-inheriting: a real-time
 * thread that needs growth boosts the thread that is growing).  Lock order:
 * grow_lock, then an arena lock; a thread never takes grow_lock while it
 * holds an arena lock.  Every change of a buddy's committed pages happens
 * under grow_lock (rt_pool_grow, reconfigure), so the pages a grower
 * computed stay its own while it commits them without the arena lock.  Not
 * taken around fork: the child makes it anew (fork.c, rt_pool_fork_child), and its
 * arenas never saw the pages a grower was committing at that moment. */
static pthread_once_t grow_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t grow_lock;

void rt_pool_grow_lock_init(void) { rt_mutex_init(&grow_lock, RT_MUTEX_PI); }

static void grow_lock_take(void)
{
	pthread_once(&grow_once, rt_pool_grow_lock_init);
	int e = pthread_mutex_lock(&grow_lock);
	if (rt_unlikely(e != 0))
		rt_fatal("pthread_mutex_lock", "cannot take the growth lock at", &grow_lock);
}

/* Unlocking fails (EPERM) only in a child of fork from a signal handler that
 * interrupted this thread while it took the lock: rt_mutex_unlock_checked. */
static void grow_lock_drop(void) { rt_mutex_unlock_checked(&grow_lock); }

/* The pages up to `to` join the buddy; its lowest free grows with them, so
 * the high-water mark (committed - lowest free) stays what the program used
 * at most: a growth is no use.  Arena lock held. */
static void grown_pages_add(struct rt_buddy *b, uint32_t to)
{
	size_t before = b->free_pages;
	rt_buddy_add(b, to);
	b->min_free_pages += b->free_pages - before;
}

/* The arena's grow hook, called with a's lock held when its buddy has no
 * block of `order`: commit enough of the reservation for one, at least one
 * growth quantum (pool_size/narenas).  The arena lock is released while the
 * pages are committed (mprotect, mbind, pre-faulting, mlock: milliseconds)
 * and the first growth's notice is written (a blocked stderr must not stall
 * the arena), then taken again to add the pages: other threads are served
 * meanwhile.  Returns with the lock held: 0 when a block of `order` is free
 * (added here, or by another thread meanwhile), -1 when growth is off or
 * failed, or pool_max is reached. */
int rt_pool_grow(struct rt_arena *a, unsigned order)
{
	struct rt_buddy *b = &a->buddy;
	if (rt_g.opt.on_exhaust != RTALLOC_EXHAUST_GROW || rt_g.user_memory)
		return -1;
	rt_arena_unlock(a);
	grow_lock_take();
	rt_arena_lock(a);
	if (b->nonempty >> order) {
		/* Another thread grew (or freed) meanwhile: no second growth. */
		grow_lock_drop();
		return 0;
	}
	uint64_t need = 1ULL << order;
	uint64_t start = (b->committed + need - 1) & ~(need - 1);
	uint64_t end = start + need;
	uint64_t quantum = (rt_page_round(rt_g.opt.pool_size) >> RT_PAGE_SHIFT) / rt_g.narenas;
	if (end < b->committed + quantum)
		end = b->committed + quantum;
	if (end > b->limit)
		end = b->limit;
	if (end < start + need) {
		grow_lock_drop();
		return -1; /* pool_max reached */
	}
	/* b->committed, b->first and b->skew cannot change until grow_lock is
	 * dropped: the pages [from, to) are this thread's to commit. */
	uint32_t from = b->committed - b->skew, to = (uint32_t)end - b->skew;
	rt_arena_unlock(a);
	int e = commit(a, b->first + from, b->first + to);
	static bool said; /* once per process: later growths are counted in the statistics */
	if (!e && !__atomic_exchange_n(&said, true, __ATOMIC_RELAXED))
		rt_say("the pool grew by %zu KiB to %zu KiB: a non-real-time event (system calls, page "
		       "faults); set RTALLOC_POOL_SIZE larger. Further growths are only counted "
		       "(rtalloc-stat)", (size_t)(to - from) << (RT_PAGE_SHIFT - 10),
		       (size_t)to << (RT_PAGE_SHIFT - 10));
	rt_arena_lock(a);
	if (!e) {
		grown_pages_add(b, to);
		__atomic_fetch_add(&rt_g.pool_bytes, (size_t)(to - from) << RT_PAGE_SHIFT, __ATOMIC_RELAXED);
		a->last_grow_ns = rt_os_now_ns();
		a->grows++; /* counted where it happens */
	}
	grow_lock_drop();
	return e ? -1 : 0;
}

/* ---- setting the pool up ------------------------------------------------------ */

static int setup_user_memory(void *mem, size_t size)
{
	uintptr_t start = rt_page_round((uintptr_t)mem);
	uintptr_t end = ((uintptr_t)mem + size) & ~(RT_PAGE_SIZE - 1);
	if (!mem || end <= start || (end - start) >> RT_PAGE_SHIFT < 4 ||
	    (end - start) >> RT_PAGE_SHIFT > RT_NIL / 2)
		return EINVAL;
	size_t total = (end - start) >> RT_PAGE_SHIFT;
	/* d descriptor pages describe the data pages after them.  The data start
	 * is aligned to RT_BASE_ALIGN: the fast paths test a block's alignment
	 * relative to rt_g.base up to it (the buddy's skew aligns larger blocks). */
	size_t d = (total * sizeof(struct rt_page) + RT_PAGE_SIZE + sizeof(struct rt_page) - 1) /
		   (RT_PAGE_SIZE + sizeof(struct rt_page));
	uintptr_t data = (start + (d << RT_PAGE_SHIFT) + RT_BASE_ALIGN - 1) & ~(RT_BASE_ALIGN - 1);
	if (data >= end || (end - data) >> RT_PAGE_SHIFT < 4)
		return EINVAL;
	size_t npages = (end - data) >> RT_PAGE_SHIFT;
	memset((void *)start, 0, d << RT_PAGE_SHIFT);
	rt_g.pages = (struct rt_page *)start;
	rt_g.base = data;
	rt_g.span = npages << RT_PAGE_SHIFT;
	rt_g.user_memory = true;
	rt_g.narenas = 1;
	rt_g.pool_bytes = rt_g.span;
	rt_g.opt.pool_size = rt_g.opt.pool_max = rt_g.span;
	return rt_arena_init(&rt_g.arenas[0], 0, -1, 0, (uint32_t)npages, (uint32_t)npages);
}

/* Reserve len bytes aligned to align (a power of two): first at the aligned
 * address nearest to where the kernel puts len bytes (no more than len is
 * ever mapped: an address-space limit is not exceeded on the way), else len +
 * align and trimmed. */
static void *reserve_aligned(size_t len, size_t align)
{
	char *raw = rt_os_reserve(len);
	if (!raw)
		return NULL;
	if (!((uintptr_t)raw & (align - 1)))
		return raw;
	rt_os_unmap(raw, len);
	uintptr_t down = (uintptr_t)raw & ~(align - 1), up = down + align;
	void *p = down ? rt_os_reserve_at((void *)down, len) : NULL;
	if (!p && up > down)
		p = rt_os_reserve_at((void *)up, len);
	if (p)
		return p;
	raw = rt_os_reserve(len + align);
	if (!raw)
		return NULL;
	uintptr_t base = ((uintptr_t)raw + align - 1) & ~(align - 1);
	if (base > (uintptr_t)raw)
		rt_os_unmap(raw, base - (uintptr_t)raw);
	if ((uintptr_t)raw + len + align > base + len)
		rt_os_unmap((void *)(base + len), (uintptr_t)raw + align - base);
	return (void *)base;
}

/* Growth room: address space reserved after the space (PROT_NONE, no
 * descriptors readable, no memory, not locked), so that a later
 * rtalloc_init() asking for a pool beyond RTALLOC_POOL_MAX gets it (nothing
 * else can map there in the meantime; limits.c sizes it:
 * rt_pool_growth_room).  The end of the reservation and of
 * the descriptors' mapping (PROT_READ over the space, PROT_NONE beyond). */
static uintptr_t reserved_end;
static size_t desc_mapped;
static bool tails_lost; /* part of them was taken while locking: no growth beyond what is committed */

static int setup_os_memory(void)
{
	unsigned n = arena_count();
	unsigned long mask = rt_g.node_mask;
	int e;
	size_t pool = rt_page_round(rt_g.opt.pool_size / n) >> RT_PAGE_SHIFT;
	size_t max = rt_page_round(rt_g.opt.pool_max / n) >> RT_PAGE_SHIFT;
	size_t slot = rt_pool_slot_pages(rt_g.opt.pool_max, n);
	if (slot * n > RT_NIL / 2 || pool == 0)
		return ENOMEM; /* rt_pool_fit keeps sizes below RT_POOL_CEIL: never */
	size_t span = (slot * n) << RT_PAGE_SHIFT, align = slot << RT_PAGE_SHIFT;
	size_t room = rt_pool_growth_room(span, n);
	char *res = room ? reserve_aligned(span + room, align) : NULL;
	if (!res) {
		room = 0;
		res = reserve_aligned(span, align);
	}
	if (!res)
		return ENOMEM;
	uintptr_t base = (uintptr_t)res;
	size_t dbytes = rt_pool_desc_bytes(span), dall = rt_pool_desc_bytes(span + room);
	void *desc = mmap(NULL, dall, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (desc == MAP_FAILED || mprotect(desc, dbytes, PROT_READ) != 0) {
		if (desc != MAP_FAILED)
			rt_os_unmap(desc, dall);
		rt_os_unmap((void *)base, span + room);
		return ENOMEM;
	}
	reserved_end = base + span + room;
	desc_mapped = dall;
	rt_g.base = base;
	rt_g.pages = desc;
	rt_g.narenas = n;
	int node = 0;
	for (unsigned i = 0; i < n; i++) {
		struct rt_arena *a = &rt_g.arenas[i];
		while (n > 1 && node < 64 && !(mask & (1UL << node))) /* bound: 64 node numbers */
			node++;
		a->node = n > 1 ? node++ : -1; /* bound to a node only when there are several arenas */
		uint32_t first = (uint32_t)(i * slot);
		e = commit(a, first, first + (uint32_t)pool);
		if (e) {
			rt_say("cannot pre-fault a pool of %zu bytes (%s)", rt_g.opt.pool_size,
			       strerrorname_np(e));
			return e;
		}
		e = rt_arena_init(a, i, a->node, first, (uint32_t)pool, (uint32_t)max);
		if (e)
			return e;
		a->grow = rt_pool_grow;
	}
	rt_g.span = span; /* last: from now on, pointers in the space are ours */
	rt_g.pool_bytes = (pool * n) << RT_PAGE_SHIFT;
	return 0;
}

/* ---- what is only reserved ------------------------------------------------------ */

/* What is reserved but not committed: per arena the space after its
 * committed pages (after the last one, the growth room too) and their
 * descriptors (whole pages only: the page shared with committed descriptors
 * stays), readable within the space, PROT_NONE in the room.  Nothing in them
 * was ever touched. */
unsigned rt_pool_tails(struct rt_pool_tail *t)
{
	unsigned n = 0;
	size_t slot = rt_g.span / rt_g.narenas, slot_pages = slot >> RT_PAGE_SHIFT;
	uintptr_t desc_end = (uintptr_t)rt_g.pages + rt_pool_desc_bytes(rt_g.span);
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		struct rt_buddy *b = &rt_g.arenas[i].buddy;
		bool last = i + 1 == rt_g.narenas;
		uint32_t from = b->first + (b->committed - b->skew);
		uintptr_t lo = (uintptr_t)rt_page_addr(from);
		uintptr_t hi = last ? reserved_end : rt_g.base + (i + 1) * slot;
		if (hi > lo)
			t[n++] = (struct rt_pool_tail){(char *)lo, hi - lo, PROT_NONE};
		lo = rt_page_round((uintptr_t)&rt_g.pages[from]);
		hi = last ? desc_end : (uintptr_t)&rt_g.pages[(i + 1) * slot_pages] & ~(RT_PAGE_SIZE - 1);
		if (hi > lo)
			t[n++] = (struct rt_pool_tail){(char *)lo, hi - lo, PROT_READ};
	}
	if ((uintptr_t)rt_g.pages + desc_mapped > desc_end)
		t[n++] = (struct rt_pool_tail){(char *)desc_end, (uintptr_t)rt_g.pages + desc_mapped - desc_end, PROT_NONE};
	return n;
}

/* Part of the tails was taken by another mapping while they were unmapped
 * (mlock.c, lock_without_tails): every arena stops at what it has committed,
 * and raise_max refuses. */
void rt_pool_stop_growth(void)
{
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		rt_arena_lock(&rt_g.arenas[i]);
		rt_g.arenas[i].buddy.limit = rt_g.arenas[i].buddy.committed;
		rt_stats_publish_arena(&rt_g.arenas[i]);
		rt_arena_unlock(&rt_g.arenas[i]);
	}
	tails_lost = true;
}

/* ---- initialisation -------------------------------------------------------------- */

/* Map len bytes of reservation (PROT_NONE) or of descriptors (PROT_READ)
 * exactly at p, if nothing is there; not locked even under MCL_FUTURE (only
 * what is committed is locked: VmLck stays the pool).  0 or ENOMEM. */
static int map_after(void *p, size_t len, int prot)
{
	if (!len)
		return 0;
	void *q = mmap(p, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (q == MAP_FAILED)
		return ENOMEM;
	if (q != p) { /* a kernel before 4.17 took the address as a hint only */
		munmap(q, len);
		return ENOMEM;
	}
	if (rt_g.locked)
		rt_os_munlock(q, len);
	return 0;
}

/* The pool may hold `size` bytes: raise RTALLOC_POOL_MAX to it.  Within the
 * reservation made at the first initialisation, only the arena's limit moves;
 * beyond it (one arena, not the caller's memory) the reservation and its
 * descriptors are extended right after their ends, if nothing else is mapped
 * there (MAP_FIXED_NOREPLACE).  The largest block stays the first slot's
 * (the buddy's top order: alignment).  Returns 0 or ENOMEM (one line saying
 * why); nothing changes on failure. */
static int raise_max(size_t size)
{
	if (tails_lost)
		return ENOMEM;
	size_t max = rt_page_round(size), span = rt_g.span;
	size_t slot = span / rt_g.narenas;
	if (max / rt_g.narenas > slot) {
		size_t nspan = max, dlen = rt_pool_desc_bytes(span), ndlen = rt_pool_desc_bytes(max);
		uintptr_t data_end = rt_g.base + nspan;
		char *desc = (char *)rt_g.pages;
		const char *what = NULL;
		if (rt_g.narenas != 1 || (max >> RT_PAGE_SHIFT) > RT_NIL / 2)
			what = "address space";
		else if (data_end > reserved_end && map_after((void *)reserved_end, data_end - reserved_end, PROT_NONE))
			what = "address space";
		else if (ndlen > desc_mapped && map_after(desc + desc_mapped, ndlen - desc_mapped, PROT_READ)) {
			if (data_end > reserved_end)
				rt_os_unmap((void *)reserved_end, data_end - reserved_end);
			what = "descriptors";
		}
		if (what) {
			rt_say("rtalloc_init: a pool of %zu KiB needs more %s than were reserved at start-up "
			       "(RTALLOC_POOL_MAX %zu KiB and the room after it), and what follows is taken; "
			       "set RTALLOC_POOL_MAX (or call rtalloc_init from .preinit_array)",
			       max >> 10, what, rt_g.opt.pool_max >> 10);
			return ENOMEM;
		}
		if (data_end > reserved_end)
			reserved_end = data_end;
		size_t in_room = (ndlen < desc_mapped ? ndlen : desc_mapped);
		if (in_room > dlen) { /* descriptors in the room: readable now */
			mprotect(desc + dlen, in_room - dlen, PROT_READ);
			if (rt_g.locked)
				rt_os_munlock(desc + dlen, in_room - dlen);
		}
		if (ndlen > desc_mapped)
			desc_mapped = ndlen;
		/* Descriptors first, then the space: a pointer is ours from then on. */
		__atomic_store_n(&rt_g.span, nspan, __ATOMIC_RELEASE);
		slot = nspan;
	}
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		struct rt_arena *a = &rt_g.arenas[i];
		struct rt_buddy *b = &a->buddy;
		size_t pages = (max / rt_g.narenas) >> RT_PAGE_SHIFT;
		rt_arena_lock(a);
		if (pages > slot >> RT_PAGE_SHIFT)
			pages = slot >> RT_PAGE_SHIFT;
		if (b->skew + pages > b->limit)
			b->limit = b->skew + (uint32_t)pages;
		rt_stats_publish_arena(a);
		rt_arena_unlock(a);
	}
	rt_g.opt.pool_max = max;
	if (rt_stats)
		rt_stats->pool_max = max;
	return 0;
}

/* A later rtalloc_init() growing the pool to `size` bytes.  The growth is
 * the caller's setting, not the program's use: the lowest free count moves
 * up with it (high water stays the most in use). */
static int grow_to(size_t size)
{
	if (!rt_pool_growth_fits(size))
		return ENOMEM; /* beyond the memory there is, or RLIMIT_AS: nothing committed */
	/* Committed pages and limits change under the growth lock only (see
	 * growth): commit without holding an arena lock, then add the pages. */
	grow_lock_take();
	int e = size > rt_g.opt.pool_max ? raise_max(size) : 0;
	size_t want = rt_page_round((size - rt_g.pool_bytes) / rt_g.narenas);
	for (unsigned i = 0; !e && i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		struct rt_arena *a = &rt_g.arenas[i];
		struct rt_buddy *b = &a->buddy;
		uint64_t to = b->committed - b->skew + (want >> RT_PAGE_SHIFT);
		if (to > b->limit - b->skew)
			to = b->limit - b->skew;
		uint32_t from = b->committed - b->skew;
		if (to <= from)
			continue;
		if (commit(a, b->first + from, b->first + (uint32_t)to) != 0) {
			e = ENOMEM;
			continue;
		}
		rt_arena_lock(a);
		grown_pages_add(b, (uint32_t)to);
		rt_stats_publish_arena(a);
		rt_arena_unlock(a);
		__atomic_fetch_add(&rt_g.pool_bytes, (size_t)(to - from) << RT_PAGE_SHIFT, __ATOMIC_RELAXED);
	}
	grow_lock_drop();
	return e;
}

/* A later rtalloc_init(): apply what can change on a live pool.  Its own
 * pre-faulting is not the program's: faults since init count from its end. */
static int reconfigure(const struct rtalloc_config *cfg)
{
	int e = 0;
	if (cfg) {
		if (cfg->on_exhaust >= RTALLOC_EXHAUST_GROW && cfg->on_exhaust <= RTALLOC_EXHAUST_ABORT)
			rt_g.opt.on_exhaust = cfg->on_exhaust;
		if (cfg->pool_size > rt_g.pool_bytes && rt_g.user_memory)
			e = ENOMEM; /* the caller's memory never grows */
		else if (cfg->pool_size > rt_g.pool_bytes)
			e = grow_to(cfg->pool_size);
		if (cfg->mlock == RTALLOC_MLOCK_OFF && rt_g.locked) {
			munlockall();
			rt_g.locked = false;
		} else if (cfg->mlock > RTALLOC_MLOCK_OFF && cfg->mlock <= RT_MLOCK_LAST) {
			int l = rt_pool_lock_memory(cfg->mlock);
			e = e ? e : l;
		}
		if (cfg->mlock >= RTALLOC_MLOCK_OFF && cfg->mlock <= RT_MLOCK_LAST)
			rt_g.opt.mlock = cfg->mlock;
	}
	size_t stack = rt_g.opt.stack_prefault;
	if (cfg && cfg->stack_prefault)
		stack = cfg->stack_prefault == RTALLOC_STACK_PREFAULT_NONE ? 0 : cfg->stack_prefault;
	rt_pool_stack_prefault(stack);
	rt_stats_fault_baseline();
	return e;
}

/* A config must be whole (size 0 means this version's) and its memory, if
 * any, usable: checked before anything changes, on every call. */
static int config_ok(const struct rtalloc_config *cfg)
{
	if (!cfg)
		return 0;
	if (cfg->size && cfg->size < sizeof(struct rtalloc_config))
		return EINVAL;
	if (cfg->memory && cfg->memory_size < 64 * RT_PAGE_SIZE)
		return EINVAL;
	return 0;
}

int rt_init(const struct rtalloc_config *cfg)
{
	if (config_ok(cfg))
		return EINVAL;
	int expected = RT_INIT_NONE;
	if (!__atomic_compare_exchange_n(&rt_g.init_state, &expected, RT_INIT_BUSY, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
		/* Another thread initialises: only possible if threads exist before
		 * the first allocation (thread creation itself allocates, so in
		 * practice never).  Wait for it without holding anything. */
		while (__atomic_load_n(&rt_g.init_state, __ATOMIC_ACQUIRE) == RT_INIT_BUSY)
			sched_yield();
		if (!rt_ready())
			return ENOMEM;
		return cfg ? reconfigure(cfg) : 0;
	}
	int saved = errno;
	bool retry = false;
	uint64_t started = rt_os_now_ns();
	rt_options_read(&rt_g.opt, cfg);
	rt_profile_apply(&rt_g.opt, cfg); /* RTALLOC_PROFILE: the pool's size (profile.c) */
	rt_g.key = rt_os_random() | 1; /* odd: never a block address */
	rt_g.link_key = rt_os_random();
	int e = pthread_key_create(&rt_g.thread_key, rt_tcache_thread_exit);
	if (!e) {
		if (cfg && cfg->memory)
			e = setup_user_memory(cfg->memory, cfg->memory_size);
		else {
			/* mlockall (all) and mlock (pool) fault the pool in;
			 * mlockall with MCL_ONFAULT does not: pre-faulted first.
			 * So is a pool in huge pages: mlock's faulting takes 4 KiB
			 * pages and compacts for each huge one (1 GiB: 6 s instead
			 * of 0.3 s with MADV_POPULATE_WRITE, then locking). */
			populate_later = rt_g.opt.mlock != RTALLOC_MLOCK_OFF &&
					 rt_g.opt.mlock != RTALLOC_MLOCK_ONFAULT && !rt_g.opt.hugepages;
			/* A config the machine cannot give fails before anything
			 * is reserved: it can be retried with a smaller one. */
			e = rt_pool_fit(cfg, arena_count());
			retry = e != 0;
			if (!e)
				e = setup_os_memory();
		}
	}
	if (e) {
		/* Bad caller memory can be retried with a better config; a system
		 * that cannot give us a pool cannot. */
		if (e == EINVAL || retry)
			pthread_key_delete(rt_g.thread_key);
		__atomic_store_n(&rt_g.init_state, e == EINVAL || retry ? RT_INIT_NONE : RT_INIT_FAILED,
				 __ATOMIC_RELEASE);
		errno = saved;
		return e;
	}
	rt_stats_init();
	rt_die_hook(rt_stats_remove); /* an aborting process leaves no statistics file */
	rt_stats_report_setup();
	/* Whatever still reaches glibc's own allocator never trims nor maps. */
	__libc_mallopt(M_TRIM_THRESHOLD, -1);
	__libc_mallopt(M_MMAP_MAX, 0);
	rt_pool_stack_prefault(rt_g.opt.stack_prefault);
	int lk = rt_pool_lock_memory(rt_g.opt.mlock);
	if (populate_later) {
		populate_later = false;
		if (!rt_g.locked)
			populate_committed();
	}
	rt_g.init_ns = rt_os_now_ns();
	rt_stats_init_done(started);
	__atomic_store_n(&rt_g.init_state, RT_INIT_DONE, __ATOMIC_RELEASE);
	pthread_atfork(rt_pool_fork_prepare, rt_pool_fork_parent, rt_pool_fork_child);
	errno = saved;
	return lk;
}

int rt_init_lazy(void)
{
	int e = rt_init(NULL);
	if (e == EPERM) {
		rt_say("RTALLOC_MLOCK=require: cannot run without locked memory; aborting");
		rt_die();
	}
	return e;
}
