/*  it.gateway_api: every row of docs/protocol.md section 3 through real HTTP
    (libcurl) against presence-broker + presence-sweeper + presence-gateway
    started in a temp dir: login, heartbeat (and reconnect), logout (revokes,
    also after a gateway restart), user lookup, admin listing with paging,
    stats, account status (403 at once), SSE (change, Last-Event-ID resume,
    resync, dead clients freed), healthz, metrics, CORS, keep-alive, each error
    status, each JWT case, and 503 when the broker is down. */
#define _GNU_SOURCE  //  strcasestr
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ithttp.h"
#include "itutil.h"
#include "pres_log.h"
#include "testutil.h"

static it_env_t s_env;
static it_proc_t s_broker, s_sweeper, s_gateway, s_gateway2;
static int s_port, s_port2;
static CURL *s_curl;
static ith_minter_t *s_minter;  //  tokens signed with the gateway's secret
static const unsigned char *s_key;
static size_t s_key_len;

typedef struct {
    long status;
    char body[65536];
    size_t body_len;
    char headers[8192];
    size_t headers_len;
    long connects;  //  new connections made for this request
} s_resp_t;

static size_t
s_on_body(char *ptr, size_t size, size_t n, void *arg)
{
    s_resp_t *r = arg;
    size_t len = size * n;
    size_t room = sizeof r->body - 1 - r->body_len;
    if (len > room)
        len = room;
    memcpy(r->body + r->body_len, ptr, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return size * n;
}

static size_t
s_on_header(char *ptr, size_t size, size_t n, void *arg)
{
    s_resp_t *r = arg;
    size_t len = size * n;
    size_t room = sizeof r->headers - 1 - r->headers_len;
    if (len > room)
        len = room;
    memcpy(r->headers + r->headers_len, ptr, len);
    r->headers_len += len;
    r->headers[r->headers_len] = '\0';
    return size * n;
}

//  One request on the shared (keep-alive) handle. extra: a header line or
//  NULL. body NULL = none.
static s_resp_t *
s_http(int port, const char *method, const char *path, const char *token,
       const char *body, const char *extra)
{
    static s_resp_t r;
    memset(&r, 0, sizeof r);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = s_curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    struct curl_slist *h = NULL;
    char auth[4096];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (extra)
        h = curl_slist_append(h, extra);
    h = curl_slist_append(h, "Expect:");
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "curl %s %s: %s\n", method, path,
                curl_easy_strerror(rc));
        r.status = -1;
        return &r;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r.connects);
    return &r;
}

#define EXPECT_STATUS(r, want)                                                 \
    do {                                                                       \
        if ((r)->status != (want))                                             \
            fprintf(stderr, "status %ld, want %d; body: %s\n", (r)->status,    \
                    (want), (r)->body);                                        \
        CHECK_EQ((r)->status, (want));                                         \
    } while (0)

static bool
s_has(const s_resp_t *r, const char *needle)
{
    return strstr(r->body, needle) != NULL;
}

static bool
s_header_has(const s_resp_t *r, const char *needle)
{
    return strcasestr(r->headers, needle) != NULL;
}

//  Error bodies are always JSON {"error": ...}.
static void
s_expect_error(const s_resp_t *r, int status)
{
    EXPECT_STATUS(r, status);
    if (strcmp(r->body, "") != 0 && !s_has(r, "\"error\":\""))
        fprintf(stderr, "not a JSON error: %s\n", r->body);
    CHECK(s_has(r, "{\"error\":\""));
    CHECK(s_header_has(r, "Content-Type: application/json"));
}

static bool
s_wait_health(int port, long want, int timeout_ms)
{
    int64_t until = pres_mono_ms() + timeout_ms;
    while (pres_mono_ms() < until) {
        s_resp_t *r = s_http(port, "GET", "/healthz", NULL, NULL, NULL);
        if (r->status == want)
            return true;
        it_sleep_ms(50);  //  poll interval
    }
    return false;
}

static char *
s_mint(const char *user, bool admin)
{
    return ith_mint(s_minter, user, admin, 600);
}

