/* SPDX-License-Identifier: MIT */
/*
 * rtalloc-stat.c - librtalloc's statistics seen from outside the process.
 *
 *   rtalloc-stat [--json] PID                   one report
 *   rtalloc-stat [--json] -w SECONDS [-c N] PID a row of changes per interval
 *   rtalloc-stat [--json] -- CMD [ARGS...]      run CMD under librtalloc, report at its exit
 *   rtalloc-stat [--json] -l                    this user's processes running librtalloc
 *
 * Sources: the process's statistics region (lib/stats.h: a file
 * rtalloc-<uid>-<pid>.stats in its $XDG_RUNTIME_DIR, else /dev/shm, mapped
 * here read-only) and /proc (faults per thread, thread names, VmLck).
 *
 * Nothing in the region is trusted before it passes the checks of
 * region_check(): a regular file owned by the uid in its name, opened without
 * following links, of the right size, magic, version and pid, and mapped by
 * the process it names (or, when its maps cannot be read, initialised after
 * the process started).  The mapping is read under a SIGBUS guard (a file
 * truncated under us is an error, not a crash) and every seqlock read is
 * bounded (rt_seq_read): a writer that never finishes cannot make us hang.
 *
 * Exit codes: 0 ok; 1 no such process, not using librtalloc, another user's,
 * or no usable region; 2 usage.  With -- CMD: the command's status (128+N
 * when killed by signal N; 127/126 when it cannot be run).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

#ifndef RTALLOC_STAT_VERSION
#define RTALLOC_STAT_VERSION "unknown"
#endif
#ifndef RTALLOC_STAT_BUILD_LIB /* librtalloc.so in the build tree ("" if not built) */
#define RTALLOC_STAT_BUILD_LIB ""
#endif
#ifndef RTALLOC_STAT_BUILD_DIR /* the build directory of this program */
#define RTALLOC_STAT_BUILD_DIR ""
#endif
#ifndef RTALLOC_STAT_INSTALL_LIB /* librtalloc.so where meson installs it */
#define RTALLOC_STAT_INSTALL_LIB ""
#endif

#define PROG "rtalloc-stat"
#define DIRLEN 256  /* the library accepts directories of at most 200 characters */
#define PATHLEN 512 /* a directory and a file name */

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

extern char **environ;

static const char *const class_names[RT_STATS_CLASSES] = {
	"-", "16", "32", "64", "128", "256", "512", "1K", "2K", "4K", "8K", "16K", "32K", "huge",
};

/* ==== small helpers ===================================================================== */

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

__attribute__((format(printf, 1, 2), noreturn)) static void usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ns_to_s(uint64_t ns) { return (double)ns / 1e9; }

/* Read at most len-1 bytes of a file, NUL-terminated.  Length, or -1 with errno. */
static long read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t at = 0;
	while (at + 1 < len) {
		ssize_t r = read(fd, buf + at, len - 1 - at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		at += (size_t)r;
	}
	close(fd);
	buf[at] = '\0';
	return (long)at;
}

/* A decimal pid, 1 .. INT_MAX, nothing else. */
static bool parse_pid(const char *s, pid_t *out)
{
	if (!*s)
		return false;
	long long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return false;
	}
	if (v < 1)
		return false;
	*out = (pid_t)v;
	return true;
}

/* ==== JSON output =========================================================================
 * One writer: keys and values in order, commas and nesting tracked here.  Strings are
 * escaped; bytes that are not valid UTF-8 are written as \u00XX so the output is always
 * valid JSON whatever a thread name holds. */

static struct {
	int depth;
	bool first[16];
} J;

static void j_sep(void)
{
	if (!J.first[J.depth])
		putchar(',');
	J.first[J.depth] = false;
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static int utf8_len(const unsigned char *s)
{
	int n;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void j_quote(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	putchar('"');
	while (*s) {
		if (*s == '"' || *s == '\\') {
			putchar('\\');
			putchar(*s++);
		} else if (*s < 0x20 || *s == 0x7f) {
			printf("\\u%04x", *s++);
		} else {
			int n = utf8_len(s);
			if (n == 0) {
				printf("\\u%04x", *s++);
			} else {
				fwrite(s, 1, (size_t)n, stdout);
				s += n;
			}
		}
	}
	putchar('"');
}

static void j_key(const char *k)
{
	j_sep();
	if (k) {
		j_quote(k);
		putchar(':');
	}
}

static void j_open(const char *k, char c)
{
	j_key(k);
	putchar(c);
	J.depth++;
	J.first[J.depth] = true;
}

static void j_close(char c)
{
	J.depth--;
	putchar(c);
}

static void j_u64(const char *k, uint64_t v)
{
	j_key(k);
	printf("%llu", (unsigned long long)v);
}

static void j_i64(const char *k, int64_t v)
{
	j_key(k);
	printf("%lld", (long long)v);
}

static void j_dbl(const char *k, double v)
{
	j_key(k);
	printf("%.6f", v);
}

static void j_bool(const char *k, bool v)
{
	j_key(k);
	fputs(v ? "true" : "false", stdout);
}

static void j_null(const char *k)
{
	j_key(k);
	fputs("null", stdout);
}

static void j_str(const char *k, const char *v)
{
	j_key(k);
	if (v)
		j_quote(v);
	else
		fputs("null", stdout);
}

static void j_begin(void)
{
	J.depth = 0;
	J.first[0] = true;
	j_open(NULL, '{');
}

static void j_end(void)
{
	j_close('}');
	putchar('\n');
	fflush(stdout);
}

/* ==== /proc ============================================================================== */

struct pstat {
	char comm[64];
	char state;
	uint64_t minflt, majflt, starttime; /* starttime: clock ticks since boot */
};

/* /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat.  0, or -1 with errno. */
static int read_pstat(const char *path, struct pstat *ps)
{
	char buf[1024];
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ') {
		errno = EINVAL;
		return -1;
	}
	size_t n = (size_t)(close_paren - open_paren - 1);
	if (n >= sizeof(ps->comm))
		n = sizeof(ps->comm) - 1;
	memcpy(ps->comm, open_paren + 1, n);
	ps->comm[n] = '\0';
	char *p = close_paren + 2;
	ps->state = *p;
	/* fields after the state: ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime */
	uint64_t f[20] = {0};
	p++;
	for (int i = 1; i < 20; i++) {
		char *end;
		while (*p == ' ')
			p++;
		long long v = strtoll(p, &end, 10);
		if (end == p) {
			errno = EINVAL;
			return -1;
		}
		f[i] = (uint64_t)v;
		p = end;
	}
	ps->minflt = f[7];
	ps->majflt = f[9];
	ps->starttime = f[19];
	return 0;
}

/* "Key:" line of /proc/<pid>/status: the first number after it, or -1. */
static long long status_field(pid_t pid, const char *key)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	size_t klen = strlen(key);
	for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, key, klen) == 0 && l[klen] == ':')
			return strtoll(l + klen + 1, NULL, 10);
	return -1;
}

static void thread_name(pid_t pid, pid_t tid, char *name, size_t len, const char *fallback)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	if (read_file(path, name, len) <= 0) {
		snprintf(name, len, "%s", fallback);
		return;
	}
	name[strcspn(name, "\n")] = '\0';
}

/* The value of XDG_RUNTIME_DIR in the process's initial environment (what librtalloc
 * read at its initialisation), copied to out; false if unknown. */
static bool proc_xdg_dir(pid_t pid, char *out, size_t len)
{
	char path[64];
	static char buf[65536];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	long n = read_file(path, buf, sizeof(buf));
	if (n <= 0)
		return false;
	for (char *e = buf; e < buf + n; e += strlen(e) + 1) {
		if (strncmp(e, "XDG_RUNTIME_DIR=", 16) == 0) {
			snprintf(out, len, "%s", e + 16);
			return true;
		}
	}
	return false;
}

