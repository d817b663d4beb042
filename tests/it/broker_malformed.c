/*  it.broker_malformed: every kind of malformed event frame is refused and
    counted, changes nothing, and the broker keeps answering; malformed
    queries get {ok: false, error}. */
#include <msgpack.h>
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;

//  Pack a heartbeat map with one field replaced/added/dropped.
typedef enum {
    F_PLAIN,
    F_USER_INT,
    F_NO_SEQ,
    F_EXTRA,
    F_V2,
    F_BAD_USER,
    F_TYPE_DANCE,
    F_HUGE_ARRAY,
    F_DEEP
} s_flaw_t;

static size_t
s_body(s_flaw_t flaw, uint8_t *out, size_t cap)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t n = 7;
    if (flaw == F_NO_SEQ)
        n--;
    if (flaw == F_EXTRA || flaw == F_HUGE_ARRAY || flaw == F_DEEP)
        n++;
    msgpack_pack_map(&pk, n);
#define KEY(k) msgpack_pack_str_with_body(&pk, k, strlen(k))
    KEY("v");
    msgpack_pack_uint64(&pk, flaw == F_V2 ? 2 : 1);
    KEY("type");
    const char *type = flaw == F_TYPE_DANCE ? "dance" : "heartbeat";
    msgpack_pack_str_with_body(&pk, type, strlen(type));
    KEY("user");
    if (flaw == F_USER_INT)
        msgpack_pack_uint64(&pk, 5);
    else {
        const char *u = flaw == F_BAD_USER ? "bad user!" : "mallory";
        msgpack_pack_str_with_body(&pk, u, strlen(u));
    }
    KEY("at");
    msgpack_pack_uint64(&pk, 1);
    KEY("src");
    msgpack_pack_str_with_body(&pk, "gateway-mal-1", 13);
    if (flaw != F_NO_SEQ) {
        KEY("seq");
        msgpack_pack_uint64(&pk, 1);
    }
    KEY("session");
    msgpack_pack_str_with_body(&pk, "s1", 2);
    if (flaw == F_EXTRA) {
        KEY("foo");
        msgpack_pack_uint64(&pk, 1);
    }
    size_t len = sb.size;
    CHECK(len + 5 + 64 <= cap);
    memcpy(out, sb.data, len);
    msgpack_sbuffer_destroy(&sb);
    if (flaw == F_HUGE_ARRAY) {
        //  "state": array32 claiming 0x0FFFFFFF elements, none present.
        const uint8_t tail[] = {0xa5, 's',  't',  'a',  't', 'e',
                                0xdd, 0x0f, 0xff, 0xff, 0xff};
        memcpy(out + len, tail, sizeof(tail));
        len += sizeof(tail);
    }
    if (flaw == F_DEEP) {
        const uint8_t key[] = {0xa5, 's', 't', 'a', 't', 'e'};
        memcpy(out + len, key, sizeof(key));
        len += sizeof(key);
        for (int i = 0; i < 40; i++)
            out[len++] = 0x91;  //  fixarray of 1, nested 40 deep
        out[len++] = 0x01;
    }
    return len;
#undef KEY
}

static void
s_send(zsock_t *pub, const char *topic, const uint8_t *body, size_t len)
{
    const void *data[2] = {topic, body};
    size_t sizes[2] = {strlen(topic), len};
    CHECK(it_raw_send(pub, 2, data, sizes) == 0);
}

