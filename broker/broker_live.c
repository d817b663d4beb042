/*  broker_live: resident users and live sessions of the broker, in two
    linear-probing hash tables over index-addressed arrays (see
    broker_live.h). Deletion shifts entries back, so there are no
    tombstones and probe chains stay short at load <= 1/2. */
#include "broker_live.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pres_ids.h"
#include "pres_log.h"

#define FNV_SEED 2166136261u

//  An index slot is 4 bytes: the top 8 bits of the entry's hash (a tag
//  that rules out most non-matching slots without reading the entry)
//  and the entry's index + 1 in the low 24 bits; 0 = empty. Hence at
//  most S_MAX_ENTRIES users and as many sessions.
#define S_IDX_BITS    24
#define S_IDX_MASK    ((1u << S_IDX_BITS) - 1)
#define S_MAX_ENTRIES (S_IDX_MASK - 1)

typedef struct {
    uint32_t *slots;  //  power-of-two array
    uint32_t mask;    //  slot count - 1
    uint32_t used;    //  occupied slots
    bool users;       //  indexes users (else sessions): where hashes are
} s_table_t;

struct broker_live {
    broker_user_t *users;        //  user entries
    uint32_t users_cap;          //  allocated entries
    uint32_t users_top;          //  entries ever used
    uint32_t users_free;         //  free list head or NONE
    s_table_t user_index;        //  id -> user entry
    broker_session_t *sessions;  //  session entries
    uint32_t sessions_cap;
    uint32_t sessions_top;
    uint32_t sessions_free;
    s_table_t session_index;  //  user id + session id -> entry
    pres_ids_t *ids;          //  every id of the entries
    uint32_t *wheel;          //  BROKER_WHEEL_SLOTS heads (NONE = empty)
    uint64_t wheel_at;        //  number of the last slot taken
};

//  ---- the deadline wheel

//  Take session out of its slot, if it is in one (wprev NONE: it is not).
static void
s_wheel_unlink(broker_live_t *self, broker_session_t *session)
{
    if (session->wprev == BROKER_LIVE_NONE)
        return;
    if (session->wprev & BROKER_WHEEL_HEAD)
        self->wheel[session->wprev & ~BROKER_WHEEL_HEAD] = session->wnext;
    else
        self->sessions[session->wprev].wnext = session->wnext;
    if (session->wnext != BROKER_LIVE_NONE)
        self->sessions[session->wnext].wprev = session->wprev;
    session->wprev = BROKER_LIVE_NONE;
    session->wnext = BROKER_LIVE_NONE;
}

void
broker_live_wheel_file(broker_live_t *self, uint32_t s, uint64_t at_ms)
{
    broker_session_t *session = broker_live_session(self, s);
    s_wheel_unlink(self, session);
    uint64_t n = at_ms / BROKER_WHEEL_SLOT_MS;
    if (n <= self->wheel_at)
        n = self->wheel_at + 1;
    uint32_t slot = (uint32_t)(n % BROKER_WHEEL_SLOTS);
    session->wnext = self->wheel[slot];
    session->wprev = BROKER_WHEEL_HEAD | slot;
    if (session->wnext != BROKER_LIVE_NONE)
        self->sessions[session->wnext].wprev = s;
    self->wheel[slot] = s;
}

