/* SPDX-License-Identifier: MIT */
/*
 * stats.h - the statistics region: its layout (shared with tools/rtalloc-stat,
 * which maps it read-only from another process) and the library's writers.
 *
 * One region per process: a file rtalloc-<uid>-<pid>.stats in
 * $XDG_RUNTIME_DIR (else /dev/shm), created 0600 with O_EXCL and
 * O_NOFOLLOW, mapped shared, pre-faulted and locked, then made read-only on
 * disk (0400: nobody truncates it under us), removed at exit.  With
 * RTALLOC_STATS=0, or when it cannot be created, the same layout lives in
 * private memory and only rtalloc_stats() reads it.
 *
 * Synchronization table
 *   field                   writer                         reader
 *   header (magic..init_*)  rt_init, before publication    anyone, after magic
 *   arenas[i]               holder of arena i's lock,      seqlock: retry while
 *                           seq odd while writing          seq is odd or changed
 *   slots[i]                the thread owning the slot     seqlock, as above
 *                           (only it), seq odd meanwhile
 *   exited, exit_seq        an exiting thread, under       seqlock on exit_seq
 *                           stats_lock (PI)
 *   slot_map                threads claiming/releasing     rtalloc_stats() (which
 *                           slots (atomic bit operations)  records to look at)
 *   faults.places[i]        any thread at rtalloc_rt_end   word reads (relaxed),
 *                           (CAS of key, atomic adds)      count 0: skipped
 * Every counter only grows (4.4BSD's kmemstats); a reader sums them.  A
 * writer never waits for a reader: a reader that keeps losing the race gives
 * up after a bounded number of retries and reports the last copy.
 *
 * The flow is one direction: counted by their owner, folded once, exported
 * here, read by one reader.  A thread's counters (tcounters.h) are plain TLS
 * increments: the fast paths count blocks in the bin of their class (struct
 * rt_bin: allocs, frees), the slow paths and real-time sections in
 * rt_tcache.st (tcache.c); rt_tcache_counters() sums them and derives the
 * bytes.  They reach the thread's slot when the thread publishes: at every
 * refill and flush (the slow paths; rt_tcache_publish folds the bins of that
 * class and of one more, in turn, into rt_tcache.fold: constant cost, then
 * stats.c writes st + fold to the slot), and in full at
 * rtalloc_rt_begin/end() and thread exit; its lock waits, which lock.c
 * counts in the thread's own record (rt_lock_waits), stats.c copies in at
 * each publish, at exit and for a reader (the registry names the record
 * too).  Arenas' counters are counted
 * under their lock and written to their record by the lock's holder.  Every
 * reader (rtalloc_stats(), rtalloc-stat) goes through statread.c, which
 * checks the header, sums the arenas and threads and keeps the exit_seq
 * window; nothing read flows back into a counter.  The region (what other processes
 * see) is thus exact for slow-path events and, for malloc/free counts and
 * bytes, as of the last publish of each class.
 *
 * In the process, rtalloc_stats() reads live threads' counters directly from
 * their tcaches, through the registry of live threads (stats.c): record i
 * names the tcache of the thread holding slot i.
 *   record i (tcache pointer)   its thread, at start and       the record's lock
 *                               at exit, under the record's    (PI), held for one
 *                               lock (PI)                      tcache's read
 *   a tcache's counters         its own thread (plain adds)    word reads (relaxed)
 * An exiting thread clears its record under the record's lock, so no reader
 * is left holding a pointer into its TLS; it waits at most for one reader's
 * read of its counters (a constant, priority-inherited).  The clearing and
 * the move of its counts to exited share one exit_seq window.
 */
#ifndef RT_STATS_H
#define RT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "tcounters.h"

#define RT_STATS_MAGIC 0x3153434f4c4c4154ULL /* "TALLOCS1" little-endian */
#define RT_STATS_VERSION 2 /* 2: lock waits in the counters: slots of 192 bytes */
#define RT_STATS_SLOTS 1024
#define RT_STATS_ARENAS 8
#define RT_STATS_CLASSES 14 /* 0, classes 1..12, huge */

struct rt_stats_slot { /* 192 bytes */
	uint32_t seq;  /* odd while its thread writes */
	int32_t tid;   /* 0: free */
	uint32_t in_section; /* inside a real-time section */
	uint32_t pad0;
	struct rt_tcounters c;
	uint64_t pad[24 - 2 - sizeof(struct rt_tcounters) / 8];
};

struct rt_stats_arena { /* written under the arena's lock */
	uint32_t seq;
	int32_t node;
	uint64_t pool_bytes, max_bytes, free_bytes, min_free_bytes;
	uint64_t grows, last_grow_ns, failed, refills, flushes, huge_allocs, huge_frees;
	/* class c: small classes count pages, cached classes and huge count blocks */
	uint64_t class_units[RT_STATS_CLASSES];
};

