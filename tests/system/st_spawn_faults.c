/* SPDX-License-Identifier: MIT */
/*
 * st_spawn_faults.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=16M.
 *
 *   st_spawn_faults spawn    posix_spawn must cost the parent no page fault
 *   st_spawn_faults fork     what fork costs instead (reported, never fails)
 *
 * A real-time thread runs a steady loop of mallocs and frees that writes
 * every block (rounds of ROUND blocks of 16 B .. 64 KiB, all on the pool
 * pre-faulted at start-up); it must take no page fault (getrusage
 * RUSAGE_THREAD).  Then the thread starts a program (this one, which exits
 * at once) and waits for it, twice (the first time faults in libc's code
 * for it: a real-time program does that at start-up), and runs the same
 * loop again:
 *   - posix_spawn: glibc creates the child with CLONE_VM | CLONE_VFORK, so
 *     the parent's address space is not copied: ZERO faults in the loop.
 *     posix_spawn itself maps a stack for the child (36 KiB with glibc
 *     2.36), which mlockall(MCL_FUTURE) pre-faults in that mmap: at most 16
 *     faults around it when memory is locked, none when it is not;
 *   - fork: the kernel copies the page tables and marks every private page
 *     copy-on-write, even locked ones; each page the loop then writes
 *     faults, while the child lives and after it has exited.  That is the
 *     kernel's behaviour for any private memory (README: "Processes, threads,
 *     TLS"); this mode prints the count, to show the contrast.
 */
#include <pthread.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "st_util.h"

#define ROUND 256
#define ROUNDS 400

extern char **environ;
static int use_fork;
static long faults_before, faults_start, faults_after;

static long thread_minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

static void steady_loop(uint64_t seed)
{
	static char *b[ROUND];
	static size_t n[ROUND];
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < ROUND; i++) {
			n[i] = st_log_size(st_rand(&seed), 16, 65536);
			b[i] = malloc(n[i]);
			if (!b[i])
				ST_FAIL("malloc(%zu) failed", n[i]);
			memset(b[i], i, n[i]);
		}
		for (int i = 0; i < ROUND; i++) {
			if ((unsigned char)b[i][n[i] - 1] != (unsigned char)i)
				ST_FAIL("block %d overwritten", i);
			free(b[i]);
		}
	}
}

/* Start this program (it exits at once) and wait for it. */
static void start_child(void)
{
	pid_t pid;
	if (use_fork) {
		pid = fork();
		if (pid == 0)
			_exit(0);
		CHECK(pid > 0, "fork: %s", strerror(errno));
	} else {
		char *argv[] = {"st_spawn_faults", "child", NULL};
		int e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
		CHECK(e == 0, "posix_spawn: %s", strerror(e));
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child failed (status %#x)", status);
}

static void *rt_thread(void *arg)
{
	(void)arg;
	steady_loop(1); /* warm-up: the thread's caches, its stack */
	long f0 = thread_minflt();
	steady_loop(1);
	faults_before = thread_minflt() - f0;

	start_child(); /* warm-up: libc's code for it is faulted in once */
	f0 = thread_minflt();
	start_child();
	faults_start = thread_minflt() - f0;

	f0 = thread_minflt();
	steady_loop(1);
	faults_after = thread_minflt() - f0;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return 0;
	CHECK(argc > 1 && (strcmp(argv[1], "spawn") == 0 || strcmp(argv[1], "fork") == 0),
	      "usage: st_spawn_faults spawn|fork");
	use_fork = strcmp(argv[1], "fork") == 0;
	st_need_preload(use_fork ? "fork-faults" : "spawn-faults");
	pthread_t t;
	CHECK(pthread_create(&t, NULL, rt_thread, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);
	if (faults_before != 0)
		st_skip("the steady loop faults before any child (%ld faults): nothing to compare",
			faults_before);
	if (use_fork) {
		printf("ok fork-faults: after fork the parent's steady loop took %ld page faults "
		       "(fork + waitpid: %ld), against 0 before: copy-on-write%s\n",
		       faults_after, faults_start,
		       faults_after ? "" : " (none here: this kernel copied eagerly?)");
		return 0;
	}
	/* posix_spawn maps the child's stack (36 KiB with glibc 2.36): under
	 * mlockall(MCL_FUTURE) that mmap pre-faults it, counted to this thread;
	 * unlocked, the child faults it in itself.  Nothing of the pool. */
	long locked = st_status_kb("VmLck") > 0;
	CHECK(faults_start <= (locked ? 16 : 0),
	      "posix_spawn + waitpid cost the real-time thread %ld page faults (memory %slocked)",
	      faults_start, locked ? "" : "not ");
	CHECK(faults_after == 0, "after posix_spawn the steady loop took %ld page faults",
	      faults_after);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok spawn-faults: the steady loop after posix_spawn + waitpid: 0 page faults "
	       "(posix_spawn itself: %ld, the child's stack%s)\n", faults_start,
	       locked ? ", pre-faulted by mlockall(MCL_FUTURE)" : "");
	return 0;
}
