/*  pres_jwt: HS256 secret handling, token minting and strict verification
    on top of libjwt 1.10.2. libjwt checks the signature only; everything
    it does not check (alg pinning, exp, nbf, claim types) is done here,
    with our own header and payload parse (jansson) before and after it. */
#include "pres_jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pres_log.h"

#define S_FILE_MAX 65536  //  cap on a key file read, bytes
#define S_SIG_MAX  1024   //  longest signature (RSA 8192), bytes

struct pres_jwt {
    jwt_alg_t alg;                          //  the only algorithm accepted
    char alg_name[8];                       //  its JOSE name
    unsigned char *key;                     //  HS secret or PEM public key
    size_t key_len;                         //  > 0 always
    int leeway;                             //  seconds on exp/nbf
    char issuer[PRES_JWT_CLAIM_MAX + 1];    //  required iss; "" = unchecked
    char audience[PRES_JWT_CLAIM_MAX + 1];  //  required aud; "" = unchecked
};

//  Fill buf with random bytes: getrandom(), else /dev/urandom. 0 or -1.
static int
s_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == len)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pres_log_error("open(/dev/urandom) failed: %s", strerror(errno));
        return -1;
    }
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            pres_log_error("read(/dev/urandom) failed: %s", strerror(errno));
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    return 0;
}

static void
s_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

//  Read a whole small file into a heap buffer (NUL-terminated). 0 or -1;
//  errno is kept for the caller when open() fails.
static int
s_read_file(const char *path, unsigned char **out, size_t *out_len,
            mode_t *mode)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        st.st_size > S_FILE_MAX) {
        pres_log_error("%s: not a regular file of at most %d bytes", path,
                       S_FILE_MAX);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (mode)
        *mode = st.st_mode;
    size_t cap = (size_t)st.st_size;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pres_log_error("read(%s) failed: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *out_len = got;
    return 0;
}

//  Create the secret file atomically: write a private temp file, then
//  link() it to path. link fails with EEXIST if another process won the
//  race, and then its secret is the one everybody loads.
static int
s_secret_create(const char *path)
{
    unsigned char raw[PRES_JWT_SECRET_BYTES];
    char text[2 * PRES_JWT_SECRET_BYTES + 2];
    if (s_random(raw, sizeof raw) != 0)
        return -1;
    s_hex(raw, sizeof raw, text);
    size_t len = strlen(text);
    text[len++] = '\n';
    memset(raw, 0, sizeof raw);

    char tmp[PRES_PATH_MAX + 64];
    unsigned char salt[8];
    char salt_hex[17];
    if (s_random(salt, sizeof salt) != 0)
        return -1;
    s_hex(salt, sizeof salt, salt_hex);
    snprintf(tmp, sizeof tmp, "%s.%s.tmp", path, salt_hex);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        pres_log_error("open(%s) failed: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (write(fd, text, len) != (ssize_t)len) {
        pres_log_error("write(%s) failed: %s", tmp, strerror(errno));
        rc = -1;
    } else if (fsync(fd) != 0) {
        pres_log_error("fsync(%s) failed: %s", tmp, strerror(errno));
        rc = -1;
    }
    close(fd);
    memset(text, 0, sizeof text);
    if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST) {
        pres_log_error("link(%s) failed: %s", path, strerror(errno));
        rc = -1;
    }
    unlink(tmp);
    if (rc == 0)
        pres_log_info("created JWT secret %s", path);
    return rc;
}

