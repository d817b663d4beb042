/*  gateway_workers: a fixed array of worker contexts under one mutex,
    found again by each thread through a thread-local pointer (checked
    against its owner, so two gateways in one process do not mix), and
    the flusher thread of their staged heartbeats. */
#include "gateway_workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pres_log.h"

struct gw_workers {
    const pres_config_t *cfg;
    pthread_mutex_t lock;  //  guards the array and the counts
    gw_worker_t *worker[GW_WORKERS_MAX];
    int nworkers;                 //  made
    int nclaimed;                 //  handed to threads
    gw_auth_cache_t *auth_cache;  //  shared by the workers (thread-safe)
    int ncarriers;  //  the prebuilt workers, whose publishers carry events
    //  The flusher: while heartbeats come, sends every carrier's stage
    //  each GW_FLUSH_US; sleeps once a pass finds nothing staged.
    pthread_t flusher;
    bool flusher_up;
    pthread_mutex_t flush_lock;  //  guards idle, firsts, stopping
    pthread_cond_t flush_wake;   //  signalled when idle ends, or stopping
    bool idle;                   //  the flusher waits for a first event
    uint64_t firsts;             //  stages that went from empty to not
    bool stopping;               //  destroy: the flusher ends
};

static _Thread_local gw_worker_t *t_worker;  //  this thread's worker
static _Thread_local gw_workers_t *t_owner;  //  the pool it came from

static void
s_worker_destroy(gw_worker_t **w_p)
{
    gw_worker_t *w = *w_p;
    if (!w)
        return;
    pres_pub_destroy(&w->pub);  //  sends what is still staged
    pthread_mutex_destroy(&w->pub_lock);
    pres_qclient_destroy(&w->query);
    pres_qclient_destroy(&w->admin);
    gw_req_cache_destroy(&w->reqs);
    free(w);
    *w_p = NULL;
}

//  carrier: a prebuilt worker, whose publisher carries events (any other
//  worker, made for a thread beyond http_threads, has none).
static gw_worker_t *
s_worker_new(gw_workers_t *pool, int index, bool carrier)
{
    const pres_config_t *cfg = pool->cfg;
    gw_auth_cache_t *cache = pool->auth_cache;
    gw_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->index = index;
    w->pool = pool;
    pthread_mutex_init(&w->pub_lock, NULL);
    if (carrier) {
        char src[PRES_ID_MAX + 1];
        pres_src_id(src, sizeof src, "gateway", index);
        w->pub = pres_pub_new(cfg, src);
    }
    w->query = pres_qclient_new(cfg);
    w->auth_cache = cache;
    w->reqs = gw_req_cache_new();
    if ((carrier && !w->pub) || !w->query || !w->auth_cache || !w->reqs) {
        pres_log_error("worker %d: setup failed", index);
        s_worker_destroy(&w);
    }
    return w;
}

//  While heartbeats come, every GW_FLUSH_US send every worker's stage
//  (what stays, broker away or bus full, is tried again next pass); idle
//  once a whole pass found nothing staged and no worker staged a first
//  event meanwhile (firsts: a worker's stage went from empty to not).
static void *
s_flusher(void *arg)
{
    gw_workers_t *self = arg;
    pthread_mutex_lock(&self->flush_lock);
    while (!self->stopping) {
        if (self->idle) {
            pthread_cond_wait(&self->flush_wake, &self->flush_lock);
            continue;
        }
        uint64_t firsts = self->firsts;
        pthread_mutex_unlock(&self->flush_lock);
        struct timespec pause = {0, GW_FLUSH_US * 1000};
        nanosleep(&pause, NULL);
        bool staged = false;
        for (int i = 0; i < self->ncarriers; i++) {
            gw_worker_t *w = self->worker[i];
            pthread_mutex_lock(&w->pub_lock);
            if (pres_pub_staged(w->pub) > 0) {
                staged = true;
                pres_pub_flush(w->pub);
            }
            pthread_mutex_unlock(&w->pub_lock);
        }
        pthread_mutex_lock(&self->flush_lock);
        if (!staged && self->firsts == firsts)
            self->idle = true;
    }
    pthread_mutex_unlock(&self->flush_lock);
    return NULL;
}

