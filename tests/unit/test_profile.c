/* SPDX-License-Identifier: MIT */
/*
 * test_profile.c - the recorded profile's text (lib/profile_fmt.c):
 *   - round trip: a profile written and parsed back gives the same numbers,
 *     names with quotes, backslashes and control bytes included;
 *   - every kind of bad or stale text is refused with its line: another
 *     version, not a profile, an unknown class size, numbers that overflow,
 *     names too long or badly escaped, unknown lines, too many threads,
 *     text longer than the loader's buffer;
 *   - the collector merges two records of one name (a race to claim) by
 *     their maximum, skips unnamed ones, sums the classes over threads;
 *   - the live measure: a thread's refills raise its peaks (tcache.c), and
 *     publishing puts them in the region under its name.
 */
#include "unit.h"

#include <string.h>

#include "profile.h"
#include "stats.h"

static char buf[RT_PF_TEXT_MAX + 16];

static void sample(struct rt_pf *p)
{
	memset(p, 0, sizeof(*p));
	p->pool_peak = 3145728;
	p->large_peak = 2;
	p->nthreads = 2;
	strcpy(p->threads[0].name, "audio");
	p->threads[0].peak[3] = 64;   /* 64 B */
	p->threads[0].peak[10] = 8;   /* 8 KiB */
	p->threads[0].peak[17] = 1;   /* 1 MiB */
	strcpy(p->threads[1].name, "a \"q\" \\ \x01");
	p->threads[1].peak[1] = RT_PF_PEAK_MAX;
	for (unsigned c = 1; c < RT_PROFILE_CLASSES; c++)
		p->class_peak[c] = (uint64_t)p->threads[0].peak[c] + p->threads[1].peak[c];
	p->nheaps = 1;
	strcpy(p->heaps[0].name, "sensor ring");
	p->heaps[0].bytes = 1 << 20;
	p->heaps[0].peak = 4096;
}

static void test_round_trip(void **state)
{
	UNUSED_STATE(state);
	struct rt_pf a, b;
	sample(&a);
	size_t n = rt_pf_format(&a, "a comment", buf, sizeof(buf));
	assert_true(n < sizeof(buf));
	assert_int_equal(strlen(buf), n);
	assert_memory_equal(buf, "rtalloc-profile 1\n# a comment\npool_peak_bytes 3145728\n", 53);
	assert_non_null(strstr(buf, "\nthread \"audio\" class 64 peak 64\n"));
	assert_non_null(strstr(buf, "\nclass 1048576 peak 1\n"));
	assert_non_null(strstr(buf, "thread \"a \\x22q\\x22 \\x5c \\x01\" class 16 peak 2147483647\n"));
	assert_non_null(strstr(buf, "\nheap \"sensor ring\" bytes 1048576 peak 4096\n"));
	unsigned line = 0;
	assert_null(rt_pf_parse(buf, n, &b, &line));
	assert_memory_equal(&a, &b, sizeof(a));
	/* written again: the same text */
	static char again[sizeof(buf)];
	assert_int_equal(rt_pf_format(&b, "a comment", again, sizeof(again)), n);
	assert_string_equal(again, buf);
	const struct rt_pf_thread *t = rt_pf_thread(&b, "audio");
	assert_non_null(t);
	assert_int_equal(t->peak[10], 8);
	assert_null(rt_pf_thread(&b, "audi"));
	/* a short buffer: the length needed, NUL-terminated */
	char small[8];
	assert_int_equal(rt_pf_format(&a, "a comment", small, sizeof(small)), n);
	assert_string_equal(small, "rtalloc");
	/* CRLF, blanks and comments are accepted */
	const char *crlf = "rtalloc-profile 1\r\n\r\n  # x\r\n\tpool_peak_bytes   7 \r\n";
	assert_null(rt_pf_parse(crlf, strlen(crlf), &b, &line));
	assert_int_equal(b.pool_peak, 7);
}

