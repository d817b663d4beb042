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

//  The fixture: what the map writer wrote (got) and what msgpack_pack_map
//  with the right count writes (want), each buffer with its packer. Not
//  to be copied once initialised (the packers point at the buffers).
typedef struct {
    msgpack_sbuffer got, want;
    msgpack_packer gpk, wpk;
} s_pair_t;

static void
s_pair_init(s_pair_t *p)
{
    msgpack_sbuffer_init(&p->got);
    msgpack_sbuffer_init(&p->want);
    msgpack_packer_init(&p->gpk, &p->got, msgpack_sbuffer_write);
    msgpack_packer_init(&p->wpk, &p->want, msgpack_sbuffer_write);
}

//  The same bytes on both sides; then the buffers are freed.
static void
s_pair_check(s_pair_t *p)
{
    CHECK_EQ(p->got.size, p->want.size);
    CHECK(memcmp(p->got.data, p->want.data, p->got.size) == 0);
    msgpack_sbuffer_destroy(&p->got);
    msgpack_sbuffer_destroy(&p->want);
}

//  A string as msgpack_pack_str and its body write it.
static void
s_want_str(msgpack_packer *pk, const char *str)
{
    msgpack_pack_str(pk, strlen(str));
    msgpack_pack_str_body(pk, str, strlen(str));
}

//  n entries through the map writer and through msgpack_pack_map(n): the
//  same bytes.
static void
s_check_count(uint32_t n)
{
    s_pair_t p;
    s_pair_init(&p);
    msgpack_pack_true(&p.gpk);  //  the map need not start the buffer
    msgpack_pack_true(&p.wpk);
    pres_mpw_map_t m;
    pres_mpw_map_begin(&m, &p.gpk, &p.got);
    msgpack_pack_map(&p.wpk, n);
    char key[16];
    for (uint32_t i = 0; i < n; i++) {
        s_key(key, i);
        pres_mpw_kv_uint(&m, key, i);
        s_want_str(&p.wpk, key);
        msgpack_pack_uint64(&p.wpk, i);
    }
    CHECK_EQ(m.count, n);
    CHECK_EQ(pres_mpw_map_end(&m), 0);
    msgpack_pack_nil(&p.gpk);  //  writes after the end follow the map
    msgpack_pack_nil(&p.wpk);
    s_pair_check(&p);
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
    s_pair_t p;
    s_pair_init(&p);
    char key[16];

    pres_mpw_map_t top, a, e;
    pres_mpw_map_begin(&top, &p.gpk, &p.got);
    pres_mpw_key(&top, "a");
    pres_mpw_map_begin_in(&a, &top);
    pres_mpw_kv_uint(&a, "x", 1);
    for (uint32_t i = 0; i < 20; i++) {
        s_key(key, i);
        pres_mpw_kv_str(&a, key, "v");
    }
    CHECK_EQ(pres_mpw_map_end(&a), 0);
    pres_mpw_key(&top, "list");
    msgpack_pack_array(&p.gpk, 2);
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

    msgpack_packer *w = &p.wpk;
    msgpack_pack_map(w, 3);
    s_want_str(w, "a");
    msgpack_pack_map(w, 21);
    s_want_str(w, "x");
    msgpack_pack_uint64(w, 1);
    for (uint32_t i = 0; i < 20; i++) {
        s_key(key, i);
        s_want_str(w, key);
        s_want_str(w, "v");
    }
    s_want_str(w, "list");
    msgpack_pack_array(w, 2);
    msgpack_pack_map(w, 0);
    msgpack_pack_map(w, 16);
    for (uint32_t i = 0; i < 16; i++) {
        s_key(key, i);
        s_want_str(w, key);
        if (i % 2)
            msgpack_pack_true(w);
        else
            msgpack_pack_false(w);
    }
    s_want_str(w, "z");
    msgpack_pack_true(w);

    s_pair_check(&p);
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
