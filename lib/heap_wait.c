/* SPDX-License-Identifier: MIT */
/*
 * heap_wait.c - waiting for a heap's memory: rtalloc_heap_alloc_timed, the
 * waiter records (struct rt_heap_waiter, in the heap's header), the
 * hand-over of a freed block to the first in line, and the futex waits and
 * wakes.  A free (heap_block.c) that finds waiters calls
 * rt_heap_serve_waiters; recovery, rtalloc_heap_destroy and a forked child
 * settle the records here.  Which heap file does what, the bounds and the
 * synchronization table are in heap.c; what the files share is in
 * heap_int.h.
 *
 * Order: by arrival (ticket), or with RTALLOC_HEAP_PRIO by the priority a
 * waiter had when it began to wait, then arrival.  A waiter tries to
 * allocate only before it queues; once queued, frees serve the queue in
 * order, and the first in line is not overtaken by smaller requests.  A
 * free hands over at most one block (one FUTEX_WAKE); the waiter that
 * receives it serves the next in line (the baton).  Whether a waiter lives
 * is a load of its record's robust `alive` lock, which the kernel clears
 * when the thread dies: no system call.
 */
#include <linux/futex.h>

#include "heap_int.h"
#include "probes.h"

/* The caller's scheduling priority (pthread_getschedparam): never with a
 * heap lock held (counted for the tests). */
static int thread_prio(void)
{
	rt_heap_counts.prio_reads++;
	rt_heap_counts.prio_locked += rt_heap_counts.locked != 0;
	return rt_os_thread_prio();
}

/* One FUTEX_WAKE (counted for the tests). */
static void wake(uint32_t *word, bool shared)
{
	rt_heap_counts.wakes++;
	rt_os_futex_wake(word, 1, shared);
}

/* A waiter record not W_FREE whose thread is gone: the kernel cleared the
 * holder of its alive lock (or nobody ever held it). */
static bool waiter_dead(const struct rt_heap_waiter *w)
{
	uint32_t word = __atomic_load_n((const uint32_t *)(const void *)&w->alive, __ATOMIC_ACQUIRE);
	return (word & FUTEX_TID_MASK) == 0;
}

/* A waiter record's alive lock: robust, not priority-inheriting (nobody
 * ever waits for it), process-shared in a shared heap. */
static int alive_init(pthread_mutex_t *m, bool shared)
{
	return rt_mutex_init(m, RT_MUTEX_ROBUST | (shared ? RT_MUTEX_SHARED : 0));
}

/* ---- the queue (lock held) ------------------------------------------------------- */

/* Hand a block to the first waiter in line, if it fits: one FUTEX_WAKE at
 * most.  The waiter passes the baton: once it has its block, it serves the
 * next in line the same way (rtalloc_heap_alloc_timed), so a free that
 * makes room for several waiters still wakes one.  Records of waiters that
 * died are dropped on the way (waiter_dead: a load, no system call). */
void rt_heap_serve_waiters(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	bool prio = H->flags & RTALLOC_HEAP_PRIO;
	/* bound: RTALLOC_HEAP_WAITERS rounds (each drops a dead record or
	 * ends), each choosing among RTALLOC_HEAP_WAITERS records */
	for (unsigned round = 0; H->nwaiters && round < NWAIT; round++) {
		struct rt_heap_waiter *best = NULL;
		for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
			struct rt_heap_waiter *w = &H->w[i];
			if (w->state != W_WAITING)
				continue;
			if (!best || (prio && w->prio > best->prio) ||
			    ((!prio || w->prio == best->prio) && w->ticket < best->ticket))
				best = w;
		}
		if (!best)
			return;
		if (rt_unlikely(waiter_dead(best))) {
			/* killed while it waited: its record goes, no block is
			 * granted to it */
			best->state = W_FREE;
			H->nwaiters--;
			continue;
		}
		void *p = rt_heap_block_alloc(h, best->size);
		if (!p)
			return; /* the first in line is not overtaken by smaller requests */
		best->result = rt_heap_offset_of(h, p);
		best->state = W_GRANTED;
		H->nwaiters--;
		__atomic_store_n(&best->futex, 1, __ATOMIC_RELEASE);
		wake(&best->futex, h->shared);
		return;
	}
}

/* Every waiter record in use and some of them may be of threads that died
 * while waiting, or before they took the block granted to them: free those
 * records (and such blocks).  No system call (waiter_dead).  Returns a free
 * record, or NULL. */
static struct rt_heap_waiter *reclaim_dead_waiter(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	struct rt_heap_waiter *found = NULL;
	for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
		struct rt_heap_waiter *w = &H->w[i];
		if (w->state == W_FREE || !waiter_dead(w))
			continue;
		if (w->state == W_WAITING)
			H->nwaiters--;
		uint64_t granted = w->state == W_GRANTED ? w->result : RTALLOC_HEAP_BAD_OFFSET;
		w->state = W_FREE;
		if (granted != RTALLOC_HEAP_BAD_OFFSET)
			rt_heap_block_free(h, rt_heap_ptr_of(h, granted), "rtalloc_heap_alloc_timed");
		if (!found && w->state == W_FREE)
			found = w;
	}
	return found;
}

/* Recovery (lock held, the holder died mid-update): the records of
 * waiters that died are dropped, the count of those that wait redone. */
