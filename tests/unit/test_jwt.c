/*  test_jwt: pres_jwt against every bypass of docs/libraries.md section 6 and
    the malformed tokens we could think of. Each bad token must be refused with
    the expected reason; good tokens must pass with the right claims. */
#include "pres_jwt.h"

#include <errno.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jwtutil.h"
#include "testutil.h"

static const char s_secret[] = "0123456789abcdef0123456789abcdef01234567";
static int64_t s_now;

//  Build header.payload.signature by hand; md NULL = empty signature.
static char *
s_make(const char *header, const char *payload, const EVP_MD *md,
       const void *key, size_t key_len)
{
    static char tok[8192];
    return tu_jwt_make(header, payload, md, key, key_len, tok, sizeof tok);
}

static char *
s_hs256(const char *payload)
{
    return s_make("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, EVP_sha256(),
                  s_secret, strlen(s_secret));
}

static const char *
s_verify(const pres_jwt_t *v, const char *tok, pres_jwt_claims_t *c)
{
    const char *why = NULL;
    int rc = pres_jwt_verify(v, tok, strlen(tok), s_now, c, &why);
    if (rc == 0)
        return "ok";
    CHECK(rc == -1);
    CHECK(why);
    return why;
}

static void
s_expect(const pres_jwt_t *v, const char *tok, const char *want)
{
    pres_jwt_claims_t c;
    const char *got = s_verify(v, tok, &c);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "token %.200s: got %s, want %s\n", tok, got, want);
    CHECK_STR(got, want);
}

//  ------------------------------------------------------------------
//  Re-spellings: the same signed bytes written another way.

//  Copy tok into out with the lowest unused bit of part `which` (0 header,
//  1 payload, 2 signature) set. False if that part has no unused bits.
static bool
s_respell(const char *tok, int which, char *out, size_t cap)
{
    snprintf(out, cap, "%s", tok);
    char *start = out;
    for (int i = 0; i < which; i++)
        start = strchr(start, '.') + 1;
    char *end = strchr(start, '.');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    if (len % 4 == 0)
        return false;
    int v = tu_b64val(start[len - 1]);
    CHECK(v >= 0);
    CHECK((v & 1) == 0);  //  canonical: unused bits are zero
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    start[len - 1] = t[v | 1];
    return true;
}

//  Every other spelling of a good token is refused; libjwt alone (checked
//  when a public key is given) accepts the re-spelled signature.
static void
s_test_respellings(const pres_jwt_t *v, const char *tok, const char *key,
                   size_t key_len)
{
    static char other[8192];
    s_expect(v, tok, "ok");
    int respelled = 0;
    for (int which = 0; which < 3; which++) {
        if (!s_respell(tok, which, other, sizeof other))
            continue;
        respelled++;
        s_expect(v, other, "noncanonical");
        if (which == 2 && key) {
            //  The loose decoder in libjwt 1.10.2 takes it as is.
            jwt_t *jwt = NULL;
            CHECK_EQ(jwt_decode(&jwt, other, (const unsigned char *)key,
                                (int)key_len),
                     0);
            jwt_free(jwt);
        }
    }
    CHECK(respelled > 0);
    //  Padding, anywhere.
    snprintf(other, sizeof other, "%s=", tok);
    s_expect(v, other, "malformed");
    snprintf(other, sizeof other, "%s==", tok);
    s_expect(v, other, "malformed");
}

static void
s_test_good(const pres_jwt_t *v)
{
    char pl[256];
    pres_jwt_claims_t c;
    snprintf(pl, sizeof pl, "{\"sub\":\"alice\",\"exp\":%lld}",
             (long long)s_now + 60);
    CHECK_STR(s_verify(v, s_hs256(pl), &c), "ok");
    CHECK_STR(c.sub, "alice");
    CHECK(!c.admin);
    CHECK_EQ(c.exp, s_now + 60);

    snprintf(pl, sizeof pl,
             "{\"sub\":\"root@x\",\"exp\":%lld,\"role\":\"admin\","
             "\"nbf\":%lld,\"iat\":%lld}",
             (long long)s_now + 60, (long long)s_now, (long long)s_now);
    CHECK_STR(s_verify(v, s_hs256(pl), &c), "ok");
    CHECK(c.admin);
    CHECK_EQ(c.nbf, s_now);

    //  role other than admin: a user.
    snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"exp\":%lld,\"role\":\"Admin\"}",
             (long long)s_now + 60);
    CHECK_STR(s_verify(v, s_hs256(pl), &c), "ok");
    CHECK(!c.admin);

    //  No typ header is fine; typ "jwt" in any case is fine.
    s_expect(v,
             s_make("{\"alg\":\"HS256\"}", pl, EVP_sha256(), s_secret,
                    strlen(s_secret)),
             "ok");
    s_expect(v,
             s_make("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", pl, EVP_sha256(),
                    s_secret, strlen(s_secret)),
             "ok");

    //  exp within the leeway (30 s) still passes; nbf within it too.
    snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"exp\":%lld}",
             (long long)s_now - 10);
    s_expect(v, s_hs256(pl), "ok");
    snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"exp\":%lld,\"nbf\":%lld}",
             (long long)s_now + 100, (long long)s_now + 20);
    s_expect(v, s_hs256(pl), "ok");
}

