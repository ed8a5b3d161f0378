/* SPDX-License-Identifier: MIT */
/*
 * cxx.c - C++ operator new and delete, written in C.
 *
 * librtalloc.so exports the twenty replaceable global forms under their
 * Itanium C++ ABI names (size_t is `unsigned long', "m"; std::align_val_t is
 * an enum of size_t, passed as one; std::nothrow_t const& is a pointer).  They
 * are in C so that a C program linked with librtalloc gains no dependency on
 * libstdc++: the library's NEEDED list stays libc alone.
 *
 * The C++ runtime.  What only the C++ runtime can do -- read the new_handler
 * (std::get_new_handler) and throw std::bad_alloc (std::__throw_bad_alloc) --
 * is reached through weak references, bound when the program has the runtime
 * at start-up (every C++ program).  A C program that loads C++ code later
 * (dlopen of a C++ plugin, with RTLD_LOCAL even) has them looked up at the
 * time of a failure, which is the only time they are needed.  With no runtime
 * at all, a failing throwing form prints a message and aborts: only C++ code
 * calls operator new, so that cannot happen to a program that does not have it.
 *
 * Unwinding.  std::bad_alloc (or a new_handler's exception) is thrown from a
 * call made by these C functions, so the unwinder must step through their
 * frames: that needs only their unwind tables (.eh_frame), which gcc and
 * clang emit for every function on x86-64 Linux (-fasynchronous-unwind-tables
 * is the default there).  They hold no resource to release, so -fexceptions
 * (cleanups in C) is not needed.  tests/cxx throws through every throwing form.
 *
 * Semantics, as libstdc++ (the C++ standard's default behaviour):
 *   new        loop { allocate; if it worked, return; no new_handler: throw
 *              std::bad_alloc; else call the handler, which may free memory }
 *   nothrow    the same loop, but null instead of the throw;
 *   aligned    the alignment must be a power of two (anything else is
 *              undefined behaviour: reported and aborted); the block is one of
 *              librtalloc's, aligned to its size, at least as large as the
 *              alignment;
 *   delete     every form frees; the size and alignment arguments are checked
 *              against the block (see "Sized and aligned delete" below).
 *
 * Partial replacement.  The standard makes the derived forms forward to the
 * base ones: new[] calls operator new, the nothrow forms call the throwing
 * ones, sized/nothrow delete and delete[] call operator delete(void *) -- so
 * that a program that replaces only operator new(size_t) and operator
 * delete(void *), as most C++98-era code does, gets its own functions for
 * `new T[n]' and for the sized delete gcc emits for `delete p'.  Here the
 * derived forms do their work inline (one call, validated) as long as the
 * forms they would forward to are librtalloc's own; when the program has
 * replaced one (its definition won the symbol lookup), they call that one,
 * exactly like libstdc++.  Without this, a program whose operator new returns
 * memory of its own (a header before the object, a private pool) would have
 * that memory handed to librtalloc's sized delete and aborted.  The test is
 * one load of a GOT entry and a compare.
 *
 * Limits of doing this in C (documented, tested where possible):
 *   - a nothrow form cannot catch.  It does not throw itself, but a
 *     new_handler that throws, or a replaced throwing form it forwards to
 *     that throws, propagates out of it (libstdc++ would return null).  A
 *     handler that frees memory and returns -- the usual one -- works.
 *   - the lookup of a replaced form sees what the dynamic linker bound, so
 *     this file must keep its exported names interposable: built with
 *     -fno-semantic-interposition or linked with -Bsymbolic(-functions),
 *     librtalloc would never see a replacement (tests/cxx would fail).
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "fastpath.h"
#include "os.h"

typedef void (*rt_new_handler)(void);

/* ---- the C++ runtime, when there is one --------------------------------- */

/* std::get_new_handler() and std::__throw_bad_alloc(), exported by libstdc++
 * (libc++ has the same names; not tested here).  Weak and undefined in a C
 * program: their address is then null. */
extern rt_new_handler rt_cxx_get_new_handler(void) __asm__("_ZSt15get_new_handlerv")
	__attribute__((weak, visibility("default")));
