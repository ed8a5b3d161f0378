// SPDX-License-Identifier: MIT
/*
 * cxx_test.cpp - librtalloc's C++ operator new/delete, in a C++ program run
 * under LD_PRELOAD=librtalloc.so and linked with -lrtalloc (same source).
 *
 *   1. every standard form resolves to librtalloc.so, under its mangled name;
 *   2. every form allocates a librtalloc block and every delete form frees
 *      one; new-expressions (plain, arrays with cookies, virtual destructors,
 *      over-aligned types, nothrow) do the same;
 *   3. aligned new honours alignments of 16 B .. 1 MiB;
 *   4. an impossible size throws std::bad_alloc from every throwing form, and
 *      the nothrow forms return nullptr;
 *   5. the new_handler is called in a loop until it uninstalls itself (count
 *      checked), its exception propagates, and a handler that frees a reserve
 *      lets the retry succeed when the pool is really exhausted;
 *   6. a workload of containers, strings, exceptions and threads gives the
 *      expected output;
 *   7. misuse aborts with the operator's name: size larger than the block,
 *      alignment not matching, double delete, interior pointers, alignment
 *      not a power of two.
 * Needs RTALLOC_POOL_MAX=64M (section 5 fills the pool).
 */
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cxx_util.h"

using std::align_val_t;
using std::nothrow;
using std::nothrow_t;
using std::size_t;

#if !defined(__cpp_sized_deallocation) || !defined(__cpp_aligned_new)
#error "build with -std=c++17 -fsized-deallocation"
#endif

template <class F> static F api(const char *name)
{
	void *s = ct_sym(name);
	F f;
	static_assert(sizeof f == sizeof s, "function pointers are data pointers");
	std::memcpy(&f, &s, sizeof f);
	return f;
}

static size_t (*usable_size)(void *);
static int (*heap_check)(void);

/* Hide a value from the optimiser: no elided new/delete pair, no warning about
 * a misuse that is the point of the test. */
template <class T> static T opaque(T v)
{
	__asm__ volatile("" : "+r"(v));
	return v;
}

static bool pow2(size_t x) { return x && !(x & (x - 1)); }

/* p is a live librtalloc block of at least n bytes: its usable size (0 for a
 * pointer outside librtalloc) is a power of two, as every block's is up to
 * 8 MiB; beyond, a multiple of an eighth of the power of two above it (what
 * a large block keeps of its buddy block). */
static bool block_size(size_t u)
{
	if (pow2(u))
		return true;
	size_t top = size_t(1) << (64 - __builtin_clzll(u)); /* the buddy block */
	return u > (size_t(8) << 20) && u % (top / 8) == 0;
}

static void check_block(void *p, size_t n, size_t align, const char *what)
{
	EXPECT(p != nullptr, "%s(%zu) returned nullptr", what, n);
	if (!p)
		return;
	size_t u = usable_size(p);
	EXPECT(u >= n && u >= 16 && block_size(u), "%s(%zu): %p is not a librtalloc block (usable size %zu)",
	      what, n, p, u);
	EXPECT(reinterpret_cast<uintptr_t>(p) % align == 0, "%s(%zu): %p not aligned to %zu", what, n,
	      p, align);
	std::memset(p, 0xa5, n); /* the whole request is writable */
}

/* ---- 1. resolution ------------------------------------------------------- */

template <class F> static const void *code_of(F f)
{
	const void *p;
	static_assert(sizeof f == sizeof p, "function pointers are data pointers");
	std::memcpy(&p, &f, sizeof p);
	return p;
}

