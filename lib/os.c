/* SPDX-License-Identifier: MIT */
/*
 * os.c - the system calls of librtalloc, one function each; the contract of
 * every function is in os.h.  Where glibc's wrapper is a cancellation point
 * the raw system call is made instead (syscall(2) is not one).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdio.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* ---- address space and memory ---- */

void *rt_os_reserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void *rt_os_reserve_at(void *p, size_t len) { return rt_os_reserve_at_prot(p, len, PROT_NONE); }

void *rt_os_reserve_at_prot(void *p, size_t len, int prot)
{
	void *q = mmap(p, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (q == MAP_FAILED)
		return NULL;
	if (q != p) { /* a kernel before 4.17 took the address as a hint only */
		munmap(q, len);
		return NULL;
	}
	return q;
}

void *rt_os_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void *rt_os_map_aligned(size_t len, size_t align, size_t skew_off, int fd)
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

void *rt_os_map_ro(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

int rt_os_unmap(void *p, size_t len) { return munmap(p, len); }
int rt_os_commit(void *p, size_t len) { return mprotect(p, len, PROT_READ | PROT_WRITE); }
int rt_os_read_only(void *p, size_t len) { return mprotect(p, len, PROT_READ); }
int rt_os_guard(void *p, size_t len) { return mprotect(p, len, PROT_NONE); }

int rt_os_populate(void *p, size_t len)
{
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS) /* ENOMEM, EFAULT...: a real failure */
		return errno;
	/* Kernels before 5.14: touch one byte of every page. */
	volatile char *c = p;
	for (size_t off = 0; off < len; off += RT_PAGE_SIZE) /* bound: len / page */
		c[off] = 0;
	return 0;
}

int rt_os_hugepages(void *p, size_t len, bool on)
{
	return madvise(p, len, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

int rt_os_move_over(void *from, void *to, size_t len)
{
	return mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) == to ? 0 : -1;
}

int rt_os_mbind(void *p, size_t len, int node, unsigned long mask)
{
	enum { MPOL_BIND_ = 2, MPOL_INTERLEAVE_ = 3 };
	unsigned long m = node >= 0 ? 1UL << node : mask;
	int mode = node >= 0 ? MPOL_BIND_ : MPOL_INTERLEAVE_;
	return (int)syscall(SYS_mbind, p, len, mode, &m, sizeof(m) * 8, 0);
}

/* ---- locking memory ---- */

int rt_os_mlockall(int flags) { return mlockall(flags); }
int rt_os_munlockall(void) { return munlockall(); }
int rt_os_mlock(void *p, size_t len) { return mlock(p, len); }
int rt_os_munlock(void *p, size_t len) { return munlock(p, len); }

/* ---- files ---- */

int rt_os_open(const char *path, int flags, mode_t mode)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode);
}

void rt_os_close(int fd)
{
	int saved = errno;
	syscall(SYS_close, fd);
	errno = saved;
}

