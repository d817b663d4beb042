/*  broker_state: the presence rules and the batch (see broker_state.h and
    docs/broker.md). Memory is the truth for resident users; a batch
    records which users and sessions it touched and writes them from
    memory at commit, so a MDB_MAP_FULL retry simply writes them again. */
#include "broker_state.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"

#define S_PUBS_EXPIRE_MS 60000  //  idle publishers are looked for this often
#define S_OUTBOX_MSG     512    //  room for one change or notice (< 300 B)

//  A session ended in this batch, to delete from LMDB.
typedef struct {
    char user[PRES_ID_MAX + 1];
    char session[PRES_ID_MAX + 1];
} s_dead_t;

//  One outbox message: offsets into the outbox buffer.
typedef struct {
    size_t topic;  //  offset of the topic
    size_t topic_len;
    size_t body;  //  offset of the body
    size_t body_len;
} s_msg_t;

//  A change of this batch for the log and the user's history.
typedef struct {
    size_t msg;  //  outbox message holding the encoded change
    broker_hist_rec_t hist;
    char user[PRES_ID_MAX + 1];
} s_logged_t;

//  An account change of this batch for the audit.
typedef struct {
    uint64_t n;  //  audit number (meta.audits after it)
    char user[PRES_ID_MAX + 1];
    broker_audit_rec_t rec;
} s_audited_t;

//  The batch's own user flag; its bit is reserved in broker_live.h so it
//  cannot share one with another BROKER_U_* flag.
#define S_U_WRITE BROKER_U_WRITE

struct broker_state {
    const pres_config_t *cfg;
    broker_store_t *store;         //  borrowed
    broker_live_t *live;           //  resident users and live sessions
    broker_pubs_t *pubs;           //  per-publisher seq table
    broker_meta_t meta;            //  seq and counters (memory = truth)
    uint64_t timeout_ms;           //  session timeout
    bool deny_unknown;             //  unknown_users = deny
    uint32_t max_sessions;         //  max_sessions_per_user
    broker_forbidden_t forbidden;  //  account attempts refused
    uint64_t next_pubs_expire;     //  ms of the next idle-publisher sweep
    uint64_t now;                  //  batch clock, ms
    bool reading;                  //  store read txn open in this batch
    bool changed;                  //  batch holds a change (must be durable)
    bool defer_sync;               //  commits not fsynced: the caller's job
    uint64_t batch_applied;        //  meta.applied when the batch began
    uint32_t *touched;             //  users on the batch list
    size_t ntouched, touched_cap;
    s_dead_t *dead;  //  sessions ended in this batch
    size_t ndead, dead_cap;
    char *outbox;  //  topics and bodies of the batch
    size_t outbox_len, outbox_cap;
    s_msg_t *msgs;  //  outbox messages
    size_t nmsgs, msgs_cap;
    size_t ndirty;            //  users with BROKER_U_DIRTY (approx.)
    uint64_t flush_now;       //  wall ms of the flush being written
    uint64_t flush_slack_ms;  //  a beat may stay in memory while its
                              //  durable copy is younger than this
    uint64_t grace_ms;        //  a timed-out session keeps its state so long
    uint64_t keep;            //  changelog_keep (0 = no log)
    s_logged_t *logged;       //  changes of the batch
    size_t nlogged, logged_cap;
    s_audited_t *audited;  //  account changes of the batch
    size_t naudited, audited_cap;
    broker_quality_t quality;  //  presence-quality counters since start
    const char *refuse_why;    //  why the last apply returned 1
    uint64_t point_minute;     //  minute of the last series point written
    uint64_t term;             //  leader term stamped on changes (0 = none)
    broker_ha_stats_t ha;      //  `stats.ha`, set by the server
};

