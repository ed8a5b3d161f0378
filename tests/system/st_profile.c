/* SPDX-License-Identifier: MIT */
/*
 * st_profile.c - a real-time loop's first cycles, for profile.sh.
 *
 * A thread named "audio" calls rtalloc_thread_prepare(), then runs CYCLES
 * real-time sections, each of which allocates more blocks at once than the
 * prepared (half-filled) cache holds: 48 of 64 bytes, 6 of 8 KiB and 2 of
 * 128 KiB (a large class), then frees them.  Before its loop it takes and
 * frees two huge blocks (outside the sections).  It prints
 *   first_rt_slow=N   slow-path entries in the first FIRST sections
 *   rt_slow=N         in all of them
 *   pool=N            the pool's bytes
 * With "wait" it then prints "ready" and waits for its standard input to
 * close (rtalloc-stat --profile reads it meanwhile).  Linked with -lrtalloc.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtalloc.h"

#define CYCLES 20
#define FIRST 3

static unsigned long long first_slow, all_slow;

static unsigned long long rt_slow(void)
{
	struct rtalloc_stats s = {.size = sizeof(s)};
	if (rtalloc_stats(&s) != 0) {
		fprintf(stderr, "FAIL profile: rtalloc_stats\n");
		exit(1);
	}
	return (unsigned long long)s.rt_slow;
}

static void *audio(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "audio");
	void *huge[2] = {malloc(1536 << 10), malloc(1536 << 10)};
	free(huge[0]);
	free(huge[1]);
	if (rtalloc_thread_prepare() != 0) {
		fprintf(stderr, "FAIL profile: rtalloc_thread_prepare\n");
		exit(1);
	}
	unsigned long long before = rt_slow();
	for (int cycle = 0; cycle < CYCLES; cycle++) { /* bound: CYCLES */
		void *small[48], *med[6], *big[2];
		rtalloc_rt_begin();
		for (int i = 0; i < 48; i++)
			small[i] = malloc(64);
		for (int i = 0; i < 6; i++)
			med[i] = malloc(8192);
		for (int i = 0; i < 2; i++)
			big[i] = malloc(128 << 10);
		for (int i = 0; i < 48; i++)
			free(small[i]);
		for (int i = 0; i < 6; i++)
			free(med[i]);
		for (int i = 0; i < 2; i++)
			free(big[i]);
		rtalloc_rt_end();
		if (cycle + 1 == FIRST)
			first_slow = rt_slow() - before;
	}
	all_slow = rt_slow() - before;
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	if (pthread_create(&t, NULL, audio, NULL) != 0 || pthread_join(t, NULL) != 0) {
		fprintf(stderr, "FAIL profile: pthread_create\n");
		return 1;
	}
	struct rtalloc_stats s = {.size = sizeof(s)};
	rtalloc_stats(&s);
	printf("first_rt_slow=%llu\nrt_slow=%llu\npool=%llu\n", first_slow, all_slow,
	       (unsigned long long)s.pool_bytes);
	if (argc > 1 && strcmp(argv[1], "wait") == 0) {
		printf("ready\n");
		fflush(stdout);
		char buf[64];
		while (read(0, buf, sizeof(buf)) > 0)
			;
	}
	return 0;
}
