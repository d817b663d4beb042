/*  pres_ids: an arena of short byte strings (ids), each referenced by a
    uint32 instead of a pointer or an inline array. Strings live in 64 KiB
    blocks that never move, length-prefixed and NUL-terminated, in slots
    of 4-byte units; freed slots go to a free list per slot size and are
    reused. No per-string malloc. Not thread-safe. */
#ifndef PRES_IDS_H_INCLUDED
#define PRES_IDS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define PRES_IDS_NONE UINT32_MAX  //  never a valid reference
#define PRES_IDS_MAX  255         //  longest string

typedef struct pres_ids pres_ids_t;

//  An empty arena. NULL after logging (out of memory).
pres_ids_t *pres_ids_new(void);

//  Free the arena and every string. NULL-safe; nulls *self_p.
void pres_ids_destroy(pres_ids_t **self_p);

//  Store a copy of len bytes (1..PRES_IDS_MAX; may hold NUL bytes, but
//  callers store ids). Returns its reference, or PRES_IDS_NONE after
//  logging (out of memory).
uint32_t pres_ids_add(pres_ids_t *self, const char *s, size_t len);

//  The string of a live reference, NUL-terminated. Borrowed: stable until
//  the reference is freed (blocks never move).
const char *pres_ids_get(const pres_ids_t *self, uint32_t ref);

//  Its length.
size_t pres_ids_len(const pres_ids_t *self, uint32_t ref);

//  Give a reference's slot back for reuse. NONE is ignored.
void pres_ids_free(pres_ids_t *self, uint32_t ref);

//  Bytes held by blocks (for stats and tests).
size_t pres_ids_bytes(const pres_ids_t *self);

#endif
