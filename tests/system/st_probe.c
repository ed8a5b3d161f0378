/* SPDX-License-Identifier: MIT */
/*
 * st_probe.c - a probe for the scripts (env.sh, mlock.sh, exhaust.sh), run
 * with LD_PRELOAD=librtalloc.so and some RTALLOC_* setting.  It prints what
 * it sees on stdout as key=value words and never writes to stderr unless a
 * check fails, so the scripts can count librtalloc's own messages.
 *
 *   st_probe info
 *       arena=<mallinfo2().arena> vmlck_kb=<VmLck> vmstk_kb=<VmStk> capeff=<CapEff>
 *   st_probe fill CHUNK LIMIT
 *       malloc(CHUNK) until LIMIT bytes are held or malloc fails:
 *       got=<bytes held> errno=<0|ENOMEM|...> arena=<mallinfo2().arena>
 *   st_probe exhaust grow|fail|abort POOL MAX
 *       the exhaustion policy given in RTALLOC_ON_EXHAUST, with
 *       RTALLOC_POOL_SIZE=POOL and RTALLOC_POOL_MAX=MAX (bytes): see below.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_util.h"

static size_t arena(void) { return mallinfo2().arena; }

static const char *errname(int e) { return e == 0 ? "0" : e == ENOMEM ? "ENOMEM" : strerror(e); }

static size_t parse(const char *s)
{
	char *end;
	size_t v = strtoull(s, &end, 0);
	switch (*end) {
	case 'K': v <<= 10; break;
	case 'M': v <<= 20; break;
	case 'G': v <<= 30; break;
	default: break;
	}
	return v;
}

static long capeff(void)
{
	static char buf[8192];
	if (st_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	char *l = strstr(buf, "CapEff:");
	return l ? strtol(l + 7, NULL, 16) : -1;
}

#define MAXBLK (1 << 17)
static void *blk[MAXBLK];
static size_t nblk;

/* Append malloc(chunk) blocks to blk[] until `limit` more bytes are held or
 * malloc fails (its errno in *err, else 0); returns the blocks added. */
static size_t fill(size_t chunk, size_t limit, int *err)
{
	size_t n = 0;
	*err = 0;
	while (nblk < MAXBLK && n * chunk < limit) {
		errno = 0;
		char *p = malloc(chunk);
		if (!p) {
			*err = errno;
			break;
		}
		p[0] = (char)nblk;
		p[chunk - 1] = (char)(nblk >> 8);
		blk[nblk++] = p;
		n++;
	}
	return n;
}

static void free_all(void)
{
	for (size_t i = 0; i < nblk; i++) {
		free(blk[i]);
		blk[i] = NULL;
	}
	nblk = 0;
}

/* RTALLOC_ON_EXHAUST=grow, POOL < MAX: small and large requests beyond the
 * pool are served by growth, up to MAX; beyond MAX, NULL and ENOMEM. */
static void exhaust_grow(size_t pool, size_t max)
{
	int err;
	CHECK(arena() == pool, "arena %zu at start, want the pool %zu", arena(), pool);
	/* Small blocks: 1.5 pools of 32-byte blocks. */
	size_t n = fill(32, pool * 3 / 2, &err);
	CHECK(err == 0 && n * 32 >= pool * 3 / 2, "malloc(32) failed after %zu blocks (%s)", n,
	      errname(err));
	size_t a = arena();
	printf("small: %zu blocks of 32 bytes held, arena %zu\n", n, a);
	CHECK(a > pool && a <= max, "arena %zu after holding 1.5 pools of small blocks", a);
	free_all();
	/* Large blocks: twice the pool. */
	n = fill(65536, 2 * pool, &err);
	a = arena();
	CHECK(err == 0, "malloc(64K) failed at %zu bytes held (%s)", n * 65536, errname(err));
	CHECK(a >= 2 * pool && a <= max, "arena %zu while holding %zu bytes (pool %zu, max %zu)", a,
	      n * 65536, pool, max);
	printf("large: %zu bytes held, arena %zu\n", n * 65536, a);
	/* To the limit: then NULL and ENOMEM, and the arena stops at MAX. */
	n += fill(65536, 2 * max, &err);
	a = arena();
	printf("limit: %zu bytes held, arena %zu, then %s\n", n * 65536, a, errname(err));
	CHECK(err == ENOMEM, "beyond RTALLOC_POOL_MAX malloc(64K) gave %s, want NULL and ENOMEM",
	      errname(err));
	CHECK(a <= max, "arena %zu beyond RTALLOC_POOL_MAX %zu", a, max);
	CHECK(n * 65536 >= max * 3 / 4, "only %zu bytes held at the limit %zu", n * 65536, max);
	free_all();
	/* Everything coalesced again: a block of a quarter of MAX. */
	void *p = malloc(max / 4);
	CHECK(p != NULL, "malloc(%zu) failed after everything was freed", max / 4);
	free(p);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok grow\n");
}

