/*  sweeper_tick: the deadline table of the sweeper, compact: entries in
    one array indexed by uint32 (no malloc per session), their keys (user
    '\0' session) in an id arena (pres_ids), a binary min-heap of entry
    indices on `due`, and two open-addressing tables of entry indices
    (linear probing, backward-shift deletion, load <= 3/4): (user,
    session) -> entry and user -> the first entry of that user's session
    list. About 100 B per session (90 before the send mark) instead of
    ~165. */
#include "sweeper_tick.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pres_ids.h"
#include "pres_log.h"

#define S_MIN_SLOTS 1024
#define S_NONE      UINT32_MAX

typedef struct {
    uint64_t due;       //  ms: when fire() next considers it
    uint64_t deadline;  //  ms: the session's deadline as last told
    uint32_t key;       //  pres_ids ref: user '\0' session
    uint32_t slot;      //  index in the heap
    uint32_t hash;      //  hash of user and session
    uint32_t uhash;     //  hash of user
    uint32_t unext;     //  next session of the same user (free list link
                        //  of free entries), or S_NONE
    uint32_t uprev;     //  previous session of the same user, or S_NONE
    uint32_t gen;       //  generation of the last set (snapshot reloads)
    uint32_t first;     //  send number of its first unanswered expire,
                        //  0 = none outstanding
    uint32_t last;      //  send number of its last unanswered expire
    uint8_t ulen;       //  user length; 0 = free entry
    uint8_t slen;       //  session length
} s_entry_t;

//  An open-addressing table of entry indices + 1 (0 = empty slot).
typedef struct {
    uint32_t *slots;  //  power-of-two array
    uint32_t mask;    //  slot count - 1
    uint32_t used;    //  occupied slots
} s_table_t;

struct sweeper_tick {
    s_entry_t *entries;  //  entry array
    uint32_t cap;        //  allocated entries
    uint32_t top;        //  entries ever used
    uint32_t free;       //  free entry list head or S_NONE
    uint32_t *heap;      //  min-heap of entry indices on due
    uint32_t count;      //  entries in the heap (= sessions)
    uint32_t heap_cap;   //  allocated heap slots
    s_table_t sindex;    //  (user, session) -> entry
    s_table_t uindex;    //  user -> first entry of the user's list
    pres_ids_t *keys;    //  the entries' keys
    uint32_t gen;        //  current generation (sweeper_tick_mark)
    uint32_t sends;      //  send number of the last expire sent (never 0)
    uint32_t answered;   //  highest send number answered (0: none yet)
    uint32_t probe;      //  send number of the probe out (0: none)
    uint32_t verdict;    //  send number of a probe answered before any
                         //  expire sent before it (0: none)
    bool heard;          //  an answer came since sweeper_tick_heard
    uint64_t heard_at;   //  ms: when the last answer was heard (0: never)
    uint64_t probe_at;   //  ms: when the probe went out
};

//  Send numbers wrap: a is before b if b is less than 2^31 ahead of it.
static bool
s_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

//  Entry e (found by its session) got an answer: a change or a notice
//  naming it. If expires of it were outstanding, the broker answered the
//  first of them that reached it and, answering one connection in order,
//  every expire sent before that one. Which one it was is not told: the
//  first is assumed (never too late a send number, so nothing is taken
//  for lost too early). A probe (sweeper_tick_fire) is the exception:
//  answered first, before the expires sent ahead of it, it may have been
//  answered for itself (they were lost) or for its first send (they are
//  coming): the next answer or a silence tells.
static void
s_answer(sweeper_tick_t *self, s_entry_t *e)
{
    if (!e->first)
        return;
    if (!self->answered || s_before(self->answered, e->first))
        self->answered = e->first;
    if (self->probe && e->last == self->probe) {
        self->verdict = self->probe;
        self->probe = 0;
    } else if (self->verdict && s_before(e->first, self->verdict))
        self->verdict = 0;  //  one sent before it came: nothing was lost
    self->heard = true;
    e->first = e->last = 0;
}

static uint32_t
s_hash(const char *s, size_t len, uint32_t h)
{
    //  FNV-1a with a final mix (the low bits pick the slot); ids are short
    //  and trusted to be valid here.
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x7feb352dU;
    h ^= h >> 15;
    return h;
}

static uint32_t
s_user_hash(const char *user, size_t ulen)
{
    return s_hash(user, ulen, 2166136261u);
}

static uint32_t
s_session_hash(uint32_t uhash, const char *session, size_t slen)
{
    //  The user hash seeds the session's: equal session ids of different
    //  users land apart.
    return s_hash(session, slen, (uhash ^ 0x2f) * 16777619u);
}

