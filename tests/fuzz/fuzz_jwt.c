/*  fuzz_jwt: the bearer-token verifier on arbitrary bytes. It must refuse
    or accept without a crash or an out-of-bounds read, and anything it
    accepts must carry a valid user id and an expiry (corpus/jwt holds a
    valid token for the key below, so mutations reach every check). */
#include "pres_jwt.h"
#include "pres_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_KEY "fuzz-secret-0123456789abcdef0123"
#define S_NOW 1800000000  //  the corpus token expires in 2030

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pres_jwt_t *jwt;
    if (!jwt) {
        jwt = pres_jwt_new_key("HS256", (const unsigned char *)S_KEY,
                               strlen(S_KEY), 30);
        if (!jwt)
            abort();
    }
    pres_jwt_claims_t claims;
    const char *why = NULL;
    if (pres_jwt_verify(jwt, (const char *)data, size, S_NOW, &claims, &why) ==
        0) {
        if (!pres_id_valid(claims.sub, strlen(claims.sub)) ||
            claims.exp + 30 <= S_NOW)
            abort();
    } else if (!why)
        abort();
    return 0;
}