static void
s_test_alg(const pres_jwt_t *v)
{
    char pl[256];
    snprintf(pl, sizeof pl, "{\"sub\":\"alice\",\"exp\":%lld}",
             (long long)s_now + 60);
    //  alg=none with no signature (libjwt accepts it without a key).
    s_expect(v, s_make("{\"alg\":\"none\",\"typ\":\"JWT\"}", pl, NULL, NULL, 0),
             "malformed");
    //  alg=none with some signature bytes.
    char tok[4096];
    snprintf(tok, sizeof tok, "%sAAAA",
             s_make("{\"alg\":\"none\"}", pl, NULL, NULL, 0));
    s_expect(v, tok, "bad_alg");
    //  alg=none with a real HS256 MAC appended.
    s_expect(v,
             s_make("{\"alg\":\"none\"}", pl, EVP_sha256(), s_secret,
                    strlen(s_secret)),
             "bad_alg");
    //  HS512 / HS384 signed with our secret (libjwt accepts it).
    s_expect(v,
             s_make("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pl, EVP_sha512(),
                    s_secret, strlen(s_secret)),
             "bad_alg");
    s_expect(v,
             s_make("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", pl, EVP_sha384(),
                    s_secret, strlen(s_secret)),
             "bad_alg");
    //  Case games: libjwt compares case-insensitively, we do not.
    s_expect(v,
             s_make("{\"alg\":\"hs256\"}", pl, EVP_sha256(), s_secret,
                    strlen(s_secret)),
             "bad_alg");
    //  alg missing, alg not a string.
    s_expect(v,
             s_make("{\"typ\":\"JWT\"}", pl, EVP_sha256(), s_secret,
                    strlen(s_secret)),
             "bad_alg");
    s_expect(
        v, s_make("{\"alg\":1}", pl, EVP_sha256(), s_secret, strlen(s_secret)),
        "bad_alg");
    //  typ other than JWT.
    s_expect(v,
             s_make("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", pl, EVP_sha256(),
                    s_secret, strlen(s_secret)),
             "bad_typ");
    s_expect(v,
             s_make("{\"alg\":\"HS256\",\"typ\":7}", pl, EVP_sha256(), s_secret,
                    strlen(s_secret)),
             "bad_typ");
    //  crit extension we do not understand.
    s_expect(v,
             s_make("{\"alg\":\"HS256\",\"crit\":[\"x\"],\"x\":1}", pl,
                    EVP_sha256(), s_secret, strlen(s_secret)),
             "bad_claim");
    //  Wrong secret.
    static const char other[] = "ffffffffffffffffffffffffffffffffffffffff";
    s_expect(
        v,
        s_make("{\"alg\":\"HS256\"}", pl, EVP_sha256(), other, strlen(other)),
        "bad_signature");
}

