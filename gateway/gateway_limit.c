/*  gateway_limit: a fixed table split into stripes, each an open-address
    table probed over a short window. A key is found anywhere in its
    window (no tombstones needed); a new key takes an empty slot, else an
    idle one (bucket full again, no connections), else the least recently
    used slot without connections. Evicting a busy bucket forgets its
    debt: bounded memory wins over exact fairness, and under the keyed
    hash only a flood of distinct keys, not a chosen few, can force it. */
#include "gateway_limit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "pres_log.h"
#include "pres_msg.h"

#define S_KEY_MAX     (1 + PRES_ID_MAX)  //  kind byte + subject or address
#define S_WINDOW      16                 //  slots probed per key
#define S_STRIPES_MAX 64

typedef struct {
    uint64_t hash;
    uint8_t len;  //  key bytes; 0 = empty slot
    uint8_t key[S_KEY_MAX];
    int32_t conns;    //  open connections (address keys)
    double tokens;    //  what the bucket holds as of last_ms
    int64_t last_ms;  //  last use, monotonic
} s_slot_t;

typedef struct {
    pthread_mutex_t lock;
    s_slot_t *slot;  //  slots_per_stripe
} s_stripe_t;

struct gw_limit {
    gw_limit_config_t cfg;
    gw_cidrs_t trusted;
    uint8_t sip_key[crypto_shorthash_siphash24_KEYBYTES];
    size_t nstripes;  //  power of two
    size_t nslots;    //  per stripe, power of two
    s_stripe_t stripe[S_STRIPES_MAX];
};

