/* SPDX-License-Identifier: MIT */
/*
 * st_limits.c - librtalloc under the limits of the OS and untrusted input,
 * linked with -lrtalloc (no LD_PRELOAD: it also runs setuid, where ld.so
 * ignores LD_PRELOAD).  Driven by limits.sh, secure.sh and statsfs.sh; prints
 * key=value words on stdout, and writes to stderr only when a check fails.
 *
 *   st_limits stats
 *       pool=<pool_bytes> max=<pool_max_bytes> exported=<0|1> locked=<0|1>
 *       xdg_file=<1 if this process's statistics file is in $XDG_RUNTIME_DIR>
 *   st_limits aslimit MIB
 *       sets RLIMIT_AS to MIB MiB and runs itself again under it ("aslimit-child"):
 *       there 8 threads (default stacks) start and allocate, and a failing
 *       posix_memalign returns ENOMEM and leaves errno at ENOMEM.
 *   st_limits init-huge
 *       a later rtalloc_init() asking for a pool beyond RTALLOC_POOL_MAX (and
 *       SIZE_MAX) returns ENOMEM and commits nothing.
 *   st_limits threads N
 *       N threads alive at once (64 KiB stacks), each mallocs and frees;
 *       then rtalloc_stats must still work: threads=<live> exported=<0|1>
 */
#include <pthread.h>
#include <stdbool.h>
#include <rtalloc.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "st_util.h"

static struct rtalloc_stats stats(void)
{
	struct rtalloc_stats s = {.size = sizeof(s)};
	CHECK(rtalloc_stats(&s) == 0, "rtalloc_stats failed");
	return s;
}

static int print_stats(void)
{
	struct rtalloc_stats s = stats();
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char path[512];
	int in_xdg = 0;
	if (xdg) {
		snprintf(path, sizeof(path), "%s/rtalloc-%u-%d.stats", xdg, (unsigned)getuid(), (int)getpid());
		struct stat st; /* not access(): that is the real uid's view (setuid) */
		in_xdg = stat(path, &st) == 0;
	}
	printf("pool=%llu max=%llu exported=%u locked=%u xdg_file=%d\n", (unsigned long long)s.pool_bytes,
	       (unsigned long long)s.pool_max_bytes, s.exported, s.locked, in_xdg);
	return 0;
}

/* ---- threads ------------------------------------------------------------------ */

static pthread_barrier_t all_started;

static void *worker(void *arg)
{
	(void)arg;
	char *p = malloc(100);
	CHECK(p != NULL, "malloc(100) in a thread failed");
	p[0] = p[99] = 1;
	pthread_barrier_wait(&all_started); /* every thread alive (and counted) at once */
	pthread_barrier_wait(&all_started); /* the main thread has read the statistics */
	free(p);
	return NULL;
}

/* n threads alive together, each with an allocation; stacks of `stack` bytes
 * (0: the default). */
static void run_threads(unsigned n, size_t stack, bool print)
{
	pthread_t *t = calloc(n, sizeof(*t));
	CHECK(t != NULL, "calloc of %u thread ids failed", n);
	pthread_attr_t at;
	pthread_attr_init(&at);
	if (stack)
		pthread_attr_setstacksize(&at, stack);
	pthread_barrier_init(&all_started, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		int e = pthread_create(&t[i], &at, worker, NULL);
		CHECK(e == 0, "pthread_create of thread %u of %u: %s", i + 1, n, strerror(e));
	}
	pthread_barrier_wait(&all_started);
	struct rtalloc_stats s = stats();
	CHECK(s.threads >= n, "rtalloc_stats counts %u live threads, %u are alive", s.threads, n);
	CHECK(s.mallocs >= n, "rtalloc_stats counts %llu allocations", (unsigned long long)s.mallocs);
	if (print)
		printf("threads=%u exported=%u\n", s.threads, s.exported);
	pthread_barrier_wait(&all_started);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&all_started);
	pthread_attr_destroy(&at);
	free(t);
}

/* ---- RLIMIT_AS ------------------------------------------------------------------ */

static int aslimit_child(void)
{
	run_threads(8, 0, false);
	void *m = (void *)0x1;
	errno = 0;
	int e = posix_memalign(&m, 64, (size_t)1 << 42);
	CHECK(e == ENOMEM, "posix_memalign(64, 4 TiB) returned %d, want ENOMEM", e);
	CHECK(errno == ENOMEM, "posix_memalign failed with errno %d, want ENOMEM (as glibc)", errno);
	CHECK(m == (void *)0x1, "posix_memalign changed *memptr on failure");
	errno = 0;
	e = posix_memalign(&m, 64, SIZE_MAX);
	CHECK(e == ENOMEM && errno == ENOMEM, "posix_memalign(64, SIZE_MAX): %d, errno %d", e, errno);
	struct rtalloc_stats s = stats();
	printf("pool=%llu max=%llu\n", (unsigned long long)s.pool_bytes, (unsigned long long)s.pool_max_bytes);
	return 0;
}

static int init_huge(void)
{
	struct rtalloc_stats s0 = stats();
	/* Beyond the largest pool (4 TiB) and what the machine has.  (Beyond
	 * RTALLOC_POOL_MAX alone a later rtalloc_init delivers: st_initgrow.) */
	static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)1 << 62, ((size_t)4 << 40) + 4096};
	for (unsigned i = 0; i < 4; i++) {
		size_t want = sizes[i];
		struct rtalloc_config cfg = {.size = sizeof(cfg), .pool_size = want};
		int e = rtalloc_init(&cfg);
		struct rtalloc_stats s = stats();
		CHECK(e == ENOMEM, "rtalloc_init(pool_size %zu) returned %d, want ENOMEM (max %llu)", want, e,
		      (unsigned long long)s.pool_max_bytes);
		CHECK(s.pool_bytes == s0.pool_bytes, "rtalloc_init(pool_size %zu) changed the pool to %llu",
		      want, (unsigned long long)s.pool_bytes);
	}
	printf("pool=%llu max=%llu\n", (unsigned long long)s0.pool_bytes, (unsigned long long)s0.pool_max_bytes);
	return 0;
}

int main(int argc, char **argv)
{
	st_name = "limits";
	if (argc == 2 && strcmp(argv[1], "stats") == 0)
		return print_stats();
	if (argc == 2 && strcmp(argv[1], "init-huge") == 0)
		return init_huge();
	if (argc == 2 && strcmp(argv[1], "aslimit-child") == 0)
		return aslimit_child();
	if (argc == 3 && strcmp(argv[1], "aslimit") == 0) {
		struct rlimit rl;
		getrlimit(RLIMIT_AS, &rl);
		rl.rlim_cur = (rlim_t)strtoul(argv[2], NULL, 10) << 20;
		CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS): %s", strerror(errno));
		fflush(stdout);
		execl("/proc/self/exe", argv[0], "aslimit-child", (char *)NULL);
		ST_FAIL("exec: %s", strerror(errno));
	}
	if (argc == 3 && strcmp(argv[1], "threads") == 0) {
		run_threads((unsigned)strtoul(argv[2], NULL, 10), 64 << 10, true);
		return 0;
	}
	fprintf(stderr, "usage: st_limits stats | aslimit MIB | threads N\n");
	return 2;
}
