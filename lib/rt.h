/* SPDX-License-Identifier: MIT */
/*
 * rt.h - librtalloc's internal types, constants and invariants.
 *
 * Glossary
 *   space     The one address range librtalloc manages: [rt_g.base, rt_g.base
 *             + rt_g.span).  A pointer is ours iff it falls inside it (one
 *             subtraction and one compare).  It is split into arenas.
 *   page      RT_PAGE_SIZE bytes of the space.  Every page has a descriptor
 *             (struct rt_page) in rt_g.pages, indexed by page number; the
 *             descriptors live in memory apart from user blocks (4.4BSD's
 *             kmemusage, musl's out-of-band meta).
 *   arena     A part of the space with its own buddy allocator, partial-page
 *             lists and lock; one per NUMA node (usually just one).
 *   buddy     Page-granular power-of-two blocks of order 0 .. RT_ORDER_MAX
 *             (2^order pages), naturally aligned relative to the arena base,
 *             which is aligned to its largest block.
 *   class     A McKusick-Karels power-of-two bucket: class c holds blocks of
 *             rt_class_size(c) = 8 << c bytes, c = 1 .. RT_NCLASS.  Classes
 *             1 .. RT_NSMALL are carved from single pages; the larger cached
 *             classes are buddy blocks of order c - RT_NSMALL - 1: medium
 *             (4 .. 32 KiB, up to RT_NMED) and large (64 KiB .. 1 MiB, a
 *             share of the cache budget of their own, taken at a thread's
 *             first use of them).  Larger requests are "huge": a buddy block
 *             of their own, not cached.
 *   block     What malloc returns.  Blocks carry no header.  Every block is
 *             aligned to its size, so alignment requests are a rounding.
 *   free list A singly linked list through free blocks: word 0 is the link
 *             to the next block, encoded (rt_link_get/rt_link_set below),
 *             word 1 the block's free stamp, a value bound to its address
 *             that says who holds it: a thread list or the arena.  Live
 *             blocks never hold a stamp of their own address in word 1 (it
 *             is cleared when the block is handed out).  Lists end in NULL.
 *   tcache    A thread's free lists, one per class, with bounded length.  Any
 *             thread may free any block into its own tcache; overflow is
 *             flushed, underflow refilled, in bounded batches, to/from the
 *             arena of the block's page.
 *
 * Layers, top first.  A file calls only files of its own layer or below
 * (tests/system/check_layers.sh reads the objects and checks it); the one
 * call upwards is the arenas' growth hook (a->grow, set by pool.c), and
 * every layer reads rt_g, the allocator's state (below).
 *   6  interpose.c, cxx.c  the exported libc names; C++ new/delete
 *   5  alloc.c, fastpath.h the malloc family's semantics; the inline fast
 *                          paths; the slow paths' entry (first use, a
 *                          forked child, heap-bound threads, pointers not
 *                          ours, the re-entry guard)
 *      init.c              the initialisation sequence, reconfiguration
 *      fork.c              the fork handlers
 *      report.c            rtalloc_stats(), rtalloc_stats_print(), the exit
 *                          report (reads the region and live caches)
 *      heap.c, heap_*.c    heaps: own pools, caller regions, shared, timed
 *   4  tcache.c            per-thread caches and their slow paths, the cache
 *                          budget, transfer slots; the thread's counters
 *                          (their list: tcounters.h), folding, real-time
 *                          sections
 *   3  pool.c              the pool: reservation, NUMA, commit + pre-fault,
 *                          growth (shared with the next two: pool_int.h)
 *      limits.c            what the machine can give: memory, RLIMIT_*, the fit
 *      mlock.c             locking per RTALLOC_MLOCK, the reserved tails left
 *                          out, the stack pre-fault
 *   2  arena.c             McKusick-Karels classes in an arena, huge blocks
 *   1  buddy.c             pages: binary buddy blocks
 *      stats.c             the statistics region (its format: stats.h), its
 *                          file, writers and the thread registry
 *      statread.c          the one reader of a region: report.c and
 *                          rtalloc-stat (linked into it); the data flow
 *      faults.c            RTALLOC_FAULTS=locate: per-thread perf events, read
 *                          at rtalloc_rt_end (faults_sym.c names the places)
 *   0  options.c           RTALLOC_* (read from environ, no getenv)
 *      lock.c              every mutex: PI set-up, lock and unlock, the arena
 *                          lock, lock waits counted, fork's repair
 *      os.h, os.c          the operating system: every system call, one
 *                          function each, with its contract
 *      glue.h, glue.c      the ties to glibc's internals (its mallopt,
 *                          environ, AT_SECURE, fork's stdio lock)
 *      say.c               messages on stderr and the end of fatal paths
 *   headers: procfs.h (the one parser of /proc text, also in the tools,
 *   tests and bench), probes.h (USDT probes), tcounters.h, heap.h, faults.h.
 * buddy.c and arena.c reference nothing but rt_* functions (no OS call, no
 * libc); no object but os.c, lock.c and glue.c references libc beyond its
 * string functions (tests/system/check_core.sh).  The unit tests run the
 * core on a static array.
 */
#ifndef RT_H
#define RT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rtalloc.h"

#include "tcounters.h" /* the thread counters; not the export format (stats.h) */

#define RT_HIDDEN __attribute__((visibility("hidden")))
#define RT_EXPORT __attribute__((visibility("default")))
#define RT_NOINLINE __attribute__((noinline))
#define RT_COLD __attribute__((cold, noinline))
#define RT_NORETURN __attribute__((noreturn))
/* Functions that read counters other threads write with plain adds (stats). */
#if defined(__SANITIZE_THREAD__)
#define RT_NO_TSAN __attribute__((no_sanitize_thread))
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RT_NO_TSAN __attribute__((no_sanitize("thread")))
#endif
#endif
#ifndef RT_NO_TSAN
#define RT_NO_TSAN
#endif
#define rt_likely(x) __builtin_expect(!!(x), 1)
#define rt_unlikely(x) __builtin_expect(!!(x), 0)

