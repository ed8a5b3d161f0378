/* SPDX-License-Identifier: MIT */
/*
 * faults.c - RTALLOC_FAULTS=locate: the code and data address of every page
 * fault a thread takes inside its real-time sections, counted by place in
 * the statistics region (stats.h, struct rt_stats_faults).
 *
 * How.  Each thread that prepares (rtalloc_thread_prepare) or first enters a
 * section opens one perf event of its own: the software page-fault event,
 * one sample per fault (code address, thread, data address), user faults
 * only (exclude_kernel: what kernel.perf_event_paranoid = 2 lets an
 * unprivileged process open on its own threads).  Its ring (1 + RING_PAGES
 * pages) is mapped and every page of it touched before the event is enabled,
 * so reading it never faults.  The event stays on: turning it on and off
 * per section would be two ioctl system calls in every section.  Instead
 *   rtalloc_rt_begin  forgets what the ring holds (data_tail = data_head:
 *                     two loads and a store, no system call);
 *   rtalloc_rt_end    reads the samples written since (those of the
 *                     section), after the section, before returning: per
 *                     sample one probe sequence in the table (at most
 *                     PROBES places, a compare-and-swap and atomic adds);
 *                     again no system call.
 * Costs: outside sections, the kernel writes a sample per fault of the
 * thread (a ring full between sections drops them: nothing is lost that
 * counts); in a section, nothing but the kernel's sample write per fault
 * (which is taken anyway); at rtalloc_rt_end, the reading above, bounded by
 * the ring's capacity (RING_PAGES pages).  Faults of the section that left no
 * sample (taken in the kernel on behalf of a system call, the ring full, the
 * table full) are counted as unlocated: the section's getrusage count
 * minus the samples read.
 *
 * The kind of memory: the thread's own stack (its bounds, read when the
 * event is opened) and the pool are told at rtalloc_rt_end; everything else
 * is looked up in /proc/PID/maps by the reader (faults_sym.c), as are the
 * function names.
 *
 * Where perf_event_open is refused (perf_event_paranoid 3, a seccomp
 * filter, a container), one line says so, once, and the faults are only
 * counted, as without RTALLOC_FAULTS.
 *
 * The system calls (perf_event_open, mmap, ioctl, munmap, close) and the
 * thread's stack bounds go through os.h.
 */
#include <errno.h>
#include <string.h>
#include <linux/perf_event.h>

#include "faults.h"
#include "os.h"

/* Data pages per thread: a power of two (the kernel's rule), of the system's
 * page size.  With 4 KiB pages a ring holds 512 samples (32 bytes each): the
 * faults of one section beyond that are counted as unlocated.  Small, as
 * the kernel charges every ring to kernel.perf_event_mlock_kb (516 KiB per
 * user by default, then RLIMIT_MEMLOCK): 20 KiB a thread. */
#define RING_PAGES 4
#define SAMPLE_BYTES 32 /* header, ip, pid+tid, addr */
#define RING_MAX ((size_t)16 << 20) /* no ring larger: a page size beyond reason */
#define PROBES 16 /* places tried per sample before it counts as unlocated */

enum { FT_NEW = 0, FT_OPEN, FT_NONE };

/* The calling thread's event.  Zero: not opened yet. */
struct fthread {
	uint8_t state;  /* FT_* */
	int fd;
	struct perf_event_mmap_page *meta; /* the ring's first page */
	const unsigned char *data;         /* size bytes */
	size_t page, size;                 /* the system's page, the data's size (RING_PAGES pages) */
	uintptr_t stack_lo, stack_hi;      /* this thread's stack; 0, 0: the main thread's ([stack]) */
	int32_t tid;
};
static __thread struct fthread ft __attribute__((tls_model("initial-exec")));

static bool unavailable; /* perf_event_open was refused once: not tried again */
static bool said_no_ring; /* a ring could not be mapped (said once) */

static struct rt_stats_faults *table(void) { return rt_stats ? &rt_stats->faults : NULL; }

static bool on(void) { return rt_g.opt.faults && !unavailable && table(); }

