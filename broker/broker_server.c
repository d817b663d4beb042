/*  broker_server: sockets, lock file and the loop of the broker (see
    broker_server.h). The hot path receives with zmq_msg_recv on reused
    messages, decodes in place and applies; no allocation per event. */
#include "broker_server.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "broker_auth.h"
#include "broker_durable.h"
#include "broker_ha.h"
#include "broker_query.h"
#include "broker_repl.h"
#include "broker_state.h"
#include "broker_store.h"
#include "pres_bus.h"
#include "pres_log.h"

#define S_QUERIES_PER_TURN 64  //  queries served between two batches
//  Events still drained once a change waits (expires not counted: see
//  s_events).
#define S_AFTER_CHANGE 128
//  Most events a backlog of expires lets a batch reach: its answers come
//  at least every such batch (the sweeper looks again at what has had no
//  answer at all for 1 s, and a 4096-expire commit took up to 0.5 s on a
//  starved box).
#define S_EXPIRE_BATCH 1024
#define S_HIST         20    //  log2 buckets of the batch figures
#define S_TRIM_IDLE_MS 2000  //  quiet time before the heap is trimmed

//  Batch figures logged at stop (bench/run.sh fanout reads them): events
//  per batch and microseconds per commit (txn write, no fsync: the fsync
//  times come from broker_durable).
typedef struct {
    uint64_t batches, events, commits, commit_us;
    uint64_t batch_hist[S_HIST];   //  [i]: batches of < 2^i events
    uint64_t commit_hist[S_HIST];  //  [i]: commits of < 2^i us
    uint64_t close_hist[S_HIST];   //  [i]: first change -> commit, < 2^i us
    uint64_t flush_hist[S_HIST];   //  [i]: last_seen flushes of < 2^i us
    uint64_t flush_us_max;         //  the longest, on the loop
} s_figures_t;

struct broker_server {
    const pres_config_t *cfg;
    int lock_fd;            //  flock'ed run_dir/broker.lock
    broker_store_t *store;  //  LMDB
    broker_state_t *state;  //  rules, live set, counters
    broker_auth_t *auth;    //  ZAP handler (admin peers, CURVE keys)
    zsock_t *events;        //  SUB, bound
    zsock_t *changes;       //  PUB, bound
    zsock_t *queries;       //  ROUTER, bound
    zsock_t *admin;         //  ROUTER, bound: account changes only
    zmq_msg_t topic;        //  reused receive buffers
    zmq_msg_t body;
    zmq_msg_t extra;
    pres_ratelimit_t rl;      //  malformed-frame log limit
    pres_ratelimit_t pub_rl;  //  s_pub's log limit (either thread)
    msgpack_sbuffer reply;    //  reused reply buffer
    int64_t next_flush;       //  monotonic ms of the next last_seen flush
    //  Fail-over (broker_ha, broker_repl; NULL/false without etcd)
    broker_ha_t *ha;      //  election thread
    broker_repl_t *repl;  //  leader: to the standby; standby: from leader
    bool leading;  //  events/changes/admin bound, publishing (atomic: s_pub
                   //  reads it on the sync thread)
    int64_t term;  //  term we lead, or the leader we follow
    char following[PRES_ENDPOINT_MAX];  //  repl endpoint we follow
    int64_t busy_at;                    //  monotonic ms of the last event batch
    bool trimmed;                       //  heap trimmed since busy_at
    //  Commits are fsynced on its thread; changes and replies wait in it.
    broker_durable_t *durable;
    s_figures_t fig;
    int64_t change_at;  //  zclock_usecs of the batch's first change, or 0
};

//  SIGUSR1: log the figures so far and start them again (bench/run.sh
//  fanout reads each phase's figures apart).
static volatile sig_atomic_t s_figures_asked;

static void
s_on_usr1(int sig)
{
    (void)sig;
    s_figures_asked = 1;
}

static int
s_lock(broker_server_t *self)
{
    char path[PRES_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/broker.lock", self->cfg->run_dir);
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (self->lock_fd < 0) {
        pres_log_error("open(%s) failed: %s", path, strerror(errno));
        return -1;
    }
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK)
            pres_log_error("another presence-broker holds %s; not starting "
                           "(it would steal the ipc endpoints)",
                           path);
        else
            pres_log_error("flock(%s) failed: %s", path, strerror(errno));
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(self->lock_fd, 0) == 0 &&
        write(self->lock_fd, pid, (size_t)n) < 0)
        pres_log_debug("write(pid) to the lock file failed");
    return 0;
}

static int s_flush(broker_server_t *self);
static void s_pub(const void *topic, size_t tlen, const void *body, size_t blen,
                  void *arg);
static void s_reply(void *sock, void *msg, void *arg);

static int
s_sync(void *arg)
{
    return broker_store_sync(arg);
}

static void
s_free_reply(void *msg)
{
    zmsg_t *m = msg;
    zmsg_destroy(&m);
}

