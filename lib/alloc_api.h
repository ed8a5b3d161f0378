/* SPDX-License-Identifier: MIT */
/*
 * alloc_api.h - the malloc family's implementations (alloc.c), hidden, for the
 * files that export them under other names (interpose.c, cxx.c).
 */
#ifndef RT_ALLOC_API_H
#define RT_ALLOC_API_H

#include "rt.h"

RT_HIDDEN void *rt_calloc(size_t nmemb, size_t size);
RT_HIDDEN void *rt_realloc(void *p, size_t n);
RT_HIDDEN void *rt_reallocarray(void *p, size_t nmemb, size_t size);
RT_HIDDEN int rt_posix_memalign(void **memptr, size_t align, size_t size);
RT_HIDDEN void *rt_aligned_alloc(size_t align, size_t size);
RT_HIDDEN void *rt_memalign(size_t align, size_t size);
RT_HIDDEN void *rt_valloc(size_t size);
RT_HIDDEN void *rt_pvalloc(size_t size);
RT_HIDDEN size_t rt_usable_size(void *p);
RT_HIDDEN void rt_free_sized(void *p, size_t size);
RT_HIDDEN void rt_free_aligned_sized(void *p, size_t align, size_t size);

/* realloc of a pointer librtalloc did not hand out (interpose.c decides). */
RT_HIDDEN void *rt_realloc_foreign(void *p, size_t n);

#endif /* RT_ALLOC_API_H */