/* Invariants are asserted in debug builds (meson -Ddebug_checks=true), and
 * the checks that guard against corruption by the user stay on always. */
#ifdef RT_DEBUG
#define rt_assert(x) ((x) ? (void)0 : rt_assert_fail(#x, __FILE__, __LINE__))
#else
#define rt_assert(x) ((void)0)
#endif

/* A spin-wait hint to the CPU. */
static inline void rt_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

/* Relaxed atomics for fields written under a lock and read without one. */
#define rt_load(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define rt_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* ---- layout constants ---------------------------------------------------- */

#define RT_PAGE_SHIFT 12
#define RT_PAGE_SIZE ((size_t)1 << RT_PAGE_SHIFT)
#define RT_MIN_SHIFT 4 /* smallest block: 16 bytes = two words */
#define RT_NSMALL 8    /* classes 1..8: 16 B .. 2 KiB, carved from one page */
#define RT_NMED 12     /* classes 9..12: 4 KiB .. 32 KiB, buddy orders 0..3 (medium) */
#define RT_NCLASS 17   /* classes 13..17: 64 KiB .. 1 MiB, buddy orders 4..8 (large) */
#define RT_CLS_HUGE (RT_NCLASS + 1) /* a buddy block not cached */
#define RT_CACHE_MAX ((size_t)8 << RT_NCLASS) /* largest cached size: 1 MiB */
/* rt_g.base is aligned to this (pool.c): the fast paths test a block's
 * alignment relative to base up to it (struct rt_bin's mask); larger blocks
 * are aligned to their size by the buddy's skew, and their class is checked
 * on their head page's descriptor. */
#define RT_BASE_ALIGN ((size_t)8 << RT_NMED)
#define RT_ORDER_MAX 31 /* 2^31 pages (8 TiB): page indices are 32-bit */
#define RT_NORDERS (RT_ORDER_MAX + 1)
#define RT_MAX_ARENAS 8 /* NUMA nodes served by their own arena */
#define RT_NIL UINT32_MAX /* end of a page-index list */
#define RT_MAX_ALIGN ((size_t)1 << 40) /* beyond: ENOMEM/EINVAL, not a block */

_Static_assert(((size_t)8 << 1) == ((size_t)1 << RT_MIN_SHIFT), "class 1 is 16 bytes");
_Static_assert(((size_t)8 << RT_NSMALL) * 2 == RT_PAGE_SIZE,
	       "the largest small class is half a page: every small page holds >= 2 blocks");
_Static_assert(((size_t)8 << (RT_NSMALL + 1)) == RT_PAGE_SIZE,
	       "the first cached buddy class is one page");
_Static_assert(RT_CLS_HUGE <= UINT8_MAX, "class numbers fit the descriptor's byte");
_Static_assert(RT_NSMALL < RT_NMED && RT_NMED < RT_NCLASS, "small, medium, large classes");
_Static_assert(RT_PAGE_SIZE <= UINT16_MAX, "rt_page.carved counts bytes of a page in 16 bits");

static inline size_t rt_class_size(unsigned c) { return (size_t)8 << c; }

/* ---- small helpers, defined once ---------------------------------------- */

static inline bool rt_pow2(size_t x) { return x && !(x & (x - 1)); }

/* Up to a whole page; saturates instead of wrapping to 0 (a size from a
 * caller may be anything). */
static inline size_t rt_page_round(size_t n)
{
	size_t r;
	if (__builtin_add_overflow(n, RT_PAGE_SIZE - 1, &r))
		return SIZE_MAX & ~(RT_PAGE_SIZE - 1);
	return r & ~(RT_PAGE_SIZE - 1);
}

/* Class of a request of n bytes, 1 <= n <= RT_CACHE_MAX (BUCKETINDX).
 * n = 0 or n > RT_CACHE_MAX give a value > RT_NCLASS: the caller's slow path. */
static inline unsigned rt_class_of(size_t n)
{
	return 64 - (unsigned)__builtin_clzll((n - 1) | 15) - 3;
}

/* Buddy order of the block that holds n bytes (n > 0). */
static inline unsigned rt_order_of(size_t n)
{
	size_t pages = (n + RT_PAGE_SIZE - 1) >> RT_PAGE_SHIFT;
	return pages <= 1 ? 0 : 64 - (unsigned)__builtin_clzll(pages - 1);
}

/* Pages a huge block of n bytes keeps (n > RT_CACHE_MAX, order <=
 * RT_ORDER_MAX).  Below RT_TRIM_ORDER: its whole 2^k-page buddy block.  From
 * there on (blocks of 16 MiB, requests above 8 MiB): its pages rounded up to
 * an eighth of that block, and rt_buddy_trim gives the rest back (at most 3
 * blocks of at least 2^(k-3) pages, 2 MiB): at most 1/8 of it is unused
 * instead of up to 1/2.  Not below: a tail given back is taken by smaller
 * blocks, and the block no longer merges whole when freed.  With blocks of up
 * to 1 MiB trimmed, the buddy splinters: tests/fuzz/difftest (3.2 MiB live in
 * a 16 MiB pool) then fails a 1 MiB request for 9 seeds of 12, and
 * tests/unit/test_arena.c's random mix (a 7 MiB pool half full) a 256 KiB
 * one.  Where it matters (a program's arrays of hundreds of MiB) the blocks
 * are large. */
#define RT_TRIM_ORDER 12
static inline uint32_t rt_huge_pages(size_t n)
{
	unsigned k = rt_order_of(n);
	size_t q = (size_t)1 << (k >= RT_TRIM_ORDER ? k - 3 : k);
	size_t pages = (n + RT_PAGE_SIZE - 1) >> RT_PAGE_SHIFT;
	return (uint32_t)((pages + q - 1) & ~(q - 1));
}

