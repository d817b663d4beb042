/*  it.gateway_changelog: the second-wave HTTP routes through real HTTP
    (tests/it/ithttp.h) against presence-broker + presence-gateway in a temp
   dir: POST /v1/users/batch (order, unknown flags, 1,001 ids -> 400), devices
    in GET /v1/users/{user}, GET /v1/users/{user}/audit (admin) and
    /history, GET /v1/stats/series, and SSE Last-Event-ID across a gateway
    restart: the changes made while the gateway was down are replayed from
    the broker's change log, not answered with a resync. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ithttp.h"
#include "itutil.h"
#include "pres_jwt.h"
#include "pres_log.h"
#include "testutil.h"

static it_env_t s_env;
static it_proc_t s_broker, s_gateway;
static int s_port;
static ith_minter_t *s_minter;  //  tokens signed with the gateway's secret

typedef ith_resp_t s_resp_t;

//  One request to our gateway (5 s); the response is static.
static s_resp_t *
s_http(const char *method, const char *path, const char *token,
       const char *body)
{
    static s_resp_t r;
    ith_request(s_port, method, path, token, body, &r, 5000);
    return &r;
}

#define EXPECT(r, want)                                                        \
    do {                                                                       \
        const s_resp_t *r_ = (r);                                              \
        if (r_->status != (want))                                              \
            fprintf(stderr, "status %d, want %d; body: %.300s\n", r_->status,  \
                    (want), r_->body);                                         \
        CHECK_EQ(r_->status, (want));                                          \
    } while (0)

static bool
s_has(const s_resp_t *r, const char *needle)
{
    return strstr(r->body, needle) != NULL;
}

static void
s_gateway_start(void)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s_port);
    it_env_set(&s_env, "http_listen", listen);
    CHECK(it_spawn(&s_env, "presence-gateway", NULL, NULL, &s_gateway) == 0);
    int64_t until = pres_mono_ms() + 20000;
    while (pres_mono_ms() < until) {
        if (s_http("GET", "/healthz", NULL, NULL)->status == 200)
            return;
        it_sleep_ms(50);  //  poll interval
    }
    it_proc_dump_log(&s_gateway);
    CHECK(!"gateway did not become healthy");
}

static char *
s_mint(const char *user, bool admin)
{
    char *t = ith_mint(s_minter, user, admin, 600);
    CHECK(t);
    return t;
}

//  Stop the gateway, make n changes (n even) over the bus, start it again
//  and resume an SSE stream from the last seq seen before: every change
//  comes, once, in order, and no resync.
static void
s_sse_resume(const pres_config_t *cfg, pres_pub_t *pub, const char *admin,
             int n)
{
    static int round;
    uint64_t seen = it_stat(cfg, "seq");
    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    for (int i = 0; i < n / 2; i++) {
        char user[32];
        snprintf(user, sizeof user, "g%d-%04d", round, i);
        CHECK(it_send_login(pub, user, "s") == 0);
        CHECK(it_send_logout(pub, user, "s") == 0);
    }
    round++;
    CHECK_EQ(it_wait_stat(cfg, "seq", seen + (uint64_t)n, 30000),
             seen + (uint64_t)n);
    s_gateway_start();
    char last[32];
    snprintf(last, sizeof last, "%" PRIu64, seen);
    static char buf[4 << 20];
    int fd = -1;
    //  The gateway answers 503 until it has reached the broker once.
    int64_t until = pres_mono_ms() + 20000;
    while (pres_mono_ms() < until) {
        fd = ith_sse_request(s_port, admin, last, 3000);
        CHECK(fd >= 0);
        buf[0] = '\0';
        if (ith_read_until(fd, buf, sizeof buf, "\r\n\r\n", 3000) &&
            strstr(buf, " 200 "))
            break;
        close(fd);
        fd = -1;
        it_sleep_ms(100);  //  retry interval
    }
    CHECK(fd >= 0);
    char want[64];
    snprintf(want, sizeof want, "id: %" PRIu64 "\ndata: {", seen + (uint64_t)n);
    CHECK(ith_read_until(fd, buf, sizeof buf, want, 10000));
    CHECK(!strstr(buf, "event: resync"));
    const char *p = buf;
    for (uint64_t id = seen + 1; id <= seen + (uint64_t)n; id++) {
        snprintf(want, sizeof want, "id: %" PRIu64 "\n", id);
        const char *q = strstr(p, want);
        CHECK(q);
        p = q + strlen(want);
    }
    snprintf(want, sizeof want, "id: %" PRIu64 "\n", seen + 1);
    CHECK(!strstr(strstr(buf, want) + 1, want));  //  not twice
    close(fd);
}

static void
s_test_batch(const char *alice)
{
    s_resp_t *r = s_http("POST", "/v1/users/batch", alice,
                         "{\"users\":[\"nobody\",\"bob\",\"alice\"]}");
    EXPECT(r, 200);
    const char *a = strstr(r->body, "\"user\":\"nobody\"");
    const char *b = strstr(r->body, "\"user\":\"bob\"");
    const char *c = strstr(r->body, "\"user\":\"alice\"");
    CHECK(a && b && c && a < b && b < c);
    CHECK(strstr(a, "\"unknown\":true") && strstr(a, "\"unknown\":true") < b);
    CHECK(s_has(r, "{\"users\":["));
    CHECK(!strstr(b, "\"unknown\""));
    //  1,000 ids are fine, 1,001 are a 400 (not a 413: the body fits).
    static char big[80 * 1024];
    for (int n = 1000; n <= 1001; n++) {
        size_t len = (size_t)snprintf(big, sizeof big, "{\"users\":[");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(big + len, sizeof big - len, "%s\"u%04d\"",
                                    i ? "," : "", i);
        snprintf(big + len, sizeof big - len, "]}");
        r = s_http("POST", "/v1/users/batch", alice, big);
        EXPECT(r, n == 1000 ? 200 : 400);
        if (n == 1000)
            CHECK(s_has(r, "\"user\":\"u0999\""));
    }
    EXPECT(s_http("POST", "/v1/users/batch", alice, "{\"users\":[]}"), 400);
    EXPECT(s_http("POST", "/v1/users/batch", alice, "{\"users\":[1]}"), 400);
    EXPECT(s_http("POST", "/v1/users/batch", alice, "{\"users\":[\"a b\"]}"),
           400);
    EXPECT(s_http("POST", "/v1/users/batch", alice, "[\"alice\"]"), 400);
    EXPECT(s_http("POST", "/v1/users/batch", NULL, "{\"users\":[\"a\"]}"), 401);
    EXPECT(s_http("GET", "/v1/users/batch", alice, NULL), 404);
    //  Other routes keep the 4 KiB cap.
    static char over[6000];
    memset(over, ' ', sizeof over - 1);
    over[0] = '{';
    over[sizeof over - 2] = '}';
    EXPECT(s_http("POST", "/v1/heartbeat", alice, over), 413);
}

int
main(void)
{
    CHECK(it_env_init(&s_env, "gateway_changelog") == 0);
    it_env_set(&s_env, "sse_keepalive", "1");
    it_env_set(&s_env, "rate_limit", "0");
    pres_config_t cfg;
    CHECK(it_env_config(&s_env, &cfg) == 0);
    CHECK(it_broker_start(&s_env, NULL, &s_broker) == 0);
    s_port = it_free_port();
    CHECK(s_port > 0);
    s_gateway_start();
    s_minter = ith_minter_new(&s_env);
    char *alice = s_mint("alice", false);
    char *bob = s_mint("bob", false);
    char *admin = s_mint("root", true);

    //  alice on two devices; bob logged in and out.
    s_resp_t *r = s_http("POST", "/v1/login", alice, "{\"device\":\"phone\"}");
    EXPECT(r, 200);
    r = s_http("POST", "/v1/login", alice, "{\"device\":\"laptop\"}");
    EXPECT(r, 200);
    EXPECT(s_http("POST", "/v1/login", bob, "{}"), 200);
    EXPECT(s_http("POST", "/v1/logout", bob, "{}"), 204);
    free(bob);
    bob = s_mint("bob", false);  //  logout revoked the old one

    //  devices in GET /v1/users/{user}.
    r = s_http("GET", "/v1/users/alice", bob, NULL);
    EXPECT(r, 200);
    CHECK(s_has(r, "\"sessions\":2") && s_has(r, "\"devices\":[{"));
    CHECK(s_has(r, "\"device\":\"phone\"") &&
          s_has(r, "\"device\":\"laptop\""));
    CHECK(s_has(r, "\"since\":") && s_has(r, "\"last_seen\":") &&
          s_has(r, "\"session\":\""));

    s_test_batch(alice);

    //  Audit (admin only) and history.
    r = s_http("PUT", "/v1/users/bob/account", admin,
               "{\"status\":\"suspended\",\"reason\":\"spam\"}");
    EXPECT(r, 200);
    EXPECT(s_http("GET", "/v1/users/bob/audit", alice, NULL), 403);
    r = s_http("GET", "/v1/users/bob/audit", admin, NULL);
    EXPECT(r, 200);
    CHECK(s_has(r, "{\"entries\":[{"));
    CHECK(s_has(r, "\"old\":\"active\"") && s_has(r, "\"new\":\"suspended\"") &&
          s_has(r, "\"reason\":\"spam\"") && s_has(r, "\"by\":\"root\"") &&
          s_has(r, "\"at\":"));
    EXPECT(s_http("GET", "/v1/users/b%20b/audit", admin, NULL), 400);
    EXPECT(s_http("POST", "/v1/users/bob/audit", admin, "{}"), 405);
    r = s_http("GET", "/v1/users/bob/history", alice, NULL);
    EXPECT(r, 200);
    const char *s1 = strstr(r->body, "\"reason\":\"suspended\"");
    const char *s2 = strstr(r->body, "\"reason\":\"logout\"");
    const char *s3 = strstr(r->body, "\"reason\":\"login\"");
    CHECK(s1 && s2 && s3 && s1 < s2 && s2 < s3);  //  newest first
    CHECK(s_has(r, "\"prev\":\"offline\"") && s_has(r, "\"seq\":"));
    r = s_http("GET", "/v1/users/bob/history?limit=1", alice, NULL);
    EXPECT(r, 200);
    CHECK(s_has(r, "suspended") && !s_has(r, "logout"));
    EXPECT(s_http("GET", "/v1/users/bob/history?limit=0", alice, NULL), 400);

    //  Series (admin only).
    r = s_http("GET", "/v1/stats/series?minutes=30", admin, NULL);
    EXPECT(r, 200);
    CHECK(s_has(r, "{\"points\":[{\"at\":") && s_has(r, "\"online\":1") &&
          s_has(r, "\"away\":0"));
    EXPECT(s_http("GET", "/v1/stats/series?minutes=43201", admin, NULL), 400);
    EXPECT(s_http("GET", "/v1/stats/series?minutes=x", admin, NULL), 400);
    EXPECT(s_http("GET", "/v1/stats/series", alice, NULL), 403);
    EXPECT(s_http("GET", "/v1/stats/series?minutes=43200", admin, NULL), 200);

    //  Presence-quality metrics from the broker on /metrics.
    r = s_http("GET", "/metrics", NULL, NULL);
    EXPECT(r, 200);
    CHECK(s_has(r, "presence_broker_transitions_total{reason=\"login\"} 3\n"));
    CHECK(s_has(r, "presence_broker_transitions_total{reason=\"suspended\"} "
                   "1\n"));
    //  bob was offline already: not forced offline.
    CHECK(s_has(r, "presence_broker_forced_offline_total{status=\"suspended\"} "
                   "0\n"));
    CHECK(s_has(r, "presence_broker_flaps_suppressed_total 0\n"));
    CHECK(s_has(r,
                "presence_broker_timeout_lateness_seconds_bucket{le=\"+Inf\"}"
                " 0\n"));
    CHECK(s_has(r, "presence_broker_timeout_lateness_seconds_count 0\n"));
    CHECK(s_has(r, "presence_broker_forced_offline_total{status=\"banned\"} "
                   "0\n"));
    CHECK(s_has(r, "presence_broker_refused_events_total{reason=\"malformed\"}"
                   " 0\n"));
    CHECK(s_has(r, "presence_broker_users{state=\"online\"} 1\n"));

    //  SSE across a gateway restart: 300 changes happen while it is down
    //  (within the gateway's ring, filled from the log at start), then
    //  5,200 (more than the ring: replayed per client from the log); a
    //  client resuming from the last id it saw gets all of them.
    pres_pub_t *pub = it_pub_new(&cfg, "frontend-1");
    CHECK(pub);
    s_sse_resume(&cfg, pub, admin, 300);
    s_sse_resume(&cfg, pub, admin, 5200);
    pres_pub_destroy(&pub);

    free(alice);
    free(bob);
    free(admin);
    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    CHECK_EQ(it_proc_stop(&s_broker, 5000), 0);
    ith_minter_destroy(&s_minter);
    it_env_cleanup(&s_env);
    printf("it.gateway_changelog: ok\n");
    return 0;
}
