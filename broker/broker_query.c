/*  broker_query: query replies (see broker_query.h). Packs with msgpack-c
    into a growable sbuffer: `snapshot` and `list` can be large. */
#include "broker_query.h"

#include <string.h>

#include "pres_log.h"
#include "pres_mp.h"

//  A user as every reply shows it.
typedef struct {
    char id[PRES_ID_MAX + 1];
    pres_state_t state;
    uint64_t last_seen;
    uint32_t sessions;
    pres_account_t account;
    uint32_t u;  //  resident index or BROKER_LIVE_NONE
} s_user_view_t;

static void
s_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void
s_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    s_str(pk, k);
    s_str(pk, v);
}

static void
s_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
    s_str(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void
s_kv_ok(msgpack_packer *pk)
{
    s_str(pk, "ok");
    msgpack_pack_true(pk);
}

void
broker_query_error(msgpack_sbuffer *out, const char *error)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    s_str(&pk, "ok");
    msgpack_pack_false(&pk);
    s_kv_str(&pk, "error", error);
}

//  Fill v for user id: resident from memory, else from LMDB (inside the
//  read txn). 0, BROKER_STORE_NOTFOUND or -1.
static int
s_view(broker_state_t *state, const char *id, size_t len, s_user_view_t *v)
{
    broker_live_t *live = broker_state_live(state);
    memcpy(v->id, id, len);
    v->id[len] = 0;
    v->u = broker_live_user_find(live, id, len);
    if (v->u != BROKER_LIVE_NONE) {
        broker_user_t *user = broker_live_user(live, v->u);
        v->state = user->state;
        v->last_seen = user->last_seen;
        v->sessions = user->nsessions;
        v->account = user->account;
        return 0;
    }
    broker_user_rec_t rec;
    int rc = broker_store_get_user(broker_state_store(state), id, len, &rec);
    if (rc)
        return rc;
    v->state = PRES_OFFLINE;  //  not resident = not live
    v->last_seen = rec.last_seen;
    v->sessions = 0;
    v->account = rec.account;
    return 0;
}

static void
s_pack_user(msgpack_packer *pk, const s_user_view_t *v, int extra)
{
    msgpack_pack_map(pk, (size_t)(5 + extra));
    s_kv_str(pk, "user", v->id);
    s_kv_str(pk, "state", pres_state_name(v->state));
    s_kv_uint(pk, "last_seen", v->last_seen);
    s_kv_uint(pk, "sessions", v->sessions);
    s_kv_str(pk, "account", pres_account_name(v->account));
}

//  `devices`: the live sessions of a resident user (none otherwise).
static void
s_pack_devices(msgpack_packer *pk, broker_state_t *state,
               const s_user_view_t *v)
{
    broker_live_t *live = broker_state_live(state);
    s_str(pk, "devices");
    if (v->u == BROKER_LIVE_NONE) {
        msgpack_pack_array(pk, 0);
        return;
    }
    broker_user_t *user = broker_live_user(live, v->u);
    msgpack_pack_array(pk, user->nsessions);
    for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
        broker_session_t *session = broker_live_session(live, s);
        msgpack_pack_map(pk, 5);
        s_kv_str(pk, "session", session->id);
        s_kv_str(pk, "device", session->device ? session->device : "");
        s_kv_uint(pk, "since", session->since);
        s_kv_uint(pk, "last_seen", session->last_hb);
        s_kv_str(pk, "state", pres_state_name(session->state));
        s = session->next;
    }
}

