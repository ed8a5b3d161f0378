/* SPDX-License-Identifier: MIT */
/*
 * st_drop.c - a daemon that starts as root and drops to another user, under
 * LD_PRELOAD (drop.sh): allocates, switches to uid 65534 (argv[1]: setresuid,
 * setuid, setreuid, or seteuid: a temporary drop still in force at exit),
 * then allocates, starts a thread (a new mapping: its stack) and exits 0.
 * With argv[2] = "wait": after the switch, prints "dropped" and waits for a
 * line on stdin (drop.sh runs rtalloc-stat meanwhile).  Prints "pid=N".
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *worker(void *arg)
{
	(void)arg;
	void *p[64];
	for (int i = 0; i < 64; i++)
		if (!(p[i] = malloc(64 + (size_t)i * 512)))
			return (void *)1;
	for (int i = 0; i < 64; i++)
		free(p[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "setresuid";
	bool wait = argc > 2 && strcmp(argv[2], "wait") == 0;
	if (geteuid() != 0) {
		fprintf(stderr, "st_drop: must start as root\n");
		return 77;
	}
	printf("pid=%d\n", (int)getpid());
	fflush(stdout);
	void *keep[100];
	for (int i = 0; i < 100; i++)
		keep[i] = malloc(1000);
	int r;
	if (strcmp(how, "setuid") == 0)
		r = setuid(65534);
	else if (strcmp(how, "setreuid") == 0)
		r = setreuid(65534, 65534);
	else if (strcmp(how, "seteuid") == 0)
		r = seteuid(65534);
	else
		r = setresuid(65534, 65534, 65534);
	if (r != 0) {
		fprintf(stderr, "st_drop: %s(65534): %s\n", how, strerror(errno));
		return 2;
	}
	if (geteuid() != 65534) {
		fprintf(stderr, "st_drop: euid %u after %s\n", (unsigned)geteuid(), how);
		return 2;
	}
	for (int i = 0; i < 100; i++) {
		free(keep[i]);
		keep[i] = malloc(2000);
	}
	pthread_t t;
	void *res = (void *)1;
	int e = pthread_create(&t, NULL, worker, NULL);
	if (e != 0) {
		fprintf(stderr, "st_drop: pthread_create after %s: %s\n", how, strerror(e));
		return 3;
	}
	pthread_join(t, &res);
	if (res != NULL) {
		fprintf(stderr, "st_drop: the thread's allocations failed\n");
		return 4;
	}
	if (wait) {
		printf("dropped\n");
		fflush(stdout);
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 5;
	}
	for (int i = 0; i < 100; i++)
		free(keep[i]);
	printf("done\n");
	return 0;
}