static const char *
s_user_of(const sweeper_tick_t *self, const s_entry_t *e)
{
    return pres_ids_get(self->keys, e->key);
}

static const char *
s_session_of(const sweeper_tick_t *self, const s_entry_t *e)
{
    return pres_ids_get(self->keys, e->key) + e->ulen + 1;
}

//  ---------------------------------------------------------------------
//  Heap

static void
s_heap_place(sweeper_tick_t *self, uint32_t i, uint32_t slot)
{
    self->heap[slot] = i;
    self->entries[i].slot = slot;
}

static void
s_heap_up(sweeper_tick_t *self, uint32_t slot)
{
    uint32_t i = self->heap[slot];
    uint64_t due = self->entries[i].due;
    while (slot > 0) {
        uint32_t parent = (slot - 1) / 2;
        if (self->entries[self->heap[parent]].due <= due)
            break;
        s_heap_place(self, self->heap[parent], slot);
        slot = parent;
    }
    s_heap_place(self, i, slot);
}

static void
s_heap_down(sweeper_tick_t *self, uint32_t slot)
{
    uint32_t i = self->heap[slot];
    uint64_t due = self->entries[i].due;
    for (;;) {
        uint32_t child = 2 * slot + 1;
        if (child >= self->count)
            break;
        if (child + 1 < self->count &&
            self->entries[self->heap[child + 1]].due <
                self->entries[self->heap[child]].due)
            child++;
        if (due <= self->entries[self->heap[child]].due)
            break;
        s_heap_place(self, self->heap[child], slot);
        slot = child;
    }
    s_heap_place(self, i, slot);
}

//  Re-establish order after entry i's due changed.
static void
s_heap_fix(sweeper_tick_t *self, uint32_t i)
{
    uint32_t slot = self->entries[i].slot;
    s_heap_up(self, slot);
    if (self->entries[i].slot == slot)
        s_heap_down(self, slot);
}

static int
s_heap_reserve(sweeper_tick_t *self)
{
    if (self->count < self->heap_cap)
        return 0;
    uint32_t cap = self->heap_cap ? self->heap_cap * 2 : S_MIN_SLOTS;
    uint32_t *heap = realloc(self->heap, (size_t)cap * sizeof(*heap));
    if (!heap) {
        pres_log_error("realloc() of the deadline heap failed");
        return -1;
    }
    self->heap = heap;
    self->heap_cap = cap;
    return 0;
}

static void
s_heap_push(sweeper_tick_t *self, uint32_t i)
{
    assert(self->count < self->heap_cap);
    s_heap_place(self, i, self->count++);
    s_heap_up(self, self->entries[i].slot);
}

static void
s_heap_delete(sweeper_tick_t *self, uint32_t i)
{
    uint32_t slot = self->entries[i].slot;
    uint32_t last = self->heap[--self->count];
    if (last != i) {
        s_heap_place(self, last, slot);
        s_heap_fix(self, last);
    }
}

//  ---------------------------------------------------------------------
//  Index tables

static int
s_table_init(s_table_t *t, uint32_t slots)
{
    t->slots = calloc(slots, sizeof(*t->slots));
    if (!t->slots) {
        pres_log_error("calloc() of %u index slots failed", slots);
        return -1;
    }
    t->mask = slots - 1;
    t->used = 0;
    return 0;
}

//  The hash an index slot is placed by: the session hash (sindex) or the
//  user hash (uindex).
static uint32_t
s_home_hash(const sweeper_tick_t *self, const s_table_t *t, uint32_t i)
{
    return t == &self->uindex ? self->entries[i].uhash : self->entries[i].hash;
}

static void
s_table_insert(const sweeper_tick_t *self, s_table_t *t, uint32_t i)
{
    uint32_t k = s_home_hash(self, t, i) & t->mask;
    while (t->slots[k])
        k = (k + 1) & t->mask;
    t->slots[k] = i + 1;
    t->used++;
}

//  Double the slots when one more would pass 3/4 full. 0 or -1.
static int
s_table_grow(sweeper_tick_t *self, s_table_t *t)
{
    if ((uint64_t)(t->used + 1) * 4 <= (uint64_t)(t->mask + 1) * 3)
        return 0;
    s_table_t old = *t;
    if (s_table_init(t, (old.mask + 1) * 2)) {
        *t = old;
        return -1;
    }
    for (uint32_t k = 0; k <= old.mask; k++)
        if (old.slots[k])
            s_table_insert(self, t, old.slots[k] - 1);
    free(old.slots);
    return 0;
}