const uint64_t broker_late_bounds[BROKER_LATE_BUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
const char *const broker_refuse_names[BROKER_REFUSE_COUNT] = {
    "account_not_active", "unknown_user", "account_forbidden", "malformed",
    "other"};

static int
s_grow(void **array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    void *p = realloc(*array, n * size);
    if (!p) {
        pres_log_error("realloc() failed growing a batch list");
        return -1;
    }
    *array = p;
    *cap = n;
    return 0;
}

//  ---- cold start

static int
s_load_session(const char *user, size_t ulen, const char *session, size_t slen,
               const broker_session_rec_t *rec, void *arg)
{
    broker_state_t *self = arg;
    if (!pres_id_valid(user, ulen) || !pres_id_valid(session, slen)) {
        pres_log_warn("invalid session key in LMDB skipped");
        return 0;
    }
    uint32_t u = broker_live_user_find(self->live, user, ulen);
    if (u == BROKER_LIVE_NONE) {
        broker_user_rec_t urec;
        //  Sessions are read inside the read txn, so the user is too.
        int rc = broker_store_get_user(self->store, user, ulen, &urec);
        if (rc) {
            pres_log_warn("session of unknown user %.*s skipped", (int)ulen,
                          user);
            return rc < 0 ? -1 : 0;
        }
        u = broker_live_user_add(self->live, user, ulen);
        if (u == BROKER_LIVE_NONE)
            return -1;
        broker_user_t *entry = broker_live_user(self->live, u);
        entry->account = urec.account;
        entry->stored_state = urec.state;
        entry->last_seen = urec.last_seen;
        entry->flags = BROKER_U_STORED;
        if (broker_live_user_set_reason(self->live, u, urec.reason))
            return -1;
    }
    uint32_t s = broker_live_session_add(self->live, u, session, slen);
    if (s == BROKER_LIVE_NONE ||
        broker_live_session_set_device(self->live, s, rec->device))
        return -1;
    broker_session_t *entry = broker_live_session(self->live, s);
    entry->state = rec->state == PRES_AWAY ? PRES_AWAY : PRES_ONLINE;
    entry->last_hb = rec->last_hb;
    entry->durable_hb = rec->last_hb;
    entry->since = rec->since ? rec->since : rec->last_hb;
    entry->flags = 0;
    //  The lazy flush writes only session records: a live user's last_seen
    //  is the latest of its record and its sessions' beats.
    broker_user_t *owner = broker_live_user(self->live, u);
    if (rec->last_hb > owner->last_seen)
        owner->last_seen = rec->last_hb;
    return 0;
}

static int
s_load_pub(const char *src, size_t len, uint64_t last, uint64_t lost, void *arg)
{
    return broker_pubs_load(arg, src, len, last, lost, (uint64_t)pres_now_ms());
}

//  Read the durable state: meta, the live sessions (a new live set), and
//  with pubs the publisher table. 0 or -1 (logged).
static int
s_load(broker_state_t *self, bool pubs)
{
    broker_store_t *store = self->store;
    self->live = broker_live_new();
    if (!self->live || broker_store_read_begin(store))
        return -1;
    int rc = broker_store_get_meta(store, &self->meta);
    if (rc == 0)
        rc = broker_store_each_session(store, s_load_session, self);
    if (rc == 0 && pubs)
        rc = broker_store_each_pub(store, s_load_pub, self->pubs);
    broker_store_read_end(store);
    if (rc)
        return -1;
    //  Recompute the aggregate states from the sessions loaded.
    for (uint32_t u = broker_live_user_next(self->live, BROKER_LIVE_NONE);
         u != BROKER_LIVE_NONE; u = broker_live_user_next(self->live, u)) {
        broker_user_t *user = broker_live_user(self->live, u);
        user->state = (uint8_t)broker_live_user_state(self->live, u);
        if (user->state != user->stored_state)
            pres_log_warn("user %s: stored state %s, sessions say %s",
                          broker_live_id(self->live, user->id),
                          pres_state_name(user->stored_state),
                          pres_state_name(user->state));
    }
    pres_log_info("loaded %zu live users, %zu sessions, seq %" PRIu64,
                  broker_live_user_count(self->live),
                  broker_live_session_count(self->live), self->meta.seq);
    return 0;
}

broker_state_t *
broker_state_new(const pres_config_t *cfg, broker_store_t *store)
{
    broker_state_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() failed for the broker state");
        return NULL;
    }
    self->cfg = cfg;
    self->store = store;
    self->timeout_ms = (uint64_t)(cfg->timeout * 1000.0 + 0.5);
    //  docs/protocol.md section 2: after a crash last_seen is at most 5 s
    //  behind. The next flush comes lastseen_flush_ms later (plus however late
    //  the loop is), so a beat whose durable copy is younger than 5 s - 2 x
    //  lastseen_flush_ms can wait for it; one flush period is kept as margin.
    self->flush_slack_ms = 2 * cfg->lastseen_flush_ms < 5000
                               ? (uint64_t)(5000 - 2 * cfg->lastseen_flush_ms)
                               : 0;
    self->deny_unknown = strcmp(cfg->unknown_users, "deny") == 0;
    self->grace_ms = (uint64_t)(cfg->grace * 1000.0 + 0.5);
    self->keep = (uint64_t)cfg->changelog_keep;
    self->max_sessions = (uint32_t)cfg->max_sessions_per_user;
    self->pubs = broker_pubs_new((size_t)cfg->publishers_max,
                                 (uint64_t)cfg->publishers_idle * 1000);
    if (!self->pubs || s_load(self, true))
        goto fail;
    return self;
fail:
    broker_state_destroy(&self);
    return NULL;
}

void
broker_state_destroy(broker_state_t **self_p)
{
    assert(self_p);
    broker_state_t *self = *self_p;
    if (!self)
        return;
    broker_live_destroy(&self->live);
    broker_pubs_destroy(&self->pubs);
    free(self->touched);
    free(self->dead);
    free(self->outbox);
    free(self->msgs);
    free(self->logged);
    free(self->audited);
    free(self);
    *self_p = NULL;
}

//  ---- batch helpers

void
broker_state_begin(broker_state_t *self, uint64_t now_ms)
{
    self->now = now_ms;
    self->changed = false;
    self->batch_applied = self->meta.applied;
    if (now_ms >= self->next_pubs_expire) {
        //  Idle publishers go (written with the next batch or flush).
        size_t n = broker_pubs_expire(self->pubs, now_ms);
        if (n)
            pres_log_info("forgot %zu publishers idle for %d s", n,
                          self->cfg->publishers_idle);
        self->next_pubs_expire = now_ms + S_PUBS_EXPIRE_MS;
    }
}

static void
s_touch(broker_state_t *self, uint32_t u, unsigned flags)
{
    broker_user_t *user = broker_live_user(self->live, u);
    if (!(user->flags & BROKER_U_TOUCHED)) {
        if (s_grow((void **)&self->touched, &self->touched_cap,
                   self->ntouched + 1, sizeof(uint32_t)))
            abort();  //  out of memory: cannot keep the batch honest
        self->touched[self->ntouched++] = u;
        user->flags |= BROKER_U_TOUCHED;
    }
    user->flags |= (uint8_t)flags;
}

static void
s_mark_dirty(broker_state_t *self, broker_user_t *user)
{
    if (!(user->flags & BROKER_U_DIRTY)) {
        user->flags |= BROKER_U_DIRTY;
        self->ndirty++;
    }
}

static int
s_outbox_add(broker_state_t *self, const char *topic, size_t tlen,
             const void *body, size_t blen)
{
    if (s_grow((void **)&self->outbox, &self->outbox_cap,
               self->outbox_len + tlen + blen, 1) ||
        s_grow((void **)&self->msgs, &self->msgs_cap, self->nmsgs + 1,
               sizeof(s_msg_t)))
        return -1;
    s_msg_t *m = &self->msgs[self->nmsgs++];
    m->topic = self->outbox_len;
    m->topic_len = tlen;
    memcpy(self->outbox + self->outbox_len, topic, tlen);
    self->outbox_len += tlen;
    m->body = self->outbox_len;
    m->body_len = blen;
    memcpy(self->outbox + self->outbox_len, body, blen);
    self->outbox_len += blen;
    return 0;
}

