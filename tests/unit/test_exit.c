/* SPDX-License-Identifier: MIT */
/*
 * test_exit.c - thread exit is bounded: it never waits for a statistics
 * reader (no RCU grace period) and never sends IPIs to other CPUs (no
 * membarrier), which would disturb real-time threads on isolated cores;
 * and rtalloc_stats() still counts every thread exactly once, live or
 * exited, while threads come and go under a reader.
 *
 * The child runs under a seccomp filter that kills the process at the first
 * membarrier system call.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "unit.h"

#define NTHREADS 64
#define PAIRS 1000

static int forbid_membarrier(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)ARRAY_LEN(f), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static atomic_int stop;

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct rtalloc_stats s = {.size = sizeof(s)};
		rtalloc_stats(&s);
	}
	return NULL;
}

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < PAIRS; i++)
		rtalloc_free(rtalloc_malloc(16 + (size_t)(i % 64) * 16));
	return NULL;
}

static int child_exits_under_reader(void *arg)
{
	(void)arg;
	if (unit_init(8u << 20, 8u << 20, 0, RTALLOC_EXHAUST_FAIL) != 0)
		return 2;
	struct rtalloc_stats s0 = {.size = sizeof(s0)};
	CHILD_CHECK(rtalloc_stats(&s0) == 0); /* a reader has read: before, exits sent IPIs from here on */
	CHILD_CHECK(forbid_membarrier() == 0);
	pthread_t r;
	CHILD_CHECK(pthread_create(&r, NULL, reader, NULL) == 0);
	for (int round = 0; round < 4; round++) {
		pthread_t t[NTHREADS / 4];
		for (int i = 0; i < NTHREADS / 4; i++)
			CHILD_CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
		for (int i = 0; i < NTHREADS / 4; i++)
			pthread_join(t[i], NULL);
	}
	atomic_store(&stop, 1);
	pthread_join(r, NULL);
	struct rtalloc_stats s1 = {.size = sizeof(s1)};
	CHILD_CHECK(rtalloc_stats(&s1) == 0);
	/* every worker's pairs, counted once (the reader allocates nothing) */
	CHILD_CHECK(s1.mallocs - s0.mallocs >= (uint64_t)NTHREADS * PAIRS);
	CHILD_CHECK(s1.mallocs - s0.mallocs < (uint64_t)NTHREADS * PAIRS + 64);
	CHILD_CHECK(s1.frees - s0.frees >= (uint64_t)NTHREADS * PAIRS);
	CHILD_CHECK(s1.threads <= 2);
	return 0;
}

static void thread_exit_never_waits_for_readers(void **state)
{
	UNUSED_STATE(state);
	struct child_result r;
	run_child(child_exits_under_reader, NULL, &r);
	if (r.signaled && r.signo == SIGSYS)
		fail_msg("a thread exit made a membarrier system call (RCU grace period)");
	assert_child_ok(&r);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(thread_exit_never_waits_for_readers),
	};
	return cmocka_run_group_tests_name("exit", tests, NULL, NULL);
}
