/*  broker_durable: commits made durable on a sync thread, and the items
    each batch held back released in order once they are (see
    broker_durable.h). */
#include "broker_durable.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "pres_log.h"

#define S_COMPACT 4096  //  released items kept before moving the rest down

typedef struct {
    uint64_t ticket;  //  the commit that must be durable first
    size_t off;       //  topic then body in bytes (messages)
    uint32_t tlen, blen;
    void *sock, *msg;  //  replies (msg != NULL)
} s_item_t;

struct broker_durable {
    broker_durable_sync_fn *sync;
    void *sync_arg;
    broker_durable_free_fn *free_reply;
    int efd;  //  eventfd: a sync finished
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t work;  //  committed moved, or stop
    pthread_cond_t done;  //  synced moved, or failed
    //  Under mu:
    uint64_t committed;  //  commits announced
    uint64_t synced;     //  commits known durable
    bool failed;         //  a sync failed: nothing more is released
    bool stop;
    broker_durable_stats_t st;
    //  Owner's thread only:
    s_item_t *items;
    size_t head, n, cap;  //  items[head..n) are held
    char *bytes;
    size_t len, bcap;
    uint64_t released_to;  //  synced as last seen by release
};

static uint64_t
s_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *
s_thread(void *arg)
{
    broker_durable_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (true) {
        while (!self->stop && self->committed == self->synced)
            pthread_cond_wait(&self->work, &self->mu);
        if (self->committed == self->synced)
            break;  //  stopping, nothing pending
        uint64_t target = self->committed;
        pthread_mutex_unlock(&self->mu);
        uint64_t t0 = s_us();
        int rc = self->sync(self->sync_arg);
        uint64_t us = s_us() - t0;
        pthread_mutex_lock(&self->mu);
        if (rc) {
            self->failed = true;
            self->stop = true;
        } else
            __atomic_store_n(&self->synced, target, __ATOMIC_RELEASE);
        self->st.syncs++;
        self->st.sync_us += us;
        if (us > self->st.sync_us_max)
            self->st.sync_us_max = us;
        int b = 0;
        while (b < 15 && us >= ((uint64_t)64 << b))
            b++;
        self->st.hist[b]++;
        pthread_cond_broadcast(&self->done);
        uint64_t one = 1;
        if (write(self->efd, &one, sizeof one) < 0)
            pres_log_debug("write(eventfd) failed: %s", strerror(errno));
        if (self->failed)
            break;
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

broker_durable_t *
broker_durable_new(broker_durable_sync_fn *sync, void *arg,
                   broker_durable_free_fn *free_reply)
{
    assert(sync);
    broker_durable_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() failed for the durable stage");
        return NULL;
    }
    self->sync = sync;
    self->sync_arg = arg;
    self->free_reply = free_reply;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->done, NULL);
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->efd < 0) {
        pres_log_error("eventfd() failed: %s", strerror(errno));
        broker_durable_destroy(&self);
        return NULL;
    }
    int rc = pthread_create(&self->thread, NULL, s_thread, self);
    if (rc) {
        pres_log_error("pthread_create(sync) failed: %s", strerror(rc));
        broker_durable_destroy(&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
broker_durable_destroy(broker_durable_t **self_p)
{
    assert(self_p);
    broker_durable_t *self = *self_p;
    if (!self)
        return;
    if (self->started) {
        pthread_mutex_lock(&self->mu);
        self->stop = true;
        pthread_cond_signal(&self->work);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);  //  after the pending sync
    }
    for (size_t i = self->head; i < self->n; i++)
        if (self->items[i].msg && self->free_reply)
            self->free_reply(self->items[i].msg);
    if (self->efd >= 0)
        close(self->efd);
    pthread_cond_destroy(&self->work);
    pthread_cond_destroy(&self->done);
    pthread_mutex_destroy(&self->mu);
    free(self->items);
    free(self->bytes);
    free(self);
    *self_p = NULL;
}

void
broker_durable_committed(broker_durable_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->committed++;
    self->st.commits++;
    pthread_cond_signal(&self->work);
    pthread_mutex_unlock(&self->mu);
}

static uint64_t
s_committed(broker_durable_t *self)
{
    //  Only the owner's thread writes committed: no lock needed to read.
    return self->committed;
}

static s_item_t *
s_push(broker_durable_t *self)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 256;
        s_item_t *items = realloc(self->items, cap * sizeof(*items));
        if (!items) {
            pres_log_error("realloc() failed for held items");
            return NULL;
        }
        self->items = items;
        self->cap = cap;
    }
    s_item_t *it = &self->items[self->n];
    memset(it, 0, sizeof(*it));
    it->ticket = s_committed(self);
    return it;
}

