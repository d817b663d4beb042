/*  pres_ids: see pres_ids.h. A reference is (block << S_UNIT_BITS) | unit,
    a unit being 4 bytes; a slot is 1 length byte, the bytes, a NUL,
    rounded up to whole units. A free slot holds the next free reference
    of its size in its first 4 bytes. */
#include "pres_ids.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"

#define S_UNIT        4
#define S_UNIT_BITS   14  //  units per block: 16384 (64 KiB)
#define S_BLOCK_UNITS (1u << S_UNIT_BITS)
#define S_MAX_BLOCKS  ((1u << (32 - S_UNIT_BITS)) - 1)  //  NONE stays free
#define S_MAX_UNITS   ((PRES_IDS_MAX + 2 + S_UNIT - 1) / S_UNIT)

struct pres_ids {
    uint8_t **blocks;                //  S_BLOCK_UNITS * S_UNIT bytes each
    uint32_t nblocks;                //  blocks in use
    uint32_t blocks_cap;             //  slots of `blocks`
    uint32_t top;                    //  next free unit of the last block
    uint32_t free[S_MAX_UNITS + 1];  //  free list head per slot units
};

static uint32_t
s_units(size_t len)
{
    return (uint32_t)((len + 2 + S_UNIT - 1) / S_UNIT);
}

static uint8_t *
s_slot(const pres_ids_t *self, uint32_t ref)
{
    uint32_t b = ref >> S_UNIT_BITS, u = ref & (S_BLOCK_UNITS - 1);
    assert(b < self->nblocks);
    return self->blocks[b] + (size_t)u * S_UNIT;
}

pres_ids_t *
pres_ids_new(void)
{
    pres_ids_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() of an id arena failed");
        return NULL;
    }
    for (uint32_t i = 0; i <= S_MAX_UNITS; i++)
        self->free[i] = PRES_IDS_NONE;
    self->top = S_BLOCK_UNITS;  //  the first add opens a block
    return self;
}

void
pres_ids_destroy(pres_ids_t **self_p)
{
    assert(self_p);
    pres_ids_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t b = 0; b < self->nblocks; b++)
        free(self->blocks[b]);
    free(self->blocks);
    free(self);
    *self_p = NULL;
}

//  Open a new block. 0 or -1 (logged).
static int
s_grow(pres_ids_t *self)
{
    if (self->nblocks == S_MAX_BLOCKS) {
        pres_log_error("id arena full (%u blocks)", self->nblocks);
        return -1;
    }
    if (self->nblocks == self->blocks_cap) {
        uint32_t cap = self->blocks_cap ? self->blocks_cap * 2 : 16;
        uint8_t **blocks = realloc(self->blocks, cap * sizeof(*blocks));
        if (!blocks) {
            pres_log_error("realloc() of the id arena's block table failed");
            return -1;
        }
        self->blocks = blocks;
        self->blocks_cap = cap;
    }
    uint8_t *block = malloc((size_t)S_BLOCK_UNITS * S_UNIT);
    if (!block) {
        pres_log_error("malloc() of an id block failed");
        return -1;
    }
    self->blocks[self->nblocks++] = block;
    self->top = 0;
    return 0;
}

uint32_t
pres_ids_add(pres_ids_t *self, const char *s, size_t len)
{
    assert(self && s && len > 0 && len <= PRES_IDS_MAX);
    uint32_t units = s_units(len), ref = self->free[units];
    uint8_t *slot;
    if (ref != PRES_IDS_NONE) {
        slot = s_slot(self, ref);
        memcpy(&self->free[units], slot, sizeof(uint32_t));
    } else {
        //  The tail of a block too short for this slot is left unused.
        if (self->top + units > S_BLOCK_UNITS && s_grow(self))
            return PRES_IDS_NONE;
        ref = ((self->nblocks - 1) << S_UNIT_BITS) | self->top;
        self->top += units;
        slot = s_slot(self, ref);
    }
    slot[0] = (uint8_t)len;
    memcpy(slot + 1, s, len);
    slot[len + 1] = 0;
    return ref;
}

const char *
pres_ids_get(const pres_ids_t *self, uint32_t ref)
{
    assert(self && ref != PRES_IDS_NONE);
    return (const char *)s_slot(self, ref) + 1;
}

size_t
pres_ids_len(const pres_ids_t *self, uint32_t ref)
{
    assert(self && ref != PRES_IDS_NONE);
    return s_slot(self, ref)[0];
}

void
pres_ids_free(pres_ids_t *self, uint32_t ref)
{
    assert(self);
    if (ref == PRES_IDS_NONE)
        return;
    uint8_t *slot = s_slot(self, ref);
    uint32_t units = s_units(slot[0]);
    assert(slot[0] > 0);
    memcpy(slot, &self->free[units], sizeof(uint32_t));
    self->free[units] = ref;
}

size_t
pres_ids_bytes(const pres_ids_t *self)
{
    assert(self);
    return (size_t)self->nblocks * S_BLOCK_UNITS * S_UNIT;
}