static void
s_test_claims(const pres_jwt_t *v)
{
    char pl[512];
    //  Expired beyond the leeway.
    snprintf(pl, sizeof pl, "{\"sub\":\"alice\",\"exp\":%lld}",
             (long long)s_now - 31);
    s_expect(v, s_hs256(pl), "expired");
    s_expect(v, s_hs256("{\"sub\":\"alice\",\"exp\":0}"), "expired");
    s_expect(v, s_hs256("{\"sub\":\"alice\",\"exp\":-5}"), "expired");
    //  exp missing, or of the wrong type.
    s_expect(v, s_hs256("{\"sub\":\"alice\"}"), "no_exp");
    s_expect(v, s_hs256("{\"sub\":\"alice\",\"exp\":\"9999999999\"}"),
             "bad_claim");
    s_expect(v, s_hs256("{\"sub\":\"alice\",\"exp\":9999999999.5}"),
             "bad_claim");
    s_expect(v, s_hs256("{\"sub\":\"alice\",\"exp\":null}"), "bad_claim");
    s_expect(v, s_hs256("{\"sub\":\"alice\",\"exp\":true}"), "bad_claim");
    s_expect(v, s_hs256("{\"sub\":\"alice\",\"exp\":[1]}"), "bad_claim");
    //  exp too big for an integer: jansson refuses the document.
    s_expect(v,
             s_hs256("{\"sub\":\"alice\","
                     "\"exp\":99999999999999999999999999}"),
             "malformed");
    //  nbf in the future, nbf of the wrong type, iat of the wrong type.
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}",
             (long long)s_now + 600, (long long)s_now + 31);
    s_expect(v, s_hs256(pl), "not_yet_valid");
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":\"0\"}",
             (long long)s_now + 600);
    s_expect(v, s_hs256(pl), "bad_claim");
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"iat\":\"x\"}",
             (long long)s_now + 600);
    s_expect(v, s_hs256(pl), "bad_claim");
    //  sub: missing, empty, bad characters, too long, not a string.
    const char *subs[] = {NULL,
                          "\"\"",
                          "\"a b\"",
                          "\"a/b\"",
                          "\"\\u00e9\"",
                          "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          "aaaaaaaaaaaaaaaaa\"",
                          "1",
                          "null",
                          "[\"a\"]"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (subs[i])
            snprintf(pl, sizeof pl, "{\"sub\":%s,\"exp\":%lld}", subs[i],
                     (long long)s_now + 60);
        else
            snprintf(pl, sizeof pl, "{\"exp\":%lld}", (long long)s_now + 60);
        s_expect(v, s_hs256(pl), "bad_sub");
    }
    //  An embedded NUL in a string: jansson refuses the document.
    snprintf(pl, sizeof pl, "{\"sub\":\"a\\u0000b\",\"exp\":%lld}",
             (long long)s_now + 60);
    s_expect(v, s_hs256(pl), "malformed");
    //  role of the wrong type.
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"role\":1}",
             (long long)s_now + 60);
    s_expect(v, s_hs256(pl), "bad_claim");
    //  Duplicate claims (a parser that keeps the first would differ from
    //  one that keeps the last): refused.
    snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld,\"sub\":\"admin\"}",
             (long long)s_now + 60);
    s_expect(v, s_hs256(pl), "malformed");
    //  Payload not an object.
    s_expect(v, s_hs256("[1,2]"), "malformed");
    s_expect(v, s_hs256("\"x\""), "malformed");
}

