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

#include "pres_grow.h"
#include "pres_log.h"

#define S_COMPACT 4096  //  released items kept before moving the rest down
//  Sync threads: a commit made while an fsync runs starts its own at once
//  instead of waiting for that one to finish (a login waits only for its
//  own fsync; docs/broker.md).
#define S_THREADS 4

//  A held change or notice: topic then body in a bytes buffer.
typedef struct {
    uint64_t ticket;  //  the commit that must be durable first
    uint64_t at;      //  us when held
    size_t off;
    uint32_t tlen, blen;
} s_msg_t;

//  A held reply (owner's thread only).
typedef struct {
    uint64_t ticket;
    void *sock, *msg;
} s_reply_t;

//  A queue of messages (the held ones, or a copy being published).
typedef struct {
    s_msg_t *items;
    size_t head, n, cap;  //  items[head..n) are held
    char *bytes;
    size_t len, bcap;
} s_queue_t;

struct broker_durable {
    broker_durable_sync_fn *sync;
    void *sync_arg;
    broker_durable_free_fn *free_reply;
    broker_durable_pub_fn *pub;  //  set: the stage publishes changes
    void *pub_arg;
    int efd;  //  eventfd: a sync finished, the owner has work
    pthread_t threads[S_THREADS];
    int nthreads;  //  started
    pthread_mutex_t mu;
    pthread_cond_t work;     //  committed moved, or stop
    pthread_cond_t done;     //  synced moved, or failed
    pthread_mutex_t pub_mu;  //  one publisher at a time (taken before mu)
    //  Under mu:
    uint64_t committed;      //  commits announced (written by the owner)
    uint64_t covered;        //  commits a running or finished sync covers
    uint64_t synced;         //  commits known durable
    uint64_t pending_since;  //  us of the oldest commit no fsync covers yet
    uint64_t synced_at;      //  us when synced last moved
    bool pending_bulk;       //  a bulk commit no fsync covers yet
    bool failed;             //  a sync failed: nothing more is released
    bool stop;
    broker_durable_stats_t st;
    s_queue_t held;  //  changes and notices
    //  Under pub_mu: the copy being published.
    s_queue_t out;
    //  Owner's thread only:
    s_reply_t *replies;
    size_t rhead, rn, rcap;  //  replies[rhead..rn) are held
    uint64_t released_to;    //  synced as last seen by release
    size_t replies_held;     //  rn - rhead, read by the sync thread (atomic)
};

static uint64_t
s_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

//  hist[i] counts the times < 2^i * 64 us.
static void
s_hist_add(uint64_t *hist, uint64_t us)
{
    int b = 0;
    while (b < 15 && us >= ((uint64_t)64 << b))
        b++;
    hist[b]++;
}

static void
s_queue_free(s_queue_t *q)
{
    free(q->items);
    free(q->bytes);
    memset(q, 0, sizeof(*q));
}

//  Room for one more item of len bytes. 0 or -1 (logged).
static int
s_queue_reserve(s_queue_t *q, size_t count, size_t len)
{
    if (pres_grow((void **)&q->items, &q->cap, sizeof(*q->items), q->n + count,
                  256) ||
        pres_grow((void **)&q->bytes, &q->bcap, 1, q->len + len, 64 * 1024)) {
        pres_log_error("realloc() failed for held changes");
        return -1;
    }
    return 0;
}

//  Move the items still held to the front once enough were released.
static void
s_queue_compact(s_queue_t *q)
{
    if (q->head == q->n) {
        q->head = q->n = q->len = 0;
        return;
    }
    if (q->head < S_COMPACT)
        return;
    size_t base = q->items[q->head].off;
    memmove(q->bytes, q->bytes + base, q->len - base);
    q->len -= base;
    memmove(q->items, q->items + q->head, (q->n - q->head) * sizeof(*q->items));
    q->n -= q->head;
    q->head = 0;
    for (size_t i = 0; i < q->n; i++)
        q->items[i].off -= base;
}

