/*  gateway_auth: bearer parsing, a per-thread verified-token cache, and a
    revocation set (128-bit SHA-256 prefix of what the signature covers,
    header.payload -> exp) persisted as an append-only, fdatasync'd file
    of "s <hex id> <exp>" lines, compacted when most of its lines have
    expired. Lines without the "s " mark are whole-token ids written by
    older gateways; they are honoured until they expire. */
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
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pres_log.h"

#define S_ID_BYTES    GW_TOKEN_ID_BYTES  //  ids: SHA-256 prefixes
#define S_SIGNED_MARK "s "               //  file lines keyed on the signed part

typedef struct {
    unsigned char id[S_ID_BYTES];  //  all zero = empty
    int64_t exp;                   //  seconds; entry dies after exp+leeway
    bool legacy;  //  id of the whole token (files before signed-content ids)
} s_revoked_t;

struct gw_auth {
    pres_jwt_t *jwt;                //  verifier, read-only
    int leeway;                     //  seconds
    char path[PRES_PATH_MAX + 32];  //  revocation file
    int fd;                         //  append fd, -1 when unusable
    pthread_rwlock_t lock;          //  guards the set below
    s_revoked_t *set;               //  open addressing
    size_t cap, size;               //  power of two; live entries
    size_t legacy;                  //  live entries with legacy ids
    size_t file_lines;              //  lines in the file
    atomic_size_t count;            //  == size, read without the lock
    gw_auth_revoke_fn *on_revoke;   //  hook, set before threads start
    void *on_revoke_arg;
};

//  The verified-token cache: S_CACHE_SETS sets of S_CACHE_WAYS entries.
//  A token goes to the set picked by a seeded 64-bit hash of its bytes
//  and is found again by comparing the tag, the length and then every
//  byte, so a hit means exactly these bytes passed pres_jwt_verify. Each
//  entry holds the claims and the revocation id (what the signature
//  covers), so every spelling of one signed token meets the same
//  revocation; exp and the revocation set are checked on every request,
//  hit or miss. Within a set the least recently used entry is replaced.
//  One mutex per set: the sets are many and a lock is held for a copy.
#define S_CACHE_WAYS 16
#define S_CACHE_SETS 2048  //  32,768 tokens; a set is picked by hash

typedef struct {
    gw_token_id_t id;  //  header.payload
    pres_jwt_claims_t claims;
    size_t len;  //  token bytes
    char *tok;   //  heap copy of the token
} s_cached_t;

typedef struct {
    pthread_mutex_t lock;
    uint32_t clock;               //  bumped on every hit or fill
    uint64_t tag[S_CACHE_WAYS];   //  hash of the token; 0 = empty
    uint32_t used[S_CACHE_WAYS];  //  clock at the last use
    uint64_t hits, misses;        //  lookups
} s_set_t;

struct gw_auth_cache {
    uint64_t seed;  //  random: the set of a token is not predictable
    s_set_t set[S_CACHE_SETS];
    s_cached_t entry[S_CACHE_SETS * S_CACHE_WAYS];
};

static void
s_hash_id(const char *data, size_t len, unsigned char *id)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)data, len, md);
    memcpy(id, md, S_ID_BYTES);
    //  All-zero marks an empty slot; a real id is never all zero in
    //  practice, but make it impossible.
    id[0] |= 1;
}

void
gw_auth_token_id(const char *token, size_t len, gw_token_id_t *id)
{
    //  header.payload: everything before the last dot. A token without a
    //  dot never verifies; hash it whole.
    size_t signed_len = len;
    while (signed_len > 0 && token[signed_len - 1] != '.')
        signed_len--;
    s_hash_id(token, signed_len > 0 ? signed_len - 1 : len, id->b);
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

//  True if an entry revoked until exp is dead at now_s. Written so that
//  no exp (up to INT64_MAX) overflows: leeway and now_s are small.
static bool
s_dead(const gw_auth_t *self, int64_t exp, int64_t now_s)
{
    return exp < now_s - self->leeway;
}

static void
s_count(gw_auth_t *self)
{
    atomic_store(&self->count, self->size);
}

//  Insert (caller holds the write lock). 1 if new, 0 if it was there
//  (exp raised if later), -1 out of memory.
static int
s_insert(gw_auth_t *self, const unsigned char *id, int64_t exp, bool legacy)
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
    int added = 0;
    if (s_empty(&self->set[i])) {
        memcpy(self->set[i].id, id, S_ID_BYTES);
        self->set[i].exp = exp;
        self->set[i].legacy = legacy;
        self->size++;
        self->legacy += legacy;
        added = 1;
    }
    if (exp > self->set[i].exp)
        self->set[i].exp = exp;
    s_count(self);
    return added;
}