//  The publisher that carries ev: always the same one for a user, so a
//  user's events reach the broker in the order they were answered in
//  (one libzmq pipe is FIFO; two are not ordered), whichever thread
//  served them. A logout must not overtake a heartbeat answered before
//  it: a heartbeat for an unknown session starts it again (reconnect).
static gw_worker_t *
s_carrier(gw_workers_t *self, const char *user)
{
    uint32_t h = 2166136261u;  //  FNV-1a
    for (const unsigned char *c = (const unsigned char *)user; *c; c++)
        h = (h ^ *c) * 16777619u;
    return self->worker[h % (uint32_t)self->ncarriers];
}

int
gw_workers_publish(gw_workers_t *self, pres_event_t *ev, int timeout_ms)
{
    gw_worker_t *w = s_carrier(self, ev->user);
    pthread_mutex_lock(&w->pub_lock);
    int before = pres_pub_staged(w->pub);
    int rc = ev->type == PRES_EV_HEARTBEAT
                 ? pres_pub_post(w->pub, ev, timeout_ms)
                 : pres_pub_send(w->pub, ev, timeout_ms);
    bool first = before == 0 && pres_pub_staged(w->pub) > 0;
    int err = errno;
    pthread_mutex_unlock(&w->pub_lock);
    if (first) {
        pthread_mutex_lock(&self->flush_lock);
        self->firsts++;
        if (self->idle) {
            self->idle = false;
            pthread_cond_signal(&self->flush_wake);
        }
        pthread_mutex_unlock(&self->flush_lock);
    }
    errno = err;
    return rc;
}

gw_workers_t *
gw_workers_new(const pres_config_t *cfg, int prebuilt)
{
    gw_workers_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    pthread_mutex_init(&self->lock, NULL);
    pthread_mutex_init(&self->flush_lock, NULL);
    pthread_cond_init(&self->flush_wake, NULL);
    self->idle = true;
    self->auth_cache = gw_auth_cache_new();
    if (!self->auth_cache) {
        gw_workers_destroy(&self);
        return NULL;
    }
    if (prebuilt < 1)
        prebuilt = 1;  //  one carrier at least
    for (int i = 0; i < prebuilt && i < GW_WORKERS_MAX; i++) {
        self->worker[i] = s_worker_new(self, i, true);
        if (!self->worker[i]) {
            gw_workers_destroy(&self);
            return NULL;
        }
        self->nworkers++;
    }
    self->ncarriers = self->nworkers;
    int rc = pthread_create(&self->flusher, NULL, s_flusher, self);
    if (rc) {
        pres_log_error("pthread_create(flusher) failed: %s", strerror(rc));
        gw_workers_destroy(&self);
        return NULL;
    }
    self->flusher_up = true;
    return self;
}

void
gw_workers_destroy(gw_workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_workers_t *self = *self_p;
    if (self->flusher_up) {
        pthread_mutex_lock(&self->flush_lock);
        self->stopping = true;
        pthread_cond_signal(&self->flush_wake);
        pthread_mutex_unlock(&self->flush_lock);
        pthread_join(self->flusher, NULL);
    }
    for (int i = 0; i < self->nworkers; i++)
        s_worker_destroy(&self->worker[i]);
    gw_auth_cache_destroy(&self->auth_cache);
    pthread_cond_destroy(&self->flush_wake);
    pthread_mutex_destroy(&self->flush_lock);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

gw_worker_t *
gw_workers_mine(gw_workers_t *self)
{
    if (t_owner == self && t_worker)
        return t_worker;
    gw_worker_t *w = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->nclaimed < self->nworkers)
        w = self->worker[self->nclaimed++];
    else if (self->nworkers < GW_WORKERS_MAX) {
        w = s_worker_new(self, self->nworkers, false);
        if (w) {
            self->worker[self->nworkers++] = w;
            self->nclaimed++;
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (w) {
        t_worker = w;
        t_owner = self;
    }
    return w;
}

void
gw_workers_release(gw_workers_t *self, gw_req_t **req_p)
{
    gw_req_t *r = *req_p;
    if (!r)
        return;
    bool mine = t_owner == self && t_worker == r->worker;
    gw_req_recycle(mine ? r->worker->reqs : NULL, req_p);
}