//  Sequence and queue a change of user u (prev = state before), with the
//  session it is about ("" = all) and that session's deadline (0 = none).
//  Also moves the state counters and marks the user for writing.
static int
s_change(broker_state_t *self, uint32_t u, pres_state_t prev,
         pres_reason_t reason, const char *session, uint64_t deadline)
{
    broker_user_t *user = broker_live_user(self->live, u);
    if (prev != user->state) {
        if (prev == PRES_ONLINE)
            self->meta.online--;
        else if (prev == PRES_AWAY)
            self->meta.away--;
        if (user->state == PRES_ONLINE)
            self->meta.online++;
        else if (user->state == PRES_AWAY)
            self->meta.away++;
    }
    pres_change_t ch = {
        .seq = ++self->meta.seq,
        .state = user->state,
        .prev = prev,
        .at = self->now,
        .reason = reason,
        .sessions = user->nsessions,
        .account = user->account,
        .deadline = deadline,
        .term = self->term,
    };
    memcpy(ch.user, broker_live_id(self->live, user->id),
           (size_t)user->len + 1);
    snprintf(ch.session, sizeof(ch.session), "%s", session ? session : "");
    char topic[PRES_TOPIC_MAX];
    uint8_t body[S_OUTBOX_MSG];
    size_t tlen =
        pres_change_topic(broker_live_id(self->live, user->id), topic);
    size_t blen = pres_change_encode(&ch, body, sizeof(body));
    if (!blen) {
        pres_log_error("pres_change_encode() failed for %s",
                       broker_live_id(self->live, user->id));
        return -1;
    }
    self->changed = true;
    s_touch(self, u, S_U_WRITE);
    if (s_grow((void **)&self->logged, &self->logged_cap, self->nlogged + 1,
               sizeof(s_logged_t)))
        return -1;
    s_logged_t *lg = &self->logged[self->nlogged++];
    lg->msg = self->nmsgs;
    lg->hist = (broker_hist_rec_t){.seq = ch.seq,
                                   .at = ch.at,
                                   .state = (uint8_t)ch.state,
                                   .prev = (uint8_t)ch.prev,
                                   .reason = (uint8_t)reason};
    memcpy(lg->user, broker_live_id(self->live, user->id),
           (size_t)user->len + 1);
    self->quality.transitions[reason]++;
    return s_outbox_add(self, topic, tlen, body, blen);
}

//  Encode a deadline notice about user/session into topic and body (room
//  for S_OUTBOX_MSG bytes); *tlen and *blen their lengths. 0, or -1 (logged).
static int
s_notice_encode(const char *user, const char *session, uint64_t deadline,
                char *topic, size_t *tlen, uint8_t *body, size_t *blen)
{
    pres_deadline_t dl = {.deadline = deadline};
    snprintf(dl.user, sizeof(dl.user), "%s", user);
    snprintf(dl.session, sizeof(dl.session), "%s", session);
    *tlen = pres_deadline_topic(user, topic);
    *blen = pres_deadline_encode(&dl, body, S_OUTBOX_MSG);
    if (!*blen) {
        pres_log_error("pres_deadline_encode() failed for %s", user);
        return -1;
    }
    return 0;
}

//  The answer to an expire for a session the broker does not have: a
//  deadline notice with deadline 0, published after the batch's commit
//  like a change. A publisher that sends one learns that everything it
//  sent before is applied (the tests' and tools' bus round trip); the
//  sweeper ignores it.
static int
s_gone_notice(broker_state_t *self, const char *user, const char *session)
{
    char topic[PRES_TOPIC_MAX];
    uint8_t body[S_OUTBOX_MSG];
    size_t tlen, blen;
    if (s_notice_encode(user, session, 0, topic, &tlen, body, &blen))
        return -1;
    return s_outbox_add(self, topic, tlen, body, blen);
}

//  Resident user, or load it from LMDB (and add it to the batch list so it
//  is evicted again after the commit if it stays offline), or create it
//  when `create`. NONE if absent (or on error: *err set).
static uint32_t
s_user(broker_state_t *self, const char *id, bool create, bool *err)
{
    size_t len = strlen(id);
    uint32_t u = broker_live_user_find(self->live, id, len);
    if (u != BROKER_LIVE_NONE)
        return u;
    if (!self->reading) {
        if (broker_store_read_begin(self->store)) {
            *err = true;
            return BROKER_LIVE_NONE;
        }
        self->reading = true;
    }
    broker_user_rec_t rec;
    int rc = broker_store_get_user(self->store, id, len, &rec);
    if (rc < 0 || (rc == BROKER_STORE_NOTFOUND && !create)) {
        *err = rc < 0;
        return BROKER_LIVE_NONE;
    }
    u = broker_live_user_add(self->live, id, len);
    if (u == BROKER_LIVE_NONE) {
        *err = true;
        return BROKER_LIVE_NONE;
    }
    broker_user_t *user = broker_live_user(self->live, u);
    if (rc == 0) {
        user->account = rec.account;
        user->last_seen = rec.last_seen;
        user->stored_state = PRES_OFFLINE;  //  resident iff live
        user->flags = BROKER_U_STORED;
        if (broker_live_user_set_reason(self->live, u, rec.reason)) {
            *err = true;
            return BROKER_LIVE_NONE;
        }
        s_touch(self, u, 0);
    } else {
        self->meta.users++;
        self->meta.accounts[PRES_ACC_ACTIVE]++;
        s_touch(self, u, S_U_WRITE);
    }
    return u;
}

static uint64_t
s_deadline(const broker_state_t *self, const broker_session_t *s)
{
    return s->last_hb + self->timeout_ms;
}

