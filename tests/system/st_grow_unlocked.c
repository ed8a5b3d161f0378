/* SPDX-License-Identifier: MIT */
/*
 * st_grow_unlocked.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=2M
 * RTALLOC_POOL_MAX=64M (RTALLOC_ON_EXHAUST=grow, the default).
 *
 * Pool growth is a non-real-time event for the thread that needs it, and
 * only for it: the other threads of the arena must keep being served.  The
 * first growth writes a notice on stderr; here stderr is a pipe that nobody
 * reads and that is already full, so the growing thread blocks in that
 * write for as long as the test wants (the real scenario: a program whose
 * stderr goes to a stalled logger).
 *
 *   1. The pool is used up to less than 1 MiB free.
 *   2. Thread G mallocs 4 MiB: the pool grows, and G blocks in the notice.
 *   3. Thread H mallocs 1 MiB: it needs growth too, and waits for G's.
 *   4. The main thread does NOPS mallocs and frees of small blocks (refills
 *      and flushes on the same arena): all of them must complete while G
 *      and H are still blocked (a watchdog turns a wait into a failure).
 *   5. The pipe is drained: G gets its block; H gets one of the pages G
 *      added, without a second growth (the statistics count one).
 *
 * What can go wrong: the arena lock is held across the growth (mprotect,
 * pre-faulting, mlock, the notice), and every thread of the arena waits.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "rtalloc.h"
#include "st_util.h"

#define NOPS 20000
#define WATCHDOG 20 /* seconds */

static atomic_int tid_g, tid_h, done_g, done_h;
static void *block_g, *block_h;
static atomic_long ops;

static void watchdog(int sig)
{
	(void)sig;
	char msg[200];
	int n = snprintf(msg, sizeof(msg),
			 "FAIL grow-unlocked: after %d s, %ld of %d operations done while another "
			 "thread grows the pool: the arena is held during growth\n",
			 WATCHDOG, atomic_load(&ops), NOPS);
	if (write(1, msg, (size_t)n) < 0) /* stdout: stderr is the blocked pipe */
		_exit(2);
	_exit(1);
}

static void *grower(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	atomic_int *tid = n > (1 << 20) ? &tid_g : &tid_h;
	atomic_store(tid, (int)syscall(SYS_gettid));
	void *p = malloc(n);
	if (n > (1 << 20)) {
		block_g = p;
		atomic_store(&done_g, 1);
	} else {
		block_h = p;
		atomic_store(&done_h, 1);
	}
	return NULL;
}

/* Is thread tid blocked in system call nr (/proc/self/task/TID/syscall)? */
static int in_syscall(int tid, long nr)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	if (st_read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	return strtol(buf, NULL, 10) == nr;
}

static void wait_blocked(atomic_int *tid, long nr, const char *what)
{
	for (int i = 0; i < 10000; i++) { /* 10 s */
		int t = atomic_load(tid);
		if (t && in_syscall(t, nr))
			return;
		usleep(1000);
	}
	ST_FAIL("%s never blocked in system call %ld", what, nr);
}

int main(void)
{
	st_need_preload("grow-unlocked");
	int (*stats)(struct rtalloc_stats *) = (int (*)(struct rtalloc_stats *))st_sym("rtalloc_stats");
	struct rtalloc_stats s0;
	memset(&s0, 0, sizeof(s0));
	s0.size = sizeof(s0);
	CHECK(stats(&s0) == 0 && s0.grows == 0, "the pool has grown already (%llu)",
	      (unsigned long long)s0.grows);
	size_t pool = mallinfo2().arena;
	CHECK(pool < (4u << 20), "run with RTALLOC_POOL_SIZE=2M (pool %zu)", pool);

	/* 1. Less than 1 MiB free: no 1 MiB block, no 4 MiB block. */
	static void *fill[64];
	unsigned nfill = 0;
	while (mallinfo2().fordblks >= (1 << 20) && nfill < 64) {
		fill[nfill] = malloc(128 << 10);
		CHECK(fill[nfill] != NULL, "malloc(128K)");
		nfill++;
	}
	CHECK(stats(&s0) == 0 && s0.grows == 0, "filling the pool grew it");

	/* stderr: a full pipe nobody reads (kept open: the notice then blocks). */
	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	fflush(stderr);
	int saved_err = dup(2);
	CHECK(dup2(pfd[1], 2) == 2, "dup2");
	fcntl(pfd[1], F_SETFL, O_NONBLOCK);
	static char junk[4096];
	memset(junk, '.', sizeof(junk));
	while (write(pfd[1], junk, sizeof(junk)) > 0 || write(pfd[1], junk, 1) > 0)
		;
	fcntl(pfd[1], F_SETFL, 0);
	signal(SIGALRM, watchdog);
	alarm(WATCHDOG);

	/* 2, 3. G grows and blocks in its notice; H waits for G's growth. */
	pthread_t g, h;
	CHECK(pthread_create(&g, NULL, grower, (void *)(uintptr_t)(4 << 20)) == 0, "pthread_create");
	wait_blocked(&tid_g, SYS_write, "the growing thread's notice");
	CHECK(pthread_create(&h, NULL, grower, (void *)(uintptr_t)(1 << 20)) == 0, "pthread_create");
	wait_blocked(&tid_h, SYS_futex, "the second thread that needs growth");

	/* 4. The arena serves this thread meanwhile: refills and flushes. */
	static void *b[100];
	uint64_t seed = 9;
	while (atomic_load(&ops) < NOPS) {
		size_t n = st_log_size(st_rand(&seed), 16, 2048);
		for (int i = 0; i < 100; i++) {
			b[i] = malloc(n);
			CHECK(b[i] != NULL, "malloc(%zu) during growth", n);
			memset(b[i], i, n < 64 ? n : 64);
		}
		for (int i = 0; i < 100; i++)
			free(b[i]);
		atomic_fetch_add(&ops, 200);
	}
	CHECK(!atomic_load(&done_g) && !atomic_load(&done_h),
	      "the growing threads returned before the notice could be written");
	alarm(0);

	/* 5. Drain the pipe: G's notice goes through, G and H get their blocks. */
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	static char sink[65536];
	for (int i = 0; i < 10000 && !(atomic_load(&done_g) && atomic_load(&done_h)); i++) {
		while (read(pfd[0], sink, sizeof(sink)) > 0)
			;
		usleep(1000);
	}
	pthread_join(g, NULL);
	pthread_join(h, NULL);
	dup2(saved_err, 2);
	CHECK(block_g != NULL && block_h != NULL, "malloc after growth: %p %p", block_g, block_h);
	struct rtalloc_stats s1;
	memset(&s1, 0, sizeof(s1));
	s1.size = sizeof(s1);
	CHECK(stats(&s1) == 0, "rtalloc_stats");
	CHECK(s1.grows == 1, "%llu growths: the second thread grew again though the first one's pages "
	      "had room for it", (unsigned long long)s1.grows);
	free(block_g);
	free(block_h);
	for (unsigned i = 0; i < nfill; i++)
		free(fill[i]);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok grow-unlocked: %d operations served while the pool grew (notice blocked on stderr); "
	       "pool %zu -> %zu bytes, one growth for two threads\n", NOPS, pool, mallinfo2().arena);
	return 0;
}
