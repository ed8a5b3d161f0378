/* SPDX-License-Identifier: MIT */
/*
 * mlock.c - keeping the process resident per RTALLOC_MLOCK: mlockall of
 * every mapping now and later (all: 1, try, require), the same locking each
 * page when it is first touched (onfault: the pool is pre-faulted, so it is
 * locked whole; a thread's stack is locked as far as rtalloc_thread_prepare
 * pre-faults it, the rest of the process as it runs), or mlock of the pool
 * alone (pool: no other mapping is locked, so a program may
 * madvise(MADV_DONTNEED) its own mappings, which fails on locked ones); with
 * what is only reserved (the reservation's tails: pool.c, rt_pool_tails)
 * unlocked afterwards, or, when RLIMIT_MEMLOCK refuses the whole address
 * space, left out of the locking altogether (unmapped while MCL_CURRENT
 * locks the rest); the message when locking fails or leaves little room
 * under RLIMIT_MEMLOCK (once per process tree); dropping and restoring
 * MCL_FUTURE around a switch away from uid 0 (interpose.c's privilege-drop
 * hooks); and the pre-fault of a thread's stack.  pool.c locks at
 * initialisation and reconfiguration, fork.c in a child of fork.
 */
#include <string.h>
#include <sys/resource.h>

#include "pool_int.h"

/* ---- locking ---------------------------------------------------------------- */

/* The mode the process is locked in (valid while rt_g.locked). */
static int lock_mode;

/* mlockall's extra flag for a mode: lock on fault, or none. */
static int fault_flag(int mode) { return mode == RTALLOC_MLOCK_ONFAULT ? MCL_ONFAULT : 0; }

/* TRY and REQUIRE lock the same; the others differ from them and each other. */
static int scope(int mode) { return mode == RTALLOC_MLOCK_REQUIRE ? RTALLOC_MLOCK_TRY : mode; }

/* After mlockall: unlock what is only reserved, so VmLck is the real pool. */
static void unlock_reserve(void)
{
	struct rt_pool_tail t[RT_POOL_TAILS];
	unsigned n = rt_pool_tails(t);
	for (unsigned i = 0; i < n; i++) /* bound: RT_POOL_TAILS */
		rt_os_munlock(t[i].p, t[i].len);
}

/* mlockall(MCL_CURRENT) counts every mapping against RLIMIT_MEMLOCK (the
 * kernel compares the whole address space, VmSize, with the limit, and
 * charges PROT_NONE mappings to VmLck as well): the reservation, pool_max and
 * the growth room, would make even a 1 MiB pool unlockable under the 8 MiB
 * default.  So, when the limit refuses it: the uncommitted tails (nothing in
 * them) are unmapped, everything else locked with MCL_CURRENT, the tails
 * mapped again at the same place (not locked), then MCL_FUTURE alone (which
 * leaves existing mappings as they are).  Another thread mapping into a tail
 * meanwhile (a later rtalloc_init only) takes that address space: growth
 * stops at what is committed; one growing the pool meanwhile fails (its
 * mprotect finds nothing: ENOMEM for that request).  Returns 0 or errno. */
static int lock_without_tails(int mode)
{
	struct rt_pool_tail t[RT_POOL_TAILS];
	unsigned n = rt_pool_tails(t);
	for (unsigned i = 0; i < n; i++) /* bound: RT_POOL_TAILS */
		rt_os_unmap(t[i].p, t[i].len);
	int e = rt_os_mlockall(MCL_CURRENT | fault_flag(mode)) == 0 ? 0 : errno;
	bool lost = false;
	for (unsigned i = 0; i < n; i++) { /* bound: RT_POOL_TAILS */
		if (!rt_os_reserve_at_prot(t[i].p, t[i].len, t[i].prot))
			lost = true;
	}
	if (lost) {
		rt_pool_stop_growth();
		rt_say("while memory was being locked, another mapping took the pool's reserved address space: "
		       "the pool will not grow");
	}
	if (!e && rt_os_mlockall(MCL_FUTURE | fault_flag(mode)) != 0) /* future mappings only: the tails stay unlocked */
		e = errno;
	return e;
}

/* A locking problem (mlockall failed, or little room left under
 * RLIMIT_MEMLOCK) is said once per process (a fork's child relocks: it
 * inherits the flag) and, through RTALLOC_MLOCK_WARNED=1 in the environment
 * handed to its children, once per process tree (a shell pipeline under
 * LD_PRELOAD: only its first process says it).  Returns true if it was said
 * already; marks it said. */