void rt_faults_init(struct rt_stats_region *r)
{
	r->faults.version = RT_FAULTS_VERSION;
	r->faults.state = rt_g.opt.faults ? RT_FAULTS_ON : RT_FAULTS_OFF;
}

/* Why perf events are refused, once per process. */
static void refused(int err)
{
	struct rt_stats_faults *t = table();
	if (__atomic_exchange_n(&unavailable, true, __ATOMIC_RELAXED))
		return;
	if (t) {
		__atomic_store_n(&t->error, err, __ATOMIC_RELAXED);
		__atomic_store_n(&t->state, RT_FAULTS_UNAVAILABLE, __ATOMIC_RELEASE);
	}
	char par[16] = "";
	long n = rt_os_read_file("/proc/sys/kernel/perf_event_paranoid", par, sizeof(par));
	for (long i = 0; i < n; i++) /* bound: 16 */
		if (par[i] == '\n')
			par[i] = '\0';
	rt_say("RTALLOC_FAULTS=locate: perf events are unavailable (perf_event_open: %s; "
	       "kernel.perf_event_paranoid is %s; a seccomp filter or a container may refuse them too): "
	       "page faults in real-time sections are counted, not located",
	       strerrorname_np(err) ? strerrorname_np(err) : "error", n > 0 ? par : "unknown");
}

