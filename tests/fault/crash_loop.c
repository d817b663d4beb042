/*  fault.crash_loop: kill -9 the broker, the sweeper or the gateway at a
    random instant under mixed load, restart it, and check after every
    round what docs/protocol.md promises across crashes. Load: HTTP logins,
   heartbeats and logouts; bus events from a frontend; account changes through
   the gateway's admin API (PUT /v1/users/{user}/account). Checks per round:
      - every account change acknowledged (200) before the kill holds;
      - seq after a broker restart is at least every seq published before
        the kill, and the next change's seq is above them;
      - a subscriber's view (changes, resynced from a snapshot on a gap)
        is exactly the broker's state: every change received holds unless
        a later one replaced it;
      - nobody is online without a live session or with an account that
        is not active;
      - with the load paused, presencectl watch and an SSE client are at
        the broker's head seq;
    and at the end, with every session left silent, the sweeper ends every
    session and none outlives its deadline by more than 1 s (sweeper kills
    included: a deadline that fell while a killed sweeper was restarting
    is met within 1 s of its restart; deadlines that fell while the broker
    itself was down are excused). Usage: test_fault_crash_loop [ROUNDS] (default
   5); SEED=n in the environment repeats a run. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ithttp.h"
#include "testutil.h"

#define S_HTTP_USERS     40  //  users driven over HTTP
#define S_BUS_USERS      40  //  users driven over the bus
#define S_USERS          (S_HTTP_USERS + S_BUS_USERS)
#define S_TIMEOUT_S      3     //  session timeout
#define S_LATE_MS        1000  //  docs/protocol.md: a deadline is met within 1 s
#define S_SLACK_MS       300   //  our clock reads around the broker's
#define S_BUS_TIMEOUT_MS 1000
#define S_BUS_TIMEOUT_S  "1000"

static it_env_t env;
static it_proc_t broker, sweeper, gateway, watch;
static pres_config_t cfg;
static int port;
static ith_minter_t *minter;  //  tokens signed with the gateway's secret
static ith_follower_t *sse;   //  an SSE client that reconnects by itself
static unsigned seed;

//  ---------------------------------------------------------------------
//  What the test knows, under one lock.

typedef struct {
    char id[16];
    char session[PRES_ID_MAX + 1];  //  our current session, "" if none
    int64_t last_ack;  //  wall ms when the broker last had our beat
    bool silent;       //  stopped beating (left to the sweeper)
    char *token;       //  HTTP users: valid until logout
    //  Account changes through the admin API.
    pres_account_t acked;  //  last status acknowledged with 200
    bool has_acked;
    bool pending;  //  a later change got no clear answer
    pres_account_t pending_status;
    //  A change that got no clear answer may still be applied by the
    //  broker until its deadline (`until`, bus_timeout_ms after the
    //  gateway forwarded it), even after a newer acknowledged one: ZeroMQ
    //  does not order requests across connections. After that deadline
    //  the broker refuses it.
    unsigned late;       //  statuses of such changes (bit per status)
    int64_t late_until;  //  wall ms, the latest of their deadlines
    int64_t acked_at;    //  wall ms of the last 200
    //  The subscriber's view.
    pres_state_t state;
    uint32_t sessions;
    pres_account_t account;
} s_user_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static s_user_t users[S_USERS];
static uint64_t view_seq;  //  last seq applied to the view
static uint64_t max_seen;  //  highest seq ever received
static uint64_t resyncs;   //  view rebuilt from a snapshot
static uint64_t timeouts;  //  timeout changes checked
static int64_t worst_late = -1000000;
static atomic_bool paused, stopping;
static atomic_int busy;  //  load threads inside an operation
static int64_t broker_down_from, broker_down_to;  //  wall ms, last outage
//  Outages of the broker: deadlines inside one (+1 s) are excused.
#define S_OUTAGES_MAX 4096
static int64_t outages[S_OUTAGES_MAX][2];
static int noutages;
//  Sweeper restarts, from the kill to its "ready:" line: nobody expires
//  meanwhile, so a deadline inside one must be met within 1 s of its end
//  (the broker's next due notice, sent every ~1 s while the session is
//  live; a restart takes ~0.1 s, over 1.5 s for ASan on a loaded box).
static int64_t restarts[S_OUTAGES_MAX][2];
static int nrestarts;
static int64_t worst_restart;

static s_user_t *
s_find(const char *id)
{
    for (int i = 0; i < S_USERS; i++)
        if (strcmp(users[i].id, id) == 0)
            return &users[i];
    return NULL;
}

static bool
s_excused(int64_t deadline)
{
    for (int i = 0; i < noutages; i++)
        if (deadline + S_LATE_MS >= outages[i][0] &&
            deadline <= outages[i][1] + S_LATE_MS)
            return true;
    return false;
}

static unsigned
s_rand(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 16) & 0x7fff;
}

//  ---------------------------------------------------------------------
//  The subscriber: a view of every pool user built from the changes,
//  rebuilt from a snapshot whenever a seq gap shows a loss.

static void
s_resync(void)
{
    pres_query_t q = {.op = PRES_Q_SNAPSHOT};
    zframe_t *rep = NULL;
    while (!rep && !atomic_load(&stopping)) {
        rep = it_query(&cfg, &q);  //  the broker may be restarting
        if (!rep)
            it_sleep_ms(50);
    }
    if (!rep)
        return;
    uint64_t seq = it_uint(rep, "seq");
    uint32_t n = 0;
    CHECK_EQ(it_mp_count(rep, "users", &n), 0);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < S_USERS; i++) {
        users[i].state = PRES_OFFLINE;
        users[i].sessions = 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        char path[64], id[PRES_ID_MAX + 1], st[16];
        snprintf(path, sizeof path, "users.%u.user", i);
        CHECK_EQ(it_mp_str(rep, path, id, sizeof id), 0);
        s_user_t *u = s_find(id);
        if (!u)
            continue;
        snprintf(path, sizeof path, "users.%u.state", i);
        CHECK_EQ(it_mp_str(rep, path, st, sizeof st), 0);
        CHECK_EQ(pres_state_parse(st, strlen(st), &u->state), 0);
        snprintf(path, sizeof path, "users.%u.sessions", i);
        u->sessions = (uint32_t)it_uint(rep, path);
    }
    //  Accounts are not in the snapshot: ask for each pool user.
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < S_USERS; i++) {
        char acc[16] = "";
        int rc = it_get_user(&cfg, users[i].id, NULL, NULL, NULL, acc);
        pthread_mutex_lock(&lock);
        if (rc == 0)
            pres_account_parse(acc, strlen(acc), &users[i].account);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    view_seq = seq;
    resyncs++;
    pthread_mutex_unlock(&lock);
    zframe_destroy(&rep);
}

//  A timeout change: how late was it against the deadline we caused?
static void
s_check_timeout(s_user_t *u, const pres_change_t *ch)
{
    if (strcmp(u->session, ch->session) != 0 || u->last_ack == 0)
        return;  //  not the session we track (or we never heard it live)
    int64_t deadline = u->last_ack + S_TIMEOUT_S * 1000;
    int64_t late = (int64_t)ch->at - deadline;
    u->session[0] = 0;
    u->last_ack = 0;
    if (s_excused(deadline))
        return;
    int64_t allowed = S_LATE_MS + S_SLACK_MS;
    for (int i = 0; i < nrestarts; i++)
        if (deadline + S_LATE_MS >= restarts[i][0] &&
            deadline <= restarts[i][1] &&
            restarts[i][1] - deadline + S_LATE_MS + S_SLACK_MS > allowed)
            allowed = restarts[i][1] - deadline + S_LATE_MS + S_SLACK_MS;
    timeouts++;
    if (late > worst_late)
        worst_late = late;
    if (late > allowed) {
        fprintf(stderr, "%s/%s ended %" PRId64 " ms after its deadline\n",
                ch->user, ch->session, late);
        CHECK(!"a session outlived its deadline by more than 1 s");
    }
}

static void *
s_subscriber(void *arg)
{
    (void)arg;
    zsock_t *sub = pres_bus_sub_changes(&cfg, PRES_CHANGE_PREFIX);
    CHECK(sub);
    zsock_set_rcvhwm(sub, 0);
    s_resync();  //  changes lost while joining show as a gap or as owed
    int64_t next_check = pres_mono_ms() + 300;
    uint64_t owed = 0;
    while (!atomic_load(&stopping)) {
        pres_change_t ch;
        int rc = it_recv(sub, &ch, NULL, 100);
        CHECK(rc >= 0);
        if (rc != 1) {
            //  A quiet stream: changes the broker had published at one
            //  check must have arrived by the next (as presencectl watch).
            if (pres_mono_ms() < next_check)
                continue;
            next_check = pres_mono_ms() + 300;
            uint64_t head = 0;
            pres_query_t q = {.op = PRES_Q_STATS};
            zframe_t *rep = it_query(&cfg, &q);
            if (!rep || it_mp_uint(rep, "seq", &head)) {
                zframe_destroy(&rep);
                continue;
            }
            zframe_destroy(&rep);
            pthread_mutex_lock(&lock);
            bool resync = owed && view_seq < owed;
            owed = head > view_seq ? head : 0;
            pthread_mutex_unlock(&lock);
            if (resync) {
                s_resync();
                owed = 0;
            }
            continue;
        }
        pthread_mutex_lock(&lock);
        if (ch.seq > max_seen)
            max_seen = ch.seq;
        bool gap = ch.seq > view_seq + 1;
        bool old = ch.seq <= view_seq;
        if (!gap && !old) {
            s_user_t *u = s_find(ch.user);
            if (u) {
                u->state = ch.state;
                u->sessions = ch.sessions;
                u->account = ch.account;
                if (ch.reason == PRES_RSN_TIMEOUT)
                    s_check_timeout(u, &ch);
            }
            view_seq = ch.seq;
        }
        pthread_mutex_unlock(&lock);
        if (gap)
            s_resync();
    }
    zsock_destroy(&sub);
    return NULL;
}

//  ---------------------------------------------------------------------
//  Load.

static char *
s_mint(const char *user, bool admin)
{
    return ith_mint(minter, user, admin, 3600);
}

static void
s_wait_unpaused(void)
{
    while (atomic_load(&paused) && !atomic_load(&stopping))
        it_sleep_ms(5);
}

//  One HTTP operation on a random HTTP user.
static void
s_http_op(unsigned *rnd, ith_resp_t *r)
{
    s_user_t *u = &users[s_rand(rnd) % S_HTTP_USERS];
    pthread_mutex_lock(&lock);
    bool live = u->session[0] != 0, silent = u->silent;
    char session[PRES_ID_MAX + 1];
    snprintf(session, sizeof session, "%s", u->session);
    char *token = u->token ? strdup(u->token) : s_mint(u->id, false);
    pthread_mutex_unlock(&lock);
    unsigned dice = s_rand(rnd) % 100;
    char body[160];
    if (!live || silent) {
        if (silent && dice >= 3)
            goto out;  //  mostly left alone
        int st = ith_request(port, "POST", "/v1/login", token,
                             "{\"device\":\"crash\"}", r, 5000);
        int64_t t1 = pres_now_ms();
        pthread_mutex_lock(&lock);
        if (st == 200) {
            ith_json_str(r->body, "session", u->session, sizeof u->session);
            u->last_ack = t1;  //  the login is applied before the 200
            u->silent = false;
            free(u->token);
            u->token = token;
            token = NULL;
        }
        pthread_mutex_unlock(&lock);
    } else if (dice < 80) {
        snprintf(body, sizeof body, "{\"session\":\"%s\"%s}", session,
                 dice < 10 ? ",\"state\":\"away\"" : "");
        int st =
            ith_request(port, "POST", "/v1/heartbeat", token, body, r, 5000);
        int64_t t1 = pres_now_ms();
        pthread_mutex_lock(&lock);
        //  204: published; the broker applies it within our slack unless
        //  it dies first (then the session may end earlier: never later).
        if (st == 204 && strcmp(u->session, session) == 0)
            u->last_ack = t1;
        else if (st == 403)
            u->session[0] = 0;
        else if (st != 204)  //  may or may not have been applied
            u->last_ack = 0;
        pthread_mutex_unlock(&lock);
    } else if (dice < 92) {
        snprintf(body, sizeof body, "{\"session\":\"%s\"}", session);
        int st = ith_request(port, "POST", "/v1/logout", token, body, r, 5000);
        pthread_mutex_lock(&lock);
        if (st == 204 || st == 401) {
            u->session[0] = 0;
            u->last_ack = 0;
            free(u->token);  //  revoked
            u->token = NULL;
        }
        pthread_mutex_unlock(&lock);
    } else {
        pthread_mutex_lock(&lock);
        u->silent = true;  //  the sweeper's turn
        pthread_mutex_unlock(&lock);
    }
out:
    free(token);
}

//  An account change through the admin API.
static void
s_account_op(unsigned *rnd, const char *admin, ith_resp_t *r)
{
    s_user_t *u = &users[s_rand(rnd) % S_HTTP_USERS];
    static const pres_account_t pick[] = {PRES_ACC_ACTIVE,    PRES_ACC_ACTIVE,
                                          PRES_ACC_ACTIVE,    PRES_ACC_ACTIVE,
                                          PRES_ACC_SUSPENDED, PRES_ACC_BANNED};
    pres_account_t status = pick[s_rand(rnd) % 6];
    char path[64], body[96];
    snprintf(path, sizeof path, "/v1/users/%s/account", u->id);
    snprintf(body, sizeof body, "{\"status\":\"%s\",\"reason\":\"crash\"}",
             pres_account_name(status));
    pthread_mutex_lock(&lock);
    u->pending = true;  //  until a clear answer
    u->pending_status = status;
    pthread_mutex_unlock(&lock);
    int st = ith_request(port, "PUT", path, admin, body, r, 5000);
    int64_t now = pres_now_ms();
    pthread_mutex_lock(&lock);
    if (st == 200) {
        u->acked = status;
        u->acked_at = now;
        u->has_acked = true;
        u->pending = false;
    } else {
        u->late |= 1u << status;
        u->late_until = now + S_BUS_TIMEOUT_MS + 200;
    }
    pthread_mutex_unlock(&lock);
}

static void *
s_http_load(void *arg)
{
    unsigned rnd = seed ^ 0x9e3779b9u;
    (void)arg;
    static ith_resp_t r;
    char *admin = s_mint("crash-admin", true);
    for (unsigned n = 0; !atomic_load(&stopping); n++) {
        s_wait_unpaused();
        atomic_fetch_add(&busy, 1);
        if (!atomic_load(&paused)) {
            if (n % 10 == 9)
                s_account_op(&rnd, admin, &r);
            else
                s_http_op(&rnd, &r);
        }
        atomic_fetch_sub(&busy, 1);
    }
    free(admin);
    return NULL;
}

//  Bus events from a frontend: login, heartbeat, logout of bus users.
static void *
s_bus_load(void *arg)
{
    (void)arg;
    unsigned rnd = seed ^ 0x5bd1e995u;
    pres_pub_t *pub = pres_pub_new(&cfg, "crash-frontend-1");
    CHECK(pub);
    unsigned nsession = 0;
    while (!atomic_load(&stopping)) {
        s_wait_unpaused();
        atomic_fetch_add(&busy, 1);
        if (atomic_load(&paused)) {
            atomic_fetch_sub(&busy, 1);
            continue;
        }
        s_user_t *u = &users[S_HTTP_USERS + s_rand(&rnd) % S_BUS_USERS];
        pres_event_t ev;
        memset(&ev, 0, sizeof ev);
        snprintf(ev.user, sizeof ev.user, "%s", u->id);
        pthread_mutex_lock(&lock);
        bool live = u->session[0] != 0, silent = u->silent;
        snprintf(ev.session, sizeof ev.session, "%s", u->session);
        pthread_mutex_unlock(&lock);
        unsigned dice = s_rand(&rnd) % 100;
        if (!live || (silent && dice < 3)) {
            ev.type = PRES_EV_LOGIN;
            snprintf(ev.session, sizeof ev.session, "bus-%u", ++nsession);
        } else if (silent) {
            ev.type = 0;
        } else if (dice < 85) {
            ev.type = PRES_EV_HEARTBEAT;
        } else if (dice < 95) {
            ev.type = PRES_EV_LOGOUT;
        } else {
            pthread_mutex_lock(&lock);
            u->silent = true;
            pthread_mutex_unlock(&lock);
            ev.type = 0;
        }
        if (ev.type) {
            //  Fails (quickly) while the broker is away: the event is lost,
            //  as it would be for any frontend.
            int rc = pres_pub_send(pub, &ev, 100);
            int64_t t1 = pres_now_ms();
            pthread_mutex_lock(&lock);
            if (rc == 0 && ev.type == PRES_EV_LOGOUT) {
                u->session[0] = 0;
                u->last_ack = 0;
            } else if (rc == 0) {
                snprintf(u->session, sizeof u->session, "%s", ev.session);
                u->last_ack = t1;  //  applied shortly after (slack)
                u->silent = false;
            }
            pthread_mutex_unlock(&lock);
        }
        atomic_fetch_sub(&busy, 1);
        it_sleep_ms(2);  //  pacing: ~500 events/s at most
    }
    pres_pub_destroy(&pub);
    return NULL;
}

//  ---------------------------------------------------------------------
//  Kills and restarts.

static void
s_start_sweeper(void)
{
    static const char *const argv[] = {"-v", NULL};
    CHECK_EQ(it_spawn(&env, "presence-sweeper", argv, NULL, &sweeper), 0);
}

static void
s_wait_sweeper(void)
{
    IT_POLL_UNTIL(
        it_proc_log_has(&sweeper, "ready:") || !it_proc_alive(&sweeper), 20000);
    if (!it_proc_log_has(&sweeper, "ready:")) {
        it_proc_dump_log(&sweeper);
        CHECK(!"the sweeper was not ready");
    }
}

static const char *
s_crash(unsigned *rnd)
{
    unsigned which = s_rand(rnd) % 3;
    if (which == 0) {
        pthread_mutex_lock(&lock);
        uint64_t seen = max_seen;
        broker_down_from = pres_now_ms();
        pthread_mutex_unlock(&lock);
        it_proc_kill9(&broker);
        it_sleep_ms((int)(s_rand(rnd) % 300));  //  away for a moment
        CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
        pthread_mutex_lock(&lock);
        broker_down_to = pres_now_ms();
        if (noutages < S_OUTAGES_MAX) {
            outages[noutages][0] = broker_down_from;
            outages[noutages][1] = broker_down_to;
            noutages++;
        }
        seen = max_seen > seen ? max_seen : seen;
        pthread_mutex_unlock(&lock);
        //  Published before the kill means committed: never reused.
        uint64_t head = it_stat(&cfg, "seq");
        if (head < seen) {
            fprintf(stderr,
                    "broker restarted at seq %" PRIu64 ", but %" PRIu64
                    " was published\n",
                    head, seen);
            CHECK(!"seq went back across a crash");
        }
        return "broker";
    }
    if (which == 1) {
        int64_t from = pres_now_ms();
        it_proc_kill9(&sweeper);
        s_start_sweeper();
        s_wait_sweeper();
        pthread_mutex_lock(&lock);
        int64_t to = pres_now_ms();
        if (nrestarts < S_OUTAGES_MAX) {
            restarts[nrestarts][0] = from;
            restarts[nrestarts][1] = to;
            nrestarts++;
        }
        if (to - from > worst_restart)
            worst_restart = to - from;
        pthread_mutex_unlock(&lock);
        return "sweeper";
    }
    it_proc_kill9(&gateway);
    CHECK_EQ(ith_gateway_start_on(&env, port, NULL, &gateway), port);
    return "gateway";
}

//  ---------------------------------------------------------------------
//  The checks of a quiet moment.

static void
s_pause(void)
{
    atomic_store(&paused, true);
    IT_POLL_UNTIL(atomic_load(&busy) == 0, 20000);
    CHECK_EQ(atomic_load(&busy), 0);
}

//  Compare every pool user with the broker: the view (the last changes
//  received) must be its state, acknowledged accounts must hold, and
//  nobody may be online without sessions or with an inactive account.
//  Returns the differences, each told on stderr (a difference the caller
//  then finds transient is harmless: CTest shows only a failing test's
//  output).
static int
s_compare(int round, const char *what, uint64_t view_at)
{
    int bad = 0;
    for (int i = 0; i < S_USERS; i++) {
        s_user_t *u = &users[i];
        char state[16] = "", account[16] = "";
        uint64_t sessions = 0;
        int rc = it_get_user(&cfg, u->id, state, &sessions, NULL, account);
        CHECK(rc == 0 || rc == 1);
        pthread_mutex_lock(&lock);
        pres_state_t want = u->state;
        uint32_t want_n = u->sessions;
        bool has_acked = u->has_acked, pending = u->pending;
        pres_account_t acked = u->acked, pstatus = u->pending_status;
        //  An unanswered change sent before the last acknowledged one may
        //  have been applied after it, until its deadline.
        unsigned late = u->acked_at < u->late_until ? u->late : 0;
        pthread_mutex_unlock(&lock);
        if (rc == 1) {  //  never seen by the broker
            if (want != PRES_OFFLINE || has_acked) {
                bad++;
                fprintf(stderr,
                        "round %d (%s, seq %" PRIu64
                        "): %s unknown to the broker\n",
                        round, what, view_at, u->id);
            }
            continue;
        }
        if (strcmp(state, pres_state_name(want)) != 0 || sessions != want_n) {
            bad++;
            fprintf(stderr,
                    "round %d (%s, seq %" PRIu64 "): %s is %s/%" PRIu64
                    ", the changes said %s/%u\n",
                    round, what, view_at, u->id, state, sessions,
                    pres_state_name(want), want_n);
        }
        pres_account_t acc;
        CHECK_EQ(pres_account_parse(account, strlen(account), &acc), 0);
        if (has_acked && acc != acked && (late & (1u << acc))) {
            pthread_mutex_lock(&lock);  //  it did: that is the state now
            u->acked = acc;
            u->late = 0;
            pthread_mutex_unlock(&lock);
        } else if (has_acked && acc != acked && !(pending && acc == pstatus)) {
            fprintf(stderr, "round %d (%s): %s is %s, %s was acknowledged\n",
                    round, what, u->id, account, pres_account_name(acked));
            CHECK(!"an acknowledged account change was lost");
        }
        if (strcmp(state, "offline") != 0 &&
            (sessions == 0 || acc != PRES_ACC_ACTIVE)) {
            fprintf(stderr,
                    "round %d (%s): %s is %s with %" PRIu64
                    " sessions, account %s\n",
                    round, what, u->id, state, sessions, account);
            CHECK(!"online without a live session or an active account");
        }
    }
    return bad;
}

static void
s_check_round(int round, const char *what)
{
    s_pause();
    uint64_t head = 0, vs = 0;
    //  Every user: the view (last changes received) is the broker's
    //  state. Sessions keep expiring while the load is paused, so a
    //  difference counts only when the head did not move meanwhile.
    for (int attempt = 0;; attempt++) {
        head = it_stat(&cfg, "seq");
        IT_POLL_UNTIL((pthread_mutex_lock(&lock), vs = view_seq,
                       pthread_mutex_unlock(&lock), vs == head),
                      20000);
        int bad = s_compare(round, what, head);
        if (bad == 0)
            break;
        uint64_t now = it_stat(&cfg, "seq");
        if (now == head || attempt == 50) {
            pthread_mutex_lock(&lock);
            vs = view_seq;
            pthread_mutex_unlock(&lock);
            fprintf(stderr,
                    "head %" PRIu64 " (now %" PRIu64 "), view at %" PRIu64
                    ", attempt %d: %d differences (above); again:\n",
                    head, now, vs, attempt, bad);
            s_compare(round, what, now);
            CHECK(!"the subscriber's view is not the broker's state");
        }
    }
    //  The whole live set, too (users outside the pool included).
    pres_query_t q = {.op = PRES_Q_SNAPSHOT};
    zframe_t *rep = it_query(&cfg, &q);
    CHECK(rep);
    uint32_t n = 0;
    CHECK_EQ(it_mp_count(rep, "users", &n), 0);
    for (uint32_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "users.%u.sessions", i);
        CHECK(it_uint(rep, path) > 0);
        snprintf(path, sizeof path, "users.%u.account", i);
        CHECK_STR(it_str(rep, path), "active");
    }
    zframe_destroy(&rep);

    //  presencectl watch and the SSE client catch up by themselves.
    IT_POLL_UNTIL(ith_watch_position(&watch) >= head, 20000);
    if (ith_watch_position(&watch) < head) {
        it_proc_dump_log(&watch);
        fprintf(stderr, "watch at %" PRIu64 ", head %" PRIu64 "\n",
                ith_watch_position(&watch), head);
        CHECK(!"presencectl watch did not catch up");
    }
    CHECK(it_proc_alive(&watch));
    IT_POLL_UNTIL(ith_follower_last(sse) >= head, 20000);
    if (ith_follower_last(sse) < head) {
        fprintf(stderr, "SSE at %" PRIu64 ", head %" PRIu64 "\n",
                ith_follower_last(sse), head);
        CHECK(!"the SSE client did not catch up");
    }
    CHECK(it_proc_alive(&broker) && it_proc_alive(&sweeper) &&
          it_proc_alive(&gateway));
    atomic_store(&paused, false);
}

int
main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    CHECK(rounds > 0);
    seed = getenv("SEED") ? (unsigned)strtoul(getenv("SEED"), NULL, 10)
                          : (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "fault.crash_loop: %d rounds, SEED=%u\n", rounds, seed);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < S_USERS; i++)
        snprintf(users[i].id, sizeof users[i].id, "%s-%03d",
                 i < S_HTTP_USERS ? "ch" : "cb", i);

    CHECK_EQ(it_env_init(&env, "crash-loop"), 0);
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", S_TIMEOUT_S);
    it_env_set(&env, "timeout", timeout);
    it_env_set(&env, "bus_timeout_ms", S_BUS_TIMEOUT_S);
    it_env_set(&env, "rate_limit", "0");
    it_env_set(&env, "sse_keepalive", "1");
    CHECK_EQ(it_env_config(&env, &cfg), 0);
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    s_start_sweeper();
    s_wait_sweeper();
    port = ith_gateway_start(&env, NULL, &gateway);
    CHECK(port > 0);
    minter = ith_minter_new(&env);
    //  watch gives up if the broker does not answer its first request
    //  (by design: a wrong config should say so), so the kills wait until
    //  it watches; 10 s for that first answer on a busy box under ASan
    //  (2 s, the default, ran out once while the first round began).
    static const char *const watch_argv[] = {"--json", "--timeout", "10000",
                                             "watch", NULL};
    CHECK_EQ(it_spawn(&env, "presencectl", watch_argv, NULL, &watch), 0);
    IT_POLL_UNTIL(it_proc_log_has(&watch, "watching changes") ||
                      !it_proc_alive(&watch),
                  20000);
    if (!it_proc_log_has(&watch, "watching changes")) {
        it_proc_dump_log(&watch);
        CHECK(!"presencectl watch did not start");
    }

    char *sse_token = s_mint("crash-sse", true);
    sse = ith_follower_new(port, sse_token);
    CHECK(sse);
    free(sse_token);
    pthread_t sub_t, http_t, bus_t;
    CHECK_EQ(pthread_create(&sub_t, NULL, s_subscriber, NULL), 0);
    CHECK_EQ(pthread_create(&http_t, NULL, s_http_load, NULL), 0);
    CHECK_EQ(pthread_create(&bus_t, NULL, s_bus_load, NULL), 0);

    unsigned rnd = seed;
    int kills[3] = {0, 0, 0};
    int64_t t0 = pres_mono_ms();
    for (int round = 1; round <= rounds; round++) {
        it_sleep_ms(300 + (int)(s_rand(&rnd) % 1500));  //  a random instant
        const char *what = s_crash(&rnd);
        kills[what[0] == 'b' ? 0 : what[0] == 's' ? 1 : 2]++;
        it_sleep_ms(200 + (int)(s_rand(&rnd) % 500));  //  load meets it
        s_check_round(round, what);
        if (round % 10 == 0 || round == rounds) {
            pthread_mutex_lock(&lock);
            fprintf(stderr,
                    "round %d: kills broker %d sweeper %d gateway %d; seq "
                    "%" PRIu64 ", view resyncs %" PRIu64 ", timeouts checked "
                    "%" PRIu64 ", worst lateness %" PRId64 " ms\n",
                    round, kills[0], kills[1], kills[2], view_seq, resyncs,
                    timeouts, worst_late);
            pthread_mutex_unlock(&lock);
        }
    }

    //  The end: every session left silent; the sweeper ends them all, each
    //  within 1 s of its deadline (checked as the changes arrive).
    s_pause();
    int64_t quiet_from = pres_now_ms();
    IT_POLL_UNTIL(it_stat(&cfg, "sessions") == 0,
                  S_TIMEOUT_S * 1000 + S_LATE_MS + 5000);
    int64_t took = pres_now_ms() - quiet_from;
    fprintf(stderr,
            "all sessions ended %" PRId64 " ms after the load "
            "stopped (timeout %d s)\n",
            took, S_TIMEOUT_S);
    CHECK_EQ(it_stat(&cfg, "sessions"), 0);
    CHECK(took <= S_TIMEOUT_S * 1000 + S_LATE_MS + S_SLACK_MS);
    CHECK_EQ(it_stat(&cfg, "users.online") + it_stat(&cfg, "users.away"), 0);
    atomic_store(&paused, false);
    s_check_round(rounds + 1, "end");
    atomic_store(&stopping, true);
    pthread_join(http_t, NULL);
    pthread_join(bus_t, NULL);
    ith_follower_destroy(&sse);
    pthread_join(sub_t, NULL);
    printf("fault.crash_loop: %d rounds (broker %d, sweeper %d, gateway %d "
           "kills) in %.1f s; %" PRIu64 " timeouts checked, worst %" PRId64
           " ms late; longest sweeper restart %" PRId64
           " ms; subscriber resyncs %" PRIu64 "; SEED=%u\n",
           rounds, kills[0], kills[1], kills[2],
           (double)(pres_mono_ms() - t0) / 1000.0, timeouts, worst_late,
           worst_restart, resyncs, seed);
    it_proc_stop(&watch, 5000);
    CHECK_EQ(it_proc_stop(&gateway, 5000), 0);
    CHECK_EQ(it_proc_stop(&sweeper, 5000), 0);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    for (int i = 0; i < S_USERS; i++)
        free(users[i].token);
    ith_minter_destroy(&minter);
    it_env_cleanup(&env);
    return 0;
}
