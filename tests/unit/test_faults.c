/* SPDX-License-Identifier: MIT */
/*
 * test_faults.c - RTALLOC_FAULTS=locate inside the process (lib/faults.c,
 * lib/faults_sym.c): a section's faults in the table and in the report's
 * JSON, a section with more faults than a ring holds, and the reader
 * against tables forged by another process (rtalloc-stat reads them).
 * Where perf events are unavailable the tests that need them skip.
 */
#include "unit.h"
#include "faults.h"

#include <sys/mman.h>

#define PAGE 4096

static bool perf_ok(void)
{
	return rt_stats && rt_stats->faults.state == RT_FAULTS_ON;
}

__attribute__((noinline)) static void unit_touch_page(volatile char *p) { *p = 1; }

/* Fresh anonymous pages, no transparent huge pages: one fault a page. */
static char *fresh(size_t pages)
{
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	madvise(p, pages * PAGE, MADV_NOHUGEPAGE);
	return p;
}

static void in_report(void **state)
{
	UNUSED_STATE(state);
	assert_int_equal(rtalloc_thread_prepare(), 0);
	if (!perf_ok())
		skip();
	char *p = fresh(4);
	rtalloc_rt_begin();
	for (int i = 0; i < 4; i++)
		unit_touch_page(p + i * PAGE);
	rtalloc_rt_end();
	char buf[4096];
	size_t n = rt_faults_report_json(buf, sizeof(buf));
	assert_true(n > 0 && n < sizeof(buf));
	/* 4 at least: under ASan the store's shadow check may fault too, in
	 * the same function, on ASan's (anonymous) shadow */
	const char *at = strstr(buf, "{\"function\":\"unit_touch_page\",\"kind\":\"anonymous\",\"count\":");
	if (!at || atoi(at + strlen("{\"function\":\"unit_touch_page\",\"kind\":\"anonymous\",\"count\":")) < 4)
		fail_msg("not located: %s", buf);
	/* a buffer too small for anything: nothing, not half a key */
	char small[16];
	assert_int_equal(rt_faults_report_json(small, sizeof(small)), 0);
	munmap(p, 4 * PAGE);
}

/* More faults than the ring's 512 samples: the rest count as unlocated,
 * and located + unlocated covers what getrusage counted. */
static void ring_overflow(void **state)
{
	UNUSED_STATE(state);
	if (!perf_ok())
		skip();
	enum { PAGES = 2000 };
	char *p = fresh(PAGES);
	uint64_t loc0 = rt_stats->faults.located, unloc0 = rt_stats->faults.unlocated;
	struct rt_tcounters c0 = my_counts();
	rtalloc_rt_begin();
	for (int i = 0; i < PAGES; i++)
		unit_touch_page(p + (size_t)i * PAGE);
	rtalloc_rt_end();
	struct rt_tcounters c1 = my_counts();
	uint64_t loc = rt_stats->faults.located - loc0, unloc = rt_stats->faults.unlocated - unloc0;
	uint64_t faults = c1.rt_minflt - c0.rt_minflt + c1.rt_majflt - c0.rt_majflt;
	assert_true(faults >= PAGES);
	assert_true(loc > 0 && loc <= 512); /* the ring: 4 pages of 32-byte samples */
	if (loc + unloc < faults)
		fail_msg("located %llu + unlocated %llu < %llu faults", (unsigned long long)loc,
			 (unsigned long long)unloc, (unsigned long long)faults);
	munmap(p, (size_t)PAGES * PAGE);
}

/* Faults outside sections are forgotten at the next begin. */
static void outside_forgotten(void **state)
{
	UNUSED_STATE(state);
	if (!perf_ok())
		skip();
	char *p = fresh(8);
	uint64_t loc0 = rt_stats->faults.located;
	for (int i = 0; i < 8; i++)
		unit_touch_page(p + i * PAGE); /* outside */
	rtalloc_rt_begin();
	rtalloc_rt_end();
	assert_true(rt_stats->faults.located - loc0 == 0);
	munmap(p, 8 * PAGE);
}