static void
s_test_shapes(const pres_jwt_t *v)
{
    char pl[256];
    snprintf(pl, sizeof pl, "{\"sub\":\"alice\",\"exp\":%lld}",
             (long long)s_now + 60);
    char good[4096];
    snprintf(good, sizeof good, "%s", s_hs256(pl));
    s_expect(v, good, "ok");

    //  Tampered signature: flip one character in the middle.
    char tok[16384];
    snprintf(tok, sizeof tok, "%s", good);
    size_t n = strlen(tok);
    tok[n - 5] = tok[n - 5] == 'A' ? 'B' : 'A';
    s_expect(v, tok, "bad_signature");
    //  Truncated signature: a wrong MAC, or unused bits set.
    snprintf(tok, sizeof tok, "%s", good);
    tok[n - 4] = '\0';
    const char *got = s_verify(v, tok, NULL);
    CHECK(strcmp(got, "bad_signature") == 0 ||
          strcmp(got, "noncanonical") == 0);
    //  Other spellings of the same bytes. (libjwt compares HS256 MACs as
    //  base64 text, so only RS256/ES256 signatures are malleable there.)
    s_test_respellings(v, good, NULL, 0);

    //  Tampered payload with the old signature.
    char other[256];
    snprintf(other, sizeof other,
             "{\"sub\":\"alice\",\"exp\":%lld,\"role\":\"admin\"}",
             (long long)s_now + 60);
    char *sig = strrchr(good, '.');
    char forged[4096];
    snprintf(forged, sizeof forged, "%s", s_hs256(other));
    *strrchr(forged, '.') = '\0';
    snprintf(tok, sizeof tok, "%s%s", forged, sig);
    s_expect(v, tok, "bad_signature");

    //  Missing parts and stray dots.
    const char *shapes[] = {"",        "abc",     "abc.def", "abc.def.ghi.jkl",
                            ".a.b",    "a..b",    "a.b.",    "...",
                            "a.b.c.",  "a b.c.d", "a.b!c.d", "a.b.c=d",
                            "a+b.c.d", "a/b.c.d"};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        s_expect(v, shapes[i], "malformed");
    //  Garbage base64 that decodes to no JSON, and a 1-char remainder.
    s_expect(v, "AAAA.AAAA.AAAA", "malformed");
    s_expect(v, "A.AAAA.AAAA", "malformed");
    //  Header that is not an object.
    s_expect(
        v, s_make("[\"HS256\"]", pl, EVP_sha256(), s_secret, strlen(s_secret)),
        "malformed");
    //  Embedded NUL: the length says more than strlen would.
    snprintf(tok, sizeof tok, "%s", good);
    tok[10] = '\0';
    CHECK_EQ(pres_jwt_verify(v, tok, n, s_now, NULL, NULL), -1);
    //  Oversize: padding a valid token, and a huge garbage string.
    static char big[PRES_JWT_TOKEN_MAX + 100];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_expect(v, big, "too_long");
    char pad[PRES_JWT_TOKEN_MAX * 2];
    snprintf(pl, sizeof pl, "{\"sub\":\"alice\",\"exp\":%lld,\"x\":\"",
             (long long)s_now + 60);
    memset(pad, 'x', 1600);
    pad[1600] = '\0';
    char bigpl[4096];
    snprintf(bigpl, sizeof bigpl, "%.200s%.1600s\"}", pl, pad);
    s_expect(v, s_hs256(bigpl), "too_long");
    //  A NULL claims pointer is allowed.
    CHECK_EQ(pres_jwt_verify(v, good, strlen(good), s_now, NULL, NULL), 0);
    //  The token need not be NUL-terminated: verify a prefix of a buffer.
    snprintf(tok, sizeof tok, "%sXYZ", good);
    CHECK_EQ(pres_jwt_verify(v, tok, strlen(good), s_now, NULL, NULL), 0);
}

//  RS256 and ES256 with a public key, and the RS/HS confusion.
static void
s_test_asym(const char *alg, EVP_PKEY *pkey, const pres_jwt_t *hs)
{
    BIO *pub = BIO_new(BIO_s_mem());
    BIO *priv = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_PUBKEY(pub, pkey) == 1);
    CHECK(PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) == 1);
    char *pub_pem, *priv_pem;
    long pub_len = BIO_get_mem_data(pub, &pub_pem);
    long priv_len = BIO_get_mem_data(priv, &priv_pem);

    pres_jwt_t *v =
        pres_jwt_new_key(alg, (unsigned char *)pub_pem, (size_t)pub_len, 30);
    CHECK(v);
    CHECK_STR(pres_jwt_alg(v), alg);

    //  A token signed by the private key passes.
    jwt_t *jwt = NULL;
    CHECK(jwt_new(&jwt) == 0);
    CHECK(jwt_add_grant(jwt, "sub", "carol") == 0);
    CHECK(jwt_add_grant_int(jwt, "exp", (long)s_now + 60) == 0);
    CHECK(jwt_set_alg(jwt, jwt_str_alg(alg), (unsigned char *)priv_pem,
                      (int)priv_len) == 0);
    char *tok = jwt_encode_str(jwt);
    CHECK(tok);
    jwt_free(jwt);
    static char twin[8192];
    if (strcmp(alg, "ES256") == 0 && tu_es256_twin(tok, twin, sizeof twin)) {
        //  OpenSSL signs high-S half of the time: use the low-S twin.
        snprintf(tok, strlen(tok) + 1, "%s", twin);
        CHECK(!tu_es256_twin(tok, twin, sizeof twin));
    }
    pres_jwt_claims_t c;
    CHECK_STR(s_verify(v, tok, &c), "ok");
    CHECK_STR(c.sub, "carol");
    s_test_respellings(v, tok, pub_pem, (size_t)pub_len);
    if (strcmp(alg, "ES256") == 0) {
        //  The high-S twin (r, n - s): libjwt accepts it, we do not.
        CHECK(!tu_es256_twin(tok, twin, sizeof twin));
        jwt_t *dec = NULL;
        CHECK_EQ(jwt_decode(&dec, twin, (unsigned char *)pub_pem, (int)pub_len),
                 0);
        jwt_free(dec);
        s_expect(v, twin, "high_s");
        //  And its re-spellings too.
        static char twin2[8192];
        CHECK(s_respell(twin, 2, twin2, sizeof twin2));
        s_expect(v, twin2, "noncanonical");
        //  A signature of another length (a zero byte in front of r, or
        //  the DER form) is not ES256.
        unsigned char sig[80];
        CHECK_EQ(tu_sig_decode(tok, sig + 1, sizeof sig - 1), 64);
        sig[0] = 0;
        size_t head = (size_t)(strrchr(tok, '.') - tok) + 1;
        memcpy(twin2, tok, head);
        tu_b64url(sig, 65, twin2 + head);
        s_expect(v, twin2, "bad_signature");
    }
    //  The same token is refused by an HS256 verifier.
    s_expect(hs, tok, "bad_alg");
    //  Tampered: flip a signature character.
    size_t n = strlen(tok);
    tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';
    s_expect(v, tok, "bad_signature");
    free(tok);

    //  RS/HS confusion: HS256 with the public PEM as the HMAC secret.
    char pl[256];
    snprintf(pl, sizeof pl,
             "{\"sub\":\"mallory\",\"exp\":%lld,"
             "\"role\":\"admin\"}",
             (long long)s_now + 60);
    s_expect(v,
             s_make("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pl, EVP_sha256(),
                    pub_pem, (size_t)pub_len),
             "bad_alg");
    //  alg=none against a public-key verifier.
    s_expect(v, s_make("{\"alg\":\"none\"}", pl, NULL, NULL, 0), "malformed");
    pres_jwt_destroy(&v);
    CHECK(v == NULL);
    BIO_free(pub);
    BIO_free(priv);
}

