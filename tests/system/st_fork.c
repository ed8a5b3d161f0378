/* SPDX-License-Identifier: MIT */
/*
 * st_fork.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=16M.
 *
 * fork() from a multi-threaded program while three other threads allocate and
 * free (with cross-thread frees and large blocks, so arena locks are taken
 * all the time), 50 times, from the main thread and from other threads.  Each
 * child must:
 *   - read and free a block inherited from the parent;
 *   - allocate and free many blocks of every class and some large ones, and
 *     from a thread of its own;
 *   - have its memory locked again when the parent's was (VmLck >= the pool
 *     after it has allocated);
 *   - pass rtalloc_check() and exit 0 within 20 s (a deadlock is SIGALRM).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "st_util.h"

#define NWORKERS 3
#define NFORKS 50
#define NSHARED 64

static atomic_int stop;
static void *_Atomic shared[NSHARED]; /* blocks passed between workers */
static int parent_locked;
static size_t pool_bytes;
static char *inherited;

static void *worker(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL * ((uintptr_t)arg + 1);
	void *mine[32] = {0};
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t r = st_rand(&seed);
		unsigned k = (unsigned)(r % 32);
		if (mine[k]) {
			free(mine[k]);
			mine[k] = NULL;
			continue;
		}
		size_t n = (r >> 40) % 16 == 0 ? st_log_size(r >> 8, 65536, 512 << 10)
						: st_log_size(r >> 8, 8, 32768);
		char *p = malloc(n);
		if (!p)
			ST_FAIL("worker: malloc(%zu) failed", n);
		p[0] = 1;
		p[n - 1] = 2;
		if ((r >> 32) % 4 == 0) {
			/* Hand it to whichever worker comes next; free what was there. */
			void *old = atomic_exchange(&shared[(r >> 20) % NSHARED], p);
			free(old);
		} else {
			mine[k] = p;
		}
	}
	for (int k = 0; k < 32; k++)
		free(mine[k]);
	return NULL;
}

static void *child_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++) {
		char *p = malloc((size_t)(i % 200) * 37 + 1);
		if (!p)
			return (void *)1;
		p[0] = 3;
		free(p);
	}
	return NULL;
}

/* The child: never returns. */
static void child(int round)
{
	alarm(20);
	st_name = "fork (child)";
	long lck_before = st_status_kb("VmLck");
	for (int i = 0; i < 1000; i++)
		CHECK(inherited[i] == (char)(i * 7), "round %d: inherited block changed at %d", round, i);
	free(inherited);
	/* Locked again at the child's first free, by its only thread (no new
	 * thread has been set up yet). */
	if (parent_locked)
		CHECK(st_status_kb("VmLck") >= (long)(pool_bytes >> 10),
		      "round %d: the child's first free did not lock its memory: VmLck %ld kB", round,
		      st_status_kb("VmLck"));
	static char *b[600];
	uint64_t seed = (uint64_t)round * 1234567 + 1;
	for (int i = 0; i < 600; i++) {
		uint64_t r = st_rand(&seed);
		size_t n = i % 100 == 0 ? st_log_size(r, 65536, 1 << 20) : st_log_size(r, 8, 32768);
		b[i] = malloc(n);
		CHECK(b[i] != NULL, "round %d: malloc(%zu) in the child failed", round, n);
		memset(b[i], i & 0xff, n < 256 ? n : 256);
	}
	for (int i = 0; i < 600; i += 2) {
		CHECK((unsigned char)b[i][0] == (i & 0xff), "round %d: block %d overwritten", round, i);
		free(b[i]);
	}
	for (int i = 1; i < 600; i += 2) {
		b[i] = realloc(b[i], 5000);
		CHECK(b[i] && (unsigned char)b[i][0] == (i & 0xff), "round %d: realloc lost block %d", round, i);
	}
	pthread_t t;
	void *tr;
	CHECK(pthread_create(&t, NULL, child_thread, NULL) == 0, "round %d: pthread_create in the child", round);
	CHECK(pthread_join(t, &tr) == 0 && tr == NULL, "round %d: the child's thread failed", round);
	for (int i = 1; i < 600; i += 2)
		free(b[i]);
	long lck = st_status_kb("VmLck");
	if (parent_locked)
		CHECK(lck >= (long)(pool_bytes >> 10),
		      "round %d: the parent's memory was locked, the child's is not: VmLck %ld kB "
		      "(before allocating: %ld kB), pool %zu kB",
		      round, lck, lck_before, pool_bytes >> 10);
	CHECK(st_api.check() == 0, "round %d: rtalloc_check failed in the child", round);
	_exit(0);
}

static void fork_and_wait(int round)
{
	pid_t pid = fork();
	CHECK(pid >= 0, "fork failed: %s", strerror(errno));
	if (pid == 0)
		child(round);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	if (WIFSIGNALED(status))
		ST_FAIL("round %d: the child died of signal %d (%s)%s", round, WTERMSIG(status),
			strsignal(WTERMSIG(status)),
			WTERMSIG(status) == SIGALRM ? ": deadlock after fork?" : "");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: the child exited %d", round,
	      WEXITSTATUS(status));
}

static void *forking_thread(void *arg)
{
	fork_and_wait((int)(intptr_t)arg);
	return NULL;
}

int main(void)
{
	st_need_preload("fork");
	pool_bytes = mallinfo2().arena;
	parent_locked = st_status_kb("VmLck") >= (long)(pool_bytes >> 10);
	if (!parent_locked)
		printf("the parent's memory is not locked: the child's VmLck is not checked\n");
	inherited = malloc(1000);
	for (int i = 0; i < 1000; i++)
		inherited[i] = (char)(i * 7);

	/* Small stacks: each child's mlockall copies every locked page it shares. */
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 << 10);
	pthread_t w[NWORKERS];
	for (intptr_t i = 0; i < NWORKERS; i++)
		CHECK(pthread_create(&w[i], &at, worker, (void *)i) == 0, "pthread_create");
	usleep(10000);
	for (int round = 0; round < NFORKS; round++) {
		if (round % 5 == 4) {
			pthread_t t;
			CHECK(pthread_create(&t, &at, forking_thread, (void *)(intptr_t)round) == 0,
			      "pthread_create");
			pthread_join(t, NULL);
		} else {
			fork_and_wait(round);
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < NSHARED; i++)
		free(atomic_load(&shared[i]));
	free(inherited);
	CHECK(st_api.check() == 0, "rtalloc_check failed in the parent");
	printf("ok fork: %d children of a 4-thread parent allocated, freed and exited 0%s\n", NFORKS,
	       parent_locked ? ", locked again" : "");
	return 0;
}
