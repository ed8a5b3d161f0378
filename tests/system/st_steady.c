/* SPDX-License-Identifier: MIT */
/*
 * st_steady.c - the steady-state proof.  Run with LD_PRELOAD=librtalloc.so
 * RTALLOC_POOL_SIZE=16M:
 *
 *   st_steady THREADS [STEADY_OPS]        THREADS = 1 or 2
 *
 * After initialisation and a warm-up, a mixed workload (malloc, calloc,
 * realloc, posix_memalign, aligned_alloc and free of 8 B .. 64 KiB mostly,
 * a few blocks up to 1 MiB; a bounded live set that fits the pool) runs in
 * every thread, with cross-thread frees when there are two threads.  During
 * that steady phase:
 *   - getrusage(RUSAGE_SELF) must count ZERO minor and ZERO major page faults
 *     (checked here);
 *   - the program must make ZERO memory system calls (mmap, munmap, brk,
 *     madvise, mprotect, mremap, mlock...): steady.sh runs it under strace.
 *     The phase is bracketed by the only two getppid() calls the program
 *     makes: the main thread calls getppid() after every thread is created
 *     and warmed up, before releasing them, and again after they are done.
 *   - the pool does not grow (mallinfo2().arena, read outside the phase).
 * Every block is written on each of its pages and checked before it is freed.
 * Exit 77 (skip) when the memory is not locked (mlockall failed here): the
 * proof is about a locked pool.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include "st_util.h"

#define NSLOT 256           /* live blocks per thread: at most this many */
#define MAX_LARGE 2         /* live blocks > 64 KiB per thread */
#define RING 64             /* blocks in flight from one thread to the other */
#define WARMUP_OPS 200000

struct item {
	unsigned char *p;
	size_t n;
	unsigned char tag;
};

/* Single producer (the other thread), single consumer (the owner). */
struct ring {
	_Atomic unsigned head, tail;
	struct item it[RING];
};

struct worker {
	int id;
	uint64_t seed;
	struct item slot[NSLOT];
	unsigned nlarge;
	struct ring in;      /* blocks the other thread hands us to free */
	struct worker *peer; /* NULL with one thread */
	uint64_t ops, cross, reallocs, waits;
	char pad[64];
};

static struct worker workers[2];
static pthread_barrier_t barrier;
static long steady_ops = 1000000;
static int nthreads;
static int (*thread_prepare)(void);
static atomic_int finished; /* threads done with the current phase, over all phases */
static int phase_end;      /* its value when every thread is done with this phase */

/* Write the block's first 16 bytes (or all of it), a byte on each page and
 * its last byte.  (The first 16 bytes always: see st_realloc_stamp.c for what
 * happens when the start of a large block is left unwritten.) */
static void touch(unsigned char *p, size_t n, unsigned char tag)
{
	memset(p, tag, n < 16 ? n : 16);
	for (size_t i = 4096; i < n; i += 4096)
		p[i] = tag;
	p[n - 1] = tag;
}

static void verify(const struct item *it, const char *when)
{
	if (it->p[0] != it->tag || it->p[it->n - 1] != it->tag)
		ST_FAIL("block %p of %zu bytes overwritten (%s): %#x %#x, want %#x", (void *)it->p, it->n,
			when, it->p[0], it->p[it->n - 1], it->tag);
}

static size_t pick_size(struct worker *w, uint64_t r)
{
	unsigned d = (unsigned)(r % 100);
	if (d < 2 && w->nlarge < MAX_LARGE)
		return st_log_size(r >> 8, 65537, 1 << 20);     /* 2%: up to 1 MiB */
	if (d < 70)
		return st_log_size(r >> 8, 8, 512);              /* mostly small */
	return st_log_size(r >> 8, 513, 65536);                  /* up to 64 KiB */
}

