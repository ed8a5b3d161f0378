/* SPDX-License-Identifier: MIT */
/*
 * os.h - the operating system as librtalloc uses it: every system call the
 * library makes is one function here, defined in os.c, and os.c is the only
 * object that references a system-call wrapper (tests/system/check_core.sh
 * checks every other object of the library).  What librtalloc asks of the
 * kernel can be read on this page.
 *
 * The contract common to every function, unless its entry says otherwise:
 *   - no allocation, no stdio, no getenv, no dlsym: callable while the
 *     allocator initialises, before libc is fully set up, and with any
 *     allocation lock held;
 *   - not a cancellation point: where glibc's wrapper is one (open, read,
 *     close, nanosleep, fcntl...), os.c makes the raw system call, so a
 *     thread that holds an allocator lock is never cancelled inside it;
 *   - async-signal-safe;
 *   - errno: a function returning -1, NULL or false leaves the kernel's
 *     errno; a function returning an errno value says so; the others
 *     preserve errno only where noted.
 * Entries marked [thread library] are glibc's pthread calls rather than
 * system calls; they are here so that the rest of the library stays free
 * of them too (the mutexes are lock.c's).
 */
#ifndef RT_OS_H
#define RT_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "rt.h"

/* The largest pool or reservation: 2^30 pages (4 TiB), so that the space's
 * pages, with each arena's slot rounded up to a power of two, stay below
 * RT_NIL / 2.  Larger sizes from the environment are refused as bad values. */
#define RT_POOL_CEIL ((size_t)1 << (30 + RT_PAGE_SHIFT))

/* ---- address space and memory --------------------------------------------- */

/* Reserve len bytes of address space: no access, no memory, not committed
 * (MAP_NORESERVE).  NULL on failure. */
RT_HIDDEN void *rt_os_reserve(size_t len);
/* The same at exactly p, if [p, p+len) is free; NULL otherwise (also on a
 * kernel before 4.17, which takes the address as a hint: unmapped again). */
RT_HIDDEN void *rt_os_reserve_at(void *p, size_t len);
/* The same with protection prot (PROT_*): what a reservation's tail had. */
RT_HIDDEN void *rt_os_reserve_at_prot(void *p, size_t len, int prot);
/* Fresh private read-write zeroed memory.  NULL on failure. */
RT_HIDDEN void *rt_os_map(size_t len);
/* len bytes read-write at an address where p + skew_off is a multiple of
 * align (a power of two): of fd, shared, or private anonymous when fd < 0.
 * NULL on failure (nothing left mapped). */
RT_HIDDEN void *rt_os_map_aligned(size_t len, size_t align, size_t skew_off, int fd);
/* The first len bytes of fd, shared, read-only.  NULL on failure. */
RT_HIDDEN void *rt_os_map_ro(int fd, size_t len);
/* 0 or -1. */
RT_HIDDEN int rt_os_unmap(void *p, size_t len);
/* Make part of a reservation readable and writable (commit): 0 or -1. */
RT_HIDDEN int rt_os_commit(void *p, size_t len);
/* Read-only (the descriptors beyond those in use): 0 or -1. */
RT_HIDDEN int rt_os_read_only(void *p, size_t len);
/* No access (a guard page): 0 or -1. */
RT_HIDDEN int rt_os_guard(void *p, size_t len);
/* Pre-fault [p, p+len) for writing: MADV_POPULATE_WRITE (Linux 5.14), else
 * a write to one byte of every page (the memory must be writable and its
 * content not yet in use).  0 or an errno value. */
RT_HIDDEN int rt_os_populate(void *p, size_t len);
/* Transparent huge pages for [p, p+len) (MADV_HUGEPAGE) or never
 * (MADV_NOHUGEPAGE): 0 or -1 (EINVAL: a kernel without them). */
RT_HIDDEN int rt_os_hugepages(void *p, size_t len, bool on);
/* Move the mapping [from, from+len) to `to`, replacing what was mapped
 * there (mremap MREMAP_FIXED).  0 or -1. */
RT_HIDDEN int rt_os_move_over(void *from, void *to, size_t len);
/* Bind [p, p+len) to NUMA node `node` (>= 0) or interleave it over the
 * nodes of mask (node < 0), before it is first touched: 0 or -1.  The system
 * call itself, never libnuma (whose constructor allocates and exit()s when
 * that fails; librtalloc does not link it). */
