/*  gateway_login: one thread, a table of logins in flight, two inboxes.

    A job goes: new (queued by an HTTP thread) -> asking (its `get` is out,
    tagged with the job's slot and generation) -> sending (its waiter is
    registered with gw_bus; the event waits for room or for the publisher
    to attach, retried every 2 ms) -> waiting (the event is out; at half
    the timeout with no change, a second `get` asks whether the session
    is live, in case the change was lost on the way) -> done (result
    set, connection resumed; from then on the job belongs to the request,
    which frees it). Every job has the same timeout from its start, so the jobs
    in flight, kept in start order, are also in deadline order: the
    thread only looks at the oldest to time them out.

    Locks: `lock` guards the two inboxes and `closed`. The bus calls
    s_fired with its waiter lock held, and s_fired takes `lock`; so this
    thread never calls gw_bus while holding `lock`. */
#include "gateway_login.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gateway_req.h"
#include "pres_bus.h"
#include "pres_log.h"
#include "pres_mp.h"

typedef enum { S_NEW, S_ASKING, S_SENDING, S_WAITING } s_phase_t;

typedef struct s_job {
    gw_login_result_t result;  //  first: the request reads it after resume
    s_phase_t phase;
    uint64_t tag;      //  slot | generation << 32
    int64_t start_ms;  //  monotonic; the deadline is start + timeout
    int64_t sent_ms;   //  when the event went out
    bool verifying;    //  a `get` asks whether the session is live
    struct MHD_Connection *conn;
    pres_event_t ev;
    gw_waiter_t waiter;
    struct s_job *prev, *next;  //  in flight, oldest first
    struct s_job *inbox;        //  in `fresh` or `fired`
} s_job_t;

struct gw_login {
    const pres_config_t *cfg;
    gw_bus_t *bus;
    gw_accounts_t *accounts;
    gw_metrics_t *metrics;
    bool deny_unknown;
    pthread_t thread;
    bool started;
    int wake;  //  eventfd: an inbox has something, or stop

    pthread_mutex_t lock;
    bool closed;     //  no new logins (shutdown)
    s_job_t *fresh;  //  started by HTTP threads, newest first
    s_job_t *fired;  //  their change arrived (the bus thread)
    int queued;      //  jobs in `fresh` or in flight: <= GW_LOGIN_MAX

    //  The login thread's own.
    pres_qclient_t *query;  //  pipelined gets
    pres_pub_t *pub;        //  login events
    s_job_t *slot[GW_LOGIN_MAX];
    uint32_t free_slot[GW_LOGIN_MAX];
    int nfree;
    uint32_t generation;
    s_job_t *oldest, *newest;  //  in flight
    int sending;               //  jobs in S_SENDING (no room on the bus yet)
};

static void
s_wake(gw_login_t *self)
{
    uint64_t one = 1;
    if (write(self->wake, &one, sizeof one) < 0 && errno != EAGAIN)
        pres_log_error("write(login eventfd) failed: %s", strerror(errno));
}

//  ---- the table of jobs in flight (login thread)

static void
s_track(gw_login_t *self, s_job_t *job)
{
    assert(self->nfree > 0);
    uint32_t i = self->free_slot[--self->nfree];
    self->slot[i] = job;
    job->tag = (uint64_t)i | (uint64_t)++self->generation << 32;
    job->prev = self->newest;
    job->next = NULL;
    if (self->newest)
        self->newest->next = job;
    else
        self->oldest = job;
    self->newest = job;
}

static s_job_t *
s_find(gw_login_t *self, uint64_t tag)
{
    uint32_t i = (uint32_t)tag;
    if (i >= GW_LOGIN_MAX || !self->slot[i] || self->slot[i]->tag != tag)
        return NULL;  //  late: that login has ended
    return self->slot[i];
}

