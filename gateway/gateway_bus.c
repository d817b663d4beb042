/*  gateway_bus: a pthread around a SUB socket on the changes stream and a
    query client of its own. Clone-style: subscribe first, then learn the
    head seq from `stats`. The SSE ring is filled from the broker's change
    log (changes_since): at start with the changes just before the head
    (so a client resuming across a gateway restart is replayed, not told
    to resync), and whenever a gap shows in the stream or at its quiet
    end. Only what the log cannot give is a real gap: it triggers a reseed
    of the account cache and an SSE ring reset. */
#include "gateway_bus.h"

#include <czmq.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "pres_bus.h"
#include "pres_log.h"
#include "pres_mp.h"

#define S_STATS_EVERY_MS 1000
#define S_MAINTAIN_MS    10000
#define S_SEED_PAGES_MAX 10000  //  1000 users a page

enum { S_AWAY_POLL, S_AWAY_QUERY };
static const char *const s_away_why[] = {"stats poll failed",
                                         "a query timed out"};

struct gw_bus {
    const pres_config_t *cfg;
    gw_accounts_t *accounts;
    gw_sse_t *sse;
    gw_auth_t *auth;
    gw_metrics_t *metrics;
    pres_ratelimit_t bad_frame_log;  //  this thread only
    zsock_t *sub;                    //  changes, "presence." prefix
    pres_qclient_t *query;           //  stats and list, this thread only
    bool asking;                     //  a stats poll is out on query
    int64_t asked_ms;                //  since (monotonic)
    pthread_t thread;
    atomic_bool running;
    atomic_bool broker_ok;
    atomic_int_fast64_t away_since;  //  wall ms; 0 = not known away
    atomic_int away_why;             //  S_AWAY_*
    atomic_bool probe;               //  poll stats now (broker lost)
    bool seeded;                     //  account cache seeded since last gap
    bool have_seq;                   //  last_seq is meaningful
    uint64_t last_seq;               //  last change seen
    uint64_t owed;                   //  head at the last stats poll, if ahead
    uint64_t term;                   //  leader term of the last change
    pthread_mutex_t wait_lock;       //  guards waiters
    gw_waiter_t *waiters;
    atomic_int nwaiters;
};

//  The broker was missed (why: S_AWAY_*): away from now, unless it
//  already was.
static void
s_away(gw_bus_t *self, int why)
{
    atomic_store(&self->broker_ok, false);
    int_fast64_t none = 0;
    if (atomic_compare_exchange_strong(&self->away_since, &none,
                                       pres_now_ms())) {
        atomic_store(&self->away_why, why);
        pres_log_warn("broker unreachable: %s; requests that need it "
                      "answer 503 until it answers again",
                      s_away_why[why]);
    }
}

static void s_fill(gw_bus_t *self, uint64_t from, uint64_t to);

//  Apply one `list` page: every user's account into the cache; the next
//  cursor into next ("" on the last page). 0 or -1.
static int
s_seed_page(gw_bus_t *self, zframe_t *reply, char *next)
{
    pres_mp_reader_t r;
    pres_mp_reader_init(&r, zframe_data(reply), zframe_size(reply));
    uint32_t n;
    next[0] = '\0';
    if (pres_mp_read_map(&r, &n) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (pres_mp_read_str(&r, &k, &kl) != 0)
            return -1;
        if (kl == 4 && memcmp(k, "next", 4) == 0 &&
            pres_mp_peek(&r) == PRES_MP_STR) {
            const char *s;
            uint32_t sl;
            if (pres_mp_read_str(&r, &s, &sl) != 0 || sl > PRES_ID_MAX)
                return -1;
            memcpy(next, s, sl);
            next[sl] = '\0';
            continue;
        }
        if (!(kl == 5 && memcmp(k, "users", 5) == 0)) {
            if (pres_mp_skip(&r) != 0)
                return -1;
            continue;
        }
        uint32_t count;
        if (pres_mp_read_array(&r, &count) != 0)
            return -1;
        for (uint32_t u = 0; u < count; u++) {
            uint32_t fields;
            if (pres_mp_read_map(&r, &fields) != 0)
                return -1;
            char user[PRES_ID_MAX + 1] = "";
            pres_account_t acc = PRES_ACC_ACTIVE;
            bool has_acc = false;
            for (uint32_t f = 0; f < fields; f++) {
                const char *fk, *fv;
                uint32_t fkl, fvl;
                if (pres_mp_read_str(&r, &fk, &fkl) != 0)
                    return -1;
                bool is_user = fkl == 4 && memcmp(fk, "user", 4) == 0;
                bool is_acc = fkl == 7 && memcmp(fk, "account", 7) == 0;
                if ((is_user || is_acc) && pres_mp_peek(&r) == PRES_MP_STR) {
                    if (pres_mp_read_str(&r, &fv, &fvl) != 0)
                        return -1;
                    if (is_user && pres_id_valid(fv, fvl)) {
                        memcpy(user, fv, fvl);
                        user[fvl] = '\0';
                    } else if (is_acc)
                        has_acc = pres_account_parse(fv, fvl, &acc) == 0;
                } else if (pres_mp_skip(&r) != 0)
                    return -1;
            }
            if (user[0] && has_acc)
                gw_accounts_set(self->accounts, user, acc);
        }
    }
    return 0;
}

