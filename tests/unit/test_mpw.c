/*  test_mpw: count-then-pack maps give the bytes msgpack_pack_map with the
    right count gives: each header width, nesting, the fixed-buffer sink. */
#include "pres_mpw.h"
#include "testutil.h"

#include <stdlib.h>

//  key i: "k<i>", value i.
static void
s_key(char *key, uint32_t i)
{
    snprintf(key, 16, "k%u", (unsigned)i);
}

//  n entries through the map writer and through msgpack_pack_map(n): the
//  same bytes.
static void
s_check_count(uint32_t n)
{
    msgpack_sbuffer got, want;
    msgpack_sbuffer_init(&got);
    msgpack_sbuffer_init(&want);
    msgpack_packer gpk, wpk;
    msgpack_packer_init(&gpk, &got, msgpack_sbuffer_write);
    msgpack_packer_init(&wpk, &want, msgpack_sbuffer_write);
    msgpack_pack_true(&gpk);  //  the map need not start the buffer
    msgpack_pack_true(&wpk);
    pres_mpw_map_t m;
    pres_mpw_map_begin(&m, &gpk, &got);
    msgpack_pack_map(&wpk, n);
    char key[16];
    for (uint32_t i = 0; i < n; i++) {
        s_key(key, i);
        pres_mpw_kv_uint(&m, key, i);
        msgpack_pack_str(&wpk, strlen(key));
        msgpack_pack_str_body(&wpk, key, strlen(key));
        msgpack_pack_uint64(&wpk, i);
    }
    CHECK_EQ(m.count, n);
    CHECK_EQ(pres_mpw_map_end(&m), 0);
    msgpack_pack_nil(&gpk);  //  writes after the end follow the map
    msgpack_pack_nil(&wpk);
    CHECK_EQ(got.size, want.size);
    CHECK(memcmp(got.data, want.data, got.size) == 0);
    msgpack_sbuffer_destroy(&got);
    msgpack_sbuffer_destroy(&want);
}

static void
s_test_widths(void)
{
    const uint32_t counts[] = {0, 1, 15, 16, 17, 65535, 65536};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        s_check_count(counts[i]);
}

//  {a: {x: 1, <20 keys>}, list: [{}, {k0..k15}], z: true}: inner maps that
//  widen move nothing of the outer map's header.
static void
s_test_nested(void)
{
    msgpack_sbuffer got, want;
    msgpack_sbuffer_init(&got);
    msgpack_sbuffer_init(&want);
    msgpack_packer gpk, wpk;
    msgpack_packer_init(&gpk, &got, msgpack_sbuffer_write);
    msgpack_packer_init(&wpk, &want, msgpack_sbuffer_write);
    char key[16];

    pres_mpw_map_t top, a, e;
    pres_mpw_map_begin(&top, &gpk, &got);
    pres_mpw_key(&top, "a");
    pres_mpw_map_begin_in(&a, &top);
    pres_mpw_kv_uint(&a, "x", 1);
    for (uint32_t i = 0; i < 20; i++) {
        s_key(key, i);
        pres_mpw_kv_str(&a, key, "v");
    }
    CHECK_EQ(pres_mpw_map_end(&a), 0);
    pres_mpw_key(&top, "list");
    msgpack_pack_array(&gpk, 2);
    pres_mpw_map_begin_in(&e, &top);
    CHECK_EQ(pres_mpw_map_end(&e), 0);
    pres_mpw_map_begin_in(&e, &top);
    for (uint32_t i = 0; i < 16; i++) {
        s_key(key, i);
        pres_mpw_kv_bool(&e, key, i % 2);
    }
    CHECK_EQ(pres_mpw_map_end(&e), 0);
    pres_mpw_kv_bool(&top, "z", true);
    CHECK_EQ(pres_mpw_map_end(&top), 0);

    msgpack_pack_map(&wpk, 3);
    msgpack_pack_str(&wpk, 1);
    msgpack_pack_str_body(&wpk, "a", 1);
    msgpack_pack_map(&wpk, 21);
    msgpack_pack_str(&wpk, 1);
    msgpack_pack_str_body(&wpk, "x", 1);
    msgpack_pack_uint64(&wpk, 1);
    for (uint32_t i = 0; i < 20; i++) {
        s_key(key, i);
        msgpack_pack_str(&wpk, strlen(key));
        msgpack_pack_str_body(&wpk, key, strlen(key));
        msgpack_pack_str(&wpk, 1);
        msgpack_pack_str_body(&wpk, "v", 1);
    }
    msgpack_pack_str(&wpk, 4);
    msgpack_pack_str_body(&wpk, "list", 4);
    msgpack_pack_array(&wpk, 2);
    msgpack_pack_map(&wpk, 0);
    msgpack_pack_map(&wpk, 16);
    for (uint32_t i = 0; i < 16; i++) {
        s_key(key, i);
        msgpack_pack_str(&wpk, strlen(key));
        msgpack_pack_str_body(&wpk, key, strlen(key));
        if (i % 2)
            msgpack_pack_true(&wpk);
        else
            msgpack_pack_false(&wpk);
    }
    msgpack_pack_str(&wpk, 1);
    msgpack_pack_str_body(&wpk, "z", 1);
    msgpack_pack_true(&wpk);

    CHECK_EQ(got.size, want.size);
    CHECK(memcmp(got.data, want.data, got.size) == 0);
    msgpack_sbuffer_destroy(&got);
    msgpack_sbuffer_destroy(&want);
}

//  The fixed-buffer writer: same bytes when it fits; a header that cannot
//  widen for lack of room fails the map and its outer map.
static void
s_test_fixed_writer(void)
{
    char buf[256], ref[256];
    pres_mp_writer_t w, r;
    pres_mp_writer_init(&w, buf, sizeof buf);
    pres_mp_writer_init(&r, ref, sizeof ref);
    pres_mpw_map_t m;
    pres_mpw_map_begin_w(&m, &w);
    msgpack_pack_map(&r.pk, 16);
    char key[16];
    for (uint32_t i = 0; i < 16; i++) {
        s_key(key, i);
        pres_mpw_kv_uint(&m, key, i);
        pres_mp_pack_kv_uint(&r, key, i);
    }
    CHECK_EQ(pres_mpw_map_end(&m), 0);
    CHECK(!w.overflow);
    CHECK_EQ(w.len, r.len);
    CHECK(memcmp(buf, ref, w.len) == 0);

    //  {"": {16 entries}} fills the buffer exactly: the inner header has
    //  no room to widen to map16.
    char small[3 + 16 * 2];
    pres_mp_writer_init(&w, small, sizeof small);
    pres_mpw_map_t outer, inner;
    pres_mpw_map_begin_w(&outer, &w);
    pres_mpw_key(&outer, "");
    pres_mpw_map_begin_in(&inner, &outer);
    for (uint32_t i = 0; i < 16; i++) {
        pres_mpw_key(&inner, "");
        msgpack_pack_nil(&w.pk);
    }
    CHECK(!w.overflow);
    CHECK_EQ(w.len, sizeof small);
    CHECK_EQ(pres_mpw_map_end(&inner), -1);
    CHECK_EQ(pres_mpw_map_end(&outer), -1);
}

int
main(void)
{
    s_test_widths();
    s_test_nested();
    s_test_fixed_writer();
    printf("test_mpw: OK\n");
    return 0;
}
