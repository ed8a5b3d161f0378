/* SPDX-License-Identifier: MIT */
/*
 * rtmlock.c - librtmlock.so: only mlockall(MCL_CURRENT | MCL_FUTURE) in a
 * constructor.  Preloaded after another allocator (jemalloc, mimalloc,
 * tcmalloc) it gives that allocator's "+mlockall" variant: memory already
 * mapped is locked, and every later mapping is faulted in and locked when it
 * is made (which moves page faults from first touch into the mmap() call).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((constructor)) static void rtmlock_init(void)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
		static const char msg[] = "librtmlock: mlockall failed; memory is not locked\n";
		ssize_t rc = write(2, msg, sizeof msg - 1);
		(void)rc;
	}
}
