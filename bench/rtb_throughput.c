/* SPDX-License-Identifier: MIT */
/*
 * rtb_throughput.c - how many operations per second, four patterns:
 *
 *   st       one thread, malloc(size)+free pairs, size 16 B .. 1 MiB (powers
 *            of two): the fast path of each size class;
 *   xthread  producer/consumer: one thread allocates, the other frees what
 *            it receives through a ring (every free is a remote free);
 *   larson   a server-like pattern after Larson & Krishnan: two threads
 *            each replace random blocks of a live set, and every round a
 *            thread hands its live set to a new thread and exits, so blocks
 *            are freed by a thread other than the one that allocated them;
 *   churn    threads that are created, allocate, free some, hand the rest
 *            back to the main thread, and exit.
 *
 * Every loop is bounded by time (tput_seconds) and by a count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Keep the compiler from eliding a malloc/free pair it could prove unused. */
static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* --------------------------------------------------------------- st */

static double st_pairs_per_s(size_t size, double seconds, uint64_t *fails)
{
	const uint64_t max_pairs = 2000000000ull;
	uint64_t pairs = 0;

	/* Warm the size class up (first use may map memory). */
	for (int i = 0; i < 64; i++) {
		void *p = malloc(size);
		escape(p);
		free(p);
	}
	uint64_t t0 = rtb_now_ns();
	uint64_t deadline = t0 + (uint64_t)(seconds * 1e9);
	uint64_t t1;
	do {
		for (int i = 0; i < 1024; i++) {
			char *p = malloc(size);
			if (p)
				*(volatile char *)p = 1;
			else
				(*fails)++;
			escape(p);
			free(p);
		}
		pairs += 1024;
		t1 = rtb_now_ns();
	} while (t1 < deadline && pairs < max_pairs);
	return (double)pairs / ((double)(t1 - t0) / 1e9);
}

static void test_st(const struct rtb_opts *o)
{
	uint64_t fails = 0;
	double log_sum = 0;
	int n = 0;
	for (size_t size = 16; size <= (1u << 20); size <<= 1, n++) {
		double r = st_pairs_per_s(size, o->tput_seconds, &fails);
		rtb_emitf("mpairs_s", r / 1e6, "tput.st.%zu", size);
		log_sum += log(r);
	}
	rtb_emit("tput.st", "geomean_mpairs_s", exp(log_sum / n) / 1e6);
	rtb_emit("tput.st", "fails", (double)fails);
}

/* ---------------------------------------------------------- xthread */

/*
 * The two threads are pinned to different CPUs: left to the scheduler, both
 * spinning threads sometimes share one CPU for the whole test and only take
 * turns at the end of each time slice, which measures the scheduler, not
 * the allocator.  The yield after a while of spinning is the fallback when
 * pinning is not possible.
 */
static void backoff(unsigned *spins)
{
	if (++*spins < 256) {
		rtb_cpu_relax();
	} else {
		sched_yield();
		*spins = 0;
	}
}

struct xthread {
	struct rtb_ring ring;
	_Atomic bool stop;
	uint64_t freed;
};

static void *xthread_consumer(void *arg)
{
	struct xthread *x = arg;
	struct rtb_block b;
	unsigned spins = 0;
	rtb_pin_self(1, NULL);
	rtb_thread_prepare();
	for (;;) {
		if (rtb_ring_pop(&x->ring, &b)) {
			free(b.p);
			x->freed++;
			spins = 0;
		} else if (atomic_load_explicit(&x->stop, memory_order_acquire)) {
			/* The producer stops pushing before it sets stop. */
			if (!rtb_ring_pop(&x->ring, &b))
				break;
			free(b.p);
			x->freed++;
		} else {
			backoff(&spins);
		}
	}
	return NULL;
}

static void test_xthread(const struct rtb_opts *o)
{
	struct xthread *x = rtb_map(sizeof *x);
	rtb_rng rng = {o->seed};
	pthread_t tid;
	uint64_t made = 0, fails = 0;
	unsigned spins = 0;
	cpu_set_t saved;
	bool pinned = rtb_pin_self(0, &saved);

	if (rtb_thread_start(&tid, xthread_consumer, x) != 0)
		return;
	uint64_t t0 = rtb_now_ns();
	uint64_t deadline = t0 + (uint64_t)(o->tput_seconds * 4 * 1e9);
	uint64_t t1 = t0;
	while (made < 500000000ull) {
		if ((made & 1023) == 0 && (t1 = rtb_now_ns()) > deadline)
			break;
		size_t n = rtb_between(&rng, 16, 512);
		struct rtb_block b = {malloc(n), n};
		if (!b.p) {
			fails++;
			continue;
		}
		b.p[0] = 1;
		while (!rtb_ring_push(&x->ring, b))
			backoff(&spins);
		spins = 0;
		made++;
	}
	atomic_store_explicit(&x->stop, true, memory_order_release);
	pthread_join(tid, NULL);
	t1 = rtb_now_ns();
	if (pinned)
		rtb_unpin_self(&saved);
	rtb_emit("tput.xthread", "pinned", pinned);
	rtb_emit("tput.xthread", "mops_s", (double)x->freed / ((double)(t1 - t0) / 1e9) / 1e6);
	rtb_emit("tput.xthread", "fails", (double)fails);
	rtb_unmap(x, sizeof *x);
}

/* ----------------------------------------------------------- larson */

#define LARSON_SLOTS 1000
#define LARSON_ROUND_OPS 20000
#define LARSON_MAX_ROUNDS 2048