//  The durable stage; with fsync_thread = 2 its sync thread publishes the
//  changes itself right after the fsync (docs/broker.md).
static broker_durable_t *
s_durable_new(broker_server_t *self)
{
    broker_durable_t *d = broker_durable_new(s_sync, self->store, s_free_reply);
    if (d && self->cfg->fsync_thread == 2)
        broker_durable_publish_on_thread(d, s_pub, self);
    return d;
}

static int
s_bucket(uint64_t v)
{
    int b = 0;
    while (b < S_HIST - 1 && v >= ((uint64_t)1 << b))
        b++;
    return b;
}

static uint64_t
s_count(const uint64_t *hist, int n)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += hist[i];
    return total;
}

//  The smallest power of two at or above the q-quantile of hist.
static uint64_t
s_quantile(const uint64_t *hist, int n, double q)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < n; i++)
        total += hist[i];
    for (int i = 0; i < n; i++) {
        seen += hist[i];
        if (total && (double)seen >= q * (double)total)
            return (uint64_t)1 << i;
    }
    return 0;
}

static void
s_log_figures(broker_server_t *self)
{
    const s_figures_t *f = &self->fig;
    broker_durable_stats_t d;
    broker_durable_stats(self->durable, &d);
    pres_log_info(
        "figures: batches %llu, events/batch mean %.1f p50<=%llu "
        "p99<=%llu; commits %llu, commit us mean %.0f p50<=%llu p99<=%llu; "
        "fsyncs %llu (%.2f commits each), fsync us mean %.0f p50<=%llu "
        "p99<=%llu max %llu; held items max %llu; change close us "
        "p50<=%llu p99<=%llu; fsync start us (idle) p50<=%llu p99<=%llu "
        "(busy) p50<=%llu p99<=%llu; fsync end to publish us p50<=%llu "
        "p99<=%llu; held to published us p50<=%llu p99<=%llu; published "
        "%llu (%llu by the sync thread); fsyncs with a last_seen flush %llu, "
        "us p50<=%llu p99<=%llu; last_seen flushes %llu, on the loop us "
        "p50<=%llu max %llu",
        (unsigned long long)f->batches,
        f->batches ? (double)f->events / (double)f->batches : 0.0,
        (unsigned long long)s_quantile(f->batch_hist, S_HIST, 0.5),
        (unsigned long long)s_quantile(f->batch_hist, S_HIST, 0.99),
        (unsigned long long)f->commits,
        f->commits ? (double)f->commit_us / (double)f->commits : 0.0,
        (unsigned long long)s_quantile(f->commit_hist, S_HIST, 0.5),
        (unsigned long long)s_quantile(f->commit_hist, S_HIST, 0.99),
        (unsigned long long)d.syncs,
        d.syncs ? (double)d.commits / (double)d.syncs : 0.0,
        d.syncs ? (double)d.sync_us / (double)d.syncs : 0.0,
        (unsigned long long)(64 * s_quantile(d.hist, 16, 0.5)),
        (unsigned long long)(64 * s_quantile(d.hist, 16, 0.99)),
        (unsigned long long)d.sync_us_max, (unsigned long long)d.held_max,
        (unsigned long long)s_quantile(f->close_hist, S_HIST, 0.5),
        (unsigned long long)s_quantile(f->close_hist, S_HIST, 0.99),
        (unsigned long long)(64 * s_quantile(d.wake_hist, 16, 0.5)),
        (unsigned long long)(64 * s_quantile(d.wake_hist, 16, 0.99)),
        (unsigned long long)(64 * s_quantile(d.queue_hist, 16, 0.5)),
        (unsigned long long)(64 * s_quantile(d.queue_hist, 16, 0.99)),
        (unsigned long long)(64 * s_quantile(d.out_hist, 16, 0.5)),
        (unsigned long long)(64 * s_quantile(d.out_hist, 16, 0.99)),
        (unsigned long long)(64 * s_quantile(d.hold_hist, 16, 0.5)),
        (unsigned long long)(64 * s_quantile(d.hold_hist, 16, 0.99)),
        (unsigned long long)d.published, (unsigned long long)d.by_thread,
        (unsigned long long)s_count(d.bulk_hist, 16),
        (unsigned long long)(64 * s_quantile(d.bulk_hist, 16, 0.5)),
        (unsigned long long)(64 * s_quantile(d.bulk_hist, 16, 0.99)),
        (unsigned long long)s_count(f->flush_hist, S_HIST),
        (unsigned long long)s_quantile(f->flush_hist, S_HIST, 0.5),
        (unsigned long long)f->flush_us_max);
}

