/*  jwtutil: hand-made JWTs for the token tests (unit.jwt, ithttp,
    it.gateway_rights): base64url without padding, its reverse for one
    character, header.payload.signature with an HMAC signature, and the
    ES256 twin of a token.
    Header only; failures abort via CHECK. */
#ifndef JWTUTIL_H_INCLUDED
#define JWTUTIL_H_INCLUDED

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#define TU_B64URL                                                              \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

//  base64url of in[0..len) without padding into out (4 * len / 3 + 2
//  bytes or more), NUL-terminated.
static inline void
tu_b64url(const unsigned char *in, size_t len, char *out)
{
    static const char t[] = TU_B64URL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    if (len - i >= 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (len - i == 2)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        if (len - i == 2)
            out[o++] = t[(v >> 6) & 63];
    }
    out[o] = '\0';
}

//  The 6-bit value of base64url character c, or -1.
static inline int
tu_b64val(char c)
{
    static const char t[] = TU_B64URL;
    const char *p = strchr(t, c);
    return p && c ? (int)(p - t) : -1;
}

//  base64url(header) "." base64url(payload) "." signature into out (cap
//  bytes), the signature an HMAC with md over the first two parts (md
//  NULL: empty). Returns out.
static inline char *
tu_jwt_make(const char *header, const char *payload, const EVP_MD *md,
            const void *key, size_t key_len, char *out, size_t cap)
{
    size_t hl = strlen(header), pl = strlen(payload);
    CHECK((hl + 2) / 3 * 4 + (pl + 2) / 3 * 4 + 2 + 88 < cap);
    tu_b64url((const unsigned char *)header, hl, out);
    size_t n = strlen(out);
    out[n++] = '.';
    tu_b64url((const unsigned char *)payload, pl, out + n);
    n = strlen(out);
    char s[128] = "";
    if (md) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        CHECK(HMAC(md, key, (int)key_len, (const unsigned char *)out, n, mac,
                   &mac_len));
        tu_b64url(mac, mac_len, s);
    }
    snprintf(out + n, cap - n, ".%s", s);
    return out;
}

//  Decodes the signature part of tok into sig (cap bytes); its length.
static inline size_t
tu_sig_decode(const char *tok, unsigned char *sig, size_t cap)
{
    const char *p = strrchr(tok, '.') + 1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *p; p++) {
        acc = acc << 6 | (uint32_t)tu_b64val(*p);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            CHECK(n < cap);
            sig[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

//  The ES256 twin of tok, (r, n - s), into out (cap bytes). True if tok's
//  own signature was high-S (s > n/2).
static inline bool
tu_es256_twin(const char *tok, char *out, size_t cap)
{
    unsigned char sig[64];
    CHECK_EQ(tu_sig_decode(tok, sig, sizeof sig), 64);
    BIGNUM *n = NULL, *half = BN_new(), *sv = BN_bin2bn(sig + 32, 32, NULL);
    CHECK(BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFF"
                        "BCE6FAADA7179E84F3B9CAC2FC632551"));
    CHECK(half && sv && BN_rshift1(half, n));
    bool high = BN_cmp(sv, half) > 0;
    CHECK(BN_sub(sv, n, sv));
    CHECK(BN_bn2binpad(sv, sig + 32, 32) == 32);
    BN_free(n);
    BN_free(half);
    BN_free(sv);
    size_t head = (size_t)(strrchr(tok, '.') - tok) + 1;
    CHECK(head + 90 < cap);
    memcpy(out, tok, head);
    tu_b64url(sig, 64, out + head);
    return high;
}

#endif
