/*  broker_query: query replies (see broker_query.h). Packs with msgpack-c
    into a growable sbuffer: `snapshot` and `list` can be large. */
#include "broker_query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"
#include "pres_mp.h"
#include "pres_mpw.h"

//  A user as every reply shows it.
typedef struct {
    char id[PRES_ID_MAX + 1];
    pres_state_t state;
    uint64_t last_seen;
    uint32_t sessions;
    pres_account_t account;
    uint32_t u;  //  resident index or BROKER_LIVE_NONE
} s_user_view_t;

//  Every map of a reply is a pres_mpw_map_t: its entries count themselves.
//  Begin a reply (the top-level map) on out.
static void
s_reply_begin(pres_mpw_map_t *m, msgpack_packer *pk, msgpack_sbuffer *out)
{
    msgpack_packer_init(pk, out, msgpack_sbuffer_write);
    pres_mpw_map_begin(m, pk, out);
}

//  End a reply; one that could not be written is replaced by an error.
static int
s_reply_end(pres_mpw_map_t *m, msgpack_sbuffer *out)
{
    if (pres_mpw_map_end(m) == 0)
        return 0;
    pres_log_error("broker_query: msgpack_sbuffer_write(): out of memory");
    msgpack_sbuffer_clear(out);
    broker_query_error(out, "out of memory");
    return -1;
}

//  Begin an ok reply whose `key` is a list of count items, already packed
//  back to back in body (destroyed here). The caller may add fields, then
//  ends with s_reply_end.
static void
s_reply_list(pres_mpw_map_t *m, msgpack_packer *pk, msgpack_sbuffer *out,
             const char *key, uint32_t count, msgpack_sbuffer *body)
{
    s_reply_begin(m, pk, out);
    pres_mpw_kv_bool(m, "ok", true);
    pres_mpw_key(m, key);
    msgpack_pack_array(pk, count);
    if (msgpack_sbuffer_write(out, body->data, body->size) != 0)
        m->failed = true;
    msgpack_sbuffer_destroy(body);
}

//  A whole reply {ok, key: [count items of body]} (body destroyed here).
static int
s_reply_items(msgpack_sbuffer *out, const char *key, uint32_t count,
              msgpack_sbuffer *body)
{
    msgpack_packer pk;
    pres_mpw_map_t m;
    s_reply_list(&m, &pk, out, key, count, body);
    return s_reply_end(&m, out);
}

void
broker_query_error(msgpack_sbuffer *out, const char *error)
{
    msgpack_packer pk;
    pres_mpw_map_t m;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    pres_mpw_map_begin(&m, &pk, out);
    pres_mpw_kv_bool(&m, "ok", false);
    pres_mpw_kv_str(&m, "error", error);
    pres_mpw_map_end(&m);
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

//  The fields of a user every reply shows, into the user's map m.
static void
s_pack_user(pres_mpw_map_t *m, const s_user_view_t *v)
{
    pres_mpw_kv_str(m, "user", v->id);
    pres_mpw_kv_str(m, "state", pres_state_name(v->state));
    pres_mpw_kv_uint(m, "last_seen", v->last_seen);
    pres_mpw_kv_uint(m, "sessions", v->sessions);
    pres_mpw_kv_str(m, "account", pres_account_name(v->account));
}

//  `devices`: the live sessions of a resident user (none otherwise).
static void
s_pack_devices(pres_mpw_map_t *m, broker_state_t *state, const s_user_view_t *v)
{
    broker_live_t *live = broker_state_live(state);
    pres_mpw_key(m, "devices");
    if (v->u == BROKER_LIVE_NONE) {
        msgpack_pack_array(m->pk, 0);
        return;
    }
    broker_user_t *user = broker_live_user(live, v->u);
    msgpack_pack_array(m->pk, user->nsessions);
    for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
        broker_session_t *session = broker_live_session(live, s);
        pres_mpw_map_t d;
        pres_mpw_map_begin_in(&d, m);
        pres_mpw_kv_str(&d, "session", broker_live_id(live, session->id));
        pres_mpw_kv_str(&d, "device", session->device ? session->device : "");
        pres_mpw_kv_uint(&d, "since", session->since);
        pres_mpw_kv_uint(&d, "last_seen", session->last_hb);
        pres_mpw_kv_str(&d, "state", pres_state_name(session->state));
        pres_mpw_map_end(&d);
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
    pres_mpw_map_t m;
    s_reply_begin(&m, &pk, out);
    pres_mpw_kv_bool(&m, "ok", true);
    s_pack_user(&m, &v);
    s_pack_devices(&m, state, &v);
    return s_reply_end(&m, out);
}

//  get_many: every id in the order asked, unknown ones flagged; one read
//  txn (the caller's) for the whole request.
static int
s_get_many(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    pres_mpw_map_t m;
    s_reply_begin(&m, &pk, out);
    pres_mpw_kv_bool(&m, "ok", true);
    pres_mpw_key(&m, "users");
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
        pres_mpw_map_t u;
        pres_mpw_map_begin_in(&u, &m);
        if (rc > 0) {
            pres_mpw_kv_str(&u, "user", v.id);
            pres_mpw_kv_str(&u, "state", "offline");
            pres_mpw_kv_bool(&u, "unknown", true);
        } else {
            s_pack_user(&u, &v);
            s_pack_devices(&u, state, &v);
        }
        pres_mpw_map_end(&u);
    }
    return s_reply_end(&m, out);
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
    pres_mpw_map_t m;
    s_reply_list(&m, &pk, out, "changes", rp.count, &body);
    if (more)
        pres_mpw_kv_uint(&m, "next", rp.last);
    return s_reply_end(&m, out);
}