uint32_t
broker_live_wheel_take(broker_live_t *self, uint64_t now_ms)
{
    //  Slot n spans [n, n + 1) * SLOT_MS: it has ended once now is past it.
    uint64_t last = now_ms / BROKER_WHEEL_SLOT_MS;
    if (last == 0)
        return BROKER_LIVE_NONE;
    last--;
    if (last < self->wheel_at) {
        pres_log_info("clock went back %" PRIu64
                      " ms: the deadline wheel starts again",
                      (self->wheel_at - last) * BROKER_WHEEL_SLOT_MS);
        self->wheel_at = last;
        return BROKER_LIVE_NONE;
    }
    uint64_t first = self->wheel_at + 1;
    if (last - self->wheel_at > BROKER_WHEEL_SLOTS)
        first = last - BROKER_WHEEL_SLOTS + 1;  //  over a lap: every slot
    uint32_t head = BROKER_LIVE_NONE, tail = BROKER_LIVE_NONE;
    for (uint64_t n = first; n <= last; n++) {
        uint32_t slot = (uint32_t)(n % BROKER_WHEEL_SLOTS);
        uint32_t s = self->wheel[slot];
        if (s == BROKER_LIVE_NONE)
            continue;
        self->wheel[slot] = BROKER_LIVE_NONE;
        if (tail == BROKER_LIVE_NONE)
            head = s;
        else
            self->sessions[tail].wnext = s;
        //  Unfile the slot's chain; its last one links to the next slot's.
        for (;;) {
            self->sessions[s].wprev = BROKER_LIVE_NONE;
            tail = s;
            if (self->sessions[s].wnext == BROKER_LIVE_NONE)
                break;
            s = self->sessions[s].wnext;
        }
    }
    self->wheel_at = last;
    return head;
}

uint64_t
broker_live_wheel_wait(const broker_live_t *self, uint64_t now_ms,
                       uint64_t horizon_ms)
{
    uint64_t end = (now_ms + horizon_ms) / BROKER_WHEEL_SLOT_MS;
    if (end > self->wheel_at + BROKER_WHEEL_SLOTS)
        end = self->wheel_at + BROKER_WHEEL_SLOTS;
    for (uint64_t n = self->wheel_at + 1; n <= end; n++)
        if (self->wheel[n % BROKER_WHEEL_SLOTS] != BROKER_LIVE_NONE) {
            uint64_t ends = (n + 1) * BROKER_WHEEL_SLOT_MS;
            return ends > now_ms ? ends - now_ms : 0;
        }
    return horizon_ms;
}

uint32_t
broker_live_hash(const char *s, size_t len, uint32_t seed)
{
    uint32_t h = seed ? seed : FNV_SEED;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    //  Final mix: FNV's low bits are weak for short keys.
    h ^= h >> 16;
    h *= 0x7feb352dU;
    h ^= h >> 15;
    return h;
}

static uint32_t
s_session_hash(const broker_user_t *user, const char *id, size_t len)
{
    //  Hash the user's raw hash with the session id so equal session ids of
    //  different users land apart.
    return broker_live_hash(id, len, user->hash | 1u);
}

static uint32_t
s_slot_idx(uint32_t slot)
{
    return (slot & S_IDX_MASK) - 1;
}

static bool
s_slot_tagged(uint32_t slot, uint32_t hash)
{
    return ((slot ^ hash) & ~S_IDX_MASK) == 0;
}

//  The full hash of entry idx of table t.
static uint32_t
s_entry_hash(const broker_live_t *self, const s_table_t *t, uint32_t idx)
{
    return t->users ? self->users[idx].hash : self->sessions[idx].hash;
}

static int
s_table_init(s_table_t *t, uint32_t slots, bool users)
{
    t->slots = calloc(slots, sizeof(*t->slots));
    if (!t->slots)
        return -1;
    t->mask = slots - 1;
    t->used = 0;
    t->users = users;
    return 0;
}

static void
s_table_insert(s_table_t *t, uint32_t hash, uint32_t idx)
{
    assert(idx < S_MAX_ENTRIES);
    uint32_t i = hash & t->mask;
    while (t->slots[i])
        i = (i + 1) & t->mask;
    t->slots[i] = (hash & ~S_IDX_MASK) | (idx + 1);
    t->used++;
}