//  Bind one socket. admin: the admin ROUTER (small frames, its own ZAP
//  domain so that only admin peers get in, on ipc:// as well).
static zsock_t *
s_bind(broker_server_t *self, int type, const char *endpoint, bool admin)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        pres_log_error("zsock_new() failed");
        return NULL;
    }
    zsock_set_linger(sock, 0);
    if (type == ZMQ_SUB) {
        //  Inbound memory is bounded: events_rcvhwm messages per
        //  publisher of at most PRES_BUS_EVENT_MAXMSG bytes each.
        zsock_set_rcvhwm(sock, self->cfg->events_rcvhwm);
        zsock_set_maxmsgsize(sock, PRES_BUS_EVENT_MAXMSG);
        zsock_set_subscribe(sock, "");
    } else if (type == ZMQ_PUB) {
        zsock_set_sndhwm(sock, self->cfg->bus_hwm);
        zsock_set_linger(sock, 1000);
    } else {
        zsock_set_rcvtimeo(sock, 0);
        //  Queries: a get_many of 1,000 ids needs up to PRES_QUERY_FRAME_MAX.
        zsock_set_maxmsgsize(sock, admin ? PRES_BUS_EVENT_MAXMSG
                                         : PRES_QUERY_FRAME_MAX);
        zsock_set_sndhwm(sock, self->cfg->bus_hwm);
        zsock_set_rcvhwm(sock, admin ? 1000 : self->cfg->bus_hwm);
    }
    if (pres_bus_secure(sock, self->cfg, endpoint, true)) {
        zsock_destroy(&sock);
        return NULL;
    }
    if (admin)  //  after pres_bus_secure, which sets the bus domain
        zsock_set_zap_domain(sock, BROKER_AUTH_ADMIN);
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        pres_log_error("zsock_bind(%s) failed: %s", endpoint,
                       zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
    }
    return sock;
}

broker_server_t *
broker_server_new(const pres_config_t *cfg)
{
    broker_server_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() failed for the server");
        return NULL;
    }
    self->cfg = cfg;
    self->lock_fd = -1;
    zmq_msg_init(&self->topic);
    zmq_msg_init(&self->body);
    zmq_msg_init(&self->extra);
    msgpack_sbuffer_init(&self->reply);
    if (pres_config_make_dirs(cfg) || s_lock(self))
        goto fail;
    self->store =
        broker_store_new(cfg->data_dir, (size_t)cfg->lmdb_map_mib << 20);
    if (!self->store)
        goto fail;
    self->state = broker_state_new(cfg, self->store);
    if (!self->state)
        goto fail;
    //  Batches commit without fsync while leading; the sync thread makes
    //  them durable while the loop applies the next one (docs/broker.md).
    self->durable = s_durable_new(self);
    if (!self->durable)
        goto fail;
    //  The ZAP handler must be up before a socket with a domain binds.
    self->auth = broker_auth_new(cfg);
    if (!self->auth)
        goto fail;
    self->queries = s_bind(self, ZMQ_ROUTER, cfg->query_endpoint, false);
    if (!self->queries)
        goto fail;
    if (*cfg->etcd_endpoints) {
        //  Fail-over: events, changes and admin are bound only while
        //  leading (docs/ha.md).
        self->ha = broker_ha_new(cfg);
        if (!self->ha)
            goto fail;
    } else {
        self->events = s_bind(self, ZMQ_SUB, cfg->events_endpoint, false);
        self->changes = s_bind(self, ZMQ_PUB, cfg->changes_endpoint, false);
        self->admin = s_bind(self, ZMQ_ROUTER, cfg->admin_endpoint, true);
        if (!self->events || !self->changes || !self->admin)
            goto fail;
        self->leading = true;
        broker_state_defer_sync(self->state, cfg->fsync_thread != 0);
    }
    self->next_flush = pres_mono_ms() + cfg->lastseen_flush_ms;
    struct sigaction sa = {.sa_handler = s_on_usr1};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL))
        pres_log_warn("sigaction(SIGUSR1) failed: %s", strerror(errno));
    pres_log_info("listening: events %s, changes %s, queries %s, admin %s",
                  cfg->events_endpoint, cfg->changes_endpoint,
                  cfg->query_endpoint, cfg->admin_endpoint);
    return self;
fail:
    broker_server_destroy(&self);
    return NULL;
}

void
broker_server_destroy(broker_server_t **self_p)
{
    assert(self_p);
    broker_server_t *self = *self_p;
    if (!self)
        return;
    if (self->state && s_flush(self))
        pres_log_error("final flush failed: last_seen may lag");
    if (self->durable) {
        //  What was committed goes out once on disk (sockets still open).
        if (broker_durable_drain(self->durable, s_pub, s_reply, self) < 0)
            pres_log_error("held changes dropped: their commit is not "
                           "known durable");
        s_log_figures(self);
    }
    broker_durable_destroy(&self->durable);  //  joins the sync thread
    broker_ha_destroy(&self->ha);  //  a leader resigns: the standby leads
    broker_repl_destroy(&self->repl);
    zsock_destroy(&self->events);
    zsock_destroy(&self->changes);
    zsock_destroy(&self->queries);
    zsock_destroy(&self->admin);
    broker_auth_destroy(&self->auth);
    broker_state_destroy(&self->state);
    broker_store_destroy(&self->store);
    zmq_msg_close(&self->topic);
    zmq_msg_close(&self->body);
    zmq_msg_close(&self->extra);
    msgpack_sbuffer_destroy(&self->reply);
    if (self->lock_fd >= 0)
        close(self->lock_fd);  //  releases the flock
    free(self);
    *self_p = NULL;
}

