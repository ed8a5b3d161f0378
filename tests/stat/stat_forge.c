/* SPDX-License-Identifier: MIT */
/*
 * stat_forge.c - a hostile process for rtalloc-stat (tests/stat, case
 * "hostile"): it does not run librtalloc but forges a statistics region that
 * passes every check of the reader (its own pid, file and mapping), filled
 * with hostile figures: counters at UINT64_MAX, INT64_MAX and 2^63, negative
 * tids and nodes, heap records with control bytes in their names.  Its
 * process name (comm) and a second thread's name carry terminal escape
 * sequences.
 *
 *   stat_forge [HEAP]   HEAP: also a shared heap record named HEAP whose
 *                       object /dev/shm/rtalloc-heap-HEAP holds a valid
 *                       record ("HEAP=empty": an object of size 0)
 *
 * Region in $XDG_RUNTIME_DIR (else /dev/shm).  Commands on stdin, answers on
 * stdout:
 *   inuse V    the pool's in-use bytes become V (arena 0's pool_bytes, the
 *              others 0, nothing free)  ->  "ok"
 *   version V  the header's layout version becomes V (an older librtalloc's
 *              region, say)  ->  "ok"
 *   exit       remove the region (and object) and exit
 * At start: "ready PID".
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "stats.h"

#define EVIL_COMM "\x1b]0;pwned\x07\x1b[2J"   /* retitle the terminal, clear it */
#define EVIL_THREAD "\x1b[31mred\x9b" "1m\r" /* a colour, an 8-bit CSI, a CR */

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void all_ones(struct rt_tcounters *c)
{
	memset(c, 0xff, sizeof(*c));
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pid_t named_tid;

static void *named(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, EVIL_THREAD);
	pthread_mutex_lock(&mu);
	named_tid = gettid();
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *heap = argc > 1 ? argv[1] : NULL;
	bool empty = false;
	char hname[64] = "";
	if (heap) {
		const char *eq = strchr(heap, '=');
		snprintf(hname, sizeof(hname), "%.*s", eq ? (int)(eq - heap) : (int)strlen(heap), heap);
		empty = eq && strcmp(eq + 1, "empty") == 0;
	}
	pthread_t th;
	if (pthread_create(&th, NULL, named, NULL) != 0)
		die("pthread_create");
	pthread_mutex_lock(&mu);
	while (!named_tid)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	prctl(PR_SET_NAME, EVIL_COMM);

	const char *dir = getenv("XDG_RUNTIME_DIR");
	char path[600], hpath[128] = "";
	snprintf(path, sizeof(path), "%s/rtalloc-%u-%d.stats", dir && *dir ? dir : "/dev/shm",
		 (unsigned)getuid(), (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, sizeof(struct rt_stats_region)) != 0)
		die(path);
	struct rt_stats_region *r =
		mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED)
		die("mmap");
	close(fd);

	r->version = RT_STATS_VERSION;
	r->size = sizeof(*r);
	r->pid = getpid();
	r->nslots = RT_STATS_SLOTS;
	r->narenas = RT_STATS_ARENAS;
	r->flags = RT_STATS_F_LOCKED | RT_STATS_F_EXPORTED;
	r->init_ns = UINT64_MAX;
	r->init_duration_ns = UINT64_MAX;
	r->init_minflt = UINT64_MAX;
	r->init_majflt = (uint64_t)INT64_MAX + 1;
	r->pool_size = r->pool_max = UINT64_MAX;
	all_ones(&r->exited);
	r->threads_exited = UINT64_MAX;
	r->threads_unslotted = UINT64_MAX;
	r->foreign_frees = UINT64_MAX;
	r->last_failure_ns = UINT64_MAX;
	for (int i = 0; i < RT_STATS_ARENAS; i++) {
		struct rt_stats_arena *a = &r->arenas[i];
		memset(&a->pool_bytes, 0xff, sizeof(*a) - offsetof(struct rt_stats_arena, pool_bytes));
		a->node = i == 0 ? INT32_MIN : -1;
		a->free_bytes = 0;
		a->min_free_bytes = 0;
	}
	/* slots: the two real threads, a dead one, a negative tid; all counters at the top */
	const int32_t tids[] = {getpid(), named_tid, INT32_MAX, INT32_MIN, -1};
	for (unsigned i = 0; i < sizeof(tids) / sizeof(tids[0]); i++) {
		r->slots[i].tid = tids[i];
		r->slots[i].in_section = UINT32_MAX;
		all_ones(&r->slots[i].c);
		if (i == 1) /* the sums must saturate, not wrap, whatever the order */
			memset(&r->slots[i].c, 0x80, sizeof(r->slots[i].c));
	}
	for (int i = 0; i < 4; i++) {
		struct rt_stats_heap *h = &r->heaps[i];
		h->flags = RT_STATS_HEAP_USED | (i == 1 ? RT_STATS_HEAP_PRIO : 0);
		memset(&h->size, 0xff, sizeof(*h) - offsetof(struct rt_stats_heap, size));
		snprintf(h->name, sizeof(h->name), "evil%d\x1b[2J\x07", i);
	}
	if (heap) { /* a shared heap: its figures come from its object */
		struct rt_stats_heap *h = &r->heaps[4];
		h->flags = RT_STATS_HEAP_USED | RT_STATS_HEAP_SHARED;
		snprintf(h->name, sizeof(h->name), "%s", hname);
		h->size = 1 << 20;
		snprintf(hpath, sizeof(hpath), "%s%s", RT_HEAP_SHM_PREFIX, hname);
		int hfd = shm_open(hpath, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (hfd < 0)
			die(hpath);
		if (!empty) {
			size_t len = 4096;
			if (ftruncate(hfd, (off_t)len) != 0)
				die("ftruncate");
			char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, hfd, 0);
			if (m == MAP_FAILED)
				die("mmap heap");
			struct rt_stats_heap *fig = (void *)(m + RT_HEAP_FIG_OFFSET);
			*fig = *h;
			fig->free = 12345 << 10;
			munmap(m, len);
		}
		close(hfd);
	}
	__atomic_store_n(&r->magic, RT_STATS_MAGIC, __ATOMIC_RELEASE);

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	char line[128];
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t v;
		if (sscanf(line, "inuse %" SCNu64, &v) == 1) {
			for (int i = 0; i < RT_STATS_ARENAS; i++) {
				struct rt_stats_arena *a = &r->arenas[i];
				rt_seq_write_begin(&a->seq);
				RT_SEQ_PUT(a->pool_bytes, i == 0 ? v : 0);
				RT_SEQ_PUT(a->free_bytes, 0);
				rt_seq_write_end(&a->seq);
			}
			printf("ok\n");
		} else if (sscanf(line, "version %" SCNu64, &v) == 1) {
			__atomic_store_n(&r->version, (uint32_t)v, __ATOMIC_RELAXED);
			printf("ok\n");
		} else if (strncmp(line, "exit", 4) == 0) {
			break;
		}
	}
	unlink(path);
	if (heap)
		shm_unlink(hpath);
	return 0;
}