static unsigned char *allocate(struct worker *w, size_t n, uint64_t r)
{
	void *p = NULL;
	switch ((r >> 40) % 8) {
	case 0:
		if (n <= 65536) {
			p = calloc(1, n);
			if (p && (((unsigned char *)p)[0] || ((unsigned char *)p)[n - 1]))
				ST_FAIL("calloc(1, %zu) is not zeroed", n);
			break;
		}
		/* fall through */
	case 1:
		if (posix_memalign(&p, (size_t)64 << ((r >> 44) % 7), n) != 0)
			p = NULL;
		break;
	case 2:
		p = aligned_alloc(256, (n + 255) & ~(size_t)255);
		break;
	default:
		p = malloc(n);
	}
	if (!p)
		ST_FAIL("thread %d: allocation of %zu bytes failed (%s)", w->id, n, strerror(errno));
	if (n > 65536)
		w->nlarge++;
	return p;
}

static void release(struct worker *w, struct item *it)
{
	if (it->n > 65536)
		w->nlarge--;
	free(it->p);
	it->p = NULL;
}

static void drain(struct worker *w)
{
	struct ring *q = &w->in;
	unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
	for (; t != h; t++) {
		struct item *it = &q->it[t % RING];
		verify(it, "handed over by the other thread");
		free(it->p); /* a block the other thread allocated */
	}
	atomic_store_explicit(&q->tail, t, memory_order_release);
}

/* Hand a block to the peer; false when its ring is full. */
static int hand_over(struct worker *w, const struct item *it)
{
	struct ring *q = &w->peer->in;
	unsigned h = atomic_load_explicit(&q->head, memory_order_relaxed);
	if (h - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING)
		return 0;
	q->it[h % RING] = *it;
	atomic_store_explicit(&q->head, h + 1, memory_order_release);
	return 1;
}

static void run(struct worker *w, long ops)
{
	for (long i = 0; i < ops; i++) {
		uint64_t r = st_rand(&w->seed);
		struct item *it = &w->slot[r % NSLOT];
		if (it->p) {
			verify(it, "live");
			unsigned what = (unsigned)((r >> 32) % 16);
			if (what == 0 && it->n <= 65536) {
				/* realloc to another size (staying below 64 KiB) */
				size_t n = st_log_size(r >> 8, 8, 65536);
				unsigned char *q = realloc(it->p, n);
				if (!q)
					ST_FAIL("realloc(%zu) failed", n);
				if (q[0] != it->tag)
					ST_FAIL("realloc lost the contents");
				it->p = q;
				it->n = n;
				touch(q, n, it->tag);
				w->reallocs++;
			} else if (w->peer && what < 6 && it->n <= 32768) {
				/* Hand it over (the cached classes: what goes through
				 * the other thread's cache; at most RING * 32 KiB in
				 * flight); while the peer's ring is full, free what it
				 * handed us (it does the same: no deadlock). */
				while (!hand_over(w, it)) {
					drain(w);
					if ((++w->waits & 63) == 0)
						sched_yield(); /* the peer may share our CPU */
				}
				it->p = NULL;
				w->cross++;
			} else {
				release(w, it);
			}
		} else {
			size_t n = pick_size(w, r);
			it->p = allocate(w, n, r);
			it->n = n;
			it->tag = (unsigned char)(r >> 56) | 1;
			touch(it->p, n, it->tag);
		}
		if (w->peer && (i & 7) == 0)
			drain(w);
		w->ops++;
	}
	if (w->peer) {
		/* Keep freeing what the peer hands over until it is done too. */
		atomic_fetch_add(&finished, 1);
		while (atomic_load(&finished) < phase_end) {
			drain(w);
			sched_yield();
		}
		drain(w);
	}
}

static void warm_up(struct worker *w)
{
	if (thread_prepare() != 0)
		ST_FAIL("rtalloc_thread_prepare failed in thread %d", w->id);
	run(w, WARMUP_OPS);
}