//  Double the slot array when more than half full. 0 or -1.
static int
s_table_grow(const broker_live_t *self, s_table_t *t)
{
    if ((t->used + 1) * 2 <= t->mask + 1)
        return 0;
    s_table_t bigger;
    if (s_table_init(&bigger, (t->mask + 1) * 2, t->users)) {
        pres_log_error("calloc() failed growing a live index");
        return -1;
    }
    for (uint32_t i = 0; i <= t->mask; i++)
        if (t->slots[i]) {
            uint32_t idx = s_slot_idx(t->slots[i]);
            s_table_insert(&bigger, s_entry_hash(self, t, idx), idx);
        }
    free(t->slots);
    *t = bigger;
    return 0;
}

//  Remove the slot holding idx, shifting later members of the probe chain
//  back (Knuth's algorithm R).
static void
s_table_remove(const broker_live_t *self, s_table_t *t, uint32_t hash,
               uint32_t idx)
{
    uint32_t i = hash & t->mask;
    while ((t->slots[i] & S_IDX_MASK) != idx + 1) {
        assert(t->slots[i]);
        i = (i + 1) & t->mask;
    }
    uint32_t hole = i;
    while (true) {
        i = (i + 1) & t->mask;
        if (!t->slots[i])
            break;
        uint32_t home =
            s_entry_hash(self, t, s_slot_idx(t->slots[i])) & t->mask;
        //  Move i into the hole unless its home lies cyclically in
        //  (hole, i].
        bool stays =
            hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            t->slots[hole] = t->slots[i];
            hole = i;
        }
    }
    t->slots[hole] = 0;
    t->used--;
}

const char *
broker_live_id(const broker_live_t *self, uint32_t id)
{
    return pres_ids_get(self->ids, id);
}

broker_live_t *
broker_live_new(void)
{
    broker_live_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->users_free = BROKER_LIVE_NONE;
    self->sessions_free = BROKER_LIVE_NONE;
    self->ids = pres_ids_new();
    self->wheel = malloc(BROKER_WHEEL_SLOTS * sizeof(uint32_t));
    if (self->wheel)
        memset(self->wheel, 0xff, BROKER_WHEEL_SLOTS * sizeof(uint32_t));
    if (!self->ids || !self->wheel ||
        s_table_init(&self->user_index, 1024, true) ||
        s_table_init(&self->session_index, 1024, false)) {
        pres_log_error("calloc() failed creating the live set");
        broker_live_destroy(&self);
    }
    return self;
}

void
broker_live_destroy(broker_live_t **self_p)
{
    assert(self_p);
    broker_live_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t u = 0; u < self->users_top; u++)
        if (self->users[u].len)
            free(self->users[u].reason);
    for (uint32_t s = 0; s < self->sessions_top; s++)
        if (self->sessions[s].len)
            free(self->sessions[s].device);
    free(self->users);
    free(self->sessions);
    free(self->user_index.slots);
    free(self->session_index.slots);
    free(self->wheel);
    pres_ids_destroy(&self->ids);
    free(self);
    *self_p = NULL;
}

uint32_t
broker_live_user_find(broker_live_t *self, const char *id, size_t len)
{
    uint32_t hash = broker_live_hash(id, len, 0);
    s_table_t *t = &self->user_index;
    for (uint32_t i = hash & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
        if (!s_slot_tagged(t->slots[i], hash))
            continue;
        broker_user_t *user = &self->users[s_slot_idx(t->slots[i])];
        if (user->hash == hash && user->len == len &&
            memcmp(pres_ids_get(self->ids, user->id), id, len) == 0)
            return s_slot_idx(t->slots[i]);
    }
    return BROKER_LIVE_NONE;
}