//  End live session s (of user u): remember it for deletion, drop it.
static int
s_end_session(broker_state_t *self, uint32_t s)
{
    broker_session_t *session = broker_live_session(self->live, s);
    broker_user_t *user = broker_live_user(self->live, session->user);
    if (!(session->flags & BROKER_S_NEW)) {
        if (s_grow((void **)&self->dead, &self->dead_cap, self->ndead + 1,
                   sizeof(s_dead_t)))
            return -1;
        s_dead_t *d = &self->dead[self->ndead++];
        memcpy(d->user, broker_live_id(self->live, user->id),
               (size_t)user->len + 1);
        memcpy(d->session, broker_live_id(self->live, session->id),
               (size_t)session->len + 1);
    }
    s_touch(self, session->user, S_U_WRITE);
    broker_live_session_remove(self->live, s);
    self->meta.sessions--;
    return 0;
}

//  ---- the rules

//  Make room for a new session of user u at max_sessions_per_user: end the
//  session that beat least recently (a forgotten tab rather than the
//  device in use), with a change of its own (reason logout, no deadline)
//  so that whoever tracks sessions (the sweeper) drops it too. Scans at
//  most max_sessions entries, in memory.
static int
s_end_oldest(broker_state_t *self, uint32_t u)
{
    uint32_t oldest = BROKER_LIVE_NONE;
    uint64_t oldest_hb = UINT64_MAX;
    for (uint32_t s = broker_live_user(self->live, u)->first;
         s != BROKER_LIVE_NONE;) {
        broker_session_t *session = broker_live_session(self->live, s);
        if (session->last_hb < oldest_hb) {
            oldest_hb = session->last_hb;
            oldest = s;
        }
        s = session->next;
    }
    if (oldest == BROKER_LIVE_NONE)
        return 0;
    char id[PRES_ID_MAX + 1];
    broker_session_t *session = broker_live_session(self->live, oldest);
    memcpy(id, broker_live_id(self->live, session->id),
           (size_t)session->len + 1);
    broker_user_t *user = broker_live_user(self->live, u);
    pres_state_t prev = user->state;
    if (s_end_session(self, oldest))
        return -1;
    user->state = (uint8_t)broker_live_user_state(self->live, u);
    return s_change(self, u, prev, PRES_RSN_LOGOUT, id, 0);
}

//  Login, or a heartbeat for a session the broker does not know (a
//  reconnect). Returns 0 applied, 1 refused, -1 error.
static int
s_login(broker_state_t *self, const pres_event_t *ev, pres_state_t state)
{
    bool err = false;
    uint32_t u = s_user(self, ev->user, !self->deny_unknown, &err);
    if (u == BROKER_LIVE_NONE) {
        self->refuse_why = "unknown_user";
        return err ? -1 : 1;
    }
    broker_user_t *user = broker_live_user(self->live, u);
    if (user->account != PRES_ACC_ACTIVE) {
        self->refuse_why = "account_not_active";
        return 1;
    }
    pres_state_t prev = user->state;
    size_t slen = strlen(ev->session);
    uint32_t s = broker_live_session_find(self->live, u, ev->session, slen);
    bool added = s == BROKER_LIVE_NONE;
    if (added && user->nsessions >= self->max_sessions && s_end_oldest(self, u))
        return -1;
    if (added) {
        s = broker_live_session_add(self->live, u, ev->session, slen);
        if (s == BROKER_LIVE_NONE)
            return -1;
        self->meta.sessions++;
        broker_live_session(self->live, s)->since = self->now;
        if (broker_live_session_set_device(self->live, s, ev->device))
            return -1;
    }
    broker_session_t *session = broker_live_session(self->live, s);
    user = broker_live_user(self->live, u);  //  the add may move entries
    bool flipped = session->state != state;
    session->state = (uint8_t)state;
    session->last_hb = self->now;
    user->last_seen = self->now;
    user->state = (uint8_t)broker_live_user_state(self->live, u);
    if (added || user->state != prev) {
        session->flags |= BROKER_S_WRITE;
        return s_change(self, u, prev, PRES_RSN_LOGIN,
                        broker_live_id(self->live, session->id),
                        s_deadline(self, session));
    }
    if (flipped) {
        session->flags |= BROKER_S_WRITE;  //  per-session state is durable
        s_touch(self, u, S_U_WRITE);
    } else {
        session->flags |= BROKER_S_DIRTY;
        s_mark_dirty(self, user);
    }
    return 0;
}

static int
s_heartbeat(broker_state_t *self, const pres_event_t *ev)
{
    size_t ulen = strlen(ev->user);
    uint32_t u = broker_live_user_find(self->live, ev->user, ulen);
    uint32_t s = u == BROKER_LIVE_NONE
                     ? BROKER_LIVE_NONE
                     : broker_live_session_find(self->live, u, ev->session,
                                                strlen(ev->session));
    if (s == BROKER_LIVE_NONE)
        return s_login(self, ev, ev->has_state ? ev->state : PRES_ONLINE);
    //  The hot path: a live session beats.
    broker_user_t *user = broker_live_user(self->live, u);
    broker_session_t *session = broker_live_session(self->live, s);
    if (self->grace_ms && ((session->flags & BROKER_S_GRACE) ||
                           s_deadline(self, session) <= self->now)) {
        //  Timed out but within grace: the session goes on, unpublished.
        session->flags &= (uint8_t)~BROKER_S_GRACE;
        self->quality.flaps_suppressed++;
    }
    session->last_hb = self->now;
    session->flags |= BROKER_S_DIRTY;
    user->last_seen = self->now;
    if (ev->has_state && ev->state != session->state) {
        pres_state_t prev = user->state;
        session->state = (uint8_t)ev->state;
        session->flags |= BROKER_S_WRITE;
        user->state = (uint8_t)broker_live_user_state(self->live, u);
        if (user->state != prev)
            return s_change(self, u, prev, PRES_RSN_HEARTBEAT,
                            broker_live_id(self->live, session->id),
                            s_deadline(self, session));
        s_touch(self, u, S_U_WRITE);
        return 0;
    }
    s_mark_dirty(self, user);
    return 0;
}

