/*  gateway_auth: bearer parsing, a per-thread verified-token cache, and a
    revocation set (128-bit SHA-256 prefix of the token -> exp) persisted
    as an append-only file of "<hex id> <exp>" lines, compacted when most
    of its lines have expired. */
#include "gateway_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "pres_log.h"

#define S_ID_BYTES    16     //  revocation id: SHA-256 prefix
#define S_CACHE_SLOTS 32768  //  verified tokens per thread (~4 MiB)

typedef struct {
    unsigned char id[S_ID_BYTES];  //  all zero = empty
    int64_t exp;                   //  seconds; entry dies after exp+leeway
} s_revoked_t;

struct gw_auth {
    pres_jwt_t *jwt;                //  verifier, read-only
    int leeway;                     //  seconds
    char path[PRES_PATH_MAX + 32];  //  revocation file
    int fd;                         //  append fd, -1 when unusable
    pthread_rwlock_t lock;          //  guards the set below
    s_revoked_t *set;               //  open addressing
    size_t cap, size;               //  power of two; live entries
    size_t file_lines;              //  lines in the file
    atomic_size_t count;            //  == size, read without the lock
};

//  A verified token, keyed by the same SHA-256 prefix as revocations: a
//  crafted token cannot collide with a cached one (FNV could), and the
//  hash is computed once per request for both look-ups.
typedef struct {
    unsigned char id[S_ID_BYTES];  //  all zero = empty
    pres_jwt_claims_t claims;
} s_cached_t;

struct gw_auth_cache {
    s_cached_t slot[S_CACHE_SLOTS];
};

static void
s_token_id(const char *token, size_t len, unsigned char *id)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, md);
    memcpy(id, md, S_ID_BYTES);
    //  All-zero marks an empty slot; a real id is never all zero in
    //  practice, but make it impossible.
    id[0] |= 1;
}

static size_t
s_slot_of(const unsigned char *id, size_t cap)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return (size_t)h & (cap - 1);
}

static bool
s_empty(const s_revoked_t *e)
{
    return e->id[0] == 0;
}

