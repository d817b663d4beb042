/*  broker_pubs: the per-publisher loss accounting. For each event `src` the
    last seq seen and the events counted lost: seq == last+1 is in order,
    a jump counts the gap, seq <= last means the publisher restarted (reset,
    nothing counted). A never-seen src starting at seq n counts n-1 lost
    (slow-joiner loss is real loss). Single-threaded. */
#ifndef BROKER_PUBS_H_INCLUDED
#define BROKER_PUBS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pres_msg.h"

typedef struct {
    char src[PRES_ID_MAX + 1];  //  publisher id
    uint64_t last;              //  last seq seen
    uint64_t lost;              //  events counted lost from this src
    bool dirty;                 //  changed since last written to LMDB
} broker_pub_t;

typedef struct broker_pubs broker_pubs_t;

broker_pubs_t *broker_pubs_new(void);
void broker_pubs_destroy(broker_pubs_t **self_p);

//  Record that an event (src, seq) arrived. Returns how many events this
//  arrival shows as lost (0 when in order), or UINT64_MAX when out of
//  memory (logged; nothing counted).
uint64_t broker_pubs_arrive(broker_pubs_t *self, const char *src, uint64_t seq);

//  Restore an entry from LMDB at start (not dirty). 0 or -1.
int broker_pubs_load(broker_pubs_t *self, const char *src, size_t len,
                     uint64_t last, uint64_t lost);

//  Entries in no particular order: i from 0 to count-1. Borrowed.
size_t broker_pubs_count(const broker_pubs_t *self);
broker_pub_t *broker_pubs_at(broker_pubs_t *self, size_t i);

//  True if any entry is dirty.
bool broker_pubs_dirty(const broker_pubs_t *self);
//  Mark every entry clean (after a successful write).
void broker_pubs_clean(broker_pubs_t *self);

#endif
