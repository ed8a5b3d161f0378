/* SPDX-License-Identifier: MIT */
/*
 * rttrace.c - librttrace.so, an allocation tracer of our own, used once to
 * record the traces of bench/traces/ (bench/traces/record.sh; bench/README.md):
 *
 *   RTTRACE_OUT=raw.bin LD_PRELOAD=bench/.build/librttrace.so PROGRAM ...
 *
 * It interposes malloc, calloc, realloc, free and the aligned allocations,
 * serves them with glibc's own allocator (the __libc_* entry points, so no
 * dlsym and no recursion) and appends one fixed-size binary record per call
 * to RTTRACE_OUT: { op, thread, a, b, result } (see struct rec).  Records
 * are buffered in static memory and written under a spin lock; only the
 * process that opened the file records (a forked child does not).
 * bench/traces/mktrace.py turns the addresses into block numbers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

enum { OP_MALLOC = 1, OP_CALLOC, OP_REALLOC, OP_FREE, OP_MEMALIGN };

struct rec {
	uint32_t op, tid;
	uint64_t a, b, r; /* malloc: size; calloc: n, size; realloc: old, size;
			     free: ptr; memalign: align, size; r: the result */
};

#define BUF_RECS 32768
static struct rec buf[BUF_RECS];
static unsigned nbuf;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static int fd = -2; /* -2: not opened yet, -1: not tracing */
static pid_t owner;

static void flush_locked(void)
{
	const char *p = (const char *)buf;
	size_t left = nbuf * sizeof buf[0];
	while (left > 0) { /* bound: the buffer's size, in write()s of >= 1 byte */
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	nbuf = 0;
}

static void record(uint32_t op, uint64_t a, uint64_t b, uint64_t r)
{
	while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
		; /* bound: the holder copies one record or writes one buffer */
	if (fd == -2) {
		const char *path = getenv("RTTRACE_OUT");
		fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
		owner = getpid();
	}
	if (fd >= 0 && getpid() == owner) {
		buf[nbuf++] = (struct rec){op, (uint32_t)syscall(SYS_gettid), a, b, r};
		if (nbuf == BUF_RECS)
			flush_locked();
	}
	atomic_flag_clear_explicit(&lock, memory_order_release);
}

__attribute__((destructor)) static void rttrace_end(void)
{
	while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
		;
	if (fd >= 0 && getpid() == owner)
		flush_locked();
	atomic_flag_clear_explicit(&lock, memory_order_release);
}

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);
	record(OP_MALLOC, n, 0, (uintptr_t)p);
	return p;
}

void *calloc(size_t k, size_t n)
{
	void *p = __libc_calloc(k, n);
	record(OP_CALLOC, k, n, (uintptr_t)p);
	return p;
}

void *realloc(void *old, size_t n)
{
	void *p = __libc_realloc(old, n);
	record(OP_REALLOC, (uintptr_t)old, n, (uintptr_t)p);
	return p;
}

void free(void *p)
{
	if (p)
		record(OP_FREE, (uintptr_t)p, 0, 0);
	__libc_free(p);
}

static void *aligned(size_t align, size_t n)
{
	void *p = __libc_memalign(align, n);
	record(OP_MEMALIGN, align, n, (uintptr_t)p);
	return p;
}

void *memalign(size_t align, size_t n)
{
	return aligned(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	return aligned(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	void *p = aligned(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	return aligned((size_t)sysconf(_SC_PAGESIZE), n);
}

void *pvalloc(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return aligned(pg, (n + pg - 1) & ~(pg - 1));
}
