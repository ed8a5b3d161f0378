/* SPDX-License-Identifier: MIT */
/*
 * cxx_dlhost.c PLUGIN local|global - a C program (no C++ runtime at start-up)
 * that loads C++ code with dlopen: see cxx_plugin.cpp.
 */
#include "cxx_util.h"

#ifdef CT_LINKED
#include "rtalloc.h"
#endif

static void *need(void *lib, const char *name)
{
	void *f = dlsym(lib, name);
	REQUIRE(f != NULL, "%s not in the plugin", name);
	return f;
}

static int call(void *lib, const char *name)
{
	int (*f)(void);
	void *sym = need(lib, name);
	memcpy(&f, &sym, sizeof f);
	return f();
}

int main(int argc, char **argv)
{
	REQUIRE(argc == 4, "usage: cxx_dlhost PLUGIN local|global NAME");
	ct_name = argv[3];
#ifdef CT_LINKED
	/* A reference, or --as-needed drops librtalloc from the NEEDED list. */
	EXPECT(rtalloc_version() == RTALLOC_VERSION, "librtalloc version %#x", rtalloc_version());
#endif
	ct_need_rtalloc();
	EXPECT(!ct_sym("_ZSt15get_new_handlerv"), "a C++ runtime is loaded before the plugin");
	int global = strcmp(argv[2], "global") == 0;
	void *lib = dlopen(argv[1], RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
	REQUIRE(lib != NULL, "dlopen %s: %s", argv[1], dlerror());
	EXPECT(!ct_sym("_ZSt15get_new_handlerv") == !global,
	      "the C++ runtime should%s be in the global scope", global ? "" : " not");

	EXPECT(call(lib, "plugin_uses_rtalloc"), "the plugin's operator new is not librtalloc's");
	EXPECT(call(lib, "plugin_bad_alloc"), "std::bad_alloc was not thrown from every form");
	int n = call(lib, "plugin_handler_calls");
	EXPECT(n == 4, "new_handler called %d times before std::bad_alloc, want 4", n);
	n = call(lib, "plugin_nothrow_handler_calls");
	EXPECT(n == 4, "new_handler called %d times before nothrow new returned null, want 4", n);
	EXPECT(call(lib, "plugin_workload"), "the plugin's workload failed");
	return ct_result();
}
