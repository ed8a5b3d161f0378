/* SPDX-License-Identifier: MIT */
/*
 * test_options.c - RTALLOC_* parsing (lib/options.c): rt_parse_size and
 * rt_options_read with a controlled environment.  Nothing here initialises
 * the allocator.
 */
#include "unit.h"

extern char **environ;

static const char *const all_vars[] = {
	"RTALLOC_POOL_SIZE", "RTALLOC_POOL_MAX", "RTALLOC_STACK_PREFAULT", "RTALLOC_MLOCK",
	"RTALLOC_ON_EXHAUST", "RTALLOC_NUMA", "RTALLOC_STATS", "RTALLOC_FAULTS",
};

static int clean_env(void **state)
{
	UNUSED_STATE(state);
	for (size_t i = 0; i < ARRAY_LEN(all_vars); i++)
		unsetenv(all_vars[i]);
	return 0;
}

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)
#define TiB ((size_t)1 << 40)

/* ---- rt_parse_size --------------------------------------------------------- */

static void expect_size(const char *s, size_t want)
{
	size_t v = 12345;
	if (!rt_parse_size(s, &v))
		fail_msg("rt_parse_size(\"%s\") refused a valid size", s);
	if (v != want)
		fail_msg("rt_parse_size(\"%s\") = %zu, want %zu", s, v, want);
}

static void expect_bad(const char *s)
{
	size_t v = 12345;
	if (rt_parse_size(s, &v))
		fail_msg("rt_parse_size(\"%s\") accepted garbage (gave %zu)", s, v);
	assert_int_equal(v, 12345); /* output untouched */
}

static void parse_plain_numbers(void **state)
{
	UNUSED_STATE(state);
	expect_size("0", 0);
	expect_size("1", 1);
	expect_size("4096", 4096);
	expect_size("0004096", 4096);
	expect_size("18446744073709551615", SIZE_MAX);
	expect_size("1b", 1);
	expect_size("512B", 512);
}

static void parse_suffixes(void **state)
{
	UNUSED_STATE(state);
	expect_size("1K", KiB);
	expect_size("1k", KiB);
	expect_size("64M", 64 * MiB);
	expect_size("64m", 64 * MiB);
	expect_size("1G", GiB);
	expect_size("1g", GiB);
	expect_size("2T", 2 * TiB);
	expect_size("2t", 2 * TiB);
	expect_size("0K", 0);
	expect_size("128K", 128 * KiB);
	/* KiB and KB forms, both binary. */
	expect_size("2KiB", 2 * KiB);
	expect_size("2kib", 2 * KiB);
	expect_size("2KB", 2 * KiB);
	expect_size("2kb", 2 * KiB);
	expect_size("2Ki", 2 * KiB);
	expect_size("3MiB", 3 * MiB);
	expect_size("3MB", 3 * MiB);
	expect_size("4GiB", 4 * GiB);
	expect_size("4GB", 4 * GiB);
	expect_size("5TiB", 5 * TiB);
	expect_size("5TB", 5 * TiB);
}

static void parse_overflow(void **state)
{
	UNUSED_STATE(state);
	expect_bad("18446744073709551616");      /* SIZE_MAX + 1 */
	expect_bad("99999999999999999999999");
	expect_size("16777215T", (size_t)16777215 << 40); /* the largest whole T */
	expect_bad("16777216T");                  /* 2^64 */
	expect_size("17179869183G", (size_t)17179869183 << 30);
	expect_bad("17179869184G");
	expect_bad("17592186044416M");
	expect_bad("18014398509481984K");
	expect_size("18014398509481983K", (size_t)18014398509481983 << 10);
}

