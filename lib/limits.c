/* SPDX-License-Identifier: MIT */
/*
 * limits.c - what the machine can give the pool, measured before anything is
 * reserved or grown: the memory there is (15/16 of MemAvailable, what the
 * commit limit leaves under vm.overcommit_memory=2) and the process's limits
 * (RLIMIT_DATA against VmData, half of what RLIMIT_AS leaves against VmSize).
 * rt_pool_fit fits the pool's size and maximum to it at initialisation (a
 * size from the environment that does not fit is refused with one line and
 * the default, or what fits, is used; a config's is ENOMEM);
 * rt_pool_growth_room sizes the address space reserved after the pool;
 * rt_pool_growth_fits checks a later rtalloc_init's growth (pool.c calls
 * these three; the layout they measure is described there);
 * rt_pool_status_kib reads a field of /proc/self/status for mlock.c.  Reads
 * /proc and getrlimit only: no malloc, no stdio (it runs during
 * initialisation).
 */
#include <string.h>
#include <sys/resource.h>

#include "pool_int.h"
#include "procfs.h"

/* The value of "key" (like "MemAvailable:") in a /proc text, in units of
 * `unit` bytes, as bytes; SIZE_MAX when absent or too large (the parser:
 * procfs.h). */
static size_t proc_value(const char *text, const char *key, size_t unit)
{
	uint64_t v;
	size_t n;
	if (!rt_proc_field(text, key, &v) || v > SIZE_MAX || __builtin_mul_overflow((size_t)v, unit, &n))
		return SIZE_MAX;
	return n;
}

/* What the pool may take (SIZE_MAX: no limit known), and the name of the
 * limit that binds, for the message. */
struct room {
	size_t commit;          /* bytes the pool may commit and pre-fault */
	const char *commit_why;
	size_t reserve;         /* address space the reservation may take */
	const char *reserve_why;
};

