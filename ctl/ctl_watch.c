/*  ctl_watch: the live change printer of presencectl (see ctl_watch.h). */
#include "ctl_watch.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "ctl_cmd.h"
#include "ctl_out.h"
#include "pres_bus.h"
#include "pres_log.h"
#include "pres_mp.h"
#include "pres_msg.h"

void
ctl_watch_seq_reset(ctl_watch_seq_t *st, uint64_t seq)
{
    st->last = seq;
    st->fresh = true;
}

ctl_watch_verdict_t
ctl_watch_seq_check(ctl_watch_seq_t *st, uint64_t seq)
{
    if (seq <= st->last)
        //  Queued before the snapshot: it holds them. After a printed
        //  change, an old seq means the broker lost its history.
        return st->fresh ? CTL_WATCH_DROP : CTL_WATCH_GAP;
    if (seq != st->last + 1)
        return CTL_WATCH_GAP;
    st->last = seq;
    st->fresh = false;
    return CTL_WATCH_PRINT;
}

//  Take a snapshot; fills *seq and *users. CTL_EXIT_* code.
static int
s_snapshot(pres_qclient_t *qc, const ctl_args_t *a, uint64_t *seq,
           uint32_t *users, FILE *err)
{
    pres_query_t q;
    memset(&q, 0, sizeof(q));
    q.op = PRES_Q_SNAPSHOT;
    char *error = NULL;
    zframe_t *reply = pres_qclient_query(qc, &q, a->timeout_ms, &error);
    if (!reply) {
        if (errno == ETIMEDOUT)
            return CTL_EXIT_UNREACHABLE;
        fprintf(err, "presencectl: snapshot refused: %s\n",
                error ? error : "?");
        free(error);
        return CTL_EXIT_FAIL;
    }
    pres_mp_reader_t r;
    int rc = CTL_EXIT_OK;
    *users = 0;
    if (pres_mp_find_uint(zframe_data(reply), zframe_size(reply), "seq", seq) !=
            0 ||
        pres_mp_find(zframe_data(reply), zframe_size(reply), "users", &r) !=
            0 ||
        pres_mp_read_array(&r, users) != 0) {
        fprintf(err, "presencectl: malformed snapshot reply\n");
        rc = CTL_EXIT_FAIL;
    }
    zframe_destroy(&reply);
    return rc;
}

//  Say a resync happens: on err for people, and with --json also as a
//  line on out so a consumer knows it may have missed changes.
static void
s_say_resync(const ctl_args_t *a, const char *why, uint64_t expected,
             uint64_t got, FILE *out, FILE *err)
{
    fprintf(err,
            "presencectl: resync: %s (expected seq %" PRIu64 ", got %" PRIu64
            "); taking a new snapshot\n",
            why, expected, got);
    if (a->json) {
        fprintf(out,
                "{\"resync\":true,\"reason\":\"%s\",\"expected\":%" PRIu64
                ",\"got\":%" PRIu64 "}\n",
                why, expected, got);
        fflush(out);
    }
}

//  Print one change (a msgpack map) as text or JSON.
static void
s_print_change(const ctl_args_t *a, const void *buf, size_t len, FILE *out)
{
    if (a->json)
        ctl_out_json(buf, len, out);
    else
        ctl_out_change(buf, len, out);
}

