/* SPDX-License-Identifier: MIT */
/*
 * st_die.c - fatal paths under LD_PRELOAD (fatal.sh): each mode ends the
 * process with abort() through librtalloc.  The statistics file must be
 * gone afterwards (fatal.sh looks in XDG_RUNTIME_DIR).
 *   doublefree   free() twice: "double free", rt_fatal
 *   oom          RTALLOC_ON_EXHAUST=abort and a request beyond the pool
 *   cxx-align    operator new(size, align_val_t) with alignment 3
 *   live         no fault: exits 0 (the file is there while it runs)
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	void *p = malloc(100);
	if (!p)
		return 2;
	if (strcmp(mode, "doublefree") == 0) {
		free(p);
		free(p);
	} else if (strcmp(mode, "oom") == 0) {
		void *q = malloc((size_t)1 << 40);
		printf("malloc returned %p\n", q);
	} else if (strcmp(mode, "cxx-align") == 0) {
		void *(*op)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "_ZnwmSt11align_val_t");
		if (!op)
			return 77;
		op(16, 3);
	} else if (strcmp(mode, "live") == 0) {
		free(p);
		return 0;
	}
	return 3; /* not reached in the fatal modes */
}
