/* SPDX-License-Identifier: MIT */
/*
 * fuzz_core.c - libFuzzer target: an operation sequence on the core
 * (rtalloc_* names, linked with the core, no libc names), over a 4 MiB pool in
 * a static array (rtalloc_config.memory: no system call on it, never grows).
 *
 * The input is read 4 bytes an operation: OP SLOT SIZE_LO SIZE_HI.  OP % 10
 * picks malloc, calloc, realloc, free, free_sized, posix_memalign,
 * aligned_alloc, memalign, realloc to a large size or a check of every live
 * block; SLOT one of 64 slots; the size is SIZE_HI:SIZE_LO, times 64 when
 * OP & 0x80 (up to 4 MiB: beyond the pool too).  Every block is filled with
 * a pattern of its slot and checked before it is freed or reallocated (the
 * common prefix); alignments and usable sizes are checked; a failure must
 * say ENOMEM.  At the end of the input every block is freed and
 * rtalloc_check() must find the heap sound - the state every input starts
 * from.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtalloc.h"

/* Not instrumented for coverage: the loop over every byte would cost the
 * fuzzer most of its time and teach it nothing. */
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))

#define POOL_BYTES ((size_t)4 << 20)
#define SLOTS 64

static unsigned char pool[POOL_BYTES] __attribute__((aligned(4096)));

static struct {
	unsigned char *p;
	size_t size;
} slot[SLOTS];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("RTALLOC_STATS", "0", 1);
	struct rtalloc_config cfg = {
		.size = sizeof(cfg), .mlock = RTALLOC_MLOCK_OFF, .on_exhaust = RTALLOC_EXHAUST_FAIL,
		.numa = RTALLOC_NUMA_OFF, .memory = pool, .memory_size = sizeof(pool),
	};
	int e = rtalloc_init(&cfg);
	if (e) {
		fprintf(stderr, "fuzz_core: rtalloc_init: %s\n", strerror(e));
		abort();
	}
	return 0;
}

/* The pattern: byte i of slot s's block.  Constant over each 4 KiB chunk
 * but for the chunk's first 64 bytes (so that memset fills and memchr-free
 * compares stay cheap on 4 MiB blocks), different for every slot and chunk. */
static unsigned char byte_of(unsigned s, size_t i)
{
	return (i & 4095) < 64 ? (unsigned char)(s * 37 + i * 11) : (unsigned char)(s * 131 + (i >> 12) * 7 + 1);
}

static void fill(unsigned s, size_t from);
static bool all_zero(const unsigned char *p, size_t n);

NO_COVERAGE static void fill(unsigned s, size_t from)
{
	if (!slot[s].p)
		return;
	for (size_t i = from; i < slot[s].size;) { /* bound: the block's size, 64 bytes or a chunk a turn */
		size_t end = (i | 4095) + 1 < slot[s].size ? (i | 4095) + 1 : slot[s].size;
		if ((i & 4095) < 64) {
			slot[s].p[i] = byte_of(s, i);
			i++;
		} else {
			memset(slot[s].p + i, byte_of(s, i), end - i);
			i = end;
		}
	}
}

NO_COVERAGE static void verify(unsigned s, size_t n, const char *when)
{
	for (size_t i = 0; i < n; i++) { /* bound: n */
		if ((i & 4095) == 64 && i + 4032 <= n) { /* the constant part of a chunk, a word at a time */
			uint64_t w;
			memset(&w, byte_of(s, i), sizeof(w));
			for (size_t k = 0; k < 4032; k += 8) { /* bound: 504 words */
				uint64_t v;
				memcpy(&v, slot[s].p + i + k, 8);
				if (v != w)
					goto bad;
			}
			i += 4031;
			continue;
		}
		if (slot[s].p[i] != byte_of(s, i))
			goto bad;
	}
	return;
bad:
	fprintf(stderr, "fuzz_core: %s: slot %u (%p, %zu bytes): its contents changed\n", when, s,
		(void *)slot[s].p, slot[s].size);
	abort();
}

NO_COVERAGE static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) /* bound: n */
		if (p[i])
			return false;
	return true;
}

