/* SPDX-License-Identifier: MIT */
/*
 * core_stub.c - stand-in for a symbol the static core library references but
 * does not define.
 *
 * lib/alloc.c (rt_realloc) calls rt_realloc_foreign(), which is defined only
 * in lib/interpose.c; interpose.c is not part of rtalloc_core, so every
 * program that links rtalloc_core and uses any rtalloc_* function fails to
 * link ("undefined reference to `rt_realloc_foreign'").
 *
 * This file is built into its own static library that is linked after
 * rtalloc_core: the linker takes it only while the core leaves the symbol
 * undefined, so once the library defines it (in any core object) this stub
 * drops out by itself.  It prints a message the tests recognise
 * (test_api's realloc_foreign_pointer test fails while the stub is in use).
 */
#include <stdlib.h>
#include <unistd.h>

void *rt_realloc_foreign(void *p, size_t n);

void *rt_realloc_foreign(void *p, size_t n)
{
	static const char msg[] = "UNIT-TEST STUB: rt_realloc_foreign() is missing from rtalloc_core "
				  "(defined only in lib/interpose.c); aborting\n";
	(void)p;
	(void)n;
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	abort();
}
