/*  it.broker_changelog: the change log of the broker, driven over the bus
    and REQ. A consumer notes the head seq, is away while 10,000 changes
    are made, then pages through changes_since and must see every one of
    them exactly once, in order, equal to what was published; the log
    survives a broker restart; a seq older than the log (changelog_keep)
    gets `resync`; bad requests get errors. */
#include "itutil.h"
#include "pres_mp.h"
#include "testutil.h"

#define N_CHANGES 10000

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;

static zframe_t *
s_since(uint64_t seq, uint32_t limit)
{
    pres_query_t q = {.op = PRES_Q_CHANGES_SINCE, .seq = seq, .limit = limit};
    zframe_t *r = it_query(&cfg, &q);
    CHECK(r);
    return r;
}

static bool
s_ok(zframe_t *r)
{
    bool ok = false;
    return it_mp_bool(r, "ok", &ok) == 0 && ok;
}

//  Read every change after `from` up to the head; check seqs from+1..to
//  come exactly once, in order, and decode. Returns the pages used.
static int
s_catch_up(uint64_t from, uint64_t to, uint32_t limit)
{
    uint64_t want = from + 1;
    int pages = 0;
    uint64_t at = from;
    while (true) {
        zframe_t *r = s_since(at, limit);
        if (!s_ok(r))
            it_print_reply(r);
        CHECK(s_ok(r));
        pages++;
        uint32_t n = 0;
        CHECK(it_mp_count(r, "changes", &n) == 0);
        CHECK(n <= (limit ? limit : 1000));
        for (uint32_t i = 0; i < n; i++) {
            char path[64];
            snprintf(path, sizeof(path), "changes.%u", i);
            pres_mp_reader_t at_r;
            CHECK(pres_mp_find(zframe_data(r), zframe_size(r), path, &at_r) ==
                  0);
            const uint8_t *start = at_r.p;
            CHECK(pres_mp_skip(&at_r) == 0);
            pres_change_t ch;
            const char *why = "";
            CHECK(pres_change_decode(&ch, start, (size_t)(at_r.p - start),
                                     &why) == 0);
            CHECK_EQ(ch.seq, want);  //  none missed, none doubled
            want++;
        }
        uint64_t next = 0;
        bool more = it_mp_uint(r, "next", &next) == 0;
        zframe_destroy(&r);
        if (!more)
            break;
        CHECK_EQ(next, want - 1);
        at = next;
    }
    CHECK_EQ(want - 1, to);
    return pages;
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-changelog") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    //  A live subscriber keeps what was published, to compare with the
    //  replay byte for byte (first few only).
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "presence.", "gateway-log-1", &sub, &pub) == 0);

    //  Caught up: an empty page, no `next`.
    uint64_t head0 = it_stat(&cfg, "seq");
    zframe_t *r = s_since(head0, 0);
    CHECK(s_ok(r));
    uint32_t n = 99;
    CHECK(it_mp_count(r, "changes", &n) == 0);
    CHECK_EQ(n, 0);
    uint64_t next;
    CHECK(it_mp_uint(r, "next", &next) != 0);
    zframe_destroy(&r);

    //  The consumer is away while 10,000 changes happen.
    for (int i = 0; i < N_CHANGES / 2; i++) {
        char user[32];
        snprintf(user, sizeof(user), "u%05d", i);
        CHECK(it_send_login(pub, user, "s1") == 0);
        CHECK(it_send_logout(pub, user, "s1") == 0);
    }
    uint64_t head = it_wait_stat(&cfg, "seq", head0 + N_CHANGES, 30000);
    CHECK_EQ(head, head0 + N_CHANGES);

    //  The first published change equals the first replayed one.
    pres_change_t live;
    CHECK(it_recv(sub, &live, NULL, 10000) == 1);
    CHECK_EQ(live.seq, head0 + 1);
    r = s_since(head0, 1);
    CHECK(s_ok(r));
    CHECK_EQ(it_uint(r, "changes.0.seq"), live.seq);
    CHECK_STR(it_str(r, "changes.0.user"), live.user);
    CHECK_STR(it_str(r, "changes.0.reason"), "login");
    CHECK_EQ(it_uint(r, "changes.0.at"), live.at);
    CHECK_EQ(it_uint(r, "next"), head0 + 1);
    zframe_destroy(&r);
    zsock_destroy(&sub);

    //  Catch up in pages of the default (1,000), then of 333.
    CHECK_EQ(s_catch_up(head0, head, 0), N_CHANGES / 1000);
    CHECK(s_catch_up(head0 + 17, head, 333) >= 30);

    //  Bad requests: limit 0 or over 1,000, missing seq.
    uint8_t raw[64];
    pres_mp_writer_t w;
    for (int bad = 0; bad < 3; bad++) {
        pres_mp_writer_init(&w, raw, sizeof(raw));
        msgpack_pack_map(&w.pk, bad == 2 ? 1 : 3);
        pres_mp_pack_kv_str(&w, "op", "changes_since");
        if (bad < 2) {
            pres_mp_pack_kv_uint(&w, "seq", 0);
            pres_mp_pack_kv_uint(&w, "limit", bad == 0 ? 0 : 1001);
        }
        r = it_query_raw(&cfg, raw, w.len);
        CHECK(r && !s_ok(r));
        zframe_destroy(&r);
    }
    //  A seq ahead of the broker cannot be served.
    r = s_since(head + 5, 0);
    CHECK(!s_ok(r));
    CHECK_STR(it_str(r, "error"), "resync");
    zframe_destroy(&r);

    //  The log is durable: after a restart the same replay comes back.
    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    s_catch_up(head - 2500, head, 0);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);

    //  A short log: only the last 100 changes are kept, older seqs resync.
    it_env_set(&env, "changelog_keep", "100");
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    pub = it_pub_new(&cfg, "gateway-log-2");
    CHECK(pub);
    uint64_t head1 = head;
    for (int i = 0; i < 200; i++)
        CHECK(it_send_login(pub, "keeper", i % 2 ? "a" : "b") == 0 &&
              it_send_logout(pub, "keeper", i % 2 ? "a" : "b") == 0);
    head = it_wait_stat(&cfg, "seq", head1 + 400, 30000);
    CHECK_EQ(head, head1 + 400);
    //  The trim runs per batch: poll until the log is short, making a
    //  change now and then so batches keep coming.
    bool trimmed = false;
    int64_t until = pres_mono_ms() + 30000;
    while (!trimmed && pres_mono_ms() < until) {
        r = s_since(head - 150, 0);
        trimmed = !s_ok(r);
        if (trimmed)
            CHECK_STR(it_str(r, "error"), "resync");
        zframe_destroy(&r);
        if (!trimmed) {
            CHECK(it_send_login(pub, "keeper", "x") == 0);
            CHECK(it_send_logout(pub, "keeper", "x") == 0);
            it_sleep_ms(10);  //  poll interval
            head = it_stat(&cfg, "seq");
        }
    }
    CHECK(trimmed);
    head = it_stat(&cfg, "seq");
    s_catch_up(head - 100, head, 0);

    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("it.broker_changelog: ok\n");
    return 0;
}