//  Remove the slot at k, shifting later members of the probe chain back
//  (Knuth's algorithm R).
static void
s_table_remove_at(const sweeper_tick_t *self, s_table_t *t, uint32_t k)
{
    uint32_t hole = k;
    for (;;) {
        k = (k + 1) & t->mask;
        if (!t->slots[k])
            break;
        uint32_t home = s_home_hash(self, t, t->slots[k] - 1) & t->mask;
        bool stays =
            hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
        if (!stays) {
            t->slots[hole] = t->slots[k];
            hole = k;
        }
    }
    t->slots[hole] = 0;
    t->used--;
}

//  The sindex slot holding entry i.
static uint32_t
s_slot_of(const sweeper_tick_t *self, const s_table_t *t, uint32_t i)
{
    uint32_t k = s_home_hash(self, t, i) & t->mask;
    while (t->slots[k] != i + 1) {
        assert(t->slots[k]);
        k = (k + 1) & t->mask;
    }
    return k;
}

static uint32_t
s_find(const sweeper_tick_t *self, const char *user, const char *session)
{
    size_t ulen = strlen(user), slen = strlen(session);
    uint32_t h = s_session_hash(s_user_hash(user, ulen), session, slen);
    const s_table_t *t = &self->sindex;
    for (uint32_t k = h & t->mask; t->slots[k]; k = (k + 1) & t->mask) {
        const s_entry_t *e = &self->entries[t->slots[k] - 1];
        if (e->hash == h && e->ulen == ulen && e->slen == slen) {
            const char *key = s_user_of(self, e);
            if (memcmp(key, user, ulen) == 0 &&
                memcmp(key + ulen + 1, session, slen) == 0)
                return t->slots[k] - 1;
        }
    }
    return S_NONE;
}

//  The uindex slot of user (its first session there), or S_NONE.
static uint32_t
s_find_user(const sweeper_tick_t *self, const char *user, size_t ulen,
            uint32_t uh)
{
    const s_table_t *t = &self->uindex;
    for (uint32_t k = uh & t->mask; t->slots[k]; k = (k + 1) & t->mask) {
        const s_entry_t *e = &self->entries[t->slots[k] - 1];
        if (e->uhash == uh && e->ulen == ulen &&
            memcmp(s_user_of(self, e), user, ulen) == 0)
            return k;
    }
    return S_NONE;
}

//  Take entry i out of both indexes, its user's list and the heap, and
//  free it.
static void
s_unlink(sweeper_tick_t *self, uint32_t i)
{
    s_entry_t *e = &self->entries[i];
    s_table_remove_at(self, &self->sindex, s_slot_of(self, &self->sindex, i));
    if (e->uprev != S_NONE)
        self->entries[e->uprev].unext = e->unext;
    else {
        //  e heads its user's list: the next session takes its slot (same
        //  user, same hash), or the user goes.
        uint32_t k = s_slot_of(self, &self->uindex, i);
        if (e->unext != S_NONE)
            self->uindex.slots[k] = e->unext + 1;
        else
            s_table_remove_at(self, &self->uindex, k);
    }
    if (e->unext != S_NONE)
        self->entries[e->unext].uprev = e->uprev;
    s_heap_delete(self, i);
    pres_ids_free(self->keys, e->key);
    e->key = PRES_IDS_NONE;
    e->ulen = 0;
    e->unext = self->free;
    self->free = i;
}

//  ---------------------------------------------------------------------

sweeper_tick_t *
sweeper_tick_new(void)
{
    sweeper_tick_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() of sweeper_tick failed");
        return NULL;
    }
    self->free = S_NONE;
    self->keys = pres_ids_new();
    if (!self->keys || s_table_init(&self->sindex, S_MIN_SLOTS) ||
        s_table_init(&self->uindex, S_MIN_SLOTS)) {
        sweeper_tick_destroy(&self);
        return NULL;
    }
    return self;
}

void
sweeper_tick_destroy(sweeper_tick_t **self_p)
{
    assert(self_p);
    sweeper_tick_t *self = *self_p;
    if (!self)
        return;
    pres_ids_destroy(&self->keys);
    free(self->entries);
    free(self->heap);
    free(self->sindex.slots);
    free(self->uindex.slots);
    free(self);
    *self_p = NULL;
}

void
sweeper_tick_clear(sweeper_tick_t *self)
{
    assert(self);
    //  Unlink the last heap entry until none is left: keys and entries go
    //  back to their free lists, the arrays are kept for the reload.
    while (self->count)
        s_unlink(self, self->heap[self->count - 1]);
}

void
sweeper_tick_mark(sweeper_tick_t *self)
{
    assert(self);
    self->gen++;
}