//  Replay the changes after *last from the broker's change log, printing
//  each, until caught up (or --count is reached). *last follows what was
//  printed. CTL_EXIT_OK, CTL_EXIT_UNREACHABLE, or CTL_EXIT_FAIL with
//  *resync set when the log does not reach back to *last.
static int
s_replay(pres_qclient_t *qc, const ctl_args_t *a, uint64_t *last, long *printed,
         bool *resync, FILE *out, FILE *err)
{
    *resync = false;
    while (a->count == 0 || *printed < a->count) {
        pres_query_t q = {.op = PRES_Q_CHANGES_SINCE, .seq = *last};
        char *error = NULL;
        zframe_t *reply = pres_qclient_query(qc, &q, a->timeout_ms, &error);
        if (!reply) {
            if (errno == ETIMEDOUT)
                return CTL_EXIT_UNREACHABLE;
            *resync = error && strcmp(error, "resync") == 0;
            if (!*resync)
                fprintf(err, "presencectl: changes_since refused: %s\n",
                        error ? error : "?");
            free(error);
            return CTL_EXIT_FAIL;
        }
        const void *buf = zframe_data(reply);
        size_t len = zframe_size(reply);
        pres_mp_reader_t r;
        uint32_t n = 0;
        int rc = CTL_EXIT_OK;
        if (pres_mp_find(buf, len, "changes", &r) != 0 ||
            pres_mp_read_array(&r, &n) != 0)
            rc = CTL_EXIT_FAIL;
        for (uint32_t i = 0; i < n && rc == CTL_EXIT_OK; i++) {
            const uint8_t *start = r.p;
            pres_change_t ch;
            const char *why = "malformed";
            if (pres_mp_skip(&r) != 0 ||
                pres_change_decode(&ch, start, (size_t)(r.p - start), &why) !=
                    0 ||
                ch.seq != *last + 1) {
                rc = CTL_EXIT_FAIL;
                break;
            }
            if (a->count == 0 || *printed < a->count) {
                s_print_change(a, start, (size_t)(r.p - start), out);
                (*printed)++;
            }
            *last = ch.seq;
        }
        fflush(out);
        uint64_t next = 0;
        bool more = rc == CTL_EXIT_OK &&
                    pres_mp_find_uint(buf, len, "next", &next) == 0 && n > 0;
        zframe_destroy(&reply);
        if (rc != CTL_EXIT_OK) {
            fprintf(err, "presencectl: malformed changes_since reply\n");
            return rc;
        }
        if (!more)
            return CTL_EXIT_OK;
    }
    return CTL_EXIT_OK;
}

//  The broker's latest change seq, from `stats`. 0 or -1 (no answer).
static int
s_head(pres_qclient_t *qc, uint64_t *seq)
{
    pres_query_t q = {.op = PRES_Q_STATS};
    zframe_t *reply = pres_qclient_query(qc, &q, 250, NULL);
    if (!reply)
        return -1;
    int rc =
        pres_mp_find_uint(zframe_data(reply), zframe_size(reply), "seq", seq);
    zframe_destroy(&reply);
    return rc;
}

