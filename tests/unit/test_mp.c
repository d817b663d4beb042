/*  test_mp: the bounded msgpack reader (docs/libraries.md section 5 traps), the
    fixed-buffer writer and the JSON conversion. */
#include "pres_mp.h"
#include "testutil.h"

#include <stdlib.h>

static void
s_test_counts_must_be_backed(void)
{
    pres_mp_reader_t r;
    uint32_t n;
    //  array32 claiming 0x0FFFFFFF elements in 5 bytes: msgpack-c reserves
    //  8 GiB for this; we refuse without sizing anything by it.
    const unsigned char huge_array[] = {0xdd, 0x0f, 0xff, 0xff, 0xff};
    pres_mp_reader_init(&r, huge_array, sizeof huge_array);
    CHECK_EQ(pres_mp_read_array(&r, &n), -1);
    CHECK_EQ(pres_mp_skip(&r), -1);
    const unsigned char huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    pres_mp_reader_init(&r, huge_map, sizeof huge_map);
    CHECK_EQ(pres_mp_read_map(&r, &n), -1);
    //  A map of 2 needs at least 4 more bytes.
    const unsigned char short_map[] = {0x82, 0xa1, 'a', 0x01};
    pres_mp_reader_init(&r, short_map, sizeof short_map);
    CHECK_EQ(pres_mp_read_map(&r, &n), -1);
    //  A str32 longer than the buffer: refused, no over-read.
    const unsigned char long_str[] = {0xdb, 0x00, 0x00, 0x10, 0x00, 'x'};
    const char *s;
    pres_mp_reader_init(&r, long_str, sizeof long_str);
    CHECK_EQ(pres_mp_read_str(&r, &s, &n), -1);
    //  0xc1 is never valid.
    const unsigned char never[] = {0xc1};
    pres_mp_reader_init(&r, never, 1);
    CHECK_EQ(pres_mp_peek(&r), PRES_MP_NONE);
    CHECK_EQ(pres_mp_skip(&r), -1);
}

static void
s_test_depth_bound(void)
{
    unsigned char deep[64];
    for (int depth = 1; depth <= 40; depth++) {
        memset(deep, 0x91, (size_t)depth);  //  fixarray of 1, nested
        deep[depth] = 0x01;
        pres_mp_reader_t r;
        pres_mp_reader_init(&r, deep, (size_t)depth + 1);
        int rc = pres_mp_skip(&r);
        CHECK_EQ(rc, depth <= PRES_MP_MAX_DEPTH ? 0 : -1);
        char *json = pres_mp_to_json(deep, (size_t)depth + 1, NULL, NULL);
        CHECK((json != NULL) == (depth <= PRES_MP_MAX_DEPTH));
        free(json);
    }
}

static void
s_test_scalars(void)
{
    unsigned char buf[256];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof buf);
    msgpack_pack_array(&w.pk, 7);
    msgpack_pack_uint64(&w.pk, UINT64_MAX);
    msgpack_pack_int64(&w.pk, INT64_MIN);
    msgpack_pack_int8(&w.pk, -3);
    msgpack_pack_double(&w.pk, 1.5);
    msgpack_pack_true(&w.pk);
    msgpack_pack_nil(&w.pk);
    pres_mp_pack_cstr(&w, "quote\" back\\ nl\n ctl\x01");
    CHECK(!w.overflow);
    pres_mp_reader_t r;
    pres_mp_reader_init(&r, buf, w.len);
    uint32_t n;
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    CHECK_EQ(pres_mp_read_array(&r, &n), 0);
    CHECK_EQ(n, 7);
    CHECK_EQ(pres_mp_read_int(&r, &i), -1);  //  too big for int64
    CHECK_EQ(pres_mp_read_uint(&r, &u), 0);
    CHECK(u == UINT64_MAX);
    CHECK_EQ(pres_mp_read_uint(&r, &u), -1);  //  negative is not uint
    CHECK_EQ(pres_mp_read_int(&r, &i), 0);
    CHECK(i == INT64_MIN);
    CHECK_EQ(pres_mp_read_int(&r, &i), 0);
    CHECK_EQ(i, -3);
    CHECK_EQ(pres_mp_read_double(&r, &d), 0);
    CHECK(d == 1.5);
    CHECK_EQ(pres_mp_read_bool(&r, &b), 0);
    CHECK(b);
    CHECK_EQ(pres_mp_read_nil(&r), 0);
    CHECK_EQ(pres_mp_skip(&r), 0);
    CHECK(pres_mp_at_end(&r));

    char *json = pres_mp_to_json(buf, w.len, NULL, NULL);
    CHECK_STR(json, "[18446744073709551615,-9223372036854775808,-3,1.5,true,"
                    "null,\"quote\\\" back\\\\ nl\\n ctl\\u0001\"]");
    free(json);
}