struct larson_chain {
	rtb_rng rng;
	void *slot[LARSON_SLOTS];
	uint64_t deadline_ns;
	unsigned cpu;                      /* CPU of every thread of the chain */
	unsigned round;                    /* index of the thread running now */
	uint64_t ops, fails;
	pthread_t tid[LARSON_MAX_ROUNDS];
	bool handed[LARSON_MAX_ROUNDS];    /* thread i started thread i+1 */
};

static void *larson_thread(void *arg)
{
	struct larson_chain *c = arg;
	unsigned me = c->round;
	rtb_pin_self(c->cpu, NULL); /* the two chains run side by side */
	rtb_thread_prepare();
	for (int i = 0; i < LARSON_ROUND_OPS; i++) {
		unsigned s = rtb_below(&c->rng, LARSON_SLOTS);
		free(c->slot[s]); /* most were allocated by a previous thread */
		size_t n = rtb_between(&c->rng, 16, 1024);
		char *p = malloc(n);
		if (p)
			p[0] = 1;
		else
			c->fails++;
		c->slot[s] = p;
	}
	c->ops += LARSON_ROUND_OPS;

	/* Hand the live set to a successor, or end the chain.  Once the
	 * successor runs, this thread must not touch *c any more. */
	if (me + 1 < LARSON_MAX_ROUNDS && rtb_now_ns() < c->deadline_ns) {
		c->round = me + 1;
		c->handed[me] = true;
		if (rtb_thread_start(&c->tid[me + 1], larson_thread, c) == 0)
			return NULL;
		c->handed[me] = false;
	}
	for (int s = 0; s < LARSON_SLOTS; s++) {
		free(c->slot[s]);
		c->slot[s] = NULL;
	}
	return NULL;
}

static void test_larson(const struct rtb_opts *o)
{
	enum { CHAINS = 2 };
	struct larson_chain *c = rtb_map(CHAINS * sizeof *c);
	uint64_t t0 = rtb_now_ns();

	for (int k = 0; k < CHAINS; k++) {
		c[k].rng.state = o->seed + 77 + (uint64_t)k;
		c[k].cpu = (unsigned)k;
		c[k].deadline_ns = t0 + (uint64_t)(o->tput_seconds * 4 * 1e9);
		for (int s = 0; s < LARSON_SLOTS; s++)
			c[k].slot[s] = malloc(rtb_between(&c[k].rng, 16, 1024));
		rtb_thread_start(&c[k].tid[0], larson_thread, &c[k]);
	}
	/* Join each chain link by link: thread i wrote handed[i] and tid[i+1]
	 * before it exited, and pthread_join makes those stores visible. */
	uint64_t ops = 0, fails = 0;
	for (int k = 0; k < CHAINS; k++) {
		for (unsigned r = 0; r < LARSON_MAX_ROUNDS; r++) {
			pthread_join(c[k].tid[r], NULL);
			if (!c[k].handed[r])
				break;
		}
		ops += c[k].ops;
		fails += c[k].fails;
	}
	uint64_t t1 = rtb_now_ns();
	rtb_emit("tput.larson", "mops_s", (double)ops / ((double)(t1 - t0) / 1e9) / 1e6);
	rtb_emit("tput.larson", "fails", (double)fails);
	rtb_unmap(c, CHAINS * sizeof *c);
}

/* ------------------------------------------------------------ churn */

#define CHURN_BLOCKS 64

struct churn_job {
	rtb_rng rng;
	void *keep[CHURN_BLOCKS / 2];
	uint64_t fails;
};

static void *churn_thread(void *arg)
{
	struct churn_job *j = arg;
	void *mine[CHURN_BLOCKS];
	for (int i = 0; i < CHURN_BLOCKS; i++) {
		mine[i] = malloc(rtb_between(&j->rng, 16, 4096));
		if (mine[i])
			*(volatile char *)mine[i] = 1;
		else
			j->fails++;
	}
	for (int i = 0; i < CHURN_BLOCKS / 2; i++) {
		free(mine[2 * i]);
		j->keep[i] = mine[2 * i + 1]; /* freed by the main thread */
	}
	return NULL;
}

static void test_churn(const struct rtb_opts *o)
{
	struct churn_job *j = rtb_map(sizeof *j);
	j->rng.state = o->seed + 99;
	uint64_t threads = 0;
	uint64_t t0 = rtb_now_ns();
	uint64_t deadline = t0 + (uint64_t)(o->tput_seconds * 4 * 1e9);
	uint64_t t1 = t0;

	while (threads < 1000000 && (t1 = rtb_now_ns()) < deadline) {
		pthread_t tid;
		if (rtb_thread_start(&tid, churn_thread, j) != 0)
			break;
		pthread_join(tid, NULL);
		for (int i = 0; i < CHURN_BLOCKS / 2; i++)
			free(j->keep[i]);
		threads++;
	}
	t1 = rtb_now_ns();
	rtb_emit("tput.churn", "kthreads_s", (double)threads / ((double)(t1 - t0) / 1e9) / 1e3);
	rtb_emit("tput.churn", "fails", (double)j->fails);
	rtb_unmap(j, sizeof *j);
}

int rtb_throughput(const struct rtb_opts *o)
{
	rtb_thread_prepare();
	if (rtb_list_has(o->tests, "st"))
		test_st(o);
	if (rtb_list_has(o->tests, "xthread"))
		test_xthread(o);
	if (rtb_list_has(o->tests, "larson"))
		test_larson(o);
	if (rtb_list_has(o->tests, "churn"))
		test_churn(o);
	return 0;
}