static void test_resolution()
{
	using N = void *(*)(size_t);
	using NT = void *(*)(size_t, const nothrow_t &) noexcept;
	using NA = void *(*)(size_t, align_val_t);
	using NAT = void *(*)(size_t, align_val_t, const nothrow_t &) noexcept;
	using D = void (*)(void *) noexcept;
	using DS = void (*)(void *, size_t) noexcept;
	using DT = void (*)(void *, const nothrow_t &) noexcept;
	using DA = void (*)(void *, align_val_t) noexcept;
	using DSA = void (*)(void *, size_t, align_val_t) noexcept;
	using DAT = void (*)(void *, align_val_t, const nothrow_t &) noexcept;
	static const struct {
		const char *mangled;
		const void *code;
	} forms[] = {
		{"_Znwm", code_of<N>(&::operator new)},
		{"_Znam", code_of<N>(&::operator new[])},
		{"_ZnwmRKSt9nothrow_t", code_of<NT>(&::operator new)},
		{"_ZnamRKSt9nothrow_t", code_of<NT>(&::operator new[])},
		{"_ZnwmSt11align_val_t", code_of<NA>(&::operator new)},
		{"_ZnamSt11align_val_t", code_of<NA>(&::operator new[])},
		{"_ZnwmSt11align_val_tRKSt9nothrow_t", code_of<NAT>(&::operator new)},
		{"_ZnamSt11align_val_tRKSt9nothrow_t", code_of<NAT>(&::operator new[])},
		{"_ZdlPv", code_of<D>(&::operator delete)},
		{"_ZdaPv", code_of<D>(&::operator delete[])},
		{"_ZdlPvm", code_of<DS>(&::operator delete)},
		{"_ZdaPvm", code_of<DS>(&::operator delete[])},
		{"_ZdlPvRKSt9nothrow_t", code_of<DT>(&::operator delete)},
		{"_ZdaPvRKSt9nothrow_t", code_of<DT>(&::operator delete[])},
		{"_ZdlPvSt11align_val_t", code_of<DA>(&::operator delete)},
		{"_ZdaPvSt11align_val_t", code_of<DA>(&::operator delete[])},
		{"_ZdlPvmSt11align_val_t", code_of<DSA>(&::operator delete)},
		{"_ZdaPvmSt11align_val_t", code_of<DSA>(&::operator delete[])},
		{"_ZdlPvSt11align_val_tRKSt9nothrow_t", code_of<DAT>(&::operator delete)},
		{"_ZdaPvSt11align_val_tRKSt9nothrow_t", code_of<DAT>(&::operator delete[])},
	};
	for (const auto &f : forms) {
		const char *sym;
		const char *file = ct_file_of(f.code, &sym);
		EXPECT(ct_is_rtalloc(file), "%s comes from \"%s\", not librtalloc.so", f.mangled, file);
		EXPECT(std::strcmp(sym, f.mangled) == 0, "%s resolves to a symbol named \"%s\"", f.mangled,
		      sym);
		EXPECT(ct_sym(f.mangled) == f.code, "dlsym(%s) is not the program's %s", f.mangled,
		      f.mangled);
	}
}

/* ---- 2. every form ------------------------------------------------------ */

struct Base {
	long id;
	explicit Base(long i) : id(i) {}
	virtual ~Base() = default;
	virtual long value() const { return id; }
};
struct Derived : Base {
	char payload[200];
	explicit Derived(long i) : Base(i) { std::memset(payload, int(i), sizeof payload); }
	long value() const override { return id + payload[7]; }
};
struct Counted { /* non-trivial destructor: arrays carry a cookie */
	static int live;
	long x = 1;
	Counted() { live++; }
	~Counted() { live--; }
};
int Counted::live;
struct alignas(128) Aligned128 {
	char c[300];
};
struct alignas(256) Aligned256Counted { /* cookie of 256 bytes + sized aligned delete[] */
	static int live;
	char c[100];
	Aligned256Counted() { live++; }
	~Aligned256Counted() { live--; }
};
int Aligned256Counted::live;
struct alignas(4096) Page {
	char c[5000];
};
struct alignas(65536) Aligned64K {
	int x;
};

