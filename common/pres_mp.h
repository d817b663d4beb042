/*  pres_mp: a strict, bounded msgpack reader and a fixed-buffer writer. The
    reader never allocates and refuses any container whose count the remaining
    bytes cannot back (docs/libraries.md section 5); the writer packs with
    msgpack-c's packer into caller memory. See docs/design.md for why the reader
    is hand-written. */
#ifndef PRES_MP_H_INCLUDED
#define PRES_MP_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRES_MP_MAX_DEPTH 8  //  nesting bound for skip and JSON conversion

typedef enum {
    PRES_MP_NONE = 0,  //  end of input or a byte that is not a type
    PRES_MP_NIL,
    PRES_MP_BOOL,
    PRES_MP_UINT,  //  positive integer, any width
    PRES_MP_INT,   //  negative integer
    PRES_MP_FLOAT,
    PRES_MP_STR,
    PRES_MP_BIN,
    PRES_MP_ARRAY,
    PRES_MP_MAP,
    PRES_MP_EXT
} pres_mp_type_t;

//  Reader over one complete buffer (a ZeroMQ frame). Borrowed memory: the
//  strings it hands out point into the buffer.
typedef struct {
    const uint8_t *p;    //  next byte
    const uint8_t *end;  //  one past the last byte
} pres_mp_reader_t;

void pres_mp_reader_init(pres_mp_reader_t *r, const void *buf, size_t len);

//  Type of the next value, without consuming it.
pres_mp_type_t pres_mp_peek(const pres_mp_reader_t *r);

//  Each read consumes one value of exactly that type and returns 0, or
//  returns -1 and consumes nothing (wrong type, truncated, or a count
//  larger than the remaining bytes could hold).
int pres_mp_read_map(pres_mp_reader_t *r, uint32_t *count);
int pres_mp_read_array(pres_mp_reader_t *r, uint32_t *count);
int pres_mp_read_str(pres_mp_reader_t *r, const char **str, uint32_t *len);
int pres_mp_read_uint(pres_mp_reader_t *r, uint64_t *value);
int pres_mp_read_int(pres_mp_reader_t *r, int64_t *value);  //  either sign
int pres_mp_read_bool(pres_mp_reader_t *r, bool *value);
int pres_mp_read_nil(pres_mp_reader_t *r);
int pres_mp_read_double(pres_mp_reader_t *r, double *value);  //  float/int

//  Skip one value of any type, nested at most PRES_MP_MAX_DEPTH. 0 or -1.
int pres_mp_skip(pres_mp_reader_t *r);

//  Position *at on the value at a dotted path in buf: map keys, and array
//  indexes as decimal numbers ("users.online", "publishers.0.src"). An
//  empty path is the whole buffer. 0, or -1 when a step is missing, of the
//  wrong kind, or malformed. Nothing is copied: *at reads from buf.
int pres_mp_find(const void *buf, size_t len, const char *path,
                 pres_mp_reader_t *at);

//  The unsigned integer at path (see pres_mp_find). 0 or -1.
int pres_mp_find_uint(const void *buf, size_t len, const char *path,
                      uint64_t *value);

//  True when every byte has been consumed.
bool pres_mp_at_end(const pres_mp_reader_t *r);

//  Writer: msgpack-c's packer into a fixed buffer. When the buffer is too
//  small the writer stops and sets `overflow`; check it once at the end.
typedef struct {
    char *buf;          //  caller memory
    size_t len;         //  bytes written
    size_t cap;         //  capacity of buf
    bool overflow;      //  a write did not fit
    msgpack_packer pk;  //  pack with msgpack_pack_*(&w->pk, ...)
} pres_mp_writer_t;

void pres_mp_writer_init(pres_mp_writer_t *w, void *buf, size_t cap);

//  Pack a NUL-terminated string.
void pres_mp_pack_cstr(pres_mp_writer_t *w, const char *s);
//  Pack key (a C string) followed by a value.
void pres_mp_pack_kv_str(pres_mp_writer_t *w, const char *key,
                         const char *value);
void pres_mp_pack_kv_uint(pres_mp_writer_t *w, const char *key, uint64_t value);

//  Convert one msgpack value to JSON text (maps with string keys, arrays,
//  scalars; bin and ext are refused). Output is NUL-terminated.
//  Returns a heap string the caller frees, or NULL for malformed input or
//  nesting deeper than PRES_MP_MAX_DEPTH. *json_len gets the length if
//  json_len is not NULL. `skip_key`, if not NULL, names a top-level map key
//  to leave out (used to drop `ok` from broker replies).
char *pres_mp_to_json(const void *buf, size_t len, const char *skip_key,
                      size_t *json_len);

#endif
