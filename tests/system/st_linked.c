/* SPDX-License-Identifier: MIT */
/*
 * st_linked.c - a program linked with -lrtalloc (no LD_PRELOAD), run with
 *   RTALLOC_POOL_SIZE=2M RTALLOC_POOL_MAX=16M RTALLOC_ON_EXHAUST=abort RTALLOC_MLOCK=0
 * The library's constructor sets the pool up from the environment before
 * main(); rtalloc_init(&cfg) then applies what can change on a live pool, and
 * its explicit fields win over the environment: a larger pool_size grows the
 * pool, on_exhaust=FAIL replaces abort, mlock=TRY locks what RTALLOC_MLOCK=0
 * left unlocked.  Calling it again (same config, NULL, a smaller pool) is
 * harmless.  rtalloc_thread_prepare() and rtalloc_check() work.
 *
 * The cases run in order and build on each other (CMocka).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "rtalloc.h"
#include "st_util.h"

#define MiB ((size_t)1 << 20)

static size_t arena(void) { return mallinfo2().arena; }

/* CAP_IPC_LOCK effective, or no RLIMIT_MEMLOCK: mlockall of the pool works. */
static int lockable(void)
{
	static char buf[8192];
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY)
		return 1;
	if (st_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return 0;
	char *l = strstr(buf, "CapEff:");
	return l && (strtoull(l + 7, NULL, 16) & (1ULL << 14));
}

static struct rtalloc_config config(size_t pool_size, int mlock, int on_exhaust)
{
	struct rtalloc_config c;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.pool_size = pool_size;
	c.mlock = mlock;
	c.on_exhaust = on_exhaust;
	return c;
}

/* Hold `chunk`-byte blocks until malloc fails; return the bytes held and
 * free them.  *err: errno of the failure. */