//  The job is decided: answer, and give it to its request.
static void
s_finish(gw_login_t *self, s_job_t *job, unsigned status, const char *error)
{
    uint32_t i = (uint32_t)job->tag;
    if (i < GW_LOGIN_MAX && self->slot[i] == job) {
        self->slot[i] = NULL;
        self->free_slot[self->nfree++] = i;
        if (job->prev)
            job->prev->next = job->next;
        else
            self->oldest = job->next;
        if (job->next)
            job->next->prev = job->prev;
        else
            self->newest = job->prev;
    }
    job->result.status = status;
    if (error)
        snprintf(job->result.error, sizeof job->result.error, "%s", error);
    snprintf(job->result.session, sizeof job->result.session, "%s",
             job->ev.session);
    pthread_mutex_lock(&self->lock);
    self->queued--;
    pthread_mutex_unlock(&self->lock);
    //  The request owns the job from here (MHD orders this write before
    //  the resumed handler call).
    MHD_resume_connection(job->conn);
}

static void
s_refuse(gw_login_t *self, s_job_t *job, pres_account_t acc)
{
    job->result.refused = true;
    job->result.account = acc;
    s_finish(self, job, 403, NULL);
}

//  ---- the steps

//  Send a `get` of the job's user, tagged with the job. 0 or -1.
static int
s_post_get(gw_login_t *self, const s_job_t *job)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_GET;
    snprintf(q.user, sizeof q.user, "%s", job->ev.user);
    return pres_qclient_post(self->query, &q, job->tag,
                             self->cfg->bus_timeout_ms);
}

//  A new job: ask the broker about the user.
static void
s_ask(gw_login_t *self, s_job_t *job)
{
    s_track(self, job);
    job->phase = S_ASKING;
    if (gw_bus_broker_away(self->bus, NULL, NULL)) {
        gw_metrics_reject(self->metrics, GW_REJ_BROKER_TIMEOUT);
        s_finish(self, job, 503, "broker unavailable");
        return;
    }
    if (s_post_get(self, job) != 0) {
        gw_metrics_reject(self->metrics, GW_REJ_BROKER_TIMEOUT);
        s_finish(self, job, 503, "broker unavailable");
    }
}

static void
s_fired(gw_waiter_t *w, void *arg)
{
    gw_login_t *self = arg;
    s_job_t *job = (s_job_t *)((char *)w - offsetof(s_job_t, waiter));
    pthread_mutex_lock(&self->lock);
    job->inbox = self->fired;
    self->fired = job;
    pthread_mutex_unlock(&self->lock);
    s_wake(self);
}

//  Publish a job's event without waiting: 0 sent (now S_WAITING), -1 no
//  room or no broker attached yet (still S_SENDING: tried again each
//  turn until its deadline).
static int
s_send(gw_login_t *self, s_job_t *job)
{
    int64_t t0 = pres_mono_ms();
    if (pres_pub_send(self->pub, &job->ev, 0) != 0)
        return -1;
    job->phase = S_WAITING;
    job->sent_ms = pres_mono_ms();
    gw_metrics_published(self->metrics, PRES_EV_LOGIN);
    gw_metrics_latency(self->metrics, GW_LAT_PUBLISH,
                       (job->sent_ms - t0) * 1000);
    return 0;
}

//  The user may log in: wait for its change (registered first, so the
//  change cannot come before it), and publish the event.
static void
s_publish(gw_login_t *self, s_job_t *job)
{
    job->phase = S_SENDING;
    gw_bus_wait_async(self->bus, &job->waiter, job->ev.user, job->ev.session,
                      s_fired, self);
    if (s_send(self, job) != 0)
        self->sending++;  //  a publisher that is not attached yet (at
                          //  start, after a broker restart), or a full pipe
}

//  Jobs that found no room: try again (oldest first).
static void
s_send_pending(gw_login_t *self)
{
    for (s_job_t *job = self->oldest; job && self->sending > 0; job = job->next)
        if (job->phase == S_SENDING && s_send(self, job) == 0)
            self->sending--;
}