int
pres_jwt_secret_load(const char *path, bool create, unsigned char **key,
                     size_t *key_len)
{
    if (!path || !*path || !key || !key_len) {
        pres_log_error("jwt secret: no path given");
        return -1;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    mode_t mode = 0;
    int rc = s_read_file(path, &buf, &len, &mode);
    if (rc != 0 && errno == ENOENT && create) {
        if (s_secret_create(path) != 0)
            return -1;
        rc = s_read_file(path, &buf, &len, &mode);
    }
    if (rc != 0) {
        pres_log_error("cannot read JWT secret %s: %s", path, strerror(errno));
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
                       buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (len < PRES_JWT_SECRET_MIN) {
        pres_log_error("JWT secret %s is too short (%zu bytes, need %d)", path,
                       len, PRES_JWT_SECRET_MIN);
        free(buf);
        return -1;
    }
    if (mode & (S_IRWXG | S_IRWXO))
        pres_log_warn("JWT secret %s is readable by group or others "
                      "(chmod 600 it)",
                      path);
    *key = buf;
    *key_len = len;
    return 0;
}

static jwt_alg_t
s_alg_parse(const char *name)
{
    if (strcmp(name, "HS256") == 0)
        return JWT_ALG_HS256;
    if (strcmp(name, "RS256") == 0)
        return JWT_ALG_RS256;
    if (strcmp(name, "ES256") == 0)
        return JWT_ALG_ES256;
    return JWT_ALG_INVAL;
}

static bool
s_has_pem(const unsigned char *key, size_t len)
{
    static const char mark[] = "-----BEGIN";
    size_t m = sizeof mark - 1;
    for (size_t i = 0; i + m <= len; i++)
        if (memcmp(key + i, mark, m) == 0)
            return true;
    return false;
}

pres_jwt_t *
pres_jwt_new_key(const char *alg, const unsigned char *key, size_t key_len,
                 int leeway_s)
{
    jwt_alg_t a = alg ? s_alg_parse(alg) : JWT_ALG_INVAL;
    if (a == JWT_ALG_INVAL) {
        pres_log_error("jwt_alg '%s' is not HS256, RS256 or ES256",
                       alg ? alg : "");
        return NULL;
    }
    //  key_len 0 is the libjwt alg=none bypass: never allowed.
    if (!key || key_len == 0 || key_len > S_FILE_MAX) {
        pres_log_error("JWT key is empty");
        return NULL;
    }
    if (a == JWT_ALG_HS256 && key_len < PRES_JWT_SECRET_MIN) {
        pres_log_error("JWT secret too short (%zu bytes, need %d)", key_len,
                       PRES_JWT_SECRET_MIN);
        return NULL;
    }
    if (a != JWT_ALG_HS256 && !s_has_pem(key, key_len)) {
        pres_log_error("JWT public key is not PEM");
        return NULL;
    }
    if (leeway_s < 0)
        leeway_s = 0;
    pres_jwt_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->key = malloc(key_len + 1);
    if (!self->key) {
        free(self);
        return NULL;
    }
    memcpy(self->key, key, key_len);
    self->key[key_len] = '\0';
    self->key_len = key_len;
    self->alg = a;
    snprintf(self->alg_name, sizeof self->alg_name, "%s", alg);
    self->leeway = leeway_s;
    //  Seed jansson's hash once here, before any thread parses JSON.
    json_object_seed(0);
    return self;
}

pres_jwt_t *
pres_jwt_new(const pres_config_t *cfg, bool create_secret)
{
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (strcmp(cfg->jwt_alg, "HS256") == 0) {
        if (pres_jwt_secret_load(cfg->jwt_secret_file, create_secret, &key,
                                 &key_len) != 0)
            return NULL;
    } else {
        if (!cfg->jwt_public_key_file[0]) {
            pres_log_error("jwt_alg %s needs jwt_public_key_file",
                           cfg->jwt_alg);
            return NULL;
        }
        if (s_read_file(cfg->jwt_public_key_file, &key, &key_len, NULL) != 0) {
            pres_log_error("cannot read %s: %s", cfg->jwt_public_key_file,
                           strerror(errno));
            return NULL;
        }
    }
    pres_jwt_t *self =
        pres_jwt_new_key(cfg->jwt_alg, key, key_len, cfg->jwt_leeway);
    memset(key, 0, key_len);
    free(key);
    if (self &&
        pres_jwt_set_iss_aud(self, cfg->jwt_issuer, cfg->jwt_audience) != 0)
        pres_jwt_destroy(&self);
    return self;
}

void
pres_jwt_destroy(pres_jwt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pres_jwt_t *self = *self_p;
    memset(self->key, 0, self->key_len);
    free(self->key);
    free(self);
    *self_p = NULL;
}

//  A configured iss or aud: printable ASCII without quotes or
//  backslashes, so it can be compared and minted without escaping.
static bool
s_claim_text_ok(const char *v)
{
    if (strlen(v) > PRES_JWT_CLAIM_MAX)
        return false;
    for (const char *p = v; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            return false;
    return true;
}

int
pres_jwt_set_iss_aud(pres_jwt_t *self, const char *issuer, const char *audience)
{
    if (!issuer)
        issuer = "";
    if (!audience)
        audience = "";
    if (!s_claim_text_ok(issuer) || !s_claim_text_ok(audience)) {
        pres_log_error("jwt_issuer/jwt_audience: at most %d printable "
                       "characters, no quotes or backslashes",
                       PRES_JWT_CLAIM_MAX);
        return -1;
    }
    snprintf(self->issuer, sizeof self->issuer, "%s", issuer);
    snprintf(self->audience, sizeof self->audience, "%s", audience);
    return 0;
}

const char *
pres_jwt_alg(const pres_jwt_t *self)
{
    return self->alg_name;
}

char *
pres_jwt_mint(const pres_jwt_t *self, const char *user, bool admin,
              int64_t ttl_s, int64_t now_s)
{
    if (self->alg != JWT_ALG_HS256) {
        pres_log_error("cannot mint %s tokens: only HS256 (the private key "
                       "is not ours)",
                       self->alg_name);
        return NULL;
    }
    if (!user || !pres_id_valid(user, strlen(user)) || ttl_s <= 0) {
        pres_log_error("cannot mint: bad user id or ttl");
        return NULL;
    }
    unsigned char raw[16];
    char jti[33];
    if (s_random(raw, sizeof raw) != 0)
        return NULL;
    s_hex(raw, sizeof raw, jti);

    jwt_t *jwt = NULL;
    char *token = NULL;
    if (jwt_new(&jwt) != 0) {
        pres_log_error("jwt_new() failed");
        return NULL;
    }
    if (jwt_add_grant(jwt, "sub", user) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) != 0 ||
        jwt_add_grant(jwt, "jti", jti) != 0 ||
        (admin && jwt_add_grant(jwt, "role", "admin") != 0) ||
        (self->issuer[0] && jwt_add_grant(jwt, "iss", self->issuer) != 0) ||
        (self->audience[0] && jwt_add_grant(jwt, "aud", self->audience) != 0)) {
        pres_log_error("jwt_add_grant() failed");
        goto done;
    }
    if (jwt_set_alg(jwt, JWT_ALG_HS256, self->key, (int)self->key_len) != 0) {
        pres_log_error("jwt_set_alg() failed");
        goto done;
    }
    token = jwt_encode_str(jwt);
    if (!token)
        pres_log_error("jwt_encode_str() failed");
done:
    jwt_free(jwt);
    return token;
}

//  Strict base64url (RFC 7515 section 2: no padding, no other
//  characters) into out (cap bytes). The unused low bits of the last
//  character must be zero, so every byte string has exactly one spelling:
//  libjwt 1.10.2 ignores those bits, and a second spelling of a valid
//  signature would otherwise be a second token. Returns the decoded
//  length, -1 (bad character or length) or -2 (unused bits set).
static int
s_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    //  2 or 4 bits left over (len % 4 == 3 or 2): they must be zero.
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -2;
    return (int)n;
}

//  Parse one base64url JSON object part, rejecting duplicate keys. NULL
//  with *why set ("noncanonical" or "malformed").
static json_t *
s_part_json(const char *part, size_t len, const char **why)
{
    unsigned char buf[PRES_JWT_TOKEN_MAX];
    int n = s_b64url_decode(part, len, buf, sizeof buf);
    if (n <= 0) {
        *why = n == -2 ? "noncanonical" : "malformed";
        return NULL;
    }
    json_t *obj =
        json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    if (!obj)
        *why = "malformed";
    return obj;
}

//  Integer claim: 1 present (value in *v), 0 absent, -1 wrong type.
static int
s_int_claim(json_t *claims, const char *name, int64_t *v)
{
    json_t *j = json_object_get(claims, name);
    if (!j)
        return 0;
    if (!json_is_integer(j))
        return -1;
    *v = (int64_t)json_integer_value(j);
    return 1;
}

//  True if j is a JSON string equal to want (no embedded NUL).
static bool
s_str_equals(json_t *j, const char *want)
{
    return json_is_string(j) && json_string_length(j) == strlen(want) &&
           memcmp(json_string_value(j), want, strlen(want)) == 0;
}

//  RFC 7519 section 4.1.3: aud is one string or an array of strings; it
//  matches when it is, or holds, want. An array of other types is refused
//  whole (bounded: the token is at most PRES_JWT_TOKEN_MAX bytes).
static bool
s_aud_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return s_str_equals(aud, want);
    if (!json_is_array(aud))
        return false;
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (!json_is_string(v))
            return false;
        found = found || s_str_equals(v, want);
    }
    return found;
}

