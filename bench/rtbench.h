/* SPDX-License-Identifier: MIT */
/*
 * rtbench.h - the workloads of rtbench and the options they share.
 * One file per workload family: rtb_latency.c, rtb_throughput.c,
 * rtb_memory.c, rtb_startup.c, rtb_instr.c, rtb_classic.c (with rtb_trace.c);
 * rtbench.c parses the command line.
 */
#ifndef RTBENCH_H
#define RTBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtb_common.h"
#include "rtb_ring.h"

#define RTB_MAX_ENV 8

struct rtb_opts {
	bool quick;
	uint64_t seed;
	/* latency */
	const char *scenarios;  /* comma list of 1t, 2t, 2tx */
	size_t warmup, steps;   /* per thread */
	size_t slots;           /* live-set slots per thread */
	double phase_seconds;   /* time bound of any one phase */
	bool no_realloc;        /* diagnostic: free instead of realloc */
	/* throughput */
	double tput_seconds;    /* per test (per size class for "st") */
	const char *tests;      /* comma list of st, xthread, larson, churn */
	/* memory */
	size_t mem_steps, mem_slots;
	/* classic */
	double classic_seconds; /* time bound of each classic workload */
	const char *trace;      /* trace file to replay (.gz: through gzip -dc) */
	/* startup / populate */
	const char *label;
	const char *preload;
	const char *env[RTB_MAX_ENV];
	unsigned nenv;
	size_t size;
	/* set by main: VmRSS when main() started, KiB */
	long rss_at_main_kib;
};

/* Each returns a process exit status (0 = ran). */
int rtb_latency(const struct rtb_opts *o);
int rtb_throughput(const struct rtb_opts *o);
int rtb_memory(const struct rtb_opts *o);
int rtb_startup(const struct rtb_opts *o);
int rtb_startup_child(const char *label, const char *t0_ns);
int rtb_populate(const struct rtb_opts *o);
int rtb_instr(const struct rtb_opts *o);
int rtb_instr_worst(const struct rtb_opts *o);
/* `names`: comma list of larson, xmalloc, cache-scratch, cache-thrash,
 * mstress, large, trace, or "all". */
int rtb_classic(const struct rtb_opts *o, const char *names);
int rtb_classic_trace(const struct rtb_opts *o);

/*
 * One classic workload's measurement: begin before its first allocation,
 * end after its last free.  End prints, in scope "classic.NAME": seconds,
 * ops, target_ops, capped (the time bound stopped it early), time_s (the
 * time target_ops take at the rate measured), ns_per_op, faults (minor +
 * major, whole process), faults_major, hwm_kib (VmHWM, reset at begin
 * when the kernel allows: hwm_reset), fails (NULL
 * returns), errors (contents changed, blocks lost), threads.
 */
struct rtb_classic_run {
	const char *name;
	uint64_t target_ops;
	uint64_t t0, deadline;
	rtb_faults f0;
	bool hwm_reset; /* VmHWM was reset at begin (else: since exec) */
};
void rtb_classic_begin(struct rtb_classic_run *r, const struct rtb_opts *o,
		       const char *name, uint64_t target_ops);
void rtb_classic_end(const struct rtb_classic_run *r, uint64_t ops, uint64_t fails,
		     uint64_t errors, unsigned threads);

/* Is `name` in the comma-separated `list`? */
bool rtb_list_has(const char *list, const char *name);

/*
 * Per-thread preparation done in every benchmark thread before its work:
 * pre-fault some stack, and call rtalloc_thread_prepare() when the preloaded
 * allocator provides it (found with dlsym; rtbench does not link librtalloc).
 */
void rtb_thread_prepare(void);

/* Write a recognisable pattern into a block (one byte per page and both
 * ends), as a program using it would, and check it before release. */
static inline unsigned char rtb_tag(size_t n)
{
	return (unsigned char)(n ^ (n >> 8) ^ 0x5a);
}

static inline void rtb_fill(unsigned char *p, size_t n)
{
	unsigned char tag = rtb_tag(n);
	for (size_t i = 0; i < n; i += 4096)
		p[i] = tag;
	p[n - 1] = tag;
}

static inline bool rtb_check(const unsigned char *p, size_t n)
{
	unsigned char tag = rtb_tag(n);
	return p[0] == tag && p[n - 1] == tag;
}

#endif /* RTBENCH_H */