//  The `get` answered (reply, or NULL with errno and error).
static void
s_answered(gw_login_t *self, s_job_t *job, zframe_t *reply, const char *error)
{
    gw_metrics_latency(self->metrics, GW_LAT_QUERY,
                       (pres_mono_ms() - job->start_ms) * 1000);
    if (!reply) {
        if (error && strcmp(error, "not found") == 0) {
            if (self->deny_unknown) {
                gw_metrics_reject(self->metrics, GW_REJ_ACCOUNT);
                s_finish(self, job, 403, "unknown user");
            } else
                s_publish(self, job);
            return;
        }
        s_finish(self, job, 503, error ? error : "broker error");
        return;
    }
    pres_mp_reader_t at;
    const char *v;
    uint32_t vl;
    pres_account_t got = PRES_ACC_ACTIVE;
    if (pres_mp_find(zframe_data(reply), zframe_size(reply), "account", &at) ==
            0 &&
        pres_mp_read_str(&at, &v, &vl) == 0 &&
        pres_account_parse(v, vl, &got) == 0 && got != PRES_ACC_ACTIVE) {
        gw_accounts_set(self->accounts, job->ev.user, got);
        s_refuse(self, job, got);
        return;
    }
    s_publish(self, job);
}

//  The login's change arrived.
static void
s_changed(gw_login_t *self, s_job_t *job)
{
    if (job->phase == S_SENDING)  //  (cannot happen: nothing was sent)
        self->sending--;
    gw_metrics_latency(self->metrics, GW_LAT_LOGIN,
                       (pres_mono_ms() - job->sent_ms) * 1000);
    if (job->waiter.change.account != PRES_ACC_ACTIVE)
        s_refuse(self, job, job->waiter.change.account);
    else
        s_finish(self, job, 200, NULL);
}

//  Half the timeout gone and no change: the change may have been lost on
//  the way (a subscription that joined late, a full pipe), so ask the
//  broker whether the session is live. Its answer is held until the
//  login's fsync like the change, so it comes when the change would have.
static void
s_verify(gw_login_t *self, int64_t now)
{
    int64_t half = self->cfg->bus_timeout_ms / 2;
    for (s_job_t *job = self->oldest; job && job->start_ms + half <= now;
         job = job->next) {
        if (job->phase != S_WAITING || job->verifying)
            continue;
        if (s_post_get(self, job) == 0)
            job->verifying = true;
    }
}

//  The broker's answer to s_verify: the login succeeded if the session is
//  among the user's devices.
static void
s_verified(gw_login_t *self, s_job_t *job, zframe_t *reply)
{
    pres_mp_reader_t r;
    uint32_t n;
    if (!reply ||
        pres_mp_find(zframe_data(reply), zframe_size(reply), "devices", &r) !=
            0 ||
        pres_mp_read_array(&r, &n) != 0)
        return;  //  the deadline decides
    for (uint32_t i = 0; i < n; i++) {
        char path[32];
        snprintf(path, sizeof path, "devices.%u.session", i);
        pres_mp_reader_t at;
        const char *v;
        uint32_t vl;
        if (pres_mp_find(zframe_data(reply), zframe_size(reply), path, &at) ==
                0 &&
            pres_mp_read_str(&at, &v, &vl) == 0 &&
            vl == strlen(job->ev.session) &&
            memcmp(v, job->ev.session, vl) == 0) {
            if (!gw_bus_wait_cancel(self->bus, &job->waiter))
                return;  //  its change came meanwhile: in `fired`
            pres_log_info("login %s/%s: its change did not arrive; the "
                          "broker has the session",
                          job->ev.user, job->ev.session);
            gw_metrics_latency(self->metrics, GW_LAT_LOGIN,
                               (pres_mono_ms() - job->sent_ms) * 1000);
            s_finish(self, job, 200, NULL);
            return;
        }
    }
}