#define RT_STATS_HEAPS 16
#define RT_STATS_HEAP_USED 0x80000000u /* in flags: the record describes a heap */
#define RT_STATS_HEAP_SHARED 0x1u /* in flags: RTALLOC_HEAP_SHARED */
#define RT_STATS_HEAP_PRIO 0x2u   /* in flags: RTALLOC_HEAP_PRIO */
#define RT_STATS_HEAP_GROW 0x4u   /* in flags: RTALLOC_HEAP_GROW */

struct rt_stats_heap { /* written under the heap's lock, seqlock as the others */
	uint32_t seq;
	uint32_t flags; /* RTALLOC_HEAP_* | RT_STATS_HEAP_USED; 0: unused */
	char name[64];  /* not NUL-terminated when 64 characters long */
	uint64_t size, free, min_free, largest_free, live_blocks, waiters;
};

/* A shared heap's object (/dev/shm/rtalloc-heap-<name>) carries the same
 * record at this offset from its start, published by whichever process holds
 * the heap's lock: rtalloc-stat reads a shared heap's figures there, as of
 * the last operation of any process (heap.c, heap_int.h's struct rt_heap_hdr). */
#define RT_HEAP_FIG_OFFSET 16
#define RT_HEAP_SHM_PREFIX "/rtalloc-heap-"

/* ---- located faults (RTALLOC_FAULTS=locate, lib/faults.c) ---------------------
 *
 * Page faults a thread took inside its real-time sections, by code address:
 * place i is claimed by one compare-and-swap of its key (0: free) and then
 * counted with atomic adds, by the faulting thread after its section
 * (rtalloc_rt_end).  No seqlock: every word is read whole, a place whose
 * count is still 0 is skipped, counts only grow.  Readers (the exit report,
 * rtalloc-stat) name the function from the symbol tables and the memory from
 * /proc/PID/maps (lib/faults_sym.c).
 *   key   the code address (bits 0..47), the kind of memory as the thread
 *         saw it (bits 56..57: RT_FK_*) and, for RT_FK_MAPPED, bits 24..31
 *         of the data address (bits 48..55), so that one instruction that
 *         faults in two mappings usually takes two places;
 *   addr  the first data address that took the place (to look up its kind);
 *   count faults;  tid  the first thread. */
#define RT_FAULTS_VERSION 1
#define RT_FAULTS_PLACES 256
#define RT_FAULTS_IP_MASK ((1ULL << 48) - 1)
#define RT_FAULTS_KIND_SHIFT 56
enum {
	RT_FK_MAPPED = 0, /* look the data address up in the maps */
	RT_FK_STACK = 1,  /* the faulting thread's own stack (its bounds) */
	RT_FK_POOL = 2,   /* librtalloc's pool: the heap */
};
enum {
	RT_FAULTS_OFF = 0,         /* RTALLOC_FAULTS unset or 0 */
	RT_FAULTS_ON = 1,          /* locating */
	RT_FAULTS_UNAVAILABLE = 2, /* perf_event_open refused: error says why */
};
struct rt_fault_place {
	uint64_t key, addr, count, tid;
};
struct rt_stats_faults {
	uint32_t version; /* RT_FAULTS_VERSION */
	uint32_t state;   /* RT_FAULTS_* */
	int32_t error;    /* errno of the refusal (RT_FAULTS_UNAVAILABLE) */
	uint32_t threads; /* threads that opened their event, only grows */
	uint64_t located; /* faults counted in places */
	uint64_t unlocated; /* in sections but not in a place: taken in the kernel, the ring full, the table full */
	uint64_t no_ring;   /* threads whose ring could not be mapped (the perf locked-memory budget) */
	uint64_t reserved[4];
	struct rt_fault_place places[RT_FAULTS_PLACES];
};

/* ---- the recorded profile (RTALLOC_PROFILE_SAVE, rtalloc-stat --profile) -------
 *
 * Per thread name, the most blocks of each cached class the threads of that
 * name needed in their cache at once (lib/profile.c says how it is measured),
 * and the process's large (huge) blocks live at once.  A record is claimed
 * by one compare-and-swap of state (0 -> 1), named, then published
 * (state 2); its peaks only grow, by atomic compare-and-swap maxima, written
 * by the threads of that name when they publish (rtalloc_thread_prepare,
 * rtalloc_rt_end after a refill, thread exit, process exit).  No seqlock:
 * every word is read whole; two records of one name (a race to claim) are
 * merged by the readers (their maximum). */