static int
s_logout(broker_state_t *self, const pres_event_t *ev)
{
    bool err = false;
    uint32_t u = s_user(self, ev->user, false, &err);
    if (u == BROKER_LIVE_NONE)
        return err ? -1 : 0;  //  never seen: nothing to end
    broker_user_t *user = broker_live_user(self->live, u);
    pres_state_t prev = user->state;
    user->last_seen = self->now;
    s_touch(self, u, S_U_WRITE);
    bool ended = false;
    if (ev->session[0]) {
        uint32_t s = broker_live_session_find(self->live, u, ev->session,
                                              strlen(ev->session));
        if (s != BROKER_LIVE_NONE) {
            if (s_end_session(self, s))
                return -1;
            ended = true;
        }
    } else
        while (user->first != BROKER_LIVE_NONE) {
            if (s_end_session(self, user->first))
                return -1;
            ended = true;
        }
    if (!ended)
        return 0;
    user->state = (uint8_t)broker_live_user_state(self->live, u);
    return s_change(self, u, prev, PRES_RSN_LOGOUT, ev->session, 0);
}

//  Count one timeout ended late_ms after its deadline (plus grace).
static void
s_late(broker_state_t *self, uint64_t late_ms)
{
    int b = 0;
    while (b < BROKER_LATE_BUCKETS - 1 && late_ms > broker_late_bounds[b])
        b++;
    self->quality.late[b]++;
    self->quality.late_sum_ms += late_ms;
}

//  An expire (the sweeper's answer to a due notice, or anyone's: the
//  broker re-checks it with its own clock). A session that beat in time,
//  or is within grace, is left alone, silently: the wheel holds its real
//  deadline. One that is gone gets the deadline-0 notice.
static int
s_expire(broker_state_t *self, const pres_event_t *ev)
{
    uint32_t u = broker_live_user_find(self->live, ev->user, strlen(ev->user));
    uint32_t s = u == BROKER_LIVE_NONE
                     ? BROKER_LIVE_NONE
                     : broker_live_session_find(self->live, u, ev->session,
                                                strlen(ev->session));
    if (s == BROKER_LIVE_NONE)
        return s_gone_notice(self, ev->user, ev->session);
    broker_session_t *session = broker_live_session(self->live, s);
    uint64_t deadline = s_deadline(self, session);
    if (deadline > self->now)  //  a heartbeat in time always wins
        return 0;
    if (deadline + self->grace_ms > self->now) {
        //  Grace: the user keeps its state; due again at the end of it.
        session->flags |= BROKER_S_GRACE;
        return 0;
    }
    s_late(self, self->now - (deadline + self->grace_ms));
    broker_user_t *user = broker_live_user(self->live, u);
    pres_state_t prev = user->state;
    if (s_end_session(self, s))
        return -1;
    user->state = (uint8_t)broker_live_user_state(self->live, u);
    return s_change(self, u, prev, PRES_RSN_TIMEOUT, ev->session, 0);
}

size_t
broker_state_due(broker_state_t *self, uint64_t now_ms,
                 broker_state_notice_fn *fn, void *arg)
{
    size_t notices = 0;
    uint32_t next;
    for (uint32_t s = broker_live_wheel_take(self->live, now_ms);
         s != BROKER_LIVE_NONE; s = next) {
        broker_session_t *session = broker_live_session(self->live, s);
        next = session->wnext;
        uint64_t deadline = s_deadline(self, session);
        if (deadline > now_ms) {  //  it beat since it was filed
            broker_live_wheel_file(self->live, s, deadline);
            continue;
        }
        if (deadline + self->grace_ms > now_ms) {
            session->flags |= BROKER_S_GRACE;
            broker_live_wheel_file(self->live, s, deadline + self->grace_ms);
            continue;
        }
        //  Due: ask for its expire, and again each BROKER_DUE_AGAIN_MS
        //  while it lives (a notice or an expire lost, no sweeper yet).
        broker_live_wheel_file(self->live, s, now_ms + BROKER_DUE_AGAIN_MS);
        const broker_user_t *user = broker_live_user(self->live, session->user);
        char topic[PRES_TOPIC_MAX];
        uint8_t body[S_OUTBOX_MSG];
        size_t tlen, blen;
        if (s_notice_encode(broker_live_id(self->live, user->id),
                            broker_live_id(self->live, session->id), deadline,
                            topic, &tlen, body, &blen))
            continue;  //  asked again in BROKER_DUE_AGAIN_MS
        fn(topic, tlen, body, blen, arg);
        notices++;
    }
    self->quality.due_notices += notices;
    return notices;
}

uint64_t
broker_state_due_wait(const broker_state_t *self, uint64_t now_ms,
                      uint64_t horizon_ms)
{
    return broker_live_wheel_wait(self->live, now_ms, horizon_ms);
}

static pres_reason_t
s_account_reason(pres_account_t status)
{
    switch (status) {
    case PRES_ACC_PENDING:
        return PRES_RSN_PENDING;
    case PRES_ACC_INACTIVE:
        return PRES_RSN_INACTIVE;
    case PRES_ACC_SUSPENDED:
        return PRES_RSN_SUSPENDED;
    case PRES_ACC_BANNED:
        return PRES_RSN_BANNED;
    default:
        return PRES_RSN_ACCOUNT;
    }
}

