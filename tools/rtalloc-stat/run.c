/* SPDX-License-Identifier: MIT */
/*
 * run.c - rtalloc-stat -- CMD: run a command under librtalloc, report at its exit.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs.h"

#ifndef RTALLOC_STAT_BUILD_LIB /* librtalloc.so in the build tree ("" if not built) */
#define RTALLOC_STAT_BUILD_LIB ""
#endif
#ifndef RTALLOC_STAT_BUILD_DIR /* the build directory of this program */
#define RTALLOC_STAT_BUILD_DIR ""
#endif
#ifndef RTALLOC_STAT_INSTALL_LIB /* librtalloc.so where meson installs it */
#define RTALLOC_STAT_INSTALL_LIB ""
#endif

extern char **environ;

/* ==== -- CMD: run a command under librtalloc ============================================= */

static pid_t run_child;

static void forward_signal(int sig)
{
	if (run_child > 0)
		kill(run_child, sig);
}

/* dirname of a path, in place. */
static void dir_of(char *p)
{
	char *s = strrchr(p, '/');
	if (s && s != p)
		*s = '\0';
	else if (s)
		s[1] = '\0';
}

/* librtalloc.so: $RTALLOC_LIB; else the build tree's when this program runs from the build
 * tree; else the installed one; else the build tree's if it is still there. */
static const char *find_library(void)
{
	const char *env = getenv("RTALLOC_LIB");
	if (env && *env)
		return env;
	static char self[PATH_MAX];
	char build_dir[PATH_MAX];
	bool from_build = false;
	if (realpath("/proc/self/exe", self) && RTALLOC_STAT_BUILD_DIR[0] &&
	    realpath(RTALLOC_STAT_BUILD_DIR, build_dir)) {
		dir_of(self);
		from_build = strcmp(self, build_dir) == 0;
	}
	if (from_build && RTALLOC_STAT_BUILD_LIB[0] && access(RTALLOC_STAT_BUILD_LIB, R_OK) == 0)
		return RTALLOC_STAT_BUILD_LIB;
	if (RTALLOC_STAT_INSTALL_LIB[0] && access(RTALLOC_STAT_INSTALL_LIB, R_OK) == 0)
		return RTALLOC_STAT_INSTALL_LIB;
	if (RTALLOC_STAT_BUILD_LIB[0] && access(RTALLOC_STAT_BUILD_LIB, R_OK) == 0)
		return RTALLOC_STAT_BUILD_LIB;
	return NULL;
}

/* The child's environment: ours with the library first in LD_PRELOAD (*pre_out: the
 * one string allocated here). */
static char **child_env(const char *lib, char **pre_out)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	const char *old = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0)
			old = environ[i] + 11;
		else
			env[k++] = environ[i];
	}
	size_t len = strlen(lib) + (old ? strlen(old) : 0) + 16;
	char *pre = malloc(len);
	if (!pre) {
		free(env);
		return NULL;
	}
	if (old && *old)
		snprintf(pre, len, "LD_PRELOAD=%s:%s", lib, old);
	else
		snprintf(pre, len, "LD_PRELOAD=%s", lib);
	env[k++] = pre;
	env[k] = NULL;
	*pre_out = pre;
	return env;
}

struct run_state {
	struct region region;
	bool attached; /* region open (maybe not mapped or initialised yet) */
	bool valid;    /* a snapshot was taken */
	char dir[DIRLEN], path[PATHLEN];
};

/* Open the child's region as soon as it exists; re-open it if the path now names
 * another file (the child exec'ed another program that created it anew). */
static void run_attach(struct run_state *st, pid_t pid, uid_t uid)
{
	struct stat lst;
	if (lstat(st->path, &lst) == 0 && S_ISREG(lst.st_mode) &&
	    (!st->attached || lst.st_ino != st->region.ino || lst.st_dev != st->region.dev)) {
		struct region fresh;
		if (region_open(&fresh, st->path, uid, pid) == RG_OK) {
			if (st->attached)
				region_close(&st->region);
			st->region = fresh;
			st->attached = true;
			st->valid = false;
		}
	}
	if (st->attached && !st->region.map)
		region_map(&st->region);
}

/* Take a snapshot if the region is complete; keeps the last good one. */
static void run_sample(struct run_state *st, struct snap *s)
{
	if (!st->attached || !st->region.map || region_header(&st->region) != RG_OK)
		return;
	if (snap_read(&st->region, s) == RG_OK)
		st->valid = true;
}

