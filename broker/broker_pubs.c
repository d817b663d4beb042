/*  broker_pubs: per-publisher seq table (see broker_pubs.h). A zhashx maps
    src to an entry; the hot path first checks the entry of the previous
    event, since events come in runs from one publisher. */
#include "broker_pubs.h"

#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"

struct broker_pubs {
    zhashx_t *index;        //  src -> index + 1 into entries (as pointer)
    broker_pub_t *entries;  //  the table
    size_t count;           //  entries used
    size_t cap;             //  entries allocated
    size_t last_hit;        //  entry of the previous arrival, or SIZE_MAX
    size_t ndirty;          //  dirty entries
};

broker_pubs_t *
broker_pubs_new(void)
{
    broker_pubs_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->index = zhashx_new();
    if (!self->index) {
        pres_log_error("zhashx_new() failed");
        free(self);
        return NULL;
    }
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
    free(self);
    *self_p = NULL;
}

static size_t
s_find_or_add(broker_pubs_t *self, const char *src, size_t len)
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
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        broker_pub_t *entries = realloc(self->entries, cap * sizeof(*entries));
        if (!entries) {
            pres_log_error("realloc() failed growing the publisher table");
            return SIZE_MAX;
        }
        self->entries = entries;
        self->cap = cap;
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
    self->last_hit = i;
    return i;
}

uint64_t
broker_pubs_arrive(broker_pubs_t *self, const char *src, uint64_t seq)
{
    size_t i = s_find_or_add(self, src, strlen(src));
    if (i == SIZE_MAX)
        return UINT64_MAX;
    broker_pub_t *pub = &self->entries[i];
    uint64_t lost = 0;
    if (seq > pub->last)
        lost = seq - pub->last - 1;
    //  seq <= last: the publisher restarted; start over from seq.
    pub->last = seq;
    pub->lost += lost;
    if (!pub->dirty) {
        pub->dirty = true;
        self->ndirty++;
    }
    return lost;
}

int
broker_pubs_load(broker_pubs_t *self, const char *src, size_t len,
                 uint64_t last, uint64_t lost)
{
    size_t i = s_find_or_add(self, src, len);
    if (i == SIZE_MAX)
        return -1;
    self->entries[i].last = last;
    self->entries[i].lost = lost;
    return 0;
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

bool
broker_pubs_dirty(const broker_pubs_t *self)
{
    return self->ndirty > 0;
}

void
broker_pubs_clean(broker_pubs_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        self->entries[i].dirty = false;
    self->ndirty = 0;
}