//  Released by broker_durable: one change or notice, its commit on disk.
//  On the sync thread (fsync_thread = 2) or the loop's, never both at
//  once (broker_durable serialises the calls; the PUB socket moves
//  between them behind that mutex). self->changes is set before leading
//  and destroyed only after a drain, while no sync runs.
//  Under fail-over only while the lease is certainly ours: a deposed
//  leader publishes nothing (the batch is on its disk only; it resyncs
//  from the new leader when it rejoins as a standby).
static void
s_pub(const void *topic, size_t tlen, const void *body, size_t blen, void *arg)
{
    broker_server_t *self = arg;
    if (!self->changes || !__atomic_load_n(&self->leading, __ATOMIC_ACQUIRE) ||
        (self->ha && !broker_ha_leading(self->ha)))
        return;
    //  PUB never blocks; a subscriber past its HWM loses messages and sees
    //  the seq gap (Clone: it resyncs from a snapshot).
    void *pub = zsock_resolve(self->changes);
    if (zmq_send(pub, topic, tlen, ZMQ_SNDMORE) < 0 ||
        zmq_send(pub, body, blen, 0) < 0)
        pres_log_limited(&self->pub_rl, 1000, "zmq_send(change) failed: %s",
                         zmq_strerror(zmq_errno()));
}

//  Released by broker_durable: a reply (envelope + body) to a query or
//  admin request answered after a commit, now on disk. The sockets it
//  names outlive what is held (the stage is drained before they go).
static void
s_reply(void *sock, void *msg, void *arg)
{
    broker_server_t *self = arg;
    zmsg_t *m = msg;
    if (zmsg_send(&m, sock))
        pres_log_limited(&self->rl, 1000, "zmsg_send(reply) failed");
    zmsg_destroy(&m);
}

//  Leading, and, under fail-over, sure of the lease: only then does the
//  loop apply events or hand out due notices.
static bool
s_lead(broker_server_t *self)
{
    return self->leading && (!self->ha || broker_ha_leading(self->ha));
}

//  A due notice (broker_state_due) goes out at once: it asks for an
//  expire and makes no promise about the disk, so it waits for no fsync
//  (held behind the fsyncs, 100,000 sessions due within 0.5 s ended up to
//  77-278 ms late in six runs of bench/run.sh expiry; sent at once,
//  45-119 ms in four). The PUB socket is borrowed from the durable stage.
static void
s_due_notice(const void *topic, size_t tlen, const void *body, size_t blen,
             void *arg)
{
    broker_server_t *self = arg;
    broker_durable_publish_now(self->durable, s_pub, self, topic, tlen, body,
                               blen);
}

//  Release what is durable now. 0, or -1 if a sync failed.
static int
s_release(broker_server_t *self)
{
    return broker_durable_release(self->durable, s_pub, s_reply, self) < 0 ? -1
                                                                           : 0;
}

//  A message the standby acknowledged (sync replication): on to the
//  durable stage (held there until its commit is on disk, if it is not
//  yet).
static void
s_acked(const void *topic, size_t tlen, const void *body, size_t blen,
        void *arg)
{
    broker_server_t *self = arg;
    if (broker_durable_hold_msg(self->durable, topic, tlen, body, blen))
        pres_log_limited(&self->rl, 1000, "a change could not be held: lost");
}

//  Move what the standby has acknowledged into the durable stage.
static void
s_release_acked(broker_server_t *self)
{
    if (!self->repl || !self->leading)
        return;
    if (self->ha && !broker_ha_leading(self->ha))
        return;  //  deposed: nothing more goes out
    broker_repl_release(self->repl, s_acked, self);
}

//  Note a commit made since commits0 (broker_store_commits) for the sync
//  thread; bulk: the last_seen flush (its fsyncs are counted apart).
static void
s_committed(broker_server_t *self, uint64_t commits0, bool bulk)
{
    //  Leading with fsync_thread = 0, or a standby: the commit was synced.
    if (!broker_state_deferring(self->state))
        return;
    if (broker_store_commits(self->store) == commits0)
        return;
    if (bulk)
        broker_durable_committed_bulk(self->durable);
    else
        broker_durable_committed(self->durable);
}

