/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the statistics region (layout and synchronization: stats.h),
 * rtalloc_stats(), rtalloc_stats_print() and real-time sections.
 *
 * Writers publish with a seqlock they alone own (a thread its slot, an arena
 * lock holder its arena record); readers copy and retry.  Nothing here runs
 * on the malloc/free fast path.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "glue.h"
#include "faults.h"

struct rt_stats_region *rt_stats;
static char region_path[256];
/* The file's identity and the uid in its name (the real uid: what
 * rtalloc-stat looks for), kept across privilege changes. */
static dev_t region_dev;
static ino_t region_ino;
static uid_t region_uid;
/* exit_lock (PI) serialises exiting threads' updates of the exited totals
 * (one exit_seq writer at a time). */
static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER; /* made PI in rt_stats_init */

/* The registry of live threads: record i names the tcache (TLS) of the thread
 * that holds slot i of the region.  A reader takes the record's lock (PI)
 * for as long as it reads that one tcache (rt_tcache_counters, a constant
 * number of loads); the thread takes it once at start and once at exit, to
 * set and clear tc.  So an exiting thread waits at most for one reader's
 * read of its own counters, boosted to its priority: no grace period, no
 * IPI, whatever the number of threads or readers.  Records are static:
 * never freed, so a reader never touches memory that went away. */
struct rt_thread_rec {
	pthread_mutex_t lock;
	struct rt_tcache *tc; /* under lock; NULL: no live thread here */
};
static struct rt_thread_rec records[RT_STATS_SLOTS];

static void pi_mutex_init(pthread_mutex_t *m) { rt_mutex_init(m, RT_MUTEX_PI); }

/* Every record's lock made anew, every record empty but keep's (fork's
 * child: the other threads are gone, a reader may have held a lock). */
static void records_init(const struct rt_tcache *keep)
{
	for (unsigned i = 0; i < RT_STATS_SLOTS; i++) { /* bound: RT_STATS_SLOTS */
		pi_mutex_init(&records[i].lock);
		records[i].tc = keep && keep->slot && rt_stats &&
					keep->slot == &rt_stats->slots[i]
				? (struct rt_tcache *)keep
				: NULL;
	}
}

/* ---- the region ---------------------------------------------------------------- */

static size_t region_bytes(void) { return (sizeof(struct rt_stats_region) + RT_PAGE_SIZE - 1) & ~(RT_PAGE_SIZE - 1); }

static void fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	rt_vfmt(buf, len, f, ap);
	va_end(ap);
}

/* Is the directory, or the open file, on a tmpfs (memory: no disk I/O
 * under a write)? */