/* The reader on known places: a function of this file, the kinds. */
static void reader_kinds(void **state)
{
	UNUSED_STATE(state);
	static struct rt_fault_place pl[RT_FAULTS_PLACES];
	static struct rt_fault_row rows[RT_FAULT_ROWS];
	memset(pl, 0, sizeof(pl));
	uint64_t ip = (uint64_t)(uintptr_t)&unit_touch_page + 1;
	char *p = fresh(1);
	pl[0] = (struct rt_fault_place){ip | (uint64_t)RT_FK_STACK << RT_FAULTS_KIND_SHIFT, 0, 5, 1};
	pl[7] = (struct rt_fault_place){ip | (uint64_t)RT_FK_POOL << RT_FAULTS_KIND_SHIFT, 0, 3, 1};
	pl[9] = (struct rt_fault_place){ip, (uint64_t)(uintptr_t)p, 2, 1};
	pl[20] = (struct rt_fault_place){ip, 16, 1, 1}; /* nothing is mapped at 16 */
	pl[30] = (struct rt_fault_place){16, 16, 1, 1}; /* code address mapped nowhere */
	pl[40] = (struct rt_fault_place){ip, (uint64_t)(uintptr_t)&unit_touch_page, 1, 1};
	unsigned n = rt_fault_rows(0, pl, RT_FAULTS_PLACES, rows);
	assert_int_equal(n, 6);
	assert_string_equal(rows[0].function, "unit_touch_page");
	assert_string_equal(rows[0].kind, "stack");
	assert_int_equal(rows[0].count, 5);
	assert_string_equal(rows[1].kind, "heap");
	assert_string_equal(rows[2].kind, "anonymous");
	bool unmapped = false, nowhere = false, code = false;
	for (unsigned i = 3; i < n; i++) {
		unmapped |= strcmp(rows[i].kind, "unmapped") == 0 && strcmp(rows[i].function, "unit_touch_page") == 0;
		nowhere |= strcmp(rows[i].function, "0x10") == 0;
		code |= strcmp(rows[i].kind, "code") == 0;
	}
	assert_true(unmapped && nowhere && code);
	munmap(p, PAGE);
}

/* A table another process wrote: any keys, counts that would wrap, more
 * places than the rows: bounded, saturating, never beyond the rows. */
static void reader_hostile(void **state)
{
	UNUSED_STATE(state);
	static struct rt_fault_place pl[RT_FAULTS_PLACES];
	static struct rt_fault_row rows[RT_FAULT_ROWS + 1];
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (unsigned i = 0; i < RT_FAULTS_PLACES; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		pl[i] = (struct rt_fault_place){x, x * 3, x | 1, x};
	}
	memset(&rows[RT_FAULT_ROWS], 0x5a, sizeof(rows[0]));
	unsigned n = rt_fault_rows(0, pl, RT_FAULTS_PLACES, rows);
	assert_true(n >= 1 && n <= RT_FAULT_ROWS);
	for (unsigned i = 0; i < n; i++) {
		assert_true(strlen(rows[i].function) < sizeof(rows[i].function));
		assert_true(strlen(rows[i].kind) < sizeof(rows[i].kind));
		if (i)
			assert_true(rows[i - 1].count >= rows[i].count);
	}
	unsigned char guard[sizeof(rows[0])];
	memset(guard, 0x5a, sizeof(guard));
	assert_memory_equal(&rows[RT_FAULT_ROWS], guard, sizeof(guard));
	/* one place many times over, with counts whose sum wraps: saturated */
	for (unsigned i = 0; i < RT_FAULTS_PLACES; i++)
		pl[i] = (struct rt_fault_place){16, 16, UINT64_MAX / 3, 1};
	n = rt_fault_rows(0, pl, RT_FAULTS_PLACES, rows);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].function, "0x10");
	assert_true(rows[0].count == UINT64_MAX);
}

int main(void)
{
	setenv("RTALLOC_FAULTS", "locate", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(in_report),
		cmocka_unit_test(ring_overflow),
		cmocka_unit_test(outside_forgotten),
		cmocka_unit_test(reader_kinds),
		cmocka_unit_test(reader_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