//  List every non-active account into the cache. 0 or -1 (retry later).
static int
s_seed(gw_bus_t *self)
{
    size_t before = gw_accounts_size(self->accounts);
    for (int st = PRES_ACC_PENDING; st <= PRES_ACC_BANNED; st++) {
        pres_query_t q;
        memset(&q, 0, sizeof q);
        q.op = PRES_Q_LIST;
        q.has_account = true;
        q.account = (pres_account_t)st;
        q.limit = PRES_LIST_MAX;
        for (int page = 0; page < S_SEED_PAGES_MAX; page++) {
            zframe_t *reply = pres_qclient_query(
                self->query, &q, self->cfg->bus_timeout_ms, NULL);
            if (!reply)
                return -1;
            char next[PRES_ID_MAX + 1];
            int rc = s_seed_page(self, reply, next);
            zframe_destroy(&reply);
            if (rc != 0) {
                pres_log_warn("list reply malformed while seeding accounts");
                return -1;
            }
            if (!next[0])
                break;
            snprintf(q.cursor, sizeof q.cursor, "%s", next);
        }
    }
    pres_log_info("account cache seeded: %zu non-active users (was %zu)",
                  gw_accounts_size(self->accounts), before);
    return 0;
}

//  The `stats` poll does not block this thread: it is sent, and its
//  answer (or its absence for bus_timeout_ms) is taken in s_run's loop.
//  The broker holds the answer until the seq it shows is on disk, so
//  under load it may come late; only bus_timeout_ms without it counts as
//  the broker away, the bound every request has.
static void
s_stats_ask(gw_bus_t *self)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_STATS;
    self->asked_ms = pres_mono_ms();
    if (pres_qclient_send(self->query, &q, self->cfg->bus_timeout_ms) == 0)
        self->asking = true;
    else
        s_away(self, S_AWAY_POLL);
}

//  The poll's answer (NULL: none within bus_timeout_ms).
static void
s_stats_answer(gw_bus_t *self, zframe_t *reply)
{
    int64_t t0 = self->asked_ms;
    self->asking = false;
    uint64_t seq = 0;
    bool ok = reply && pres_mp_find_uint(zframe_data(reply), zframe_size(reply),
                                         "seq", &seq) == 0;
    uint64_t term = 0, lag = 0;
    if (ok &&
        pres_mp_find_uint(zframe_data(reply), zframe_size(reply), "ha.term",
                          &term) == 0 &&
        pres_mp_find_uint(zframe_data(reply), zframe_size(reply), "ha.lag",
                          &lag) == 0)
        gw_metrics_ha(self->metrics, term, lag);
    zframe_destroy(&reply);
    if (ok)
        gw_metrics_latency(self->metrics, GW_LAT_QUERY,
                           (pres_mono_ms() - t0) * 1000);
    if (!ok) {
        s_away(self, S_AWAY_POLL);
        return;
    }
    bool was = atomic_exchange(&self->broker_ok, true);
    if (atomic_exchange(&self->away_since, 0) != 0 || !was)
        pres_log_info("broker reachable (seq %" PRIu64 ")", seq);
    uint64_t known;
    if (!gw_sse_head(self->sse, &known)) {
        //  First contact: the ring gets the changes just before the head.
        uint64_t from = seq > GW_SSE_RING ? seq - GW_SSE_RING : 0;
        self->have_seq = false;
        s_fill(self, from, seq);
    } else if (self->have_seq && seq > self->last_seq)
        s_fill(self, self->last_seq, seq);  //  owed at the quiet end
    gw_sse_set_head(self->sse, seq);
    //  A lost tail shows no gap until a later change comes: changes the
    //  broker had published at one poll must have arrived by the next.
    if (self->have_seq && self->owed && self->last_seq < self->owed) {
        pres_log_warn("changes: %" PRIu64 " owed since the last poll, got "
                      "%" PRIu64 ": lost",
                      self->owed, self->last_seq);
        gw_metrics_change(self->metrics, self->owed - self->last_seq);
        self->seeded = false;  //  account changes may be among them
        self->last_seq = self->owed;
        gw_sse_lost(self->sse, self->owed);
    }
    self->owed = self->have_seq && seq > self->last_seq ? seq : 0;
    if (!self->seeded && s_seed(self) == 0)
        self->seeded = true;
}