//  Publish, in order, the held changes whose commit is durable (synced
//  as read under mu). Caller holds pub_mu and not mu. The changes are
//  copied out under mu and published without it, so the owner can hold
//  more meanwhile. Returns the number published.
static size_t
s_publish(broker_durable_t *self, broker_durable_pub_fn *pub, void *arg,
          bool on_thread)
{
    s_queue_t *q = &self->held, *o = &self->out;
    pthread_mutex_lock(&self->mu);
    uint64_t synced = self->synced, synced_at = self->synced_at;
    size_t k = 0;
    while (q->head + k < q->n && q->items[q->head + k].ticket <= synced)
        k++;
    o->head = o->n = o->len = 0;
    if (k) {
        size_t from = q->items[q->head].off;
        const s_msg_t *last = &q->items[q->head + k - 1];
        size_t len = last->off + last->tlen + last->blen - from;
        if (s_queue_reserve(o, k, len)) {
            //  Out of memory: publish in place under the lock instead.
            for (size_t i = 0; i < k; i++) {
                const s_msg_t *m = &q->items[q->head + i];
                pub(q->bytes + m->off, m->tlen, q->bytes + m->off + m->tlen,
                    m->blen, arg);
            }
        } else {
            memcpy(o->items, q->items + q->head, k * sizeof(*o->items));
            memcpy(o->bytes, q->bytes + from, len);
            o->n = k;
            o->len = len;
            for (size_t i = 0; i < k; i++)
                o->items[i].off -= from;
        }
        q->head += k;
        s_queue_compact(q);
    }
    pthread_mutex_unlock(&self->mu);
    if (!o->n)
        return k;
    for (size_t i = 0; i < o->n; i++) {
        const s_msg_t *m = &o->items[i];
        pub(o->bytes + m->off, m->tlen, o->bytes + m->off + m->tlen, m->blen,
            arg);
    }
    uint64_t now = s_us();
    pthread_mutex_lock(&self->mu);
    for (size_t i = 0; i < o->n; i++) {
        s_hist_add(self->st.hold_hist, now - o->items[i].at);
        s_hist_add(self->st.out_hist, now - synced_at);
    }
    self->st.published += o->n;
    if (on_thread)
        self->st.by_thread += o->n;
    pthread_mutex_unlock(&self->mu);
    return k;
}

static void *
s_thread(void *arg)
{
    broker_durable_t *self = arg;
    pthread_mutex_lock(&self->mu);
    while (true) {
        bool slept = false;
        while (!self->stop && self->committed == self->covered) {
            pthread_cond_wait(&self->work, &self->mu);
            slept = true;
        }
        if (self->committed == self->covered)
            break;  //  stopping, nothing pending
        //  Every commit announced so far was written (pwrite) before this
        //  fsync starts: when it returns, they are all durable, whatever
        //  the other threads' fsyncs still do.
        uint64_t target = self->committed;
        uint64_t since = self->pending_since;
        bool bulk = self->pending_bulk;
        self->covered = target;
        self->pending_since = 0;
        self->pending_bulk = false;
        s_hist_add(slept ? self->st.wake_hist : self->st.queue_hist,
                   since ? s_us() - since : 0);
        pthread_mutex_unlock(&self->mu);
        uint64_t t0 = s_us();
        int rc = self->sync(self->sync_arg);
        uint64_t t1 = s_us();
        //  Publish what this fsync made durable before anyone sees synced
        //  move: a reply released on it then follows the changes.
        if (!rc && self->pub)
            pthread_mutex_lock(&self->pub_mu);
        pthread_mutex_lock(&self->mu);
        if (rc) {
            self->failed = true;
            self->stop = true;
            pthread_cond_broadcast(&self->work);
        } else if (target > self->synced) {
            self->synced = target;
            self->synced_at = t1;
        }
        self->st.syncs++;
        self->st.sync_us += t1 - t0;
        if (t1 - t0 > self->st.sync_us_max)
            self->st.sync_us_max = t1 - t0;
        s_hist_add(self->st.hist, t1 - t0);
        if (bulk)
            s_hist_add(self->st.bulk_hist, t1 - t0);
        pthread_cond_broadcast(&self->done);
        bool failed = self->failed;
        pthread_mutex_unlock(&self->mu);
        if (!rc && self->pub) {
            if (!failed)  //  another thread's fsync failed: nothing more
                s_publish(self, self->pub, self->pub_arg, true);
            pthread_mutex_unlock(&self->pub_mu);
        }
        //  The owner has work: replies to send, or every change when it
        //  publishes them itself.
        if (failed || !self->pub ||
            __atomic_load_n(&self->replies_held, __ATOMIC_ACQUIRE)) {
            uint64_t one = 1;
            if (write(self->efd, &one, sizeof one) < 0)
                pres_log_debug("write(eventfd) failed: %s", strerror(errno));
        }
        pthread_mutex_lock(&self->mu);
        if (failed)
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
    pthread_mutex_init(&self->pub_mu, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->done, NULL);
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->efd < 0) {
        pres_log_error("eventfd() failed: %s", strerror(errno));
        broker_durable_destroy(&self);
        return NULL;
    }
    for (int i = 0; i < S_THREADS; i++) {
        int rc = pthread_create(&self->threads[i], NULL, s_thread, self);
        if (rc) {
            pres_log_error("pthread_create(sync) failed: %s", strerror(rc));
            broker_durable_destroy(&self);
            return NULL;
        }
        self->nthreads++;
    }
    return self;
}