RT_HIDDEN int rt_os_mbind(void *p, size_t len, int node, unsigned long mask);

/* ---- locking memory in RAM ---------------------------------------------------- */

/* mlockall(flags), flags of MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT: 0 or -1. */
RT_HIDDEN int rt_os_mlockall(int flags);
RT_HIDDEN int rt_os_munlockall(void);
RT_HIDDEN int rt_os_mlock(void *p, size_t len);
RT_HIDDEN int rt_os_munlock(void *p, size_t len);

/* ---- files ---------------------------------------------------------------------- */

/* open(2) with O_CLOEXEC added: a descriptor or -1. */
RT_HIDDEN int rt_os_open(const char *path, int flags, mode_t mode);
RT_HIDDEN void rt_os_close(int fd); /* errno preserved */
/* Read at most len-1 bytes of path into buf, NUL-terminated: the length,
 * or -1 when it cannot be opened.  Bounded by len. */
RT_HIDDEN long rt_os_read_file(const char *path, char *buf, size_t len);
/* Write all of buf to fd, retrying after EINTR and short writes: 0, or -1
 * at the first failure.  errno preserved. */
RT_HIDDEN int rt_os_write_all(int fd, const void *buf, size_t len);
/* read(2) and pread(2), retried after EINTR: the bytes read, 0 at the end,
 * or -1. */
RT_HIDDEN long rt_os_read(int fd, void *buf, size_t len);
RT_HIDDEN long rt_os_pread(int fd, void *buf, size_t len, uint64_t off);
RT_HIDDEN int rt_os_fstat(int fd, struct stat *st);
RT_HIDDEN long long rt_os_fd_size(int fd); /* st_size, or -1 */
RT_HIDDEN int rt_os_ftruncate(int fd, size_t len);
RT_HIDDEN int rt_os_fchmod(int fd, mode_t mode);
RT_HIDDEN bool rt_os_exists(const char *path);
RT_HIDDEN int rt_os_stat(const char *path, struct stat *st);
RT_HIDDEN int rt_os_lstat(const char *path, struct stat *st); /* the link itself */
RT_HIDDEN int rt_os_unlink(const char *path);
RT_HIDDEN int rt_os_rename(const char *from, const char *to);
RT_HIDDEN int rt_os_lchown(const char *path, uid_t uid); /* the group unchanged */
/* Reserve the blocks of [0, len) of fd now (fallocate mode 0): 0 or -1
 * (ENOSPC on a full filesystem, before any write can fault). */
RT_HIDDEN int rt_os_fallocate(int fd, size_t len);
/* Is the directory path, or the open file fd, on a tmpfs (memory: no disk
 * I/O under a write to a mapping of it)? */
RT_HIDDEN bool rt_os_on_tmpfs(const char *path);
RT_HIDDEN bool rt_os_fd_on_tmpfs(int fd);
/* A duplicate of fd, close-on-exec, numbered at least min: a descriptor or -1. */
RT_HIDDEN int rt_os_dup_above(int fd, int min);
/* The first len bytes of fd, shared, read-write.  NULL on failure. */
RT_HIDDEN void *rt_os_map_shared(int fd, size_t len);
/* Shared memory objects "/name" (in /dev/shm), O_CLOEXEC | O_NOFOLLOW
 * added: a descriptor or -1.  [libc: shm_open builds the path on the stack] */
RT_HIDDEN int rt_os_shm_open(const char *name, int flags, mode_t mode);
RT_HIDDEN int rt_os_shm_unlink(const char *name);

/* ---- time ---------------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds (the vDSO: no system call on x86-64). */
RT_HIDDEN uint64_t rt_os_now_ns(void);
/* CLOCK_MONOTONIC as a timespec (absolute deadlines of futex waits). */
RT_HIDDEN void rt_os_now(struct timespec *ts);
/* Sleep ns nanoseconds (an interrupted sleep is not resumed). */
RT_HIDDEN void rt_os_sleep_ns(long ns);
/* Give the CPU to another runnable thread. */
RT_HIDDEN void rt_os_yield(void);

/* ---- futexes --------------------------------------------------------------------- */

/* Wait while *word == val, until woken or the CLOCK_MONOTONIC time abs
 * (NULL: no limit); shared: the word is in memory shared between
 * processes (no FUTEX_PRIVATE_FLAG).  Returns 0 (woken, or *word != val),
 * ETIMEDOUT or EINTR. */