/* ---- page descriptors ------------------------------------------------------
 *
 * One per page of the space, zero-initialised (= a tail page, no class).
 *
 * Invariants (checked by rt_buddy_check / rt_arena_check):
 *   B1  every page is either the head of exactly one buddy block (state FREE
 *       or USED) or a tail (state TAIL, cls 0) inside the block of a head;
 *   B2  a FREE head of order k is on free list k of its arena and is not
 *       coalescable: its buddy is not a FREE head of order k;
 *   B3  a USED head with cls = c in 1..RT_NSMALL is a small page (order 0);
 *       with cls in RT_NSMALL+1..RT_NCLASS a cached block of order
 *       c - RT_NSMALL - 1; with RT_CLS_HUGE a huge block of next pages,
 *       whose pieces after the head (rt_buddy_trim) are USED heads with
 *       cls 0, reached only through it;
 *   S1  small page: carved = blocks handed out at least once * size,
 *       nfree = blocks on its free list + (blocks per page - carved/size),
 *       0 <= nfree <= blocks per page; every block not handed out (free
 *       or never carved) carries the free stamp in word 1, so the free fast
 *       path's double-free test also rejects never-allocated blocks;
 *   S2  small page with 0 < nfree < blocks per page is on its arena's
 *       partial list of its class;
 *   S3  small page with nfree = blocks per page (every block free) is on its
 *       arena's empty list, counted in nempty, reusable by any class;
 *   S4  nempty <= RT_EMPTY_KEEP whenever the arena's lock is free.
 *   Cached classes (medium) keep carved = RT_PAGE_SIZE so the free path's
 *   "inside the carved part" test passes for their (page-aligned) blocks.
 */
enum { RT_PS_TAIL = 0, RT_PS_FREE = 1, RT_PS_USED = 2 };

struct rt_page {
	uint8_t cls;     /* 0, 1..RT_NCLASS or RT_CLS_HUGE; read without lock */
	uint8_t state;   /* RT_PS_* */
	uint8_t order;   /* order of the buddy block this page heads */
	uint8_t arena;   /* index in rt_g.arenas */
	uint16_t carved; /* small: bytes of the page handed out at least once; read without lock */
	uint16_t nfree;  /* small: blocks the arena holds of this page */
	void *free;      /* small: free blocks of this page held by the arena */
	uint32_t next;   /* buddy free list, or partial-page list (page indices); a huge head: its pages */
	uint32_t prev;
};
_Static_assert(sizeof(struct rt_page) == 24, "descriptor layout");

/* ---- buddy allocator ----------------------------------------------------- */

/* Positions v = idx - first + skew; v = 0 is aligned to 2^top_order pages in
 * the address space.  Usable now: v in [skew, committed); ever: [skew, limit).
 *   free_pages = sum over FREE heads of 2^order;  nonempty bit k <=> list k nonempty. */
struct rt_buddy {
	struct rt_page *pages; /* the whole descriptor array (global page indices) */
	uint32_t first;        /* page index of the first usable page */
	uint32_t skew;         /* its position: first's page offset from an aligned address */
	uint32_t committed;    /* end position of the pages usable now (grows) */
	uint32_t limit;        /* end position it may grow to */
	uint8_t top_order;     /* largest order: 2^top_order <= limit, alignment of first */
	uint8_t arena;         /* index stamped into the descriptors it hands out */
	uint64_t nonempty;     /* bit k set iff head[k] != RT_NIL */
	uint32_t head[RT_NORDERS];
	size_t free_pages;
	size_t min_free_pages; /* lowest free_pages ever (the high-water mark of use) */
};

/* ---- arenas ---------------------------------------------------------------
 *
 * Synchronization: every field is protected by lock, except the descriptor
 * fields cls and carved, which are written under the lock and read by any
 * thread's free path (relaxed loads; a thread only frees blocks it obtained
 * after they were carved, so it sees the values of that time).  The lock is
 * PTHREAD_PRIO_INHERIT: a real-time thread that waits for it boosts the
 * holder.  The lock is held for at most one bounded batch (see arena.c).
 */
struct rt_arena {
	pthread_mutex_t lock;
	struct rt_buddy buddy;
	uint32_t partial[RT_NSMALL + 1]; /* per small class: pages with 0 < nfree < capacity */
	uint32_t empty;                  /* small pages with every block free (S3) */
	uint32_t nempty;
	/* Called with lock held when the buddy has no block of the order asked
	 * (the arena consistent: its callers hold no half-done change).  It may
	 * release the lock and take it again (pool.c commits the pages without
	 * it): the arena may have changed meanwhile, so the caller asks the buddy
	 * again.  Returns with the lock held, 0 when a block of that order may
	 * now be free; it counts the growths it makes in grows.  NULL: the arena
	 * cannot grow. */
	int (*grow)(struct rt_arena *a, unsigned order);
	unsigned index;
	int node; /* NUMA node, -1 when none */
	/* statistics, under lock, only grow (class_units: see struct rt_stats_arena,
	 * indexed by rt_stats_class) */
	uint64_t grows, failed, refills, flushes, huge_allocs, huge_frees;
	uint64_t last_grow_ns;
	uint64_t class_units[RT_NMED + 2]; /* rt_stats_class(c): 0, 1 .. RT_NMED, above */
	size_t published_mark; /* page figures when last published (arena.c) */
	/* Pages moved by this arena's operations, only grows: the tests bound
	 * one call's work with the difference (arena.c). */
	uint64_t steps;
} __attribute__((aligned(64))); /* whole cache lines: arenas share none (rt_g) */
#define RT_EMPTY_KEEP 8 /* idle small pages an arena keeps (S4, arena.c) */

/* The statistics region's class counts (stats.h) end in one entry for every
 * block above 32 KiB (what "huge" meant before the large classes were
 * cached): the large cached classes count there with the huge blocks, so the
 * region's layout and rtalloc-stat stay as they were (stats.c asserts it). */
static inline unsigned rt_stats_class(unsigned c) { return c <= RT_NMED ? c : RT_NMED + 1; }

/* ---- thread caches ----------------------------------------------------- */

/* Invariant T1: the list from head has exactly count blocks, each a block
 * start of this class on a page of this class, stamped RT_STAMP_CACHED; the
 * last one's link decodes to NULL (rt_tcache_check walks it).
 * allocs and frees count the fast paths' blocks of this class (the slow
 * paths count theirs in rt_tcache.st): the thread's allocations and bytes
 * are derived from them when read (rt_tcache_counters), so the fast paths
 * count with one add each on the cache line they already touch. */
