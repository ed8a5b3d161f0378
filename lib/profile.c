/* SPDX-License-Identifier: MIT */
/*
 * profile.c - the recorded profile: what a program needed, written at exit
 * (RTALLOC_PROFILE_SAVE=PATH) and read at start-up (RTALLOC_PROFILE=PATH) to
 * size the pool and fill real-time threads' caches before their loops
 * (rtalloc_thread_prepare).  Its text (profile.h, profile_fmt.c) is the same
 * rtalloc-stat --profile PID writes from the statistics region.
 *
 * What is measured, at no cost on the fast paths (fastpath.h is unchanged):
 *   per thread and class, the most blocks the thread needed in its cache at
 *     once: at each refill (tcache.c, its list of the class is empty) the
 *     blocks of the class it has taken and not given back itself (allocs -
 *     frees, fast and slow paths) plus the batch it now holds bound what it
 *     has used since its previous refill, so their maximum bounds its peak
 *     (above it by at most a batch).  rtalloc_thread_prepare counts what a
 *     profile filled in too, so a run with the profile records it again;
 *   per thread name (the kernel's, prctl PR_GET_NAME): the region's records
 *     (stats.h: struct rt_stats_profile), merged by maximum, published by
 *     the thread at rtalloc_thread_prepare, at rtalloc_rt_end after a peak
 *     grew, at thread exit and (the thread that exits the process) at exit;
 *   per class, over the process: the sum of the threads' peaks;
 *   the pool: its high-water mark (the buddies' lowest free);
 *   huge blocks (blocks of their own, > 1 MiB or a large class a thread does
 *     not cache): the most live at once, counted at their allocation and
 *     free (slow paths that take the arena lock anyway);
 *   heaps: their size and high-water mark (their region records).
 *
 * Loading (rt_profile_apply, during initialisation: no malloc, stdio or
 * getenv; the file read with rt_os_read_file into a static buffer, parsed
 * in place): the pool is sized to the recorded peak plus RT_PROFILE_MARGIN
 * (a quarter), rounded up to a MiB, unless the pool's size was chosen
 * (RTALLOC_POOL_SIZE, rtalloc_init's pool_size): that wins, with one line
 * when it is below the recorded peak.  The cache budget (tcache.c, an
 * eighth of the pool) grows by the bytes the profile's threads cache, so
 * that a pool sized to the peak still lets them fill.  A bad or stale file
 * is one line, naming RTALLOC_PROFILE, the file and the line, and the
 * profile is ignored.
 *
 * Pre-carving: in rtalloc_thread_prepare of a thread whose name is in the
 * profile, its limits are raised to its recorded peaks (at most
 * RT_PROFILE_BLOCKS_MAX blocks a class, the bytes beyond its share taken
 * from the cache budget while it has them) and its lists filled to them
 * from the arena, which carves the pages then: no page is kept idle in an
 * arena (S4 holds), and the loop's first cycle finds its blocks cached.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "os.h"
#include "profile.h"
#include "stats.h"
#include "statread.h"

#define RT_PROFILE_MARGIN_PCT 25
#define MIB ((size_t)1 << 20)

size_t rt_profile_cache_extra;

static char save_path[256];
static char load_path[256];
static bool loaded;
/* Mapped when a profile is read or written, never before (no memory of a
 * process that uses none: RLIMIT_DATA counts a library's BSS), and kept. */
static struct scratch {
	struct rt_pf prof;         /* the profile read at start-up, or collected at exit */
	char text[RT_PF_TEXT_MAX]; /* its file; the file written at exit */
	struct rt_sr_figures f;
	struct rt_stats_heap heaps[RT_STATS_HEAPS];
} *sc;

static bool scratch(void)
{
	if (!sc)
		sc = rt_os_map(sizeof(*sc));
	return sc != NULL;
}

static void refuse(const char *path, unsigned line, const char *why)
{
	rt_say("RTALLOC_PROFILE=\"%s\": line %u: %s; the profile is ignored", path, line, why);
}

/* Read the file into text and parse it into prof: true if it is usable. */
static bool load(const char *path)
{
	if (!scratch()) {
		rt_say("RTALLOC_PROFILE=\"%s\": no memory to read it; the profile is ignored", path);
		return false;
	}
	long n = rt_os_read_file(path, sc->text, sizeof(sc->text));
	if (n < 0) {
		rt_say("RTALLOC_PROFILE=\"%s\": cannot open it (%s); the profile is ignored", path,
		       strerrorname_np(errno));
		return false;
	}
	unsigned line;
	const char *why = rt_pf_parse(sc->text, (size_t)n, &sc->prof, &line);
	if (why) {
		refuse(path, line, why);
		memset(&sc->prof, 0, sizeof(sc->prof));
		return false;
	}
	return true;
}