static void *second_thread(void *arg)
{
	struct worker *w = arg;
	warm_up(w);
	pthread_barrier_wait(&barrier); /* 1: warmed up */
	pthread_barrier_wait(&barrier); /* 2: steady phase starts */
	run(w, steady_ops);
	pthread_barrier_wait(&barrier); /* 3: done */
	/* 4: stay alive until the end marker is made: a thread's exit is not
	 * steady state (glibc madvises the stack of an exiting thread). */
	pthread_barrier_wait(&barrier);
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	st_need_preload("steady");
	nthreads = argc > 1 ? atoi(argv[1]) : 1;
	if (argc > 2)
		steady_ops = atol(argv[2]);
	CHECK(nthreads == 1 || nthreads == 2, "usage: st_steady 1|2 [STEADY_OPS]");
	*(void **)&thread_prepare = st_sym("rtalloc_thread_prepare");

	size_t pool = mallinfo2().arena;
	long locked = st_status_kb("VmLck");
	if (locked < (long)(pool >> 10))
		st_skip("memory not locked (VmLck %ld kB, pool %zu kB): mlockall needs CAP_IPC_LOCK or "
			"ulimit -l unlimited", locked, pool >> 10);

	for (int i = 0; i < nthreads; i++) {
		workers[i].id = i;
		workers[i].seed = 0x853c49e6748fea9bULL + 0x9e3779b97f4a7c15ULL * (uint64_t)i;
	}
	if (nthreads == 2) {
		workers[0].peer = &workers[1];
		workers[1].peer = &workers[0];
	}
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
	phase_end = nthreads; /* warm-up */
	pthread_t t;
	if (nthreads == 2)
		CHECK(pthread_create(&t, NULL, second_thread, &workers[1]) == 0, "pthread_create");

	/* Warm-up: every thread prepares and runs the workload once. */
	warm_up(&workers[0]);
	size_t arena0 = mallinfo2().arena;
	printf("warmed up: %d thread(s), pool %zu -> %zu bytes, %zu in use\n", nthreads, pool, arena0,
	       mallinfo2().uordblks);
	fflush(stdout);
	pthread_barrier_wait(&barrier); /* 1 */
	phase_end = 2 * nthreads;      /* steady (written before barrier 2) */

	/* ---- steady phase ---- */
	struct rusage ru0, ru1;
	(void)now(); /* the vDSO's pages are touched before the measure */
	getrusage(RUSAGE_SELF, &ru0);
	double t0 = now();
	syscall(SYS_getppid); /* marker: start */
	pthread_barrier_wait(&barrier); /* 2 */
	run(&workers[0], steady_ops);
	pthread_barrier_wait(&barrier); /* 3 */
	syscall(SYS_getppid); /* marker: end */
	double t1 = now();
	getrusage(RUSAGE_SELF, &ru1);
	/* ---- end of the steady phase ---- */

	pthread_barrier_wait(&barrier); /* 4 */
	if (nthreads == 2)
		pthread_join(t, NULL);
	long minflt = ru1.ru_minflt - ru0.ru_minflt, majflt = ru1.ru_majflt - ru0.ru_majflt;
	size_t arena1 = mallinfo2().arena;
	uint64_t cross = 0, reallocs = 0, waits = 0;
	for (int i = 0; i < nthreads; i++) {
		cross += workers[i].cross;
		reallocs += workers[i].reallocs;
		waits += workers[i].waits;
	}
	printf("steady: %ld operations per thread in %.3f s (warm-up included: %" PRIu64 " blocks freed "
	       "by the other thread, %" PRIu64 " waits for it, %" PRIu64 " reallocs); %ld minor and %ld "
	       "major page faults; pool %zu -> %zu\n",
	       steady_ops, t1 - t0, cross, waits, reallocs, minflt, majflt, arena0, arena1);
	CHECK(minflt == 0 && majflt == 0, "the steady phase took %ld minor and %ld major page faults",
	      minflt, majflt);
	CHECK(arena1 == arena0, "the pool grew in the steady phase: %zu -> %zu bytes", arena0, arena1);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok steady %d\n", nthreads);
	return 0;
}