static void got(unsigned s, void *p, size_t size, size_t align, const char *call)
{
	if (!p) {
		if (errno != ENOMEM) {
			fprintf(stderr, "fuzz_core: %s(%zu) failed with errno %d\n", call, size, errno);
			abort();
		}
		return;
	}
	if (((uintptr_t)p & 15) || (align && (uintptr_t)p % align)) {
		fprintf(stderr, "fuzz_core: %s(%zu, align %zu) = %p: misaligned\n", call, size, align, p);
		abort();
	}
	if ((unsigned char *)p < pool || (unsigned char *)p + size > pool + sizeof(pool)) {
		fprintf(stderr, "fuzz_core: %s(%zu) = %p: outside the pool\n", call, size, p);
		abort();
	}
	if (rtalloc_malloc_usable_size(p) < size) {
		fprintf(stderr, "fuzz_core: %s(%zu) = %p: usable size %zu\n", call, size, p,
			rtalloc_malloc_usable_size(p));
		abort();
	}
	slot[s].p = p;
	slot[s].size = size;
}

static void drop(unsigned s, int sized)
{
	if (!slot[s].p)
		return;
	verify(s, slot[s].size, "free");
	if (sized)
		rtalloc_free_sized(slot[s].p, slot[s].size);
	else
		rtalloc_free(slot[s].p);
	slot[s].p = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t at = 0; at + 4 <= size; at += 4) { /* bound: the input */
		unsigned op = data[at], s = data[at + 1] % SLOTS;
		size_t n = (size_t)data[at + 2] | (size_t)data[at + 3] << 8;
		if (op & 0x80)
			n *= 64;
		size_t align = (size_t)1 << (data[at + 2] % 16);
		void *p = NULL;
		errno = 0;
		switch (op % 10) {
		case 0:
			drop(s, 0);
			got(s, rtalloc_malloc(n), n, 0, "malloc");
			fill(s, 0);
			break;
		case 1: {
			drop(s, 0);
			size_t k = data[at + 1] % 4 + 1;
			p = rtalloc_calloc(k, n / k);
			got(s, p, k * (n / k), 0, "calloc");
			if (p && !all_zero(slot[s].p, slot[s].size)) {
				fprintf(stderr, "fuzz_core: calloc(%zu, %zu): not all zero\n", k, n / k);
				abort();
			}
			fill(s, 0);
			break;
		}
		case 2:
		case 8: {
			if (op % 10 == 8)
				n = n * 61 + 12345;
			if (!slot[s].p)
				break;
			verify(s, slot[s].size, "realloc");
			size_t old = slot[s].size;
			p = rtalloc_realloc(slot[s].p, n);
			if (!p && n) {
				got(s, NULL, n, 0, "realloc");
				verify(s, old, "after a failed realloc");
				break;
			}
			if (!n) { /* realloc(p, 0) frees */
				slot[s].p = NULL;
				break;
			}
			slot[s].p = p;
			slot[s].size = old < n ? old : n;
			verify(s, slot[s].size, "the kept part after realloc");
			got(s, p, n, 0, "realloc");
			fill(s, old < n ? old : n);
			break;
		}
		case 3:
			drop(s, 0);
			break;
		case 4:
			drop(s, 1);
			break;
		case 5: {
			drop(s, 0);
			size_t a = align < sizeof(void *) ? sizeof(void *) : align;
			int e = rtalloc_posix_memalign(&p, a, n);
			if (e)
				errno = e;
			got(s, e ? NULL : p, n, a, "posix_memalign");
			fill(s, 0);
			break;
		}
		case 6:
			drop(s, 0);
			got(s, rtalloc_aligned_alloc(align, n), n, align, "aligned_alloc");
			fill(s, 0);
			break;
		case 7:
			drop(s, 0);
			got(s, rtalloc_memalign(align, n), n, align, "memalign");
			fill(s, 0);
			break;
		case 9:
			for (unsigned i = 0; i < SLOTS; i++) /* bound: the slots */
				if (slot[i].p)
					verify(i, slot[i].size, "a check");
			break;
		}
	}
	for (unsigned i = 0; i < SLOTS; i++) /* bound: the slots */
		drop(i, 0);
	if (rtalloc_check() != 0) {
		fprintf(stderr, "fuzz_core: rtalloc_check() failed after the input\n");
		abort();
	}
	return 0;
}