static void test_forms()
{
	static const size_t sizes[] = {0, 1, 8, 15, 16, 17, 100, 1000, 2048, 4095, 4096,
				       5000, 32768, 40000, 1 << 20};
	for (size_t n : sizes) {
		void *p = opaque(::operator new(n));
		check_block(p, n, 16, "operator new");
		::operator delete(p);
		p = opaque(::operator new(n));
		check_block(p, n, 16, "operator new");
		::operator delete(p, n);
		p = opaque(::operator new[](n));
		check_block(p, n, 16, "operator new[]");
		::operator delete[](p);
		p = opaque(::operator new[](n));
		check_block(p, n, 16, "operator new[]");
		::operator delete[](p, n);
		p = opaque(::operator new(n, nothrow));
		check_block(p, n, 16, "operator new(nothrow)");
		::operator delete(p, nothrow);
		p = opaque(::operator new[](n, nothrow));
		check_block(p, n, 16, "operator new[](nothrow)");
		::operator delete[](p, nothrow);
		for (size_t a : {size_t(64), size_t(8192)}) {
			align_val_t al{a};
			p = opaque(::operator new(n, al));
			check_block(p, n, a, "operator new(align)");
			::operator delete(p, al);
			p = opaque(::operator new(n, al));
			check_block(p, n, a, "operator new(align)");
			::operator delete(p, n, al);
			p = opaque(::operator new[](n, al));
			check_block(p, n, a, "operator new[](align)");
			::operator delete[](p, al);
			p = opaque(::operator new[](n, al));
			check_block(p, n, a, "operator new[](align)");
			::operator delete[](p, n, al);
			p = opaque(::operator new(n, al, nothrow));
			check_block(p, n, a, "operator new(align, nothrow)");
			::operator delete(p, al, nothrow);
			p = opaque(::operator new[](n, al, nothrow));
			check_block(p, n, a, "operator new[](align, nothrow)");
			::operator delete[](p, al, nothrow);
		}
		/* A smaller size than the request is accepted (a base's size). */
		p = opaque(::operator new(n + 64));
		::operator delete(p, n);
	}

	/* new(0) gives distinct pointers. */
	void *z1 = opaque(::operator new(0)), *z2 = opaque(::operator new(0));
	EXPECT(z1 && z2 && z1 != z2, "operator new(0): %p %p", z1, z2);
	::operator delete(z1, size_t(0));
	::operator delete(z2, size_t(0));

	/* Deleting null is a no-op in every form. */
	auto null = [] { return opaque<void *>(nullptr); };
	::operator delete(null());
	::operator delete[](null());
	::operator delete(null(), size_t(8));
	::operator delete[](null(), size_t(8));
	::operator delete(null(), nothrow);
	::operator delete[](null(), nothrow);
	::operator delete(null(), align_val_t(64));
	::operator delete[](null(), align_val_t(64));
	::operator delete(null(), size_t(8), align_val_t(64));
	::operator delete[](null(), size_t(8), align_val_t(64));
	::operator delete(null(), align_val_t(64), nothrow);
	::operator delete[](null(), align_val_t(64), nothrow);

	/* New-expressions. */
	int *i = opaque(new int(42));
	EXPECT(*i == 42, "new int(42) holds %d", *i);
	check_block(i, sizeof *i, 16, "new int");
	delete i;
	int *ia = opaque(new int[1000]());
	check_block(ia, 1000 * sizeof *ia, 16, "new int[1000]");
	ia[999] = 5;
	delete[] ia;

	Base *b = opaque<Base *>(new Derived(3)); /* sized delete of the dynamic type */
	EXPECT(b->value() == 6, "virtual call gave %ld", b->value());
	delete b;

	Counted *c = opaque(new Counted[77]); /* delete[] with the cookie in the size */
	EXPECT(Counted::live == 77, "%d Counted alive", Counted::live);
	delete[] c;
	EXPECT(Counted::live == 0, "%d Counted alive", Counted::live);

	Aligned128 *a128 = opaque(new Aligned128);
	check_block(a128, sizeof *a128, 128, "new Aligned128");
	delete a128;
	Aligned128 *a128v = opaque(new Aligned128[9]);
	check_block(a128v, 9 * sizeof *a128v, 128, "new Aligned128[9]");
	delete[] a128v;
	Aligned256Counted *a256 = opaque(new Aligned256Counted[5]);
	EXPECT(reinterpret_cast<uintptr_t>(a256) % 256 == 0 && Aligned256Counted::live == 5,
	      "new Aligned256Counted[5]: %p, %d alive", static_cast<void *>(a256),
	      Aligned256Counted::live);
	delete[] a256;
	EXPECT(Aligned256Counted::live == 0, "%d Aligned256Counted alive", Aligned256Counted::live);
	Page *pg = opaque(new Page);
	check_block(pg, sizeof *pg, 4096, "new Page");
	delete pg;
	Aligned64K *a64k = opaque(new (nothrow) Aligned64K);
	check_block(a64k, sizeof *a64k, 65536, "new (nothrow) Aligned64K");
	delete a64k;
	Aligned64K *a64kv = opaque(new (nothrow) Aligned64K[3]);
	check_block(a64kv, 3 * sizeof *a64kv, 65536, "new (nothrow) Aligned64K[3]");
	delete[] a64kv;
	long *l = opaque(new (nothrow) long[10]);
	check_block(l, 10 * sizeof *l, 16, "new (nothrow) long[10]");
	delete[] l;

	/* std::allocator uses the sized (and aligned) forms. */
	std::allocator<Aligned128> alloc;
	Aligned128 *v = opaque(alloc.allocate(33));
	check_block(v, 33 * sizeof *v, 128, "std::allocator<Aligned128>");
	alloc.deallocate(v, 33);

	EXPECT(heap_check() == 0, "rtalloc_check failed after the forms");
}