uint32_t
broker_live_user_add(broker_live_t *self, const char *id, size_t len)
{
    assert(len > 0 && len <= PRES_ID_MAX);
    assert(broker_live_user_find(self, id, len) == BROKER_LIVE_NONE);
    if (s_table_grow(self, &self->user_index))
        return BROKER_LIVE_NONE;
    uint32_t ref = pres_ids_add(self->ids, id, len);
    if (ref == PRES_IDS_NONE)
        return BROKER_LIVE_NONE;
    uint32_t u = self->users_free;
    if (u != BROKER_LIVE_NONE)
        self->users_free = self->users[u].first;
    else {
        if (self->users_top == S_MAX_ENTRIES) {
            pres_log_error("live users full (%u)", S_MAX_ENTRIES);
            pres_ids_free(self->ids, ref);
            return BROKER_LIVE_NONE;
        }
        if (self->users_top == self->users_cap) {
            uint32_t cap = self->users_cap ? self->users_cap * 2 : 1024;
            broker_user_t *users =
                realloc(self->users, (size_t)cap * sizeof(*users));
            if (!users) {
                pres_log_error("realloc() failed growing live users");
                pres_ids_free(self->ids, ref);
                return BROKER_LIVE_NONE;
            }
            self->users = users;
            self->users_cap = cap;
        }
        u = self->users_top++;
    }
    broker_user_t *user = &self->users[u];
    memset(user, 0, sizeof(*user));
    user->id = ref;
    user->len = (uint8_t)len;
    user->account = PRES_ACC_ACTIVE;
    user->state = PRES_OFFLINE;
    user->stored_state = PRES_OFFLINE;
    user->first = BROKER_LIVE_NONE;
    user->hash = broker_live_hash(id, len, 0);
    s_table_insert(&self->user_index, user->hash, u);
    return u;
}

void
broker_live_user_remove(broker_live_t *self, uint32_t u)
{
    broker_user_t *user = broker_live_user(self, u);
    assert(user->nsessions == 0 && user->first == BROKER_LIVE_NONE);
    s_table_remove(self, &self->user_index, user->hash, u);
    free(user->reason);
    user->reason = NULL;
    pres_ids_free(self->ids, user->id);
    user->id = PRES_IDS_NONE;
    user->len = 0;
    user->first = self->users_free;
    self->users_free = u;
}

broker_user_t *
broker_live_user(broker_live_t *self, uint32_t u)
{
    assert(u < self->users_top && self->users[u].len);
    return &self->users[u];
}

int
broker_live_user_set_reason(broker_live_t *self, uint32_t u, const char *reason)
{
    broker_user_t *user = broker_live_user(self, u);
    free(user->reason);
    user->reason = NULL;
    if (reason && *reason) {
        user->reason = strdup(reason);
        if (!user->reason) {
            pres_log_error("strdup() failed for an account reason");
            return -1;
        }
    }
    return 0;
}

uint32_t
broker_live_session_find(broker_live_t *self, uint32_t u, const char *id,
                         size_t len)
{
    broker_user_t *user = broker_live_user(self, u);
    if (user->nsessions == 0)
        return BROKER_LIVE_NONE;
    uint32_t hash = s_session_hash(user, id, len);
    s_table_t *t = &self->session_index;
    for (uint32_t i = hash & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
        if (!s_slot_tagged(t->slots[i], hash))
            continue;
        broker_session_t *s = &self->sessions[s_slot_idx(t->slots[i])];
        if (s->hash == hash && s->user == u && s->len == len &&
            memcmp(pres_ids_get(self->ids, s->id), id, len) == 0)
            return s_slot_idx(t->slots[i]);
    }
    return BROKER_LIVE_NONE;
}

