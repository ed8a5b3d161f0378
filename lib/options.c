/* SPDX-License-Identifier: MIT */
/*
 * options.c - RTALLOC_* environment variables, table-driven.
 *
 * Read once, at initialisation, straight from `environ` (or, before libc has
 * set it up, from /proc/self/environ into a static buffer): no getenv, no
 * malloc.  A value that does not parse is reported once on stderr, naming the
 * variable and the value, and the default is used.  Fields set explicitly in
 * struct rtalloc_config win over the environment.
 *
 * A secure process (setuid, setgid, file capabilities: AT_SECURE) sees no
 * variable at all, as glibc ignores MALLOC_* there: the person who runs it
 * must not choose its pool, its statistics directory or its report file.
 */
#include <string.h>

#include "glue.h"
#include "os.h"


enum kind { K_SIZE, K_CHOICE };

struct choice {
	const char *word;
	int value;
};

static const struct choice mlock_words[] = {
	{"0", RTALLOC_MLOCK_OFF},     {"off", RTALLOC_MLOCK_OFF},      {"no", RTALLOC_MLOCK_OFF},
	{"1", RTALLOC_MLOCK_TRY},     {"on", RTALLOC_MLOCK_TRY},       {"try", RTALLOC_MLOCK_TRY},
	{"all", RTALLOC_MLOCK_TRY},   {"require", RTALLOC_MLOCK_REQUIRE},
	{"onfault", RTALLOC_MLOCK_ONFAULT}, {"pool", RTALLOC_MLOCK_POOL}, {NULL, 0},
};
static const struct choice exhaust_words[] = {
	{"grow", RTALLOC_EXHAUST_GROW}, {"fail", RTALLOC_EXHAUST_FAIL},
	{"abort", RTALLOC_EXHAUST_ABORT}, {NULL, 0},
};
static const struct choice numa_words[] = {
	{"local", RTALLOC_NUMA_LOCAL}, {"interleave", RTALLOC_NUMA_INTERLEAVE},
	{"off", RTALLOC_NUMA_OFF}, {NULL, 0},
};
static const struct choice bool_words[] = {
	{"0", 0}, {"off", 0}, {"no", 0}, {"1", 1}, {"on", 1}, {"yes", 1}, {NULL, 0},
};

static const struct choice faults_words[] = {
	{"0", 0}, {"off", 0}, {"no", 0}, {"locate", 1}, {NULL, 0},
};

#define MIN_POOL ((size_t)256 << 10)

static const struct option {
	const char *name;
	enum kind kind;
	size_t offset; /* in struct rt_options */
	const struct choice *words;
	size_t min;    /* K_SIZE: smallest accepted value */
	size_t max;    /* K_SIZE: largest accepted value */
	const char *expect; /* for the error message */
} table[] = {
	{"RTALLOC_POOL_SIZE", K_SIZE, offsetof(struct rt_options, pool_size), NULL, MIN_POOL,
	 RT_POOL_CEIL, "a size from 256K to 4T, like 64M or 1G"},
	{"RTALLOC_POOL_MAX", K_SIZE, offsetof(struct rt_options, pool_max), NULL, MIN_POOL,
	 RT_POOL_CEIL, "a size from 256K to 4T, like 4G"},
	{"RTALLOC_STACK_PREFAULT", K_SIZE, offsetof(struct rt_options, stack_prefault), NULL, 0,
	 SIZE_MAX, "a size, like 0, 128K or 1M"},
	{"RTALLOC_MLOCK", K_CHOICE, offsetof(struct rt_options, mlock), mlock_words, 0, 0,
	 "0 (or off, no), 1 (or on, try, all), require, onfault or pool"},
	{"RTALLOC_ON_EXHAUST", K_CHOICE, offsetof(struct rt_options, on_exhaust), exhaust_words, 0, 0,
	 "grow, fail or abort"},
	{"RTALLOC_NUMA", K_CHOICE, offsetof(struct rt_options, numa), numa_words, 0, 0,
	 "local, interleave or off"},
	{"RTALLOC_STATS", K_CHOICE, offsetof(struct rt_options, stats), bool_words, 0, 0, "0 (or off, no) or 1 (or on, yes)"},
	{"RTALLOC_HUGEPAGES", K_CHOICE, offsetof(struct rt_options, hugepages), bool_words, 0, 0,
	 "0 (or off, no) or 1 (or on, yes)"},
	{"RTALLOC_FAULTS", K_CHOICE, offsetof(struct rt_options, faults), faults_words, 0, 0,
	 "0 (or off, no) or locate"},
};

#define DEFAULT_POOL ((size_t)64 << 20)
#define DEFAULT_STACK ((size_t)128 << 10)
#define MAX_STACK_PREFAULT ((size_t)64 << 20)

