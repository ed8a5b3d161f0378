/* SPDX-License-Identifier: MIT */
/*
 * test_statread.c - the one reader of a statistics region (lib/statread.c)
 * and the one parser of /proc text (lib/procfs.h):
 *   - rt.h does not bring in the export format (stats.h): compiled here
 *     before stats.h is included;
 *   - the reader, on the live region through its slots (what rtalloc-stat
 *     reads), gives the figures rtalloc_stats() gives;
 *   - a hostile region: refused by the header check field by field, and,
 *     rewritten after the check, read within bounds with saturating sums;
 *     a record that never settles marks the figures torn;
 *   - the /proc field parser: line starts only, overflow refused.
 */
#include "unit.h"

#ifdef RT_STATS_H
#error "rt.h includes the export format (stats.h): it must include only tcounters.h"
#endif

#include "pool_int.h" /* rt_pool_status_kib */
#include "procfs.h"
#include "statread.h"

#define MiB ((size_t)1 << 20)

static int group_setup(void **state)
{
	UNUSED_STATE(state);
	return unit_init(4 * MiB, 32 * MiB, RTALLOC_STACK_PREFAULT_NONE, RTALLOC_EXHAUST_UNSET);
}

static unsigned slot_source(void *ctx, unsigned i, unsigned nth, struct rt_tcounters *c)
{
	(void)nth;
	struct rt_stats_slot s;
	unsigned got = rt_sr_slot(ctx, i, &s);
	*c = s.c;
	return got;
}

/* The region's figures, read as rtalloc-stat reads them (the slots). */
static void read_region(const struct rt_stats_region *m, struct rt_sr_figures *f)
{
	const struct rt_sr_source src = {slot_source, NULL, 10, (void *)m};
	rt_sr_read(m, &src, f);
}

static void reader_matches_rtalloc_stats(void **state)
{
	UNUSED_STATE(state);
	void *p[300];
	for (size_t i = 0; i < ARRAY_LEN(p); i++)
		p[i] = rtalloc_malloc((size_t)16 << (i % 14)); /* up to 128 KiB: huge too */
	for (size_t i = 0; i < ARRAY_LEN(p); i += 2)
		rtalloc_free(p[i]);
	rtalloc_rt_begin();
	rtalloc_rt_end(); /* the slot now holds the exact counts */
	const struct rt_stats_region *m = rt_stats;
	assert_int_equal(rt_sr_check(m, sizeof(*m), getpid()), RT_SR_OK);
	struct rtalloc_stats s = {.size = sizeof(s)};
	assert_int_equal(rtalloc_stats(&s), 0);
	struct rt_sr_figures f;
	read_region(m, &f);
	assert_false(f.torn);
	assert_int_equal(f.narenas, s.narenas);
	assert_int_equal(f.nlive, s.threads);
	assert_int_equal(f.pool_bytes, s.pool_bytes);
	assert_int_equal(f.max_bytes, s.pool_max_bytes);
	assert_int_equal(f.free_bytes, s.free_bytes);
	assert_int_equal(rt_sr_in_use(&f), s.in_use_bytes);
	assert_int_equal(rt_sr_high_water(&f), s.high_water_bytes);
	assert_int_equal(f.grows, s.grows);
	assert_memory_equal(f.class_units, s.class_units, sizeof(s.class_units));
	assert_int_equal(f.total.mallocs, s.mallocs);
	assert_int_equal(f.total.frees, s.frees);
	assert_int_equal(f.total.slow_mallocs, s.slow_mallocs);
	assert_int_equal(f.total.refills, s.refills);
	assert_int_equal(f.total.flushes, s.flushes);
	assert_int_equal(f.total.rt_sections, s.rt_sections);
	assert_int_equal(f.total.bytes_allocated, s.bytes_allocated);
	assert_int_equal(f.total.bytes_freed, s.bytes_freed);
	assert_true(s.mallocs >= ARRAY_LEN(p) && s.rt_sections >= 1);
	for (size_t i = 1; i < ARRAY_LEN(p); i += 2)
		rtalloc_free(p[i]);
	assert_string_equal(rt_sr_class_name(1), "16");
	assert_string_equal(rt_sr_class_name(RT_NMED), "32K");
	assert_string_equal(rt_sr_class_name(rt_stats_class(RT_CLS_HUGE)), "huge"); /* every block above 32 KiB */
	assert_string_equal(rt_sr_class_name(1000), "-");
}

static struct rt_stats_region forged;

static void forge(void)
{
	memcpy(&forged, rt_stats, sizeof(forged));
	__atomic_store_n(&forged.magic, RT_STATS_MAGIC, __ATOMIC_RELAXED);
}

/* Every header field the reader depends on is checked. */
static void hostile_header_refused(void **state)
{
	UNUSED_STATE(state);
	const size_t len = sizeof(forged);
	forge();
	assert_int_equal(rt_sr_check(&forged, len, getpid()), RT_SR_OK);
	assert_int_equal(rt_sr_check(&forged, len, getpid() + 1), RT_SR_BAD);
	assert_int_equal(rt_sr_check(&forged, RT_STATS_REGION_V1_SIZE - 8, getpid()), RT_SR_BAD);
	assert_int_equal(rt_sr_check(&forged, RT_STATS_REGION_V1_SIZE, getpid()), RT_SR_BAD); /* size > mapped */
	forged.magic = 0;
	assert_int_equal(rt_sr_check(&forged, len, getpid()), RT_SR_INIT);
	forged.magic = RT_STATS_MAGIC ^ 1;
	assert_int_equal(rt_sr_check(&forged, len, getpid()), RT_SR_BAD);
	forge();
	forged.version++;
	assert_int_equal(rt_sr_check(&forged, len, getpid()), RT_SR_BAD);
	forge();
	forged.size = (uint32_t)len + 8;
	assert_int_equal(rt_sr_check(&forged, len + 8, getpid()), RT_SR_BAD);
	forge();
	forged.nslots = RT_STATS_SLOTS * 2;
	assert_int_equal(rt_sr_check(&forged, len, getpid()), RT_SR_BAD);
	forge();
	forged.narenas = 0;
	assert_int_equal(rt_sr_check(&forged, len, getpid()), RT_SR_BAD);
	forged.narenas = RT_STATS_ARENAS + 1;
	assert_int_equal(rt_sr_check(&forged, len, getpid()), RT_SR_BAD);
}

