/* SPDX-License-Identifier: MIT */
/*
 * st_fork_stdio.c - run with LD_PRELOAD=librtalloc.so RTALLOC_POOL_SIZE=16M.
 *
 * fork() while other threads use stdio: three threads read a file with
 * getline (whose buffer grows with realloc while the FILE's lock is held) and
 * call fflush(NULL) (which holds libc's list of FILEs while it takes each
 * FILE's lock); two threads fork NFORKS times in all, and every child calls
 * _exit at once.  glibc's own malloc runs this to the end.
 *
 * What can go wrong: the allocator's pthread_atfork prepare handler takes
 * its arena locks before fork takes libc's list lock.  Then a thread in
 * fflush(NULL) holds the list lock and waits for the lock of a FILE that a
 * getline thread holds, which waits in realloc for an arena lock that the
 * forking thread holds, which waits for the list lock: nobody moves.  A
 * watchdog (alarm) turns the deadlock into a failure.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "st_util.h"

#define NREADERS 3
#define NFORKERS 2
#define NFORKS 3000 /* over all forking threads */
#define WATCHDOG 100 /* seconds: the whole run; about 10 without the bug */

static char path[64];
static atomic_int stop;
static atomic_int forks_done;
static atomic_long lines_read;

static void watchdog(int sig)
{
	(void)sig;
	char msg[160];
	int n = snprintf(msg, sizeof(msg),
			 "FAIL fork-stdio: not done after %d s: %d forks, %ld lines read: "
			 "deadlock between fork and stdio\n",
			 WATCHDOG, atomic_load(&forks_done), atomic_load(&lines_read));
	if (write(2, msg, (size_t)n) < 0)
		_exit(2);
	_exit(1);
}

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		FILE *f = fopen(path, "r");
		if (!f)
			ST_FAIL("fopen %s: %s", path, strerror(errno));
		char *line = NULL;
		size_t cap = 0;
		long n = 0;
		while (getline(&line, &cap, f) > 0)
			n++;
		free(line);
		fclose(f);
		fflush(NULL);
		atomic_fetch_add(&lines_read, n);
	}
	return NULL;
}

static void *forker(void *arg)
{
	(void)arg;
	for (int i = 0; i < NFORKS / NFORKERS; i++) {
		pid_t pid = fork();
		if (pid < 0)
			ST_FAIL("fork: %s", strerror(errno));
		if (pid == 0)
			_exit(0);
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ST_FAIL("child %d: status %#x", (int)pid, status);
		atomic_fetch_add(&forks_done, 1);
	}
	return NULL;
}

int main(void)
{
	st_need_preload("fork-stdio");
	/* Lines of 1 B .. 128 KiB: getline's buffer goes through every class
	 * and into large blocks, so realloc takes the arena lock often. */
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(path, sizeof(path), "%.40s/st_fork_stdio.XXXXXX", dir);
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp %s: %s", path, strerror(errno));
	FILE *w = fdopen(fd, "w");
	CHECK(w != NULL, "fdopen");
	uint64_t seed = 42;
	for (int i = 0; i < 64; i++) {
		size_t n = st_log_size(st_rand(&seed), 1, 128 << 10);
		for (size_t k = 0; k < n; k++)
			fputc('a' + (int)(k % 26), w);
		fputc('\n', w);
	}
	CHECK(fclose(w) == 0, "writing %s", path);

	signal(SIGALRM, watchdog);
	alarm(WATCHDOG);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256 << 10);
	pthread_t r[NREADERS], f[NFORKERS];
	for (int i = 0; i < NREADERS; i++)
		CHECK(pthread_create(&r[i], &at, reader, NULL) == 0, "pthread_create");
	for (int i = 0; i < NFORKERS; i++)
		CHECK(pthread_create(&f[i], &at, forker, NULL) == 0, "pthread_create");
	for (int i = 0; i < NFORKERS; i++)
		pthread_join(f[i], NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(r[i], NULL);
	alarm(0);
	unlink(path);
	CHECK(atomic_load(&forks_done) == NFORKS, "%d forks", atomic_load(&forks_done));
	CHECK(st_api.check() == 0, "rtalloc_check failed");
	printf("ok fork-stdio: %d forks while %d threads read %ld lines with getline and fflush(NULL)\n",
	       NFORKS, NREADERS, atomic_load(&lines_read));
	return 0;
}