//  The change as JSON (ids are [A-Za-z0-9._@:-]: nothing to escape).
int
gw_bus_change_json(const pres_change_t *ch, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "{\"v\":1,\"seq\":%" PRIu64 ",\"user\":\"%s\","
                     "\"state\":\"%s\",\"prev\":\"%s\",\"at\":%" PRIu64 ","
                     "\"reason\":\"%s\",\"sessions\":%u,\"account\":\"%s\"",
                     ch->seq, ch->user, pres_state_name(ch->state),
                     pres_state_name(ch->prev), ch->at,
                     pres_reason_name(ch->reason), ch->sessions,
                     pres_account_name(ch->account));
    if (n < 0 || (size_t)n >= cap)
        return -1;
    if (ch->session[0])
        n += snprintf(buf + n, cap - (size_t)n, ",\"session\":\"%s\"",
                      ch->session);
    if (ch->deadline && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, ",\"deadline\":%" PRIu64,
                      ch->deadline);
    if (ch->term && (size_t)n < cap)  //  fail-over: the leader's term
        n += snprintf(buf + n, cap - (size_t)n, ",\"term\":%" PRIu64, ch->term);
    if ((size_t)n + 2 > cap)
        return -1;
    buf[n++] = '}';
    buf[n] = '\0';
    return n;
}

static void s_apply(gw_bus_t *self, const pres_change_t *ch);

//  Fetch the changes after `from` up to `to` from the broker's change log
//  and apply them in order. Stops early (leaving a gap) when the log does
//  not reach back, the broker does not answer or a reply is malformed.
static void
s_fill(gw_bus_t *self, uint64_t from, uint64_t to)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_CHANGES_SINCE;
    q.seq = from;
    while (q.seq < to) {
        zframe_t *reply = pres_qclient_query(self->query, &q,
                                             self->cfg->bus_timeout_ms, NULL);
        if (!reply)
            return;  //  resync, timeout: the gap stays
        pres_mp_reader_t r;
        uint32_t n = 0;
        bool ok = pres_mp_find(zframe_data(reply), zframe_size(reply),
                               "changes", &r) == 0 &&
                  pres_mp_read_array(&r, &n) == 0;
        for (uint32_t i = 0; ok && i < n; i++) {
            const uint8_t *start = r.p;
            pres_change_t ch;
            const char *why;
            ok = pres_mp_skip(&r) == 0 &&
                 pres_change_decode(&ch, start, (size_t)(r.p - start), &why) ==
                     0 &&
                 ch.seq == q.seq + 1;
            if (ok && ch.seq <= to)
                s_apply(self, &ch);
            if (ok)
                q.seq = ch.seq;
        }
        zframe_destroy(&reply);
        if (!ok || n == 0)
            return;
    }
}

static void
s_on_change(gw_bus_t *self, const pres_change_t *ch)
{
    if (self->have_seq && ch->seq <= self->last_seq)
        return;  //  already replayed from the log
    if (self->have_seq && ch->seq > self->last_seq + 1)
        s_fill(self, self->last_seq, ch->seq - 1);
    s_apply(self, ch);
}

