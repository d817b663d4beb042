/*  broker_pubs: per-publisher seq table (see broker_pubs.h). A zhashx maps
    src to an entry in a dense array (removal moves the last entry into the
    hole); the hot path first checks the entry of the previous event, since
    events come in runs from one publisher. Making room at the cap sorts the
    arrival times once and drops the oldest quarter, so a flood of one-shot
    publishers costs O(log max) per new src, amortised. */
#include "broker_pubs.h"

#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "pres_grow.h"
#include "pres_log.h"

typedef struct {
    char src[PRES_ID_MAX + 1];
} s_name_t;

struct broker_pubs {
    zhashx_t *index;        //  src -> index + 1 into entries (as pointer)
    broker_pub_t *entries;  //  the table
    size_t count;           //  entries used
    size_t cap;             //  entries allocated
    size_t max;             //  entries kept at most
    uint64_t idle_ms;       //  forget after this long without an event
    size_t last_hit;        //  entry of the previous arrival, or SIZE_MAX
    size_t ndirty;          //  dirty entries
    s_name_t *forgotten;    //  names to delete from LMDB
    size_t nforgotten, forgotten_cap;
    pres_ratelimit_t rl;  //  log limit for "table full"
};

broker_pubs_t *
broker_pubs_new(size_t max, uint64_t idle_ms)
{
    assert(max >= 4);
    broker_pubs_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->index = zhashx_new();
    if (!self->index) {
        pres_log_error("zhashx_new() failed");
        free(self);
        return NULL;
    }
    self->max = max;
    self->idle_ms = idle_ms;
    self->last_hit = SIZE_MAX;
    return self;
}

void
broker_pubs_destroy(broker_pubs_t **self_p)
{
    assert(self_p);
    broker_pubs_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->index);
    free(self->entries);
    free(self->forgotten);
    free(self);
    *self_p = NULL;
}

//  Drop entry i: remember its name for LMDB, move the last entry into its
//  place. -1 when the name cannot be remembered (out of memory).
static int
s_forget(broker_pubs_t *self, size_t i)
{
    if (pres_grow((void **)&self->forgotten, &self->forgotten_cap,
                  sizeof(*self->forgotten), self->nforgotten + 1, 64)) {
        pres_log_error("realloc() failed growing forgotten publishers");
        return -1;
    }
    broker_pub_t *pub = &self->entries[i];
    memcpy(self->forgotten[self->nforgotten++].src, pub->src, sizeof(pub->src));
    zhashx_delete(self->index, pub->src);
    if (pub->dirty)
        self->ndirty--;
    size_t last = --self->count;
    if (i != last) {
        self->entries[i] = self->entries[last];
        zhashx_update(self->index, self->entries[i].src,
                      (void *)(uintptr_t)(i + 1));
    }
    self->last_hit = SIZE_MAX;
    return 0;
}

typedef struct {
    uint64_t seen;
    size_t index;
} s_age_t;

