/* SPDX-License-Identifier: MIT */
/*
 * rtbench.c - command line of the allocator benchmark.
 *
 * rtbench measures whatever malloc it finds: run it under LD_PRELOAD of the
 * contender (it never links librtalloc).  bench/run drives it for every
 * contender and turns its "R" lines into tables; see bench/README.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <dlfcn.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *to)
{
	fputs("usage: rtbench [options] WORKLOAD\n"
	      "\n"
	      "Measures the malloc in use; select the contender with LD_PRELOAD.\n"
	      "Results are printed as lines R<TAB>scope<TAB>metric<TAB>value.\n"
	      "\n"
	      "workloads:\n"
	      "  latency      every call of a steady phase timed (scenarios 1t, 2t, 2tx)\n"
	      "  throughput   operations per second (tests st, xthread, larson, churn)\n"
	      "  memory       peak requested bytes vs peak RSS (VmHWM)\n"
	      "  instr        instruction counts; run under valgrind --tool=callgrind\n"
	      "  instr-worst  the fragmenting pattern's worst calls (librtalloc, a pool that fails\n"
	      "               when full), under callgrind --instr-atstart=no\n"
	      "  classic NAME classic allocator workloads: larson, xmalloc, cache-scratch,\n"
	      "               cache-thrash, mstress, large, trace (comma list, or all)\n"
	      "  startup      spawn rtbench with --preload/--env and time exec->main\n"
	      "  populate     time mmap(MAP_POPULATE) of --size bytes\n"
	      "\n"
	      "options:\n"
	      "  --quick               smaller counts (about 4x less work)\n"
	      "  --seed N              PRNG seed (default 1)\n"
	      "  --scenarios LIST      latency scenarios, default 1t,2t,2tx\n"
	      "  --warmup N            latency warm-up steps per thread\n"
	      "  --steps N             latency measured steps per thread\n"
	      "  --slots N             latency live-set slots per thread (default 2048)\n"
	      "  --phase-seconds S     time bound of each warm-up/measured phase (10)\n"
	      "  --no-realloc          latency/memory: never call realloc (diagnostic)\n"
	      "  --tests LIST          throughput tests, default st,xthread,larson,churn\n"
	      "  --tput-seconds S      time per st size class; other tests take 4x\n"
	      "  --mem-steps N, --mem-slots N   memory workload size\n"
	      "  --label NAME          name of a startup/populate measurement\n"
	      "  --preload LIBS        LD_PRELOAD of the startup child\n"
	      "  --env NAME=VALUE      extra variable of the startup child (repeatable)\n"
	      "  --size BYTES          populate size (K/M/G suffixes)\n"
	      "  --classic-seconds S   time bound of each classic workload (quick 2, else 8)\n"
	      "  --trace FILE          allocation trace the classic trace workload replays\n"
	      "                        (bench/traces/*.trace.gz; .gz is read through gzip -dc)\n",
	      to);
}

bool rtb_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

static int (*thread_prepare_fn)(void);
static pthread_once_t thread_prepare_once = PTHREAD_ONCE_INIT;

static void find_thread_prepare(void)
{
	void *sym = dlsym(RTLD_DEFAULT, "rtalloc_thread_prepare");
	memcpy(&thread_prepare_fn, &sym, sizeof thread_prepare_fn);
}

void rtb_thread_prepare(void)
{
	pthread_once(&thread_prepare_once, find_thread_prepare);
	rtb_prefault_stack(64 * 1024);
	if (thread_prepare_fn)
		thread_prepare_fn();
}

enum {
	OPT_QUICK = 1000, OPT_SEED, OPT_SCENARIOS, OPT_WARMUP, OPT_STEPS,
	OPT_SLOTS, OPT_PHASE, OPT_TESTS, OPT_TPUT, OPT_MEMSTEPS, OPT_MEMSLOTS,
	OPT_LABEL, OPT_PRELOAD, OPT_ENV, OPT_SIZE, OPT_HELP, OPT_NOREALLOC,
	OPT_CLASSIC_SECONDS, OPT_TRACE,
};

static const struct option long_opts[] = {
	{"quick", no_argument, NULL, OPT_QUICK},
	{"seed", required_argument, NULL, OPT_SEED},
	{"scenarios", required_argument, NULL, OPT_SCENARIOS},
	{"warmup", required_argument, NULL, OPT_WARMUP},
	{"steps", required_argument, NULL, OPT_STEPS},
	{"slots", required_argument, NULL, OPT_SLOTS},
	{"phase-seconds", required_argument, NULL, OPT_PHASE},
	{"tests", required_argument, NULL, OPT_TESTS},
	{"tput-seconds", required_argument, NULL, OPT_TPUT},
	{"mem-steps", required_argument, NULL, OPT_MEMSTEPS},
	{"mem-slots", required_argument, NULL, OPT_MEMSLOTS},
	{"label", required_argument, NULL, OPT_LABEL},
	{"preload", required_argument, NULL, OPT_PRELOAD},
	{"env", required_argument, NULL, OPT_ENV},
	{"size", required_argument, NULL, OPT_SIZE},
	{"help", no_argument, NULL, OPT_HELP},
	{"no-realloc", no_argument, NULL, OPT_NOREALLOC},
	{"classic-seconds", required_argument, NULL, OPT_CLASSIC_SECONDS},
	{"trace", required_argument, NULL, OPT_TRACE},
	{NULL, 0, NULL, 0},
};

/* Options left at 0 get defaults that depend on --quick. */
static void apply_defaults(struct rtb_opts *o)
{
	bool q = o->quick;
	if (!o->seed)
		o->seed = 1;
	if (!o->scenarios)
		o->scenarios = "1t,2t,2tx";
	if (!o->warmup)
		o->warmup = q ? 20000 : 50000;
	if (!o->steps)
		o->steps = q ? 50000 : 200000;
	if (!o->slots)
		o->slots = 2048;
	if (o->phase_seconds <= 0)
		o->phase_seconds = 10;
	if (!o->tests)
		o->tests = "st,xthread,larson,churn";
	if (o->tput_seconds <= 0)
		o->tput_seconds = q ? 0.02 : 0.05;
	if (!o->mem_steps)
		o->mem_steps = q ? 100000 : 300000;
	if (!o->mem_slots)
		o->mem_slots = 4096;
	if (!o->label)
		o->label = "default";
	if (o->classic_seconds <= 0)
		o->classic_seconds = q ? 2 : 8;
}