static int
s_claims_check(const pres_jwt_t *self, json_t *claims, int64_t now_s,
               pres_jwt_claims_t *out, const char **why)
{
    int64_t exp = 0, nbf = 0, iat = 0;
    int rc = s_int_claim(claims, "exp", &exp);
    if (rc == 0) {
        *why = "no_exp";
        return -1;
    }
    if (rc < 0) {
        *why = "bad_claim";
        return -1;
    }
    //  exp + leeway > now, written so it cannot overflow.
    if (exp <= now_s - self->leeway) {
        *why = "expired";
        return -1;
    }
    rc = s_int_claim(claims, "nbf", &nbf);
    if (rc < 0) {
        *why = "bad_claim";
        return -1;
    }
    if (rc > 0 && nbf > now_s + self->leeway) {
        *why = "not_yet_valid";
        return -1;
    }
    if (s_int_claim(claims, "iat", &iat) < 0) {
        *why = "bad_claim";
        return -1;
    }
    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub) ||
        !pres_id_valid(json_string_value(sub), json_string_length(sub)) ||
        strlen(json_string_value(sub)) != json_string_length(sub)) {
        *why = "bad_sub";
        return -1;
    }
    json_t *role = json_object_get(claims, "role");
    if (role && !json_is_string(role)) {
        *why = "bad_claim";
        return -1;
    }
    if (self->issuer[0] &&
        !s_str_equals(json_object_get(claims, "iss"), self->issuer)) {
        *why = "bad_iss";
        return -1;
    }
    if (self->audience[0] &&
        !s_aud_matches(json_object_get(claims, "aud"), self->audience)) {
        *why = "bad_aud";
        return -1;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->sub, sizeof out->sub, "%s", json_string_value(sub));
    out->admin = role && strcmp(json_string_value(role), "admin") == 0;
    out->exp = exp;
    out->nbf = nbf;
    out->iat = iat;
    return 0;
}