static int
s_get(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    s_user_view_t v;
    int rc = s_view(state, q->user, strlen(q->user), &v);
    if (rc) {
        broker_query_error(out, rc > 0 ? "not found" : "store error");
        return rc > 0 ? 0 : -1;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    s_kv_ok(&pk);
    s_kv_str(&pk, "user", v.id);
    s_kv_str(&pk, "state", pres_state_name(v.state));
    s_kv_uint(&pk, "last_seen", v.last_seen);
    s_kv_uint(&pk, "sessions", v.sessions);
    s_kv_str(&pk, "account", pres_account_name(v.account));
    s_pack_devices(&pk, state, &v);
    return 0;
}

//  get_many: every id in the order asked, unknown ones flagged; one read
//  txn (the caller's) for the whole request.
static int
s_get_many(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    s_kv_ok(&pk);
    s_str(&pk, "users");
    msgpack_pack_array(&pk, q->nusers);
    pres_mp_reader_t r;
    pres_mp_reader_init(&r, q->users_mp, q->users_mp_len);
    for (uint32_t i = 0; i < q->nusers; i++) {
        const char *id;
        uint32_t len;
        if (pres_mp_read_str(&r, &id, &len) != 0) {  //  decoded before
            msgpack_sbuffer_clear(out);
            broker_query_error(out, "malformed");
            return 0;
        }
        s_user_view_t v;
        int rc = s_view(state, id, len, &v);
        if (rc < 0) {
            msgpack_sbuffer_clear(out);
            broker_query_error(out, "store error");
            return -1;
        }
        if (rc > 0) {
            msgpack_pack_map(&pk, 3);
            s_kv_str(&pk, "user", v.id);
            s_kv_str(&pk, "state", "offline");
            s_str(&pk, "unknown");
            msgpack_pack_true(&pk);
            continue;
        }
        s_pack_user(&pk, &v, 1);
        s_pack_devices(&pk, state, &v);
    }
    return 0;
}

//  ---- change log

typedef struct {
    msgpack_sbuffer *body;  //  the changes, packed back to back
    uint32_t count;
    uint32_t limit;
    uint64_t last;  //  seq of the last change taken
    uint64_t want;  //  next seq expected (the log has no holes)
    bool hole;
} s_replay_t;

static int
s_replay_one(uint64_t seq, const void *body, size_t len, void *arg)
{
    s_replay_t *rp = arg;
    if (seq != rp->want) {
        rp->hole = true;
        return 1;
    }
    msgpack_sbuffer_write(rp->body, body, len);
    rp->last = seq;
    rp->want = seq + 1;
    return ++rp->count >= rp->limit ? 1 : 0;
}

static int
s_changes_since(broker_state_t *state, const pres_query_t *q,
                msgpack_sbuffer *out)
{
    uint64_t head = broker_state_meta(state)->seq;
    broker_store_t *store = broker_state_store(state);
    if (q->seq > head) {  //  ahead of this broker: its view is not ours
        broker_query_error(out, "resync");
        return 0;
    }
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    s_replay_t rp = {.body = &body, .limit = q->limit, .want = q->seq + 1};
    if (q->seq < head) {
        uint64_t first = 0;
        int rc = broker_store_first_change(store, &first);
        if (rc < 0 || (rc == 0 && broker_store_each_change(
                                      store, q->seq + 1, s_replay_one, &rp))) {
            msgpack_sbuffer_destroy(&body);
            broker_query_error(out, "store error");
            return -1;
        }
        //  The log must hold seq + 1 (and what follows, without holes).
        if (rc > 0 || first > q->seq + 1 || rp.hole || rp.count == 0) {
            msgpack_sbuffer_destroy(&body);
            broker_query_error(out, "resync");
            return 0;
        }
    }
    bool more = rp.count > 0 && rp.last < head;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, more ? 3 : 2);
    s_kv_ok(&pk);
    s_str(&pk, "changes");
    msgpack_pack_array(&pk, rp.count);
    msgpack_sbuffer_write(out, body.data, body.size);
    if (more)
        s_kv_uint(&pk, "next", rp.last);
    msgpack_sbuffer_destroy(&body);
    return 0;
}

//  ---- audit, history, series

typedef struct {
    msgpack_packer *pk;
    uint32_t count;
    uint32_t limit;
} s_entries_t;