void rt_heap_waiters_recover(struct rt_heap_hdr *H)
{
	unsigned nw = 0;
	for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
		struct rt_heap_waiter *w = &H->w[i];
		if (w->state != W_FREE && waiter_dead(w))
			w->state = W_FREE;
		nw += w->state == W_WAITING;
	}
	H->nwaiters = nw;
}

/* rtalloc_heap_destroy, lock held: every waiter leaves with EIDRM (one
 * FUTEX_WAKE each). */
void rt_heap_waiters_cancel(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	for (unsigned i = 0; i < NWAIT; i++) { /* bound: RTALLOC_HEAP_WAITERS */
		struct rt_heap_waiter *w = &H->w[i];
		if (w->state != W_WAITING)
			continue;
		w->state = W_CANCELLED;
		__atomic_store_n(&w->futex, 1, __ATOMIC_RELEASE);
		wake(&w->futex, h->shared);
	}
	H->nwaiters = 0;
}

/* A forked child, private heap h whose lock it has made anew: the waiters
 * were the parent's other threads, which the child does not have.  Their
 * records are dropped, a block already granted to one goes back to the
 * heap. */
void rt_heap_waiters_forget(struct rtalloc_heap *h)
{
	struct rt_heap_hdr *H = h->hdr;
	uint64_t granted[NWAIT];
	unsigned ng = 0;
	for (unsigned k = 0; k < NWAIT; k++) { /* bound: RTALLOC_HEAP_WAITERS */
		if (H->w[k].state == W_GRANTED)
			granted[ng++] = H->w[k].result;
		H->w[k].state = W_FREE;
	}
	H->nwaiters = 0;
	if (ng && rt_heap_lock(h) == 0) {
		for (unsigned k = 0; k < ng; k++) /* bound: RTALLOC_HEAP_WAITERS */
			rt_heap_block_free(h, rt_heap_ptr_of(h, granted[k]), "fork");
		rt_heap_unlock(h);
	}
}

/* ---- rtalloc_heap_alloc_timed ------------------------------------------------------ */

RT_EXPORT void *rtalloc_heap_alloc_timed(rtalloc_heap_t *h, size_t size, const struct timespec *abs)
{
	if (!rt_heap_valid(h) || !ts_ok(abs))
		return fail(EINVAL);
	__atomic_fetch_add(&h->users, 1, __ATOMIC_ACQ_REL);
	struct rt_heap_hdr *H = h->hdr;
	/* read before the lock: no system call while holding it */
	int prio = H->flags & RTALLOC_HEAP_PRIO ? thread_prio() : 0;
	void *p = NULL;
	int e = rt_heap_lock(h);
	if (e)
		goto out_unlocked;
	struct rt_heap_waiter *w = NULL;
	/* bound: the timeout; each round sleeps until a free hands a block
	 * over, the heap is destroyed or the time passes */
	for (;;) {
		if (H->dead) {
			e = EIDRM;
			break;
		}
		if (w && w->state == W_GRANTED) { /* a free handed a block over */
			p = rt_heap_ptr_of(h, w->result);
			if (rt_unlikely(!p))
				rt_heap_corrupt("heap corruption (a waiter's block is outside the heap)", w);
			break;
		}
		if (w && w->state == W_CANCELLED) {
			e = EIDRM;
			break;
		}
		/* Try ourselves only before queueing: once queued, frees serve
		 * the queue in order. */
		if (!w && (p = rt_heap_alloc_or_grow(h, size)) != NULL)
			break;
		if (abs && rt_os_now_ns() >= ts_ns(abs)) {
			e = ETIMEDOUT;
			break;
		}
		if (!w) {
			for (unsigned i = 0; i < NWAIT && !w; i++) /* bound: RTALLOC_HEAP_WAITERS */
				if (H->w[i].state == W_FREE)
					w = &H->w[i];
			if (!w)
				w = reclaim_dead_waiter(h);
			if (!w) {
				e = EAGAIN;
				break;
			}
			/* free by construction (the record was): a trylock, no
			 * system call, and no lock order with hdr->lock */
			if (alive_init(&w->alive, h->shared) || rt_mutex_trylock(&w->alive) != 0) {
				w = NULL;
				e = EAGAIN;
				break;
			}
			w->state = W_WAITING;
			w->prio = prio;
			w->pid = rt_heap_pid;
			w->ticket = H->ticket++;
			w->size = size;
			H->nwaiters++;
			rt_heap_publish(h);
			rt_probe3(heap_wait, h, size, abs ? ts_ns(abs) : 0);
		}
		__atomic_store_n(&w->futex, 0, __ATOMIC_RELAXED);
		rt_heap_unlock(h);
		rt_os_futex_wait(&w->futex, 0, abs, h->shared);
		if (rt_heap_lock(h) != 0) {
			e = EIDRM;
			rt_mutex_unlock(&w->alive); /* not left on this thread's robust list */
			w = NULL;
			goto out_unlocked;
		}
	}
	if (w) {
		rt_probe2(heap_wake, h, p ? 0 : e);
		if (w->state == W_WAITING)
			H->nwaiters--;
		rt_mutex_unlock(&w->alive);
		w->state = W_FREE;
		if (p && H->nwaiters)
			rt_heap_serve_waiters(h); /* the baton: the next in line */
	}
	rt_heap_publish(h);
	rt_heap_unlock(h);
out_unlocked:
	__atomic_fetch_sub(&h->users, 1, __ATOMIC_ACQ_REL);
	if (!p)
		errno = e ? e : ENOMEM;
	return p;
}