size_t
sweeper_tick_sweep(sweeper_tick_t *self)
{
    assert(self);
    size_t removed = 0;
    for (uint32_t i = 0; i < self->top; i++)
        if (self->entries[i].ulen && self->entries[i].gen != self->gen) {
            s_unlink(self, i);
            removed++;
        }
    return removed;
}

//  A free entry (array grown when needed) or S_NONE (logged).
static uint32_t
s_entry_alloc(sweeper_tick_t *self)
{
    uint32_t i = self->free;
    if (i != S_NONE) {
        self->free = self->entries[i].unext;
        return i;
    }
    if (self->top == self->cap) {
        if (self->cap >= S_NONE / 2) {
            pres_log_error("deadline table full (%u entries)", self->cap);
            return S_NONE;
        }
        uint32_t cap = self->cap ? self->cap * 2 : S_MIN_SLOTS;
        s_entry_t *entries =
            realloc(self->entries, (size_t)cap * sizeof(*entries));
        if (!entries) {
            pres_log_error("realloc() of the session entries failed");
            return S_NONE;
        }
        self->entries = entries;
        self->cap = cap;
    }
    return self->top++;
}

int
sweeper_tick_set(sweeper_tick_t *self, const char *user, const char *session,
                 uint64_t deadline)
{
    assert(self && user && session);
    uint32_t i = s_find(self, user, session);
    if (i != S_NONE) {
        s_answer(self, &self->entries[i]);
        self->entries[i].deadline = self->entries[i].due = deadline;
        self->entries[i].gen = self->gen;
        s_heap_fix(self, i);
        return 0;
    }
    size_t ulen = strlen(user), slen = strlen(session);
    assert(ulen > 0 && slen > 0 && ulen + slen + 1 <= PRES_IDS_MAX);
    //  Everything that can fail first, so a failure changes nothing.
    if (s_table_grow(self, &self->sindex) ||
        s_table_grow(self, &self->uindex) || s_heap_reserve(self))
        return -1;
    char key[PRES_IDS_MAX + 1];
    memcpy(key, user, ulen + 1);
    memcpy(key + ulen + 1, session, slen);
    uint32_t ref = pres_ids_add(self->keys, key, ulen + 1 + slen);
    if (ref == PRES_IDS_NONE)
        return -1;
    i = s_entry_alloc(self);
    if (i == S_NONE) {
        pres_ids_free(self->keys, ref);
        return -1;
    }
    s_entry_t *e = &self->entries[i];
    memset(e, 0, sizeof(*e));
    e->key = ref;
    e->ulen = (uint8_t)ulen;
    e->slen = (uint8_t)slen;
    e->uhash = s_user_hash(user, ulen);
    e->hash = s_session_hash(e->uhash, session, slen);
    e->deadline = e->due = deadline;
    e->gen = self->gen;
    e->uprev = S_NONE;
    s_heap_push(self, i);
    s_table_insert(self, &self->sindex, i);
    //  New sessions go to the head of the user's list.
    uint32_t k = s_find_user(self, user, ulen, e->uhash);
    if (k != S_NONE) {
        uint32_t head = self->uindex.slots[k] - 1;
        self->uindex.slots[k] = i + 1;
        e->unext = head;
        self->entries[head].uprev = i;
    } else {
        e->unext = S_NONE;
        s_table_insert(self, &self->uindex, i);
    }
    return 0;
}

bool
sweeper_tick_remove(sweeper_tick_t *self, const char *user, const char *session)
{
    assert(self && user && session);
    uint32_t i = s_find(self, user, session);
    if (i == S_NONE)
        return false;
    s_answer(self, &self->entries[i]);
    s_unlink(self, i);
    return true;
}

size_t
sweeper_tick_remove_user(sweeper_tick_t *self, const char *user)
{
    assert(self && user);
    size_t ulen = strlen(user), n = 0;
    uint32_t uh = s_user_hash(user, ulen), k;
    while ((k = s_find_user(self, user, ulen, uh)) != S_NONE) {
        s_answer(self, &self->entries[self->uindex.slots[k] - 1]);
        s_unlink(self, self->uindex.slots[k] - 1);
        n++;
    }
    return n;
}

size_t
sweeper_tick_size(const sweeper_tick_t *self)
{
    assert(self);
    return self->count;
}

size_t
sweeper_tick_user_sessions(const sweeper_tick_t *self, const char *user)
{
    assert(self && user);
    size_t ulen = strlen(user), n = 0;
    uint32_t k = s_find_user(self, user, ulen, s_user_hash(user, ulen));
    if (k == S_NONE)
        return 0;
    for (uint32_t i = self->uindex.slots[k] - 1; i != S_NONE;
         i = self->entries[i].unext)
        n++;
    return n;
}