//  (r, s) and (r, n - s) are both valid ECDSA signatures of one message.
//  Only the low-S one (s <= n/2) is accepted, so a signature cannot be
//  re-spelled. ES256 (RFC 7518 section 3.4): 64 bytes, r then s, each
//  32 bytes big-endian (the caller refuses other lengths).
static bool
s_es256_high_s(const unsigned char *sig, size_t len)
{
    //  floor(n / 2) for the P-256 group order n.
    static const unsigned char half_n[32] = {
        0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b,
        0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};
    if (len != 64)
        return false;
    return memcmp(sig + 32, half_n, sizeof half_n) > 0;
}

static bool
s_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
pres_jwt_verify(const pres_jwt_t *self, const char *token, size_t len,
                int64_t now_s, pres_jwt_claims_t *claims, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = "malformed";
    if (len > PRES_JWT_TOKEN_MAX) {
        *why = "too_long";
        return -1;
    }
    if (!token || len == 0)
        return -1;
    //  Shape: header.payload.signature, all three non-empty base64url.
    //  An empty signature is how alg=none tokens look: refused here.
    size_t dot[2], ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 2)
                return -1;
            dot[ndots++] = i;
        } else if (!s_b64url_char(token[i]))
            return -1;
    }
    if (ndots != 2 || dot[0] == 0 || dot[1] == dot[0] + 1 || dot[1] == len - 1)
        return -1;

    //  The signature: canonical base64url, and for ES256 low-S (below).
    unsigned char sig[S_SIG_MAX];
    int sig_len =
        s_b64url_decode(token + dot[1] + 1, len - dot[1] - 1, sig, sizeof sig);
    if (sig_len <= 0) {
        *why = sig_len == -2 ? "noncanonical" : "malformed";
        return -1;
    }

    //  Our own header check first, so libjwt never picks the algorithm.
    json_t *head = s_part_json(token, dot[0], why);
    if (!head)
        return -1;
    json_t *alg = json_object_get(head, "alg");
    json_t *typ = json_object_get(head, "typ");
    int bad = 0;
    if (!json_is_string(alg) ||
        strcmp(json_string_value(alg), self->alg_name) != 0) {
        *why = "bad_alg";
        bad = 1;
    } else if (typ && (!json_is_string(typ) ||
                       strcasecmp(json_string_value(typ), "JWT") != 0)) {
        *why = "bad_typ";
        bad = 1;
    } else if (json_object_get(head, "crit")) {
        //  No extensions are understood, so a critical one must fail.
        *why = "bad_claim";
        bad = 1;
    }
    json_decref(head);
    if (bad)
        return -1;
    //  ES256 signatures are r || s, 32 bytes each (RFC 7518 section 3.4):
    //  no other form (DER, leading zeros) is a second spelling of one.
    if (self->alg == JWT_ALG_ES256 && sig_len != 64) {
        *why = "bad_signature";
        return -1;
    }
    if (self->alg == JWT_ALG_ES256 && s_es256_high_s(sig, (size_t)sig_len)) {
        *why = "high_s";
        return -1;
    }

    //  The payload must be a JSON object (without duplicate keys) before
    //  the signature is worth checking; its claims are read only after.
    json_t *body = s_part_json(token + dot[0] + 1, dot[1] - dot[0] - 1, why);
    if (!body)
        return -1;
    char buf[PRES_JWT_TOKEN_MAX + 1];
    memcpy(buf, token, len);
    buf[len] = '\0';
    jwt_t *jwt = NULL;
    //  key_len > 0 always (pres_jwt_new_key refuses empty keys).
    if (jwt_decode(&jwt, buf, self->key, (int)self->key_len) != 0 || !jwt) {
        json_decref(body);
        *why = "bad_signature";
        return -1;
    }
    //  Belt and braces (libjwt issue #43): the verified alg is ours.
    jwt_alg_t got = jwt_get_alg(jwt);
    jwt_free(jwt);
    if (got != self->alg) {
        json_decref(body);
        *why = "bad_alg";
        return -1;
    }
    pres_jwt_claims_t tmp;
    int rc = s_claims_check(self, body, now_s, claims ? claims : &tmp, why);
    json_decref(body);
    return rc;
}
