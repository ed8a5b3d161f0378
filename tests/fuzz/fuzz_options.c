/* SPDX-License-Identifier: MIT */
/*
 * fuzz_options.c - libFuzzer target: the RTALLOC_* parser (lib/options.c),
 * linked with the core (rt_parse_size and rt_options_read are hidden
 * symbols, reachable from a static link).
 *
 * The input is split at '\n': the first line is a size for rt_parse_size,
 * compared with a reference parser written here from its comment (digits and
 * an optional K/M/G/T, "i" and "B"; binary units; nothing that wraps); the
 * next 40 bytes, when there, a struct rtalloc_config; the remaining lines an
 * environment (a line "N..." with N a digit names variable N of the table
 * below, so that the fuzzer need not guess the names).  rt_options_read runs
 * with environ pointing at it, and its result must hold the invariants the
 * allocator relies on: pool_max >= pool_size >= 256 KiB, both at most
 * RT_POOL_CEIL when they come from the environment, stack pre-fault at most
 * 64 MiB, every choice within its enumeration, and a pool size or maximum
 * the environment gives (and the configuration does not override) taken
 * exactly when it parses and is within those bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtalloc.h"
#include "rt.h"
#include "os.h" /* RT_POOL_CEIL */

extern char **environ;

#ifdef RT_POOL_CEIL /* the largest pool the library takes (lib/os.h) */
#define POOL_CEIL RT_POOL_CEIL
#else
#define POOL_CEIL SIZE_MAX
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"RTALLOC_POOL_SIZE", "RTALLOC_POOL_MAX", "RTALLOC_STACK_PREFAULT", "RTALLOC_MLOCK",
	"RTALLOC_ON_EXHAUST", "RTALLOC_NUMA", "RTALLOC_STATS", "RTALLOC_OTHER",
};

#define FAIL(...)                                     \
	do {                                          \
		fprintf(stderr, "fuzz_options: ");    \
		fprintf(stderr, __VA_ARGS__);         \
		fputc('\n', stderr);                  \
		abort();                              \
	} while (0)

/* The reference: what rt_parse_size's comment promises. */
static bool ref_parse(const char *s, size_t *out)
{
	unsigned __int128 v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > SIZE_MAX)
			return false;
	}
	unsigned shift = 0;
	if (*p == 'k' || *p == 'K')
		shift = 10;
	else if (*p == 'm' || *p == 'M')
		shift = 20;
	else if (*p == 'g' || *p == 'G')
		shift = 30;
	else if (*p == 't' || *p == 'T')
		shift = 40;
	if (shift) {
		p++;
		if (*p == 'i' || *p == 'I')
			p++;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return false;
	v <<= shift;
	if (v > SIZE_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[4096];
	static char *env[64];
	if (size >= sizeof(buf))
		size = sizeof(buf) - 1;
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *nl = memchr(buf, '\n', size);
	char *rest = nl ? nl + 1 : buf + size;
	if (nl)
		*nl = '\0';
	size_t got = 12345, want = 54321;
	bool ok = rt_parse_size(buf, &got), ref = ref_parse(buf, &want);
	if (ok != ref || (ok && got != want))
		FAIL("rt_parse_size(\"%s\"): %d %zu, the reference %d %zu", buf, ok, got, ref, want);
	if (!ok && got != 12345)
		FAIL("rt_parse_size(\"%s\") refused but wrote %zu", buf, got);

	struct rtalloc_config cfg, *cfgp = NULL;
	size_t left = (size_t)(buf + size - rest);
	if (left >= 40 && rest[0] == 'C') {
		memset(&cfg, 0, sizeof(cfg));
		memcpy(&cfg, rest + 1, 39 < sizeof(cfg) ? 39 : sizeof(cfg));
		cfg.memory = NULL;
		cfgp = &cfg;
		rest += 40;
	}
	/* the environment: lines; a leading digit names a variable */
	static char lines[4096 + 64 * 32];
	size_t used = 0, n = 0;
	const char *given[8] = {0};
	for (char *l = rest; *l && n < 63;) { /* bound: 63 entries */
		char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char *out = lines + used;
		if (l[0] >= '0' && l[0] <= '7')
			used += (size_t)snprintf(out, sizeof(lines) - used, "%s=%.*s", names[l[0] - '0'],
						 (int)(len - 1), l + 1);
		else
			used += (size_t)snprintf(out, sizeof(lines) - used, "%.*s", (int)len, l);
		used++;
		for (int k = 0; k < 8; k++) { /* the first definition counts (rt_options_env) */
			size_t nl2 = strlen(names[k]);
			if (!given[k] && strncmp(out, names[k], nl2) == 0 && out[nl2] == '=')
				given[k] = out + nl2 + 1;
		}
		env[n++] = out;
		if (!e || used + 64 > sizeof(lines))
			break;
		l = e + 1;
	}
	env[n] = NULL;
	char **saved = environ;
	environ = env;
	struct rt_options o;
	rt_options_read(&o, cfgp);
	environ = saved;

	if (o.pool_size < ((size_t)256 << 10))
		FAIL("pool_size %zu below 256 KiB", o.pool_size);
	if (o.pool_max < o.pool_size)
		FAIL("pool_max %zu < pool_size %zu", o.pool_max, o.pool_size);
	if (o.stack_prefault > ((size_t)64 << 20))
		FAIL("stack_prefault %zu above 64 MiB", o.stack_prefault);
	if (o.mlock < RTALLOC_MLOCK_OFF || o.mlock > RTALLOC_MLOCK_REQUIRE)
		FAIL("mlock %d", o.mlock);
	if (o.on_exhaust < RTALLOC_EXHAUST_GROW || o.on_exhaust > RTALLOC_EXHAUST_ABORT)
		FAIL("on_exhaust %d", o.on_exhaust);
	if (o.numa < RTALLOC_NUMA_LOCAL || o.numa > RTALLOC_NUMA_OFF)
		FAIL("numa %d", o.numa);
	if (o.stats != 0 && o.stats != 1)
		FAIL("stats %d", o.stats);
	/* Pool sizes from the environment: 256 KiB to RT_POOL_CEIL, taken exactly. */
	size_t v;
	if (!cfgp && (o.pool_size > POOL_CEIL || o.pool_max > POOL_CEIL))
		FAIL("pool_size %zu, pool_max %zu: above %zu from the environment", o.pool_size, o.pool_max,
		     (size_t)POOL_CEIL);
	if (given[0] && (!cfgp || !cfgp->pool_size) && rt_parse_size(given[0], &v) && v >= ((size_t)256 << 10) &&
	    v <= POOL_CEIL && o.pool_size != v)
		FAIL("RTALLOC_POOL_SIZE=%s gave pool_size %zu", given[0], o.pool_size);
	if (given[1] && (!cfgp || !cfgp->pool_max) && rt_parse_size(given[1], &v) && v >= o.pool_size &&
	    v <= POOL_CEIL && o.pool_max != v)
		FAIL("RTALLOC_POOL_MAX=%s gave pool_max %zu", given[1], o.pool_max);
	return 0;
}
