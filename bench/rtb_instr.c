/* SPDX-License-Identifier: MIT */
/*
 * rtb_instr.c - instruction counts of malloc+free, made to be run under
 *   valgrind --tool=callgrind --collect-atstart=no \
 *            --toggle-collect='rtb_ir_*' rtbench instr
 *
 * Callgrind counts user-space instructions exactly, whatever the machine
 * noise, so these are the figures to compare between runs and machines.
 * Only the rtb_ir_* functions (and what they call) are counted.  After each
 * measured call, a client request dumps the counts so far into a file of
 * its own whose trigger reads "<kind>:<pairs>"; bench/report.py divides.
 *
 *   fast:N    N pairs malloc(32)/free after warm-up: the fast path;
 *   loop:N    the same loop without the calls: the harness overhead;
 *   empty:1   one call of an rtb_ir_ wrapper doing nothing: overhead of a
 *             single dumped pair;
 *   mixed:1   one pair (free a random block of a 1024-block live set of the
 *             peers.md size mix, malloc a new one), dumped one by one: the
 *             largest of these is the worst path seen;
 *   sweep:1   one pair per power-of-two size 16 B .. 1 MiB, twice;
 *   thread:1  the first pair of a new thread (cache set-up paths).
 *
 * `rtbench instr-worst` (librtalloc only: it relies on a pool that fails
 * when full, RTALLOC_ON_EXHAUST=fail) runs the fragmenting pattern that once
 * made one call walk the whole pool: fill the pool with 16 B blocks, free
 * all but the first block of each page, free those, then
 *   wfree:1     each of the last 64 frees, one by one (flushes that empty pages);
 *   w32k:1      malloc(32 KiB) + free;
 *   w256k:1     malloc(256 KiB) + free.
 * It runs the pattern uninstrumented (callgrind --instr-atstart=no) and
 * switches instrumentation on for the measured calls only.
 *
 * Without <valgrind/callgrind.h> the dumps are no-ops and the workload
 * just runs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define RTB_HAVE_CALLGRIND 1
#endif
#endif
#ifndef RTB_HAVE_CALLGRIND
#define RTB_HAVE_CALLGRIND 0
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#define CALLGRIND_START_INSTRUMENTATION ((void)0)
#endif

#define FAST_PAIRS 20000
#define MIXED_SLOTS 1024
#define MIXED_WARMUP 50000
#define MIXED_DUMPS 500

/* Opaque to the compiler: it must not merge or elide the pair. */
static inline void escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void dump(const char *kind, unsigned pairs)
{
	char trigger[64];
	snprintf(trigger, sizeof trigger, "%s:%u", kind, pairs);
	CALLGRIND_DUMP_STATS_AT(trigger);
}

/* ------------------------------------------------ counted functions */

__attribute__((noinline)) void rtb_ir_fast(unsigned n);
__attribute__((noinline)) void rtb_ir_loop(unsigned n);
__attribute__((noinline)) void rtb_ir_empty(struct rtb_block *b, size_t n);
__attribute__((noinline)) void rtb_ir_swap(struct rtb_block *b, size_t n);

static inline void fast_pairs(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char *p = malloc(32);
		escape(p);
		free(p);
	}
}

void rtb_ir_fast(unsigned n)
{
	fast_pairs(n);
}

void rtb_ir_loop(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char *p = (char *)&n;
		escape(p);
		escape(p);
	}
}

static inline void swap(struct rtb_block *b, size_t n)
{
	free(b->p);
	b->p = malloc(n);
	b->n = n;
	escape(b->p);
}

void rtb_ir_swap(struct rtb_block *b, size_t n)
{
	swap(b, n);
}

void rtb_ir_empty(struct rtb_block *b, size_t n)
{
	b->n = n;
	escape(b->p);
}

/* ---------------------------------------------------------- driver */

static void *first_pair_thread(void *arg)
{
	struct rtb_block *b = arg;
	rtb_ir_swap(b, 64); /* malloc(64) is the first call of this thread */
	dump("thread", 1);
	free(b->p);
	b->p = NULL;
	return NULL;
}