/* Bytes the profile's threads cache at their peaks. */
static size_t cache_bytes(const struct rt_pf *p)
{
	size_t sum = 0;
	for (unsigned t = 0; t < p->nthreads; t++) /* bound: RT_PROFILE_THREADS */
		for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS */
			uint32_t n = p->threads[t].peak[c];
			if (n > RT_PROFILE_BLOCKS_MAX)
				n = RT_PROFILE_BLOCKS_MAX;
			sum += (size_t)n * rt_class_size(c);
		}
	return sum;
}

static bool copy_path(const char *var, const char *v, char *out, size_t len)
{
	if (!v || !v[0])
		return false;
	if (strlen(v) >= len) {
		rt_say("%s is longer than %zu characters; ignored", var, len - 1);
		return false;
	}
	memcpy(out, v, strlen(v) + 1);
	return true;
}

void rt_profile_apply(struct rt_options *o, const struct rtalloc_config *cfg)
{
	copy_path("RTALLOC_PROFILE_SAVE", rt_options_env("RTALLOC_PROFILE_SAVE"), save_path, sizeof(save_path));
	if (!copy_path("RTALLOC_PROFILE", rt_options_env("RTALLOC_PROFILE"), load_path, sizeof(load_path)))
		return;
	if (!load(load_path))
		return;
	loaded = true;
	rt_profile_cache_extra = cache_bytes(&sc->prof);
	if (cfg && cfg->memory)
		return; /* the caller's memory: its size is given */
	uint64_t peak = sc->prof.pool_peak;
	uint64_t want = peak + peak / 100 * RT_PROFILE_MARGIN_PCT + (peak % 100) * RT_PROFILE_MARGIN_PCT / 100;
	want = (want + MIB - 1) & ~(uint64_t)(MIB - 1);
	if (want < MIB)
		want = MIB;
	if (want > RT_POOL_CEIL)
		want = RT_POOL_CEIL;
	bool chosen = rt_options_env("RTALLOC_POOL_SIZE") || (cfg && cfg->pool_size);
	if (chosen) {
		if (o->pool_size < peak)
			rt_say("RTALLOC_PROFILE=\"%s\": the pool's size chosen (%zu bytes) is below the recorded "
			       "peak (%llu bytes); the pool may grow", load_path, o->pool_size,
			       (unsigned long long)peak);
		return;
	}
	o->pool_size = (size_t)want;
	if (!rt_options_env("RTALLOC_POOL_MAX") && !(cfg && cfg->pool_max))
		o->pool_max = rt_options_default_max(o->pool_size);
	if (o->pool_max < o->pool_size)
		o->pool_max = o->pool_size;
}

bool rt_profile_wanted(uint32_t want[RT_NCLASS + 1])
{
	if (!loaded)
		return false;
	char name[RT_PROFILE_NAME];
	rt_os_thread_name(name);
	const struct rt_pf_thread *t = rt_pf_thread(&sc->prof, name);
	if (!t)
		return false;
	want[0] = 0;
	for (unsigned c = 1; c <= RT_NCLASS; c++) /* bound: RT_NCLASS */
		want[c] = t->peak[c] < RT_PROFILE_BLOCKS_MAX ? t->peak[c] : RT_PROFILE_BLOCKS_MAX;
	return true;
}

/* The record of name: found, or claimed (state FREE -> CLAIMED by CAS, the
 * name written, then NAMED).  NULL when all are taken by other names. */