static void refused(const char *text, size_t len, unsigned want_line, const char *want_why)
{
	struct rt_pf p;
	unsigned line = 0;
	const char *why = rt_pf_parse(text, len, &p, &line);
	if (!why || line != want_line || !strstr(why, want_why))
		fail_msg("\"%.60s\": want line %u \"%s\", got line %u \"%s\"", text, want_line, want_why, line,
			 why ? why : "(accepted)");
}

#define REFUSED(text, line, why) refused(text, sizeof(text) - 1, line, why)

static void test_bad(void **state)
{
	UNUSED_STATE(state);
	REFUSED("", 1, "empty");
	REFUSED("rtalloc-profile 2\n", 1, "another version");
	REFUSED("rtalloc-profile 0\n", 1, "another version");
	REFUSED("rtalloc-profile\n", 1, "bad version line");
	REFUSED("rtalloc-profile 1 x\n", 1, "bad version line");
	REFUSED("rtalloc-profiles 1\n", 1, "not a profile");
	REFUSED("\xff\xfe", 1, "not a profile");
	REFUSED("rtalloc-profile 1\nclass 48 peak 1\n", 2, "unknown class size");
	REFUSED("rtalloc-profile 1\nclass 8 peak 1\n", 2, "unknown class size");
	REFUSED("rtalloc-profile 1\nclass 2097152 peak 1\n", 2, "unknown class size");
	REFUSED("rtalloc-profile 1\nclass 99999999999999999999999 peak 1\n", 2, "class size");
	REFUSED("rtalloc-profile 1\npool_peak_bytes 9223372036854775808\n", 2, "too large");
	REFUSED("rtalloc-profile 1\npool_peak_bytes 18446744073709551616\n", 2, "too large");
	REFUSED("rtalloc-profile 1\nlarge_peak_blocks -1\n", 2, "number expected");
	REFUSED("rtalloc-profile 1\nthread \"a\" class 64 peak 2147483648\n", 2, "too large");
	REFUSED("rtalloc-profile 1\nclass 64 peak 12x\n", 2, "number expected");
	REFUSED("rtalloc-profile 1\nclass 64 peek 1\n", 2, "'peak' expected");
	REFUSED("rtalloc-profile 1\n\nthread \"0123456789abcdef\" class 64 peak 1\n", 3, "name too long");
	REFUSED("rtalloc-profile 1\nthread \"abc\n", 2, "closing quote");
	REFUSED("rtalloc-profile 1\nthread audio class 64 peak 1\n", 2, "quoted name");
	REFUSED("rtalloc-profile 1\nthread \"\" class 64 peak 1\n", 2, "empty name");
	REFUSED("rtalloc-profile 1\nthread \"a\\x00\" class 64 peak 1\n", 2, "bad escape");
	REFUSED("rtalloc-profile 1\nthread \"a\\q\" class 64 peak 1\n", 2, "bad escape");
	REFUSED("rtalloc-profile 1\nthread \"a\" peak 1\n", 2, "'class' expected");
	REFUSED("rtalloc-profile 1\nheap \"h\" peak 1\n", 2, "'bytes' expected");
	REFUSED("rtalloc-profile 1\npool_peak 1\n", 2, "unknown line");
	REFUSED("rtalloc-profile 1\npool_peak_bytes 1 2\n", 2, "end of the line");
	REFUSED("rtalloc-profile 1\npool_peak_bytes 1\0\n", 2, "NUL");
	/* 33 thread names: one more than a profile holds */
	size_t n = (size_t)snprintf(buf, sizeof(buf), "rtalloc-profile 1\n");
	for (int i = 0; i < 33; i++) /* bound: 33 */
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "thread \"t%d\" class 16 peak 1\n", i);
	refused(buf, n, 34, "more thread names");
	n = (size_t)snprintf(buf, sizeof(buf), "rtalloc-profile 1\n");
	for (int i = 0; i < 17; i++) /* bound: 17 */
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "heap \"h%d\" bytes 1 peak 1\n", i);
	refused(buf, n, 18, "more heaps");
	/* longer than the loader's buffer holds */
	memset(buf, '#', sizeof(buf));
	memcpy(buf, "rtalloc-profile 1\n", 18);
	refused(buf, RT_PF_TEXT_MAX - 1, 1, "longer than");
	/* the longest accepted */
	assert_null(rt_pf_parse(buf, RT_PF_TEXT_MAX - 2, &(struct rt_pf){0}, &(unsigned){0}));
}