//  Commit the batch, then its changes go through two stages,
//  each a queue released in order: the standby's acknowledgement (sync
//  replication, broker_repl; account changes wait for it here) and the
//  fsync (broker_durable); the loop goes on meanwhile. 0, 1 when the
//  batch could not be written (rolled back, nothing published), or -1.
static int
s_commit(broker_server_t *self, int events, bool account)
{
    uint64_t commits0 = broker_store_commits(self->store);
    int64_t t0 = zclock_usecs();
    int crc = broker_state_commit(self->state);
    //  A batch that could not be written (crc 1) was rolled back. With a
    //  standby attached the leader stops instead: the standby holds every
    //  acknowledged batch, and a rolled-back one must not reach it.
    if (crc < 0 || (crc > 0 && self->repl))
        return -1;
    if (crc > 0) {  //  not durable: refused, nothing to publish; go on
        pres_log_limited(&self->rl, 1000,
                         "batch not durable (see the LMDB error): its events "
                         "refused, state reloaded at seq %" PRIu64,
                         broker_state_meta(self->state)->seq);
        return 1;
    }
    s_figures_t *f = &self->fig;
    if (self->change_at) {
        f->close_hist[s_bucket((uint64_t)(t0 - self->change_at))]++;
        self->change_at = 0;
    }
    f->batches++;
    f->events += (uint64_t)events;
    f->batch_hist[s_bucket((uint64_t)events)]++;
    if (broker_store_commits(self->store) != commits0) {
        uint64_t us = (uint64_t)(zclock_usecs() - t0);
        f->commits++;
        f->commit_us += us;
        f->commit_hist[s_bucket(us)]++;
    }
    s_committed(self, commits0, false);
    if (self->repl) {
        bool sync = strcmp(self->cfg->replication, "sync") == 0;
        if (broker_repl_leader_commit(self->repl, self->state,
                                      broker_state_now(self->state),
                                      account && sync))
            return -1;
        if (!account && sync && broker_repl_attached(self->repl)) {
            if (broker_repl_hold(self->repl, self->state))
                return -1;
        } else
            s_release_acked(self);  //  what was held before goes first
    }
    size_t n = broker_state_outbox_count(self->state);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *topic;
        const void *body;
        size_t tlen, blen;
        broker_state_outbox_get(self->state, i, &topic, &tlen, &body, &blen);
        rc = broker_durable_hold_msg(self->durable, topic, tlen, body, blen);
    }
    broker_state_outbox_clear(self->state);
    if (rc)
        return -1;
    //  Out at once if no fsync is pending before them; else when the sync
    //  thread signals.
    return n > 0 ? s_release(self) : 0;
}

//  The lazy last_seen flush, fsynced by the sync thread like a batch.
static int
s_flush(broker_server_t *self)
{
    uint64_t commits0 = broker_store_commits(self->store);
    int64_t t0 = zclock_usecs();
    if (broker_state_flush(self->state)) {
        //  A failed flush (disk full) leaves the beats dirty: the next
        //  period tries again.
        pres_log_limited(&self->rl, 1000, "last_seen flush failed; retrying");
        return 0;
    }
    if (broker_store_commits(self->store) != commits0) {
        uint64_t us = (uint64_t)(zclock_usecs() - t0);
        self->fig.flush_hist[s_bucket(us)]++;
        if (us > self->fig.flush_us_max)
            self->fig.flush_us_max = us;
    }
    s_committed(self, commits0, true);
    return 0;
}

static void
s_refuse(broker_server_t *self, const char *why)
{
    broker_state_malformed(self->state);
    pres_log_limited(&self->rl, 1000, "refused event frame: %s", why);
}

//  One batch: drain the SUB (up to BROKER_BATCH_MAX events), commit, then
//  publish. Returns 0 or -1 (store failure).
static int
s_events(broker_server_t *self)
{
    void *sub = zsock_resolve(self->events);
    self->change_at = 0;
    broker_state_begin(self->state, (uint64_t)pres_now_ms());
    pres_event_t ev;
    //  A batch of pure heartbeats may run long (no commit, no fsync); once
    //  it holds a change, close it soon so the change is not held back
    //  behind thousands of heartbeats (fan-out latency). Expires do not
    //  count towards that: a backlog of them (the sweeper's, when many
    //  sessions expire at once) is changes that each wait for a commit
    //  anyway, so they fill the batch up to S_EXPIRE_BATCH events and share
    //  its commit and fsync: 10,000 expires cost ~10 commits, not 80.
    //  The backlog ends at an expire whose deadline is after the batch's
    //  clock (read once, at its start): it was sent after the batch began,
    //  the broker has caught up. Any batch holding a change closes there,
    //  before its stale clock leaves more expires alone (a deadline not yet
    //  passed by that clock), whose sessions would then wait for the
    //  wheel's next notice, 1 s later.
    int limit = BROKER_BATCH_MAX;
    bool closing = false;  //  the batch holds a change: limit set
    int n = 0;
    for (; n < limit; n++) {
        if (zmq_msg_recv(&self->topic, sub, ZMQ_DONTWAIT) < 0)
            break;  //  EAGAIN (drained) or EINTR (stopping)
        int frames = 1;
        bool more = zmq_msg_more(&self->topic);
        if (more) {
            //  Parts of a message arrive together: no wait needed.
            if (zmq_msg_recv(&self->body, sub, ZMQ_DONTWAIT) < 0)
                break;
            frames++;
            more = zmq_msg_more(&self->body);
        }
        while (more && zmq_msg_recv(&self->extra, sub, ZMQ_DONTWAIT) >= 0) {
            frames++;
            more = zmq_msg_more(&self->extra);
        }
        if (frames != 2) {
            s_refuse(self, "frame count");
            continue;
        }
        if (self->repl &&
            broker_repl_add_event(self->repl, zmq_msg_data(&self->topic),
                                  zmq_msg_size(&self->topic),
                                  zmq_msg_data(&self->body),
                                  zmq_msg_size(&self->body)))
            return -1;
        const char *why = "malformed";
        if (pres_event_decode(
                &ev, zmq_msg_data(&self->topic), zmq_msg_size(&self->topic),
                zmq_msg_data(&self->body), zmq_msg_size(&self->body), &why)) {
            s_refuse(self, why);
            continue;
        }
        if (broker_state_apply(self->state, &ev) < 0)
            return -1;
        //  An fsync that finished during a long batch: publish what it
        //  made durable now rather than after the batch.
        if ((n & 63) == 63 && broker_durable_ready(self->durable) &&
            s_release(self))
            return -1;
        if (!closing && broker_state_outbox_count(self->state) > 0) {
            closing = true;
            limit = n + 1 + S_AFTER_CHANGE;
            self->change_at = zclock_usecs();
        } else if (closing && ev.type == PRES_EV_EXPIRE) {
            if (ev.deadline > broker_state_now(self->state))
                limit = n + 1;  //  sent after the batch began: caught up
            else if (limit < S_EXPIRE_BATCH)
                limit++;
        }
    }
    return s_commit(self, n, false) < 0 ? -1 : 0;
}

