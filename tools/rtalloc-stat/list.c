/* SPDX-License-Identifier: MIT */
/*
 * list.c - rtalloc-stat -l: this user's processes running librtalloc.
 * Listing never deletes anything: the files of processes that no longer
 * exist are reported as stale; -l --clean removes those of them that are
 * the caller's own (named for its uid and owned by it), and nothing else.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rs.h"

/* ==== -l: list ============================================================================ */

struct listed {
	pid_t pid;
	char comm[64], path[PATHLEN];
	struct snap *s;
};

int cmd_list(bool json, bool clean)
{
	uid_t uid = geteuid();
	char dirs[4][DIRLEN];
	int nd = region_dirs(0, uid, dirs, 4);
	char prefix[48];
	int plen = snprintf(prefix, sizeof(prefix), "rtalloc-%u-", (unsigned)uid);
	static struct snap s;
	bool any = false;
	unsigned stale = 0;
	static char stale_paths[64][PATHLEN];
	if (json) {
		j_begin();
		j_open("processes", '[');
	} else {
		printf("%7s %-16s %7s %10s %10s %10s %9s %9s %9s %6s  %s\n", "PID", "COMMAND", "THREADS", "POOL-KiB",
		       "INUSE-KiB", "HIGH-KiB", "RT-MINFLT", "RT-MAJFLT", "UP-S", "LOCKED", "REGION");
	}
	for (int i = 0; i < nd; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d))) {
			const char *name = e->d_name;
			if (strncmp(name, prefix, (size_t)plen) != 0)
				continue;
			char num[32];
			size_t nl = strlen(name + plen);
			if (nl <= 6 || nl - 6 >= sizeof(num) || strcmp(name + plen + nl - 6, ".stats") != 0)
				continue;
			memcpy(num, name + plen, nl - 6);
			num[nl - 6] = '\0';
			pid_t pid;
			if (!parse_pid(num, &pid))
				continue;
			char path[PATHLEN];
			snprintf(path, sizeof(path), "%.255s/%.255s", dirs[i], name);
			if (kill(pid, 0) != 0 && errno == ESRCH) {
				/* A dead process's file: reported; removed only when asked,
				 * and only a regular file of the caller's own. */
				struct stat st;
				bool removed = clean && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
					       st.st_uid == uid && unlink(path) == 0;
				if (!json)
					say("%s %s: process %d no longer exists%s", removed ? "removed" : "stale",
					    esc(path), (int)pid, removed || clean ? "" : " (rtalloc-stat -l --clean removes it)");
				if (stale < 64 && (removed || !clean))
					snprintf(stale_paths[stale++], sizeof(stale_paths[0]), "%s", path);
				continue;
			}
			struct region r;
			bool has_lib;
			enum region_status rs = region_attach(&r, path, uid, pid, &has_lib);
			if (rs == RG_OK && snap_read(&r, &s) != RG_OK)
				rs = RG_IO;
			if (rs != RG_OK) {
				if (rs != RG_INIT && rs != RG_SHORT && !json)
					say("ignoring %s: it %s", esc(path), region_why(rs));
				region_close(&r);
				continue;
			}
			char sp[64], comm[64] = "?";
			struct pstat ps;
			snprintf(sp, sizeof(sp), "/proc/%d/stat", (int)pid);
			if (read_pstat(sp, &ps) == 0)
				snprintf(comm, sizeof(comm), "%s", ps.comm);
			uint64_t up = rt_sr_sub0(s.taken_ns, s.f.init_ns);
			if (json) {
				j_open(NULL, '{');
				j_u64("pid", (uint64_t)pid);
				j_str("comm", comm);
				j_str("region", path);
				j_u64("threads", s.f.nlive);
				j_u64("pool_bytes", s.f.pool_bytes);
				j_u64("in_use_bytes", rt_sr_in_use(&s.f));
				j_u64("high_water_bytes", rt_sr_high_water(&s.f));
				j_u64("rt_minflt", s.f.total.sect_minflt);
				j_u64("rt_majflt", s.f.total.sect_majflt);
				j_u64("grows", s.f.grows);
				j_u64("failed_allocs", s.f.total.failed);
				j_dbl("since_init_s", ns_to_s(up));
				j_bool("locked", s.f.flags & RT_STATS_F_LOCKED);
				j_close('}');
			} else {
				printf("%7d %-16s %7u %10llu %10llu %10llu %9llu %9llu %9.1f %6s  %s\n", (int)pid, esc(comm),
				       s.f.nlive, (unsigned long long)s.f.pool_bytes >> 10,
				       (unsigned long long)rt_sr_in_use(&s.f) >> 10, (unsigned long long)rt_sr_high_water(&s.f) >> 10,
				       (unsigned long long)s.f.total.sect_minflt, (unsigned long long)s.f.total.sect_majflt,
				       ns_to_s(up), (s.f.flags & RT_STATS_F_LOCKED) ? "yes" : "no", esc(path));
			}
			any = true;
			region_close(&r);
		}
		closedir(d);
	}
	if (json) {
		j_close(']');
		j_open(clean ? "removed_stale" : "stale", '[');
		for (unsigned i = 0; i < stale; i++)
			j_str(NULL, stale_paths[i]);
		j_close(']');
		j_end();
	} else if (!any) {
		printf("(no process of uid %u runs librtalloc with statistics)\n", (unsigned)uid);
	}
	return EXIT_OK;
}