enum maps_result { MAPS_UNREADABLE, MAPS_NOT_MAPPED, MAPS_MAPPED };

/* Does the process map the file (dev, ino), or the file now at path (on overlay
 * filesystems the maps may show the underlying device)?  Also tells whether
 * librtalloc is loaded. */
static enum maps_result proc_maps(pid_t pid, dev_t dev, ino_t ino, const char *path_now, bool *has_lib)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (has_lib)
		*has_lib = false;
	FILE *f = fopen(path, "re");
	if (!f)
		return MAPS_UNREADABLE;
	enum maps_result r = MAPS_NOT_MAPPED;
	char line[4096 + 256];
	bool read_any = false;
	while (fgets(line, sizeof(line), f)) {
		read_any = true;
		unsigned maj, min;
		unsigned long long inode;
		int name_at = 0;
		if (sscanf(line, "%*x-%*x %*4s %*x %x:%x %llu %n", &maj, &min, &inode, &name_at) < 3)
			continue;
		if (inode && inode == (unsigned long long)ino && makedev(maj, min) == dev)
			r = MAPS_MAPPED;
		const char *name = line + name_at;
		size_t nlen = strcspn(name, "\n");
		if (path_now && name_at > 0 && nlen == strlen(path_now) && strncmp(name, path_now, nlen) == 0)
			r = MAPS_MAPPED; /* " (deleted)" would follow the name of a removed file */
		if (has_lib && name_at > 0) {
			const char *base = strrchr(name, '/');
			base = base ? base + 1 : name;
			if (strncmp(base, "librtalloc.so", 13) == 0)
				*has_lib = true;
		}
		if (!strchr(line, '\n')) { /* a longer line: skip the rest */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
		}
	}
	fclose(f);
	/* A process we may not inspect gives an empty file rather than an error. */
	return read_any ? r : MAPS_UNREADABLE;
}

/* ==== the region ========================================================================= */

#define REGION_LEN (sizeof(struct rt_stats_region))
/* A region of the layout before heaps were appended (RT_STATS_VERSION 1
 * still): everything but heaps[], which is then not shown. */
#define REGION_V1_LEN RT_STATS_REGION_V1_SIZE

struct region {
	int fd;
	const struct rt_stats_region *map; /* NULL until mapped */
	size_t len;                         /* bytes mapped: REGION_LEN or REGION_V1_LEN */
	dev_t dev;
	ino_t ino;
	uid_t uid;
	pid_t pid;
	char path[PATHLEN];
};

static void region_close(struct region *r)
{
	if (r->map)
		munmap((void *)r->map, r->len);
	if (r->fd >= 0)
		close(r->fd);
	r->map = NULL;
	r->fd = -1;
}

/* SIGBUS guard: the owner could truncate the file under our mapping. */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_sigbus(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* Directory the library picks from an XDG_RUNTIME_DIR value (stats.c's rule). */
static bool usable_dir(const char *dir) { return dir && dir[0] == '/' && strlen(dir) <= 200; }

/* The directories where a process's region can be, most likely first. */
static int region_dirs(pid_t pid, uid_t uid, char dirs[][DIRLEN], int max)
{
	char cand[4][DIRLEN];
	int nc = 0;
	if (pid > 0 && proc_xdg_dir(pid, cand[nc], sizeof(cand[0])) && usable_dir(cand[nc]))
		nc++;
	const char *mine = getenv("XDG_RUNTIME_DIR");
	if (usable_dir(mine))
		snprintf(cand[nc++], DIRLEN, "%s", mine);
	snprintf(cand[nc++], DIRLEN, "/run/user/%u", (unsigned)uid);
	snprintf(cand[nc++], DIRLEN, "/dev/shm");
	int n = 0;
	for (int i = 0; i < nc && n < max; i++) {
		size_t l = strlen(cand[i]);
		while (l > 1 && cand[i][l - 1] == '/')
			cand[i][--l] = '\0';
		bool dup = false;
		for (int j = 0; j < n; j++)
			dup |= strcmp(dirs[j], cand[i]) == 0;
		if (!dup)
			snprintf(dirs[n++], DIRLEN, "%.*s", DIRLEN - 1, cand[i]);
	}
	return n;
}

/* Why a region was refused; the messages complete "statistics file PATH ...". */
enum region_status {
	RG_OK,
	RG_ABSENT,      /* no file */
	RG_NOT_REGULAR, /* a symlink or anything but a regular file */
	RG_DENIED,      /* another user's file */
	RG_WRONG_OWNER, /* not owned by the uid in its name */
	RG_SHORT,       /* smaller than a region: still being created */
	RG_INIT,        /* header not complete yet */
	RG_BAD,         /* wrong magic, version, size or pid */
	RG_STALE,       /* not this process's */
	RG_IO,          /* open/mmap failed otherwise, or truncated under us */
};

static const char *region_why(enum region_status s)
{
	switch (s) {
	case RG_OK: return "is fine";
	case RG_ABSENT: return "does not exist";
	case RG_NOT_REGULAR: return "is not a regular file (a symbolic link?): refused";
	case RG_DENIED: return "belongs to another user";
	case RG_WRONG_OWNER: return "is not owned by the user it names: refused";
	case RG_SHORT: return "is incomplete (the process is starting?)";
	case RG_INIT: return "is not initialised yet (the process is starting?)";
	case RG_BAD: return "is not a librtalloc statistics region of this version and process";
	case RG_STALE: return "is stale: the process does not map it (left by an earlier process with this pid)";
	case RG_IO: return "cannot be read (truncated or removed under us?)";
	}
	return "?";
}

/* Open path (never following a link) and check the file: not yet its contents. */
static enum region_status region_open(struct region *r, const char *path, uid_t uid, pid_t pid)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->pid = pid;
	r->uid = uid;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return RG_ABSENT;
		if (errno == ELOOP)
			return RG_NOT_REGULAR;
		if (errno == EACCES || errno == EPERM)
			return RG_DENIED;
		return RG_IO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return RG_NOT_REGULAR;
	}
	if (st.st_uid != uid) {
		close(fd);
		return RG_WRONG_OWNER;
	}
	r->fd = fd;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return RG_OK;
}

/* Map the region once the file has its size. */
static enum region_status region_map(struct region *r)
{
	if (r->map)
		return RG_OK;
	struct stat st;
	if (fstat(r->fd, &st) != 0)
		return RG_IO;
	if ((uint64_t)st.st_size < REGION_V1_LEN)
		return RG_SHORT;
	size_t len = (uint64_t)st.st_size < REGION_LEN ? REGION_V1_LEN : REGION_LEN;
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, r->fd, 0);
	if (p == MAP_FAILED)
		return RG_IO;
	r->map = p;
	r->len = len;
	return RG_OK;
}

/* The header: complete, of this version and layout, for this pid. */
static enum region_status region_header(const struct region *r)
{
	const struct rt_stats_region *m = r->map;
	enum region_status s = RG_OK;
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		return RG_IO;
	}
	uint64_t magic = __atomic_load_n(&m->magic, __ATOMIC_ACQUIRE);
	if (magic == 0)
		s = RG_INIT;
	else if (magic != RT_STATS_MAGIC || m->version != RT_STATS_VERSION || (m->size != REGION_LEN && m->size != REGION_V1_LEN) || m->size > r->len ||
		 m->pid != r->pid || m->nslots != RT_STATS_SLOTS || m->narenas < 1 ||
		 m->narenas > RT_STATS_ARENAS)
		s = RG_BAD;
	bus_armed = 0;
	return s;
}

/* Is the region this process's?  Its maps name the file's inode, or, when the maps
 * cannot be read, the region was initialised after the process started. */
