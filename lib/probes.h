/* SPDX-License-Identifier: MIT */
/*
 * probes.h - USDT probes (provider "rtalloc") at every slow path, for perf,
 * bpftrace and SystemTap.  With <sys/sdt.h> (Debian: systemtap-sdt-dev;
 * meson option probes) each probe is one nop in the code and a note in the
 * ELF file (.note.stapsdt); a tracer that attaches rewrites the nop into a
 * breakpoint.  Without a tracer it costs the nop and the evaluation of its
 * arguments, which are values the path has in registers already.  No probe
 * is on a fast path.  Without the header they compile to nothing.
 *
 *   probe         where                       arguments
 *   refill        tcache.c, a class's refill  class, blocks got
 *   flush         tcache.c, a class's flush   class, blocks given back
 *   large_alloc   tcache.c, a huge block      bytes, pages
 *   large_free    tcache.c                    bytes
 *   grow          pool.c, the pool grew       bytes added, arena
 *   exhausted     tcache.c, malloc -> ENOMEM  bytes asked
 *   lock_wait     lock.c, an arena's or a heap's lock taken after
 *                 waiting                     lock address, ns waited
 *   rt_begin      tcache.c, a section begins  section number (the thread's:
 *                 (rtalloc_rt_begin)          1, 2, ...)
 *   rt_end        tcache.c, it ends           section number, minor faults
 *                 (rtalloc_rt_end)            in it
 *   heap_wait     heap_wait.c, a wait begins  heap, bytes, deadline (ns of
 *                                             CLOCK_MONOTONIC; 0: none)
 *   heap_wake     heap_wait.c, the wait ends  heap, 0 (a block) or the errno
 *
 * tests/system/check_probes.sh reads the notes of the built library: the
 * list above and the library's probes must agree.
 */
#ifndef RT_PROBES_H
#define RT_PROBES_H

#if defined(RT_HAVE_SDT) && RT_HAVE_SDT
#include <sys/sdt.h>
#define rt_probe1(name, a) DTRACE_PROBE1(rtalloc, name, a)
#define rt_probe2(name, a, b) DTRACE_PROBE2(rtalloc, name, a, b)
#define rt_probe3(name, a, b, c) DTRACE_PROBE3(rtalloc, name, a, b, c)
#else
#define rt_probe1(name, a) ((void)0)
#define rt_probe2(name, a, b) ((void)0)
#define rt_probe3(name, a, b, c) ((void)0)
#endif

#endif /* RT_PROBES_H */
