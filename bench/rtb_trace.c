/* SPDX-License-Identifier: MIT */
/*
 * rtb_trace.c - `rtbench --trace FILE classic trace`: replay a real
 * program's allocation trace (bench/traces/, format in
 * bench/traces/mktrace.py): every malloc, calloc, aligned allocation,
 * realloc and free of the program, in its order and sizes, block numbers
 * mapped to the addresses this run's allocator returns.
 *
 * The file is read and parsed before the clock starts (a .gz file through
 * `gzip -dc`), into memory from mmap, never from the allocator measured.
 * The replay is single-threaded, as the programs traced were.
 * The trace is replayed --quick ? 1 : 3 times (bounded by --classic-seconds
 * too); blocks the program never freed are freed at the end of each pass.
 * Each block carries its number at both ends while it is live, checked at
 * realloc and free; calloc memory must be zero, aligned blocks aligned.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TRACE_MAX_BYTES ((size_t)256 << 20) /* of text, decompressed */

struct trec {
	char op;       /* m c a r f */
	uint32_t id;
	uint32_t x, y; /* m: size; c: count, size; a: align, size; r: size */
};

struct tslot {
	unsigned char *p;
	size_t n;
};

static unsigned char tkey(uint32_t id)
{
	return (unsigned char)(id * 0x9d ^ (id >> 8) ^ 0xc3);
}

static void ttag(const struct tslot *s, uint32_t id)
{
	if (s->n) {
		s->p[0] = tkey(id);
		s->p[s->n - 1] = tkey(id);
	}
}

static bool tok(const struct tslot *s, uint32_t id)
{
	return !s->n || (s->p[0] == tkey(id) && s->p[s->n - 1] == tkey(id));
}

/* The whole text of the trace in memory from mmap; its length in *len,
 * the size of the mapping in *mapped. */
static char *read_trace(const char *path, size_t *len, size_t *mapped)
{
	int fd = -1;
	FILE *pipe = NULL;
	size_t plen = strlen(path);
	if (plen > 3 && strcmp(path + plen - 3, ".gz") == 0) {
		char cmd[4096];
		if (strchr(path, '\'') || snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path) >= (int)sizeof cmd)
			return NULL;
		pipe = popen(cmd, "r");
		if (!pipe)
			return NULL;
		fd = fileno(pipe);
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return NULL;
	}
	/* Grown by doubling: under mlockall(MCL_FUTURE) every page mapped
	 * becomes resident, so map no more than the text needs. */
	size_t cap = (size_t)16 << 20, n = 0;
	char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	while (buf != MAP_FAILED) { /* bound: TRACE_MAX_BYTES */
		if (n == cap - 1) {
			char *more = cap < TRACE_MAX_BYTES ? mremap(buf, cap, 2 * cap, MREMAP_MAYMOVE)
							   : MAP_FAILED;
			if (more == MAP_FAILED)
				break;
			buf = more;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (buf != MAP_FAILED)
		buf[n] = '\0';
	int bad = pipe ? pclose(pipe) != 0 : close(fd) != 0;
	if (buf == MAP_FAILED)
		return NULL;
	if (bad || n == 0 || n == cap - 1) {
		munmap(buf, cap);
		return NULL;
	}
	*len = n;
	*mapped = cap;
	return buf;
}

static uint64_t num(char **p)
{
	while (**p == ' ')
		(*p)++;
	return strtoull(*p, p, 10);
}

/* "bench/traces/python.trace.gz" -> "trace-python" */
static void scope_name(const char *path, char *out, size_t cap)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strcspn(base, ".");
	snprintf(out, cap, "trace-%.*s", (int)(n < 40 ? n : 40), base);
}

