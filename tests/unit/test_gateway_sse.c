/*  unit.gateway_sse: the SSE ring (gateway_sse.c) behind an in-process
    MHD daemon on a loopback port, with no broker and no gateway: replay
    from Last-Event-ID, the live tail, resync when the ring no longer
    holds what a client needs (too old, a gap, a lost tail), the client
    limit, bad ids, and the end of every stream at shutdown. The changes
    are pushed by the test itself, as the bus thread would. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway_sse.h"
#include "ithttp.h"
#include "testutil.h"

static gw_sse_t *sse;
static pres_jwt_claims_t claims;  //  what a verified token said
static gw_token_id_t token_id;    //  its revocation id

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *data,
          size_t *size, void **state)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data;
    (void)size;
    if (!*state) {  //  answer on the second call (see gateway_http.c)
        *state = conn;
        return MHD_YES;
    }
    const char *last =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    unsigned status = 0;
    struct MHD_Response *resp =
        gw_sse_open(sse, conn, last, &claims, &token_id, &status);
    if (!resp) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result rc = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    enum MHD_Result rc = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

//  Closed clients are noticed at their next keepalive write (the bus
//  thread ticks; here the test does) and their slots freed.
static void
s_reap(int want)
{
    IT_POLL_UNTIL(
        (gw_sse_tick(sse, pres_mono_ms()), gw_sse_clients(sse) == want), 10000);
    CHECK_EQ(gw_sse_clients(sse), want);
}

static void
s_push(uint64_t seq)
{
    char json[64];
    int n =
        snprintf(json, sizeof json, "{\"seq\":%llu}", (unsigned long long)seq);
    gw_sse_push(sse, seq, json, (size_t)n);
}

//  The next event: its id, and whether it was a resync.
static uint64_t
s_next(ith_sse_t *s, bool *resync)
{
    char event[32], data[256];
    uint64_t id = 0;
    CHECK_EQ(
        ith_sse_next(s, &id, event, sizeof event, data, sizeof data, 10000), 1);
    *resync = strcmp(event, "resync") == 0;
    if (!*resync) {  //  the data is the change pushed with that id
        char want[64];
        snprintf(want, sizeof want, "{\"seq\":%llu}", (unsigned long long)id);
        CHECK_STR(data, want);
    }
    return id;
}

static void
s_expect(ith_sse_t *s, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++) {
        bool resync;
        CHECK_EQ(s_next(s, &resync), seq);
        CHECK(!resync);
    }
}

static void
s_expect_resync(ith_sse_t *s, uint64_t at)
{
    bool resync;
    CHECK_EQ(s_next(s, &resync), at);
    CHECK(resync);
}

int
main(void)
{
    //  The stream's rights (a token, its revocation id, the account
    //  cache): valid for the whole test.
    char dir[] = "/tmp/pres-unit-sse-XXXXXX";
    CHECK(mkdtemp(dir));
    char revoked[64];
    snprintf(revoked, sizeof revoked, "%s/revoked", dir);
    static const char secret[] = "0123456789abcdef0123456789abcdef01234567";
    pres_jwt_t *jwt = pres_jwt_new_key("HS256", (const unsigned char *)secret,
                                       strlen(secret), 30);
    CHECK(jwt);
    gw_auth_t *auth = gw_auth_new_with(&jwt, revoked, 30);
    CHECK(auth);
    gw_accounts_t *accounts = gw_accounts_new();
    CHECK(accounts);
    snprintf(claims.sub, sizeof claims.sub, "sse-admin");
    claims.admin = true;
    claims.exp = (int64_t)time(NULL) + 3600;
    gw_auth_token_id("a.b.c", 5, &token_id);
    sse = gw_sse_new(4, 1, 30, auth, accounts);
    CHECK(sse);
    int port = it_free_port();
    CHECK(port > 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME,
        (uint16_t)port, NULL, NULL, s_handler, NULL, MHD_OPTION_END);
    CHECK(d);
    static ith_resp_t r;
    static ith_sse_t a, b, c, e;

    //  The head unknown (the broker never reached): 503.
    CHECK_EQ(ith_request(port, "GET", "/", NULL, NULL, &r, 5000), 503);
    gw_sse_set_head(sse, 10);
    //  A Last-Event-ID that is not a number: 400.
    CHECK_EQ(ith_sse_open(&a, port, "t", "abc", 5000), -1);

    //  From the live tail: the changes that follow, in order.
    CHECK_EQ(ith_sse_open(&a, port, "t", NULL, 5000), 0);
    for (uint64_t seq = 11; seq <= 20; seq++)
        s_push(seq);
    s_expect(&a, 11, 20);
    //  Replay from Last-Event-ID, then the tail.
    CHECK_EQ(ith_sse_open(&b, port, "t", "15", 5000), 0);
    s_expect(&b, 16, 20);
    s_push(21);
    s_expect(&a, 21, 21);
    s_expect(&b, 21, 21);
    //  Before what the ring holds (it started at 11): resync at the head.
    CHECK_EQ(ith_sse_open(&c, port, "t", "3", 5000), 0);
    s_expect_resync(&c, 21);
    s_push(22);
    s_expect(&c, 22, 22);
    ith_sse_close(&c);
    s_reap(2);

    //  More than the ring holds: a client that was at 22 and reads late
    //  still gets the last GW_SSE_RING in order only if it kept up; one
    //  asking from before them gets a resync.
    uint64_t last = 22 + GW_SSE_RING + 100;
    for (uint64_t seq = 23; seq <= last; seq++)
        s_push(seq);
    CHECK_EQ(ith_sse_open(&c, port, "t", "22", 5000), 0);
    s_expect_resync(&c, last);
    ith_sse_close(&c);
    s_reap(2);
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)(last - 10));
    CHECK_EQ(ith_sse_open(&c, port, "t", id, 5000), 0);
    s_expect(&c, last - 9, last);
    ith_sse_close(&c);
    ith_sse_close(&a);
    ith_sse_close(&b);

    s_reap(0);

    //  A gap in what the bus delivered: clients behind it resync.
    CHECK_EQ(ith_sse_open(&a, port, "t", NULL, 5000), 0);
    s_push(last + 1);
    s_expect(&a, last + 1, last + 1);
    s_push(last + 5);  //  last+2 .. last+4 never came
    s_expect_resync(&a, last + 5);
    s_push(last + 6);
    s_expect(&a, last + 6, last + 6);
    //  A lost tail (the bus noticed it from the broker's head): waiting
    //  clients resync at once, and the stream goes on after it.
    gw_sse_lost(sse, last + 9);
    s_expect_resync(&a, last + 9);
    s_push(last + 10);
    s_expect(&a, last + 10, last + 10);

    //  The client limit (4): a fifth stream is refused with 503.
    CHECK_EQ(ith_sse_open(&b, port, "t", NULL, 5000), 0);
    CHECK_EQ(ith_sse_open(&c, port, "t", NULL, 5000), 0);
    CHECK_EQ(ith_sse_open(&e, port, "t", NULL, 5000), 0);
    IT_POLL_UNTIL(gw_sse_clients(sse) == 4, 5000);
    CHECK_EQ(gw_sse_clients(sse), 4);
    CHECK_EQ(ith_request(port, "GET", "/", NULL, NULL, &r, 5000), 503);

    //  Shutdown ends every stream.
    gw_sse_shutdown(sse);
    char event[32], data[64];
    uint64_t got;
    ith_sse_t *all[4] = {&a, &b, &c, &e};
    for (int i = 0; i < 4; i++) {
        int rc;
        while ((rc = ith_sse_next(all[i], &got, event, sizeof event, data,
                                  sizeof data, 10000)) == 1)
            ;
        CHECK_EQ(rc, -1);  //  ended, not timed out
    }
    MHD_stop_daemon(d);
    gw_sse_destroy(&sse);
    CHECK(sse == NULL);
    gw_accounts_destroy(&accounts);
    gw_auth_destroy(&auth);
    unlink(revoked);
    rmdir(dir);
    printf("unit.gateway_sse: ok\n");
    return 0;
}