static void
s_test_keys(void)
{
    //  Empty and short keys are refused (key_len 0 = alg none in libjwt).
    CHECK(pres_jwt_new_key("HS256", (const unsigned char *)"", 0, 30) == NULL);
    CHECK(pres_jwt_new_key("HS256", (const unsigned char *)"short", 5, 30) ==
          NULL);
    CHECK(pres_jwt_new_key("HS512", (const unsigned char *)s_secret,
                           strlen(s_secret), 30) == NULL);
    CHECK(pres_jwt_new_key("none", (const unsigned char *)s_secret,
                           strlen(s_secret), 30) == NULL);
    CHECK(pres_jwt_new_key("RS256", (const unsigned char *)s_secret,
                           strlen(s_secret), 30) == NULL);
    pres_jwt_destroy(NULL);

    //  Secret file: created 0600 with 64 hex chars, then reloaded as is.
    char dir[] = "/tmp/pres-test-jwt-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/jwt.secret", dir);
    unsigned char *k1 = NULL, *k2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK_EQ(pres_jwt_secret_load(path, false, &k1, &l1), -1);
    CHECK_EQ(pres_jwt_secret_load(path, true, &k1, &l1), 0);
    CHECK_EQ(l1, 64);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(pres_jwt_secret_load(path, true, &k2, &l2), 0);
    CHECK_EQ(l2, l1);
    CHECK(memcmp(k1, k2, l1) == 0);
    for (size_t i = 0; i < l1; i++)
        CHECK((k1[i] >= '0' && k1[i] <= '9') || (k1[i] >= 'a' && k1[i] <= 'f'));

    //  Mint with it, verify with it; admin role round trip; bad input.
    pres_jwt_t *v = pres_jwt_new_key("HS256", k1, l1, 5);
    CHECK(v);
    char *tok = pres_jwt_mint(v, "dave", true, 60, s_now);
    CHECK(tok);
    pres_jwt_claims_t c;
    CHECK_STR(s_verify(v, tok, &c), "ok");
    CHECK_STR(c.sub, "dave");
    CHECK(c.admin);
    CHECK_EQ(c.exp, s_now + 60);
    CHECK_EQ(c.iat, s_now);
    //  Expired later: leeway 5 s, ttl 60 s.
    CHECK_EQ(pres_jwt_verify(v, tok, strlen(tok), s_now + 66, NULL, NULL), -1);
    free(tok);
    tok = pres_jwt_mint(v, "erin", false, 60, s_now);
    CHECK(tok);
    CHECK_STR(s_verify(v, tok, &c), "ok");
    CHECK(!c.admin);
    free(tok);
    CHECK(pres_jwt_mint(v, "bad user", false, 60, s_now) == NULL);
    CHECK(pres_jwt_mint(v, "", false, 60, s_now) == NULL);
    CHECK(pres_jwt_mint(v, "ok", false, 0, s_now) == NULL);
    pres_jwt_destroy(&v);

    //  A file that is too short is refused.
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs("tooshort\n", f);
    fclose(f);
    CHECK_EQ(pres_jwt_secret_load(path, true, &k2, &l2), -1);
    free(k1);
    free(k2);
    unlink(path);
    rmdir(dir);
}

