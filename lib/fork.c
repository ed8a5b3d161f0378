/* SPDX-License-Identifier: MIT */
/*
 * fork.c - the pool across fork: the pthread_atfork handlers (rt_init
 * installs them) take libc's stdio list lock and every arena lock before
 * fork and release them after, in the parent; in the child they make the
 * locks anew (the growth lock too: pool.c), and have the child's memory
 * locked again at its first slow path (rt_pool_relock_child, through
 * tcache.c).  An arena lock whose unlock fails in a child of fork from a
 * signal handler is made anew by lock.c (rt_mutex_unlock_checked).
 */
#include "pool_int.h"

/* fork.  Lock order, the same as glibc's own malloc: libc's stdio list lock
 * (see glue.h), then the arena locks in index order.  The
 * growth lock is not taken (see pool.c, growth).
 *
 * fork from a signal handler: the interrupted thread (the forking one) may
 * hold an arena lock, in the middle of an operation.  That lock is not taken
 * again (it would wait for itself); the operation resumes when the handler
 * returns and completes in the parent and in the child (which has only this
 * thread): the child's re-made lock is given to the child's thread, so that
 * the operation's unlock succeeds there.  (One window is left: a signal
 * between glibc's reading of the thread's TID and its atomic exchange in
 * pthread_mutex_trylock; the child's lock word then gets the parent's TID
 * and the operation's unlock fails with EPERM: rt_arena_unlock then makes
 * the lock anew, rt_mutex_unlock_checked in lock.c.)
 *
 * What a prepare handler did is kept per thread: glibc (2.36) runs the
 * handlers of two threads that fork at once concurrently, and a signal
 * handler that interrupted a fork may fork again (nesting: a small stack).
 * Not initial-exec: only the fork handlers touch it, and the library's TLS
 * block is static anyway (rt_tc is initial-exec). */
#define RT_FORK_NEST 4
static __thread struct {
	unsigned depth;
	struct {
		unsigned held; /* arenas the forking thread held already (bit i: arena i) */
		bool stdio;    /* the prepare handler took libc's stdio list lock */
	} at[RT_FORK_NEST];
} fork_tls;

void rt_pool_fork_prepare(void)
{
	unsigned d = fork_tls.depth++;
	bool stdio = rt_libc_fork_locks_stdio();
	if (stdio)
		rt_libc_stdio_lock();
	unsigned held = 0;
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		if (rt_mutex_mine(&rt_g.arenas[i].lock) || d >= RT_FORK_NEST)
			held |= 1u << i; /* or nested too deep: neither taken nor released */
		else
			rt_arena_lock(&rt_g.arenas[i]);
	}
	if (d < RT_FORK_NEST) {
		fork_tls.at[d].held = held;
		fork_tls.at[d].stdio = stdio;
	}
}

void rt_pool_fork_parent(void)
{
	unsigned d = --fork_tls.depth;
	unsigned held = d < RT_FORK_NEST ? fork_tls.at[d].held : ~0u;
	for (unsigned i = rt_g.narenas; i-- > 0;) /* bound: RT_MAX_ARENAS */
		if (!(held & (1u << i)))
			rt_arena_unlock(&rt_g.arenas[i]);
	if (d < RT_FORK_NEST && fork_tls.at[d].stdio)
		rt_libc_stdio_unlock(); /* fork has dropped its own count already */
}

/* The child has one thread; the locks were held by the parent's forking
 * thread, which is this one under another TID: make them anew, every one
 * (libc's stdio list lock is reset by fork itself).  mlockall is not
 * inherited; it is applied again at the child's first slow path
 * (rt_tcache_fork_child: a child that only execs never pays for locking its
 * copy of the pool). */
void rt_pool_fork_child(void)
{
	rt_lock_fork_child(); /* first: an unlock that fails is repaired now */
	fork_tls.depth--;
	unsigned d = fork_tls.depth;
	unsigned held = d < RT_FORK_NEST ? fork_tls.at[d].held : 0;
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		rt_mutex_init(&rt_g.arenas[i].lock, RT_MUTEX_PI);
		if (held & (1u << i)) /* the interrupted operation's unlock must succeed */
			rt_mutex_own(&rt_g.arenas[i].lock);
	}
	rt_pool_grow_lock_init();
	rt_stats_fork_child(&rt_tc); /* first: what follows publishes statistics */
	if (rt_g.locked) {
		rt_g.locked = false;
		rt_g.relock_child = true;
		rt_tcache_fork_child();
	}
}

void rt_pool_relock_child(void)
{
	rt_g.relock_child = false;
	rt_pool_lock_memory(rt_g.opt.mlock == RTALLOC_MLOCK_OFF ? RTALLOC_MLOCK_TRY : rt_g.opt.mlock);
}
