/* SPDX-License-Identifier: MIT */
/*
 * rtb_latency.c - the latency workload: every allocator call of a steady
 * phase is timed with rdtscp.
 *
 * Each thread owns a live set of `slots` blocks.  A step picks a random
 * slot: an empty slot gets a new block (malloc 70%, calloc 15%, aligned 15%),
 * a full one is reallocated (20%) or released (80%).  Sizes follow the mix of
 * peers.md.  The stream is fixed by the seed, so every contender serves the
 * same requests.  The program writes each block (a byte per page) like a
 * real user would: a page the allocator hands out unmapped faults then, and
 * that fault is counted against the allocator.
 *
 * Scenarios: "1t" (main thread alone), "2t" (main + one thread, each with
 * its own live set), "2tx" (as 2t, but half of the releases hand the block
 * to the other thread through a ring, which frees it: op "rfree").
 *
 * Sequence per scenario: warm-up (same workload, not recorded) -> barrier ->
 * begin marker + fault counters -> barrier -> steady phase -> barrier ->
 * end marker + fault counters -> barrier -> clean-up.  The barriers keep
 * every thread's clean-up and warm-up outside the measured window.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_MALLOC, OP_FREE, OP_CALLOC, OP_REALLOC, OP_ALIGNED, OP_RFREE, OP_COUNT };
static const char *const op_name[OP_COUNT] = {
	"malloc", "free", "calloc", "realloc", "aligned", "rfree",
};

/* Quantiles written for the CDF plots. */
static const double cdf_q[] = {
	0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98,
	0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999, 0.99995, 0.99999, 1.0,
};

#define MAX_THREADS 2

struct scenario;

struct lat_thread {
	struct scenario *sc;
	unsigned id;
	rtb_rng rng;
	struct rtb_block *live;
	rtb_samples s[OP_COUNT];
	struct rtb_ring *in, *out; /* cross mode only */
	rtb_faults f0, f1;
	uint64_t fails, errors, misaligned, steps_done;
};

struct scenario {
	const char *name;
	unsigned marker;
	unsigned nthreads;
	bool cross;
	const struct rtb_opts *o;
	pthread_barrier_t bar;
	rtb_faults self0, self1;
	uint64_t t0_ns, t1_ns;
	struct lat_thread th[MAX_THREADS];
};

/* ------------------------------------------------------------ one op */

/* Time one expression in ticks; record it when `rec` is non-NULL. */
#define TIMED(rec, expr)                                   \
	do {                                               \
		rtb_samples *rec_ = (rec);                 \
		uint64_t t0_ = rtb_ticks();                \
		expr;                                      \
		uint64_t t1_ = rtb_ticks();                \
		if (rec_)                                  \
			rtb_samples_add(rec_, t1_ - t0_);  \
	} while (0)

static rtb_samples *rec_of(struct lat_thread *t, enum op op, bool timed)
{
	return timed ? &t->s[op] : NULL;
}

static void do_alloc(struct lat_thread *t, struct rtb_block *b, bool timed)
{
	static const size_t aligns[] = {16, 32, 64, 128, 256, 4096};
	size_t n = rtb_mixed_size(&t->rng);
	uint32_t kind = rtb_below(&t->rng, 100);
	unsigned char *p = NULL;

	if (kind < 70) {
		TIMED(rec_of(t, OP_MALLOC, timed), p = malloc(n));
	} else if (kind < 85) {
		TIMED(rec_of(t, OP_CALLOC, timed), p = calloc(1, n));
		if (p && (p[0] || p[n / 2] || p[n - 1]))
			t->errors++; /* calloc must return zeroed memory */
	} else {
		size_t al = aligns[rtb_below(&t->rng, 6)];
		if (kind & 1) {
			void *q = NULL;
			int rc;
			TIMED(rec_of(t, OP_ALIGNED, timed), rc = posix_memalign(&q, al, n));
			p = rc == 0 ? q : NULL;
		} else {
			/* aligned_alloc wants a multiple of the alignment (C11). */
			n = (n + al - 1) & ~(al - 1);
			TIMED(rec_of(t, OP_ALIGNED, timed), p = aligned_alloc(al, n));
		}
		if (p && ((uintptr_t)p & (al - 1)))
			t->misaligned++;
	}
	if (!p) {
		t->fails++;
		return;
	}
	rtb_fill(p, n);
	b->p = p;
	b->n = n;
}

static void do_realloc(struct lat_thread *t, struct rtb_block *b, bool timed)
{
	size_t n = rtb_mixed_size(&t->rng);
	unsigned char old_tag = rtb_tag(b->n);
	unsigned char *p;
	TIMED(rec_of(t, OP_REALLOC, timed), p = realloc(b->p, n));
	if (!p) {
		t->fails++; /* the old block is still valid and stays */
		return;
	}
	if (p[0] != old_tag)
		t->errors++; /* realloc must keep the contents */
	rtb_fill(p, n);
	b->p = p;
	b->n = n;
}

static void do_free(struct lat_thread *t, struct rtb_block *b, enum op op, bool timed)
{
	if (!rtb_check(b->p, b->n))
		t->errors++;
	TIMED(rec_of(t, op, timed), free(b->p));
	b->p = NULL;
}

