/* SPDX-License-Identifier: MIT */
/*
 * st_util.h - helpers shared by the system test programs (header only).
 *
 * The programs run either under LD_PRELOAD=librtalloc.so (they are not linked
 * with it and reach the rtalloc_* API through dlsym) or linked with
 * -lrtalloc.  Nothing here allocates after st_init_*: /proc files are read
 * with open/read into static buffers, so the helpers can be used around a
 * phase that must make no allocation and no memory system call.
 *
 * Exit codes follow meson's convention: 0 pass, 77 skip, anything else fail.
 */
#ifndef ST_UTIL_H
#define ST_UTIL_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/procfs.h"

#define ST_SKIP 77

static const char *st_name = "test";

__attribute__((format(printf, 3, 4), noreturn, unused)) static void
st_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "FAIL %s: %s:%d: ", st_name, file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1); /* exit, not _exit: librtalloc removes its statistics file at exit */
}

__attribute__((format(printf, 4, 5), noreturn, unused)) static void
st_check_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "FAIL %s: %s:%d: (%s) ", st_name, file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1); /* exit, not _exit: librtalloc removes its statistics file at exit */
}

#define ST_FAIL(...) st_fail_at(__FILE__, __LINE__, __VA_ARGS__)
/* CHECK(condition, "printf format", args...): the format is required. */
#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond))                                              \
			st_check_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

__attribute__((format(printf, 1, 2), noreturn, unused)) static void st_skip(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "SKIP %s: ", st_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(ST_SKIP);
}

/* ---- /proc ---------------------------------------------------------------- */

/* Read a whole /proc file into buf (NUL-terminated), -1 if it cannot be
 * read.  No allocation (lib/procfs.h, shared with the tool and the bench). */
static inline long st_read_file(const char *path, char *buf, size_t len)
{
	return rt_proc_read(path, buf, len);
}

/* A "Key:   123 kB" field of /proc/self/status, in kB; -1 if absent. */
static inline long st_status_kb(const char *key)
{
	static char buf[8192];
	return (long)rt_proc_file_field("/proc/self/status", key, buf, sizeof(buf));
}

/* The mapping of /proc/self/maps that holds addr: its bounds and permissions
 * ("rw-p").  Returns 0, or -1 if no mapping holds it. */
static inline int st_vma_of(const void *addr, uintptr_t *lo, uintptr_t *hi, char perms[5])
{
	static char buf[1 << 18];
	if (st_read_file("/proc/self/maps", buf, sizeof(buf)) <= 0)
		return -1;
	uintptr_t a = (uintptr_t)addr;
	for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		char *end;
		uintptr_t s = (uintptr_t)strtoull(l, &end, 16);
		if (*end != '-')
			continue;
		uintptr_t e = (uintptr_t)strtoull(end + 1, &end, 16);
		if (a >= s && a < e) {
			*lo = s;
			*hi = e;
			if (perms) {
				memcpy(perms, end + 1, 4);
				perms[4] = '\0';
			}
			return 0;
		}
	}
	return -1;
}

/* ---- the rtalloc_* API through dlsym (LD_PRELOAD programs) ---------------- */

struct st_api {
	unsigned (*version)(void);
	size_t (*usable_size)(void *);
	int (*check)(void);
	int (*thread_prepare)(void);
	void *(*rt_malloc)(size_t);
	void (*rt_free)(void *);
	const char *lib; /* path of the object that defines malloc */
};

static struct st_api st_api;

static inline void *st_sym(const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	if (!p)
		ST_FAIL("symbol %s not found: is the program run with LD_PRELOAD=librtalloc.so?", name);
	return p;
}

/* Verify that librtalloc is preloaded and that malloc & co. resolve to it;
 * fill st_api.  Fails the test otherwise. */
__attribute__((unused)) static void st_need_preload(const char *name)
{
	st_name = name;
	const char *pre = getenv("LD_PRELOAD");
	if (!pre || !strstr(pre, "librtalloc"))
		ST_FAIL("LD_PRELOAD does not name librtalloc (LD_PRELOAD=%s)", pre ? pre : "(unset)");
	*(void **)&st_api.version = st_sym("rtalloc_version");
	*(void **)&st_api.usable_size = st_sym("rtalloc_malloc_usable_size");
	*(void **)&st_api.check = st_sym("rtalloc_check");
	*(void **)&st_api.thread_prepare = st_sym("rtalloc_thread_prepare");
	*(void **)&st_api.rt_malloc = st_sym("rtalloc_malloc");
	*(void **)&st_api.rt_free = st_sym("rtalloc_free");
	Dl_info di;
	if (!dladdr(st_sym("malloc"), &di) || !di.dli_fname || !strstr(di.dli_fname, "librtalloc"))
		ST_FAIL("malloc does not resolve to librtalloc (it comes from %s)",
			di.dli_fname ? di.dli_fname : "?");
	st_api.lib = di.dli_fname;
	void *p = malloc(100);
	CHECK(p && st_api.usable_size(p) == 128,
	      "malloc(100) is not a librtalloc block of 128 bytes (usable %zu)",
	      p ? st_api.usable_size(p) : 0);
	free(p);
}

/* ---- a small deterministic PRNG ------------------------------------------- */

static inline uint64_t st_rand(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* log-uniform in [lo, hi] */
static inline size_t st_log_size(uint64_t r, size_t lo, size_t hi)
{
	unsigned lb = 63 - (unsigned)__builtin_clzll(lo), hb = 63 - (unsigned)__builtin_clzll(hi);
	unsigned b = lb + (unsigned)(r % (hb - lb + 1));
	size_t base = (size_t)1 << b;
	size_t s = base + (size_t)((r >> 16) % base);
	return s < lo ? lo : s > hi ? hi : s;
}

#endif /* ST_UTIL_H */