struct rt_bin {
	void *head;     /* free list of this class */
	uint32_t count; /* blocks on it */
	uint32_t limit; /* flush when count reaches limit; 0 until the thread is set up */
	uintptr_t mask; /* rt_class_size(c) - 1: block starts have these bits clear */
	uint64_t allocs; /* blocks handed out by rt_malloc_fast, only grows */
	uint64_t frees;  /* blocks taken back by rt_free_fast, only grows */
	uint64_t folded_allocs, folded_frees; /* what rt_tcache_publish has added to tc->fold */
	/* For profile.c's peaks: blocks of this class the slow path took back
	 * from the program, less those it handed out off the list (a large
	 * class the thread does not cache): allocs - frees - slow_back blocks
	 * are out. */
	int64_t slow_back;
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct rt_bin) == 64, "a bin is one cache line, indexed with one shift");

enum { RT_TC_NEW = 0, RT_TC_LIVE, RT_TC_DEAD };

/* Zero-initialised TLS is the "empty" cache: every count is 0 and every limit
 * is 0, so the first malloc and the first free of a thread take the slow path,
 * which sets the thread up.  The fast paths never test for initialisation. */
struct rt_tcache {
	/* bin[0] and bin[RT_CLS_HUGE] keep limit 0 forever, so a free whose page
	 * has no cached class falls to the slow path without a test of its own. */
	struct rt_bin bin[RT_CLS_HUGE + 1];
	struct rt_tcounters st;       /* the slow paths' counts (rt_tcache_counters adds the bins') */
	struct rt_stats_slot *slot;   /* this thread's slot in the stats region, or NULL */
	/* The bins' counts as last folded for publishing to the slot (a slow
	 * path folds two classes, so its cost stays constant): mallocs, frees,
	 * bytes_allocated, bytes_freed; the other fields stay 0. */
	struct rt_tcounters fold;
	uint8_t fold_next; /* the class the next partial fold takes besides its own */
	uint64_t sect_minflt_at, sect_majflt_at; /* the thread's faults when its real-time section began */
	uint64_t sect_lock_waits_at;             /* and its lock waits (rt_lock_waits.waits) */
	uint8_t state; /* RT_TC_* */
	uint8_t arena; /* arena of this thread's node */
	uint8_t in_section; /* inside rtalloc_rt_begin() .. rtalloc_rt_end() */
	uint8_t in_slow; /* inside a slow path (tcache.c): entering another is fatal */
	uint8_t shift;   /* the thread's limits are the full ones >> shift (cache budget),
			  * or raised by a profile (tcache.c's profile_fill) */
	uint8_t big_shift; /* the same for the large classes, once big_taken */
	uint8_t big_taken; /* the large classes' share taken (their first use, or prepare) */
	size_t quota;    /* bytes of the cache budget this thread holds (tcache.c) */
	size_t big_quota; /* bytes of the budget for the large classes (0 until big_taken) */
	void *heap;    /* rtalloc_thread_use_heap: malloc draws from this heap (limits 0) */
	/* profile.c: per class, the most blocks this thread needed cached at
	 * once (measured at refills, tcache.c); a peak grew since published */
	uint32_t peak[RT_NCLASS + 1];
	uint8_t peak_dirty;
	size_t profile_quota; /* bytes of the profile's reserve its raised limits hold (tcache.c) */
};

extern __thread struct rt_tcache rt_tc __attribute__((tls_model("initial-exec"))) RT_HIDDEN;

/* ---- the process ------------------------------------------------------- */

struct rt_options {
	size_t pool_size;
	size_t pool_max;
	size_t stack_prefault;
	int mlock;      /* enum rtalloc_mlock, never UNSET once resolved */
	int on_exhaust; /* enum rtalloc_exhaust */
	int numa;       /* enum rtalloc_numa */
	int stats;      /* RTALLOC_STATS: export live statistics (1) or not (0) */
	int hugepages;  /* RTALLOC_HUGEPAGES: the pool in transparent huge pages (1) or not (0) */
	int faults;     /* RTALLOC_FAULTS: locate faults in real-time sections (1) or not (0) */
};
#define RT_MLOCK_LAST RTALLOC_MLOCK_POOL /* the largest valid enum rtalloc_mlock */

enum { RT_INIT_NONE = 0, RT_INIT_BUSY, RT_INIT_DONE, RT_INIT_FAILED };

struct rt_global {
	/* hot: read by every malloc and free, one cache line */
	uintptr_t base;        /* start of the space */
	uintptr_t span;        /* its length in bytes; 0 before init: nothing is ours */
	struct rt_page *pages; /* descriptors of the space */
	uintptr_t key;         /* free stamps: rt_stamp_*(), random per process, odd */
	uintptr_t link_key;    /* free-list links: rt_link_*(), random per process */
	/* cold */
	unsigned narenas;
	/* each on lines of its own: a lock taken or a counter moved must not
	 * take the hot line above from every other thread's fast paths */
	struct rt_arena arenas[RT_MAX_ARENAS] __attribute__((aligned(64)));
	struct rt_options opt;
	int init_state;        /* RT_INIT_*, atomic */
	bool user_memory;      /* the pool is caller memory: no OS calls on it */
	bool locked;           /* memory locked per RTALLOC_MLOCK (mlock.c) */
	bool relock_child;     /* forked child: mlockall again at the next slow path */
	unsigned nnodes;       /* NUMA nodes online (0: unknown) */
	unsigned long node_mask;
	size_t pool_bytes;     /* committed bytes over all arenas */
	uint64_t init_ns;      /* CLOCK_MONOTONIC when init finished */
	pthread_key_t thread_key;
} __attribute__((aligned(64)));

extern struct rt_global rt_g RT_HIDDEN;
_Static_assert(offsetof(struct rt_global, arenas) == 64 && sizeof(struct rt_arena) % 64 == 0,
	       "the fast paths' line of rt_g holds no field an arena operation writes");