int
ctl_watch_run(const ctl_args_t *a, const pres_config_t *cfg, FILE *out,
              FILE *err)
{
    assert(a && cfg);
    //  Subscribe first: changes after the snapshot wait in the queue.
    zsock_t *sub = pres_bus_sub_changes(cfg, PRES_CHANGE_PREFIX);
    pres_qclient_t *qc = pres_qclient_new(cfg);
    if (!sub || !qc) {
        zsock_destroy(&sub);
        pres_qclient_destroy(&qc);
        return CTL_EXIT_FAIL;
    }
    void *handle = zsock_resolve(sub);
    ctl_watch_seq_t st = {0};
    bool synced = false, first = true;
    bool replayed = false;  //  a gap can be filled from the log
    uint64_t term = 0;      //  leader term of the last change (fail-over)
    long printed = 0;
    int rc = CTL_EXIT_OK;
    //  Gap detection only sees a loss when a later change arrives. When the
    //  stream is quiet, ask the broker for its head now and then: changes
    //  it had published by one check must have arrived by the next.
    int64_t next_check = pres_mono_ms() + 2000;
    uint64_t owed = 0;  //  head seen at the last check, if ahead of us
    while (!zsys_interrupted && (a->count == 0 || printed < a->count)) {
        //  Replay from the change log: at the start with --since, and after
        //  a gap once something was printed or replayed (only what is
        //  missing is fetched). A snapshot only when the log cannot.
        if (!synced && ((first && a->has_since) || (!first && replayed))) {
            uint64_t last = first ? a->since : st.last;
            bool resync = false;
            rc = s_replay(qc, a, &last, &printed, &resync, out, err);
            if (rc == CTL_EXIT_OK) {
                ctl_watch_seq_reset(&st, last);
                synced = true;
                owed = 0;
                if (first)
                    fprintf(err,
                            "presencectl: replayed the log; watching "
                            "changes after seq %" PRIu64 "; Ctrl-C stops\n",
                            last);
                first = false;
                continue;
            }
            if (rc == CTL_EXIT_UNREACHABLE && first) {
                ctl_cmd_unreachable(cfg, cfg->query_endpoint, a->timeout_ms,
                                    err);
                break;
            }
            if (rc == CTL_EXIT_FAIL && !resync)
                break;
            if (resync && first)  //  after a gap the resync was said
                s_say_resync(a, "the change log does not reach back", last + 1,
                             last + 1, out, err);
            replayed = false;  //  take a snapshot below
        }
        if (!synced) {
            uint64_t seq = 0;
            uint32_t users = 0;
            rc = s_snapshot(qc, a, &seq, &users, err);
            if (rc == CTL_EXIT_UNREACHABLE && first) {
                ctl_cmd_unreachable(cfg, cfg->query_endpoint, a->timeout_ms,
                                    err);
                break;
            }
            if (rc == CTL_EXIT_FAIL)
                break;
            if (rc == CTL_EXIT_UNREACHABLE) {
                fprintf(err, "presencectl: broker not answering; "
                             "retrying\n");
                continue;
            }
            ctl_watch_seq_reset(&st, seq);
            synced = true;
            replayed = true;
            owed = 0;
            if (!a->json || first)
                fprintf(err,
                        "presencectl: %s from seq %" PRIu64 " (%" PRIu32
                        " users online or away)%s\n",
                        first ? "watching changes" : "resynced", seq, users,
                        first ? "; Ctrl-C stops" : "");
            first = false;
        }
        zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, 500);
        if (n < 0 && errno != EINTR) {
            fprintf(err, "presencectl: zmq_poll() failed: %s\n",
                    zmq_strerror(errno));
            rc = CTL_EXIT_FAIL;
            break;
        }
        if (n <= 0) {
            uint64_t head;
            if (pres_mono_ms() < next_check)
                continue;
            next_check = pres_mono_ms() + 2000;
            if (owed > st.last) {
                s_say_resync(a, "changes missing at the stream's end",
                             st.last + 1, owed, out, err);
                synced = false;
                replayed = true;
                owed = 0;
            } else if (s_head(qc, &head) == 0)
                owed = head > st.last ? head : 0;
            continue;
        }
        zframe_t *topic = zframe_recv(sub);
        zframe_t *body = topic && zframe_more(topic) ? zframe_recv(sub) : NULL;
        pres_change_t ch;
        const char *why = "not two frames";
        if (body && !zframe_more(body) &&
            pres_change_decode(&ch, zframe_data(body), zframe_size(body),
                               &why) == 0) {
            uint64_t expected = st.last + 1;
            bool new_term = ch.term && term && ch.term != term;
            if (ch.term)
                term = ch.term;
            if (new_term) {
                //  A new leader (docs/ha.md): resync from its snapshot.
                s_say_resync(a, "new leader term", expected, ch.seq, out, err);
                synced = false;
                replayed = false;
            } else
                switch (ctl_watch_seq_check(&st, ch.seq)) {
                case CTL_WATCH_PRINT:
                    s_print_change(a, zframe_data(body), zframe_size(body),
                                   out);
                    fflush(out);
                    printed++;
                    break;
                case CTL_WATCH_DROP:
                    break;
                case CTL_WATCH_GAP:
                    s_say_resync(
                        a, ch.seq < expected ? "seq went backwards" : "seq gap",
                        expected, ch.seq, out, err);
                    synced = false;
                    replayed = ch.seq > expected;  //  backwards: a new broker
                    break;
                }
        } else
            fprintf(err, "presencectl: skipped a malformed change (%s)\n", why);
        zframe_destroy(&topic);
        zframe_destroy(&body);
        //  Drop any frames left of a message with more than two.
        while (zsock_rcvmore(sub)) {
            zframe_t *extra = zframe_recv(sub);
            zframe_destroy(&extra);
        }
    }
    pres_qclient_destroy(&qc);
    zsock_destroy(&sub);
    return rc == CTL_EXIT_UNREACHABLE && !first ? CTL_EXIT_OK : rc;
}
