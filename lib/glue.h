/* SPDX-License-Identifier: MIT */
/*
 * glue.h - every tie of librtalloc to glibc's internals, in one place (the
 * system calls are os.h's, the mutexes lock.c's).  glue.c is the only object
 * besides os.c and lock.c that references libc beyond its string functions
 * (tests/system/check_core.sh).  Everything here is safe while the
 * allocator initialises: no malloc, no stdio, no getenv, no dlsym.
 */
#ifndef RT_GLUE_H
#define RT_GLUE_H

#include <stdbool.h>

#include "rt.h"

/* glibc's own mallopt (we interpose mallopt): the pool's start-up turns off
 * the trimming and mmap thresholds of the malloc librtalloc replaces, for
 * what it may still serve (memory it handed out before us). */
RT_HIDDEN void rt_libc_mallopt(int param, int value);

/* The environment: libc's environ (NULL before libc has set it up), and
 * whether the process is setuid/setgid or otherwise "secure" (AT_SECURE,
 * from what ld.so saved: safe this early). */
RT_HIDDEN char **rt_libc_environ(void);
RT_HIDDEN bool rt_libc_secure(void);

/* Add "NAME=value" (a static string) to the environment the process hands to
 * the programs it starts.  Once per process; no allocation. */
RT_HIDDEN void rt_env_add(char *entry);

/* ---- fork (fork.c's pthread_atfork handlers) ------------------------------
 * glibc's fork() runs the pthread_atfork prepare handlers first and, when the
 * process has more than one thread (__libc_single_threaded false, read by
 * fork itself), then takes libc's lock on its list of FILEs (_IO_list_lock)
 * and only after it its own malloc's locks: a thread that holds the list
 * lock (fflush(NULL)) waits for FILE locks, whose holders (getline) call
 * realloc, so the list lock must come before any allocator lock.  Our arena
 * locks are taken in a prepare handler, before fork's list lock; to keep
 * glibc's order, the prepare handler takes the list lock itself, first,
 * under the same condition as fork.  The lock is recursive (an owner and a
 * count): fork's own _IO_list_lock() nests in ours.  In the parent, fork
 * drops its count before the parent handlers run, and ours drops the last;
 * in the child, fork resets the lock (_IO_list_resetlock) before the child
 * handlers run, so the child handler leaves it alone.  In a single-threaded
 * process fork takes and resets nothing, and neither do we.  The lock
 * functions are exported by glibc (GLIBC_2.2.5) but declared in no public
 * header since 2.28. */
RT_HIDDEN bool rt_libc_fork_locks_stdio(void);
RT_HIDDEN void rt_libc_stdio_lock(void);
RT_HIDDEN void rt_libc_stdio_unlock(void);

#endif /* RT_GLUE_H */
