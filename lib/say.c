/* SPDX-License-Identifier: MIT */
/*
 * say.c - what librtalloc tells the user: rt_say's one-line messages on
 * stderr (formatted on the stack by rt_vfmt, written with one system call,
 * never allocating: usable while the allocator initialises and with any
 * lock held), and the end of every fatal path (rt_fatal, rt_assert_fail,
 * rt_die).
 */
#include <errno.h>
#include <stdarg.h>

#include "os.h"

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

size_t rt_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = rt_vfmt(buf, len, fmt, ap);
	va_end(ap);
	return n;
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
	/* Not a cancellation point (os.h): a message printed with a lock
	 * held cannot end the thread holding it.  errno preserved. */
	rt_os_write_all(2, line, n);
}

/* What a dying process does first: set once, at initialisation, to remove
 * the statistics file (an aborted process runs no destructor, and the file
 * would stay in /dev/shm).  Called with any lock held: unlink(2) only. */
static void (*last_words)(void);

void rt_die_hook(void (*fn)(void)) { last_words = fn; }

/* Every fatal path ends here. */
void rt_die(void)
{
	void (*fn)(void) = last_words;
	if (fn)
		fn();
	rt_os_abort();
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
	rt_os_abort();
}

void rt_assert_fail(const char *expr, const char *file, int line)
{
	rt_say("internal invariant broken: %s (%s:%d); aborting", expr, file, line);
	rt_die();
}