int rtb_classic_trace(const struct rtb_opts *o)
{
	if (!o->trace) {
		fprintf(stderr, "rtbench: classic trace needs --trace FILE (bench/traces/*.trace.gz)\n");
		return 2;
	}
	size_t len, mapped;
	char *text = read_trace(o->trace, &len, &mapped);
	if (!text) {
		fprintf(stderr, "rtbench: cannot read trace %s\n", o->trace);
		return 2;
	}
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	size_t rec_bytes = (lines + 1) * sizeof(struct trec);
	struct trec *rec = rtb_map(rec_bytes);
	size_t nrec = 0;
	uint32_t max_id = 0;
	for (char *p = text, *end = text + len; p < end;) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		*eol = '\0';
		if (*p && *p != '#') {
			struct trec r = {.op = *p};
			char *q = p + 1;
			if (!strchr("mcarf", r.op) || *q != ' ')
				goto bad;
			uint64_t id = num(&q), x = 0, y = 0;
			if (r.op != 'f')
				x = num(&q);
			if (r.op == 'c' || r.op == 'a')
				y = num(&q);
			if (*q || id >= UINT32_MAX || x > UINT32_MAX || y > UINT32_MAX)
				goto bad;
			r.id = (uint32_t)id;
			r.x = (uint32_t)x;
			r.y = (uint32_t)y;
			if (r.id > max_id)
				max_id = r.id;
			rec[nrec++] = r;
		}
		p = eol + 1;
		continue;
	bad:
		fprintf(stderr, "rtbench: %s: bad line '%.60s'\n", o->trace, p);
		munmap(text, mapped);
		rtb_unmap(rec, rec_bytes);
		return 2;
	}
	munmap(text, mapped);
	/* mktrace.py numbers blocks from 0 without gaps, so a number beyond
	 * the count of calls is a broken file (and would size a huge table). */
	if (nrec == 0 || max_id >= nrec) {
		fprintf(stderr, "rtbench: %s: no calls, or block numbers beyond the calls\n", o->trace);
		rtb_unmap(rec, rec_bytes);
		return 2;
	}
	size_t slot_bytes = ((size_t)max_id + 1) * sizeof(struct tslot);
	struct tslot *slot = rtb_map(slot_bytes);

	unsigned loops = o->quick ? 1 : 3;
	char name[64];
	scope_name(o->trace, name, sizeof name);
	uint64_t fails = 0, errors = 0, ops = 0;
	struct rtb_classic_run run;
	rtb_classic_begin(&run, o, name, (uint64_t)loops * nrec);
	bool stop = false;
	for (unsigned l = 0; l < loops && !stop; l++) {
		for (size_t i = 0; i < nrec; i++) { /* bound: nrec */
			if ((i & 4095) == 0 && rtb_now_ns() >= run.deadline) {
				stop = true;
				break;
			}
			const struct trec *r = &rec[i];
			struct tslot *s = &slot[r->id];
			ops++;
			switch (r->op) {
			case 'm':
			case 'c':
			case 'a':
				if (s->p) { /* a trace never reuses a live number */
					errors++;
					free(s->p);
				}
				if (r->op == 'm') {
					s->n = r->x;
					s->p = malloc(s->n);
				} else if (r->op == 'c') {
					s->n = (size_t)r->x * r->y;
					s->p = calloc(r->x, r->y);
					if (s->p && s->n && (s->p[0] || s->p[s->n - 1]))
						errors++;
				} else {
					size_t align = r->x < sizeof(void *) ? sizeof(void *) : r->x;
					void *p = NULL;
					s->n = r->y;
					if (posix_memalign(&p, align, s->n) != 0)
						p = NULL;
					s->p = p;
					if (p && ((uintptr_t)p & (align - 1)))
						errors++;
				}
				if (s->p)
					ttag(s, r->id);
				else if (s->n)
					fails++;
				break;
			case 'r': {
				if (s->p && !tok(s, r->id))
					errors++;
				unsigned char *p = realloc(s->p, r->x);
				if (!p && r->x) {
					fails++;
					break;
				}
				if (p && s->n && r->x && p[0] != tkey(r->id))
					errors++; /* contents lost */
				s->p = p;
				s->n = r->x;
				if (p)
					ttag(s, r->id);
				break;
			}
			case 'f':
				if (s->p && !tok(s, r->id))
					errors++;
				free(s->p);
				s->p = NULL;
				s->n = 0;
				break;
			}
		}
		for (uint32_t id = 0; id <= max_id; id++) { /* bound: max_id */
			if (slot[id].p && !tok(&slot[id], id))
				errors++;
			free(slot[id].p);
			slot[id].p = NULL;
			slot[id].n = 0;
		}
	}
	rtb_classic_end(&run, ops, fails, errors, 1);
	rtb_emitf("records", (double)nrec, "classic.%s", name);
	rtb_unmap(slot, slot_bytes);
	rtb_unmap(rec, rec_bytes);
	return 0;
}
