/*  broker_pubs: the per-publisher loss accounting. For each event `src` the
    last seq seen and the events counted lost: seq == last+1 is in order,
    a jump counts the gap, seq <= last means the publisher restarted (reset,
    nothing counted). A never-seen src starting at seq n counts n-1 lost
    (slow-joiner loss is real loss).
    The table is bounded: an entry idle for longer than idle_ms is
    forgotten, and when a new src would exceed max entries the least
    recently seen quarter is forgotten first. A forgotten src that comes
    back is a new publisher again. Forgotten names are kept until the next
    clean so the caller can delete them from LMDB. Single-threaded. */
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
    uint64_t seen;              //  ms of the last arrival (or of the load)
    bool dirty;                 //  changed since last written to LMDB
} broker_pub_t;

typedef struct broker_pubs broker_pubs_t;

//  max: entries kept (>= 4); idle_ms: age after which an entry is dropped
//  by broker_pubs_expire.
broker_pubs_t *broker_pubs_new(size_t max, uint64_t idle_ms);
void broker_pubs_destroy(broker_pubs_t **self_p);

//  Record that an event (src, seq) arrived at now_ms. Returns how many
//  events this arrival shows as lost (0 when in order), or UINT64_MAX when
//  out of memory (logged; nothing counted).
uint64_t broker_pubs_arrive(broker_pubs_t *self, const char *src, uint64_t seq,
                            uint64_t now_ms);

//  Restore an entry from LMDB at start (not dirty, seen = now_ms). Beyond
//  max, the least recently loaded are forgotten. 0 or -1.
int broker_pubs_load(broker_pubs_t *self, const char *src, size_t len,
                     uint64_t last, uint64_t lost, uint64_t now_ms);

//  Forget entries not seen for idle_ms. Returns how many.
size_t broker_pubs_expire(broker_pubs_t *self, uint64_t now_ms);

//  Entries in no particular order: i from 0 to count-1. Borrowed; valid
//  until the next arrive, load or expire.
size_t broker_pubs_count(const broker_pubs_t *self);
broker_pub_t *broker_pubs_at(broker_pubs_t *self, size_t i);

//  Names forgotten since the last clean (to delete from LMDB).
size_t broker_pubs_forgotten_count(const broker_pubs_t *self);
const char *broker_pubs_forgotten(const broker_pubs_t *self, size_t i);

//  True if any entry is dirty or any name forgotten.
bool broker_pubs_dirty(const broker_pubs_t *self);
//  Mark every entry clean and drop the forgotten names (after a
//  successful write).
void broker_pubs_clean(broker_pubs_t *self);

#endif