static void
s_query_error(const void *req, size_t len)
{
    zframe_t *rep = it_query_raw(&cfg, req, len);
    CHECK(rep);
    bool ok = true;
    CHECK(it_mp_bool(rep, "ok", &ok) == 0);
    CHECK(!ok);
    CHECK(strlen(it_str(rep, "error")) > 0);
    zframe_destroy(&rep);
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-malformed") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    zsock_t *pub = it_raw_pub_new(&cfg);
    CHECK(pub);

    //  The plain body is valid: prove it first, then undo it via counts.
    uint8_t body[512];
    size_t len = s_body(F_PLAIN, body, sizeof(body));
    uint64_t seq0 = it_stat(&cfg, "seq");
    int sent = 0;

    //  1. wrong frame counts
    const void *one[1] = {"heartbeat"};
    size_t one_size[1] = {9};
    CHECK(it_raw_send(pub, 1, one, one_size) == 0);
    sent++;
    const void *three[3] = {"heartbeat", body, body};
    size_t three_size[3] = {9, len, len};
    CHECK(it_raw_send(pub, 3, three, three_size) == 0);
    sent++;
    //  2. not msgpack
    s_send(pub, "heartbeat", (const uint8_t *)"\xc1hello", 6);
    sent++;
    //  3. truncated
    s_send(pub, "heartbeat", body, len - 3);
    sent++;
    //  4. topic does not match the type
    s_send(pub, "login", body, len);
    sent++;
    //  5. the flawed maps
    s_flaw_t flaws[] = {F_USER_INT, F_NO_SEQ,     F_EXTRA,      F_V2,
                        F_BAD_USER, F_TYPE_DANCE, F_HUGE_ARRAY, F_DEEP};
    for (size_t i = 0; i < sizeof(flaws) / sizeof(flaws[0]); i++) {
        uint8_t bad[512];
        size_t blen = s_body(flaws[i], bad, sizeof(bad));
        s_send(pub, flaws[i] == F_TYPE_DANCE ? "dance" : "heartbeat", bad,
               blen);
        sent++;
    }
    //  6. a top-level array instead of a map, and an empty body
    s_send(pub, "heartbeat", (const uint8_t *)"\x91\x01", 2);
    sent++;
    s_send(pub, "heartbeat", body, 0);
    sent++;
    //  7. oversize for the codec (over 4 KiB, within the socket's margin)
    static uint8_t big[PRES_MSG_MAX + 300];
    memcpy(big, body, len);
    memset(big + len, 0xc0, sizeof(big) - len);
    s_send(pub, "heartbeat", big, sizeof(big));
    sent++;

    int64_t end = pres_mono_ms() + 5000;
    while (it_stat(&cfg, "events.malformed") < (uint64_t)sent &&
           pres_mono_ms() < end)
        usleep(20 * 1000);
    CHECK_EQ(it_stat(&cfg, "events.malformed"), sent);
    CHECK_EQ(it_stat(&cfg, "events.refused"), sent);
    CHECK_EQ(it_stat(&cfg, "events.applied"), 0);
    CHECK_EQ(it_stat(&cfg, "seq"), seq0);
    CHECK_EQ(it_get_user(&cfg, "mallory", NULL, NULL, NULL, NULL), 1);

    //  8. over the socket cap (ZMQ_MAXMSGSIZE = the codec's 4 KiB plus a
    //  margin): libzmq drops the connection before the frame is queued in
    //  the broker's memory, so it is not even counted; nothing changes
    //  and the broker keeps answering.
    static uint8_t huge[PRES_BUS_EVENT_MAXMSG + 1000];
    s_send(pub, "heartbeat", huge, sizeof(huge));
    usleep(200 * 1000);
    CHECK(it_proc_alive(&broker));
    CHECK_EQ(it_stat(&cfg, "events.applied"), 0);
    CHECK_EQ(it_stat(&cfg, "events.malformed"), sent);
    CHECK_EQ(it_stat(&cfg, "seq"), seq0);
    zsock_destroy(&pub);

    //  The valid body from a fresh connection is applied: the broker
    //  still works.
    pub = it_raw_pub_new(&cfg);
    CHECK(pub);
    s_send(pub, "heartbeat", body, len);
    end = pres_mono_ms() + 5000;
    while (it_stat(&cfg, "events.applied") < 1 && pres_mono_ms() < end)
        usleep(20 * 1000);
    CHECK_EQ(it_stat(&cfg, "events.applied"), 1);
    char state[16];
    CHECK_EQ(it_get_user(&cfg, "mallory", state, NULL, NULL, NULL), 0);
    CHECK_STR(state, "online");
    zsock_destroy(&pub);

    //  Malformed queries: {ok: false, error}, never silence.
    s_query_error("\xc1", 1);
    s_query_error("\x91\x01", 2);
    s_query_error("\x81\xa2op\xa4nope", 8);
    s_query_error("\x81\xa2op\xa3get", 7);  //  get without user
    s_query_error("\x82\xa2op\xa3get\xa4user\xa4\x62\x61\x64\x21", 16);
    s_query_error("\x81\xa2op\x05", 5);
    s_query_error("\x82\xa2op\xa4list\xa5limit\xcd\xff\xff", 17);
    {
        //  array32 with a huge count as a query
        const uint8_t q[] = {0x81, 0xa2, 'o',  'p', 0xdd,
                             0x0f, 0xff, 0xff, 0xff};
        s_query_error(q, sizeof(q));
    }
    //  And good queries still work.
    CHECK_EQ(it_stat(&cfg, "users.online"), 1);

    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}
