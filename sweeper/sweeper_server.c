/*  sweeper_server: sockets and the single-threaded loop of the sweeper.
    One zmq_poll on the changes SUB whose timeout is the next due deadline,
    so a deadline is acted on within milliseconds whatever the table size. */
#include "sweeper_server.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pres_bus.h"
#include "pres_log.h"
#include "pres_mp.h"
#include "pres_msg.h"
#include "sweeper_clone.h"
#include "sweeper_tick.h"

#define S_RETRY_MS            1000   //  unanswered: looked at again after
#define S_SNAPSHOT_MS         5000   //  wait for a snapshot reply
#define S_STATS_MS            1000   //  wait for a stats reply (loop runs)
#define S_HEAD_CHECK_MS       2000   //  period of the broker head check
#define S_SUMMARY_MS          60000  //  period of the summary line
#define S_BACKOFF_MIN_MS      50     //  first pause when the broker is absent
#define S_BACKOFF_MAX_MS      2000   //  longest pause between snapshot tries
#define S_FIRE_BACKOFF_MAX_MS 100    //  longest pause while the broker is away
#define S_DRAIN_MAX           10000  //  messages read per loop turn
#define S_FIRE_MAX            10000  //  expires sent per loop turn

struct sweeper_server {
    pres_config_t cfg;             //  our copy (the qclient borrows it)
    zsock_t *sub;                  //  changes and deadline notices
    void *sub_handle;              //  zsock_resolve(sub)
    pres_qclient_t *qc;            //  snapshot and stats queries
    pres_pub_t *pub;               //  expire events
    sweeper_tick_t *tick;          //  deadline table
    sweeper_clone_t *clone;        //  sync state over tick
    uint64_t expires;              //  expires sent
    uint64_t resyncs;              //  snapshots after the first
    int64_t snapshot_at;           //  mono ms of the next snapshot attempt
    int snapshot_backoff;          //  ms
    char cursor[PRES_ID_MAX + 1];  //  next snapshot page ("" = first)
    int64_t paging_since;          //  mono ms of the first page (paging)
    size_t paging_bytes;           //  bytes of the pages so far
    uint32_t paging_pages;         //  pages so far
    int64_t paging_longest;        //  ms of the slowest page load (loop busy)
    bool asking;                   //  a snapshot page request is in flight
    int64_t asked_at;              //  mono ms it was sent
    int64_t taken_at;              //  mono ms its reply was read
    int64_t fire_at;               //  mono ms before which we do not fire
    int fire_backoff;              //  ms
    bool holding;                  //  due expires held: broker absent
    int64_t head_check_at;         //  mono ms of the next head check
    bool checking;                 //  a head check (stats) is in flight
    int64_t check_asked_at;        //  mono ms it was sent
    uint64_t check_seq;            //  our seq when it was sent
    uint64_t check_snapshots;      //  snapshots loaded when it was sent
    int64_t summary_at;            //  mono ms of the next summary line
    int64_t drained_at;            //  mono ms of the last changes drained
    bool trimmed;                  //  heap trimmed since drained_at
};

sweeper_server_t *
sweeper_server_new(const pres_config_t *cfg)
{
    assert(cfg);
    sweeper_server_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() of sweeper_server failed");
        return NULL;
    }
    self->cfg = *cfg;
    char src[PRES_ID_MAX + 1];
    pres_src_id(src, sizeof(src), "sweeper", -1);
    //  Subscribe first (Clone): changes queue while the snapshot is built.
    self->sub = pres_bus_sub_changes(&self->cfg, "");
    self->qc = pres_qclient_new(&self->cfg);
    self->pub = pres_pub_new(&self->cfg, src);
    self->tick = sweeper_tick_new();
    self->clone = self->tick ? sweeper_clone_new(self->tick) : NULL;
    if (!self->sub || !self->qc || !self->pub || !self->clone) {
        sweeper_server_destroy(&self);
        return NULL;
    }
    self->sub_handle = zsock_resolve(self->sub);
    self->snapshot_backoff = S_BACKOFF_MIN_MS;
    self->fire_backoff = S_BACKOFF_MIN_MS;
    int64_t now = pres_mono_ms();
    self->head_check_at = now + S_HEAD_CHECK_MS;
    self->summary_at = now + S_SUMMARY_MS;
    pres_log_info("sweeper %s: changes %s, queries %s, events %s", src,
                  self->cfg.changes_endpoint, self->cfg.query_endpoint,
                  self->cfg.events_endpoint);
    return self;
}