static size_t hold_until_null(size_t chunk, size_t limit, int *err)
{
	static void *b[4096];
	size_t n = 0;
	*err = 0;
	while (n < 4096 && n * chunk < limit) {
		errno = 0;
		b[n] = malloc(chunk);
		if (!b[n]) {
			*err = errno;
			break;
		}
		memset(b[n], 1, 64);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		free(b[i]);
	return n * chunk;
}

static void test_linked(void **state)
{
	(void)state;
	assert_int_equal(rtalloc_version(), RTALLOC_VERSION);
	Dl_info di;
	assert_true(dladdr(dlsym(RTLD_DEFAULT, "malloc"), &di) && di.dli_fname);
	print_message("malloc comes from %s\n", di.dli_fname);
	assert_non_null(strstr(di.dli_fname, "librtalloc"));
	void *p = malloc(100);
	assert_int_equal(rtalloc_malloc_usable_size(p), 128);
	assert_int_equal(malloc_usable_size(p), 128);
	free(p);
	p = rtalloc_malloc(3000);
	assert_int_equal(malloc_usable_size(p), 4096);
	free(p); /* the same allocator under both names */
}

static void test_environment_before_init(void **state)
{
	(void)state;
	/* The constructor used RTALLOC_POOL_SIZE=2M and RTALLOC_MLOCK=0. */
	assert_int_equal(arena(), 2 * MiB);
	assert_int_equal(st_status_kb("VmLck"), 0);
}

static void test_init_explicit_fields_win(void **state)
{
	(void)state;
	struct rtalloc_config c = config(8 * MiB, RTALLOC_MLOCK_TRY, RTALLOC_EXHAUST_FAIL);
	assert_int_equal(rtalloc_init(&c), 0);
	assert_int_equal(arena(), 8 * MiB); /* pool_size grew the 2M pool */
	if (lockable())
		assert_true(st_status_kb("VmLck") >= 8 * 1024); /* mlock=TRY beat RTALLOC_MLOCK=0 */
	else
		print_message("cannot lock memory here: VmLck not checked\n");
	/* on_exhaust=FAIL beat RTALLOC_ON_EXHAUST=abort: NULL, ENOMEM, no growth. */
	int err;
	size_t held = hold_until_null(256 << 10, 64 * MiB, &err);
	print_message("held %zu bytes, then errno %d, arena %zu\n", held, err, arena());
	assert_int_equal(err, ENOMEM);
	assert_true(held >= 6 * MiB && held <= 8 * MiB);
	assert_int_equal(arena(), 8 * MiB);
	assert_int_equal(rtalloc_check(), 0);
}

static void test_init_again_is_harmless(void **state)
{
	(void)state;
	struct rtalloc_config c = config(8 * MiB, RTALLOC_MLOCK_TRY, RTALLOC_EXHAUST_FAIL);
	assert_int_equal(rtalloc_init(&c), 0);
	assert_int_equal(rtalloc_init(&c), 0);
	assert_int_equal(arena(), 8 * MiB);
	assert_int_equal(rtalloc_init(NULL), 0);
	assert_int_equal(arena(), 8 * MiB);
	c = config(4 * MiB, 0, 0); /* smaller: ignored */
	assert_int_equal(rtalloc_init(&c), 0);
	assert_int_equal(arena(), 8 * MiB);
	c = config(0, 0, 0); /* nothing set */
	c.size = 0;          /* 0: this version's size */
	assert_int_equal(rtalloc_init(&c), 0);
	assert_int_equal(arena(), 8 * MiB);
	/* still FAIL */
	int err;
	hold_until_null(256 << 10, 64 * MiB, &err);
	assert_int_equal(err, ENOMEM);
	assert_int_equal(rtalloc_check(), 0);
}

static void test_larger_pool_grows(void **state)
{
	(void)state;
	struct rtalloc_config c = config(12 * MiB, 0, 0);
	assert_int_equal(rtalloc_init(&c), 0);
	assert_int_equal(arena(), 12 * MiB);
	if (lockable())
		assert_true(st_status_kb("VmLck") >= 12 * 1024); /* growth is locked too */
	int err;
	size_t held = hold_until_null(256 << 10, 64 * MiB, &err);
	assert_int_equal(err, ENOMEM);
	assert_true(held >= 10 * MiB && held <= 12 * MiB);
	assert_int_equal(rtalloc_check(), 0);
}

/* A pool_size beyond RTALLOC_POOL_MAX: the pool stops at the limit. */
static void test_pool_size_beyond_max(void **state)
{
	(void)state;
	/* Never 0 with less than asked: the pool asked for, or ENOMEM and the
	 * pool as it was. */
	size_t before = arena();
	struct rtalloc_config c = config(20 * MiB, 0, 0);
	int e = rtalloc_init(&c);
	print_message("pool_size 20M with RTALLOC_POOL_MAX=16M: rtalloc_init %d, arena %zu\n", e, arena());
	if (e == 0)
		assert_true(arena() >= 20 * MiB);
	else
		assert_true(e == ENOMEM && arena() == before);
	assert_int_equal(rtalloc_check(), 0);
}

static void test_mlock_explicit(void **state)
{
	(void)state;
	struct rtalloc_config c = config(0, RTALLOC_MLOCK_OFF, 0);
	assert_int_equal(rtalloc_init(&c), 0);
	assert_int_equal(st_status_kb("VmLck"), 0);
	if (!lockable()) {
		print_message("cannot lock memory here: relocking not checked\n");
		return;
	}
	c = config(0, RTALLOC_MLOCK_REQUIRE, 0);
	assert_int_equal(rtalloc_init(&c), 0);
	assert_true(st_status_kb("VmLck") >= (long)(arena() >> 10));
}

static void test_exhaust_grow_explicit(void **state)
{
	(void)state;
	size_t before = arena();
	struct rtalloc_config c = config(0, 0, RTALLOC_EXHAUST_GROW);
	assert_int_equal(rtalloc_init(&c), 0);
	int err;
	size_t held = hold_until_null(256 << 10, 64 * MiB, &err);
	print_message("grow: held %zu bytes, arena %zu -> %zu\n", held, before, arena());
	assert_int_equal(err, ENOMEM); /* stops at RTALLOC_POOL_MAX=16M */
	assert_true(before < 16 * MiB);
	assert_int_equal(arena(), 16 * MiB);
	assert_true(held >= 14 * MiB);
	assert_int_equal(rtalloc_check(), 0);
}

static void *prepared_thread(void *arg)
{
	(void)arg;
	if (rtalloc_thread_prepare() != 0)
		return (void *)1;
	for (int i = 0; i < 1000; i++) {
		void *p = malloc((size_t)(i % 300) * 100 + 1);
		if (!p)
			return (void *)2;
		free(p);
	}
	return NULL;
}

static void test_thread_prepare(void **state)
{
	(void)state;
	assert_int_equal(rtalloc_thread_prepare(), 0);
	assert_int_equal(rtalloc_thread_prepare(), 0); /* twice */
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, prepared_thread, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
	assert_int_equal(rtalloc_check(), 0);
}

/* A config whose size field says it is too short to hold the fields
 * rtalloc_init reads: the first rtalloc_init rejects it with EINVAL (pool.c),
 * a later one must too (the header: "EINVAL (bad config)"). */
static void test_init_short_config(void **state)
{
	(void)state;
	struct rtalloc_config c = config(0, 0, 0);
	c.size = 4;
	assert_int_equal(rtalloc_init(&c), EINVAL);
}

int main(int argc, char **argv)
{
	st_name = "linked";
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linked),
		cmocka_unit_test(test_environment_before_init),
		cmocka_unit_test(test_init_explicit_fields_win),
		cmocka_unit_test(test_init_again_is_harmless),
		cmocka_unit_test(test_larger_pool_grows),
		cmocka_unit_test(test_mlock_explicit),
		cmocka_unit_test(test_exhaust_grow_explicit),
		cmocka_unit_test(test_pool_size_beyond_max),
		cmocka_unit_test(test_thread_prepare),
	};
	/* Separate, so that a failure here does not hide the rest. */
	const struct CMUnitTest short_config[] = {
		cmocka_unit_test(test_init_short_config),
	};
	if (argc > 1 && strcmp(argv[1], "short-config") == 0)
		return cmocka_run_group_tests(short_config, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
