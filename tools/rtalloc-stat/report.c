/* SPDX-License-Identifier: MIT */
/*
 * report.c - rtalloc-stat PID: the report of one snapshot, text and JSON.
 */
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "rs.h"

/* ==== the snapshot report ================================================================ */

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
	for (unsigned i = 0; i < rep->s->f.nlive && rep->nrows < max; i++) {
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


/* The memory-lock verdict: NULL when the pool is locked, else the warning. */
static const char *lock_warning(const struct snap *s, long long vmlck_kib, char *buf, size_t len)
{
	uint64_t pool_kib = s->f.pool_bytes >> 10;
	if (vmlck_kib < 0) {
		if (s->f.flags & RT_STATS_F_LOCKED)
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
		 (s->f.flags & RT_STATS_F_LOCKED) ? ", though mlockall succeeded" : "");
	return buf;
}

static void print_ago(uint64_t count, uint64_t when_ns, uint64_t now, const char *rel)
{
	if (count && when_ns && now >= when_ns)
		printf(" (last %.3f s %s)", ns_to_s(now - when_ns), rel);
}

void text_counters_line(const struct rt_tcounters *c)
{
	printf("  allocations %llu, frees %llu; slow path: %llu allocations, %llu frees; refills %llu, "
	       "flushes %llu\n",
	       (unsigned long long)c->mallocs, (unsigned long long)c->frees,
	       (unsigned long long)c->slow_mallocs, (unsigned long long)c->slow_frees,
	       (unsigned long long)c->refills, (unsigned long long)c->flushes);
	printf("  bytes allocated %llu KiB, freed %llu KiB (blocks' usable sizes)\n",
	       (unsigned long long)c->bytes_allocated >> 10, (unsigned long long)c->bytes_freed >> 10);
	printf("  lock waits %llu (longest %llu ns); in real-time sections %llu (longest %llu ns)\n",
	       (unsigned long long)c->lock_waits, (unsigned long long)c->lock_wait_max_ns,
	       (unsigned long long)c->sect_lock_waits, (unsigned long long)c->sect_lock_wait_max_ns);
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

void text_pool(const struct snap *s)
{
	printf("\nPool (KiB)\n");
	printf("  %5s %4s %10s %10s %10s %10s %10s\n", "ARENA", "NODE", "POOL", "MAX", "IN-USE", "FREE",
	       "HIGH-WATER");
	for (unsigned i = 0; i < s->f.narenas; i++) {
		const struct rt_stats_arena *a = &s->f.arenas[i];
		char node[16];
		if (a->node < 0)
			snprintf(node, sizeof(node), "-");
		else
			snprintf(node, sizeof(node), "%d", (int)a->node);
		printf("  %5u %4s %10llu %10llu %10llu %10llu %10llu\n", i, node,
		       (unsigned long long)a->pool_bytes >> 10, (unsigned long long)a->max_bytes >> 10,
		       (unsigned long long)rt_sr_sub0(a->pool_bytes, a->free_bytes) >> 10,
		       (unsigned long long)a->free_bytes >> 10,
		       (unsigned long long)rt_sr_sub0(a->pool_bytes, a->min_free_bytes) >> 10);
	}
	if (s->f.narenas > 1)
		printf("  %5s %4s %10llu %10llu %10llu %10llu %10llu\n", "total", "",
		       (unsigned long long)s->f.pool_bytes >> 10, (unsigned long long)s->f.max_bytes >> 10,
		       (unsigned long long)rt_sr_in_use(&s->f) >> 10, (unsigned long long)s->f.free_bytes >> 10,
		       (unsigned long long)rt_sr_high_water(&s->f) >> 10);
	printf("\nSize classes (16..2K: pages; 4K..32K and huge: blocks)\n ");
	bool any = false;
	for (unsigned c = 1; c < RT_STATS_CLASSES; c++) {
		if (!s->f.class_units[c])
			continue;
		printf(" %s:%llu", rt_sr_class_name(c), (unsigned long long)s->f.class_units[c]);
		any = true;
	}
	printf("%s\n", any ? "" : " (none)");
	text_heaps(s);
}

void text_events(const struct snap *s, uint64_t ref_ns, const char *rel)
{
	printf("\nNon-real-time events\n");
	printf("  pool growths        %llu", (unsigned long long)s->f.grows);
	print_ago(s->f.grows, s->f.last_grow_ns, ref_ns, rel);
	printf("\n  failed allocations  %llu", (unsigned long long)s->f.total.failed);
	print_ago(s->f.total.failed, s->f.last_failure_ns, ref_ns, rel);
	printf("\n");
}

void report_text(const struct target *t, const struct report *rep)
{
	const struct snap *s = rep->s;
	uint64_t now = s->taken_ns;
	printf("process %d (%s): librtalloc statistics from %s\n", (int)t->pid, esc(t->comm), esc(t->region.path));
	printf("  initialised %.3f s ago, in %.3f ms; %u arena%s; memory %s\n",
	       ns_to_s(rt_sr_sub0(now, s->f.init_ns)), (double)s->f.init_duration_ns / 1e6, s->f.narenas,
	       s->f.narenas == 1 ? "" : "s", (s->f.flags & RT_STATS_F_LOCKED) ? "locked (mlockall)" : "NOT locked");
	if (s->f.torn)
		printf("  note: the process kept writing some figures while they were read; they may be off by "
		       "one update\n");

	printf("\nPage faults                       %10s %10s\n", "MINOR", "MAJOR");
	if (rep->have_proc) {
		printf("  process, total                  %10llu %10llu\n", (unsigned long long)rep->proc.minflt,
		       (unsigned long long)rep->proc.majflt);
	}
	printf("  until initialisation ended      %10llu %10llu\n", (unsigned long long)s->f.init_minflt,
	       (unsigned long long)s->f.init_majflt);
	if (rep->have_proc)
		printf("  since initialisation            %10llu %10llu\n",
		       (unsigned long long)rt_sr_sub0(rep->proc.minflt, s->f.init_minflt),
		       (unsigned long long)rt_sr_sub0(rep->proc.majflt, s->f.init_majflt));
	printf("  in real-time sections           %10llu %10llu   (%llu sections ended, %llu slow-path "
	       "entries)\n",
	       (unsigned long long)s->f.total.sect_minflt, (unsigned long long)s->f.total.sect_majflt,
	       (unsigned long long)s->f.total.sections, (unsigned long long)s->f.total.sect_slow);
	text_fault_places(t->pid, s);

	unsigned with_slot = 0;
	for (unsigned i = 0; i < rep->nrows; i++)
		with_slot += rep->rows[i].slot != NULL;
	printf("\nThreads: %u live (%u allocated through librtalloc), %llu exited", rep->nrows, with_slot,
	       (unsigned long long)s->f.threads_exited);
	if (s->f.threads_unslotted)
		printf(", %llu without a statistics slot", (unsigned long long)s->f.threads_unslotted);
	printf("\n  %7s %-16s %8s %6s %9s %9s %7s %7s %5s %10s %10s %10s %10s %7s %11s %8s %11s\n", "TID",
	       "NAME", "MINFLT", "MAJFLT", "RT-MINFLT", "RT-MAJFLT", "RT-SLOW", "RT-SECT", "IN-RT", "ALLOCS",
	       "FREES", "ALLOC-KiB", "FREED-KiB", "WAITS", "WAIT-MAX-ns", "RT-WAITS", "RT-WAIT-MAX");
	for (unsigned i = 0; i < rep->nrows; i++) {
		const struct thread_row *row = &rep->rows[i];
		char minf[24] = "-", majf[24] = "-";
		if (row->have_proc) {
			snprintf(minf, sizeof(minf), "%llu", (unsigned long long)row->minflt);
			snprintf(majf, sizeof(majf), "%llu", (unsigned long long)row->majflt);
		}
		printf("  %7d %-16s %8s %6s", (int)row->tid, esc(row->name), minf, majf);
		if (row->slot) {
			const struct rt_tcounters *c = &row->slot->c;
			printf(" %9llu %9llu %7llu %7llu %5s %10llu %10llu %10llu %10llu %7llu %11llu %8llu %11llu\n",
			       (unsigned long long)c->sect_minflt, (unsigned long long)c->sect_majflt,
			       (unsigned long long)c->sect_slow, (unsigned long long)c->sections,
			       row->slot->in_section ? "yes" : "no", (unsigned long long)c->mallocs,
			       (unsigned long long)c->frees, (unsigned long long)c->bytes_allocated >> 10,
			       (unsigned long long)c->bytes_freed >> 10, (unsigned long long)c->lock_waits,
			       (unsigned long long)c->lock_wait_max_ns, (unsigned long long)c->sect_lock_waits,
			       (unsigned long long)c->sect_lock_wait_max_ns);
		} else {
			printf(" %9s %9s %7s %7s %5s %10s %10s %10s %10s %7s %11s %8s %11s\n", "-", "-", "-", "-", "-",
			       "-", "-", "-", "-", "-", "-", "-", "-");
		}
	}
	if (s->f.threads_exited) {
		const struct rt_tcounters *c = &s->f.exited;
		printf("  %7s %-16s %8s %6s %9llu %9llu %7llu %7llu %5s %10llu %10llu %10llu %10llu %7llu %11llu %8llu "
		       "%11llu\n",
		       "-", "(exited)", "-", "-", (unsigned long long)c->sect_minflt, (unsigned long long)c->sect_majflt,
		       (unsigned long long)c->sect_slow, (unsigned long long)c->sections, "-",
		       (unsigned long long)c->mallocs, (unsigned long long)c->frees,
		       (unsigned long long)c->bytes_allocated >> 10, (unsigned long long)c->bytes_freed >> 10,
		       (unsigned long long)c->lock_waits, (unsigned long long)c->lock_wait_max_ns,
		       (unsigned long long)c->sect_lock_waits, (unsigned long long)c->sect_lock_wait_max_ns);
	}

	printf("\nAllocator (each thread's counts as of its last slow path or real-time section end)\n");
	text_counters_line(&s->f.total);
	printf("  large blocks: %llu allocated, %llu freed\n", (unsigned long long)s->f.huge_allocs,
	       (unsigned long long)s->f.huge_frees);
	text_pool(s);
	text_events(s, now, "ago");

	printf("\nMemory locking\n");
	if (rep->vmlck_kib >= 0) { /* what else is locked: stacks, libraries, BSS (RTALLOC_MLOCK) */
		long long pool_kib = (long long)(s->f.pool_bytes >> 10), other = rep->vmlck_kib - pool_kib;
		printf("  VmLck %lld KiB, pool %lld KiB, everything else %lld KiB\n", rep->vmlck_kib, pool_kib,
		       other > 0 ? other : 0);
	}
	char wbuf[512];
	const char *w = lock_warning(s, rep->vmlck_kib, wbuf, sizeof(wbuf));
	printf("  %s%s\n", w ? "warning: " : "", w ? w : "the pool is locked in memory");
}

void j_pool(const struct snap *s)
{
	j_open("pool", '{');
	j_u64("pool_bytes", s->f.pool_bytes);
	j_u64("max_bytes", s->f.max_bytes);
	j_u64("in_use_bytes", rt_sr_in_use(&s->f));
	j_u64("free_bytes", s->f.free_bytes);
	j_u64("high_water_bytes", rt_sr_high_water(&s->f));
	j_u64("min_free_bytes", s->f.min_free_bytes);
	j_u64("configured_pool_size", s->f.pool_size);
	j_u64("configured_pool_max", s->f.pool_max);
	j_open("arenas", '[');
	for (unsigned i = 0; i < s->f.narenas; i++) {
		const struct rt_stats_arena *a = &s->f.arenas[i];
		j_open(NULL, '{');
		j_u64("arena", i);
		if (a->node < 0)
			j_null("node");
		else
			j_i64("node", a->node);
		j_u64("pool_bytes", a->pool_bytes);
		j_u64("max_bytes", a->max_bytes);
		j_u64("in_use_bytes", rt_sr_sub0(a->pool_bytes, a->free_bytes));
		j_u64("free_bytes", a->free_bytes);
		j_u64("high_water_bytes", rt_sr_sub0(a->pool_bytes, a->min_free_bytes));
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
		j_u64(rt_sr_class_name(c), s->f.class_units[c]);
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

/* The "rt" object: faults and slow paths inside real-time sections (the
 * report and -- COMMAND's exit report both write it). */
void j_rt_faults(const struct snap *s)
{
	j_open("rt", '{');
	j_u64("minor", s->f.total.sect_minflt);
	j_u64("major", s->f.total.sect_majflt);
	j_u64("slow", s->f.total.sect_slow);
	j_u64("sections", s->f.total.sections);
	j_close('}');
}

/* The "locks" object: every thread's waits for an arena's or a heap's lock,
 * live and exited, and the longest (the report and -- COMMAND's). */
void j_lock_waits(const struct snap *s)
{
	j_open("locks", '{');
	j_u64("lock_waits", s->f.total.lock_waits);
	j_u64("lock_wait_max_ns", s->f.total.lock_wait_max_ns);
	j_u64("rt_lock_waits", s->f.total.sect_lock_waits);
	j_u64("rt_lock_wait_max_ns", s->f.total.sect_lock_wait_max_ns);
	j_close('}');
}

void j_events(const struct snap *s, uint64_t ref_ns, const char *ago_key_grow, const char *ago_key_fail)
{
	j_open("events", '{');
	j_u64("grows", s->f.grows);
	if (s->f.grows && s->f.last_grow_ns && ref_ns >= s->f.last_grow_ns)
		j_dbl(ago_key_grow, ns_to_s(ref_ns - s->f.last_grow_ns));
	else
		j_null(ago_key_grow);
	j_u64("failed_allocs", s->f.total.failed);
	if (s->f.total.failed && s->f.last_failure_ns && ref_ns >= s->f.last_failure_ns)
		j_dbl(ago_key_fail, ns_to_s(ref_ns - s->f.last_failure_ns));
	else
		j_null(ago_key_fail);
	j_close('}');
}

void report_json(const struct target *t, const struct report *rep)
{
	const struct snap *s = rep->s;
	j_begin();
	j_u64("pid", (uint64_t)t->pid);
	j_str("comm", t->comm);
	j_str("region", t->region.path);
	j_u64("region_version", RT_STATS_VERSION);
	j_bool("locked", s->f.flags & RT_STATS_F_LOCKED);
	j_bool("user_memory", s->f.flags & RT_STATS_F_USER_MEMORY);
	j_bool("consistent", !s->f.torn);
	j_dbl("since_init_s", ns_to_s(rt_sr_sub0(s->taken_ns, s->f.init_ns)));
	j_u64("init_duration_ns", s->f.init_duration_ns);
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
	j_u64("minor", s->f.init_minflt);
	j_u64("major", s->f.init_majflt);
	j_close('}');
	if (rep->have_proc) {
		j_open("since_init", '{');
		j_u64("minor", rt_sr_sub0(rep->proc.minflt, s->f.init_minflt));
		j_u64("major", rt_sr_sub0(rep->proc.majflt, s->f.init_majflt));
		j_close('}');
	} else {
		j_null("since_init");
	}
	j_rt_faults(s);
	j_fault_places(t->pid, s);
	j_close('}');
	j_lock_waits(s);
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
			j_bool("in_rt", row->slot->in_section);
			j_counters("counters", &row->slot->c);
		} else {
			j_null("in_rt");
			j_null("counters");
		}
		j_close('}');
	}
	j_close(']');
	j_u64("threads_exited", s->f.threads_exited);
	j_u64("threads_unslotted", s->f.threads_unslotted);
	j_counters("exited", &s->f.exited);
	j_counters("totals", &s->f.total);
	j_pool(s);
	j_events(s, s->taken_ns, "last_grow_ago_s", "last_failure_ago_s");
	j_open("memory", '{');
	if (rep->vmlck_kib >= 0) {
		j_u64("vmlck_kib", (uint64_t)rep->vmlck_kib);
		uint64_t pool_kib = s->f.pool_bytes >> 10; /* VmLck beyond the pool: everything else */
		j_u64("other_locked_kib", (uint64_t)rep->vmlck_kib > pool_kib ? (uint64_t)rep->vmlck_kib - pool_kib : 0);
	} else {
		j_null("vmlck_kib");
		j_null("other_locked_kib");
	}
	j_u64("pool_kib", s->f.pool_bytes >> 10);
	char wbuf[512];
	const char *w = lock_warning(s, rep->vmlck_kib, wbuf, sizeof(wbuf));
	j_bool("pool_locked", w == NULL);
	j_str("warning", w);
	j_close('}');
	j_end();
}

static struct report rep_buf;

int cmd_snapshot(pid_t pid, bool json)
{
	struct target t;
	int rc = find_target(pid, &t);
	if (rc != EXIT_OK)
		return rc;
	enum region_status st = snap_read(&t.region, &snap_a);
	if (st != RG_OK) {
		snap_error(pid, t.comm, &t.region, &snap_a, st);
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

