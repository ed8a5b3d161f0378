/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the statistics region (layout and synchronization: stats.h), its
 * file, its writers and the thread registry.  What is read from it, and
 * from live threads through the registry, is report.c's.
 *
 * Writers publish with a seqlock they alone own (a thread its slot, an arena
 * lock holder its arena record); readers copy and retry.  What a thread
 * publishes its owner counted and folded (tcache.c); reading goes through
 * the one reader, statread.c (the whole flow is described there).  Nothing
 * here runs on the malloc/free fast path.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "os.h"
#include "faults.h"
#include "stats.h"

/* The export format (stats.h) and the core (rt.h) agree: */
_Static_assert(RT_STATS_ARENAS == RT_MAX_ARENAS && RT_STATS_ARENAS == RTALLOC_STATS_ARENAS,
	       "an arena record per arena, and one per arena in struct rtalloc_stats");
_Static_assert(RT_STATS_CLASSES == RT_NMED + 2 && RT_STATS_CLASSES == RTALLOC_STATS_CLASSES,
	       "a class_units entry per class (0, 1 .. RT_NMED, all above: rt_stats_class) everywhere");
_Static_assert(sizeof(((struct rt_arena *)0)->class_units) == sizeof(((struct rt_stats_arena *)0)->class_units),
	       "an arena's class counts are published word for word");
_Static_assert(sizeof(((struct rt_stats_slot *)0)->c) == sizeof(((struct rt_tcache *)0)->st),
	       "a slot carries a thread's counters word for word");
_Static_assert(RT_STATS_SLOTS % 64 == 0 && RT_STATS_SLOTS / 64 == sizeof(((struct rt_stats_region *)0)->slot_map) / 8,
	       "the slot map has a bit per slot (and the registry a record per slot)");

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
 * number of loads: rt_stats_thread_read); the thread takes it once at start and once at exit, to
 * set and clear tc.  So an exiting thread waits at most for one reader's
 * read of its own counters, boosted to its priority: no grace period, no
 * IPI, whatever the number of threads or readers.  Records are static:
 * never freed, so a reader never touches memory that went away. */
struct rt_thread_rec {
	pthread_mutex_t lock;
	struct rt_tcache *tc; /* under lock; NULL: no live thread here */
	const struct rt_lock_waits *lw; /* under lock: the same thread's lock waits (lock.c) */
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
		records[i].lw = records[i].tc ? &rt_lock_waits : NULL; /* keep is the caller's */
	}
}

/* ---- the region ---------------------------------------------------------------- */

