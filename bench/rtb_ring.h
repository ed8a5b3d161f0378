/* SPDX-License-Identifier: MIT */
/*
 * rtb_ring.h - a bounded single-producer/single-consumer ring of blocks,
 * used to hand memory from one thread to another so that the other thread
 * frees it (the "cross-thread free" pattern of producer/consumer programs).
 * Lock-free and allocation-free: it lives in rtb_map()ed memory.
 */
#ifndef RTB_RING_H
#define RTB_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define RTB_RING_CAP 256 /* power of two */

struct rtb_block {
	unsigned char *p;
	size_t n; /* requested size */
};

struct rtb_ring {
	/* Head and tail on separate cache lines: one is written only by the
	 * consumer, the other only by the producer. */
	_Alignas(64) _Atomic size_t head; /* next slot to pop */
	_Alignas(64) _Atomic size_t tail; /* next slot to push */
	_Alignas(64) struct rtb_block slot[RTB_RING_CAP];
};

static inline bool rtb_ring_push(struct rtb_ring *r, struct rtb_block b)
{
	size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	if (t - h == RTB_RING_CAP)
		return false;
	r->slot[t & (RTB_RING_CAP - 1)] = b;
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return true;
}

static inline bool rtb_ring_pop(struct rtb_ring *r, struct rtb_block *b)
{
	size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (h == t)
		return false;
	*b = r->slot[h & (RTB_RING_CAP - 1)];
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return true;
}

static inline void rtb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#endif /* RTB_RING_H */