static void
s_test_writer_overflow_and_skip_key(void)
{
    unsigned char small[8];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, small, sizeof small);
    pres_mp_pack_kv_str(&w, "key", "a value that does not fit");
    CHECK(w.overflow);

    unsigned char buf[128];
    pres_mp_writer_init(&w, buf, sizeof buf);
    msgpack_pack_map(&w.pk, 2);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_true(&w.pk);
    pres_mp_pack_kv_uint(&w, "seq", 9);
    CHECK(!w.overflow);
    size_t len;
    char *json = pres_mp_to_json(buf, w.len, "ok", &len);
    CHECK_STR(json, "{\"seq\":9}");
    CHECK_EQ(len, 9);
    free(json);
    //  Trailing garbage and non-string keys are refused.
    buf[w.len] = 0x00;
    CHECK(pres_mp_to_json(buf, w.len + 1, NULL, NULL) == NULL);
    const unsigned char int_key[] = {0x81, 0x01, 0x02};
    CHECK(pres_mp_to_json(int_key, sizeof int_key, NULL, NULL) == NULL);
}

static void
s_test_find(void)
{
    //  {"seq": 7, "users": {"online": 2}, "publishers": [{"src": "a"},
    //   {"src": "b", "lost": 3}]}
    unsigned char buf[256];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof buf);
    msgpack_pack_map(&w.pk, 3);
    pres_mp_pack_kv_uint(&w, "seq", 7);
    pres_mp_pack_cstr(&w, "users");
    msgpack_pack_map(&w.pk, 1);
    pres_mp_pack_kv_uint(&w, "online", 2);
    pres_mp_pack_cstr(&w, "publishers");
    msgpack_pack_array(&w.pk, 2);
    msgpack_pack_map(&w.pk, 1);
    pres_mp_pack_kv_str(&w, "src", "a");
    msgpack_pack_map(&w.pk, 2);
    pres_mp_pack_kv_str(&w, "src", "b");
    pres_mp_pack_kv_uint(&w, "lost", 3);
    CHECK(!w.overflow);
    uint64_t v = 0;
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "seq", &v), 0);
    CHECK_EQ(v, 7);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "users.online", &v), 0);
    CHECK_EQ(v, 2);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "publishers.1.lost", &v), 0);
    CHECK_EQ(v, 3);
    pres_mp_reader_t r;
    const char *s;
    uint32_t n;
    CHECK_EQ(pres_mp_find(buf, w.len, "publishers.0.src", &r), 0);
    CHECK_EQ(pres_mp_read_str(&r, &s, &n), 0);
    CHECK(n == 1 && s[0] == 'a');
    CHECK_EQ(pres_mp_find(buf, w.len, "", &r), 0);  //  the root
    CHECK_EQ(pres_mp_peek(&r), PRES_MP_MAP);
    //  Missing keys, out-of-range or non-numeric indexes, wrong types,
    //  empty segments and truncated input are all refused.
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "users.away", &v), -1);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "publishers.2.lost", &v), -1);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "publishers.x", &v), -1);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "publishers..src", &v), -1);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "seq.more", &v), -1);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "publishers.0.src", &v), -1);
    CHECK_EQ(pres_mp_find_uint(buf, w.len - 1, "publishers.1.lost", &v), -1);
}

int
main(void)
{
    s_test_counts_must_be_backed();
    s_test_depth_bound();
    s_test_scalars();
    s_test_writer_overflow_and_skip_key();
    s_test_find();
    printf("test_mp: OK\n");
    return 0;
}