/* ---- free blocks: links and stamps ------------------------------------------
 *
 * Free blocks live in user memory, which a buggy or hostile program can
 * write after free.  Nothing read from a free block is used before it is
 * checked (glibc's safe-linking, scudo's checksums, in our form):
 *   link   word 0 holds next XOR (the block's own address >> RT_PAGE_SHIFT)
 *          XOR rt_g.link_key.  A forged or overwritten link decodes to a
 *          random address unless the writer knows the secret and where the
 *          block is; an off-by-one NUL scrambles it.
 *   stamp  word 1 holds rt_g.key XOR the block's address, and XOR 1 while
 *          the arena holds the block (a page's free list, or never carved):
 *            RT_STAMP_CACHED  on a thread's list (fastpath.h, tcache.c)
 *            RT_STAMP_HELD    held by the arena (arena.c)
 *          A block is popped only with the stamp of its list, and every move
 *          between a thread and the arena checks and rewrites it: a block
 *          freed twice (even after a use after free cleared its stamp), or
 *          a link to a live block, is caught before the block is handed out.
 *          Stamps are bound to their address: a copy of a free block's bytes
 *          elsewhere (stale memory a valid program copies) is no stamp.
 * A popped block is also checked against its page's class (the descriptor,
 * apart from user memory): a stale stamp left inside a page that now serves
 * another class never passes. */
enum { RT_STAMP_CACHED = 0, RT_STAMP_HELD = 1 };

/* The stamp and the link mask of the block identified by id, under keys:
 * the pool identifies a block by its address (rt_g's keys, below); a heap by
 * its place in the heap, page index and offset, the same in every process
 * that maps it (its header's keys, heap_block.c).  One encoding for both. */
static inline uintptr_t rt_stamp_key(uintptr_t key, uintptr_t id, unsigned holder) { return key ^ id ^ holder; }
static inline uintptr_t rt_link_mask_key(uintptr_t key, uintptr_t id) { return (id >> RT_PAGE_SHIFT) ^ key; }

static inline uintptr_t rt_stamp(const void *b, unsigned holder)
{
	return rt_stamp_key(rt_g.key, (uintptr_t)b, holder);
}

/* Does block b carry a free stamp, of either holder? */
static inline bool rt_stamped(const void *b)
{
	return (((const uintptr_t *)b)[1] ^ rt_g.key ^ (uintptr_t)b) <= 1;
}

static inline bool rt_stamped_by(const void *b, unsigned holder)
{
	return ((const uintptr_t *)b)[1] == rt_stamp(b, holder);
}

static inline void rt_stamp_set(void *b, unsigned holder) { ((uintptr_t *)b)[1] = rt_stamp(b, holder); }

static inline uintptr_t rt_link_mask(const void *b) { return rt_link_mask_key(rt_g.link_key, (uintptr_t)b); }

static inline void *rt_link_get(const void *b)
{
	return (void *)(((const uintptr_t *)b)[0] ^ rt_link_mask(b));
}

static inline void rt_link_set(void *b, const void *next)
{
	((uintptr_t *)b)[0] = (uintptr_t)next ^ rt_link_mask(b);
}

/* ---- page lists ------------------------------------------------------------
 *
 * The one list type of page descriptors: doubly linked through next/prev
 * (page indices into the descriptor array d of n descriptors), ending in
 * RT_NIL, with its head a uint32_t somewhere else (a buddy order, a class's
 * partial pages, an arena's idle pages, a heap's partial pages).  O(1) each;
 * the caller holds the lock of the structure the list belongs to.  Every
 * link is read once and checked against n before it is used: a shared
 * heap's descriptors are in memory other processes write. */
RT_HIDDEN RT_NORETURN RT_COLD void rt_plist_corrupt(const void *d, uint32_t idx);

static inline uint32_t rt_plist_link(const struct rt_page *d, uint32_t n, uint32_t i)
{
	if (rt_unlikely(i != RT_NIL && i >= n))
		rt_plist_corrupt(d, i);
	return i;
}

static inline void rt_plist_push(struct rt_page *d, uint32_t n, uint32_t *head, uint32_t idx)
{
	uint32_t next = rt_plist_link(d, n, *head);
	struct rt_page *pg = &d[idx];
	pg->prev = RT_NIL;
	pg->next = next;
	if (next != RT_NIL)
		d[next].prev = idx;
	*head = idx;
}

static inline void rt_plist_unlink(struct rt_page *d, uint32_t n, uint32_t *head, uint32_t idx)
{
	struct rt_page *pg = &d[idx];
	uint32_t prev = rt_plist_link(d, n, pg->prev), next = rt_plist_link(d, n, pg->next);
	if (prev != RT_NIL)
		d[prev].next = next;
	else
		*head = next;
	if (next != RT_NIL)
		d[next].prev = prev;
	pg->next = pg->prev = RT_NIL;
}

/* The first page of the list, unlinked; RT_NIL when it is empty. */
static inline uint32_t rt_plist_pop(struct rt_page *d, uint32_t n, uint32_t *head)
{
	uint32_t idx = rt_plist_link(d, n, *head);
	if (idx != RT_NIL)
		rt_plist_unlink(d, n, head, idx);
	return idx;
}

static inline struct rt_page *rt_page_of(const void *p)
{
	uintptr_t off = (uintptr_t)p - rt_g.base;
	if (rt_unlikely(off >= rt_g.span))
		return NULL;
	return &rt_g.pages[off >> RT_PAGE_SHIFT];
}

/* ---- the block validator ---------------------------------------------------
 *
 * The one check of a block outside the fast paths (musl's get_meta): every
 * pointer a caller hands in (free, realloc, malloc_usable_size...) and every
 * block a list leads to (a flush, a refill, rtalloc_check) is checked here
 * against its page's descriptor, apart from user memory, before anything is
 * done with it.  Is b, on page pg, the start of a block of class c (0: any
 * class) in state want: RT_BLOCK_LIVE (handed out), or on a list, stamped
 * RT_STAMP_CACHED or RT_STAMP_HELD?  NULL, or what it is instead, in the
 * words an abort message uses.  The fast paths (fastpath.h) inline the subset
 * they need. */