uint32_t
broker_live_session_add(broker_live_t *self, uint32_t u, const char *id,
                        size_t len)
{
    assert(len > 0 && len <= PRES_ID_MAX);
    if (s_table_grow(self, &self->session_index))
        return BROKER_LIVE_NONE;
    uint32_t ref = pres_ids_add(self->ids, id, len);
    if (ref == PRES_IDS_NONE)
        return BROKER_LIVE_NONE;
    uint32_t s = self->sessions_free;
    if (s != BROKER_LIVE_NONE)
        self->sessions_free = self->sessions[s].next;
    else {
        if (self->sessions_top == S_MAX_ENTRIES) {
            pres_log_error("live sessions full (%u)", S_MAX_ENTRIES);
            pres_ids_free(self->ids, ref);
            return BROKER_LIVE_NONE;
        }
        if (self->sessions_top == self->sessions_cap) {
            uint32_t cap = self->sessions_cap ? self->sessions_cap * 2 : 1024;
            broker_session_t *sessions =
                realloc(self->sessions, (size_t)cap * sizeof(*sessions));
            if (!sessions) {
                pres_log_error("realloc() failed growing live sessions");
                pres_ids_free(self->ids, ref);
                return BROKER_LIVE_NONE;
            }
            self->sessions = sessions;
            self->sessions_cap = cap;
        }
        s = self->sessions_top++;
    }
    broker_user_t *user = broker_live_user(self, u);
    broker_session_t *session = &self->sessions[s];
    memset(session, 0, sizeof(*session));
    session->id = ref;
    session->len = (uint8_t)len;
    session->state = PRES_ONLINE;
    session->flags = BROKER_S_NEW;
    session->user = u;
    session->prev = BROKER_LIVE_NONE;
    session->next = user->first;
    if (user->first != BROKER_LIVE_NONE)
        self->sessions[user->first].prev = s;
    user->first = s;
    user->nsessions++;
    session->hash = s_session_hash(user, id, len);
    s_table_insert(&self->session_index, session->hash, s);
    session->wprev = BROKER_LIVE_NONE;
    broker_live_wheel_file(self, s, 0);
    return s;
}

void
broker_live_session_remove(broker_live_t *self, uint32_t s)
{
    broker_session_t *session = broker_live_session(self, s);
    broker_user_t *user = broker_live_user(self, session->user);
    s_table_remove(self, &self->session_index, session->hash, s);
    s_wheel_unlink(self, session);
    if (session->prev != BROKER_LIVE_NONE)
        self->sessions[session->prev].next = session->next;
    else
        user->first = session->next;
    if (session->next != BROKER_LIVE_NONE)
        self->sessions[session->next].prev = session->prev;
    assert(user->nsessions > 0);
    user->nsessions--;
    free(session->device);
    session->device = NULL;
    pres_ids_free(self->ids, session->id);
    session->id = PRES_IDS_NONE;
    session->len = 0;
    session->next = self->sessions_free;
    self->sessions_free = s;
}

broker_session_t *
broker_live_session(broker_live_t *self, uint32_t s)
{
    assert(s < self->sessions_top && self->sessions[s].len);
    return &self->sessions[s];
}

int
broker_live_session_set_device(broker_live_t *self, uint32_t s,
                               const char *device)
{
    broker_session_t *session = broker_live_session(self, s);
    free(session->device);
    session->device = NULL;
    if (device && *device) {
        session->device = strdup(device);
        if (!session->device) {
            pres_log_error("strdup() failed for a device label");
            return -1;
        }
    }
    return 0;
}

bool
broker_live_user_valid(const broker_live_t *self, uint32_t u)
{
    return u < self->users_top && self->users[u].len;
}

pres_state_t
broker_live_user_state(broker_live_t *self, uint32_t u)
{
    broker_user_t *user = broker_live_user(self, u);
    pres_state_t state = PRES_OFFLINE;
    for (uint32_t s = user->first; s != BROKER_LIVE_NONE;
         s = self->sessions[s].next) {
        if (self->sessions[s].state == PRES_ONLINE)
            return PRES_ONLINE;
        state = PRES_AWAY;
    }
    return state;
}

size_t
broker_live_user_count(const broker_live_t *self)
{
    return self->user_index.used;
}

size_t
broker_live_session_count(const broker_live_t *self)
{
    return self->session_index.used;
}

uint32_t
broker_live_user_next(const broker_live_t *self, uint32_t u)
{
    for (u = u == BROKER_LIVE_NONE ? 0 : u + 1; u < self->users_top; u++)
        if (self->users[u].len)
            return u;
    return BROKER_LIVE_NONE;
}
