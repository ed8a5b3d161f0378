/* SPDX-License-Identifier: MIT */
/*
 * stat_target.c - a process for rtalloc-stat to look at (tests/stat).
 *
 * Runs under LD_PRELOAD=librtalloc.so (not linked with it: the rtalloc_* API
 * is found with dlsym) and has a thread named "rt-loop" that does what it is
 * told, one command per line on stdin, one answer per line on stdout:
 *
 *   fault N    rt-loop: mmap N pages, rtalloc_rt_begin(), touch them,
 *              rtalloc_rt_end()  ->  "faulted F" (F: the thread's minor faults
 *              in between, from getrusage(RUSAGE_THREAD))
 *   enter      rt-loop: rtalloc_rt_begin() and stay in the section  ->  "entered"
 *   leave      rt-loop: rtalloc_rt_end()  ->  "left"
 *   alloc N    main thread: N malloc/free pairs of assorted sizes, then an
 *              empty real-time section (publishes its counts)  ->  "allocated"
 *   try N      main thread: malloc(N), kept  ->  "got" or "null"
 *   heap NAME  a shared heap of 1 MiB named NAME (rtalloc_heap_create with
 *              RTALLOC_HEAP_SHARED), one block of it taken  ->  "heap" or "noheap"
 *   contend    rt-loop, inside a real-time section: heap blocks taken and
 *              given back while another thread does the same on the same
 *              (private) heap, until rt-loop had to wait for the heap's lock
 *              (its own count, rtalloc_stats) or 2,000,000 rounds  ->
 *              "waited W" (W: rt-loop's lock waits in sections after it; 0:
 *              the threads never met, the caller skips)
 *   exit C     exit(C) (the library's destructor runs)
 *
 * At start it prints "ready PID" once rt-loop has allocated (so it has a
 * statistics slot).  With arguments "--oneshot N C" it does "fault N", some
 * allocations and exit(C) without reading stdin (for rtalloc-stat -- CMD).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rtalloc.h" /* struct rtalloc_stats only: the functions come from dlsym */

static void (*rt_begin)(void);
static void (*rt_end)(void);
static void *(*heap_create)(const char *, size_t, unsigned);
static void *(*heap_alloc)(void *, size_t);
static void (*heap_free)(void *, void *);
static int (*stats)(struct rtalloc_stats *);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char cmd[64];   /* for rt-loop; empty when done */
static long answer;

static long thread_minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

/* N fresh pages mapped (outside the section), then each touched once inside
 * it: N minor faults (at least). */
static char *fresh_pages(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("stat_target: mmap");
		exit(1);
	}
	/* Under librtalloc's mlockall(MCL_FUTURE) the kernel populates new mappings
	 * at mmap: unlock these pages and drop them, so touching them faults. */
	munlock(p, len);
	madvise(p, len, MADV_DONTNEED);
	return p;
}

static long fault_pages(char *p, size_t len)
{
	long before = thread_minflt();
	for (size_t i = 0; i < len; i += 4096)
		((volatile char *)p)[i] = 1;
	long after = thread_minflt();
	munmap(p, len);
	return after - before;
}

static struct rtalloc_stats my_stats(void)
{
	struct rtalloc_stats s = {.size = sizeof(s)};
	stats(&s);
	return s;
}

static int stop_hammer;

static void *hammer(void *h)
{
	while (!__atomic_load_n(&stop_hammer, __ATOMIC_RELAXED)) {
		void *p = heap_alloc(h, 64);
		if (p)
			heap_free(h, p);
	}
	return NULL;
}

/* rt-loop's part of "contend", in its real-time section. */
static long contend(void)
{
	void *h = heap_create("contend", 1 << 20, 0);
	pthread_t th;
	if (!h || pthread_create(&th, NULL, hammer, h) != 0)
		return -1;
	uint64_t before = my_stats().thread_lock_waits;
	rt_begin();
	for (long i = 0; i < 2000000; i++) {
		void *p = heap_alloc(h, 64);
		if (p)
			heap_free(h, p);
		if (i % 256 == 0 && my_stats().thread_lock_waits > before)
			break;
	}
	rt_end();
	__atomic_store_n(&stop_hammer, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	return (long)my_stats().thread_rt_lock_waits;
}

static void *rt_loop(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "rt-loop");
	free(malloc(32)); /* a statistics slot of its own */
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!cmd[0])
			pthread_cond_wait(&cv, &mu);
		long n = 0;
		if (sscanf(cmd, "fault %ld", &n) == 1) {
			size_t len = (size_t)n * 4096;
			char *p = fresh_pages(len);
			rt_begin();
			answer = fault_pages(p, len);
			rt_end();
		} else if (strcmp(cmd, "enter") == 0) {
			rt_begin();
		} else if (strcmp(cmd, "leave") == 0) {
			rt_end();
		} else if (strcmp(cmd, "contend") == 0) {
			answer = contend();
		}
		cmd[0] = '\0';
		pthread_cond_broadcast(&cv);
	}
	return NULL;
}

