/*  pres_mpw: a msgpack map whose size counts itself. Begin the map, pack
    each entry as a key (pres_mpw_key or a pres_mpw_kv_* helper) followed by
    its value, end the map: the end writes the header msgpack_pack_map would
    have written for that count (fixmap below 16, map16 below 65536, map32),
    so adding or skipping a field can never desynchronise the header.

    The packer must write to a msgpack_sbuffer (msgpack_sbuffer_write) or be
    the packer of a pres_mp_writer_t; begin reserves one header byte there,
    end widens it to 3 or 5 bytes when the count needs it by moving the body
    right. Maps nest: each has its own pres_mpw_map_t, and an inner map ends
    before its outer one (LIFO). Not thread-safe; one writer per buffer. */
#ifndef PRES_MPW_H_INCLUDED
#define PRES_MPW_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pres_mp.h"

typedef struct pres_mpw_map pres_mpw_map_t;
struct pres_mpw_map {
    msgpack_packer *pk;     //  pack values with msgpack_pack_*(m->pk, ...)
    char **buf;             //  the sink's buffer (may move as it grows)
    size_t *len;            //  the sink's byte count
    size_t at;              //  offset of the reserved header byte
    uint32_t count;         //  entries so far
    bool failed;            //  a write did not fit
    pres_mpw_map_t *outer;  //  told when this map fails, or NULL
};

//  Begin a map on pk, which writes to sb through msgpack_sbuffer_write
//  (pk->data == sb is asserted; msgpack-c's write function is inline, so
//  its address cannot be checked).
void pres_mpw_map_begin(pres_mpw_map_t *m, msgpack_packer *pk,
                        msgpack_sbuffer *sb);
//  Begin a map on the fixed-buffer writer w (pres_mp.h).
void pres_mpw_map_begin_w(pres_mpw_map_t *m, pres_mp_writer_t *w);
//  Begin a map nested in outer (as a value of outer, or inside an array
//  that is). A failure of this map makes outer's end fail too.
void pres_mpw_map_begin_in(pres_mpw_map_t *m, pres_mpw_map_t *outer);

//  Pack key (a C string) and count the entry; the caller packs the value.
void pres_mpw_key(pres_mpw_map_t *m, const char *key);
//  Pack key and a value.
void pres_mpw_kv_str(pres_mpw_map_t *m, const char *key, const char *value);
void pres_mpw_kv_uint(pres_mpw_map_t *m, const char *key, uint64_t value);
void pres_mpw_kv_bool(pres_mpw_map_t *m, const char *key, bool value);

//  Write the header for the entries counted. 0, or -1 when the sink could
//  not take the header (out of memory, or the fixed buffer is full) in this
//  map or in one begun inside it: the bytes are then not a valid map. Other
//  failed writes of values show in the sink (a pres_mp_writer_t's overflow).
int pres_mpw_map_end(pres_mpw_map_t *m);

#endif