//  Record an account change of user for the audit (written with the
//  batch).
static int
s_audit(broker_state_t *self, const broker_user_t *user, pres_account_t status,
        const char *reason, const char *by)
{
    if (s_grow((void **)&self->audited, &self->audited_cap, self->naudited + 1,
               sizeof(s_audited_t)))
        return -1;
    s_audited_t *a = &self->audited[self->naudited++];
    a->n = ++self->meta.audits;
    memcpy(a->user, broker_live_id(self->live, user->id),
           (size_t)user->len + 1);
    a->rec.at = self->now;
    a->rec.old = user->account;
    a->rec.status = (uint8_t)status;
    snprintf(a->rec.by, sizeof(a->rec.by), "%s", by && *by ? by : "unknown");
    snprintf(a->rec.reason, sizeof(a->rec.reason), "%s", reason ? reason : "");
    self->changed = true;  //  the audit is durable with the change
    return 0;
}

int
broker_state_account(broker_state_t *self, const char *id,
                     pres_account_t status, const char *reason, const char *by,
                     uint64_t *seq)
{
    bool err = false;
    uint32_t u = s_user(self, id, true, &err);
    if (u == BROKER_LIVE_NONE)
        return -1;
    broker_user_t *user = broker_live_user(self->live, u);
    pres_log_info("account %s: %s -> %s by %s", id,
                  pres_account_name(user->account), pres_account_name(status),
                  by ? by : "?");
    const char *old = user->reason ? user->reason : "";
    if ((user->account != status || strcmp(old, reason ? reason : "") != 0) &&
        s_audit(self, user, status, reason, by))
        return -1;
    if (strcmp(old, reason ? reason : "") != 0) {
        if (broker_live_user_set_reason(self->live, u, reason))
            return -1;
        s_touch(self, u, S_U_WRITE);
        self->changed = true;  //  the reply promises durability
    }
    if (user->account == status) {
        if (seq)
            *seq = self->meta.seq;
        return 0;
    }
    self->meta.accounts[user->account]--;
    self->meta.accounts[status]++;
    user->account = (uint8_t)status;
    pres_state_t prev = user->state;
    while (status != PRES_ACC_ACTIVE && user->first != BROKER_LIVE_NONE)
        if (s_end_session(self, user->first))
            return -1;
    user->state = (uint8_t)broker_live_user_state(self->live, u);
    if (prev != PRES_OFFLINE && user->state == PRES_OFFLINE)
        self->quality.forced_offline[status]++;
    if (s_change(self, u, prev, s_account_reason(status), "", 0))
        return -1;
    if (seq)
        *seq = self->meta.seq;
    return 0;
}

static void
s_refused(broker_state_t *self, const char *why)
{
    for (int i = 0; i < BROKER_REFUSE_COUNT; i++)
        if (strcmp(broker_refuse_names[i], why) == 0) {
            self->quality.refused[i]++;
            return;
        }
    self->quality.refused[BROKER_REFUSE_COUNT - 1]++;
}

int
broker_state_apply(broker_state_t *self, const pres_event_t *ev)
{
    uint64_t lost = broker_pubs_arrive(self->pubs, ev->src, ev->seq, self->now);
    if (lost != UINT64_MAX)
        self->meta.lost += lost;
    self->refuse_why = "other";
    int rc;
    switch (ev->type) {
    case PRES_EV_HEARTBEAT:
        rc = s_heartbeat(self, ev);
        break;
    case PRES_EV_LOGIN:
        rc = s_login(self, ev, PRES_ONLINE);
        break;
    case PRES_EV_LOGOUT:
        rc = s_logout(self, ev);
        break;
    case PRES_EV_EXPIRE:
        rc = s_expire(self, ev);
        break;
    case PRES_EV_ACCOUNT:
        //  Whatever src it names: a bus publisher is not an authority.
        self->forbidden.events++;
        self->refuse_why = "account_forbidden";
        rc = 1;
        break;
    default:
        rc = 1;
    }
    if (rc == 0)
        self->meta.applied++;
    else if (rc == 1) {
        self->meta.refused++;
        s_refused(self, self->refuse_why);
    }
    return rc;
}

void
broker_state_malformed(broker_state_t *self)
{
    self->meta.refused++;
    self->meta.malformed++;
    s_refused(self, "malformed");
}

//  ---- writing

static void
s_user_rec(const broker_user_t *user, broker_user_rec_t *rec)
{
    rec->account = user->account;
    rec->state = user->state;
    rec->nsessions = user->nsessions;
    rec->last_seen = user->last_seen;
    snprintf(rec->reason, sizeof(rec->reason), "%s",
             user->reason ? user->reason : "");
}

//  Write user u and those of its sessions this batch changed, from
//  memory: a change costs the same whatever the user's session count
//  (beats of the others wait for the lazy flush).
static int
s_write_user(broker_state_t *self, broker_store_t *store, uint32_t u)
{
    broker_user_t *user = broker_live_user(self->live, u);
    broker_user_rec_t rec;
    s_user_rec(user, &rec);
    if (broker_store_put_user(store, broker_live_id(self->live, user->id),
                              user->len, &rec) ||
        broker_store_set_state(store, broker_live_id(self->live, user->id),
                               user->len, user->stored_state, user->state))
        return -1;
    for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
        broker_session_t *session = broker_live_session(self->live, s);
        s = session->next;
        if (!(session->flags & (BROKER_S_NEW | BROKER_S_WRITE)))
            continue;
        broker_session_rec_t srec = {.last_hb = session->last_hb,
                                     .since = session->since,
                                     .state = session->state};
        snprintf(srec.device, sizeof(srec.device), "%s",
                 session->device ? session->device : "");
        if (broker_store_put_session(
                store, broker_live_id(self->live, user->id),
                broker_live_id(self->live, session->id), &srec))
            return -1;
    }
    return 0;
}

static int
s_write_pubs(broker_state_t *self, broker_store_t *store)
{
    //  Forgotten first: a src forgotten and seen again is written below.
    for (size_t i = 0; i < broker_pubs_forgotten_count(self->pubs); i++)
        if (broker_store_del_pub(store, broker_pubs_forgotten(self->pubs, i)))
            return -1;
    for (size_t i = 0; i < broker_pubs_count(self->pubs); i++) {
        broker_pub_t *pub = broker_pubs_at(self->pubs, i);
        if (pub->dirty &&
            broker_store_put_pub(store, pub->src, pub->last, pub->lost))
            return -1;
    }
    return 0;
}

