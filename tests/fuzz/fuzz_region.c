/* SPDX-License-Identifier: MIT */
/*
 * fuzz_region.c - libFuzzer target: rtalloc-stat's reader of a statistics
 * region (tools/rtalloc-stat: region_header, snap_read, on lib/statread.c,
 * the reader rtalloc_stats() shares) and everything that
 * prints what it read (the text and JSON reports, the watch rows), on
 * arbitrary bytes in place of another process's region.
 *
 * Input: byte 0 are flags (bit 0: make the header valid - magic, version,
 * size, pid, slot count - so that the fuzzer gets past it; bit 1: a region
 * of the layout before heaps; bit 2: /proc figures "known"); then the
 * header and arenas as bytes; then patches, each [where: 3 bytes] [length:
 * 1 byte] [bytes], written at where modulo the region's size (the first
 * snapshot), or, once a patch's where has bit 23 set, into the second
 * snapshot's copy (what -w compares).  Shared heaps' objects are not opened
 * (snap_shared_heaps = false).  UBSan (-fno-sanitize-recover) turns any
 * overflow in the arithmetic on these counters into a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs.h"

#define FAKE_PID 4242

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t buf[(REGION_LEN + 7) / 8];
static struct report rep;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!freopen("/dev/null", "w", stdout))
		abort();
	snap_shared_heaps = false;
	install_sigbus();
	return 0;
}

static void render(const struct target *t, struct snap *s, bool have_proc, long long vmlck)
{
	memset(&rep, 0, sizeof(rep));
	rep.s = s;
	rep.have_proc = have_proc;
	rep.proc.minflt = s->f.init_minflt ^ 0x5555;
	rep.proc.majflt = s->f.init_majflt ^ 0xaaaa;
	rep.vmlck_kib = vmlck;
	for (unsigned i = 0; i < s->f.nlive && rep.nrows < 8; i++) { /* bound: 8 rows */
		struct thread_row *row = &rep.rows[rep.nrows++];
		row->tid = s->live[i].tid;
		row->have_proc = have_proc;
		row->minflt = s->live[i].c.sect_minflt;
		row->majflt = s->live[i].c.sect_majflt;
		memcpy(row->name, &s->live[i].c, sizeof(row->name) - 1); /* bytes from the region */
		row->slot = &s->live[i];
	}
	report_text(t, &rep);
	report_json(t, &rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0];
	data++;
	size--;
	static struct target t;
	memset(&t, 0, sizeof(t));
	t.pid = FAKE_PID;
	snprintf(t.comm, sizeof(t.comm), "fuzz\x1b[2J");
	snprintf(t.region.path, sizeof(t.region.path), "/nowhere/rtalloc-0-%d.stats", FAKE_PID);
	t.region.fd = -1;
	t.region.pid = FAKE_PID;
	t.region.len = (flags & 2) ? REGION_V1_LEN : REGION_LEN;
	t.region.map = (const struct rt_stats_region *)buf;

	memset(buf, 0, sizeof(buf));
	unsigned char *bytes = (unsigned char *)buf;
	size_t head = offsetof(struct rt_stats_region, slot_map);
	size_t n = size < head ? size : head;
	memcpy(bytes, data, n);
	data += n;
	size -= n;
	struct rt_stats_region *m = (struct rt_stats_region *)buf;
	if (flags & 1) {
		m->magic = RT_STATS_MAGIC;
		m->version = RT_STATS_VERSION;
		m->size = (uint32_t)t.region.len;
		m->pid = FAKE_PID;
		m->nslots = RT_STATS_SLOTS;
	}
	/* patches of the first snapshot, up to the first one marked for the second */
	const uint8_t *p = data, *end = data + size;
	bool second = false;
	for (int pass = 0; pass < 2; pass++) { /* bound: two snapshots */
		while (end - p >= 4) { /* bound: the input */
			uint32_t where = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
			size_t len = p[3];
			if ((where & 0x800000) && !second) {
				second = true;
				break;
			}
			p += 4;
			if (len > (size_t)(end - p))
				len = (size_t)(end - p);
			size_t at = (where & 0x7fffff) % t.region.len;
			if (len > t.region.len - at)
				len = t.region.len - at;
			memcpy(bytes + at, p, len);
			p += len;
		}
		struct snap *s = pass ? &snap_b : &snap_a;
		if (region_header(&t.region) != RG_OK)
			return 0;
		if (snap_read(&t.region, s) != RG_OK)
			abort(); /* no SIGBUS here, and shared heaps are not read */
		if (s->f.narenas < 1 || s->f.narenas > RT_STATS_ARENAS || s->f.nlive > RT_STATS_SLOTS ||
		    s->nheaps > RT_STATS_HEAPS)
			abort();
		render(&t, s, flags & 4, (long long)(m->reserved[0] & 0xffffffff) - 1);
		if (!second)
			break;
	}
	struct sample a = {&snap_a, flags & 4, snap_a.f.init_minflt, snap_a.f.init_majflt};
	struct sample b = {second ? &snap_b : &snap_a, flags & 4, snap_a.f.pool_size, snap_a.f.pool_max};
	watch_row(true, FAKE_PID, 1.0, &a, &b, flags & 8);
	watch_row(false, FAKE_PID, 1.0, &a, &b, flags & 8);
	return 0;
}
