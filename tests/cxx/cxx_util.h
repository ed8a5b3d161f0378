/* SPDX-License-Identifier: MIT */
/*
 * cxx_util.h - helpers of the C++ operator new/delete tests (C and C++).
 *
 * The programs run under LD_PRELOAD=librtalloc.so (not linked with it) or
 * linked with -lrtalloc; either way they reach librtalloc's own API through
 * dlsym, so one source serves both.  Exit codes: 0 pass, 77 skip, 1 fail.
 */
#ifndef CXX_UTIL_H
#define CXX_UTIL_H

#include <dlfcn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

static const char *ct_name = "cxx";
static int ct_failures;

__attribute__((format(printf, 4, 5), unused)) static void
ct_check_failed(const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "FAIL %s: %s:%d: (%s) ", ct_name, file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ct_failures++;
}

/* EXPECT(condition, "printf format", args...): records a failure, goes on
 * (tests/system's CHECK stops at once: another name for another act). */
#define EXPECT(cond, ...)                                                         \
	do {                                                                     \
		if (!(cond))                                                     \
			ct_check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

/* Stop now (a failure that makes the rest meaningless). */
#define REQUIRE(cond, ...)                                                       \
	do {                                                                     \
		if (!(cond)) {                                                   \
			ct_check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
			exit(1);                                                 \
		}                                                                \
	} while (0)

__attribute__((unused)) static int ct_result(void)
{
	if (ct_failures) {
		fprintf(stderr, "FAIL %s: %d check(s) failed\n", ct_name, ct_failures);
		return 1;
	}
	printf("ok %s\n", ct_name);
	return 0;
}

/* The address of a symbol, as a function pointer of the caller's type. */
__attribute__((unused)) static void *ct_sym(const char *name) { return dlsym(RTLD_DEFAULT, name); }

/* The file that defines the code at addr ("" when unknown). */
__attribute__((unused)) static const char *ct_file_of(const void *addr, const char **sym)
{
	Dl_info info;
	if (!dladdr(addr, &info) || !info.dli_fname) {
		if (sym)
			*sym = "";
		return "";
	}
	if (sym)
		*sym = info.dli_sname ? info.dli_sname : "";
	return info.dli_fname;
}

__attribute__((unused)) static int ct_is_rtalloc(const char *file)
{
	return strstr(file, "librtalloc.so") != NULL;
}

/* librtalloc must be there (preloaded or linked); else the test is pointless. */
__attribute__((unused)) static void ct_need_rtalloc(void)
{
	if (!ct_sym("rtalloc_version")) {
		fprintf(stderr, "FAIL %s: librtalloc is not loaded (no LD_PRELOAD, not linked)\n", ct_name);
		exit(1);
	}
}

/* ---- a call that must abort ---------------------------------------------------
 *
 * Runs fn(arg) in a child whose stderr is captured: passes when the child is
 * killed by SIGABRT and printed `expect'. */
__attribute__((unused)) static void ct_expect_abort_at(const char *file, int line, const char *what,
							void (*fn)(void *), void *arg,
							const char *expect)
{
	int fds[2];
	if (pipe(fds) != 0) {
		ct_check_failed(file, line, what, "pipe failed");
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		ct_check_failed(file, line, what, "fork failed");
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		/* No core dump of an expected abort. */
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		signal(SIGABRT, SIG_DFL);
		fn(arg);
		_exit(0); /* did not abort */
	}
	close(fds[1]);
	char buf[4096];
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
		ct_check_failed(file, line, what, "did not abort (status %#x); stderr: %s", status, buf);
	else if (!strstr(buf, expect))
		ct_check_failed(file, line, what, "aborted without \"%s\" on stderr: %s", expect, buf);
}
#define EXPECT_ABORT(fn, arg, expect) ct_expect_abort_at(__FILE__, __LINE__, #fn, fn, arg, expect)

#ifdef __cplusplus
}
#endif

#endif /* CXX_UTIL_H */