//  The batch's changes into the change log (trimmed to changelog_keep, a
//  bounded number of deletions per batch so a lowered keep catches up
//  gradually) and into each user's history; its account changes into the
//  audit.
static int
s_write_log(broker_state_t *self, broker_store_t *store)
{
    for (size_t i = 0; i < self->nlogged; i++) {
        const s_logged_t *lg = &self->logged[i];
        const s_msg_t *m = &self->msgs[lg->msg];
        if ((self->keep &&
             broker_store_put_change(store, lg->hist.seq,
                                     self->outbox + m->body, m->body_len)) ||
            broker_store_put_history(store, lg->user, &lg->hist))
            return -1;
    }
    if (self->keep && self->nlogged && self->meta.seq > self->keep &&
        broker_store_trim_changes(store, self->meta.seq - self->keep + 1,
                                  2 * self->nlogged + 64))
        return -1;
    for (size_t i = 0; i < self->naudited; i++)
        if (broker_store_put_audit(store, self->audited[i].user,
                                   self->audited[i].n, &self->audited[i].rec))
            return -1;
    return 0;
}

static int
s_fill_batch(broker_store_t *store, void *arg)
{
    broker_state_t *self = arg;
    //  Deletions first: a session ended and started again in one batch is
    //  then written back by its user below.
    for (size_t i = 0; i < self->ndead; i++)
        if (broker_store_del_session(store, self->dead[i].user,
                                     self->dead[i].session))
            return -1;
    for (size_t i = 0; i < self->ntouched; i++) {
        uint32_t u = self->touched[i];
        if ((broker_live_user(self->live, u)->flags &
             (S_U_WRITE | BROKER_U_DIRTY)) &&
            s_write_user(self, store, u))
            return -1;
    }
    if (s_write_log(self, store))
        return -1;
    return s_write_pubs(self, store) ||
                   broker_store_put_meta(store, &self->meta)
               ? -1
               : 0;
}

//  The batch could not be written (disk full, I/O error): memory is ahead
//  of the disk and nothing of the batch may be published. Rebuild the live
//  set and the state counters from the store (the last durable state);
//  keep the publisher table (what arrived did arrive) and the event
//  counters, with the batch's applied events counted as refused instead.
//  Beats not yet flushed fall back to their durable last_hb (the 5 s of
//  lag docs/protocol.md allows). 1, or -1 if the store cannot even be
//  read.
static int
s_rollback(broker_state_t *self)
{
    broker_meta_t keep = self->meta;
    uint64_t undone = keep.applied - self->batch_applied;
    broker_live_destroy(&self->live);
    self->ntouched = 0;
    self->ndead = 0;
    self->ndirty = 0;
    self->nlogged = 0;
    self->naudited = 0;
    broker_state_outbox_clear(self);
    if (s_load(self, false))
        return -1;
    self->meta.applied = keep.applied - undone;
    self->meta.refused = keep.refused + undone;
    self->meta.lost = keep.lost;
    self->meta.malformed = keep.malformed;
    return 1;
}

int
broker_state_commit(broker_state_t *self)
{
    bool need_write = self->changed;
    for (size_t i = 0; i < self->ntouched && !need_write; i++)
        if (broker_live_user(self->live, self->touched[i])->flags & S_U_WRITE)
            need_write = true;
    if (self->reading) {
        broker_store_read_end(self->store);
        self->reading = false;
    }
    if (need_write || self->ndead) {
        //  One txn for the whole batch, synced before anything about it is
        //  published (docs/protocol.md section 2: durable first): here,
        //  or by the caller's sync thread when defer_sync is set.
        if (broker_store_write(self->store, !self->defer_sync, s_fill_batch,
                               self))
            return s_rollback(self);
        broker_pubs_clean(self->pubs);
    }
    //  The batch is on disk: update what memory believes is stored, and
    //  evict users that stayed offline.
    for (size_t i = 0; i < self->ntouched; i++) {
        uint32_t u = self->touched[i];
        broker_user_t *user = broker_live_user(self->live, u);
        //  Its record and changed sessions are in this txn.
        bool written = (user->flags & (S_U_WRITE | BROKER_U_DIRTY)) &&
                       (need_write || self->ndead);
        bool beats_waiting = false;  //  dirty sessions left for the flush
        for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
            broker_session_t *session = broker_live_session(self->live, s);
            if (written && (session->flags & (BROKER_S_NEW | BROKER_S_WRITE))) {
                session->durable_hb = session->last_hb;
                session->flags &=
                    (uint8_t) ~(BROKER_S_NEW | BROKER_S_WRITE | BROKER_S_DIRTY);
            }
            beats_waiting |= (session->flags & BROKER_S_DIRTY) != 0;
            s = session->next;
        }
        if (written) {
            user->stored_state = user->state;
            user->flags |= BROKER_U_STORED;
            if ((user->flags & BROKER_U_DIRTY) && !beats_waiting) {
                self->ndirty--;
                user->flags &= (uint8_t)~BROKER_U_DIRTY;
            }
            user->flags &= (uint8_t)~S_U_WRITE;
        }
        user->flags &= (uint8_t)~BROKER_U_TOUCHED;
        if (user->nsessions == 0 && !(user->flags & BROKER_U_DIRTY))
            broker_live_user_remove(self->live, u);
    }
    self->ntouched = 0;
    self->ndead = 0;
    self->nlogged = 0;
    self->naudited = 0;
    return 0;
}

