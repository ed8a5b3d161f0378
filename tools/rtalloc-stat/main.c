/* SPDX-License-Identifier: MIT */
/*
 * main.c - rtalloc-stat, librtalloc's statistics seen from outside the process.
 *
 *   rtalloc-stat [--json] PID                   one report
 *   rtalloc-stat [--json] -w SECONDS [-c N] PID a row of changes per interval
 *   rtalloc-stat [--json] -- CMD [ARGS...]      run CMD under librtalloc, report at its exit
 *   rtalloc-stat [--json] -l                    this user's processes running librtalloc
 *   rtalloc-stat --profile PID                  its recorded profile (lib/profile.h)
 *
 * Sources: the process's statistics region (lib/stats.h: a file
 * rtalloc-<uid>-<pid>.stats in its $XDG_RUNTIME_DIR, else /dev/shm, mapped
 * here read-only) and /proc (faults per thread, thread names, VmLck).
 *
 * Nothing in the region is trusted before it passes the checks of
 * region_attach() (region.c): a regular file owned by the uid in its name, opened without
 * following links, of the right size, magic, version and pid, and mapped by
 * the process it names (or, when its maps cannot be read, initialised after
 * the process started).  The mapping is read under a SIGBUS guard (a file
 * truncated under us is an error, not a crash) and every seqlock read is
 * bounded (rt_seq_read): a writer that never finishes cannot make us hang.
 *
 * Exit codes: 0 ok; 1 no such process, not using librtalloc, another user's,
 * or no usable region; 2 usage.  With -- CMD: the command's status (128+N
 * when killed by signal N; 127/126 when it cannot be run).
 *
 * The files of this directory and what each does: rs.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "rs.h"

#ifndef RTALLOC_STAT_VERSION
#define RTALLOC_STAT_VERSION "unknown"
#endif

/* ==== main ================================================================================ */

static void help(void)
{
	printf("Usage: " PROG " [--json] PID\n"
	       "       " PROG " [--json] -w SECONDS [-c COUNT] PID\n"
	       "       " PROG " [--json] -- COMMAND [ARGS...]\n"
	       "       " PROG " [--json] -l\n"
	       "       " PROG " --profile PID\n"
	       "Show the statistics of a process running librtalloc: page faults (process, per thread,\n"
	       "since initialisation, inside real-time sections), pool use and high-water mark, size\n"
	       "classes, pool growths, failed allocations and whether memory is locked.\n"
	       "\n"
	       "  PID                 one report of the process\n"
	       "  -w, --watch=SECONDS a row of changes every SECONDS (decimals allowed) until\n"
	       "                      interrupted or the process exits\n"
	       "  -c, --count=COUNT   with -w: stop after COUNT rows\n"
	       "  -- COMMAND [ARGS]   run COMMAND with librtalloc preloaded (RTALLOC_LIB names the\n"
	       "                      library) and report when it exits; exits with its status\n"
	       "  -l, --list          this user's processes exporting librtalloc statistics, and\n"
	       "                      the stale files of processes that no longer exist (never removed)\n"
	       "      --clean         with -l: remove those stale files that are this user's own\n"
	       "  -j, --json          JSON: one object (one per line with -w)\n"
	       "      --profile       the process's recorded profile (what RTALLOC_PROFILE_SAVE\n"
	       "                      writes at exit) on standard output\n"
	       "  -h, --help          this help\n"
	       "  -V, --version       the version\n"
	       "\n"
	       "Exit status: 0 ok; 1 no such process, not running librtalloc, another user's or no\n"
	       "usable statistics; 2 usage error; with -- COMMAND, the command's status (128+N if\n"
	       "killed by signal N).  See rtalloc-stat(1).\n");
}

static double parse_interval(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.01 && v <= 86400.0))
		usage_error("-w wants a number of seconds between 0.01 and 86400, not '%s'", s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"watch", required_argument, NULL, 'w'}, {"count", required_argument, NULL, 'c'},
		{"list", no_argument, NULL, 'l'},        {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},        {"version", no_argument, NULL, 'V'},
		{"clean", no_argument, NULL, 'C'},       {"profile", no_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	bool json = false, list = false, watch = false, clean = false, profile = false;
	double interval = 0;
	long count = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+w:c:ljhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			watch = true;
			interval = parse_interval(optarg);
			break;
		case 'c': {
			char *end;
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || count < 1)
				usage_error("-c wants a positive number of rows, not '%s'", optarg);
			break;
		}
		case 'l': list = true; break;
		case 'C': clean = true; break;
		case 'P': profile = true; break;
		case 'j': json = true; break;
		case 'h': help(); return EXIT_OK;
		case 'V': printf(PROG " (librtalloc) %s\n", RTALLOC_STAT_VERSION); return EXIT_OK;
		case ':': usage_error("option %s needs an argument", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option -%c", optopt);
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	install_sigbus();
	bool dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	int rest = argc - optind;
	if (count && !watch)
		usage_error("-c goes with -w");
	if (clean && !list)
		usage_error("--clean goes with -l");
	if (profile && (dashdash || list || watch || json))
		usage_error("--profile takes one PID and no other option");
	if (dashdash) {
		if (list || watch)
			usage_error("-- COMMAND cannot be combined with -l or -w");
		if (rest < 1)
			usage_error("-- wants a command to run");
		return cmd_run(argv + optind, json);
	}
	if (list) {
		if (watch || rest)
			usage_error("-l takes no PID and no -w");
		return cmd_list(json, clean);
	}
	if (rest != 1)
		usage_error(rest ? "one PID, please (to run a command: " PROG " -- COMMAND)" : "which PID?");
	pid_t pid;
	if (!parse_pid(argv[optind], &pid))
		usage_error("'%s' is not a process ID (to run a command: " PROG " -- COMMAND)", argv[optind]);
	if (profile)
		return cmd_profile(pid);
	return watch ? cmd_watch(pid, interval, count, json) : cmd_snapshot(pid, json);
}

