/* SPDX-License-Identifier: MIT */
/*
 * lock.c - every lock librtalloc makes and takes, and the one place of the
 * library that knows how glibc's mutexes are laid out (besides heap_shm.c's
 * check of a shared heap's lock word, which another process wrote).
 *
 *   rt_mutex_init   every mutex: priority-inheriting (RT_MUTEX_PI) unless
 *                   nobody ever waits for it, robust and process-shared for
 *                   heaps.
 *   rt_mutex_lock   taking, trying and letting go of any of them, marking
 *   ... _unlock     a robust one consistent after its owner died, and
 *                   destroying one: the only calls of pthread_mutex_* in
 *                   the library.
 *   rt_arena_lock   a bounded spin, then the kernel's PI path; unlock, with
 *                   the one failure a fork from a signal handler can cause
 *                   (rt_mutex_unlock_checked, told by fork.c's child
 *                   handler that the process is a child).
 *   rt_mutex_lock_counted  a heap's lock: like rt_mutex_lock, the wait
 *                   counted as the arena lock's is (rt_lock_waits).
 *   rt_mutex_mine   does this thread hold a PI mutex (read from the lock
 *   rt_mutex_own    word), and making it the owner of a fresh one: what
 *                   fork.c's handlers need when fork interrupted a
 *                   thread inside an arena operation.
 * The allocator's core (buddy.c, arena.c) calls only these: it references
 * no libc or system-call symbol; no object but this one, os.c and glue.c
 * references pthread_mutex_* (tests/system/check_core.sh).
 */
#include <errno.h>
#include <linux/futex.h>

#include "os.h"
#include "probes.h"

__thread struct rt_lock_waits rt_lock_waits __attribute__((tls_model("initial-exec")));

/* The calling thread waited for the lock m since t0: counted (the thread's
 * own record, no atomics: stats.c reads it for the thread), and a probe. */
static RT_COLD void waited(const void *m, uint64_t t0)
{
	uint64_t ns = rt_os_now_ns() - t0;
	struct rt_lock_waits *w = &rt_lock_waits;
	rt_store(&w->waits, w->waits + 1);
	if (ns > w->max_ns)
		rt_store(&w->max_ns, ns);
	if (ns > w->recent_max_ns)
		rt_store(&w->recent_max_ns, ns);
	rt_probe2(lock_wait, m, ns);
}

int rt_mutex_init(pthread_mutex_t *m, unsigned flags)
{
	pthread_mutexattr_t at;
	int e = pthread_mutexattr_init(&at);
	if (e)
		return e;
	if (flags & RT_MUTEX_PI)
		e = pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT);
	if (!e && (flags & RT_MUTEX_ROBUST))
		e = pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	if (!e && (flags & RT_MUTEX_SHARED))
		e = pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	if (!e)
		e = pthread_mutex_init(m, &at);
	pthread_mutexattr_destroy(&at);
	return e;
}

int rt_mutex_lock(pthread_mutex_t *m) { return pthread_mutex_lock(m); }
int rt_mutex_trylock(pthread_mutex_t *m) { return pthread_mutex_trylock(m); }
int rt_mutex_unlock(pthread_mutex_t *m) { return pthread_mutex_unlock(m); }
int rt_mutex_consistent(pthread_mutex_t *m) { return pthread_mutex_consistent(m); }
void rt_mutex_destroy(pthread_mutex_t *m) { pthread_mutex_destroy(m); }

int rt_mutex_lock_counted(pthread_mutex_t *m)
{
	int e = pthread_mutex_trylock(m);
	if (rt_likely(e != EBUSY))
		return e; /* taken (0, or EOWNERDEAD: taken from a dead owner), or an error */
	uint64_t t0 = rt_os_now_ns();
	e = pthread_mutex_lock(m);
	waited(m, t0);
	return e;
}

/* The lock is held for at most one batch: when it is taken, its holder is
 * most likely running on another CPU and about to let go.  Watch it for a
 * bounded while (RT_LOCK_SPIN pauses, about a microsecond) before blocking in
 * the kernel's priority-inheriting path, which costs system calls and
 * several microseconds; a holder that was preempted still gets the waiter's
 * priority after the spin. */
#define RT_LOCK_SPIN 64

void rt_arena_lock(struct rt_arena *a)
{
	for (int i = 0; i < RT_LOCK_SPIN; i++) { /* bound: RT_LOCK_SPIN */
		if (__atomic_load_n(&a->lock.__data.__lock, __ATOMIC_RELAXED) == 0 &&
		    pthread_mutex_trylock(&a->lock) == 0)
			return;
		rt_cpu_relax();
	}
	uint64_t t0 = rt_os_now_ns();
	int e = pthread_mutex_lock(&a->lock);
	waited(&a->lock, t0);
	if (rt_unlikely(e != 0))
		rt_fatal("pthread_mutex_lock", "cannot take the arena lock at", a);
}

/* Set by fork.c's child handler: this process is a child of fork. */
static bool in_fork_child;

void rt_lock_fork_child(void) { in_fork_child = true; }

/* An unlock of a PI lock the thread took fails (EPERM) only in the child of a
 * fork from a signal handler that interrupted pthread_mutex_trylock before
 * its atomic exchange, which then wrote the parent's TID in the child's lock
 * (fork.c).  The child has one thread, which holds no such lock now: make
 * the lock anew.  Anywhere else, a bug: never guess. */
void rt_mutex_unlock_checked(pthread_mutex_t *m)
{
	if (rt_likely(pthread_mutex_unlock(m) == 0))
		return;
	if (!in_fork_child)
		rt_fatal("pthread_mutex_unlock", "cannot release the lock at", m);
	rt_mutex_init(m, RT_MUTEX_PI);
}

void rt_arena_unlock(struct rt_arena *a) { rt_mutex_unlock_checked(&a->lock); }

/* Make the calling thread the owner of m, a priority-inheriting mutex just
 * initialised (unlocked) in the child of fork, as if it had locked it. */
void rt_mutex_own(pthread_mutex_t *m)
{
	__atomic_store_n(&m->__data.__lock, rt_os_gettid(), __ATOMIC_RELAXED);
	m->__data.__owner = rt_os_gettid();
	m->__data.__nusers = 1;
}

/* Does the calling thread hold m, a priority-inheriting mutex?  The kernel's
 * PI futex protocol keeps the owner's TID in the lock word, set by the same
 * atomic operation that takes it (glibc's __owner field is written after):
 * a signal handler that interrupted a thread inside lock or unlock still
 * sees the truth. */
bool rt_mutex_mine(pthread_mutex_t *m)
{
	unsigned word = (unsigned)__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED);
	return word != 0 && (pid_t)(word & FUTEX_TID_MASK) == (pid_t)rt_os_gettid();
}
