/*  test_gateway_core: the gateway's in-process pieces without a network:
    the non-active account cache, bearer parsing with the token cache, and
    the revocation list (persisted, reloaded, expired entries dropped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway_accounts.h"
#include "gateway_auth.h"
#include "testutil.h"

static const char s_secret[] = "0123456789abcdef0123456789abcdef01234567";

static void
s_test_accounts(void)
{
    gw_accounts_t *a = gw_accounts_new();
    CHECK(a);
    CHECK_EQ(gw_accounts_get(a, "u1"), PRES_ACC_ACTIVE);
    char user[32];
    //  Enough users to force growth, then remove every other one.
    for (int i = 0; i < 5000; i++) {
        snprintf(user, sizeof user, "u%d", i);
        CHECK_EQ(gw_accounts_set(a, user, PRES_ACC_BANNED), 0);
    }
    CHECK_EQ(gw_accounts_size(a), 5000);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(user, sizeof user, "u%d", i);
        CHECK_EQ(gw_accounts_set(a, user, PRES_ACC_ACTIVE), 0);
    }
    CHECK_EQ(gw_accounts_size(a), 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(user, sizeof user, "u%d", i);
        CHECK_EQ(gw_accounts_get(a, user),
                 i % 2 ? PRES_ACC_BANNED : PRES_ACC_ACTIVE);
    }
    CHECK_EQ(gw_accounts_set(a, "u1", PRES_ACC_PENDING), 0);
    CHECK_EQ(gw_accounts_get(a, "u1"), PRES_ACC_PENDING);
    CHECK_EQ(gw_accounts_size(a), 2500);
    gw_accounts_destroy(&a);
    CHECK(a == NULL);
}

static gw_auth_t *
s_auth(const char *path)
{
    pres_jwt_t *jwt = pres_jwt_new_key("HS256", (const unsigned char *)s_secret,
                                       strlen(s_secret), 30);
    CHECK(jwt);
    gw_auth_t *auth = gw_auth_new_with(&jwt, path, 30);
    CHECK(jwt == NULL);
    return auth;
}

static void
s_test_auth(void)
{
    char dir[] = "/tmp/pres-test-gwauth-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/gateway.revoked", dir);
    gw_auth_t *auth = s_auth(path);
    CHECK(auth);
    gw_auth_cache_t *cache = gw_auth_cache_new();
    CHECK(cache);
    int64_t now = (int64_t)time(NULL);
    char *t1 = pres_jwt_mint(gw_auth_jwt(auth), "alice", false, 600, now);
    char *t2 = pres_jwt_mint(gw_auth_jwt(auth), "root", true, 600, now);
    CHECK(t1 && t2);
    char header[2048];
    pres_jwt_claims_t c;
    const char *tok, *why;
    size_t tok_len;
    gw_reject_t rej;

    //  Bearer parsing: scheme case-insensitive, spaces tolerated.
    snprintf(header, sizeof header, "bearer   %s  ", t1);
    for (int round = 0; round < 2; round++) {  //  miss, then cache hit
        CHECK_EQ(gw_auth_check(auth, cache, header, now, &c, &tok, &tok_len,
                               &rej, &why),
                 0);
        CHECK_STR(c.sub, "alice");
        CHECK(!c.admin);
        CHECK_EQ(tok_len, strlen(t1));
    }
    CHECK_EQ(
        gw_auth_check(auth, cache, NULL, now, &c, &tok, &tok_len, &rej, &why),
        -1);
    CHECK_EQ(rej, GW_REJ_NO_TOKEN);
    CHECK_EQ(gw_auth_check(auth, cache, "Basic abc", now, &c, &tok, &tok_len,
                           &rej, &why),
             -1);
    CHECK_EQ(rej, GW_REJ_NO_TOKEN);
    CHECK_EQ(gw_auth_check(auth, cache, "Bearer x.y.z", now, &c, &tok, &tok_len,
                           &rej, &why),
             -1);
    CHECK_EQ(rej, GW_REJ_BAD_TOKEN);
    //  A cached token still expires.
    CHECK_EQ(gw_auth_check(auth, cache, header, now + 700, &c, &tok, &tok_len,
                           &rej, &why),
             -1);
    CHECK_EQ(rej, GW_REJ_EXPIRED);

    //  Revoke t1 (cached): refused at once, t2 unaffected.
    snprintf(header, sizeof header, "Bearer %s", t1);
    CHECK_EQ(
        gw_auth_check(auth, cache, header, now, &c, &tok, &tok_len, &rej, &why),
        0);
    CHECK_EQ(gw_auth_revoke(auth, t1, strlen(t1), now + 600), 0);
    CHECK_EQ(
        gw_auth_check(auth, cache, header, now, &c, &tok, &tok_len, &rej, &why),
        -1);
    CHECK_EQ(rej, GW_REJ_REVOKED);
    snprintf(header, sizeof header, "Bearer %s", t2);
    CHECK_EQ(
        gw_auth_check(auth, cache, header, now, &c, &tok, &tok_len, &rej, &why),
        0);
    CHECK(c.admin);
    //  An already expired revocation, to be dropped on reload.
    CHECK_EQ(gw_auth_revoke(auth, "old.token.x", 11, now - 3600), 0);
    CHECK_EQ(gw_auth_revoked_count(auth), 2);
    gw_auth_destroy(&auth);

    //  Reload: t1 still revoked, the expired entry gone, file compacted.
    auth = s_auth(path);
    CHECK(auth);
    CHECK_EQ(gw_auth_revoked_count(auth), 1);
    CHECK(gw_auth_is_revoked(auth, t1, strlen(t1)));
    CHECK(!gw_auth_is_revoked(auth, t2, strlen(t2)));
    FILE *f = fopen(path, "r");
    CHECK(f);
    int lines = 0;
    char line[128];
    while (fgets(line, sizeof line, f))
        lines++;
    fclose(f);
    CHECK_EQ(lines, 1);
    //  Maintenance later than exp + leeway drops it too.
    gw_auth_maintain(auth, now + 700);
    CHECK_EQ(gw_auth_revoked_count(auth), 0);
    gw_auth_destroy(&auth);

    //  Garbage lines in the file are skipped, not fatal: the valid entries
    //  around them still load (t1's too: the maintenance above ran at a
    //  future time in memory only), and the rewrite drops them.
    auth = s_auth(path);
    CHECK(auth);
    CHECK_EQ(gw_auth_revoke(auth, t2, strlen(t2), now + 600), 0);
    gw_auth_destroy(&auth);
    f = fopen(path, "a");
    CHECK(f);
    fputs("not a line\nzz 12\n", f);
    fclose(f);
    auth = s_auth(path);
    CHECK(auth);
    CHECK_EQ(gw_auth_revoked_count(auth), 2);
    CHECK(gw_auth_is_revoked(auth, t2, strlen(t2)));
    CHECK(gw_auth_is_revoked(auth, t1, strlen(t1)));
    CHECK(!gw_auth_is_revoked(auth, "zz", 2));
    gw_auth_destroy(&auth);
    f = fopen(path, "r");
    CHECK(f);
    lines = 0;
    while (fgets(line, sizeof line, f)) {
        CHECK(strncmp(line, "not a line", 10) != 0);
        CHECK(strncmp(line, "zz ", 3) != 0);
        lines++;
    }
    fclose(f);
    CHECK_EQ(lines, 2);

    gw_auth_cache_destroy(&cache);
    free(t1);
    free(t2);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    s_test_accounts();
    s_test_auth();
    printf("test_gateway_core: ok\n");
    return 0;
}