//  Apply an account change in its own batch; the reply written to
//  self->reply is held (by the caller) until the batch is durable, and
//  with sync replication it is sent only once the standby has it. by: who
//  asked. 0 or -1 (store failure).
static int
s_account(broker_server_t *self, const pres_query_t *q, const char *by)
{
    if (self->ha && !broker_ha_leading(self->ha)) {
        broker_query_error(&self->reply, "not the leader");
        return 0;
    }
    if (q->until && (uint64_t)pres_now_ms() > q->until) {
        //  The asker gave up (it answered 503 or timed out): applying it
        //  now could undo a newer change sent since on another connection.
        pres_log_info("account %s: change to %s refused, it expired %" PRId64
                      " ms ago",
                      q->user, pres_account_name(q->status),
                      pres_now_ms() - (int64_t)q->until);
        broker_query_error(&self->reply, "expired");
        return 0;
    }
    uint64_t seq = 0;
    int rc = 0;
    broker_state_begin(self->state, (uint64_t)pres_now_ms());
    const char *reason = q->reason[0] ? q->reason : NULL;
    int arc =
        broker_state_account(self->state, q->user, q->status, reason, by, &seq);
    if (self->repl && broker_repl_add_account(self->repl, q->user,
                                              (int)q->status, reason, by))
        arc = -1;
    int crc = s_commit(self, 0, true);
    if (crc < 0)
        rc = -1;
    //  crc 1: not durable, nothing published, the account unchanged.
    broker_query_account_reply(q, arc || crc, seq, &self->reply);
    return rc;
}

//  Serve one request on a ROUTER (queries, or admin when admin is true).
//  The routing envelope ends at the first empty frame (REQ's delimiter;
//  without one, as from a bare DEALER, it is the identity frame alone);
//  exactly one body frame must follow, else ONE error frame is the reply.
//  Returns 0, 1 when nothing was waiting, -1 on a store failure.
static int
s_serve(broker_server_t *self, zsock_t *sock, bool admin)
{
    //  RCVTIMEO is 0 on these sockets: NULL when nothing is waiting.
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return 1;
    zmsg_t *envelope = zmsg_new();
    bool delimited = false;
    for (zframe_t *f = zmsg_first(msg); f; f = zmsg_next(msg))
        if (zframe_size(f) == 0) {
            delimited = true;
            break;
        }
    zframe_t *frame;
    while ((frame = zmsg_pop(msg))) {
        bool last = delimited ? zframe_size(frame) == 0 : true;
        zmsg_append(envelope, &frame);
        if (last)
            break;
    }
    //  What is left in msg is the body.
    msgpack_sbuffer_clear(&self->reply);
    int rc = 0;
    zframe_t *body = zmsg_first(msg);
    pres_query_t q;
    if (zmsg_size(msg) > 1)
        broker_query_error(&self->reply, "a request is one frame");
    else if (!body || zframe_size(body) == 0)
        broker_query_error(&self->reply, "empty request");
    else if (!admin) {
        broker_forbidden_t *fb = broker_state_forbidden(self->state);
        fb->peers = broker_auth_admin_refused(self->auth);
        broker_query_answer(self->state, zframe_data(body), zframe_size(body),
                            &q, &self->reply);
    } else if (broker_query_admin(zframe_data(body), zframe_size(body), &q,
                                  &self->reply) == 1) {
        //  `by` from the request (the gateway forwards its admin token's
        //  sub) is trusted because only admin peers get here; else the
        //  identity the ZAP handler gave the connection.
        const char *peer = zframe_meta(body, "User-Id");
        rc = s_account(self, &q, q.by[0] ? q.by : (peer ? peer : "unknown"));
    }
    zmsg_destroy(&msg);
    zmsg_addmem(envelope, self->reply.data, self->reply.size);
    //  An answer may show state or a seq from a batch whose fsync is still
    //  running: it waits for that fsync like the batch's changes do.
    if (broker_durable_hold_reply(self->durable, sock, envelope)) {
        zmsg_destroy(&envelope);
        return -1;
    }
    if (rc == 0 && s_release(self))
        rc = -1;
    return rc;
}