void
broker_durable_destroy(broker_durable_t **self_p)
{
    assert(self_p);
    broker_durable_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock(&self->mu);
    self->stop = true;
    pthread_cond_broadcast(&self->work);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < self->nthreads; i++)
        pthread_join(self->threads[i], NULL);  //  after the pending syncs
    for (size_t i = self->rhead; i < self->rn; i++)
        if (self->free_reply)
            self->free_reply(self->replies[i].msg);
    if (self->efd >= 0)
        close(self->efd);
    pthread_cond_destroy(&self->work);
    pthread_cond_destroy(&self->done);
    pthread_mutex_destroy(&self->pub_mu);
    pthread_mutex_destroy(&self->mu);
    s_queue_free(&self->held);
    s_queue_free(&self->out);
    free(self->replies);
    free(self);
    *self_p = NULL;
}

void
broker_durable_publish_on_thread(broker_durable_t *self,
                                 broker_durable_pub_fn *pub, void *arg)
{
    assert(pub);
    pthread_mutex_lock(&self->pub_mu);
    pthread_mutex_lock(&self->mu);
    assert(self->committed == self->covered);
    self->pub = pub;
    self->pub_arg = arg;
    pthread_mutex_unlock(&self->mu);
    pthread_mutex_unlock(&self->pub_mu);
}

void
broker_durable_publish_now(broker_durable_t *self, broker_durable_pub_fn *pub,
                           void *arg, const void *topic, size_t tlen,
                           const void *body, size_t blen)
{
    pthread_mutex_lock(&self->pub_mu);
    pub(topic, tlen, body, blen, arg);
    pthread_mutex_unlock(&self->pub_mu);
}

static void
s_committed(broker_durable_t *self, bool bulk)
{
    uint64_t now = s_us();
    pthread_mutex_lock(&self->mu);
    self->pending_bulk |= bulk;
    self->committed++;
    self->st.commits++;
    if (!self->pending_since)
        self->pending_since = now;
    pthread_cond_signal(&self->work);
    pthread_mutex_unlock(&self->mu);
}

void
broker_durable_committed(broker_durable_t *self)
{
    s_committed(self, false);
}

void
broker_durable_committed_bulk(broker_durable_t *self)
{
    s_committed(self, true);
}

int
broker_durable_hold_msg(broker_durable_t *self, const void *topic, size_t tlen,
                        const void *body, size_t blen)
{
    uint64_t now = s_us();
    s_queue_t *q = &self->held;
    pthread_mutex_lock(&self->mu);
    int rc = s_queue_reserve(q, 1, tlen + blen);
    if (!rc) {
        s_msg_t *m = &q->items[q->n++];
        m->ticket = self->committed;
        m->at = now;
        m->off = q->len;
        m->tlen = (uint32_t)tlen;
        m->blen = (uint32_t)blen;
        memcpy(q->bytes + q->len, topic, tlen);
        memcpy(q->bytes + q->len + tlen, body, blen);
        q->len += tlen + blen;
        self->st.held++;
        size_t waiting = q->n - q->head + self->rn - self->rhead;
        if (waiting > self->st.held_max)
            self->st.held_max = waiting;
    }
    pthread_mutex_unlock(&self->mu);
    return rc;
}

