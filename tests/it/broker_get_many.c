/*  it.broker_get_many: get_many over REQ (order kept, unknown ids flagged,
    1..1,000 ids, bad ids refused) and `devices` in get: the live sessions
    with session, device, since, last_seen and state. */
#include "itutil.h"
#include "pres_mp.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;

static bool
s_ok(zframe_t *r)
{
    bool ok = false;
    return r && it_mp_bool(r, "ok", &ok) == 0 && ok;
}

static zframe_t *
s_many(const char *const *ids, uint32_t n)
{
    pres_query_t q = {.op = PRES_Q_GET_MANY, .nusers = n, .users = ids};
    zframe_t *r = it_query(&cfg, &q);
    CHECK(r);
    return r;
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-get-many") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "", "gateway-many-1", &sub, &pub) == 0);

    //  ann: two devices, one away; bob: online then logged out; zed never.
    pres_event_t ev = {.type = PRES_EV_LOGIN};
    strcpy(ev.user, "ann");
    strcpy(ev.session, "phone");
    strcpy(ev.device, "Pixel 7");
    CHECK(pres_pub_send(pub, &ev, 2000) == 0);
    pres_change_t ch;
    CHECK(it_wait_change(sub, "ann", &ch, 10000) == 0);
    uint64_t since = ch.at;
    //  Not a wait: the second session starts at a later ms, so a since
    //  taken from the wrong session shows.
    it_sleep_until_wall(since + 20);
    CHECK(it_send_login(pub, "ann", "laptop") == 0);
    CHECK(it_wait_change(sub, "ann", &ch, 10000) == 0);
    CHECK(it_send_heartbeat(pub, "ann", "phone", "away") == 0);
    CHECK(it_send_login(pub, "bob", "b1") == 0);
    CHECK(it_wait_change(sub, "bob", &ch, 10000) == 0);
    CHECK(it_send_logout(pub, "bob", "b1") == 0);
    CHECK(it_wait_change(sub, "bob", &ch, 10000) == 0);
    //  Events of one publisher apply in order: bob's logout change means
    //  ann's heartbeat was applied too.

    //  get carries devices.
    pres_query_t g = {.op = PRES_Q_GET};
    strcpy(g.user, "ann");
    zframe_t *r = it_query(&cfg, &g);
    CHECK(s_ok(r));
    CHECK_EQ(it_uint(r, "sessions"), 2);
    uint32_t n = 0;
    CHECK(it_mp_count(r, "devices", &n) == 0);
    CHECK_EQ(n, 2);
    bool seen_phone = false;
    for (uint32_t i = 0; i < n; i++) {
        char p[64], session[PRES_ID_MAX + 1];
        snprintf(p, sizeof(p), "devices.%u.session", i);
        snprintf(session, sizeof(session), "%s", it_str(r, p));
        snprintf(p, sizeof(p), "devices.%u.since", i);
        uint64_t s_since = it_uint(r, p);
        snprintf(p, sizeof(p), "devices.%u.last_seen", i);
        uint64_t s_seen = it_uint(r, p);
        CHECK(s_seen >= s_since);
        snprintf(p, sizeof(p), "devices.%u.state", i);
        const char *state = it_str(r, p);
        if (strcmp(session, "phone") == 0) {
            seen_phone = true;
            CHECK_STR(state, "away");
            CHECK_EQ(s_since, since);
            snprintf(p, sizeof(p), "devices.%u.device", i);
            CHECK_STR(it_str(r, p), "Pixel 7");
        } else {
            CHECK_STR(session, "laptop");
            CHECK_STR(state, "online");
        }
    }
    CHECK(seen_phone);
    zframe_destroy(&r);
    strcpy(g.user, "bob");
    r = it_query(&cfg, &g);
    CHECK(s_ok(r));
    CHECK(it_mp_count(r, "devices", &n) == 0);
    CHECK_EQ(n, 0);
    zframe_destroy(&r);

    //  get_many: order kept, unknown flagged, repeated ids answered twice.
    const char *ids[] = {"zed", "bob", "ann", "zed"};
    r = s_many(ids, 4);
    CHECK(s_ok(r));
    CHECK(it_mp_count(r, "users", &n) == 0);
    CHECK_EQ(n, 4);
    CHECK_STR(it_str(r, "users.0.user"), "zed");
    CHECK_STR(it_str(r, "users.0.state"), "offline");
    bool unknown = false;
    CHECK(it_mp_bool(r, "users.0.unknown", &unknown) == 0 && unknown);
    CHECK_STR(it_str(r, "users.1.user"), "bob");
    CHECK_STR(it_str(r, "users.1.state"), "offline");
    CHECK(it_mp_bool(r, "users.1.unknown", &unknown) != 0);
    CHECK_STR(it_str(r, "users.2.user"), "ann");
    CHECK_STR(it_str(r, "users.2.state"), "online");
    CHECK_EQ(it_uint(r, "users.2.sessions"), 2);
    CHECK(it_mp_count(r, "users.2.devices", &n) == 0);
    CHECK_EQ(n, 2);
    CHECK_STR(it_str(r, "users.3.user"), "zed");
    zframe_destroy(&r);

    //  1,000 ids of 64 bytes (the largest request) work, in order.
    static char big[1001][PRES_ID_MAX + 1];
    static const char *bigp[1001];
    for (int i = 0; i < 1001; i++) {
        memset(big[i], 'x', PRES_ID_MAX);
        snprintf(big[i], sizeof(big[i]), "%04d", i);
        big[i][4] = 'x';
        bigp[i] = big[i];
    }
    bigp[500] = "ann";
    r = s_many(bigp, 1000);
    CHECK(s_ok(r));
    CHECK(it_mp_count(r, "users", &n) == 0);
    CHECK_EQ(n, 1000);
    CHECK_STR(it_str(r, "users.999.user"), big[999]);
    CHECK_STR(it_str(r, "users.500.state"), "online");
    zframe_destroy(&r);

    //  0 or 1,001 ids, a bad id, a non-array: errors.
    static uint8_t raw[PRES_QUERY_FRAME_MAX];
    for (int bad = 0; bad < 4; bad++) {
        pres_mp_writer_t w;
        pres_mp_writer_init(&w, raw, sizeof(raw));
        msgpack_pack_map(&w.pk, 2);
        pres_mp_pack_kv_str(&w, "op", "get_many");
        if (bad == 3) {
            pres_mp_pack_kv_str(&w, "users", "ann");
        } else {
            uint32_t count = bad == 0 ? 0 : bad == 1 ? 1001 : 2;
            pres_mp_pack_cstr(&w, "users");
            msgpack_pack_array(&w.pk, count);
            for (uint32_t i = 0; i < count; i++)
                pres_mp_pack_cstr(&w, bad == 2 && i == 1 ? "bad id!" : "ann");
        }
        CHECK(!w.overflow);
        r = it_query_raw(&cfg, raw, w.len);
        CHECK(r && !s_ok(r));
        zframe_destroy(&r);
    }
    //  The encoder refuses what the broker would.
    pres_query_t q = {.op = PRES_Q_GET_MANY, .nusers = 1001, .users = bigp};
    CHECK(pres_query_encode(&q, raw, sizeof(raw)) == 0);

    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("it.broker_get_many: ok\n");
    return 0;
}
