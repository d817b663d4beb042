/*  pres_grow: the one doubling growth of a heap array (batch lists,
    queues, byte buffers). Header only, no logging: the caller names what
    it grows in its own error line. Not thread-safe (the array's owner). */
#ifndef PRES_GROW_H_INCLUDED
#define PRES_GROW_H_INCLUDED

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

//  Make *array, of *cap elements of elem bytes, hold at least need
//  elements: the capacity starts at first (when *cap is 0) and doubles
//  until it is enough. Nothing is done when need <= *cap. Returns 0, or
//  -1 with errno ENOMEM (realloc failed or the size overflows), leaving
//  *array and *cap as they were. elem and first are not 0.
static inline int
pres_grow(void **array, size_t *cap, size_t elem, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need) {
        if (n > SIZE_MAX / 2) {
            errno = ENOMEM;
            return -1;
        }
        n *= 2;
    }
    if (n > SIZE_MAX / elem) {
        errno = ENOMEM;
        return -1;
    }
    void *p = realloc(*array, n * elem);
    if (!p)
        return -1;
    *array = p;
    *cap = n;
    return 0;
}

#endif
