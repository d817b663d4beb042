/*  broker_query: query replies (see broker_query.h). Packs with msgpack-c
    into a growable sbuffer: `snapshot` and `list` can be large. */
#include "broker_query.h"

#include <string.h>

#include "pres_log.h"

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
    msgpack_pack_map(&pk, 6);
    s_kv_ok(&pk);
    s_kv_str(&pk, "user", v.id);
    s_kv_str(&pk, "state", pres_state_name(v.state));
    s_kv_uint(&pk, "last_seen", v.last_seen);
    s_kv_uint(&pk, "sessions", v.sessions);
    s_kv_str(&pk, "account", pres_account_name(v.account));
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
    msgpack_pack_map(&pk, 10 + (ha != NULL));
    s_kv_ok(&pk);
    s_kv_uint(&pk, "seq", m->seq);
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
        if (broker_store_read_begin(store)) {
            broker_query_error(out, "store error");
            return -1;
        }
        rc = q->op == PRES_Q_GET ? s_get(state, q, out) : s_list(state, q, out);
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
