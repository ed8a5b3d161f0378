/* SPDX-License-Identifier: MIT */
/*
 * st_realloc_stamp.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=32M.
 *
 * A valid program: it frees many page-sized blocks, then takes a 64 KiB
 * buffer, writes a short string in it and shrinks it to fit with realloc,
 * and frees the result.  That must not abort.
 *
 * What goes wrong (library bug, see the report): free blocks carry the free
 * stamp (rt_g.key) in word 1; a "huge" block (> 32 KiB) is handed out by
 * rt_arena_huge_alloc() without clearing word 1, so when its pages were
 * free cached/small blocks before, its bytes 8..15 still hold the stamp.
 * realloc() to a small size copies those bytes into the new small block,
 * whose word 1 then equals the stamp, and free() reports
 * "double free (block already freed)" and aborts.
 *
 * The scenario runs in a child so that an abort is reported as a failure
 * with its cause.  Variants: realloc to 16 and 24 bytes, posix_memalign'ed
 * large blocks, and a plain 16-byte memcpy of a large block's start.
 */
#include <signal.h>
#include <sys/wait.h>

#include "st_util.h"

static void scenario(int variant)
{
	static void *s[4096];
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 4096; i++)
			s[i] = malloc(4096); /* whole pages of a cached class */
		for (int i = 0; i < 4096; i++)
			free(s[i]);
		char *h = NULL;
		if (variant == 2) {
			if (posix_memalign((void **)&h, 4096, 65536) != 0)
				ST_FAIL("posix_memalign failed");
		} else {
			h = malloc(65536);
		}
		CHECK(h != NULL, "malloc(65536) failed");
		strcpy(h, "hi"); /* 3 bytes written */
		char *q;
		switch (variant) {
		case 0:
			q = realloc(h, 16);
			break;
		case 1:
			q = realloc(h, 24);
			break;
		case 2:
			q = realloc(h, 16);
			break;
		default:
			q = malloc(16);
			memcpy(q, h, 16); /* copies 13 indeterminate bytes: allowed for unsigned char */
			free(h);
			break;
		}
		CHECK(q && strcmp(q, "hi") == 0, "realloc lost the string");
		free(q);
	}
}

int main(void)
{
	st_need_preload("realloc-stamp");
	static const char *const names[] = {
		"malloc(64K), realloc(p, 16), free",
		"malloc(64K), realloc(p, 24), free",
		"posix_memalign(4096, 64K), realloc(p, 16), free",
		"malloc(64K), memcpy 16 bytes into malloc(16), free both",
	};
	int failed = 0;
	for (int v = 0; v < 4; v++) {
		fflush(stdout);
		pid_t pid = fork();
		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			scenario(v);
			_exit(0);
		}
		int status;
		CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			printf("ok   %s\n", names[v]);
		} else {
			printf("FAIL %s: %s %d\n", names[v], WIFSIGNALED(status) ? "killed by signal" : "exit",
			       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			failed++;
		}
	}
	if (failed)
		fprintf(stderr, "FAIL realloc-stamp: %d scenario(s) aborted: a large block is handed out with "
				"the free stamp left in its word 1 (rt_arena_huge_alloc does not clear it)\n",
			failed);
	return failed ? 1 : 0;
}
