/*  pres_be64: 64-bit unsigned integers as 8 big-endian bytes (LMDB keys
    that sort in numeric order, replication frame fields). Header only. */
#ifndef PRES_BE64_H_INCLUDED
#define PRES_BE64_H_INCLUDED

#include <stdint.h>

//  Writes v to p[0..7], most significant byte first.
static inline void
pres_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

//  Reads the value pres_be64_put wrote at p.
static inline uint64_t
pres_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

#endif