static bool dir_on_tmpfs(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}
static bool fd_on_tmpfs(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* The region as a file others can map, or NULL.  O_EXCL|O_NOFOLLOW: never
 * opens what someone else put at the path.  A file of ours with our pid is a
 * dead process's (pids are reused): removed and created anew, once.  Only on
 * a tmpfs ($XDG_RUNTIME_DIR if it is one, else /dev/shm), and only with its
 * blocks reserved (fallocate): a full filesystem must refuse the file now,
 * not kill a thread with SIGBUS at its first write into a page never
 * backed.  Any failure: one message, and the region stays in this process. */
static struct rt_stats_region *create_file(void)
{
	const char *dir = rt_options_env("XDG_RUNTIME_DIR");
	if (!dir || dir[0] != '/' || strlen(dir) > 200 || !dir_on_tmpfs(dir))
		dir = "/dev/shm";
	fmt(region_path, sizeof(region_path), "%s/rtalloc-%u-%d.stats", dir, (unsigned)getuid(), (int)getpid());
	int fd = -1;
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) { /* bound: 2 */
		fd = open(region_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		struct stat st;
		if (fd < 0 && errno == EEXIST && attempt == 0 && lstat(region_path, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_uid == getuid())
			unlink(region_path);
	}
	if (fd < 0) {
		rt_say("cannot create the statistics file %s (%s): statistics stay in this process; "
		       "rtalloc-stat will not see it", region_path, strerrorname_np(errno));
		region_path[0] = '\0';
		return NULL;
	}
	const char *why = NULL;
	void *p = MAP_FAILED;
	if (!fd_on_tmpfs(fd))
		why = "not on a tmpfs";
	else if (fallocate(fd, 0, 0, (off_t)region_bytes()) != 0)
		why = strerrorname_np(errno);
	else
		p = mmap(NULL, region_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!why && p == MAP_FAILED)
		why = strerrorname_np(errno);
	/* Read-only on disk from now on: our mapping stays writable, and nobody
	 * (not even a careless tool of the same user) truncates it under us,
	 * which would kill this process with SIGBUS at its next write. */
	struct stat st;
	if (p != MAP_FAILED) {
		fchmod(fd, 0400);
		if (fstat(fd, &st) == 0) {
			region_dev = st.st_dev;
			region_ino = st.st_ino;
		}
		region_uid = getuid();
	}
	close(fd);
	if (p == MAP_FAILED) {
		rt_say("cannot reserve the statistics file %s (%s): statistics stay in this process; "
		       "rtalloc-stat will not see it", region_path, why);
		unlink(region_path);
		region_path[0] = '\0';
		return NULL;
	}
	return p;
}

void rt_stats_init(void)
{
	pi_mutex_init(&exit_lock);
	records_init(NULL); /* also faults the records in: thread start touches them */

	struct rt_stats_region *r = rt_g.opt.stats && !rt_g.user_memory ? create_file() : NULL;
	uint32_t flags = r ? RT_STATS_F_EXPORTED : 0;
	if (!r)
		r = rt_os_map(region_bytes());
	if (!r) { /* no memory even for statistics: keep a static one */
		static struct rt_stats_region fallback;
		r = &fallback;
	} else {
		rt_os_populate(r, region_bytes());
	}
	r->version = RT_STATS_VERSION;
	r->size = sizeof(*r);
	r->pid = getpid();
	r->nslots = RT_STATS_SLOTS;
	r->narenas = rt_g.narenas;
	r->flags = flags | (rt_g.user_memory ? RT_STATS_F_USER_MEMORY : 0);
	r->pool_size = rt_g.opt.pool_size;
	r->pool_max = rt_g.opt.pool_max;
	rt_faults_init(r);
	rt_stats = r;
	for (unsigned i = 0; i < rt_g.narenas; i++) {
		rt_arena_lock(&rt_g.arenas[i]);
		rt_stats_publish_arena(&rt_g.arenas[i]);
		rt_arena_unlock(&rt_g.arenas[i]);
	}
}

/* "Faults since init" count from now: the end of the first initialisation,
 * or of a later rtalloc_init() (whose own pre-faulting is not the program's). */
void rt_stats_fault_baseline(void)
{
	struct rt_stats_region *r = rt_stats;
	struct rusage ru;
	if (!r || getrusage(RUSAGE_SELF, &ru) != 0)
		return;
	__atomic_store_n(&r->init_minflt, (uint64_t)ru.ru_minflt, __ATOMIC_RELAXED);
	__atomic_store_n(&r->init_majflt, (uint64_t)ru.ru_majflt, __ATOMIC_RELAXED);
}

/* The end of initialisation: lock state, the clock and the fault baseline. */
void rt_stats_init_done(uint64_t started_ns)
{
	struct rt_stats_region *r = rt_stats;
	rt_stats_fault_baseline();
	r->init_ns = rt_g.init_ns;
	r->init_duration_ns = rt_g.init_ns - started_ns;
	if (rt_g.locked)
		r->flags |= RT_STATS_F_LOCKED;
	__atomic_store_n(&r->magic, RT_STATS_MAGIC, __ATOMIC_RELEASE);
}

/* Is path the file we made (not something put at its name since)? */
static bool our_file(const char *path, struct stat *st)
{
	return lstat(path, st) == 0 && S_ISREG(st->st_mode) && st->st_dev == region_dev &&
	       st->st_ino == region_ino;
}

/* The file goes: at exit, and before any abort (rt_die).  A process whose
 * effective uid changed since (a daemon between seteuid calls) may not
 * remove it from a sticky directory: then, for this one call and this
 * thread only, with the file's owner as filesystem uid (allowed when the
 * owner is one of the process's uids, which the set*uid wrappers keep true:
 * rt_stats_file_owner). */
void rt_stats_remove(void)
{
	if (region_path[0] && rt_stats && rt_stats->pid == getpid() && unlink(region_path) != 0 &&
	    (errno == EPERM || errno == EACCES)) {
		struct stat st;
		if (our_file(region_path, &st)) {
			int was = setfsuid(st.st_uid);
			unlink(region_path);
			setfsuid((uid_t)was);
		}
	}
	region_path[0] = '\0';
}

/* A privilege change to real uid `uid` (interpose.c's set*uid wrappers, before
 * the real call, while the process may still chown): the file follows,
 * renamed rtalloc-<uid>-<pid>.stats and owned by uid, so that the process
 * can still remove it at exit and rtalloc-stat finds it under the process's
 * uid.  In a directory uid could not remove it from (an XDG_RUNTIME_DIR of
 * the old user, 0700), it is removed now, with one line.  Returns true if
 * the file changed (to be undone with the old uid if the call fails). */
bool rt_stats_file_owner(uid_t uid)
{
	struct stat st, ds;
	if (!region_path[0] || !rt_stats || rt_stats->pid != getpid() || !our_file(region_path, &st) ||
	    (uid == region_uid && st.st_uid == uid))
		return false; /* named and owned by uid already (a setuid program's is root's) */
	char dir[256], to[256];
	size_t n = (size_t)(strrchr(region_path, '/') - region_path);
	memcpy(dir, region_path, n);
	dir[n] = '\0';
	bool removable = stat(dir, &ds) == 0 &&
			 ((ds.st_mode & S_IWOTH) || (ds.st_uid == uid && (ds.st_mode & S_IWUSR)));
	if (!removable) {
		rt_say("the statistics file %s is removed now: uid %u could not remove it from %s at exit; "
		       "rtalloc-stat will not see this process", region_path, (unsigned)uid, dir);
		unlink(region_path);
		region_path[0] = '\0';
		return false;
	}
	if (lchown(region_path, uid, (gid_t)-1) != 0)
		return false; /* not privileged: it stays as it is */
	fmt(to, sizeof(to), "%s/rtalloc-%u-%d.stats", dir, (unsigned)uid, (int)getpid());
	if (rename(region_path, to) == 0)
		memcpy(region_path, to, strlen(to) + 1);
	region_uid = uid;
	return true;
}

/* At exit (of a program linked with the library or the core): the exiting
 * thread's last counts, the report, and the file goes with the process (the
 * memory stays: later destructors may still allocate and free). */
__attribute__((destructor)) static void stats_at_exit(void)
{
	if (!rt_ready())
		return;
	if (rt_tc.state == RT_TC_LIVE)
		rt_stats_publish_thread(&rt_tc, 0);
	rt_stats_report();
	rt_stats_remove();
}

/* The child of fork must not write into its parent's region: it keeps a
 * private copy with only the forking thread's slot, and exports nothing. */
void rt_stats_fork_child(void)
{
	struct rt_tcache *tc = &rt_tc;
	pi_mutex_init(&exit_lock);
	rt_faults_fork_child();
	struct rt_stats_region *old = rt_stats, *r = rt_os_map(region_bytes());
	if (!old || !r) {
		records_init(tc->state == RT_TC_LIVE ? tc : NULL);
		return;
	}
	memcpy(r, old, sizeof(*r));
	unsigned mine = RT_STATS_SLOTS;
	for (unsigned i = 0; i < RT_STATS_SLOTS; i++) {
		if (tc->slot == &old->slots[i]) {
			mine = i;
			continue;
		}
		memset(&r->slots[i], 0, sizeof(r->slots[i]));
		r->slot_map[i / 64] &= ~(1ULL << (i % 64));
	}
	r->pid = getpid();
	r->flags &= ~(uint32_t)RT_STATS_F_EXPORTED;
	/* The copy takes the old region's address: a publish that a signal
	 * handler's fork interrupted resumes in the child, through pointers to
	 * that address (fork.c). */
	bool exported = old->flags & RT_STATS_F_EXPORTED;
	if (rt_os_move_over(r, old, region_bytes()) == 0)
		r = old;
	else if (exported)
		munmap(old, region_bytes());
	if (mine < RT_STATS_SLOTS)
		tc->slot = &r->slots[mine];
	rt_stats = r;
	region_path[0] = '\0';
	records_init(tc->state == RT_TC_LIVE ? tc : NULL); /* the other threads are gone */
}

/* ---- writers ---------------------------------------------------------------------- */

void rt_stats_publish_arena(struct rt_arena *a)
{
	struct rt_stats_region *r = rt_stats;
	if (!r)
		return;
	struct rt_stats_arena *s = &r->arenas[a->index];
	const struct rt_buddy *b = &a->buddy;
	rt_seq_write_begin(&s->seq);
	RT_SEQ_PUT(s->node, a->node);
	RT_SEQ_PUT(s->pool_bytes, (uint64_t)(b->committed - b->skew) << RT_PAGE_SHIFT);
	RT_SEQ_PUT(s->max_bytes, (uint64_t)(b->limit - b->skew) << RT_PAGE_SHIFT);
	/* idle small pages (the empty list) are free for any use */
	RT_SEQ_PUT(s->free_bytes, (uint64_t)(b->free_pages + a->nempty) << RT_PAGE_SHIFT);
	RT_SEQ_PUT(s->min_free_bytes, (uint64_t)b->min_free_pages << RT_PAGE_SHIFT);
	RT_SEQ_PUT(s->grows, a->grows);
	RT_SEQ_PUT(s->last_grow_ns, a->last_grow_ns);
	RT_SEQ_PUT(s->failed, a->failed);
	RT_SEQ_PUT(s->refills, a->refills);
	RT_SEQ_PUT(s->flushes, a->flushes);
	RT_SEQ_PUT(s->huge_allocs, a->huge_allocs);
	RT_SEQ_PUT(s->huge_frees, a->huge_frees);
	for (unsigned c = 0; c < RT_STATS_CLASSES; c++)
		RT_SEQ_PUT(s->class_units[c], a->class_units[c]);
	rt_seq_write_end(&s->seq);
}

void rt_stats_thread_start(struct rt_tcache *tc)
{
	struct rt_stats_region *r = rt_stats;
	tc->slot = NULL;
	for (unsigned w = 0; w < RT_STATS_SLOTS / 64 && !tc->slot; w++) { /* bound: 16 words */
		uint64_t m = __atomic_load_n(&r->slot_map[w], __ATOMIC_RELAXED);
		for (int tries = 0; m != ~0ULL && tries < 64; tries++) { /* bound: 64 CAS attempts */
			unsigned bit = (unsigned)__builtin_ctzll(~m);
			if (__atomic_compare_exchange_n(&r->slot_map[w], &m, m | (1ULL << bit), false,
							__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
				tc->slot = &r->slots[w * 64 + bit];
				break;
			}
		}
	}
	if (!tc->slot) {
		__atomic_fetch_add(&r->threads_unslotted, 1, __ATOMIC_RELAXED);
		return;
	}
	struct rt_stats_slot *s = tc->slot;
	struct rt_thread_rec *rec = &records[s - r->slots];
	pthread_mutex_lock(&rec->lock);
	rec->tc = tc;
	pthread_mutex_unlock(&rec->lock);
	rt_seq_write_begin(&s->seq);
	RT_SEQ_PUT(s->tid, (int32_t)syscall(SYS_gettid));
	rt_seq_write_end(&s->seq);
	rt_stats_publish_thread(tc, 0);
}

/* The calling thread's counters to its slot: the slow paths' exactly, the
 * fast paths' as folded (rt_tcache_fold: cls and one more class, or all). */
void rt_stats_publish_thread(struct rt_tcache *tc, unsigned cls)
{
	struct rt_stats_slot *s = tc->slot;
	if (!s)
		return;
	rt_tcache_fold(tc, cls);
	rt_seq_write_begin(&s->seq);
	RT_SEQ_PUT(s->in_rt, tc->in_rt);
#define RT_X_PUT(name, text) RT_SEQ_PUT(s->c.name, tc->st.name + tc->fold.name);
	RT_TCOUNTERS(RT_X_PUT)
#undef RT_X_PUT
	rt_seq_write_end(&s->seq);
}

/* A thread leaves its totals behind, leaves the registry and frees its slot.
 * Totals and registry change inside one exit_seq window, so a reader summing
 * both never counts a thread twice or not at all.  A reader may be reading
 * this thread's counters right now: clearing the record under its lock waits
 * for that one read (a constant, boosted by priority inheritance), after
 * which no reader can reach this TLS again.  Bound: two PI locks, each held
 * by others for a constant time; no wait for any other thread's progress. */
void rt_stats_thread_exit(struct rt_tcache *tc)
{
	struct rt_stats_region *r = rt_stats;
	struct rt_tcounters c;
	rt_faults_thread_exit();
	rt_tcache_counters(tc, &c);
	pthread_mutex_lock(&exit_lock);
	rt_seq_write_begin(&r->exit_seq);
#define RT_X_ADD(name, text) RT_SEQ_PUT(r->exited.name, r->exited.name + c.name);
	RT_TCOUNTERS(RT_X_ADD)
#undef RT_X_ADD
	RT_SEQ_PUT(r->threads_exited, r->threads_exited + 1);
	struct rt_stats_slot *s = tc->slot;
	if (s) {
		struct rt_thread_rec *rec = &records[s - r->slots];
		pthread_mutex_lock(&rec->lock);
		rec->tc = NULL;
		pthread_mutex_unlock(&rec->lock);
		rt_seq_write_begin(&s->seq);
		RT_SEQ_PUT(s->tid, 0);
		RT_SEQ_PUT(s->in_rt, 0);
#define RT_X_ZERO(name, text) RT_SEQ_PUT(s->c.name, 0);
		RT_TCOUNTERS(RT_X_ZERO)
#undef RT_X_ZERO
		rt_seq_write_end(&s->seq);
	}
	rt_seq_write_end(&r->exit_seq);
	pthread_mutex_unlock(&exit_lock);
	if (s) {
		unsigned i = (unsigned)(s - r->slots);
		__atomic_fetch_and(&r->slot_map[i / 64], ~(1ULL << (i % 64)), __ATOMIC_RELEASE);
		tc->slot = NULL;
	}
}

/* A refused allocation (no arena lock held).  With RTALLOC_ON_EXHAUST=grow,
 * the pool was at RTALLOC_POOL_MAX or the request beyond it: said once per
 * process, as the first growth is (fail is a choice, abort says it itself). */
void rt_stats_failure(void)
{
	if (rt_stats)
		__atomic_store_n(&rt_stats->last_failure_ns, rt_os_now_ns(), __ATOMIC_RELAXED);
	static bool said;
	if (rt_g.opt.on_exhaust == RTALLOC_EXHAUST_GROW && !rt_g.user_memory &&
	    !__atomic_exchange_n(&said, true, __ATOMIC_RELAXED))
		rt_say("an allocation was refused (ENOMEM): the pool (%zu KiB) could not grow to serve it, "
		       "up to RTALLOC_POOL_MAX (%zu KiB); set RTALLOC_POOL_MAX larger. Further refusals "
		       "are only counted (rtalloc-stat)",
		       __atomic_load_n(&rt_g.pool_bytes, __ATOMIC_RELAXED) >> 10, rt_g.opt.pool_max >> 10);
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
	t->foreign_frees = rt_tcache_foreign_frees();
}

/* Thread counters of every live thread, read live from their tcaches through
 * the records, plus those left by exited threads.  Retries (bounded,
 * yielding) while a thread exits meanwhile; after that, the last complete
 * pass is returned.  Uninstrumented under TSan: see rt_tcache_counters. */
static RT_NO_TSAN uint32_t sum_threads(const struct rt_stats_region *r, struct rt_tcounters *sum)
{
	uint32_t live = 0;
	for (int tries = 0; tries < 100; tries++) { /* bound: 100 passes */
		if (tries)
			sched_yield();
		uint32_t e1 = __atomic_load_n(&r->exit_seq, __ATOMIC_ACQUIRE);
		struct rt_tcounters t;
		uint32_t n = 0;
		rt_seq_read(&r->exit_seq, &t, &r->exited, sizeof(t));
		for (unsigned i = 0; i < RT_STATS_SLOTS; i++) { /* bound: RT_STATS_SLOTS records */
			if (!(__atomic_load_n(&r->slot_map[i / 64], __ATOMIC_ACQUIRE) & (1ULL << (i % 64))))
				continue;
			struct rt_thread_rec *rec = &records[i];
			struct rt_tcounters c;
			pthread_mutex_lock(&rec->lock);
			bool live = rec->tc != NULL;
			if (live)
				rt_tcache_counters(rec->tc, &c);
			pthread_mutex_unlock(&rec->lock);
			if (!live)
				continue;
			n++;
#define RT_X_SUM(name, text) t.name += c.name;
			RT_TCOUNTERS(RT_X_SUM)
#undef RT_X_SUM
		}
		*sum = t;
		live = n;
		if (!(e1 & 1) && __atomic_load_n(&r->exit_seq, __ATOMIC_ACQUIRE) == e1)
			break;
	}
	return live;
}

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
		st.narenas = rt_g.narenas;
		st.locked = rt_g.locked;
		st.exported = !!(r->flags & RT_STATS_F_EXPORTED);
		st.init_ns = r->init_ns;
		st.init_duration_ns = r->init_duration_ns;
		st.pool_max_bytes = 0;
		for (unsigned i = 0; i < rt_g.narenas && i < RTALLOC_STATS_ARENAS; i++) {
			struct rt_stats_arena a = {0};
			rt_seq_read(&r->arenas[i].seq, &a, &r->arenas[i], sizeof(a));
			st.arena_node[i] = a.node;
			st.arena_pool_bytes[i] = a.pool_bytes;
			st.arena_free_bytes[i] = a.free_bytes;
			st.pool_bytes += a.pool_bytes;
			st.pool_max_bytes += a.max_bytes;
			st.free_bytes += a.free_bytes;
			st.min_free_bytes += a.min_free_bytes;
			st.grows += a.grows;
			if (a.last_grow_ns > st.last_grow_ns)
				st.last_grow_ns = a.last_grow_ns;
			for (unsigned c = 0; c < RTALLOC_STATS_CLASSES; c++)
				st.class_units[c] += a.class_units[c];
		}
		st.in_use_bytes = st.pool_bytes - st.free_bytes;
		st.high_water_bytes = st.pool_bytes - st.min_free_bytes;
		struct rt_tcounters t;
		st.threads = sum_threads(r, &t);
		st.mallocs = t.mallocs;
		st.frees = t.frees;
		st.slow_mallocs = t.slow_mallocs;
		st.slow_frees = t.slow_frees;
		st.refills = t.refills;
		st.flushes = t.flushes;
		st.failed_allocs = t.failed;
		st.rt_sections = t.rt_sections;
		st.rt_minflt = t.rt_minflt;
		st.rt_majflt = t.rt_majflt;
		st.rt_slow = t.rt_slow;
		st.bytes_allocated = t.bytes_allocated;
		st.bytes_freed = t.bytes_freed;
		st.last_failure_ns = __atomic_load_n(&r->last_failure_ns, __ATOMIC_RELAXED);
		st.foreign_frees = rt_tcache_foreign_frees();
		struct rusage ru;
		if (getrusage(RUSAGE_SELF, &ru) == 0) {
			/* the baseline moves at each rtalloc_init(): read once, never
			 * above the count (a reader racing a reset sees 0, not 2^64) */
			uint64_t min0 = __atomic_load_n(&r->init_minflt, __ATOMIC_RELAXED);
			uint64_t maj0 = __atomic_load_n(&r->init_majflt, __ATOMIC_RELAXED);
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

static const char *const class_names[RTALLOC_STATS_CLASSES] = {
	"-", "16", "32", "64", "128", "256", "512", "1K", "2K", "4K", "8K", "16K", "32K", "huge",
};

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
	fprintf(f, "  non-real-time events: %llu pool growths", (unsigned long long)s.grows);
	if (s.grows)
		fprintf(f, " (last %.3f s ago)", (double)(now - s.last_grow_ns) / 1e9);
	fprintf(f, ", %llu failed allocations", (unsigned long long)s.failed_allocs);
	if (s.failed_allocs && s.last_failure_ns)
		fprintf(f, " (last %.3f s ago)", (double)(now - s.last_failure_ns) / 1e9);
	fprintf(f, "\n  classes (small: pages, larger: blocks):");
	for (unsigned c = 1; c < RTALLOC_STATS_CLASSES; c++)
		if (s.class_units[c])
			fprintf(f, " %s:%llu", class_names[c], (unsigned long long)s.class_units[c]);
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
	if (strcmp(report_path, "stderr") == 0 && fstat(STDERR_FILENO, &st) == 0) {
		/* out of the way of the low numbers programs expect to get */
		report_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
		if (report_fd < 0)
			report_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
		report_dev = st.st_dev;
		report_ino = st.st_ino;
	}
}

static bool same_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
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
	int fd = open(report_path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rt_say("RTALLOC_REPORT=\"%s\": cannot open it (%s); no report", report_path,
		       strerrorname_np(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rt_say("RTALLOC_REPORT=\"%s\" is not a regular file (or stderr); no report", report_path);
		close(fd);
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
	fmt(line, sizeof(line),
	    "{\"rtalloc\":\"%s\",\"pid\":%d,\"mallocs\":%llu,\"frees\":%llu,\"slow_mallocs\":%llu,"
	    "\"slow_frees\":%llu,\"refills\":%llu,\"flushes\":%llu,\"failed\":%llu,\"grows\":%llu,"
	    "\"pool_bytes\":%llu,\"high_water_bytes\":%llu,\"in_use_bytes\":%llu,\"locked\":%u,"
	    "\"minflt_since_init\":%llu,\"majflt_since_init\":%llu,\"rt_minflt\":%llu,\"rt_slow\":%llu,"
	    "\"foreign_frees\":%llu",
	    RTALLOC_VERSION_STRING, (int)getpid(), (unsigned long long)s.mallocs,
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
	if (write(fd, line, n) < 0) {
		/* nothing more to do at exit */
	}
	if (fd != STDERR_FILENO && fd != report_fd)
		close(fd);
}

/* ---- real-time sections ------------------------------------------------------------------ */

static void thread_faults(uint64_t *minflt, uint64_t *majflt)
{
	struct rusage ru;
	*minflt = *majflt = 0;
	if (getrusage(RUSAGE_THREAD, &ru) == 0) {
		*minflt = (uint64_t)ru.ru_minflt;
		*majflt = (uint64_t)ru.ru_majflt;
	}
}

RT_EXPORT void rtalloc_rt_begin(void)
{
	struct rt_tcache *tc = &rt_tc;
	if (rt_tcache_setup() != 0 || tc->in_rt)
		return;
	rt_faults_thread_open(); /* RTALLOC_FAULTS=locate, once per thread */
	thread_faults(&tc->rt_minflt, &tc->rt_majflt);
	tc->in_rt = 1;
	rt_stats_publish_thread(tc, 0);
	rt_faults_section_begin();
}

RT_EXPORT void rtalloc_rt_end(void)
{
	struct rt_tcache *tc = &rt_tc;
	if (!tc->in_rt)
		return;
	uint64_t minflt, majflt;
	thread_faults(&minflt, &majflt);
	rt_faults_section_end(minflt - tc->rt_minflt + majflt - tc->rt_majflt);
	tc->st.rt_minflt += minflt - tc->rt_minflt;
	tc->st.rt_majflt += majflt - tc->rt_majflt;
	tc->st.rt_sections++;
	tc->in_rt = 0;
	rt_stats_publish_thread(tc, 0);
}