/* Hand a command to rt-loop and wait until it is done. */
static long run_in_loop(const char *c)
{
	pthread_mutex_lock(&mu);
	snprintf(cmd, sizeof(cmd), "%s", c);
	pthread_cond_broadcast(&cv);
	while (cmd[0])
		pthread_cond_wait(&cv, &mu);
	long a = answer;
	pthread_mutex_unlock(&mu);
	return a;
}

static void churn(long n)
{
	static const size_t sizes[] = {16, 24, 100, 600, 3000, 9000, 40000, 300000};
	void *keep[64] = {0};
	for (long i = 0; i < n; i++) {
		size_t k = (size_t)i % 64;
		free(keep[k]);
		keep[k] = malloc(sizes[(size_t)i % 8]);
		if (!keep[k]) {
			perror("stat_target: malloc");
			exit(1);
		}
		memset(keep[k], 1, 16);
	}
	for (size_t k = 0; k < 64; k++)
		free(keep[k]);
	/* The end of a real-time section publishes every counter of the thread
	 * (its slow paths publish their class and one more, in turn): the
	 * totals rtalloc-stat reads then include all of these pairs. */
	rt_begin();
	rt_end();
}

int main(int argc, char **argv)
{
	rt_begin = (void (*)(void))dlsym(RTLD_DEFAULT, "rtalloc_rt_begin");
	rt_end = (void (*)(void))dlsym(RTLD_DEFAULT, "rtalloc_rt_end");
	heap_create = (void *(*)(const char *, size_t, unsigned))dlsym(RTLD_DEFAULT, "rtalloc_heap_create");
	heap_alloc = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "rtalloc_heap_alloc");
	heap_free = (void (*)(void *, void *))dlsym(RTLD_DEFAULT, "rtalloc_heap_free");
	stats = (int (*)(struct rtalloc_stats *))dlsym(RTLD_DEFAULT, "rtalloc_stats");
	if (!rt_begin || !rt_end || !heap_create || !heap_alloc || !heap_free || !stats) {
		fprintf(stderr, "stat_target: librtalloc is not loaded (run with LD_PRELOAD)\n");
		return 1;
	}
	pthread_t th;
	if (pthread_create(&th, NULL, rt_loop, NULL) != 0) {
		fprintf(stderr, "stat_target: pthread_create failed\n");
		return 1;
	}
	if (argc == 4 && strcmp(argv[1], "--oneshot") == 0) {
		char c[64];
		snprintf(c, sizeof(c), "fault %s", argv[2]);
		run_in_loop(c);
		churn(5000);
		exit(atoi(argv[3]));
	}
	run_in_loop("noop");
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	char line[128];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		long n;
		if (strncmp(line, "fault ", 6) == 0) {
			printf("faulted %ld\n", run_in_loop(line));
		} else if (strcmp(line, "enter") == 0) {
			run_in_loop(line);
			printf("entered\n");
		} else if (strcmp(line, "leave") == 0) {
			run_in_loop(line);
			printf("left\n");
		} else if (strcmp(line, "contend") == 0) {
			printf("waited %ld\n", run_in_loop(line));
		} else if (sscanf(line, "alloc %ld", &n) == 1) {
			churn(n);
			printf("allocated\n");
		} else if (sscanf(line, "try %ld", &n) == 1) {
			void *p = malloc((size_t)n);
			printf("%s\n", p ? "got" : "null");
		} else if (strncmp(line, "heap ", 5) == 0) {
			void *h = heap_create(line + 5, 1 << 20, 0x1u /* RTALLOC_HEAP_SHARED */);
			printf("%s\n", h && heap_alloc(h, 1000) ? "heap" : "noheap");
		} else if (sscanf(line, "exit %ld", &n) == 1) {
			exit((int)n);
		} else {
			printf("unknown command '%s'\n", line);
		}
	}
	return 0;
}
