/* SPDX-License-Identifier: MIT */
/*
 * region.c - finding, opening, mapping and checking a process's statistics
 * region (rtalloc-stat).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rs.h"

/* ==== the region ========================================================================= */

void region_close(struct region *r)
{
	if (r->map)
		munmap((void *)r->map, r->len);
	if (r->fd >= 0)
		close(r->fd);
	r->map = NULL;
	r->fd = -1;
}

/* SIGBUS guard: the owner of a region or of a shared heap's object could truncate
 * it under our mapping (rs.h, BUS_GUARD). */
sigjmp_buf bus_jmp;
volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

void install_sigbus(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* Directory the library picks from an XDG_RUNTIME_DIR value (stats.c's rule). */
bool usable_dir(const char *dir) { return dir && dir[0] == '/' && strlen(dir) <= 200; }

/* The directories where a process's region can be, most likely first. */
int region_dirs(pid_t pid, uid_t uid, char dirs[][DIRLEN], int max)
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

const char *region_why(enum region_status s)
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
	case RG_HEAP_IO: return "names a shared heap whose object cannot be read (truncated under us?)";
	}
	return "?";
}

/* Open path (never following a link) and check the file: not yet its contents. */
enum region_status region_open(struct region *r, const char *path, uid_t uid, pid_t pid)
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
enum region_status region_map(struct region *r)
{
	if (r->map)
		return RG_OK;
	struct stat st;
	if (fstat(r->fd, &st) != 0)
		return RG_IO;
	if ((uint64_t)st.st_size < REGION_V1_LEN)
		return RG_SHORT;
	size_t len = (uint64_t)st.st_size >= REGION_LEN      ? REGION_LEN
		     : (uint64_t)st.st_size >= REGION_V2_LEN ? REGION_V2_LEN
							     : REGION_V1_LEN;
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, r->fd, 0);
	if (p == MAP_FAILED)
		return RG_IO;
	r->map = p;
	r->len = len;
	return RG_OK;
}

/* The header: complete, of this version and layout, for this pid (the
 * library's reader checks it: lib/statread.c). */
enum region_status region_header(const struct region *r)
{
	enum rt_sr_status st;
	BUS_GUARD(return RG_IO);
	st = rt_sr_check(r->map, r->len, (int32_t)r->pid);
	BUS_UNGUARD();
	return st == RT_SR_OK ? RG_OK : st == RT_SR_INIT ? RG_INIT : RG_BAD;
}

/* Is the region this process's?  Its maps name the file's inode, or, when the maps
 * cannot be read, the region was initialised after the process started. */
enum region_status region_owner(const struct region *r, bool *has_lib)
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
	uint64_t boot_minus_mono = rt_sr_sub0(now_ns(CLOCK_BOOTTIME), now_ns(CLOCK_MONOTONIC));
	BUS_GUARD(return RG_IO);
	uint64_t init_ns = __atomic_load_n(&r->map->init_ns, __ATOMIC_RELAXED);
	BUS_UNGUARD();
	uint64_t tick = 1000000000u / (uint64_t)hz;
	uint64_t init_boot = rt_sr_sat_add(init_ns, boot_minus_mono);
	uint64_t start_boot = sat_mul(ps.starttime, tick);
	return rt_sr_sat_add(init_boot, 2 * tick) < start_boot ? RG_STALE : RG_OK;
}

/* All checks in order; on success the region is open and mapped. */
enum region_status region_attach(struct region *r, const char *path, uid_t uid, pid_t pid,
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

/* ==== finding a process's region ========================================================= */

/* Resolve pid to its region, or print one line and return EXIT_ERR. */
int find_target(pid_t pid, struct target *t)
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
		say("process %d (%s) has exited (a zombie): nothing to read", (int)pid, esc(t->comm));
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
		    "its statistics", (int)pid, esc(t->comm), (unsigned)t->uid);
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
		say("process %d (%s): statistics file %s belongs to another user", (int)pid, esc(t->comm), esc(worst_path));
		return EXIT_ERR;
	}
	if (!has_lib) /* the region checks may not have run: look at the maps once more */
		proc_maps(pid, 0, 0, NULL, &has_lib);
	char why[4 * PATHLEN + 160] = "";
	if (worst != RG_ABSENT)
		snprintf(why, sizeof(why), " (statistics file %s %s)", esc(worst_path), region_why(worst));
	if (has_lib) {
		say("process %d (%s) runs librtalloc but does not export its statistics%s", (int)pid, esc(t->comm),
		    why[0] ? why : " (RTALLOC_STATS=0, or the statistics file could not be created: see the "
				   "process's stderr)");
	} else if (worst == RG_ABSENT) {
		char where[4 * (4 * DIRLEN + 2) + 1] = ""; /* 4 directories, escaped */
		for (int i = 0; i < nd; i++) { /* bound: 4 directories */
			strcat(where, i ? ", " : "");
			strcat(where, esc(dirs[i]));
		}
		say("process %d (%s) does not use librtalloc (no statistics file rtalloc-%u-%d.stats in %s)",
		    (int)pid, t->comm, (unsigned)t->uid, (int)pid, where);
	} else {
		say("process %d (%s) has no usable librtalloc statistics%s", (int)pid, esc(t->comm), why);
	}
	return EXIT_ERR;
}

