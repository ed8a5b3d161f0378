/* SPDX-License-Identifier: MIT */
/*
 * st_faults.c - a real-time loop that faults on known pages in known
 * functions, for RTALLOC_FAULTS=locate (faults.sh):
 *   touch_new_stack_page   a stack page below everything pre-faulted (stack)
 *   touch_fresh_map_page   a page of an anonymous mapping never touched
 *   touch_file_page        a page of a file mapping never touched (FILE)
 * Each of ROUNDS sections takes a fresh page of each.  The loop runs in a
 * thread of its own ("thread") or in the main thread ("main"); "fork": in
 * the main thread, then again in a child of fork (whose parent's event and
 * ring are not its own), which must exit 0; "threads": in THREADS threads at
 * once (more rings than an unprivileged user may map).
 * With STAT, after the loop: STAT [ARG] PID runs (rtalloc-stat on this process,
 * the mappings still there).
 * Usage: st_faults thread|main|fork FILE [STAT [ARG]]
 */
#include <alloca.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtalloc.h"

#define ROUNDS 4
#define THREADS 64
#define PAGE 4096
/* Below the stack rtalloc_thread_prepare pre-faults (128 KiB by default). */
#define DEPTH ((size_t)512 << 10)

static volatile char sink;
static char *anon, *file;
static pthread_barrier_t all_prepared; /* "threads": every ring open at once */
static int barrier;

__attribute__((noinline)) static void touch_new_stack_page(unsigned round)
{
	/* every round one page deeper: a fresh page each time */
	volatile char *p = alloca(DEPTH + (size_t)round * 4 * PAGE);
	p[0] = (char)round;
	sink = p[0];
}

__attribute__((noinline)) static void touch_fresh_map_page(unsigned round)
{
	/* 2 MiB apart: a transparent huge page never covers the next one */
	((volatile char *)anon)[(size_t)round << 21] = 1;
}

__attribute__((noinline)) static void touch_file_page(unsigned round)
{
	/* 1 MiB apart: beyond the kernel's fault-around */
	sink = ((volatile const char *)file)[(size_t)round << 20];
}

static void *loop(void *arg)
{
	(void)arg;
	if (rtalloc_thread_prepare() != 0) {
		fprintf(stderr, "st_faults: rtalloc_thread_prepare failed\n");
		exit(1);
	}
	if (barrier)
		pthread_barrier_wait(&all_prepared);
	for (unsigned r = 0; r < ROUNDS; r++) {
		rtalloc_rt_begin();
		touch_new_stack_page(r);
		touch_fresh_map_page(r);
		touch_file_page(r);
		rtalloc_rt_end();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 5 ||
	    (strcmp(argv[1], "thread") && strcmp(argv[1], "main") && strcmp(argv[1], "fork") &&
	     strcmp(argv[1], "threads"))) {
		fprintf(stderr, "usage: st_faults thread|main|fork|threads FILE [STAT [ARG]]\n");
		return 2;
	}
	size_t len = (size_t)ROUNDS << 21, flen = (size_t)ROUNDS << 20;
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (anon == MAP_FAILED || fd < 0 || ftruncate(fd, (off_t)flen) != 0) {
		perror("st_faults");
		return 1;
	}
	file = mmap(NULL, flen, PROT_READ, MAP_SHARED, fd, 0);
	if (file == MAP_FAILED) {
		perror("st_faults: mmap");
		return 1;
	}
	close(fd);
	if (strcmp(argv[1], "main") == 0) {
		loop(NULL);
	} else if (strcmp(argv[1], "fork") == 0) {
		loop(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			/* fresh pages again: the child's own copy of the mappings */
			munmap(anon, len);
			anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				    -1, 0);
			if (anon == MAP_FAILED)
				_exit(1);
			loop(NULL);
			_exit(0);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "st_faults: the child of fork failed (status %#x)\n", pid < 0 ? -1 : st);
			return 1;
		}
	} else {
		pthread_t t[THREADS];
		pthread_attr_t at;
		unsigned n = strcmp(argv[1], "threads") == 0 ? THREADS : 1;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, (size_t)2 << 20);
		barrier = n > 1;
		if (barrier)
			pthread_barrier_init(&all_prepared, NULL, n);
		for (unsigned i = 0; i < n; i++)
			if (pthread_create(&t[i], &at, loop, NULL) != 0) {
				fprintf(stderr, "st_faults: pthread_create failed\n");
				return 1;
			}
		for (unsigned i = 0; i < n; i++)
			pthread_join(t[i], NULL);
	}
	if (argc >= 4) {
		char pid[24];
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			if (argc == 5)
				execl(argv[3], argv[3], argv[4], pid, (char *)NULL);
			else
				execl(argv[3], argv[3], pid, (char *)NULL);
			_exit(127);
		}
		int st;
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "st_faults: %s failed\n", argv[3]);
			return 1;
		}
	}
	/* the mappings stay until exit: the report looks their kind up */
	return 0;
}
