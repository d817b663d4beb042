/*  it.gateway_rights.<case>: attacks on tokens and event streams, driven
    over HTTP against presence-broker + presence-gateway in a temp dir.
    One case per run (argv[1]), each with its own daemons:
      respell_es256, respell_rs256  a token logged out stays refused in
                                    every spelling (re-encoded signature,
                                    ES256 high-S twin), also after restart
      iss_aud                       jwt_issuer / jwt_audience enforced;
                                    presencectl token carries both
      exp_max                       a revoked token with exp = INT64_MAX
                                    stays revoked across a restart
      logout_503                    logout answers 503 while the revocation
                                    cannot be written (file size limit on
                                    the gateway: EFBIG), 204 once it can
      sse_exp, sse_logout,          an open /v1/events stream ends when its
      sse_account,                  token expires, is logged out, or its
      sse_account_bus               subject is suspended (through this
                                    gateway, or by presencectl, seen on the
                                    changes stream): nothing caused after
                                    that arrives, and the connection closes
                                    within 2 s */
#define _GNU_SOURCE  //  prlimit
#include <arpa/inet.h>
#include <errno.h>
#include <jwt.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ithttp.h"
#include "itutil.h"
#include "pres_jwt.h"
#include "pres_log.h"
#include "jwtutil.h"
#include "testutil.h"

#define S_CLOSE_MS 2000  //  a stream whose rights are gone closes within

static it_env_t s_env;
static it_proc_t s_broker, s_gateway, s_ctl;
static int s_port;
static pres_jwt_t *s_hs;  //  HS256 minter with the gateway's secret
static unsigned char *s_secret;
static size_t s_secret_len;

//  ------------------------------------------------------------------
//  HTTP

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

static void
s_expect(s_resp_t *r, long want, const char *what)
{
    if (r->status != want) {
        fprintf(stderr, "%s: status %d, want %ld; body: %s\n", what, r->status,
                want, r->body);
        it_proc_dump_log(&s_gateway);
    }
    CHECK_EQ(r->status, want);
}

//  Start (or restart) the gateway on s_port with extra env, wait healthy.
static void
s_gateway_start(const char *const *extra)
{
    if (!s_port)
        s_port = it_free_port();
    CHECK(s_port > 0);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s_port);
    it_env_set(&s_env, "http_listen", listen);
    CHECK(it_spawn(&s_env, "presence-gateway", NULL, extra, &s_gateway) == 0);
    int64_t until = pres_mono_ms() + 20000;
    while (s_http("GET", "/healthz", NULL, NULL)->status != 200) {
        if (pres_mono_ms() > until || !it_proc_alive(&s_gateway)) {
            it_proc_dump_log(&s_gateway);
            CHECK(!"gateway did not become healthy");
        }
        it_sleep_ms(20);  //  poll interval
    }
}

//  After it_env_init (and any settings): broker, gateway, our minter.
static void
s_setup(const char *const *gateway_env)
{
    it_env_set(&s_env, "bus_timeout_ms", "1000");
    it_env_set(&s_env, "sse_keepalive", "1");
    CHECK(it_broker_start(&s_env, NULL, &s_broker) == 0);
    s_gateway_start(gateway_env);
    char path[512];
    snprintf(path, sizeof path, "%s/jwt.secret", s_env.data_dir);
    CHECK(pres_jwt_secret_load(path, true, &s_secret, &s_secret_len) == 0);
    s_hs = pres_jwt_new_key("HS256", s_secret, s_secret_len, 30);
    CHECK(s_hs);
}

static void
s_teardown(void)
{
    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    CHECK_EQ(it_proc_stop(&s_broker, 5000), 0);
    pres_jwt_destroy(&s_hs);
    free(s_secret);
    it_env_cleanup(&s_env);
}

//  ------------------------------------------------------------------
//  Tokens made by hand

//  An HS256 token with this payload, signed with the gateway's secret.
static char *
s_hs256(const char *payload)
{
    char *tok = malloc(4096);
    CHECK(tok);
    return tu_jwt_make("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload,
                       EVP_sha256(), s_secret, s_secret_len, tok, 4096);
}

//  Copy of tok with the lowest unused bit of the signature's last
//  character set: the same signature bytes for a loose decoder.
static char *
s_respell(const char *tok)
{
    char *out = strdup(tok);
    CHECK(out);
    size_t sig_len = strlen(strrchr(out, '.') + 1);
    CHECK(sig_len % 4 != 0);
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *last = out + strlen(out) - 1;
    int v = tu_b64val(*last);
    CHECK(v >= 0 && (v & 1) == 0);
    *last = t[v | 1];
    return out;
}

