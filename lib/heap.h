/* SPDX-License-Identifier: MIT */
/*
 * heap.h - heaps (heap.c and the heap_*.c files) as the core sees them: a
 * lookup by address for free/realloc/malloc_usable_size of a heap's block,
 * and a thread's allocation from the heap it was bound to
 * (rtalloc_thread_use_heap).  The "Tests:" functions are heap_debug.c's,
 * in the core static library only.
 */
#ifndef RT_HEAP_H
#define RT_HEAP_H

#include "rt.h"

/* ptr is outside the space: if a heap of this process holds it, free it
 * there and return true; false otherwise (nothing done). */
RT_HIDDEN bool rt_heap_free_foreign(void *ptr, const char *call);
/* Size of a live heap block, 0 when no heap holds ptr. */
RT_HIDDEN size_t rt_heap_block_size(const void *ptr, const char *call);
/* realloc of a pointer outside the space: its heap's, or fatal. */
RT_HIDDEN void *rt_heap_realloc(void *ptr, size_t n);
/* malloc for a thread bound to heap h (errno ENOMEM when full). */
RT_HIDDEN void *rt_heap_thread_alloc(void *h, size_t n);

/* Tests: verify a heap's invariants (NULL when sound, else what broke);
 * take its lock, mark it mid-update and never return (a process killed
 * while holding it); with scramble, also leave a half-made allocation. */
RT_HIDDEN const char *rt_heap_check(rtalloc_heap_t *h);
RT_HIDDEN RT_NORETURN void rt_heap_debug_hold(rtalloc_heap_t *h, int scramble, int notify_fd);
RT_HIDDEN unsigned rt_heap_recoveries(rtalloc_heap_t *h);
/* Tests: the calling thread's FUTEX_WAKE calls and kill(pid, 0) probes
 * made by heap functions so far. */
RT_HIDDEN void rt_heap_debug_syscalls(unsigned *wakes, unsigned *probes);
/* Tests: the calling thread's priority reads in heap functions so far, and
 * how many of them were made holding a heap lock. */
RT_HIDDEN void rt_heap_debug_prio_reads(unsigned *reads, unsigned *under_lock);
/* Tests: hold the registry lock, write a byte to notify_fd, and release it
 * once *release is set. */
RT_HIDDEN void rt_heap_debug_hold_registry(int notify_fd, const int *release);
/* Tests: bytes of a heap's header (the first words of a shared object). */
RT_HIDDEN size_t rt_heap_header_bytes(void);

#endif /* RT_HEAP_H */