static void test_collect(void **state)
{
	UNUSED_STATE(state);
	static struct rt_stats_profile m;
	memset(&m, 0, sizeof(m));
	m.large_peak = 5;
	m.threads[0].state = RT_PROF_NAMED;
	strcpy(m.threads[0].name, "audio");
	m.threads[0].peak[3] = 10;
	m.threads[0].peak[4] = 1;
	m.threads[3].state = RT_PROF_NAMED; /* the same name claimed twice */
	strcpy(m.threads[3].name, "audio");
	m.threads[3].peak[3] = 20;
	m.threads[4].state = RT_PROF_CLAIMED; /* not named yet: skipped */
	m.threads[4].peak[3] = 99;
	m.threads[5].state = RT_PROF_NAMED;
	memset(m.threads[5].name, 'x', sizeof(m.threads[5].name)); /* no NUL: cut at 15 */
	m.threads[5].peak[3] = 0xffffffffu; /* beyond the format: clamped */
	struct rt_stats_heap h = {.flags = RT_STATS_HEAP_USED, .size = 8192, .min_free = 1024};
	strcpy(h.name, "h");
	struct rt_pf p;
	rt_pf_collect(&m, 12345, &h, 1, &p);
	assert_int_equal(p.pool_peak, 12345);
	assert_int_equal(p.large_peak, 5);
	assert_int_equal(p.nthreads, 2);
	const struct rt_pf_thread *t = rt_pf_thread(&p, "audio");
	assert_non_null(t);
	assert_int_equal(t->peak[3], 20);
	assert_int_equal(t->peak[4], 1);
	t = rt_pf_thread(&p, "xxxxxxxxxxxxxxx");
	assert_non_null(t);
	assert_int_equal(t->peak[3], RT_PF_PEAK_MAX);
	assert_int_equal(p.class_peak[3], 20 + (uint64_t)RT_PF_PEAK_MAX);
	assert_int_equal(p.nheaps, 1);
	assert_int_equal(p.heaps[0].peak, 7168);
	/* what the collector gives, the parser takes back */
	size_t n = rt_pf_format(&p, NULL, buf, sizeof(buf));
	struct rt_pf q;
	unsigned line;
	assert_null(rt_pf_parse(buf, n, &q, &line));
	assert_memory_equal(&p, &q, sizeof(p));
}

/* A thread's refills raise its peaks; publishing names them in the region. */
static void test_live(void **state)
{
	UNUSED_STATE(state);
	void *b[40];
	for (int i = 0; i < 40; i++) /* bound: 40 */
		b[i] = rtalloc_malloc(256);
	for (int i = 0; i < 40; i++) /* bound: 40 */
		rtalloc_free(b[i]);
	assert_true(rt_tc.peak[5] >= 40); /* 256 B: class 5 */
	assert_true(rt_tc.peak_dirty);
	pthread_setname_np(pthread_self(), "unit-prof");
	rt_profile_publish(&rt_tc);
	assert_false(rt_tc.peak_dirty);
	struct rt_pf p;
	rt_pf_collect(&rt_stats->profile, 0, NULL, 0, &p);
	const struct rt_pf_thread *t = rt_pf_thread(&p, "unit-prof");
	assert_non_null(t);
	assert_int_equal(t->peak[5], rt_tc.peak[5]);
}

static int group_setup(void **state)
{
	UNUSED_STATE(state);
	return unit_init(4 << 20, 32 << 20, RTALLOC_STACK_PREFAULT_NONE, RTALLOC_EXHAUST_UNSET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_collect),
		cmocka_unit_test(test_live),
	};
	return cmocka_run_group_tests_name("profile", tests, group_setup, NULL);
}
