/* SPDX-License-Identifier: MIT */
/*
 * unit.h - helpers shared by librtalloc's unit tests (tests/unit/).
 *
 * The tests link the static core library (rtalloc_core): the hidden internal
 * functions and rt_g are reachable, the libc names are not interposed, so
 * CMocka and the test bookkeeping use the C library's malloc while the code
 * under test is called through rtalloc_* or rt_*.
 */
#ifndef RT_UNIT_H
#define RT_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtalloc.h"
#include "rt.h"

#define UNUSED_STATE(s) ((void)(s))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the calling thread's counters (slow paths' plus bins') --------------- */

static inline struct rt_tcounters my_counts(void)
{
	struct rt_tcounters c;
	rt_tcache_counters(&rt_tc, &c);
	return c;
}

/* Return the calling thread's cached blocks to the arena, as a thread exit
 * does, and set the thread up again as new (the library's own code both ways). */
static inline void flush_my_cache(void)
{
	if (rt_tc.state != RT_TC_LIVE)
		return;
	rt_tcache_thread_exit(&rt_tc);
	rt_tc.state = RT_TC_NEW;
	rt_tcache_setup();
}

/* ---- deterministic pseudo-random numbers (xorshift64*) -------------------- */

struct rng {
	uint64_t s;
};

static inline void rng_seed(struct rng *r, uint64_t seed) { r->s = seed ? seed : 0x9e3779b97f4a7c15ULL; }

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform-ish in [0, n), n > 0. */
static inline uint64_t rng_below(struct rng *r, uint64_t n) { return rng_next(r) % n; }

/* ---- fill patterns ------------------------------------------------------- */

static inline uint8_t pattern_byte(uint64_t tag, size_t i)
{
	uint64_t v = tag * 0x9e3779b97f4a7c15ULL + i * 0xff51afd7ed558ccdULL;
	return (uint8_t)(v >> 56);
}

static inline void fill_pattern(void *p, size_t n, uint64_t tag)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = pattern_byte(tag, i);
}

/* Index of the first byte that differs from the pattern, or n. */
static inline size_t check_pattern(const void *p, size_t n, uint64_t tag)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern_byte(tag, i))
			return i;
	return n;
}

/* Power of two >= n, at least 16: the block size librtalloc gives for n. */
static inline size_t class_size_for(size_t n)
{
	size_t s = 16;
	while (s < n)
		s <<= 1;
	return s;
}

/* ---- running code in a child process ------------------------------------
 *
 * run_child() forks; the child gets SIGABRT back to its default action and
 * its stderr on a pipe, runs fn(arg) and exits with fn's result (when fn
 * returns).  The parent collects what the child wrote and how it ended.
 */
struct child_result {
	int exited;      /* child called _exit */
	int exit_code;
	int signaled;    /* killed by a signal */
	int signo;
	char out[4096];  /* its stderr, NUL-terminated (truncated if longer) */
	size_t out_len;
};

typedef int (*child_fn)(void *arg);

static inline void run_child(child_fn fn, void *arg, struct child_result *r)
{
	int fd[2];
	memset(r, 0, sizeof(*r));
	if (pipe(fd) != 0) {
		fail_msg("pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		fail_msg("fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* CMocka's handlers (SIGSEGV...) would longjmp into the child's copy
		 * of the test runner, which would then run the rest of the suite. */
		static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		close(fd[0]);
		dup2(fd[1], STDERR_FILENO);
		close(fd[1]);
		int rc = fn(arg);
		_exit(rc);
	}
	close(fd[1]);
	size_t at = 0;
	for (;;) {
		char buf[512];
		ssize_t n = read(fd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (at + 1 < sizeof(r->out))
				r->out[at++] = buf[i];
	}
	r->out[at] = '\0';
	r->out_len = at;
	close(fd[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st)) {
		r->exited = 1;
		r->exit_code = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		r->signaled = 1;
		r->signo = WTERMSIG(st);
	}
}

/* The child was killed by SIGABRT after printing a line that contains every
 * one of the given strings (NULL-terminated list). */
static inline void assert_aborted_with(const struct child_result *r, ...)
{
	if (!r->signaled || r->signo != SIGABRT) {
		if (r->exited)
			fail_msg("child exited with code %d instead of aborting; stderr: \"%s\"", r->exit_code,
				 r->out);
		else
			fail_msg("child died of signal %d instead of SIGABRT; stderr: \"%s\"", r->signo, r->out);
	}
	if (strstr(r->out, "runtime error:") || strstr(r->out, "Sanitizer"))
		fail_msg("sanitizer report in a child: \"%s\"", r->out);
	va_list ap;
	va_start(ap, r);
	for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
		if (!strstr(r->out, s)) {
			va_end(ap);
			fail_msg("the abort message lacks \"%s\"; stderr: \"%s\"", s, r->out);
		}
	va_end(ap);
}

static inline void assert_child_ok(const struct child_result *r)
{
	if (strstr(r->out, "runtime error:") || strstr(r->out, "Sanitizer"))
		fail_msg("sanitizer report in a child: \"%s\"", r->out);
	if (!r->exited || r->exit_code != 0) {
		if (r->exited)
			fail_msg("child failed (exit code %d, see the test source: usually a line number); "
				 "stderr: \"%s\"",
				 r->exit_code, r->out);
		else
			fail_msg("child died of signal %d; stderr: \"%s\"", r->signo, r->out);
	}
}

/* A child check: returns the line number (truncated to 1..255) on failure. */
#define CHILD_CHECK(cond)                                                                \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			return (__LINE__ % 255) + 1;                                     \
		}                                                                        \
	} while (0)

/* ---- capturing this process's stderr --------------------------------------- */

struct stderr_capture {
	int saved;
	int rd;
};

static inline void capture_stderr_begin(struct stderr_capture *c)
{
	int fd[2];
	fflush(stderr);
	if (pipe(fd) != 0)
		fail_msg("pipe: %s", strerror(errno));
	/* Non-blocking read end: the writer is this process. */
	fcntl(fd[0], F_SETFL, O_NONBLOCK);
	c->saved = dup(STDERR_FILENO);
	dup2(fd[1], STDERR_FILENO);
	close(fd[1]);
	c->rd = fd[0];
}

/* Restore stderr and return what was written (up to len - 1 bytes). */
static inline size_t capture_stderr_end(struct stderr_capture *c, char *buf, size_t len)
{
	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	size_t at = 0;
	for (;;) {
		ssize_t n = read(c->rd, buf + at, len - 1 - at);
		if (n <= 0)
			break;
		at += (size_t)n;
		if (at + 1 >= len)
			break;
	}
	buf[at] = '\0';
	close(c->rd);
	return at;
}

static inline unsigned count_lines(const char *s)
{
	unsigned n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Initialise the allocator for a test process: an OS pool of the given
 * sizes, never locked (sanitizer builds), one arena.  0, or -1 with a line
 * on stderr: a CMocka group setup's result. */
static inline int unit_init(size_t pool, size_t pool_max, size_t stack_prefault, int on_exhaust)
{
	struct rtalloc_config cfg = {
		.size = sizeof(cfg),
		.pool_size = pool,
		.pool_max = pool_max,
		.stack_prefault = stack_prefault,
		.mlock = RTALLOC_MLOCK_OFF,
		.on_exhaust = on_exhaust,
		.numa = RTALLOC_NUMA_OFF,
	};
	int e = rtalloc_init(&cfg);
	if (e) {
		fprintf(stderr, "rtalloc_init failed: %d\n", e);
		return -1;
	}
	return 0;
}

#endif /* RT_UNIT_H */
