/* SPDX-License-Identifier: MIT */
/*
 * report.c - what the library reports to the program and at exit, read
 * through statread.c from the statistics region and, for live threads, from
 * their caches themselves (exact, not as last published): rtalloc_stats(),
 * rtalloc_stats_print(), mallinfo2's totals and the RTALLOC_REPORT line.
 * The region and its writers are stats.c's.  Above the thread caches (it
 * reads them); nothing here runs on an allocation path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faults.h"
#include "os.h"
#include "stats.h"
#include "statread.h"

/* At exit (of a program linked with the library or the core): the exiting
 * thread's last counts, the report, and the file goes with the process (the
 * memory stays: later destructors may still allocate and free). */
__attribute__((destructor)) static void stats_at_exit(void)
{
	if (!rt_ready())
		return;
	if (rt_tc.state == RT_TC_LIVE)
		rt_tcache_publish(&rt_tc, 0);
	rt_stats_report();
	if (rt_tc.state == RT_TC_LIVE)
		rt_profile_publish(&rt_tc); /* the exiting thread's peaks, under its name */
	rt_profile_save(); /* RTALLOC_PROFILE_SAVE (profile.c) */
	rt_stats_remove();
}

/* ---- readers ------------------------------------------------------------------------ */

/* For mallinfo2: exact figures, read under each arena's lock in turn (not a
 * real-time path).  Free: the buddy's pages and idle small pages. */
void rt_stats_totals(struct rt_totals *t)
{
	memset(t, 0, sizeof(*t));
	if (!rt_ready())
		return;
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		struct rt_arena *a = &rt_g.arenas[i];
		rt_arena_lock(a);
		t->pool_bytes += (size_t)(a->buddy.committed - a->buddy.skew) << RT_PAGE_SHIFT;
		t->free_bytes += (a->buddy.free_pages + a->nempty) << RT_PAGE_SHIFT;
		t->min_free_bytes += a->buddy.min_free_pages << RT_PAGE_SHIFT;
		t->grows += a->grows;
		t->huge_allocs += a->huge_allocs;
		rt_arena_unlock(a);
	}
	t->foreign_frees = rt_foreign_frees();
}

/* rt_sr_read's source of live threads' counters in the process: read live
 * from their tcaches through the records (exact, not as last published).
 * Uninstrumented under TSan: see rt_tcache_counters. */
static RT_NO_TSAN unsigned live_thread(void *ctx, unsigned i, unsigned nth, struct rt_tcounters *c)
{
	const struct rt_stats_region *r = ctx;
	(void)nth;
	if (!(__atomic_load_n(&r->slot_map[i / 64], __ATOMIC_ACQUIRE) & (1ULL << (i % 64))))
		return 0;
	return rt_stats_thread_read(i, rt_tcache_counters, c) ? RT_SR_LIVE : 0;
}

static void yield_cpu(void) { rt_os_yield(); }