/* ---- 3. alignment ------------------------------------------------------------ */

static void test_alignment()
{
	for (size_t a = 1; a <= (size_t(1) << 20); a <<= 1) {
		align_val_t al{a};
		const size_t sizes[] = {1, a / 2 + 1, a > 1 ? a - 1 : 1, a, a + 1, 3 * a + 5};
		for (size_t n : sizes) {
			void *p[4] = {
				opaque(::operator new(n, al)),
				opaque(::operator new[](n, al)),
				opaque(::operator new(n, al, nothrow)),
				opaque(::operator new[](n, al, nothrow)),
			};
			check_block(p[0], n, a, "operator new(align)");
			check_block(p[1], n, a, "operator new[](align)");
			check_block(p[2], n, a, "operator new(align, nothrow)");
			check_block(p[3], n, a, "operator new[](align, nothrow)");
			::operator delete(p[0], n, al);
			::operator delete[](p[1], n, al);
			::operator delete(p[2], al, nothrow);
			::operator delete[](p[3], al);
		}
	}
	/* Many at once: none overlaps another, all aligned. */
	std::vector<std::pair<char *, size_t>> live;
	for (size_t a = 16; a <= 65536; a <<= 1)
		for (int k = 0; k < 8; k++) {
			size_t n = a + size_t(k) * 24;
			char *p = static_cast<char *>(::operator new(n, align_val_t(a)));
			check_block(p, n, a, "operator new(align) batch");
			live.emplace_back(p, n);
		}
	auto sorted = live;
	std::sort(sorted.begin(), sorted.end());
	for (size_t k = 1; k < sorted.size(); k++)
		EXPECT(sorted[k - 1].first + sorted[k - 1].second <= sorted[k].first,
		      "blocks %p+%zu and %p overlap", static_cast<void *>(sorted[k - 1].first),
		      sorted[k - 1].second, static_cast<void *>(sorted[k].first));
	size_t a = 16;
	for (size_t k = 0; k < live.size(); k++) {
		::operator delete(live[k].first, live[k].second, align_val_t(a));
		if (k % 8 == 7)
			a <<= 1;
	}
	EXPECT(heap_check() == 0, "rtalloc_check failed after the alignments");
}

/* ---- 4. impossible sizes -------------------------------------------------------- */

static const size_t impossible = size_t(1) << 50; /* far beyond RTALLOC_POOL_MAX */

/* fn allocates (and frees, if it ever gets a block): it must throw. */
template <class Fn> static bool throws_bad_alloc(Fn fn)
{
	try {
		fn();
	} catch (const std::bad_alloc &e) {
		return std::strcmp(e.what(), "std::bad_alloc") == 0;
	}
	return false;
}

static void test_impossible()
{
	size_t n = opaque(impossible);
	EXPECT(throws_bad_alloc([n] { delete[] opaque(new char[n]); }), "new char[2^50]");
	EXPECT(throws_bad_alloc([n] { ::operator delete(opaque(::operator new(n))); }),
	      "operator new(2^50)");
	EXPECT(throws_bad_alloc([n] { ::operator delete[](opaque(::operator new[](n))); }),
	      "operator new[](2^50)");
	EXPECT(throws_bad_alloc([n] {
		      align_val_t al{64};
		      ::operator delete(opaque(::operator new(n, al)), al);
	      }),
	      "operator new(2^50, 64)");
	EXPECT(throws_bad_alloc([n] {
		      align_val_t al{4096};
		      ::operator delete[](opaque(::operator new[](n, al)), al);
	      }),
	      "operator new[](2^50, 4096)");
	EXPECT(throws_bad_alloc([] { ::operator delete(opaque(::operator new(opaque(SIZE_MAX)))); }),
	      "operator new(SIZE_MAX)");
	EXPECT(throws_bad_alloc([] {
		      align_val_t al{4096};
		      ::operator delete(opaque(::operator new(opaque(SIZE_MAX - 4095), al)), al);
	      }),
	      "operator new(SIZE_MAX - 4095, 4096)");
	/* An alignment beyond what any block can have. */
	EXPECT(throws_bad_alloc([] {
		      align_val_t al{opaque(size_t(1) << 45)};
		      ::operator delete(opaque(::operator new(64, al)), al);
	      }),
	      "operator new(64, 2^45)");

	/* (Results kept opaque: a compiler may elide an unused allocation and
	 * assume it succeeded.) */
	void *p = opaque(::operator new(n, nothrow));
	EXPECT(p == nullptr, "operator new(2^50, nothrow) gave %p", p);
	::operator delete(p);
	p = opaque(::operator new[](n, nothrow));
	EXPECT(p == nullptr, "operator new[](2^50, nothrow) gave %p", p);
	::operator delete[](p);
	align_val_t al{64};
	p = opaque(::operator new(n, al, nothrow));
	EXPECT(p == nullptr, "operator new(2^50, 64, nothrow) gave %p", p);
	::operator delete(p, al);
	p = opaque(::operator new[](n, al, nothrow));
	EXPECT(p == nullptr, "operator new[](2^50, 64, nothrow) gave %p", p);
	::operator delete[](p, al);
	char *c = opaque(new (nothrow) char[n]);
	EXPECT(c == nullptr, "new (nothrow) char[2^50] gave %p", static_cast<void *>(c));
	delete[] c;
	align_val_t huge_al{opaque(size_t(1) << 45)};
	p = opaque(::operator new(64, huge_al, nothrow));
	EXPECT(p == nullptr, "operator new(64, 2^45, nothrow) gave %p", p);
	::operator delete(p, huge_al);
}

