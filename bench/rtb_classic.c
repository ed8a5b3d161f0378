/* SPDX-License-Identifier: MIT */
/*
 * rtb_classic.c - the classic allocator workloads, in versions of our own
 * (`rtbench classic NAME`):
 *
 *   larson   server churn after Larson & Krishnan: 4 chains of threads,
 *            left to the scheduler; each thread replaces random blocks
 *            (8-1000 B) of its chain's 1000-block set, then hands the set to
 *            a new thread (default attributes, as a server creates them) and
 *            exits, so most blocks are freed by a thread that did not
 *            allocate them, and the allocating thread is gone;
 *   xmalloc  producer/consumer, more threads than cores: 4 producers and 4
 *            consumers pinned to 2 CPUs; producers allocate 64 B blocks in
 *            batches of 256 put on a shared queue, and whichever consumer
 *            takes a batch frees its blocks;
 *   cache-scratch  passive false sharing: the main thread allocates one 8 B
 *            object per thread (one thread per CPU, pinned), back to back;
 *            each thread frees its object,
 *            then repeatedly allocates an 8 B object, writes it many times
 *            and frees it. An allocator that gives a thread the block
 *            another thread's neighbour lives beside makes the writes fight
 *            over one cache line;
 *   cache-thrash  active false sharing: the same loop without the hand-out;
 *            the threads' own 8 B objects must not share cache lines;
 *   mstress  random lifetimes and sizes: 4 threads in rounds (threads exit
 *            and new ones take their live sets over), each replacing random
 *            blocks of 1000 slots (sizes mostly small, some to 256 KiB), and
 *            one free in eight passes the block to a shared exchange array
 *            instead, where another thread picks it up and frees it;
 *   large    blocks of 64 KiB-4 MiB (log-uniform) in a steady loop: 4
 *            threads replacing random blocks of 4 slots each, every page of
 *            every block written.
 *
 * The trace replay is in rtb_trace.c.  Every workload does a fixed count of
 * operations (4x less with --quick) bounded by a time limit
 * (--classic-seconds); it reports the elapsed time, the operations done,
 * the page faults of the process over the whole workload, the peak RSS
 * (VmHWM, from the workload's start) and what went wrong: NULL returns
 * (fails), blocks whose contents changed while they were held and blocks
 * lost (allocated, never freed: both counted as errors).  The time of the full count, when the limit cut a run
 * short, is estimated from the rate ("capped" says so).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ common */

void rtb_classic_begin(struct rtb_classic_run *r, const struct rtb_opts *o,
		       const char *name, uint64_t target_ops)
{
	r->name = name;
	r->target_ops = target_ops;
	/* Peak RSS from here on (Linux >= 4.0: "5" resets VmHWM to VmRSS),
	 * so the harness's own set-up, such as reading a trace, is left out;
	 * what is resident now (a pre-faulted pool) is in. */
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	r->hwm_reset = fd >= 0 && write(fd, "5", 1) == 1;
	if (fd >= 0)
		close(fd);
	r->f0 = rtb_faults_self();
	r->t0 = rtb_now_ns();
	r->deadline = r->t0 + (uint64_t)(o->classic_seconds * 1e9);
}

void rtb_classic_end(const struct rtb_classic_run *r, uint64_t ops, uint64_t fails,
		     uint64_t errors, unsigned threads)
{
	uint64_t t1 = rtb_now_ns();
	rtb_faults f1 = rtb_faults_self();
	double s = (double)(t1 - r->t0) / 1e9;
	bool capped = ops < r->target_ops;
	char scope[64];
	snprintf(scope, sizeof scope, "classic.%s", r->name);
	rtb_emit(scope, "seconds", s);
	rtb_emit(scope, "ops", (double)ops);
	rtb_emit(scope, "target_ops", (double)r->target_ops);
	rtb_emit(scope, "capped", capped);
	/* The time the full count takes at the rate measured. */
	rtb_emit(scope, "time_s", ops ? s * (double)r->target_ops / (double)ops : s);
	rtb_emit(scope, "ns_per_op", ops ? s * 1e9 / (double)ops : 0);
	rtb_emit(scope, "faults", (double)(f1.minor - r->f0.minor + f1.major - r->f0.major));
	rtb_emit(scope, "faults_major", (double)(f1.major - r->f0.major));
	rtb_emit(scope, "hwm_kib", (double)rtb_proc_status_kib("VmHWM"));
	rtb_emit(scope, "hwm_reset", r->hwm_reset);
	rtb_emit(scope, "fails", (double)fails);
	rtb_emit(scope, "errors", (double)errors);
	rtb_emit(scope, "threads", threads);
}

