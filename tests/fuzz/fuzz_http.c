/*  fuzz_http: the gateway's HTTP request handling, end to end inside one
    process: a real gateway (gateway_new on a loopback port, no broker:
    bus_timeout_ms 1, so routes that need it answer 503 at once) takes
    each input as one request on a fresh connection and must answer with a
    well-formed HTTP status line (or close), never crash. Inputs are
    structured so that mutations reach the handlers behind the token
    check: byte 0 picks the method, byte 1 the token (none, a user's, an
    admin's, a garbled one), then newline-separated fields: the path (the
    query string included), a Last-Event-ID (empty: none), and the rest is
    the body. Byte 0 >= 0xF0 sends the remaining bytes as a raw request
    instead. */
#include "gateway.h"
#include "pres_config.h"
#include "pres_jwt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gateway_t *s_gw;
static int s_port;
static pres_jwt_t *s_jwt;
static char *s_user_token, *s_admin_token;
static unsigned s_runs;
static pres_config_t s_cfg;

//  Fresh tokens: a fuzzed logout revokes the ones in use.
static void
s_mint(void)
{
    free(s_user_token);
    free(s_admin_token);
    s_user_token = pres_jwt_mint(s_jwt, "fuzz-user", false, 86400, time(NULL));
    s_admin_token = pres_jwt_mint(s_jwt, "fuzz-admin", true, 86400, time(NULL));
    if (!s_user_token || !s_admin_token)
        abort();
}

static void
s_setup(void)
{
    char dir[] = "/tmp/pres-fuzz-http-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char sub[64];
    snprintf(sub, sizeof sub, "%s/data", dir);
    if (mkdir(sub, 0750))
        abort();
    snprintf(sub, sizeof sub, "%s/run", dir);
    if (mkdir(sub, 0750))
        abort();
    pres_config_defaults(&s_cfg);
    char path[64];
    snprintf(path, sizeof path, "%s/data", dir);
    snprintf(sub, sizeof sub, "%s/run", dir);
    if (pres_config_set(&s_cfg, "data_dir", path) ||
        pres_config_set(&s_cfg, "run_dir", sub) ||
        pres_config_set(&s_cfg, "http_listen", "127.0.0.1:0") ||
        pres_config_set(&s_cfg, "bus_timeout_ms", "1") ||
        pres_config_set(&s_cfg, "rate_limit", "0") ||
        pres_config_finish(&s_cfg))
        abort();
    s_gw = gateway_new(&s_cfg);
    if (!s_gw)
        abort();
    s_port = gateway_port(s_gw);
    //  Never destroyed: the process ends with the gateway running (its
    //  threads' OpenSSL state stays reachable; a teardown at exit raced
    //  OpenSSL's own cleanup and left it to LeakSanitizer).
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (pres_jwt_secret_load(s_cfg.jwt_secret_file, false, &key, &key_len))
        abort();
    s_jwt = pres_jwt_new_key("HS256", key, key_len, 30);
    free(key);
    if (!s_jwt)
        abort();
    s_mint();
}

//  Send req (len bytes) on a fresh connection; read the answer until the
//  server closes or is quiet for 100 ms. The answer must start with a
//  status line.
static void
s_exchange(const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    //  A refused or impossible connect is retried for a second (the box is
    //  shared: ports run short at times), then it is the gateway's fault.
    int tries = 0;
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (++tries == 100) {
            printf("fuzz_http: connect() failed: %s\n", strerror(errno));
            abort();  //  the gateway stopped listening
        }
        close(fd);
        usleep(10 * 1000);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            abort();
    }
    //  Close with a reset, not a FIN: no TIME_WAIT left behind per run
    //  (one run in 200,000 once found no port to connect from).
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    //  Acknowledge at once: the answer's header and body come in two
    //  writes, and a delayed ACK would hold the second ~40 ms (Nagle).
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)!send(fd, req, len, MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    char buf[512];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) != 1)
            break;  //  a stream (SSE), or a request MHD still waits on
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    close(fd);
    buf[got] = 0;
    //  Either nothing (the server may drop a garbled request) or a status
    //  line with a three-digit code.
    if (got > 0 && (got < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
                    buf[9] < '1' || buf[9] > '5')) {
        printf("malformed answer: %.*s\n", (int)got, buf);
        abort();
    }
    if (got >= 12 && memcmp(buf + 9, "500", 3) == 0) {
        printf("500 for:\n%.*s\n", (int)len, req);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_gw)
        s_setup();
    if (++s_runs % 256 == 0)
        s_mint();
    if (size < 2 || size > 8192)
        return 0;
    if (data[0] >= 0xF0) {  //  raw bytes
        s_exchange((const char *)data + 1, size - 1);
        return 0;
    }
    static const char *const methods[] = {"GET",  "POST",   "PUT",
                                          "HEAD", "DELETE", "OPTIONS"};
    const char *method = methods[data[0] % 6];
    const char *token = NULL;
    switch (data[1] % 4) {
    case 1:
        token = s_user_token;
        break;
    case 2:
        token = s_admin_token;
        break;
    case 3:
        token = "eyJhbGciOiJIUzI1NiJ9.e30.x";
        break;
    default:
        break;
    }
    //  Fields: path \n last-event-id \n body.
    const char *p = (const char *)data + 2, *end = (const char *)data + size;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t plen = nl ? (size_t)(nl - p) : (size_t)(end - p);
    const char *q = nl ? nl + 1 : end;
    const char *nl2 = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
    size_t qlen = nl2 ? (size_t)(nl2 - q) : (size_t)(end - q);
    const char *body = nl2 ? nl2 + 1 : end;
    size_t blen = (size_t)(end - body);
    //  Header values may not hold CR or LF (that would be another request).
    if (memchr(p, '\r', plen) || memchr(q, '\r', qlen) || plen > 2000 ||
        qlen > 200)
        return 0;
    static char req[16384];
    int n = snprintf(req, sizeof req,
                     "%s /%.*s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n",
                     method, (int)plen, p, blen);
    if (token)
        n += snprintf(req + n, sizeof req - (size_t)n,
                      "Authorization: Bearer %s\r\n", token);
    if (qlen)
        n += snprintf(req + n, sizeof req - (size_t)n,
                      "Last-Event-ID: %.*s\r\n", (int)qlen, q);
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    if ((size_t)n + blen >= sizeof req)
        return 0;
    memcpy(req + n, body, blen);
    s_exchange(req, (size_t)n + blen);
    return 0;
}
