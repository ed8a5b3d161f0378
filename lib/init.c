/* SPDX-License-Identifier: MIT */
/*
 * init.c - the initialisation sequence (rt_init) and a later rtalloc_init()'s
 * reconfiguration: the one place that knows the order in which the layers
 * are set up, above all of them (it registers the thread cache's exit
 * destructor and the fork handlers, starts the statistics and the report).
 *
 * rt_init runs once, at the library's constructor or at the first
 * allocation, whichever comes first.  It calls no malloc, stdio, getenv or
 * dlsym: options come from environ (options.c), messages are written with
 * write(2) (say.c).  Order: options; the keys of the free lists; the thread
 * key; the pool (pool.c: fitted to the machine, reserved, committed,
 * pre-faulted); statistics and the report; glibc's own malloc told never to
 * trim or map; the stack pre-fault and locking per RTALLOC_MLOCK (mlock.c);
 * then published (rt_ready) and the fork handlers installed.
 */
#include <malloc.h>

#include "glue.h"
#include "os.h"
#include "pool_int.h"

/* A later rtalloc_init(): apply what can change on a live pool.  Its own
 * pre-faulting is not the program's: faults since init count from its end. */
static int reconfigure(const struct rtalloc_config *cfg)
{
	int e = 0;
	if (cfg) {
		if (cfg->on_exhaust >= RTALLOC_EXHAUST_GROW && cfg->on_exhaust <= RTALLOC_EXHAUST_ABORT)
			rt_g.opt.on_exhaust = cfg->on_exhaust;
		if (cfg->pool_size > rt_g.pool_bytes && rt_g.user_memory)
			e = ENOMEM; /* the caller's memory never grows */
		else if (cfg->pool_size > rt_g.pool_bytes)
			e = rt_pool_grow_to(cfg->pool_size);
		if (cfg->mlock == RTALLOC_MLOCK_OFF && rt_g.locked) {
			rt_os_munlockall();
			rt_g.locked = false;
		} else if (cfg->mlock > RTALLOC_MLOCK_OFF && cfg->mlock <= RT_MLOCK_LAST) {
			int l = rt_pool_lock_memory(cfg->mlock);
			e = e ? e : l;
		}
		if (cfg->mlock >= RTALLOC_MLOCK_OFF && cfg->mlock <= RT_MLOCK_LAST)
			rt_g.opt.mlock = cfg->mlock;
	}
	size_t stack = rt_g.opt.stack_prefault;
	if (cfg && cfg->stack_prefault)
		stack = cfg->stack_prefault == RTALLOC_STACK_PREFAULT_NONE ? 0 : cfg->stack_prefault;
	rt_pool_stack_prefault(stack);
	rt_stats_fault_baseline();
	return e;
}

/* A config must be whole (size 0 means this version's) and its memory, if
 * any, usable: checked before anything changes, on every call. */
static int config_ok(const struct rtalloc_config *cfg)
{
	if (!cfg)
		return 0;
	if (cfg->size && cfg->size < sizeof(struct rtalloc_config))
		return EINVAL;
	if (cfg->memory && cfg->memory_size < 64 * RT_PAGE_SIZE)
		return EINVAL;
	return 0;
}

int rt_init(const struct rtalloc_config *cfg)
{
	if (config_ok(cfg))
		return EINVAL;
	int expected = RT_INIT_NONE;
	if (!__atomic_compare_exchange_n(&rt_g.init_state, &expected, RT_INIT_BUSY, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
		/* Another thread initialises: only possible if threads exist before
		 * the first allocation (thread creation itself allocates, so in
		 * practice never).  Wait for it without holding anything. */
		while (__atomic_load_n(&rt_g.init_state, __ATOMIC_ACQUIRE) == RT_INIT_BUSY)
			rt_os_yield();
		if (!rt_ready())
			return ENOMEM;
		return cfg ? reconfigure(cfg) : 0;
	}
	int saved = errno;
	bool retry = false;
	uint64_t started = rt_os_now_ns();
	rt_options_read(&rt_g.opt, cfg);
	rt_profile_apply(&rt_g.opt, cfg); /* RTALLOC_PROFILE: the pool's size (profile.c) */
	rt_g.key = rt_os_random() | 1; /* odd: never a block address */
	rt_g.link_key = rt_os_random();
	int e = rt_os_key_create(&rt_g.thread_key, rt_tcache_thread_exit);
	if (!e)
		e = rt_pool_setup(cfg, &retry);
	if (e) {
		/* Bad caller memory can be retried with a better config; a system
		 * that cannot give us a pool cannot. */
		if (e == EINVAL || retry)
			rt_os_key_delete(rt_g.thread_key);
		__atomic_store_n(&rt_g.init_state, e == EINVAL || retry ? RT_INIT_NONE : RT_INIT_FAILED,
				 __ATOMIC_RELEASE);
		errno = saved;
		return e;
	}
	rt_stats_init();
	rt_die_hook(rt_stats_remove); /* an aborting process leaves no statistics file */
	rt_stats_report_setup();
	/* Whatever still reaches glibc's own allocator never trims nor maps. */
	rt_libc_mallopt(M_TRIM_THRESHOLD, -1);
	rt_libc_mallopt(M_MMAP_MAX, 0);
	rt_pool_stack_prefault(rt_g.opt.stack_prefault);
	int lk = rt_pool_lock_memory(rt_g.opt.mlock);
	rt_pool_setup_done();
	rt_g.init_ns = rt_os_now_ns();
	rt_stats_init_done(started);
	__atomic_store_n(&rt_g.init_state, RT_INIT_DONE, __ATOMIC_RELEASE);
	rt_os_atfork(rt_pool_fork_prepare, rt_pool_fork_parent, rt_pool_fork_child);
	errno = saved;
	return lk;
}

int rt_init_lazy(void)
{
	int e = rt_init(NULL);
	if (e == EPERM) {
		rt_say("RTALLOC_MLOCK=require: cannot run without locked memory; aborting");
		rt_die();
	}
	return e;
}