/* A region rewritten after the check: counts and indexes from it stay in
 * bounds, sums saturate, a slot that never settles is marked torn. */
static void hostile_region_read_in_bounds(void **state)
{
	UNUSED_STATE(state);
	forge();
	forged.narenas = UINT32_MAX;
	for (unsigned i = 0; i < RT_STATS_ARENAS; i++) {
		forged.arenas[i].seq = 0;
		forged.arenas[i].pool_bytes = UINT64_MAX / 2;
		forged.arenas[i].free_bytes = UINT64_MAX;
		forged.arenas[i].class_units[3] = UINT64_MAX / 3;
	}
	forged.exit_seq = 2;
	forged.exited.mallocs = UINT64_MAX - 1;
	for (unsigned i = 0; i < RT_STATS_SLOTS; i++) {
		forged.slots[i].seq = 0;
		forged.slots[i].tid = (int32_t)i + 1;
		forged.slots[i].c.mallocs = 1;
	}
	forged.slots[7].seq = 1; /* a writer that never finishes */
	struct rt_sr_figures f;
	read_region(&forged, &f);
	assert_int_equal(f.narenas, RT_STATS_ARENAS);
	assert_int_equal(f.pool_bytes, UINT64_MAX);
	assert_int_equal(f.free_bytes, UINT64_MAX);
	assert_int_equal(rt_sr_in_use(&f), 0);
	assert_int_equal(f.class_units[3], UINT64_MAX);
	assert_int_equal(f.nlive, RT_STATS_SLOTS);
	assert_int_equal(f.total.mallocs, UINT64_MAX);
	assert_true(f.torn);
	/* heap records: at most RT_STATS_HEAPS, whatever their flags say */
	struct rt_stats_heap h[RT_STATS_HEAPS];
	for (unsigned i = 0; i < RT_STATS_HEAPS; i++)
		forged.heaps[i] = (struct rt_stats_heap){.flags = UINT32_MAX};
	bool torn = false;
	assert_true(rt_sr_has_heaps(&forged, sizeof(forged)));
	assert_false(rt_sr_has_heaps(&forged, RT_STATS_REGION_V1_SIZE));
	assert_int_equal(rt_sr_heaps(&forged, h, &torn), RT_STATS_HEAPS);
	assert_false(torn);
}

/* An arena record that never settles marks the figures torn even when the
 * threads read cleanly afterwards (rtalloc-stat's reader used to forget it:
 * its thread pass overwrote the flag). */
static void torn_arena_stays_torn(void **state)
{
	UNUSED_STATE(state);
	forge();
	for (unsigned i = 0; i < RT_STATS_SLOTS; i++)
		forged.slots[i] = (struct rt_stats_slot){0};
	forged.exit_seq = 0;
	forged.arenas[0].seq = 3;
	struct rt_sr_figures f;
	read_region(&forged, &f);
	assert_int_equal(f.nlive, 0);
	assert_true(f.torn);
	forged.arenas[0].seq = 4;
	read_region(&forged, &f);
	assert_false(f.torn);
}

/* The one /proc field parser: "Key:" at the start of a line only, the
 * number after blanks, nothing that overflows. */
static void proc_field_parser(void **state)
{
	UNUSED_STATE(state);
	uint64_t v = 0;
	const char *text = "Name:\tx\nXVmLck:\t999 kB\nVmLck:\t  12 kB\nVmBig:\t99999999999999999999 kB\n"
			   "Uid:\t1000\t1000\t1000\t1000\nVmNone:\t kB\nLast:\t7";
	assert_true(rt_proc_field(text, "VmLck", &v));
	assert_int_equal(v, 12); /* not XVmLck's 999 */
	assert_true(rt_proc_field(text, "VmLck:", &v));
	assert_int_equal(v, 12);
	assert_true(rt_proc_field(text, "Uid", &v));
	assert_int_equal(v, 1000);
	assert_true(rt_proc_field(text, "Last", &v));
	assert_int_equal(v, 7);
	assert_false(rt_proc_field(text, "VmBig", &v));  /* beyond 64 bits */
	assert_false(rt_proc_field(text, "VmNone", &v)); /* no number */
	assert_false(rt_proc_field(text, "Name", &v));   /* not a number */
	assert_false(rt_proc_field(text, "Vm", &v));     /* a prefix is no key */
	assert_false(rt_proc_field(text, "", &v));
	assert_false(rt_proc_field("", "VmLck", &v));
	/* the library's own use (limits.c, mlock.c): KiB of /proc/self/status */
	assert_true(rt_pool_status_kib("VmSize:") > 0);
	assert_int_equal(rt_pool_status_kib("Size:"), 0); /* not VmSize: a line start */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reader_matches_rtalloc_stats),
		cmocka_unit_test(hostile_header_refused),
		cmocka_unit_test(hostile_region_read_in_bounds),
		cmocka_unit_test(torn_arena_stays_torn),
		cmocka_unit_test(proc_field_parser),
	};
	int failed = cmocka_run_group_tests_name("statread", tests, group_setup, NULL);
	rt_stats_remove();
	return failed;
}