static enum region_status region_owner(const struct region *r, bool *has_lib)
{
	enum maps_result m = proc_maps(r->pid, r->dev, r->ino, r->path, has_lib);
	if (m == MAPS_MAPPED)
		return RG_OK;
	if (m == MAPS_NOT_MAPPED)
		return RG_STALE;
	char path[64];
	struct pstat ps;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)r->pid);
	if (!r->map || read_pstat(path, &ps) != 0)
		return RG_OK; /* nothing better to go on: the header checks passed */
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	/* starttime counts CLOCK_BOOTTIME ticks; init_ns is CLOCK_MONOTONIC. */
	uint64_t boot_minus_mono = now_ns(CLOCK_BOOTTIME) - now_ns(CLOCK_MONOTONIC);
	uint64_t init_boot = __atomic_load_n(&r->map->init_ns, __ATOMIC_RELAXED) + boot_minus_mono;
	uint64_t start_boot = ps.starttime * (1000000000u / (uint64_t)hz);
	return init_boot + 2 * (1000000000u / (uint64_t)hz) < start_boot ? RG_STALE : RG_OK;
}

/* All checks in order; on success the region is open and mapped. */
static enum region_status region_attach(struct region *r, const char *path, uid_t uid, pid_t pid,
					bool *has_lib)
{
	enum region_status s = region_open(r, path, uid, pid);
	if (s == RG_OK)
		s = region_map(r);
	if (s == RG_OK)
		s = region_header(r);
	if (s == RG_OK)
		s = region_owner(r, has_lib);
	if (s != RG_OK)
		region_close(r);
	return s;
}

/* ==== snapshots ========================================================================== */

struct tslot {
	int32_t tid;
	uint32_t in_rt;
	struct rt_tcounters c;
};

struct snap {
	uint64_t taken_ns; /* CLOCK_MONOTONIC */
	uint32_t flags, narenas;
	uint64_t init_ns, init_duration_ns, init_minflt, init_majflt, pool_size, pool_max;
	uint64_t threads_exited, threads_unslotted, last_failure_ns;
	struct rt_tcounters exited, total;
	struct rt_stats_arena arenas[RT_STATS_ARENAS];
	unsigned nlive;
	struct tslot live[RT_STATS_SLOTS];
	bool torn; /* a seqlock read gave up: some figures may be inconsistent */
	bool have_heaps; /* the region has heap records (its size covers them) */
	unsigned nheaps;
	struct rt_stats_heap heaps[RT_STATS_HEAPS]; /* the records in use */
	/* over the arenas */
	uint64_t pool_bytes, max_bytes, free_bytes, min_free_bytes, grows, last_grow_ns;
	uint64_t arena_failed, huge_allocs, huge_frees, class_units[RT_STATS_CLASSES];
};

static void add_counters(struct rt_tcounters *sum, const struct rt_tcounters *c)
{
#define RS_X_ADD(name, text) sum->name += c->name;
	RT_TCOUNTERS(RS_X_ADD)
#undef RS_X_ADD
}

/* A shared heap's figures as of the last operation of any process bound to
 * it, from the record the heap's object carries (stats.h, RT_HEAP_FIG_OFFSET);
 * the process's own record (as of its own last operation) when the object
 * is gone or not readable. */
static void shared_heap_now(struct rt_stats_heap *h)
{
	char name[sizeof(h->name) + 1], path[sizeof(RT_HEAP_SHM_PREFIX) + sizeof(name)];
	memcpy(name, h->name, sizeof(h->name));
	name[sizeof(h->name)] = '\0';
	snprintf(path, sizeof(path), "%s%s", RT_HEAP_SHM_PREFIX, name);
	int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct stat st;
	size_t len = RT_HEAP_FIG_OFFSET + sizeof(struct rt_stats_heap);
	void *m = fstat(fd, &st) == 0 && (size_t)st.st_size >= len
			  ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)
			  : MAP_FAILED;
	close(fd);
	if (m == MAP_FAILED)
		return;
	const struct rt_stats_heap *src = (const void *)((const char *)m + RT_HEAP_FIG_OFFSET);
	struct rt_stats_heap now = {0};
	if (rt_seq_read(&src->seq, &now, src, sizeof(now)) == 0 && (now.flags & RT_STATS_HEAP_USED) &&
	    memcmp(now.name, h->name, sizeof(h->name)) == 0)
		*h = now;
	munmap(m, len);
}

static void pause_us(long us)
{
	struct timespec ts = {0, us * 1000};
	nanosleep(&ts, NULL);
}

/* Live slots plus what exited threads left, inside one stable exit_seq window (the
 * library's own reader does the same), so no thread is counted twice or missed. */
static void read_threads(const struct rt_stats_region *m, struct snap *s)
{
	for (int tries = 0; tries < 50; tries++) { /* bound: 50 attempts, ~2.5 ms of pauses */
		if (tries)
			pause_us(50);
		uint32_t e1 = __atomic_load_n(&m->exit_seq, __ATOMIC_ACQUIRE);
		if ((e1 & 1) && tries < 49)
			continue; /* a thread is leaving; the last attempt reads anyway (marked torn) */
		struct {
			struct rt_tcounters exited;
			uint64_t threads_exited;
		} ex;
		_Static_assert(offsetof(struct rt_stats_region, threads_exited) ==
				       offsetof(struct rt_stats_region, exited) + sizeof(struct rt_tcounters),
			       "exited totals and their count are adjacent");
		rt_seq_read(&m->exit_seq, &ex, &m->exited, sizeof(ex));
		s->exited = ex.exited;
		s->threads_exited = ex.threads_exited;
		s->nlive = 0;
		bool torn = false;
		for (unsigned i = 0; i < RT_STATS_SLOTS; i++) { /* bound: the slots */
			struct rt_stats_slot slot = {0};
			if (rt_seq_read(&m->slots[i].seq, &slot, &m->slots[i], sizeof(slot)) != 0)
				torn = true;
			if (slot.tid == 0)
				continue;
			struct tslot *t = &s->live[s->nlive++];
			t->tid = slot.tid;
			t->in_rt = slot.in_rt;
			t->c = slot.c;
		}
		s->torn = torn || (e1 & 1);
		if (__atomic_load_n(&m->exit_seq, __ATOMIC_ACQUIRE) == e1 && !(e1 & 1))
			return;
		s->torn = true;
	}
}

/* A consistent copy of the region, or an error (RG_IO: truncated under us). */
static enum region_status snap_read(const struct region *r, struct snap *s)
{
	const struct rt_stats_region *m = r->map;
	memset(s, 0, sizeof(*s));
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		return RG_IO;
	}
	s->taken_ns = now_ns(CLOCK_MONOTONIC);
	s->flags = __atomic_load_n(&m->flags, __ATOMIC_RELAXED);
	s->narenas = m->narenas;
	if (s->narenas > RT_STATS_ARENAS)
		s->narenas = RT_STATS_ARENAS;
	s->init_ns = m->init_ns;
	s->init_duration_ns = m->init_duration_ns;
	s->init_minflt = m->init_minflt;
	s->init_majflt = m->init_majflt;
	s->pool_size = m->pool_size;
	s->pool_max = m->pool_max;
	s->threads_unslotted = __atomic_load_n(&m->threads_unslotted, __ATOMIC_RELAXED);
	s->last_failure_ns = __atomic_load_n(&m->last_failure_ns, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < s->narenas; i++) {
		struct rt_stats_arena *a = &s->arenas[i];
		if (rt_seq_read(&m->arenas[i].seq, a, &m->arenas[i], sizeof(*a)) != 0)
			s->torn = true;
		s->pool_bytes += a->pool_bytes;
		s->max_bytes += a->max_bytes;
		s->free_bytes += a->free_bytes;
		s->min_free_bytes += a->min_free_bytes;
		s->grows += a->grows;
		s->arena_failed += a->failed;
		s->huge_allocs += a->huge_allocs;
		s->huge_frees += a->huge_frees;
		if (a->last_grow_ns > s->last_grow_ns)
			s->last_grow_ns = a->last_grow_ns;
		for (unsigned c = 0; c < RT_STATS_CLASSES; c++)
			s->class_units[c] += a->class_units[c];
	}
	read_threads(m, s);
	s->have_heaps = __atomic_load_n(&m->size, __ATOMIC_RELAXED) >= REGION_LEN && r->len >= REGION_LEN;
	for (unsigned i = 0; s->have_heaps && i < RT_STATS_HEAPS; i++) {
		struct rt_stats_heap *hp = &s->heaps[s->nheaps];
		if (rt_seq_read(&m->heaps[i].seq, hp, &m->heaps[i], sizeof(*hp)) != 0)
			s->torn = true;
		if (hp->flags & RT_STATS_HEAP_USED)
			s->nheaps++;
	}
	bus_armed = 0;
	for (unsigned i = 0; i < s->nheaps; i++)
		if (s->heaps[i].flags & RT_STATS_HEAP_SHARED)
			shared_heap_now(&s->heaps[i]);
	s->total = s->exited;
	for (unsigned i = 0; i < s->nlive; i++)
		add_counters(&s->total, &s->live[i].c);
	return RG_OK;
}