//  ---- audit, history, series

typedef struct {
    msgpack_packer *pk;  //  into body
    msgpack_sbuffer *body;
    uint32_t count;
    uint32_t limit;
    bool failed;  //  an entry could not be written
} s_entries_t;

static int
s_audit_one(const broker_audit_rec_t *rec, void *arg)
{
    s_entries_t *e = arg;
    pres_mpw_map_t m;
    pres_mpw_map_begin(&m, e->pk, e->body);
    pres_mpw_kv_uint(&m, "at", rec->at);
    pres_mpw_kv_str(&m, "by", rec->by);
    pres_mpw_kv_str(&m, "old", pres_account_name(rec->old));
    pres_mpw_kv_str(&m, "new", pres_account_name(rec->status));
    pres_mpw_kv_str(&m, "reason", rec->reason);
    if (pres_mpw_map_end(&m))
        e->failed = true;
    return ++e->count >= e->limit ? 1 : 0;
}

static int
s_hist_one(const broker_hist_rec_t *rec, void *arg)
{
    s_entries_t *e = arg;
    pres_mpw_map_t m;
    pres_mpw_map_begin(&m, e->pk, e->body);
    pres_mpw_kv_uint(&m, "seq", rec->seq);
    pres_mpw_kv_uint(&m, "at", rec->at);
    pres_mpw_kv_str(&m, "state", pres_state_name(rec->state));
    pres_mpw_kv_str(&m, "prev", pres_state_name(rec->prev));
    pres_mpw_kv_str(&m, "reason", pres_reason_name(rec->reason));
    if (pres_mpw_map_end(&m))
        e->failed = true;
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
    s_entries_t e = {.pk = &bpk, .body = &body, .limit = q->limit};
    broker_store_t *store = broker_state_store(state);
    int rc = q->op == PRES_Q_AUDIT
                 ? broker_store_each_audit(store, q->user, s_audit_one, &e)
                 : broker_store_each_history(store, q->user, s_hist_one, &e);
    if (rc || e.failed) {
        msgpack_sbuffer_destroy(&body);
        broker_query_error(out, rc ? "store error" : "out of memory");
        return -1;
    }
    return s_reply_items(out, "entries", e.count, &body);
}

typedef struct {
    msgpack_packer *pk;  //  into body
    msgpack_sbuffer *body;
    uint32_t count;
    uint64_t now_minute;  //  the live point replaces a stored one
} s_points_t;

