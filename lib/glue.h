/* SPDX-License-Identifier: MIT */
/*
 * glue.h - everything librtalloc takes from the operating system and libc.
 *
 * The allocator core (buddy.c, arena.c) never includes this file: it works
 * on memory it is handed.  The files that do (pool.c, limits.c, mlock.c,
 * fork.c, lock.c, stats.c, options.c, the heap files, interpose.c) call the
 * OS mostly through these functions, so what librtalloc asks of the kernel
 * can be read in one page (some calls are still made where they are used:
 * moving them here is the next step of the OS boundary).
 *
 * Everything here is safe before libc is fully initialised and while the
 * allocator initialises: thin system-call wrappers, no malloc, no stdio, no
 * getenv, no dlsym.  Messages are formatted on the stack and written with
 * write(2).
 */
#ifndef RT_GLUE_H
#define RT_GLUE_H

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* The largest pool or reservation: 2^30 pages (4 TiB), so that the space's
 * pages, with each arena's slot rounded up to a power of two, stay below
 * RT_NIL / 2.  Larger sizes from the environment are refused as bad values. */
#define RT_POOL_CEIL ((size_t)1 << (30 + RT_PAGE_SHIFT))

/* Reserve address space: no access, no memory, not counted as committed. */
static inline void *rt_os_reserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The same at exactly p, if that range is free; NULL otherwise. */
static inline void *rt_os_reserve_at(void *p, size_t len)
{
	void *q = mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
		       -1, 0);
	if (q == MAP_FAILED)
		return NULL;
	if (q != p) { /* a kernel before 4.17 took the address as a hint only */
		munmap(q, len);
		return NULL;
	}
	return q;
}

/* Map fresh read-write memory (descriptors). */
static inline void *rt_os_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static inline int rt_os_unmap(void *p, size_t len) { return munmap(p, len); }

/* Make part of a reservation usable. */
static inline int rt_os_commit(void *p, size_t len)
{
	return mprotect(p, len, PROT_READ | PROT_WRITE);
}

static inline int rt_os_mlockall(void) { return mlockall(MCL_CURRENT | MCL_FUTURE); }
static inline int rt_os_mlock(void *p, size_t len) { return mlock(p, len); }
static inline int rt_os_munlock(void *p, size_t len) { return munlock(p, len); }

/* Bind [p, p+len) to a NUMA node (node >= 0) or interleave it over the
 * nodes of mask (node < 0), before it is first touched.  Returns 0 or -1.
 * The system call itself, never libnuma: libnuma's constructor allocates and
 * ends the program (exit(1), "Out of memory allocating bitmask") when that
 * allocation fails, which a library loaded into every process must not
 * bring along; librtalloc does not link it. */
static inline int rt_os_mbind(void *p, size_t len, int node, unsigned long mask)
{
	enum { MPOL_BIND_ = 2, MPOL_INTERLEAVE_ = 3 };
	unsigned long m = node >= 0 ? 1UL << node : mask;
	int mode = node >= 0 ? MPOL_BIND_ : MPOL_INTERLEAVE_;
	return (int)syscall(SYS_mbind, p, len, mode, &m, sizeof(m) * 8, 0);
}

/* The NUMA node the calling thread runs on (getcpu: the vDSO on x86-64). */
static inline int rt_os_node(void)
{
	unsigned cpu = 0, node = 0;
	if (getcpu(&cpu, &node) != 0)
		return 0;
	return (int)node;
}

static inline uint64_t rt_os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Read at most len-1 bytes of a file into buf, NUL-terminated.  -1 on error. */
RT_HIDDEN long rt_os_read_file(const char *path, char *buf, size_t len);

/* Pre-fault [p, p+len) for writing: MADV_POPULATE_WRITE, else a touch loop.
 * Returns 0 or an errno value. */
RT_HIDDEN int rt_os_populate(void *p, size_t len);

/* 64 random bits (getrandom, else the clock and the address of a local). */
RT_HIDDEN uint64_t rt_os_random(void);

/* A line on stderr, "rtalloc: " and a printf-like subset: %s %d %u %zu %lu
 * %llu %x %p %%.  Formatted on the stack; never allocates. */
RT_HIDDEN void rt_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
RT_HIDDEN size_t rt_vfmt(char *buf, size_t len, const char *fmt, va_list ap);

/* The end of every fatal path (rt_fatal, rt_assert_fail, the aborts of
 * pool.c, tcache.c, cxx.c): removes the statistics file, then abort(). */
RT_HIDDEN RT_NORETURN RT_COLD void rt_die(void);

/* Add "NAME=value" (a static string) to the environment the process hands to
 * the programs it starts.  Once per process; no allocation. */
RT_HIDDEN void rt_env_add(char *entry);

/* Privilege changes (interpose.c's set*uid wrappers): the statistics file
 * follows the real uid (stats.c), and before the process loses the right to
 * lock beyond RLIMIT_MEMLOCK, MCL_FUTURE is dropped when what is locked
 * already exceeds the limit (mlock.c: else every later mapping fails). */
RT_HIDDEN bool rt_stats_file_owner(uid_t uid);
RT_HIDDEN bool rt_pool_lose_lock_right(uid_t new_euid);
RT_HIDDEN void rt_pool_regain_lock_right(void);

/* stats.c: "faults since init" count from now (the end of rtalloc_init). */
RT_HIDDEN void rt_stats_fault_baseline(void);

/* ---- heaps (heap*.c) ----------------------------------------------------- */

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/stat.h>

/* Wait while *word == val, until woken or the CLOCK_MONOTONIC time abs
 * (NULL: no limit).  Without FUTEX_PRIVATE_FLAG when the word is in memory
 * shared between processes.  Returns 0 (woken, or *word != val: EAGAIN is
 * folded into 0), ETIMEDOUT or EINTR. */
