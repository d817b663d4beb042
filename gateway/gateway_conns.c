/*  gateway_conns: a doubly linked list under one mutex (changed at open
    and close only) and one atomic deadline per connection (changed by
    the serving thread, read by the pass), so the request path takes no
    lock. */
#include "gateway_conns.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "pres_log.h"

struct gw_conn {
    gw_addr_t peer;
    int fd;
    bool idle;                 //  waiting for a next request (serving thread)
    _Atomic int64_t deadline;  //  monotonic ms; 0 = none
    gw_conn_t *prev, *next;
};

struct gw_conns {
    pthread_mutex_t lock;  //  guards the list
    gw_conn_t *head;
    int count;
    int64_t header_ms, idle_ms;
};

gw_conns_t *
gw_conns_new(int64_t header_timeout_ms, int64_t idle_timeout_ms)
{
    gw_conns_t *self = calloc(1, sizeof *self);
    if (!self) {
        pres_log_error("gw_conns_new: out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->header_ms = header_timeout_ms;
    self->idle_ms = idle_timeout_ms;
    return self;
}

void
gw_conns_destroy(gw_conns_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_conns_t *self = *self_p;
    while (self->head) {
        gw_conn_t *c = self->head;
        gw_conns_close(self, &c);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

gw_conn_t *
gw_conns_open(gw_conns_t *self, const gw_addr_t *peer, int fd, int64_t now_ms)
{
    gw_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        pres_log_error("gw_conns_open: out of memory");
        return NULL;
    }
    c->peer = *peer;
    c->fd = fd;
    atomic_store(&c->deadline, now_ms + self->header_ms);
    pthread_mutex_lock(&self->lock);
    c->next = self->head;
    if (self->head)
        self->head->prev = c;
    self->head = c;
    self->count++;
    pthread_mutex_unlock(&self->lock);
    return c;
}

void
gw_conns_close(gw_conns_t *self, gw_conn_t **c_p)
{
    gw_conn_t *c = *c_p;
    if (!c)
        return;
    pthread_mutex_lock(&self->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        self->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    self->count--;
    pthread_mutex_unlock(&self->lock);
    free(c);
    *c_p = NULL;
}

const gw_addr_t *
gw_conn_peer(const gw_conn_t *c)
{
    return &c->peer;
}

void
gw_conn_request(gw_conns_t *self, gw_conn_t *c, int64_t now_ms)
{
    //  The first request keeps the deadline counted from the accept.
    if (c->idle) {
        c->idle = false;
        atomic_store(&c->deadline, now_ms + self->header_ms);
    }
}

void
gw_conn_received(gw_conn_t *c)
{
    c->idle = false;
    atomic_store(&c->deadline, 0);
}

void
gw_conn_idle(gw_conns_t *self, gw_conn_t *c, int64_t now_ms)
{
    c->idle = true;
    atomic_store(&c->deadline, now_ms + self->idle_ms);
}

int
gw_conns_expire(gw_conns_t *self, int64_t now_ms,
                void (*close_fd)(void *arg, int fd), void *arg)
{
    int n = 0;
    pthread_mutex_lock(&self->lock);
    for (gw_conn_t *c = self->head; c; c = c->next) {
        int64_t d = atomic_load(&c->deadline);
        if (d == 0 || now_ms < d)
            continue;
        atomic_store(&c->deadline, 0);
        close_fd(arg, c->fd);
        n++;
    }
    pthread_mutex_unlock(&self->lock);
    return n;
}

int
gw_conns_count(gw_conns_t *self)
{
    pthread_mutex_lock(&self->lock);
    int n = self->count;
    pthread_mutex_unlock(&self->lock);
    return n;
}