//  The ES256 twin (r, n - s) of tok; *was_high: tok's s was > n/2.
static char *
s_es256_twin(const char *tok, bool *was_high)
{
    size_t cap = strlen(tok) + 100;
    char *out = malloc(cap);
    CHECK(out);
    *was_high = tu_es256_twin(tok, out, cap);
    return out;
}

//  A token signed with the private key (PEM) by libjwt; ES256 ones are
//  brought to low-S (OpenSSL signs high-S half of the time).
static char *
s_sign(const char *alg, const char *priv, size_t priv_len, const char *user)
{
    jwt_t *jwt = NULL;
    CHECK(jwt_new(&jwt) == 0);
    //  A jti per token: two tokens with the same claims are one token
    //  (one signed part), and a logout revokes both.
    static int minted;
    char jti[32];
    snprintf(jti, sizeof jti, "t%d-%ld", ++minted, (long)getpid());
    CHECK(jwt_add_grant(jwt, "sub", user) == 0);
    CHECK(jwt_add_grant(jwt, "jti", jti) == 0);
    CHECK(jwt_add_grant_int(jwt, "exp", (long)time(NULL) + 600) == 0);
    CHECK(jwt_set_alg(jwt, jwt_str_alg(alg), (const unsigned char *)priv,
                      (int)priv_len) == 0);
    char *tok = jwt_encode_str(jwt);
    CHECK(tok);
    jwt_free(jwt);
    if (strcmp(alg, "ES256") == 0) {
        bool high = false;
        char *twin = s_es256_twin(tok, &high);
        if (high) {
            free(tok);
            return twin;
        }
        free(twin);
    }
    return tok;
}

//  ------------------------------------------------------------------
//  Cases: tokens

//  A token is refused on login, heartbeat and a user lookup.
static void
s_refused(const char *tok, const char *what)
{
    s_expect(s_http("POST", "/v1/login", tok, "{}"), 401, what);
    s_expect(s_http("POST", "/v1/heartbeat", tok, "{\"session\":\"s1\"}"), 401,
             what);
    s_expect(s_http("GET", "/v1/users/alice", tok, NULL), 401, what);
}

static void
s_case_respell(const char *alg)
{
    char name[32];
    snprintf(name, sizeof name, "rights-%s", alg);
    CHECK(it_env_init(&s_env, name) == 0);
    EVP_PKEY *key =
        strcmp(alg, "ES256") == 0 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
    CHECK(key);
    BIO *pub = BIO_new(BIO_s_mem()), *priv = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_PUBKEY(pub, key) == 1);
    CHECK(PEM_write_bio_PrivateKey(priv, key, NULL, NULL, 0, NULL, NULL) == 1);
    char *pub_pem, *priv_pem;
    long pub_len = BIO_get_mem_data(pub, &pub_pem);
    long priv_len = BIO_get_mem_data(priv, &priv_pem);
    char pub_path[300];
    snprintf(pub_path, sizeof pub_path, "%s/jwt.pub", s_env.dir);
    FILE *f = fopen(pub_path, "w");
    CHECK(f && fwrite(pub_pem, 1, (size_t)pub_len, f) == (size_t)pub_len);
    fclose(f);
    it_env_set(&s_env, "jwt_alg", alg);
    it_env_set(&s_env, "jwt_public_key_file", pub_path);
    s_setup(NULL);

    char *tok = s_sign(alg, priv_pem, (size_t)priv_len, "alice");
    char *respelled = s_respell(tok);
    char *twin = NULL, *twin_respelled = NULL;
    if (strcmp(alg, "ES256") == 0) {
        bool high = true;
        twin = s_es256_twin(tok, &high);
        CHECK(!high);
        twin_respelled = s_respell(twin);
    }
    //  The other spellings are refused even before the logout.
    s_refused(respelled, "re-spelled signature");
    if (twin) {
        s_refused(twin, "high-S twin");
        s_refused(twin_respelled, "high-S twin, re-spelled");
    }
    s_expect(s_http("POST", "/v1/login", tok, "{}"), 200, "login");
    s_expect(s_http("POST", "/v1/logout", tok, NULL), 204, "logout");
    s_refused(tok, "logged-out token");
    s_refused(respelled, "logged-out token, re-spelled");
    if (twin)
        s_refused(twin, "logged-out token, high-S twin");
    //  Another token of the same user still works.
    char *other = s_sign(alg, priv_pem, (size_t)priv_len, "alice");
    s_expect(s_http("POST", "/v1/login", other, "{}"), 200, "other token");
    //  And after a restart.
    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    s_gateway_start(NULL);
    s_refused(tok, "logged-out token after restart");
    s_refused(respelled, "re-spelled token after restart");
    s_expect(s_http("GET", "/v1/users/alice", other, NULL), 200, "other");

    free(tok);
    free(respelled);
    free(twin);
    free(twin_respelled);
    free(other);
    BIO_free(pub);
    BIO_free(priv);
    EVP_PKEY_free(key);
    s_teardown();
}

