/* SPDX-License-Identifier: MIT */
/*
 * heap_stat.c - rtalloc-stat lists this process's heaps (text and --json).
 * Linked with librtalloc.so (its statistics region is a file rtalloc-stat
 * reads); argv[1] is the tool.  Exit 0 on success, 1 with a message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtalloc.h"

static char out[1 << 16];

static int run(const char *tool, const char *opt)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s %s %d", tool, opt, (int)getpid());
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	return pclose(f);
}

#define CHECK(c)                                                             \
	do {                                                                 \
		if (!(c)) {                                                  \
			fprintf(stderr, "failed: %s\n--- output:\n%s\n", #c, out); \
			return 1;                                            \
		}                                                            \
	} while (0)

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	rtalloc_heap_t *a = rtalloc_heap_create("stat-heap", 1 << 20, RTALLOC_HEAP_PRIO);
	static _Alignas(4096) char mem[256 << 10];
	rtalloc_heap_t *b = rtalloc_heap_create_in(NULL, &(struct rtalloc_region){mem, sizeof(mem)}, 1, 0);
	CHECK(a && b);
	void *p[3];
	for (int i = 0; i < 3; i++)
		CHECK((p[i] = rtalloc_heap_alloc(a, 5000)) != NULL); /* 8 KiB blocks */
	CHECK(run(argv[1], "") == 0);
	CHECK(strstr(out, "\nHeaps (KiB)\n"));
	CHECK(strstr(out, "stat-heap"));
	CHECK(strstr(out, "private,prio"));
	CHECK(strstr(out, "(unnamed)"));
	CHECK(run(argv[1], "--json") == 0);
	CHECK(strstr(out, "\"heaps\":[{\"name\":\"stat-heap\",\"shared\":false,\"prio\":true,"
			  "\"grow\":false,\"size_bytes\":1048576,\"free_bytes\":1024000,\"min_free_bytes\":1024000,"
			  "\"largest_free_bytes\":524288,\"live_blocks\":3,\"waiters\":0}"));
	for (int i = 0; i < 3; i++)
		free(p[i]); /* plain free, through the libc name */
	rtalloc_heap_destroy(a);
	CHECK(run(argv[1], "--json") == 0);
	CHECK(!strstr(out, "stat-heap"));
	CHECK(strstr(out, "\"heaps\":[{\"name\":\"\""));
	rtalloc_heap_destroy(b);
	CHECK(run(argv[1], "--json") == 0);
	CHECK(strstr(out, "\"heaps\":[]"));

	/* A shared heap shows what every process did to it: here another
	 * process allocates after this one's last operation on it. */
	char name[64], want[320];
	snprintf(name, sizeof(name), "stat-shared-%d", (int)getpid());
	rtalloc_heap_t *sh = rtalloc_heap_create(name, 1 << 20, RTALLOC_HEAP_SHARED);
	CHECK(sh != NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		rtalloc_heap_t *c = rtalloc_heap_bind(name, NULL);
		for (int i = 0; c && i < 3; i++)
			if (!rtalloc_heap_alloc(c, 5000))
				_exit(1);
		_exit(c ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(run(argv[1], "--json") == 0);
	snprintf(want, sizeof(want),
		 "{\"name\":\"%s\",\"shared\":true,\"prio\":false,\"grow\":false,\"size_bytes\":1048576,"
		 "\"free_bytes\":1024000,\"min_free_bytes\":1024000,\"largest_free_bytes\":524288,"
		 "\"live_blocks\":3,\"waiters\":0}",
		 name);
	CHECK(strstr(out, want));
	rtalloc_heap_destroy(sh);
	return 0;
}
