/*  pres_mp: strict bounded msgpack reader, fixed-buffer writer, and a
    msgpack-to-JSON converter for replies shown to people and browsers. */
#include "pres_mp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
pres_mp_reader_init(pres_mp_reader_t *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
}

static size_t
s_left(const pres_mp_reader_t *r)
{
    return (size_t)(r->end - r->p);
}

static uint64_t
s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

pres_mp_type_t
pres_mp_peek(const pres_mp_reader_t *r)
{
    if (r->p >= r->end)
        return PRES_MP_NONE;
    uint8_t b = *r->p;
    if (b <= 0x7f || b == 0xcc || b == 0xcd || b == 0xce || b == 0xcf)
        return PRES_MP_UINT;
    if (b >= 0xe0 || b == 0xd0 || b == 0xd1 || b == 0xd2 || b == 0xd3)
        return PRES_MP_INT;
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
        return PRES_MP_MAP;
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
        return PRES_MP_ARRAY;
    if ((b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb)
        return PRES_MP_STR;
    switch (b) {
    case 0xc0:
        return PRES_MP_NIL;
    case 0xc2:
    case 0xc3:
        return PRES_MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return PRES_MP_BIN;
    case 0xca:
    case 0xcb:
        return PRES_MP_FLOAT;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return PRES_MP_EXT;
    default:
        return PRES_MP_NONE;  //  0xc1 is never used
    }
}

//  Read a container header: fix range [fix_lo, fix_lo + 15], or the 16/32
//  bit forms. Every element needs at least one byte (`per` for maps: key
//  and value), so a count the rest of the buffer cannot hold is refused
//  before anyone sizes anything by it.
static int
s_read_count(pres_mp_reader_t *r, uint8_t fix_lo, uint8_t op16, uint8_t op32,
             unsigned per, uint32_t *count)
{
    if (r->p >= r->end)
        return -1;
    uint8_t b = *r->p;
    size_t hdr;
    uint64_t n;
    if (b >= fix_lo && b <= fix_lo + 15) {
        hdr = 1;
        n = b & 0x0f;
    } else if (b == op16 && s_left(r) >= 3) {
        hdr = 3;
        n = s_be(r->p + 1, 2);
    } else if (b == op32 && s_left(r) >= 5) {
        hdr = 5;
        n = s_be(r->p + 1, 4);
    } else
        return -1;
    if (n * per > s_left(r) - hdr)
        return -1;
    r->p += hdr;
    *count = (uint32_t)n;
    return 0;
}

int
pres_mp_read_map(pres_mp_reader_t *r, uint32_t *count)
{
    return s_read_count(r, 0x80, 0xde, 0xdf, 2, count);
}

int
pres_mp_read_array(pres_mp_reader_t *r, uint32_t *count)
{
    return s_read_count(r, 0x90, 0xdc, 0xdd, 1, count);
}

static int
s_read_blob(pres_mp_reader_t *r, bool str, const char **data, uint32_t *len)
{
    if (r->p >= r->end)
        return -1;
    uint8_t b = *r->p;
    size_t hdr;
    uint64_t n;
    if (str && (b & 0xe0) == 0xa0) {
        hdr = 1;
        n = b & 0x1f;
    } else if (b == (str ? 0xd9 : 0xc4) && s_left(r) >= 2) {
        hdr = 2;
        n = r->p[1];
    } else if (b == (str ? 0xda : 0xc5) && s_left(r) >= 3) {
        hdr = 3;
        n = s_be(r->p + 1, 2);
    } else if (b == (str ? 0xdb : 0xc6) && s_left(r) >= 5) {
        hdr = 5;
        n = s_be(r->p + 1, 4);
    } else
        return -1;
    if (n > s_left(r) - hdr)
        return -1;
    *data = (const char *)r->p + hdr;
    *len = (uint32_t)n;
    r->p += hdr + n;
    return 0;
}

int
pres_mp_read_str(pres_mp_reader_t *r, const char **str, uint32_t *len)
{
    return s_read_blob(r, true, str, len);
}

int
pres_mp_read_uint(pres_mp_reader_t *r, uint64_t *value)
{
    if (r->p >= r->end)
        return -1;
    uint8_t b = *r->p;
    int n;
    if (b <= 0x7f) {
        *value = b;
        r->p++;
        return 0;
    }
    switch (b) {
    case 0xcc:
        n = 1;
        break;
    case 0xcd:
        n = 2;
        break;
    case 0xce:
        n = 4;
        break;
    case 0xcf:
        n = 8;
        break;
    default:
        return -1;
    }
    if (s_left(r) < (size_t)n + 1)
        return -1;
    *value = s_be(r->p + 1, n);
    r->p += n + 1;
    return 0;
}

int
pres_mp_read_int(pres_mp_reader_t *r, int64_t *value)
{
    if (r->p >= r->end)
        return -1;
    uint8_t b = *r->p;
    if (pres_mp_peek(r) == PRES_MP_UINT) {
        uint64_t u;
        pres_mp_reader_t save = *r;
        if (pres_mp_read_uint(r, &u) != 0)
            return -1;
        if (u > INT64_MAX) {
            *r = save;
            return -1;
        }
        *value = (int64_t)u;
        return 0;
    }
    if (b >= 0xe0) {
        *value = (int8_t)b;
        r->p++;
        return 0;
    }
    int n = b == 0xd0 ? 1 : b == 0xd1 ? 2 : b == 0xd2 ? 4 : b == 0xd3 ? 8 : 0;
    if (n == 0 || s_left(r) < (size_t)n + 1)
        return -1;
    uint64_t u = s_be(r->p + 1, n);
    //  Sign-extend from n bytes.
    if (n < 8 && (u >> (n * 8 - 1)) & 1)
        u |= ~(uint64_t)0 << (n * 8);
    *value = (int64_t)u;
    r->p += n + 1;
    return 0;
}

int
pres_mp_read_bool(pres_mp_reader_t *r, bool *value)
{
    if (r->p >= r->end || (*r->p != 0xc2 && *r->p != 0xc3))
        return -1;
    *value = *r->p++ == 0xc3;
    return 0;
}

int
pres_mp_read_nil(pres_mp_reader_t *r)
{
    if (r->p >= r->end || *r->p != 0xc0)
        return -1;
    r->p++;
    return 0;
}

int
pres_mp_read_double(pres_mp_reader_t *r, double *value)
{
    pres_mp_type_t t = pres_mp_peek(r);
    if (t == PRES_MP_UINT || t == PRES_MP_INT) {
        int64_t i;
        if (pres_mp_read_int(r, &i) != 0)
            return -1;
        *value = (double)i;
        return 0;
    }
    if (t != PRES_MP_FLOAT)
        return -1;
    int n = *r->p == 0xca ? 4 : 8;
    if (s_left(r) < (size_t)n + 1)
        return -1;
    uint64_t bits = s_be(r->p + 1, n);
    if (n == 4) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        *value = f;
    } else
        memcpy(value, &bits, sizeof *value);
    r->p += n + 1;
    return 0;
}

