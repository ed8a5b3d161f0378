/* SPDX-License-Identifier: MIT */
/*
 * cxx_cprog.c - a C program linked with librtalloc: no C++ runtime anywhere.
 *
 * librtalloc's operator new/delete still work when called (by their mangled
 * names), the nothrow forms return NULL on failure, and a throwing form that
 * fails prints why and aborts: there is no std::bad_alloc to throw.
 * (check_needed.sh checks that neither librtalloc.so nor this program needs
 * libstdc++.)
 */
#include <stddef.h>
#include <stdint.h>

#include "cxx_util.h"
#include "rtalloc.h"

extern void *op_new(size_t) __asm__("_Znwm");
extern void *op_new_array(size_t) __asm__("_Znam");
extern void *op_new_nothrow(size_t, const void *) __asm__("_ZnwmRKSt9nothrow_t");
extern void *op_new_aligned(size_t, size_t) __asm__("_ZnwmSt11align_val_t");
extern void *op_new_array_aligned_nothrow(size_t, size_t, const void *)
	__asm__("_ZnamSt11align_val_tRKSt9nothrow_t");
extern void op_delete(void *) __asm__("_ZdlPv");
extern void op_delete_sized(void *, size_t) __asm__("_ZdlPvm");
extern void op_delete_array(void *) __asm__("_ZdaPv");
extern void op_delete_sized_aligned(void *, size_t, size_t) __asm__("_ZdlPvmSt11align_val_t");

static const char nothrow_tag = 0; /* stands for std::nothrow */

/* clang knows _Znwm & co. by name even in C: it may elide an allocation that
 * is not used, and assume it succeeded.  The results go through this. */
static void *kept(void *p)
{
	__asm__ volatile("" : "+r"(p));
	return p;
}
static const size_t impossible = (size_t)1 << 50;

static void throwing_new_fails(void *arg)
{
	(void)arg;
	kept(op_new(impossible));
}

static void throwing_new_array_fails(void *arg)
{
	(void)arg;
	kept(op_new_array(impossible));
}

static void throwing_new_aligned_fails(void *arg)
{
	(void)arg;
	kept(op_new_aligned(impossible, 4096));
}

int main(int argc, char **argv)
{
	ct_name = argc > 1 ? argv[1] : "cxx-cprog";
	ct_need_rtalloc();
	EXPECT(!ct_sym("_ZSt15get_new_handlerv") && !ct_sym("_ZSt17__throw_bad_allocv"),
	      "a C++ runtime is loaded in a C program");
	EXPECT(ct_is_rtalloc(ct_file_of(ct_sym("_Znwm"), NULL)), "operator new is not librtalloc's");

	EXPECT(rtalloc_version() == RTALLOC_VERSION, "librtalloc version %#x", rtalloc_version());
	char *p = kept(op_new(100));
	EXPECT(p != NULL, "operator new(100) failed");
	memset(p, 1, 100);
	op_delete_sized(kept(p), 100);
	p = kept(op_new_array(5000));
	EXPECT(p != NULL, "operator new[](5000) failed");
	memset(p, 2, 5000);
	op_delete_array(kept(p));
	p = kept(op_new_aligned(100, 8192));
	EXPECT(p && (uintptr_t)p % 8192 == 0, "operator new(100, 8192) gave %p", (void *)p);
	op_delete_sized_aligned(kept(p), 100, 8192);
	p = kept(op_new_nothrow(64, &nothrow_tag));
	EXPECT(p != NULL, "operator new(64, nothrow) failed");
	op_delete(kept(p));

	p = kept(op_new_nothrow(impossible, &nothrow_tag));
	EXPECT(p == NULL, "nothrow new of 2^50 bytes gave %p", (void *)p);
	p = kept(op_new_array_aligned_nothrow(impossible, 64, &nothrow_tag));
	EXPECT(p == NULL, "nothrow aligned new[] of 2^50 bytes gave %p", (void *)p);

	EXPECT_ABORT(throwing_new_fails, NULL,
		     "operator new(): out of memory for 1125899906842624 bytes, and no C++ runtime");
	EXPECT_ABORT(throwing_new_array_fails, NULL, "operator new[](): out of memory");
	EXPECT_ABORT(throwing_new_aligned_fails, NULL, "operator new(): out of memory");
	return ct_result();
}