extern RT_NORETURN void rt_cxx_throw_bad_alloc(void) __asm__("_ZSt17__throw_bad_allocv")
	__attribute__((weak, visibility("default")));

#define SYM_GET_HANDLER "_ZSt15get_new_handlerv"
#define SYM_THROW_BAD_ALLOC "_ZSt17__throw_bad_allocv"

struct cxx_runtime {
	rt_new_handler (*get_handler)(void);
	void (*throw_bad_alloc)(void);
};

/* The runtime's functions, or nulls.  Called only when an allocation failed:
 * the weak references first (bound at start-up), then the global scope (C++
 * code loaded by dlopen with RTLD_GLOBAL), then libstdc++ itself if something
 * loaded it privately (RTLD_LOCAL: a C++ plugin of a C program).  Nothing is
 * cached: a library loaded by dlopen may be unloaded again. */
static void cxx_runtime(struct cxx_runtime *rt)
{
	rt->get_handler = rt_cxx_get_new_handler;
	rt->throw_bad_alloc = rt_cxx_throw_bad_alloc;
	if (rt->get_handler && rt->throw_bad_alloc)
		return;
	void *sym_h = dlsym(RTLD_DEFAULT, SYM_GET_HANDLER);
	void *sym_t = dlsym(RTLD_DEFAULT, SYM_THROW_BAD_ALLOC);
	void *lib = NULL;
	if (!sym_h || !sym_t) {
		/* Already loaded, or nothing: RTLD_NOLOAD never loads a library. */
		lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
		if (lib) {
			sym_h = dlsym(lib, SYM_GET_HANDLER);
			sym_t = dlsym(lib, SYM_THROW_BAD_ALLOC);
		}
	}
	/* (A function pointer read from dlsym's void *, the POSIX way.) */
	__builtin_memcpy(&rt->get_handler, &sym_h, sizeof(sym_h));
	__builtin_memcpy(&rt->throw_bad_alloc, &sym_t, sizeof(sym_t));
	/* The library stays loaded: what loaded it still holds it, and it is
	 * needed only until the caller (its own code) returns. */
	if (lib)
		dlclose(lib);
}

/* ---- allocation ----------------------------------------------------------- */


RT_COLD RT_NORETURN static void bad_alignment(const char *call, size_t align)
{
	rt_say("%s(): alignment %zu is not a power of two (undefined behaviour in C++); aborting",
	       call, align);
	rt_die();
}

static inline void check_alignment(const char *call, size_t align)
{
	if (rt_unlikely(!rt_pow2(align)))
		bad_alignment(call, align);
}

/* align 0: the default alignment (malloc's). */
static inline void *allocate(size_t size, size_t align)
{
	return align ? rt_aligned_alloc(align, size) : rt_malloc_fast(size);
}

/* The first attempt failed: the new_handler loop.  Returns a block, or null
 * (nothrow only); throws std::bad_alloc, or aborts when the C++ runtime is not
 * there to throw it. */
RT_COLD static void *new_failed(size_t size, size_t align, bool nothrow, const char *call)
{
	/* bound: one turn per call of the new_handler, which must make memory
	 * available, throw, terminate or uninstall itself (the C++ contract) */
	for (;;) {
		struct cxx_runtime rt;
		cxx_runtime(&rt);
		rt_new_handler handler = rt.get_handler ? rt.get_handler() : NULL;
		if (!handler) {
			if (nothrow)
				return NULL;
			if (rt.throw_bad_alloc)
				rt.throw_bad_alloc();
			rt_say("%s(): out of memory for %zu bytes, and no C++ runtime is loaded to throw "
			       "std::bad_alloc; aborting", call, size);
			rt_die();
		}
		handler();
		void *p = allocate(size, align);
		if (p)
			return p;
	}
}

static inline void *new_plain(size_t size, bool nothrow, const char *call)
{
	void *p = rt_malloc_fast(size);
	if (rt_likely(p != NULL))
		return p;
	return new_failed(size, 0, nothrow, call);
}

