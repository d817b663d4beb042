/*  pres_mpw: count-then-pack msgpack maps (see pres_mpw.h). */
#include "pres_mpw.h"

#include <assert.h>
#include <string.h>

//  Append n bytes through the packer's own callback (which grows the
//  sbuffer or checks the fixed buffer's room).
static int
s_append(pres_mpw_map_t *m, const char *bytes, size_t n)
{
    if (m->pk->callback(m->pk->data, bytes, n) != 0) {
        m->failed = true;
        return -1;
    }
    return 0;
}

static void
s_begin(pres_mpw_map_t *m, msgpack_packer *pk, char **buf, size_t *len,
        pres_mpw_map_t *outer)
{
    *m = (pres_mpw_map_t){
        .pk = pk, .buf = buf, .len = len, .at = *len, .outer = outer};
    const char fixmap = (char)0x80;
    s_append(m, &fixmap, 1);
}

void
pres_mpw_map_begin(pres_mpw_map_t *m, msgpack_packer *pk, msgpack_sbuffer *sb)
{
    assert(pk->data == sb);
    s_begin(m, pk, &sb->data, &sb->size, NULL);
}

void
pres_mpw_map_begin_w(pres_mpw_map_t *m, pres_mp_writer_t *w)
{
    s_begin(m, &w->pk, &w->buf, &w->len, NULL);
}

void
pres_mpw_map_begin_in(pres_mpw_map_t *m, pres_mpw_map_t *outer)
{
    s_begin(m, outer->pk, outer->buf, outer->len, outer);
}

void
pres_mpw_key(pres_mpw_map_t *m, const char *key)
{
    size_t n = strlen(key);
    msgpack_pack_str(m->pk, n);
    msgpack_pack_str_body(m->pk, key, n);
    m->count++;
}

void
pres_mpw_kv_str(pres_mpw_map_t *m, const char *key, const char *value)
{
    pres_mpw_key(m, key);
    size_t n = strlen(value);
    msgpack_pack_str(m->pk, n);
    msgpack_pack_str_body(m->pk, value, n);
}

void
pres_mpw_kv_uint(pres_mpw_map_t *m, const char *key, uint64_t value)
{
    pres_mpw_key(m, key);
    msgpack_pack_uint64(m->pk, value);
}

void
pres_mpw_kv_bool(pres_mpw_map_t *m, const char *key, bool value)
{
    pres_mpw_key(m, key);
    if (value)
        msgpack_pack_true(m->pk);
    else
        msgpack_pack_false(m->pk);
}

int
pres_mpw_map_end(pres_mpw_map_t *m)
{
    //  The header msgpack_pack_map writes: fixmap, map16 or map32.
    unsigned char head[5];
    size_t n;
    uint32_t c = m->count;
    if (c < 16) {
        head[0] = (unsigned char)(0x80 | c);
        n = 1;
    } else if (c < 65536) {
        head[0] = 0xde;
        head[1] = (unsigned char)(c >> 8);
        head[2] = (unsigned char)c;
        n = 3;
    } else {
        head[0] = 0xdf;
        head[1] = (unsigned char)(c >> 24);
        head[2] = (unsigned char)(c >> 16);
        head[3] = (unsigned char)(c >> 8);
        head[4] = (unsigned char)c;
        n = 5;
    }
    if (!m->failed && n > 1) {
        //  Grow by n - 1 bytes at the end, then move the body over them.
        size_t body = *m->len - m->at - 1;
        const char pad[4] = {0};
        if (s_append(m, pad, n - 1) == 0)
            memmove(*m->buf + m->at + n, *m->buf + m->at + 1, body);
    }
    if (m->failed) {
        if (m->outer)
            m->outer->failed = true;
        return -1;
    }
    memcpy(*m->buf + m->at, head, n);
    return 0;
}