/* Free up to `max` blocks the other thread handed over. */
static void drain(struct lat_thread *t, unsigned max, bool timed)
{
	struct rtb_block b;
	for (unsigned i = 0; i < max && rtb_ring_pop(t->in, &b); i++)
		do_free(t, &b, OP_RFREE, timed);
}

static void step(struct lat_thread *t, bool timed)
{
	struct rtb_block *b = &t->live[rtb_below(&t->rng, (uint32_t)t->sc->o->slots)];

	if (!b->p)
		do_alloc(t, b, timed);
	else if (rtb_below(&t->rng, 5) == 0 && !t->sc->o->no_realloc)
		do_realloc(t, b, timed);
	else if (t->out && (rtb_rand(&t->rng) & 1) && rtb_ring_push(t->out, *b))
		b->p = NULL; /* the other thread frees it */
	else
		do_free(t, b, OP_FREE, timed);

	if (t->in)
		drain(t, 2, timed);
}

/* ------------------------------------------------------- one thread */

static void *thread_main(void *arg)
{
	struct lat_thread *t = arg;
	struct scenario *sc = t->sc;
	const struct rtb_opts *o = sc->o;
	uint64_t bound_ns = (uint64_t)(o->phase_seconds * 1e9);
	size_t i;

	/* One CPU per thread, as a real-time program would do; it also keeps
	 * the two threads from sharing a CPU and timing each other's slices. */
	if (sc->nthreads > 1)
		rtb_pin_self(t->id, NULL);
	rtb_thread_prepare();

	uint64_t deadline = rtb_now_ns() + bound_ns;
	for (i = 0; i < o->warmup; i++) {
		if ((i & 255) == 0 && rtb_now_ns() > deadline)
			break;
		step(t, false);
	}

	t->f0 = rtb_faults_thread();
	pthread_barrier_wait(&sc->bar);
	if (t->id == 0) {
		sc->self0 = rtb_faults_self();
		rtb_marker(sc->marker, false);
		sc->t0_ns = rtb_now_ns();
	}
	pthread_barrier_wait(&sc->bar);

	/* ---- measured phase ---- */
	deadline = rtb_now_ns() + bound_ns;
	for (i = 0; i < o->steps; i++) {
		if ((i & 255) == 0 && rtb_now_ns() > deadline)
			break;
		step(t, true);
	}
	t->steps_done = i;
	/* ---- end of measured phase ---- */

	pthread_barrier_wait(&sc->bar);
	t->f1 = rtb_faults_thread();
	if (t->id == 0) {
		sc->t1_ns = rtb_now_ns();
		rtb_marker(sc->marker, true);
		sc->self1 = rtb_faults_self();
	}
	pthread_barrier_wait(&sc->bar);

	/* Clean-up: nobody pushes any more, so the ring can be emptied. */
	if (t->in)
		drain(t, RTB_RING_CAP, false);
	for (size_t s = 0; s < o->slots; s++)
		if (t->live[s].p)
			do_free(t, &t->live[s], OP_FREE, false);
	return NULL;
}

/* ------------------------------------------------------------ report */

static void report_op(const struct scenario *sc, enum op op)
{
	size_t cap = 0;
	for (unsigned i = 0; i < sc->nthreads; i++)
		cap += sc->th[i].s[op].n;
	if (cap == 0)
		return;

	rtb_samples all;
	rtb_samples_init(&all, cap);
	for (unsigned i = 0; i < sc->nthreads; i++)
		rtb_samples_merge(&all, &sc->th[i].s[op]);
	rtb_samples_sort(&all);

	char scope[64];
	snprintf(scope, sizeof scope, "lat.%s.%s", sc->name, op_name[op]);
	rtb_emit(scope, "n", (double)all.n);
	rtb_emit(scope, "p50_ns", rtb_quantile_ns(&all, 0.50));
	rtb_emit(scope, "p99_ns", rtb_quantile_ns(&all, 0.99));
	rtb_emit(scope, "p999_ns", rtb_quantile_ns(&all, 0.999));
	rtb_emit(scope, "p9999_ns", rtb_quantile_ns(&all, 0.9999));
	rtb_emit(scope, "max_ns", rtb_quantile_ns(&all, 1.0));
	rtb_emit(scope, "gt1us", (double)rtb_count_above_ns(&all, 1e3));
	rtb_emit(scope, "gt10us", (double)rtb_count_above_ns(&all, 1e4));
	rtb_emit(scope, "gt100us", (double)rtb_count_above_ns(&all, 1e5));

	snprintf(scope, sizeof scope, "cdf.%s.%s", sc->name, op_name[op]);
	for (size_t q = 0; q < sizeof cdf_q / sizeof cdf_q[0]; q++) {
		char metric[32];
		snprintf(metric, sizeof metric, "q%g", cdf_q[q]);
		rtb_emit(scope, metric, rtb_quantile_ns(&all, cdf_q[q]));
	}
	rtb_samples_release(&all);
}