static int
s_skip(pres_mp_reader_t *r, int depth)
{
    uint32_t n;
    const char *s;
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    if (depth > PRES_MP_MAX_DEPTH)
        return -1;
    switch (pres_mp_peek(r)) {
    case PRES_MP_NIL:
        return pres_mp_read_nil(r);
    case PRES_MP_BOOL:
        return pres_mp_read_bool(r, &b);
    case PRES_MP_UINT:
        return pres_mp_read_uint(r, &u);
    case PRES_MP_INT:
        return pres_mp_read_int(r, &i);
    case PRES_MP_FLOAT:
        return pres_mp_read_double(r, &d);
    case PRES_MP_STR:
        return pres_mp_read_str(r, &s, &n);
    case PRES_MP_BIN:
        return s_read_blob(r, false, &s, &n);
    case PRES_MP_ARRAY:
        if (pres_mp_read_array(r, &n) != 0)
            return -1;
        for (uint32_t k = 0; k < n; k++)
            if (s_skip(r, depth + 1) != 0)
                return -1;
        return 0;
    case PRES_MP_MAP:
        if (pres_mp_read_map(r, &n) != 0)
            return -1;
        for (uint32_t k = 0; k < 2 * n; k++)
            if (s_skip(r, depth + 1) != 0)
                return -1;
        return 0;
    default:
        return -1;  //  ext and invalid bytes are not part of our protocol
    }
}