void
sweeper_server_destroy(sweeper_server_t **self_p)
{
    assert(self_p);
    sweeper_server_t *self = *self_p;
    if (!self)
        return;
    sweeper_clone_destroy(&self->clone);
    sweeper_tick_destroy(&self->tick);
    pres_pub_destroy(&self->pub);
    pres_qclient_destroy(&self->qc);
    zsock_destroy(&self->sub);
    free(self);
    *self_p = NULL;
}

void
sweeper_server_stats(const sweeper_server_t *self,
                     sweeper_server_stats_t *stats)
{
    assert(self && stats);
    sweeper_clone_stats_t cs;
    sweeper_clone_stats(self->clone, &cs);
    stats->tracked = sweeper_tick_size(self->tick);
    stats->expires = self->expires;
    stats->resyncs = self->resyncs;
    stats->snapshots = cs.snapshots;
    stats->changes = cs.changes;
    stats->notices = cs.notices;
    stats->bad = cs.bad;
    stats->seq = sweeper_clone_seq(self->clone);
}

static void
s_summary(const sweeper_server_t *self)
{
    sweeper_server_stats_t st;
    sweeper_server_stats(self, &st);
    pres_log_info("sessions tracked %" PRIu64 ", expires sent %" PRIu64
                  ", resyncs %" PRIu64 ", changes %" PRIu64 ", notices %" PRIu64
                  ", bad frames %" PRIu64 ", seq %" PRIu64 "%s",
                  st.tracked, st.expires, st.resyncs, st.changes, st.notices,
                  st.bad, st.seq,
                  sweeper_clone_synced(self->clone) ? "" : " (out of sync)");
}

static int
s_backoff(int ms)
{
    return ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : ms * 2;
}

//  Snapshot pages are asked for without blocking: the loop goes on firing
//  due expires while the broker builds a page and while it comes in.

static void
s_snapshot_retry(sweeper_server_t *self)
{
    *self->cursor = '\0';
    self->snapshot_at = pres_mono_ms() + self->snapshot_backoff;
    self->snapshot_backoff = s_backoff(self->snapshot_backoff);
}

//  Ask for the next page. The SUB stays subscribed meanwhile, so every
//  change after the first page's seq waits in its queue.
static void
s_snapshot_ask(sweeper_server_t *self)
{
    pres_query_t q;
    memset(&q, 0, sizeof(q));
    q.op = PRES_Q_SNAPSHOT;
    q.limit = (uint32_t)self->cfg.snapshot_page;
    memcpy(q.cursor, self->cursor, sizeof q.cursor);
    self->asked_at = pres_mono_ms();
    if (!*self->cursor) {
        self->paging_since = self->asked_at;
        self->paging_bytes = 0;
        self->paging_pages = 0;
        self->paging_longest = 0;
    }
    if (pres_qclient_send(self->qc, &q, S_SNAPSHOT_MS) != 0) {
        pres_log_warn("snapshot: request not sent (%s); retrying in %d ms",
                      strerror(errno), self->snapshot_backoff);
        sweeper_clone_desync(self->clone, "snapshot failed");
        s_snapshot_retry(self);
        return;
    }
    self->asking = true;
}

//  The page asked for is late: give up on it and start over.
static void
s_snapshot_late(sweeper_server_t *self)
{
    pres_log_warn("snapshot: broker did not answer in %d ms; retrying in %d ms",
                  S_SNAPSHOT_MS, self->snapshot_backoff);
    pres_qclient_abandon(self->qc);
    self->asking = false;
    sweeper_clone_desync(self->clone, "snapshot failed");
    s_snapshot_retry(self);
}