static void run_report_text(char **argv, int status, const struct rusage *ru, double elapsed,
			    const struct run_state *st, const struct snap *s, uint64_t exit_ns)
{
	printf("\n%s: command:", PROG);
	for (char **a = argv; *a; a++)
		printf(" %s", esc(*a));
	printf("\n  ");
	if (WIFSIGNALED(status))
		printf("killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		printf("exit status %d", WEXITSTATUS(status));
	printf(" after %.3f s; max RSS %ld KiB\n", elapsed, ru->ru_maxrss);
	printf("\nPage faults                       %10s %10s\n", "MINOR", "MAJOR");
	printf("  total                           %10ld %10ld\n", ru->ru_minflt, ru->ru_majflt);
	if (!st->valid) {
		printf("\nNo librtalloc statistics: the command never exported them (not dynamically linked, "
		       "RTALLOC_STATS=0, or librtalloc could not start: see its stderr).\n");
		return;
	}
	printf("  during start-up (until init)    %10llu %10llu\n", (unsigned long long)s->f.init_minflt,
	       (unsigned long long)s->f.init_majflt);
	printf("  after initialisation            %10llu %10llu\n",
	       (unsigned long long)rt_sr_sub0((uint64_t)ru->ru_minflt, s->f.init_minflt),
	       (unsigned long long)rt_sr_sub0((uint64_t)ru->ru_majflt, s->f.init_majflt));
	printf("  in real-time sections           %10llu %10llu   (%llu sections ended, %llu slow-path "
	       "entries)\n",
	       (unsigned long long)s->f.total.sect_minflt, (unsigned long long)s->f.total.sect_majflt,
	       (unsigned long long)s->f.total.sections, (unsigned long long)s->f.total.sect_slow);
	printf("\nAllocator (pid %d, %s; initialised in %.3f ms; memory %s)\n", (int)st->region.pid,
	       esc(st->region.path), (double)s->f.init_duration_ns / 1e6,
	       (s->f.flags & RT_STATS_F_LOCKED) ? "locked" : "NOT locked");
	text_counters_line(&s->f.total);
	printf("  threads: %u live at the last look, %llu exited\n", s->f.nlive,
	       (unsigned long long)s->f.threads_exited);
	text_pool(s);
	text_events(s, exit_ns, "before the exit");
	if (!(s->f.flags & RT_STATS_F_LOCKED))
		printf("\nwarning: memory was not locked (mlockall failed or RTALLOC_MLOCK=0): the pool could be "
		       "paged out\n");
}

static void run_report_json(char **argv, int status, const struct rusage *ru, double elapsed,
			    const struct run_state *st, const struct snap *s, uint64_t exit_ns)
{
	j_begin();
	j_open("command", '[');
	for (char **a = argv; *a; a++)
		j_str(NULL, *a);
	j_close(']');
	j_u64("pid", (uint64_t)run_child);
	if (WIFSIGNALED(status)) {
		j_null("exit_status");
		j_i64("signal", WTERMSIG(status));
	} else {
		j_i64("exit_status", WEXITSTATUS(status));
		j_null("signal");
	}
	j_dbl("elapsed_s", elapsed);
	j_i64("max_rss_kib", ru->ru_maxrss);
	j_open("faults", '{');
	j_open("total", '{');
	j_u64("minor", (uint64_t)ru->ru_minflt);
	j_u64("major", (uint64_t)ru->ru_majflt);
	j_close('}');
	if (st->valid) {
		j_open("until_init", '{');
		j_u64("minor", s->f.init_minflt);
		j_u64("major", s->f.init_majflt);
		j_close('}');
		j_open("since_init", '{');
		j_u64("minor", rt_sr_sub0((uint64_t)ru->ru_minflt, s->f.init_minflt));
		j_u64("major", rt_sr_sub0((uint64_t)ru->ru_majflt, s->f.init_majflt));
		j_close('}');
		j_rt_faults(s);
	}
	j_close('}');
	if (!st->valid) {
		j_null("rtalloc");
		j_end();
		return;
	}
	j_open("rtalloc", '{');
	j_str("region", st->region.path);
	j_bool("locked", s->f.flags & RT_STATS_F_LOCKED);
	j_bool("consistent", !s->f.torn);
	j_u64("init_duration_ns", s->f.init_duration_ns);
	j_u64("threads_live", s->f.nlive);
	j_u64("threads_exited", s->f.threads_exited);
	j_counters("totals", &s->f.total);
	j_lock_waits(s);
	j_pool(s);
	j_events(s, exit_ns, "last_grow_before_exit_s", "last_failure_before_exit_s");
	j_close('}');
	j_end();
}

int cmd_run(char **argv, bool json)
{
	const char *lib = find_library();
	if (!lib) {
		say("cannot find librtalloc.so: set RTALLOC_LIB to its path");
		return EXIT_ERR;
	}
	if (access(lib, R_OK) != 0) {
		say("cannot read librtalloc at %s (%s)", lib, strerror(errno));
		return EXIT_ERR;
	}
	char *preload = NULL;
	char **env = child_env(lib, &preload);
	if (!env) {
		say("out of memory");
		return EXIT_ERR;
	}
	static struct run_state st;
	memset(&st, 0, sizeof(st));
	st.region.fd = -1;
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	snprintf(st.dir, sizeof(st.dir), "%s", usable_dir(xdg) ? xdg : "/dev/shm");
	/* Watch the directory before the child starts: its region appears at its start. */
	int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ino >= 0 && inotify_add_watch(ino, st.dir, IN_CREATE | IN_MOVED_TO | IN_MODIFY) < 0) {
		close(ino);
		ino = -1;
	}
	struct sigaction ign, fwd, old_int, old_quit, old_term, old_hup;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	memset(&fwd, 0, sizeof(fwd));
	fwd.sa_handler = forward_signal;
	sigemptyset(&fwd.sa_mask);
	fwd.sa_flags = SA_RESTART;
	/* Like time(1): the terminal's ^C and ^\ go to the command, we wait for its end. */
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	sigset_t dfl, none;
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGQUIT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGPIPE);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	uint64_t started = now_ns(CLOCK_MONOTONIC);
	fflush(stdout);
	int e = posix_spawnp(&run_child, argv[0], NULL, &attr, argv, env);
	posix_spawnattr_destroy(&attr);
	if (e != 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		say("cannot run %s: %s", esc(argv[0]), strerror(e));
		free(preload);
		free(env);
		if (ino >= 0)
			close(ino);
		return e == ENOENT ? 127 : 126;
	}
	sigaction(SIGTERM, &fwd, &old_term);
	sigaction(SIGHUP, &fwd, &old_hup);
	uid_t uid = getuid();
	snprintf(st.path, sizeof(st.path), "%s/rtalloc-%u-%d.stats", st.dir, (unsigned)uid, (int)run_child);
	int pidfd = pidfd_of(run_child);
	struct snap *s = &snap_a, *scratch = &snap_b;
	uint64_t next_sample = now_ns(CLOCK_MONOTONIC);
	int status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	for (;;) {
		struct pollfd pfd[2];
		int nfd = 0;
		if (pidfd >= 0)
			pfd[nfd++] = (struct pollfd){pidfd, POLLIN, 0};
		if (ino >= 0)
			pfd[nfd++] = (struct pollfd){ino, POLLIN, 0};
		/* Without a pidfd, look for the exit every 10 ms. */
		int timeout = pidfd >= 0 ? 100 : 10;
		int n = poll(pfd, (nfds_t)nfd, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (ino >= 0) { /* drain the events: any may be the region's creation */
			char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
			while (read(ino, buf, sizeof(buf)) > 0)
				;
		}
		run_attach(&st, run_child, uid);
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		if (now >= next_sample) {
			run_sample(&st, scratch);
			if (st.valid && scratch->taken_ns) {
				struct snap *t = s;
				s = scratch;
				scratch = t;
				scratch->taken_ns = 0;
			}
			next_sample = now + 100000000u; /* every 100 ms */
		}
		pid_t w = wait4(run_child, &status, WNOHANG, &ru);
		if (w == run_child)
			break;
		if (w < 0 && errno != EINTR) {
			say("waiting for %s: %s", esc(argv[0]), strerror(errno));
			break;
		}
	}
	uint64_t exit_ns = now_ns(CLOCK_MONOTONIC);
	double elapsed = ns_to_s(exit_ns - started);
	/* The child is gone; our mapping of its (now unlinked) region holds its last figures. */
	run_attach(&st, run_child, uid);
	bool had = st.valid;
	run_sample(&st, scratch);
	if (st.valid && scratch->taken_ns)
		s = scratch;
	else
		st.valid = had;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	if (json)
		run_report_json(argv, status, &ru, elapsed, &st, s, exit_ns);
	else
		run_report_text(argv, status, &ru, elapsed, &st, s, exit_ns);
	/* A command killed by a signal leaves its region behind: ours to remove (the
	 * very file we mapped, nothing else that might have taken its name since). */
	struct stat lst;
	if (st.attached && lstat(st.path, &lst) == 0 && S_ISREG(lst.st_mode) && lst.st_ino == st.region.ino &&
	    lst.st_dev == st.region.dev)
		unlink(st.path);
	if (st.attached)
		region_close(&st.region);
	if (pidfd >= 0)
		close(pidfd);
	if (ino >= 0)
		close(ino);
	free(preload);
	free(env);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

