// SPDX-License-Identifier: MIT
/*
 * cxx_plugin.cpp - C++ code loaded by dlopen into a C program (cxx_dlhost.c),
 * the way Python loads a C++ extension: libstdc++ arrives after librtalloc
 * was bound, so its weak references to the C++ runtime are null and
 * librtalloc must find std::get_new_handler and std::__throw_bad_alloc when it
 * needs them -- even when the plugin is loaded RTLD_LOCAL.
 */
#include <cstdint>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <dlfcn.h>

template <class T> static T opaque(T v)
{
	__asm__ volatile("" : "+r"(v));
	return v;
}

static const std::size_t impossible = std::size_t(1) << 50;

extern "C" {

/* The plugin's operator new is librtalloc's. */
__attribute__((visibility("default"))) int plugin_uses_rtalloc(void)
{
	void *(*f)(std::size_t) = &::operator new;
	void *code;
	std::memcpy(&code, &f, sizeof code);
	Dl_info info;
	return dladdr(code, &info) && info.dli_fname && std::strstr(info.dli_fname, "librtalloc.so");
}

/* 1 when every throwing form throws std::bad_alloc for an impossible size. */
__attribute__((visibility("default"))) int plugin_bad_alloc(void)
{
	int thrown = 0;
	std::size_t n = opaque(impossible);
	try {
		delete[] opaque(new char[n]);
	} catch (const std::bad_alloc &) {
		thrown++;
	}
	try {
		::operator delete(opaque(::operator new(n)));
	} catch (const std::bad_alloc &) {
		thrown++;
	}
	try {
		::operator delete(opaque(::operator new(n, std::align_val_t(64))), std::align_val_t(64));
	} catch (const std::bad_alloc &) {
		thrown++;
	}
	return thrown == 3;
}

static int handler_calls;
static void give_up_at_4()
{
	if (++handler_calls == 4)
		std::set_new_handler(nullptr);
}

/* The new_handler's calls before the throw (want 4), or -1 if nothing was thrown. */
__attribute__((visibility("default"))) int plugin_handler_calls(void)
{
	handler_calls = 0;
	std::set_new_handler(give_up_at_4);
	try {
		::operator delete[](opaque(::operator new[](opaque(impossible))));
	} catch (const std::bad_alloc &) {
		return handler_calls;
	}
	return -1;
}

/* Same with the nothrow form: the handler's calls before nullptr, -1 if not null. */
__attribute__((visibility("default"))) int plugin_nothrow_handler_calls(void)
{
	handler_calls = 0;
	std::set_new_handler(give_up_at_4);
	void *p = ::operator new(opaque(impossible), std::nothrow);
	std::set_new_handler(nullptr);
	if (p) {
		::operator delete(p);
		return -1;
	}
	return handler_calls;
}

/* Containers and exceptions; 1 when the result is right. */
__attribute__((visibility("default"))) int plugin_workload(void)
{
	std::map<int, std::string> m;
	for (int i = 0; i < 1000; i++)
		m[i] = std::to_string(i * 3);
	int caught = 0;
	for (int i = 0; i < 100; i++) {
		try {
			throw std::runtime_error(m[i]);
		} catch (const std::exception &e) {
			caught += e.what()[0] == m[i][0];
		}
	}
	std::vector<std::string> v(m.size());
	std::size_t total = 0;
	for (const auto &kv : m)
		total += kv.second.size();
	return caught == 100 && total == 3628 && v.size() == 1000;
}
}