static uint64_t in_use(const struct snap *s)
{
	return s->pool_bytes > s->free_bytes ? s->pool_bytes - s->free_bytes : 0;
}

static uint64_t high_water(const struct snap *s)
{
	return s->pool_bytes > s->min_free_bytes ? s->pool_bytes - s->min_free_bytes : 0;
}

static const struct tslot *slot_of(const struct snap *s, pid_t tid)
{
	for (unsigned i = 0; i < s->nlive; i++)
		if (s->live[i].tid == tid)
			return &s->live[i];
	return NULL;
}

/* ==== finding a process's region ========================================================= */

struct target {
	pid_t pid;
	uid_t uid; /* real uid: what librtalloc names its file with */
	char comm[64];
	struct region region;
};

/* Resolve pid to its region, or print one line and return EXIT_ERR. */
static int find_target(pid_t pid, struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->region.fd = -1;
	char path[64];
	struct pstat ps;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_pstat(path, &ps) != 0) {
		say("no process with PID %d", (int)pid);
		return EXIT_ERR;
	}
	snprintf(t->comm, sizeof(t->comm), "%s", ps.comm);
	if (ps.state == 'Z' || ps.state == 'X') {
		say("process %d (%s) has exited (a zombie): nothing to read", (int)pid, t->comm);
		return EXIT_ERR;
	}
	long long uid = status_field(pid, "Uid");
	if (uid < 0) {
		say("no process with PID %d", (int)pid);
		return EXIT_ERR;
	}
	t->uid = (uid_t)uid;
	uid_t me = geteuid();
	if (me != 0 && me != t->uid) {
		say("process %d (%s) belongs to another user (uid %u): only that user or root can read "
		    "its statistics", (int)pid, t->comm, (unsigned)t->uid);
		return EXIT_ERR;
	}
	char dirs[4][DIRLEN];
	int nd = region_dirs(pid, t->uid, dirs, 4);
	enum region_status worst = RG_ABSENT;
	char worst_path[PATHLEN] = "";
	bool has_lib = false;
	for (int i = 0; i < nd; i++) {
		char file[PATHLEN];
		snprintf(file, sizeof(file), "%.255s/rtalloc-%u-%d.stats", dirs[i], (unsigned)t->uid, (int)pid);
		enum region_status s;
		/* A process still initialising: give it a moment (bounded: 20 x 10 ms). */
		for (int tries = 0;; tries++) {
			s = region_attach(&t->region, file, t->uid, pid, &has_lib);
			if ((s != RG_SHORT && s != RG_INIT) || tries == 20)
				break;
			pause_us(10000);
		}
		if (s == RG_OK)
			return EXIT_OK;
		if (s != RG_ABSENT && (worst == RG_ABSENT || s == RG_DENIED)) {
			worst = s;
			snprintf(worst_path, sizeof(worst_path), "%s", file);
		}
	}
	if (worst == RG_DENIED) {
		say("process %d (%s): statistics file %s belongs to another user", (int)pid, t->comm, worst_path);
		return EXIT_ERR;
	}
	if (!has_lib) /* the region checks may not have run: look at the maps once more */
		proc_maps(pid, 0, 0, NULL, &has_lib);
	char why[PATHLEN + 160] = "";
	if (worst != RG_ABSENT)
		snprintf(why, sizeof(why), " (statistics file %s %s)", worst_path, region_why(worst));
	if (has_lib) {
		say("process %d (%s) runs librtalloc but does not export its statistics%s", (int)pid, t->comm,
		    why[0] ? why : " (RTALLOC_STATS=0, or the statistics file could not be created: see the "
				   "process's stderr)");
	} else if (worst == RG_ABSENT) {
		char where[4 * DIRLEN + 16] = "";
		for (int i = 0; i < nd; i++) {
			strcat(where, i ? ", " : "");
			strcat(where, dirs[i]);
		}
		say("process %d (%s) does not use librtalloc (no statistics file rtalloc-%u-%d.stats in %s)",
		    (int)pid, t->comm, (unsigned)t->uid, (int)pid, where);
	} else {
		say("process %d (%s) has no usable librtalloc statistics%s", (int)pid, t->comm, why);
	}
	return EXIT_ERR;
}

/* ==== the snapshot report ================================================================ */

struct thread_row {
	pid_t tid;
	char name[64];
	bool have_proc;
	uint64_t minflt, majflt;
	const struct tslot *slot;
};

struct report {
	struct snap *s;
	struct pstat proc;
	bool have_proc;
	long long vmlck_kib; /* -1: unknown */
	unsigned nrows;
	struct thread_row rows[RT_STATS_SLOTS + 64];
};

/* Threads: from /proc (every thread, with faults and names) and from the slots (those
 * that allocated).  A slot whose thread is not in /proc any more is listed as "?". */
static void gather_threads(pid_t pid, struct report *rep)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	rep->nrows = 0;
	const unsigned max = sizeof(rep->rows) / sizeof(rep->rows[0]);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)) && rep->nrows < max) {
		pid_t tid;
		if (!parse_pid(e->d_name, &tid))
			continue;
		struct thread_row *row = &rep->rows[rep->nrows];
		memset(row, 0, sizeof(*row));
		row->tid = tid;
		char sp[96];
		struct pstat ps;
		snprintf(sp, sizeof(sp), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
		if (read_pstat(sp, &ps) != 0)
			continue; /* exited meanwhile */
		row->have_proc = true;
		row->minflt = ps.minflt;
		row->majflt = ps.majflt;
		thread_name(pid, tid, row->name, sizeof(row->name), ps.comm);
		row->slot = slot_of(rep->s, tid);
		rep->nrows++;
	}
	if (d)
		closedir(d);
	for (unsigned i = 0; i < rep->s->nlive && rep->nrows < max; i++) {
		bool seen = false;
		for (unsigned j = 0; j < rep->nrows && !seen; j++)
			seen = rep->rows[j].tid == rep->s->live[i].tid;
		if (seen)
			continue;
		struct thread_row *row = &rep->rows[rep->nrows++];
		memset(row, 0, sizeof(*row));
		row->tid = rep->s->live[i].tid;
		snprintf(row->name, sizeof(row->name), "?");
		row->slot = &rep->s->live[i];
	}
}

static void gather(const struct target *t, struct report *rep)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)t->pid);
	rep->have_proc = read_pstat(path, &rep->proc) == 0;
	rep->vmlck_kib = status_field(t->pid, "VmLck");
	gather_threads(t->pid, rep);
}