int
pres_mp_skip(pres_mp_reader_t *r)
{
    pres_mp_reader_t save = *r;
    if (s_skip(r, 0) != 0) {
        *r = save;
        return -1;
    }
    return 0;
}

int
pres_mp_find(const void *buf, size_t len, const char *path,
             pres_mp_reader_t *at)
{
    pres_mp_reader_init(at, buf, len);
    while (*path) {
        const char *dot = strchr(path, '.');
        size_t plen = dot ? (size_t)(dot - path) : strlen(path);
        uint32_t n;
        bool found = false;
        if (pres_mp_peek(at) == PRES_MP_MAP) {
            if (pres_mp_read_map(at, &n) != 0)
                return -1;
            for (uint32_t i = 0; i < n && !found; i++) {
                const char *k;
                uint32_t klen;
                if (pres_mp_read_str(at, &k, &klen) != 0)
                    return -1;
                if (klen == plen && memcmp(k, path, plen) == 0)
                    found = true;
                else if (pres_mp_skip(at) != 0)
                    return -1;
            }
        } else if (pres_mp_peek(at) == PRES_MP_ARRAY) {
            char *end;
            unsigned long idx = strtoul(path, &end, 10);
            if (plen == 0 || end != path + plen ||
                pres_mp_read_array(at, &n) != 0 || idx >= n)
                return -1;
            for (unsigned long i = 0; i < idx; i++)
                if (pres_mp_skip(at) != 0)
                    return -1;
            found = true;
        }
        if (!found)
            return -1;
        path += plen + (dot ? 1 : 0);
    }
    return 0;
}

int
pres_mp_find_uint(const void *buf, size_t len, const char *path,
                  uint64_t *value)
{
    pres_mp_reader_t r;
    if (pres_mp_find(buf, len, path, &r) != 0)
        return -1;
    return pres_mp_read_uint(&r, value);
}

bool
pres_mp_at_end(const pres_mp_reader_t *r)
{
    return r->p == r->end;
}

//  ---------------------------------------------------------------------
//  Writer

static int
s_write(void *data, const char *buf, size_t len)
{
    pres_mp_writer_t *w = data;
    if (w->overflow || len > w->cap - w->len) {
        w->overflow = true;
        return -1;
    }
    memcpy(w->buf + w->len, buf, len);
    w->len += len;
    return 0;
}

void
pres_mp_writer_init(pres_mp_writer_t *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->len = 0;
    w->cap = cap;
    w->overflow = false;
    msgpack_packer_init(&w->pk, w, s_write);
}

void
pres_mp_pack_cstr(pres_mp_writer_t *w, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, s, n);
}

void
pres_mp_pack_kv_str(pres_mp_writer_t *w, const char *key, const char *value)
{
    pres_mp_pack_cstr(w, key);
    pres_mp_pack_cstr(w, value);
}

void
pres_mp_pack_kv_uint(pres_mp_writer_t *w, const char *key, uint64_t value)
{
    pres_mp_pack_cstr(w, key);
    msgpack_pack_uint64(&w->pk, value);
}

//  ---------------------------------------------------------------------
//  msgpack -> JSON

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} s_out_t;

