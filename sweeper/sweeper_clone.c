/*  sweeper_clone: snapshot loading and the changes state machine of the
    sweeper (see sweeper_clone.h). The snapshot reply is walked with the
    strict pres_mp reader; changes and notices use the pres_msg codec. */
#include "sweeper_clone.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"
#include "pres_mp.h"
#include "pres_msg.h"

struct sweeper_clone {
    sweeper_tick_t *tick;      //  borrowed: the deadline table we fill
    bool synced;               //  a snapshot is loaded and no gap since
    bool fresh;                //  no change applied since the snapshot
    bool paging;               //  between the pages of a snapshot
    uint64_t seq;              //  last change held
    uint32_t pages;            //  pages loaded (paging)
    uint64_t first_seq;        //  seq of the first page (paging)
    uint64_t last_seq;         //  seq of the latest page (paging)
    uint64_t catchup_seq;      //  changes up to here replay over pages
    uint64_t term;             //  leader term of the last change (fail-over)
    uint64_t pending_head;     //  broker head we have yet to reach (0: none)
    const char *why;           //  reason of the last desync
    sweeper_clone_stats_t st;  //  counters
    pres_ratelimit_t rl;       //  log limit for bad frames
};

sweeper_clone_t *
sweeper_clone_new(sweeper_tick_t *tick)
{
    assert(tick);
    sweeper_clone_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() of sweeper_clone failed");
        return NULL;
    }
    self->tick = tick;
    self->why = "";
    return self;
}