/* ---- 5. the new_handler ------------------------------------------------------------ */

static int handler_calls, handler_limit;

/* Gives up (uninstalls itself) at its handler_limit-th call. */
static void counting_handler()
{
	if (++handler_calls >= handler_limit)
		std::set_new_handler(nullptr);
}

struct custom_bad_alloc : std::bad_alloc {
	const char *what() const noexcept override { return "custom_bad_alloc"; }
};

static void throwing_handler()
{
	handler_calls++;
	throw custom_bad_alloc();
}

/* The eight forms on an impossible size: all must end the same way. */
static const char *const form_names[8] = {
	"new", "new[]", "new(align)", "new[](align)",
	"new(nothrow)", "new[](nothrow)", "new(align, nothrow)", "new[](align, nothrow)",
};

static void *call_form(int form, size_t n)
{
	align_val_t al{4096};
	switch (form) {
	case 0: return ::operator new(n);
	case 1: return ::operator new[](n);
	case 2: return ::operator new(n, al);
	case 3: return ::operator new[](n, al);
	case 4: return ::operator new(n, nothrow);
	case 5: return ::operator new[](n, nothrow);
	case 6: return ::operator new(n, al, nothrow);
	default: return ::operator new[](n, al, nothrow);
	}
}

static void free_form(int form, void *p, size_t n)
{
	if (form == 2 || form == 6)
		::operator delete(p, n, align_val_t(4096));
	else if (form == 3 || form == 7)
		::operator delete[](p, n, align_val_t(4096));
	else if (form == 1 || form == 5)
		::operator delete[](p, n);
	else
		::operator delete(p, n);
}

static void test_handler_loop()
{
	size_t n = opaque(impossible);
	for (int form = 0; form < 8; form++) {
		bool nothrow_form = form >= 4;
		handler_calls = 0;
		handler_limit = 5;
		std::set_new_handler(counting_handler);
		bool threw = false;
		void *p = nullptr;
		try {
			p = call_form(form, n);
		} catch (const std::bad_alloc &) {
			threw = true;
		}
		EXPECT(std::get_new_handler() == nullptr, "%s: the handler is still installed",
		      form_names[form]);
		std::set_new_handler(nullptr);
		EXPECT(handler_calls == 5, "%s: the handler was called %d times, want 5", form_names[form],
		      handler_calls);
		EXPECT(p == nullptr, "%s returned %p", form_names[form], p);
		EXPECT(threw == !nothrow_form, "%s %s", form_names[form],
		      nothrow_form ? "threw" : "did not throw std::bad_alloc");
	}

	/* The handler's own exception propagates from the throwing forms. */
	for (int form = 0; form < 4; form++) {
		handler_calls = 0;
		std::set_new_handler(throwing_handler);
		const char *caught = "nothing";
		try {
			call_form(form, n);
		} catch (const std::bad_alloc &e) {
			caught = e.what();
		}
		std::set_new_handler(nullptr);
		EXPECT(std::strcmp(caught, "custom_bad_alloc") == 0 && handler_calls == 1,
		      "%s: caught %s after %d handler calls", form_names[form], caught, handler_calls);
	}
}