//  The token presencectl prints, from its log (stdout and stderr).
static char *
s_ctl_token(const char *const *env)
{
    const char *argv[] = {"token", "carol", NULL};
    CHECK(it_spawn(&s_env, "presencectl", argv, env, &s_ctl) == 0);
    CHECK_EQ(it_proc_wait(&s_ctl, 10000), 0);
    FILE *f = fopen(s_ctl.log_path, "r");
    CHECK(f);
    char line[4096];
    char *tok = NULL;
    while (!tok && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *d1 = strchr(line, '.');
        if (strncmp(line, "eyJ", 3) == 0 && d1 && strchr(d1 + 1, '.'))
            tok = strdup(line);
    }
    fclose(f);
    CHECK(tok);
    return tok;
}

static void
s_case_iss_aud(void)
{
    const char *env[] = {"PRESENCE_JWT_ISSUER=https://id.example",
                         "PRESENCE_JWT_AUDIENCE=presence", NULL};
    CHECK(it_env_init(&s_env, "rights-iss-aud") == 0);
    s_setup(env);
    long long exp = (long long)time(NULL) + 600;
    char pl[512];
    struct {
        const char *claims;
        long status;
        const char *why;
    } cases[] = {
        {"", 401, "bad_iss"},
        {",\"iss\":\"https://evil.example\",\"aud\":\"presence\"", 401,
         "bad_iss"},
        {",\"iss\":\"https://id.example\"", 401, "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":\"other\"", 401, "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":[\"other\"]", 401, "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":\"presence\"", 200, NULL},
        {",\"iss\":\"https://id.example\",\"aud\":[\"other\",\"presence\"]",
         200, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(pl, sizeof pl, "{\"sub\":\"alice\",\"exp\":%lld%s}", exp,
                 cases[i].claims);
        char *tok = s_hs256(pl);
        s_resp_t *r = s_http("POST", "/v1/login", tok, "{}");
        s_expect(r, cases[i].status, cases[i].claims);
        if (cases[i].why)
            CHECK(strstr(r->body, cases[i].why));
        free(tok);
    }
    //  presencectl token adds both when configured, and only then.
    char *tok = s_ctl_token(env);
    s_expect(s_http("POST", "/v1/login", tok, "{}"), 200, "presencectl token");
    free(tok);
    tok = s_ctl_token(NULL);
    s_expect(s_http("POST", "/v1/login", tok, "{}"), 401,
             "presencectl token without iss/aud");
    free(tok);
    s_teardown();
}

static void
s_case_exp_max(void)
{
    CHECK(it_env_init(&s_env, "rights-exp-max") == 0);
    s_setup(NULL);
    char *tok = s_hs256("{\"sub\":\"maxi\",\"exp\":9223372036854775807}");
    s_expect(s_http("POST", "/v1/login", tok, "{}"), 200, "login");
    s_expect(s_http("POST", "/v1/logout", tok, NULL), 204, "logout");
    s_refused(tok, "revoked, exp INT64_MAX");
    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    s_gateway_start(NULL);
    s_refused(tok, "revoked, exp INT64_MAX, after restart");
    free(tok);
    s_teardown();
}

static void
s_set_fsize(pid_t pid, rlim_t soft)
{
    struct rlimit lim;
    CHECK(prlimit(pid, RLIMIT_FSIZE, NULL, &lim) == 0);
    lim.rlim_cur = soft;
    CHECK(prlimit(pid, RLIMIT_FSIZE, &lim, NULL) == 0);
}

static void
s_case_logout_503(void)
{
    //  The gateway inherits SIGXFSZ ignored, so a write over its file size
    //  limit fails with EFBIG, as on a full disk, instead of killing it.
    signal(SIGXFSZ, SIG_IGN);
    CHECK(it_env_init(&s_env, "rights-logout-503") == 0);
    //  A revocation file already past the limit set below (live lines).
    char path[300];
    snprintf(path, sizeof path, "%s/gateway.revoked", s_env.data_dir);
    FILE *f = fopen(path, "w");
    CHECK(f);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "s %032x %lld\n", i + 1, (long long)time(NULL) + 3600);
    fclose(f);
    s_setup(NULL);
    char *tok = pres_jwt_mint(s_hs, "dora", false, 600, time(NULL));
    CHECK(tok);
    s_expect(s_http("POST", "/v1/login", tok, "{}"), 200, "login");

    s_set_fsize(s_gateway.pid, 64 * 1024);
    s_resp_t *r = s_http("POST", "/v1/logout", tok, NULL);
    s_expect(r, 503, "logout while the revocation cannot be written");
    CHECK(strstr(r->body, "\"error\""));
    //  Not revoked: the answer said so, and a retry can authenticate.
    s_expect(s_http("POST", "/v1/heartbeat", tok, "{\"session\":\"s\"}"), 204,
             "token after a failed logout");
    s_set_fsize(s_gateway.pid, RLIM_INFINITY);
    s_expect(s_http("POST", "/v1/logout", tok, NULL), 204, "logout retried");
    s_refused(tok, "logged out");
    CHECK_EQ(it_proc_stop(&s_gateway, 5000), 0);
    s_gateway_start(NULL);
    s_refused(tok, "logged out, after restart");
    free(tok);
    s_teardown();
}

//  ------------------------------------------------------------------
//  Cases: event streams

typedef struct {
    int fd;
    char buf[1 << 20];
    size_t len;
    bool eof;
} s_stream_t;

//  Read what arrives within wait_ms (0: what is there now).
static void
s_stream_read(s_stream_t *s, int wait_ms)
{
    struct pollfd p = {s->fd, POLLIN, 0};
    while (!s->eof && poll(&p, 1, wait_ms) > 0) {
        ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->eof = true;
            break;
        }
        s->len += (size_t)n;
        s->buf[s->len] = '\0';
        wait_ms = 0;
    }
}

