/* SPDX-License-Identifier: MIT */
/*
 * st_dlopen.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=16M and
 * ST_TLSMOD=<path of st_tlsmod.so>.
 *
 * 60 rounds of: dlopen the plugin (its constructor allocates), use its TLS
 * from the main thread and from 4 threads (glibc allocates each thread's
 * copy of the plugin's TLS with malloc: it must come from librtalloc's pool),
 * let the threads exit (the plugin's thread-exit destructors free), dlclose
 * (its destructor frees).  Memory in use stays bounded after a warm-up, and
 * rtalloc_check() passes.
 */
#include <pthread.h>

#include "st_util.h"

#define ROUNDS 60
#define WARMUP 10
#define NT 4

static uintptr_t pool_lo, pool_hi;
static void *(*tls_addr)(void);
static int (*work)(unsigned);
static int (*touch)(void);

static void in_pool(const void *p, const char *what)
{
	CHECK((uintptr_t)p >= pool_lo && (uintptr_t)p < pool_hi,
	      "%s %p is not in librtalloc's pool [%#lx, %#lx)", what, p, (unsigned long)pool_lo,
	      (unsigned long)pool_hi);
}

static void *thread_main(void *arg)
{
	unsigned n = (unsigned)(uintptr_t)arg;
	CHECK(work(n) == 0, "st_mod_work(%u) failed", n);
	in_pool(tls_addr(), "a thread's TLS block of the plugin");
	CHECK(work(n * 3) == 0, "st_mod_work(%u) failed", n * 3);
	return NULL;
}

int main(void)
{
	st_need_preload("dlopen");
	const char *path = getenv("ST_TLSMOD");
	CHECK(path != NULL, "ST_TLSMOD is not set");
	void *first = malloc(64);
	char perms[5];
	CHECK(st_vma_of(first, &pool_lo, &pool_hi, perms) == 0, "no mapping holds %p", first);
	free(first);

	size_t base = 0, peak = 0;
	for (int round = 0; round < ROUNDS; round++) {
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		CHECK(h != NULL, "dlopen(%s): %s", path, dlerror());
		*(void **)&tls_addr = dlsym(h, "st_mod_tls_addr");
		*(void **)&work = dlsym(h, "st_mod_work");
		*(void **)&touch = dlsym(h, "st_mod_touch");
		CHECK(tls_addr && work && touch, "the plugin's functions are missing");
		CHECK(touch() == 0, "round %d: st_mod_touch failed in the main thread", round);
		in_pool(tls_addr(), "the main thread's TLS block of the plugin");
		pthread_t t[NT];
		for (int i = 0; i < NT; i++)
			CHECK(pthread_create(&t[i], NULL, thread_main,
					     (void *)(uintptr_t)(100 + 700 * i + 50 * round)) == 0,
			      "pthread_create");
		for (int i = 0; i < NT; i++)
			CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
		CHECK(dlclose(h) == 0, "dlclose: %s", dlerror());
		void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
		CHECK(still == NULL, "round %d: the plugin is still loaded after dlclose", round);
		size_t u = mallinfo2().uordblks;
		if (round == WARMUP)
			base = u;
		if (round >= WARMUP && u > peak)
			peak = u;
	}
	printf("%d dlopen/dlclose rounds: in use %zu after %d rounds, peak %zu\n", ROUNDS, base, WARMUP,
	       peak);
	CHECK(peak <= base + (256 << 10), "memory in use grows with dlopen rounds: %zu -> %zu", base, peak);
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok dlopen\n");
	return 0;
}
