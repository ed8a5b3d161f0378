/* SPDX-License-Identifier: MIT */
/*
 * heap_shm.c - named shared heaps (RTALLOC_HEAP_SHARED) as POSIX shared
 * memory objects: making one (rtalloc_heap_create's object, a stale name
 * reclaimed), binding one that another process created, the checks that a
 * process which cannot be trusted did not leave an impossible object (its
 * owner and mode, every field of its header), the processes a heap
 * records, unbinding, and removing the name (rtalloc_heap_destroy).  Not
 * real-time: system calls throughout.  Which heap file does what and the
 * rules are in heap.c; what the files share is in heap_int.h.
 */
#include <fcntl.h>
#include <linux/futex.h>

#include "heap_int.h"

/* "/rtalloc-heap-<name>" */
static void shm_path(char *buf, const char *name)
{
	memcpy(buf, SHM_PREFIX, sizeof(SHM_PREFIX) - 1);
	memcpy(buf + sizeof(SHM_PREFIX) - 1, name, strlen(name) + 1);
}

/* ---- an object another process made --------------------------------------- */

/* May this process trust an object with this owner and mode?  Its owner
 * must be the caller's effective uid; or, for a heap created with
 * RTALLOC_HEAP_SHARED_GROUP, its group one of the caller's.  Never when
 * others may write it. */
static bool owner_ok(const struct stat *st, unsigned flags)
{
	if (st->st_mode & S_IWOTH)
		return false;
	if (st->st_uid == rt_os_euid())
		return true;
	return (flags & RTALLOC_HEAP_SHARED_GROUP) && rt_os_in_group(st->st_gid);
}

static char *put_dec(char *b, unsigned v)
{
	char t[12];
	int n = 0;
	do /* bound: 10 digits */
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n) /* bound: 10 digits */
		*b++ = t[--n];
	return b;
}

/* Is thread tid one of the processes recorded in the heap?  Only such a
 * thread can hold its lock: a lock word naming any other thread (a live
 * process that never bound the heap would block this one for ever) is a
 * forgery.  One access(2) per recorded process: binding only. */
static bool tid_of_procs(const struct rt_heap_hdr *H, unsigned tid)
{
	for (unsigned i = 0; i < NPROC; i++) { /* bound: RTALLOC_HEAP_PROCS */
		if (H->procs[i] <= 0)
			continue;
		char path[48], *b = path;
		memcpy(b, "/proc/", 6);
		b = put_dec(b + 6, (unsigned)H->procs[i]);
		memcpy(b, "/task/", 6);
		b = put_dec(b + 6, tid);
		*b = 0;
		if (rt_os_exists(path))
			return true;
	}
	return false;
}

/* Every field of a shared heap's header (a copy) against the object's size
 * and the layout rtalloc_heap_create makes: 0, or EINVAL. */
static int hdr_check(const struct rt_heap_hdr *H, size_t fsize, const char *name)
{
	const struct rt_heap_region *R = &H->reg[0];
	const struct rt_buddy *b = &R->buddy;
	uint64_t np = H->npages;
	if (H->version != HEAP_VERSION || H->nregions != 1 || !(H->flags & RTALLOC_HEAP_SHARED) ||
	    (H->flags & ~(KNOWN_FLAGS | RTALLOC_HEAP_SHARED_GROUP)) || (H->flags & RTALLOC_HEAP_GROW))
		return EINVAL;
	if (strnlen(H->name, sizeof(H->name)) != strlen(name) || strcmp(H->name, name) != 0)
		return EINVAL;
	if (np == 0 || np > ((size_t)RT_NIL / 2 / NREG) || H->desc_off != HDR_BYTES)
		return EINVAL;
	size_t data_off = rt_heap_data_offset(np, 0), len = data_off + (np << RT_PAGE_SHIFT);
	if (R->base_off != 0 || R->data_off != data_off || R->bytes != len || H->map_bytes != len ||
	    fsize < len || H->map_align != rt_heap_region_align(np << RT_PAGE_SHIFT))
		return EINVAL;
	unsigned top = 63 - (unsigned)__builtin_clzll(np);
	top = top > RT_ORDER_MAX ? RT_ORDER_MAX : top;
	if (b->first != 0 || b->skew != 0 || b->committed != np || b->limit != np || b->top_order != top ||
	    b->arena != 0 || !rt_heap_bud_lists_ok(b, (uint32_t)np, top))
		return EINVAL;
	for (unsigned c = 0; c <= RT_NSMALL; c++) /* bound: RT_NSMALL + 1 */
		if (H->partial[c] != RT_NIL && H->partial[c] >= np)
			return EINVAL;
	size_t bytes = np << RT_PAGE_SHIFT;
	if (H->small_free > bytes || H->min_free > bytes || H->live > bytes / 16 || H->nwaiters > NWAIT)
		return EINVAL;
	for (unsigned i = 0; i < NWAIT; i++) /* bound: RTALLOC_HEAP_WAITERS */
		if (H->w[i].state > W_CANCELLED)
			return EINVAL;
	for (unsigned i = 0; i < NPROC; i++) /* bound: RTALLOC_HEAP_PROCS */
		if (H->procs[i] < 0)
			return EINVAL;
	/* The lock: of the kind rt_heap_lock_init makes (else pthread_mutex_lock
	 * would treat the heap's words as another kind of lock), and held, if at all,
	 * by a thread of a process of the heap (the kernel clears the thread
	 * of a word whose holder died: it marks it FUTEX_OWNER_DIED). */
	pthread_mutex_t fresh;
	if (rt_heap_lock_init(&fresh, true))
		return EINVAL;
	bool same_kind = fresh.__data.__kind == H->lock.__data.__kind; /* glibc's layout */
	rt_mutex_destroy(&fresh);
	uint32_t word = (uint32_t)H->lock.__data.__lock;
	if (!same_kind || ((word & FUTEX_TID_MASK) && !tid_of_procs(H, word & FUTEX_TID_MASK)))
		return EINVAL;
	return 0;
}