static void
s_stream_wait(s_stream_t *s, const char *needle, int timeout_ms)
{
    int64_t until = pres_mono_ms() + timeout_ms;
    while (!strstr(s->buf, needle) && !s->eof && pres_mono_ms() < until)
        s_stream_read(s, 50);
    if (!strstr(s->buf, needle))
        fprintf(stderr, "stream: no %s in:\n%s\n", needle, s->buf);
    CHECK(strstr(s->buf, needle));
}

//  Open a stream with token and see a change arrive on it.
static void
s_stream_open(s_stream_t *s, const char *token, pres_pub_t *pub)
{
    static int opened;
    memset(s, 0, sizeof *s);
    s->fd = ith_sse_request(s_port, token, NULL, 10000);
    CHECK(s->fd >= 0);
    s_stream_wait(s, "retry:", 10000);
    CHECK(strstr(s->buf, "200 OK"));
    char user[32], needle[64];
    snprintf(user, sizeof user, "before-%d", ++opened);
    snprintf(needle, sizeof needle, "\"user\":\"%s\"", user);
    CHECK(it_send_login(pub, user, "s1") == 0);
    s_stream_wait(s, needle, 10000);
}

//  From end_ms (wall clock) on, the stream's rights are gone. Keep causing
//  changes (users after-N) until the stream closes; fail if it stays open
//  past end_ms + S_CLOSE_MS, or if a change caused at or after end_ms
//  arrives. Changes caused before end_ms may arrive or not.
static void
s_stream_must_end(s_stream_t *s, pres_pub_t *pub, int64_t end_ms)
{
    int64_t sent_at[1024];
    int n = 0;
    int64_t next_send = 0;
    while (!s->eof && pres_now_ms() <= end_ms + S_CLOSE_MS + 200 && n < 1024) {
        if (pres_now_ms() >= next_send) {
            char user[32];
            snprintf(user, sizeof user, "after-%d", n);
            sent_at[n] = pres_now_ms();
            CHECK(it_send_login(pub, user, "s1") == 0);
            n++;
            next_send = pres_now_ms() + 20;
        }
        s_stream_read(s, 20);
    }
    int64_t closed_ms = pres_now_ms();
    if (!s->eof)
        fprintf(stderr, "stream still open %lld ms after its end:\n%.2000s\n",
                (long long)(closed_ms - end_ms), s->buf);
    CHECK(s->eof);
    CHECK(closed_ms - end_ms <= S_CLOSE_MS + 200);
    int late = 0;
    for (int i = 0; i < n; i++) {
        char needle[48];
        snprintf(needle, sizeof needle, "\"user\":\"after-%d\"", i);
        if (sent_at[i] >= end_ms && strstr(s->buf, needle)) {
            fprintf(stderr, "after-%d (sent %lld ms after the end) arrived\n",
                    i, (long long)(sent_at[i] - end_ms));
            late++;
        }
    }
    CHECK_EQ(late, 0);
    printf("stream closed %lld ms after its end; %d changes caused "
           "meanwhile\n",
           (long long)(closed_ms - end_ms), n);
    close(s->fd);
}