static inline bool past(uint64_t deadline)
{
	return rtb_now_ns() >= deadline;
}

/* A block's key: both ends and one byte per page hold it while it is held. */
static inline unsigned char key_of(uint64_t k)
{
	return (unsigned char)(k * 0x9d ^ (k >> 8) ^ 0x3c);
}

static inline void tag(unsigned char *p, size_t n, uint64_t k)
{
	unsigned char t = key_of(k);
	for (size_t i = 0; i < n; i += 4096) /* bound: n / 4096 pages */
		p[i] = t;
	p[n - 1] = t;
}

static inline bool tag_ok(const unsigned char *p, size_t n, uint64_t k)
{
	unsigned char t = key_of(k);
	for (size_t i = 0; i < n; i += 4096) /* bound: n / 4096 pages */
		if (p[i] != t)
			return false;
	return p[n - 1] == t;
}

static unsigned cpus_allowed(void)
{
	cpu_set_t s;
	if (pthread_getaffinity_np(pthread_self(), sizeof s, &s) != 0)
		return 1;
	int n = CPU_COUNT(&s);
	return n < 1 ? 1 : (unsigned)n;
}

/* ----------------------------------------------------------- larson */

#define LAR_CHAINS 4
#define LAR_SLOTS 1000
#define LAR_ROUND 10000 /* replacements per thread */

struct lar_chain {
	rtb_rng rng;
	struct rtb_block slot[LAR_SLOTS];
	uint64_t deadline, budget;      /* stop when either runs out */
	uint64_t ops, fails, errors, allocs, frees, threads;
};

/* Chains that have ended; the main thread sleeps until all have (spinning
 * would take a CPU from the workers). */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned ended;
} lar_end = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void *lar_thread(void *arg)
{
	struct lar_chain *c = arg;
	rtb_thread_prepare();
	for (;;) { /* bound: one pass; the loop only retries a failed start */
		for (int i = 0; i < LAR_ROUND; i++) {
			struct rtb_block *b = &c->slot[rtb_below(&c->rng, LAR_SLOTS)];
			uint64_t k = (uint64_t)(b - c->slot);
			if (b->p) {
				if (!tag_ok(b->p, b->n, k))
					c->errors++;
				free(b->p);
				c->frees++;
			}
			size_t n = rtb_between(&c->rng, 8, 1000);
			b->p = malloc(n);
			b->n = n;
			if (b->p) {
				tag(b->p, n, k);
				c->allocs++;
			} else {
				c->fails++;
			}
		}
		c->ops += LAR_ROUND;
		c->threads++;
		if (c->ops >= c->budget || past(c->deadline))
			break;
		/* Hand the set over.  The successor owns *c from here on; a
		 * detached thread with default attributes, as a server makes. */
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&t, &a, lar_thread, c);
		pthread_attr_destroy(&a);
		if (rc == 0)
			return NULL;
		/* Could not start a thread: go on in this one. */
	}
	for (int s = 0; s < LAR_SLOTS; s++) {
		struct rtb_block *b = &c->slot[s];
		if (!b->p)
			continue;
		if (!tag_ok(b->p, b->n, (uint64_t)s))
			c->errors++;
		free(b->p);
		c->frees++;
		b->p = NULL;
	}
	pthread_mutex_lock(&lar_end.lock); /* *c is the main thread's again */
	lar_end.ended++;
	pthread_cond_signal(&lar_end.cond);
	pthread_mutex_unlock(&lar_end.lock);
	return NULL;
}

