/* SPDX-License-Identifier: MIT */
/*
 * st_usdt.c - the USDT probes of librtalloc.so fire where lib/probes.h says,
 * with the arguments it says (run under LD_PRELOAD=librtalloc.so).
 *
 * What a tracer does, done in the process itself (this machine may have no
 * tracefs, perf or bpftrace): read the library's .note.stapsdt notes from its
 * file, check that each probe's site is one nop, write an int3 over it (as
 * a uprobe does), run the path the probe is on and count the SIGTRAPs whose
 * address is that site; the handler reads the probe's arguments from the
 * registers the note names (operands "N@%reg" or "N@$const"; others are not
 * checked).  x86-64 only (skip elsewhere), and skipped when the library has
 * no probes or its text cannot be made writable.
 *
 * Not here: lock_wait (a lock must be contended; its count is tested by
 * test_lockwait and stat-locks, from the same function as the probe).
 */
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>

#include "st_util.h"

#if defined(__x86_64__)

#define MAXPROBES 32

struct probe {
	char name[32];
	uintptr_t pc;       /* where it is in this process */
	char args[128];     /* the note's argument string */
	volatile int hits;  /* SIGTRAPs at pc while armed */
	volatile int64_t arg[3];
	volatile unsigned got; /* bit i: arg[i] was read (its operand is a register or a constant) */
};

static struct probe probes[MAXPROBES];
static int nprobes;
static uintptr_t lib_bias;
static char lib_path[4096];

static int find_lib(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	if (info->dlpi_name && strstr(info->dlpi_name, "librtalloc.so")) {
		lib_bias = info->dlpi_addr;
		snprintf(lib_path, sizeof(lib_path), "%s", info->dlpi_name);
		return 1;
	}
	return 0;
}