static uint64_t sub0(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* The memory-lock verdict: NULL when the pool is locked, else the warning. */
static const char *lock_warning(const struct snap *s, long long vmlck_kib, char *buf, size_t len)
{
	uint64_t pool_kib = s->pool_bytes >> 10;
	if (vmlck_kib < 0) {
		if (s->flags & RT_STATS_F_LOCKED)
			return NULL;
		snprintf(buf, len, "memory is not locked (mlockall failed or RTALLOC_MLOCK=0): the pool can "
				   "be paged out and real-time code can take major page faults");
		return buf;
	}
	if ((uint64_t)vmlck_kib >= pool_kib)
		return NULL;
	snprintf(buf, len,
		 "memory is not locked (VmLck %lld KiB < pool %llu KiB%s): the pool can be paged out and "
		 "real-time code can take major page faults; raise RLIMIT_MEMLOCK (ulimit -l) or grant "
		 "CAP_IPC_LOCK, and leave RTALLOC_MLOCK at 1 or require",
		 vmlck_kib, (unsigned long long)pool_kib,
		 (s->flags & RT_STATS_F_LOCKED) ? ", though mlockall succeeded" : "");
	return buf;
}

static void print_ago(uint64_t count, uint64_t when_ns, uint64_t now, const char *rel)
{
	if (count && when_ns && now >= when_ns)
		printf(" (last %.3f s %s)", ns_to_s(now - when_ns), rel);
}

static void text_counters_line(const struct rt_tcounters *c)
{
	printf("  allocations %llu, frees %llu; slow path: %llu allocations, %llu frees; refills %llu, "
	       "flushes %llu\n",
	       (unsigned long long)c->mallocs, (unsigned long long)c->frees,
	       (unsigned long long)c->slow_mallocs, (unsigned long long)c->slow_frees,
	       (unsigned long long)c->refills, (unsigned long long)c->flushes);
	printf("  bytes allocated %llu KiB, freed %llu KiB (blocks' usable sizes)\n",
	       (unsigned long long)c->bytes_allocated >> 10, (unsigned long long)c->bytes_freed >> 10);
}

/* A heap's name as stored: up to 64 characters, NUL-terminated when shorter. */
static void heap_name(const struct rt_stats_heap *h, char *out)
{
	memcpy(out, h->name, sizeof(h->name));
	out[sizeof(h->name)] = '\0';
	for (char *c = out; *c; c++) /* names are checked by the library; be safe anyway */
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
}

static void text_heaps(const struct snap *s)
{
	if (!s->have_heaps)
		return;
	printf("\nHeaps (KiB)\n");
	if (!s->nheaps) {
		printf("  (none)\n");
		return;
	}
	printf("  %-24s %-17s %10s %10s %10s %10s %10s %7s\n", "NAME", "FLAGS", "SIZE", "FREE", "MIN-FREE",
	       "LARGEST", "LIVE", "WAITERS");
	for (unsigned i = 0; i < s->nheaps; i++) {
		const struct rt_stats_heap *h = &s->heaps[i];
		char name[sizeof(h->name) + 1], flags[24];
		heap_name(h, name);
		snprintf(flags, sizeof(flags), "%s%s%s", (h->flags & RT_STATS_HEAP_SHARED) ? "shared" : "private",
			 (h->flags & RT_STATS_HEAP_PRIO) ? ",prio" : "",
			 (h->flags & RT_STATS_HEAP_GROW) ? ",grow" : "");
		printf("  %-24s %-17s %10llu %10llu %10llu %10llu %10llu %7llu\n", name[0] ? name : "(unnamed)",
		       flags, (unsigned long long)h->size >> 10, (unsigned long long)h->free >> 10,
		       (unsigned long long)h->min_free >> 10, (unsigned long long)h->largest_free >> 10,
		       (unsigned long long)h->live_blocks, (unsigned long long)h->waiters);
	}
}

static void text_pool(const struct snap *s)
{
	printf("\nPool (KiB)\n");
	printf("  %5s %4s %10s %10s %10s %10s %10s\n", "ARENA", "NODE", "POOL", "MAX", "IN-USE", "FREE",
	       "HIGH-WATER");
	for (unsigned i = 0; i < s->narenas; i++) {
		const struct rt_stats_arena *a = &s->arenas[i];
		char node[16];
		if (a->node < 0)
			snprintf(node, sizeof(node), "-");
		else
			snprintf(node, sizeof(node), "%d", (int)a->node);
		printf("  %5u %4s %10llu %10llu %10llu %10llu %10llu\n", i, node,
		       (unsigned long long)a->pool_bytes >> 10, (unsigned long long)a->max_bytes >> 10,
		       (unsigned long long)sub0(a->pool_bytes, a->free_bytes) >> 10,
		       (unsigned long long)a->free_bytes >> 10,
		       (unsigned long long)sub0(a->pool_bytes, a->min_free_bytes) >> 10);
	}
	if (s->narenas > 1)
		printf("  %5s %4s %10llu %10llu %10llu %10llu %10llu\n", "total", "",
		       (unsigned long long)s->pool_bytes >> 10, (unsigned long long)s->max_bytes >> 10,
		       (unsigned long long)in_use(s) >> 10, (unsigned long long)s->free_bytes >> 10,
		       (unsigned long long)high_water(s) >> 10);
	printf("\nSize classes (16..2K: pages; 4K..32K and huge: blocks)\n ");
	bool any = false;
	for (unsigned c = 1; c < RT_STATS_CLASSES; c++) {
		if (!s->class_units[c])
			continue;
		printf(" %s:%llu", class_names[c], (unsigned long long)s->class_units[c]);
		any = true;
	}
	printf("%s\n", any ? "" : " (none)");
	text_heaps(s);
}

static void text_events(const struct snap *s, uint64_t ref_ns, const char *rel)
{
	printf("\nNon-real-time events\n");
	printf("  pool growths        %llu", (unsigned long long)s->grows);
	print_ago(s->grows, s->last_grow_ns, ref_ns, rel);
	printf("\n  failed allocations  %llu", (unsigned long long)s->total.failed);
	print_ago(s->total.failed, s->last_failure_ns, ref_ns, rel);
	printf("\n");
}

static void report_text(const struct target *t, const struct report *rep)
{
	const struct snap *s = rep->s;
	uint64_t now = s->taken_ns;
	printf("process %d (%s): librtalloc statistics from %s\n", (int)t->pid, t->comm, t->region.path);
	printf("  initialised %.3f s ago, in %.3f ms; %u arena%s; memory %s\n",
	       ns_to_s(sub0(now, s->init_ns)), (double)s->init_duration_ns / 1e6, s->narenas,
	       s->narenas == 1 ? "" : "s", (s->flags & RT_STATS_F_LOCKED) ? "locked (mlockall)" : "NOT locked");
	if (s->torn)
		printf("  note: the process kept writing some figures while they were read; they may be off by "
		       "one update\n");

	printf("\nPage faults                       %10s %10s\n", "MINOR", "MAJOR");
	if (rep->have_proc) {
		printf("  process, total                  %10llu %10llu\n", (unsigned long long)rep->proc.minflt,
		       (unsigned long long)rep->proc.majflt);
	}
	printf("  until initialisation ended      %10llu %10llu\n", (unsigned long long)s->init_minflt,
	       (unsigned long long)s->init_majflt);
	if (rep->have_proc)
		printf("  since initialisation            %10llu %10llu\n",
		       (unsigned long long)sub0(rep->proc.minflt, s->init_minflt),
		       (unsigned long long)sub0(rep->proc.majflt, s->init_majflt));
	printf("  in real-time sections           %10llu %10llu   (%llu sections ended, %llu slow-path "
	       "entries)\n",
	       (unsigned long long)s->total.rt_minflt, (unsigned long long)s->total.rt_majflt,
	       (unsigned long long)s->total.rt_sections, (unsigned long long)s->total.rt_slow);

	unsigned with_slot = 0;
	for (unsigned i = 0; i < rep->nrows; i++)
		with_slot += rep->rows[i].slot != NULL;
	printf("\nThreads: %u live (%u allocated through librtalloc), %llu exited", rep->nrows, with_slot,
	       (unsigned long long)s->threads_exited);
	if (s->threads_unslotted)
		printf(", %llu without a statistics slot", (unsigned long long)s->threads_unslotted);
	printf("\n  %7s %-16s %8s %6s %9s %9s %7s %7s %5s %10s %10s %10s %10s\n", "TID", "NAME", "MINFLT",
	       "MAJFLT", "RT-MINFLT", "RT-MAJFLT", "RT-SLOW", "RT-SECT", "IN-RT", "ALLOCS", "FREES",
	       "ALLOC-KiB", "FREED-KiB");
	for (unsigned i = 0; i < rep->nrows; i++) {
		const struct thread_row *row = &rep->rows[i];
		char minf[24] = "-", majf[24] = "-";
		if (row->have_proc) {
			snprintf(minf, sizeof(minf), "%llu", (unsigned long long)row->minflt);
			snprintf(majf, sizeof(majf), "%llu", (unsigned long long)row->majflt);
		}
		printf("  %7d %-16s %8s %6s", (int)row->tid, row->name, minf, majf);
		if (row->slot) {
			const struct rt_tcounters *c = &row->slot->c;
			printf(" %9llu %9llu %7llu %7llu %5s %10llu %10llu %10llu %10llu\n",
			       (unsigned long long)c->rt_minflt, (unsigned long long)c->rt_majflt,
			       (unsigned long long)c->rt_slow, (unsigned long long)c->rt_sections,
			       row->slot->in_rt ? "yes" : "no", (unsigned long long)c->mallocs,
			       (unsigned long long)c->frees, (unsigned long long)c->bytes_allocated >> 10,
			       (unsigned long long)c->bytes_freed >> 10);
		} else {
			printf(" %9s %9s %7s %7s %5s %10s %10s %10s %10s\n", "-", "-", "-", "-", "-", "-", "-", "-",
			       "-");
		}
	}
	if (s->threads_exited) {
		const struct rt_tcounters *c = &s->exited;
		printf("  %7s %-16s %8s %6s %9llu %9llu %7llu %7llu %5s %10llu %10llu %10llu %10llu\n", "-",
		       "(exited)", "-", "-", (unsigned long long)c->rt_minflt, (unsigned long long)c->rt_majflt,
		       (unsigned long long)c->rt_slow, (unsigned long long)c->rt_sections, "-",
		       (unsigned long long)c->mallocs, (unsigned long long)c->frees,
		       (unsigned long long)c->bytes_allocated >> 10, (unsigned long long)c->bytes_freed >> 10);
	}

	printf("\nAllocator (each thread's counts as of its last slow path or real-time section end)\n");
	text_counters_line(&s->total);
	printf("  large blocks: %llu allocated, %llu freed\n", (unsigned long long)s->huge_allocs,
	       (unsigned long long)s->huge_frees);
	text_pool(s);
	text_events(s, now, "ago");

	printf("\nMemory locking\n");
	if (rep->vmlck_kib >= 0)
		printf("  VmLck %lld KiB, pool %llu KiB\n", rep->vmlck_kib, (unsigned long long)s->pool_bytes >> 10);
	char wbuf[512];
	const char *w = lock_warning(s, rep->vmlck_kib, wbuf, sizeof(wbuf));
	printf("  %s%s\n", w ? "warning: " : "", w ? w : "the pool is locked in memory");
}

static void j_counters(const char *key, const struct rt_tcounters *c)
{
	j_open(key, '{');
#define RS_X_JSON(name, text) j_u64(#name, c->name);
	RT_TCOUNTERS(RS_X_JSON)
#undef RS_X_JSON
	j_close('}');
}

static void j_pool(const struct snap *s)
{
	j_open("pool", '{');
	j_u64("pool_bytes", s->pool_bytes);
	j_u64("max_bytes", s->max_bytes);
	j_u64("in_use_bytes", in_use(s));
	j_u64("free_bytes", s->free_bytes);
	j_u64("high_water_bytes", high_water(s));
	j_u64("min_free_bytes", s->min_free_bytes);
	j_u64("configured_pool_size", s->pool_size);
	j_u64("configured_pool_max", s->pool_max);
	j_open("arenas", '[');
	for (unsigned i = 0; i < s->narenas; i++) {
		const struct rt_stats_arena *a = &s->arenas[i];
		j_open(NULL, '{');
		j_u64("arena", i);
		if (a->node < 0)
			j_null("node");
		else
			j_i64("node", a->node);
		j_u64("pool_bytes", a->pool_bytes);
		j_u64("max_bytes", a->max_bytes);
		j_u64("in_use_bytes", sub0(a->pool_bytes, a->free_bytes));
		j_u64("free_bytes", a->free_bytes);
		j_u64("high_water_bytes", sub0(a->pool_bytes, a->min_free_bytes));
		j_u64("grows", a->grows);
		j_u64("failed", a->failed);
		j_u64("refills", a->refills);
		j_u64("flushes", a->flushes);
		j_u64("huge_allocs", a->huge_allocs);
		j_u64("huge_frees", a->huge_frees);
		j_close('}');
	}
	j_close(']');
	j_close('}');
	j_open("classes", '{');
	for (unsigned c = 1; c < RT_STATS_CLASSES; c++)
		j_u64(class_names[c], s->class_units[c]);
	j_close('}');
	if (!s->have_heaps)
		return;
	j_open("heaps", '[');
	for (unsigned i = 0; i < s->nheaps; i++) {
		const struct rt_stats_heap *h = &s->heaps[i];
		char name[sizeof(h->name) + 1];
		heap_name(h, name);
		j_open(NULL, '{');
		j_str("name", name);
		j_bool("shared", h->flags & RT_STATS_HEAP_SHARED);
		j_bool("prio", h->flags & RT_STATS_HEAP_PRIO);
		j_bool("grow", h->flags & RT_STATS_HEAP_GROW);
		j_u64("size_bytes", h->size);
		j_u64("free_bytes", h->free);
		j_u64("min_free_bytes", h->min_free);
		j_u64("largest_free_bytes", h->largest_free);
		j_u64("live_blocks", h->live_blocks);
		j_u64("waiters", h->waiters);
		j_close('}');
	}
	j_close(']');
}

static void j_events(const struct snap *s, uint64_t ref_ns, const char *ago_key_grow, const char *ago_key_fail)
{
	j_open("events", '{');
	j_u64("grows", s->grows);
	if (s->grows && s->last_grow_ns && ref_ns >= s->last_grow_ns)
		j_dbl(ago_key_grow, ns_to_s(ref_ns - s->last_grow_ns));
	else
		j_null(ago_key_grow);
	j_u64("failed_allocs", s->total.failed);
	if (s->total.failed && s->last_failure_ns && ref_ns >= s->last_failure_ns)
		j_dbl(ago_key_fail, ns_to_s(ref_ns - s->last_failure_ns));
	else
		j_null(ago_key_fail);
	j_close('}');
}

static void report_json(const struct target *t, const struct report *rep)
{
	const struct snap *s = rep->s;
	j_begin();
	j_u64("pid", (uint64_t)t->pid);
	j_str("comm", t->comm);
	j_str("region", t->region.path);
	j_u64("region_version", RT_STATS_VERSION);
	j_bool("locked", s->flags & RT_STATS_F_LOCKED);
	j_bool("user_memory", s->flags & RT_STATS_F_USER_MEMORY);
	j_bool("consistent", !s->torn);
	j_dbl("since_init_s", ns_to_s(sub0(s->taken_ns, s->init_ns)));
	j_u64("init_duration_ns", s->init_duration_ns);
	j_open("faults", '{');
	if (rep->have_proc) {
		j_open("process", '{');
		j_u64("minor", rep->proc.minflt);
		j_u64("major", rep->proc.majflt);
		j_close('}');
	} else {
		j_null("process");
	}
	j_open("until_init", '{');
	j_u64("minor", s->init_minflt);
	j_u64("major", s->init_majflt);
	j_close('}');
	if (rep->have_proc) {
		j_open("since_init", '{');
		j_u64("minor", sub0(rep->proc.minflt, s->init_minflt));
		j_u64("major", sub0(rep->proc.majflt, s->init_majflt));
		j_close('}');
	} else {
		j_null("since_init");
	}
	j_open("rt", '{');
	j_u64("minor", s->total.rt_minflt);
	j_u64("major", s->total.rt_majflt);
	j_u64("slow", s->total.rt_slow);
	j_u64("sections", s->total.rt_sections);
	j_close('}');
	j_close('}');
	j_open("threads", '[');
	for (unsigned i = 0; i < rep->nrows; i++) {
		const struct thread_row *row = &rep->rows[i];
		j_open(NULL, '{');
		j_u64("tid", (uint64_t)row->tid);
		j_str("name", row->have_proc ? row->name : NULL);
		if (row->have_proc) {
			j_u64("minflt", row->minflt);
			j_u64("majflt", row->majflt);
		} else {
			j_null("minflt");
			j_null("majflt");
		}
		if (row->slot) {
			j_bool("in_rt", row->slot->in_rt);
			j_counters("counters", &row->slot->c);
		} else {
			j_null("in_rt");
			j_null("counters");
		}
		j_close('}');
	}
	j_close(']');
	j_u64("threads_exited", s->threads_exited);
	j_u64("threads_unslotted", s->threads_unslotted);
	j_counters("exited", &s->exited);
	j_counters("totals", &s->total);
	j_pool(s);
	j_events(s, s->taken_ns, "last_grow_ago_s", "last_failure_ago_s");
	j_open("memory", '{');
	if (rep->vmlck_kib >= 0)
		j_u64("vmlck_kib", (uint64_t)rep->vmlck_kib);
	else
		j_null("vmlck_kib");
	j_u64("pool_kib", s->pool_bytes >> 10);
	char wbuf[512];
	const char *w = lock_warning(s, rep->vmlck_kib, wbuf, sizeof(wbuf));
	j_bool("pool_locked", w == NULL);
	j_str("warning", w);
	j_close('}');
	j_end();
}

static struct snap snap_a, snap_b;
static struct report rep_buf;

static int cmd_snapshot(pid_t pid, bool json)
{
	struct target t;
	int rc = find_target(pid, &t);
	if (rc != EXIT_OK)
		return rc;
	if (snap_read(&t.region, &snap_a) != RG_OK) {
		say("process %d (%s): statistics file %s %s", (int)pid, t.comm, t.region.path, region_why(RG_IO));
		region_close(&t.region);
		return EXIT_ERR;
	}
	rep_buf.s = &snap_a;
	gather(&t, &rep_buf);
	if (json)
		report_json(&t, &rep_buf);
	else
		report_text(&t, &rep_buf);
	region_close(&t.region);
	return EXIT_OK;
}

/* ==== -w: a row per interval ============================================================= */

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

struct sample {
	struct snap *s;
	bool have_proc;
	uint64_t minflt, majflt;
};

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

static void watch_row(bool json, pid_t pid, double interval, const struct sample *a, const struct sample *b,
		      bool exited)
{
	const struct snap *p = a->s, *q = b->s;
	bool faults = a->have_proc && b->have_proc;
	uint64_t minf = faults ? sub0(b->minflt, a->minflt) : 0, majf = faults ? sub0(b->majflt, a->majflt) : 0;
	uint64_t rtmin = sub0(q->total.rt_minflt, p->total.rt_minflt);
	uint64_t rtmaj = sub0(q->total.rt_majflt, p->total.rt_majflt);
	uint64_t allocs = sub0(q->total.mallocs, p->total.mallocs), frees = sub0(q->total.frees, p->total.frees);
	uint64_t slow = sub0(q->total.slow_mallocs + q->total.slow_frees, p->total.slow_mallocs + p->total.slow_frees);
	uint64_t grows = sub0(q->grows, p->grows), fails = sub0(q->total.failed, p->total.failed);
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
		j_u64("rt_slow", sub0(q->total.rt_slow, p->total.rt_slow));
		j_u64("rt_sections", sub0(q->total.rt_sections, p->total.rt_sections));
		j_u64("mallocs", allocs);
		j_u64("frees", frees);
		j_u64("slow", slow);
		j_u64("grows", grows);
		j_u64("failed", fails);
		j_u64("in_use_bytes", in_use(q));
		j_i64("in_use_change_bytes", (int64_t)in_use(q) - (int64_t)in_use(p));
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
	       (unsigned long long)fails, (unsigned long long)in_use(q) >> 10, exited ? "  (exited)" : "");
	fflush(stdout);
}