static void classic_larson(const struct rtb_opts *o)
{
	struct lar_chain *c = rtb_map(LAR_CHAINS * sizeof *c);
	uint64_t target = o->quick ? 1000000 : 4000000;
	struct rtb_classic_run r;
	rtb_classic_begin(&r, o, "larson", target);
	/* The initial sets are made by the main thread: every one of them is
	 * freed by another thread. */
	for (int k = 0; k < LAR_CHAINS; k++) {
		c[k].rng.state = o->seed * 131 + (uint64_t)k;
		c[k].deadline = r.deadline;
		c[k].budget = target / LAR_CHAINS;
		for (int s = 0; s < LAR_SLOTS; s++) {
			size_t n = rtb_between(&c[k].rng, 8, 1000);
			c[k].slot[s].p = malloc(n);
			c[k].slot[s].n = n;
			if (c[k].slot[s].p) {
				tag(c[k].slot[s].p, n, (uint64_t)s);
				c[k].allocs++;
			} else {
				c[k].fails++;
			}
		}
	}
	for (int k = 0; k < LAR_CHAINS; k++) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, lar_thread, &c[k]) != 0)
			lar_thread(&c[k]); /* run the chain here */
		pthread_attr_destroy(&a);
	}
	pthread_mutex_lock(&lar_end.lock);
	while (lar_end.ended < LAR_CHAINS) /* bound: the chains' budgets and deadline */
		pthread_cond_wait(&lar_end.cond, &lar_end.lock);
	lar_end.ended = 0;
	pthread_mutex_unlock(&lar_end.lock);
	uint64_t ops = 0, fails = 0, errors = 0, threads = 0;
	for (int k = 0; k < LAR_CHAINS; k++) {
		ops += c[k].ops;
		fails += c[k].fails;
		errors += c[k].errors + (c[k].allocs - c[k].frees); /* lost blocks */
		threads += c[k].threads;
	}
	rtb_classic_end(&r, ops, fails, errors, (unsigned)threads);
	rtb_unmap(c, LAR_CHAINS * sizeof *c);
}

/* ---------------------------------------------------------- xmalloc */

/*
 * Producers fill batches of 256 blocks and push them on a shared queue;
 * any consumer takes the next batch and frees its blocks.  A thread that
 * finds the queue full (producer) or empty (consumer) sleeps on a condition
 * variable: with more threads than cores, spinning would only measure the
 * scheduler.  The queue costs one lock round per 256 blocks.
 */
#define XM_PRODUCERS 4
#define XM_CONSUMERS 4
#define XM_SIZE 64
#define XM_BATCH 256
#define XM_QUEUE 16                                   /* batches in flight */
#define XM_BATCHES (XM_QUEUE + XM_PRODUCERS + XM_CONSUMERS + 1)

struct xm_batch {
	unsigned n;
	unsigned char *p[XM_BATCH];
	uint32_t seq[XM_BATCH]; /* what each block holds after its producer's id */
};

struct xm_shared {
	pthread_mutex_t lock;
	pthread_cond_t not_full, not_empty;
	struct xm_batch *queue[XM_QUEUE];               /* FIFO */
	unsigned head, count;
	struct xm_batch *spare[XM_BATCHES];             /* empty batches */
	unsigned nspare;
	unsigned producing;                             /* producers still running */
	uint64_t budget, deadline;                      /* per producer */
	struct xm_batch batch[XM_BATCHES];
};

struct xm_thread {
	struct xm_shared *x;
	unsigned id;
	uint64_t made, freed, fails, errors;
	pthread_t tid;
};

