/*  test_gateway_auth: the revocation store of gateway_auth without a
    network: one id per signed token whatever its spelling, expiries up to
    INT64_MAX kept (no overflow), ids written by older gateways honoured,
    the on_revoke hook, a revocation that cannot be made durable (file
    size limit, a real EFBIG) undone and reported, and the verified-token
    cache: thousands of distinct tokens all hit on a second pass, shared
    by threads, a byte changed is never a hit, and revocation and expiry
    are honoured for cached tokens. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway_auth.h"
#include "testutil.h"

static const char s_secret[] = "0123456789abcdef0123456789abcdef01234567";
static char s_dir[] = "/tmp/pres-test-gwrevoke-XXXXXX";
static char s_path[256];

static gw_auth_t *
s_auth(void)
{
    pres_jwt_t *jwt = pres_jwt_new_key("HS256", (const unsigned char *)s_secret,
                                       strlen(s_secret), 30);
    CHECK(jwt);
    gw_auth_t *auth = gw_auth_new_with(&jwt, s_path, 30);
    CHECK(auth);
    return auth;
}

static off_t
s_file_size(void)
{
    struct stat st;
    CHECK(stat(s_path, &st) == 0);
    return st.st_size;
}

static gw_reject_t
s_check(gw_auth_t *auth, gw_auth_cache_t *cache, const char *tok, int64_t now)
{
    char header[4096];
    snprintf(header, sizeof header, "Bearer %s", tok);
    pres_jwt_claims_t c;
    const char *t = NULL, *why = NULL;
    size_t tl = 0;
    gw_reject_t rej = GW_REJ_COUNT;
    if (gw_auth_check(auth, cache, header, now, &c, &t, &tl, &rej, &why) == 0)
        return GW_REJ_COUNT;  //  accepted
    return rej;
}

static void
s_test_spellings(void)
{
    gw_token_id_t a, b, c;
    gw_auth_token_id("aGVhZA.cGF5bG9hZA.c2lnAA", 24, &a);
    gw_auth_token_id("aGVhZA.cGF5bG9hZA.c2lnAB", 24, &b);
    gw_auth_token_id("aGVhZA.cGF5bG9hZB.c2lnAA", 24, &c);
    CHECK(memcmp(&a, &b, sizeof a) == 0);  //  signature differs only
    CHECK(memcmp(&a, &c, sizeof a) != 0);  //  payload differs

    gw_auth_t *auth = s_auth();
    CHECK_EQ(gw_auth_revoke(auth, "aGVhZA.cGF5bG9hZA.c2lnAA", 24,
                            (int64_t)time(NULL) + 60),
             0);
    CHECK(gw_auth_is_revoked(auth, "aGVhZA.cGF5bG9hZA.c2lnAB", 24));
    CHECK(gw_auth_is_revoked_id(auth, &b));
    CHECK(!gw_auth_is_revoked_id(auth, &c));
    gw_auth_destroy(&auth);
    unlink(s_path);
}

static void
s_test_huge_exp(void)
{
    int64_t now = (int64_t)time(NULL);
    gw_auth_t *auth = s_auth();
    CHECK_EQ(gw_auth_revoke(auth, "h.p.max", 7, INT64_MAX), 0);
    CHECK_EQ(gw_auth_revoke(auth, "h.p.max1", 8, INT64_MAX - 1), 0);
    CHECK_EQ(gw_auth_revoke(auth, "h.q.s", 5, INT64_MAX - 29), 0);
    gw_auth_maintain(auth, now);
    CHECK(gw_auth_is_revoked(auth, "h.p.max", 7));
    CHECK(gw_auth_is_revoked(auth, "h.q.s", 5));
    CHECK_EQ(gw_auth_revoked_count(auth), 2);
    gw_auth_destroy(&auth);
    //  And after a reload (the file holds the full value).
    auth = s_auth();
    CHECK_EQ(gw_auth_revoked_count(auth), 2);
    CHECK(gw_auth_is_revoked(auth, "h.p.max", 7));
    gw_auth_maintain(auth, now + 1000000);
    CHECK(gw_auth_is_revoked(auth, "h.q.s", 5));
    gw_auth_destroy(&auth);
    unlink(s_path);
}

//  A file written by a gateway that keyed revocations on the whole token.
static void
s_test_legacy(void)
{
    int64_t now = (int64_t)time(NULL);
    pres_jwt_t *jwt = pres_jwt_new_key("HS256", (const unsigned char *)s_secret,
                                       strlen(s_secret), 30);
    char *tok = pres_jwt_mint(jwt, "olduser", false, 600, now);
    char *other = pres_jwt_mint(jwt, "olduser", false, 600, now);
    CHECK(tok && other);
    pres_jwt_destroy(&jwt);
    //  Old ids: SHA-256 of the whole token, first 16 bytes, low bit set.
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "printf '%%s' '%s' | sha256sum | cut -c1-32 > %s.hex", tok,
             s_path);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s.hex", s_path);
    FILE *h = fopen(cmd, "r");
    CHECK(h);
    char hex[40] = "";
    CHECK(fgets(hex, sizeof hex, h));
    fclose(h);
    unlink(cmd);
    hex[32] = '\0';
    static const char digits[] = "0123456789abcdef";
    int v = (int)(strchr(digits, hex[1]) - digits) | 1;
    hex[1] = digits[v];
    FILE *f = fopen(s_path, "w");
    CHECK(f);
    fprintf(f, "%s %lld\n", hex, (long long)now + 600);
    fclose(f);

    gw_auth_t *auth = s_auth();
    gw_auth_cache_t *cache = gw_auth_cache_new();
    CHECK(gw_auth_is_revoked(auth, tok, strlen(tok)));
    CHECK_EQ(s_check(auth, cache, tok, now), GW_REJ_REVOKED);
    CHECK_EQ(s_check(auth, cache, tok, now), GW_REJ_REVOKED);  //  cached
    CHECK_EQ(s_check(auth, cache, other, now), GW_REJ_COUNT);
    //  A rewrite keeps the legacy line as it was.
    CHECK_EQ(gw_auth_revoke(auth, other, strlen(other), now + 600), 0);
    gw_auth_destroy(&auth);
    auth = s_auth();
    CHECK_EQ(s_check(auth, cache, tok, now), GW_REJ_REVOKED);
    CHECK_EQ(s_check(auth, cache, other, now), GW_REJ_REVOKED);
    gw_auth_cache_destroy(&cache);
    gw_auth_destroy(&auth);
    free(tok);
    free(other);
    unlink(s_path);
}

static int s_hook_calls;
static gw_token_id_t s_hook_id;

static void
s_hook(void *arg, const gw_token_id_t *id)
{
    CHECK(arg == &s_hook_calls);
    s_hook_calls++;
    s_hook_id = *id;
}

//  A real write failure: RLIMIT_FSIZE makes the append fail with EFBIG
//  (SIGXFSZ ignored), as a full disk or quota would.
static void
s_test_not_durable(void)
{
    int64_t now = (int64_t)time(NULL);
    gw_auth_t *auth = s_auth();
    gw_auth_cache_t *cache = gw_auth_cache_new();
    gw_auth_on_revoke(auth, s_hook, &s_hook_calls);
    pres_jwt_t *jwt = pres_jwt_new_key("HS256", (const unsigned char *)s_secret,
                                       strlen(s_secret), 30);
    char *t1 = pres_jwt_mint(jwt, "u1", false, 600, now);
    char *t2 = pres_jwt_mint(jwt, "u2", false, 600, now);
    CHECK(t1 && t2);
    CHECK_EQ(gw_auth_revoke(auth, t1, strlen(t1), now + 600), 0);
    CHECK_EQ(s_hook_calls, 1);
    gw_token_id_t id1;
    gw_auth_token_id(t1, strlen(t1), &id1);
    CHECK(memcmp(&s_hook_id, &id1, sizeof id1) == 0);
    CHECK_EQ(s_check(auth, cache, t2, now), GW_REJ_COUNT);

    off_t size = s_file_size();
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 10;  //  room for a torn line only
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = gw_auth_revoke(auth, t2, strlen(t2), now + 600);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK_EQ(rc, -1);
    CHECK_EQ(s_hook_calls, 1);  //  nothing ended
    CHECK(!gw_auth_is_revoked(auth, t2, strlen(t2)));
    CHECK_EQ(s_check(auth, cache, t2, now), GW_REJ_COUNT);
    CHECK_EQ(s_file_size(), size);  //  the torn line was cut off
    CHECK_EQ(gw_auth_revoked_count(auth), 1);
    //  An already durable revocation stays when its repeat fails.
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    rc = gw_auth_revoke(auth, t1, strlen(t1), now + 600);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK_EQ(rc, -1);
    CHECK(gw_auth_is_revoked(auth, t1, strlen(t1)));
    //  With room again, the retry succeeds and survives a reload.
    CHECK_EQ(gw_auth_revoke(auth, t2, strlen(t2), now + 600), 0);
    CHECK_EQ(s_hook_calls, 2);
    CHECK_EQ(s_check(auth, cache, t2, now), GW_REJ_REVOKED);
    gw_auth_on_revoke(auth, NULL, NULL);
    gw_auth_destroy(&auth);
    auth = s_auth();
    CHECK(gw_auth_is_revoked(auth, t1, strlen(t1)));
    CHECK(gw_auth_is_revoked(auth, t2, strlen(t2)));
    CHECK_EQ(gw_auth_revoked_count(auth), 2);
    gw_auth_destroy(&auth);
    gw_auth_cache_destroy(&cache);
    pres_jwt_destroy(&jwt);
    free(t1);
    free(t2);
    unlink(s_path);
}

#define S_MANY 5000  //  distinct tokens (the cache holds 32,768)

typedef struct {
    gw_auth_t *auth;
    gw_auth_cache_t *cache;
    char **tok;
    int64_t now;
    int start, accepted;
} s_worker_arg_t;

static void *
s_worker(void *arg)
{
    s_worker_arg_t *a = arg;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < S_MANY; i++) {
            int k = (a->start + i) % S_MANY;
            a->accepted +=
                s_check(a->auth, a->cache, a->tok[k], a->now) == GW_REJ_COUNT;
        }
    return NULL;
}

static void
s_test_cache(void)
{
    int64_t now = (int64_t)time(NULL);
    gw_auth_t *auth = s_auth();
    gw_auth_cache_t *cache = gw_auth_cache_new();
    CHECK(cache);
    pres_jwt_t *jwt = pres_jwt_new_key("HS256", (const unsigned char *)s_secret,
                                       strlen(s_secret), 30);
    char **tok = calloc(S_MANY, sizeof *tok);
    CHECK(tok);
    for (int i = 0; i < S_MANY; i++) {
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        tok[i] = pres_jwt_mint(jwt, user, i == 7, 600, now);
        CHECK(tok[i]);
    }
    //  First pass misses, second pass hits every token, claims intact.
    for (int i = 0; i < S_MANY; i++)
        CHECK_EQ(s_check(auth, cache, tok[i], now), GW_REJ_COUNT);
    uint64_t hits, misses;
    gw_auth_cache_stats(cache, &hits, &misses);
    CHECK_EQ(hits, 0);
    CHECK_EQ(misses, S_MANY);
    for (int i = 0; i < S_MANY; i++) {
        char header[1024];
        snprintf(header, sizeof header, "Bearer %s", tok[i]);
        pres_jwt_claims_t c;
        const char *t = NULL, *why = NULL;
        size_t tl = 0;
        gw_reject_t rej;
        CHECK_EQ(
            gw_auth_check(auth, cache, header, now, &c, &t, &tl, &rej, &why),
            0);
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        CHECK(strcmp(c.sub, user) == 0);
        CHECK_EQ(c.admin, i == 7);
        CHECK_EQ(c.exp, now + 600);
    }
    gw_auth_cache_stats(cache, &hits, &misses);
    CHECK_EQ(hits, S_MANY);
    CHECK_EQ(misses, S_MANY);

    //  Two threads on one cache (ASan/TSan runs see the locking).
    s_worker_arg_t a[2] = {{auth, cache, tok, now, 0, 0},
                           {auth, cache, tok, now, S_MANY / 2, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, s_worker, &a[i]) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    CHECK_EQ(a[0].accepted, 3 * S_MANY);
    CHECK_EQ(a[1].accepted, 3 * S_MANY);
    gw_auth_cache_stats(cache, &hits, &misses);
    CHECK_EQ(misses, S_MANY);  //  nothing evicted

    //  A cached token with one byte of its signature changed is no hit.
    char *bad = strdup(tok[3]);
    CHECK(bad);
    size_t n = strlen(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    CHECK_EQ(s_check(auth, cache, bad, now), GW_REJ_BAD_TOKEN);
    CHECK_EQ(s_check(auth, cache, bad, now), GW_REJ_BAD_TOKEN);
    free(bad);
    //  A prefix of a cached token is no hit either.
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "%.*s", (int)n - 1, tok[3]);
    CHECK(s_check(auth, cache, prefix, now) != GW_REJ_COUNT);

    //  Revoked after it was cached: refused from the next request on.
    CHECK_EQ(s_check(auth, cache, tok[5], now), GW_REJ_COUNT);
    CHECK_EQ(gw_auth_revoke(auth, tok[5], strlen(tok[5]), now + 600), 0);
    CHECK_EQ(s_check(auth, cache, tok[5], now), GW_REJ_REVOKED);
    CHECK_EQ(s_check(auth, cache, tok[5], now), GW_REJ_REVOKED);
    CHECK_EQ(s_check(auth, cache, tok[6], now), GW_REJ_COUNT);

    //  Expired while cached: refused at exp + leeway (30 s), as uncached.
    CHECK_EQ(s_check(auth, cache, tok[8], now + 600 + 29), GW_REJ_COUNT);
    CHECK_EQ(s_check(auth, cache, tok[8], now + 600 + 30), GW_REJ_EXPIRED);
    CHECK_EQ(s_check(auth, NULL, tok[9], now + 600 + 30), GW_REJ_EXPIRED);
    CHECK_EQ(s_check(auth, cache, tok[8], now + 600 + 30), GW_REJ_EXPIRED);

    //  More tokens than entries: the full sets evict (least recently
    //  used first) and every token is still accepted, hit or not.
    gw_auth_cache_destroy(&cache);
    cache = gw_auth_cache_new();
    CHECK(cache);
    int more = 34000;  //  > 32,768: some set must evict
    for (int i = 0; i < more; i++) {
        char user[32];
        snprintf(user, sizeof user, "v%d", i);
        char *t = pres_jwt_mint(jwt, user, false, 600, now);
        CHECK(t);
        CHECK_EQ(s_check(auth, cache, t, now), GW_REJ_COUNT);
        CHECK_EQ(s_check(auth, cache, t, now), GW_REJ_COUNT);
        free(t);
    }
    gw_auth_cache_stats(cache, &hits, &misses);
    CHECK_EQ(misses, (uint64_t)more);
    CHECK_EQ(hits, (uint64_t)more);  //  just used: never the one evicted
    for (int i = 0; i < S_MANY; i++)
        free(tok[i]);
    free(tok);
    pres_jwt_destroy(&jwt);
    gw_auth_cache_destroy(&cache);
    gw_auth_destroy(&auth);
    unlink(s_path);
}

int
main(void)
{
    CHECK(mkdtemp(s_dir));
    snprintf(s_path, sizeof s_path, "%s/gateway.revoked", s_dir);
    s_test_spellings();
    s_test_huge_exp();
    s_test_legacy();
    s_test_not_durable();
    s_test_cache();
    unlink(s_path);
    rmdir(s_dir);
    printf("test_gateway_auth: ok\n");
    return 0;
}