/* The pool really exhausted: the handler frees a reserve, the retry succeeds. */
static const size_t reserve_size = size_t(8) << 20;
static void *reserve_block;
static int reserve_release_at;

static void reserve_handler()
{
	handler_calls++;
	if (handler_calls >= reserve_release_at && reserve_block) {
		::operator delete(reserve_block, reserve_size);
		reserve_block = nullptr;
	} else if (handler_calls > 100) {
		std::set_new_handler(nullptr);
	}
}

static void test_handler_reserve()
{
	/* Everything the test needs is allocated before the pool is full: nothing
	 * below allocates (no output) until the fill is freed. */
	reserve_block = ::operator new(reserve_size);
	std::vector<void *> fill;
	fill.reserve(1024);
	struct Outcome {
		void *p;
		int calls;
	} outcome[8][2];
	void *when_full = reinterpret_cast<void *>(1);

	for (;;) { /* the pool (RTALLOC_POOL_MAX) in blocks of 1 MiB */
		void *p = ::operator new(size_t(1) << 20, nothrow);
		if (!p || fill.size() == fill.capacity()) {
			::operator delete(p);
			break;
		}
		fill.push_back(p);
	}
	bool exhausted = fill.size() < fill.capacity();
	if (exhausted) {
		when_full = ::operator new(reserve_size, nothrow); /* no handler: must fail */
		for (int form = 0; form < 8; form++) {
			for (int release_at : {1, 3}) {
				handler_calls = 0;
				reserve_release_at = release_at;
				std::set_new_handler(reserve_handler);
				void *p = nullptr;
				try {
					p = call_form(form, reserve_size);
				} catch (const std::bad_alloc &) {
				}
				std::set_new_handler(nullptr);
				outcome[form][release_at == 3] = {p, handler_calls};
				if (p) { /* the reserve again */
					free_form(form, p, reserve_size);
					reserve_block = ::operator new(reserve_size, nothrow);
				}
				if (!reserve_block)
					break;
			}
			if (!reserve_block)
				break;
		}
	}
	for (void *p : fill)
		::operator delete(p, size_t(1) << 20);
	if (when_full && when_full != reinterpret_cast<void *>(1))
		::operator delete(when_full, reserve_size);
	if (reserve_block)
		::operator delete(reserve_block, reserve_size);

	EXPECT(exhausted, "the pool did not run out after %zu MiB: is RTALLOC_POOL_MAX=64M set?",
	      fill.size());
	if (!exhausted)
		return;
	EXPECT(fill.size() >= 32, "only %zu MiB could be allocated", fill.size());
	EXPECT(when_full == nullptr, "the pool was full but a reserve-sized block was still there");
	for (int form = 0; form < 8; form++)
		for (int k = 0; k < 2; k++) {
			int want = k ? 3 : 1;
			EXPECT(outcome[form][k].p != nullptr && outcome[form][k].calls == want,
			      "%s with a handler freeing the reserve at call %d: %p after %d calls",
			      form_names[form], want, outcome[form][k].p, outcome[form][k].calls);
		}
	void *big = ::operator new(size_t(32) << 20);
	check_block(big, size_t(32) << 20, 16, "operator new(32 MiB) after the exhaustion");
	::operator delete(big);
	EXPECT(heap_check() == 0, "rtalloc_check failed after the exhaustion");
}

/* ---- 6. a workload with an expected output ---------------------------------- */

struct Shape {
	virtual ~Shape() = default;
	virtual long area() const = 0;
	virtual std::string name() const = 0;
};
struct Rect : Shape {
	long w, h;
	Rect(long w_, long h_) : w(w_), h(h_) {}
	long area() const override { return w * h; }
	std::string name() const override { return "rect" + std::to_string(w) + "x" + std::to_string(h); }
};
struct Square : Rect {
	explicit Square(long s) : Rect(s, s) {}
	std::string name() const override { return "square" + std::to_string(w); }
};

/* Throws from `depth' frames down, each holding strings to destroy. */
[[noreturn]] static void fail_deep(int depth, int i, std::string trail)
{
	std::vector<std::string> junk(3, std::string(40, char('a' + depth)));
	trail += junk[1].substr(0, 1);
	if (depth == 0)
		throw std::runtime_error("error #" + std::to_string(i) + " " + trail);
	fail_deep(depth - 1, i, trail);
}