static void *xm_producer(void *arg)
{
	struct xm_thread *t = arg;
	struct xm_shared *x = t->x;
	rtb_pin_self(t->id % 2, NULL); /* 2 CPUs, whatever the machine has */
	rtb_thread_prepare();
	pthread_mutex_lock(&x->lock);
	struct xm_batch *b = x->spare[--x->nspare];
	pthread_mutex_unlock(&x->lock);
	b->n = 0;
	for (uint64_t i = 0; i < x->budget; i++) { /* bound: budget */
		if ((i & 1023) == 0 && past(x->deadline))
			break;
		unsigned char *p = malloc(XM_SIZE);
		if (!p) {
			t->fails++;
			continue;
		}
		uint32_t seq = (uint32_t)i;
		p[0] = (unsigned char)t->id;
		memcpy(p + 1, &seq, sizeof seq);
		p[XM_SIZE - 1] = (unsigned char)~t->id;
		b->seq[b->n] = seq;
		b->p[b->n++] = p;
		t->made++;
		if (b->n < XM_BATCH && i + 1 < x->budget)
			continue;
		pthread_mutex_lock(&x->lock);
		while (x->count == XM_QUEUE) /* bound: consumers drain the queue */
			pthread_cond_wait(&x->not_full, &x->lock);
		x->queue[(x->head + x->count++) % XM_QUEUE] = b;
		/* A spare is always there: at most XM_QUEUE queued and one
		 * held by each other thread, out of XM_BATCHES. */
		b = x->spare[--x->nspare];
		pthread_cond_signal(&x->not_empty);
		pthread_mutex_unlock(&x->lock);
		b->n = 0;
	}
	pthread_mutex_lock(&x->lock);
	if (b->n) { /* cut short by the deadline: push what is there */
		while (x->count == XM_QUEUE) /* bound: consumers drain the queue */
			pthread_cond_wait(&x->not_full, &x->lock);
		x->queue[(x->head + x->count++) % XM_QUEUE] = b;
	} else {
		x->spare[x->nspare++] = b;
	}
	x->producing--;
	pthread_cond_broadcast(&x->not_empty);
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

static void *xm_consumer(void *arg)
{
	struct xm_thread *t = arg;
	struct xm_shared *x = t->x;
	rtb_pin_self((t->id + 1) % 2, NULL);
	rtb_thread_prepare();
	for (;;) { /* bound: the producers' budgets */
		pthread_mutex_lock(&x->lock);
		while (x->count == 0 && x->producing) /* bound: producers push or end */
			pthread_cond_wait(&x->not_empty, &x->lock);
		if (x->count == 0) {
			pthread_mutex_unlock(&x->lock);
			break;
		}
		struct xm_batch *b = x->queue[x->head];
		x->head = (x->head + 1) % XM_QUEUE;
		x->count--;
		pthread_cond_signal(&x->not_full);
		pthread_mutex_unlock(&x->lock);
		for (unsigned i = 0; i < b->n; i++) { /* bound: XM_BATCH */
			unsigned char *p = b->p[i];
			uint32_t seq;
			memcpy(&seq, p + 1, sizeof seq);
			if ((unsigned char)~p[0] != p[XM_SIZE - 1] || p[0] >= XM_PRODUCERS ||
			    seq != b->seq[i])
				t->errors++;
			free(p);
			t->freed++;
		}
		pthread_mutex_lock(&x->lock);
		x->spare[x->nspare++] = b;
		pthread_mutex_unlock(&x->lock);
	}
	return NULL;
}

static void classic_xmalloc(const struct rtb_opts *o)
{
	struct xm_shared *x = rtb_map(sizeof *x);
	struct xm_thread *t = rtb_map((XM_PRODUCERS + XM_CONSUMERS) * sizeof *t);
	uint64_t target = o->quick ? 2000000 : 8000000;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->not_full, NULL);
	pthread_cond_init(&x->not_empty, NULL);
	for (unsigned i = 0; i < XM_BATCHES; i++)
		x->spare[x->nspare++] = &x->batch[i];
	x->producing = XM_PRODUCERS;
	x->budget = target / XM_PRODUCERS;
	struct rtb_classic_run r;
	rtb_classic_begin(&r, o, "xmalloc", target);
	x->deadline = r.deadline;
	for (unsigned i = 0; i < XM_PRODUCERS + XM_CONSUMERS; i++) {
		t[i].x = x;
		t[i].id = i < XM_PRODUCERS ? i : i - XM_PRODUCERS;
		rtb_thread_start(&t[i].tid, i < XM_PRODUCERS ? xm_producer : xm_consumer, &t[i]);
	}
	uint64_t ops = 0, fails = 0, errors = 0, made = 0;
	for (unsigned i = 0; i < XM_PRODUCERS + XM_CONSUMERS; i++) {
		pthread_join(t[i].tid, NULL);
		ops += t[i].freed;
		made += t[i].made;
		fails += t[i].fails;
		errors += t[i].errors;
	}
	errors += made - ops; /* lost blocks */
	rtb_classic_end(&r, ops, fails, errors, XM_PRODUCERS + XM_CONSUMERS);
	pthread_cond_destroy(&x->not_empty);
	pthread_cond_destroy(&x->not_full);
	pthread_mutex_destroy(&x->lock);
	rtb_unmap(t, (XM_PRODUCERS + XM_CONSUMERS) * sizeof *t);
	rtb_unmap(x, sizeof *x);
}