gw_limit_t *
gw_limit_new(const gw_limit_config_t *cfg)
{
    gw_limit_t *self = calloc(1, sizeof *self);
    if (!self) {
        pres_log_error("gw_limit_new: out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    if (cfg->trusted)
        self->trusted = *cfg->trusted;
    self->cfg.trusted = NULL;
    if (self->cfg.user_burst < 1)
        self->cfg.user_burst = 1;
    if (self->cfg.addr_burst < 1)
        self->cfg.addr_burst = 1;
    if (getrandom(self->sip_key, sizeof self->sip_key, 0) !=
        (ssize_t)sizeof self->sip_key) {
        pres_log_error("getrandom() failed for the limiter key");
        free(self);
        return NULL;
    }
    size_t total = 64;
    while (total < cfg->capacity && total < ((size_t)1 << 30))
        total *= 2;
    self->nstripes =
        total / S_WINDOW < S_STRIPES_MAX ? total / S_WINDOW : S_STRIPES_MAX;
    self->nslots = total / self->nstripes;
    for (size_t i = 0; i < self->nstripes; i++) {
        s_stripe_t *st = &self->stripe[i];
        pthread_mutex_init(&st->lock, NULL);
        st->slot = calloc(self->nslots, sizeof *st->slot);
        if (!st->slot) {
            pres_log_error("gw_limit_new: out of memory");
            self->nstripes = i + 1;
            gw_limit_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void
gw_limit_destroy(gw_limit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_limit_t *self = *self_p;
    for (size_t i = 0; i < self->nstripes; i++) {
        pthread_mutex_destroy(&self->stripe[i].lock);
        free(self->stripe[i].slot);
    }
    free(self);
    *self_p = NULL;
}

static uint64_t
s_hash(const gw_limit_t *self, const uint8_t *key, size_t len)
{
    if (self->cfg.hash)
        return self->cfg.hash(key, len);
    uint8_t out[crypto_shorthash_siphash24_BYTES];
    crypto_shorthash_siphash24(out, key, len, self->sip_key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

//  Rate and bucket size of a key kind ('u' subject, 'a' address).
static void
s_rates(const gw_limit_t *self, uint8_t kind, double *rate, double *burst)
{
    *rate = kind == 'u' ? self->cfg.user_rate : self->cfg.addr_rate;
    *burst = kind == 'u' ? self->cfg.user_burst : self->cfg.addr_burst;
}

//  Tokens in the slot's bucket at now (not stored).
static double
s_refill(const s_slot_t *s, int64_t now_ms, double rate, double burst)
{
    double t = s->tokens;
    if (now_ms > s->last_ms)
        t += (double)(now_ms - s->last_ms) * rate / 1000.0;
    return t < burst ? t : burst;
}

//  The slot of key in stripe st (lock held), created when `create`;
//  NULL when absent (or no slot could be freed for it).
static s_slot_t *
s_slot(gw_limit_t *self, s_stripe_t *st, uint64_t h, const uint8_t *key,
       size_t len, int64_t now_ms, bool create)
{
    size_t mask = self->nslots - 1;
    size_t start = (size_t)(h >> 8) & mask;
    size_t window = self->nslots < S_WINDOW ? self->nslots : S_WINDOW;
    s_slot_t *empty = NULL, *idle = NULL, *oldest = NULL;
    for (size_t i = 0; i < window; i++) {
        s_slot_t *s = &st->slot[(start + i) & mask];
        if (s->len == len && s->hash == h && memcmp(s->key, key, len) == 0)
            return s;
        if (s->len == 0) {
            if (!empty)
                empty = s;
            continue;
        }
        if (s->conns > 0)
            continue;
        double srate, sburst;
        s_rates(self, s->key[0], &srate, &sburst);
        if (!idle && s_refill(s, now_ms, srate, sburst) >= sburst)
            idle = s;
        if (!oldest || s->last_ms < oldest->last_ms)
            oldest = s;
    }
    if (!create)
        return NULL;
    s_slot_t *s = empty ? empty : idle ? idle : oldest;
    if (!s)
        return NULL;
    s->hash = h;
    s->len = (uint8_t)len;
    memcpy(s->key, key, len);
    s->conns = 0;
    double rate;
    s_rates(self, key[0], &rate, &s->tokens);
    s->last_ms = now_ms;
    return s;
}

//  Take one token from key's bucket.
static bool
s_take(gw_limit_t *self, const uint8_t *key, size_t len, int64_t now_ms)
{
    double rate, burst;
    s_rates(self, key[0], &rate, &burst);
    if (rate <= 0)
        return true;
    uint64_t h = s_hash(self, key, len);
    s_stripe_t *st = &self->stripe[h & (self->nstripes - 1)];
    pthread_mutex_lock(&st->lock);
    s_slot_t *s = s_slot(self, st, h, key, len, now_ms, true);
    bool ok = true;  //  no slot to be had: let it through
    if (s) {
        double t = s_refill(s, now_ms, rate, burst);
        ok = t >= 1.0;
        s->tokens = ok ? t - 1.0 : t;
        if (now_ms > s->last_ms)
            s->last_ms = now_ms;
    }
    pthread_mutex_unlock(&st->lock);
    return ok;
}

bool
gw_limit_user(gw_limit_t *self, const char *sub, int64_t now_ms)
{
    uint8_t key[S_KEY_MAX];
    size_t n = strnlen(sub, PRES_ID_MAX);
    key[0] = 'u';
    memcpy(key + 1, sub, n);
    return s_take(self, key, n + 1, now_ms);
}

static size_t
s_addr_key(const gw_addr_t *addr, uint8_t key[S_KEY_MAX])
{
    key[0] = 'a';
    return 1 + gw_addr_key(addr, key + 1);
}

bool
gw_limit_addr(gw_limit_t *self, const gw_addr_t *client, int64_t now_ms)
{
    uint8_t key[S_KEY_MAX];
    size_t n = s_addr_key(client, key);
    return s_take(self, key, n, now_ms);
}

bool
gw_limit_trusted(const gw_limit_t *self, const gw_addr_t *peer)
{
    return gw_cidrs_match(&self->trusted, peer);
}

void
gw_limit_client(const gw_limit_t *self, const gw_addr_t *peer, gw_fwd_t kind,
                const char *header, gw_addr_t *client)
{
    gw_addr_forwarded(&self->trusted, peer, kind, header, client);
}

//  Run fn on peer's slot under its stripe lock; the slot may be NULL.
typedef int (*s_conn_fn)(gw_limit_t *self, s_slot_t *s);

static int
s_with_conn_slot(gw_limit_t *self, const gw_addr_t *peer, int64_t now_ms,
                 bool create, s_conn_fn fn)
{
    uint8_t key[S_KEY_MAX];
    size_t n = s_addr_key(peer, key);
    uint64_t h = s_hash(self, key, n);
    s_stripe_t *st = &self->stripe[h & (self->nstripes - 1)];
    pthread_mutex_lock(&st->lock);
    int rc = fn(self, s_slot(self, st, h, key, n, now_ms, create));
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int
s_room(gw_limit_t *self, s_slot_t *s)
{
    return !s || s->conns < self->cfg.addr_conns;
}

static int
s_open(gw_limit_t *self, s_slot_t *s)
{
    if (!s)
        return 1;  //  table full: admit, uncounted
    if (s->conns >= self->cfg.addr_conns)
        return 0;
    s->conns++;
    return 1;
}

static int
s_close(gw_limit_t *self, s_slot_t *s)
{
    (void)self;
    if (s && s->conns > 0)
        s->conns--;
    return 0;
}

static int
s_count(gw_limit_t *self, s_slot_t *s)
{
    (void)self;
    return s ? s->conns : 0;
}

static bool
s_capped(const gw_limit_t *self, const gw_addr_t *peer)
{
    return self->cfg.addr_conns > 0 && !gw_limit_trusted(self, peer);
}

bool
gw_limit_conn_room(gw_limit_t *self, const gw_addr_t *peer)
{
    return !s_capped(self, peer) ||
           s_with_conn_slot(self, peer, 0, false, s_room);
}

bool
gw_limit_conn_open(gw_limit_t *self, const gw_addr_t *peer, int64_t now_ms)
{
    return !s_capped(self, peer) ||
           s_with_conn_slot(self, peer, now_ms, true, s_open);
}

void
gw_limit_conn_close(gw_limit_t *self, const gw_addr_t *peer)
{
    if (s_capped(self, peer))
        s_with_conn_slot(self, peer, 0, false, s_close);
}

int
gw_limit_conns(gw_limit_t *self, const gw_addr_t *peer)
{
    return s_with_conn_slot(self, peer, 0, false, s_count);
}
