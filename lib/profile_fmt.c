/* SPDX-License-Identifier: MIT */
/*
 * profile_fmt.c - the recorded profile's text: writer, parser, and the
 * collector from a statistics region (the format: profile.h).  Linked into
 * librtalloc and into rtalloc-stat.  No allocation, no stdio: the parser
 * runs during the allocator's initialisation.  Every loop is bounded by the
 * text's length or by a table's size.
 */
#include <string.h>

#include "profile.h"

/* ---- writing ------------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, n; /* n: the length needed so far */
};

static void put(struct out *o, const char *s, size_t k)
{
	for (size_t i = 0; i < k; i++, o->n++) /* bound: k */
		if (o->n + 1 < o->len)
			o->buf[o->n] = s[i];
}

static void put_s(struct out *o, const char *s) { put(o, s, strlen(s)); }

static void put_u64(struct out *o, uint64_t v)
{
	char d[20];
	unsigned k = 0;
	do { /* bound: 20 digits */
		d[sizeof(d) - 1 - k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, d + sizeof(d) - k, k);
}

/* A name between quotes, escaped (profile.h). */
static void put_name(struct out *o, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	put_s(o, "\"");
	for (size_t i = 0; i < max && s[i]; i++) { /* bound: max */
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
			char e[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
			put(o, e, 4);
		} else {
			put(o, (const char *)&ch, 1);
		}
	}
	put_s(o, "\"");
}

static void put_class_size(struct out *o, unsigned c) { put_u64(o, (uint64_t)8 << c); }

size_t rt_pf_format(const struct rt_pf *p, const char *comment, char *buf, size_t len)
{
	struct out o = {buf, len, 0};
	put_s(&o, RT_PF_MAGIC " 1\n");
	if (comment) {
		put_s(&o, "# ");
		put_s(&o, comment);
		put_s(&o, "\n");
	}
	put_s(&o, "pool_peak_bytes ");
	put_u64(&o, p->pool_peak);
	put_s(&o, "\nlarge_peak_blocks ");
	put_u64(&o, p->large_peak);
	put_s(&o, "\n");
	for (unsigned c = 1; c < RT_PROFILE_CLASSES; c++) { /* bound: the classes */
		if (!p->class_peak[c])
			continue;
		put_s(&o, "class ");
		put_class_size(&o, c);
		put_s(&o, " peak ");
		put_u64(&o, p->class_peak[c]);
		put_s(&o, "\n");
	}
	for (unsigned t = 0; t < p->nthreads && t < RT_PROFILE_THREADS; t++) /* bound: RT_PROFILE_THREADS */
		for (unsigned c = 1; c < RT_PROFILE_CLASSES; c++) { /* bound: the classes */
			if (!p->threads[t].peak[c])
				continue;
			put_s(&o, "thread ");
			put_name(&o, p->threads[t].name, RT_PROFILE_NAME);
			put_s(&o, " class ");
			put_class_size(&o, c);
			put_s(&o, " peak ");
			put_u64(&o, p->threads[t].peak[c]);
			put_s(&o, "\n");
		}
	for (unsigned h = 0; h < p->nheaps && h < RT_STATS_HEAPS; h++) { /* bound: RT_STATS_HEAPS */
		put_s(&o, "heap ");
		put_name(&o, p->heaps[h].name, RT_PF_HEAP_NAME);
		put_s(&o, " bytes ");
		put_u64(&o, p->heaps[h].bytes);
		put_s(&o, " peak ");
		put_u64(&o, p->heaps[h].peak);
		put_s(&o, "\n");
	}
	if (len)
		buf[o.n < len ? o.n : len - 1] = '\0';
	return o.n;
}

/* ---- parsing ------------------------------------------------------------------- */

struct in {
	const char *s, *end; /* the rest of the line */
};

static void skip_blanks(struct in *in)
{
	while (in->s < in->end && (*in->s == ' ' || *in->s == '\t')) /* bound: the line */
		in->s++;
}

/* The word w, then a blank or the end of the line. */
static bool word(struct in *in, const char *w)
{
	skip_blanks(in);
	size_t k = strlen(w);
	if ((size_t)(in->end - in->s) < k || memcmp(in->s, w, k) != 0)
		return false;
	if (in->s + k < in->end && in->s[k] != ' ' && in->s[k] != '\t')
		return false;
	in->s += k;
	return true;
}

/* A decimal number up to max: 0 ok, else the error. */
static const char *number(struct in *in, uint64_t max, uint64_t *v)
{
	skip_blanks(in);
	if (in->s >= in->end || *in->s < '0' || *in->s > '9')
		return "a number expected";
	uint64_t x = 0;
	for (; in->s < in->end && *in->s >= '0' && *in->s <= '9'; in->s++) /* bound: the line */
		if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(*in->s - '0'), &x) ||
		    x > max)
			return "a number too large";
	if (in->s < in->end && *in->s != ' ' && *in->s != '\t')
		return "a number expected";
	*v = x;
	return NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A quoted name of at most max bytes into out (max + 1 bytes). */
