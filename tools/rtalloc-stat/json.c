/* SPDX-License-Identifier: MIT */
/*
 * json.c - rtalloc-stat's JSON writer.
 */
#include <string.h>

#include "rs.h"

/* ==== JSON output =========================================================================
 * One writer: keys and values in order, commas and nesting tracked here.  Strings are
 * escaped (control characters, and the C1 and bidirectional controls a terminal acts on,
 * as \uXXXX); bytes that are not valid UTF-8 are written as \u00XX so the output is always
 * valid JSON whatever a thread name holds. */

static struct {
	int depth;
	bool first[16];
} J;

static void j_sep(void)
{
	if (!J.first[J.depth])
		putchar(',');
	J.first[J.depth] = false;
}

/* Length of the valid UTF-8 sequence at s, or 0. */
int utf8_len(const unsigned char *s)
{
	int n;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Does the UTF-8 sequence at s (n bytes, valid) encode a character a terminal
 * acts on or that reorders what follows: C1 controls (U+0080..U+009F, CSI
 * among them) and the bidirectional embeddings, overrides and isolates? */
bool utf8_dangerous(const unsigned char *s, int n)
{
	if (n == 2)
		return s[0] == 0xc2 && s[1] < 0xa0;
	if (n == 3 && s[0] == 0xe2) /* U+202A..U+202E, U+2066..U+2069 */
		return (s[1] == 0x80 && s[2] >= 0xaa && s[2] <= 0xae) || (s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9);
	return false;
}

static void j_quote(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	putchar('"');
	while (*s) {
		if (*s == '"' || *s == '\\') {
			putchar('\\');
			putchar(*s++);
		} else if (*s < 0x20 || *s == 0x7f) {
			printf("\\u%04x", *s++);
		} else {
			int n = utf8_len(s);
			if (n == 0) {
				printf("\\u%04x", *s++);
			} else if (utf8_dangerous(s, n)) { /* the same character, escaped */
				printf("\\u%04x", n == 2 ? (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f)
							: (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 |
								  (s[2] & 0x3f));
				s += n;
			} else {
				fwrite(s, 1, (size_t)n, stdout);
				s += n;
			}
		}
	}
	putchar('"');
}

static void j_key(const char *k)
{
	j_sep();
	if (k) {
		j_quote(k);
		putchar(':');
	}
}

void j_open(const char *k, char c)
{
	j_key(k);
	putchar(c);
	J.depth++;
	J.first[J.depth] = true;
}

void j_close(char c)
{
	J.depth--;
	putchar(c);
}

void j_u64(const char *k, uint64_t v)
{
	j_key(k);
	printf("%llu", (unsigned long long)v);
}

void j_i64(const char *k, int64_t v)
{
	j_key(k);
	printf("%lld", (long long)v);
}

void j_dbl(const char *k, double v)
{
	j_key(k);
	printf("%.6f", v);
}

void j_bool(const char *k, bool v)
{
	j_key(k);
	fputs(v ? "true" : "false", stdout);
}

void j_null(const char *k)
{
	j_key(k);
	fputs("null", stdout);
}

void j_str(const char *k, const char *v)
{
	j_key(k);
	if (v)
		j_quote(v);
	else
		fputs("null", stdout);
}

void j_begin(void)
{
	J.depth = 0;
	J.first[0] = true;
	j_open(NULL, '{');
}

void j_end(void)
{
	j_close('}');
	putchar('\n');
	fflush(stdout);
}

void j_counters(const char *key, const struct rt_tcounters *c)
{
	j_open(key, '{');
#define RS_X_JSON(name, key, text) j_u64(key, c->name);
	RT_TCOUNTERS(RS_X_JSON)
	RT_TMAXIMA(RS_X_JSON)
#undef RS_X_JSON
	j_close('}');
}

