/* SPDX-License-Identifier: MIT */
/*
 * rs.h - what the files of rtalloc-stat share (tools/rtalloc-stat/):
 *
 *   util.c      messages, clocks, pids, saturating counter arithmetic, the
 *               escaping of strings that come from a target (esc)
 *   json.c      the JSON writer
 *   proc.c      /proc readers (stat, status, comm, environ, maps), on
 *               lib/procfs.h (files and status fields, shared with the tests)
 *   region.c    finding, opening, mapping and checking a statistics region;
 *               the SIGBUS guard
 *   snapshot.c  a consistent copy of a region (and of its shared heaps),
 *               through the library's reader (lib/statread.c: the header
 *               check, arena sums, the exit_seq window, class names)
 *   report.c    the report of one snapshot, text and JSON
 *   watch.c     -w: a row of changes per interval
 *   run.c       -- CMD: run a command under librtalloc, report at its exit
 *   list.c      -l: this user's processes running librtalloc
 *   profile.c   --profile PID: the recorded profile (lib/profile.h)
 *   main.c      options
 *
 * Everything read from a region, a shared heap's object or /proc is another
 * process's doing: the region only after region_header(), mapped memory only
 * under the SIGBUS guard, counters only with saturating arithmetic, strings
 * only through esc() (text) or the JSON writer.
 */
#ifndef RS_H
#define RS_H

#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "procfs.h"
#include "stats.h"
#include "statread.h"

#define PROG "rtalloc-stat"
#define DIRLEN 256  /* the library accepts directories of at most 200 characters */
#define PATHLEN 512 /* a directory and a file name */

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

/* ---- util.c ---- */
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...);
__attribute__((format(printf, 1, 2), noreturn)) void usage_error(const char *fmt, ...);
uint64_t now_ns(clockid_t clk);
double ns_to_s(uint64_t ns);
bool parse_pid(const char *s, pid_t *out);
void pause_us(long us);
/* a - b or 0, a + b saturating: rt_sr_sub0, rt_sr_sat_add (statread.h) */
uint64_t sat_mul(uint64_t a, uint64_t b);             /* a * b, UINT64_MAX if it wraps */
int64_t diff_i64(uint64_t now, uint64_t before);      /* now - before, clamped to int64_t */
/* s with every byte a terminal could act on written as \xNN (and '\' as \\):
 * control characters, DEL, C1 controls, bidirectional overrides, bytes that
 * are not UTF-8.  The result lives in one of a few rotating buffers, good
 * until the 8th call after. */
const char *esc(const char *s);

/* ---- json.c ---- */
int utf8_len(const unsigned char *s); /* a valid UTF-8 sequence's length, or 0 */
bool utf8_dangerous(const unsigned char *s, int n);
void j_open(const char *k, char c);
void j_close(char c);
void j_u64(const char *k, uint64_t v);
void j_i64(const char *k, int64_t v);
void j_dbl(const char *k, double v);
void j_bool(const char *k, bool v);
void j_null(const char *k);
void j_str(const char *k, const char *v);
void j_begin(void);
void j_end(void);
void j_counters(const char *key, const struct rt_tcounters *c);

/* ---- proc.c ---- */
struct pstat {
	char comm[64];
	char state;
	uint64_t minflt, majflt, starttime; /* starttime: clock ticks since boot */
};
int read_pstat(const char *path, struct pstat *ps);
long long status_field(pid_t pid, const char *key);
void thread_name(pid_t pid, pid_t tid, char *name, size_t len, const char *fallback);
bool proc_xdg_dir(pid_t pid, char *out, size_t len);
enum maps_result { MAPS_UNREADABLE, MAPS_NOT_MAPPED, MAPS_MAPPED };
enum maps_result proc_maps(pid_t pid, dev_t dev, ino_t ino, const char *path_now, bool *has_lib);

/* ---- region.c ---- */
#define REGION_LEN (sizeof(struct rt_stats_region))
/* A region without heaps[] (the layout before heaps were appended, which
 * kept its version then): everything but heaps[], which is then not shown.
 * A region of another version is refused (rt_sr_check). */
#define REGION_V1_LEN RT_STATS_REGION_V1_SIZE
/* A region of the layout before located faults (heaps, no faults). */
#define REGION_V2_LEN RT_STATS_REGION_V2_SIZE

