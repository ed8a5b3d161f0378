/* SPDX-License-Identifier: MIT */
/*
 * faults.h - RTALLOC_FAULTS=locate: where the page faults of real-time
 * sections happen (lib/faults.c), and the reader's side shared with
 * rtalloc-stat (lib/faults_sym.c: function names from the symbol tables,
 * kinds of memory from /proc/PID/maps).  The table itself is part of the
 * statistics region (stats.h, struct rt_stats_faults).
 */
#ifndef RT_FAULTS_H
#define RT_FAULTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stats.h"

/* ---- the library (faults.c; every function does nothing unless
 * RTALLOC_FAULTS=locate) ---- */

/* At initialisation, once the region is there: the table's header. */
void rt_faults_init(struct rt_stats_region *r);
/* Open the calling thread's event (rtalloc_thread_prepare, or the first
 * rtalloc_rt_begin of a thread that did not prepare): system calls, outside
 * any real-time section. */
void rt_faults_thread_open(void);
/* The last thing rtalloc_rt_begin does: what the ring holds is forgotten
 * (faults outside sections).  No system call. */
void rt_faults_section_begin(void);
/* In rtalloc_rt_end, after the section: the section's samples into the
 * table; faults = the faults the thread took in it (getrusage), to count
 * those not located.  No system call. */
void rt_faults_section_end(uint64_t faults);
void rt_faults_thread_exit(void); /* close the event */
void rt_faults_fork_child(void);  /* the parent's event is not the child's */
/* Append ,"rt_fault_places":[...] to the exit report's JSON (at most len
 * bytes, NUL-terminated); returns the bytes appended. */
size_t rt_faults_report_json(char *buf, size_t len);

/* ---- readers (faults_sym.c: the library at exit, rtalloc-stat) ---- */

#define RT_FAULT_ROWS 64 /* places looked up: the busiest 64 */

struct rt_fault_row {
	char function[96]; /* a symbol, "FILE+0xOFFSET" or "0xADDRESS" */
	char kind[112];    /* stack, heap, code, anonymous, file PATH, unmapped, [vdso]... */
	uint64_t count;
	uint64_t ip; /* one code address of the row */
};

/* The busiest RT_FAULT_ROWS places of `places` (n of them, as copied from
 * a region of process pid; 0: this process), looked up and merged by
 * function and kind, busiest first, into rows (RT_FAULT_ROWS of them).
 * Returns the number of rows.  Opens /proc/PID/maps and the mapped files:
 * not for a real-time path. */
unsigned rt_fault_rows(pid_t pid, const struct rt_fault_place *places, unsigned n,
		       struct rt_fault_row *rows);

#endif /* RT_FAULTS_H */