static const char *name(struct in *in, char *out, size_t max)
{
	skip_blanks(in);
	if (in->s >= in->end || *in->s != '"')
		return "a quoted name expected";
	in->s++;
	size_t k = 0;
	for (;;) { /* bound: the line */
		if (in->s >= in->end)
			return "a name without its closing quote";
		char ch = *in->s++;
		if (ch == '"')
			break;
		if (ch == '\\') {
			int hi, lo;
			if (in->end - in->s < 3 || in->s[0] != 'x' || (hi = hexval(in->s[1])) < 0 ||
			    (lo = hexval(in->s[2])) < 0 || (hi == 0 && lo == 0))
				return "a bad escape in a name (\\xHH, not \\x00)";
			ch = (char)(hi << 4 | lo);
			in->s += 3;
		}
		if (k == max)
			return "a name too long";
		out[k++] = ch;
	}
	out[k] = '\0';
	if (k == 0)
		return "an empty name";
	return NULL;
}

/* "SIZE" of a class: the class number. */
static const char *class_num(struct in *in, unsigned *c)
{
	uint64_t size;
	if (number(in, UINT64_MAX, &size))
		return "a class size expected";
	for (unsigned k = 1; k < RT_PROFILE_CLASSES; k++) /* bound: the classes */
		if (size == (uint64_t)8 << k) {
			*c = k;
			return NULL;
		}
	return "an unknown class size (16, 32, 64 .. 1048576)";
}

/* "class SIZE". */
static const char *class_size(struct in *in, unsigned *c)
{
	return word(in, "class") ? class_num(in, c) : "'class' expected";
}

static const char *peak(struct in *in, uint64_t *v)
{
	if (!word(in, "peak"))
		return "'peak' expected";
	return number(in, RT_PF_PEAK_MAX, v);
}

static const char *line_end(struct in *in)
{
	skip_blanks(in);
	return in->s == in->end ? NULL : "unexpected text at the end of the line";
}

#define NUM_MAX ((uint64_t)INT64_MAX)

static const char *parse_line(struct in *in, struct rt_pf *p)
{
	const char *e;
	uint64_t v;
	unsigned c;
	if (word(in, "pool_peak_bytes")) {
		if ((e = number(in, NUM_MAX, &p->pool_peak)))
			return e;
	} else if (word(in, "large_peak_blocks")) {
		if ((e = number(in, NUM_MAX, &p->large_peak)))
			return e;
	} else if (word(in, "class")) {
		if ((e = class_num(in, &c)))
			return e;
		if (!word(in, "peak"))
			return "'peak' expected";
		if ((e = number(in, NUM_MAX, &v))) /* a sum over threads */
			return e;
		p->class_peak[c] = v;
	} else if (word(in, "thread")) {
		char nm[RT_PROFILE_NAME] = {0};
		if ((e = name(in, nm, RT_PROFILE_NAME - 1)) || (e = class_size(in, &c)) || (e = peak(in, &v)))
			return e;
		struct rt_pf_thread *t = (struct rt_pf_thread *)rt_pf_thread(p, nm);
		if (!t) {
			if (p->nthreads == RT_PROFILE_THREADS)
				return "more thread names than the 32 a profile holds";
			t = &p->threads[p->nthreads++];
			memcpy(t->name, nm, sizeof(nm));
		}
		t->peak[c] = (uint32_t)v;
	} else if (word(in, "heap")) {
		if (p->nheaps == RT_STATS_HEAPS)
			return "more heaps than the 16 a profile holds";
		struct rt_pf_heap *h = &p->heaps[p->nheaps];
		if ((e = name(in, h->name, RT_PF_HEAP_NAME)))
			return e;
		if (!word(in, "bytes"))
			return "'bytes' expected";
		if ((e = number(in, NUM_MAX, &h->bytes)) || (e = peak(in, &h->peak)))
			return e;
		p->nheaps++;
	} else {
		return "an unknown line (pool_peak_bytes, large_peak_blocks, class, thread or heap)";
	}
	return line_end(in);
}