//  Rebuild the set without the entries dead at now_s (when expire), and
//  without the entry `drop` (NULL: none) (write lock held).
static void
s_purge(gw_auth_t *self, bool expire, int64_t now_s, const unsigned char *drop)
{
    s_revoked_t *set = calloc(self->cap, sizeof *set);
    if (!set)
        return;
    size_t size = 0, legacy = 0;
    for (size_t i = 0; i < self->cap; i++) {
        s_revoked_t *e = &self->set[i];
        if (s_empty(e) || (expire && s_dead(self, e->exp, now_s)) ||
            (drop && memcmp(e->id, drop, S_ID_BYTES) == 0))
            continue;
        set[s_find(set, self->cap, e->id)] = *e;
        size++;
        legacy += e->legacy;
    }
    free(self->set);
    self->set = set;
    self->size = size;
    self->legacy = legacy;
    s_count(self);
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
        fprintf(f, "%s%s %lld\n", self->set[i].legacy ? "" : S_SIGNED_MARK, hex,
                (long long)self->set[i].exp);
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
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        pres_log_error("%s: not a regular file", self->path);
        fclose(f);
        return -1;
    }
    char line[128];
    size_t lines = 0, bad = 0;
    size_t mark = strlen(S_SIGNED_MARK);
    while (fgets(line, sizeof line, f)) {
        lines++;
        //  "s <hex> <exp>": id of the signed part; "<hex> <exp>": id of
        //  the whole token, as written before signed-content ids.
        bool legacy = strncmp(line, S_SIGNED_MARK, mark) != 0;
        const char *p = legacy ? line : line + mark;
        unsigned char id[S_ID_BYTES];
        char *end = NULL;
        if (strlen(p) < 2 * S_ID_BYTES + 2 || p[2 * S_ID_BYTES] != ' ' ||
            s_unhex(p, id, S_ID_BYTES) != 0) {
            bad++;
            continue;
        }
        errno = 0;
        long long exp = strtoll(p + 2 * S_ID_BYTES + 1, &end, 10);
        if (errno || !end || end == p + 2 * S_ID_BYTES + 1 ||
            (*end != '\n' && *end != '\0')) {
            bad++;
            continue;
        }
        if (s_dead(self, exp, now_s))
            continue;
        id[0] |= 1;
        if (s_insert(self, id, exp, legacy) < 0) {
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
    gw_auth_cache_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (getrandom(&self->seed, sizeof self->seed, 0) != sizeof self->seed)
        self->seed = (uint64_t)pres_mono_ms() * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < S_CACHE_SETS; i++)
        pthread_mutex_init(&self->set[i].lock, NULL);
    return self;
}

void
gw_auth_cache_destroy(gw_auth_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_auth_cache_t *self = *self_p;
    for (size_t i = 0; i < S_CACHE_SETS; i++)
        pthread_mutex_destroy(&self->set[i].lock);
    for (size_t i = 0; i < S_CACHE_SETS * S_CACHE_WAYS; i++)
        free(self->entry[i].tok);
    free(self);
    *self_p = NULL;
}

//  A seeded 64-bit hash of the token bytes (not cryptographic: the full
//  token is compared on a tag match). Never 0 (0 marks an empty way).
static uint64_t
s_cache_hash(const gw_auth_cache_t *self, const char *tok, size_t len)
{
    const uint64_t m = 0x9e3779b97f4a7c15ull;
    uint64_t h = self->seed ^ (len * m);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, tok + i, sizeof w);
        h = (h ^ w) * m;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, tok + i, len - i);
    h = (h ^ w) * m;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h ? h : 1;
}