//  The page's reply is readable: load it.
static void
s_snapshot_take(sweeper_server_t *self)
{
    char *error = NULL;
    zframe_t *reply = pres_qclient_recv(self->qc, &error);
    if (!reply && errno == EAGAIN)
        return;  //  not whole yet
    self->asking = false;
    if (!reply) {
        pres_log_error("snapshot refused: %s", error ? error : "?");
        free(error);
        sweeper_clone_desync(self->clone, "snapshot failed");
        s_snapshot_retry(self);
        return;
    }
    sweeper_clone_stats_t cs;
    sweeper_clone_stats(self->clone, &cs);
    self->paging_bytes += zframe_size(reply);
    self->paging_pages++;
    int rc = sweeper_clone_load_page(self->clone, zframe_data(reply),
                                     zframe_size(reply), self->cursor,
                                     sizeof self->cursor);
    zframe_destroy(&reply);
    //  The loop's longest stretch without a chance to fire: the load.
    int64_t now = pres_mono_ms();
    if (now - self->taken_at > self->paging_longest)
        self->paging_longest = now - self->taken_at;
    if (rc != 0) {
        s_snapshot_retry(self);
        return;
    }
    if (*self->cursor) {
        self->snapshot_at = now;  //  the next page at once
        return;
    }
    if (cs.snapshots > 0)
        self->resyncs++;
    pres_log_info(
        "snapshot: seq %" PRIu64 ", %zu live sessions "
        "(%u pages, %zu bytes, %" PRId64 " ms, longest load %" PRId64 " ms)%s",
        sweeper_clone_seq(self->clone), sweeper_tick_size(self->tick),
        self->paging_pages, self->paging_bytes, now - self->paging_since,
        self->paging_longest, cs.snapshots ? " (resync)" : "");
    self->snapshot_backoff = S_BACKOFF_MIN_MS;
    self->head_check_at = now + S_HEAD_CHECK_MS;
}

//  Compare our seq with the broker's head (cheap O(1) `stats`), without
//  blocking: the loop goes on firing and reading changes while the broker
//  answers (a reply waits for the fsync of the last commit, which under
//  load took up to 250 ms with the loop blocked: expires went late). The
//  query client is shared with the snapshot pages, which only run out of
//  sync: a check in flight is dropped when sync is lost.
static void
s_head_ask(sweeper_server_t *self)
{
    pres_query_t q;
    memset(&q, 0, sizeof(q));
    q.op = PRES_Q_STATS;
    if (pres_qclient_send(self->qc, &q, S_STATS_MS) != 0)
        return;  //  broker away: the snapshot path copes when it is back
    sweeper_clone_stats_t cs;
    sweeper_clone_stats(self->clone, &cs);
    self->checking = true;
    self->check_asked_at = pres_mono_ms();
    self->check_seq = sweeper_clone_seq(self->clone);
    self->check_snapshots = cs.snapshots;
}

static void
s_head_drop(sweeper_server_t *self)
{
    pres_qclient_abandon(self->qc);
    self->checking = false;
}

//  The stats reply is readable: check it against our seq when we asked.
static void
s_head_take(sweeper_server_t *self)
{
    zframe_t *reply = pres_qclient_recv(self->qc, NULL);
    if (!reply && errno == EAGAIN)
        return;  //  not whole yet
    self->checking = false;
    if (!reply)
        return;
    uint64_t head = 0;
    bool found = pres_mp_find_uint(zframe_data(reply), zframe_size(reply),
                                   "seq", &head) == 0;
    zframe_destroy(&reply);
    sweeper_clone_stats_t cs;
    sweeper_clone_stats(self->clone, &cs);
    //  A snapshot loaded since we asked: our seq then means nothing now.
    if (!found || cs.snapshots != self->check_snapshots)
        return;
    if (sweeper_clone_check_head_at(self->clone, head, self->check_seq))
        pres_log_info("resync: %s (ours %" PRIu64 " when asked, %" PRIu64
                      " now, broker %" PRIu64 ")",
                      sweeper_clone_why(self->clone), self->check_seq,
                      sweeper_clone_seq(self->clone), head);
}

