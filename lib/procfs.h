/* SPDX-License-Identifier: MIT */
/*
 * procfs.h - the one reader of /proc text files (header only): a field of
 * /proc/PID/status or /proc/meminfo ("Key:   123 kB"), and, outside the
 * library, a whole small /proc file into a buffer.
 *
 * Used by the library (limits.c: the parser only; the library reads files
 * through its OS layer, rt_os_read_file), rtalloc-stat (tools/rtalloc-stat/
 * proc.c), the system tests (tests/system/st_util.h) and the benchmark
 * (bench/rtb_common.c).  No malloc, no stdio, no libc in the parser: usable
 * during the library's initialisation and around a phase that must make no
 * allocation.  The text is another process's (or the kernel's): the parser
 * reads only up to the NUL the reader put, and numbers that overflow are
 * refused, not wrapped.
 */
#ifndef RT_PROCFS_H
#define RT_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The first number of the line "key: ..." of text (NUL-terminated): key at
 * the start of a line, then ':' (key may end with its ':' already), blanks,
 * decimal digits.  True and *out, or false when there is no such line, no
 * number, or one beyond 64 bits. */
static inline bool rt_proc_field(const char *text, const char *key, uint64_t *out)
{
	size_t klen = 0;
	while (key[klen]) /* bound: the key */
		klen++;
	bool colon = klen > 0 && key[klen - 1] == ':';
	for (const char *l = text; *l;) { /* bound: the text, a line at a time */
		size_t k = 0;
		while (k < klen && l[k] == key[k]) /* bound: the key */
			k++;
		if (klen > 0 && k == klen && (colon || l[k] == ':')) {
			const char *v = colon ? l + k : l + k + 1;
			while (*v == ' ' || *v == '\t') /* bound: the line */
				v++;
			if (*v < '0' || *v > '9')
				return false;
			uint64_t n = 0;
			for (; *v >= '0' && *v <= '9'; v++) /* bound: the line */
				if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, (uint64_t)(*v - '0'), &n))
					return false;
			*out = n;
			return true;
		}
		while (*l && *l != '\n') /* bound: the line */
			l++;
		if (*l)
			l++;
	}
	return false;
}

#ifndef RT_H /* outside the library: the library reads through rt_os_read_file */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Read at most len - 1 bytes of a file, NUL-terminated (len >= 1).  Its
 * length, or -1 with errno. */
static inline long rt_proc_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t at = 0;
	while (at + 1 < len) { /* bound: len bytes */
		ssize_t r = read(fd, buf + at, len - 1 - at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		at += (size_t)r;
	}
	close(fd);
	buf[at] = '\0';
	return (long)at;
}

/* A field of a /proc status-like file (path), or -1 when the file cannot be
 * read or has no such field.  buf (len bytes) holds the text. */
static inline long long rt_proc_file_field(const char *path, const char *key, char *buf, size_t len)
{
	uint64_t v;
	if (rt_proc_read(path, buf, len) < 0 || !rt_proc_field(buf, key, &v) || v > INT64_MAX)
		return -1;
	return (long long)v;
}
#endif

#endif /* RT_PROCFS_H */