/* "64M", "1g", "4096", "2MiB": digits and an optional K/M/G/T (binary) suffix. */
bool rt_parse_size(const char *s, size_t *out)
{
	size_t v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) /* bound: the string */
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (size_t)(*p - '0'), &v))
			return false;
	unsigned shift = 0;
	switch (*p | 0x20) {
	case 'k': shift = 10; p++; break;
	case 'm': shift = 20; p++; break;
	case 'g': shift = 30; p++; break;
	case 't': shift = 40; p++; break;
	default: break;
	}
	if (shift && (*p == 'i' || *p == 'I'))
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return false;
	if (shift && v > (SIZE_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

static bool parse_choice(const struct choice *w, const char *s, int *out)
{
	for (; w->word; w++) /* bound: the table */
		if (strcmp(w->word, s) == 0) {
			*out = w->value;
			return true;
		}
	return false;
}

/* Before libc sets environ, read the initial environment from /proc. */
static char proc_env[32768];

const char *rt_options_env(const char *name)
{
	/* Secure (setuid, setgid, capabilities): nothing. */
	if (rt_libc_secure())
		return NULL;
	size_t len = strlen(name);
	char **environ = rt_libc_environ();
	if (environ) {
		for (char **e = environ; *e; e++) /* bound: the environment */
			if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
				return *e + len + 1;
		return NULL;
	}
	if (!proc_env[0]) {
		long n = rt_os_read_file("/proc/self/environ", proc_env, sizeof(proc_env));
		if (n <= 0)
			return NULL;
	}
	for (const char *e = proc_env; e < proc_env + sizeof(proc_env) && *e; e += strlen(e) + 1)
		if (strncmp(e, name, len) == 0 && e[len] == '=')
			return e + len + 1;
	return NULL;
}

void rt_options_read(struct rt_options *o, const struct rtalloc_config *cfg)
{
	*o = (struct rt_options){
		.pool_size = DEFAULT_POOL,
		.pool_max = 0, /* derived below */
		.stack_prefault = DEFAULT_STACK,
		.mlock = RTALLOC_MLOCK_TRY,
		.on_exhaust = RTALLOC_EXHAUST_GROW,
		.numa = RTALLOC_NUMA_LOCAL,
		.stats = 1,
		.hugepages = 1,
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct option *t = &table[i];
		const char *s = rt_options_env(t->name);
		if (!s)
			continue;
		char *field = (char *)o + t->offset;
		if (t->kind == K_SIZE) {
			size_t v;
			if (rt_parse_size(s, &v) && v >= t->min && v <= t->max)
				memcpy(field, &v, sizeof(v));
			else
				rt_say("%s=\"%s\" is not %s; using the default", t->name, s, t->expect);
		} else {
			int v;
			if (parse_choice(t->words, s, &v))
				memcpy(field, &v, sizeof(v));
			else
				rt_say("%s=\"%s\" is not %s; using the default", t->name, s, t->expect);
		}
	}
	if (cfg) {
		if (cfg->pool_size)
			o->pool_size = cfg->pool_size < MIN_POOL ? MIN_POOL : cfg->pool_size;
		if (cfg->pool_max)
			o->pool_max = cfg->pool_max;
		if (cfg->stack_prefault)
			o->stack_prefault = cfg->stack_prefault == RTALLOC_STACK_PREFAULT_NONE
						    ? 0 : cfg->stack_prefault;
		if (cfg->mlock >= RTALLOC_MLOCK_OFF && cfg->mlock <= RT_MLOCK_LAST)
			o->mlock = cfg->mlock;
		if (cfg->on_exhaust >= RTALLOC_EXHAUST_GROW && cfg->on_exhaust <= RTALLOC_EXHAUST_ABORT)
			o->on_exhaust = cfg->on_exhaust;
		if (cfg->numa >= RTALLOC_NUMA_LOCAL && cfg->numa <= RTALLOC_NUMA_OFF)
			o->numa = cfg->numa;
	}
	if (o->stack_prefault > MAX_STACK_PREFAULT)
		o->stack_prefault = MAX_STACK_PREFAULT;
	if (!o->pool_max)
		o->pool_max = rt_options_default_max(o->pool_size);
	if (o->pool_max < o->pool_size)
		o->pool_max = o->pool_size;
}

/* Growth room: 16 times the pool, at least 1 GiB of address space, at most
 * RT_POOL_CEIL (but never below the pool). */
size_t rt_options_default_max(size_t pool)
{
	size_t max = pool > RT_POOL_CEIL / 16 ? RT_POOL_CEIL : pool * 16;
	if (max < ((size_t)1 << 30))
		max = (size_t)1 << 30;
	return max < pool ? pool : max;
}
