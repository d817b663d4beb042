/*  gateway_accounts: an open-addressing hash set of non-active users with
    backward-shift deletion, grown at 50% load, under a rwlock. */
#include "gateway_accounts.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"

typedef struct {
    char user[PRES_ID_MAX + 1];  //  "" = empty slot
    pres_account_t status;       //  never ACTIVE
} s_slot_t;

struct gw_accounts {
    pthread_rwlock_t lock;  //  readers: heartbeat/login; writers: updates
    s_slot_t *slots;        //  cap slots
    size_t cap;             //  power of two
    size_t size;            //  used slots
};

static uint64_t
s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;  //  FNV-1a
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

gw_accounts_t *
gw_accounts_new(void)
{
    gw_accounts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = 1024;
    self->slots = calloc(self->cap, sizeof *self->slots);
    if (!self->slots || pthread_rwlock_init(&self->lock, NULL) != 0) {
        pres_log_error("gw_accounts_new: out of memory");
        free(self->slots);
        free(self);
        return NULL;
    }
    return self;
}

void
gw_accounts_destroy(gw_accounts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_accounts_t *self = *self_p;
    pthread_rwlock_destroy(&self->lock);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

//  Slot holding user, or the empty slot where it would go.
static size_t
s_find(const s_slot_t *slots, size_t cap, const char *user)
{
    size_t mask = cap - 1;
    size_t i = (size_t)s_hash(user) & mask;
    while (slots[i].user[0] && strcmp(slots[i].user, user) != 0)
        i = (i + 1) & mask;
    return i;
}

static int
s_grow(gw_accounts_t *self)
{
    size_t cap = self->cap * 2;
    s_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].user[0])
            slots[s_find(slots, cap, self->slots[i].user)] = self->slots[i];
    free(self->slots);
    self->slots = slots;
    self->cap = cap;
    return 0;
}

//  Backward-shift deletion keeps probe chains intact without tombstones.
static void
s_remove_at(gw_accounts_t *self, size_t i)
{
    size_t mask = self->cap - 1;
    size_t j = i;
    while (true) {
        j = (j + 1) & mask;
        if (!self->slots[j].user[0])
            break;
        size_t home = (size_t)s_hash(self->slots[j].user) & mask;
        //  Move j back to i if its home is not in (i, j].
        bool in_range =
            i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            self->slots[i] = self->slots[j];
            i = j;
        }
    }
    self->slots[i].user[0] = '\0';
    self->size--;
}

int
gw_accounts_set(gw_accounts_t *self, const char *user, pres_account_t status)
{
    int rc = 0;
    pthread_rwlock_wrlock(&self->lock);
    size_t i = s_find(self->slots, self->cap, user);
    if (status == PRES_ACC_ACTIVE) {
        if (self->slots[i].user[0])
            s_remove_at(self, i);
    } else if (self->slots[i].user[0])
        self->slots[i].status = status;
    else {
        if ((self->size + 1) * 2 > self->cap) {
            if (s_grow(self) != 0) {
                pres_log_error("gw_accounts_set: out of memory");
                rc = -1;
                goto done;
            }
            i = s_find(self->slots, self->cap, user);
        }
        snprintf(self->slots[i].user, sizeof self->slots[i].user, "%s", user);
        self->slots[i].status = status;
        self->size++;
    }
done:
    pthread_rwlock_unlock(&self->lock);
    return rc;
}

pres_account_t
gw_accounts_get(gw_accounts_t *self, const char *user)
{
    pres_account_t status = PRES_ACC_ACTIVE;
    pthread_rwlock_rdlock(&self->lock);
    if (self->size > 0) {
        size_t i = s_find(self->slots, self->cap, user);
        if (self->slots[i].user[0])
            status = self->slots[i].status;
    }
    pthread_rwlock_unlock(&self->lock);
    return status;
}

size_t
gw_accounts_size(gw_accounts_t *self)
{
    pthread_rwlock_rdlock(&self->lock);
    size_t n = self->size;
    pthread_rwlock_unlock(&self->lock);
    return n;
}
