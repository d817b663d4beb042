/*  sweeper_tick: the deadline table of the sweeper. One malloc per session
    (the entry holds its own key), a binary min-heap of entry pointers on
    `due`, and two intrusive chained hashes: (user, session) -> entry and
    user -> the first entry of that user's session list. */
#include "sweeper_tick.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"

#define S_MIN_BUCKETS 1024

typedef struct s_entry s_entry_t;
struct s_entry {
    s_entry_t *hnext;   //  next in the session hash chain
    s_entry_t *uhnext;  //  next in the user hash chain (list heads only)
    s_entry_t *unext;   //  next session of the same user
    s_entry_t *uprev;   //  previous session of the same user
    uint64_t due;       //  ms: when fire() next considers it
    uint64_t deadline;  //  ms: the session's deadline as last told
    size_t slot;        //  index in the heap
    uint64_t hash;      //  hash of user and session
    uint64_t uhash;     //  hash of user
    uint8_t ulen;       //  user length
    uint8_t slen;       //  session length
    char key[];         //  user '\0' session '\0'
};

struct sweeper_tick {
    s_entry_t **heap;      //  min-heap on due
    size_t count;          //  entries in the heap (= sessions)
    size_t heap_cap;       //  allocated heap slots
    s_entry_t **sbuckets;  //  session hash
    size_t smask;          //  session buckets - 1
    s_entry_t **ubuckets;  //  user hash (list heads)
    size_t umask;          //  user buckets - 1
    size_t users;          //  distinct users
};