static bool mlock_warned;

static bool lock_warned_before(void)
{
	static char marker[] = "RTALLOC_MLOCK_WARNED=1";
	bool inherited = rt_options_env("RTALLOC_MLOCK_WARNED") != NULL, was = mlock_warned || inherited;
	if (!mlock_warned && !inherited)
		rt_env_add(marker);
	mlock_warned = true;
	return was;
}

/* After mlockall(MCL_FUTURE) every new mapping (a thread's stack: 8 MiB by
 * default) must fit what RLIMIT_MEMLOCK leaves, unless we may lock without
 * limit.  Say so once when little is left: pthread_create would fail. */
static void check_lock_room(void)
{
	struct rlimit rl;
	if (rt_os_euid() == 0 || rt_os_getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	char buf[4096];
	if (rt_os_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return;
	const char *v = strstr(buf, "VmLck:");
	if (!v)
		return;
	size_t locked_kib = 0;
	for (v += 6; *v == ' ' || *v == '\t'; v++)
		;
	for (; *v >= '0' && *v <= '9'; v++)
		locked_kib = locked_kib * 10 + (size_t)(*v - '0');
	size_t limit_kib = (size_t)(rl.rlim_cur >> 10);
	size_t left = limit_kib > locked_kib ? limit_kib - locked_kib : 0;
	if (left < 16384 && !lock_warned_before())
		rt_say("memory is locked, but RLIMIT_MEMLOCK leaves only %zu KiB for what the process maps "
		       "later: creating a thread (an 8 MiB stack by default) will fail with EAGAIN. Raise "
		       "ulimit -l, use smaller thread stacks, or RTALLOC_MLOCK=0", left);
}

/* RTALLOC_MLOCK=pool: mlock the committed pages of every arena and their
 * descriptors (mlock faults them in), nothing else; growth locks what it
 * adds (pool.c, commit).  On failure what was locked is unlocked again.
 * Returns 0 or errno. */
static int lock_pool(void)
{
	struct rt_pool_tail t[RT_POOL_TAILS];
	unsigned n = rt_pool_parts(t);
	for (unsigned i = 0; i < n; i++) /* bound: RT_POOL_TAILS */
		if (rt_os_mlock(t[i].p, t[i].len) != 0) {
			int e = errno;
			for (unsigned j = 0; j < i; j++) /* bound: RT_POOL_TAILS */
				rt_os_munlock(t[j].p, t[j].len);
			return e;
		}
	return 0;
}

/* Lock per mode (a process locked in another mode is unlocked first).
 * Returns 0, or EPERM when it is required and failed. */
int rt_pool_lock_memory(int mode)
{
	if (mode == RTALLOC_MLOCK_OFF || (rt_g.locked && scope(mode) == scope(lock_mode)))
		return 0;
	if (rt_g.locked) {
		rt_os_munlockall();
		rt_g.locked = false;
	}
	if (mode == RTALLOC_MLOCK_POOL && rt_g.user_memory)
		return 0; /* the caller's memory: no system call on it, it stays as the caller keeps it */
	int e;
	if (mode == RTALLOC_MLOCK_POOL)
		e = lock_pool();
	else if (mode == RTALLOC_MLOCK_ONFAULT)
		e = rt_os_mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0 ? 0 : errno;
	else
		e = rt_os_mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : errno;
	if (mode == RTALLOC_MLOCK_POOL)
		; /* nothing reserved was locked */
	else if (!e && !rt_g.user_memory)
		unlock_reserve();
	else if (e == ENOMEM && !rt_g.user_memory)
		e = lock_without_tails(mode); /* RLIMIT_MEMLOCK below the address space */
	if (!e) {
		rt_g.locked = true;
		lock_mode = mode;
		if (mode != RTALLOC_MLOCK_POOL)
			check_lock_room();
		return 0;
	}
	struct rlimit rl = {0, 0};
	rt_os_getrlimit(RLIMIT_MEMLOCK, &rl);
	/* What the limit must allow: the pool (pool), or the process without
	 * the reserved tails and 16 MiB for what it maps later (thread stacks),
	 * in whole MiB. */
	size_t need;
	if (mode == RTALLOC_MLOCK_POOL) {
		struct rt_pool_tail t[RT_POOL_TAILS];
		unsigned n = rt_pool_parts(t);
		need = 0;
		for (unsigned i = 0; i < n; i++) /* bound: RT_POOL_TAILS */
			need += t[i].len >> 10;
		need = (need + 1023) & ~(size_t)1023;
	} else {
		struct rt_pool_tail t[RT_POOL_TAILS];
		size_t tails = 0, vm = rt_pool_status_kib("VmSize:");
		unsigned n = rt_g.user_memory ? 0 : rt_pool_tails(t);
		for (unsigned i = 0; i < n; i++) /* bound: RT_POOL_TAILS */
			tails += t[i].len >> 10;
		need = ((vm > tails ? vm - tails : 0) + 16384 + 1023) & ~(size_t)1023;
	}
	bool said = lock_warned_before();
	if (!said || mode == RTALLOC_MLOCK_REQUIRE)
		rt_say("%s failed (%s, RLIMIT_MEMLOCK %lu KiB): memory is pre-faulted but not locked and can "
		       "be paged out. Locking needs at least %zu KiB: ulimit -l %zu (memlock in "
		       "/etc/security/limits.conf), or the CAP_IPC_LOCK capability; RTALLOC_MLOCK=0 skips locking.",
		       mode == RTALLOC_MLOCK_POOL ? "mlock of the pool" : "mlockall", strerrorname_np(e),
		       rl.rlim_cur == RLIM_INFINITY ? 0UL : (unsigned long)(rl.rlim_cur >> 10), need, need);
	return mode == RTALLOC_MLOCK_REQUIRE ? EPERM : 0;
}

/* A switch of the effective uid from 0 to new_euid (before the real call):
 * the process loses CAP_IPC_LOCK, and under MCL_FUTURE every later mapping
 * (a thread's stack, dlopen) must then fit RLIMIT_MEMLOCK beside what is
 * locked already, else fails (EAGAIN).  When it would not fit, MCL_FUTURE is
 * dropped (mlockall(MCL_CURRENT): what is locked stays locked; said once).
 * Returns true if it was (rt_pool_regain_lock_right restores it). */
static bool future_dropped;

bool rt_pool_lose_lock_right(uid_t new_euid)
{
	struct rlimit rl;
	if (!rt_g.locked || lock_mode == RTALLOC_MLOCK_POOL || future_dropped || new_euid == 0 || rt_os_euid() != 0 ||
	    rt_os_getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return false;
	size_t locked = rt_pool_status_kib("VmLck:"), limit = (size_t)(rl.rlim_cur >> 10);
	if (locked + 16384 <= limit)
		return false;
	if (rt_os_mlockall(MCL_CURRENT | fault_flag(lock_mode)) != 0)
		return false;
	if (!rt_g.user_memory)
		unlock_reserve();
	future_dropped = true;
	static bool said;
	if (!said) {
		said = true;
		rt_say("uid %u may lock only %zu KiB (RLIMIT_MEMLOCK) and %zu KiB are locked: what the process "
		       "maps from now on (thread stacks) is not locked (MCL_FUTURE dropped), the pool stays "
		       "locked", (unsigned)new_euid, limit, locked);
	}
	return true;
}

/* Back to uid 0, or the switch failed: MCL_FUTURE again (future mappings
 * only: what is mapped now stays as it is). */
void rt_pool_regain_lock_right(void)
{
	if (future_dropped && rt_os_euid() == 0 && rt_os_mlockall(MCL_FUTURE | fault_flag(lock_mode)) == 0)
		future_dropped = false;
}

/* ---- the stack ---------------------------------------------------------------- */

/* Touch `bytes` of the calling thread's stack below the current frame, so the
 * real-time loop does not fault it in.  Capped to half the room the stack has. */
RT_NOINLINE void rt_pool_stack_prefault(size_t bytes)
{
	if (!bytes)
		return;
	size_t room;
	if (rt_os_getpid() == rt_os_gettid()) {
		struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
		rt_os_getrlimit(RLIMIT_STACK, &rl);
		room = rl.rlim_cur == RLIM_INFINITY ? ((size_t)64 << 20) : (size_t)rl.rlim_cur;
	} else {
		/* Another thread: its stack's bounds (never asked during
		 * initialisation, which runs on the main thread: os.h). */
		void *lo = NULL;
		size_t sz = 0;
		if (rt_os_thread_stack(&lo, &sz) != 0)
			return;
		room = (size_t)((char *)__builtin_frame_address(0) - (char *)lo);
	}
	if (bytes > room / 2)
		bytes = room / 2;
	volatile char *buf = __builtin_alloca(bytes);
	for (size_t i = 0; i < bytes; i += RT_PAGE_SIZE) /* bound: bytes / page */
		buf[i] = 0;
	buf[bytes - 1] = 0;
}