//  The oldest jobs past their deadline: 503, as a blocking login did.
static void
s_expire(gw_login_t *self, int64_t now)
{
    int64_t timeout = self->cfg->bus_timeout_ms;
    s_job_t *job = self->oldest;
    while (job && job->start_ms + timeout <= now) {
        s_job_t *next = job->next;
        gw_metrics_reject(self->metrics, GW_REJ_BROKER_TIMEOUT);
        if (job->phase == S_ASKING) {
            //  Most of bus_timeout_ms spent for nothing: away until a
            //  probe answers (the late reply finds no job and is dropped).
            gw_bus_broker_lost(self->bus);
            s_finish(self, job, 503, "broker unavailable");
        } else if (job->phase == S_SENDING) {
            //  Never sent: no room on the bus for bus_timeout_ms.
            self->sending--;
            gw_bus_wait_cancel(self->bus, &job->waiter);
            gw_metrics_reject(self->metrics, GW_REJ_BUS_BUSY);
            if (!pres_pub_ready(self->pub))
                gw_bus_broker_lost(self->bus);
            s_finish(self, job, 503, "bus unavailable");
        } else if (gw_bus_wait_cancel(self->bus, &job->waiter)) {
            //  No change for the login: the broker is gone if the
            //  publisher lost it; else it may only refuse it (a full
            //  disk): probe.
            if (!pres_pub_ready(self->pub))
                gw_bus_broker_lost(self->bus);
            else
                gw_bus_broker_probe(self->bus);
            s_finish(self, job, 503, "broker did not confirm login");
        }
        //  (else its change is in `fired`: it succeeded just in time)
        job = next;
    }
}

//  ---- the thread

static void *
s_run(void *arg)
{
    gw_login_t *self = arg;
    zmq_pollitem_t items[2] = {
        {NULL, self->wake, ZMQ_POLLIN, 0},
        {pres_qclient_handle(self->query), 0, ZMQ_POLLIN, 0},
    };
    while (true) {
        //  Retry sends soon; look at the jobs in flight at least every
        //  50 ms (their verification at half the timeout).
        long wait = self->sending > 0 ? 2 : self->oldest ? 50 : 1000;
        if (self->oldest) {
            int64_t left = self->oldest->start_ms + self->cfg->bus_timeout_ms -
                           pres_mono_ms();
            wait = left < 0 ? 0 : left < wait ? (long)left : wait;
        }
        items[1].socket = pres_qclient_handle(self->query);
        int n = zmq_poll(items, items[1].socket ? 2 : 1, wait);
        if (n < 0 && errno != EINTR) {
            pres_log_error("zmq_poll(login) failed: %s", zmq_strerror(errno));
            break;
        }
        uint64_t count;
        if (read(self->wake, &count, sizeof count) < 0 && errno != EAGAIN)
            pres_log_error("read(login eventfd) failed: %s", strerror(errno));

        pthread_mutex_lock(&self->lock);
        bool closed = self->closed;
        s_job_t *fresh = self->fresh, *fired = self->fired;
        self->fresh = self->fired = NULL;
        pthread_mutex_unlock(&self->lock);
        if (closed) {
            //  Put them back for the shutdown to answer.
            pthread_mutex_lock(&self->lock);
            self->fresh = fresh;
            self->fired = fired;
            pthread_mutex_unlock(&self->lock);
            break;
        }
        //  Oldest first, as they came.
        s_job_t *rev = NULL;
        while (fresh) {
            s_job_t *next = fresh->inbox;
            fresh->inbox = rev;
            rev = fresh;
            fresh = next;
        }
        for (s_job_t *job = rev, *next; job; job = next) {
            next = job->inbox;
            s_ask(self, job);
        }
        for (s_job_t *job = fired, *next; job; job = next) {
            next = job->inbox;
            s_changed(self, job);
        }
        uint64_t tag;
        char *error;
        zframe_t *reply;
        while ((reply = pres_qclient_take(self->query, &tag, &error)) ||
               errno == EPROTO) {
            s_job_t *job = s_find(self, tag);
            if (job && job->phase == S_ASKING)
                s_answered(self, job, reply, error);
            else if (job && job->phase == S_WAITING && job->verifying)
                s_verified(self, job, reply);
            zframe_destroy(&reply);
            free(error);
        }
        if (self->sending > 0)
            s_send_pending(self);
        s_verify(self, pres_mono_ms());
        s_expire(self, pres_mono_ms());
    }
    return NULL;
}