static void
s_point(s_points_t *p, uint64_t at, uint64_t online, uint64_t away)
{
    //  A small map (fixmap): its end cannot fail.
    pres_mpw_map_t m;
    pres_mpw_map_begin(&m, p->pk, p->body);
    pres_mpw_kv_uint(&m, "at", at);
    pres_mpw_kv_uint(&m, "online", online);
    pres_mpw_kv_uint(&m, "away", away);
    pres_mpw_map_end(&m);
}

static int
s_point_one(uint64_t minute, uint64_t online, uint64_t away, void *arg)
{
    s_points_t *p = arg;
    if (minute >= p->now_minute)
        return 1;
    s_point(p, minute, online, away);
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
    s_points_t p = {.pk = &bpk, .body = &body, .now_minute = minute};
    if (broker_store_each_point(broker_state_store(state), from, s_point_one,
                                &p)) {
        msgpack_sbuffer_destroy(&body);
        broker_query_error(out, "store error");
        return -1;
    }
    const broker_meta_t *m = broker_state_meta(state);
    s_point(&p, minute, m->online, m->away);
    p.count++;
    return s_reply_items(out, "points", p.count, &body);
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
    pres_mpw_map_t m;
    s_reply_begin(&m, &pk, out);
    pres_mpw_kv_bool(&m, "ok", true);
    pres_mpw_key(&m, "users");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        pres_mpw_map_t u;
        pres_mpw_map_begin_in(&u, &m);
        s_pack_user(&u, &l.page[i]);
        pres_mpw_map_end(&u);
    }
    if (more)
        pres_mpw_kv_str(&m, "next", l.page[n - 1].id);
    free(l.page);
    return s_reply_end(&m, out);
}

//  ---- stats and snapshot

