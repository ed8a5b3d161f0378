/* SPDX-License-Identifier: MIT */
/*
 * test_signal.c - malloc called from a signal handler that interrupted malloc
 * or free in the same thread.  malloc is not async-signal-safe (neither is
 * glibc's); what librtalloc promises is that such a program is stopped with
 * a message that names the cause, never left hanging on the arena lock the
 * interrupted call holds, nor aborted with a misleading "double free" or
 * "heap corruption".
 *
 * Each case runs in a child this process watches with a deadline: a child
 * still running after it has hung, and fails the test.
 */
#include <sys/time.h>

#include "unit.h"

#define DEADLINE_S 30

static volatile sig_atomic_t in_handler_calls;

static void handler(int sig)
{
	(void)sig;
	in_handler_calls++;
	void *p = rtalloc_malloc(RT_CACHE_MAX + 1); /* a huge block: always a slow path */
	rtalloc_free(p);
	void *q = rtalloc_malloc(24);
	rtalloc_free(q);
}

/* The main loop spends its time in slow paths (huge blocks, above the
 * largest cached class, take the arena lock on every call; small ones in
 * bursts refill and flush). */
static int child_signal_in_malloc(void)
{
	if (unit_init(8u << 20, 8u << 20, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 20}, {0, 20}};
	setitimer(ITIMER_REAL, &it, NULL);
	void *v[256];
	for (long i = 0; i < 20000000; i++) {
		void *p = rtalloc_malloc(RT_CACHE_MAX + 1 + (size_t)(i & 7) * 4096);
		rtalloc_free(p);
		for (int k = 0; k < 256; k++)
			v[k] = rtalloc_malloc(16 + (size_t)(k & 3) * 48);
		for (int k = 0; k < 256; k++)
			rtalloc_free(v[k]);
	}
	return 3; /* never interrupted inside a slow path: the test proved nothing */
}

static void signal_in_malloc_aborts_with_the_cause(void **state)
{
	UNUSED_STATE(state);
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGABRT, SIG_DFL);
		close(fd[0]);
		dup2(fd[1], STDERR_FILENO);
		_exit(child_signal_in_malloc());
	}
	close(fd[1]);
	int st = 0;
	bool done = false;
	for (int t = 0; t < DEADLINE_S * 100 && !done; t++) { /* bound: the deadline */
		if (waitpid(pid, &st, WNOHANG) == pid)
			done = true;
		else
			usleep(10000);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	char out[2048] = "";
	ssize_t n = read(fd[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd[0]);
	if (!done)
		fail_msg("the child hung (malloc from a signal handler that interrupted malloc)");
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
		fail_msg("the child did not abort (status %#x): \"%s\"", st, out);
	assert_non_null(strstr(out, "already inside malloc or free"));
	assert_null(strstr(out, "double free"));
	assert_null(strstr(out, "corruption"));
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(signal_in_malloc_aborts_with_the_cause),
	};
	return cmocka_run_group_tests_name("signal", tests, NULL, NULL);
}