/* Map a shared heap's object as every process does (same alignment of its
 * data, guard page included), once its owner and header have been checked;
 * NULL with errno EINVAL when it is not a heap of this version or its
 * header is impossible, EACCES when its owner or mode cannot be trusted,
 * ENOMEM when it cannot be mapped, 0 when it is not complete yet or
 * destroyed.  hdr: the copy of its header that was checked. */
static void *map_object(int fd, struct rt_heap_hdr *hdr, const char *name)
{
	struct stat st;
	if (rt_os_fstat(fd, &st) != 0 || st.st_size < (off_t)HDR_BYTES)
		return NULL;
	void *m = rt_os_map_ro(fd, HDR_BYTES);
	if (!m)
		return NULL;
	uint64_t magic = __atomic_load_n(&((struct rt_heap_hdr *)m)->magic, __ATOMIC_ACQUIRE);
	memcpy(hdr, m, sizeof(*hdr));
	rt_os_unmap(m, HDR_BYTES);
	if (magic != HEAP_MAGIC || hdr->dead)
		return NULL;
	if (!owner_ok(&st, hdr->flags)) {
		errno = EACCES;
		return NULL;
	}
	if (hdr_check(hdr, (size_t)st.st_size, name)) {
		errno = EINVAL;
		return NULL;
	}
	void *map = rt_os_map_aligned(hdr->map_bytes, hdr->map_align, hdr->reg[0].data_off, fd);
	if (!map)
		errno = ENOMEM;
	return map;
}

/* ---- processes of a shared heap ------------------------------------------------ */

/* Does process pid live?  kill(pid, 0), counted for the tests. */
static bool pid_alive(int pid)
{
	rt_heap_counts.probes++;
	return pid > 0 && rt_os_pid_alive(pid);
}

/* Lock held.  Record (pid > 0) or forget (-pid) a process of a shared heap;
 * a record of a dead process is reused.  0, or EAGAIN when RTALLOC_HEAP_PROCS
 * live processes are recorded. */
static int procs_update(struct rt_heap_hdr *H, int pid)
{
	int me = pid > 0 ? pid : -pid;
	for (unsigned i = 0; i < NPROC; i++) /* bound: RTALLOC_HEAP_PROCS */
		if (H->procs[i] == me) {
			if (pid < 0)
				H->procs[i] = 0;
			return 0;
		}
	if (pid < 0)
		return 0;
	for (unsigned i = 0; i < NPROC; i++) /* bound: RTALLOC_HEAP_PROCS (kill(pid, 0) each) */
		if (H->procs[i] <= 0 || !pid_alive(H->procs[i])) {
			H->procs[i] = me;
			return 0;
		}
	return EAGAIN;
}

static bool procs_all_dead(const struct rt_heap_hdr *H)
{
	for (unsigned i = 0; i < NPROC; i++) /* bound: RTALLOC_HEAP_PROCS */
		if (H->procs[i] > 0 && pid_alive(H->procs[i]))
			return false;
	return true;
}

/* The name of a shared heap exists: if every process that created or bound
 * it is gone (its creator crashed, nobody bound it since), the heap is
 * stale: it is marked destroyed and its name removed, under its lock, so
 * that two creators cannot both take it.  True when the name is free now. */
static bool reclaim_stale(const char *path, const char *name)
{
	int fd = rt_os_shm_open(path, O_RDWR, 0);
	if (fd < 0)
		return errno == ENOENT;
	struct rt_heap_hdr hdr;
	void *map = map_object(fd, &hdr, name);
	rt_os_close(fd);
	if (!map)
		return false;
	struct rtalloc_heap tmp;
	memset(&tmp, 0, sizeof(tmp));
	rt_heap_handle_fill(&tmp, &hdr, map, (uintptr_t[]){(uintptr_t)map});
	bool freed = false;
	if (rt_heap_lock(&tmp) == 0) {
		struct rt_heap_hdr *H = tmp.hdr;
		if (!H->dead && procs_all_dead(H)) {
			H->dead = 1;
			rt_os_shm_unlink(path);
			freed = true;
		}
		rt_heap_unlock(&tmp);
	}
	rt_os_unmap(map, hdr.map_bytes);
	return freed;
}

