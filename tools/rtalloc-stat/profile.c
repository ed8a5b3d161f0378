/* SPDX-License-Identifier: MIT */
/*
 * profile.c - rtalloc-stat --profile PID: the recorded profile of a live
 * process, in the format RTALLOC_PROFILE_SAVE writes at exit (lib/profile.h),
 * on standard output: the region's profile part (copied word by word under
 * the SIGBUS guard, then collected by the library's own code,
 * lib/profile_fmt.c), its pool's high-water mark and its heaps.
 */
#include <stdio.h>
#include <string.h>

#include "profile.h"
#include "rs.h"

#ifndef RTALLOC_STAT_VERSION /* built into the fuzz target without the tool's flags */
#define RTALLOC_STAT_VERSION "unknown"
#endif

/* The region's profile part, if its size covers it: copied into *out. */
static bool profile_part(const struct region *r, struct rt_stats_profile *out)
{
	const struct rt_stats_region *m = r->map;
	memset(out, 0, sizeof(*out));
	BUS_GUARD(return false);
	bool have = __atomic_load_n(&m->size, __ATOMIC_RELAXED) >= REGION_LEN && r->len >= REGION_LEN;
	if (have) /* whole words, no seqlock (stats.h) */
		for (size_t i = 0; i < sizeof(*out) / 8; i++) /* bound: the part's words */
			((uint64_t *)out)[i] = __atomic_load_n((const uint64_t *)&m->profile + i, __ATOMIC_RELAXED);
	BUS_UNGUARD();
	return have;
}

int cmd_profile(pid_t pid)
{
	static struct rt_stats_profile part;
	static struct rt_pf prof;
	static char text[RT_PF_TEXT_MAX];
	struct target t;
	int rc = find_target(pid, &t);
	if (rc != EXIT_OK)
		return rc;
	enum region_status st = snap_read(&t.region, &snap_a);
	if (st != RG_OK) {
		snap_error(pid, t.comm, &t.region, &snap_a, st);
		region_close(&t.region);
		return EXIT_ERR;
	}
	if (!profile_part(&t.region, &part)) {
		say("process %d (%s): its librtalloc records no profile (an older version)", (int)pid, esc(t.comm));
		region_close(&t.region);
		return EXIT_ERR;
	}
	region_close(&t.region);
	rt_pf_collect(&part, rt_sr_high_water(&snap_a.f), snap_a.heaps, snap_a.have_heaps ? snap_a.nheaps : 0,
		      &prof);
	char comment[128];
	snprintf(comment, sizeof(comment), "written by " PROG " %s from live process %d", RTALLOC_STAT_VERSION,
		 (int)pid);
	size_t n = rt_pf_format(&prof, comment, text, sizeof(text));
	if (n >= sizeof(text)) {
		say("process %d: the profile is longer than %zu bytes", (int)pid, sizeof(text) - 1);
		return EXIT_ERR;
	}
	if (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0) {
		say("cannot write the profile: %m");
		return EXIT_ERR;
	}
	return EXIT_OK;
}