static std::string workload()
{
	std::ostringstream out;

	std::map<std::string, int> words;
	std::istringstream text("the quick brown fox jumps over the lazy dog while the fox sleeps");
	for (std::string w; text >> w;)
		words[w]++;
	for (const auto &kv : words)
		out << kv.first << '=' << kv.second << ' ';
	out << '\n';

	std::vector<long> v;
	for (long i = 0; i < 100000; i++)
		v.push_back((i * 7919) % 100003);
	std::sort(v.begin(), v.end());
	out << v.front() << ' ' << v[50000] << ' ' << v.back() << ' '
	    << std::accumulate(v.begin(), v.end(), 0L) << '\n';

	std::unordered_map<int, std::string> squares;
	for (int i = 0; i < 20000; i++)
		squares[i] = std::to_string(long(i) * i);
	size_t digits = 0;
	for (const auto &kv : squares)
		digits += kv.second.size();
	out << squares.size() << ' ' << digits << ' ' << squares[12345] << '\n';

	std::vector<std::unique_ptr<Shape>> shapes;
	for (long i = 1; i <= 50; i++) {
		if (i % 3)
			shapes.push_back(std::make_unique<Rect>(i, i + 1));
		else
			shapes.push_back(std::make_unique<Square>(i));
	}
	long area = 0;
	for (const auto &s : shapes)
		area += s->area();
	out << shapes[2]->name() << ' ' << shapes[3]->name() << ' ' << area << '\n';
	shapes.erase(shapes.begin(), shapes.begin() + 25);

	std::vector<std::shared_ptr<std::string>> shared;
	auto one = std::make_shared<std::string>("shared");
	for (int i = 0; i < 100; i++)
		shared.push_back(i % 2 ? one : std::make_shared<std::string>(std::to_string(i)));
	out << one.use_count() << ' ' << *shared[98] << '\n';

	int caught = 0;
	std::string messages;
	for (int i = 0; i < 2000; i++) {
		try {
			fail_deep(i % 7, i, "");
		} catch (const std::runtime_error &e) {
			caught++;
			if (i % 500 == 0)
				messages += std::string(e.what()) + ";";
		}
	}
	out << caught << ' ' << messages << '\n';

	std::list<std::string> lst;
	std::deque<int> dq;
	std::vector<std::function<long(long)>> fns;
	for (int i = 0; i < 1000; i++) {
		lst.push_back(std::string(size_t(i % 50), 'x'));
		dq.push_front(i);
		if (i % 100 == 0)
			fns.push_back([i, big = std::string(200, 'y')](long x) {
				return x * i + long(big.size());
			});
	}
	lst.remove_if([](const std::string &s) { return s.size() % 2; });
	long fsum = 0;
	for (const auto &f : fns)
		fsum += f(3);
	out << lst.size() << ' ' << dq.front() << ' ' << dq.back() << ' ' << fsum << '\n';

	std::string s;
	for (int i = 0; i < 50000; i++)
		s += std::to_string(i % 10);
	s.shrink_to_fit();
	out << s.size() << ' ' << std::count(s.begin(), s.end(), '7') << '\n';

	/* Threads: blocks allocated by one thread, freed by another. */
	std::mutex m;
	std::vector<std::unique_ptr<std::vector<long>>> handed;
	std::vector<std::thread> threads;
	for (int t = 0; t < 4; t++)
		threads.emplace_back([t, &m, &handed] {
			for (int i = 0; i < 2000; i++) {
				auto blk = std::make_unique<std::vector<long>>(size_t(1 + i % 300), long(t));
				std::lock_guard<std::mutex> lock(m);
				handed.push_back(std::move(blk));
			}
		});
	for (auto &th : threads)
		th.join();
	long tsum = 0;
	for (const auto &blk : handed)
		tsum += std::accumulate(blk->begin(), blk->end(), 0L);
	out << handed.size() << ' ' << tsum << '\n';
	handed.clear();
	return out.str();
}

/* From `cxx_test --print-workload' run without librtalloc (glibc's malloc). */
static const char expected_output[] =
	"brown=1 dog=1 fox=2 jumps=1 lazy=1 over=1 quick=1 sleeps=1 the=3 while=1 \n"
	"0 50000 100002 4999997508\n"
	"20000 165374 152399025\n"
	"square3 rect4x5 43792\n"
	"51 98\n"
	"2000 error #0 a;error #500 dcba;error #1000 gfedcba;error #1500 cba;\n"
	"500 999 0 15500\n"
	"50000 5000\n"
	"8000 1746000\n";