//  Take one change in order (from the stream or the log).
static void
s_apply(gw_bus_t *self, const pres_change_t *ch)
{
    uint64_t gap = 0;
    if (self->have_seq && ch->seq != self->last_seq + 1) {
        gap = ch->seq > self->last_seq ? ch->seq - self->last_seq - 1 : 1;
        //  Account changes may be among the missed ones.
        self->seeded = false;
        pres_log_warn("changes: seq gap %" PRIu64 " -> %" PRIu64,
                      self->last_seq, ch->seq);
    }
    if (ch->term && self->term && ch->term != self->term) {
        //  A new leader (docs/ha.md): reseed the account cache from it.
        self->seeded = false;
        pres_log_info("changes: new broker leader, term %" PRIu64, ch->term);
    }
    if (ch->term)
        self->term = ch->term;
    gw_metrics_change(self->metrics, gap);
    self->have_seq = true;
    self->last_seq = ch->seq;

    if (ch->account != PRES_ACC_ACTIVE ||
        gw_accounts_get(self->accounts, ch->user) != PRES_ACC_ACTIVE)
        gw_accounts_set(self->accounts, ch->user, ch->account);

    char json[GW_SSE_TEXT_MAX];
    int len = gw_bus_change_json(ch, json, sizeof json);
    if (len > 0)
        gw_sse_push(self->sse, ch->seq, json, (size_t)len);

    if (ch->session[0] && atomic_load(&self->nwaiters) > 0) {
        pthread_mutex_lock(&self->wait_lock);
        gw_waiter_t **p = &self->waiters;
        while (*p) {
            gw_waiter_t *w = *p;
            if (w->done || strcmp(w->session, ch->session) != 0 ||
                strcmp(w->user, ch->user) != 0) {
                p = &w->next;
                continue;
            }
            w->change = *ch;
            w->done = true;
            if (!w->fire) {
                pthread_cond_signal(&w->cond);
                p = &w->next;
                continue;
            }
            *p = w->next;  //  an async waiter leaves as it fires
            atomic_fetch_sub(&self->nwaiters, 1);
            w->fire(w, w->arg);
        }
        pthread_mutex_unlock(&self->wait_lock);
    }
}

//  Drain what is queued on the SUB (bounded per call).
static void
s_drain(gw_bus_t *self)
{
    void *sock = zsock_resolve(self->sub);
    for (int i = 0; i < 10000; i++) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        //  A change is the last frame (those between are skipped); a
        //  message of one frame carries none.
        int frames = pres_bus_recv_message(sock, &topic, &body);
        if (frames < 2) {
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            if (frames == 0)
                return;
            continue;
        }
        pres_change_t ch;
        const char *why = NULL;
        if (pres_change_decode(&ch, zmq_msg_data(&body), zmq_msg_size(&body),
                               &why) == 0)
            s_on_change(self, &ch);
        else
            pres_log_limited(&self->bad_frame_log, 10000,
                             "bad change frame: %s", why);
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
    }
}

static void *
s_run(void *arg)
{
    gw_bus_t *self = arg;
    zmq_pollitem_t items[2] = {{zsock_resolve(self->sub), 0, ZMQ_POLLIN, 0},
                               {NULL, 0, ZMQ_POLLIN, 0}};
    int64_t next_stats = 0, next_tick = 0, next_maintain = 0;
    while (atomic_load(&self->running)) {
        items[1].socket =
            self->asking ? pres_qclient_handle(self->query) : NULL;
        int rc = zmq_poll(items, items[1].socket ? 2 : 1, 100);
        if (rc < 0 && errno != EINTR && errno != EAGAIN)
            break;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
            s_drain(self);
        if (self->asking) {
            zframe_t *reply = pres_qclient_recv(self->query, NULL);
            if (reply || errno == EPROTO) {
                s_stats_answer(self, reply);
                next_stats = pres_mono_ms() + S_STATS_EVERY_MS;
            } else if (pres_mono_ms() - self->asked_ms >=
                       self->cfg->bus_timeout_ms) {
                pres_qclient_abandon(self->query);
                s_stats_answer(self, NULL);
                next_stats = pres_mono_ms() + S_STATS_EVERY_MS;
            }
        }
        int64_t now = pres_mono_ms();
        bool probe = atomic_exchange(&self->probe, false);
        if (!self->asking && (now >= next_stats || probe))
            s_stats_ask(self);
        if (now >= next_tick) {
            gw_sse_tick(self->sse, now);
            next_tick = now + 250;
        }
        if (now >= next_maintain) {
            gw_auth_maintain(self->auth, pres_now_ms() / 1000);
            next_maintain = now + S_MAINTAIN_MS;
        }
    }
    return NULL;
}