static inline void *new_aligned(size_t size, size_t align, bool nothrow, const char *call)
{
	check_alignment(call, align);
	void *p = rt_aligned_alloc(align, size);
	if (rt_likely(p != NULL))
		return p;
	return new_failed(size, align, nothrow, call);
}

/* ---- deallocation -----------------------------------------------------------
 *
 * Sized and aligned delete.  The size and alignment are checked against the
 * block like free_sized and free_aligned_sized do, with the operator's name in
 * the message: a size larger than the block, or a pointer not aligned to the
 * alignment given, aborts.  This cannot abort a valid program:
 *   - the standard requires the size to be the one passed to operator new (the
 *     compiler passes sizeof of the dynamic type when the destructor is
 *     virtual, of the static type otherwise -- which is the dynamic one, or
 *     the delete is undefined behaviour already), and array cookies are
 *     counted on both sides; every block is at least as large as its request;
 *   - a size smaller than the block is accepted: blocks are rounded up, and
 *     deleting a derived object through a base pointer without a virtual
 *     destructor (undefined, yet common) passes the base's smaller size --
 *     such programs keep working, as they do with glibc and libstdc++;
 *   - memory from a replaced operator new never reaches these checks: the
 *     sized forms forward to the program's operator delete then (see above);
 *   - pointers outside librtalloc's space (allocated before it, or by another
 *     allocator) are not checked, only freed as free() does.
 */

RT_COLD RT_NORETURN static void bad_delete(const char *call, const void *p, size_t size,
					   size_t have, size_t align)
{
	if (align > 1 && size)
		rt_say("%s(): size %zu or alignment %zu does not match the block %p of %zu bytes; aborting",
		       call, size, align, p, have);
	else if (align > 1)
		rt_say("%s(): block %p is not aligned to %zu; aborting", call, p, align);
	else
		rt_say("%s(): size %zu is larger than the block %p of %zu bytes; aborting", call, size, p,
		       have);
	rt_die();
}

/* Not a cached class, or a suspicious size or alignment: the full check. */
RT_COLD static void check_block_slow(const void *p, size_t size, size_t align, const char *call)
{
	size_t have = rt_block_size(p, call); /* aborts on anything but a live block */
	if (size > have || ((uintptr_t)p & (align - 1)))
		bad_delete(call, p, size, have, align);
}

/* size 0: not given; align 1: not given.  Inline for the cached classes (the
 * block size is the class's; the free path validates the pointer itself). */
static inline void check_block(const void *p, size_t size, size_t align, const char *call)
{
	const struct rt_page *pg = rt_page_of(p); /* null is outside the space */
	if (!pg)
		return;
	unsigned c = rt_load(&pg->cls);
	if (rt_unlikely(c == 0 || c > RT_NCLASS || size > rt_class_size(c) ||
			((uintptr_t)p & (align - 1))))
		check_block_slow(p, size, align, call);
}

static inline void delete_sized(void *p, size_t size, const char *call)
{
	check_block(p, size, 1, call);
	rt_free_fast(p, call);
}

/* size 0: the unsized aligned forms (only the alignment is checked). */
static inline void delete_aligned(void *p, size_t size, size_t align, const char *call)
{
	check_alignment(call, align);
	check_block(p, size, align, call);
	rt_free_fast(p, call);
}

/* ---- the twenty forms ---------------------------------------------------------
 *
 * Each is a static function here, exported under its mangled name by an alias
 * (NAME_sym).  &NAME_sym is where the dynamic linker bound that name -- the
 * program's definition if it has one -- read from the GOT; &NAME is ours. */

