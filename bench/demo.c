/* SPDX-License-Identifier: MIT */
/*
 * demo.c - rtdemo, the program behind bench/demo: a periodic real-time task.
 *
 * Every millisecond (--hz) the task wakes up at an absolute time
 * (clock_nanosleep TIMER_ABSTIME), measures how late it woke, and does some
 * memory churn: --ops malloc or free calls on a live set of blocks of mixed
 * sizes (8 B .. 1 MiB, the mix bench/README.md describes), writing to what it
 * gets like a real program would.  It runs under SCHED_FIFO when permitted.
 * A cycle that wakes more than a period late skips the periods it missed
 * (counted as overruns) rather than running them back to back, so that one
 * hiccup of the machine is one late cycle, not a burst of them.
 *
 * It knows nothing of the allocator: bench/demo runs it under LD_PRELOAD of
 * glibc's own malloc, the glibc real-time recipe and librtalloc.  When the
 * preloaded allocator is librtalloc (found with dlsym, never linked), the
 * task calls rtalloc_thread_prepare() before its loop and marks each cycle's
 * work as a real-time section (rtalloc_rt_begin/rtalloc_rt_end), as a real
 * program would, so that rtalloc-stat shows the loop's sections, and reads
 * rtalloc_stats() after the first FIRST_CYCLES cycles: the slow-path entries
 * inside their sections (rt_slow_first; bench/demo shows them without and
 * with a recorded profile, RTALLOC_PROFILE).
 *
 * Results are "R<TAB>demo<TAB>metric<TAB>value" lines, and histograms
 * "H<TAB>kind<TAB>ns<TAB>count" (kind: calls, late, work; ns the lower end
 * of a bucket, see bucket_ns) that bench/demo sums over several runs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, RTLD_DEFAULT, ... */
#endif
#include "rtb_common.h"
#include "../include/rtalloc.h" /* struct rtalloc_stats only: nothing is linked */

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKER_ID 16 /* strace markers of the periodic loop */
#define FIRST_CYCLES 10 /* rt_slow_first: slow-path entries in these cycles' sections */

struct block {
	unsigned char *p;
	size_t n;
};

struct demo {
	double seconds;
	unsigned hz, ops, slots;
	int prio;
	bool fifo;
	rtb_rng rng;
	struct block *live;
	rtb_samples late, calls, work;
	uint64_t fails, overruns, skipped;
	/* librtalloc's entry points, NULL under another allocator */
	int (*thread_prepare)(void);
	void (*rt_begin)(void);
	void (*rt_end)(void);
	int (*stats)(struct rtalloc_stats *);
	uint64_t rt_slow0, rt_slow_first; /* rtalloc_stats().rt_slow before the loop, then of the first cycles */
};

static void parse_args(struct demo *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"hz", required_argument, NULL, 'z'},
		{"ops", required_argument, NULL, 'o'},
		{"prio", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	d->seconds = 3;
	d->hz = 1000;
	d->ops = 16;
	d->prio = 80;
	d->slots = 256;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': d->seconds = strtod(optarg, NULL); break;
		case 'z': d->hz = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'o': d->ops = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': d->prio = atoi(optarg); break;
		case 'h':
			puts("usage: rtdemo [--seconds S] [--hz N] [--ops N] [--prio P]\n"
			     "A periodic task doing N malloc/free per cycle; see bench/demo.");
			exit(0);
		default: exit(2);
		}
	}
	if (d->seconds <= 0 || d->seconds > 600 || d->hz == 0 || d->hz > 100000 ||
	    d->ops == 0 || d->ops > 1000) {
		fprintf(stderr, "rtdemo: --seconds must be in (0, 600], --hz in [1, 100000], "
				"--ops in [1, 1000]\n");
		exit(2);
	}
}

/* SCHED_FIFO if we may; a demo that cannot get it still runs. */
static bool try_fifo(int prio)
{
	struct sched_param sp = {.sched_priority = prio};
	return sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
}