//  Look token up; on a hit copy its claims and id out. True on a hit.
static bool
s_cache_get(gw_auth_cache_t *self, uint64_t h, const char *tok, size_t len,
            pres_jwt_claims_t *claims, gw_token_id_t *id)
{
    size_t si = (size_t)(h >> 20) % S_CACHE_SETS;
    s_set_t *set = &self->set[si];
    s_cached_t *e = &self->entry[si * S_CACHE_WAYS];
    bool hit = false;
    pthread_mutex_lock(&set->lock);
    for (int w = 0; w < S_CACHE_WAYS; w++) {
        if (set->tag[w] == h && e[w].len == len &&
            memcmp(e[w].tok, tok, len) == 0) {
            *claims = e[w].claims;
            *id = e[w].id;
            set->used[w] = ++set->clock;
            hit = true;
            break;
        }
    }
    if (hit)
        set->hits++;
    else
        set->misses++;
    pthread_mutex_unlock(&set->lock);
    return hit;
}

//  Remember a verified token (replacing the set's least recently used).
static void
s_cache_put(gw_auth_cache_t *self, uint64_t h, const char *tok, size_t len,
            const pres_jwt_claims_t *claims, const gw_token_id_t *id)
{
    char *copy = malloc(len);
    if (!copy)
        return;  //  not cached: verified again next time
    memcpy(copy, tok, len);
    size_t si = (size_t)(h >> 20) % S_CACHE_SETS;
    s_set_t *set = &self->set[si];
    s_cached_t *e = &self->entry[si * S_CACHE_WAYS];
    pthread_mutex_lock(&set->lock);
    int victim = -1;
    for (int w = 0; w < S_CACHE_WAYS && victim < 0; w++)
        if (set->tag[w] == h && e[w].len == len &&
            memcmp(e[w].tok, tok, len) == 0)
            victim = w;  //  another thread filled it meanwhile
    for (int w = 0; w < S_CACHE_WAYS && victim < 0; w++)
        if (set->tag[w] == 0)
            victim = w;
    if (victim < 0) {
        //  Unsigned distance from now: the oldest use is the largest.
        victim = 0;
        for (int w = 1; w < S_CACHE_WAYS; w++)
            if (set->clock - set->used[w] > set->clock - set->used[victim])
                victim = w;
    }
    set->tag[victim] = h;
    char *old = e[victim].tok;
    e[victim].tok = copy;
    e[victim].len = len;
    e[victim].claims = *claims;
    e[victim].id = *id;
    set->used[victim] = ++set->clock;
    pthread_mutex_unlock(&set->lock);
    free(old);
}

void
gw_auth_cache_stats(gw_auth_cache_t *self, uint64_t *hits, uint64_t *misses)
{
    *hits = *misses = 0;
    for (size_t i = 0; i < S_CACHE_SETS; i++) {
        pthread_mutex_lock(&self->set[i].lock);
        *hits += self->set[i].hits;
        *misses += self->set[i].misses;
        pthread_mutex_unlock(&self->set[i].lock);
    }
}

//  Forget token (it expired).
static void
s_cache_drop(gw_auth_cache_t *self, uint64_t h, const char *tok, size_t len)
{
    size_t si = (size_t)(h >> 20) % S_CACHE_SETS;
    s_set_t *set = &self->set[si];
    s_cached_t *e = &self->entry[si * S_CACHE_WAYS];
    pthread_mutex_lock(&set->lock);
    for (int w = 0; w < S_CACHE_WAYS; w++)
        if (set->tag[w] == h && e[w].len == len &&
            memcmp(e[w].tok, tok, len) == 0)
            set->tag[w] = 0;
    pthread_mutex_unlock(&set->lock);
}

const pres_jwt_t *
gw_auth_jwt(const gw_auth_t *self)
{
    return self->jwt;
}

//  Read lock taken here. id: signed-content id; tok/len: the whole token,
//  whose own id is computed and looked up only while legacy entries live
//  (NULL: do not).
static bool
s_is_revoked(gw_auth_t *self, const unsigned char *id, const char *tok,
             size_t len)
{
    if (atomic_load_explicit(&self->count, memory_order_acquire) == 0)
        return false;
    pthread_rwlock_rdlock(&self->lock);
    bool hit = !s_empty(&self->set[s_find(self->set, self->cap, id)]);
    if (!hit && tok && self->legacy > 0) {
        unsigned char key[S_ID_BYTES];
        s_hash_id(tok, len, key);
        hit = !s_empty(&self->set[s_find(self->set, self->cap, key)]);
    }
    pthread_rwlock_unlock(&self->lock);
    return hit;
}

bool
gw_auth_is_revoked_id(gw_auth_t *self, const gw_token_id_t *id)
{
    return s_is_revoked(self, id->b, NULL, 0);
}