enum { RT_BLOCK_LIVE = 2 }; /* besides RT_STAMP_CACHED and RT_STAMP_HELD */

static inline const char *rt_block_why(const struct rt_page *pg, const void *b, unsigned c,
				       unsigned want)
{
	unsigned pc = rt_load(&pg->cls);
	uintptr_t in_page = (uintptr_t)b & (RT_PAGE_SIZE - 1);
	if (pg->state != RT_PS_USED || pc == 0 || pc > RT_CLS_HUGE)
		return "invalid pointer (not a block, or already freed)";
	if (c && pc != c)
		return "invalid pointer (a block of another size class)";
	if (pc > RT_NSMALL) { /* cached buddy classes and huge blocks start their page */
		if (in_page)
			return pc == RT_CLS_HUGE ? "invalid pointer (inside a large block)"
						 : "invalid pointer (not the start of a block)";
	} else if ((in_page & (rt_class_size(pc) - 1)) || in_page >= rt_load(&pg->carved)) {
		return "invalid pointer (not the start of a block)";
	}
	if (want == RT_BLOCK_LIVE) /* huge blocks are never stamped */
		return pc != RT_CLS_HUGE && rt_stamped(b) ? "double free (block already freed)" : NULL;
	return rt_stamped_by(b, want) ? NULL : "not free: its stamp is gone (use after free?)";
}

static inline void *rt_page_addr(uint32_t idx)
{
	return (void *)(rt_g.base + ((uintptr_t)idx << RT_PAGE_SHIFT));
}

static inline uint32_t rt_page_index(const void *p)
{
	return (uint32_t)(((uintptr_t)p - rt_g.base) >> RT_PAGE_SHIFT);
}

/* ---- buddy.c ------------------------------------------------------------- */
/* Pages first .. first + limit - 1 (descriptors in pages[]), the first one at
 * address addr; none usable until rt_buddy_add. */
RT_HIDDEN void rt_buddy_init(struct rt_buddy *b, struct rt_page *pages, uint32_t first,
			     uintptr_t addr, uint32_t limit, unsigned arena);
/* Make the first `pages` pages usable (grows only). */
RT_HIDDEN void rt_buddy_add(struct rt_buddy *b, uint32_t pages);
RT_HIDDEN uint32_t rt_buddy_alloc(struct rt_buddy *b, unsigned order);
RT_HIDDEN void rt_buddy_free(struct rt_buddy *b, uint32_t idx);
/* A block of exactly n pages (n >= 1, rounded up to 2^k for the search, the
 * tail beyond n given back at once); its head's next field holds n. */
RT_HIDDEN uint32_t rt_buddy_alloc_pages(struct rt_buddy *b, uint32_t n);
/* The same for a block just taken with rt_buddy_alloc(b, order of n). */
RT_HIDDEN void rt_buddy_trim(struct rt_buddy *b, uint32_t idx, uint32_t n);
/* Pages of the block of rt_buddy_alloc_pages at idx, its pieces checked: 0
 * when the descriptors do not describe one. */
RT_HIDDEN uint32_t rt_buddy_pages(const struct rt_buddy *b, uint32_t idx);
/* Free a block of rt_buddy_alloc_pages, piece by piece; false (nothing
 * freed) when idx heads no such block. */
RT_HIDDEN bool rt_buddy_free_pages(struct rt_buddy *b, uint32_t idx);
RT_HIDDEN const char *rt_buddy_check(const struct rt_buddy *b);

/* ---- arena.c ------------------------------------------------------------ */
RT_HIDDEN int rt_arena_init(struct rt_arena *a, unsigned index, int node, uint32_t first,
			    uint32_t committed, uint32_t limit);
RT_HIDDEN unsigned rt_arena_refill(struct rt_arena *a, unsigned c, unsigned want,
				    void **head, bool may_grow);
RT_HIDDEN void rt_arena_flush(unsigned c, void *head, unsigned n);
RT_HIDDEN void *rt_arena_huge_alloc(struct rt_arena *a, uint32_t pages, bool may_grow);
RT_HIDDEN void rt_arena_huge_free(void *p, struct rt_page *pg);
RT_HIDDEN const char *rt_arena_check(struct rt_arena *a);
RT_HIDDEN void rt_arena_lock(struct rt_arena *a);
RT_HIDDEN void rt_arena_unlock(struct rt_arena *a);

/* ---- tcache.c ------------------------------------------------------------ */
/* The slow paths of a set-up library (alloc.c's entries run them under the
 * re-entry guard): a thread's malloc, its free of a block on page pg of the
 * pool, and a live block's size (aborts naming call if p is not one). */
RT_HIDDEN void *rt_tcache_malloc(struct rt_tcache *tc, size_t n);
RT_HIDDEN void rt_tcache_free(struct rt_tcache *tc, void *p, struct rt_page *pg, const char *call);
RT_HIDDEN size_t rt_tcache_block_size(const void *p, const struct rt_page *pg, const char *call);
/* The cache limits again, once a forked child locked its memory. */
RT_HIDDEN void rt_tcache_relocked(struct rt_tcache *tc);
/* rtalloc_rt_begin/end's work (alloc.c exports them). */
RT_HIDDEN void rt_tcache_section_begin(void);
RT_HIDDEN void rt_tcache_section_end(void);
/* Aborts; declared to return so that the fast path tail-calls it. */
RT_HIDDEN RT_COLD void *rt_list_corrupt(const void *p);
RT_HIDDEN void rt_tcache_flush_all(struct rt_tcache *tc);
RT_HIDDEN void rt_tcache_restore_limits(struct rt_tcache *tc); /* after rt_tcache_flush_all */
RT_HIDDEN int rt_tcache_prepare(void);
RT_HIDDEN int rt_tcache_setup(void); /* set the calling thread up: 0 or ENOMEM */
RT_HIDDEN unsigned rt_tcache_limit(unsigned c);
RT_HIDDEN void rt_tcache_thread_exit(void *arg);
RT_HIDDEN void rt_tcache_fork_child(void); /* in the child of fork: see tcache.c */
/* A thread's counters as of now: its slow paths' plus its bins' (allocations,
 * frees and their bytes).  Any thread may call it on any live tcache; the
 * owner's fast paths keep counting meanwhile (reads are relaxed, per word). */