/* librtalloc's own calls, when it is the preloaded allocator. */
static void find_rtalloc(struct demo *d)
{
	void *sym;
	sym = dlsym(RTLD_DEFAULT, "rtalloc_thread_prepare");
	memcpy(&d->thread_prepare, &sym, sizeof d->thread_prepare);
	sym = dlsym(RTLD_DEFAULT, "rtalloc_rt_begin");
	memcpy(&d->rt_begin, &sym, sizeof d->rt_begin);
	sym = dlsym(RTLD_DEFAULT, "rtalloc_rt_end");
	memcpy(&d->rt_end, &sym, sizeof d->rt_end);
	if (!d->rt_begin || !d->rt_end)
		d->rt_begin = d->rt_end = NULL;
	sym = dlsym(RTLD_DEFAULT, "rtalloc_stats");
	memcpy(&d->stats, &sym, sizeof d->stats);
}

/* Slow-path entries inside real-time sections so far (0 without librtalloc). */
static uint64_t rt_slow_now(struct demo *d)
{
	struct rtalloc_stats s = {.size = sizeof(s)};
	return d->stats && d->stats(&s) == 0 ? s.rt_slow : 0;
}

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (unsigned char)i;
	p[n - 1] = 1;
}

/* One malloc or free on a random slot, timed. */
static void churn_once(struct demo *d)
{
	struct block *b = &d->live[rtb_below(&d->rng, d->slots)];
	if (b->p) {
		uint64_t t0 = rtb_ticks();
		free(b->p);
		uint64_t t1 = rtb_ticks();
		rtb_samples_add(&d->calls, t1 - t0);
		b->p = NULL;
		return;
	}
	size_t n = rtb_mixed_size(&d->rng);
	uint64_t t0 = rtb_ticks();
	unsigned char *p = malloc(n);
	uint64_t t1 = rtb_ticks();
	rtb_samples_add(&d->calls, t1 - t0);
	if (!p) {
		d->fails++;
		return;
	}
	fill(p, n);
	b->p = p;
	b->n = n;
}

static void timespec_add_ns(struct timespec *t, uint64_t ns)
{
	t->tv_nsec += (long)(ns % 1000000000ull);
	t->tv_sec += (time_t)(ns / 1000000000ull);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

static void periodic_loop(struct demo *d, uint64_t cycles)
{
	uint64_t period_ns = 1000000000ull / d->hz;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);

	for (uint64_t c = 0; c < cycles; c++) {
		timespec_add_ns(&next, period_ns);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		uint64_t now = rtb_now_ns();
		uint64_t due = (uint64_t)next.tv_sec * 1000000000ull + (uint64_t)next.tv_nsec;
		uint64_t late_ns = now > due ? now - due : 0;
		rtb_samples_add(&d->late, (uint64_t)((double)late_ns / rtb_ns_per_tick()));
		if (late_ns >= period_ns) {
			/* The periods missed are skipped: the next wake-up is
			 * the first period boundary still ahead. */
			uint64_t missed = late_ns / period_ns;
			d->overruns++;
			d->skipped += missed;
			timespec_add_ns(&next, missed * period_ns);
		}

		/* The cycle's work: its calls and the writes to their memory
		 * (the section marks, one getrusage each, are not part of it). */
		if (d->rt_begin)
			d->rt_begin();
		uint64_t t0 = rtb_ticks();
		for (unsigned i = 0; i < d->ops; i++)
			churn_once(d);
		rtb_samples_add(&d->work, rtb_ticks() - t0);
		if (d->rt_end)
			d->rt_end();
		if (c + 1 == FIRST_CYCLES || (c + 1 == cycles && cycles < FIRST_CYCLES))
			d->rt_slow_first = rt_slow_now(d) - d->rt_slow0;
	}
}

/* The histogram bucket of a sample: its lower end in ns, 10 ns wide below
 * 10 us, 100 ns below 100 us, 1 us below 1 ms, 10 us above. */
