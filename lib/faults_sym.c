/* SPDX-License-Identifier: MIT */
/*
 * faults_sym.c - the located faults of a statistics region, told in words:
 * each code address becomes a function name, read from the ELF symbol tables
 * of the file mapped there (.symtab, else .dynsym: a program needs no
 * -rdynamic), and each data address a kind of memory, from /proc/PID/maps.
 *
 * Shared by the library (the exit report, lib/stats.c) and rtalloc-stat:
 * libc only (open, read, pread, close), no allocation, no stdio.  Everything
 * read (the maps, the files, the table) may be anything: every length and
 * offset is checked before it is used, every loop has its bound.
 */
#include <elf.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "faults.h"
#include "os.h"

/* ---- small strings ---- */

static void put(char *buf, size_t len, size_t *at, const char *s)
{
	for (; *s && *at + 1 < len; s++) /* bound: len */
		buf[(*at)++] = *s;
	buf[*at < len ? *at : len - 1] = '\0';
}

static void put_hex(char *buf, size_t len, size_t *at, uint64_t v)
{
	char d[19];
	int i = 18;
	d[i] = '\0';
	do { /* bound: 16 digits */
		d[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v && i > 2);
	d[--i] = 'x';
	d[--i] = '0';
	put(buf, len, at, d + i);
}

static void put_dec(char *buf, size_t len, size_t *at, uint64_t v)
{
	char d[21];
	int i = 20;
	d[i] = '\0';
	do { /* bound: 20 digits */
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	put(buf, len, at, d + i);
}

/* Bytes a terminal or a JSON reader could take for something else become '?'. */
static void clean(char *s)
{
	for (; *s; s++) /* bound: the string */
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
			*s = '?';
}

static uint64_t hex(const char **p)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++, (*p)++) { /* bound: 16 digits */
		char c = **p;
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
			     : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (unsigned)((c | 0x20) - 'a' + 10) : 16;
		if (d == 16)
			break;
		v = v << 4 | d;
	}
	return v;
}

/* ---- /proc/PID/maps ---- */

struct mapping {
	uint64_t start, end, offset;
	char perms[5];
	char path[160]; /* "" for anonymous memory; longer paths are cut */
};

static void maps_path(pid_t pid, char *buf, size_t len)
{
	size_t at = 0;
	put(buf, len, &at, "/proc/");
	if (pid > 0)
		put_dec(buf, len, &at, (uint64_t)pid);
	else
		put(buf, len, &at, "self");
	put(buf, len, &at, "/maps");
}

/* One line "start-end perms offset dev inode   path": does it cover addr? */
static bool parse_line(const char *l, uint64_t addr, struct mapping *m)
{
	const char *p = l;
	m->start = hex(&p);
	if (*p++ != '-')
		return false;
	m->end = hex(&p);
	if (*p++ != ' ' || addr < m->start || addr >= m->end)
		return false;
	for (int i = 0; i < 4; i++) /* bound: 4 */
		m->perms[i] = *p ? *p++ : '-';
	m->perms[4] = '\0';
	if (*p == ' ')
		p++;
	m->offset = hex(&p);
	for (int field = 0; field < 2 && *p; field++) { /* bound: dev, inode */
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
	}
	while (*p == ' ')
		p++;
	size_t at = 0;
	m->path[0] = '\0';
	put(m->path, sizeof(m->path), &at, p);
	return true;
}

/* The mapping of process pid that covers addr: true and *m, or false. */
static bool maps_find(pid_t pid, uint64_t addr, struct mapping *m)
{
	char path[48], buf[4096], line[512];
	maps_path(pid, path, sizeof(path));
	int fd = rt_os_open(path, O_RDONLY, 0);
	if (fd < 0)
		return false;
	size_t ll = 0;
	bool found = false;
	for (int chunk = 0; chunk < (1 << 16) && !found; chunk++) { /* bound: 256 MiB of maps */
		long n = rt_os_read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long i = 0; i < n && !found; i++) { /* bound: the chunk */
			if (buf[i] != '\n') {
				if (ll + 1 < sizeof(line)) /* beyond: the path is cut, the numbers are whole */
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			found = parse_line(line, addr, m);
			ll = 0;
		}
	}
	rt_os_close(fd);
	return found;
}

/* ---- ELF symbols ---- */