static int pidfd_of(pid_t pid)
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

static int cmd_watch(pid_t pid, double interval, long count, bool json)
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
	if (snap_read(&t.region, prev.s) != RG_OK) {
		say("process %d (%s): statistics file %s %s", (int)pid, t.comm, t.region.path, region_why(RG_IO));
		return EXIT_ERR;
	}
	if (!json) {
		printf("# process %d (%s), every %g s; counts are changes over the interval\n", (int)pid, t.comm,
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
		if (snap_read(&t.region, cur.s) != RG_OK) {
			say("process %d: statistics file %s %s", (int)pid, t.region.path, region_why(RG_IO));
			rc = EXIT_ERR;
			break;
		}
		if (!json && !exited && ++rows % 20 == 0 && isatty(STDOUT_FILENO))
			watch_header();
		watch_row(json, pid, interval, &prev, &cur, exited);
		if (exited) {
			if (!json)
				printf("# process %d (%s) exited\n", (int)pid, t.comm);
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
		printf(" %s", *a);
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
	printf("  during start-up (until init)    %10llu %10llu\n", (unsigned long long)s->init_minflt,
	       (unsigned long long)s->init_majflt);
	printf("  after initialisation            %10llu %10llu\n",
	       (unsigned long long)sub0((uint64_t)ru->ru_minflt, s->init_minflt),
	       (unsigned long long)sub0((uint64_t)ru->ru_majflt, s->init_majflt));
	printf("  in real-time sections           %10llu %10llu   (%llu sections ended, %llu slow-path "
	       "entries)\n",
	       (unsigned long long)s->total.rt_minflt, (unsigned long long)s->total.rt_majflt,
	       (unsigned long long)s->total.rt_sections, (unsigned long long)s->total.rt_slow);
	printf("\nAllocator (pid %d, %s; initialised in %.3f ms; memory %s)\n", (int)st->region.pid,
	       st->region.path, (double)s->init_duration_ns / 1e6,
	       (s->flags & RT_STATS_F_LOCKED) ? "locked" : "NOT locked");
	text_counters_line(&s->total);
	printf("  threads: %u live at the last look, %llu exited\n", s->nlive,
	       (unsigned long long)s->threads_exited);
	text_pool(s);
	text_events(s, exit_ns, "before the exit");
	if (!(s->flags & RT_STATS_F_LOCKED))
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
		j_u64("minor", s->init_minflt);
		j_u64("major", s->init_majflt);
		j_close('}');
		j_open("since_init", '{');
		j_u64("minor", sub0((uint64_t)ru->ru_minflt, s->init_minflt));
		j_u64("major", sub0((uint64_t)ru->ru_majflt, s->init_majflt));
		j_close('}');
		j_open("rt", '{');
		j_u64("minor", s->total.rt_minflt);
		j_u64("major", s->total.rt_majflt);
		j_u64("slow", s->total.rt_slow);
		j_u64("sections", s->total.rt_sections);
		j_close('}');
	}
	j_close('}');
	if (!st->valid) {
		j_null("rtalloc");
		j_end();
		return;
	}
	j_open("rtalloc", '{');
	j_str("region", st->region.path);
	j_bool("locked", s->flags & RT_STATS_F_LOCKED);
	j_bool("consistent", !s->torn);
	j_u64("init_duration_ns", s->init_duration_ns);
	j_u64("threads_live", s->nlive);
	j_u64("threads_exited", s->threads_exited);
	j_counters("totals", &s->total);
	j_pool(s);
	j_events(s, exit_ns, "last_grow_before_exit_s", "last_failure_before_exit_s");
	j_close('}');
	j_end();
}

static int cmd_run(char **argv, bool json)
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
		say("cannot run %s: %s", argv[0], strerror(e));
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
			say("waiting for %s: %s", argv[0], strerror(errno));
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

/* ==== -l: list ============================================================================ */

struct listed {
	pid_t pid;
	char comm[64], path[PATHLEN];
	struct snap *s;
};

static int cmd_list(bool json)
{
	uid_t uid = geteuid();
	char dirs[4][DIRLEN];
	int nd = region_dirs(0, uid, dirs, 4);
	char prefix[48];
	int plen = snprintf(prefix, sizeof(prefix), "rtalloc-%u-", (unsigned)uid);
	static struct snap s;
	bool any = false;
	unsigned removed = 0;
	static char removed_paths[64][PATHLEN];
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
				/* A dead process's file: remove it if it is a file of ours. */
				struct stat st;
				if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid &&
				    unlink(path) == 0) {
					if (!json)
						say("removed %s: process %d no longer exists", path, (int)pid);
					if (removed < 64)
						snprintf(removed_paths[removed], sizeof(removed_paths[0]), "%s", path);
					removed++;
				}
				continue;
			}
			struct region r;
			bool has_lib;
			enum region_status rs = region_attach(&r, path, uid, pid, &has_lib);
			if (rs == RG_OK && snap_read(&r, &s) != RG_OK)
				rs = RG_IO;
			if (rs != RG_OK) {
				if (rs != RG_INIT && rs != RG_SHORT && !json)
					say("ignoring %s: it %s", path, region_why(rs));
				region_close(&r);
				continue;
			}
			char sp[64], comm[64] = "?";
			struct pstat ps;
			snprintf(sp, sizeof(sp), "/proc/%d/stat", (int)pid);
			if (read_pstat(sp, &ps) == 0)
				snprintf(comm, sizeof(comm), "%s", ps.comm);
			uint64_t up = sub0(s.taken_ns, s.init_ns);
			if (json) {
				j_open(NULL, '{');
				j_u64("pid", (uint64_t)pid);
				j_str("comm", comm);
				j_str("region", path);
				j_u64("threads", s.nlive);
				j_u64("pool_bytes", s.pool_bytes);
				j_u64("in_use_bytes", in_use(&s));
				j_u64("high_water_bytes", high_water(&s));
				j_u64("rt_minflt", s.total.rt_minflt);
				j_u64("rt_majflt", s.total.rt_majflt);
				j_u64("grows", s.grows);
				j_u64("failed_allocs", s.total.failed);
				j_dbl("since_init_s", ns_to_s(up));
				j_bool("locked", s.flags & RT_STATS_F_LOCKED);
				j_close('}');
			} else {
				printf("%7d %-16s %7u %10llu %10llu %10llu %9llu %9llu %9.1f %6s  %s\n", (int)pid, comm,
				       s.nlive, (unsigned long long)s.pool_bytes >> 10,
				       (unsigned long long)in_use(&s) >> 10, (unsigned long long)high_water(&s) >> 10,
				       (unsigned long long)s.total.rt_minflt, (unsigned long long)s.total.rt_majflt,
				       ns_to_s(up), (s.flags & RT_STATS_F_LOCKED) ? "yes" : "no", path);
			}
			any = true;
			region_close(&r);
		}
		closedir(d);
	}
	if (json) {
		j_close(']');
		j_open("removed_stale", '[');
		for (unsigned i = 0; i < removed && i < 64; i++)
			j_str(NULL, removed_paths[i]);
		j_close(']');
		j_end();
	} else if (!any) {
		printf("(no process of uid %u runs librtalloc with statistics)\n", (unsigned)uid);
	}
	return EXIT_OK;
}