bool
gw_auth_is_revoked(gw_auth_t *self, const char *token, size_t len)
{
    if (atomic_load_explicit(&self->count, memory_order_acquire) == 0)
        return false;
    gw_token_id_t id;
    gw_auth_token_id(token, len, &id);
    return s_is_revoked(self, id.b, token, len);
}

void
gw_auth_on_revoke(gw_auth_t *self, gw_auth_revoke_fn *fn, void *arg)
{
    self->on_revoke = fn;
    self->on_revoke_arg = arg;
}

//  Append line and make it durable (write lock held). On any failure the
//  file is cut back to where it was, so a torn line never precedes the
//  next one. 0 or -1 (logged).
static int
s_append(gw_auth_t *self, const char *line, size_t n)
{
    if (self->fd < 0) {
        pres_log_error("%s is not open (an earlier rewrite failed)",
                       self->path);
        return -1;
    }
    off_t at = lseek(self->fd, 0, SEEK_END);
    ssize_t w = at < 0 ? -1 : write(self->fd, line, n);
    const char *call = at < 0 ? "lseek" : "write";
    if (w == (ssize_t)n) {
        if (fdatasync(self->fd) == 0)
            return 0;
        call = "fdatasync";
    } else if (w >= 0)
        errno = ENOSPC;  //  short write: the disk (or quota) is full
    pres_log_error("%s(%s) failed: %s", call, self->path, strerror(errno));
    if (at >= 0 && ftruncate(self->fd, at) != 0)
        pres_log_error("ftruncate(%s) failed: %s", self->path, strerror(errno));
    return -1;
}

int
gw_auth_revoke(gw_auth_t *self, const char *token, size_t len, int64_t exp)
{
    gw_token_id_t id;
    gw_auth_token_id(token, len, &id);
    char line[2 * S_ID_BYTES + 40];
    int n = snprintf(line, sizeof line, "%s", S_SIGNED_MARK);
    s_hex(id.b, S_ID_BYTES, line + n);
    n += 2 * S_ID_BYTES;
    n += snprintf(line + n, sizeof line - (size_t)n, " %lld\n", (long long)exp);
    pthread_rwlock_wrlock(&self->lock);
    int added = s_insert(self, id.b, exp, false);
    int rc = 0;
    if (added < 0) {
        pres_log_error("gw_auth_revoke: out of memory");
        rc = -1;
    } else if (s_append(self, line, (size_t)n) != 0) {
        //  Not durable: undo, so the answer (503) matches the state and a
        //  retry can still authenticate. A revocation that was already
        //  durable stays.
        if (added)
            s_purge(self, false, 0, id.b);
        rc = -1;
    } else
        self->file_lines++;
    pthread_rwlock_unlock(&self->lock);
    //  Outside the lock: the hook may take its own locks, which readers
    //  hold while asking gw_auth_is_revoked_id.
    if (rc == 0 && self->on_revoke)
        self->on_revoke(self->on_revoke_arg, &id);
    return rc;
}

void
gw_auth_maintain(gw_auth_t *self, int64_t now_s)
{
    pthread_rwlock_wrlock(&self->lock);
    s_purge(self, true, now_s, NULL);
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

    gw_token_id_t id;
    uint64_t h = cache ? s_cache_hash(cache, tok, len) : 0;
    if (cache && s_cache_get(cache, h, tok, len, claims, &id)) {
        if (claims->exp <= now_s - self->leeway) {
            s_cache_drop(cache, h, tok, len);
            *reject = GW_REJ_EXPIRED;
            *why = "token expired";
            return -1;
        }
        goto revocation;
    }
    const char *reason = NULL;
    if (pres_jwt_verify(self->jwt, tok, len, now_s, claims, &reason) != 0) {
        *reject =
            strcmp(reason, "expired") == 0 ? GW_REJ_EXPIRED : GW_REJ_BAD_TOKEN;
        *why = reason;
        return -1;
    }
    gw_auth_token_id(tok, len, &id);
    if (cache)
        s_cache_put(cache, h, tok, len, claims, &id);
revocation:
    //  Every request, from the cache or not: a token revoked (logged out)
    //  after it was cached is refused from the next request on.
    if (s_is_revoked(self, id.b, tok, len)) {
        *reject = GW_REJ_REVOKED;
        *why = "token revoked";
        return -1;
    }
    return 0;
}
