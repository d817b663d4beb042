/*  ithttp: the HTTP side of the integration and fault tests: the real
    presence-gateway on a free loopback port, a raw-socket HTTP/1.1 client
    (one request per connection, a deadline on every step, no libcurl),
    tokens minted with the secret the gateway uses, and a Server-Sent
    Events reader for GET /v1/events. */
#ifndef ITHTTP_H_INCLUDED
#define ITHTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "itutil.h"

#define ITH_BODY_MAX 65536

typedef struct {
    int status;               //  HTTP status, -1 = no answer in time
    char body[ITH_BODY_MAX];  //  NUL-terminated (truncated if longer)
    size_t body_len;
} ith_resp_t;

//  One request to 127.0.0.1:port. token (NULL = none) goes in
//  Authorization: Bearer; body (NULL = none) is sent as JSON. Fills *r
//  and returns r->status (-1 on connect failure, I/O error or timeout).
int ith_request(int port, const char *method, const char *path,
                const char *token, const char *body, ith_resp_t *r,
                int timeout_ms);

//  Start presence-gateway on a free port (the env's http_listen is set),
//  and wait (20 s) until it answers /healthz (200 or 503). Returns the
//  port, or -1 (log dumped). extra_env as it_spawn.
int ith_gateway_start(it_env_t *env, const char *const *extra_env,
                      it_proc_t *p);

//  Same on a known port (a restart keeps its clients' address).
int ith_gateway_start_on(it_env_t *env, int port, const char *const *extra_env,
                         it_proc_t *p);

//  A token for user (admin role if admin), valid ttl_s, signed with
//  <data_dir>/jwt.secret (the gateway creates it on first start). Heap
//  string (free it), or NULL. Loads the secret each call: for many tokens
//  use a minter.
char *ith_token(const it_env_t *env, const char *user, bool admin, int ttl_s);

//  The tests' one token maker: loads <data_dir>/jwt.secret once (after the
//  gateway created it) and mints tokens with pres_jwt_mint. Aborts the
//  test if the secret cannot be read. Thread-safe.
typedef struct ith_minter ith_minter_t;
ith_minter_t *ith_minter_new(const it_env_t *env);
//  A token for user, valid ttl_s; heap (free it).
char *ith_mint(ith_minter_t *self, const char *user, bool admin, int ttl_s);
//  The secret's bytes (borrowed), for hand-made tokens.
const unsigned char *ith_minter_key(const ith_minter_t *self, size_t *len);
void ith_minter_destroy(ith_minter_t **self_p);

//  A hand-made token for the JWT cases: base64url(header) "."
//  base64url(payload) "." signature, the signature an HMAC over the first
//  two parts with key, by hmac "SHA256", "SHA384" or "SHA512" (NULL: an
//  empty signature). Returns one of ITH_JWT_KEPT rotating static buffers
//  (per thread): the last ITH_JWT_KEPT results stay valid.
#define ITH_JWT_KEPT 32
const char *ith_jwt_make(const char *header, const char *payload,
                         const char *hmac, const void *key, size_t key_len);

//  The JSON string value of key in body ("" if absent), into out.
void ith_json_str(const char *body, const char *key, char *out, size_t cap);

//  ---------------------------------------------------------------------
//  An SSE stream.
typedef struct {
    int fd;             //  -1 when closed
    char raw[1 << 16];  //  bytes read, chunk framing not yet removed
    size_t rawlen;
    char buf[1 << 16];  //  event text not yet parsed
    size_t len;
} ith_sse_t;

//  The raw side of an SSE stream: a connection to 127.0.0.1:port (non-
//  blocking) with GET /v1/events sent (Last-Event-ID: last_id unless
//  NULL), nothing read. The fd (close it), or -1 on failure or timeout.
int ith_sse_request(int port, const char *token, const char *last_id,
                    int timeout_ms);

//  Reads fd into buf (cap bytes, appended to the NUL-terminated text it
//  holds) until needle shows up in it: true; false when timeout_ms passes,
//  the stream ends or buf is full.
bool ith_read_until(int fd, char *buf, size_t cap, const char *needle,
                    int timeout_ms);

//  Open GET /v1/events with token; last_id NULL = from the live tail.
//  0 once the 200 header arrived, -1 otherwise.
int ith_sse_open(ith_sse_t *s, int port, const char *token, const char *last_id,
                 int timeout_ms);

//  Next event within timeout_ms: 1 and *id / event name ("" = message) /
//  data filled, 0 on timeout, -1 when the stream ended.
int ith_sse_next(ith_sse_t *s, uint64_t *id, char *event, size_t event_cap,
                 char *data, size_t data_cap, int timeout_ms);

void ith_sse_close(ith_sse_t *s);

//  ---------------------------------------------------------------------
//  Followers that keep up by themselves, for the fault tests.

//  An SSE client in its own thread: reads GET /v1/events, reconnects with
//  Last-Event-ID whenever the stream ends (gateway restarts), and records
//  the last id seen and the `event: resync` count. stall = true stops it
//  reading (a stuck console) until set back to false.
typedef struct ith_follower ith_follower_t;
ith_follower_t *ith_follower_new(int port, const char *token);
uint64_t ith_follower_last(ith_follower_t *self);
uint64_t ith_follower_resyncs(ith_follower_t *self);
uint64_t ith_follower_gaps(ith_follower_t *self);  //  ids not +1
void ith_follower_stall(ith_follower_t *self, bool stall);
void ith_follower_destroy(ith_follower_t **self_p);

//  `presencectl --json watch` started with it_spawn (stdout and stderr in
//  its log): the highest seq it printed, or that a resync line says the
//  head was.
uint64_t ith_watch_position(const it_proc_t *watch);

#endif