#define CXX_EXPORT(impl, mangled)                                                             \
	extern __typeof(impl) impl##_sym __asm__(mangled)                                      \
		__attribute__((alias(#impl), visibility("default")))

/* The definition the program uses for impl (an optimisation barrier keeps the
 * compiler from assuming it is ours: the point is to ask the GOT). */
#define BOUND(impl)                                                                           \
	({                                                                                    \
		__typeof(&impl) bound_ = &impl##_sym;                                         \
		__asm__("" : "+r"(bound_));                                                   \
		bound_;                                                                       \
	})
#define REPLACED(impl) rt_unlikely(BOUND(impl) != &impl)

static void *op_new(size_t size);
static void *op_new_array(size_t size);
static void *op_new_aligned(size_t size, size_t align);
static void *op_new_array_aligned(size_t size, size_t align);
static void op_delete(void *p);
static void op_delete_array(void *p);
static void op_delete_aligned(void *p, size_t align);
static void op_delete_array_aligned(void *p, size_t align);
CXX_EXPORT(op_new, "_Znwm");
CXX_EXPORT(op_new_array, "_Znam");
CXX_EXPORT(op_new_aligned, "_ZnwmSt11align_val_t");
CXX_EXPORT(op_new_array_aligned, "_ZnamSt11align_val_t");
CXX_EXPORT(op_delete, "_ZdlPv");
CXX_EXPORT(op_delete_array, "_ZdaPv");
CXX_EXPORT(op_delete_aligned, "_ZdlPvSt11align_val_t");
CXX_EXPORT(op_delete_array_aligned, "_ZdaPvSt11align_val_t");

/* operator new(size_t) */
static void *op_new(size_t size) { return new_plain(size, false, "operator new"); }

/* operator new[](size_t): operator new(size) */
static void *op_new_array(size_t size)
{
	if (REPLACED(op_new))
		return BOUND(op_new)(size);
	return new_plain(size, false, "operator new[]");
}

/* operator new(size_t, nothrow_t const &): operator new(size), null on failure */
static void *op_new_nothrow(size_t size, const void *nt)
{
	(void)nt;
	if (REPLACED(op_new))
		return BOUND(op_new)(size); /* cannot catch: see the top of the file */
	return new_plain(size, true, "operator new");
}
CXX_EXPORT(op_new_nothrow, "_ZnwmRKSt9nothrow_t");

/* operator new[](size_t, nothrow_t const &): operator new[](size), null on failure */
static void *op_new_array_nothrow(size_t size, const void *nt)
{
	(void)nt;
	if (REPLACED(op_new_array) || REPLACED(op_new))
		return BOUND(op_new_array)(size);
	return new_plain(size, true, "operator new[]");
}
CXX_EXPORT(op_new_array_nothrow, "_ZnamRKSt9nothrow_t");

/* operator new(size_t, align_val_t) */
static void *op_new_aligned(size_t size, size_t align)
{
	return new_aligned(size, align, false, "operator new");
}

/* operator new[](size_t, align_val_t): operator new(size, align) */
static void *op_new_array_aligned(size_t size, size_t align)
{
	if (REPLACED(op_new_aligned))
		return BOUND(op_new_aligned)(size, align);
	return new_aligned(size, align, false, "operator new[]");
}

/* operator new(size_t, align_val_t, nothrow_t const &) */
static void *op_new_aligned_nothrow(size_t size, size_t align, const void *nt)
{
	(void)nt;
	if (REPLACED(op_new_aligned))
		return BOUND(op_new_aligned)(size, align);
	return new_aligned(size, align, true, "operator new");
}
CXX_EXPORT(op_new_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t");

/* operator new[](size_t, align_val_t, nothrow_t const &) */
static void *op_new_array_aligned_nothrow(size_t size, size_t align, const void *nt)
{
	(void)nt;
	if (REPLACED(op_new_array_aligned) || REPLACED(op_new_aligned))
		return BOUND(op_new_array_aligned)(size, align);
	return new_aligned(size, align, true, "operator new[]");
}
CXX_EXPORT(op_new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t");

/* operator delete(void *) */
static void op_delete(void *p) { rt_free_fast(p, "operator delete"); }

/* operator delete[](void *): operator delete(p) */
static void op_delete_array(void *p)
{
	if (REPLACED(op_delete)) {
		BOUND(op_delete)(p);
		return;
	}
	rt_free_fast(p, "operator delete[]");
}

/* operator delete(void *, size_t): operator delete(p) */
static void op_delete_sized(void *p, size_t size)
{
	if (REPLACED(op_delete)) {
		BOUND(op_delete)(p);
		return;
	}
	delete_sized(p, size, "operator delete");
}
CXX_EXPORT(op_delete_sized, "_ZdlPvm");

/* operator delete[](void *, size_t): operator delete[](p) */
static void op_delete_array_sized(void *p, size_t size)
{
	if (REPLACED(op_delete_array) || REPLACED(op_delete)) {
		BOUND(op_delete_array)(p);
		return;
	}
	delete_sized(p, size, "operator delete[]");
}
CXX_EXPORT(op_delete_array_sized, "_ZdaPvm");

/* operator delete(void *, nothrow_t const &): operator delete(p) */
static void op_delete_nothrow(void *p, const void *nt)
{
	(void)nt;
	if (REPLACED(op_delete)) {
		BOUND(op_delete)(p);
		return;
	}
	rt_free_fast(p, "operator delete");
}
CXX_EXPORT(op_delete_nothrow, "_ZdlPvRKSt9nothrow_t");

/* operator delete[](void *, nothrow_t const &): operator delete[](p) */
static void op_delete_array_nothrow(void *p, const void *nt)
{
	(void)nt;
	if (REPLACED(op_delete_array) || REPLACED(op_delete)) {
		BOUND(op_delete_array)(p);
		return;
	}
	rt_free_fast(p, "operator delete[]");
}
CXX_EXPORT(op_delete_array_nothrow, "_ZdaPvRKSt9nothrow_t");

/* operator delete(void *, align_val_t) */
static void op_delete_aligned(void *p, size_t align)
{
	delete_aligned(p, 0, align, "operator delete");
}

/* operator delete[](void *, align_val_t): operator delete(p, align) */
static void op_delete_array_aligned(void *p, size_t align)
{
	if (REPLACED(op_delete_aligned)) {
		BOUND(op_delete_aligned)(p, align);
		return;
	}
	delete_aligned(p, 0, align, "operator delete[]");
}

/* operator delete(void *, size_t, align_val_t): operator delete(p, align) */
static void op_delete_sized_aligned(void *p, size_t size, size_t align)
{
	if (REPLACED(op_delete_aligned)) {
		BOUND(op_delete_aligned)(p, align);
		return;
	}
	delete_aligned(p, size, align, "operator delete");
}
CXX_EXPORT(op_delete_sized_aligned, "_ZdlPvmSt11align_val_t");

/* operator delete[](void *, size_t, align_val_t): operator delete[](p, align) */
static void op_delete_array_sized_aligned(void *p, size_t size, size_t align)
{
	if (REPLACED(op_delete_array_aligned) || REPLACED(op_delete_aligned)) {
		BOUND(op_delete_array_aligned)(p, align);
		return;
	}
	delete_aligned(p, size, align, "operator delete[]");
}
CXX_EXPORT(op_delete_array_sized_aligned, "_ZdaPvmSt11align_val_t");

/* operator delete(void *, align_val_t, nothrow_t const &): operator delete(p, align) */
static void op_delete_aligned_nothrow(void *p, size_t align, const void *nt)
{
	(void)nt;
	if (REPLACED(op_delete_aligned)) {
		BOUND(op_delete_aligned)(p, align);
		return;
	}
	delete_aligned(p, 0, align, "operator delete");
}
CXX_EXPORT(op_delete_aligned_nothrow, "_ZdlPvSt11align_val_tRKSt9nothrow_t");

/* operator delete[](void *, align_val_t, nothrow_t const &): operator delete[](p, align) */
static void op_delete_array_aligned_nothrow(void *p, size_t align, const void *nt)
{
	(void)nt;
	if (REPLACED(op_delete_array_aligned) || REPLACED(op_delete_aligned)) {
		BOUND(op_delete_array_aligned)(p, align);
		return;
	}
	delete_aligned(p, 0, align, "operator delete[]");
}
CXX_EXPORT(op_delete_array_aligned_nothrow, "_ZdaPvSt11align_val_tRKSt9nothrow_t");