/* RTALLOC_ON_EXHAUST=fail: no growth; NULL and ENOMEM; a free makes room. */
static void exhaust_fail(size_t pool)
{
	int err;
	CHECK(arena() == pool, "arena %zu at start, want the pool %zu", arena(), pool);
	size_t n = fill(65536, 2 * pool, &err);
	size_t a = arena();
	printf("fail: %zu bytes held, arena %zu, then %s\n", n * 65536, a, errname(err));
	CHECK(err == ENOMEM, "malloc(64K) beyond the pool gave %s, want NULL and ENOMEM", errname(err));
	CHECK(a == pool, "the arena grew to %zu with RTALLOC_ON_EXHAUST=fail", a);
	CHECK(n * 65536 >= pool * 3 / 4 && n * 65536 <= pool, "%zu bytes held in a pool of %zu",
	      n * 65536, pool);
	errno = 0;
	CHECK(malloc(65536) == NULL && errno == ENOMEM, "a second malloc(64K): errno %d", errno);
	errno = 0;
	CHECK(calloc(1, 65536) == NULL && errno == ENOMEM, "calloc(1, 64K): errno %d", errno);
	void *q = NULL;
	int e = posix_memalign(&q, 4096, 65536);
	CHECK(e == ENOMEM, "posix_memalign(4096, 64K) returned %d, want ENOMEM", e);
	errno = 0;
	char *b0 = blk[0];
	CHECK(realloc(b0, 131072) == NULL && errno == ENOMEM, "realloc(p, 128K): errno %d", errno);
	CHECK(b0[0] == 0 && b0[65535] == 0, "a failed realloc changed the block");
	/* A free makes room for the next request. */
	free(blk[--nblk]);
	char *p = malloc(65536);
	CHECK(p != NULL, "malloc(64K) after a free: NULL (%s)", errname(errno));
	blk[nblk++] = p;
	free_all();
	p = malloc(pool / 2);
	CHECK(p != NULL, "malloc(%zu) after everything was freed: NULL", pool / 2);
	free(p);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok fail\n");
}

/* RTALLOC_ON_EXHAUST=abort: the process must die in the loop. */
static void exhaust_abort(size_t pool)
{
	int err;
	size_t n = fill(65536, 4 * pool, &err);
	ST_FAIL("RTALLOC_ON_EXHAUST=abort: still alive holding %zu bytes (malloc gave %s)", n * 65536,
		errname(err));
}

int main(int argc, char **argv)
{
	st_need_preload("probe");
	if (argc >= 2 && strcmp(argv[1], "info") == 0) {
		printf("arena=%zu vmlck_kb=%ld vmstk_kb=%ld capeff=%lx\n", arena(), st_status_kb("VmLck"),
		       st_status_kb("VmStk"), capeff());
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "fill") == 0) {
		size_t chunk = parse(argv[2]), limit = parse(argv[3]);
		int err;
		size_t n = fill(chunk, limit, &err);
		printf("got=%zu errno=%s arena=%zu\n", n * chunk, errname(err), arena());
		free_all();
		CHECK(st_api.check() == 0, "rtalloc_check failed");
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "exhaust") == 0) {
		size_t pool = parse(argv[3]), max = parse(argv[4]);
		if (strcmp(argv[2], "grow") == 0)
			exhaust_grow(pool, max);
		else if (strcmp(argv[2], "fail") == 0)
			exhaust_fail(pool);
		else if (strcmp(argv[2], "abort") == 0)
			exhaust_abort(pool);
		else
			ST_FAIL("unknown policy %s", argv[2]);
		return 0;
	}
	fprintf(stderr, "usage: st_probe info | fill CHUNK LIMIT | exhaust grow|fail|abort POOL MAX\n");
	return 2;
}
