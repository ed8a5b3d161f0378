/* SPDX-License-Identifier: MIT */
/*
 * rtb_startup.c - what pre-faulting a pool costs at start-up.
 *
 * "startup" spawns rtbench itself as a child with LD_PRELOAD (and
 * RTALLOC_POOL_SIZE or RTRECIPE_POOL) set for the child only, and passes it
 * the CLOCK_MONOTONIC time just before the spawn.  The child reports how long
 * it took to reach main() (exec, dynamic loading, every constructor: that is
 * where a preloaded allocator sets its pool up) and how long its first
 * malloc+free took (in case the pool is set up lazily).  The parent reports
 * the wall time until the child has exited (which includes unmapping).
 *
 * "populate" is the physical reference: mmap(MAP_POPULATE) of the same size
 * in this process, i.e. what the kernel needs to hand over that many zeroed,
 * resident pages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ENVP 512

int rtb_startup(const struct rtb_opts *o)
{
	static char *envp[MAX_ENVP];
	static char preload_var[4096];
	unsigned n = 0;

	/* The child's environment: ours without LD_PRELOAD, plus the
	 * contender's preload and variables. */
	for (char **e = environ; *e && n < MAX_ENVP - RTB_MAX_ENV - 2; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			envp[n++] = *e;
	if (o->preload && *o->preload) {
		snprintf(preload_var, sizeof preload_var, "LD_PRELOAD=%s", o->preload);
		envp[n++] = preload_var;
	}
	for (unsigned i = 0; i < o->nenv; i++)
		envp[n++] = (char *)o->env[i];
	envp[n] = NULL;

	char t0_arg[32];
	char *argv[] = {"rtbench", "startup-child", (char *)o->label, t0_arg, NULL};
	pid_t pid;
	uint64_t t0 = rtb_now_ns();
	snprintf(t0_arg, sizeof t0_arg, "%" PRIu64, t0);
	fflush(stdout);
	int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp);
	if (rc != 0) {
		fprintf(stderr, "rtbench: cannot spawn the start-up child: %s\n", strerror(rc));
		return 1;
	}
	int status;
	waitpid(pid, &status, 0);
	uint64_t t1 = rtb_now_ns();
	char scope[128];
	snprintf(scope, sizeof scope, "start.%s", o->label);
	rtb_emit(scope, "wall_ms", (double)(t1 - t0) / 1e6);
	rtb_emit(scope, "exit_status", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
	return 0;
}

int rtb_startup_child(const char *label, const char *t0_ns)
{
	uint64_t at_main = rtb_now_ns();
	uint64_t t0 = strtoull(t0_ns, NULL, 10);
	char scope[128];

	uint64_t a = rtb_now_ns();
	void *p = malloc(64);
	free(p);
	uint64_t b = rtb_now_ns();

	snprintf(scope, sizeof scope, "start.%s", label);
	rtb_emit(scope, "to_main_ms", (double)(at_main - t0) / 1e6);
	rtb_emit(scope, "first_pair_us", (double)(b - a) / 1e3);
	rtb_emit(scope, "rss_kib", (double)rtb_proc_status_kib("VmRSS"));
	return 0;
}

int rtb_populate(const struct rtb_opts *o)
{
	char scope[128];
	uint64_t t0 = rtb_now_ns();
	void *p = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	uint64_t t1 = rtb_now_ns();
	if (p == MAP_FAILED) {
		fprintf(stderr, "rtbench: mmap(MAP_POPULATE) of %zu bytes failed\n", o->size);
		return 1;
	}
	munmap(p, o->size);
	snprintf(scope, sizeof scope, "populate.%s", o->label);
	rtb_emit(scope, "ms", (double)(t1 - t0) / 1e6);
	rtb_emit(scope, "gb_s", (double)o->size / (double)(t1 - t0));
	return 0;
}