/* ==== main ================================================================================ */

static void help(void)
{
	printf("Usage: " PROG " [--json] PID\n"
	       "       " PROG " [--json] -w SECONDS [-c COUNT] PID\n"
	       "       " PROG " [--json] -- COMMAND [ARGS...]\n"
	       "       " PROG " [--json] -l\n"
	       "Show the statistics of a process running librtalloc: page faults (process, per thread,\n"
	       "since initialisation, inside real-time sections), pool use and high-water mark, size\n"
	       "classes, pool growths, failed allocations and whether memory is locked.\n"
	       "\n"
	       "  PID                 one report of the process\n"
	       "  -w, --watch=SECONDS a row of changes every SECONDS (decimals allowed) until\n"
	       "                      interrupted or the process exits\n"
	       "  -c, --count=COUNT   with -w: stop after COUNT rows\n"
	       "  -- COMMAND [ARGS]   run COMMAND with librtalloc preloaded (RTALLOC_LIB names the\n"
	       "                      library) and report when it exits; exits with its status\n"
	       "  -l, --list          this user's processes exporting librtalloc statistics;\n"
	       "                      removes the statistics files of processes that no longer exist\n"
	       "  -j, --json          JSON: one object (one per line with -w)\n"
	       "  -h, --help          this help\n"
	       "  -V, --version       the version\n"
	       "\n"
	       "Exit status: 0 ok; 1 no such process, not running librtalloc, another user's or no\n"
	       "usable statistics; 2 usage error; with -- COMMAND, the command's status (128+N if\n"
	       "killed by signal N).  See rtalloc-stat(1).\n");
}