int
broker_durable_hold_reply(broker_durable_t *self, void *sock, void *msg)
{
    assert(msg);
    if (pres_grow((void **)&self->replies, &self->rcap, sizeof(*self->replies),
                  self->rn + 1, 64)) {
        pres_log_error("realloc() failed for held replies");
        return -1;
    }
    //  committed is written on this thread only: no lock to read it.
    self->replies[self->rn++] =
        (s_reply_t){.ticket = self->committed, .sock = sock, .msg = msg};
    __atomic_store_n(&self->replies_held, self->rn - self->rhead,
                     __ATOMIC_RELEASE);
    pthread_mutex_lock(&self->mu);
    self->st.held++;
    pthread_mutex_unlock(&self->mu);
    return 0;
}

bool
broker_durable_ready(broker_durable_t *self)
{
    pthread_mutex_lock(&self->mu);
    uint64_t synced = self->synced;
    const s_queue_t *q = &self->held;
    bool ready = q->head < q->n && q->items[q->head].ticket <= synced;
    pthread_mutex_unlock(&self->mu);
    return ready || (self->rhead < self->rn &&
                     self->replies[self->rhead].ticket <= synced);
}

bool
broker_durable_busy(broker_durable_t *self)
{
    pthread_mutex_lock(&self->mu);
    bool held = self->held.head < self->held.n;
    pthread_mutex_unlock(&self->mu);
    return held || self->rhead < self->rn ||
           self->released_to < self->committed;
}

int
broker_durable_fd(const broker_durable_t *self)
{
    return self->efd;
}

int
broker_durable_release(broker_durable_t *self, broker_durable_pub_fn *pub,
                       broker_durable_reply_fn *reply, void *arg)
{
    uint64_t ticks;
    if (read(self->efd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
        pres_log_debug("read(eventfd) failed: %s", strerror(errno));
    //  Changes first, under pub_mu: if the sync thread is publishing what
    //  its fsync made durable, this waits for it, so the replies below
    //  never overtake a change of their batch.
    pthread_mutex_lock(&self->pub_mu);
    int count = (int)s_publish(self, self->pub ? self->pub : pub,
                               self->pub ? self->pub_arg : arg, false);
    pthread_mutex_lock(&self->mu);
    uint64_t synced = self->synced;
    bool failed = self->failed;
    pthread_mutex_unlock(&self->mu);
    pthread_mutex_unlock(&self->pub_mu);
    self->released_to = synced;
    while (self->rhead < self->rn &&
           self->replies[self->rhead].ticket <= synced) {
        s_reply_t *r = &self->replies[self->rhead++];
        reply(r->sock, r->msg, arg);
        count++;
    }
    if (self->rhead == self->rn)
        self->rhead = self->rn = 0;
    else if (self->rhead >= S_COMPACT) {
        memmove(self->replies, self->replies + self->rhead,
                (self->rn - self->rhead) * sizeof(*self->replies));
        self->rn -= self->rhead;
        self->rhead = 0;
    }
    __atomic_store_n(&self->replies_held, self->rn - self->rhead,
                     __ATOMIC_RELEASE);
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
    if (self->rhead != self->rn)
        return;  //  something is held: keep the buffers
    pthread_mutex_lock(&self->pub_mu);
    pthread_mutex_lock(&self->mu);
    if (self->held.head == self->held.n) {
        s_queue_free(&self->held);
        s_queue_free(&self->out);
        free(self->replies);
        self->replies = NULL;
        self->rhead = self->rn = self->rcap = 0;
    }
    pthread_mutex_unlock(&self->mu);
    pthread_mutex_unlock(&self->pub_mu);
}

void
broker_durable_stats(broker_durable_t *self, broker_durable_stats_t *st)
{
    pthread_mutex_lock(&self->mu);
    *st = self->st;
    pthread_mutex_unlock(&self->mu);
}

void
broker_durable_stats_reset(broker_durable_t *self)
{
    pthread_mutex_lock(&self->mu);
    memset(&self->st, 0, sizeof(self->st));
    pthread_mutex_unlock(&self->mu);
}