/* ---------------------------------------------------- cache-* tests */

#define CS_MAX_THREADS 8
#define CS_OBJ 8

struct cs_thread {
	_Alignas(64) unsigned char *given; /* scratch: the object to free first */
	uint64_t rounds, writes, deadline;
	uint64_t done, fails, errors;
	unsigned id;
	pthread_t tid;
};

static void *cs_thread(void *arg)
{
	struct cs_thread *t = arg;
	rtb_pin_self(t->id, NULL);
	rtb_thread_prepare();
	free(t->given); /* allocated by the main thread, beside the others' */
	for (uint64_t r = 0; r < t->rounds; r++) { /* bound: rounds */
		if ((r & 63) == 0 && past(t->deadline))
			break;
		volatile unsigned char *p = malloc(CS_OBJ);
		if (!p) {
			t->fails++;
			continue;
		}
		for (int j = 0; j < CS_OBJ; j++)
			p[j] = 0;
		for (uint64_t w = 0; w < t->writes; w++) /* bound: writes */
			for (int j = 0; j < CS_OBJ; j++)
				p[j] = (unsigned char)(p[j] + 1);
		for (int j = 0; j < CS_OBJ; j++)
			if (p[j] != (unsigned char)t->writes)
				t->errors++;
		free((void *)p);
		t->done++;
	}
	return NULL;
}

static void classic_cache(const struct rtb_opts *o, bool scratch)
{
	unsigned n = cpus_allowed();
	if (n < 2)
		n = 2;
	if (n > CS_MAX_THREADS)
		n = CS_MAX_THREADS;
	struct cs_thread *t = rtb_map(n * sizeof *t);
	uint64_t rounds = o->quick ? 100000 : 400000; /* per thread */
	struct rtb_classic_run r;
	rtb_classic_begin(&r, o, scratch ? "cache-scratch" : "cache-thrash", rounds * n);
	for (unsigned i = 0; i < n; i++) {
		t[i].id = i;
		t[i].rounds = rounds;
		t[i].writes = 100;
		t[i].deadline = r.deadline;
		t[i].given = scratch ? malloc(CS_OBJ) : NULL;
	}
	for (unsigned i = 0; i < n; i++)
		rtb_thread_start(&t[i].tid, cs_thread, &t[i]);
	uint64_t ops = 0, fails = 0, errors = 0;
	for (unsigned i = 0; i < n; i++) {
		pthread_join(t[i].tid, NULL);
		ops += t[i].done;
		fails += t[i].fails;
		errors += t[i].errors;
	}
	rtb_classic_end(&r, ops, fails, errors, n);
	rtb_unmap(t, n * sizeof *t);
}

/* ---------------------------------------------------------- mstress */

#define MS_THREADS 4
#define MS_SLOTS 1000
#define MS_XCHG 1024

/* Each block starts with its size and key, so that whichever thread ends up
 * with it can check it. */
struct ms_head {
	uint32_t n, k;
};

struct ms_state {
	rtb_rng rng;
	unsigned char *slot[MS_SLOTS];
	uint32_t key[MS_SLOTS];         /* the key of the block in each slot */
	uint64_t steps, deadline;       /* per round */
	uint64_t ops, allocs, frees, passed, fails, errors;
	uint32_t next_key;
	unsigned id;
	pthread_t tid;
};

static _Atomic(unsigned char *) ms_xchg[MS_XCHG];

static size_t ms_size(rtb_rng *r)
{
	uint32_t b = rtb_below(r, 100);
	if (b < 70)
		return rtb_between(r, 16, 128);
	if (b < 90)
		return rtb_between(r, 129, 1024);
	if (b < 99)
		return rtb_between(r, 1025, 16384);
	return rtb_between(r, 16385, 256 * 1024);
}

static void ms_tag(unsigned char *p, size_t n, uint32_t k)
{
	struct ms_head h = {(uint32_t)n, k};
	memcpy(p, &h, sizeof h);
	for (size_t i = 4096; i < n; i += 4096) /* bound: n / 4096 pages */
		p[i] = key_of(k);
	p[n - 1] = key_of(k);
}

/* A block is whole: its size, key and marks agree; key: the one expected,
 * or UINT32_MAX when the holder does not know it (a passed block). */