static int
s_audit_one(const broker_audit_rec_t *rec, void *arg)
{
    s_entries_t *e = arg;
    msgpack_pack_map(e->pk, 5);
    s_kv_uint(e->pk, "at", rec->at);
    s_kv_str(e->pk, "by", rec->by);
    s_kv_str(e->pk, "old", pres_account_name(rec->old));
    s_kv_str(e->pk, "new", pres_account_name(rec->status));
    s_kv_str(e->pk, "reason", rec->reason);
    return ++e->count >= e->limit ? 1 : 0;
}

static int
s_hist_one(const broker_hist_rec_t *rec, void *arg)
{
    s_entries_t *e = arg;
    msgpack_pack_map(e->pk, 5);
    s_kv_uint(e->pk, "seq", rec->seq);
    s_kv_uint(e->pk, "at", rec->at);
    s_kv_str(e->pk, "state", pres_state_name(rec->state));
    s_kv_str(e->pk, "prev", pres_state_name(rec->prev));
    s_kv_str(e->pk, "reason", pres_reason_name(rec->reason));
    return ++e->count >= e->limit ? 1 : 0;
}

//  audit or history of q->user: {ok, entries: [...]}, newest first. The
//  entries are packed into a side buffer first (their count is known only
//  at the end).
static int
s_entries(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer bpk;
    msgpack_packer_init(&bpk, &body, msgpack_sbuffer_write);
    s_entries_t e = {.pk = &bpk, .limit = q->limit};
    broker_store_t *store = broker_state_store(state);
    int rc = q->op == PRES_Q_AUDIT
                 ? broker_store_each_audit(store, q->user, s_audit_one, &e)
                 : broker_store_each_history(store, q->user, s_hist_one, &e);
    if (rc) {
        msgpack_sbuffer_destroy(&body);
        broker_query_error(out, "store error");
        return -1;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    s_kv_ok(&pk);
    s_str(&pk, "entries");
    msgpack_pack_array(&pk, e.count);
    msgpack_sbuffer_write(out, body.data, body.size);
    msgpack_sbuffer_destroy(&body);
    return 0;
}

typedef struct {
    msgpack_packer *pk;
    uint32_t count;
    uint64_t now_minute;  //  the live point replaces a stored one
} s_points_t;

static void
s_point(msgpack_packer *pk, uint64_t at, uint64_t online, uint64_t away)
{
    msgpack_pack_map(pk, 3);
    s_kv_uint(pk, "at", at);
    s_kv_uint(pk, "online", online);
    s_kv_uint(pk, "away", away);
}

static int
s_point_one(uint64_t minute, uint64_t online, uint64_t away, void *arg)
{
    s_points_t *p = arg;
    if (minute >= p->now_minute)
        return 1;
    s_point(p->pk, minute, online, away);
    p->count++;
    return 0;
}

//  series: the stored points of the last q->minutes minutes, oldest
//  first, the current minute from memory (now) as the last point.
static int
s_series(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    uint64_t now = (uint64_t)pres_now_ms();
    uint64_t minute = now - now % 60000;
    uint64_t span = (uint64_t)(q->minutes - 1) * 60000;
    uint64_t from = minute > span ? minute - span : 0;
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer bpk;
    msgpack_packer_init(&bpk, &body, msgpack_sbuffer_write);
    s_points_t p = {.pk = &bpk, .now_minute = minute};
    if (broker_store_each_point(broker_state_store(state), from, s_point_one,
                                &p)) {
        msgpack_sbuffer_destroy(&body);
        broker_query_error(out, "store error");
        return -1;
    }
    const broker_meta_t *m = broker_state_meta(state);
    s_point(&bpk, minute, m->online, m->away);
    p.count++;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    s_kv_ok(&pk);
    s_str(&pk, "points");
    msgpack_pack_array(&pk, p.count);
    msgpack_sbuffer_write(out, body.data, body.size);
    msgpack_sbuffer_destroy(&body);
    return 0;
}

//  ---- list

typedef struct {
    broker_state_t *state;
    const pres_query_t *q;
    s_user_view_t *page;  //  limit + 1 views
    uint32_t count;       //  views collected
    int rc;               //  store error
} s_list_t;

static int
s_list_one(const char *user, size_t len, void *arg)
{
    s_list_t *l = arg;
    s_user_view_t *v = &l->page[l->count];
    int rc = s_view(l->state, user, len, v);
    if (rc < 0) {
        l->rc = -1;
        return -1;
    }
    if (rc > 0)  //  indexed but gone: cannot happen between batches
        return 0;
    if (l->q->has_state && v->state != l->q->state)
        return 0;
    if (l->q->has_account && v->account != l->q->account)
        return 0;
    //  Collect one more than the page to know whether a next page exists.
    return ++l->count > l->q->limit ? 1 : 0;
}

static int
s_list(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    s_list_t l = {.state = state, .q = q};
    l.page = calloc((size_t)q->limit + 1, sizeof(*l.page));
    if (!l.page) {
        broker_query_error(out, "out of memory");
        return -1;
    }
    int rc = broker_store_each_user(broker_state_store(state), q->has_state,
                                    q->state, q->cursor, s_list_one, &l);
    if (rc || l.rc) {
        free(l.page);
        broker_query_error(out, "store error");
        return -1;
    }
    bool more = l.count > q->limit;
    uint32_t n = more ? q->limit : l.count;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, more ? 3 : 2);
    s_kv_ok(&pk);
    s_str(&pk, "users");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        s_pack_user(&pk, &l.page[i], 0);
    if (more)
        s_kv_str(&pk, "next", l.page[n - 1].id);
    free(l.page);
    return 0;
}

