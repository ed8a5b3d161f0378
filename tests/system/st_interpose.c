/* SPDX-License-Identifier: MIT */
/*
 * st_interpose.c - run with LD_PRELOAD=librtalloc.so (RTALLOC_POOL_SIZE=16M):
 * every entry of the malloc family, called by the program and by glibc itself,
 * is served by librtalloc, and nothing reaches glibc's own allocator.
 *
 * Proofs that a block is librtalloc's:
 *   - rtalloc_malloc_usable_size() (looked up with dlsym) returns the size of
 *     its class (a power of two), where glibc's would be size + 8 rounded to 16;
 *   - the block lies in the pool: the read-write anonymous mapping of at least
 *     mallinfo2().arena bytes that holds the first block;
 *   - dladdr() of each exported name is librtalloc.so;
 *   - glibc's own mallinfo2 (dlvsym in libc.so.6) shows an untouched arena.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "st_util.h"

static uintptr_t pool_lo, pool_hi;

static void in_pool(const void *p, const char *what)
{
	CHECK(p != NULL, "%s returned NULL", what);
	CHECK((uintptr_t)p >= pool_lo && (uintptr_t)p < pool_hi,
	      "%s: %p is outside librtalloc's pool [%#lx, %#lx)", what, p, (unsigned long)pool_lo,
	      (unsigned long)pool_hi);
}

/* p is a librtalloc block of exactly `cls` usable bytes, in the pool. */
static void is_block(void *p, size_t cls, const char *what)
{
	in_pool(p, what);
	size_t u = st_api.usable_size(p);
	CHECK(u == cls, "%s: rtalloc_malloc_usable_size = %zu, want the class size %zu", what, u, cls);
	CHECK(malloc_usable_size(p) == u, "%s: malloc_usable_size %zu != rtalloc's %zu", what,
	      malloc_usable_size(p), u);
}

static void *thread_main(void *arg)
{
	(void)arg;
	void *p = malloc(3000);
	is_block(p, 4096, "malloc(3000) in a new thread");
	return p; /* freed by the main thread */
}