static bool ms_ok(const unsigned char *p, uint32_t key)
{
	struct ms_head h;
	memcpy(&h, p, sizeof h);
	if (h.n < 16 || h.n > 256 * 1024 || (key != UINT32_MAX && h.k != key))
		return false;
	for (size_t i = 4096; i < h.n; i += 4096) /* bound: n / 4096 pages */
		if (p[i] != key_of(h.k))
			return false;
	return p[h.n - 1] == key_of(h.k);
}

static void ms_release(struct ms_state *m, unsigned char *p, uint32_t key)
{
	if (!ms_ok(p, key))
		m->errors++;
	free(p);
	m->frees++;
}

static void *ms_thread(void *arg)
{
	struct ms_state *m = arg;
	rtb_thread_prepare();
	uint64_t i;
	for (i = 0; i < m->steps; i++) { /* bound: steps */
		if ((i & 255) == 0 && past(m->deadline))
			break;
		/* Half the steps go to the first tenth of the slots: short
		 * lives there, long ones in the rest. */
		uint32_t s = rtb_below(&m->rng, 2) ? rtb_below(&m->rng, MS_SLOTS / 10)
						   : rtb_below(&m->rng, MS_SLOTS);
		unsigned char *old = m->slot[s];
		if (old) {
			if (rtb_below(&m->rng, 8) == 0) {
				/* Pass it on (checked first: the receiver cannot
				 * know its key), and free whatever was waiting
				 * there, most likely another thread's block. */
				if (!ms_ok(old, m->key[s]))
					m->errors++;
				unsigned char *got = atomic_exchange_explicit(
					&ms_xchg[rtb_below(&m->rng, MS_XCHG)], old, memory_order_acq_rel);
				m->passed++;
				if (got)
					ms_release(m, got, UINT32_MAX);
			} else {
				ms_release(m, old, m->key[s]);
			}
		}
		size_t n = ms_size(&m->rng);
		unsigned char *p = malloc(n);
		m->slot[s] = p;
		if (p) {
			m->key[s] = m->next_key++;
			ms_tag(p, n, m->key[s]);
			m->allocs++;
		} else {
			m->fails++;
		}
	}
	m->ops += i;
	return NULL;
}

static void classic_mstress(const struct rtb_opts *o)
{
	struct ms_state *m = rtb_map(MS_THREADS * sizeof *m);
	unsigned rounds = o->quick ? 2 : 4;
	uint64_t target = o->quick ? 500000 : 2000000;
	struct rtb_classic_run r;
	rtb_classic_begin(&r, o, "mstress", target);
	for (unsigned k = 0; k < MS_THREADS; k++) {
		m[k].rng.state = o->seed * 7919 + k;
		m[k].id = k;
		m[k].steps = target / MS_THREADS / rounds;
		m[k].deadline = r.deadline;
		m[k].next_key = k << 28;
	}
	unsigned threads = 0;
	/* Each round new threads take the live sets over. */
	for (unsigned round = 0; round < rounds && !past(r.deadline); round++) {
		for (unsigned k = 0; k < MS_THREADS; k++)
			if (rtb_thread_start(&m[k].tid, ms_thread, &m[k]) == 0)
				threads++;
			else
				ms_thread(&m[k]);
		for (unsigned k = 0; k < MS_THREADS; k++)
			pthread_join(m[k].tid, NULL);
	}
	uint64_t ops = 0, fails = 0, errors = 0, allocs = 0, frees = 0;
	for (unsigned k = 0; k < MS_THREADS; k++) {
		for (unsigned s = 0; s < MS_SLOTS; s++)
			if (m[k].slot[s])
				ms_release(&m[k], m[k].slot[s], m[k].key[s]);
	}
	for (unsigned i = 0; i < MS_XCHG; i++) {
		unsigned char *p = atomic_exchange(&ms_xchg[i], NULL);
		if (p)
			ms_release(&m[0], p, UINT32_MAX);
	}
	for (unsigned k = 0; k < MS_THREADS; k++) {
		ops += m[k].ops;
		fails += m[k].fails;
		errors += m[k].errors;
		allocs += m[k].allocs;
		frees += m[k].frees;
	}
	errors += allocs - frees; /* lost blocks */
	rtb_classic_end(&r, ops, fails, errors, threads);
	rtb_unmap(m, MS_THREADS * sizeof *m);
}

