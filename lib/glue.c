/* SPDX-License-Identifier: MIT */
/*
 * glue.c - the ties to glibc's internals declared in glue.h.  Nothing here
 * allocates or uses stdio.
 */
#include <sys/auxv.h>
#include <sys/single_threaded.h>

#include "glue.h"

extern int __libc_mallopt(int, int);
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern char **environ;

void rt_libc_mallopt(int param, int value) { __libc_mallopt(param, value); }
char **rt_libc_environ(void) { return environ; }
bool rt_libc_secure(void) { return getauxval(AT_SECURE) != 0; }
bool rt_libc_fork_locks_stdio(void) { return !__libc_single_threaded; }
void rt_libc_stdio_lock(void) { _IO_list_lock(); }
void rt_libc_stdio_unlock(void) { _IO_list_unlock(); }

/* environ with one more entry, for the children this process starts: a
 * static copy (no allocation; setenv and putenv later make their own copy,
 * unsetenv edits it in place).  An environment of more than 510 entries,
 * or none yet (the very first allocation of a process, before libc set
 * environ), is left as it is. */
static char *env_copy[512];

void rt_env_add(char *entry)
{
	if (!environ || environ == env_copy)
		return;
	size_t n = 0;
	while (n < 510 && environ[n]) /* bound: 510 entries */
		n++;
	if (environ[n])
		return;
	for (size_t i = 0; i < n; i++) /* bound: n */
		env_copy[i] = environ[i];
	env_copy[n] = entry;
	env_copy[n + 1] = NULL;
	environ = env_copy;
}