long rt_os_read_file(const char *path, char *buf, size_t len)
{
	int fd = rt_os_open(path, O_RDONLY, 0);
	if (fd < 0)
		return -1;
	size_t at = 0;
	while (at + 1 < len) { /* bound: len bytes; EINTR repeats only while signals keep arriving */
		ssize_t r = syscall(SYS_read, fd, buf + at, len - 1 - at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		at += (size_t)r;
	}
	rt_os_close(fd);
	buf[at] = '\0';
	return (long)at;
}

int rt_os_write_all(int fd, const void *buf, size_t len)
{
	int saved = errno, rc = 0;
	for (size_t off = 0; off < len;) { /* bound: each round writes >= 1 byte or stops */
		ssize_t w = syscall(SYS_write, fd, (const char *)buf + off, len - off);
		if (w <= 0 && errno != EINTR) {
			rc = -1;
			break;
		}
		if (w > 0)
			off += (size_t)w;
	}
	errno = saved;
	return rc;
}

long rt_os_read(int fd, void *buf, size_t len)
{
	for (;;) { /* bound: repeats only while signals keep interrupting it */
		long r = syscall(SYS_read, fd, buf, len);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

long rt_os_pread(int fd, void *buf, size_t len, uint64_t off)
{
	if (off > (uint64_t)INT64_MAX)
		return -1;
	for (;;) { /* bound: repeats only while signals keep interrupting it */
		long r = syscall(SYS_pread64, fd, buf, len, (off_t)off);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

int rt_os_fstat(int fd, struct stat *st) { return fstat(fd, st); }

long long rt_os_fd_size(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (long long)st.st_size : -1;
}

int rt_os_ftruncate(int fd, size_t len) { return ftruncate(fd, (off_t)len); }
int rt_os_fchmod(int fd, mode_t mode) { return fchmod(fd, mode); }
bool rt_os_exists(const char *path) { return access(path, F_OK) == 0; }
int rt_os_stat(const char *path, struct stat *st) { return stat(path, st); }
int rt_os_lstat(const char *path, struct stat *st) { return lstat(path, st); }
int rt_os_unlink(const char *path) { return unlink(path); }
int rt_os_rename(const char *from, const char *to) { return rename(from, to); }
int rt_os_lchown(const char *path, uid_t uid) { return lchown(path, uid, (gid_t)-1); }
int rt_os_fallocate(int fd, size_t len) { return fallocate(fd, 0, 0, (off_t)len); }

bool rt_os_on_tmpfs(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

bool rt_os_fd_on_tmpfs(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

int rt_os_dup_above(int fd, int min) { return (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, min); }

void *rt_os_map_shared(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

int rt_os_shm_open(const char *name, int flags, mode_t mode)
{
	return shm_open(name, flags | O_CLOEXEC | O_NOFOLLOW, mode);
}

int rt_os_shm_unlink(const char *name) { return shm_unlink(name); }

/* ---- time ---- */

void rt_os_now(struct timespec *ts) { clock_gettime(CLOCK_MONOTONIC, ts); }

uint64_t rt_os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rt_os_sleep_ns(long ns)
{
	struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
	syscall(SYS_nanosleep, &ts, NULL);
}

void rt_os_yield(void) { sched_yield(); }

/* ---- futexes ---- */

int rt_os_futex_wait(uint32_t *word, uint32_t val, const struct timespec *abs, bool shared)
{
	int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
	if (syscall(SYS_futex, word, op, val, abs, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return errno == EAGAIN ? 0 : errno;
}

void rt_os_futex_wake(uint32_t *word, int n, bool shared)
{
	syscall(SYS_futex, word, FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG), n, NULL, NULL, 0);
}

/* ---- processes, threads, identity ---- */

int rt_os_getpid(void) { return (int)getpid(); }
int rt_os_gettid(void) { return (int)gettid(); }

void rt_os_thread_name(char name[16])
{
	int saved = errno;
	memset(name, 0, 16);
	if (prctl(PR_GET_NAME, (unsigned long)name, 0, 0, 0) != 0)
		name[0] = '\0';
	name[15] = '\0';
	errno = saved;
}

bool rt_os_pid_alive(int pid)
{
	int saved = errno;
	bool alive = kill(pid, 0) == 0 || errno != ESRCH;
	errno = saved;
	return alive;
}

uid_t rt_os_uid(void) { return getuid(); }
uid_t rt_os_euid(void) { return geteuid(); }

bool rt_os_in_group(gid_t gid)
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

int rt_os_thread_prio(void)
{
	struct sched_param sp;
	int policy;
	if (pthread_getschedparam(pthread_self(), &policy, &sp) != 0)
		return 0;
	return policy == SCHED_FIFO || policy == SCHED_RR ? sp.sched_priority : 0;
}

int rt_os_node(void)
{
	unsigned cpu = 0, node = 0;
	if (getcpu(&cpu, &node) != 0)
		return 0;
	return (int)node;
}

int rt_os_getrlimit(int resource, struct rlimit *rl) { return getrlimit(resource, rl); }
int rt_os_getrusage_thread(struct rusage *ru) { return getrusage(RUSAGE_THREAD, ru); }
int rt_os_getrusage_self(struct rusage *ru) { return getrusage(RUSAGE_SELF, ru); }
uid_t rt_os_setfsuid(uid_t uid) { return (uid_t)setfsuid(uid); }
void rt_os_exit_now(int code) { _exit(code); }
void rt_os_abort(void) { abort(); }

int rt_os_once(pthread_once_t *once, void (*fn)(void)) { return pthread_once(once, fn); }

int rt_os_key_create(pthread_key_t *key, void (*destructor)(void *))
{
	return pthread_key_create(key, destructor);
}

void rt_os_key_delete(pthread_key_t key) { pthread_key_delete(key); }
void rt_os_key_set(pthread_key_t key, const void *value) { pthread_setspecific(key, value); }

int rt_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	return pthread_atfork(prepare, parent, child);
}

int rt_os_thread_stack(void **lo, size_t *len)
{
	pthread_attr_t at;
	int e = pthread_getattr_np(pthread_self(), &at);
	if (e)
		return e;
	e = pthread_attr_getstack(&at, lo, len);
	pthread_attr_destroy(&at);
	return e;
}

size_t rt_os_page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	return ps > 0 ? (size_t)ps : RT_PAGE_SIZE;
}

/* ---- perf events ---- */

int rt_os_perf_open(void *attr)
{
	return (int)syscall(SYS_perf_event_open, attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

int rt_os_perf_enable(int fd) { return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0); }

/* ---- randomness ---- */

uint64_t rt_os_random(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = rt_os_now_ns() ^ ((uint64_t)(uintptr_t)&v << 17);
	return v;
}
