/* SPDX-License-Identifier: MIT */
/*
 * rtrecipe.c - librtrecipe.so, the classic glibc recipe for real-time
 * programs, packaged as an LD_PRELOAD object so that it can be compared with
 * librtalloc on unchanged programs.
 *
 * The recipe, run once from a constructor before main():
 *   1. mlockall(MCL_CURRENT | MCL_FUTURE): no page of the process is ever
 *      paged out, and future mappings are faulted in when they are made;
 *   2. mallopt(M_TRIM_THRESHOLD, -1): free() never gives heap back to the
 *      kernel (which would have to be faulted in again later);
 *   3. mallopt(M_MMAP_MAX, 0): large blocks come from the heap too, never
 *      from a fresh mmap() that would fault on first use;
 *   4. malloc a pool (RTRECIPE_POOL bytes, default 64 MiB; K/M/G suffixes),
 *      write every page of it, and free it: the heap is now resident and,
 *      thanks to 2., stays so.
 * Optional: RTRECIPE_ARENA_MAX=n also sets mallopt(M_ARENA_MAX, n); with 1,
 * every thread shares the pre-faulted main arena.
 *
 * Its known limit (see shared/peers.md): only the arena of the thread that
 * ran the constructor is pre-faulted; other threads get fresh arenas.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEFAULT_POOL (64ul << 20)

/* Like the rest of the recipe, talk only through write(2): stdio is not
 * ready in every constructor order. */
static void say(const char *msg)
{
	ssize_t rc = write(2, msg, strlen(msg));
	(void)rc;
}

static size_t env_size(const char *name, size_t fallback)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return fallback;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	default: break;
	}
	return v ? (size_t)v : fallback;
}

__attribute__((constructor)) static void rtrecipe_init(void)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
		say("librtrecipe: mlockall failed; memory is not locked\n");
	mallopt(M_TRIM_THRESHOLD, -1);
	mallopt(M_MMAP_MAX, 0);

	size_t arenas = env_size("RTRECIPE_ARENA_MAX", 0);
	if (arenas)
		mallopt(M_ARENA_MAX, (int)arenas);

	size_t pool = env_size("RTRECIPE_POOL", DEFAULT_POOL);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	/* volatile: the compiler must not drop the writes, nor the whole
	 * malloc/free pair, as dead code. */
	volatile char *p = malloc(pool);
	if (!p) {
		say("librtrecipe: could not allocate the pool\n");
		return;
	}
	for (size_t i = 0; i < pool; i += page)
		p[i] = 1;
	free((void *)p);
}