static s_stream_t s_stream;

static void
s_case_sse(const char *which)
{
    //  Leeway 0: a token is dead exactly at exp.
    CHECK(it_env_init(&s_env, "rights-sse") == 0);
    it_env_set(&s_env, "jwt_leeway", "0");
    s_setup(NULL);
    pres_config_t cfg;
    CHECK(it_env_config(&s_env, &cfg) == 0);
    pres_pub_t *pub = it_pub_new(&cfg, "rights-test");
    CHECK(pub);
    char *root = pres_jwt_mint(s_hs, "root", true, 600, time(NULL));
    CHECK(root);
    int64_t end_ms = 0;
    if (strcmp(which, "exp") == 0) {
        int64_t now = (int64_t)time(NULL);
        char *brief = pres_jwt_mint(s_hs, "root", true, 5, now);
        CHECK(brief);
        s_stream_open(&s_stream, brief, pub);
        end_ms = (now + 5) * 1000;  //  exp + leeway (0)
        free(brief);
    } else if (strcmp(which, "logout") == 0) {
        char *own = pres_jwt_mint(s_hs, "root", true, 600, time(NULL));
        CHECK(own);
        s_stream_open(&s_stream, own, pub);
        s_expect(s_http("POST", "/v1/logout", own, NULL), 204, "logout");
        end_ms = pres_now_ms();
        free(own);
    } else if (strcmp(which, "account") == 0) {
        char *boss = pres_jwt_mint(s_hs, "boss", true, 600, time(NULL));
        CHECK(boss);
        s_stream_open(&s_stream, boss, pub);
        s_expect(s_http("PUT", "/v1/users/boss/account", root,
                        "{\"status\":\"suspended\"}"),
                 200, "suspend boss");
        end_ms = pres_now_ms();
        free(boss);
    } else {
        //  Suspended elsewhere (presencectl on the admin endpoint): this
        //  gateway learns it from the changes stream only. Changes caused
        //  after presencectl returns follow the account change there.
        char *boss = pres_jwt_mint(s_hs, "boss", true, 600, time(NULL));
        CHECK(boss);
        s_stream_open(&s_stream, boss, pub);
        const char *argv[] = {"account", "boss", "suspended", NULL};
        CHECK(it_spawn(&s_env, "presencectl", argv, NULL, &s_ctl) == 0);
        if (it_proc_wait(&s_ctl, 10000) != 0) {
            it_proc_dump_log(&s_ctl);
            CHECK(!"presencectl account failed");
        }
        end_ms = pres_now_ms();
        free(boss);
    }
    s_stream_must_end(&s_stream, pub, end_ms);
    //  Another admin's stream is untouched.
    s_stream_open(&s_stream, root, pub);
    close(s_stream.fd);
    pres_pub_destroy(&pub);
    free(root);
    s_teardown();
}

int
main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "";
    if (strcmp(which, "respell_es256") == 0)
        s_case_respell("ES256");
    else if (strcmp(which, "respell_rs256") == 0)
        s_case_respell("RS256");
    else if (strcmp(which, "iss_aud") == 0)
        s_case_iss_aud();
    else if (strcmp(which, "exp_max") == 0)
        s_case_exp_max();
    else if (strcmp(which, "logout_503") == 0)
        s_case_logout_503();
    else if (strncmp(which, "sse_", 4) == 0)
        s_case_sse(which + 4);
    else {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    printf("it.gateway_rights.%s: ok\n", which);
    return 0;
}