static void report(const struct scenario *sc)
{
	char scope[64];
	uint64_t fails = 0, errors = 0, misaligned = 0, steps = 0, dropped = 0;
	long thread_faults_max = 0;

	for (unsigned i = 0; i < sc->nthreads; i++) {
		const struct lat_thread *t = &sc->th[i];
		long tf = (t->f1.minor - t->f0.minor) + (t->f1.major - t->f0.major);
		if (tf > thread_faults_max)
			thread_faults_max = tf;
		fails += t->fails;
		errors += t->errors;
		misaligned += t->misaligned;
		steps += t->steps_done;
		for (int op = 0; op < OP_COUNT; op++)
			dropped += t->s[op].dropped;
	}
	snprintf(scope, sizeof scope, "lat.%s", sc->name);
	rtb_emit(scope, "marker", sc->marker);
	rtb_emit(scope, "threads", sc->nthreads);
	rtb_emit(scope, "steps", (double)steps);
	rtb_emit(scope, "seconds", (double)(sc->t1_ns - sc->t0_ns) / 1e9);
	rtb_emit(scope, "faults_minor", (double)(sc->self1.minor - sc->self0.minor));
	rtb_emit(scope, "faults_major", (double)(sc->self1.major - sc->self0.major));
	rtb_emit(scope, "faults_thread_max", (double)thread_faults_max);
	rtb_emit(scope, "fails", (double)fails);
	rtb_emit(scope, "errors", (double)errors);
	rtb_emit(scope, "misaligned", (double)misaligned);
	rtb_emit(scope, "dropped_samples", (double)dropped);

	for (int op = 0; op < OP_COUNT; op++)
		report_op(sc, (enum op)op);
}

/* --------------------------------------------------------- scenario */

static void run_scenario(const struct rtb_opts *o, const char *name,
			 unsigned marker, unsigned nthreads, bool cross)
{
	struct scenario *sc = rtb_map(sizeof *sc);
	struct rtb_ring *rings = NULL;
	pthread_t tid[MAX_THREADS];

	sc->name = name;
	sc->marker = marker;
	sc->nthreads = nthreads;
	sc->cross = cross;
	sc->o = o;
	pthread_barrier_init(&sc->bar, NULL, nthreads);
	if (cross)
		rings = rtb_map(2 * sizeof *rings);

	for (unsigned i = 0; i < nthreads; i++) {
		struct lat_thread *t = &sc->th[i];
		t->sc = sc;
		t->id = i;
		t->rng.state = o->seed * 1000003u + i;
		t->live = rtb_map(o->slots * sizeof *t->live);
		for (int op = 0; op < OP_COUNT; op++)
			rtb_samples_init(&t->s[op], op == OP_RFREE || op == OP_FREE
							   ? 2 * o->steps : o->steps);
		if (cross) {
			t->in = &rings[i];
			t->out = &rings[(i + 1) % nthreads];
		}
	}

	/* Thread 0 is the calling (main) thread, as in a program whose main
	 * thread runs the real-time loop; the others are created for it. */
	cpu_set_t saved;
	bool have_saved = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
	for (unsigned i = 1; i < nthreads; i++)
		if (rtb_thread_start(&tid[i], thread_main, &sc->th[i]) != 0) {
			fprintf(stderr, "rtbench: cannot create a thread\n");
			exit(2);
		}
	thread_main(&sc->th[0]);
	for (unsigned i = 1; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	if (have_saved)
		rtb_unpin_self(&saved);

	report(sc);

	for (unsigned i = 0; i < nthreads; i++) {
		rtb_unmap(sc->th[i].live, o->slots * sizeof *sc->th[i].live);
		for (int op = 0; op < OP_COUNT; op++)
			rtb_samples_release(&sc->th[i].s[op]);
	}
	if (rings)
		rtb_unmap(rings, 2 * sizeof *rings);
	pthread_barrier_destroy(&sc->bar);
	rtb_unmap(sc, sizeof *sc);
}

/* Cost of the timing itself: an empty timed region. */
static void report_timer(void)
{
	rtb_samples s;
	rtb_samples_init(&s, 100000);
	for (size_t i = 0; i < s.cap; i++)
		TIMED(&s, __asm__ volatile("" ::: "memory"));
	rtb_samples_sort(&s);
	rtb_emit("lat.timer", "p50_ns", rtb_quantile_ns(&s, 0.5));
	rtb_emit("lat.timer", "p99_ns", rtb_quantile_ns(&s, 0.99));
	rtb_emit("lat.timer", "p9999_ns", rtb_quantile_ns(&s, 0.9999));
	rtb_emit("lat.timer", "max_ns", rtb_quantile_ns(&s, 1.0));
	rtb_samples_release(&s);
}

int rtb_latency(const struct rtb_opts *o)
{
	report_timer();
	if (rtb_list_has(o->scenarios, "1t"))
		run_scenario(o, "1t", 1, 1, false);
	if (rtb_list_has(o->scenarios, "2t"))
		run_scenario(o, "2t", 2, 2, false);
	if (rtb_list_has(o->scenarios, "2tx"))
		run_scenario(o, "2tx", 3, 2, true);
	return 0;
}