/* The notes of provider rtalloc, from the library's file. */
static void read_notes(void)
{
	int fd = open(lib_path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		ST_FAIL("cannot open %s", lib_path);
	const unsigned char *f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (f == MAP_FAILED)
		ST_FAIL("cannot map %s", lib_path);
	close(fd);
	const Elf64_Ehdr *eh = (const void *)f;
	const Elf64_Shdr *sh = (const void *)(f + eh->e_shoff);
	const char *shstr = (const char *)f + sh[eh->e_shstrndx].sh_offset;
	const Elf64_Shdr *notes = NULL, *base = NULL;
	for (int i = 0; i < eh->e_shnum; i++) {
		if (strcmp(shstr + sh[i].sh_name, ".note.stapsdt") == 0)
			notes = &sh[i];
		else if (strcmp(shstr + sh[i].sh_name, ".stapsdt.base") == 0)
			base = &sh[i];
	}
	if (!notes) {
		printf("SKIP: %s has no .note.stapsdt (built without sys/sdt.h)\n", lib_path);
		exit(ST_SKIP);
	}
	size_t off = 0;
	while (off + sizeof(Elf64_Nhdr) <= notes->sh_size) {
		const Elf64_Nhdr *nh = (const void *)(f + notes->sh_offset + off);
		const char *name = (const char *)(nh + 1);
		const unsigned char *desc = (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
		off += sizeof(*nh) + ((nh->n_namesz + 3) & ~3u) + ((nh->n_descsz + 3) & ~3u);
		if (nh->n_type != 3 || strcmp(name, "stapsdt") != 0)
			continue;
		uint64_t pc, nbase;
		memcpy(&pc, desc, 8);
		memcpy(&nbase, desc + 8, 8);
		const char *prov = (const char *)desc + 24, *pname = prov + strlen(prov) + 1;
		const char *args = pname + strlen(pname) + 1;
		if (strcmp(prov, "rtalloc") != 0 || nprobes == MAXPROBES)
			continue;
		struct probe *p = &probes[nprobes++];
		snprintf(p->name, sizeof(p->name), "%s", pname);
		snprintf(p->args, sizeof(p->args), "%s", args);
		/* prelink moved .stapsdt.base: the note's addresses move with it */
		if (base)
			pc += base->sh_addr - nbase;
		p->pc = lib_bias + pc;
	}
}

static const struct {
	const char *name;
	int reg;
} regs[] = {
	{"rax", REG_RAX}, {"eax", REG_RAX}, {"rbx", REG_RBX}, {"ebx", REG_RBX}, {"rcx", REG_RCX},
	{"ecx", REG_RCX}, {"rdx", REG_RDX}, {"edx", REG_RDX}, {"rsi", REG_RSI}, {"esi", REG_RSI},
	{"rdi", REG_RDI}, {"edi", REG_RDI}, {"rbp", REG_RBP}, {"ebp", REG_RBP}, {"r8", REG_R8},
	{"r9", REG_R9},   {"r10", REG_R10}, {"r11", REG_R11}, {"r12", REG_R12}, {"r13", REG_R13},
	{"r14", REG_R14}, {"r15", REG_R15}, {"al", REG_RAX},  {"bl", REG_RBX},  {"cl", REG_RCX},
	{"dl", REG_RDX},  {"sil", REG_RSI}, {"dil", REG_RDI},
};

/* Argument i of the probe, from its operand: true if it could be read. */
static bool operand(const char *args, int i, const ucontext_t *uc, int64_t *out)
{
	const char *s = args;
	for (int k = 0; k < i && s; k++) {
		s = strchr(s, ' ');
		if (s)
			s++;
	}
	if (!s || !*s)
		return false;
	char *at;
	long size = strtol(s, &at, 10);
	if (*at != '@')
		return false;
	at++;
	uint64_t v;
	if (*at == '$') {
		v = (uint64_t)strtoll(at + 1, NULL, 0);
	} else if (*at == '%') {
		char r[8] = {0};
		int n = 0;
		for (at++; n < 7 && ((*at >= 'a' && *at <= 'z') || (*at >= '0' && *at <= '9')); at++)
			r[n++] = *at;
		if (*at && *at != ' ')
			return false; /* a memory operand */
		/* r8d, r9w ...: the low bytes of r8 .. */
		if (r[0] == 'r' && n > 1 && (r[n - 1] == 'd' || r[n - 1] == 'w' || r[n - 1] == 'b') && r[1] >= '0' &&
		    r[1] <= '9')
			r[n - 1] = '\0';
		int reg = -1;
		for (size_t k = 0; k < sizeof(regs) / sizeof(regs[0]); k++)
			if (strcmp(regs[k].name, r) == 0)
				reg = regs[k].reg;
		if (reg < 0)
			return false;
		v = (uint64_t)uc->uc_mcontext.gregs[reg];
	} else {
		return false;
	}
	long bytes = size < 0 ? -size : size;
	if (bytes > 0 && bytes < 8) {
		uint64_t mask = (1ULL << (8 * bytes)) - 1;
		v &= mask;
		if (size < 0 && (v >> (8 * bytes - 1)))
			v |= ~mask;
	}
	*out = (int64_t)v;
	return true;
}

/* Argument i of probe p, read at its last hit, meets cond (or could not be read). */
#define ARG(p, i, cond) (!((p)->got & (1u << (i))) || (cond))

static void on_trap(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ctx;
	uintptr_t at = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP] - 1; /* after the int3 */
	for (int i = 0; i < nprobes; i++) {
		if (probes[i].pc != at)
			continue;
		probes[i].hits++;
		unsigned got = 0;
		for (int a = 0; a < 3; a++) {
			int64_t v = 0;
			if (operand(probes[i].args, a, uc, &v))
				got |= 1u << a;
			probes[i].arg[a] = v;
		}
		probes[i].got = got;
		return; /* the int3 replaced a one-byte nop: go on after it */
	}
	abort(); /* a trap we did not set */
}

static struct probe *probe(const char *name)
{
	for (int i = 0; i < nprobes; i++)
		if (strcmp(probes[i].name, name) == 0)
			return &probes[i];
	ST_FAIL("the library has no probe %s", name);
}

/* Write b at the site (a page made writable for the write only). */
static void poke(uintptr_t pc, unsigned char b)
{
	uintptr_t page = pc & ~(uintptr_t)4095;
	if (mprotect((void *)page, 8192, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
		printf("SKIP: cannot make the library's text writable (%s)\n", strerror(errno));
		exit(ST_SKIP);
	}
	*(volatile unsigned char *)pc = b;
	mprotect((void *)page, 8192, PROT_READ | PROT_EXEC);
}

static void arm(struct probe *p)
{
	p->hits = 0;
	poke(p->pc, 0xcc);
}

static void disarm(struct probe *p) { poke(p->pc, 0x90); }

static void (*rt_begin)(void), (*rt_end)(void);
static void *(*heap_create)(const char *, size_t, unsigned);
static void *(*heap_alloc)(void *, size_t);
static void *(*heap_alloc_timed)(void *, size_t, const struct timespec *);

static void *fresh_thread(void *arg)
{
	/* a new thread's first allocation of a class refills its cache */
	struct probe *p = arg;
	arm(p);
	void *b = malloc(3000);
	disarm(p);
	free(b);
	return NULL;
}

int main(void)
{
	st_name = "usdt";
	dl_iterate_phdr(find_lib, NULL);
	if (!lib_path[0]) {
		printf("SKIP: librtalloc.so is not loaded (LD_PRELOAD)\n");
		return ST_SKIP;
	}
	read_notes();
	rt_begin = (void (*)(void))dlsym(RTLD_DEFAULT, "rtalloc_rt_begin");
	rt_end = (void (*)(void))dlsym(RTLD_DEFAULT, "rtalloc_rt_end");
	heap_create = (void *(*)(const char *, size_t, unsigned))dlsym(RTLD_DEFAULT, "rtalloc_heap_create");
	heap_alloc = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "rtalloc_heap_alloc");
	heap_alloc_timed = (void *(*)(void *, size_t, const struct timespec *))dlsym(RTLD_DEFAULT,
										   "rtalloc_heap_alloc_timed");
	CHECK(rt_begin && rt_end && heap_create && heap_alloc && heap_alloc_timed, "rtalloc_* not found");

	/* every site is one nop: nothing runs there untraced */
	for (int i = 0; i < nprobes; i++)
		CHECK(*(const unsigned char *)probes[i].pc == 0x90, "probe %s: the site at %#lx is not a nop",
		      probes[i].name, (unsigned long)probes[i].pc);
	struct sigaction sa = {.sa_sigaction = on_trap, .sa_flags = SA_SIGINFO};
	sigaction(SIGTRAP, &sa, NULL);

	/* rt_begin, rt_end: the thread's section number, then its minor faults */
	struct probe *b = probe("rt_begin"), *e = probe("rt_end");
	arm(b);
	arm(e);
	rt_begin();
	rt_end();
	rt_begin();
	rt_end();
	disarm(b);
	disarm(e);
	CHECK(b->hits == 2 && e->hits == 2, "rt_begin fired %d times, rt_end %d (want 2, 2)", b->hits, e->hits);
	CHECK(ARG(b, 0, b->arg[0] == 2), "rt_begin's section number %lld (want 2)", (long long)b->arg[0]);
	CHECK(ARG(e, 0, e->arg[0] == 2), "rt_end's section number %lld (want 2)", (long long)e->arg[0]);
	CHECK(ARG(e, 1, e->arg[1] >= 0), "rt_end's faults %lld", (long long)e->arg[1]);

	/* refill: class and blocks got */
	struct probe *r = probe("refill");
	pthread_t t;
	CHECK(pthread_create(&t, NULL, fresh_thread, r) == 0 && pthread_join(t, NULL) == 0, "thread");
	CHECK(r->hits >= 1, "refill did not fire at a new thread's first malloc");
	CHECK(ARG(r, 0, (r->arg[0] >= 1 && r->arg[0] <= 12)), "refill's class %lld",
	      (long long)r->arg[0]);
	CHECK(ARG(r, 1, r->arg[1] >= 1), "refill's blocks %lld", (long long)r->arg[1]);

	/* flush: many blocks of a class freed */
	struct probe *fl = probe("flush");
	enum { N = 4096 };
	static void *keep[N];
	for (int i = 0; i < N; i++)
		keep[i] = malloc(64);
	arm(fl);
	for (int i = 0; i < N; i++)
		free(keep[i]);
	disarm(fl);
	CHECK(fl->hits >= 1, "flush did not fire when %d blocks were freed", N);
	CHECK(ARG(fl, 1, fl->arg[1] >= 1), "flush's blocks %lld", (long long)fl->arg[1]);

	/* large_alloc, large_free: bytes (and pages) */
	struct probe *la = probe("large_alloc"), *lf = probe("large_free");
	arm(la);
	arm(lf);
	void *big = malloc(1 << 20);
	size_t usable = malloc_usable_size(big);
	free(big);
	disarm(la);
	disarm(lf);
	CHECK(big && la->hits == 1 && lf->hits == 1, "large_alloc fired %d, large_free %d (want 1, 1)", la->hits,
	      lf->hits);
	CHECK(ARG(la, 0, (la->arg[0] >= 1 << 20 && la->arg[1] == la->arg[0] / 4096)),
	      "large_alloc's bytes %lld, pages %lld", (long long)la->arg[0], (long long)la->arg[1]);
	CHECK(ARG(lf, 0, lf->arg[0] == (int64_t)usable), "large_free's bytes %lld (usable %zu)",
	      (long long)lf->arg[0], usable);

	/* grow: the pool (RTALLOC_POOL_SIZE=4M) grows for 8 MiB */
	struct probe *g = probe("grow");
	arm(g);
	void *huge = malloc(8 << 20);
	disarm(g);
	CHECK(huge && g->hits >= 1, "grow did not fire (block %p)", huge);
	CHECK(ARG(g, 0, (g->arg[0] >= 8 << 20 && g->arg[0] % 4096 == 0)), "grow's bytes %lld",
	      (long long)g->arg[0]);
	CHECK(ARG(g, 1, g->arg[1] == 0), "grow's arena %lld", (long long)g->arg[1]);
	free(huge);

	/* exhausted: the bytes asked */
	struct probe *x = probe("exhausted");
	volatile size_t too_much = (size_t)PTRDIFF_MAX + 1;
	arm(x);
	void *none = malloc(too_much);
	disarm(x);
	CHECK(!none && x->hits == 1, "exhausted fired %d times (want 1)", x->hits);
	CHECK(ARG(x, 0, (uint64_t)x->arg[0] == too_much), "exhausted's bytes %llx",
	      (unsigned long long)x->arg[0]);

	/* heap_wait, heap_wake: a full heap, a deadline 10 ms away */
	struct probe *hw = probe("heap_wait"), *hk = probe("heap_wake");
	void *h = heap_create("usdt", 64 << 10, 0);
	CHECK(h != NULL, "heap");
	while (heap_alloc(h, 4096)) /* bound: the heap's 16 pages */
		;
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_nsec += 10000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	arm(hw);
	arm(hk);
	void *w = heap_alloc_timed(h, 4096, &dl);
	int err = errno;
	disarm(hw);
	disarm(hk);
	CHECK(!w && err == ETIMEDOUT, "a full heap's timed allocation: %p, %s", w, strerror(err));
	CHECK(hw->hits == 1 && hk->hits == 1, "heap_wait fired %d, heap_wake %d (want 1, 1)", hw->hits, hk->hits);
	CHECK(ARG(hw, 0, hw->arg[0] == (int64_t)(uintptr_t)h), "heap_wait's heap");
	CHECK(ARG(hw, 1, hw->arg[1] == 4096), "heap_wait's bytes %lld", (long long)hw->arg[1]);
	CHECK(ARG(hw, 2, hw->arg[2] == (int64_t)dl.tv_sec * 1000000000 + dl.tv_nsec),
	      "heap_wait's deadline");
	CHECK(ARG(hk, 1, hk->arg[1] == ETIMEDOUT), "heap_wake's errno %lld", (long long)hk->arg[1]);

	for (int i = 0; i < nprobes; i++)
		printf("%-12s %-32s fired %d, arguments read %#x: %lld %lld %lld\n", probes[i].name, probes[i].args,
		       probes[i].hits, probes[i].got, (long long)probes[i].arg[0], (long long)probes[i].arg[1],
		       (long long)probes[i].arg[2]);
	printf("ok: %d probes, each a nop; rt_begin rt_end refill flush large_alloc large_free grow exhausted "
	       "heap_wait heap_wake fired with their arguments\n", nprobes);
	return 0;
}

#else
int main(void)
{
	printf("SKIP: the probe sites are patched as on x86-64 only\n");
	return ST_SKIP;
}
#endif