static size_t
s_find(const s_revoked_t *set, size_t cap, const unsigned char *id)
{
    size_t i = s_slot_of(id, cap);
    while (!s_empty(&set[i]) && memcmp(set[i].id, id, S_ID_BYTES) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

//  Insert (caller holds the write lock). 0 or -1.
static int
s_insert(gw_auth_t *self, const unsigned char *id, int64_t exp)
{
    if ((self->size + 1) * 2 > self->cap) {
        size_t cap = self->cap * 2;
        s_revoked_t *set = calloc(cap, sizeof *set);
        if (!set)
            return -1;
        for (size_t i = 0; i < self->cap; i++)
            if (!s_empty(&self->set[i]))
                set[s_find(set, cap, self->set[i].id)] = self->set[i];
        free(self->set);
        self->set = set;
        self->cap = cap;
    }
    size_t i = s_find(self->set, self->cap, id);
    if (s_empty(&self->set[i])) {
        memcpy(self->set[i].id, id, S_ID_BYTES);
        self->size++;
    }
    if (exp > self->set[i].exp)
        self->set[i].exp = exp;
    atomic_store(&self->count, self->size);
    return 0;
}

//  Rebuild the set without entries dead at now_s (write lock held).
static void
s_purge(gw_auth_t *self, int64_t now_s)
{
    s_revoked_t *set = calloc(self->cap, sizeof *set);
    if (!set)
        return;
    size_t size = 0;
    for (size_t i = 0; i < self->cap; i++) {
        s_revoked_t *e = &self->set[i];
        if (s_empty(e) || e->exp + self->leeway < now_s)
            continue;
        set[s_find(set, self->cap, e->id)] = *e;
        size++;
    }
    free(self->set);
    self->set = set;
    self->size = size;
    atomic_store(&self->count, size);
}

static void
s_hex(const unsigned char *in, size_t len, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int
s_unhex(const char *in, unsigned char *out, size_t len)
{
    for (size_t i = 0; i < 2 * len; i++) {
        char c = in[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return 0;
}

//  Write the live set to path.tmp, fsync, rename over path, reopen the
//  append fd (write lock held). 0 or -1.
static int
s_rewrite(gw_auth_t *self)
{
    char tmp[sizeof self->path + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", self->path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        pres_log_error("fopen(%s) failed: %s", tmp, strerror(errno));
        return -1;
    }
    size_t lines = 0;
    for (size_t i = 0; i < self->cap; i++) {
        if (s_empty(&self->set[i]))
            continue;
        char hex[2 * S_ID_BYTES + 1];
        s_hex(self->set[i].id, S_ID_BYTES, hex);
        fprintf(f, "%s %lld\n", hex, (long long)self->set[i].exp);
        lines++;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        pres_log_error("write(%s) failed: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    fclose(f);
    if (rename(tmp, self->path) != 0) {
        pres_log_error("rename(%s) failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (self->fd >= 0)
        close(self->fd);
    self->fd = open(self->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (self->fd < 0)
        pres_log_error("open(%s) failed: %s", self->path, strerror(errno));
    self->file_lines = lines;
    return 0;
}

//  Read the file; expired and malformed lines are skipped. 0 or -1.
static int
s_load(gw_auth_t *self, int64_t now_s)
{
    FILE *f = fopen(self->path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        pres_log_error("fopen(%s) failed: %s", self->path, strerror(errno));
        return -1;
    }
    char line[128];
    size_t lines = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        unsigned char id[S_ID_BYTES];
        char *end = NULL;
        if (strlen(line) < 2 * S_ID_BYTES + 2 || line[2 * S_ID_BYTES] != ' ' ||
            s_unhex(line, id, S_ID_BYTES) != 0) {
            bad++;
            continue;
        }
        long long exp = strtoll(line + 2 * S_ID_BYTES + 1, &end, 10);
        if (!end || (*end != '\n' && *end != '\0')) {
            bad++;
            continue;
        }
        if (exp + self->leeway < now_s)
            continue;
        id[0] |= 1;
        if (s_insert(self, id, exp) != 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    if (bad)
        pres_log_warn("%s: %zu malformed lines skipped", self->path, bad);
    self->file_lines = lines;
    return 0;
}

gw_auth_t *
gw_auth_new_with(pres_jwt_t **jwt_p, const char *revoked_path, int leeway_s)
{
    gw_auth_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->jwt = *jwt_p;
    *jwt_p = NULL;
    self->leeway = leeway_s;
    self->fd = -1;
    snprintf(self->path, sizeof self->path, "%s", revoked_path);
    self->cap = 256;
    self->set = calloc(self->cap, sizeof *self->set);
    pthread_rwlock_init(&self->lock, NULL);
    int64_t now = pres_now_ms() / 1000;
    if (!self->set || s_load(self, now) != 0 ||
        (self->file_lines != self->size && s_rewrite(self) != 0)) {
        gw_auth_destroy(&self);
        return NULL;
    }
    if (self->fd < 0) {
        self->fd =
            open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (self->fd < 0) {
            pres_log_error("open(%s) failed: %s", self->path, strerror(errno));
            gw_auth_destroy(&self);
            return NULL;
        }
    }
    if (self->size)
        pres_log_info("%zu revoked tokens loaded from %s", self->size,
                      self->path);
    return self;
}

gw_auth_t *
gw_auth_new(const pres_config_t *cfg)
{
    pres_jwt_t *jwt = pres_jwt_new(cfg, true);
    if (!jwt)
        return NULL;
    char path[PRES_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", cfg->data_dir, GW_REVOKED_FILE);
    gw_auth_t *self = gw_auth_new_with(&jwt, path, cfg->jwt_leeway);
    pres_jwt_destroy(&jwt);
    return self;
}

void
gw_auth_destroy(gw_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_auth_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    pthread_rwlock_destroy(&self->lock);
    pres_jwt_destroy(&self->jwt);
    free(self->set);
    free(self);
    *self_p = NULL;
}

gw_auth_cache_t *
gw_auth_cache_new(void)
{
    return calloc(1, sizeof(gw_auth_cache_t));
}

void
gw_auth_cache_destroy(gw_auth_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

const pres_jwt_t *
gw_auth_jwt(const gw_auth_t *self)
{
    return self->jwt;
}

static bool
s_is_revoked_id(gw_auth_t *self, const unsigned char *id)
{
    if (atomic_load_explicit(&self->count, memory_order_acquire) == 0)
        return false;
    pthread_rwlock_rdlock(&self->lock);
    size_t i = s_find(self->set, self->cap, id);
    bool hit = !s_empty(&self->set[i]);
    pthread_rwlock_unlock(&self->lock);
    return hit;
}

bool
gw_auth_is_revoked(gw_auth_t *self, const char *token, size_t len)
{
    if (atomic_load_explicit(&self->count, memory_order_acquire) == 0)
        return false;
    unsigned char id[S_ID_BYTES];
    s_token_id(token, len, id);
    return s_is_revoked_id(self, id);
}

int
gw_auth_revoke(gw_auth_t *self, const char *token, size_t len, int64_t exp)
{
    unsigned char id[S_ID_BYTES];
    s_token_id(token, len, id);
    char line[2 * S_ID_BYTES + 32];
    s_hex(id, S_ID_BYTES, line);
    size_t n = 2 * S_ID_BYTES;
    n += (size_t)snprintf(line + n, sizeof line - n, " %lld\n", (long long)exp);
    pthread_rwlock_wrlock(&self->lock);
    int rc = s_insert(self, id, exp);
    if (rc != 0)
        pres_log_error("gw_auth_revoke: out of memory");
    else if (self->fd < 0 || write(self->fd, line, n) != (ssize_t)n ||
             fdatasync(self->fd) != 0) {
        pres_log_error("write(%s) failed: %s", self->path, strerror(errno));
        rc = -1;
    } else
        self->file_lines++;
    pthread_rwlock_unlock(&self->lock);
    return rc;
}

void
gw_auth_maintain(gw_auth_t *self, int64_t now_s)
{
    pthread_rwlock_wrlock(&self->lock);
    s_purge(self, now_s);
    if (self->file_lines > 2 * self->size + 1024)
        s_rewrite(self);
    pthread_rwlock_unlock(&self->lock);
}

size_t
gw_auth_revoked_count(gw_auth_t *self)
{
    return atomic_load(&self->count);
}

int
gw_auth_check(gw_auth_t *self, gw_auth_cache_t *cache, const char *header,
              int64_t now_s, pres_jwt_claims_t *claims, const char **token,
              size_t *token_len, gw_reject_t *reject, const char **why)
{
    if (!header) {
        *reject = GW_REJ_NO_TOKEN;
        *why = "missing bearer token";
        return -1;
    }
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0 ||
        (header[6] != ' ' && header[6] != '\t')) {
        *reject = GW_REJ_NO_TOKEN;
        *why = "missing bearer token";
        return -1;
    }
    const char *tok = header + 6;
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t len = strlen(tok);
    while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
        len--;
    *token = tok;
    *token_len = len;

    unsigned char id[S_ID_BYTES];
    s_token_id(tok, len, id);
    s_cached_t *slot = NULL;
    if (cache) {
        uint64_t h;
        memcpy(&h, id + 8, sizeof h);
        slot = &cache->slot[h % S_CACHE_SLOTS];
        if (memcmp(slot->id, id, S_ID_BYTES) == 0) {
            if (slot->claims.exp <= now_s - self->leeway) {
                memset(slot->id, 0, S_ID_BYTES);
                *reject = GW_REJ_EXPIRED;
                *why = "token expired";
                return -1;
            }
            *claims = slot->claims;
            goto revocation;
        }
    }
    const char *reason = NULL;
    if (pres_jwt_verify(self->jwt, tok, len, now_s, claims, &reason) != 0) {
        *reject =
            strcmp(reason, "expired") == 0 ? GW_REJ_EXPIRED : GW_REJ_BAD_TOKEN;
        *why = reason;
        return -1;
    }
    if (slot) {
        memcpy(slot->id, id, S_ID_BYTES);
        slot->claims = *claims;
    }
revocation:
    if (s_is_revoked_id(self, id)) {
        *reject = GW_REJ_REVOKED;
        *why = "token revoked";
        return -1;
    }
    return 0;
}
