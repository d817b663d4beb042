/*  gateway_auth: who is calling. Parses `Authorization: Bearer`, verifies
    the JWT with pres_jwt behind a small per-thread cache of verified
    tokens, and keeps the revocation list (tokens logged out before they
    expire), persisted in data_dir so it survives a restart. Revocations
    are keyed on what the signature covers (header.payload), which
    pres_jwt_verify makes the one spelling of a token: no re-encoding of
    a revoked token passes. */
#ifndef GATEWAY_AUTH_H_INCLUDED
#define GATEWAY_AUTH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway_metrics.h"
#include "pres_config.h"
#include "pres_jwt.h"

#define GW_REVOKED_FILE "gateway.revoked"  //  in data_dir

typedef struct gw_auth gw_auth_t;

#define GW_TOKEN_ID_BYTES 16

//  A token's revocation id: the first 16 bytes of SHA-256 over its signed
//  part (header.payload), whatever the spelling of its signature.
typedef struct {
    unsigned char b[GW_TOKEN_ID_BYTES];
} gw_token_id_t;

//  Compute the revocation id of token (len bytes). Thread-safe.
void gw_auth_token_id(const char *token, size_t len, gw_token_id_t *id);

//  Load the JWT key (creating the HS256 secret if missing) and the
//  revocation list (<data_dir>/gateway.revoked; expired entries are
//  dropped and the file rewritten). NULL after logging why.
gw_auth_t *gw_auth_new(const pres_config_t *cfg);
gw_auth_t *gw_auth_new_with(pres_jwt_t **jwt_p, const char *revoked_path,
                            int leeway_s);  //  tests: takes jwt
void gw_auth_destroy(gw_auth_t **self_p);

//  A cache of verified tokens: 32,768 entries, 16-way set-associative
//  (set by a seeded hash of the token bytes, full token compared, least
//  recently used replaced within a set), one mutex per set. Thread-safe:
//  the worker threads share one. About 4.5 MiB plus a heap copy of each
//  cached token.
typedef struct gw_auth_cache gw_auth_cache_t;
gw_auth_cache_t *gw_auth_cache_new(void);
void gw_auth_cache_destroy(gw_auth_cache_t **self_p);

//  Lookups that hit and missed so far (tests, benchmarks). Thread-safe.
void gw_auth_cache_stats(gw_auth_cache_t *self, uint64_t *hits,
                         uint64_t *misses);

//  Check an Authorization header value (NULL when absent) at now_s.
//  Returns 0 and fills claims; or -1 with *reject set (NO_TOKEN,
//  BAD_TOKEN, EXPIRED, REVOKED) and *why a static reason for the error
//  text. On success *token/*token_len point at the token inside header.
//  A hit skips pres_jwt_verify only: exp and the revocation set are
//  checked on every call. Thread-safe (cache may be NULL: no caching).
int gw_auth_check(gw_auth_t *self, gw_auth_cache_t *cache, const char *header,
                  int64_t now_s, pres_jwt_claims_t *claims, const char **token,
                  size_t *token_len, gw_reject_t *reject, const char **why);

//  Revoke a token until exp (seconds; any int64, INT64_MAX included):
//  recorded in memory and appended to the file, then fdatasync'd. Returns
//  0 once the revocation is durable, then calls the on_revoke hook. On -1
//  (logged: the write or sync failed, e.g. disk full) the file is cut back
//  to its old length and the revocation is undone in memory, unless it
//  was already there, so the caller can answer 503 and a retry works.
//  Thread-safe.
int gw_auth_revoke(gw_auth_t *self, const char *token, size_t len, int64_t exp);

//  True if the token (any spelling) is revoked.
bool gw_auth_is_revoked(gw_auth_t *self, const char *token, size_t len);

//  True if the id is revoked. Thread-safe; takes a read lock.
bool gw_auth_is_revoked_id(gw_auth_t *self, const gw_token_id_t *id);

//  Called after each durable revocation, on the revoking thread, with no
//  lock of gw_auth held (so the hook may call gw_auth_is_revoked_id).
typedef void(gw_auth_revoke_fn)(void *arg, const gw_token_id_t *id);

//  Install the one hook (NULL to remove). Not thread-safe: call before
//  requests are served, and remove only after they stopped.
void gw_auth_on_revoke(gw_auth_t *self, gw_auth_revoke_fn *fn, void *arg);

//  Drop expired entries; rewrite the file when it holds many dead lines.
//  Call now and then (the bus thread does, every few seconds).
void gw_auth_maintain(gw_auth_t *self, int64_t now_s);

//  Number of live revocations (tests, metrics).
size_t gw_auth_revoked_count(gw_auth_t *self);

//  The verifier (borrowed), e.g. to mint tokens in tests.
const pres_jwt_t *gw_auth_jwt(const gw_auth_t *self);

#endif