/* ---- making and removing the object ---------------------------------------------- */

/* rtalloc_heap_create, registry lock held: the object of a new shared heap
 * of len bytes (its path into path: "/rtalloc-heap-<name>"), mode 0600, or 0660
 * for the group, whatever the umask says; the name of a stale heap is
 * reclaimed.  Its descriptor, or -1 with *e EEXIST, EACCES or ENOMEM (and
 * no object of this call left). */
int rt_heap_shm_create(char *path, const char *name, unsigned flags, size_t len, int *e)
{
	mode_t mode = flags & RTALLOC_HEAP_SHARED_GROUP ? 0660 : 0600;
	shm_path(path, name);
	int fd = rt_os_shm_open(path, O_RDWR | O_CREAT | O_EXCL, mode);
	if (fd < 0 && errno == EEXIST && reclaim_stale(path, name))
		fd = rt_os_shm_open(path, O_RDWR | O_CREAT | O_EXCL, mode);
	if (fd < 0) {
		*e = errno == EEXIST ? EEXIST : errno == EACCES ? EACCES : ENOMEM;
		return -1;
	}
	if (rt_os_fchmod(fd, mode) != 0 || rt_os_ftruncate(fd, len) != 0) {
		*e = ENOMEM;
		rt_os_shm_unlink(path);
		rt_os_close(fd);
		return -1;
	}
	return fd;
}

/* rtalloc_heap_destroy: the name goes (processes bound keep the memory). */
void rt_heap_shm_unlink(const char *name)
{
	char path[sizeof(SHM_PREFIX) + RTALLOC_HEAP_NAME_MAX];
	shm_path(path, name);
	rt_os_shm_unlink(path);
}

/* ---- binding ------------------------------------------------------------------ */

RT_EXPORT rtalloc_heap_t *rtalloc_heap_bind(const char *name, const struct timespec *abs_timeout)
{
	if (!name || !rt_heap_name_ok(name) || !ts_ok(abs_timeout))
		return fail(EINVAL);
	if (!rt_ready() && rt_init_lazy() != 0)
		return fail(ENOMEM);
	rt_heap_registry_init();
	char path[sizeof(SHM_PREFIX) + RTALLOC_HEAP_NAME_MAX];
	shm_path(path, name);
	struct rt_heap_hdr hdr;
	void *map = NULL;
	/* bound: the timeout, one round per millisecond */
	for (;;) {
		int fd = rt_os_shm_open(path, O_RDWR, 0);
		if (fd < 0 && errno != ENOENT)
			return fail(errno == EACCES ? EACCES : ENOMEM);
		if (fd >= 0) {
			errno = 0;
			map = map_object(fd, &hdr, name);
			rt_os_close(fd);
			if (map)
				break;
			if (errno == EINVAL || errno == ENOMEM || errno == EACCES)
				return fail(errno);
		}
		if (!abs_timeout || rt_os_now_ns() >= ts_ns(abs_timeout))
			return fail(ENOENT);
		rt_os_sleep_ns(1000000);
	}
	int e = rt_heap_prepare_memory(map, hdr.map_bytes);
	if (!e)
		e = rt_heap_guard_page(map, hdr.reg[0].data_off);
	rt_mutex_lock(&rt_heap_reg_lock);
	struct rtalloc_heap *h = e ? NULL : rt_heap_slot_claim();
	if (!e && !h)
		e = ENOMEM;
	if (!e) {
		uintptr_t base[1] = {(uintptr_t)map};
		rt_heap_handle_fill(h, &hdr, map, base);
		h->map = map;
		h->map_len = hdr.map_bytes;
		h->own_map = true;
		if (h->data[0] & (hdr.map_align - 1)) {
			e = EINVAL; /* cannot happen: mapped at the same alignment */
			memset(h, 0, sizeof(*h));
		} else {
			rt_heap_slot_publish(h);
		}
	}
	rt_mutex_unlock(&rt_heap_reg_lock);
	if (e) {
		rt_os_unmap(map, hdr.map_bytes);
		return fail(e);
	}
	if (rt_heap_lock(h) == 0) {
		e = procs_update(h->hdr, rt_heap_pid);
		rt_heap_publish(h);
		rt_heap_unlock(h);
	}
	if (e) { /* RTALLOC_HEAP_PROCS processes are bound already */
		rt_mutex_lock(&rt_heap_reg_lock);
		rt_heap_slot_release(h);
		rt_mutex_unlock(&rt_heap_reg_lock);
		return fail(e);
	}
	return h;
}

RT_EXPORT int rtalloc_heap_unbind(rtalloc_heap_t *h)
{
	rt_heap_registry_init();
	rt_mutex_lock(&rt_heap_reg_lock);
	if (!rt_heap_valid(h) || !h->shared) {
		rt_mutex_unlock(&rt_heap_reg_lock);
		return EINVAL;
	}
	if (rt_heap_lock(h) == 0) {
		procs_update(h->hdr, -rt_heap_pid);
		rt_heap_unlock(h);
	}
	rt_heap_slot_release(h);
	rt_mutex_unlock(&rt_heap_reg_lock);
	return 0;
}