RT_EXPORT int rtalloc_stats(struct rtalloc_stats *out)
{
	if (!out || out->size < offsetof(struct rtalloc_stats, pool_bytes))
		return EINVAL;
	struct rtalloc_stats st;
	memset(&st, 0, sizeof(st));
	st.size = (uint32_t)sizeof(st);
	st.version = RTALLOC_STATS_VERSION;
	const struct rt_stats_region *r = rt_stats;
	if (rt_ready() && r) {
		/* Retries (bounded, yielding) while a thread exits meanwhile. */
		const struct rt_sr_source src = {live_thread, yield_cpu, 100, (void *)r};
		struct rt_sr_figures f;
		rt_sr_read(r, &src, &f);
		st.narenas = f.narenas;
		st.locked = rt_g.locked;
		st.exported = !!(f.flags & RT_STATS_F_EXPORTED);
		st.init_ns = f.init_ns;
		st.init_duration_ns = f.init_duration_ns;
		for (unsigned i = 0; i < f.narenas; i++) { /* bound: RT_STATS_ARENAS */
			st.arena_node[i] = f.arenas[i].node;
			st.arena_pool_bytes[i] = f.arenas[i].pool_bytes;
			st.arena_free_bytes[i] = f.arenas[i].free_bytes;
		}
		st.pool_bytes = f.pool_bytes;
		st.pool_max_bytes = f.max_bytes;
		st.free_bytes = f.free_bytes;
		st.min_free_bytes = f.min_free_bytes;
		st.grows = f.grows;
		st.last_grow_ns = f.last_grow_ns;
		memcpy(st.class_units, f.class_units, sizeof(st.class_units));
		st.in_use_bytes = rt_sr_in_use(&f);
		st.high_water_bytes = rt_sr_high_water(&f);
		const struct rt_tcounters *t = &f.total;
		st.threads = f.nlive;
		st.mallocs = t->mallocs;
		st.frees = t->frees;
		st.slow_mallocs = t->slow_mallocs;
		st.slow_frees = t->slow_frees;
		st.refills = t->refills;
		st.flushes = t->flushes;
		st.failed_allocs = t->failed;
		st.rt_sections = t->sections;
		st.rt_minflt = t->sect_minflt;
		st.rt_majflt = t->sect_majflt;
		st.rt_slow = t->sect_slow;
		st.bytes_allocated = t->bytes_allocated;
		st.bytes_freed = t->bytes_freed;
		st.lock_waits = t->lock_waits;
		st.lock_wait_max_ns = t->lock_wait_max_ns;
		st.rt_lock_waits = t->sect_lock_waits;
		st.rt_lock_wait_max_ns = t->sect_lock_wait_max_ns;
		/* the calling thread's own: exact (lock.c's record; the
		 * real-time ones as of its last section's end) */
		st.thread_lock_waits = rt_load(&rt_lock_waits.waits);
		st.thread_lock_wait_max_ns = rt_load(&rt_lock_waits.max_ns);
		st.thread_rt_lock_waits = rt_tc.st.sect_lock_waits;
		st.thread_rt_lock_wait_max_ns = rt_tc.st.sect_lock_wait_max_ns;
		st.last_failure_ns = f.last_failure_ns;
		st.foreign_frees = rt_foreign_frees();
		struct rusage ru;
		if (rt_os_getrusage_self(&ru) == 0) {
			/* the baseline moves at each rtalloc_init(): read once (by
			 * rt_sr_read), never above the count (a reader racing a
			 * reset sees 0, not 2^64) */
			uint64_t min0 = f.init_minflt, maj0 = f.init_majflt;
			uint64_t min1 = (uint64_t)ru.ru_minflt, maj1 = (uint64_t)ru.ru_majflt;
			st.minflt_since_init = min1 > min0 ? min1 - min0 : 0;
			st.majflt_since_init = maj1 > maj0 ? maj1 - maj0 : 0;
		}
	}
	size_t n = out->size < sizeof(st) ? out->size : sizeof(st);
	uint32_t caller_size = out->size;
	memcpy(out, &st, n);
	out->size = caller_size < sizeof(st) ? caller_size : (uint32_t)sizeof(st);
	return 0;
}

RT_EXPORT void rtalloc_stats_print(FILE *f)
{
	struct rtalloc_stats s = {.size = sizeof(s)};
	rtalloc_stats(&s);
	if (!f)
		f = stderr;
	uint64_t now = rt_os_now_ns();
	fprintf(f, "librtalloc %s: pool %llu KiB (max %llu KiB), in use %llu KiB, free %llu KiB, "
		   "high water %llu KiB, %s\n",
		RTALLOC_VERSION_STRING, (unsigned long long)s.pool_bytes >> 10,
		(unsigned long long)s.pool_max_bytes >> 10, (unsigned long long)s.in_use_bytes >> 10,
		(unsigned long long)s.free_bytes >> 10, (unsigned long long)s.high_water_bytes >> 10,
		s.locked ? "locked" : "NOT locked");
	fprintf(f, "  threads %u live; allocations %llu, frees %llu (slow path: %llu, %llu), "
		   "refills %llu, flushes %llu\n",
		s.threads, (unsigned long long)s.mallocs, (unsigned long long)s.frees,
		(unsigned long long)s.slow_mallocs, (unsigned long long)s.slow_frees,
		(unsigned long long)s.refills, (unsigned long long)s.flushes);
	fprintf(f, "  page faults since init: %llu minor, %llu major; in real-time sections: %llu minor, "
		   "%llu major, %llu slow-path entries in %llu sections\n",
		(unsigned long long)s.minflt_since_init, (unsigned long long)s.majflt_since_init,
		(unsigned long long)s.rt_minflt, (unsigned long long)s.rt_majflt,
		(unsigned long long)s.rt_slow, (unsigned long long)s.rt_sections);
	fprintf(f, "  lock waits: %llu (longest %llu ns); in real-time sections: %llu (longest %llu ns)\n",
		(unsigned long long)s.lock_waits, (unsigned long long)s.lock_wait_max_ns,
		(unsigned long long)s.rt_lock_waits, (unsigned long long)s.rt_lock_wait_max_ns);
	fprintf(f, "  non-real-time events: %llu pool growths", (unsigned long long)s.grows);
	if (s.grows)
		fprintf(f, " (last %.3f s ago)", (double)(now - s.last_grow_ns) / 1e9);
	fprintf(f, ", %llu failed allocations", (unsigned long long)s.failed_allocs);
	if (s.failed_allocs && s.last_failure_ns)
		fprintf(f, " (last %.3f s ago)", (double)(now - s.last_failure_ns) / 1e9);
	fprintf(f, "\n  classes (small: pages, larger: blocks):");
	for (unsigned c = 1; c < RTALLOC_STATS_CLASSES; c++)
		if (s.class_units[c])
			fprintf(f, " %s:%llu", rt_sr_class_name(c), (unsigned long long)s.class_units[c]);
	fprintf(f, "\n");
}