const char *rt_pf_parse(const char *text, size_t len, struct rt_pf *p, unsigned *line)
{
	memset(p, 0, sizeof(*p));
	*line = 1;
	if (len >= RT_PF_TEXT_MAX - 1) /* what a reader of RT_PF_TEXT_MAX bytes may have cut */
		return "longer than 65534 bytes";
	const char *s = text, *end = text + len;
	bool first = true;
	while (s < end) { /* bound: the text, one line a round */
		const char *le = s;
		while (le < end && *le != '\n') { /* bound: the text */
			if (*le == '\0')
				return "a NUL byte (not a text file)";
			le++;
		}
		const char *nl = le < end ? le : NULL;
		struct in in = {s, le};
		if (le > s && le[-1] == '\r')
			in.end--;
		if (first) {
			uint64_t ver;
			if (!word(&in, RT_PF_MAGIC))
				return "not a profile (it must start with \"" RT_PF_MAGIC " 1\")";
			if (number(&in, NUM_MAX, &ver) || line_end(&in))
				return "a bad version line (\"" RT_PF_MAGIC " 1\")";
			if (ver != RT_PROFILE_VERSION)
				return "a profile of another version (this library reads version 1)";
			first = false;
		} else {
			skip_blanks(&in);
			if (in.s < in.end && *in.s != '#') {
				const char *e = parse_line(&in, p);
				if (e)
					return e;
			}
		}
		if (!nl)
			break;
		s = nl + 1;
		(*line)++;
	}
	if (first)
		return "empty (it must start with \"" RT_PF_MAGIC " 1\")";
	return NULL;
}

const struct rt_pf_thread *rt_pf_thread(const struct rt_pf *p, const char *nm)
{
	for (unsigned t = 0; t < p->nthreads && t < RT_PROFILE_THREADS; t++) /* bound: RT_PROFILE_THREADS */
		if (strncmp(p->threads[t].name, nm, RT_PROFILE_NAME) == 0)
			return &p->threads[t];
	return NULL;
}

/* ---- collecting from a region ------------------------------------------------------ */

void rt_pf_collect(const struct rt_stats_profile *m, uint64_t pool_peak, const struct rt_stats_heap *heaps,
		   unsigned nheaps, struct rt_pf *p)
{
	memset(p, 0, sizeof(*p));
	p->pool_peak = pool_peak;
	p->large_peak = __atomic_load_n(&m->large_peak, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < RT_PROFILE_THREADS; i++) { /* bound: RT_PROFILE_THREADS */
		const struct rt_stats_pthread *r = &m->threads[i];
		if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != RT_PROF_NAMED)
			continue;
		char nm[RT_PROFILE_NAME];
		uint64_t w[2];
		_Static_assert(sizeof(w) == RT_PROFILE_NAME, "a name is two words");
		for (unsigned k = 0; k < 2; k++) /* bound: 2 words */
			w[k] = __atomic_load_n((const uint64_t *)(const void *)(r->name + 8 * k), __ATOMIC_RELAXED);
		memcpy(nm, w, sizeof(nm));
		nm[RT_PROFILE_NAME - 1] = '\0';
		if (!nm[0])
			continue;
		struct rt_pf_thread *t = (struct rt_pf_thread *)rt_pf_thread(p, nm);
		if (!t) { /* at most RT_PROFILE_THREADS records, so always room */
			t = &p->threads[p->nthreads++];
			memcpy(t->name, nm, sizeof(nm));
		}
		for (unsigned c = 1; c < RT_PROFILE_CLASSES; c++) { /* bound: the classes */
			uint32_t v = __atomic_load_n(&r->peak[c], __ATOMIC_RELAXED);
			if (v > RT_PF_PEAK_MAX)
				v = RT_PF_PEAK_MAX;
			if (v > t->peak[c])
				t->peak[c] = v;
		}
	}
	for (unsigned t = 0; t < p->nthreads; t++) /* bound: RT_PROFILE_THREADS */
		for (unsigned c = 1; c < RT_PROFILE_CLASSES; c++) /* bound: the classes */
			p->class_peak[c] += p->threads[t].peak[c];
	for (unsigned h = 0; h < nheaps && h < RT_STATS_HEAPS; h++) { /* bound: RT_STATS_HEAPS */
		struct rt_pf_heap *o = &p->heaps[p->nheaps++];
		memcpy(o->name, heaps[h].name, RT_PF_HEAP_NAME);
		o->name[RT_PF_HEAP_NAME] = '\0';
		o->bytes = heaps[h].size;
		o->peak = heaps[h].size > heaps[h].min_free ? heaps[h].size - heaps[h].min_free : 0;
	}
}