static struct rt_stats_pthread *record_of(struct rt_stats_profile *m, const char *name)
{
	for (unsigned i = 0; i < RT_PROFILE_THREADS; i++) { /* bound: RT_PROFILE_THREADS */
		struct rt_stats_pthread *r = &m->threads[i];
		uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
		if (st == RT_PROF_NAMED && strncmp(r->name, name, RT_PROFILE_NAME) == 0)
			return r;
		uint32_t expected = RT_PROF_FREE;
		if (st == RT_PROF_FREE &&
		    __atomic_compare_exchange_n(&r->state, &expected, RT_PROF_CLAIMED, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			uint64_t w[2] = {0, 0};
			memcpy(w, name, strnlen(name, RT_PROFILE_NAME - 1));
			for (unsigned k = 0; k < 2; k++) /* bound: 2 words */
				__atomic_store_n((uint64_t *)(void *)(r->name + 8 * k), w[k], __ATOMIC_RELAXED);
			__atomic_store_n(&r->state, RT_PROF_NAMED, __ATOMIC_RELEASE);
			return r;
		}
	}
	return NULL;
}

static void max_u32(uint32_t *p, uint32_t v)
{
	uint32_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
	for (int tries = 0; old < v && tries < 64; tries++) /* bound: 64 attempts (statistics) */
		if (__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return;
}

static void max_u64(uint64_t *p, uint64_t v)
{
	uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
	for (int tries = 0; old < v && tries < 64; tries++) /* bound: 64 attempts (statistics) */
		if (__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return;
}

void rt_profile_publish(struct rt_tcache *tc)
{
	struct rt_stats_region *r = rt_stats;
	tc->peak_dirty = 0;
	if (!r)
		return;
	bool any = false;
	for (unsigned c = 1; c <= RT_NCLASS; c++) /* bound: RT_NCLASS */
		any |= tc->peak[c] != 0;
	if (!any)
		return;
	char name[RT_PROFILE_NAME];
	rt_os_thread_name(name);
	if (!name[0])
		return;
	struct rt_stats_pthread *rec = record_of(&r->profile, name);
	if (!rec)
		return;
	for (unsigned c = 1; c <= RT_NCLASS; c++) /* bound: RT_NCLASS */
		max_u32(&rec->peak[c], tc->peak[c]);
}

void rt_profile_large(int delta)
{
	struct rt_stats_region *r = rt_stats;
	if (!r)
		return;
	if (delta < 0) {
		__atomic_fetch_sub(&r->profile.large_live, 1, __ATOMIC_RELAXED);
		return;
	}
	uint64_t live = __atomic_add_fetch(&r->profile.large_live, 1, __ATOMIC_RELAXED);
	max_u64(&r->profile.large_peak, live);
}

static unsigned no_threads(void *ctx, unsigned i, unsigned nth, struct rt_tcounters *c)
{
	(void)ctx, (void)i, (void)nth, (void)c;
	return 0;
}

/* At exit (report.c, after the exiting thread published its peaks): the file, written whole under a temporary name and
 * renamed over PATH, so that a reader never sees half of one.  One line when
 * it cannot be written. */
void rt_profile_save(void)
{
	const struct rt_stats_region *r = rt_stats;
	if (!save_path[0] || !r || !rt_ready())
		return;
	if (!scratch()) {
		rt_say("RTALLOC_PROFILE_SAVE=\"%s\": no memory to write it; no profile", save_path);
		return;
	}
	const struct rt_sr_source src = {no_threads, NULL, 1, NULL};
	rt_sr_read(r, &src, &sc->f);
	bool torn = false;
	unsigned nheaps = rt_sr_heaps(r, sc->heaps, &torn);
	rt_pf_collect(&r->profile, rt_sr_high_water(&sc->f), sc->heaps, nheaps, &sc->prof);
	char comment[96];
	rt_fmt(comment, sizeof(comment), "written by librtalloc %s at the exit of process %d",
	       RTALLOC_VERSION_STRING, rt_os_getpid());
	size_t n = rt_pf_format(&sc->prof, comment, sc->text, sizeof(sc->text));
	if (n >= sizeof(sc->text)) {
		rt_say("RTALLOC_PROFILE_SAVE=\"%s\": the profile is longer than %zu bytes; not written", save_path,
		       sizeof(sc->text) - 1);
		return;
	}
	char tmp[sizeof(save_path) + 16];
	rt_fmt(tmp, sizeof(tmp), "%s.%d.tmp", save_path, rt_os_getpid());
	int fd = rt_os_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0) {
		rt_say("RTALLOC_PROFILE_SAVE=\"%s\": cannot create it (%s); no profile", save_path,
		       strerrorname_np(errno));
		return;
	}
	int e = rt_os_write_all(fd, sc->text, n);
	rt_os_close(fd);
	if (e != 0 || rt_os_rename(tmp, save_path) != 0) {
		rt_say("RTALLOC_PROFILE_SAVE=\"%s\": cannot write it (%s); no profile", save_path,
		       strerrorname_np(errno));
		rt_os_unlink(tmp);
	}
}