/* ---- the exit report (RTALLOC_REPORT) ---------------------------------------------------- */

static char report_path[256];
/* RTALLOC_REPORT=stderr: a duplicate of stderr made at init, and what stderr
 * was then.  Programs may close stderr before the report is written at exit
 * (coreutils' close_stdout closes it from atexit, which runs before the
 * library destructors); the duplicate is used only while it is still the
 * same file (a program that closes every descriptor may have reused it). */
static int report_fd = -1;
static dev_t report_dev;
static ino_t report_ino;

/* Remember where the report goes (read at init: no getenv later). */
void rt_stats_report_setup(void)
{
	const char *p = rt_options_env("RTALLOC_REPORT");
	if (p && strlen(p) < sizeof(report_path))
		memcpy(report_path, p, strlen(p) + 1);
	else if (p)
		rt_say("RTALLOC_REPORT is longer than %zu characters; no report", sizeof(report_path) - 1);
	struct stat st;
	if (strcmp(report_path, "stderr") == 0 && rt_os_fstat(STDERR_FILENO, &st) == 0) {
		/* out of the way of the low numbers programs expect to get */
		report_fd = rt_os_dup_above(STDERR_FILENO, 100);
		if (report_fd < 0)
			report_fd = rt_os_dup_above(STDERR_FILENO, 3);
		report_dev = st.st_dev;
		report_ino = st.st_ino;
	}
}

static bool same_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	return fd >= 0 && rt_os_fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* The descriptor the report goes to, or -1 (and one message): stderr as it
 * was at init, or a regular file opened without blocking (a FIFO without a
 * reader would hang the exit) and without following a symbolic link. */
static int report_open(void)
{
	if (strcmp(report_path, "stderr") == 0) {
		if (same_file(STDERR_FILENO, report_dev, report_ino))
			return STDERR_FILENO;
		return same_file(report_fd, report_dev, report_ino) ? report_fd : -1;
	}
	int fd = rt_os_open(report_path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rt_say("RTALLOC_REPORT=\"%s\": cannot open it (%s); no report", report_path,
		       strerrorname_np(errno));
		return -1;
	}
	struct stat st;
	if (rt_os_fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rt_say("RTALLOC_REPORT=\"%s\" is not a regular file (or stderr); no report", report_path);
		rt_os_close(fd);
		return -1;
	}
	return fd;
}

/* One JSON line at exit: proof that a program really ran on librtalloc, and
 * what it did.  Appended to the file (or stderr), written with write(2). */
void rt_stats_report(void)
{
	if (!report_path[0] || !rt_ready())
		return;
	struct rtalloc_stats s = {.size = sizeof(s)};
	rtalloc_stats(&s);
	char line[768 + 2560]; /* the figures, then up to 8 located places */
	size_t n = 0;
	rt_fmt(line, sizeof(line),
	    "{\"rtalloc\":\"%s\",\"pid\":%d,\"mallocs\":%llu,\"frees\":%llu,\"slow_mallocs\":%llu,"
	    "\"slow_frees\":%llu,\"refills\":%llu,\"flushes\":%llu,\"failed\":%llu,\"grows\":%llu,"
	    "\"pool_bytes\":%llu,\"high_water_bytes\":%llu,\"in_use_bytes\":%llu,\"locked\":%u,"
	    "\"minflt_since_init\":%llu,\"majflt_since_init\":%llu,\"rt_minflt\":%llu,\"rt_slow\":%llu,"
	    "\"foreign_frees\":%llu",
	    RTALLOC_VERSION_STRING, rt_os_getpid(), (unsigned long long)s.mallocs,
	    (unsigned long long)s.frees, (unsigned long long)s.slow_mallocs,
	    (unsigned long long)s.slow_frees, (unsigned long long)s.refills,
	    (unsigned long long)s.flushes, (unsigned long long)s.failed_allocs,
	    (unsigned long long)s.grows, (unsigned long long)s.pool_bytes,
	    (unsigned long long)s.high_water_bytes, (unsigned long long)s.in_use_bytes, s.locked,
	    (unsigned long long)s.minflt_since_init, (unsigned long long)s.majflt_since_init,
	    (unsigned long long)s.rt_minflt, (unsigned long long)s.rt_slow,
	    (unsigned long long)s.foreign_frees);
	n = strlen(line);
	n += rt_faults_report_json(line + n, sizeof(line) - n > 2 ? sizeof(line) - n - 2 : 0);
	line[n++] = '}';
	line[n++] = '\n';
	int fd = report_open();
	if (fd < 0)
		return;
	rt_os_write_all(fd, line, n); /* a failure: nothing more to do at exit */
	if (fd != STDERR_FILENO && fd != report_fd)
		rt_os_close(fd);
}

