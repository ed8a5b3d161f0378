/* SPDX-License-Identifier: MIT */
/*
 * st_initgrow.c - a later rtalloc_init() with a larger pool_size (linked with
 * -lrtalloc; RTALLOC_POOL_SIZE=1M RTALLOC_POOL_MAX=4M RTALLOC_MLOCK=0 from
 * meson): it delivers the pool asked for or returns ENOMEM, never 0 with
 * less; and its own growth and pre-faulting are not counted as the
 * program's use ("high water") or faults ("faults since init").
 *   1. within RTALLOC_POOL_MAX (3M): 0, pool >= 3M, high water and faults
 *      since init as before the call;
 *   2. beyond it (8M): 0 and a pool >= 8M whose memory serves allocations
 *      (the room reserved after the pool), high water and faults as before;
 *   3. the program's own use still shows in high water;
 *   4. beyond what the machine has: ENOMEM, nothing changed.
 */
#include <rtalloc.h>
#include "st_util.h"

#define K 1024ul
#define M (1024ul * 1024ul)

static struct rtalloc_stats stats(void)
{
	struct rtalloc_stats s = {.size = sizeof(s)};
	CHECK(rtalloc_stats(&s) == 0, "rtalloc_stats");
	return s;
}

static int init_pool(size_t size)
{
	struct rtalloc_config c = {.size = sizeof(c), .pool_size = size};
	return rtalloc_init(&c);
}

int main(void)
{
	st_name = "initgrow";
	static void *blocks[64];
	for (int i = 0; i < 50; i++) /* about 200 KiB in use */
		CHECK((blocks[i] = malloc(4000)) != NULL, "malloc");
	struct rtalloc_stats s0 = stats();
	CHECK(s0.pool_bytes == 1 * M && s0.pool_max_bytes == 4 * M, "pool %llu max %llu, want 1M 4M",
	      (unsigned long long)s0.pool_bytes, (unsigned long long)s0.pool_max_bytes);

	/* 1. within RTALLOC_POOL_MAX */
	CHECK(init_pool(3 * M) == 0, "rtalloc_init(3M) failed");
	struct rtalloc_stats s1 = stats();
	CHECK(s1.pool_bytes >= 3 * M, "pool %llu after rtalloc_init(3M)", (unsigned long long)s1.pool_bytes);
	CHECK(s1.high_water_bytes <= s0.high_water_bytes + 64 * K,
	      "high water %llu KiB after the growth, %llu KiB before: the growth was counted as use",
	      (unsigned long long)s1.high_water_bytes >> 10, (unsigned long long)s0.high_water_bytes >> 10);
	CHECK(s1.minflt_since_init < 100,
	      "%llu faults since init after rtalloc_init(3M): its own pre-faulting was counted",
	      (unsigned long long)s1.minflt_since_init);

	/* 2. beyond it (the README's program asking more than the constructor
	 * reserved): delivered from the room reserved after the pool */
	int e = init_pool(8 * M);
	CHECK(e == 0, "rtalloc_init(8M) beyond RTALLOC_POOL_MAX=4M: %d, want 0", e);
	struct rtalloc_stats s3 = stats();
	CHECK(s3.pool_bytes >= 8 * M && s3.pool_max_bytes >= 8 * M,
	      "rtalloc_init(8M) returned 0 with a pool of %llu (max %llu)",
	      (unsigned long long)s3.pool_bytes, (unsigned long long)s3.pool_max_bytes);
	CHECK(s3.high_water_bytes <= s0.high_water_bytes + 64 * K, "high water %llu KiB after rtalloc_init(8M)",
	      (unsigned long long)s3.high_water_bytes >> 10);
	CHECK(s3.minflt_since_init < 100, "%llu faults since init after rtalloc_init(8M)",
	      (unsigned long long)s3.minflt_since_init);
	static void *big[4];
	for (int i = 0; i < 3; i++) { /* 6 MiB: more than the first reservation held */
		CHECK((big[i] = malloc(2 * M)) != NULL, "malloc(2M) #%d in the grown pool", i);
		memset(big[i], 0x5a, 2 * M);
	}
	CHECK(rtalloc_check() == 0, "rtalloc_check after the growth");
	for (int i = 0; i < 3; i++)
		free(big[i]);

	/* 3. the program's own use still counts: high water follows it */
	void *use = malloc(3 * M);
	CHECK(use != NULL, "malloc(3M)");
	struct rtalloc_stats s5 = stats();
	CHECK(s5.high_water_bytes >= 3 * M, "high water %llu KiB with 3 MiB in use",
	      (unsigned long long)s5.high_water_bytes >> 10);
	free(use);

	/* 4. beyond what the machine has */
	struct rtalloc_stats s4a = stats();
	CHECK(init_pool((size_t)1 << 50) == ENOMEM, "rtalloc_init(1P) did not return ENOMEM");
	struct rtalloc_stats s4 = stats();
	CHECK(s4.pool_bytes == s4a.pool_bytes && s4.pool_max_bytes == s4a.pool_max_bytes,
	      "a refused rtalloc_init(1P) changed the pool");
	for (int i = 0; i < 50; i++)
		free(blocks[i]);
	printf("ok initgrow\n");
	return 0;
}