RT_HIDDEN int rt_os_futex_wait(uint32_t *word, uint32_t val, const struct timespec *abs, bool shared);
RT_HIDDEN void rt_os_futex_wake(uint32_t *word, int n, bool shared);

/* ---- processes, threads, identity --------------------------------------------- */

RT_HIDDEN int rt_os_getpid(void);
RT_HIDDEN int rt_os_gettid(void);
/* The calling thread's name (prctl PR_GET_NAME: the kernel's comm, at most
 * 15 bytes), NUL-terminated; "" when it cannot be read.  errno preserved. */
RT_HIDDEN void rt_os_thread_name(char name[16]);
/* Does process pid still exist (kill(pid, 0))?  errno preserved. */
RT_HIDDEN bool rt_os_pid_alive(int pid);
RT_HIDDEN uid_t rt_os_uid(void);
RT_HIDDEN uid_t rt_os_euid(void);
/* Is gid the caller's effective group or one of its (at most 256 looked
 * at) supplementary groups? */
RT_HIDDEN bool rt_os_in_group(gid_t gid);
/* The calling thread's SCHED_FIFO/SCHED_RR priority, 0 for other policies.
 * [thread library] */
RT_HIDDEN int rt_os_thread_prio(void);
/* The NUMA node the calling thread runs on (getcpu: the vDSO on x86-64);
 * 0 when unknown. */
RT_HIDDEN int rt_os_node(void);
RT_HIDDEN int rt_os_getrlimit(int resource, struct rlimit *rl);
RT_HIDDEN int rt_os_getrusage_thread(struct rusage *ru); /* RUSAGE_THREAD */
RT_HIDDEN int rt_os_getrusage_self(struct rusage *ru);   /* RUSAGE_SELF */
/* The filesystem uid of the calling thread only (setfsuid): the previous one. */
RT_HIDDEN uid_t rt_os_setfsuid(uid_t uid);
/* End the process at once (exit status code), no handlers run. */
RT_HIDDEN RT_NORETURN void rt_os_exit_now(int code);
/* SIGABRT: the end of every fatal path (say.c's rt_die). */
RT_HIDDEN RT_NORETURN void rt_os_abort(void);

/* [thread library] once-only initialisation, thread-exit destructors and
 * fork handlers: 0 or an errno value.  rt_os_atfork is the one function
 * here that may allocate (glibc keeps fork handlers in a growable array):
 * pool.c calls it once the pool can serve, heap.c at the first heap. */
RT_HIDDEN int rt_os_once(pthread_once_t *once, void (*fn)(void));
RT_HIDDEN int rt_os_key_create(pthread_key_t *key, void (*destructor)(void *));
RT_HIDDEN void rt_os_key_delete(pthread_key_t key);
/* Set the calling thread's value of key.  No allocation for the first 32
 * keys of a process (glibc's slots inside the thread descriptor): pool.c
 * creates its key at initialisation, before a program can create many. */
RT_HIDDEN void rt_os_key_set(pthread_key_t key, const void *value);
RT_HIDDEN int rt_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* [thread library] The calling thread's stack, [*lo, *lo + *len): 0 or an
 * errno value.  Not for the main thread (glibc reads /proc/self/maps for
 * it, with stdio and malloc): callers ask only in other threads; for those,
 * glibc's pthread_getattr_np allocates nothing but the attribute's CPU set,
 * which stays unset. */
RT_HIDDEN int rt_os_thread_stack(void **lo, size_t *len);
/* The kernel's page size (sysconf(_SC_PAGESIZE): from the auxiliary vector). */
RT_HIDDEN size_t rt_os_page_size(void);

/* ---- perf events (RTALLOC_FAULTS=locate, faults.c) ---------------------------- */

/* perf_event_open(attr, the calling thread, any CPU, no group, CLOEXEC): a
 * descriptor or -1. */
RT_HIDDEN int rt_os_perf_open(void *attr);
/* ioctl(fd, PERF_EVENT_IOC_ENABLE): 0 or -1. */
RT_HIDDEN int rt_os_perf_enable(int fd);

/* ---- randomness ------------------------------------------------------------------ */

/* 64 random bits: getrandom(GRND_NONBLOCK), else the clock and the address
 * of a local (early boot, a seccomp filter). */
RT_HIDDEN uint64_t rt_os_random(void);

#endif /* RT_OS_H */
