/*  it.gateway_limits: rate limits that stop abusers, not crowds, and
    connection limits per address, driven from outside against the real
    broker and gateways. Client addresses differ by binding to other
    loopback addresses (127.0.0.0/8 is all loopback):
      - 300 logins by distinct users through one address all get 200;
      - one token's burst of 600 heartbeats meets 429 while another
        user's heartbeat from the same address gets 204;
      - X-Forwarded-For is believed only from trusted_proxies;
      - a request whose headers trickle in is closed after
        http_header_timeout;
      - one address holding hundreds of unfinished requests gets at most
        half of http_max_connections, and another address is served;
      - a trusted proxy is not held to that share. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ithttp.h"
#include "itutil.h"
#include "pres_log.h"
#include "testutil.h"

#define S_HOLD 300  //  unfinished requests from one address

static it_env_t s_env;
static it_proc_t s_broker, s_gw, s_gw_conns, s_gw_proxy;
static ith_minter_t *s_minter;  //  tokens signed with the gateway's secret

static size_t
s_discard(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * n;
}

//  Set up h for one request from local address src.
static void
s_setup(CURL *h, struct curl_slist **hdrs, int port, const char *src,
        const char *method, const char *path, const char *token,
        const char *body, const char *extra)
{
    char url[256], iface[64], auth[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    snprintf(iface, sizeof iface, "host!%s", src);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_INTERFACE, iface);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    *hdrs = curl_slist_append(NULL, "Expect:");
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        *hdrs = curl_slist_append(*hdrs, auth);
    }
    if (extra)
        *hdrs = curl_slist_append(*hdrs, extra);
    if (body) {
        *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
}

//  One request on a fresh handle; the status, or -1 when it failed.
static long
s_http(int port, const char *src, const char *method, const char *path,
       const char *token, const char *body, const char *extra)
{
    CURL *h = curl_easy_init();
    CHECK(h);
    struct curl_slist *hdrs = NULL;
    s_setup(h, &hdrs, port, src, method, path, token, body, extra);
    long status = -1;
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "curl %s %s from %s: %s\n", method, path, src,
                curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return status;
}

//  n POSTs of body to path from src over `par` keep-alive connections at
//  once; tokens[i % ntokens] for request i. Counts answers by status in
//  count[] (index status / 100 * 100 ... only 200, 204, 429 and other).
typedef struct {
    int ok200, ok204, too_many, unavailable, other;  //  unavailable: 503
} s_tally_t;

static s_tally_t
s_burst(int port, const char *src, const char *path, char **tokens, int ntokens,
        const char *body, int n, int par)
{
    s_tally_t t = {0, 0, 0, 0, 0};
    CURLM *m = curl_multi_init();
    CHECK(m);
    CURL *h[64];
    struct curl_slist *hdrs[64];
    CHECK(par <= 64);
    int next = 0, done = 0;
    for (int i = 0; i < par; i++) {
        h[i] = curl_easy_init();
        hdrs[i] = NULL;
        curl_easy_setopt(h[i], CURLOPT_PRIVATE, (char *)&hdrs[i]);
        if (next < n) {
            s_setup(h[i], &hdrs[i], port, src, "POST", path,
                    tokens[next % ntokens], body, NULL);
            next++;
            curl_multi_add_handle(m, h[i]);
        }
    }
    while (done < n) {
        int running = 0;
        CHECK(curl_multi_perform(m, &running) == CURLM_OK);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            long status = -1;
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            if (status == 200)
                t.ok200++;
            else if (status == 204)
                t.ok204++;
            else if (status == 429)
                t.too_many++;
            else if (status == 503)
                t.unavailable++;
            else
                t.other++;
            done++;
            char *priv = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
            struct curl_slist **hp = (struct curl_slist **)(void *)priv;
            curl_multi_remove_handle(m, e);
            curl_slist_free_all(*hp);
            *hp = NULL;
            if (next < n) {
                s_setup(e, hp, port, src, "POST", path, tokens[next % ntokens],
                        body, NULL);
                next++;
                curl_multi_add_handle(m, e);
            }
        }
        if (done < n)
            CHECK(curl_multi_wait(m, NULL, 0, 1000, NULL) == CURLM_OK);
    }
    for (int i = 0; i < par; i++) {
        curl_slist_free_all(hdrs[i]);
        curl_easy_cleanup(h[i]);
    }
    curl_multi_cleanup(m);
    return t;
}

static char *
s_mint(const char *user)
{
    return ith_mint(s_minter, user, false, 600);
}

//  A TCP connection from src to port (connected, nothing sent).
static int
s_connect(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    CHECK(inet_pton(AF_INET, src, &a.sin_addr) == 1);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    a.sin_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr) == 1);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

//  True once the peer has closed fd (EOF or reset), without blocking.
static bool
s_closed(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return false;
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static void
s_test_crowd_and_flood(int port)
{
    //  300 distinct users log in through one address within a moment.
    char *users[300];
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "crowd-%d", i);
        users[i] = s_mint(name);
    }
    s_tally_t t =
        s_burst(port, "127.0.0.1", "/v1/login", users, 300, "{}", 300, 50);
    fprintf(stderr, "300 logins: %d x 200, %d x 429, %d x 503, %d other\n",
            t.ok200, t.too_many, t.unavailable, t.other);
    //  None limited. A 503 says "retry later" (docs/protocol.md): on a
    //  busy box the gateway's stats probe (500 ms) can wait behind an
    //  fsync the broker's answer waits for, and the gateway then answers
    //  503 until its next probe (it.gateway_api, it.gateway_changelog at
    //  load 17); that is not the limit, which this checks. Anything else
    //  (a closed connection: 16 of 300 once at load 17) still fails.
    CHECK_EQ(t.too_many, 0);
    CHECK_EQ(t.other, 0);
    CHECK_EQ(t.ok200 + t.unavailable, 300);
    CHECK(t.ok200 > 0);

    //  One token's flood meets 429; another user from the same address
    //  is served during and after it.
    char *flood = s_mint("flooder");
    char *calm = s_mint("calm");
    t = s_burst(port, "127.0.0.1", "/v1/heartbeat", &flood, 1,
                "{\"session\":\"f1\"}", 600, 20);
    fprintf(stderr, "600 heartbeats of one token: %d x 204, %d x 429\n",
            t.ok204, t.too_many);
    CHECK(t.too_many > 0);
    CHECK_EQ(t.ok204 + t.too_many, 600);
    t = s_burst(port, "127.0.0.1", "/v1/heartbeat", &calm, 1,
                "{\"session\":\"c1\"}", 10, 5);
    CHECK_EQ(t.ok204, 10);
    for (int i = 0; i < 300; i++)
        free(users[i]);
    free(flood);
    free(calm);
}

static void
s_test_header_timeout(int port)
{
    //  Headers trickling in, one byte every 200 ms, never complete.
    int fd = s_connect("127.0.0.4", port);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    int64_t t0 = pres_mono_ms();
    bool closed = false;
    while (!closed && pres_mono_ms() - t0 < 8000) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            char buf[256];
            closed = recv(fd, buf, sizeof buf, 0) <= 0;
        } else if (send(fd, "a", 1, MSG_NOSIGNAL) != 1)
            closed = true;
    }
    fprintf(stderr, "trickled headers closed after %lld ms\n",
            (long long)(pres_mono_ms() - t0));
    CHECK(closed);
    close(fd);
    //  A prompt request on another connection is unaffected.
    CHECK_EQ(s_http(port, "127.0.0.4", "GET", "/healthz", NULL, NULL, NULL),
             200);
}

static void
s_test_connections(int port)
{
    //  One address opens S_HOLD connections with a request begun on each.
    static int fds[S_HOLD];
    const char *part = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < S_HOLD; i++) {
        fds[i] = s_connect("127.0.0.2", port);
        CHECK(write(fds[i], part, strlen(part)) == (ssize_t)strlen(part));
    }
    //  The gateway keeps half of http_max_connections (200) and closes
    //  the rest.
    int64_t until = pres_mono_ms() + 10000;
    int closed = 0;
    while (pres_mono_ms() < until) {
        closed = 0;
        for (int i = 0; i < S_HOLD; i++)
            closed += s_closed(fds[i]) ? 1 : 0;
        if (closed >= S_HOLD - 100)
            break;
        it_sleep_ms(50);  //  poll interval
    }
    fprintf(stderr, "%d unfinished requests from one address: %d closed\n",
            S_HOLD, closed);
    //  Another address is served meanwhile.
    CHECK_EQ(s_http(port, "127.0.0.3", "GET", "/healthz", NULL, NULL, NULL),
             200);
    CHECK_EQ(closed, S_HOLD - 100);
    int still = 0;
    for (int i = 0; i < S_HOLD; i++)
        still += s_closed(fds[i]) ? 0 : 1;
    CHECK_EQ(still, 100);
    for (int i = 0; i < S_HOLD; i++)
        close(fds[i]);
}

//  GET /healthz from src with "X-Forwarded-For: <pre><i><post>" for the
//  i-th request until 2 are limited (at most 50 requests; a busy box
//  answers slowly and the budget refills meanwhile): what was served is
//  at most the budget (2) plus its refill (1/s) over the time taken.
static void
s_expect_limited(int port, const char *src, const char *pre, const char *post)
{
    int limited = 0, sent = 0;
    int64_t t0 = pres_mono_ms();
    char xff[128];
    while (limited < 2 && sent < 50) {
        snprintf(xff, sizeof xff, "X-Forwarded-For: %s%d%s", pre, sent + 1,
                 post);
        limited += s_http(port, src, "GET", "/healthz", NULL, NULL, xff) == 429;
        sent++;
    }
    int64_t took = pres_mono_ms() - t0;
    fprintf(stderr, "%s: %d of %d served in %lld ms\n", src, sent - limited,
            sent, (long long)took);
    CHECK(limited >= 2);
    CHECK(sent - limited <= 2 + (int)(took / 1000) + 1);
}

static void
s_test_forwarded(int port)
{
    //  Untrusted peer: its X-Forwarded-For is ignored (budget: 2, 1/s).
    s_expect_limited(port, "127.0.0.6", "198.51.100.", "");
    char xff[64];
    //  The trusted proxy: each forwarded client has its own budget...
    for (int i = 0; i < 6; i++) {
        snprintf(xff, sizeof xff, "X-Forwarded-For: 203.0.113.%d", i + 1);
        CHECK_EQ(s_http(port, "127.0.0.5", "GET", "/healthz", NULL, NULL, xff),
                 200);
    }
    //  ...also behind a long list of hops the client put in front.
    static char longxff[2200];
    for (int i = 0; i < 4; i++) {
        int n = snprintf(longxff, sizeof longxff, "X-Forwarded-For: ");
        while (n < 1800)
            n += snprintf(longxff + n, sizeof longxff - (size_t)n,
                          "192.0.2.1, ");
        snprintf(longxff + n, sizeof longxff - (size_t)n, "203.0.113.%d",
                 100 + i);
        CHECK_EQ(
            s_http(port, "127.0.0.5", "GET", "/healthz", NULL, NULL, longxff),
            200);
    }
    //  ...and one forwarded client is limited like any other address,
    //  whatever it puts in front of the proxy's entry.
    s_expect_limited(port, "127.0.0.5", "10.9.9.", ", 203.0.113.77");
}

//  A trusted proxy may hold more than an address's share (50 of 100).
static void
s_test_trusted_connections(int port)
{
    static int fds[80];
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 80; i++) {
        fds[i] = s_connect("127.0.0.5", port);
        CHECK(write(fds[i], req, strlen(req)) == (ssize_t)strlen(req));
    }
    //  Every one is answered (429 or 200 alike: it was kept).
    for (int i = 0; i < 80; i++) {
        struct pollfd p = {fds[i], POLLIN, 0};
        char buf[16] = "";
        CHECK(poll(&p, 1, 5000) == 1);
        CHECK(recv(fds[i], buf, sizeof buf - 1, 0) > 9);
        CHECK(strncmp(buf, "HTTP/1.1 ", 9) == 0);
    }
    for (int i = 0; i < 80; i++)
        close(fds[i]);
}

//  SIGTERM the gateway: it must exit 0. How long it takes is no promise
//  of the contract: the gateway first finishes what is under way, and
//  with bus_timeout_ms 2000 that is a query of its bus thread (up to 2 s,
//  joined) and the requests of the HTTP threads (up to 2 x 2 s each,
//  docs/faults.md "Broker away"), on a box that may give it a tenth of a
//  core; the 5 s this used to allow was less than that (seen at load 20).
//  A gateway that does not stop still fails, and itutil then prints
//  where its threads were.
static void
s_stop_gateway(it_proc_t *gw)
{
    int64_t t0 = pres_mono_ms();
    CHECK_EQ(it_proc_stop(gw, 20000), 0);
    int64_t took = pres_mono_ms() - t0;
    if (took > 2000)
        fprintf(stderr, "gateway stopped in %" PRId64 " ms\n", took);
}

int
main(void)
{
    CHECK(it_env_init(&s_env, "gateway_limits") == 0);
    it_env_set(&s_env, "bus_timeout_ms", "2000");
    CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == 0);
    CHECK(it_broker_start(&s_env, NULL, &s_broker) == 0);

    //  Shipped limits; short header timeout.
    int port = it_free_port();
    const char *gw_env[] = {"PRESENCE_HTTP_HEADER_TIMEOUT=1", NULL};
    CHECK(it_gateway_start(&s_env, port, gw_env, &s_gw) == 0);
    s_minter = ith_minter_new(&s_env);
    s_test_crowd_and_flood(port);
    s_test_header_timeout(port);
    s_stop_gateway(&s_gw);

    //  200 connections in all, a long header timeout.
    port = it_free_port();
    const char *conns_env[] = {"PRESENCE_HTTP_MAX_CONNECTIONS=200",
                               "PRESENCE_HTTP_HEADER_TIMEOUT=60", NULL};
    CHECK(it_gateway_start(&s_env, port, conns_env, &s_gw_conns) == 0);
    s_test_connections(port);
    s_stop_gateway(&s_gw_conns);

    //  A trusted proxy on 127.0.0.5; tiny per-address budget.
    port = it_free_port();
    const char *proxy_env[] = {"PRESENCE_TRUSTED_PROXIES=127.0.0.5/32",
                               "PRESENCE_HTTP_MAX_CONNECTIONS=100",
                               "PRESENCE_RATE_LIMIT_ADDR=1",
                               "PRESENCE_RATE_BURST_ADDR=2", NULL};
    CHECK(it_gateway_start(&s_env, port, proxy_env, &s_gw_proxy) == 0);
    s_test_forwarded(port);
    s_test_trusted_connections(port);
    s_stop_gateway(&s_gw_proxy);

    it_proc_stop(&s_broker, 5000);
    ith_minter_destroy(&s_minter);
    curl_global_cleanup();
    it_env_cleanup(&s_env);
    printf("it.gateway_limits: ok\n");
    return 0;
}