RT_HIDDEN void rt_tcache_counters(const struct rt_tcache *tc, struct rt_tcounters *out);
/* The calling thread's: add the bins' counts since the last fold to tc->fold,
 * for class c and one more in turn (c = 0: every class), and publish st +
 * fold to the thread's slot (rt_stats_publish_thread). */
RT_HIDDEN void rt_tcache_publish(struct rt_tcache *tc, unsigned c);
/* Blocks parked in the transfer rings (tcache.c), for tests and statistics. */
RT_HIDDEN size_t rt_tcache_xfer_blocks(void);
/* Every batch parked there back to its arena (before an allocation fails). */
RT_HIDDEN void rt_tcache_xfer_drain(void);
/* The calling thread's lists against T1: NULL, or what is broken. */
RT_HIDDEN const char *rt_tcache_check(void);

/* ---- pool.c, mlock.c, fork.c ------------------------------------------------
 * pool.c: rt_init, rt_init_lazy, rt_pool_grow, rt_pool_arena_for_thread;
 * mlock.c: rt_pool_stack_prefault; fork.c: the rest.  What they share among
 * themselves is in pool_int.h. */
RT_HIDDEN int rt_init(const struct rtalloc_config *cfg);
RT_HIDDEN int rt_init_lazy(void); /* rt_init(NULL), fatal when mlock is required and fails */
RT_HIDDEN int rt_pool_grow(struct rt_arena *a, unsigned order);
RT_HIDDEN void rt_pool_stack_prefault(size_t bytes);
RT_HIDDEN void rt_pool_fork_prepare(void);
RT_HIDDEN void rt_pool_fork_parent(void);
RT_HIDDEN void rt_pool_fork_child(void);
RT_HIDDEN void rt_pool_relock_child(void);
RT_HIDDEN struct rt_arena *rt_pool_arena_for_thread(void);

static inline bool rt_ready(void)
{
	return __atomic_load_n(&rt_g.init_state, __ATOMIC_ACQUIRE) == RT_INIT_DONE;
}

/* ---- stats.c ------------------------------------------------------------- */
struct rt_totals {
	size_t pool_bytes;     /* committed pool over all arenas */
	size_t free_bytes;     /* in the buddy allocators */
	size_t min_free_bytes; /* lowest free ever, summed over arenas */
	uint64_t grows, huge_allocs, foreign_frees;
};
RT_HIDDEN void rt_stats_totals(struct rt_totals *t);
RT_HIDDEN void rt_stats_init(void); /* after the pool is set up, before init is published */
RT_HIDDEN void rt_stats_init_done(uint64_t started_ns);
RT_HIDDEN void rt_stats_publish_arena(struct rt_arena *a); /* arena lock held */
RT_HIDDEN void rt_stats_thread_start(struct rt_tcache *tc);
/* Write the thread's counters, as its owner folded them (rt_tcache_publish),
 * to its slot: st + fold, and in_section.  Changes no counter. */
RT_HIDDEN void rt_stats_publish_thread(const struct rt_tcache *tc);
/* The exiting thread's last counters (rt_tcache_counters) to the exited totals. */
RT_HIDDEN void rt_stats_thread_exit(struct rt_tcache *tc, const struct rt_tcounters *last);
/* report.c reads a live thread's counters through the registry. */
RT_HIDDEN bool rt_stats_thread_read(unsigned slot, void (*read)(const struct rt_tcache *, struct rt_tcounters *),
				    struct rt_tcounters *c);
RT_HIDDEN void rt_stats_thread_faults(uint64_t *minflt, uint64_t *majflt); /* getrusage(RUSAGE_THREAD) */
RT_HIDDEN void rt_stats_fork_child(struct rt_tcache *tc); /* the forking thread's */
RT_HIDDEN void rt_stats_remove(void); /* unlink the region's file */
RT_HIDDEN void rt_stats_failure(void);
RT_HIDDEN void rt_stats_report_setup(void); /* at init: where RTALLOC_REPORT goes */
RT_HIDDEN void rt_stats_report(void);       /* at exit */
extern struct rt_stats_region *rt_stats RT_HIDDEN;

/* ---- profile.c: RTALLOC_PROFILE, RTALLOC_PROFILE_SAVE ----------------------
 * rt_profile_apply: at initialisation, after rt_options_read and before the
 * pool is sized (the paths, the file read and checked, the pool's size).
 * The others are profile.c's hooks for tcache.c and report.c. */
#define RT_PROFILE_BLOCKS_MAX 512 /* the most blocks of a class a profile fills in */
RT_HIDDEN void rt_profile_apply(struct rt_options *o, const struct rtalloc_config *cfg);
/* The calling thread's recorded peaks (its name is in the loaded profile):
 * true, want[c] blocks of class c (at most RT_PROFILE_BLOCKS_MAX). */
RT_HIDDEN bool rt_profile_wanted(uint32_t want[RT_NCLASS + 1]);
/* The thread's peaks to its name's record in the region (a system call: the
 * name); never on an allocation path. */
RT_HIDDEN void rt_profile_publish(struct rt_tcache *tc);
RT_HIDDEN void rt_profile_large(int delta); /* a huge block allocated (+1) or freed (-1) */
RT_HIDDEN void rt_profile_save(void);       /* at exit: RTALLOC_PROFILE_SAVE */
/* Bytes the loaded profile's threads cache at their peaks: a reserve beside
 * the cache budget for their raised limits (tcache.c), so that a pool sized
 * to the recorded peak still lets them fill. */
extern size_t rt_profile_cache_extra RT_HIDDEN;

/* ---- options.c ----------------------------------------------------------- */
RT_HIDDEN void rt_options_read(struct rt_options *o, const struct rtalloc_config *cfg);
RT_HIDDEN bool rt_parse_size(const char *s, size_t *out);
RT_HIDDEN const char *rt_options_env(const char *name); /* environ without getenv */
RT_HIDDEN size_t rt_options_default_max(size_t pool_size); /* RTALLOC_POOL_MAX unset */

