/* SPDX-License-Identifier: MIT */
/*
 * st_fork_signal.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=16M.
 *
 *   st_fork_signal THREADS      THREADS = 1 (the main thread only) or 2
 *
 * fork() from a signal handler that interrupted malloc or free: a periodic
 * timer's signal handler forks (the child calls _exit at once, the handler
 * waits for it) while THREADS threads loop on malloc and free of sizes that
 * take the slow paths all the time (refills and flushes of every class,
 * large blocks).  NFORKS forks in all; enough of them interrupt the thread
 * while it holds an arena lock that the deadlock below shows within
 * seconds.  glibc's malloc makes this work in a single-threaded
 * process (fork skips its malloc locks there).  With two threads, only the
 * main thread takes the signal: when two threads fork from handlers at once,
 * one interrupted inside the allocator, the other holding libc's stdio list
 * lock that its fork took, each waits for the other (glibc's own malloc
 * does the same: a fork needs all its locks).
 *
 * What can go wrong: the pthread_atfork prepare handler takes the arena lock
 * that the interrupted thread (the forking one) already holds, and waits for
 * itself forever.  A watchdog process turns that into a failure.  Every child
 * must exit 0 (the handlers that run in it must not crash on an arena that
 * was in the middle of an operation); every 16th child returns from the
 * handler, finishes the interrupted operation, allocates on for 50 rounds
 * and must pass rtalloc_check().
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "st_util.h"

#define NFORKS 2000
#define WATCHDOG 100 /* seconds: the whole run; about 10 without the bug */

static atomic_int forks_done, bad_children, bad_status;
static atomic_long ops;
static atomic_int stop;
static volatile sig_atomic_t in_child;

/* The watchdog is a process: a thread would make the program multi-threaded,
 * and SIGALRM may not end a deadlock inside the fork handlers (a handler
 * that itself waits on a lock the signal's handler holds). */
static pid_t watchdog_start(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	sleep(WATCHDOG);
	fprintf(stderr, "FAIL fork-signal: not done after %d s: fork from a signal handler "
		"deadlocked\n", WATCHDOG);
	kill(parent, SIGKILL);
	_exit(0);
}

/* The handler forks only when the main thread has made progress since the
 * last fork: when a fork and its wait take longer than the timer's period
 * (a process with more memory mapped forks more slowly), signals would
 * otherwise follow each other with the main thread never leaving the
 * handler, and the run would take minutes instead of seconds. */
static volatile sig_atomic_t progress, progress_at_fork = -1;

static void fork_in_handler(int sig)
{
	(void)sig;
	if (progress == progress_at_fork)
		return;
	progress_at_fork = progress;
	int saved = errno;
	pid_t pid = fork();
	if (pid == 0) {
		/* Every 16th child returns from the handler: the operation the
		 * signal interrupted completes in the child, which then goes on
		 * allocating for a while (main). */
		if (atomic_load(&forks_done) % 16 != 0)
			_exit(0);
		in_child = 1;
		errno = saved;
		return;
	}
	if (pid > 0) {
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			atomic_fetch_add(&bad_children, 1);
			bad_status = status;
		}
		atomic_fetch_add(&forks_done, 1);
	}
	errno = saved;
}

/* Slow paths all the time: a batch of one class allocated then freed empties
 * and overflows the thread's list (refills, flushes), and large blocks go to
 * the arena every time. */
static void churn_once(uint64_t *seed, void **b)
{
	uint64_t r = st_rand(seed);
	size_t n = r % 4 == 0 ? st_log_size(r >> 8, 40000, 1 << 20) : st_log_size(r >> 8, 8, 32768);
	unsigned k = n > 32768 ? 4 : 200;
	for (unsigned i = 0; i < k; i++) {
		b[i] = malloc(n);
		CHECK(b[i] != NULL, "malloc(%zu) failed", n);
		*(volatile char *)b[i] = 1;
	}
	for (unsigned i = 0; i < k; i++)
		free(b[i]);
	atomic_fetch_add_explicit(&ops, 2 * k, memory_order_relaxed);
}

static void *churn(void *arg)
{
	(void)arg;
	uint64_t seed = 77;
	static void *b[200];
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		churn_once(&seed, b);
	return NULL;
}

int main(int argc, char **argv)
{
	st_need_preload("fork-signal");
	int nthreads = argc > 1 ? atoi(argv[1]) : 1;
	CHECK(nthreads == 1 || nthreads == 2, "THREADS is 1 or 2");
	pid_t dog = watchdog_start();
	/* The signal goes to the main thread only: the other thread is created
	 * with SIGUSR1 blocked (it inherits the mask) and keeps it blocked. */
	pthread_t t;
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	if (nthreads == 2) {
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
		CHECK(pthread_create(&t, NULL, churn, (void *)1) == 0, "pthread_create");
		pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fork_in_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	timer_t tm;
	struct sigevent ev;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGUSR1;
	CHECK(timer_create(CLOCK_MONOTONIC, &ev, &tm) == 0, "timer_create: %s", strerror(errno));
	struct itimerspec its = {{0, 1000000}, {0, 1000000}}; /* every ms */
	CHECK(timer_settime(tm, 0, &its, NULL) == 0, "timer_settime");

	/* The main thread churns until the handler has forked NFORKS times. */
	uint64_t seed = 5;
	static void *b[200];
	int child_rounds = 0;
	while (in_child || atomic_load(&forks_done) < NFORKS) {
		churn_once(&seed, b);
		progress = progress + 1;
		if (in_child && ++child_rounds == 50) {
			if (st_api.check() != 0)
				_exit(3);
			_exit(0);
		}
	}
	its.it_value.tv_nsec = its.it_interval.tv_nsec = 0;
	timer_settime(tm, 0, &its, NULL);
	timer_delete(tm);
	atomic_store(&stop, 1);
	if (nthreads == 2)
		pthread_join(t, NULL);
	kill(dog, SIGKILL);
	waitpid(dog, NULL, 0);
	CHECK(atomic_load(&bad_children) == 0, "%d children did not exit 0 (status %#x%s%s)",
	      atomic_load(&bad_children), bad_status, WIFSIGNALED(bad_status) ? ": signal " : "",
	      WIFSIGNALED(bad_status) ? strsignal(WTERMSIG(bad_status)) : "");
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok fork-signal: %d forks from a signal handler, %ld operations, %d thread(s)\n",
	       atomic_load(&forks_done), atomic_load(&ops), nthreads);
	return 0;
}