//  stats.quality: presence-quality counters since the broker started.
static void
s_pack_quality(pres_mpw_map_t *m, const broker_quality_t *qy)
{
    msgpack_packer *pk = m->pk;
    pres_mpw_map_t qm, t, late, forced, refused;
    pres_mpw_key(m, "quality");
    pres_mpw_map_begin_in(&qm, m);
    pres_mpw_key(&qm, "transitions");
    pres_mpw_map_begin_in(&t, &qm);
    for (int r = 0; r < PRES_REASON_COUNT; r++)
        pres_mpw_kv_uint(&t, pres_reason_name((pres_reason_t)r),
                         qy->transitions[r]);
    pres_mpw_map_end(&t);
    pres_mpw_kv_uint(&qm, "flaps_suppressed", qy->flaps_suppressed);
    pres_mpw_kv_uint(&qm, "due_notices", qy->due_notices);
    pres_mpw_key(&qm, "timeout_lateness_ms");
    pres_mpw_map_begin_in(&late, &qm);
    pres_mpw_key(&late, "le");  //  bucket upper bounds; the last is +Inf
    msgpack_pack_array(pk, BROKER_LATE_BUCKETS - 1);
    for (int b = 0; b < BROKER_LATE_BUCKETS - 1; b++)
        msgpack_pack_uint64(pk, broker_late_bounds[b]);
    pres_mpw_key(&late, "counts");
    msgpack_pack_array(pk, BROKER_LATE_BUCKETS);
    for (int b = 0; b < BROKER_LATE_BUCKETS; b++)
        msgpack_pack_uint64(pk, qy->late[b]);
    pres_mpw_kv_uint(&late, "sum", qy->late_sum_ms);
    pres_mpw_map_end(&late);
    pres_mpw_key(&qm, "forced_offline");
    pres_mpw_map_begin_in(&forced, &qm);
    for (int a = 1; a < PRES_ACCOUNT_COUNT; a++)
        pres_mpw_kv_uint(&forced, pres_account_name((pres_account_t)a),
                         qy->forced_offline[a]);
    pres_mpw_map_end(&forced);
    pres_mpw_key(&qm, "refused");
    pres_mpw_map_begin_in(&refused, &qm);
    for (int i = 0; i < BROKER_REFUSE_COUNT; i++)
        pres_mpw_kv_uint(&refused, broker_refuse_names[i], qy->refused[i]);
    pres_mpw_map_end(&refused);
    pres_mpw_map_end(&qm);
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
    pres_mpw_map_t r, sub;
    s_reply_begin(&r, &pk, out);
    const broker_ha_stats_t *ha = broker_state_ha(state);
    pres_mpw_kv_bool(&r, "ok", true);
    pres_mpw_kv_uint(&r, "seq", m->seq);
    s_pack_quality(&r, broker_state_quality(state));
    if (ha) {
        pres_mpw_key(&r, "ha");
        pres_mpw_map_begin_in(&sub, &r);
        pres_mpw_kv_str(&sub, "role", ha->leader ? "leader" : "standby");
        pres_mpw_kv_uint(&sub, "term", ha->term);
        pres_mpw_kv_str(&sub, "leader", ha->leader_name);
        pres_mpw_kv_uint(&sub, "lag", ha->lag);
        pres_mpw_map_end(&sub);
    }
    pres_mpw_key(&r, "users");
    pres_mpw_map_begin_in(&sub, &r);
    pres_mpw_kv_uint(&sub, "online", m->online);
    pres_mpw_kv_uint(&sub, "away", m->away);
    pres_mpw_kv_uint(&sub, "offline", m->users - m->online - m->away);
    pres_mpw_map_end(&sub);
    pres_mpw_key(&r, "accounts");
    pres_mpw_map_begin_in(&sub, &r);
    for (int a = 0; a < PRES_ACCOUNT_COUNT; a++)
        pres_mpw_kv_uint(&sub, pres_account_name((pres_account_t)a),
                         m->accounts[a]);
    pres_mpw_map_end(&sub);
    pres_mpw_kv_uint(&r, "sessions", m->sessions);
    pres_mpw_key(&r, "events");
    pres_mpw_map_begin_in(&sub, &r);
    pres_mpw_kv_uint(&sub, "applied", m->applied);
    pres_mpw_kv_uint(&sub, "refused", m->refused);
    pres_mpw_kv_uint(&sub, "lost", m->lost);
    pres_mpw_kv_uint(&sub, "malformed", m->malformed);
    pres_mpw_map_end(&sub);
    //  Since this broker started: attempts to change accounts outside the
    //  admin endpoint, and peers the admin endpoint turned away.
    const broker_forbidden_t *fb = broker_state_forbidden(state);
    pres_mpw_key(&r, "forbidden");
    pres_mpw_map_begin_in(&sub, &r);
    pres_mpw_kv_uint(&sub, "events", fb->events);
    pres_mpw_kv_uint(&sub, "queries", fb->queries);
    pres_mpw_kv_uint(&sub, "peers", fb->peers);
    pres_mpw_map_end(&sub);
    //  Since this broker started: group commit shows as commits << events.
    broker_store_t *store = broker_state_store(state);
    pres_mpw_key(&r, "storage");
    pres_mpw_map_begin_in(&sub, &r);
    pres_mpw_kv_uint(&sub, "commits", broker_store_commits(store));
    pres_mpw_kv_uint(&sub, "syncs", broker_store_syncs(store));
    pres_mpw_kv_uint(&sub, "map_mib", broker_store_map_size(store) >> 20);
    pres_mpw_map_end(&sub);
    //  The most recently seen publishers first, at most S_PUBS_LISTED.
    size_t n = broker_pubs_count(pubs);
    broker_pub_t **recent = calloc(n ? n : 1, sizeof(*recent));
    if (!recent)
        n = 0;
    for (size_t i = 0; i < n; i++)
        recent[i] = broker_pubs_at(pubs, i);
    if (n)
        qsort(recent, n, sizeof(*recent), s_cmp_recent);
    pres_mpw_kv_uint(&r, "publishers_total", broker_pubs_count(pubs));
    pres_mpw_key(&r, "publishers");
    size_t listed = n < S_PUBS_LISTED ? n : S_PUBS_LISTED;
    msgpack_pack_array(&pk, listed);
    for (size_t i = 0; i < listed; i++) {
        pres_mpw_map_begin_in(&sub, &r);
        pres_mpw_kv_str(&sub, "src", recent[i]->src);
        pres_mpw_kv_uint(&sub, "seq", recent[i]->last);
        pres_mpw_kv_uint(&sub, "lost", recent[i]->lost);
        pres_mpw_map_end(&sub);
    }
    free(recent);
    s_reply_end(&r, out);
}

