// SPDX-License-Identifier: MIT
/*
 * cxx_replace.cpp - a program that replaces only some of the global operators,
 * C++98-style: operator new(size_t), operator delete(void *) and their
 * aligned counterparts.  Its operators put a header before the object, so a
 * pointer of theirs handed to librtalloc (or one of librtalloc's handed to
 * them) aborts.  Run under LD_PRELOAD=librtalloc.so and linked with it.
 *
 * The standard's default behaviour, which libstdc++ implements and librtalloc
 * must keep: the forms the program did not replace forward to the ones it did
 * -- new[] and nothrow new to operator new, sized, nothrow and array delete to
 * operator delete (gcc calls the sized one for every `delete p').  Each
 * expression below must go through the program's operators exactly once.
 */
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "cxx_util.h"

using std::align_val_t;
using std::nothrow;
using std::size_t;

#if !defined(__cpp_sized_deallocation) || !defined(__cpp_aligned_new)
#error "build with -std=c++17 -fsized-deallocation"
#endif

static const uint64_t plain_magic = 0x5245504c41434531; /* "REPLACE1" */
static const uint64_t aligned_magic = 0x5245504c41434532;

struct Header {
	uint64_t magic;
	uint64_t offset; /* from the malloc'ed start to the object */
};

static long n_new, n_delete, n_new_aligned, n_delete_aligned;

[[noreturn]] static void not_mine(const char *op, void *p)
{
	std::fprintf(stderr, "FAIL %s: the program's %s got %p, which it did not allocate\n", ct_name,
		     op, p);
	std::abort();
}

/* The point: a program that does not define the sized forms (gcc warns). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wsized-deallocation"
#endif

void *operator new(size_t n)
{
	n_new++;
	char *raw = static_cast<char *>(std::malloc(n + sizeof(Header)));
	if (!raw)
		throw std::bad_alloc();
	Header *h = reinterpret_cast<Header *>(raw);
	*h = Header{plain_magic, sizeof(Header)};
	return raw + sizeof(Header);
}

void operator delete(void *p) noexcept
{
	if (!p)
		return;
	n_delete++;
	Header *h = static_cast<Header *>(p) - 1;
	if (h->magic != plain_magic)
		not_mine("operator delete(void *)", p);
	h->magic = 0;
	std::free(h);
}

void *operator new(size_t n, align_val_t al)
{
	n_new_aligned++;
	size_t a = size_t(al) < sizeof(Header) ? sizeof(Header) : size_t(al);
	size_t total = (a + n + a - 1) / a * a;
	char *raw = static_cast<char *>(std::aligned_alloc(a, total));
	if (!raw)
		throw std::bad_alloc();
	Header *h = reinterpret_cast<Header *>(raw + a) - 1;
	*h = Header{aligned_magic, a};
	return raw + a;
}

void operator delete(void *p, align_val_t) noexcept
{
	if (!p)
		return;
	n_delete_aligned++;
	Header *h = static_cast<Header *>(p) - 1;
	if (h->magic != aligned_magic)
		not_mine("operator delete(void *, align_val_t)", p);
	h->magic = 0;
	std::free(static_cast<char *>(p) - h->offset);
}

template <class T> static T opaque(T v)
{
	__asm__ volatile("" : "+r"(v));
	return v;
}

struct Obj {
	long a[5] = {1, 2, 3, 4, 5};
};
struct Counted { /* non-trivial destructor: arrays have a cookie, sized delete[] */
	long x = 0;
	~Counted() { x = -1; }
};
struct alignas(256) Wide {
	char c[300];
};
struct alignas(256) WideCounted {
	char c[100];
	~WideCounted() { c[0] = 0; }
};

/* The expression ran the program's operators: `news' of its operator new
 * (plain or aligned) and as many deletes. */
#define EXPECT_OPS(aligned, expr)                                                                    \
	do {                                                                                         \
		long n0 = n_new, d0 = n_delete, an0 = n_new_aligned, ad0 = n_delete_aligned;         \
		expr;                                                                                \
		long dn = n_new - n0, dd = n_delete - d0;                                            \
		long dan = n_new_aligned - an0, dad = n_delete_aligned - ad0;                        \
		EXPECT((aligned) ? (dan == 1 && dad == 1 && dn == 0 && dd == 0)                       \
				: (dn == 1 && dd == 1 && dan == 0 && dad == 0),                      \
		      "%s: the program's new/delete ran %ld/%ld times, aligned %ld/%ld", #expr, dn,  \
		      dd, dan, dad);                                                                 \
	} while (0)