//  A heartbeat answered 204, then a logout of that session on another
//  connection (maybe another MHD thread, whose publisher is not the
//  heartbeat's): the session must stay ended. Heartbeats are staged and
//  sent in bursts (docs/gateway.md); a logout overtaking one would see
//  it start the session again (a heartbeat for an unknown session is a
//  reconnect). Each request on its own connection.
static void
s_test_logout_after_heartbeat(const char *admin)
{
    enum { N = 40 };
    ith_resp_t *r = malloc(sizeof *r);
    CHECK(r);
    char user[32];
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof user, "order%d", i);
        char *t = s_mint(user, false);
        CHECK_EQ(ith_request(s_port, "POST", "/v1/heartbeat", t,
                             "{\"session\":\"s1\"}", r, 5000),
                 204);
        CHECK_EQ(ith_request(s_port, "POST", "/v1/logout", t,
                             "{\"session\":\"s1\"}", r, 5000),
                 204);
        free(t);
    }
    it_sleep_ms(300);  //  what was staged has long gone out
    for (int i = 0; i < N; i++) {
        snprintf(user, sizeof user, "/v1/users/order%d", i);
        s_resp_t *u = s_http(s_port, "GET", user, admin, NULL, NULL);
        EXPECT_STATUS(u, 200);
        if (!s_has(u, "\"state\":\"offline\""))
            fprintf(stderr, "after its logout: %s\n", u->body);
        CHECK(s_has(u, "\"state\":\"offline\""));
    }
    free(r);
}

static void
s_test_jwt_cases(void)
{
    long long now = (long long)time(NULL);
    char pl[512], pl_admin[512], pl_exp[512], pl_strexp[512], pl_noexp[512],
        pl_nbf[512], pl_badsub[512];
    snprintf(pl, sizeof pl, "{\"sub\":\"mallory\",\"exp\":%lld}", now + 600);
    snprintf(pl_admin, sizeof pl_admin,
             "{\"sub\":\"mallory\",\"exp\":%lld,\"role\":\"admin\"}",
             now + 600);
    snprintf(pl_exp, sizeof pl_exp, "{\"sub\":\"mallory\",\"exp\":%lld}",
             now - 3600);
    snprintf(pl_strexp, sizeof pl_strexp,
             "{\"sub\":\"mallory\",\"exp\":\"9999999999\"}");
    snprintf(pl_noexp, sizeof pl_noexp, "{\"sub\":\"mallory\"}");
    snprintf(pl_nbf, sizeof pl_nbf,
             "{\"sub\":\"mallory\",\"exp\":%lld,\"nbf\":%lld}", now + 7200,
             now + 3600);
    snprintf(pl_badsub, sizeof pl_badsub, "{\"sub\":\"mal lory\",\"exp\":%lld}",
             now + 600);
    const char *hs256 = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static const char wrong[] = "ffffffffffffffffffffffffffffffffffffffff";
    char tampered[4096];
    snprintf(tampered, sizeof tampered, "%s",
             ith_jwt_make(hs256, pl, "SHA256", s_key, s_key_len));
    size_t tl = strlen(tampered);
    tampered[tl - 3] = tampered[tl - 3] == 'A' ? 'B' : 'A';
    char huge[5000];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge + 100, ".", 1);
    memcpy(huge + 200, ".", 1);

    const char *bad[] = {
        ith_jwt_make("{\"alg\":\"none\",\"typ\":\"JWT\"}", pl, NULL, NULL, 0),
        ith_jwt_make("{\"alg\":\"none\"}", pl_admin, "SHA256", s_key,
                     s_key_len),
        ith_jwt_make("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pl, "SHA512", s_key,
                     s_key_len),
        ith_jwt_make("{\"alg\":\"HS384\"}", pl, "SHA384", s_key, s_key_len),
        ith_jwt_make("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", pl, "SHA256", s_key,
                     s_key_len),
        ith_jwt_make(hs256, pl, "SHA256", wrong, strlen(wrong)),
        ith_jwt_make(hs256, pl_exp, "SHA256", s_key, s_key_len),
        ith_jwt_make(hs256, pl_strexp, "SHA256", s_key, s_key_len),
        ith_jwt_make(hs256, pl_noexp, "SHA256", s_key, s_key_len),
        ith_jwt_make(hs256, pl_nbf, "SHA256", s_key, s_key_len),
        ith_jwt_make(hs256, pl_badsub, "SHA256", s_key, s_key_len),
        ith_jwt_make("{\"alg\":\"HS256\",\"typ\":\"XYZ\"}", pl, "SHA256", s_key,
                     s_key_len),
        tampered,
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        "AAAA.AAAA.AAAA",
        huge};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        //  Each JWT case: 401 on login, heartbeat, and an admin call.
        s_resp_t *r = s_http(s_port, "POST", "/v1/login", bad[i], "{}", NULL);
        if (r->status != 401)
            fprintf(stderr, "jwt case %zu: %s\n", i, bad[i]);
        s_expect_error(r, 401);
        CHECK(s_header_has(r, "WWW-Authenticate: Bearer"));
        r = s_http(s_port, "POST", "/v1/heartbeat", bad[i],
                   "{\"session\":\"s1\"}", NULL);
        s_expect_error(r, 401);
        r = s_http(s_port, "GET", "/v1/stats", bad[i], NULL, NULL);
        s_expect_error(r, 401);
    }
    //  "Bearer" missing or another scheme.
    s_resp_t *r = s_http(s_port, "POST", "/v1/heartbeat", NULL,
                         "{\"session\":\"s1\"}", NULL);
    s_expect_error(r, 401);
    r = s_http(s_port, "POST", "/v1/heartbeat", NULL, "{\"session\":\"s1\"}",
               "Authorization: Basic YWxpY2U6eA==");
    s_expect_error(r, 401);
    //  And they changed nothing: mallory was never seen.
    char *admin = s_mint("root", true);
    r = s_http(s_port, "GET", "/v1/users/mallory", admin, NULL, NULL);
    s_expect_error(r, 404);
    free(admin);
}

