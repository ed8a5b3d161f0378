/* SPDX-License-Identifier: MIT */
/*
 * watch.c - rtalloc-stat -w: a row of changes per interval.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rs.h"

/* ==== -w: a row per interval ============================================================= */

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

static void sample_proc(pid_t pid, struct sample *x)
{
	char path[64];
	struct pstat ps;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	x->have_proc = read_pstat(path, &ps) == 0 && ps.state != 'Z' && ps.state != 'X';
	x->minflt = x->have_proc ? ps.minflt : 0;
	x->majflt = x->have_proc ? ps.majflt : 0;
}

static void watch_header(void)
{
	printf("%-8s %8s %6s %9s %9s %10s %10s %7s %5s %5s %10s\n", "TIME", "MINFLT", "MAJFLT", "RT-MINFLT",
	       "RT-MAJFLT", "ALLOCS", "FREES", "SLOW", "GROWS", "FAILS", "INUSE-KiB");
}

void watch_row(bool json, pid_t pid, double interval, const struct sample *a, const struct sample *b,
		      bool exited)
{
	const struct snap *p = a->s, *q = b->s;
	bool faults = a->have_proc && b->have_proc;
	uint64_t minf = faults ? rt_sr_sub0(b->minflt, a->minflt) : 0, majf = faults ? rt_sr_sub0(b->majflt, a->majflt) : 0;
	uint64_t rtmin = rt_sr_sub0(q->f.total.sect_minflt, p->f.total.sect_minflt);
	uint64_t rtmaj = rt_sr_sub0(q->f.total.sect_majflt, p->f.total.sect_majflt);
	uint64_t allocs = rt_sr_sub0(q->f.total.mallocs, p->f.total.mallocs), frees = rt_sr_sub0(q->f.total.frees, p->f.total.frees);
	uint64_t slow = rt_sr_sub0(rt_sr_sat_add(q->f.total.slow_mallocs, q->f.total.slow_frees),
			     rt_sr_sat_add(p->f.total.slow_mallocs, p->f.total.slow_frees));
	uint64_t grows = rt_sr_sub0(q->f.grows, p->f.grows), fails = rt_sr_sub0(q->f.total.failed, p->f.total.failed);
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	if (json) {
		j_begin();
		j_dbl("time", (double)rt.tv_sec + (double)rt.tv_nsec / 1e9);
		j_u64("pid", (uint64_t)pid);
		j_dbl("interval_s", interval);
		if (faults) {
			j_u64("minflt", minf);
			j_u64("majflt", majf);
		} else {
			j_null("minflt");
			j_null("majflt");
		}
		j_u64("rt_minflt", rtmin);
		j_u64("rt_majflt", rtmaj);
		j_u64("rt_slow", rt_sr_sub0(q->f.total.sect_slow, p->f.total.sect_slow));
		j_u64("rt_sections", rt_sr_sub0(q->f.total.sections, p->f.total.sections));
		j_u64("lock_waits", rt_sr_sub0(q->f.total.lock_waits, p->f.total.lock_waits));
		j_u64("rt_lock_waits", rt_sr_sub0(q->f.total.sect_lock_waits, p->f.total.sect_lock_waits));
		j_u64("mallocs", allocs);
		j_u64("frees", frees);
		j_u64("slow", slow);
		j_u64("grows", grows);
		j_u64("failed", fails);
		j_u64("in_use_bytes", rt_sr_in_use(&q->f));
		j_i64("in_use_change_bytes", diff_i64(rt_sr_in_use(&q->f), rt_sr_in_use(&p->f)));
		j_bool("exited", exited);
		j_end();
		return;
	}
	struct tm tm;
	char tbuf[16];
	time_t sec = rt.tv_sec;
	localtime_r(&sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%H:%M:%S", &tm);
	char minb[24] = "-", majb[24] = "-";
	if (faults) {
		snprintf(minb, sizeof(minb), "%llu", (unsigned long long)minf);
		snprintf(majb, sizeof(majb), "%llu", (unsigned long long)majf);
	}
	printf("%-8s %8s %6s %9llu %9llu %10llu %10llu %7llu %5llu %5llu %10llu%s\n", tbuf, minb, majb,
	       (unsigned long long)rtmin, (unsigned long long)rtmaj, (unsigned long long)allocs,
	       (unsigned long long)frees, (unsigned long long)slow, (unsigned long long)grows,
	       (unsigned long long)fails, (unsigned long long)rt_sr_in_use(&q->f) >> 10, exited ? "  (exited)" : "");
	fflush(stdout);
}

int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Sleep until the deadline (CLOCK_MONOTONIC ns), the process's exit or a stop signal.
 * Returns true when the process has exited. */
static bool wait_interval(int pidfd, pid_t pid, uint64_t deadline, const sigset_t *unblocked)
{
	for (;;) {
		if (stop_signal)
			return false;
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		if (now >= deadline)
			break;
		uint64_t left = deadline - now;
		if (pidfd < 0 && left > 100000000u)
			left = 100000000u; /* no pidfd: look at the process every 100 ms */
		struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
		struct pollfd pfd = {pidfd, POLLIN, 0};
		int n = ppoll(pidfd >= 0 ? &pfd : NULL, pidfd >= 0 ? 1 : 0, &ts, unblocked);
		if (n > 0)
			return true;
		if (pidfd < 0 && kill(pid, 0) != 0 && errno == ESRCH)
			return true;
	}
	if (pidfd < 0 && kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	char path[64];
	struct pstat ps;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return read_pstat(path, &ps) != 0 || ps.state == 'Z' || ps.state == 'X';
}

int cmd_watch(pid_t pid, double interval, long count, bool json)
{
	struct target t;
	int rc = find_target(pid, &t);
	if (rc != EXIT_OK)
		return rc;
	int pidfd = pidfd_of(pid);
	/* SIGINT/SIGTERM end the watch cleanly; they are only delivered inside ppoll. */
	sigset_t block, unblocked;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGTERM);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct sample prev = {&snap_a, false, 0, 0}, cur = {&snap_b, false, 0, 0};
	sample_proc(pid, &prev);
	enum region_status st = snap_read(&t.region, prev.s);
	if (st != RG_OK) {
		snap_error(pid, t.comm, &t.region, prev.s, st);
		region_close(&t.region);
		return EXIT_ERR;
	}
	if (!json) {
		printf("# process %d (%s), every %g s; counts are changes over the interval\n", (int)pid, esc(t.comm),
		       interval);
		watch_header();
		fflush(stdout);
	}
	uint64_t step = (uint64_t)(interval * 1e9), deadline = now_ns(CLOCK_MONOTONIC) + step;
	unsigned rows = 0;
	for (long n = 0; count <= 0 || n < count; n++) {
		bool exited = wait_interval(pidfd, pid, deadline, &unblocked);
		if (stop_signal)
			break;
		deadline += step;
		if (!exited)
			sample_proc(pid, &cur);
		else
			cur.have_proc = false;
		/* The mapping outlives the file: after the exit it holds the final figures. */
		st = snap_read(&t.region, cur.s);
		if (st != RG_OK) {
			snap_error(pid, t.comm, &t.region, cur.s, st);
			rc = EXIT_ERR;
			break;
		}
		if (!json && !exited && ++rows % 20 == 0 && isatty(STDOUT_FILENO))
			watch_header();
		watch_row(json, pid, interval, &prev, &cur, exited);
		if (exited) {
			if (!json)
				printf("# process %d (%s) exited\n", (int)pid, esc(t.comm));
			fflush(stdout);
			break;
		}
		struct sample tmp = prev;
		prev = cur;
		cur = tmp;
	}
	if (pidfd >= 0)
		close(pidfd);
	region_close(&t.region);
	return rc;
}

