/* SPDX-License-Identifier: MIT */
/*
 * glue.c - the out-of-line part of glue.h: messages, fatal errors, files,
 * pre-faulting, randomness.  Nothing here allocates or uses stdio.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/random.h>

#include "glue.h"

static void put(char *buf, size_t len, size_t *at, char c)
{
	if (*at + 1 < len)
		buf[*at] = c;
	(*at)++;
}

static void put_num(char *buf, size_t len, size_t *at, unsigned long long v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do { /* at most 20 digits */
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		put(buf, len, at, tmp[--n]);
}

size_t rt_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
	size_t at = 0;
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(buf, len, &at, *f);
			continue;
		}
		f++;
		int lng = 0;
		while (*f == 'l' || *f == 'z') { /* %zu %lu %llu */
			lng = 1;
			f++;
		}
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			for (s = s ? s : "(null)"; *s; s++)
				put(buf, len, &at, *s);
			break;
		}
		case 'd': {
			long long v = lng ? va_arg(ap, long) : va_arg(ap, int);
			if (v < 0) {
				put(buf, len, &at, '-');
				v = -v;
			}
			put_num(buf, len, &at, (unsigned long long)v, 10);
			break;
		}
		case 'u':
			put_num(buf, len, &at, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10);
			break;
		case 'x':
			put_num(buf, len, &at, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16);
			break;
		case 'p':
			put(buf, len, &at, '0');
			put(buf, len, &at, 'x');
			put_num(buf, len, &at, (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%':
			put(buf, len, &at, '%');
			break;
		default: /* unknown conversion: print it as is */
			put(buf, len, &at, '%');
			if (*f)
				put(buf, len, &at, *f);
			else
				f--;
		}
	}
	if (len)
		buf[at < len ? at : len - 1] = '\0';
	return at;
}

void rt_say(const char *fmt, ...)
{
	char line[512] = "rtalloc: ";
	size_t pre = sizeof("rtalloc: ") - 1;
	va_list ap;
	va_start(ap, fmt);
	size_t n = rt_vfmt(line + pre, sizeof(line) - pre - 1, fmt, ap);
	va_end(ap);
	n += pre;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	int saved = errno;
	for (size_t off = 0; off < n;) { /* bounded: each round writes >= 1 byte or stops */
		/* syscall(), not write(): not a cancellation point, so a message
		 * printed with a lock held cannot end the thread holding it. */
		ssize_t w = syscall(SYS_write, STDERR_FILENO, line + off, n - off);
		if (w <= 0 && errno != EINTR)
			break;
		if (w > 0)
			off += (size_t)w;
	}
	errno = saved;
}

/* Every fatal path ends here: the statistics file goes first (an aborted
 * process runs no destructor, and the file would stay in /dev/shm), then
 * abort().  Called with any lock held: unlink(2) only. */
void rt_die(void)
{
	rt_stats_remove();
	abort();
}

void rt_fatal(const char *call, const char *what, const void *p)
{
	rt_say("%s(): %s %p; aborting", call, what, p);
	rt_die();
}

void rt_plist_corrupt(const void *d, uint32_t idx)
{
	rt_say("page descriptors at %p corrupted: a page list links to page %u, beyond them; aborting",
	       d, (unsigned)idx);
	abort();
}

void rt_assert_fail(const char *expr, const char *file, int line)
{
	rt_say("internal invariant broken: %s (%s:%d); aborting", expr, file, line);
	rt_die();
}

/* environ with one more entry, for the children this process starts: a
 * static copy (no allocation; setenv and putenv later make their own copy,
 * unsetenv edits it in place).  An environment of more than 510 entries,
 * or none yet (the very first allocation of a process, before libc set
 * environ), is left as it is. */
extern char **environ;
static char *env_copy[512];

void rt_env_add(char *entry)
{
	if (!environ || environ == env_copy)
		return;
	size_t n = 0;
	while (n < 510 && environ[n]) /* bound: 510 entries */
		n++;
	if (environ[n])
		return;
	for (size_t i = 0; i < n; i++) /* bound: n */
		env_copy[i] = environ[i];
	env_copy[n] = entry;
	env_copy[n + 1] = NULL;
	environ = env_copy;
}

long rt_os_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t at = 0;
	while (at + 1 < len) { /* bounded by len */
		ssize_t r = read(fd, buf + at, len - 1 - at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		at += (size_t)r;
	}
	close(fd);
	buf[at] = '\0';
	return (long)at;
}

int rt_os_populate(void *p, size_t len)
{
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS) /* ENOMEM, EFAULT...: a real failure */
		return errno;
	/* Kernels before 5.14: touch one byte of every page. */
	volatile char *c = p;
	for (size_t off = 0; off < len; off += RT_PAGE_SIZE)
		c[off] = 0;
	return 0;
}

uint64_t rt_os_random(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = rt_os_now_ns() ^ ((uint64_t)(uintptr_t)&v << 17);
	return v;
}