//  The lazy flush: only the session records whose last_hb moved (one put per
//  beating session); user records are rewritten by durable batches and a live
//  user's last_seen is rebuilt from its sessions at start. A session that beats
//  many times a second is written at most every flush_slack_ms, not at every
//  flush: the durable copy stays within the 5 s docs/protocol.md allows until
//  the next flush, and the write cost no longer grows with the beat rate.
static int
s_fill_flush(broker_store_t *store, void *arg)
{
    broker_state_t *self = arg;
    for (uint32_t u = broker_live_user_next(self->live, BROKER_LIVE_NONE);
         u != BROKER_LIVE_NONE; u = broker_live_user_next(self->live, u)) {
        broker_user_t *user = broker_live_user(self->live, u);
        if (!(user->flags & BROKER_U_DIRTY))
            continue;
        for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
            broker_session_t *session = broker_live_session(self->live, s);
            session->flags &= (uint8_t)~BROKER_S_FLUSHING;
            if ((session->flags & BROKER_S_DIRTY) &&
                self->flush_now - session->durable_hb >= self->flush_slack_ms) {
                session->flags |= BROKER_S_FLUSHING;
                broker_session_rec_t srec = {.last_hb = session->last_hb,
                                             .since = session->since,
                                             .state = session->state};
                snprintf(srec.device, sizeof(srec.device), "%s",
                         session->device ? session->device : "");
                if (broker_store_put_session(
                        store, broker_live_id(self->live, user->id),
                        broker_live_id(self->live, session->id), &srec))
                    return -1;
            }
            s = session->next;
        }
    }
    return s_write_pubs(self, store) ||
                   broker_store_put_meta(store, &self->meta)
               ? -1
               : 0;
}

bool
broker_state_dirty(const broker_state_t *self)
{
    return self->ndirty > 0 || broker_pubs_dirty(self->pubs);
}

int
broker_state_flush(broker_state_t *self)
{
    assert(self->ntouched == 0);
    if (!broker_state_dirty(self))
        return 0;
    self->flush_now = (uint64_t)pres_now_ms();
    if (broker_store_write(self->store, !self->defer_sync, s_fill_flush, self))
        return -1;
    //  Committed: what was written is durable; what waited stays dirty.
    self->ndirty = 0;
    for (uint32_t u = broker_live_user_next(self->live, BROKER_LIVE_NONE);
         u != BROKER_LIVE_NONE; u = broker_live_user_next(self->live, u)) {
        broker_user_t *user = broker_live_user(self->live, u);
        if (!(user->flags & BROKER_U_DIRTY))
            continue;
        bool waiting = false;
        for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
            broker_session_t *session = broker_live_session(self->live, s);
            if (session->flags & BROKER_S_FLUSHING) {
                session->durable_hb = session->last_hb;
                session->flags &=
                    (uint8_t) ~(BROKER_S_DIRTY | BROKER_S_FLUSHING);
            }
            waiting |= (session->flags & BROKER_S_DIRTY) != 0;
            s = session->next;
        }
        if (waiting)
            self->ndirty++;
        else
            user->flags &= (uint8_t)~BROKER_U_DIRTY;
    }
    broker_pubs_clean(self->pubs);
    return 0;
}

void
broker_state_defer_sync(broker_state_t *self, bool defer)
{
    self->defer_sync = defer;
}

bool
broker_state_deferring(const broker_state_t *self)
{
    return self->defer_sync;
}

int
broker_state_flush_all(broker_state_t *self)
{
    uint64_t slack = self->flush_slack_ms;
    self->flush_slack_ms = 0;
    int rc = broker_state_flush(self);
    self->flush_slack_ms = slack;
    return rc;
}

void
broker_state_set_term(broker_state_t *self, uint64_t term)
{
    self->term = term;
}

uint64_t
broker_state_now(const broker_state_t *self)
{
    return self->now;
}

void
broker_state_set_ha(broker_state_t *self, const broker_ha_stats_t *ha)
{
    self->ha = *ha;
}

const broker_ha_stats_t *
broker_state_ha(const broker_state_t *self)
{
    return self->ha.on ? &self->ha : NULL;
}

//  ---- outbox and accessors

size_t
broker_state_outbox_count(const broker_state_t *self)
{
    return self->nmsgs;
}

void
broker_state_outbox_get(const broker_state_t *self, size_t i,
                        const char **topic, size_t *topic_len,
                        const void **body, size_t *body_len)
{
    assert(i < self->nmsgs);
    const s_msg_t *m = &self->msgs[i];
    *topic = self->outbox + m->topic;
    *topic_len = m->topic_len;
    *body = self->outbox + m->body;
    *body_len = m->body_len;
}

void
broker_state_outbox_clear(broker_state_t *self)
{
    self->nmsgs = 0;
    self->outbox_len = 0;
}

broker_live_t *
broker_state_live(broker_state_t *self)
{
    return self->live;
}

broker_pubs_t *
broker_state_pubs(broker_state_t *self)
{
    return self->pubs;
}

broker_store_t *
broker_state_store(broker_state_t *self)
{
    return self->store;
}

const broker_meta_t *
broker_state_meta(const broker_state_t *self)
{
    return &self->meta;
}

broker_forbidden_t *
broker_state_forbidden(broker_state_t *self)
{
    return &self->forbidden;
}

uint64_t
broker_state_timeout_ms(const broker_state_t *self)
{
    return self->timeout_ms;
}

uint64_t
broker_state_grace_ms(const broker_state_t *self)
{
    return self->grace_ms;
}

const broker_quality_t *
broker_state_quality(const broker_state_t *self)
{
    return &self->quality;
}

static int
s_fill_point(broker_store_t *store, void *arg)
{
    broker_state_t *self = arg;
    return broker_store_put_point(store, self->point_minute, self->meta.online,
                                  self->meta.away);
}

int
broker_state_point(broker_state_t *self, uint64_t now_ms)
{
    assert(self->ntouched == 0);
    uint64_t minute = now_ms - now_ms % 60000;
    if (minute == self->point_minute)
        return 0;
    self->point_minute = minute;
    //  Synced here, or by the caller's sync thread (defer_sync).
    return broker_store_write(self->store, !self->defer_sync, s_fill_point,
                              self);
}
