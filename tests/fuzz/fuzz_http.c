/*  fuzz_http: the gateway's HTTP request handling, end to end inside one
    process and one thread: a real gateway (gateway_new_external: its MHD
    daemon has no listening socket and no thread; no broker: bus_timeout_ms
    1, so routes that need it answer 503 at once) takes each input as one
    request on a fresh socketpair, handed to MHD_add_connection with a
    made-up client address (rotating, IPv4 and IPv6); the harness writes the
   request, half-closes, and runs the daemon (MHD_run) until the gateway closes
   the connection. The answer must be a well-formed HTTP status line (or
   nothing), never a 500, and no connection may outlive its input. Inputs are
   structured so that mutations reach the handlers behind the token check: byte
   0 picks the method, byte 1 the token (none, a user's, an admin's, a garbled
   one), then newline-separated fields: the path (the query string included), a
   Last-Event-ID (empty: none), and the rest is the body. Byte 0 >= 0xF0 sends
   the remaining bytes as a raw request instead. */
#include "gateway.h"
#include "pres_config.h"
#include "pres_jwt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
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
static struct MHD_Daemon *s_mhd;
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
s_teardown(void)
{
    gateway_destroy(&s_gw);
    pres_jwt_destroy(&s_jwt);
    free(s_user_token);
    free(s_admin_token);
    s_user_token = s_admin_token = NULL;
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
        pres_config_set(&s_cfg, "http_threads", "1") ||
        pres_config_finish(&s_cfg))
        abort();
    //  czmq would take SIGINT and SIGTERM from libFuzzer (which then
    //  never stops on them): the handlers stay libFuzzer's.
    setenv("ZSYS_SIGHANDLER", "false", 1);
    s_gw = gateway_new_external(&s_cfg);
    if (!s_gw)
        abort();
    s_mhd = gateway_mhd(s_gw);
    //  Destroyed at exit, before czmq's and OpenSSL's own exit handlers
    //  (registered earlier, so run later): left running, the bus thread
    //  could make a socket while czmq shut down (an assertion, once in 30
    //  replays). No MHD thread is left to race OpenSSL's cleanup.
    atexit(s_teardown);
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

static unsigned
s_connections(void)
{
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(s_mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return di ? di->num_connections : 0;
}

//  Send req (len bytes) on a fresh connection; run the daemon and read the
//  answer until the gateway closes (EOF) or makes no progress for
//  S_IDLE_RUNS runs in a row (a stream, or a request MHD still waits on:
//  the harness then closes its end). The answer must start with a status
//  line, and the daemon must be left without connections.
#define S_IDLE_RUNS 200
static void
s_exchange(const char *req, size_t len)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        printf("fuzz_http: socketpair() failed: %s\n", strerror(errno));
        abort();
    }
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0)
        abort();
    //  The request fits the socket buffer (at most 16 KB): written whole
    //  before the daemon sees the connection.
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(sv[0], req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(sv[0], SHUT_WR);
    //  The client address rotates (4096 IPv4 and 4096 IPv6 /64s), so the
    //  per-address limit (100/s) does not turn most inputs into 429s at
    //  thousands of runs a second; every 16th comes from 127.0.0.1 and
    //  meets the limit now and then.
    static unsigned peer;
    peer++;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t slen;
    if (peer % 16 == 0 || peer % 2 == 1) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(40000);
        a->sin_addr.s_addr =
            peer % 16 == 0 ? htonl(INADDR_LOOPBACK)
                           : htonl(0x0A000001u | ((peer >> 1) & 0xFFFu) << 8);
        slen = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(40000);
        a->sin6_addr.s6_addr[0] = 0xFD;
        a->sin6_addr.s6_addr[6] = (uint8_t)((peer >> 9) & 0x0F);
        a->sin6_addr.s6_addr[7] = (uint8_t)(peer >> 1);
        a->sin6_addr.s6_addr[15] = 1;
        slen = sizeof *a;
    }
    if (MHD_add_connection(s_mhd, sv[1], (struct sockaddr *)&ss, slen) !=
        MHD_YES) {
        printf("fuzz_http: MHD_add_connection() failed: %s\n", strerror(errno));
        abort();
    }
    char buf[512];
    size_t got = 0;
    int idle = 0;
    while (idle < S_IDLE_RUNS) {
        if (MHD_run(s_mhd) != MHD_YES)
            abort();
        char sink[4096];
        char *to = got < sizeof buf - 1 ? buf + got : sink;
        size_t room = got < sizeof buf - 1 ? sizeof buf - 1 - got : sizeof sink;
        ssize_t n = recv(sv[0], to, room, 0);
        if (n == 0)
            break;  //  the gateway closed: the answer is whole
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                break;  //  reset
            idle++;
            continue;
        }
        idle = 0;
        if (to == buf + got)
            got += (size_t)n;
    }
    close(sv[0]);
    //  A connection the gateway kept (a stream): it sees the close now.
    for (int i = 0; i < 1000 && s_connections() > 0; i++)
        MHD_run(s_mhd);
    if (s_connections() > 0) {
        printf("fuzz_http: a connection outlived its request:\n%.*s\n",
               (int)len, req);
        abort();
    }
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