static bool pread_all(int fd, void *to, size_t n, uint64_t off)
{
	return rt_os_pread(fd, to, n, off) == (long)n;
}

/* The file offset off as a virtual address of the ELF file (its PT_LOAD). */
static bool offset_to_vaddr(int fd, const Elf64_Ehdr *eh, uint64_t off, uint64_t *v)
{
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return false;
	for (unsigned i = 0; i < eh->e_phnum && i < 1024; i++) { /* bound: 1024 headers */
		Elf64_Phdr ph;
		if (!pread_all(fd, &ph, sizeof(ph), eh->e_phoff + (uint64_t)i * sizeof(ph)))
			return false;
		if (ph.p_type == PT_LOAD && off >= ph.p_offset && off - ph.p_offset < ph.p_filesz) {
			*v = off - ph.p_offset + ph.p_vaddr;
			return true;
		}
	}
	return false;
}

/* The function of table sh (SHT_SYMTAB or SHT_DYNSYM) that covers v. */
static bool symbol_in(int fd, const Elf64_Ehdr *eh, const Elf64_Shdr *sh, uint64_t v, char *name,
		      size_t len)
{
	if (sh->sh_entsize != sizeof(Elf64_Sym) || sh->sh_link >= eh->e_shnum)
		return false;
	Elf64_Shdr str;
	if (!pread_all(fd, &str, sizeof(str), eh->e_shoff + (uint64_t)sh->sh_link * sizeof(str)) ||
	    str.sh_type != SHT_STRTAB)
		return false;
	uint64_t nsym = sh->sh_size / sizeof(Elf64_Sym), best_name = 0, best_value = 0;
	bool found = false;
	if (nsym > (1u << 24))
		nsym = 1u << 24;
	Elf64_Sym syms[128];
	for (uint64_t i = 0; i < nsym; i += 128) { /* bound: 2^24 symbols */
		uint64_t k = nsym - i < 128 ? nsym - i : 128;
		if (!pread_all(fd, syms, (size_t)k * sizeof(Elf64_Sym), sh->sh_offset + i * sizeof(Elf64_Sym)))
			return false;
		for (uint64_t j = 0; j < k; j++) { /* bound: 128 */
			const Elf64_Sym *s = &syms[j];
			unsigned t = ELF64_ST_TYPE(s->st_info);
			uint64_t size = s->st_size ? s->st_size : 1;
			if ((t != STT_FUNC && t != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF ||
			    v < s->st_value || v - s->st_value >= size)
				continue;
			if (!found || s->st_value > best_value) {
				found = true;
				best_value = s->st_value;
				best_name = s->st_name;
			}
		}
	}
	if (!found || best_name >= str.sh_size)
		return false;
	uint64_t avail = str.sh_size - best_name;
	size_t n = avail < len - 1 ? (size_t)avail : len - 1;
	long got = rt_os_pread(fd, name, n, str.sh_offset + best_name);
	if (got <= 0)
		return false;
	name[got] = '\0';
	name[strnlen(name, (size_t)got)] = '\0';
	clean(name);
	return name[0] != '\0';
}

/* The name of the function at address ip of mapping m (the file at path). */
static bool elf_function(const struct mapping *m, uint64_t ip, char *name, size_t len)
{
	if (m->path[0] != '/')
		return false;
	int fd = rt_os_open(m->path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return false;
	Elf64_Ehdr eh;
	struct stat st;
	uint64_t v;
	/* only a regular file is read (a name in the maps may be anything now) */
	bool ok = rt_os_fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && pread_all(fd, &eh, sizeof(eh), 0) && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
		  eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_shentsize == sizeof(Elf64_Shdr) &&
		  offset_to_vaddr(fd, &eh, ip - m->start + m->offset, &v);
	bool found = false;
	/* .symtab first (every function), then .dynsym (what a stripped file keeps) */
	for (unsigned want = 0; ok && want < 2 && !found; want++) { /* bound: 2 tables */
		for (unsigned i = 0; i < eh.e_shnum && i < 65536 && !found; i++) { /* bound: 65536 sections */
			Elf64_Shdr sh;
			if (!pread_all(fd, &sh, sizeof(sh), eh.e_shoff + (uint64_t)i * sizeof(sh)))
				break;
			if (sh.sh_type == (want == 0 ? SHT_SYMTAB : SHT_DYNSYM))
				found = symbol_in(fd, &eh, &sh, v, name, len);
		}
	}
	rt_os_close(fd);
	return found;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* ---- one place, in words ---- */

static void describe(pid_t pid, const struct rt_fault_place *p, struct rt_fault_row *row)
{
	uint64_t ip = p->key & RT_FAULTS_IP_MASK;
	unsigned kind = (unsigned)(p->key >> RT_FAULTS_KIND_SHIFT) & 3;
	struct mapping m;
	size_t at = 0;
	row->ip = ip;
	row->function[0] = row->kind[0] = '\0';
	if (maps_find(pid, ip, &m)) {
		if (!elf_function(&m, ip, row->function, sizeof(row->function))) {
			put(row->function, sizeof(row->function), &at, m.path[0] ? base_name(m.path) : "?");
			put(row->function, sizeof(row->function), &at, "+");
			put_hex(row->function, sizeof(row->function), &at, ip - m.start + m.offset);
			clean(row->function);
		}
	} else {
		put_hex(row->function, sizeof(row->function), &at, ip);
	}
	at = 0;
	if (kind == RT_FK_STACK) {
		put(row->kind, sizeof(row->kind), &at, "stack");
		return;
	}
	if (kind == RT_FK_POOL) {
		put(row->kind, sizeof(row->kind), &at, "heap");
		return;
	}
	if (!maps_find(pid, p->addr, &m))
		put(row->kind, sizeof(row->kind), &at, "unmapped");
	else if (strcmp(m.path, "[stack]") == 0)
		put(row->kind, sizeof(row->kind), &at, "stack");
	else if (strcmp(m.path, "[heap]") == 0)
		put(row->kind, sizeof(row->kind), &at, "heap");
	else if (m.path[0] == '\0' || strncmp(m.path, "[anon", 5) == 0)
		put(row->kind, sizeof(row->kind), &at, "anonymous");
	else if (m.path[0] == '[')
		put(row->kind, sizeof(row->kind), &at, m.path);
	else if (m.perms[2] == 'x')
		put(row->kind, sizeof(row->kind), &at, "code");
	else {
		put(row->kind, sizeof(row->kind), &at, "file ");
		put(row->kind, sizeof(row->kind), &at, m.path);
	}
	clean(row->kind + (strncmp(row->kind, "file ", 5) == 0 ? 5 : 0));
}

unsigned rt_fault_rows(pid_t pid, const struct rt_fault_place *places, unsigned n,
		       struct rt_fault_row *rows)
{
	bool taken[RT_FAULTS_PLACES] = {false};
	unsigned nrows = 0;
	if (n > RT_FAULTS_PLACES)
		n = RT_FAULTS_PLACES;
	/* The busiest place not taken yet, RT_FAULT_ROWS times. */
	for (unsigned round = 0; round < RT_FAULT_ROWS; round++) { /* bound: RT_FAULT_ROWS */
		unsigned best = n;
		for (unsigned i = 0; i < n; i++) /* bound: RT_FAULTS_PLACES */
			if (!taken[i] && places[i].key && places[i].count &&
			    (best == n || places[i].count > places[best].count))
				best = i;
		if (best == n)
			break;
		taken[best] = true;
		struct rt_fault_row r;
		describe(pid, &places[best], &r);
		r.count = places[best].count;
		unsigned j = 0;
		for (; j < nrows; j++) /* bound: RT_FAULT_ROWS */
			if (strcmp(rows[j].function, r.function) == 0 && strcmp(rows[j].kind, r.kind) == 0)
				break;
		if (j < nrows) /* saturating: the counts may come from another process */
			rows[j].count = rows[j].count + r.count < r.count ? UINT64_MAX : rows[j].count + r.count;
		else
			rows[nrows++] = r;
	}
	/* busiest first (insertion sort: the rows were found in that order but
	 * merging may have moved some up) */
	for (unsigned i = 1; i < nrows; i++) /* bound: RT_FAULT_ROWS */
		for (unsigned j = i; j > 0 && rows[j].count > rows[j - 1].count; j--) { /* bound: i */
			struct rt_fault_row t = rows[j];
			rows[j] = rows[j - 1];
			rows[j - 1] = t;
		}
	return nrows;
}