//  Serve up to S_QUERIES_PER_TURN requests waiting on sock. 0 or -1.
static int
s_serve_some(broker_server_t *self, zsock_t *sock, bool admin)
{
    for (int i = 0; i < S_QUERIES_PER_TURN; i++) {
        int rc = s_serve(self, sock, admin);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    return 0;
}

//  ---- fail-over: the role follows the election (broker_ha)

//  Stop leading: unbind events and changes so publishers and subscribers
//  move on, drop the standby link. The next turn follows the new leader.
static void
s_demote(broker_server_t *self)
{
    pres_log_warn("no longer leader (term %" PRId64 "): stopped publishing; "
                  "rejoining as a standby",
                  self->term);
    __atomic_store_n(&self->leading, false, __ATOMIC_RELEASE);
    //  Replies already answered go out (their sockets are about to go);
    //  held changes are dropped by s_pub, as a deposed leader's are.
    if (broker_durable_drain(self->durable, s_pub, s_reply, self) < 0)
        pres_log_error("held replies dropped: their commit is not durable");
    broker_state_defer_sync(self->state, false);  //  a standby syncs inline
    zsock_destroy(&self->events);
    zsock_destroy(&self->changes);
    zsock_destroy(&self->admin);
    broker_repl_destroy(&self->repl);
    self->following[0] = 0;
    broker_state_set_term(self->state, 0);
}

static int
s_promote(broker_server_t *self, int64_t term)
{
    broker_repl_destroy(&self->repl);
    self->following[0] = 0;
    self->events = s_bind(self, ZMQ_SUB, self->cfg->events_endpoint, false);
    self->changes = s_bind(self, ZMQ_PUB, self->cfg->changes_endpoint, false);
    self->admin = s_bind(self, ZMQ_ROUTER, self->cfg->admin_endpoint, true);
    self->repl = broker_repl_leader_new(self->cfg, term);
    if (!self->events || !self->changes || !self->admin || !self->repl) {
        pres_log_error("cannot take the leader's sockets; resigning");
        zsock_destroy(&self->events);
        zsock_destroy(&self->changes);
        zsock_destroy(&self->admin);
        broker_repl_destroy(&self->repl);
        broker_ha_resign(self->ha);
        return 0;
    }
    self->term = term;
    __atomic_store_n(&self->leading, true, __ATOMIC_RELEASE);
    broker_state_defer_sync(self->state, self->cfg->fsync_thread != 0);
    broker_state_set_term(self->state, (uint64_t)term);
    pres_log_info("leading term %" PRId64 " at seq %" PRIu64, term,
                  broker_state_meta(self->state)->seq);
    return 0;
}

//  Replace the store with the snapshot the leader sent and reload.
static int
s_install_snapshot(broker_server_t *self)
{
    char path[PRES_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/data.mdb", self->cfg->data_dir);
    //  The sync thread holds the store: stop it first.
    if (broker_durable_drain(self->durable, s_pub, s_reply, self) < 0)
        return -1;
    broker_durable_destroy(&self->durable);
    broker_state_destroy(&self->state);
    broker_store_destroy(&self->store);
    if (rename(broker_repl_snapshot_path(self->repl), path)) {
        pres_log_error("rename(snapshot, %s) failed: %s", path,
                       strerror(errno));
        return -1;
    }
    self->store = broker_store_new(self->cfg->data_dir,
                                   (size_t)self->cfg->lmdb_map_mib << 20);
    if (!self->store)
        return -1;
    self->state = broker_state_new(self->cfg, self->store);
    if (!self->state)
        return -1;
    self->durable = s_durable_new(self);
    if (!self->durable)
        return -1;
    broker_repl_standby_loaded(self->repl, self->state);
    return 0;
}

//  One look at the election: promote, demote, or (re)attach to the
//  leader as its standby; then refresh stats.ha.
static int
s_ha_turn(broker_server_t *self)
{
    broker_ha_view_t view;
    broker_ha_view(self->ha, &view);
    if (self->leading && !broker_ha_leading(self->ha))
        s_demote(self);
    if (!self->leading && view.role == BROKER_HA_LEADER &&
        broker_ha_leading(self->ha) && s_promote(self, view.term))
        return -1;
    if (!self->leading && view.role == BROKER_HA_FOLLOWER && view.term &&
        *view.leader_repl && strcmp(view.leader, self->cfg->node_name) &&
        (view.term != self->term ||
         strcmp(view.leader_repl, self->following))) {
        broker_repl_destroy(&self->repl);
        self->repl = broker_repl_standby_new(self->cfg, view.leader_repl);
        self->term = view.term;
        snprintf(self->following, sizeof self->following, "%s",
                 view.leader_repl);
        if (self->repl)
            pres_log_info("following leader %s (term %" PRId64 ") at %s",
                          view.leader, view.term, view.leader_repl);
    }
    if (!self->leading)
        broker_ha_set_ready(
            self->ha, self->repl && broker_repl_standby_synced(self->repl));
    broker_ha_stats_t st = {
        .on = true,
        .leader = self->leading,
        .term = (uint64_t)view.term,
        .lag = self->repl ? broker_repl_lag(self->repl, self->state) : 0};
    snprintf(st.leader_name, sizeof st.leader_name, "%s", view.leader);
    broker_state_set_ha(self->state, &st);
    return 0;
}

//  The replication socket is readable (or a turn passed).
static int
s_repl_turn(broker_server_t *self)
{
    if (!self->repl)
        return 0;
    if (self->leading)
        return broker_repl_leader_serve(self->repl, self->state);
    for (int i = 0; i < 256; i++) {
        int rc = broker_repl_standby_step(self->repl, self->state);
        if (rc == BROKER_REPL_IDLE)
            break;
        if (rc < 0 || (rc == BROKER_REPL_SNAPSHOT && s_install_snapshot(self)))
            return -1;
    }
    return 0;
}

int
broker_server_run(broker_server_t *self)
{
    while (!zsys_interrupted) {
        if (s_figures_asked) {
            s_figures_asked = 0;
            s_log_figures(self);
            memset(&self->fig, 0, sizeof(self->fig));
            broker_durable_stats_reset(self->durable);
        }
        if (self->ha && s_ha_turn(self))
            return -1;
        //  Sockets come and go with the role: rebuild the poll set.
        zmq_pollitem_t items[5];
        zsock_t *socks[4] = {self->queries, self->events, self->admin, NULL};
        int n = 0;
        for (int i = 0; i < 3; i++)
            if (socks[i])
                items[n++] =
                    (zmq_pollitem_t){zsock_resolve(socks[i]), 0, ZMQ_POLLIN, 0};
        //  An fsync finished: what it made durable goes out.
        int durable_at = n;
        items[n++] = (zmq_pollitem_t){NULL, broker_durable_fd(self->durable),
                                      ZMQ_POLLIN, 0};
        if (self->repl)
            items[n++] = (zmq_pollitem_t){broker_repl_socket(self->repl), 0,
                                          ZMQ_POLLIN, 0};
        int64_t now = pres_mono_ms();
        long wait = self->ha ? 100 : 1000;  //  HA: notice role changes
        int64_t held = self->repl && self->leading
                           ? broker_repl_hold_deadline(self->repl)
                           : 0;
        if (held && held - now < wait)
            wait = held > now ? (long)(held - now) : 0;
        if (s_lead(self)) {
            //  The next slot of the deadline wheel holding a session.
            long to_due = (long)broker_state_due_wait(
                self->state, (uint64_t)pres_now_ms(), (uint64_t)wait);
            if (to_due < wait)
                wait = to_due;
        }
        if (broker_state_dirty(self->state)) {
            long to_flush =
                self->next_flush > now ? (long)(self->next_flush - now) : 0;
            if (to_flush < wait)
                wait = to_flush;
        }
        int rc = zmq_poll(items, n, wait);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            pres_log_error("zmq_poll() failed: %s", zmq_strerror(zmq_errno()));
            return -1;
        }
        //  A leader whose lease is in doubt handles nothing more.
        bool lead = s_lead(self);
        int at = 0;
        bool queries = items[at++].revents & ZMQ_POLLIN;
        bool events = self->events && (items[at++].revents & ZMQ_POLLIN);
        bool admin = self->admin && (items[at++].revents & ZMQ_POLLIN);
        if (events) {
            self->busy_at = pres_mono_ms();
            self->trimmed = false;
        } else if (!self->trimmed &&
                   pres_mono_ms() - self->busy_at >= S_TRIM_IDLE_MS &&
                   !broker_durable_busy(self->durable)) {
            //  main.c keeps freed heap for the hot path (no trim per
            //  batch); once the bus is quiet, give back what bursts and
            //  table growth left behind (old arrays, the I/O thread's
            //  receive buffers in its own arena, the durable queue), and
            //  the LMDB pages the logins read (clean file pages).
            broker_durable_shrink(self->durable);
            malloc_trim(0);
            broker_store_release(self->store);
            self->trimmed = true;
        }
        if ((items[durable_at].revents & ZMQ_POLLIN) && s_release(self))
            return -1;
        if (lead && events && s_events(self))
            return -1;
        if (queries && s_serve_some(self, self->queries, false))
            return -1;
        if (lead && admin && s_serve_some(self, self->admin, true))
            return -1;
        if (s_repl_turn(self))
            return -1;
        s_release_acked(self);
        if (lead)
            broker_state_due(self->state, (uint64_t)pres_now_ms(), s_due_notice,
                             self);
        if (broker_durable_ready(self->durable) && s_release(self))
            return -1;
        uint64_t commits0 = broker_store_commits(self->store);
        if (broker_state_point(self->state, (uint64_t)pres_now_ms()))
            return -1;
        s_committed(self, commits0, false);  //  the series point, once a minute
        now = pres_mono_ms();
        if (now >= self->next_flush) {
            if (s_flush(self))
                return -1;
            self->next_flush = now + self->cfg->lastseen_flush_ms;
        }
    }
    pres_log_info("stopping");
    return 0;
}
