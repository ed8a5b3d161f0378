/* SPDX-License-Identifier: MIT */
/*
 * stat_truncate.c - preloaded into rtalloc-stat by the test (case "truncate"):
 * every file mapped whose path starts with $STAT_TRUNCATE is truncated to 0
 * right after mmap returns, before the reader looks at it - the owner of a
 * region or of a shared heap's object doing so at the worst moment, every
 * time.  The mapping's pages then raise SIGBUS when read.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static void *(*real)(void *, size_t, int, int, int, off_t);
	if (!real)
		real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
	void *p = real(addr, len, prot, flags, fd, off);
	const char *want = getenv("STAT_TRUNCATE");
	if (p == MAP_FAILED || fd < 0 || !want || !*want)
		return p;
	char link[64], target[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return p;
	target[n] = '\0';
	if (strncmp(target, want, strlen(want)) == 0) {
		int w = open(target, O_WRONLY | O_CLOEXEC);
		if (w >= 0) {
			if (ftruncate(w, 0) == 0)
				fprintf(stderr, "stat_truncate: truncated %s\n", target);
			close(w);
		}
	}
	return p;
}