uint64_t
sweeper_tick_deadline(const sweeper_tick_t *self, const char *user,
                      const char *session)
{
    assert(self && user && session);
    uint32_t i = s_find(self, user, session);
    return i != S_NONE ? self->entries[i].deadline : 0;
}

uint64_t
sweeper_tick_next_due(const sweeper_tick_t *self)
{
    assert(self);
    return self->count ? self->entries[self->heap[0]].due : 0;
}

bool
sweeper_tick_notice(sweeper_tick_t *self, const char *user, const char *session,
                    uint64_t deadline, uint64_t now, uint64_t skew_ms)
{
    assert(self && user && session);
    uint32_t i = s_find(self, user, session);
    if (i == S_NONE)
        return false;
    s_entry_t *e = &self->entries[i];
    s_answer(self, e);
    if (deadline == 0) {
        s_unlink(self, i);
        return true;
    }
    e->deadline = deadline;
    e->due = deadline > now ? deadline : now + skew_ms;
    s_heap_fix(self, i);
    return true;
}

void
sweeper_tick_heard(sweeper_tick_t *self, uint64_t now)
{
    assert(self);
    if (self->heard) {
        self->heard_at = now;
        self->heard = false;
    }
}

//  Is outstanding entry e's expire lost? Yes if one sent after it was
//  answered (in order, it would have been answered first), or if a probe
//  sent after it was answered and nothing more for retry_ms.
static bool
s_lost(const sweeper_tick_t *self, const s_entry_t *e, uint64_t now,
       uint64_t retry_ms)
{
    if (self->answered && s_before(e->last, self->answered))
        return true;
    return self->verdict && s_before(e->last, self->verdict) &&
           self->heard_at + retry_ms <= now;
}

size_t
sweeper_tick_fire(sweeper_tick_t *self, uint64_t now, uint64_t retry_ms,
                  size_t max, sweeper_tick_fire_fn *fire, void *arg)
{
    assert(self && fire);
    size_t sent = 0;
    if (!retry_ms)
        retry_ms = 1;
    while (self->count && self->entries[self->heap[0]].due <= now &&
           (max == 0 || sent < max)) {
        uint32_t i = self->heap[0];
        s_entry_t *e = &self->entries[i];
        bool probe = false;
        if (e->first && !s_lost(self, e, now, retry_ms)) {
            //  Unanswered for retry_ms. While answers come (one within
            //  retry_ms), it is in the pipe behind them: wait retry_ms
            //  past the last one.
            uint64_t wait = self->heard_at + retry_ms;
            //  None came for that long: the broker is slow, or it lost
            //  what it had not answered (a restart). One expire goes
            //  again as a probe, the others wait for its answer (or for
            //  retry_ms): sending every outstanding one again would make a
            //  slow broker answer each twice and fall further behind.
            if (wait <= now && self->probe && self->probe_at + retry_ms > now)
                wait = self->probe_at + retry_ms;
            if (wait > now) {
                e->due = wait;
                s_heap_down(self, 0);
                continue;
            }
            probe = true;
        }
        if (fire(arg, s_user_of(self, e), s_session_of(self, e), e->deadline) !=
            0)
            break;
        sent++;
        //  Looked at again only if no answer (change or notice) comes in
        //  time. fire() does not touch the table: e is still valid.
        if (++self->sends == 0)
            self->sends = 1;
        if (!e->first)
            e->first = self->sends;
        e->last = self->sends;
        if (probe) {
            self->probe = self->sends;
            self->probe_at = now;
        }
        e->due = now + retry_ms;
        s_heap_down(self, 0);
    }
    return sent;
}

bool
sweeper_tick_check(const sweeper_tick_t *self)
{
    assert(self);
    uint32_t users = 0;
    for (uint32_t slot = 0; slot < self->count; slot++) {
        uint32_t i = self->heap[slot];
        const s_entry_t *e = &self->entries[i];
        if (i >= self->top || !e->ulen || e->slot != slot)
            return false;
        if (slot > 0 && self->entries[self->heap[(slot - 1) / 2]].due > e->due)
            return false;
        if (s_find(self, s_user_of(self, e), s_session_of(self, e)) != i)
            return false;
        if (e->uprev == S_NONE) {
            users++;
            uint32_t k =
                s_find_user(self, s_user_of(self, e), e->ulen, e->uhash);
            if (k == S_NONE || self->uindex.slots[k] != i + 1)
                return false;
        } else if (self->entries[e->uprev].unext != i)
            return false;
    }
    return users == self->uindex.used && self->sindex.used == self->count;
}