void rt_faults_thread_open(void)
{
	if (ft.state != FT_NEW || !on())
		return;
	ft.state = FT_NONE;
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_SOFTWARE;
	a.size = sizeof(a);
	a.config = PERF_COUNT_SW_PAGE_FAULTS;
	a.sample_period = 1;
	a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_ADDR;
	a.disabled = 1; /* until the ring is faulted in */
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	a.watermark = 1; /* nobody polls: wake nobody */
	size_t ps = rt_os_page_size();
	ft.page = rt_pow2(ps) ? ps : RT_PAGE_SIZE;
	ft.size = RING_PAGES * ft.page;
	if (ft.size > RING_MAX)
		return;
	a.wakeup_watermark = (uint32_t)ft.size;
	int fd = rt_os_perf_open(&a); /* this thread, any CPU */
	if (fd < 0) {
		refused(errno);
		return;
	}
	size_t len = ft.page + ft.size;
	void *p = rt_os_map_shared(fd, len);
	if (!p) { /* the locked-memory budget of perf rings, most likely */
		int e = errno;
		rt_os_close(fd);
		__atomic_fetch_add(&table()->no_ring, 1, __ATOMIC_RELAXED);
		if (!__atomic_exchange_n(&said_no_ring, true, __ATOMIC_RELAXED))
			rt_say("RTALLOC_FAULTS=locate: a thread's perf ring (%zu KiB) cannot be mapped "
			       "(mmap: %s; a user's rings share kernel.perf_event_mlock_kb per CPU, "
			       "then RLIMIT_MEMLOCK): the faults of such threads are counted, not located",
			       len >> 10, strerrorname_np(e) ? strerrorname_np(e) : "error");
		return;
	}
	ft.meta = p;
	ft.data = (const unsigned char *)p + ft.page;
	/* Every page in now: the meta page written (data_tail), the data read. */
	__atomic_store_n(&ft.meta->data_tail, __atomic_load_n(&ft.meta->data_head, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	for (size_t off = 0; off < ft.size; off += ft.page) /* bound: RING_PAGES */
		(void)*(volatile const unsigned char *)(ft.data + off);
	ft.tid = (int32_t)rt_os_gettid();
	ft.stack_lo = ft.stack_hi = 0;
	void *lo;
	size_t sz;
	if (ft.tid != rt_os_getpid() && rt_os_thread_stack(&lo, &sz) == 0) {
		ft.stack_lo = (uintptr_t)lo;
		ft.stack_hi = (uintptr_t)lo + sz;
	}
	ft.fd = fd;
	if (rt_os_perf_enable(fd) != 0) {
		int e = errno;
		rt_os_unmap(p, len);
		rt_os_close(fd);
		refused(e);
		return;
	}
	ft.state = FT_OPEN;
	__atomic_fetch_add(&table()->threads, 1, __ATOMIC_RELAXED);
}

void rt_faults_section_begin(void)
{
	if (ft.state != FT_OPEN)
		return;
	__atomic_store_n(&ft.meta->data_tail, __atomic_load_n(&ft.meta->data_head, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
}

/* n bytes of the ring from position pos (it wraps). */
static void ring_copy(uint64_t pos, void *to, size_t n)
{
	unsigned char *d = to;
	for (size_t i = 0; i < n; i++) /* bound: SAMPLE_BYTES */
		d[i] = ft.data[(pos + i) & (ft.size - 1)];
}

static unsigned place_hash(uint64_t key)
{
	return (unsigned)((key * 0x9e3779b97f4a7c15ULL) >> 56); /* 8 bits: RT_FAULTS_PLACES */
}
_Static_assert(RT_FAULTS_PLACES == 256, "place_hash gives 8 bits");

/* One fault into the table: false when PROBES places were all taken. */
static bool count_place(struct rt_stats_faults *t, uint64_t ip, uint64_t addr)
{
	if (!ip || ip > RT_FAULTS_IP_MASK)
		return false;
	unsigned kind = RT_FK_MAPPED;
	if (addr - ft.stack_lo < ft.stack_hi - ft.stack_lo)
		kind = RT_FK_STACK;
	else if (addr - rt_g.base < rt_g.span)
		kind = RT_FK_POOL;
	uint64_t key = ip | (uint64_t)kind << RT_FAULTS_KIND_SHIFT;
	if (kind == RT_FK_MAPPED)
		key |= ((addr >> 24) & 0xff) << 48;
	unsigned h = place_hash(key);
	for (unsigned i = 0; i < PROBES; i++) { /* bound: PROBES */
		struct rt_fault_place *p = &t->places[(h + i) % RT_FAULTS_PLACES];
		uint64_t k = __atomic_load_n(&p->key, __ATOMIC_ACQUIRE);
		if (k == 0) {
			if (__atomic_compare_exchange_n(&p->key, &k, key, false, __ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE)) {
				__atomic_store_n(&p->addr, addr, __ATOMIC_RELAXED);
				__atomic_store_n(&p->tid, (uint64_t)(uint32_t)ft.tid, __ATOMIC_RELAXED);
				k = key;
			}
		}
		if (k == key) {
			__atomic_fetch_add(&p->count, 1, __ATOMIC_RELAXED);
			return true;
		}
	}
	return false;
}

void rt_faults_section_end(uint64_t faults)
{
	struct rt_stats_faults *t = table();
	if (!t || !rt_g.opt.faults)
		return;
	if (ft.state != FT_OPEN) { /* no event or no ring for this thread */
		if (faults)
			__atomic_fetch_add(&t->unlocated, faults, __ATOMIC_RELAXED);
		return;
	}
	struct perf_event_mmap_page *m = ft.meta;
	uint64_t head = __atomic_load_n(&m->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = m->data_tail;
	uint64_t located = 0, unplaced = 0;
	if (head - tail > ft.size) /* not what the kernel writes: read nothing */
		tail = head;
	for (size_t n = 0; n < ft.size / 8 && head - tail >= sizeof(struct perf_event_header);
	     n++) { /* bound: the ring's size / 8 records (a record has 8 bytes at least) */
		struct perf_event_header h;
		ring_copy(tail, &h, sizeof(h));
		if (h.size < sizeof(h) || h.size > head - tail)
			break;
		if (h.type == PERF_RECORD_SAMPLE && h.size >= SAMPLE_BYTES) {
			uint64_t s[4]; /* header, ip, pid|tid, addr */
			ring_copy(tail, s, sizeof(s));
			if (count_place(t, s[1], s[3]))
				located++;
			else
				unplaced++;
		}
		tail += h.size;
	}
	__atomic_store_n(&m->data_tail, head, __ATOMIC_RELEASE);
	if (located)
		__atomic_fetch_add(&t->located, located, __ATOMIC_RELAXED);
	/* getrusage counts a fault once, the event at each attempt: never below 0 */
	uint64_t missed = faults > located ? faults - located : 0;
	if (missed < unplaced)
		missed = unplaced;
	if (missed)
		__atomic_fetch_add(&t->unlocated, missed, __ATOMIC_RELAXED);
}

void rt_faults_thread_exit(void)
{
	if (ft.state == FT_OPEN) {
		rt_os_unmap(ft.meta, ft.page + ft.size);
		rt_os_close(ft.fd);
	}
	ft.state = FT_NONE;
}

/* The child of fork: the ring is not mapped there (the kernel does not copy
 * perf mappings) and the event counts the parent's thread.  The thread opens
 * its own at its next section. */
void rt_faults_fork_child(void)
{
	if (ft.state == FT_OPEN)
		rt_os_close(ft.fd);
	ft.state = FT_NEW;
	ft.meta = NULL;
	ft.data = NULL;
}

/* ---- the exit report ---- */

#define REPORT_ROWS 8 /* places in the report line */

/* Append to buf (len bytes, at used) only what fits whole, keeping `keep`
 * bytes free: a line cut short is still JSON. */
static void append(char *buf, size_t len, size_t *at, size_t keep, const char *f, ...)
{
	char tmp[320];
	va_list ap;
	va_start(ap, f);
	size_t n = rt_vfmt(tmp, sizeof(tmp), f, ap);
	va_end(ap);
	if (n >= sizeof(tmp) || *at + n + keep >= len)
		return;
	memcpy(buf + *at, tmp, n + 1);
	*at += n;
}

size_t rt_faults_report_json(char *buf, size_t len)
{
	struct rt_stats_faults *t = table();
	size_t at = 0;
	if (!rt_g.opt.faults || !t || len == 0)
		return 0;
	buf[0] = '\0';
	if (__atomic_load_n(&t->state, __ATOMIC_ACQUIRE) == RT_FAULTS_UNAVAILABLE) {
		int e = __atomic_load_n(&t->error, __ATOMIC_RELAXED);
		append(buf, len, &at, 0, ",\"rt_faults_located\":\"unavailable (%s)\"",
		       strerrorname_np(e) ? strerrorname_np(e) : "error");
		return at;
	}
	/* Mapped for the report only: the library's static data stay small
	 * (RLIMIT_DATA counts them in every process that loads it). */
	struct scratch {
		struct rt_fault_place copy[RT_FAULTS_PLACES];
		struct rt_fault_row rows[RT_FAULT_ROWS];
	} *w = rt_os_map(sizeof(struct scratch));
	if (!w)
		return 0;
	struct rt_fault_place *copy = w->copy;
	struct rt_fault_row *rows = w->rows;
	for (unsigned i = 0; i < RT_FAULTS_PLACES; i++) { /* bound: RT_FAULTS_PLACES */
		copy[i].key = __atomic_load_n(&t->places[i].key, __ATOMIC_ACQUIRE);
		copy[i].addr = __atomic_load_n(&t->places[i].addr, __ATOMIC_RELAXED);
		copy[i].count = __atomic_load_n(&t->places[i].count, __ATOMIC_RELAXED);
		copy[i].tid = __atomic_load_n(&t->places[i].tid, __ATOMIC_RELAXED);
	}
	unsigned n = rt_fault_rows(0, copy, RT_FAULTS_PLACES, rows);
	append(buf, len, &at, 2, ",\"rt_faults_located\":%llu,\"rt_faults_unlocated\":%llu,\"rt_fault_places\":[",
	       (unsigned long long)__atomic_load_n(&t->located, __ATOMIC_RELAXED),
	       (unsigned long long)__atomic_load_n(&t->unlocated, __ATOMIC_RELAXED));
	for (unsigned i = 0; at && i < n && i < REPORT_ROWS; i++) /* bound: REPORT_ROWS */
		append(buf, len, &at, 2, "%s{\"function\":\"%s\",\"kind\":\"%s\",\"count\":%llu}",
		       i ? "," : "", rows[i].function, rows[i].kind, (unsigned long long)rows[i].count);
	if (at)
		append(buf, len, &at, 0, "]");
	rt_os_unmap(w, sizeof(*w));
	return at;
}