//  A snapshot page: the live users at index `from` and after, at most
//  `limit` of them (0: all). The cursor is the index to go on from, as a
//  decimal string: opaque to clients. A user added between pages at an
//  index already passed is not on a later page, but its change has a seq
//  above the first page's, so a client that replays changes from there
//  (docs/protocol.md) has it.
static int
s_snapshot_cursor(const char *cursor, uint32_t *from)
{
    char *end;
    if (!*cursor) {
        *from = 0;
        return 0;
    }
    errno = 0;
    unsigned long v = strtoul(cursor, &end, 10);
    if (*end || errno || v >= BROKER_LIVE_NONE || *cursor < '0' ||
        *cursor > '9')
        return -1;
    *from = (uint32_t)v;
    return 0;
}

static void
s_snapshot(broker_state_t *state, const pres_query_t *q, msgpack_sbuffer *out)
{
    uint32_t from;
    if (s_snapshot_cursor(q->cursor, &from)) {
        broker_query_error(out, "bad cursor");
        return;
    }
    broker_live_t *live = broker_state_live(state);
    uint64_t timeout = broker_state_timeout_ms(state);
    uint32_t limit = q->limit ? q->limit : UINT32_MAX;
    //  Between batches every resident user is live (offline ones were
    //  evicted at the commit), but count to be exact.
    uint32_t n = 0, end = BROKER_LIVE_NONE;
    uint32_t u = from ? broker_live_user_next(live, from - 1)
                      : broker_live_user_next(live, BROKER_LIVE_NONE);
    for (; u != BROKER_LIVE_NONE; u = broker_live_user_next(live, u)) {
        if (broker_live_user(live, u)->state == PRES_OFFLINE)
            continue;
        if (n == limit) {
            end = u;  //  the first user of the next page
            break;
        }
        n++;
    }
    msgpack_packer pk;
    pres_mpw_map_t r;
    s_reply_begin(&r, &pk, out);
    pres_mpw_kv_bool(&r, "ok", true);
    pres_mpw_kv_uint(&r, "seq", broker_state_meta(state)->seq);
    pres_mpw_key(&r, "users");
    msgpack_pack_array(&pk, n);
    u = from ? broker_live_user_next(live, from - 1)
             : broker_live_user_next(live, BROKER_LIVE_NONE);
    for (; u != end; u = broker_live_user_next(live, u)) {
        broker_user_t *user = broker_live_user(live, u);
        if (user->state == PRES_OFFLINE)
            continue;
        s_user_view_t v = {.state = user->state,
                           .last_seen = user->last_seen,
                           .sessions = user->nsessions,
                           .account = user->account};
        memcpy(v.id, broker_live_id(live, user->id), (size_t)user->len + 1);
        pres_mpw_map_t um;
        pres_mpw_map_begin_in(&um, &r);
        s_pack_user(&um, &v);
        pres_mpw_key(&um, "live");
        msgpack_pack_array(&pk, user->nsessions);
        for (uint32_t s = user->first; s != BROKER_LIVE_NONE;) {
            broker_session_t *session = broker_live_session(live, s);
            pres_mpw_map_t sm;
            pres_mpw_map_begin_in(&sm, &um);
            pres_mpw_kv_str(&sm, "session", broker_live_id(live, session->id));
            pres_mpw_kv_str(&sm, "state", pres_state_name(session->state));
            pres_mpw_kv_uint(&sm, "deadline", session->last_hb + timeout);
            pres_mpw_map_end(&sm);
            s = session->next;
        }
        pres_mpw_map_end(&um);
    }
    if (end != BROKER_LIVE_NONE) {
        char next[16];
        snprintf(next, sizeof next, "%" PRIu32, end);
        pres_mpw_kv_str(&r, "next", next);
    }
    s_reply_end(&r, out);
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
        s_snapshot(state, q, out);
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
    pres_mpw_map_t m;
    s_reply_begin(&m, &pk, out);
    pres_mpw_kv_bool(&m, "ok", true);
    pres_mpw_kv_str(&m, "user", q->user);
    pres_mpw_kv_str(&m, "account", pres_account_name(q->status));
    pres_mpw_kv_uint(&m, "seq", seq);
    s_reply_end(&m, out);
}