struct region {
	int fd;
	const struct rt_stats_region *map; /* NULL until mapped */
	size_t len;                         /* bytes mapped: REGION_LEN, REGION_V2_LEN or REGION_V1_LEN */
	dev_t dev;
	ino_t ino;
	uid_t uid;
	pid_t pid;
	char path[PATHLEN];
};

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
	RG_HEAP_IO,     /* a shared heap's object was truncated under us */
};

/* SIGBUS guard: the owner of a file we map could truncate it under us.  Every
 * read of mapped foreign memory happens between BUS_GUARD(on_fault) and
 * BUS_UNGUARD() in one function (the guard is not nested: sigsetjmp's buffer
 * is one); a SIGBUS meanwhile runs on_fault (a return) with the guard off. */
extern sigjmp_buf bus_jmp;
extern volatile sig_atomic_t bus_armed;
#define BUS_GUARD(on_fault)                  \
	do {                                 \
		bus_armed = 1;               \
		if (sigsetjmp(bus_jmp, 1)) { \
			bus_armed = 0;       \
			on_fault;            \
		}                            \
	} while (0)
#define BUS_UNGUARD() (bus_armed = 0)

void install_sigbus(void);
void region_close(struct region *r);
bool usable_dir(const char *dir);
int region_dirs(pid_t pid, uid_t uid, char dirs[][DIRLEN], int max);
const char *region_why(enum region_status s);
enum region_status region_open(struct region *r, const char *path, uid_t uid, pid_t pid);
enum region_status region_map(struct region *r);
enum region_status region_header(const struct region *r);
enum region_status region_owner(const struct region *r, bool *has_lib);
enum region_status region_attach(struct region *r, const char *path, uid_t uid, pid_t pid, bool *has_lib);

struct target {
	pid_t pid;
	uid_t uid; /* real uid: what librtalloc names its file with */
	char comm[64];
	struct region region;
};
int find_target(pid_t pid, struct target *t);

/* ---- snapshot.c ---- */
struct tslot {
	int32_t tid;
	uint32_t in_section;
	struct rt_tcounters c;
};

struct snap {
	uint64_t taken_ns; /* CLOCK_MONOTONIC */
	struct rt_sr_figures f; /* the reader's (lib/statread.h): header, arenas, totals */
	struct tslot live[RT_STATS_SLOTS]; /* f.nlive of them */
	bool have_heaps; /* the region has heap records (its size covers them) */
	unsigned nheaps;
	struct rt_stats_heap heaps[RT_STATS_HEAPS]; /* the records in use */
	char heap_error[160]; /* RG_HEAP_IO: which object */
	bool have_faults; /* the region has the located faults (RTALLOC_FAULTS, places.c) */
	struct rt_stats_faults faults;
};

extern struct snap snap_a, snap_b;
/* Read shared heaps' objects (on by default; the fuzz target turns it off). */
extern bool snap_shared_heaps;
enum region_status snap_read(const struct region *r, struct snap *s);
const struct tslot *slot_of(const struct snap *s, pid_t tid);
/* "statistics file PATH cannot be read ..." or the shared heap's message. */
void snap_error(pid_t pid, const char *comm, const struct region *r, const struct snap *s,
		enum region_status st);

/* ---- report.c ---- */
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

void text_counters_line(const struct rt_tcounters *c);
void text_pool(const struct snap *s);
void text_events(const struct snap *s, uint64_t ref_ns, const char *rel);
void report_text(const struct target *t, const struct report *rep);
void report_json(const struct target *t, const struct report *rep);
void j_pool(const struct snap *s);
void j_rt_faults(const struct snap *s);
void j_lock_waits(const struct snap *s);
void j_events(const struct snap *s, uint64_t ref_ns, const char *ago_key_grow, const char *ago_key_fail);
int cmd_snapshot(pid_t pid, bool json);
/* ---- profile.c: --profile PID, the recorded profile on stdout ---- */
int cmd_profile(pid_t pid);

/* ---- places.c: RTALLOC_FAULTS=locate's places (pid: to name them) ---- */
void text_fault_places(pid_t pid, const struct snap *s);
void j_fault_places(pid_t pid, const struct snap *s);

/* ---- watch.c ---- */
struct sample {
	struct snap *s;
	bool have_proc;
	uint64_t minflt, majflt;
};
void watch_row(bool json, pid_t pid, double interval, const struct sample *a, const struct sample *b,
	       bool exited);
int pidfd_of(pid_t pid);
int cmd_watch(pid_t pid, double interval, long count, bool json);

/* ---- run.c, list.c ---- */
int cmd_run(char **argv, bool json);
int cmd_list(bool json, bool clean);

#endif /* RS_H */