static uint64_t bucket_ns(uint32_t ticks)
{
	uint64_t ns = (uint64_t)rtb_ticks_to_ns(ticks);
	uint64_t step = ns < 10000 ? 10 : ns < 100000 ? 100 : ns < 1000000 ? 1000 : 10000;
	return ns / step * step;
}

/* Sorted samples as histogram lines (the buckets rise with the samples). */
static void emit_histogram(const char *kind, const rtb_samples *s)
{
	size_t i = 0;
	while (i < s->n) {
		uint64_t b = bucket_ns(s->v[i]);
		size_t j = i + 1;
		while (j < s->n && bucket_ns(s->v[j]) == b)
			j++;
		printf("H\t%s\t%llu\t%zu\n", kind, (unsigned long long)b, j - i);
		i = j;
	}
}

int main(int argc, char **argv)
{
	static struct demo d;
	parse_args(&d, argc, argv);
	rtb_out_init();
	rtb_clock_calibrate(20);

	uint64_t cycles = (uint64_t)(d.seconds * d.hz);
	if (cycles == 0)
		cycles = 1;
	d.rng.state = 42;
	d.live = rtb_map(d.slots * sizeof *d.live);
	rtb_samples_init(&d.late, cycles);
	rtb_samples_init(&d.work, cycles);
	rtb_samples_init(&d.calls, cycles * d.ops);

	/* Start-up: what a real-time program does before its loop. */
	d.fifo = try_fifo(d.prio);
	find_rtalloc(&d);
	if (d.thread_prepare && d.thread_prepare() != 0)
		fprintf(stderr, "rtdemo: rtalloc_thread_prepare failed\n");
	rtb_prefault_stack(64 * 1024);
	for (unsigned i = 0; i < d.slots / 2; i++)
		churn_once(&d);
	d.calls.n = 0; /* start-up calls are not part of the loop */

	d.rt_slow0 = rt_slow_now(&d);
	rtb_faults f0 = rtb_faults_self();
	rtb_marker(MARKER_ID, false);
	periodic_loop(&d, cycles);
	rtb_marker(MARKER_ID, true);
	rtb_faults f1 = rtb_faults_self();

	rtb_samples_sort(&d.late);
	rtb_samples_sort(&d.calls);
	rtb_samples_sort(&d.work);
	rtb_emit("demo", "fifo", d.fifo);
	rtb_emit("demo", "rt_sections", d.rt_begin != NULL);
	rtb_emit("demo", "cycles", (double)cycles);
	rtb_emit("demo", "overruns", (double)d.overruns);
	rtb_emit("demo", "skipped", (double)d.skipped);
	rtb_emit("demo", "calls", (double)d.calls.n);
	rtb_emit("demo", "calls_over_10us", (double)rtb_count_above_ns(&d.calls, 10e3));
	rtb_emit("demo", "calls_over_100us", (double)rtb_count_above_ns(&d.calls, 100e3));
	rtb_emit("demo", "calls_max_us", rtb_quantile_ns(&d.calls, 1.0) / 1e3);
	rtb_emit("demo", "late_max_us", rtb_quantile_ns(&d.late, 1.0) / 1e3);
	rtb_emit("demo", "work_max_us", rtb_quantile_ns(&d.work, 1.0) / 1e3);
	rtb_emit("demo", "faults_minor", (double)(f1.minor - f0.minor));
	rtb_emit("demo", "faults_major", (double)(f1.major - f0.major));
	rtb_emit("demo", "fails", (double)d.fails);
	rtb_emit("demo", "rt_slow_first", (double)d.rt_slow_first);
	/* The addresses of the strace markers, for bench/demo to find them. */
	printf("R\tdemo\tmarker_begin\t%#lx\n", RTB_MARK_BASE + ((2ul * MARKER_ID) << 12));
	printf("R\tdemo\tmarker_end\t%#lx\n", RTB_MARK_BASE + ((2ul * MARKER_ID + 1) << 12));
	emit_histogram("calls", &d.calls);
	emit_histogram("late", &d.late);
	emit_histogram("work", &d.work);

	for (unsigned i = 0; i < d.slots; i++)
		free(d.live[i].p);
	return 0;
}
