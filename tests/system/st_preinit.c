/* SPDX-License-Identifier: MIT */
/*
 * st_preinit.c - linked with -lrtalloc; calls rtalloc_init(&cfg) from the
 * executable's .preinit_array, which runs before every shared library's
 * constructor, so that this call is the FIRST initialisation.  Run with
 *   RTALLOC_POOL_SIZE=8M RTALLOC_POOL_MAX=64M RTALLOC_MLOCK=1 RTALLOC_ON_EXHAUST=abort
 *
 *   st_preinit config   explicit pool_size=3M, pool_max=6M, mlock=OFF,
 *                       on_exhaust=FAIL win over all four variables;
 *   st_preinit memory   the pool is a static array of the program
 *                       (rtalloc_config.memory): every block lies in it and
 *                       it never grows (on_exhaust=FAIL: NULL when full).
 */
#include <malloc.h>
#include <string.h>

#include "rtalloc.h"
#include "st_util.h"

#define MiB ((size_t)1 << 20)

static int init_ret = -1;
static int mode; /* 1 config, 2 memory */
static char user_pool[8 << 20] __attribute__((aligned(4096)));

static void early(int argc, char **argv, char **envp)
{
	(void)envp;
	struct rtalloc_config c;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	if (argc > 1 && strcmp(argv[1], "config") == 0) {
		mode = 1;
		c.pool_size = 3 * MiB;
		c.pool_max = 6 * MiB;
		c.mlock = RTALLOC_MLOCK_OFF;
		c.on_exhaust = RTALLOC_EXHAUST_FAIL;
	} else if (argc > 1 && strcmp(argv[1], "memory") == 0) {
		mode = 2;
		c.memory = user_pool;
		c.memory_size = sizeof(user_pool);
		c.mlock = RTALLOC_MLOCK_OFF;
		c.on_exhaust = RTALLOC_EXHAUST_FAIL;
	} else {
		return;
	}
	init_ret = rtalloc_init(&c);
}

__attribute__((section(".preinit_array"), used)) static void (*const preinit_fn)(int, char **, char **) = early;

static size_t arena(void) { return mallinfo2().arena; }

static void *blk[4096];

/* Hold chunk-byte blocks until malloc fails; returns how many (kept in blk). */
static size_t hold(size_t chunk, int *err)
{
	size_t n = 0;
	*err = 0;
	while (n < 4096) {
		errno = 0;
		blk[n] = malloc(chunk);
		if (!blk[n]) {
			*err = errno;
			break;
		}
		memset(blk[n], 7, chunk);
		n++;
	}
	return n;
}

static void release(size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(blk[i]);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	st_name = "preinit";
	CHECK(mode != 0, "usage: st_preinit config|memory");
	CHECK(init_ret == 0, "rtalloc_init from .preinit_array returned %d", init_ret);
	int err;
	if (mode == 1) {
		CHECK(arena() == 3 * MiB, "arena %zu: pool_size=3M did not win over RTALLOC_POOL_SIZE=8M",
		      arena());
		CHECK(st_status_kb("VmLck") == 0, "VmLck %ld kB: mlock=OFF did not win over RTALLOC_MLOCK=1",
		      st_status_kb("VmLck"));
		size_t n = hold(65536, &err); /* on_exhaust=FAIL, not abort */
		CHECK(err == ENOMEM, "malloc(64K) in a full pool: errno %d, want ENOMEM", err);
		CHECK(arena() == 3 * MiB, "arena %zu: the pool grew with on_exhaust=FAIL", arena());
		printf("config: %zu blocks of 64K in a 3M pool\n", n);
		release(n);
		/* Growth up to pool_max=6M (not RTALLOC_POOL_MAX=64M). */
		struct rtalloc_config c;
		memset(&c, 0, sizeof(c));
		c.on_exhaust = RTALLOC_EXHAUST_GROW;
		CHECK(rtalloc_init(&c) == 0, "rtalloc_init(on_exhaust=GROW) failed");
		n = hold(65536, &err);
		CHECK(err == ENOMEM, "growing to pool_max: errno %d", err);
		CHECK(arena() == 6 * MiB, "arena %zu: pool_max=6M did not win over RTALLOC_POOL_MAX=64M",
		      arena());
		printf("config: %zu blocks of 64K after growth to pool_max\n", n);
		release(n);
	} else {
		uintptr_t lo = (uintptr_t)user_pool, hi = lo + sizeof(user_pool);
		void *p = malloc(100);
		CHECK((uintptr_t)p >= lo && (uintptr_t)p < hi, "malloc(100) = %p, outside the user pool", p);
		CHECK(rtalloc_malloc_usable_size(p) == 128, "not a librtalloc block");
		free(p);
		CHECK(arena() <= sizeof(user_pool), "arena %zu larger than the memory given", arena());
		size_t n = hold(65536, &err);
		CHECK(err == ENOMEM, "the user pool is full: errno %d, want ENOMEM", err);
		for (size_t i = 0; i < n; i++)
			CHECK((uintptr_t)blk[i] >= lo && (uintptr_t)blk[i] + 65536 <= hi,
			      "block %p outside the user pool", blk[i]);
		CHECK(n * 65536 >= sizeof(user_pool) / 2, "only %zu blocks of 64K in an 8M pool", n);
		printf("memory: %zu blocks of 64K in the program's 8M array, arena %zu\n", n, arena());
		release(n);
	}
	CHECK(rtalloc_check() == 0, "rtalloc_check failed");
	printf("ok preinit %s\n", argv[1]);
	return 0;
}
