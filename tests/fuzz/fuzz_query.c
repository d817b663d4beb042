/*  fuzz_query: a query request, as the broker's ROUTER hands it over,
    through the query decoder and broker_query_answer on a small state (a
    temp LMDB store with online, away, offline and banned users), and
    through the admin endpoint's decoder (broker_query_admin). Every input
    must get a reply that is one msgpack map with a boolean `ok` (never
    silence, never a crash); an accepted request must re-encode and decode
    to the same op. */
#include "broker_query.h"
#include "broker_state.h"
#include "broker_store.h"
#include "pres_mp.h"
#include "pres_msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static broker_state_t *s_state;
static msgpack_sbuffer s_out;

static void
s_event(pres_ev_type_t type, const char *user, const char *session,
        uint64_t seq, bool away)
{
    pres_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    snprintf(ev.user, sizeof ev.user, "%s", user);
    snprintf(ev.session, sizeof ev.session, "%s", session);
    snprintf(ev.src, sizeof ev.src, "fuzz-1");
    ev.seq = seq;
    ev.has_state = away;
    ev.state = away ? PRES_AWAY : PRES_ONLINE;
    broker_state_begin(s_state, 1000 + seq);
    if (broker_state_apply(s_state, &ev) != 0 ||
        broker_state_commit(s_state) != 0)
        abort();
    broker_state_outbox_clear(s_state);
}

static void
s_setup(void)
{
    static pres_config_t cfg;
    pres_config_defaults(&cfg);
    if (pres_config_finish(&cfg))
        abort();
    char dir[] = "/tmp/pres-fuzz-query-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    broker_store_t *store = broker_store_new(dir, 1 << 20);
    if (!store)
        abort();
    s_state = broker_state_new(&cfg, store);
    if (!s_state)
        abort();
    s_event(PRES_EV_LOGIN, "ann", "a1", 1, false);
    s_event(PRES_EV_LOGIN, "bea", "b1", 2, false);
    s_event(PRES_EV_HEARTBEAT, "bea", "b1", 3, true);
    s_event(PRES_EV_LOGIN, "cid", "c1", 4, false);
    s_event(PRES_EV_LOGOUT, "cid", "", 5, false);
    broker_state_begin(s_state, 2000);
    if (broker_state_account(s_state, "dan", PRES_ACC_BANNED, "x", "fuzz",
                             NULL) ||
        broker_state_commit(s_state))
        abort();
    broker_state_outbox_clear(s_state);
    msgpack_sbuffer_init(&s_out);
    //  The store lives for the process; its files can go now.
    char path[64];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_state)
        s_setup();
    msgpack_sbuffer_clear(&s_out);
    pres_query_t q;
    int rc = broker_query_answer(s_state, data, size, &q, &s_out);
    if (rc == 1) {  //  a valid account request: the server applies it
        if (s_out.size != 0 || q.op != PRES_Q_ACCOUNT)
            abort();
        broker_query_account_reply(&q, 0, 1, &s_out);
    } else if (rc != 0) {
        abort();  //  the store does not fail here
    }
    pres_mp_reader_t r;
    bool ok;
    if (pres_mp_find(s_out.data, s_out.size, "ok", &r) != 0 ||
        pres_mp_read_bool(&r, &ok) != 0)
        abort();
    //  The admin endpoint's decoder on the same bytes: an account request
    //  is handed back (nothing written), anything else gets an error.
    msgpack_sbuffer_clear(&s_out);
    pres_query_t qa;
    int arc = broker_query_admin(data, size, &qa, &s_out);
    if ((arc == 1) != (s_out.size == 0) ||
        (arc == 1 && qa.op != PRES_Q_ACCOUNT) || (arc != 0 && arc != 1))
        abort();
    const char *why;
    pres_query_t q1, q2;
    if (pres_query_decode(&q1, data, size, &why) == 0) {
        uint8_t again[PRES_MSG_MAX];
        size_t n = pres_query_encode(&q1, again, sizeof again);
        if (n == 0 || pres_query_decode(&q2, again, n, &why) != 0 ||
            q1.op != q2.op || strcmp(q1.user, q2.user) != 0 ||
            q1.limit != q2.limit || strcmp(q1.cursor, q2.cursor) != 0)
            abort();
    } else if (ok) {
        abort();  //  a refused request got ok: true
    }
    return 0;
}