static double parse_interval(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.01 && v <= 86400.0))
		usage_error("-w wants a number of seconds between 0.01 and 86400, not '%s'", s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"watch", required_argument, NULL, 'w'}, {"count", required_argument, NULL, 'c'},
		{"list", no_argument, NULL, 'l'},        {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},        {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	bool json = false, list = false, watch = false;
	double interval = 0;
	long count = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+w:c:ljhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			watch = true;
			interval = parse_interval(optarg);
			break;
		case 'c': {
			char *end;
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || count < 1)
				usage_error("-c wants a positive number of rows, not '%s'", optarg);
			break;
		}
		case 'l': list = true; break;
		case 'j': json = true; break;
		case 'h': help(); return EXIT_OK;
		case 'V': printf(PROG " (librtalloc) %s\n", RTALLOC_STAT_VERSION); return EXIT_OK;
		case ':': usage_error("option %s needs an argument", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option -%c", optopt);
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	install_sigbus();
	bool dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	int rest = argc - optind;
	if (count && !watch)
		usage_error("-c goes with -w");
	if (dashdash) {
		if (list || watch)
			usage_error("-- COMMAND cannot be combined with -l or -w");
		if (rest < 1)
			usage_error("-- wants a command to run");
		return cmd_run(argv + optind, json);
	}
	if (list) {
		if (watch || rest)
			usage_error("-l takes no PID and no -w");
		return cmd_list(json);
	}
	if (rest != 1)
		usage_error(rest ? "one PID, please (to run a command: " PROG " -- COMMAND)" : "which PID?");
	pid_t pid;
	if (!parse_pid(argv[optind], &pid))
		usage_error("'%s' is not a process ID (to run a command: " PROG " -- COMMAND)", argv[optind]);
	return watch ? cmd_watch(pid, interval, count, json) : cmd_snapshot(pid, json);
}