static int
s_cmp_age(const void *a, const void *b)
{
    const s_age_t *x = a, *y = b;
    if (x->seen != y->seen)
        return x->seen < y->seen ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

//  At the cap: forget the least recently seen quarter (at least one).
static int
s_make_room(broker_pubs_t *self)
{
    size_t n = self->count, k = n / 4 ? n / 4 : 1;
    s_age_t *ages = malloc(n * sizeof(*ages));
    s_name_t *names = malloc(k * sizeof(*names));
    if (!ages || !names) {
        free(ages);
        free(names);
        pres_log_error("malloc() failed trimming the publisher table");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        ages[i] = (s_age_t){self->entries[i].seen, i};
    qsort(ages, n, sizeof(*ages), s_cmp_age);
    //  By name: forgetting moves entries, so indexes go stale.
    for (size_t i = 0; i < k; i++)
        memcpy(names[i].src, self->entries[ages[i].index].src,
               sizeof(names[i].src));
    int rc = 0;
    for (size_t i = 0; i < k && rc == 0; i++) {
        uintptr_t hit = (uintptr_t)zhashx_lookup(self->index, names[i].src);
        assert(hit);
        rc = s_forget(self, hit - 1);
    }
    free(ages);
    free(names);
    pres_log_limited(&self->rl, 10000,
                     "publisher table full (%zu): forgot the %zu least "
                     "recently seen publishers",
                     self->max, k);
    return rc;
}

static size_t
s_find_or_add(broker_pubs_t *self, const char *src, size_t len, uint64_t now)
{
    if (self->last_hit != SIZE_MAX) {
        broker_pub_t *pub = &self->entries[self->last_hit];
        if (strncmp(pub->src, src, len) == 0 && pub->src[len] == 0)
            return self->last_hit;
    }
    char key[PRES_ID_MAX + 1];
    assert(len <= PRES_ID_MAX);
    memcpy(key, src, len);
    key[len] = 0;
    uintptr_t hit = (uintptr_t)zhashx_lookup(self->index, key);
    if (hit) {
        self->last_hit = hit - 1;
        return hit - 1;
    }
    if (self->count >= self->max && s_make_room(self))
        return SIZE_MAX;
    if (pres_grow((void **)&self->entries, &self->cap, sizeof(*self->entries),
                  self->count + 1, 16)) {
        pres_log_error("realloc() failed growing the publisher table");
        return SIZE_MAX;
    }
    size_t i = self->count;
    if (zhashx_insert(self->index, key, (void *)(uintptr_t)(i + 1))) {
        pres_log_error("zhashx_insert() failed");
        return SIZE_MAX;
    }
    self->count++;
    broker_pub_t *pub = &self->entries[i];
    memset(pub, 0, sizeof(*pub));
    memcpy(pub->src, key, len + 1);
    pub->seen = now;
    self->last_hit = i;
    return i;
}

uint64_t
broker_pubs_arrive(broker_pubs_t *self, const char *src, uint64_t seq,
                   uint64_t now_ms)
{
    size_t i = s_find_or_add(self, src, strlen(src), now_ms);
    if (i == SIZE_MAX)
        return UINT64_MAX;
    broker_pub_t *pub = &self->entries[i];
    uint64_t lost = 0;
    if (seq > pub->last)
        lost = seq - pub->last - 1;
    //  seq <= last: the publisher restarted; start over from seq.
    pub->last = seq;
    pub->lost += lost;
    pub->seen = now_ms;
    if (!pub->dirty) {
        pub->dirty = true;
        self->ndirty++;
    }
    return lost;
}

int
broker_pubs_load(broker_pubs_t *self, const char *src, size_t len,
                 uint64_t last, uint64_t lost, uint64_t now_ms)
{
    size_t i = s_find_or_add(self, src, len, now_ms);
    if (i == SIZE_MAX)
        return -1;
    self->entries[i].last = last;
    self->entries[i].lost = lost;
    return 0;
}

size_t
broker_pubs_expire(broker_pubs_t *self, uint64_t now_ms)
{
    size_t i = 0, dropped = 0;
    while (i < self->count)
        if (self->entries[i].seen + self->idle_ms < now_ms) {
            if (s_forget(self, i))
                break;
            dropped++;
        } else
            i++;
    return dropped;
}

size_t
broker_pubs_count(const broker_pubs_t *self)
{
    return self->count;
}

broker_pub_t *
broker_pubs_at(broker_pubs_t *self, size_t i)
{
    assert(i < self->count);
    return &self->entries[i];
}

size_t
broker_pubs_forgotten_count(const broker_pubs_t *self)
{
    return self->nforgotten;
}

const char *
broker_pubs_forgotten(const broker_pubs_t *self, size_t i)
{
    assert(i < self->nforgotten);
    return self->forgotten[i].src;
}

bool
broker_pubs_dirty(const broker_pubs_t *self)
{
    return self->ndirty > 0 || self->nforgotten > 0;
}

void
broker_pubs_clean(broker_pubs_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        self->entries[i].dirty = false;
    self->ndirty = 0;
    self->nforgotten = 0;
}