static inline int rt_os_futex_wait(uint32_t *word, uint32_t val, const struct timespec *abs, bool shared)
{
	int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
	if (syscall(SYS_futex, word, op, val, abs, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return errno == EAGAIN ? 0 : errno;
}

static inline void rt_os_futex_wake(uint32_t *word, int n, bool shared)
{
	syscall(SYS_futex, word, FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG), n, NULL, NULL, 0);
}

/* Shared memory objects ("/name"): a descriptor or -1 with errno. */
static inline int rt_os_shm_open(const char *name, int flags, mode_t mode)
{
	return shm_open(name, flags | O_CLOEXEC | O_NOFOLLOW, mode);
}
static inline int rt_os_shm_unlink(const char *name) { return shm_unlink(name); }
static inline int rt_os_ftruncate(int fd, size_t len) { return ftruncate(fd, (off_t)len); }
static inline long long rt_os_fd_size(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (long long)st.st_size : -1;
}
static inline void rt_os_close(int fd) { close(fd); }
static inline int rt_os_fstat(int fd, struct stat *st) { return fstat(fd, st); }
static inline int rt_os_fchmod(int fd, mode_t mode) { return fchmod(fd, mode); }
/* The first len bytes of fd, shared, read-only; NULL on failure. */
static inline void *rt_os_map_ro(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}
/* No access to [p, p+len) any more (a guard page): 0 or -1. */
static inline int rt_os_guard(void *p, size_t len) { return mprotect(p, len, PROT_NONE); }
static inline bool rt_os_exists(const char *path) { return access(path, F_OK) == 0; }
static inline uid_t rt_os_euid(void) { return geteuid(); }
/* Is gid the caller's effective group or one of its supplementary groups? */
static inline bool rt_os_in_group(gid_t gid)
{
	if (gid == getegid())
		return true;
	gid_t g[256];
	int n = getgroups(256, g);
	for (int i = 0; i < n; i++) /* bound: 256 groups */
		if (g[i] == gid)
			return true;
	return false;
}

/* Map len bytes (of fd, shared, or anonymous private memory when fd < 0)
 * read-write at an address where p + skew_off is aligned to align (a power
 * of two).  NULL on failure. */
static inline void *rt_os_map_aligned(size_t len, size_t align, size_t skew_off, int fd)
{
	size_t extra = align > RT_PAGE_SIZE ? align : 0;
	char *raw = mmap(NULL, len + extra, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t at = (uintptr_t)raw;
	if (extra)
		at = (((uintptr_t)raw + skew_off + align - 1) & ~(uintptr_t)(align - 1)) - skew_off;
	if (at < (uintptr_t)raw)
		at += align;
	int fl = MAP_FIXED | (fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS);
	void *p = mmap((void *)at, len, PROT_READ | PROT_WRITE, fl, fd, 0);
	if (p == MAP_FAILED) {
		munmap(raw, len + extra);
		return NULL;
	}
	if (at > (uintptr_t)raw)
		munmap(raw, at - (uintptr_t)raw);
	if ((uintptr_t)raw + len + extra > at + len)
		munmap((void *)(at + len), (uintptr_t)raw + len + extra - (at + len));
	return p;
}

static inline void rt_os_sleep_ns(long ns)
{
	struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
	nanosleep(&ts, NULL);
}

/* Does process pid still exist?  (Recovery of a shared heap's waiters.) */
static inline bool rt_os_pid_alive(int pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

static inline int rt_os_getpid(void) { return (int)getpid(); }

/* The calling thread's real-time priority (0 for SCHED_OTHER & co.). */
static inline int rt_os_thread_prio(void)
{
	struct sched_param sp;
	int policy;
	if (pthread_getschedparam(pthread_self(), &policy, &sp) != 0)
		return 0;
	return policy == SCHED_FIFO || policy == SCHED_RR ? sp.sched_priority : 0;
}

/* ---- fork (fork.c's pthread_atfork handlers) ------------------------------
 * glibc's fork() runs the pthread_atfork prepare handlers first and, when the
 * process has more than one thread (__libc_single_threaded false, read by
 * fork itself), then takes libc's lock on its list of FILEs (_IO_list_lock)
 * and only after it its own malloc's locks: a thread that holds the list
 * lock (fflush(NULL)) waits for FILE locks, whose holders (getline) call
 * realloc, so the list lock must come before any allocator lock.  Our arena
 * locks are taken in a prepare handler, before fork's list lock; to keep
 * glibc's order, the prepare handler takes the list lock itself, first,
 * under the same condition as fork.  The lock is recursive (an owner and a
 * count): fork's own _IO_list_lock() nests in ours.  In the parent, fork
 * drops its count before the parent handlers run, and ours drops the last;
 * in the child, fork resets the lock (_IO_list_resetlock) before the child
 * handlers run, so the child handler leaves it alone.  In a single-threaded
 * process fork takes and resets nothing, and neither do we.  The three
 * functions are exported by glibc (GLIBC_2.2.5) but declared in no public
 * header since 2.28. */
#include <linux/futex.h>
#include <sys/single_threaded.h>

extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

static inline bool rt_libc_fork_locks_stdio(void) { return !__libc_single_threaded; }
static inline void rt_libc_stdio_lock(void) { _IO_list_lock(); }
static inline void rt_libc_stdio_unlock(void) { _IO_list_unlock(); }

/* Move the mapping [from, from+len) to `to`, replacing what was mapped
 * there (the child of fork gives its statistics a private copy at the same
 * address).  0 or -1. */
static inline int rt_os_move_over(void *from, void *to, size_t len)
{
	return mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) == to ? 0 : -1;
}

#endif /* RT_GLUE_H */
