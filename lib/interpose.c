/* SPDX-License-Identifier: MIT */
/*
 * interpose.c - the libc names: what LD_PRELOAD=librtalloc.so replaces.
 *
 * These symbols are exported unversioned, on purpose: a version node would
 * make ld.so bind programs' malloc@GLIBC_2.2.5 to glibc and interposition
 * would silently stop (tests/system/check_exports.sh checks the list).  Every function
 * is a thin call into fastpath.h's inline fast paths or alloc.c.
 *
 * The library's constructor initialises the pool at load if no allocation
 * did so first.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "fastpath.h"
#include "os.h"

#define PUBLIC RT_EXPORT

PUBLIC void *malloc(size_t size) { return rt_malloc_fast(size); }
PUBLIC void free(void *ptr) { rt_free_fast(ptr, "free"); }
PUBLIC void *calloc(size_t nmemb, size_t size) { return rt_calloc(nmemb, size); }
PUBLIC void *realloc(void *ptr, size_t size) { return rt_realloc(ptr, size); }
PUBLIC void *reallocarray(void *ptr, size_t nmemb, size_t size) { return rt_reallocarray(ptr, nmemb, size); }
PUBLIC int posix_memalign(void **memptr, size_t alignment, size_t size)
{
	return rt_posix_memalign(memptr, alignment, size);
}
PUBLIC void *aligned_alloc(size_t alignment, size_t size) { return rt_aligned_alloc(alignment, size); }
PUBLIC void *memalign(size_t alignment, size_t size) { return rt_memalign(alignment, size); }
PUBLIC void *valloc(size_t size) { return rt_valloc(size); }
PUBLIC void *pvalloc(size_t size) { return rt_pvalloc(size); }
PUBLIC size_t malloc_usable_size(void *ptr) { return rt_usable_size(ptr); }
PUBLIC void free_sized(void *ptr, size_t size) { rt_free_sized(ptr, size); }
PUBLIC void free_aligned_sized(void *ptr, size_t alignment, size_t size)
{
	rt_free_aligned_sized(ptr, alignment, size);
}

/* glibc's internal names, for programs that call them directly.  Not
 * __libc_mallopt: pool.c calls glibc's own to stop its trimming. */
PUBLIC void *__libc_malloc(size_t size) { return rt_malloc_fast(size); }
PUBLIC void __libc_free(void *ptr) { rt_free_fast(ptr, "free"); }
PUBLIC void *__libc_calloc(size_t nmemb, size_t size) { return rt_calloc(nmemb, size); }
PUBLIC void *__libc_realloc(void *ptr, size_t size) { return rt_realloc(ptr, size); }
PUBLIC void *__libc_memalign(size_t alignment, size_t size) { return rt_memalign(alignment, size); }
PUBLIC void *__libc_valloc(size_t size) { return rt_valloc(size); }
PUBLIC void *__libc_pvalloc(size_t size) { return rt_pvalloc(size); }

/* Tuning knobs of glibc's allocator mean nothing here: accepted, ignored. */
PUBLIC int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1;
}

PUBLIC int malloc_trim(size_t pad)
{
	(void)pad;
	return 0; /* librtalloc never gives memory back */
}

PUBLIC struct mallinfo2 mallinfo2(void)
{
	struct rt_totals t;
	rt_stats_totals(&t);
	struct mallinfo2 mi = {0};
	mi.arena = t.pool_bytes;
	mi.fordblks = t.free_bytes;
	mi.uordblks = t.pool_bytes - t.free_bytes;
	mi.usmblks = t.pool_bytes - t.min_free_bytes; /* the high-water mark of use */
	mi.keepcost = 0;
	return mi;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

PUBLIC struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi = {0};
	mi.arena = clamp_int(m2.arena);
	mi.fordblks = clamp_int(m2.fordblks);
	mi.uordblks = clamp_int(m2.uordblks);
	mi.usmblks = clamp_int(m2.usmblks);
	return mi;
}

/* ---- privilege drops ---------------------------------------------------------
 *
 * A daemon started as root for its priority and lock limit that switches to
 * another user: before the real call (still privileged), the statistics file
 * follows the new real uid (stats.c: renamed and chowned, so it is removed at
 * exit and rtalloc-stat finds it), and MCL_FUTURE is dropped if the new user
 * could not lock what later mappings add (mlock.c).  Undone if the call fails.
 * The real functions are looked up when first called (dlsym: not during
 * initialisation).  A direct syscall(SYS_setuid...) bypasses this. */
static void *next_fn(const char *name, void **cache)
{
	void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	return f;
}

struct uid_change {
	uid_t old_ruid;
	bool moved, unlocked;
};

/* new_ruid, new_euid: (uid_t)-1 when unchanged. */
static void before_uid_change(uid_t new_ruid, uid_t new_euid, struct uid_change *c)
{
	*c = (struct uid_change){rt_os_uid(), false, false};
	if (!rt_ready())
		return;
	if (new_ruid != (uid_t)-1 && rt_os_euid() == 0)
		c->moved = rt_stats_file_owner(new_ruid);
	if (new_euid != (uid_t)-1)
		c->unlocked = rt_pool_lose_lock_right(new_euid);
}

static int after_uid_change(int r, uid_t new_euid, const struct uid_change *c)
{
	int e = errno;
	if (r != 0 && c->moved)
		rt_stats_file_owner(c->old_ruid);
	if ((r != 0 && c->unlocked) || (r == 0 && new_euid == 0))
		rt_pool_regain_lock_right();
	errno = e;
	return r;
}

static int no_fn(void)
{
	errno = ENOSYS;
	return -1;
}

PUBLIC int setuid(uid_t uid)
{
	static void *fn;
	int (*real)(uid_t) = (int (*)(uid_t))next_fn("setuid", &fn);
	struct uid_change c;
	before_uid_change(rt_os_euid() == 0 ? uid : (uid_t)-1, uid, &c); /* root: all three */
	return after_uid_change(real ? real(uid) : no_fn(), uid, &c);
}

PUBLIC int seteuid(uid_t euid)
{
	static void *fn;
	int (*real)(uid_t) = (int (*)(uid_t))next_fn("seteuid", &fn);
	struct uid_change c;
	before_uid_change((uid_t)-1, euid, &c);
	return after_uid_change(real ? real(euid) : no_fn(), euid, &c);
}

PUBLIC int setreuid(uid_t ruid, uid_t euid)
{
	static void *fn;
	int (*real)(uid_t, uid_t) = (int (*)(uid_t, uid_t))next_fn("setreuid", &fn);
	struct uid_change c;
	before_uid_change(ruid, euid, &c);
	return after_uid_change(real ? real(ruid, euid) : no_fn(), euid, &c);
}

PUBLIC int setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
	static void *fn;
	int (*real)(uid_t, uid_t, uid_t) = (int (*)(uid_t, uid_t, uid_t))next_fn("setresuid", &fn);
	struct uid_change c;
	before_uid_change(ruid, euid, &c);
	return after_uid_change(real ? real(ruid, euid, suid) : no_fn(), euid, &c);
}

__attribute__((constructor)) static void rt_constructor(void)
{
	if (!rt_ready())
		rt_init_lazy();
}