void
sweeper_clone_destroy(sweeper_clone_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

//  Is the string s (len bytes) equal to the C string lit?
static bool
s_is(const char *s, uint32_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

//  Copy an id string into dst (PRES_ID_MAX + 1). 0 or -1 if invalid.
static int
s_read_id(pres_mp_reader_t *r, char *dst)
{
    const char *s;
    uint32_t len;
    if (pres_mp_read_str(r, &s, &len) != 0 || !pres_id_valid(s, len))
        return -1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

//  One element of `live`: {session, state?, deadline, ...}.
static int
s_load_session(sweeper_clone_t *self, pres_mp_reader_t *r, const char *user)
{
    uint32_t n;
    char session[PRES_ID_MAX + 1] = "";
    uint64_t deadline = 0;
    bool has_deadline = false;
    if (pres_mp_read_map(r, &n) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (pres_mp_read_str(r, &k, &klen) != 0)
            return -1;
        if (s_is(k, klen, "session")) {
            if (s_read_id(r, session) != 0)
                return -1;
        } else if (s_is(k, klen, "deadline")) {
            if (pres_mp_read_uint(r, &deadline) != 0)
                return -1;
            has_deadline = true;
        } else if (pres_mp_skip(r) != 0)
            return -1;
    }
    if (!*session || !has_deadline)
        return -1;
    return sweeper_tick_set(self->tick, user, session, deadline);
}

//  One element of `users`: finds `user` first (any key order), then loads
//  the `live` array.
static int
s_load_user(sweeper_clone_t *self, pres_mp_reader_t *r)
{
    uint32_t n;
    char user[PRES_ID_MAX + 1] = "";
    pres_mp_reader_t start = *r;
    for (int pass = 0; pass < 2; pass++) {
        *r = start;
        if (pres_mp_read_map(r, &n) != 0)
            return -1;
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            uint32_t klen, count;
            if (pres_mp_read_str(r, &k, &klen) != 0)
                return -1;
            if (pass == 0 && s_is(k, klen, "user")) {
                if (s_read_id(r, user) != 0)
                    return -1;
            } else if (pass == 1 && s_is(k, klen, "live")) {
                if (pres_mp_read_array(r, &count) != 0)
                    return -1;
                for (uint32_t j = 0; j < count; j++)
                    if (s_load_session(self, r, user) != 0)
                        return -1;
            } else if (pres_mp_skip(r) != 0)
                return -1;
        }
        if (!*user)
            return -1;
    }
    return 0;
}

//  Walk a snapshot reply or page into the table (adding to it): its seq,
//  and its `next` cursor into next ("" when absent; next may be NULL when
//  the reply must be whole). 0 or -1 if malformed.
static int
s_load(sweeper_clone_t *self, const void *buf, size_t len, uint64_t *seq,
       char *next, size_t cap)
{
    pres_mp_reader_t r;
    uint32_t n;
    bool ok = false, has_seq = false, has_users = false;
    if (next)
        *next = '\0';
    pres_mp_reader_init(&r, buf, len);
    if (pres_mp_read_map(&r, &n) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen, count;
        if (pres_mp_read_str(&r, &k, &klen) != 0)
            return -1;
        if (s_is(k, klen, "ok")) {
            if (pres_mp_read_bool(&r, &ok) != 0)
                return -1;
        } else if (s_is(k, klen, "seq")) {
            if (pres_mp_read_uint(&r, seq) != 0)
                return -1;
            has_seq = true;
        } else if (s_is(k, klen, "users")) {
            if (pres_mp_read_array(&r, &count) != 0)
                return -1;
            for (uint32_t j = 0; j < count; j++)
                if (s_load_user(self, &r) != 0)
                    return -1;
            has_users = true;
        } else if (s_is(k, klen, "next")) {
            const char *v;
            uint32_t vlen;
            if (!next || pres_mp_read_str(&r, &v, &vlen) != 0 || vlen == 0 ||
                vlen >= cap)
                return -1;
            memcpy(next, v, vlen);
            next[vlen] = '\0';
        } else if (pres_mp_skip(&r) != 0)
            return -1;
    }
    return ok && has_seq && has_users && pres_mp_at_end(&r) ? 0 : -1;
}

//  In sync at seq: changes after it apply, those up to catchup replay.
static void
s_synced(sweeper_clone_t *self, uint64_t seq, uint64_t catchup)
{
    self->synced = true;
    self->fresh = true;
    self->paging = false;
    self->seq = seq;
    self->catchup_seq = catchup;
    self->pending_head = 0;
    self->st.snapshots++;
}

int
sweeper_clone_load(sweeper_clone_t *self, const void *buf, size_t len)
{
    assert(self && buf);
    uint64_t seq = 0;
    self->synced = false;
    self->paging = false;
    sweeper_tick_mark(self->tick);
    if (s_load(self, buf, len, &seq, NULL, 0) != 0) {
        pres_log_error("snapshot reply malformed (%zu bytes)", len);
        self->why = "malformed snapshot";
        return -1;
    }
    sweeper_tick_sweep(self->tick);
    s_synced(self, seq, seq);
    return 0;
}

int
sweeper_clone_load_page(sweeper_clone_t *self, const void *buf, size_t len,
                        char *next, size_t cap)
{
    assert(self && buf && next && cap > 0);
    if (!self->paging) {
        self->synced = false;
        self->paging = true;
        self->pages = 0;
        self->first_seq = 0;
        self->last_seq = 0;
        //  The old table stays and fires until the last page: a resync
        //  does not stop expiry. Sessions no page sets again go then.
        sweeper_tick_mark(self->tick);
    }
    uint64_t seq = 0;
    if (s_load(self, buf, len, &seq, next, cap) != 0) {
        pres_log_error("snapshot page malformed (%zu bytes)", len);
        self->why = "malformed snapshot";
        self->paging = false;
        return -1;
    }
    if (seq < self->last_seq) {
        pres_log_warn("snapshot page at seq %" PRIu64 " after one at %" PRIu64
                      ": the broker restarted; starting over",
                      seq, self->last_seq);
        self->why = "seq went backwards between pages";
        self->paging = false;
        return -1;
    }
    if (self->pages++ == 0)
        self->first_seq = seq;
    self->last_seq = seq;
    if (!*next) {
        sweeper_tick_sweep(self->tick);
        s_synced(self, self->first_seq, seq);
    }
    return 0;
}

static sweeper_clone_result_t
s_resync(sweeper_clone_t *self, const char *why)
{
    self->synced = false;
    self->paging = false;
    self->why = why;
    return SWEEPER_CLONE_RESYNC;
}

static sweeper_clone_result_t
s_change(sweeper_clone_t *self, const pres_change_t *ch)
{
    //  A new leader (docs/ha.md): with async replication its history may
    //  lack the old leader's last changes, so start over from a snapshot.
    if (ch->term && ch->term != self->term) {
        bool known = self->term != 0;
        self->term = ch->term;
        if (known && self->synced)
            return s_resync(self, "new leader term");
    }
    if (!self->synced)
        return SWEEPER_CLONE_IGNORED;
    if (ch->seq <= self->seq) {
        //  Queued before the snapshot was taken: the snapshot holds it.
        //  After a live change, a repeat or an older seq means the broker
        //  lost its history: start over.
        if (self->fresh) {
            self->st.dropped++;
            return SWEEPER_CLONE_DROPPED;
        }
        return s_resync(self, "seq went backwards");
    }
    if (ch->seq != self->seq + 1)
        return s_resync(self, "seq gap");
    self->seq = ch->seq;
    self->fresh = false;
    self->st.changes++;
    if (ch->sessions == 0)
        sweeper_tick_remove_user(self->tick, ch->user);
    else if (*ch->session) {
        if (ch->deadline) {
            if (sweeper_tick_set(self->tick, ch->user, ch->session,
                                 ch->deadline) != 0)
                return s_resync(self, "out of memory");
        } else
            sweeper_tick_remove(self->tick, ch->user, ch->session);
    }
    //  A count that disagrees means we missed something the seq did not
    //  show (or the broker changed a session without saying which).
    if (ch->seq > self->catchup_seq &&
        sweeper_tick_user_sessions(self->tick, ch->user) != ch->sessions) {
        pres_log_info(
            "user %s: %zu sessions here, %u at the broker after "
            "seq %" PRIu64 " (%s of session '%s')",
            ch->user, sweeper_tick_user_sessions(self->tick, ch->user),
            ch->sessions, ch->seq, pres_reason_name(ch->reason), ch->session);
        return s_resync(self, "session count differs");
    }
    return SWEEPER_CLONE_APPLIED;
}

sweeper_clone_result_t
sweeper_clone_recv(sweeper_clone_t *self, const char *topic, size_t topic_len,
                   const void *buf, size_t len, uint64_t now)
{
    assert(self && topic && buf);
    const char *why = "unknown topic";
    size_t cp = strlen(PRES_CHANGE_PREFIX), dp = strlen(PRES_DEADLINE_PREFIX);
    if (topic_len > cp && memcmp(topic, PRES_CHANGE_PREFIX, cp) == 0) {
        pres_change_t ch;
        if (pres_change_decode(&ch, buf, len, &why) == 0 &&
            topic_len - cp == strlen(ch.user) &&
            memcmp(topic + cp, ch.user, topic_len - cp) == 0)
            return s_change(self, &ch);
    } else if (topic_len > dp && memcmp(topic, PRES_DEADLINE_PREFIX, dp) == 0) {
        pres_deadline_t dl;
        if (pres_deadline_decode(&dl, buf, len, &why) == 0 &&
            topic_len - dp == strlen(dl.user) &&
            memcmp(topic + dp, dl.user, topic_len - dp) == 0) {
            self->st.notices++;
            //  100 ms: how soon to ask again when the broker's clock is
            //  behind ours and it still thinks the session is live.
            sweeper_tick_notice(self->tick, dl.user, dl.session, dl.deadline,
                                now, 100);
            return SWEEPER_CLONE_APPLIED;
        }
    }
    self->st.bad++;
    pres_log_limited(&self->rl, 10000,
                     "changes: refused a frame on topic '%.*s': %s",
                     (int)(topic_len < 80 ? topic_len : 80), topic, why);
    return SWEEPER_CLONE_BAD;
}

bool
sweeper_clone_check_head(sweeper_clone_t *self, uint64_t head)
{
    assert(self);
    return sweeper_clone_check_head_at(self, head, self->seq);
}

bool
sweeper_clone_check_head_at(sweeper_clone_t *self, uint64_t head,
                            uint64_t asked_seq)
{
    assert(self);
    if (!self->synced)
        return false;
    if (head < asked_seq) {
        s_resync(self, "broker seq behind ours");
        return true;
    }
    if (self->pending_head && self->seq < self->pending_head) {
        s_resync(self, "changes missing at the head");
        return true;
    }
    self->pending_head = head > self->seq ? head : 0;
    return false;
}

void
sweeper_clone_desync(sweeper_clone_t *self, const char *why)
{
    assert(self && why);
    s_resync(self, why);
}

bool
sweeper_clone_synced(const sweeper_clone_t *self)
{
    assert(self);
    return self->synced;
}

uint64_t
sweeper_clone_seq(const sweeper_clone_t *self)
{
    assert(self);
    return self->seq;
}

const char *
sweeper_clone_why(const sweeper_clone_t *self)
{
    assert(self);
    return self->why;
}

void
sweeper_clone_stats(const sweeper_clone_t *self, sweeper_clone_stats_t *stats)
{
    assert(self && stats);
    *stats = self->st;
}
