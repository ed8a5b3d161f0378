/* SPDX-License-Identifier: MIT */
/*
 * st_cancel_grow.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=1M
 * RTALLOC_POOL_MAX=64M (RTALLOC_ON_EXHAUST=grow, the default).
 *
 * malloc() is not a cancellation point (POSIX), and must not become one: a
 * thread with a pending deferred cancellation request calls malloc(4M), which
 * grows the pool.  malloc must return; the thread is then cancelled at its
 * own pthread_testcancel(), and the allocator must stay usable by the others.
 *
 * What can go wrong: the growth notice (the first growth prints a line on
 * stderr with write(2), a cancellation point) is written while the arena lock
 * is held; the pending cancellation is acted upon inside write(), the thread
 * unwinds out of malloc holding the arena's lock, and the next allocation
 * that needs the arena waits forever.  The scenario runs in a child with an
 * alarm so that a deadlock is reported instead of hanging the test.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "st_util.h"

static atomic_int go, malloc_returned;

static void *victim(void *arg)
{
	(void)arg;
	while (!atomic_load(&go)) /* no cancellation point here */
		;
	void *p = malloc(4 << 20); /* beyond the 1M pool: the first growth */
	atomic_store(&malloc_returned, p ? 1 : 2);
	free(p);
	pthread_testcancel(); /* the cancellation is acted upon here */
	return NULL;
}

static void scenario(void)
{
	size_t pool = mallinfo2().arena;
	pthread_t t;
	CHECK(pthread_create(&t, NULL, victim, NULL) == 0, "pthread_create");
	CHECK(pthread_cancel(t) == 0, "pthread_cancel"); /* pending: the thread spins */
	atomic_store(&go, 1);
	void *r;
	CHECK(pthread_join(t, &r) == 0, "pthread_join");
	int returned = atomic_load(&malloc_returned);
	printf("the pool grew from %zu to %zu bytes; malloc %s\n", pool, mallinfo2().arena,
	       returned == 1 ? "returned" : returned == 2 ? "returned NULL" : "never returned (cancelled inside)");
	fflush(stdout);
	/* Everyone else must still be able to allocate, growth included. */
	alarm(5);
	for (int i = 0; i < 8; i++) {
		void *p = malloc(2 << 20);
		CHECK(p != NULL, "malloc(2M) after the cancellation failed");
		free(p);
	}
	alarm(0);
	CHECK(returned == 1, "malloc acted upon a pending cancellation: the thread was cancelled inside it");
	CHECK(st_api.check() == 0, "rtalloc_check failed");
}

int main(void)
{
	st_need_preload("cancel-grow");
	CHECK(mallinfo2().arena < ((size_t)4 << 20), "run with RTALLOC_POOL_SIZE=1M");
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		scenario();
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		ST_FAIL("deadlock: after a thread was cancelled inside malloc, the next malloc waited "
			"more than 5 s (the cancelled thread still holds the arena lock)");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the scenario failed (status %#x)", status);
	printf("ok cancel-grow\n");
	return 0;
}