#define RT_PROFILE_VERSION 1
#define RT_PROFILE_THREADS 32
#define RT_PROFILE_CLASSES 18 /* index c = class 1 .. 17 (16 B .. 1 MiB); 0 unused */
#define RT_PROFILE_NAME 16    /* the kernel's thread names: 15 bytes and a NUL */
enum { RT_PROF_FREE = 0, RT_PROF_CLAIMED = 1, RT_PROF_NAMED = 2 };
struct rt_stats_pthread { /* 96 bytes */
	uint32_t state; /* RT_PROF_* */
	uint32_t pad;
	char name[RT_PROFILE_NAME]; /* NUL-terminated once state is RT_PROF_NAMED */
	uint32_t peak[RT_PROFILE_CLASSES];
};
struct rt_stats_profile {
	uint32_t version; /* RT_PROFILE_VERSION */
	uint32_t pad;
	uint64_t large_live; /* huge blocks live now (atomic adds) */
	uint64_t large_peak; /* the most live at once, only grows */
	uint64_t reserved[5];
	struct rt_stats_pthread threads[RT_PROFILE_THREADS];
};
_Static_assert(sizeof(struct rt_stats_pthread) == 96, "profile records are read in words");

struct rt_stats_region {
	uint64_t magic;     /* RT_STATS_MAGIC once the header is complete */
	uint32_t version;   /* RT_STATS_VERSION */
	uint32_t size;      /* sizeof(struct rt_stats_region) */
	int32_t pid;
	uint32_t nslots, narenas;
	uint32_t flags;     /* RT_STATS_F_* */
	uint64_t init_ns;   /* CLOCK_MONOTONIC when initialisation ended */
	uint64_t init_duration_ns;
	uint64_t init_minflt, init_majflt; /* process faults when initialisation ended */
	uint64_t pool_size, pool_max;      /* options */
	uint32_t exit_seq;
	uint32_t pad0;
	struct rt_tcounters exited; /* totals left by exited threads */
	uint64_t threads_exited, threads_unslotted, foreign_frees;
	uint64_t last_failure_ns;
	uint64_t reserved[16];
	struct rt_stats_arena arenas[RT_STATS_ARENAS];
	uint64_t slot_map[RT_STATS_SLOTS / 64];
	struct rt_stats_slot slots[RT_STATS_SLOTS];
	/* Appended (readers of the layout before heaps stop at slots[]; the
	 * region's size says whether these are there): the process's heaps,
	 * registry slots 0 .. RT_STATS_HEAPS - 1 (heap.c). */
	struct rt_stats_heap heaps[RT_STATS_HEAPS];
	/* Appended after heaps (a region of the layout before ends at faults:
	 * RT_STATS_REGION_V2_SIZE): located faults. */
	struct rt_stats_faults faults;
	/* Appended after faults (a region of the layout before ends at profile:
	 * RT_STATS_REGION_V3_SIZE): what the program needed (lib/profile.c). */
	struct rt_stats_profile profile;
};

enum {
	RT_STATS_F_LOCKED = 1,      /* mlockall succeeded */
	RT_STATS_F_USER_MEMORY = 2, /* pool in caller memory */
	RT_STATS_F_EXPORTED = 4,    /* the region is a file others can map */
};

_Static_assert(sizeof(struct rt_stats_slot) == 192, "slot layout");
_Static_assert(sizeof(struct rt_stats_heap) % 8 == 0, "heap records are read in words");
/* A region of the layout before heaps ends here. */
#define RT_STATS_REGION_V1_SIZE offsetof(struct rt_stats_region, heaps)
/* A region of the layout before located faults ends here. */
#define RT_STATS_REGION_V2_SIZE offsetof(struct rt_stats_region, faults)
_Static_assert(sizeof(struct rt_stats_faults) % 8 == 0, "the faults part is read in words");
/* A region of the layout before the profile ends here. */
#define RT_STATS_REGION_V3_SIZE offsetof(struct rt_stats_region, profile)
_Static_assert(sizeof(struct rt_tcounters) <= 21 * 8, "counters fit a slot (21 words at most)");

/* Seqlock writer (one writer per record: its owner, or its lock's holder):
 * the sequence is odd while the record's words change. */
static inline void rt_seq_write_begin(uint32_t *seq)
{
	__atomic_store_n(seq, *seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void rt_seq_write_end(uint32_t *seq) { __atomic_store_n(seq, *seq + 1, __ATOMIC_RELEASE); }

/* One word of a record, as a whole (readers copy concurrently). */
#define RT_SEQ_PUT(dst, v) __atomic_store_n(&(dst), (v), __ATOMIC_RELAXED)

/* Seqlock read of n bytes at src into dst: 0, or -1 when the writer kept
 * writing (bounded retries).  Used by the library and by rtalloc-stat. */
static inline int rt_seq_read(const uint32_t *seq, void *dst, const void *src, size_t n)
{
	const uint64_t *from = (const uint64_t *)src;
	uint64_t *to = (uint64_t *)dst;
	for (int tries = 0; tries < 1000; tries++) { /* bound: 1000 retries */
		uint32_t s1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		for (size_t i = 0; i < n / 8; i++)
			to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(s1 & 1) && __atomic_load_n(seq, __ATOMIC_RELAXED) == s1)
			return 0;
	}
	return -1; /* dst holds the last, possibly torn, copy */
}

#endif /* RT_STATS_H */