//  ---- stats and snapshot

//  stats.quality: presence-quality counters since the broker started.
static void
s_pack_quality(msgpack_packer *pk, const broker_quality_t *qy)
{
    s_str(pk, "quality");
    msgpack_pack_map(pk, 5);
    s_str(pk, "transitions");
    msgpack_pack_map(pk, PRES_REASON_COUNT);
    for (int r = 0; r < PRES_REASON_COUNT; r++)
        s_kv_uint(pk, pres_reason_name((pres_reason_t)r), qy->transitions[r]);
    s_kv_uint(pk, "flaps_suppressed", qy->flaps_suppressed);
    s_str(pk, "timeout_lateness_ms");
    msgpack_pack_map(pk, 3);
    s_str(pk, "le");  //  bucket upper bounds; the last bucket is +Inf
    msgpack_pack_array(pk, BROKER_LATE_BUCKETS - 1);
    for (int b = 0; b < BROKER_LATE_BUCKETS - 1; b++)
        msgpack_pack_uint64(pk, broker_late_bounds[b]);
    s_str(pk, "counts");
    msgpack_pack_array(pk, BROKER_LATE_BUCKETS);
    for (int b = 0; b < BROKER_LATE_BUCKETS; b++)
        msgpack_pack_uint64(pk, qy->late[b]);
    s_kv_uint(pk, "sum", qy->late_sum_ms);
    s_str(pk, "forced_offline");
    msgpack_pack_map(pk, PRES_ACCOUNT_COUNT - 1);
    for (int a = 1; a < PRES_ACCOUNT_COUNT; a++)
        s_kv_uint(pk, pres_account_name((pres_account_t)a),
                  qy->forced_offline[a]);
    s_str(pk, "refused");
    msgpack_pack_map(pk, BROKER_REFUSE_COUNT);
    for (int i = 0; i < BROKER_REFUSE_COUNT; i++)
        s_kv_uint(pk, broker_refuse_names[i], qy->refused[i]);
}

#define S_PUBS_LISTED 100  //  publishers listed by `stats`

static int
s_cmp_recent(const void *a, const void *b)
{
    const broker_pub_t *x = *(broker_pub_t *const *)a;
    const broker_pub_t *y = *(broker_pub_t *const *)b;
    return x->seen > y->seen ? -1 : x->seen < y->seen;
}