//  ------------------------------------------------------------------
//  SSE over a raw socket (the test reads the stream as it arrives).

static uint64_t
s_metric(const char *name)
{
    s_resp_t *r = s_http(s_port, "GET", "/metrics", NULL, NULL, NULL);
    EXPECT_STATUS(r, 200);
    char line[128];
    snprintf(line, sizeof line, "\n%s", name);  //  a sample, not # HELP
    const char *p = strstr(r->body, line);
    CHECK(p);
    return strtoull(p + strlen(line), NULL, 10);
}

static void
s_test_sse(void)
{
    char *admin = s_mint("root", true);
    char *carol = s_mint("carol", false);
    //  Not an admin: 403. Bad Last-Event-ID: 400.
    s_resp_t *r = s_http(s_port, "GET", "/v1/events", carol, NULL, NULL);
    s_expect_error(r, 403);
    r = s_http(s_port, "GET", "/v1/events", admin, NULL, "Last-Event-ID: x1");
    s_expect_error(r, 400);

    static char buf[65536];
    buf[0] = '\0';
    int fd = ith_sse_request(s_port, admin, NULL, 10000);
    CHECK(fd >= 0);
    CHECK(ith_read_until(fd, buf, sizeof buf, "retry:", 10000));
    CHECK(strstr(buf, "text/event-stream"));
    r = s_http(s_port, "POST", "/v1/login", carol, "{}", NULL);
    EXPECT_STATUS(r, 200);
    //  The change arrives with id = seq and the change as JSON.
    CHECK(ith_read_until(fd, buf, sizeof buf, "\"user\":\"carol\"", 10000));
    const char *d = strstr(buf, "\"user\":\"carol\"");
    const char *id = NULL;
    for (const char *p = buf; (p = strstr(p, "id: ")) && p < d; p++)
        id = p;
    CHECK(id);
    unsigned long long seq = strtoull(id + 4, NULL, 10);
    CHECK(seq > 0);
    CHECK(strstr(d, "\"reason\":\"login\""));
    //  Keepalive comments (sse_keepalive = 1 in this test).
    CHECK(ith_read_until(fd, buf, sizeof buf, ":keepalive", 10000));

    //  Resume after seq - 1: the same change is replayed, no resync.
    char last[32];
    snprintf(last, sizeof last, "%llu", seq - 1);
    static char buf2[65536];
    buf2[0] = '\0';
    int fd2 = ith_sse_request(s_port, admin, last, 10000);
    CHECK(fd2 >= 0);
    char want[64];
    snprintf(want, sizeof want, "id: %llu\ndata: {", seq);
    CHECK(ith_read_until(fd2, buf2, sizeof buf2, want, 10000));
    CHECK(!strstr(buf2, "event: resync"));
    //  Ahead of the broker: resync.
    static char buf3[4096];
    buf3[0] = '\0';
    int fd3 = ith_sse_request(s_port, admin, "987654321", 10000);
    CHECK(fd3 >= 0);
    CHECK(ith_read_until(fd3, buf3, sizeof buf3, "event: resync", 10000));
    CHECK(strstr(buf3, "data: {\"seq\":"));
    CHECK_EQ(s_metric("presence_gateway_sse_clients "), 3);
    //  Clients that vanish are noticed (keepalive write fails) and freed.
    close(fd);
    close(fd2);
    close(fd3);
    IT_POLL_UNTIL(s_metric("presence_gateway_sse_clients ") == 0, 10000);
    CHECK_EQ(s_metric("presence_gateway_sse_clients "), 0);
    free(admin);
    free(carol);
}