/* ---- alloc.c: the malloc family, hidden, for the files that export it under
 * other names (interpose.c, cxx.c), and the slow paths' entry --------------- */
RT_HIDDEN void *rt_malloc_slow(size_t n);
RT_HIDDEN void rt_free_slow(void *p, const char *call);
RT_HIDDEN size_t rt_block_size(const void *p, const char *call);
RT_HIDDEN uint64_t rt_foreign_frees(void); /* frees of pointers not ours, counted */
RT_HIDDEN void *rt_calloc(size_t nmemb, size_t size);
RT_HIDDEN void *rt_realloc(void *p, size_t n);
RT_HIDDEN void *rt_reallocarray(void *p, size_t nmemb, size_t size);
RT_HIDDEN int rt_posix_memalign(void **memptr, size_t align, size_t size);
RT_HIDDEN void *rt_aligned_alloc(size_t align, size_t size);
RT_HIDDEN void *rt_memalign(size_t align, size_t size);
RT_HIDDEN void *rt_valloc(size_t size);
RT_HIDDEN void *rt_pvalloc(size_t size);
RT_HIDDEN size_t rt_usable_size(void *p);
RT_HIDDEN void rt_free_sized(void *p, size_t size);
RT_HIDDEN void rt_free_aligned_sized(void *p, size_t align, size_t size);
/* realloc of a pointer librtalloc did not hand out: aborts with a message
 * (its size cannot be known). */
RT_HIDDEN void *rt_realloc_foreign(void *p, size_t n);

/* ---- say.c: messages and fatal errors ------------------------------------ */
/* A line on stderr, "rtalloc: " and a printf-like subset: %s %d %u %zu %lu
 * %llu %x %p %%.  Formatted on the stack; never allocates; errno kept. */
RT_HIDDEN void rt_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
RT_HIDDEN size_t rt_vfmt(char *buf, size_t len, const char *fmt, va_list ap);
/* rt_vfmt with arguments: the length it needed (truncated to len - 1). */
RT_HIDDEN size_t rt_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "CALL(): WHAT P; aborting", then rt_die. */
RT_HIDDEN RT_NORETURN RT_COLD void rt_fatal(const char *call, const char *what, const void *p);
RT_HIDDEN RT_NORETURN RT_COLD void rt_assert_fail(const char *expr, const char *file, int line);
/* The end of every fatal path (rt_fatal, rt_assert_fail, the aborts of
 * pool.c, tcache.c, cxx.c): the hook set by rt_die_hook (pool.c's
 * initialisation: rt_stats_remove, the statistics file), then abort(). */
RT_HIDDEN RT_NORETURN RT_COLD void rt_die(void);
RT_HIDDEN void rt_die_hook(void (*fn)(void));

/* ---- privilege changes (interpose.c's set*uid wrappers) -------------------
 * The statistics file follows the real uid (stats.c), and before the process
 * loses the right to lock beyond RLIMIT_MEMLOCK, MCL_FUTURE is dropped when
 * what is locked already exceeds the limit (mlock.c: else every later
 * mapping fails). */
RT_HIDDEN bool rt_stats_file_owner(uid_t uid);
RT_HIDDEN bool rt_pool_lose_lock_right(uid_t new_euid);
RT_HIDDEN void rt_pool_regain_lock_right(void);
/* stats.c: "faults since init" count from now (the end of rtalloc_init). */
RT_HIDDEN void rt_stats_fault_baseline(void);

/* Every mutex librtalloc makes, with the attributes of flags: priority
 * inheritance (every lock a thread may wait for), robustness and sharing
 * between processes (heaps).  0 or an errno value. */
enum { RT_MUTEX_PI = 1, RT_MUTEX_ROBUST = 2, RT_MUTEX_SHARED = 4 };
RT_HIDDEN int rt_mutex_init(pthread_mutex_t *m, unsigned flags);
/* pthread_mutex_lock & co.: 0 or an errno value (EOWNERDEAD: a robust
 * mutex whose owner died, now held; rt_mutex_consistent repairs it). */
RT_HIDDEN int rt_mutex_lock(pthread_mutex_t *m);
RT_HIDDEN int rt_mutex_trylock(pthread_mutex_t *m);
RT_HIDDEN int rt_mutex_unlock(pthread_mutex_t *m);
RT_HIDDEN int rt_mutex_consistent(pthread_mutex_t *m);
RT_HIDDEN void rt_mutex_destroy(pthread_mutex_t *m);
/* Unlock a PI lock the calling thread holds; the one failure possible (in a
 * child of fork from a signal handler, after rt_lock_fork_child) makes the
 * lock anew, any other aborts. */
RT_HIDDEN void rt_mutex_unlock_checked(pthread_mutex_t *m);
RT_HIDDEN void rt_lock_fork_child(void);
/* rt_mutex_lock of a lock threads hold briefly (a heap's): a wait counted. */
RT_HIDDEN int rt_mutex_lock_counted(pthread_mutex_t *m);
/* The calling thread's waits for an arena or heap lock (lock.c writes, only
 * for its own thread; stats.c reads and publishes them, for the thread and
 * for readers through its registry): how many and the longest, since the
 * thread began, and the longest since tcache.c last reset recent_max_ns (at
 * each rtalloc_rt_begin; rtalloc_rt_end folds it and the section's count
 * into the thread's sect_lock_waits counters). */
struct rt_lock_waits {
	uint64_t waits, max_ns, recent_max_ns;
};
extern __thread struct rt_lock_waits rt_lock_waits __attribute__((tls_model("initial-exec"))) RT_HIDDEN;
/* For fork's handlers (lock.c): does the calling thread hold m, a PI mutex;
 * make it the owner of m, one just initialised (unlocked). */
RT_HIDDEN bool rt_mutex_mine(pthread_mutex_t *m);
RT_HIDDEN void rt_mutex_own(pthread_mutex_t *m);

#endif /* RT_H */
