/*  jwtutil: hand-made JWTs for the token tests (unit.jwt, ithttp,
    it.gateway_rights): base64url without padding, its reverse for one
    character, and header.payload.signature with an HMAC signature.
    Header only; failures abort via CHECK. */
#ifndef JWTUTIL_H_INCLUDED
#define JWTUTIL_H_INCLUDED

#include <openssl/evp.h>
#include <openssl/hmac.h>
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

#endif