static void
s_put(s_out_t *o, const char *data, size_t n)
{
    if (o->failed)
        return;
    if (n + 1 > o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 256;
        while (n + 1 > cap - o->len)
            cap *= 2;
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->failed = true;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void
s_put_json_str(s_out_t *o, const char *s, uint32_t n)
{
    s_put(o, "\"", 1);
    uint32_t run = 0;  //  start of the current run of plain bytes
    for (uint32_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        s_put(o, s + run, k - run);
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        s_put(o, esc, strlen(esc));
        run = k + 1;
    }
    s_put(o, s + run, n - run);
    s_put(o, "\"", 1);
}

static int
s_to_json(pres_mp_reader_t *r, s_out_t *o, int depth, const char *skip_key)
{
    char num[40];
    uint32_t n;
    const char *s;
    if (depth > PRES_MP_MAX_DEPTH)
        return -1;
    switch (pres_mp_peek(r)) {
    case PRES_MP_NIL:
        pres_mp_read_nil(r);
        s_put(o, "null", 4);
        return 0;
    case PRES_MP_BOOL: {
        bool b = false;
        if (pres_mp_read_bool(r, &b) != 0)
            return -1;
        s_put(o, b ? "true" : "false", b ? 4 : 5);
        return 0;
    }
    case PRES_MP_UINT: {
        uint64_t u;
        if (pres_mp_read_uint(r, &u) != 0)
            return -1;
        s_put(o, num,
              (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)u));
        return 0;
    }
    case PRES_MP_INT: {
        int64_t i;
        if (pres_mp_read_int(r, &i) != 0)
            return -1;
        s_put(o, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)i));
        return 0;
    }
    case PRES_MP_FLOAT: {
        double d;
        if (pres_mp_read_double(r, &d) != 0 || !isfinite(d))
            return -1;
        s_put(o, num, (size_t)snprintf(num, sizeof num, "%.17g", d));
        return 0;
    }
    case PRES_MP_STR:
        if (pres_mp_read_str(r, &s, &n) != 0)
            return -1;
        s_put_json_str(o, s, n);
        return 0;
    case PRES_MP_ARRAY:
        if (pres_mp_read_array(r, &n) != 0)
            return -1;
        s_put(o, "[", 1);
        for (uint32_t k = 0; k < n; k++) {
            if (k)
                s_put(o, ",", 1);
            if (s_to_json(r, o, depth + 1, NULL) != 0)
                return -1;
        }
        s_put(o, "]", 1);
        return 0;
    case PRES_MP_MAP: {
        if (pres_mp_read_map(r, &n) != 0)
            return -1;
        s_put(o, "{", 1);
        bool first = true;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t klen;
            if (pres_mp_read_str(r, &s, &klen) != 0)
                return -1;  //  JSON keys must be strings
            if (skip_key && depth == 0 && strlen(skip_key) == klen &&
                memcmp(s, skip_key, klen) == 0) {
                if (pres_mp_skip(r) != 0)
                    return -1;
                continue;
            }
            if (!first)
                s_put(o, ",", 1);
            first = false;
            s_put_json_str(o, s, klen);
            s_put(o, ":", 1);
            if (s_to_json(r, o, depth + 1, NULL) != 0)
                return -1;
        }
        s_put(o, "}", 1);
        return 0;
    }
    default:
        return -1;
    }
}

char *
pres_mp_to_json(const void *buf, size_t len, const char *skip_key,
                size_t *json_len)
{
    pres_mp_reader_t r;
    pres_mp_reader_init(&r, buf, len);
    s_out_t o = {0};
    if (s_to_json(&r, &o, 0, skip_key) != 0 || !pres_mp_at_end(&r) ||
        o.failed) {
        free(o.buf);
        return NULL;
    }
    if (json_len)
        *json_len = o.len;
    return o.buf;
}