static void
s_count_held(broker_durable_t *self)
{
    self->n++;
    self->st.held++;
    if (self->n - self->head > self->st.held_max)
        self->st.held_max = self->n - self->head;
}

int
broker_durable_hold_msg(broker_durable_t *self, const void *topic, size_t tlen,
                        const void *body, size_t blen)
{
    if (self->len + tlen + blen > self->bcap) {
        size_t cap = self->bcap ? self->bcap : 64 * 1024;
        while (cap < self->len + tlen + blen)
            cap *= 2;
        char *bytes = realloc(self->bytes, cap);
        if (!bytes) {
            pres_log_error("realloc() failed for held messages");
            return -1;
        }
        self->bytes = bytes;
        self->bcap = cap;
    }
    s_item_t *it = s_push(self);
    if (!it)
        return -1;
    it->off = self->len;
    it->tlen = (uint32_t)tlen;
    it->blen = (uint32_t)blen;
    memcpy(self->bytes + self->len, topic, tlen);
    memcpy(self->bytes + self->len + tlen, body, blen);
    self->len += tlen + blen;
    s_count_held(self);
    return 0;
}

int
broker_durable_hold_reply(broker_durable_t *self, void *sock, void *msg)
{
    assert(msg);
    s_item_t *it = s_push(self);
    if (!it)
        return -1;
    it->sock = sock;
    it->msg = msg;
    s_count_held(self);
    return 0;
}

bool
broker_durable_ready(const broker_durable_t *self)
{
    //  One atomic load: cheap enough to call inside the batch loop.
    return self->n > self->head &&
           self->items[self->head].ticket <=
               __atomic_load_n(&self->synced, __ATOMIC_ACQUIRE);
}

bool
broker_durable_busy(const broker_durable_t *self)
{
    return self->n > self->head || self->released_to < self->committed;
}

int
broker_durable_fd(const broker_durable_t *self)
{
    return self->efd;
}

//  Move the items still held to the front once enough were released.
static void
s_compact(broker_durable_t *self)
{
    if (self->head == self->n) {
        self->head = self->n = self->len = 0;
        return;
    }
    if (self->head < S_COMPACT)
        return;
    size_t base = self->len;
    for (size_t i = self->head; i < self->n; i++)
        if (!self->items[i].msg) {
            base = self->items[i].off;
            break;
        }
    memmove(self->bytes, self->bytes + base, self->len - base);
    self->len -= base;
    memmove(self->items, self->items + self->head,
            (self->n - self->head) * sizeof(*self->items));
    self->n -= self->head;
    self->head = 0;
    for (size_t i = 0; i < self->n; i++)
        if (!self->items[i].msg)
            self->items[i].off -= base;
}

int
broker_durable_release(broker_durable_t *self, broker_durable_pub_fn *pub,
                       broker_durable_reply_fn *reply, void *arg)
{
    uint64_t ticks;
    if (read(self->efd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
        pres_log_debug("read(eventfd) failed: %s", strerror(errno));
    pthread_mutex_lock(&self->mu);
    uint64_t synced = self->synced;
    bool failed = self->failed;
    pthread_mutex_unlock(&self->mu);
    self->released_to = synced;
    int count = 0;
    while (self->head < self->n && self->items[self->head].ticket <= synced) {
        s_item_t *it = &self->items[self->head++];
        if (it->msg)
            reply(it->sock, it->msg, arg);
        else
            pub(self->bytes + it->off, it->tlen,
                self->bytes + it->off + it->tlen, it->blen, arg);
        count++;
    }
    s_compact(self);
    if (failed) {
        pres_log_error("a commit could not be made durable: nothing more is "
                       "published");
        return -1;
    }
    return count;
}

int
broker_durable_drain(broker_durable_t *self, broker_durable_pub_fn *pub,
                     broker_durable_reply_fn *reply, void *arg)
{
    pthread_mutex_lock(&self->mu);
    while (!self->failed && self->synced < self->committed)
        pthread_cond_wait(&self->done, &self->mu);
    pthread_mutex_unlock(&self->mu);
    return broker_durable_release(self, pub, reply, arg);
}

void
broker_durable_shrink(broker_durable_t *self)
{
    if (self->head != self->n)
        return;  //  something is held: keep the buffers
    free(self->items);
    free(self->bytes);
    self->items = NULL;
    self->bytes = NULL;
    self->head = self->n = self->cap = 0;
    self->len = self->bcap = 0;
}

void
broker_durable_stats(broker_durable_t *self, broker_durable_stats_t *st)
{
    pthread_mutex_lock(&self->mu);
    *st = self->st;
    pthread_mutex_unlock(&self->mu);
}