//  ------------------------------------------------------------------

static void
s_wait_user(const char *admin, const char *user, const char *needle)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/users/%s", user);
    int64_t until = pres_mono_ms() + 10000;
    s_resp_t *r;
    do {
        r = s_http(s_port, "GET", path, admin, NULL, NULL);
        if (r->status == 200 && s_has(r, needle))
            return;
        it_sleep_ms(20);  //  poll interval
    } while (pres_mono_ms() < until);
    fprintf(stderr, "user %s: want %s, got %ld %s\n", user, needle, r->status,
            r->body);
    CHECK(!"user state not reached");
}

int
main(void)
{
    CHECK(it_env_init(&s_env, "gateway_api") == 0);
    it_env_set(&s_env, "timeout", "30");
    it_env_set(&s_env, "bus_timeout_ms", "500");
    it_env_set(&s_env, "sse_keepalive", "1");
    it_env_set(&s_env, "cors_origins", "https://app.example");
    CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == 0);
    s_curl = curl_easy_init();
    CHECK(s_curl);

    CHECK(it_broker_start(&s_env, NULL, &s_broker) == 0);
    CHECK(it_spawn(&s_env, "presence-sweeper", NULL, NULL, &s_sweeper) == 0);
    s_port = it_free_port();
    CHECK(it_gateway_start(&s_env, s_port, NULL, &s_gateway) == 0);

    //  The secret the gateway created (0600) mints our tokens.
    s_minter = ith_minter_new(&s_env);
    s_key = ith_minter_key(s_minter, &s_key_len);
    char *alice = s_mint("alice", false);
    char *bob = s_mint("bob", false);
    char *admin = s_mint("root", true);

    //  GET /healthz, GET /metrics, GET / (dashboard).
    s_resp_t *r = s_http(s_port, "GET", "/healthz", NULL, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK_STR(r->body, "{\"gateway\":\"ok\",\"broker\":\"ok\"}");
    r = s_http(s_port, "GET", "/", NULL, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_header_has(r, "Content-Type: text/html"));
    CHECK(s_has(r, "<"));
    r = s_http(s_port, "GET", "/app.js", NULL, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_header_has(r, "Content-Type: text/javascript"));
    r = s_http(s_port, "GET", "/app.css", NULL, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_header_has(r, "Content-Type: text/css"));
    CHECK(s_header_has(r, "ETag: \""));
    CHECK(s_header_has(r, "Cache-Control: no-cache"));

    //  POST /v1/login -> 200 {user, session, heartbeat_s, timeout_s}.
    r = s_http(s_port, "POST", "/v1/login", alice, "{\"device\":\"web\"}",
               NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_has(r, "\"user\":\"alice\""));
    CHECK(s_has(r, "\"heartbeat_s\":30"));
    CHECK(s_has(r, "\"timeout_s\":30"));
    char session[64];
    const char *sp = strstr(r->body, "\"session\":\"");
    CHECK(sp);
    CHECK(sscanf(sp + 11, "%32[0-9a-f]", session) == 1);
    CHECK_EQ(strlen(session), 32);
    //  200 means online: visible at once.
    r = s_http(s_port, "GET", "/v1/users/alice", bob, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_has(r, "\"state\":\"online\""));
    CHECK(s_has(r, "\"sessions\":1"));
    CHECK(s_has(r, "\"account\":\"active\""));
    CHECK(s_has(r, "\"last_seen\":"));

    //  Keep-alive: these two requests share one connection.
    char hb[128];
    snprintf(hb, sizeof hb, "{\"session\":\"%s\"}", session);
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, hb, NULL);
    EXPECT_STATUS(r, 204);
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, hb, NULL);
    EXPECT_STATUS(r, 204);
    CHECK_EQ(r->connects, 0);

    //  Heartbeat with state away; an unknown session reconnects.
    snprintf(hb, sizeof hb, "{\"session\":\"%s\",\"state\":\"away\"}", session);
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, hb, NULL);
    EXPECT_STATUS(r, 204);
    s_wait_user(admin, "alice", "\"state\":\"away\"");
    r = s_http(s_port, "POST", "/v1/heartbeat", alice,
               "{\"session\":\"phone-1\"}", NULL);
    EXPECT_STATUS(r, 204);
    s_wait_user(admin, "alice", "\"sessions\":2");
    s_wait_user(admin, "alice", "\"state\":\"online\"");

    //  400s: bad JSON, missing session, bad session, bad state, bad user.
    const char *bad_bodies[] = {"{",
                                "[]",
                                "{}",
                                "{\"session\":\"a b\"}",
                                "{\"session\":7}",
                                "{\"session\":\"s\",\"state\":\"busy\"}",
                                "{\"session\":\"s\",\"session\":\"t\"}"};
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
        r = s_http(s_port, "POST", "/v1/heartbeat", alice, bad_bodies[i], NULL);
        s_expect_error(r, 400);
    }
    r = s_http(s_port, "POST", "/v1/login", alice, "{\"device\":5}", NULL);
    s_expect_error(r, 400);
    r = s_http(s_port, "GET", "/v1/users/a%20b", alice, NULL, NULL);
    s_expect_error(r, 400);
    r = s_http(s_port, "GET", "/v1/users?state=busy", admin, NULL, NULL);
    s_expect_error(r, 400);
    r = s_http(s_port, "GET", "/v1/users?limit=0", admin, NULL, NULL);
    s_expect_error(r, 400);
    r = s_http(s_port, "PUT", "/v1/users/bob/account", admin,
               "{\"status\":\"gone\"}", NULL);
    s_expect_error(r, 400);

    //  404s and 405s (with Allow).
    r = s_http(s_port, "GET", "/v1/users/nobody", alice, NULL, NULL);
    s_expect_error(r, 404);
    r = s_http(s_port, "GET", "/v1/nothing", alice, NULL, NULL);
    s_expect_error(r, 404);
    r = s_http(s_port, "GET", "/nothing", NULL, NULL, NULL);
    s_expect_error(r, 404);
    r = s_http(s_port, "GET", "/v1/login", alice, NULL, NULL);
    s_expect_error(r, 405);
    CHECK(s_header_has(r, "Allow: POST"));
    r = s_http(s_port, "DELETE", "/v1/users/alice", admin, NULL, NULL);
    s_expect_error(r, 405);
    CHECK(s_header_has(r, "Allow: GET"));
    r = s_http(s_port, "POST", "/v1/users/alice/account", admin, "{}", NULL);
    s_expect_error(r, 405);
    CHECK(s_header_has(r, "Allow: PUT"));

    //  413: body over 4 KiB (declared), and chunked.
    static char big[6000];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, big, NULL);
    s_expect_error(r, 413);
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, big,
               "Transfer-Encoding: chunked");
    s_expect_error(r, 413);
    //  4096 bytes exactly is fine (it is a valid heartbeat body).
    static char ok4k[4097];
    snprintf(ok4k, sizeof ok4k, "{\"session\":\"%s\"", session);
    size_t l = strlen(ok4k);
    memset(ok4k + l, ' ', 4095 - l);
    ok4k[4095] = '}';
    ok4k[4096] = '\0';
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, ok4k, NULL);
    EXPECT_STATUS(r, 204);

    //  Admin: list with paging, stats; 403 for a user.
    r = s_http(s_port, "POST", "/v1/login", bob, NULL, NULL);
    EXPECT_STATUS(r, 200);
    r = s_http(s_port, "GET", "/v1/users?state=online&limit=1", admin, NULL,
               NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_has(r, "\"user\":\"alice\""));
    sp = strstr(r->body, "\"next\":\"");
    CHECK(sp);
    char cursor[80], q[160];
    CHECK(sscanf(sp + 8, "%64[^\"]", cursor) == 1);
    snprintf(q, sizeof q, "/v1/users?state=online&limit=1&cursor=%s", cursor);
    r = s_http(s_port, "GET", q, admin, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_has(r, "\"user\":\"bob\""));
    r = s_http(s_port, "GET", "/v1/users", alice, NULL, NULL);
    s_expect_error(r, 403);
    r = s_http(s_port, "GET", "/v1/stats", admin, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_has(r, "\"users\":{"));
    CHECK(s_has(r, "\"accounts\":{"));
    CHECK(s_has(r, "\"online\":"));
    CHECK(s_has(r, "\"suspended\":"));
    CHECK(!s_has(r, "\"ok\""));
    r = s_http(s_port, "GET", "/v1/stats", alice, NULL, NULL);
    s_expect_error(r, 403);

    //  Account: suspended -> 403 at once on heartbeat and login.
    r = s_http(s_port, "PUT", "/v1/users/bob/account", alice,
               "{\"status\":\"suspended\"}", NULL);
    s_expect_error(r, 403);
    r = s_http(s_port, "PUT", "/v1/users/bob/account", admin,
               "{\"status\":\"suspended\",\"reason\":\"spam\"}", NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_has(r, "\"account\":\"suspended\""));
    //  Through the broker's admin endpoint, recorded as the token's sub.
    CHECK(it_proc_log_has(&s_broker, "bob: active -> suspended by root"));
    r = s_http(s_port, "POST", "/v1/heartbeat", bob, "{\"session\":\"x\"}",
               NULL);
    s_expect_error(r, 403);
    r = s_http(s_port, "POST", "/v1/login", bob, "{}", NULL);
    s_expect_error(r, 403);
    r = s_http(s_port, "GET", "/v1/users/bob", admin, NULL, NULL);
    CHECK(s_has(r, "\"state\":\"offline\""));
    r = s_http(s_port, "PUT", "/v1/users/bob/account", admin,
               "{\"status\":\"active\"}", NULL);
    EXPECT_STATUS(r, 200);
    r = s_http(s_port, "POST", "/v1/login", bob, "{}", NULL);
    EXPECT_STATUS(r, 200);

    //  CORS: preflight and simple requests from an allowed origin only.
    r = s_http(s_port, "OPTIONS", "/v1/heartbeat", NULL, NULL,
               "Origin: https://app.example");
    EXPECT_STATUS(r, 204);
    CHECK(s_header_has(r, "Access-Control-Allow-Origin: https://app.example"));
    CHECK(s_header_has(r, "Access-Control-Allow-Headers: Authorization"));
    snprintf(hb, sizeof hb, "{\"session\":\"%s\"}", session);
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, hb,
               "Origin: https://app.example");
    EXPECT_STATUS(r, 204);
    CHECK(s_header_has(r, "Access-Control-Allow-Origin: https://app.example"));
    r = s_http(s_port, "POST", "/v1/heartbeat", alice, hb,
               "Origin: https://evil.example");
    EXPECT_STATUS(r, 204);
    CHECK(!s_header_has(r, "Access-Control-Allow-Origin"));

    s_test_jwt_cases();
    s_test_sse();
    s_test_logout_after_heartbeat(admin);

    //  Logout one session: the other stays; the token is revoked.
    char *alice2 = s_mint("alice", false);
    snprintf(hb, sizeof hb, "{\"session\":\"%s\"}", session);
    r = s_http(s_port, "POST", "/v1/logout", alice, hb, NULL);
    EXPECT_STATUS(r, 204);
    s_wait_user(admin, "alice", "\"sessions\":1");
    r = s_http(s_port, "POST", "/v1/heartbeat", alice,
               "{\"session\":\"phone-1\"}", NULL);
    s_expect_error(r, 401);
    CHECK(s_has(r, "revoked"));
    //  Logout without a session ends them all.
    r = s_http(s_port, "POST", "/v1/logout", alice2, NULL, NULL);
    EXPECT_STATUS(r, 204);
    s_wait_user(admin, "alice", "\"state\":\"offline\"");

    //  The revocation survives a gateway restart.
    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    CHECK(it_gateway_start(&s_env, s_port, NULL, &s_gateway) == 0);
    r = s_http(s_port, "POST", "/v1/heartbeat", alice,
               "{\"session\":\"phone-1\"}", NULL);
    s_expect_error(r, 401);
    r = s_http(s_port, "POST", "/v1/heartbeat", alice2,
               "{\"session\":\"phone-1\"}", NULL);
    s_expect_error(r, 401);
    r = s_http(s_port, "GET", "/v1/users/alice", bob, NULL, NULL);
    EXPECT_STATUS(r, 200);

    //  429: a second gateway with a tiny per-IP budget.
    s_port2 = it_free_port();
    const char *rl_env[] = {"PRESENCE_RATE_LIMIT=1", "PRESENCE_RATE_BURST=3",
                            NULL};
    CHECK(it_gateway_start(&s_env, s_port2, rl_env, &s_gateway2) == 0);
    //  Until 5 are limited: a busy box serves slowly, and the budget
    //  refills meanwhile. What was served is the burst plus the refill.
    int limited = 0, sent = 0;
    int64_t rl0 = pres_mono_ms();
    while (limited < 5 && sent < 100) {
        r = s_http(s_port2, "GET", "/v1/users/bob", bob, NULL, NULL);
        sent++;
        if (r->status == 429) {
            s_expect_error(r, 429);
            CHECK(s_header_has(r, "Retry-After:"));
            limited++;
        }
    }
    int64_t rl_ms = pres_mono_ms() - rl0;
    fprintf(stderr, "rate limit: %d of %d served in %lld ms\n", sent - limited,
            sent, (long long)rl_ms);
    CHECK(limited >= 5);
    CHECK(sent - limited <= 3 + (int)(rl_ms / 1000) + 1);
    CHECK_EQ(it_proc_stop(&s_gateway2, 5000), 0);

    //  503 within a bounded time when the broker is down.
    CHECK_EQ(it_proc_stop(&s_broker, 5000), 0);
    int64_t t0 = pres_mono_ms();
    r = s_http(s_port, "POST", "/v1/heartbeat", bob, "{\"session\":\"z\"}",
               NULL);
    int64_t took = pres_mono_ms() - t0;
    //  The publisher may still have room in its pipe for the first event;
    //  at the latest the next ones fail.
    for (int i = 0; i < 20 && r->status != 503; i++) {
        it_sleep_ms(100);  //  retry interval
        t0 = pres_mono_ms();
        r = s_http(s_port, "POST", "/v1/heartbeat", bob, "{\"session\":\"z\"}",
                   NULL);
        took = pres_mono_ms() - t0;
    }
    s_expect_error(r, 503);
    CHECK(took < 2000);
    t0 = pres_mono_ms();
    r = s_http(s_port, "GET", "/v1/users/bob", bob, NULL, NULL);
    s_expect_error(r, 503);
    CHECK(pres_mono_ms() - t0 < 2000);
    r = s_http(s_port, "POST", "/v1/login", bob, "{}", NULL);
    s_expect_error(r, 503);
    CHECK(s_wait_health(s_port, 503, 3000));
    r = s_http(s_port, "GET", "/healthz", NULL, NULL, NULL);
    CHECK(s_has(r, "\"broker\":\"down\""));
    //  It says why and since when (the requests above timed out).
    CHECK(s_has(r, "\"reason\":\"broker unreachable: "));
    CHECK(s_has(r, "\"since\":"));
    CHECK(s_has(r, "\"for_ms\":"));

    //  Metrics: Prometheus text with requests, rejections, latency.
    r = s_http(s_port, "GET", "/metrics", NULL, NULL, NULL);
    EXPECT_STATUS(r, 200);
    CHECK(s_header_has(r, "Content-Type: text/plain; version=0.0.4"));
    CHECK(s_has(r, "presence_gateway_requests_total{route=\"heartbeat\","
                   "status=\"503\"}"));
    CHECK(s_has(r, "presence_gateway_rejections_total{reason=\"bus_busy\"}"));
    CHECK(s_has(r, "presence_gateway_latency_seconds_bucket{op=\"publish\""));
    CHECK(s_has(r, "presence_gateway_events_published_total{type=\"login\"}"));

    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    it_proc_stop(&s_sweeper, 5000);
    free(alice);
    free(alice2);
    free(bob);
    free(admin);
    ith_minter_destroy(&s_minter);
    curl_easy_cleanup(s_curl);
    curl_global_cleanup();
    it_env_cleanup(&s_env);
    printf("it.gateway_api: ok\n");
    return 0;
}