int main(void)
{
	st_need_preload("interpose");
	printf("malloc comes from %s\n", st_api.lib);

	/* Every exported libc name resolves to librtalloc. */
	static const char *const names[] = {
		"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
		"aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
		"free_sized", "free_aligned_sized", "__libc_malloc", "__libc_free",
		"__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc",
		"__libc_pvalloc", "mallopt", "malloc_trim", "mallinfo", "mallinfo2",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		Dl_info di;
		void *f = st_sym(names[i]);
		CHECK(dladdr(f, &di) && di.dli_fname && strstr(di.dli_fname, "librtalloc"),
		      "%s resolves to %s, not librtalloc", names[i], di.dli_fname ? di.dli_fname : "?");
	}

	/* The pool: the mapping holding a first block, as large as mallinfo2 says. */
	struct mallinfo2 mi = mallinfo2();
	CHECK(mi.arena == (size_t)16 << 20, "mallinfo2().arena = %zu, want RTALLOC_POOL_SIZE=16M", mi.arena);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo m1 = mallinfo(); /* deprecated, still exported by glibc and us */
#pragma GCC diagnostic pop
	CHECK((size_t)m1.arena == mi.arena, "mallinfo().arena %d != mallinfo2().arena %zu", m1.arena, mi.arena);
	void *first = malloc(100);
	char perms[5];
	CHECK(st_vma_of(first, &pool_lo, &pool_hi, perms) == 0, "no mapping holds %p", first);
	CHECK(strcmp(perms, "rw-p") == 0, "the pool mapping is %s, not rw-p", perms);
	CHECK(pool_hi - pool_lo >= mi.arena, "the pool mapping is %zu bytes, less than the arena %zu",
	      (size_t)(pool_hi - pool_lo), mi.arena);
	is_block(first, 128, "malloc(100)");

	/* The program's calls. */
	char *p = malloc(1);
	is_block(p, 16, "malloc(1)");
	free(p);
	p = malloc(0);
	is_block(p, 16, "malloc(0)");
	free(p);
	p = calloc(10, 30);
	is_block(p, 512, "calloc(10, 30)");
	for (int i = 0; i < 300; i++)
		CHECK(p[i] == 0, "calloc'ed byte %d is %d", i, p[i]);
	memset(p, 'x', 300);
	p = realloc(p, 3000);
	is_block(p, 4096, "realloc(p, 3000)");
	for (int i = 0; i < 300; i++)
		CHECK(p[i] == 'x', "realloc lost byte %d", i);
	p = realloc(p, 100000);
	is_block(p, 131072, "realloc(p, 100000)");
	CHECK(p[0] == 'x' && p[299] == 'x', "realloc to a large block lost the contents");
	p = realloc(p, 0); /* glibc: frees, returns NULL */
	CHECK(p == NULL, "realloc(p, 0) returned %p", (void *)p);
	p = reallocarray(NULL, 10, 100);
	is_block(p, 1024, "reallocarray(NULL, 10, 100)");
	volatile size_t big = SIZE_MAX / 2; /* not a constant: no compile-time warning */
	errno = 0;
	CHECK(reallocarray(p, big, 3) == NULL && errno == ENOMEM,
	      "reallocarray overflow: errno %d", errno);
	free(p);
	errno = 0;
	CHECK(calloc(big, 3) == NULL && errno == ENOMEM, "calloc overflow: errno %d", errno);

	void *q = NULL;
	CHECK(posix_memalign(&q, 256, 10) == 0, "posix_memalign(256, 10) failed");
	is_block(q, 256, "posix_memalign(256, 10)");
	CHECK(((uintptr_t)q & 255) == 0, "posix_memalign(256): %p misaligned", q);
	free(q);
	CHECK(posix_memalign(&q, 24, 10) == EINVAL, "posix_memalign(24) did not fail with EINVAL");
	q = aligned_alloc(4096, 4096);
	is_block(q, 4096, "aligned_alloc(4096, 4096)");
	CHECK(((uintptr_t)q & 4095) == 0, "aligned_alloc(4096): %p misaligned", q);
	free(q);
	q = aligned_alloc(65536, 100);
	in_pool(q, "aligned_alloc(65536, 100)");
	CHECK(((uintptr_t)q & 65535) == 0, "aligned_alloc(65536): %p misaligned", q);
	free(q);
	q = memalign(64, 1);
	is_block(q, 64, "memalign(64, 1)");
	free(q);
	q = valloc(10);
	is_block(q, 4096, "valloc(10)");
	CHECK(((uintptr_t)q & 4095) == 0, "valloc: %p not page aligned", q);
	free(q);
	q = pvalloc(5000);
	is_block(q, 8192, "pvalloc(5000)");
	free(q);

	/* C23 names (not declared by glibc 2.36's headers) and glibc's internal names. */
	void (*free_sized_)(void *, size_t) = (void (*)(void *, size_t))st_sym("free_sized");
	void (*free_aligned_sized_)(void *, size_t, size_t) =
		(void (*)(void *, size_t, size_t))st_sym("free_aligned_sized");
	q = malloc(700);
	is_block(q, 1024, "malloc(700)");
	free_sized_(q, 700);
	q = aligned_alloc(512, 512);
	is_block(q, 512, "aligned_alloc(512, 512)");
	free_aligned_sized_(q, 512, 512);

	void *(*libc_malloc)(size_t) = (void *(*)(size_t))st_sym("__libc_malloc");
	void (*libc_free)(void *) = (void (*)(void *))st_sym("__libc_free");
	void *(*libc_calloc)(size_t, size_t) = (void *(*)(size_t, size_t))st_sym("__libc_calloc");
	void *(*libc_realloc)(void *, size_t) = (void *(*)(void *, size_t))st_sym("__libc_realloc");
	void *(*libc_memalign)(size_t, size_t) = (void *(*)(size_t, size_t))st_sym("__libc_memalign");
	void *(*libc_valloc)(size_t) = (void *(*)(size_t))st_sym("__libc_valloc");
	void *(*libc_pvalloc)(size_t) = (void *(*)(size_t))st_sym("__libc_pvalloc");
	q = libc_malloc(40);
	is_block(q, 64, "__libc_malloc(40)");
	q = libc_realloc(q, 200);
	is_block(q, 256, "__libc_realloc(q, 200)");
	libc_free(q);
	q = libc_calloc(3, 5);
	is_block(q, 16, "__libc_calloc(3, 5)");
	libc_free(q);
	q = libc_memalign(128, 8);
	is_block(q, 128, "__libc_memalign(128, 8)");
	libc_free(q);
	q = libc_valloc(1);
	is_block(q, 4096, "__libc_valloc(1)");
	libc_free(q);
	q = libc_pvalloc(4097);
	is_block(q, 8192, "__libc_pvalloc(4097)");
	libc_free(q);

	CHECK(mallopt(M_ARENA_MAX, 1) == 1, "mallopt did not return 1");
	CHECK(malloc_trim(0) == 0, "malloc_trim did not return 0");

	/* Blocks glibc allocates for the program. */
	char *s = strdup("librtalloc");
	is_block(s, 16, "strdup");
	free(s);
	CHECK(asprintf(&s, "%0300d", 7) == 300, "asprintf failed");
	in_pool(s, "asprintf");
	CHECK(st_api.usable_size(s) >= 301, "asprintf buffer of %zu bytes", st_api.usable_size(s));
	free(s);
	FILE *f = fopen("/proc/self/status", "r");
	in_pool(f, "fopen's FILE");
	char *line = NULL;
	size_t cap = 0;
	CHECK(getline(&line, &cap, f) > 0, "getline failed");
	is_block(line, st_api.usable_size(line), "getline's buffer");
	CHECK(st_api.usable_size(line) >= cap, "getline: capacity %zu > block %zu", cap,
	      st_api.usable_size(line));
	free(line);
	fclose(f);
	char *rp = realpath("/proc/self", NULL);
	in_pool(rp, "realpath(..., NULL)");
	free(rp);
	char *buf = NULL;
	size_t len = 0;
	FILE *ms = open_memstream(&buf, &len);
	CHECK(ms != NULL, "open_memstream failed");
	for (int i = 0; i < 1000; i++)
		fprintf(ms, "%d,", i);
	fclose(ms);
	in_pool(buf, "open_memstream's buffer");
	CHECK(len > 1000, "open_memstream wrote %zu bytes", len);
	free(buf);

	/* A new thread allocates from librtalloc too, and the main thread frees. */
	pthread_t t;
	void *tp;
	CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0, "pthread_create failed");
	CHECK(pthread_join(t, &tp) == 0, "pthread_join failed");
	free(tp);

	/* Nothing reached glibc's allocator: its main arena never got memory. */
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	CHECK(libc != NULL, "libc.so.6 not loaded?");
	struct mallinfo2 (*glibc_mallinfo2)(void) =
		(struct mallinfo2 (*)(void))dlvsym(libc, "mallinfo2", "GLIBC_2.33");
	CHECK(glibc_mallinfo2 != NULL, "glibc's mallinfo2@GLIBC_2.33 not found");
	Dl_info di;
	CHECK(dladdr((void *)glibc_mallinfo2, &di) && strstr(di.dli_fname, "libc.so"),
	      "dlvsym found mallinfo2 in %s", di.dli_fname);
	struct mallinfo2 g = glibc_mallinfo2();
	printf("glibc's allocator: arena %zu, mmapped %zu, in use %zu\n", g.arena, g.hblkhd, g.uordblks);
	CHECK(g.arena == 0 && g.hblkhd == 0 && g.uordblks == 0,
	      "glibc's own allocator was used: arena %zu, mmapped %zu, in use %zu", g.arena, g.hblkhd,
	      g.uordblks);
	dlclose(libc);

	free(first);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok interpose: every entry point and glibc's own allocations served by librtalloc\n");
	return 0;
}