static void test_workload()
{
	std::string got = workload();
	EXPECT(got == expected_output, "the workload printed:\n%s\ninstead of:\n%s", got.c_str(),
	      expected_output);
	EXPECT(heap_check() == 0, "rtalloc_check failed after the workload");
}

/* ---- 7. misuse aborts ------------------------------------------------------------ */

static void sized_too_large(void *)
{
	void *p = ::operator new(24);
	::operator delete(opaque(p), opaque(size_t(1000)));
}
static void sized_array_too_large(void *)
{
	void *p = ::operator new[](100);
	::operator delete[](opaque(p), opaque(size_t(5000)));
}
static void sized_huge_too_large(void *)
{
	void *p = ::operator new(100000);
	::operator delete(opaque(p), opaque(size_t(1) << 20));
}
static void sized_aligned_too_large(void *)
{
	void *p = ::operator new(100, align_val_t(256));
	::operator delete(opaque(p), opaque(size_t(300)), align_val_t(256));
}
static void double_delete(void *)
{
	void *p = ::operator new(40);
	::operator delete(opaque(p));
	::operator delete(opaque(p));
}
static void double_delete_sized(void *)
{
	void *p = ::operator new(40);
	::operator delete(opaque(p), size_t(40));
	::operator delete(opaque(p), size_t(40));
}
static void double_delete_array(void *)
{
	void *p = ::operator new[](3000);
	::operator delete[](opaque(p));
	::operator delete[](opaque(p));
}
static void interior_delete(void *)
{
	char *p = static_cast<char *>(::operator new(64));
	::operator delete(opaque(p + 16));
}
static void misaligned_delete(void *)
{
	void *p;
	do /* a 16-byte block that is not 4096-aligned (one page has 256) */
		p = ::operator new(16);
	while (reinterpret_cast<uintptr_t>(p) % 4096 == 0);
	::operator delete(opaque(p), align_val_t(4096));
}
static void new_alignment_not_pow2(void *) { (void)opaque(::operator new(64, align_val_t(opaque(48)))); }
static void new_array_alignment_zero(void *)
{
	(void)opaque(::operator new[](64, align_val_t(opaque(0)), nothrow));
}
static void delete_alignment_not_pow2(void *)
{
	void *p = ::operator new(64, align_val_t(64));
	::operator delete(opaque(p), align_val_t(opaque(96)));
}

static void test_aborts()
{
	EXPECT_ABORT(sized_too_large, nullptr, "operator delete(): size 1000 is larger than the block");
	EXPECT_ABORT(sized_array_too_large, nullptr,
		     "operator delete[](): size 5000 is larger than the block");
	EXPECT_ABORT(sized_huge_too_large, nullptr,
		     "operator delete(): size 1048576 is larger than the block");
	EXPECT_ABORT(sized_aligned_too_large, nullptr,
		     "operator delete(): size 300 or alignment 256 does not match the block");
	EXPECT_ABORT(double_delete, nullptr, "operator delete(): double free");
	EXPECT_ABORT(double_delete_sized, nullptr, "operator delete(): double free");
	EXPECT_ABORT(double_delete_array, nullptr, "operator delete[](): double free");
	EXPECT_ABORT(interior_delete, nullptr, "operator delete(): invalid pointer");
	EXPECT_ABORT(misaligned_delete, nullptr, "operator delete(): block 0x");
	EXPECT_ABORT(new_alignment_not_pow2, nullptr,
		     "operator new(): alignment 48 is not a power of two");
	EXPECT_ABORT(new_array_alignment_zero, nullptr,
		     "operator new[](): alignment 0 is not a power of two");
	EXPECT_ABORT(delete_alignment_not_pow2, nullptr,
		     "operator delete(): alignment 96 is not a power of two");
}

int main(int argc, char **argv)
{
	/* The expected output comes from here, run without librtalloc. */
	if (argc > 1 && std::strcmp(argv[1], "--print-workload") == 0) {
		std::fputs(workload().c_str(), stdout);
		return 0;
	}
	ct_name = argc > 1 ? argv[1] : "cxx";
	ct_need_rtalloc();
	usable_size = api<size_t (*)(void *)>("rtalloc_malloc_usable_size");
	heap_check = api<int (*)(void)>("rtalloc_check");
	REQUIRE(usable_size && heap_check, "rtalloc_* API not found");

	test_resolution();
	test_forms();
	test_alignment();
	test_impossible();
	test_handler_loop();
	test_handler_reserve();
	test_workload();
	test_aborts();
	return ct_result();
}