static size_t region_bytes(void) { return (sizeof(struct rt_stats_region) + RT_PAGE_SIZE - 1) & ~(RT_PAGE_SIZE - 1); }



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
	if (!dir || dir[0] != '/' || strlen(dir) > 200 || !rt_os_on_tmpfs(dir))
		dir = "/dev/shm";
	rt_fmt(region_path, sizeof(region_path), "%s/rtalloc-%u-%d.stats", dir, (unsigned)rt_os_uid(), rt_os_getpid());
	int fd = -1;
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) { /* bound: 2 */
		fd = rt_os_open(region_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		struct stat st;
		if (fd < 0 && errno == EEXIST && attempt == 0 && rt_os_lstat(region_path, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_uid == rt_os_uid())
			rt_os_unlink(region_path);
	}
	if (fd < 0) {
		rt_say("cannot create the statistics file %s (%s): statistics stay in this process; "
		       "rtalloc-stat will not see it", region_path, strerrorname_np(errno));
		region_path[0] = '\0';
		return NULL;
	}
	const char *why = NULL;
	void *p = NULL;
	if (!rt_os_fd_on_tmpfs(fd))
		why = "not on a tmpfs";
	else if (rt_os_fallocate(fd, region_bytes()) != 0)
		why = strerrorname_np(errno);
	else
		p = rt_os_map_shared(fd, region_bytes());
	if (!why && !p)
		why = strerrorname_np(errno);
	/* Read-only on disk from now on: our mapping stays writable, and nobody
	 * (not even a careless tool of the same user) truncates it under us,
	 * which would kill this process with SIGBUS at its next write. */
	struct stat st;
	if (p) {
		rt_os_fchmod(fd, 0400);
		if (rt_os_fstat(fd, &st) == 0) {
			region_dev = st.st_dev;
			region_ino = st.st_ino;
		}
		region_uid = rt_os_uid();
	}
	rt_os_close(fd);
	if (!p) {
		rt_say("cannot reserve the statistics file %s (%s): statistics stay in this process; "
		       "rtalloc-stat will not see it", region_path, why);
		rt_os_unlink(region_path);
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
	/* No memory even for statistics (a tight RLIMIT_DATA): none, and
	 * rtalloc_stats() reports zeros.  Not a static copy: its 200 KiB of
	 * .bss would count against that same limit in every process. */
	if (!r)
		return;
	rt_os_populate(r, region_bytes());
	r->version = RT_STATS_VERSION;
	r->size = sizeof(*r);
	r->pid = rt_os_getpid();
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
	if (!r || rt_os_getrusage_self(&ru) != 0)
		return;
	__atomic_store_n(&r->init_minflt, (uint64_t)ru.ru_minflt, __ATOMIC_RELAXED);
	__atomic_store_n(&r->init_majflt, (uint64_t)ru.ru_majflt, __ATOMIC_RELAXED);
}

/* The end of initialisation: lock state, the clock and the fault baseline. */
void rt_stats_init_done(uint64_t started_ns)
{
	struct rt_stats_region *r = rt_stats;
	if (!r)
		return;
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
	return rt_os_lstat(path, st) == 0 && S_ISREG(st->st_mode) && st->st_dev == region_dev &&
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
	if (region_path[0] && rt_stats && rt_stats->pid == rt_os_getpid() && rt_os_unlink(region_path) != 0 &&
	    (errno == EPERM || errno == EACCES)) {
		struct stat st;
		if (our_file(region_path, &st)) {
			uid_t was = rt_os_setfsuid(st.st_uid);
			rt_os_unlink(region_path);
			rt_os_setfsuid(was);
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
	if (!region_path[0] || !rt_stats || rt_stats->pid != rt_os_getpid() || !our_file(region_path, &st) ||
	    (uid == region_uid && st.st_uid == uid))
		return false; /* named and owned by uid already (a setuid program's is root's) */
	char dir[256], to[256];
	size_t n = (size_t)(strrchr(region_path, '/') - region_path);
	memcpy(dir, region_path, n);
	dir[n] = '\0';
	bool removable = rt_os_stat(dir, &ds) == 0 &&
			 ((ds.st_mode & S_IWOTH) || (ds.st_uid == uid && (ds.st_mode & S_IWUSR)));
	if (!removable) {
		rt_say("the statistics file %s is removed now: uid %u could not remove it from %s at exit; "
		       "rtalloc-stat will not see this process", region_path, (unsigned)uid, dir);
		rt_os_unlink(region_path);
		region_path[0] = '\0';
		return false;
	}
	if (rt_os_lchown(region_path, uid) != 0)
		return false; /* not privileged: it stays as it is */
	rt_fmt(to, sizeof(to), "%s/rtalloc-%u-%d.stats", dir, (unsigned)uid, rt_os_getpid());
	if (rt_os_rename(region_path, to) == 0)
		memcpy(region_path, to, strlen(to) + 1);
	region_uid = uid;
	return true;
}

/* The child of fork must not write into its parent's region: it keeps a
 * private copy with only the forking thread's slot, and exports nothing. */
void rt_stats_fork_child(struct rt_tcache *tc)
{
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
	r->pid = rt_os_getpid();
	r->flags &= ~(uint32_t)RT_STATS_F_EXPORTED;
	/* The copy takes the old region's address: a publish that a signal
	 * handler's fork interrupted resumes in the child, through pointers to
	 * that address (fork.c). */
	bool exported = old->flags & RT_STATS_F_EXPORTED;
	if (rt_os_move_over(r, old, region_bytes()) == 0)
		r = old;
	else if (exported)
		rt_os_unmap(old, region_bytes());
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
	if (!r)
		return;
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
	rt_mutex_lock(&rec->lock);
	rec->tc = tc;
	rec->lw = &rt_lock_waits; /* the calling thread's: tc's */
	rt_mutex_unlock(&rec->lock);
	rt_seq_write_begin(&s->seq);
	RT_SEQ_PUT(s->tid, (int32_t)rt_os_gettid());
	rt_seq_write_end(&s->seq);
	rt_stats_publish_thread(tc); /* nothing to fold yet: the bins cache nothing before setup */
}

/* The lock waits of the thread whose record w is (lock.c counts them in
 * its own TLS) into its counters c.  A macro: c, a local, never has its
 * address taken (an exiting thread's frame after pthread_cancel's unwinding
 * is where ASan's shadow of the unwound frames may still lie). */
#define LOCK_WAITS_IN(w, c)                                    \
	do {                                                   \
		(c).lock_waits = rt_load(&(w)->waits);         \
		(c).lock_wait_max_ns = rt_load(&(w)->max_ns);  \
	} while (0)

/* The calling thread's counters to its slot, as its owner hands them over
 * (rt_tcache_publish, tcache.c): the slow paths' exactly, the fast paths' as
 * folded there, its lock waits as lock.c counted them.  Only writes the
 * slot: nothing here changes a counter. */
void rt_stats_publish_thread(const struct rt_tcache *tc)
{
	struct rt_stats_slot *s = tc->slot;
	if (!s)
		return;
	uint64_t waits = rt_load(&rt_lock_waits.waits), max_ns = rt_load(&rt_lock_waits.max_ns);
	rt_seq_write_begin(&s->seq);
	RT_SEQ_PUT(s->in_section, tc->in_section);
#define RT_X_PUT(name, key, text) RT_SEQ_PUT(s->c.name, tc->st.name + tc->fold.name);
	RT_TCOUNTERS(RT_X_PUT)
	RT_TMAXIMA(RT_X_PUT)
#undef RT_X_PUT
	RT_SEQ_PUT(s->c.lock_waits, waits);
	RT_SEQ_PUT(s->c.lock_wait_max_ns, max_ns);
	rt_seq_write_end(&s->seq);
}

/* A thread leaves its totals behind, leaves the registry and frees its slot.
 * Totals and registry change inside one exit_seq window, so a reader summing
 * both never counts a thread twice or not at all.  A reader may be reading
 * this thread's counters right now: clearing the record under its lock waits
 * for that one read (a constant, boosted by priority inheritance), after
 * which no reader can reach this TLS again.  Bound: two PI locks, each held
 * by others for a constant time; no wait for any other thread's progress. */
void rt_stats_thread_exit(struct rt_tcache *tc, const struct rt_tcounters *last)
{
	struct rt_stats_region *r = rt_stats;
	rt_faults_thread_exit();
	if (!r)
		return;
	struct rt_tcounters c = *last;
	LOCK_WAITS_IN(&rt_lock_waits, c); /* the exiting thread's own */
	rt_mutex_lock(&exit_lock);
	rt_seq_write_begin(&r->exit_seq);
#define RT_X_ADD(name, key, text) RT_SEQ_PUT(r->exited.name, r->exited.name + c.name);
#define RT_X_MAX(name, key, text) RT_SEQ_PUT(r->exited.name, c.name > r->exited.name ? c.name : r->exited.name);
	RT_TCOUNTERS(RT_X_ADD)
	RT_TMAXIMA(RT_X_MAX) /* the longest waits outlive their threads */
#undef RT_X_MAX
#undef RT_X_ADD
	RT_SEQ_PUT(r->threads_exited, r->threads_exited + 1);
	struct rt_stats_slot *s = tc->slot;
	if (s) {
		struct rt_thread_rec *rec = &records[s - r->slots];
		rt_mutex_lock(&rec->lock);
		rec->tc = NULL;
		rec->lw = NULL;
		rt_mutex_unlock(&rec->lock);
		rt_seq_write_begin(&s->seq);
		RT_SEQ_PUT(s->tid, 0);
		RT_SEQ_PUT(s->in_section, 0);
#define RT_X_ZERO(name, key, text) RT_SEQ_PUT(s->c.name, 0);
		RT_TCOUNTERS(RT_X_ZERO)
		RT_TMAXIMA(RT_X_ZERO)
#undef RT_X_ZERO
		rt_seq_write_end(&s->seq);
	}
	rt_seq_write_end(&r->exit_seq);
	rt_mutex_unlock(&exit_lock);
	if (s) {
		unsigned i = (unsigned)(s - r->slots);
		__atomic_fetch_and(&r->slot_map[i / 64], ~(1ULL << (i % 64)), __ATOMIC_RELEASE);
		tc->slot = NULL;
	}
}

/* Read the counters of the live thread in slot i with read(), and its lock
 * waits, under its record's lock (held for that one read: see the registry
 * above); false when no live thread holds the slot.  report.c's
 * rtalloc_stats(). */
bool rt_stats_thread_read(unsigned i, void (*read)(const struct rt_tcache *, struct rt_tcounters *),
			  struct rt_tcounters *c)
{
	if (i >= RT_STATS_SLOTS)
		return false;
	struct rt_thread_rec *rec = &records[i];
	rt_mutex_lock(&rec->lock);
	bool live = rec->tc != NULL;
	if (live) {
		read(rec->tc, c);
		LOCK_WAITS_IN(rec->lw, *c);
	}
	rt_mutex_unlock(&rec->lock);
	return live;
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

/* ---- the calling thread's page faults (real-time sections, tcache.c) ------------------- */

void rt_stats_thread_faults(uint64_t *minflt, uint64_t *majflt)
{
	struct rusage ru;
	*minflt = *majflt = 0;
	if (rt_os_getrusage_thread(&ru) == 0) {
		*minflt = (uint64_t)ru.ru_minflt;
		*majflt = (uint64_t)ru.ru_majflt;
	}
}