//  Read up to S_DRAIN_MAX messages without blocking.
static void
s_drain(sweeper_server_t *self)
{
    for (int i = 0; i < S_DRAIN_MAX; i++) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        if (zmq_msg_recv(&topic, self->sub_handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&topic);
            return;
        }
        zmq_msg_init(&body);
        int more = zmq_msg_more(&topic);
        int rc = more ? zmq_msg_recv(&body, self->sub_handle, 0) : -1;
        if (rc >= 0 && !zmq_msg_more(&body)) {
            sweeper_clone_result_t res = sweeper_clone_recv(
                self->clone, zmq_msg_data(&topic), zmq_msg_size(&topic),
                zmq_msg_data(&body), zmq_msg_size(&body),
                (uint64_t)pres_now_ms());
            if (res == SWEEPER_CLONE_RESYNC)
                pres_log_info("resync: %s after seq %" PRIu64,
                              sweeper_clone_why(self->clone),
                              sweeper_clone_seq(self->clone));
        } else {
            //  Not two frames: skip the rest of this message.
            while (zmq_msg_more(rc >= 0 ? &body : &topic)) {
                zmq_msg_close(&body);
                zmq_msg_init(&body);
                if (zmq_msg_recv(&body, self->sub_handle, 0) < 0)
                    break;
                rc = 0;
            }
            pres_log_warn("changes: refused a message that is not two "
                          "frames");
        }
        zmq_msg_close(&body);
        zmq_msg_close(&topic);
        //  Stop reading once out of sync: the rest waits for the snapshot.
        if (!sweeper_clone_synced(self->clone))
            return;
    }
}

static int
s_fire_one(void *arg, const char *user, const char *session, uint64_t deadline)
{
    sweeper_server_t *self = arg;
    pres_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = PRES_EV_EXPIRE;
    snprintf(ev.user, sizeof(ev.user), "%s", user);
    snprintf(ev.session, sizeof(ev.session), "%s", session);
    ev.deadline = deadline;
    if (pres_pub_send(self->pub, &ev, 100) != 0)
        return -1;
    self->expires++;
    pres_log_debug("expire %s/%s deadline %" PRIu64 " (late %" PRId64 " ms)",
                   user, session, deadline, pres_now_ms() - (int64_t)deadline);
    return 0;
}

static void
s_fire(sweeper_server_t *self)
{
    uint64_t now = (uint64_t)pres_now_ms();
    uint64_t due = sweeper_tick_next_due(self->tick);
    if (due == 0 || due > now || pres_mono_ms() < self->fire_at)
        return;
    //  Broker absent: send nothing (it would only wait), look again
    //  after a short backoff; the expires stay due meanwhile.
    if (!pres_pub_ready(self->pub)) {
        if (!self->holding)
            pres_log_warn("broker not attached to %s; holding due expires",
                          self->cfg.events_endpoint);
        self->holding = true;
        self->fire_at = pres_mono_ms() + self->fire_backoff;
        self->fire_backoff = self->fire_backoff * 2 > S_FIRE_BACKOFF_MAX_MS
                                 ? S_FIRE_BACKOFF_MAX_MS
                                 : self->fire_backoff * 2;
        return;
    }
    if (self->holding)
        pres_log_info("broker attached again; sending due expires");
    self->holding = false;
    self->fire_backoff = S_BACKOFF_MIN_MS;
    //  A send that fails now (bus full for 100 ms) leaves the rest due;
    //  the next turn goes on at once.
    sweeper_tick_fire(self->tick, now, S_RETRY_MS, S_FIRE_MAX, s_fire_one,
                      self);
}

