/* SPDX-License-Identifier: MIT */
/*
 * places.c - RTALLOC_FAULTS=locate: where the faults of real-time sections
 * happened, by function and kind of memory.  The table is the region's
 * (copied by snap_read); names and kinds are looked up now, in the target's
 * /proc/PID/maps and the files mapped there (lib/faults_sym.c, shared with
 * the library's exit report).  Everything looked up is the target's: names
 * and kinds go through esc() or the JSON writer.
 */
#include <string.h>

#include "rs.h"
#include "faults.h"

#define TEXT_ROWS 16 /* places shown */

static struct rt_fault_row rows[RT_FAULT_ROWS];

static const char *why(const struct snap *s)
{
	int e = s->faults.error;
	return e > 0 && e < 4096 && strerrorname_np(e) ? strerrorname_np(e) : "error";
}

void text_fault_places(pid_t pid, const struct snap *s)
{
	if (!s->have_faults || s->faults.state == RT_FAULTS_OFF)
		return;
	if (s->faults.state != RT_FAULTS_ON) {
		printf("  located (RTALLOC_FAULTS=locate): no, perf events are unavailable (%s)\n", why(s));
		return;
	}
	unsigned n = rt_fault_rows(pid, s->faults.places, RT_FAULTS_PLACES, rows);
	printf("  located (RTALLOC_FAULTS=locate): %llu in %u place%s, %llu not located",
	       (unsigned long long)s->faults.located, n, n == 1 ? "" : "s",
	       (unsigned long long)s->faults.unlocated);
	if (s->faults.no_ring)
		printf(", %llu thread%s without a perf ring", (unsigned long long)s->faults.no_ring,
		       s->faults.no_ring == 1 ? "" : "s");
	printf("\n");
	if (n)
		printf("    %10s  %-32s %s\n", "FAULTS", "FUNCTION", "MEMORY");
	for (unsigned i = 0; i < n && i < TEXT_ROWS; i++) /* bound: TEXT_ROWS */
		printf("    %10llu  %-32s %s\n", (unsigned long long)rows[i].count, esc(rows[i].function),
		       esc(rows[i].kind));
	if (n > TEXT_ROWS)
		printf("    (%u more)\n", n - TEXT_ROWS);
}

void j_fault_places(pid_t pid, const struct snap *s)
{
	if (!s->have_faults || s->faults.state == RT_FAULTS_OFF) {
		j_null("located");
		return;
	}
	j_open("located", '{');
	j_bool("available", s->faults.state == RT_FAULTS_ON);
	if (s->faults.state != RT_FAULTS_ON) {
		j_str("error", why(s));
		j_close('}');
		return;
	}
	j_u64("located", s->faults.located);
	j_u64("unlocated", s->faults.unlocated);
	j_u64("threads_without_ring", s->faults.no_ring);
	unsigned n = rt_fault_rows(pid, s->faults.places, RT_FAULTS_PLACES, rows);
	j_open("places", '[');
	for (unsigned i = 0; i < n; i++) { /* bound: RT_FAULT_ROWS */
		j_open(NULL, '{');
		j_str("function", rows[i].function);
		j_str("kind", rows[i].kind);
		j_u64("count", rows[i].count);
		j_close('}');
	}
	j_close(']');
	j_close('}');
}