static void
s_stats(broker_state_t *state, msgpack_sbuffer *out)
{
    const broker_meta_t *m = broker_state_meta(state);
    broker_pubs_t *pubs = broker_state_pubs(state);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    const broker_ha_stats_t *ha = broker_state_ha(state);
    msgpack_pack_map(&pk, 11 + (ha != NULL));
    s_kv_ok(&pk);
    s_kv_uint(&pk, "seq", m->seq);
    s_pack_quality(&pk, broker_state_quality(state));
    if (ha) {
        s_str(&pk, "ha");
        msgpack_pack_map(&pk, 4);
        s_kv_str(&pk, "role", ha->leader ? "leader" : "standby");
        s_kv_uint(&pk, "term", ha->term);
        s_kv_str(&pk, "leader", ha->leader_name);
        s_kv_uint(&pk, "lag", ha->lag);
    }
    s_str(&pk, "users");
    msgpack_pack_map(&pk, 3);
    s_kv_uint(&pk, "online", m->online);
    s_kv_uint(&pk, "away", m->away);
    s_kv_uint(&pk, "offline", m->users - m->online - m->away);
    s_str(&pk, "accounts");
    msgpack_pack_map(&pk, PRES_ACCOUNT_COUNT);
    for (int a = 0; a < PRES_ACCOUNT_COUNT; a++)
        s_kv_uint(&pk, pres_account_name((pres_account_t)a), m->accounts[a]);
    s_kv_uint(&pk, "sessions", m->sessions);
    s_str(&pk, "events");
    msgpack_pack_map(&pk, 4);
    s_kv_uint(&pk, "applied", m->applied);
    s_kv_uint(&pk, "refused", m->refused);
    s_kv_uint(&pk, "lost", m->lost);
    s_kv_uint(&pk, "malformed", m->malformed);
    //  Since this broker started: attempts to change accounts outside the
    //  admin endpoint, and peers the admin endpoint turned away.
    const broker_forbidden_t *fb = broker_state_forbidden(state);
    s_str(&pk, "forbidden");
    msgpack_pack_map(&pk, 3);
    s_kv_uint(&pk, "events", fb->events);
    s_kv_uint(&pk, "queries", fb->queries);
    s_kv_uint(&pk, "peers", fb->peers);
    //  Since this broker started: group commit shows as commits << events.
    broker_store_t *store = broker_state_store(state);
    s_str(&pk, "storage");
    msgpack_pack_map(&pk, 3);
    s_kv_uint(&pk, "commits", broker_store_commits(store));
    s_kv_uint(&pk, "syncs", broker_store_syncs(store));
    s_kv_uint(&pk, "map_mib", broker_store_map_size(store) >> 20);
    //  The most recently seen publishers first, at most S_PUBS_LISTED.
    size_t n = broker_pubs_count(pubs);
    broker_pub_t **recent = calloc(n ? n : 1, sizeof(*recent));
    if (!recent)
        n = 0;
    for (size_t i = 0; i < n; i++)
        recent[i] = broker_pubs_at(pubs, i);
    if (n)
        qsort(recent, n, sizeof(*recent), s_cmp_recent);
    s_kv_uint(&pk, "publishers_total", broker_pubs_count(pubs));
    s_str(&pk, "publishers");
    size_t listed = n < S_PUBS_LISTED ? n : S_PUBS_LISTED;
    msgpack_pack_array(&pk, listed);
    for (size_t i = 0; i < listed; i++) {
        msgpack_pack_map(&pk, 3);
        s_kv_str(&pk, "src", recent[i]->src);
        s_kv_uint(&pk, "seq", recent[i]->last);
        s_kv_uint(&pk, "lost", recent[i]->lost);
    }
    free(recent);
}

