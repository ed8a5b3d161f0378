/* SPDX-License-Identifier: MIT */
/* rtb_common.c - see rtb_common.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtb_common.h"

#include <alloca.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../lib/procfs.h" /* the /proc reader shared with the tool and tests */

/* ---------------------------------------------------------------- time */

static double g_ns_per_tick = 1.0;

uint64_t rtb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rtb_clock_calibrate(unsigned ms)
{
#if RTB_HAVE_TSC
	/* Spin rather than sleep: a sleeping vCPU may be descheduled, which
	 * does not change the TSC rate but makes the end points noisier. */
	uint64_t n0 = rtb_now_ns(), t0 = rtb_ticks();
	uint64_t until = n0 + (uint64_t)ms * 1000000ull;
	uint64_t n1, t1;
	do {
		n1 = rtb_now_ns();
		t1 = rtb_ticks();
	} while (n1 < until);
	if (t1 > t0)
		g_ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
#else
	(void)ms;
#endif
}

double rtb_ns_per_tick(void)
{
	return g_ns_per_tick;
}

/* ---------------------------------------------------------------- PRNG */

size_t rtb_mixed_size(rtb_rng *r)
{
	uint32_t bucket = rtb_below(r, 1000);
	if (bucket < 900)
		return rtb_between(r, 8, 512);
	if (bucket < 995)
		return rtb_between(r, 513, 64 * 1024);
	return rtb_between(r, 64 * 1024 + 1, 1024 * 1024);
}

/* ------------------------------------------------ bookkeeping memory */

void *rtb_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "rtbench: mmap of %zu bytes failed: %s\n", bytes,
			strerror(errno));
		exit(2);
	}
	return p;
}

void rtb_unmap(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

__attribute__((noinline)) void rtb_prefault_stack(size_t bytes)
{
	volatile char *p = alloca(bytes);
	for (size_t i = 0; i < bytes; i += 4096)
		p[i] = 0;
}

/* ------------------------------------------------- latency samples */

int rtb_samples_init(rtb_samples *s, size_t cap)
{
	s->v = rtb_map(cap * sizeof *s->v + 1);
	s->n = 0;
	s->cap = cap;
	s->dropped = 0;
	return 0;
}

void rtb_samples_release(rtb_samples *s)
{
	rtb_unmap(s->v, s->cap * sizeof *s->v + 1);
	s->v = NULL;
	s->n = s->cap = 0;
}

void rtb_samples_merge(rtb_samples *dst, const rtb_samples *src)
{
	size_t room = dst->cap - dst->n;
	size_t take = src->n < room ? src->n : room;
	memcpy(dst->v + dst->n, src->v, take * sizeof *src->v);
	dst->n += take;
	dst->dropped += src->dropped + (src->n - take);
}

/* LSD radix sort on 32-bit keys, 8 bits per pass, with an mmap()ed scratch
 * buffer: qsort() could call malloc and so disturb the allocator measured. */
void rtb_samples_sort(rtb_samples *s)
{
	if (s->n < 2)
		return;
	size_t bytes = s->n * sizeof *s->v;
	uint32_t *tmp = rtb_map(bytes);
	uint32_t *from = s->v, *to = tmp;
	for (unsigned shift = 0; shift < 32; shift += 8) {
		size_t count[257] = {0};
		for (size_t i = 0; i < s->n; i++)
			count[((from[i] >> shift) & 0xff) + 1]++;
		for (unsigned b = 0; b < 256; b++)
			count[b + 1] += count[b];
		for (size_t i = 0; i < s->n; i++)
			to[count[(from[i] >> shift) & 0xff]++] = from[i];
		uint32_t *swap = from;
		from = to;
		to = swap;
	}
	/* Four passes: the sorted data is back in s->v. */
	rtb_unmap(tmp, bytes);
}

double rtb_quantile_ns(const rtb_samples *s, double q)
{
	if (s->n == 0)
		return 0.0;
	double rank = q * (double)s->n;
	size_t idx = (size_t)rank;
	if ((double)idx < rank)
		idx++; /* ceil */
	idx = idx ? idx - 1 : 0;
	if (idx >= s->n)
		idx = s->n - 1;
	return rtb_ticks_to_ns(s->v[idx]);
}

uint64_t rtb_count_above_ns(const rtb_samples *s, double ns)
{
	double lim = ns / rtb_ns_per_tick();
	uint32_t thr = lim >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)lim;
	/* First index whose value is > thr. */
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid] <= thr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return s->n - lo;
}

/* ---------------------------------------------------------- faults */

static rtb_faults faults_of(int who)
{
	struct rusage ru;
	rtb_faults f = {0, 0};
	if (getrusage(who, &ru) == 0) {
		f.minor = ru.ru_minflt;
		f.major = ru.ru_majflt;
	}
	return f;
}

rtb_faults rtb_faults_self(void)
{
	return faults_of(RUSAGE_SELF);
}

rtb_faults rtb_faults_thread(void)
{
	return faults_of(RUSAGE_THREAD);
}

/* ------------------------------------------------------ strace marks */

void rtb_marker(unsigned id, bool end)
{
	uintptr_t addr = RTB_MARK_BASE + ((uintptr_t)(2u * id + (end ? 1u : 0u)) << 12);
	(void)madvise((void *)addr, 0, MADV_NORMAL);
}

/* -------------------------------------------------------- threads */

int rtb_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc;
}

bool rtb_pin_self(unsigned n, cpu_set_t *saved)
{
	cpu_set_t allowed, one;
	if (pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) != 0)
		return false;
	if (saved)
		*saved = allowed;
	int count = CPU_COUNT(&allowed);
	if (count < 2)
		return false;
	int want = (int)(n % (unsigned)count);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || want-- > 0)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
	}
	return false;
}

void rtb_unpin_self(const cpu_set_t *saved)
{
	pthread_setaffinity_np(pthread_self(), sizeof *saved, saved);
}

/* ------------------------------------------------------- output */

void rtb_out_init(void)
{
	/* A static, line-buffered stdout: results survive a crash of a later
	 * workload, and stdio takes no buffer from the allocator under test. */
	static char buf[1 << 16];
	setvbuf(stdout, buf, _IOLBF, sizeof buf);
}

void rtb_emit(const char *scope, const char *metric, double value)
{
	printf("R\t%s\t%s\t%.10g\n", scope, metric, value);
}

void rtb_emitf(const char *metric, double value, const char *scope_fmt, ...)
{
	char scope[128];
	va_list ap;
	va_start(ap, scope_fmt);
	vsnprintf(scope, sizeof scope, scope_fmt, ap);
	va_end(ap);
	rtb_emit(scope, metric, value);
}

long rtb_proc_status_kib(const char *field)
{
	char buf[8192];
	return (long)rt_proc_file_field("/proc/self/status", field, buf, sizeof buf);
}

size_t rtb_parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B') /* accept 64MiB / 64MB */
		end++;
	if (*end == 'B')
		end++;
	return *end ? 0 : (size_t)v;
}
