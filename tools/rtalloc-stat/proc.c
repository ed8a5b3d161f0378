/* SPDX-License-Identifier: MIT */
/*
 * proc.c - rtalloc-stat's readers of /proc (files read, and status fields
 * parsed, by lib/procfs.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "rs.h"

/* ==== /proc ============================================================================== */

/* /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat.  0, or -1 with errno. */
int read_pstat(const char *path, struct pstat *ps)
{
	char buf[1024];
	if (rt_proc_read(path, buf, sizeof(buf)) < 0)
		return -1;
	char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ') {
		errno = EINVAL;
		return -1;
	}
	size_t n = (size_t)(close_paren - open_paren - 1);
	if (n >= sizeof(ps->comm))
		n = sizeof(ps->comm) - 1;
	memcpy(ps->comm, open_paren + 1, n);
	ps->comm[n] = '\0';
	char *p = close_paren + 2;
	ps->state = *p;
	/* fields after the state: ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime */
	uint64_t f[20] = {0};
	p++;
	for (int i = 1; i < 20; i++) {
		char *end;
		while (*p == ' ')
			p++;
		long long v = strtoll(p, &end, 10);
		if (end == p) {
			errno = EINVAL;
			return -1;
		}
		f[i] = (uint64_t)v;
		p = end;
	}
	ps->minflt = f[7];
	ps->majflt = f[9];
	ps->starttime = f[19];
	return 0;
}

/* "Key:" line of /proc/<pid>/status: the first number after it, or -1
 * (the parser: lib/procfs.h). */
long long status_field(pid_t pid, const char *key)
{
	char path[64];
	static char buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return rt_proc_file_field(path, key, buf, sizeof(buf));
}

void thread_name(pid_t pid, pid_t tid, char *name, size_t len, const char *fallback)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	if (rt_proc_read(path, name, len) <= 0) {
		snprintf(name, len, "%s", fallback);
		return;
	}
	name[strcspn(name, "\n")] = '\0';
}

/* The value of XDG_RUNTIME_DIR in the process's initial environment (what librtalloc
 * read at its initialisation), copied to out; false if unknown. */
bool proc_xdg_dir(pid_t pid, char *out, size_t len)
{
	char path[64];
	static char buf[65536];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	long n = rt_proc_read(path, buf, sizeof(buf));
	if (n <= 0)
		return false;
	for (char *e = buf; e < buf + n; e += strlen(e) + 1) {
		if (strncmp(e, "XDG_RUNTIME_DIR=", 16) == 0) {
			snprintf(out, len, "%s", e + 16);
			return true;
		}
	}
	return false;
}

/* Does the process map the file (dev, ino), or the file now at path (on overlay
 * filesystems the maps may show the underlying device)?  Also tells whether
 * librtalloc is loaded. */
enum maps_result proc_maps(pid_t pid, dev_t dev, ino_t ino, const char *path_now, bool *has_lib)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (has_lib)
		*has_lib = false;
	FILE *f = fopen(path, "re");
	if (!f)
		return MAPS_UNREADABLE;
	enum maps_result r = MAPS_NOT_MAPPED;
	char line[4096 + 256];
	bool read_any = false;
	while (fgets(line, sizeof(line), f)) {
		read_any = true;
		unsigned maj, min;
		unsigned long long inode;
		int name_at = 0;
		if (sscanf(line, "%*x-%*x %*4s %*x %x:%x %llu %n", &maj, &min, &inode, &name_at) < 3)
			continue;
		if (inode && inode == (unsigned long long)ino && makedev(maj, min) == dev)
			r = MAPS_MAPPED;
		const char *name = line + name_at;
		size_t nlen = strcspn(name, "\n");
		if (path_now && name_at > 0 && nlen == strlen(path_now) && strncmp(name, path_now, nlen) == 0)
			r = MAPS_MAPPED; /* " (deleted)" would follow the name of a removed file */
		if (has_lib && name_at > 0) {
			const char *base = strrchr(name, '/');
			base = base ? base + 1 : name;
			if (strncmp(base, "librtalloc.so", 13) == 0)
				*has_lib = true;
		}
		if (!strchr(line, '\n')) { /* a longer line: skip the rest */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
		}
	}
	fclose(f);
	/* A process we may not inspect gives an empty file rather than an error. */
	return read_any ? r : MAPS_UNREADABLE;
}