static void parse_garbage(void **state)
{
	UNUSED_STATE(state);
	static const char *const bad[] = {
		"", " ", "abc", "K", "M", "-1", "+1", " 12", "12 ", "12x", "1.5G", "1,5G", "0x10",
		"12KK", "12KiBB", "12iB", "12Bi", "12KBi", "1Q", "1P", "1E", "64M ", "64M\n", "1e3",
		"4KiB0", "nan", "M64",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		expect_bad(bad[i]);
}

/* ---- rt_options_read -------------------------------------------------------- */

static void read_opts(struct rt_options *o, const struct rtalloc_config *cfg, char *err, size_t errlen)
{
	struct stderr_capture c;
	capture_stderr_begin(&c);
	memset(o, 0x5a, sizeof(*o));
	rt_options_read(o, cfg);
	capture_stderr_end(&c, err, errlen);
}

static void defaults(void **state)
{
	UNUSED_STATE(state);
	struct rt_options o;
	char err[1024];
	read_opts(&o, NULL, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.pool_size, 64 * MiB);
	assert_int_equal(o.pool_max, GiB); /* 16 x 64M */
	assert_int_equal(o.stack_prefault, 128 * KiB);
	assert_int_equal(o.mlock, RTALLOC_MLOCK_TRY);
	assert_int_equal(o.on_exhaust, RTALLOC_EXHAUST_GROW);
	assert_int_equal(o.numa, RTALLOC_NUMA_LOCAL);
	assert_int_equal(o.stats, 1);

	/* An all-zero config is "nothing set". */
	struct rtalloc_config cfg = {0};
	read_opts(&o, &cfg, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.pool_size, 64 * MiB);
	assert_int_equal(o.pool_max, GiB);
	assert_int_equal(o.mlock, RTALLOC_MLOCK_TRY);
}

static void env_values(void **state)
{
	UNUSED_STATE(state);
	struct rt_options o;
	char err[1024];
	setenv("RTALLOC_POOL_SIZE", "128M", 1);
	setenv("RTALLOC_STACK_PREFAULT", "1M", 1);
	setenv("RTALLOC_MLOCK", "require", 1);
	setenv("RTALLOC_ON_EXHAUST", "fail", 1);
	setenv("RTALLOC_NUMA", "interleave", 1);
	setenv("RTALLOC_STATS", "0", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.pool_size, 128 * MiB);
	assert_int_equal(o.pool_max, 2 * GiB); /* derived: 16 x pool */
	assert_int_equal(o.stack_prefault, MiB);
	assert_int_equal(o.mlock, RTALLOC_MLOCK_REQUIRE);
	assert_int_equal(o.on_exhaust, RTALLOC_EXHAUST_FAIL);
	assert_int_equal(o.numa, RTALLOC_NUMA_INTERLEAVE);
	assert_int_equal(o.stats, 0);

	setenv("RTALLOC_POOL_MAX", "4G", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_int_equal(o.pool_max, 4 * GiB);

	/* A small pool still reserves at least 1 GiB for growth. */
	setenv("RTALLOC_POOL_SIZE", "256K", 1);
	unsetenv("RTALLOC_POOL_MAX");
	read_opts(&o, NULL, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.pool_size, 256 * KiB);
	assert_int_equal(o.pool_max, GiB);

	/* pool_max below pool_size is raised to it. */
	setenv("RTALLOC_POOL_SIZE", "512M", 1);
	setenv("RTALLOC_POOL_MAX", "256M", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_int_equal(o.pool_size, 512 * MiB);
	assert_int_equal(o.pool_max, 512 * MiB);
}

static void env_choice_words(void **state)
{
	UNUSED_STATE(state);
	static const struct {
		const char *var, *val;
		size_t off;
		int want;
	} cases[] = {
		{"RTALLOC_MLOCK", "0", offsetof(struct rt_options, mlock), RTALLOC_MLOCK_OFF},
		{"RTALLOC_MLOCK", "off", offsetof(struct rt_options, mlock), RTALLOC_MLOCK_OFF},
		{"RTALLOC_MLOCK", "no", offsetof(struct rt_options, mlock), RTALLOC_MLOCK_OFF},
		{"RTALLOC_MLOCK", "1", offsetof(struct rt_options, mlock), RTALLOC_MLOCK_TRY},
		{"RTALLOC_MLOCK", "on", offsetof(struct rt_options, mlock), RTALLOC_MLOCK_TRY},
		{"RTALLOC_MLOCK", "try", offsetof(struct rt_options, mlock), RTALLOC_MLOCK_TRY},
		{"RTALLOC_MLOCK", "require", offsetof(struct rt_options, mlock), RTALLOC_MLOCK_REQUIRE},
		{"RTALLOC_ON_EXHAUST", "grow", offsetof(struct rt_options, on_exhaust), RTALLOC_EXHAUST_GROW},
		{"RTALLOC_ON_EXHAUST", "fail", offsetof(struct rt_options, on_exhaust), RTALLOC_EXHAUST_FAIL},
		{"RTALLOC_ON_EXHAUST", "abort", offsetof(struct rt_options, on_exhaust), RTALLOC_EXHAUST_ABORT},
		{"RTALLOC_NUMA", "local", offsetof(struct rt_options, numa), RTALLOC_NUMA_LOCAL},
		{"RTALLOC_NUMA", "interleave", offsetof(struct rt_options, numa), RTALLOC_NUMA_INTERLEAVE},
		{"RTALLOC_NUMA", "off", offsetof(struct rt_options, numa), RTALLOC_NUMA_OFF},
		{"RTALLOC_STATS", "0", offsetof(struct rt_options, stats), 0},
		{"RTALLOC_STATS", "no", offsetof(struct rt_options, stats), 0},
		{"RTALLOC_STATS", "off", offsetof(struct rt_options, stats), 0},
		{"RTALLOC_STATS", "1", offsetof(struct rt_options, stats), 1},
		{"RTALLOC_STATS", "yes", offsetof(struct rt_options, stats), 1},
		{"RTALLOC_STATS", "on", offsetof(struct rt_options, stats), 1},
		{"RTALLOC_FAULTS", "0", offsetof(struct rt_options, faults), 0},
		{"RTALLOC_FAULTS", "off", offsetof(struct rt_options, faults), 0},
		{"RTALLOC_FAULTS", "no", offsetof(struct rt_options, faults), 0},
		{"RTALLOC_FAULTS", "locate", offsetof(struct rt_options, faults), 1},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct rt_options o;
		char err[1024];
		int v;
		clean_env(NULL);
		setenv(cases[i].var, cases[i].val, 1);
		read_opts(&o, NULL, err, sizeof(err));
		if (err[0])
			fail_msg("%s=%s: unexpected message \"%s\"", cases[i].var, cases[i].val, err);
		memcpy(&v, (char *)&o + cases[i].off, sizeof(v));
		if (v != cases[i].want)
			fail_msg("%s=%s gave %d, want %d", cases[i].var, cases[i].val, v, cases[i].want);
	}
}

/* A value that does not parse: exactly one line naming the variable and the
 * value, and the default is kept. */
static void bad_values(void **state)
{
	UNUSED_STATE(state);
	static const struct {
		const char *var, *val;
	} cases[] = {
		{"RTALLOC_POOL_SIZE", "lots"},   {"RTALLOC_POOL_SIZE", "64Q"},
		{"RTALLOC_POOL_SIZE", "100K"},   /* below the 256K minimum */
		{"RTALLOC_POOL_SIZE", ""},       {"RTALLOC_POOL_MAX", "4X"},
		{"RTALLOC_POOL_MAX", "255K"},    {"RTALLOC_STACK_PREFAULT", "-1"},
		{"RTALLOC_MLOCK", "maybe"},      {"RTALLOC_MLOCK", ""},           {"RTALLOC_ON_EXHAUST", "explode"},
		{"RTALLOC_NUMA", "remote"},      {"RTALLOC_STATS", "2"},
		{"RTALLOC_FAULTS", "1"},         {"RTALLOC_FAULTS", "locat"},     {"RTALLOC_FAULTS", ""},
		{"RTALLOC_POOL_SIZE", "99999999999999999999"},
	};
	struct rt_options def;
	char err[1024];
	clean_env(NULL);
	read_opts(&def, NULL, err, sizeof(err));
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct rt_options o;
		clean_env(NULL);
		setenv(cases[i].var, cases[i].val, 1);
		read_opts(&o, NULL, err, sizeof(err));
		char quoted[256];
		snprintf(quoted, sizeof(quoted), "%s=\"%s\"", cases[i].var, cases[i].val);
		if (count_lines(err) != 1 || err[strlen(err) - 1] != '\n')
			fail_msg("%s: want exactly one line, got \"%s\"", quoted, err);
		if (!strstr(err, quoted))
			fail_msg("%s: the message does not name the variable and value: \"%s\"", quoted, err);
		if (strncmp(err, "rtalloc: ", 9) != 0)
			fail_msg("%s: the message lacks the rtalloc: prefix: \"%s\"", quoted, err);
		if (memcmp(&o, &def, sizeof(o)) != 0)
			fail_msg("%s: a bad value changed the options", quoted);
	}
	/* Two bad values: one line each. */
	clean_env(NULL);
	setenv("RTALLOC_MLOCK", "maybe", 1);
	setenv("RTALLOC_NUMA", "remote", 1);
	struct rt_options o;
	read_opts(&o, NULL, err, sizeof(err));
	assert_int_equal(count_lines(err), 2);
}

/* Sizes no process can use (the reservation is at most 4T: RT_POOL_CEIL) are
 * bad values: one line naming the variable, the value and the limit, and the
 * defaults.  A derived RTALLOC_POOL_MAX never exceeds the ceiling either
 * (16 x a 2T pool must not become 32T: setup_os_memory would refuse it,
 * naming RTALLOC_POOL_MAX, which the user never set). */
static void huge_values(void **state)
{
	UNUSED_STATE(state);
	static const struct {
		const char *var, *val;
	} cases[] = {
		{"RTALLOC_POOL_SIZE", "18446744073709551615"}, {"RTALLOC_POOL_MAX", "18446744073709551615"},
		{"RTALLOC_POOL_SIZE", "100T"},                 {"RTALLOC_POOL_MAX", "100T"},
		{"RTALLOC_POOL_SIZE", "4398046511105"},        {"RTALLOC_POOL_MAX", "16777215T"},
		{"RTALLOC_POOL_SIZE", "18446744073709551615B"},
	};
	char err[1024];
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct rt_options o;
		clean_env(NULL);
		setenv(cases[i].var, cases[i].val, 1);
		read_opts(&o, NULL, err, sizeof(err));
		char quoted[256];
		snprintf(quoted, sizeof(quoted), "%s=\"%s\"", cases[i].var, cases[i].val);
		if (count_lines(err) != 1 || !strstr(err, quoted) || !strstr(err, "4T"))
			fail_msg("%s: want one line naming it and the limit 4T, got \"%s\"", quoted, err);
		if (o.pool_size != 64 * MiB || o.pool_max != GiB)
			fail_msg("%s: pool %zu max %zu, want the defaults", quoted, o.pool_size, o.pool_max);
	}
	/* The ceiling itself is accepted; derived maxima stop at it. */
	struct rt_options o;
	clean_env(NULL);
	setenv("RTALLOC_POOL_SIZE", "4T", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.pool_size, 4 * TiB);
	assert_int_equal(o.pool_max, 4 * TiB);
	setenv("RTALLOC_POOL_SIZE", "2T", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_int_equal(o.pool_size, 2 * TiB);
	assert_int_equal(o.pool_max, 4 * TiB);
	setenv("RTALLOC_POOL_SIZE", "300G", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_int_equal(o.pool_max, 4 * TiB);
	setenv("RTALLOC_POOL_SIZE", "64M", 1);
	setenv("RTALLOC_POOL_MAX", "4T", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.pool_max, 4 * TiB);
}

/* Variables whose names only start like ours are not ours. */
static void similar_names_ignored(void **state)
{
	UNUSED_STATE(state);
	struct rt_options o;
	char err[1024];
	setenv("RTALLOC_POOL_SIZEX", "128M", 1);
	setenv("RTALLOC_POOL", "128M", 1);
	setenv("XRTALLOC_MLOCK", "0", 1);
	setenv("RTALLOC_MLOCKED", "0", 1);
	read_opts(&o, NULL, err, sizeof(err));
	unsetenv("RTALLOC_POOL_SIZEX");
	unsetenv("RTALLOC_POOL");
	unsetenv("XRTALLOC_MLOCK");
	unsetenv("RTALLOC_MLOCKED");
	assert_string_equal(err, "");
	assert_int_equal(o.pool_size, 64 * MiB);
	assert_int_equal(o.mlock, RTALLOC_MLOCK_TRY);
}

static void config_wins(void **state)
{
	UNUSED_STATE(state);
	struct rt_options o;
	char err[1024];
	setenv("RTALLOC_POOL_SIZE", "128M", 1);
	setenv("RTALLOC_POOL_MAX", "8G", 1);
	setenv("RTALLOC_STACK_PREFAULT", "1M", 1);
	setenv("RTALLOC_MLOCK", "require", 1);
	setenv("RTALLOC_ON_EXHAUST", "abort", 1);
	setenv("RTALLOC_NUMA", "interleave", 1);
	struct rtalloc_config cfg = {
		.size = sizeof(cfg),
		.pool_size = 32 * MiB,
		.pool_max = 64 * MiB,
		.stack_prefault = 64 * KiB,
		.mlock = RTALLOC_MLOCK_OFF,
		.on_exhaust = RTALLOC_EXHAUST_FAIL,
		.numa = RTALLOC_NUMA_OFF,
	};
	read_opts(&o, &cfg, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.pool_size, 32 * MiB);
	assert_int_equal(o.pool_max, 64 * MiB);
	assert_int_equal(o.stack_prefault, 64 * KiB);
	assert_int_equal(o.mlock, RTALLOC_MLOCK_OFF);
	assert_int_equal(o.on_exhaust, RTALLOC_EXHAUST_FAIL);
	assert_int_equal(o.numa, RTALLOC_NUMA_OFF);

	/* Unset (zero) fields fall back to the environment. */
	struct rtalloc_config part = {.mlock = RTALLOC_MLOCK_TRY};
	read_opts(&o, &part, err, sizeof(err));
	assert_int_equal(o.pool_size, 128 * MiB);
	assert_int_equal(o.pool_max, 8 * GiB);
	assert_int_equal(o.stack_prefault, MiB);
	assert_int_equal(o.mlock, RTALLOC_MLOCK_TRY);
	assert_int_equal(o.on_exhaust, RTALLOC_EXHAUST_ABORT);
	assert_int_equal(o.numa, RTALLOC_NUMA_INTERLEAVE);

	/* Out-of-range enum values are "not set". */
	struct rtalloc_config odd = {.mlock = 99, .on_exhaust = -3, .numa = 4};
	read_opts(&o, &odd, err, sizeof(err));
	assert_int_equal(o.mlock, RTALLOC_MLOCK_REQUIRE);
	assert_int_equal(o.on_exhaust, RTALLOC_EXHAUST_ABORT);
	assert_int_equal(o.numa, RTALLOC_NUMA_INTERLEAVE);
}

static void config_limits(void **state)
{
	UNUSED_STATE(state);
	struct rt_options o;
	char err[1024];
	/* A pool below the minimum is raised to 256K; max is derived from it. */
	struct rtalloc_config small = {.pool_size = 4096};
	read_opts(&o, &small, err, sizeof(err));
	assert_int_equal(o.pool_size, 256 * KiB);
	assert_int_equal(o.pool_max, GiB);
	/* Explicit "no stack pre-fault". */
	struct rtalloc_config nostack = {.stack_prefault = RTALLOC_STACK_PREFAULT_NONE};
	read_opts(&o, &nostack, err, sizeof(err));
	assert_int_equal(o.stack_prefault, 0);
	/* The stack pre-fault is capped at 64M, from the config or the environment. */
	struct rtalloc_config bigstack = {.stack_prefault = GiB};
	read_opts(&o, &bigstack, err, sizeof(err));
	assert_int_equal(o.stack_prefault, 64 * MiB);
	setenv("RTALLOC_STACK_PREFAULT", "1G", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_int_equal(o.stack_prefault, 64 * MiB);
	setenv("RTALLOC_STACK_PREFAULT", "0", 1);
	read_opts(&o, NULL, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(o.stack_prefault, 0);
	/* pool_max below the pool is raised to it; a huge pool is its own max. */
	struct rtalloc_config inv = {.pool_size = 64 * MiB, .pool_max = MiB};
	read_opts(&o, &inv, err, sizeof(err));
	assert_int_equal(o.pool_max, 64 * MiB);
	struct rtalloc_config huge = {.pool_size = SIZE_MAX / 4};
	read_opts(&o, &huge, err, sizeof(err));
	assert_int_equal(o.pool_size, SIZE_MAX / 4);
	assert_int_equal(o.pool_max, SIZE_MAX / 4);
	/* 16 x pool when that exceeds 1 GiB. */
	struct rtalloc_config big = {.pool_size = 256 * MiB};
	read_opts(&o, &big, err, sizeof(err));
	assert_int_equal(o.pool_max, 4 * GiB);
}

/* ---- before libc sets environ: /proc/self/environ ---------------------------
 *
 * The test re-executes itself with a chosen environment; the child sets
 * environ to NULL and reads the options, which must then come from
 * /proc/self/environ. */

#define CHILD_FLAG "--proc-environ-child"

static int proc_environ_child(void)
{
	char **saved = environ;
	struct rt_options o;
	environ = NULL;
	rt_options_read(&o, NULL);
	environ = saved;
	CHILD_CHECK(o.pool_size == 8 * MiB);
	CHILD_CHECK(o.pool_max == GiB);
	CHILD_CHECK(o.mlock == RTALLOC_MLOCK_OFF);
	CHILD_CHECK(o.numa == RTALLOC_NUMA_OFF);
	CHILD_CHECK(o.on_exhaust == RTALLOC_EXHAUST_GROW); /* not in the environment */
	CHILD_CHECK(o.stats == 1);
	return 0;
}

static int exec_self(void *arg)
{
	char **envp = arg;
	char *argv[] = {(char *)"test_options", (char *)CHILD_FLAG, NULL};
	execve("/proc/self/exe", argv, envp);
	return 126;
}

static void proc_environ_fallback(void **state)
{
	UNUSED_STATE(state);
	/* Keep the sanitizer runtimes' settings, if any. */
	char *envp[8];
	size_t n = 0;
	envp[n++] = (char *)"RTALLOC_POOL_SIZE=8M";
	envp[n++] = (char *)"RTALLOC_MLOCK=0";
	envp[n++] = (char *)"RTALLOC_NUMA=off";
	envp[n++] = (char *)"PADDING=some filler in the middle";
	for (const char *const *v = (const char *const[]){"ASAN_OPTIONS", "UBSAN_OPTIONS", NULL}; *v; v++) {
		/* environ entries are "NAME=value" already */
		for (char **e = environ; *e; e++)
			if (strncmp(*e, *v, strlen(*v)) == 0 && (*e)[strlen(*v)] == '=')
				envp[n++] = *e;
	}
	envp[n] = NULL;
	struct child_result r;
	run_child(exec_self, envp, &r);
	assert_child_ok(&r);
}

/* The /proc fallback reads the environment into a fixed 32 KiB buffer.  An
 * environment larger than that must be truncated safely (no read past the
 * buffer: run under ASan to see it) and a variable in the part that fits must
 * still be found. */
static void proc_environ_large(void **state)
{
	UNUSED_STATE(state);
	enum { NFILL = 40, FILL = 1000 };
	static char fill[NFILL][FILL + 16];
	char *envp[NFILL + 8];
	size_t n = 0;
	envp[n++] = (char *)"RTALLOC_POOL_SIZE=8M";
	envp[n++] = (char *)"RTALLOC_MLOCK=0";
	envp[n++] = (char *)"RTALLOC_NUMA=off";
	for (const char *const *v = (const char *const[]){"ASAN_OPTIONS", "UBSAN_OPTIONS", NULL}; *v; v++)
		for (char **e = environ; *e; e++)
			if (strncmp(*e, *v, strlen(*v)) == 0 && (*e)[strlen(*v)] == '=')
				envp[n++] = *e;
	for (int i = 0; i < NFILL; i++) {
		snprintf(fill[i], sizeof(fill[i]), "FILL%02d=", i);
		size_t l = strlen(fill[i]);
		memset(fill[i] + l, 'x', FILL - l);
		fill[i][FILL] = '\0';
		envp[n++] = fill[i];
	}
	envp[n] = NULL;
	struct child_result r;
	run_child(exec_self, envp, &r);
	assert_child_ok(&r);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], CHILD_FLAG) == 0)
		return proc_environ_child();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_plain_numbers),
		cmocka_unit_test(parse_suffixes),
		cmocka_unit_test(parse_overflow),
		cmocka_unit_test(parse_garbage),
		cmocka_unit_test_setup_teardown(defaults, clean_env, clean_env),
		cmocka_unit_test_setup_teardown(env_values, clean_env, clean_env),
		cmocka_unit_test_setup_teardown(env_choice_words, clean_env, clean_env),
		cmocka_unit_test_setup_teardown(bad_values, clean_env, clean_env),
		cmocka_unit_test_setup_teardown(huge_values, clean_env, clean_env),
		cmocka_unit_test_setup_teardown(similar_names_ignored, clean_env, clean_env),
		cmocka_unit_test_setup_teardown(config_wins, clean_env, clean_env),
		cmocka_unit_test_setup_teardown(config_limits, clean_env, clean_env),
		cmocka_unit_test(proc_environ_fallback),
		cmocka_unit_test(proc_environ_large),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