static uint64_t
s_hash(const char *s, size_t len, uint64_t h)
{
    //  FNV-1a; ids are short and trusted to be valid here.
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t
s_user_hash(const char *user, size_t ulen)
{
    return s_hash(user, ulen, 0xcbf29ce484222325ULL);
}

static uint64_t
s_session_hash(uint64_t uhash, const char *session, size_t slen)
{
    //  The user hash continued over a separator and the session id.
    return s_hash(session, slen, (uhash ^ 0x2f) * 0x100000001b3ULL);
}

static const char *
s_session_of(const s_entry_t *e)
{
    return e->key + e->ulen + 1;
}

//  ---------------------------------------------------------------------
//  Heap

static void
s_heap_place(sweeper_tick_t *self, s_entry_t *e, size_t slot)
{
    self->heap[slot] = e;
    e->slot = slot;
}

static void
s_heap_up(sweeper_tick_t *self, size_t slot)
{
    s_entry_t *e = self->heap[slot];
    while (slot > 0) {
        size_t parent = (slot - 1) / 2;
        if (self->heap[parent]->due <= e->due)
            break;
        s_heap_place(self, self->heap[parent], slot);
        slot = parent;
    }
    s_heap_place(self, e, slot);
}

static void
s_heap_down(sweeper_tick_t *self, size_t slot)
{
    s_entry_t *e = self->heap[slot];
    for (;;) {
        size_t child = 2 * slot + 1;
        if (child >= self->count)
            break;
        if (child + 1 < self->count &&
            self->heap[child + 1]->due < self->heap[child]->due)
            child++;
        if (e->due <= self->heap[child]->due)
            break;
        s_heap_place(self, self->heap[child], slot);
        slot = child;
    }
    s_heap_place(self, e, slot);
}

//  Re-establish order after e->due changed.
static void
s_heap_fix(sweeper_tick_t *self, s_entry_t *e)
{
    size_t slot = e->slot;
    s_heap_up(self, slot);
    if (e->slot == slot)
        s_heap_down(self, slot);
}

static int
s_heap_push(sweeper_tick_t *self, s_entry_t *e)
{
    if (self->count == self->heap_cap) {
        size_t cap = self->heap_cap ? self->heap_cap * 2 : S_MIN_BUCKETS;
        s_entry_t **heap = realloc(self->heap, cap * sizeof(*heap));
        if (!heap) {
            pres_log_error("realloc() of the deadline heap failed");
            return -1;
        }
        self->heap = heap;
        self->heap_cap = cap;
    }
    s_heap_place(self, e, self->count++);
    s_heap_up(self, e->slot);
    return 0;
}

static void
s_heap_delete(sweeper_tick_t *self, s_entry_t *e)
{
    size_t slot = e->slot;
    s_entry_t *last = self->heap[--self->count];
    if (last != e) {
        s_heap_place(self, last, slot);
        s_heap_fix(self, last);
    }
}

//  ---------------------------------------------------------------------
//  Hashes

static s_entry_t **
s_bucket_alloc(size_t n)
{
    s_entry_t **b = calloc(n, sizeof(*b));
    if (!b)
        pres_log_error("calloc() of %zu hash buckets failed", n);
    return b;
}

//  Double a table of n = mask + 1 buckets; `user` picks the chain link.
static int
s_rehash(s_entry_t ***buckets_p, size_t *mask_p, bool user)
{
    size_t n = (*mask_p + 1) * 2;
    s_entry_t **nb = s_bucket_alloc(n);
    if (!nb)
        return -1;
    s_entry_t **ob = *buckets_p;
    for (size_t i = 0; i <= *mask_p; i++) {
        s_entry_t *e = ob[i];
        while (e) {
            s_entry_t *next = user ? e->uhnext : e->hnext;
            size_t b = (user ? e->uhash : e->hash) & (n - 1);
            if (user) {
                e->uhnext = nb[b];
            } else {
                e->hnext = nb[b];
            }
            nb[b] = e;
            e = next;
        }
    }
    free(ob);
    *buckets_p = nb;
    *mask_p = n - 1;
    return 0;
}

static s_entry_t *
s_find(const sweeper_tick_t *self, const char *user, const char *session)
{
    size_t ulen = strlen(user), slen = strlen(session);
    uint64_t h = s_session_hash(s_user_hash(user, ulen), session, slen);
    for (s_entry_t *e = self->sbuckets[h & self->smask]; e; e = e->hnext)
        if (e->hash == h && e->ulen == ulen && e->slen == slen &&
            memcmp(e->key, user, ulen) == 0 &&
            memcmp(s_session_of(e), session, slen) == 0)
            return e;
    return NULL;
}

//  The first session of user, or NULL. *prev_p gets the predecessor in the
//  user hash chain (NULL if first) when prev_p is not NULL.
static s_entry_t *
s_find_user(const sweeper_tick_t *self, const char *user, size_t ulen,
            uint64_t uh, s_entry_t **prev_p)
{
    s_entry_t *prev = NULL;
    for (s_entry_t *e = self->ubuckets[uh & self->umask]; e;
         prev = e, e = e->uhnext)
        if (e->uhash == uh && e->ulen == ulen &&
            memcmp(e->key, user, ulen) == 0) {
            if (prev_p)
                *prev_p = prev;
            return e;
        }
    return NULL;
}

//  Replace the user-hash head `old` by `by` (NULL: unlink the user).
static void
s_user_replace_head(sweeper_tick_t *self, s_entry_t *old, s_entry_t *by)
{
    s_entry_t *prev = NULL;
    s_entry_t *head = s_find_user(self, old->key, old->ulen, old->uhash, &prev);
    assert(head == old);
    s_entry_t *next = old->uhnext;
    if (by) {
        by->uhnext = next;
        next = by;
    } else
        self->users--;
    if (prev)
        prev->uhnext = next;
    else
        self->ubuckets[old->uhash & self->umask] = next;
    old->uhnext = NULL;
}

static void
s_unlink(sweeper_tick_t *self, s_entry_t *e)
{
    //  Session hash.
    s_entry_t **pp = &self->sbuckets[e->hash & self->smask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    //  User list, and the user hash when e was the head.
    if (e->uprev)
        e->uprev->unext = e->unext;
    else
        s_user_replace_head(self, e, e->unext);
    if (e->unext)
        e->unext->uprev = e->uprev;
    s_heap_delete(self, e);
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
    self->sbuckets = s_bucket_alloc(S_MIN_BUCKETS);
    self->ubuckets = s_bucket_alloc(S_MIN_BUCKETS);
    if (!self->sbuckets || !self->ubuckets) {
        sweeper_tick_destroy(&self);
        return NULL;
    }
    self->smask = self->umask = S_MIN_BUCKETS - 1;
    return self;
}

static void
s_free_entries(sweeper_tick_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        free(self->heap[i]);
    self->count = 0;
    self->users = 0;
}

void
sweeper_tick_destroy(sweeper_tick_t **self_p)
{
    assert(self_p);
    sweeper_tick_t *self = *self_p;
    if (!self)
        return;
    s_free_entries(self);
    free(self->heap);
    free(self->sbuckets);
    free(self->ubuckets);
    free(self);
    *self_p = NULL;
}

void
sweeper_tick_clear(sweeper_tick_t *self)
{
    assert(self);
    s_free_entries(self);
    memset(self->sbuckets, 0, (self->smask + 1) * sizeof(s_entry_t *));
    memset(self->ubuckets, 0, (self->umask + 1) * sizeof(s_entry_t *));
}

int
sweeper_tick_set(sweeper_tick_t *self, const char *user, const char *session,
                 uint64_t deadline)
{
    assert(self && user && session);
    s_entry_t *e = s_find(self, user, session);
    if (e) {
        e->deadline = e->due = deadline;
        s_heap_fix(self, e);
        return 0;
    }
    size_t ulen = strlen(user), slen = strlen(session);
    assert(ulen > 0 && ulen <= UINT8_MAX && slen > 0 && slen <= UINT8_MAX);
    if (self->count + 1 > self->smask + 1 &&
        s_rehash(&self->sbuckets, &self->smask, false) != 0)
        return -1;
    if (self->users + 1 > self->umask + 1 &&
        s_rehash(&self->ubuckets, &self->umask, true) != 0)
        return -1;
    e = malloc(sizeof(*e) + ulen + slen + 2);
    if (!e) {
        pres_log_error("malloc() of a session entry failed");
        return -1;
    }
    memset(e, 0, sizeof(*e));
    memcpy(e->key, user, ulen + 1);
    memcpy(e->key + ulen + 1, session, slen + 1);
    e->ulen = (uint8_t)ulen;
    e->slen = (uint8_t)slen;
    e->uhash = s_user_hash(user, ulen);
    e->hash = s_session_hash(e->uhash, session, slen);
    e->deadline = e->due = deadline;
    if (s_heap_push(self, e) != 0) {
        free(e);
        return -1;
    }
    size_t b = e->hash & self->smask;
    e->hnext = self->sbuckets[b];
    self->sbuckets[b] = e;
    //  New sessions go to the head of the user's list.
    s_entry_t *head = s_find_user(self, user, ulen, e->uhash, NULL);
    if (head) {
        s_user_replace_head(self, head, e);
        e->unext = head;
        head->uprev = e;
    } else {
        b = e->uhash & self->umask;
        e->uhnext = self->ubuckets[b];
        self->ubuckets[b] = e;
        self->users++;
    }
    return 0;
}

bool
sweeper_tick_remove(sweeper_tick_t *self, const char *user, const char *session)
{
    assert(self && user && session);
    s_entry_t *e = s_find(self, user, session);
    if (!e)
        return false;
    s_unlink(self, e);
    free(e);
    return true;
}

size_t
sweeper_tick_remove_user(sweeper_tick_t *self, const char *user)
{
    assert(self && user);
    size_t ulen = strlen(user), n = 0;
    s_entry_t *e;
    while ((e = s_find_user(self, user, ulen, s_user_hash(user, ulen), NULL))) {
        s_unlink(self, e);
        free(e);
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
    for (s_entry_t *e =
             s_find_user(self, user, ulen, s_user_hash(user, ulen), NULL);
         e; e = e->unext)
        n++;
    return n;
}

uint64_t
sweeper_tick_deadline(const sweeper_tick_t *self, const char *user,
                      const char *session)
{
    assert(self && user && session);
    s_entry_t *e = s_find(self, user, session);
    return e ? e->deadline : 0;
}

uint64_t
sweeper_tick_next_due(const sweeper_tick_t *self)
{
    assert(self);
    return self->count ? self->heap[0]->due : 0;
}

bool
sweeper_tick_notice(sweeper_tick_t *self, const char *user, const char *session,
                    uint64_t deadline, uint64_t now, uint64_t skew_ms)
{
    assert(self && user && session);
    s_entry_t *e = s_find(self, user, session);
    if (!e)
        return false;
    if (deadline == 0) {
        s_unlink(self, e);
        free(e);
        return true;
    }
    e->deadline = deadline;
    e->due = deadline > now ? deadline : now + skew_ms;
    s_heap_fix(self, e);
    return true;
}

size_t
sweeper_tick_fire(sweeper_tick_t *self, uint64_t now, uint64_t retry_ms,
                  size_t max, sweeper_tick_fire_fn *fire, void *arg)
{
    assert(self && fire);
    size_t sent = 0;
    while (self->count && self->heap[0]->due <= now &&
           (max == 0 || sent < max)) {
        s_entry_t *e = self->heap[0];
        if (fire(arg, e->key, s_session_of(e), e->deadline) != 0)
            break;
        sent++;
        //  Due again only if no answer (change or notice) comes in time.
        e->due = now + (retry_ms ? retry_ms : 1);
        s_heap_down(self, 0);
    }
    return sent;
}

bool
sweeper_tick_check(const sweeper_tick_t *self)
{
    assert(self);
    size_t users = 0, linked = 0;
    for (size_t i = 0; i < self->count; i++) {
        const s_entry_t *e = self->heap[i];
        if (e->slot != i)
            return false;
        if (i > 0 && self->heap[(i - 1) / 2]->due > e->due)
            return false;
        if (s_find(self, e->key, s_session_of(e)) != e)
            return false;
        if (!e->uprev) {
            users++;
            if (s_find_user(self, e->key, e->ulen, e->uhash, NULL) != e)
                return false;
        } else if (e->uprev->unext != e)
            return false;
    }
    for (size_t b = 0; b <= self->smask; b++)
        for (const s_entry_t *e = self->sbuckets[b]; e; e = e->hnext)
            linked++;
    return users == self->users && linked == self->count;
}