gw_login_t *
gw_login_new(const pres_config_t *cfg, gw_bus_t *bus, gw_accounts_t *accounts,
             gw_metrics_t *metrics)
{
    gw_login_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->bus = bus;
    self->accounts = accounts;
    self->metrics = metrics;
    self->deny_unknown = strcmp(cfg->unknown_users, "deny") == 0;
    self->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&self->lock, NULL);
    for (int i = GW_LOGIN_MAX - 1; i >= 0; i--)
        self->free_slot[self->nfree++] = (uint32_t)i;
    char src[PRES_ID_MAX + 1];
    pres_src_id(src, sizeof src, "gateway-login", -1);
    self->pub = pres_pub_new(cfg, src);
    self->query = pres_qclient_new_pipelined(cfg);
    if (self->wake < 0 || !self->pub || !self->query) {
        pres_log_error("login: setup failed (eventfd, publisher or query "
                       "socket)");
        gw_login_destroy(&self);
        return NULL;
    }
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        pres_log_error("pthread_create(login) failed");
        gw_login_destroy(&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
gw_login_shutdown(gw_login_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    bool was = self->closed;
    self->closed = true;
    pthread_mutex_unlock(&self->lock);
    if (was)
        return;
    if (self->started) {
        s_wake(self);
        pthread_join(self->thread, NULL);
        self->started = false;
    }
    //  The thread is gone: answer everything it left.
    pthread_mutex_lock(&self->lock);
    s_job_t *fresh = self->fresh;
    self->fresh = self->fired = NULL;  //  fired ones are in flight too
    pthread_mutex_unlock(&self->lock);
    while (self->oldest) {
        s_job_t *job = self->oldest;
        if (job->phase == S_WAITING || job->phase == S_SENDING)
            gw_bus_wait_cancel(self->bus, &job->waiter);
        s_finish(self, job, 503, "gateway stopping");
    }
    for (s_job_t *job = fresh, *next; job; job = next) {
        next = job->inbox;
        s_finish(self, job, 503, "gateway stopping");
    }
}

void
gw_login_destroy(gw_login_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_login_t *self = *self_p;
    gw_login_shutdown(self);
    pres_pub_destroy(&self->pub);
    pres_qclient_destroy(&self->query);
    if (self->wake >= 0)
        close(self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int
gw_login_start(gw_login_t *self, struct gw_req *req,
               struct MHD_Connection *conn, const pres_event_t *ev)
{
    assert(!req->login);
    s_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->phase = S_NEW;
    job->start_ms = pres_mono_ms();
    job->conn = conn;
    job->ev = *ev;
    job->ev.type = PRES_EV_LOGIN;
    pthread_mutex_lock(&self->lock);
    if (self->closed || self->queued >= GW_LOGIN_MAX) {
        pthread_mutex_unlock(&self->lock);
        free(job);
        return -1;
    }
    self->queued++;
    req->login = job;
    //  Suspended before the thread can see it, so a resume never comes
    //  first.
    MHD_suspend_connection(conn);
    job->inbox = self->fresh;
    self->fresh = job;
    pthread_mutex_unlock(&self->lock);
    s_wake(self);
    return 0;
}

int
gw_login_in_flight(gw_login_t *self)
{
    pthread_mutex_lock(&self->lock);
    int n = self->queued;
    pthread_mutex_unlock(&self->lock);
    return n;
}

const gw_login_result_t *
gw_login_result(const struct gw_req *req)
{
    //  result is the job's first member.
    return req->login ? (const gw_login_result_t *)req->login : NULL;
}