static void check_resolution()
{
	static const struct {
		const char *mangled;
		bool program;
	} forms[] = {
		{"_Znwm", true},
		{"_ZdlPv", true},
		{"_ZnwmSt11align_val_t", true},
		{"_ZdlPvSt11align_val_t", true},
		{"_Znam", false},
		{"_ZnwmRKSt9nothrow_t", false},
		{"_ZdlPvm", false},
		{"_ZdaPvm", false},
		{"_ZdlPvmSt11align_val_t", false},
		{"_ZnamSt11align_val_tRKSt9nothrow_t", false},
	};
	for (const auto &f : forms) {
		void *code = ct_sym(f.mangled);
		const char *file = ct_file_of(code, nullptr);
		if (f.program)
			EXPECT(code && !ct_is_rtalloc(file) && !std::strstr(file, "libstdc++"),
			      "%s should be the program's, is %p in \"%s\"", f.mangled, code, file);
		else
			EXPECT(ct_is_rtalloc(file), "%s should be librtalloc's, is %p in \"%s\"", f.mangled,
			      code, file);
	}
}

int main(int argc, char **argv)
{
	ct_name = argc > 1 ? argv[1] : "cxx-replace";
	ct_need_rtalloc();
	check_resolution();
	long live0 = n_new - n_delete, live_aligned0 = n_new_aligned - n_delete_aligned;

	EXPECT_OPS(false, delete opaque(new Obj));           /* _Znwm, _ZdlPvm */
	EXPECT_OPS(false, delete[] opaque(new char[10]));    /* _Znam, _ZdaPv */
	EXPECT_OPS(false, delete[] opaque(new Counted[7]));  /* _Znam, _ZdaPvm */
	EXPECT_OPS(false, delete opaque(new (nothrow) Obj)); /* _ZnwmRKSt9nothrow_t */
	EXPECT_OPS(false, delete[] opaque(new (nothrow) Counted[3]));
	EXPECT_OPS(false, ::operator delete(opaque(::operator new(10)), size_t(10)));
	EXPECT_OPS(false, ::operator delete[](opaque(::operator new[](10)), size_t(10)));
	EXPECT_OPS(false, ::operator delete(opaque(::operator new(10, nothrow)), nothrow));
	EXPECT_OPS(false, ::operator delete[](opaque(::operator new[](10, nothrow)), nothrow));
	EXPECT_OPS(false, ::operator delete[](opaque(::operator new[](10))));

	EXPECT_OPS(true, delete opaque(new Wide));                     /* _ZdlPvmSt11align_val_t */
	EXPECT_OPS(true, delete[] opaque(new Wide[3]));                /* _ZnamSt11align_val_t */
	EXPECT_OPS(true, delete[] opaque(new WideCounted[3]));         /* _ZdaPvmSt11align_val_t */
	EXPECT_OPS(true, delete opaque(new (nothrow) Wide));           /* aligned nothrow */
	EXPECT_OPS(true, delete[] opaque(new (nothrow) WideCounted[2]));
	align_val_t al{512};
	EXPECT_OPS(true, ::operator delete(opaque(::operator new(10, al)), size_t(10), al));
	EXPECT_OPS(true, ::operator delete[](opaque(::operator new[](10, al)), al));
	EXPECT_OPS(true, ::operator delete[](opaque(::operator new[](10, al)), size_t(10), al));
	EXPECT_OPS(true, ::operator delete(opaque(::operator new(10, al, nothrow)), al, nothrow));
	EXPECT_OPS(true, ::operator delete[](opaque(::operator new[](10, al, nothrow)), al, nothrow));

	/* The library's own allocations go through them too. */
	long before = n_new;
	{
		std::vector<std::string> v;
		for (int i = 0; i < 100; i++)
			v.push_back(std::string(size_t(50 + i), 'r'));
	}
	EXPECT(n_new - before >= 100, "std::vector<std::string> made %ld calls of operator new",
	      n_new - before);
	EXPECT(n_new - n_delete == live0 && n_new_aligned - n_delete_aligned == live_aligned0,
	      "unbalanced: %ld new, %ld delete; aligned %ld new, %ld delete (before main: %ld, %ld live)",
	      n_new, n_delete, n_new_aligned, n_delete_aligned, live0, live_aligned0);
	return ct_result();
}
