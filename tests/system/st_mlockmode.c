/* SPDX-License-Identifier: MIT */
/*
 * st_mlockmode.c - what each RTALLOC_MLOCK mode locks and makes resident, and
 * RTALLOC_HUGEPAGES, seen from the program (mlockmode.sh runs it with
 * LD_PRELOAD=librtalloc.so and a setting).  Prints key=value words on stdout:
 *
 *   st_mlockmode info POOL
 *     vmlck_kb     VmLck after start-up (POOL: the pool's size in bytes)
 *     madvise      madvise(MADV_DONTNEED) on a mapping the program made and
 *                  touched after start-up: 0, or the errno name (EINVAL on a
 *                  locked mapping: what makes V8 abort at start)
 *     map_lck_kb   VmLck added by mapping 1 MiB after start-up
 *     bss_kb       resident KiB of a 16 MiB static array never touched
 *     stack_kb     resident KiB of a new thread's stack (default size) at its
 *                  start, and stack_prep_kb after rtalloc_thread_prepare
 *     grow_lck_kb  VmLck added by a block of 2 POOL (the pool grows)
 *   st_mlockmode huge
 *     thp_kb       AnonHugePages of the mapping that holds a pool block
 *     ctl_kb       the same of 4 MiB the program maps itself with
 *                  MADV_HUGEPAGE and touches: 0 when the kernel has no huge
 *                  page to give now (the check is then skipped)
 *   st_mlockmode fork
 *     child_vmlck_kb  VmLck of a child of fork after its first slow path
 *                     (locks are not inherited: the child locks again)
 *   st_mlockmode trim POOL   (RTALLOC_ON_EXHAUST=fail)
 *     usable       malloc_usable_size of a block of POOL/4 + 4 KiB
 *     got1         64 KiB blocks the pool still gives beside it
 *     got2         64 KiB blocks it gives once everything is freed
 */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "st_util.h"

static char bss[16 << 20];

/* Resident KiB of [lo, lo + len) (page-aligned lo). */
static long resident_kb(void *lo, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = (len + pg - 1) / pg;
	static unsigned char vec[(64 << 20) / 4096];
	CHECK(n <= sizeof(vec), "range of %zu pages too large", n);
	CHECK(mincore(lo, len, vec) == 0, "mincore: %s", strerror(errno));
	long r = 0;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r * (long)(pg >> 10);
}

static long stack_kb, stack_prep_kb;

static long own_stack_kb(void)
{
	pthread_attr_t at;
	void *lo;
	size_t sz;
	CHECK(pthread_getattr_np(pthread_self(), &at) == 0, "pthread_getattr_np");
	pthread_attr_getstack(&at, &lo, &sz);
	pthread_attr_destroy(&at);
	return resident_kb(lo, sz);
}

static void *thread_main(void *arg)
{
	(void)arg;
	stack_kb = own_stack_kb();
	CHECK(st_api.thread_prepare() == 0, "rtalloc_thread_prepare failed");
	stack_prep_kb = own_stack_kb();
	return NULL;
}

static const char *errname(int e)
{
	return e == 0 ? "0" : e == EINVAL ? "EINVAL" : e == ENOMEM ? "ENOMEM" : e == EPERM ? "EPERM" : "other";
}

static void info(size_t pool)
{
	long lck = st_status_kb("VmLck");
	/* A mapping of the program's own, made after start-up. */
	size_t len = 1 << 20;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	long map_lck = st_status_kb("VmLck") - lck;
	memset(m, 1, len);
	int e = madvise(m, len, MADV_DONTNEED) == 0 ? 0 : errno;
	CHECK(e != 0 || m[0] == 0, "MADV_DONTNEED succeeded but the page kept its contents");
	munmap(m, len);
	/* its whole pages only: the ones at its ends hold other variables too */
	long bss_kb = resident_kb((void *)(((uintptr_t)bss + 4095) & ~(uintptr_t)4095), sizeof(bss) - 8192);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0, "pthread_create");
	pthread_join(t, NULL);
	/* A block twice the pool: the pool grows by it. */
	long before = st_status_kb("VmLck");
	char *big = malloc(2 * pool);
	CHECK(big != NULL, "malloc(%zu) failed", 2 * pool);
	long grow_lck = st_status_kb("VmLck") - before;
	free(big);
	printf("vmlck_kb=%ld madvise=%s map_lck_kb=%ld bss_kb=%ld stack_kb=%ld stack_prep_kb=%ld "
	       "grow_lck_kb=%ld\n", lck, errname(e), map_lck, bss_kb, stack_kb, stack_prep_kb, grow_lck);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
}

/* AnonHugePages of the mapping in /proc/self/smaps that holds p. */
static long thp_kb(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	CHECK(f != NULL, "/proc/self/smaps: %s", strerror(errno));
	char line[512];
	bool in = false;
	long kb = -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* 64 KiB blocks until malloc fails; all freed again. */
static size_t count_64k(void)
{
	static void *v[4096];
	size_t n = 0;
	while (n < 4096 && (v[n] = malloc(65536)) != NULL)
		memset(v[n++], 7, 65536);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	return n;
}

static void trim(size_t pool)
{
	size_t n = pool / 4 + 4096;
	char *a = malloc(n);
	CHECK(a != NULL, "malloc(%zu) failed", n);
	size_t u = st_api.usable_size(a);
	CHECK(u >= n, "malloc_usable_size %zu < %zu", u, n);
	memset(a, 3, u);
	size_t got1 = count_64k();
	/* realloc within the kept pages stays in place, beyond them moves intact */
	CHECK(realloc(a, u) == a, "realloc to the usable size moved the block");
	char *b = realloc(a, u + 1);
	CHECK(b != NULL, "realloc(%zu) failed", u + 1);
	for (size_t i = 0; i < u; i++)
		CHECK(b[i] == 3, "realloc lost byte %zu", i);
	free(b);
	size_t got2 = count_64k();
	printf("usable=%zu got1=%zu got2=%zu\n", u, got1, got2);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
}

int main(int argc, char **argv)
{
	st_need_preload("st_mlockmode");
	if (argc == 3 && strcmp(argv[1], "info") == 0) {
		info(strtoull(argv[2], NULL, 0));
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "fork") == 0) {
		int fd[2];
		CHECK(pipe(fd) == 0, "pipe");
		pid_t pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			free(malloc(100000)); /* a slow path: the child locks again there */
			long kb = st_status_kb("VmLck");
			CHECK(write(fd[1], &kb, sizeof(kb)) == (ssize_t)sizeof(kb), "write");
			_exit(0);
		}
		long kb = -1;
		CHECK(read(fd[0], &kb, sizeof(kb)) == (ssize_t)sizeof(kb), "read");
		int status;
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
		printf("child_vmlck_kb=%ld\n", kb);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "trim") == 0) {
		trim(strtoull(argv[2], NULL, 0));
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "huge") == 0) {
		void *p = malloc(1 << 20);
		size_t len = 8 << 20;
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
		char *a = (char *)(((uintptr_t)m + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
		madvise(a, 4 << 20, MADV_HUGEPAGE);
		memset(a, 1, 4 << 20);
		printf("thp_kb=%ld ctl_kb=%ld\n", thp_kb(p), thp_kb(a));
		munmap(m, len);
		free(p);
		return 0;
	}
	fprintf(stderr, "usage: st_mlockmode info POOL | huge | fork | trim POOL\n");
	return 2;
}