static void
s_test_iss_aud(void)
{
    pres_jwt_t *v = pres_jwt_new_key("HS256", (const unsigned char *)s_secret,
                                     strlen(s_secret), 30);
    CHECK(v);
    //  Unchecked by default: any iss/aud passes.
    char pl[512];
    long long exp = (long long)s_now + 60;
    snprintf(pl, sizeof pl,
             "{\"sub\":\"a\",\"exp\":%lld,\"iss\":\"x\",\"aud\":7}", exp);
    s_expect(v, s_hs256(pl), "ok");
    //  Bad values are refused and change nothing.
    CHECK_EQ(pres_jwt_set_iss_aud(v, "a\"b", ""), -1);
    CHECK_EQ(pres_jwt_set_iss_aud(v, "", "a\\b"), -1);
    CHECK_EQ(pres_jwt_set_iss_aud(v, "tab\there", ""), -1);
    s_expect(v, s_hs256(pl), "ok");
    CHECK_EQ(pres_jwt_set_iss_aud(v, "https://id.example", "presence"), 0);
    struct {
        const char *claims;  //  after sub and exp
        const char *want;
    } cases[] = {
        {"", "bad_iss"},
        {",\"aud\":\"presence\"", "bad_iss"},
        {",\"iss\":\"https://id.example/\",\"aud\":\"presence\"", "bad_iss"},
        {",\"iss\":[\"https://id.example\"],\"aud\":\"presence\"", "bad_iss"},
        {",\"iss\":\"https://id.example\"", "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":\"presence\"", "ok"},
        {",\"iss\":\"https://id.example\",\"aud\":[\"x\",\"presence\"]", "ok"},
        {",\"iss\":\"https://id.example\",\"aud\":[\"presence\"]", "ok"},
        {",\"iss\":\"https://id.example\",\"aud\":\"Presence\"", "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":\"presence2\"", "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":[\"x\",\"y\"]", "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":[]", "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":[1,\"presence\"]", "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":null", "bad_aud"},
        {",\"iss\":\"https://id.example\",\"aud\":{\"presence\":1}", "bad_aud"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(pl, sizeof pl, "{\"sub\":\"a\",\"exp\":%lld%s}", exp,
                 cases[i].claims);
        s_expect(v, s_hs256(pl), cases[i].want);
    }
    //  Minted tokens carry both.
    char *tok = pres_jwt_mint(v, "minted", false, 60, s_now);
    CHECK(tok);
    s_expect(v, tok, "ok");
    pres_jwt_t *plain = pres_jwt_new_key(
        "HS256", (const unsigned char *)s_secret, strlen(s_secret), 30);
    CHECK(plain);
    s_expect(plain, tok, "ok");
    char *plain_tok = pres_jwt_mint(plain, "minted", false, 60, s_now);
    CHECK(plain_tok);
    s_expect(v, plain_tok, "bad_iss");
    CHECK_EQ(pres_jwt_set_iss_aud(plain, "", "presence"), 0);
    s_expect(plain, tok, "ok");
    free(plain_tok);
    plain_tok = pres_jwt_mint(plain, "minted", false, 60, s_now);
    s_expect(v, plain_tok, "bad_iss");
    free(plain_tok);
    free(tok);
    pres_jwt_destroy(&plain);
    pres_jwt_destroy(&v);
}

int
main(void)
{
    s_now = (int64_t)time(NULL);
    pres_jwt_t *v = pres_jwt_new_key("HS256", (const unsigned char *)s_secret,
                                     strlen(s_secret), 30);
    CHECK(v);
    CHECK_STR(pres_jwt_alg(v), "HS256");
    s_test_good(v);
    s_test_alg(v);
    s_test_claims(v);
    s_test_shapes(v);

    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    CHECK(rsa);
    s_test_asym("RS256", rsa, v);
    EVP_PKEY_free(rsa);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    CHECK(ec);
    s_test_asym("ES256", ec, v);
    EVP_PKEY_free(ec);

    s_test_keys();
    s_test_iss_aud();
    pres_jwt_destroy(&v);
    printf("test_jwt: ok\n");
    return 0;
}