/* ------------------------------------------- the fragmenting pattern */

__attribute__((noinline)) void rtb_ir_free(void *p);
void rtb_ir_free(void *p)
{
	free(p);
}

int rtb_instr_worst(const struct rtb_opts *o)
{
	(void)o;
	size_t cap = (size_t)1 << 27; /* pointers: enough for 2 GiB of 16 B blocks */
	void **v = rtb_map(cap * sizeof *v);
	size_t n = 0;
	while (n < cap && (v[n] = malloc(16)) != NULL)
		n++;
	if (n == cap) {
		fprintf(stderr, "rtbench: instr-worst: the pool did not run out (RTALLOC_ON_EXHAUST=fail?)\n");
		return 1;
	}
	size_t kept = 0, last = 0;
	for (size_t i = 0; i < n; i++) { /* all but the first block of each page */
		if (((uintptr_t)v[i] & 4095) == 0)
			v[kept++] = v[i];
		else
			free(v[i]);
	}
	last = kept > 64 ? kept - 64 : 0;
	for (size_t i = 0; i < last; i++)
		free(v[i]);
	CALLGRIND_START_INSTRUMENTATION;
	for (size_t i = last; i < kept; i++) {
		rtb_ir_free(v[i]);
		dump("wfree", 1);
	}
	struct rtb_block b = {NULL, 0};
	rtb_ir_swap(&b, 32768);
	dump("w32k", 1);
	free(b.p);
	b.p = NULL;
	rtb_ir_swap(&b, 262144);
	dump("w256k", 1);
	free(b.p);
	for (int i = 0; i < 5; i++) {
		rtb_ir_empty(&b, 32);
		dump("empty", 1);
	}
	rtb_unmap(v, cap * sizeof *v);
	rtb_emit("instr", "worst_blocks", (double)n);
	return 0;
}

int rtb_instr(const struct rtb_opts *o)
{
	rtb_rng rng = {o->seed + 11};
	struct rtb_block *live = rtb_map(MIXED_SLOTS * sizeof *live);

	if (!RTB_HAVE_CALLGRIND)
		fprintf(stderr, "rtbench: built without valgrind/callgrind.h; "
				"instr runs but cannot dump counts\n");
	rtb_thread_prepare();

	/* Fast path. */
	fast_pairs(1000);
	rtb_ir_fast(FAST_PAIRS);
	dump("fast", FAST_PAIRS);
	rtb_ir_loop(FAST_PAIRS);
	dump("loop", FAST_PAIRS);
	for (int i = 0; i < 5; i++) {
		rtb_ir_empty(&live[0], 32);
		dump("empty", 1);
	}

	/* Mixed sizes on a live set: warm up, then dump pair by pair. */
	for (unsigned i = 0; i < MIXED_WARMUP; i++)
		swap(&live[rtb_below(&rng, MIXED_SLOTS)], rtb_mixed_size(&rng));
	for (unsigned i = 0; i < MIXED_DUMPS; i++) {
		struct rtb_block *b = &live[rtb_below(&rng, MIXED_SLOTS)];
		size_t n = rtb_mixed_size(&rng);
		rtb_ir_swap(b, n);
		dump("mixed", 1);
	}

	/* Every size class, twice: the first visit may take a refill path. */
	struct rtb_block one = {NULL, 0};
	for (int pass = 0; pass < 2; pass++)
		for (size_t n = 16; n <= (1u << 20); n <<= 1) {
			rtb_ir_swap(&one, n);
			dump("sweep", 1);
		}
	free(one.p);

	/* The first pair of a fresh thread. */
	pthread_t tid;
	struct rtb_block tb = {NULL, 0};
	if (rtb_thread_start(&tid, first_pair_thread, &tb) == 0)
		pthread_join(tid, NULL);

	for (unsigned s = 0; s < MIXED_SLOTS; s++)
		free(live[s].p);
	rtb_unmap(live, MIXED_SLOTS * sizeof *live);
	rtb_emit("instr", "fast_pairs", FAST_PAIRS);
	rtb_emit("instr", "callgrind_header", RTB_HAVE_CALLGRIND);
	return 0;
}