/* ------------------------------------------------------------ large */

#define LG_THREADS 4
#define LG_SLOTS 4

struct lg_state {
	rtb_rng rng;
	struct rtb_block slot[LG_SLOTS];
	uint64_t steps, deadline;
	uint64_t ops, fails, errors;
	unsigned id;
	pthread_t tid;
};

/* 64 KiB-4 MiB, each of the six octaves equally likely. */
static size_t lg_size(rtb_rng *r)
{
	size_t lo = (size_t)64 * 1024 << rtb_below(r, 6);
	return rtb_between(r, lo, 2 * lo);
}

static void *lg_thread(void *arg)
{
	struct lg_state *g = arg;
	rtb_thread_prepare();
	uint64_t i;
	for (i = 0; i < g->steps; i++) { /* bound: steps */
		if ((i & 15) == 0 && past(g->deadline))
			break;
		struct rtb_block *b = &g->slot[rtb_below(&g->rng, LG_SLOTS)];
		uint64_t k = (uint64_t)g->id * LG_SLOTS + (uint64_t)(b - g->slot);
		if (b->p) {
			if (!tag_ok(b->p, b->n, k))
				g->errors++;
			free(b->p);
		}
		b->n = lg_size(&g->rng);
		b->p = malloc(b->n);
		if (b->p)
			tag(b->p, b->n, k); /* every page */
		else
			g->fails++;
	}
	g->ops = i;
	for (int s = 0; s < LG_SLOTS; s++) {
		struct rtb_block *b = &g->slot[s];
		if (b->p && !tag_ok(b->p, b->n, (uint64_t)g->id * LG_SLOTS + (uint64_t)s))
			g->errors++;
		free(b->p);
		b->p = NULL;
	}
	return NULL;
}

static void classic_large(const struct rtb_opts *o)
{
	struct lg_state *g = rtb_map(LG_THREADS * sizeof *g);
	uint64_t target = o->quick ? 2000 : 8000;
	struct rtb_classic_run r;
	rtb_classic_begin(&r, o, "large", target);
	for (unsigned k = 0; k < LG_THREADS; k++) {
		g[k].rng.state = o->seed * 104729 + k;
		g[k].id = k;
		g[k].steps = target / LG_THREADS;
		g[k].deadline = r.deadline;
		rtb_thread_start(&g[k].tid, lg_thread, &g[k]);
	}
	uint64_t ops = 0, fails = 0, errors = 0;
	for (unsigned k = 0; k < LG_THREADS; k++) {
		pthread_join(g[k].tid, NULL);
		ops += g[k].ops;
		fails += g[k].fails;
		errors += g[k].errors;
	}
	rtb_classic_end(&r, ops, fails, errors, LG_THREADS);
	rtb_unmap(g, LG_THREADS * sizeof *g);
}

/* ------------------------------------------------------------ entry */

int rtb_classic(const struct rtb_opts *o, const char *names)
{
	static const char *const all = "larson,xmalloc,cache-scratch,cache-thrash,mstress,large,trace";
	if (strcmp(names, "all") == 0)
		names = all;
	for (const char *p = names; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char name[32];
		snprintf(name, sizeof name, "%.*s", (int)(len < 31 ? len : 31), p);
		if (len == 0 || len >= sizeof name || !rtb_list_has(all, name)) {
			fprintf(stderr, "rtbench: unknown classic workload '%.*s' (one of %s)\n",
				(int)len, p, all);
			return 2;
		}
		p = comma ? comma + 1 : p + len;
	}
	rtb_thread_prepare();
	int rc = 0;
	if (rtb_list_has(names, "larson"))
		classic_larson(o);
	if (rtb_list_has(names, "xmalloc"))
		classic_xmalloc(o);
	if (rtb_list_has(names, "cache-scratch"))
		classic_cache(o, true);
	if (rtb_list_has(names, "cache-thrash"))
		classic_cache(o, false);
	if (rtb_list_has(names, "mstress"))
		classic_mstress(o);
	if (rtb_list_has(names, "large"))
		classic_large(o);
	if (rtb_list_has(names, "trace"))
		rc = rtb_classic_trace(o);
	return rc;
}
