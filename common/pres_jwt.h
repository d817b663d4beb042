/*  pres_jwt: bearer tokens for the presence HTTP API (docs/protocol.md section
    3). Loads (or creates) the HS256 secret, mints tokens for presencectl, and
    verifies tokens with every libjwt 1.10.2 trap closed (docs/libraries.md
    section 6): pinned algorithm, key_len > 0, exp required, nbf enforced,
    strict claim types, bounded size, one spelling per token (canonical
    base64url, low-S ECDSA), optional iss/aud. */
#ifndef PRES_JWT_H_INCLUDED
#define PRES_JWT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pres_config.h"
#include "pres_msg.h"

#define PRES_JWT_SECRET_BYTES 32    //  random bytes in a generated secret
#define PRES_JWT_SECRET_MIN   32    //  shortest secret accepted, bytes
#define PRES_JWT_TOKEN_MAX    2048  //  longest token verified, bytes
#define PRES_JWT_TTL_DEFAULT  3600  //  presencectl token default, seconds
#define PRES_JWT_CLAIM_MAX    255   //  longest jwt_issuer / jwt_audience

//  Load the HS256 secret from path; if the file is missing and create is
//  true, create it first (mode 0600, PRES_JWT_SECRET_BYTES bytes from
//  getrandom(), written as lowercase hex plus a newline, published with
//  link() so concurrent creators agree on one secret). The key is the
//  file's content without trailing whitespace (so other services can sign
//  with the same text), and must be at least PRES_JWT_SECRET_MIN bytes.
//  On success stores a heap copy in *key (caller frees) and its length in
//  *key_len and returns 0; returns -1 after logging why.
int pres_jwt_secret_load(const char *path, bool create, unsigned char **key,
                         size_t *key_len);

//  A verifier/minter holding the configured algorithm and key.
typedef struct pres_jwt pres_jwt_t;

//  From cfg: jwt_alg (HS256, RS256, ES256), jwt_secret_file (HS256;
//  created if missing when create_secret is true: the gateway and
//  presencectl pass true), jwt_public_key_file (RS256/ES256 PEM),
//  jwt_leeway. data_dir must already exist when a secret is created.
//  Returns NULL after logging why. The object is read-only after _new:
//  pres_jwt_verify may be called from many threads at once.
pres_jwt_t *pres_jwt_new(const pres_config_t *cfg, bool create_secret);

//  Same, with explicit parameters (tests, tools). key is copied; for HS256
//  it is the secret, for RS256/ES256 the public key PEM. alg is "HS256",
//  "RS256" or "ES256".
pres_jwt_t *pres_jwt_new_key(const char *alg, const unsigned char *key,
                             size_t key_len, int leeway_s);

//  Require iss == issuer and an aud equal to audience (a string, or an
//  array of strings holding it) on every token verified, and add both to
//  tokens minted. "" or NULL turns a check off (the default). Values are
//  at most PRES_JWT_CLAIM_MAX printable ASCII characters without '"' or
//  '\\'. 0, or -1 after logging (nothing changed). pres_jwt_new applies
//  jwt_issuer and jwt_audience from the config. Call before sharing the
//  object between threads.
int pres_jwt_set_iss_aud(pres_jwt_t *self, const char *issuer,
                         const char *audience);

//  NULL-safe; nulls *self_p.
void pres_jwt_destroy(pres_jwt_t **self_p);

//  Mint a token: header {alg: HS256, typ: JWT}, claims sub = user,
//  iat = now_s, exp = now_s + ttl_s, jti = 32 random hex chars,
//  role = "admin" when admin, and iss / aud when configured. HS256 only
//  (RS256/ES256 need the private key, which this program never holds: returns
//  NULL). user must pass pres_id_valid; ttl_s > 0. now_s is the wall clock in
//  seconds (pass time(NULL)). Returns a heap string the caller frees with
//  free(), or NULL after logging why.
char *pres_jwt_mint(const pres_jwt_t *self, const char *user, bool admin,
                    int64_t ttl_s, int64_t now_s);

//  What a verified token says.
typedef struct {
    char sub[PRES_ID_MAX + 1];  //  the user id (pres_id_valid)
    bool admin;                 //  role == "admin"
    int64_t exp;                //  seconds since the epoch
    int64_t nbf;                //  0 when absent
    int64_t iat;                //  0 when absent
} pres_jwt_claims_t;

//  Verify token (len bytes, not necessarily NUL-terminated; the bearer
//  string without "Bearer ") at wall-clock time now_s. Checks, in order:
//  size <= PRES_JWT_TOKEN_MAX; three non-empty parts of strict base64url
//  (no padding, no other characters, the unused low bits of the last
//  character zero: libjwt ignores those bits, so without this one signed
//  token would have several spellings); the header (alg equals the
//  configured one, so none, HS384/HS512 with our secret and RS/HS
//  confusion are refused; typ, if present, "JWT"; no crit); for ES256 a
//  64-byte r || s signature that is low-S (s <= n/2; the twin (r, n - s)
//  is refused); the payload
//  a JSON object; libjwt signature check with the configured key (key_len
//  > 0 always); claims: exp an integer and exp + leeway > now_s; nbf, if
//  present, an integer and nbf - leeway <= now_s; iat, if present, an
//  integer; sub a string passing pres_id_valid; role, if present, a
//  string; iss and aud when configured (pres_jwt_set_iss_aud). So a token
//  that verifies has exactly one spelling, and two tokens with the same
//  header.payload are the same token. Returns 0 and fills *claims, or -1
//  with *why (if not NULL) set to a static short reason ("too_long",
//  "malformed", "noncanonical", "bad_signature", "high_s", "bad_alg",
//  "bad_typ", "no_exp", "expired", "not_yet_valid", "bad_sub",
//  "bad_claim", "bad_iss", "bad_aud") that callers count. Never logs
//  (tokens come from the network). Thread-safe.
int pres_jwt_verify(const pres_jwt_t *self, const char *token, size_t len,
                    int64_t now_s, pres_jwt_claims_t *claims, const char **why);

//  The configured algorithm name ("HS256", "RS256" or "ES256").
const char *pres_jwt_alg(const pres_jwt_t *self);

#endif