static void room_of(struct room *r)
{
	char buf[4096]; /* meminfo and status are about 1.5 KiB */
	*r = (struct room){SIZE_MAX, "", SIZE_MAX, ""};
	/* Memory: 15/16 of MemAvailable (leave the rest of the program and the
	 * system room: beyond it pre-faulting calls in the OOM killer). */
	if (rt_os_read_file("/proc/meminfo", buf, sizeof(buf)) > 0) {
		size_t avail = proc_value(buf, "MemAvailable:", 1024);
		if (avail != SIZE_MAX) {
			r->commit = avail - avail / 16;
			r->commit_why = "15/16 of MemAvailable";
		}
		/* Strict overcommit: what the commit limit leaves. */
		char mode[8];
		if (rt_os_read_file("/proc/sys/vm/overcommit_memory", mode, sizeof(mode)) > 0 && mode[0] == '2') {
			size_t limit = proc_value(buf, "CommitLimit:", 1024), used = proc_value(buf, "Committed_AS:", 1024);
			if (limit != SIZE_MAX && used != SIZE_MAX) {
				size_t left = limit > used ? limit - used : 0;
				if (left < r->commit) {
					r->commit = left;
					r->commit_why = "what the commit limit leaves (vm.overcommit_memory=2)";
				}
			}
		}
	}
	/* RLIMIT_DATA (committed private memory) and RLIMIT_AS (address space),
	 * against what the process has already.  Of RLIMIT_AS the reservation
	 * takes at most half: thread stacks and libraries need the rest. */
	struct rlimit data = {RLIM_INFINITY, RLIM_INFINITY}, as = {RLIM_INFINITY, RLIM_INFINITY};
	rt_os_getrlimit(RLIMIT_DATA, &data);
	rt_os_getrlimit(RLIMIT_AS, &as);
	if ((data.rlim_cur == RLIM_INFINITY && as.rlim_cur == RLIM_INFINITY) ||
	    rt_os_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return;
	size_t vm_data = proc_value(buf, "VmData:", 1024), vm_size = proc_value(buf, "VmSize:", 1024);
	if (data.rlim_cur != RLIM_INFINITY && vm_data != SIZE_MAX) {
		size_t left = data.rlim_cur > vm_data ? (size_t)data.rlim_cur - vm_data : 0;
		if (left < r->commit) {
			r->commit = left;
			r->commit_why = "what RLIMIT_DATA leaves";
		}
	}
	if (as.rlim_cur != RLIM_INFINITY && vm_size != SIZE_MAX) {
		r->reserve = as.rlim_cur > vm_size ? ((size_t)as.rlim_cur - vm_size) / 2 : 0;
		r->reserve_why = "half of what RLIMIT_AS leaves";
	}
}

/* Address space of the reservation for a maximum of max bytes: the slots
 * and their descriptors (max <= RT_POOL_CEIL: no overflow). */
static size_t reserve_bytes(size_t max, unsigned n)
{
	size_t pages = rt_pool_slot_pages(max, n) * n;
	return (pages << RT_PAGE_SHIFT) + rt_page_round(pages * sizeof(struct rt_page));
}

/* Memory committed for a pool of `pool` bytes: the pages and descriptors. */
static size_t commit_bytes(size_t pool)
{
	return rt_page_round(pool) + rt_page_round((pool >> RT_PAGE_SHIFT) * sizeof(struct rt_page));
}

static bool fits(const struct room *r, unsigned n, size_t pool)
{
	return commit_bytes(pool) <= r->commit && reserve_bytes(pool, n) <= r->reserve;
}

/* The largest pool, a whole number of pages per arena and at most `want`,
 * that the room allows; 0 if not even one page per arena. */
static size_t largest_fit(const struct room *r, unsigned n, size_t want)
{
	size_t unit = (size_t)n << RT_PAGE_SHIFT, lo = 0, hi = want / unit;
	while (lo < hi) { /* bound: 64 halvings (binary search: fits is monotonic) */
		size_t mid = lo + (hi - lo + 1) / 2;
		if (fits(r, n, mid * unit))
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo * unit;
}

/* The variable that set an option, if the user set it (and it was taken),
 * with its text; NULL when the option is a default or from the config. */
static const char *option_source(const char *name, size_t value, bool in_config, const char **text)
{
	const char *s = in_config ? NULL : rt_options_env(name);
	size_t v;
	if (!s || !rt_parse_size(s, &v) || v != value)
		return NULL;
	*text = s;
	return name;
}

/* Before anything is reserved: the pool must fit the memory the machine has
 * (pre-faulting more calls in the OOM killer) and the limits of the process,
 * the reservation the address space RLIMIT_AS leaves.  A size from the
 * environment that does not fit is refused with one line naming the variable
 * and the limit, and the default (or what fits) is used; a size from the
 * config is not silently lowered: ENOMEM. */
int rt_pool_fit(const struct rtalloc_config *cfg, unsigned n)
{
	struct rt_options *o = &rt_g.opt;
	struct room r;
	room_of(&r);
	const char *size_text = NULL, *max_text = NULL;
	const char *size_var = option_source("RTALLOC_POOL_SIZE", o->pool_size, cfg && cfg->pool_size, &size_text);
	const char *max_var = option_source("RTALLOC_POOL_MAX", o->pool_max, cfg && cfg->pool_max, &max_text);
	if (o->pool_size > RT_POOL_CEIL || o->pool_max > RT_POOL_CEIL)
		return ENOMEM; /* only from a config: the environment's are refused earlier */
	if (!fits(&r, n, o->pool_size)) {
		if (cfg && cfg->pool_size)
			return ENOMEM;
		const char *why = commit_bytes(o->pool_size) > r.commit ? r.commit_why : r.reserve_why;
		size_t limit = commit_bytes(o->pool_size) > r.commit ? r.commit : r.reserve;
		size_t use = largest_fit(&r, n, (size_t)64 << 20); /* the default, or what fits */
		if (use < ((size_t)256 << 10))
			use = (size_t)256 << 10; /* the smallest pool: let setting it up say why not */
		if (size_var)
			rt_say("%s=\"%s\" does not fit %s (%zu KiB); using a pool of %zu KiB", size_var, size_text,
			       why, limit >> 10, use >> 10);
		else
			rt_say("the default pool (%zu KiB) does not fit %s (%zu KiB); using a pool of %zu KiB",
			       o->pool_size >> 10, why, limit >> 10, use >> 10);
		o->pool_size = use;
		if (!max_var && !(cfg && cfg->pool_max))
			o->pool_max = rt_options_default_max(use);
		if (o->pool_max < use)
			o->pool_max = use;
	}
	if (reserve_bytes(o->pool_max, n) > r.reserve) {
		/* Growth room: the largest slots that fit, never below the pool. */
		if (cfg && cfg->pool_max)
			return ENOMEM;
		size_t max = o->pool_max;
		while (max > o->pool_size && reserve_bytes(max, n) > r.reserve) /* bound: 64 halvings */
			max = (rt_pool_slot_pages(max, n) >> 1) * n << RT_PAGE_SHIFT;
		if (max < o->pool_size)
			max = o->pool_size;
		if (max_var)
			rt_say("%s=\"%s\" does not fit %s (%zu KiB); the pool may grow to %zu KiB", max_var,
			       max_text, r.reserve_why, r.reserve >> 10, max >> 10);
		o->pool_max = max;
	}
	return 0;
}

/* KiB of a "Key:   123 kB" field of /proc/self/status; 0 if unknown. */
size_t rt_pool_status_kib(const char *key)
{
	char buf[4096];
	if (rt_os_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return 0;
	size_t v = proc_value(buf, key, 1);
	return v == SIZE_MAX ? 0 : v;
}

/* As much room as the pool could ever be committed (what the memory there
 * is allows now), within the address space RLIMIT_AS leaves it; one arena
 * only (several arenas' slots are laid out side by side). */
size_t rt_pool_growth_room(size_t span, unsigned n)
{
	if (n != 1)
		return 0;
	struct room r;
	room_of(&r);
	size_t total = r.commit & ~(RT_PAGE_SIZE - 1);
	if (total > RT_POOL_CEIL)
		total = RT_POOL_CEIL;
	if (total <= span)
		return 0;
	size_t used = span + rt_pool_desc_bytes(span);
	if (r.reserve != SIZE_MAX && (r.reserve <= used || total + rt_pool_desc_bytes(total) > r.reserve))
		total = r.reserve > used ? (r.reserve - rt_pool_desc_bytes(r.reserve)) & ~(RT_PAGE_SIZE - 1) : 0;
	return total > span ? total - span : 0;
}

/* Can the pool grow to `size` bytes: the memory the machine has (the checks
 * of rt_pool_fit, for what is added), and, beyond RTALLOC_POOL_MAX, the address
 * space the reservation would add? */
bool rt_pool_growth_fits(size_t size)
{
	if (size > RT_POOL_CEIL)
		return false;
	struct room r;
	room_of(&r);
	size_t span = rt_g.span, nspan = rt_page_round(size);
	if (nspan > span && (nspan - span) + rt_pool_desc_bytes(nspan) - rt_pool_desc_bytes(span) > r.reserve)
		return false;
	return commit_bytes(size - rt_g.pool_bytes) <= r.commit;
}
