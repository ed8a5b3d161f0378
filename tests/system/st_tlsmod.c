/* SPDX-License-Identifier: MIT */
/*
 * st_tlsmod.c - a small plugin for st_dlopen.c: its own TLS (a large block,
 * so glibc allocates it with malloc at each thread's first access), a
 * constructor and a destructor that allocate and free, and a thread-exit
 * destructor (what a C++ thread_local with a destructor registers) that frees
 * a per-thread block.
 */
#include <stdlib.h>
#include <string.h>

extern void *__dso_handle;
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *arg, void *dso);

#define TLS_BIG 65536
static __thread char tls_big[TLS_BIG];
static __thread char *tls_block;
static __thread int tls_registered;
static char *ctor_block;

__attribute__((constructor)) static void mod_init(void)
{
	ctor_block = malloc(1000);
	if (ctor_block)
		memset(ctor_block, 'c', 1000);
}

__attribute__((destructor)) static void mod_fini(void)
{
	free(ctor_block);
	ctor_block = NULL;
}

static void thread_exit(void *arg)
{
	(void)arg;
	free(tls_block);
	tls_block = NULL;
}

/* The address of this thread's copy of the large TLS block. */
__attribute__((visibility("default"))) void *st_mod_tls_addr(void) { return tls_big; }

/* Touch the TLS block (allocates it); no thread-exit destructor. */
__attribute__((visibility("default"))) int st_mod_touch(void)
{
	tls_big[0]++;
	tls_big[TLS_BIG - 1]++;
	return ctor_block && ctor_block[999] == 'c' ? 0 : -1;
}

/* Touch the TLS block and keep a per-thread block of n bytes, freed when the
 * thread exits.  Returns 0. */
__attribute__((visibility("default"))) int st_mod_work(unsigned n)
{
	if (st_mod_touch() != 0)
		return -1;
	if (!tls_registered) {
		if (__cxa_thread_atexit_impl(thread_exit, NULL, &__dso_handle) != 0)
			return -2;
		tls_registered = 1;
	}
	char *p = realloc(tls_block, n);
	if (!p)
		return -3;
	tls_block = p;
	memset(tls_block, 1, n);
	return 0;
}
