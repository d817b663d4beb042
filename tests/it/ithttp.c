/*  ithttp: gateway processes, a raw HTTP client, tokens and an SSE reader
    for the tests (see ithttp.h). */
#define _GNU_SOURCE  //  memmem
#include "ithttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pres_jwt.h"
#include "jwtutil.h"
#include "testutil.h"

static int
s_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, timeout_ms) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

//  Write all of buf before end (monotonic ms). 0 or -1.
static int
s_write_all(int fd, const char *buf, size_t len, int64_t end)
{
    while (len > 0) {
        int left = (int)(end - pres_mono_ms());
        struct pollfd p = {fd, POLLOUT, 0};
        if (left <= 0 || poll(&p, 1, left) != 1)
            return -1;
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

int
ith_request(int port, const char *method, const char *path, const char *token,
            const char *body, ith_resp_t *r, int timeout_ms)
{
    r->status = -1;
    r->body[0] = 0;
    r->body_len = 0;
    int64_t end = pres_mono_ms() + timeout_ms;
    int fd = s_connect(port, timeout_ms);
    if (fd < 0)
        return -1;
    char head[4096];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n%s%s%s"
                     "%s",
                     method, path, token ? "Authorization: Bearer " : "",
                     token ? token : "", token ? "\r\n" : "",
                     body ? "Content-Type: application/json\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head - 64) {
        close(fd);
        return -1;
    }
    n += snprintf(head + n, sizeof head - (size_t)n,
                  "Content-Length: %zu\r\n\r\n", blen);
    if (s_write_all(fd, head, (size_t)n, end) ||
        (blen && s_write_all(fd, body, blen, end))) {
        close(fd);
        return -1;
    }
    //  Read until the server closes (Connection: close).
    static __thread char in[ITH_BODY_MAX + 8192];
    size_t got = 0;
    while (got < sizeof in - 1) {
        int left = (int)(end - pres_mono_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) != 1) {
            close(fd);
            return -1;
        }
        ssize_t k = recv(fd, in + got, sizeof in - 1 - got, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    in[got] = 0;
    int status = 0;
    if (sscanf(in, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *b = strstr(in, "\r\n\r\n");
    if (b) {
        b += 4;
        size_t len = got - (size_t)(b - in);
        if (len >= sizeof r->body)
            len = sizeof r->body - 1;
        memcpy(r->body, b, len);
        r->body[len] = 0;
        r->body_len = len;
    }
    r->status = status;
    return status;
}

int
ith_gateway_start_on(it_env_t *env, int port, const char *const *extra_env,
                     it_proc_t *p)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    it_env_set(env, "http_listen", listen);
    if (it_spawn(env, "presence-gateway", NULL, extra_env, p))
        return -1;
    static ith_resp_t r;
    int64_t end = pres_mono_ms() + 20000;
    while (pres_mono_ms() < end && it_proc_alive(p)) {
        if (ith_request(port, "GET", "/healthz", NULL, NULL, &r, 1000) > 0)
            return port;
        it_sleep_ms(20);
    }
    fprintf(stderr, "ithttp: the gateway did not answer on port %d\n", port);
    it_proc_dump_log(p);
    return -1;
}

int
ith_gateway_start(it_env_t *env, const char *const *extra_env, it_proc_t *p)
{
    //  A port may be taken between the probe and the bind: try others.
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = it_free_port();
        if (port <= 0)
            return -1;
        if (ith_gateway_start_on(env, port, extra_env, p) == port)
            return port;
        it_proc_kill9(p);
    }
    return -1;
}

struct ith_minter {
    unsigned char *key;  //  the secret's bytes
    size_t key_len;
    pres_jwt_t *jwt;  //  HS256 with key
    pthread_mutex_t lock;
};

ith_minter_t *
ith_minter_new(const it_env_t *env)
{
    ith_minter_t *self = calloc(1, sizeof *self);
    CHECK(self);
    char path[IT_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/jwt.secret", env->data_dir);
    CHECK_EQ(pres_jwt_secret_load(path, false, &self->key, &self->key_len), 0);
    self->jwt = pres_jwt_new_key("HS256", self->key, self->key_len, 30);
    CHECK(self->jwt);
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

char *
ith_mint(ith_minter_t *self, const char *user, bool admin, int ttl_s)
{
    pthread_mutex_lock(&self->lock);
    char *t = pres_jwt_mint(self->jwt, user, admin, ttl_s, time(NULL));
    pthread_mutex_unlock(&self->lock);
    CHECK(t);
    return t;
}

const unsigned char *
ith_minter_key(const ith_minter_t *self, size_t *len)
{
    *len = self->key_len;
    return self->key;
}

void
ith_minter_destroy(ith_minter_t **self_p)
{
    ith_minter_t *self = *self_p;
    if (!self)
        return;
    pres_jwt_destroy(&self->jwt);
    free(self->key);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

char *
ith_token(const it_env_t *env, const char *user, bool admin, int ttl_s)
{
    ith_minter_t *m = ith_minter_new(env);
    char *t = ith_mint(m, user, admin, ttl_s);
    ith_minter_destroy(&m);
    return t;
}

const char *
ith_jwt_make(const char *header, const char *payload, const char *hmac,
             const void *key, size_t key_len)
{
    static __thread char tok[ITH_JWT_KEPT][4096];
    static __thread int which;
    char *out = tok[which++ % ITH_JWT_KEPT];
    CHECK(strlen(header) < 700 && strlen(payload) < 1500);
    const EVP_MD *md = !hmac                         ? NULL
                       : strcmp(hmac, "SHA512") == 0 ? EVP_sha512()
                       : strcmp(hmac, "SHA384") == 0 ? EVP_sha384()
                                                     : EVP_sha256();
    tu_jwt_make(header, payload, md, key, key_len, out, 4096);
    return out;
}

void
ith_json_str(const char *body, const char *key, char *out, size_t cap)
{
    out[0] = 0;
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(body, pat);
    if (!p)
        return;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < cap)
        n++;
    memcpy(out, p, n);
    out[n] = 0;
}

//  ---------------------------------------------------------------------

//  Chunked transfer: the body carries "<hex>\r\n...\r\n" framing. Strip
//  it in place: keep only the payload of complete chunks.
static void
s_dechunk(ith_sse_t *s)
{
    char *raw = s->raw;
    size_t *rawlen = &s->rawlen;
    size_t i = 0;
    while (true) {
        char *crlf = memmem(raw + i, *rawlen - i, "\r\n", 2);
        if (!crlf)
            break;
        unsigned long size = strtoul(raw + i, NULL, 16);
        size_t start = (size_t)(crlf - raw) + 2;
        if (size == 0) {  //  the last chunk: the stream ended
            close(s->fd);
            s->fd = -1;
            i = *rawlen;
            break;
        }
        if (start + size + 2 > *rawlen)
            break;
        if (s->len + size >= sizeof s->buf)
            break;  //  no room yet: the chunk waits in raw, never dropped
        memcpy(s->buf + s->len, raw + start, size);
        s->len += size;
        s->buf[s->len] = 0;
        i = start + size + 2;
    }
    memmove(raw, raw + i, *rawlen - i);
    *rawlen -= i;
}

int
ith_sse_request(int port, const char *token, const char *last_id,
                int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    int fd = s_connect(port, timeout_ms);
    if (fd < 0)
        return -1;
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\n%s%s%s"
                     "Accept: text/event-stream\r\n\r\n",
                     token, last_id ? "Last-Event-ID: " : "",
                     last_id ? last_id : "", last_id ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req ||
        s_write_all(fd, req, (size_t)n, end)) {
        close(fd);
        return -1;
    }
    return fd;
}

bool
ith_read_until(int fd, char *buf, size_t cap, const char *needle,
               int timeout_ms)
{
    size_t len = strlen(buf);
    int64_t until = pres_mono_ms() + timeout_ms;
    while (!strstr(buf, needle)) {
        int64_t left = until - pres_mono_ms();
        if (left <= 0 || len + 1 >= cap)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            return false;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return true;
}

int
ith_sse_open(ith_sse_t *s, int port, const char *token, const char *last_id,
             int timeout_ms)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    int64_t end = pres_mono_ms() + timeout_ms;
    int fd = ith_sse_request(port, token, last_id, timeout_ms);
    if (fd < 0)
        return -1;
    s->fd = fd;
    //  The header block.
    while (!strstr(s->buf, "\r\n\r\n")) {
        int left = (int)(end - pres_mono_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) != 1)
            goto fail;
        ssize_t k = recv(fd, s->buf + s->len, sizeof s->buf - 1 - s->len, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (k <= 0)
            goto fail;
        s->len += (size_t)k;
        s->buf[s->len] = 0;
    }
    int status = 0;
    if (sscanf(s->buf, "HTTP/1.%*d %d", &status) != 1 || status != 200)
        goto fail;
    char *b = strstr(s->buf, "\r\n\r\n") + 4;
    s->rawlen = s->len - (size_t)(b - s->buf);
    memcpy(s->raw, b, s->rawlen);
    s->len = 0;
    s->buf[0] = 0;
    s_dechunk(s);
    return 0;
fail:
    ith_sse_close(s);
    return -1;
}

int
ith_sse_next(ith_sse_t *s, uint64_t *id, char *event, size_t event_cap,
             char *data, size_t data_cap, int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    while (true) {
        //  One complete event: lines up to a blank line; comments skipped.
        char *stop;
        while ((stop = strstr(s->buf, "\n\n")) != NULL) {
            *stop = 0;
            size_t used = (size_t)(stop - s->buf) + 2;
            bool any = false;
            event[0] = 0;
            data[0] = 0;
            *id = 0;
            for (char *line = s->buf; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                    *nl = 0;
                if (strncmp(line, "id: ", 4) == 0) {
                    *id = strtoull(line + 4, NULL, 10);
                    any = true;
                } else if (strncmp(line, "event: ", 7) == 0) {
                    snprintf(event, event_cap, "%s", line + 7);
                    any = true;
                } else if (strncmp(line, "data: ", 6) == 0) {
                    snprintf(data, data_cap, "%s", line + 6);
                    any = true;
                }
                line = nl ? nl + 1 : NULL;
            }
            memmove(s->buf, s->buf + used, s->len - used + 1);
            s->len -= used;
            if (any)
                return 1;
        }
        //  Chunks that waited in raw for room in buf.
        size_t had = s->len;
        s_dechunk(s);
        if (s->len != had)
            continue;
        if (s->fd < 0)
            return -1;
        int left = (int)(end - pres_mono_ms());
        struct pollfd p = {s->fd, POLLIN, 0};
        if (left <= 0)
            return 0;
        int pr = poll(&p, 1, left);
        if (pr == 0)
            return 0;
        if (pr < 0)
            continue;
        if (s->rawlen == sizeof s->raw) {  //  a chunk larger than we hold
            ith_sse_close(s);
            return -1;
        }
        ssize_t k =
            recv(s->fd, s->raw + s->rawlen, sizeof s->raw - s->rawlen, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (k <= 0) {
            ith_sse_close(s);
            return -1;
        }
        s->rawlen += (size_t)k;
        s_dechunk(s);
    }
}

void
ith_sse_close(ith_sse_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

//  ---------------------------------------------------------------------

struct ith_follower {
    int port;
    char *token;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool stall;
    atomic_uint_fast64_t last;     //  last id seen
    atomic_uint_fast64_t resyncs;  //  `event: resync` received
    atomic_uint_fast64_t gaps;     //  ids that were not last + 1
    ith_sse_t sse;
};

static void *
s_follow(void *arg)
{
    ith_follower_t *self = arg;
    static __thread char data[8192];
    char event[32], last[32] = "";
    while (!atomic_load(&self->stop)) {
        if (ith_sse_open(&self->sse, self->port, self->token,
                         last[0] ? last : NULL, 2000)) {
            it_sleep_ms(100);  //  the gateway is away: retry
            continue;
        }
        uint64_t id;
        int rc = 0;
        bool resumed = last[0] != 0;
        while (!atomic_load(&self->stop) && rc >= 0) {
            if (atomic_load(&self->stall)) {
                it_sleep_ms(20);  //  stuck: not reading
                continue;
            }
            rc = ith_sse_next(&self->sse, &id, event, sizeof event, data,
                              sizeof data, 200);
            if (rc != 1 || !id)
                continue;
            uint64_t prev = atomic_load(&self->last);
            if (strcmp(event, "resync") == 0)
                atomic_fetch_add(&self->resyncs, 1);
            else if (prev && id != prev + 1) {
                atomic_fetch_add(&self->gaps, 1);
                fprintf(stderr,
                        "ith_follower: id %" PRIu64 " after %" PRIu64 "%s\n",
                        id, prev,
                        resumed ? " (first on a resumed stream)" : "");
            }
            resumed = false;
            atomic_store(&self->last, id);
            snprintf(last, sizeof last, "%" PRIu64, id);
        }
        ith_sse_close(&self->sse);
    }
    return NULL;
}

ith_follower_t *
ith_follower_new(int port, const char *token)
{
    ith_follower_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->port = port;
    self->token = strdup(token);
    self->sse.fd = -1;
    if (!self->token ||
        pthread_create(&self->thread, NULL, s_follow, self) != 0) {
        free(self->token);
        free(self);
        return NULL;
    }
    return self;
}

uint64_t
ith_follower_last(ith_follower_t *self)
{
    return atomic_load(&self->last);
}

uint64_t
ith_follower_resyncs(ith_follower_t *self)
{
    return atomic_load(&self->resyncs);
}

uint64_t
ith_follower_gaps(ith_follower_t *self)
{
    return atomic_load(&self->gaps);
}

void
ith_follower_stall(ith_follower_t *self, bool stall)
{
    atomic_store(&self->stall, stall);
}

void
ith_follower_destroy(ith_follower_t **self_p)
{
    ith_follower_t *self = *self_p;
    if (!self)
        return;
    atomic_store(&self->stop, true);
    pthread_join(self->thread, NULL);
    free(self->token);
    free(self);
    *self_p = NULL;
}

uint64_t
ith_watch_position(const it_proc_t *watch)
{
    FILE *f = fopen(watch->log_path, "r");
    if (!f)
        return 0;
    static __thread char line[8192];
    uint64_t pos = 0;
    while (fgets(line, sizeof line, f)) {
        //  A change line, a --json resync line (its "got" is the head
        //  that showed the loss; the snapshot taken is at least that), or
        //  the text "watching changes from seq N".
        const char *p = NULL;
        if (line[0] == '{' && (p = strstr(line, "\"resync\":true")) != NULL)
            p = strstr(line, "\"got\":") ? strstr(line, "\"got\":") + 6 : NULL;
        else if (line[0] == '{' && (p = strstr(line, "\"seq\":")) != NULL)
            p += 6;
        else if ((p = strstr(line, "from seq ")) != NULL)
            p += 9;
        if (!p)
            continue;
        uint64_t v = strtoull(p, NULL, 10);
        if (v > pos)
            pos = v;
    }
    fclose(f);
    return pos;
}