gw_bus_t *
gw_bus_new(const pres_config_t *cfg, gw_accounts_t *accounts, gw_sse_t *sse,
           gw_auth_t *auth, gw_metrics_t *metrics)
{
    gw_bus_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->accounts = accounts;
    self->sse = sse;
    self->auth = auth;
    self->metrics = metrics;
    pthread_mutex_init(&self->wait_lock, NULL);
    self->sub = pres_bus_sub_changes(cfg, PRES_CHANGE_PREFIX);
    self->query = pres_qclient_new(cfg);
    if (!self->sub || !self->query) {
        gw_bus_destroy(&self);
        return NULL;
    }
    atomic_store(&self->running, true);
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        pres_log_error("pthread_create(bus) failed");
        atomic_store(&self->running, false);
        gw_bus_destroy(&self);
        return NULL;
    }
    return self;
}

void
gw_bus_destroy(gw_bus_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_bus_t *self = *self_p;
    if (atomic_exchange(&self->running, false))
        pthread_join(self->thread, NULL);
    zsock_destroy(&self->sub);
    pres_qclient_destroy(&self->query);
    pthread_mutex_destroy(&self->wait_lock);
    free(self);
    *self_p = NULL;
}

//  Put w on the waiter list (either kind).
static void
s_waiter_link(gw_bus_t *self, gw_waiter_t *w)
{
    pthread_mutex_lock(&self->wait_lock);
    w->next = self->waiters;
    self->waiters = w;
    atomic_fetch_add(&self->nwaiters, 1);
    pthread_mutex_unlock(&self->wait_lock);
}

void
gw_bus_wait_async(gw_bus_t *self, gw_waiter_t *w, const char *user,
                  const char *session, void (*fire)(gw_waiter_t *, void *),
                  void *arg)
{
    assert(fire);
    snprintf(w->user, sizeof w->user, "%s", user);
    snprintf(w->session, sizeof w->session, "%s", session);
    w->done = false;
    w->fire = fire;
    w->arg = arg;
    s_waiter_link(self, w);
}

bool
gw_bus_wait_cancel(gw_bus_t *self, gw_waiter_t *w)
{
    bool waiting = false;
    pthread_mutex_lock(&self->wait_lock);
    for (gw_waiter_t **p = &self->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            atomic_fetch_sub(&self->nwaiters, 1);
            waiting = true;
            break;
        }
    pthread_mutex_unlock(&self->wait_lock);
    return waiting;
}

void
gw_bus_wait_begin(gw_bus_t *self, gw_waiter_t *w, const char *user,
                  const char *session)
{
    snprintf(w->user, sizeof w->user, "%s", user);
    snprintf(w->session, sizeof w->session, "%s", session);
    w->done = false;
    w->fire = NULL;
    w->arg = NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    s_waiter_link(self, w);
}

int
gw_bus_wait_end(gw_bus_t *self, gw_waiter_t *w, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&self->wait_lock);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cond, &self->wait_lock, &until) ==
            ETIMEDOUT)
            break;
    bool done = w->done;
    for (gw_waiter_t **p = &self->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    atomic_fetch_sub(&self->nwaiters, 1);
    pthread_mutex_unlock(&self->wait_lock);
    pthread_cond_destroy(&w->cond);
    return done ? 0 : -1;
}

bool
gw_bus_broker_ok(gw_bus_t *self)
{
    return atomic_load(&self->broker_ok);
}

void
gw_bus_broker_lost(gw_bus_t *self)
{
    s_away(self, S_AWAY_QUERY);
    atomic_store(&self->probe, true);
}

void
gw_bus_broker_probe(gw_bus_t *self)
{
    atomic_store(&self->probe, true);
}

bool
gw_bus_broker_away(gw_bus_t *self, int64_t *since_ms, const char **why)
{
    int64_t since = atomic_load(&self->away_since);
    if (since == 0)
        return false;
    if (since_ms)
        *since_ms = since;
    if (why)
        *why = s_away_why[atomic_load(&self->away_why) == S_AWAY_QUERY];
    return true;
}