int main(int argc, char **argv)
{
	struct rtb_opts o = {0};
	/* First thing: the resident set the contender built before main(). */
	o.rss_at_main_kib = rtb_proc_status_kib("VmRSS");
	rtb_out_init();

	/* The start-up child must do as little as possible before timing. */
	if (argc == 4 && strcmp(argv[1], "startup-child") == 0)
		return rtb_startup_child(argv[2], argv[3]);

	int c;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_QUICK: o.quick = true; break;
		case OPT_SEED: o.seed = strtoull(optarg, NULL, 0); break;
		case OPT_SCENARIOS: o.scenarios = optarg; break;
		case OPT_WARMUP: o.warmup = strtoull(optarg, NULL, 0); break;
		case OPT_STEPS: o.steps = strtoull(optarg, NULL, 0); break;
		case OPT_SLOTS: o.slots = strtoull(optarg, NULL, 0); break;
		case OPT_PHASE: o.phase_seconds = strtod(optarg, NULL); break;
		case OPT_NOREALLOC: o.no_realloc = true; break;
		case OPT_TESTS: o.tests = optarg; break;
		case OPT_TPUT: o.tput_seconds = strtod(optarg, NULL); break;
		case OPT_MEMSTEPS: o.mem_steps = strtoull(optarg, NULL, 0); break;
		case OPT_MEMSLOTS: o.mem_slots = strtoull(optarg, NULL, 0); break;
		case OPT_LABEL: o.label = optarg; break;
		case OPT_CLASSIC_SECONDS: o.classic_seconds = strtod(optarg, NULL); break;
		case OPT_TRACE: o.trace = optarg; break;
		case OPT_PRELOAD: o.preload = optarg; break;
		case OPT_ENV:
			if (o.nenv == RTB_MAX_ENV || !strchr(optarg, '=')) {
				fprintf(stderr, "rtbench: bad or too many --env\n");
				return 2;
			}
			o.env[o.nenv++] = optarg;
			break;
		case OPT_SIZE:
			o.size = rtb_parse_size(optarg);
			if (!o.size) {
				fprintf(stderr, "rtbench: bad --size %s\n", optarg);
				return 2;
			}
			break;
		case 'h':
		case OPT_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	/* "classic" takes one more word: the workload(s). */
	bool classic = optind == argc - 2 && strcmp(argv[optind], "classic") == 0;
	if (optind != argc - 1 && !classic) {
		usage(stderr);
		return 2;
	}
	apply_defaults(&o);
	if (o.slots > UINT32_MAX || o.mem_slots > UINT32_MAX || !o.slots || !o.mem_slots) {
		fprintf(stderr, "rtbench: bad slot count\n");
		return 2;
	}

	const char *w = argv[optind];
	if (classic)
		return rtb_classic(&o, argv[optind + 1]);
	if (strcmp(w, "latency") == 0) {
		rtb_clock_calibrate(o.quick ? 50 : 100);
		rtb_emit("env", "ns_per_tick", rtb_ns_per_tick());
		rtb_emit("env", "rtalloc_prepare",
			 dlsym(RTLD_DEFAULT, "rtalloc_thread_prepare") != NULL);
		rtb_emit("env", "no_realloc", o.no_realloc);
		return rtb_latency(&o);
	}
	if (strcmp(w, "throughput") == 0)
		return rtb_throughput(&o);
	if (strcmp(w, "memory") == 0)
		return rtb_memory(&o);
	if (strcmp(w, "instr") == 0)
		return rtb_instr(&o);
	if (strcmp(w, "instr-worst") == 0)
		return rtb_instr_worst(&o);
	if (strcmp(w, "startup") == 0)
		return rtb_startup(&o);
	if (strcmp(w, "populate") == 0) {
		if (!o.size) {
			fprintf(stderr, "rtbench: populate needs --size\n");
			return 2;
		}
		return rtb_populate(&o);
	}
	fprintf(stderr, "rtbench: unknown workload '%s'\n", w);
	usage(stderr);
	return 2;
}
