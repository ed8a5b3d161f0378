/* SPDX-License-Identifier: MIT */
/*
 * util.c - rtalloc-stat's small helpers: messages, clocks, pids, saturating
 * arithmetic on counters read from a region, and esc(), the escaping of
 * strings that come from a target before they reach a terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs.h"

/* ==== small helpers ===================================================================== */

__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

__attribute__((format(printf, 1, 2), noreturn)) void usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double ns_to_s(uint64_t ns) { return (double)ns / 1e9; }

/* A decimal pid, 1 .. INT_MAX, nothing else. */
bool parse_pid(const char *s, pid_t *out)
{
	if (!*s)
		return false;
	long long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return false;
	}
	if (v < 1)
		return false;
	*out = (pid_t)v;
	return true;
}

uint64_t sat_mul(uint64_t a, uint64_t b) { return b && a > UINT64_MAX / b ? UINT64_MAX : a * b; }

int64_t diff_i64(uint64_t now, uint64_t before)
{
	if (now >= before)
		return now - before > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(now - before);
	return before - now > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(before - now);
}

#define ESC_BUFS 8
#define ESC_LEN (4 * PATHLEN + 1) /* a path, each byte as \xNN */

const char *esc(const char *str)
{
	static char bufs[ESC_BUFS][ESC_LEN];
	static unsigned next;
	char *out = bufs[next++ % ESC_BUFS];
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t at = 0;
	while (*s && at + 5 <= ESC_LEN) { /* bound: the output buffer, 1+ byte a turn */
		int n = utf8_len(s);
		if (*s == '\\') {
			out[at++] = '\\';
			out[at++] = '\\';
			s++;
		} else if (*s >= 0x20 && *s != 0x7f && n > 0 && !utf8_dangerous(s, n) && at + (size_t)n < ESC_LEN) {
			memcpy(out + at, s, (size_t)n);
			at += (size_t)n;
			s += n;
		} else { /* one byte at a time: a dangerous sequence's bytes all become \xNN */
			int k = n > 0 ? n : 1;
			for (int i = 0; i < k && at + 5 <= ESC_LEN; i++) /* bound: 4 bytes */
				at += (size_t)snprintf(out + at, ESC_LEN - at, "\\x%02x", *s++);
		}
	}
	out[at] = '\0';
	return out;
}

void pause_us(long us)
{
	struct timespec ts = {0, us * 1000};
	nanosleep(&ts, NULL);
}

