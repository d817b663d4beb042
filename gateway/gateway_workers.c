/*  gateway_workers: a fixed array of worker contexts under one mutex,
    found again by each thread through a thread-local pointer (checked
    against its owner, so two gateways in one process do not mix). */
#include "gateway_workers.h"

#include <pthread.h>
#include <stdlib.h>

#include "pres_log.h"

struct gw_workers {
    const pres_config_t *cfg;
    pthread_mutex_t lock;  //  guards the array and the counts
    gw_worker_t *worker[GW_WORKERS_MAX];
    int nworkers;                 //  made
    int nclaimed;                 //  handed to threads
    gw_auth_cache_t *auth_cache;  //  shared by the workers (thread-safe)
};

static _Thread_local gw_worker_t *t_worker;  //  this thread's worker
static _Thread_local gw_workers_t *t_owner;  //  the pool it came from

static void
s_worker_destroy(gw_worker_t **w_p)
{
    gw_worker_t *w = *w_p;
    if (!w)
        return;
    pres_pub_destroy(&w->pub);
    pres_qclient_destroy(&w->query);
    pres_qclient_destroy(&w->admin);
    gw_req_cache_destroy(&w->reqs);
    free(w);
    *w_p = NULL;
}

static gw_worker_t *
s_worker_new(const pres_config_t *cfg, int index, gw_auth_cache_t *cache)
{
    gw_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->index = index;
    char src[PRES_ID_MAX + 1];
    pres_src_id(src, sizeof src, "gateway", index);
    w->pub = pres_pub_new(cfg, src);
    w->query = pres_qclient_new(cfg);
    w->auth_cache = cache;
    w->reqs = gw_req_cache_new();
    if (!w->pub || !w->query || !w->auth_cache || !w->reqs) {
        pres_log_error("worker %d: setup failed", index);
        s_worker_destroy(&w);
    }
    return w;
}

gw_workers_t *
gw_workers_new(const pres_config_t *cfg, int prebuilt)
{
    gw_workers_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    pthread_mutex_init(&self->lock, NULL);
    self->auth_cache = gw_auth_cache_new();
    if (!self->auth_cache) {
        gw_workers_destroy(&self);
        return NULL;
    }
    for (int i = 0; i < prebuilt && i < GW_WORKERS_MAX; i++) {
        self->worker[i] = s_worker_new(cfg, i, self->auth_cache);
        if (!self->worker[i]) {
            gw_workers_destroy(&self);
            return NULL;
        }
        self->nworkers++;
    }
    return self;
}

void
gw_workers_destroy(gw_workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_workers_t *self = *self_p;
    for (int i = 0; i < self->nworkers; i++)
        s_worker_destroy(&self->worker[i]);
    gw_auth_cache_destroy(&self->auth_cache);
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
        w = s_worker_new(self->cfg, self->nworkers, self->auth_cache);
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
