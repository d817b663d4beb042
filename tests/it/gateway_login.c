/*  it.gateway_login: logins are decided off the HTTP threads
    (gateway_login), against presence-broker + presence-gateway in a temp
    dir, the gateway with ONE HTTP thread (so a login that held it would
    hold everything):
      1. 200 logins from 20 clients at once: each 200 with a session of its
         own, and the broker lists every session.
      2. The broker stopped (SIGSTOP), 16 logins sent and waiting: a
         heartbeat sent after them on another connection is answered
         (204) before any of them, and each login then ends 503 within
         bus_timeout_ms of its start (plus scheduling slack).
      3. The broker stopped, 16 logins waiting, SIGTERM to the gateway: it
         exits 0, and no login is left hanging (each gets 503 "gateway
         stopping" or its connection closed).
    Then the broker resumes (SIGCONT) and a login succeeds again. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ithttp.h"
#include "itutil.h"
#include "pres_log.h"
#include "testutil.h"

#define S_TIMEOUT_MS 1500  //  bus_timeout_ms
#define S_SLACK_MS   2000  //  scheduling slack on a busy box
#define S_WAITING    16    //  logins held by a stopped broker

static it_env_t s_env;
static it_proc_t s_broker, s_gateway;
static int s_port;
static ith_minter_t *s_minter;

//  ---- a raw request whose send and answer are seen apart

typedef struct {
    int fd;
    int64_t sent_ms;      //  the request is written
    int64_t answered_ms;  //  the status line arrived, or the link closed
    int status;           //  -1 closed without an answer, -2 timeout
} s_raw_t;

static void
s_raw_send(s_raw_t *r, const char *method, const char *path, const char *token,
           const char *body)
{
    memset(r, 0, sizeof *r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(r->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(r->fd, (struct sockaddr *)&a, sizeof a) == 0);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, token, strlen(body), body);
    CHECK(n > 0 && (size_t)n < sizeof req);
    CHECK(write(r->fd, req, (size_t)n) == n);
    r->sent_ms = pres_mono_ms();
}

//  Wait for the status line (until the deadline). Closes the socket.
static void
s_raw_answer(s_raw_t *r, int64_t until)
{
    char buf[512];
    size_t len = 0;
    r->status = -2;
    while (len < sizeof buf - 1) {
        int64_t left = until - pres_mono_ms();
        struct pollfd p = {r->fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t got = read(r->fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0) {
            r->status = -1;
            break;
        }
        len += (size_t)got;
        buf[len] = '\0';
        int st;
        if (strstr(buf, "\r\n") && sscanf(buf, "HTTP/1.1 %d", &st) == 1) {
            r->status = st;
            break;
        }
    }
    r->answered_ms = pres_mono_ms();
    close(r->fd);
    r->fd = -1;
}

//  ---- 1. many at once

typedef struct {
    int index;
    int ok;
} s_client_t;

static void *
s_client(void *arg)
{
    s_client_t *c = arg;
    for (int i = 0; i < 10; i++) {
        char user[32];
        snprintf(user, sizeof user, "lg%d", c->index * 10 + i);
        char *tok = ith_mint(s_minter, user, false, 600);
        ith_resp_t *r = malloc(sizeof *r);
        CHECK(tok && r);
        ith_request(s_port, "POST", "/v1/login", tok, "{\"device\":\"it\"}", r,
                    10000);
        char session[80];
        ith_json_str(r->body, "session", session, sizeof session);
        if (r->status == 200 && strlen(session) == 32)
            c->ok++;
        else
            fprintf(stderr, "login %s: %d %s\n", user, r->status, r->body);
        free(r);
        free(tok);
    }
    return NULL;
}

static void
s_many(void)
{
    s_client_t c[20];
    pthread_t t[20];
    for (int i = 0; i < 20; i++) {
        c[i] = (s_client_t){.index = i};
        CHECK(pthread_create(&t[i], NULL, s_client, &c[i]) == 0);
    }
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        pthread_join(t[i], NULL);
        ok += c[i].ok;
    }
    CHECK_EQ(ok, 200);
    pres_config_t cfg;
    CHECK(it_env_config(&s_env, &cfg) == 0);
    for (int u = 0; u < 200; u += 37) {
        char user[32], state[16], account[16];
        uint64_t sessions, last_seen;
        snprintf(user, sizeof user, "lg%d", u);
        CHECK(it_get_user(&cfg, user, state, &sessions, &last_seen, account) ==
              0);
        CHECK_EQ(sessions, 1);
        CHECK_STR(state, "online");
    }
    CHECK_EQ(it_stat(&cfg, "sessions"), 200);
    printf("1. 200 concurrent logins: 200 x 200, 200 sessions\n");
}

//  ---- 2 and 3. the broker stopped

static void
s_send_logins(s_raw_t *r, char **tok)
{
    for (int i = 0; i < S_WAITING; i++)
        s_raw_send(&r[i], "POST", "/v1/login", tok[i], "{}");
}

static void
s_stopped_broker(char **tok, char *beat_tok)
{
    s_raw_t r[S_WAITING], hb;
    CHECK(it_proc_signal(&s_broker, SIGSTOP) == 0);
    s_send_logins(r, tok);
    s_raw_send(&hb, "POST", "/v1/heartbeat", beat_tok, "{\"session\":\"h1\"}");
    s_raw_answer(&hb, pres_mono_ms() + S_TIMEOUT_MS + S_SLACK_MS);
    int64_t first = INT64_MAX;
    for (int i = 0; i < S_WAITING; i++) {
        s_raw_answer(&r[i], r[i].sent_ms + S_TIMEOUT_MS + S_SLACK_MS);
        if (r[i].status != 503)
            fprintf(stderr, "login %d: status %d after %lld ms\n", i,
                    r[i].status, (long long)(r[i].answered_ms - r[i].sent_ms));
        CHECK_EQ(r[i].status, 503);
        if (r[i].answered_ms < first)
            first = r[i].answered_ms;
    }
    printf("2. broker stopped: heartbeat %d after %lld ms; %d logins 503, "
           "the first after %lld ms\n",
           hb.status, (long long)(hb.answered_ms - hb.sent_ms), S_WAITING,
           (long long)(first - r[0].sent_ms));
    //  A heartbeat publishes with no broker round trip: 204 while the
    //  logins wait (before the change it waited behind them on the one
    //  HTTP thread).
    CHECK_EQ(hb.status, 204);
    CHECK(hb.answered_ms <= first);
    CHECK(it_proc_signal(&s_broker, SIGCONT) == 0);
}

static void
s_stop_with_logins(char **tok)
{
    s_raw_t r[S_WAITING];
    CHECK(it_proc_signal(&s_broker, SIGSTOP) == 0);
    s_send_logins(r, tok);
    //  Let the gateway read them (they are suspended once read; this is
    //  not a synchronisation: either way no login may hang).
    it_sleep_ms(100);
    CHECK(it_proc_signal(&s_gateway, SIGTERM) == 0);
    CHECK_EQ(it_proc_wait(&s_gateway, 20000), 0);
    int answered = 0, closed = 0;
    for (int i = 0; i < S_WAITING; i++) {
        s_raw_answer(&r[i], pres_mono_ms() + 5000);
        CHECK(r[i].status == 503 || r[i].status == -1);
        answered += r[i].status == 503;
        closed += r[i].status == -1;
    }
    printf("3. SIGTERM with %d logins waiting: exit 0; %d answered 503, %d "
           "closed\n",
           S_WAITING, answered, closed);
    CHECK(it_proc_signal(&s_broker, SIGCONT) == 0);
}

int
main(void)
{
    CHECK(it_env_init(&s_env, "gateway_login") == 0);
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", S_TIMEOUT_MS);
    it_env_set(&s_env, "bus_timeout_ms", timeout);
    it_env_set(&s_env, "http_threads", "1");
    it_env_set(&s_env, "rate_limit", "0");
    it_env_set(&s_env, "rate_limit_addr", "0");
    CHECK(it_broker_start(&s_env, NULL, &s_broker) == 0);
    s_port = ith_gateway_start(&s_env, NULL, &s_gateway);
    CHECK(s_port > 0);
    s_minter = ith_minter_new(&s_env);

    s_many();

    char *tok[S_WAITING];
    for (int i = 0; i < S_WAITING; i++) {
        char user[32];
        snprintf(user, sizeof user, "wait%d", i);
        tok[i] = ith_mint(s_minter, user, false, 600);
    }
    char *beat = ith_mint(s_minter, "beat", false, 600);
    s_stopped_broker(tok, beat);
    //  The gateway notices the broker is back by itself.
    int64_t until = pres_mono_ms() + 20000;
    ith_resp_t *r = malloc(sizeof *r);
    CHECK(r);
    while (ith_request(s_port, "POST", "/v1/login", beat, "{}", r, 5000) !=
           200) {
        CHECK(pres_mono_ms() < until);
        it_sleep_ms(100);  //  poll interval
    }
    s_stop_with_logins(tok);

    free(r);
    free(beat);
    for (int i = 0; i < S_WAITING; i++)
        free(tok[i]);
    ith_minter_destroy(&s_minter);
    CHECK_EQ(it_proc_stop(&s_broker, 5000), 0);
    it_env_cleanup(&s_env);
    printf("it.gateway_login: ok\n");
    return 0;
}