static void
s_snapshot(broker_state_t *state, msgpack_sbuffer *out)
{
    broker_live_t *live = broker_state_live(state);
    uint64_t timeout = broker_state_timeout_ms(state);
    //  Between batches every resident user is live (offline ones were
    //  evicted at the commit), but count to be exact.
    uint32_t n = 0;
    for (uint32_t u = broker_live_user_next(live, BROKER_LIVE_NONE);
         u != BROKER_LIVE_NONE; u = broker_live_user_next(live, u))
        if (broker_live_user(live, u)->state != PRES_OFFLINE)
            n++;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    s_kv_ok(&pk);
    s_kv_uint(&pk, "seq", broker_state_meta(state)->seq);
    s_str(&pk, "users");
    msgpack_pack_array(&pk, n);
    for (uint32_t u = broker_live_user_next(live, BROKER_LIVE_NONE);
         u != BROKER_LIVE_NONE; u = broker_live_user_next(live, u)) {
        broker_user_t *user = broker_live_user(live, u);
        if (user->state == PRES_OFFLINE)
            continue;
        s_user_view_t v = {.state = user->state,
                           .last_seen = user->last_seen,
                           .sessions = user->nsessions,
                           .account = user->account};
        memcpy(v.id, user->id, (size_t)user->len + 1);
        s_pack_user(&pk, &v, 1);
        s_str(&pk, "live");
        msgpack_pack_array(&pk, user->nsessions);
        for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
            broker_session_t *session = broker_live_session(live, s);
            msgpack_pack_map(&pk, 3);
            s_kv_str(&pk, "session", session->id);
            s_kv_str(&pk, "state", pres_state_name(session->state));
            s_kv_uint(&pk, "deadline", session->last_hb + timeout);
            s = session->next;
        }
    }
}

static int
s_read_op(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    switch (q->op) {
    case PRES_Q_GET:
        return s_get(state, q, out);
    case PRES_Q_LIST:
        return s_list(state, q, out);
    case PRES_Q_GET_MANY:
        return s_get_many(state, q, out);
    case PRES_Q_CHANGES_SINCE:
        return s_changes_since(state, q, out);
    case PRES_Q_SERIES:
        return s_series(state, q, out);
    default:
        return s_entries(state, q, out);
    }
}

int
broker_query_answer(broker_state_t *state, const void *req, size_t len,
                    pres_query_t *q, msgpack_sbuffer *out)
{
    const char *why = "malformed";
    if (pres_query_decode(q, req, len, &why)) {
        broker_query_error(out, why);
        return 0;
    }
    int rc = 0;
    broker_store_t *store = broker_state_store(state);
    switch (q->op) {
    case PRES_Q_ACCOUNT:
        //  Account changes travel only on the admin endpoint.
        broker_state_forbidden(state)->queries++;
        broker_query_error(out, "forbidden");
        break;
    case PRES_Q_STATS:
        s_stats(state, out);
        break;
    case PRES_Q_SNAPSHOT:
        s_snapshot(state, out);
        break;
    case PRES_Q_GET:
    case PRES_Q_LIST:
    case PRES_Q_GET_MANY:
    case PRES_Q_CHANGES_SINCE:
    case PRES_Q_AUDIT:
    case PRES_Q_HISTORY:
    case PRES_Q_SERIES:
        //  One read txn per request.
        if (broker_store_read_begin(store)) {
            broker_query_error(out, "store error");
            return -1;
        }
        rc = s_read_op(state, q, out);
        broker_store_read_end(store);
        break;
    default:
        broker_query_error(out, "unknown op");
    }
    return rc;
}

int
broker_query_admin(const void *req, size_t len, pres_query_t *q,
                   msgpack_sbuffer *out)
{
    const char *why = "malformed";
    if (pres_query_decode(q, req, len, &why)) {
        broker_query_error(out, why);
        return 0;
    }
    if (q->op != PRES_Q_ACCOUNT) {
        broker_query_error(out, "the admin endpoint takes only account");
        return 0;
    }
    return 1;
}

void
broker_query_account_reply(const pres_query_t *q, int rc, uint64_t seq,
                           msgpack_sbuffer *out)
{
    if (rc) {
        broker_query_error(out, "account change failed");
        return;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    s_kv_ok(&pk);
    s_kv_str(&pk, "user", q->user);
    s_kv_str(&pk, "account", pres_account_name(q->status));
    s_kv_uint(&pk, "seq", seq);
}