//  How long zmq_poll may sleep: until the next due entry, snapshot retry,
//  head check or summary, at most 1 s.
static long
s_poll_ms(const sweeper_server_t *self)
{
    int64_t mono = pres_mono_ms();
    int64_t wait = 1000;
    uint64_t due = sweeper_tick_next_due(self->tick);
    if (due) {
        int64_t d = (int64_t)due - pres_now_ms();
        if (self->fire_at > mono && d < self->fire_at - mono)
            d = self->fire_at - mono;
        if (d < wait)
            wait = d;
    }
    if (self->asking) {
        if (self->asked_at + S_SNAPSHOT_MS - mono < wait)
            wait = self->asked_at + S_SNAPSHOT_MS - mono;
    } else if (self->checking) {
        if (self->check_asked_at + S_STATS_MS - mono < wait)
            wait = self->check_asked_at + S_STATS_MS - mono;
    } else if (!sweeper_clone_synced(self->clone) &&
               self->snapshot_at - mono < wait)
        wait = self->snapshot_at - mono;
    if (self->head_check_at - mono < wait)
        wait = self->head_check_at - mono;
    if (self->summary_at - mono < wait)
        wait = self->summary_at - mono;
    return wait < 0 ? 0 : (long)wait;
}

int
sweeper_server_run(sweeper_server_t *self)
{
    assert(self);
    while (!zsys_interrupted) {
        int64_t mono = pres_mono_ms();
        //  Out of sync, the query client serves the snapshot pages.
        if (self->checking && (!sweeper_clone_synced(self->clone) ||
                               mono - self->check_asked_at >= S_STATS_MS))
            s_head_drop(self);
        if (!sweeper_clone_synced(self->clone) && !self->asking &&
            mono >= self->snapshot_at)
            s_snapshot_ask(self);
        else if (self->asking && mono - self->asked_at >= S_SNAPSHOT_MS)
            s_snapshot_late(self);
        s_fire(self);
        //  Out of sync, the queued changes wait for the snapshot: sleep
        //  instead of waking for them.
        short events = sweeper_clone_synced(self->clone) ? ZMQ_POLLIN : 0;
        zmq_pollitem_t items[2] = {
            {self->sub_handle, 0, events, 0},
            {pres_qclient_handle(self->qc), 0,
             self->asking || self->checking ? ZMQ_POLLIN : 0, 0}};
        int rc = zmq_poll(items, items[1].socket ? 2 : 1, s_poll_ms(self));
        if (rc < 0 && errno != EINTR) {
            pres_log_error("zmq_poll() failed: %s", zmq_strerror(errno));
            return -1;
        }
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) {
            if (self->asking) {
                self->taken_at = pres_mono_ms();
                s_snapshot_take(self);
            } else if (self->checking)
                s_head_take(self);
        }
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN) &&
            sweeper_clone_synced(self->clone)) {
            s_drain(self);
            self->drained_at = pres_mono_ms();
            self->trimmed = false;
        }
        //  Answers read just now (changes, notices, a snapshot page) date
        //  the wait of the expires still unanswered (sweeper_tick_fire).
        sweeper_tick_heard(self->tick, (uint64_t)pres_now_ms());
        mono = pres_mono_ms();
        if (rc == 0 && !self->trimmed && mono - self->drained_at >= 2000) {
            //  After a burst of changes (a snapshot, a login storm) glibc
            //  keeps the freed buffers of the ZeroMQ I/O thread's arena
            //  and of grown tables: give them back once quiet.
            malloc_trim(0);
            self->trimmed = true;
        }
        if (mono >= self->head_check_at) {
            //  Only with the broker attached, one at a time.
            if (sweeper_clone_synced(self->clone) &&
                pres_pub_ready(self->pub) && !self->checking && !self->asking)
                s_head_ask(self);
            self->head_check_at = mono + S_HEAD_CHECK_MS;
        }
        if (mono >= self->summary_at) {
            s_summary(self);
            self->summary_at = mono + S_SUMMARY_MS;
        }
    }
    s_summary(self);
    return 0;
}
