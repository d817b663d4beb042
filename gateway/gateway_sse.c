/*  gateway_sse: ring of formatted change events plus the client list,
    both under one mutex, so "nothing to send -> suspend" and "new event ->
    resume the suspended" can never miss each other. Each client carries
    the rights it was opened with (subject, token expiry, token id); the
    reader checks them before it writes anything, and the tick, the
    revocation hook and every push wake the clients that must end. */
#include "gateway_sse.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"

typedef enum {
    S_LIVE = 0,
    S_EXPIRED,   //  token exp + leeway passed
    S_REVOKED,   //  the token was revoked (logout)
    S_INACTIVE,  //  the subject's account is not active
    S_SHUTDOWN,  //  the gateway stops
} s_end_t;

static const char *const s_end_names[] = {
    "live", "token expired", "token revoked", "account inactive", "shutdown"};

typedef struct {
    uint64_t seq;
    uint16_t len;
    char text[GW_SSE_TEXT_MAX];
} s_event_t;

typedef struct s_client {
    gw_sse_t *sse;
    struct MHD_Connection *conn;
    char sub[PRES_ID_MAX + 1];  //  the token's subject
    int64_t until_ms;           //  wall clock: (exp + leeway) * 1000
    gw_token_id_t token;        //  its revocation id
    s_end_t end;                //  set once; the next read ends the stream
    uint64_t next;              //  next seq to send; 0 = the first that comes
    bool resync;                //  send a resync event first
    bool suspended;             //  we called MHD_suspend_connection
    bool keepalive_due;         //  write a comment at the next chance
    int64_t last_write_ms;      //  monotonic
    char pend[GW_SSE_TEXT_MAX + 64];  //  text being written
    size_t pend_len, pend_off;
    char *backlog;  //  changes older than the ring (heap), sent first
    size_t backlog_len, backlog_off;
    struct s_client *prev, *next_client;
} s_client_t;

struct gw_sse {
    pthread_mutex_t lock;
    s_event_t *ring;       //  GW_SSE_RING slots, index seq % GW_SSE_RING
    bool head_known;       //  first/last are meaningful
    uint64_t first, last;  //  ring holds [first, last]; empty: first=last+1
    s_client_t *clients;   //  doubly linked
    int nclients, max_clients;
    int keepalive_ms;
    int leeway_s;             //  jwt_leeway
    gw_auth_t *auth;          //  revocations (borrowed)
    gw_accounts_t *accounts;  //  non-active subjects (borrowed)
    bool closing;
};

//  Why c's rights are gone at now_ms (wall clock), or S_LIVE. Takes the
//  auth and accounts read locks, never the sse lock.
static s_end_t
s_rights(gw_sse_t *self, const s_client_t *c, int64_t now_ms)
{
    if (now_ms >= c->until_ms)
        return S_EXPIRED;
    if (gw_auth_is_revoked_id(self->auth, &c->token))
        return S_REVOKED;
    if (gw_accounts_get(self->accounts, c->sub) != PRES_ACC_ACTIVE)
        return S_INACTIVE;
    return S_LIVE;
}

//  Mark c ended (lock held) and wake it so its reader ends the stream.
static void
s_end(s_client_t *c, s_end_t why)
{
    if (c->end != S_LIVE)
        return;
    c->end = why;
    if (why != S_SHUTDOWN)
        pres_log_info("event stream of %s ends: %s", c->sub, s_end_names[why]);
    if (c->suspended) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

//  gw_auth hook: a token was revoked; end its streams now.
static void
s_on_revoke(void *arg, const gw_token_id_t *id)
{
    gw_sse_t *self = arg;
    pthread_mutex_lock(&self->lock);
    for (s_client_t *c = self->clients; c; c = c->next_client)
        if (memcmp(&c->token, id, sizeof *id) == 0)
            s_end(c, S_REVOKED);
    pthread_mutex_unlock(&self->lock);
}

gw_sse_t *
gw_sse_new(int max_clients, int keepalive_s, int leeway_s, gw_auth_t *auth,
           gw_accounts_t *accounts)
{
    gw_sse_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ring = calloc(GW_SSE_RING, sizeof *self->ring);
    if (!self->ring) {
        free(self);
        pres_log_error("gw_sse_new: out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->max_clients = max_clients;
    self->keepalive_ms = keepalive_s * 1000;
    self->leeway_s = leeway_s;
    self->auth = auth;
    self->accounts = accounts;
    gw_auth_on_revoke(auth, s_on_revoke, self);
    return self;
}

void
gw_sse_destroy(gw_sse_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_sse_t *self = *self_p;
    //  MHD has freed every response (and so every client) by now.
    gw_auth_on_revoke(self->auth, NULL, NULL);
    pthread_mutex_destroy(&self->lock);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

//  Lock held.
static void
s_wake_all(gw_sse_t *self)
{
    for (s_client_t *c = self->clients; c; c = c->next_client)
        if (c->suspended) {
            c->suspended = false;
            MHD_resume_connection(c->conn);
        }
}

void
gw_sse_set_head(gw_sse_t *self, uint64_t seq)
{
    pthread_mutex_lock(&self->lock);
    if (!self->head_known) {
        self->head_known = true;
        self->last = seq;
        self->first = seq + 1;
    }
    pthread_mutex_unlock(&self->lock);
}

void
gw_sse_lost(gw_sse_t *self, uint64_t seq)
{
    pthread_mutex_lock(&self->lock);
    if (!self->head_known || seq > self->last) {
        self->head_known = true;
        self->last = seq;
        self->first = seq + 1;  //  nothing kept: waiting clients resync
        s_wake_all(self);
    }
    pthread_mutex_unlock(&self->lock);
}

bool
gw_sse_head(gw_sse_t *self, uint64_t *seq)
{
    pthread_mutex_lock(&self->lock);
    bool known = self->head_known;
    *seq = self->last;
    pthread_mutex_unlock(&self->lock);
    return known;
}

void
gw_sse_push(gw_sse_t *self, uint64_t seq, const char *json, size_t len)
{
    pthread_mutex_lock(&self->lock);
    if (self->head_known && seq <= self->last && self->first <= self->last) {
        //  Seqs are never reused: a change already held.
        pthread_mutex_unlock(&self->lock);
        return;
    }
    if (!self->head_known || seq != self->last + 1) {
        //  A gap (or a first change): what is before it is unknown.
        self->head_known = true;
        self->first = seq;
    }
    self->last = seq;
    if (self->last - self->first + 1 > GW_SSE_RING)
        self->first = self->last - GW_SSE_RING + 1;
    s_event_t *e = &self->ring[seq % GW_SSE_RING];
    int n = snprintf(e->text, sizeof e->text, "id: %" PRIu64 "\ndata: %.*s\n\n",
                     seq, (int)len, json);
    e->seq = seq;
    e->len = (uint16_t)(n > 0 && (size_t)n < sizeof e->text ? n : 0);
    s_wake_all(self);
    pthread_mutex_unlock(&self->lock);
}

//  Fill c->pend with what comes next; false if nothing (lock held).
static bool
s_next_text(gw_sse_t *self, s_client_t *c)
{
    if (c->next == 0 && self->head_known && self->first <= self->last)
        c->next = self->first;
    if (c->next != 0 && (c->next < self->first || c->next > self->last + 1))
        c->resync = true;
    if (c->resync && self->head_known) {
        int n = snprintf(c->pend, sizeof c->pend,
                         "id: %" PRIu64 "\nevent: resync\ndata: "
                         "{\"seq\":%" PRIu64 "}\n\n",
                         self->last, self->last);
        c->pend_len = (size_t)n;
        c->pend_off = 0;
        c->resync = false;
        c->next = self->last + 1;
        return true;
    }
    if (c->next != 0 && c->next <= self->last) {
        s_event_t *e = &self->ring[c->next % GW_SSE_RING];
        c->next++;
        if (e->len == 0)
            return s_next_text(self, c);  //  did not fit: skip it
        memcpy(c->pend, e->text, e->len);
        c->pend_len = e->len;
        c->pend_off = 0;
        return true;
    }
    if (c->keepalive_due) {
        c->keepalive_due = false;
        memcpy(c->pend, ":keepalive\n\n", 12);
        c->pend_len = 12;
        c->pend_off = 0;
        return true;
    }
    return false;
}

//  Copies what fits in room of src[*off, len) to dst; advances *off.
static size_t
s_copy(char *dst, size_t room, const char *src, size_t len, size_t *off)
{
    size_t n = len - *off;
    if (n > room)
        n = room;
    memcpy(dst, src + *off, n);
    *off += n;
    return n;
}

static ssize_t
s_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    s_client_t *c = cls;
    gw_sse_t *self = c->sse;
    //  Rights first, outside the lock: nothing is written for a token
    //  that expired or was revoked, or a subject no longer active.
    s_end_t gone = s_rights(self, c, pres_now_ms());
    pthread_mutex_lock(&self->lock);
    if (self->closing)
        s_end(c, S_SHUTDOWN);
    if (gone != S_LIVE)
        s_end(c, gone);
    if (c->end != S_LIVE) {
        pthread_mutex_unlock(&self->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t out = 0;
    while (out < max) {
        if (c->pend_off >= c->pend_len && c->backlog) {
            //  Replay from the change log before the ring.
            out += s_copy(buf + out, max - out, c->backlog, c->backlog_len,
                          &c->backlog_off);
            if (c->backlog_off == c->backlog_len) {
                free(c->backlog);
                c->backlog = NULL;
            }
            continue;
        }
        if (c->pend_off >= c->pend_len && !s_next_text(self, c))
            break;
        out += s_copy(buf + out, max - out, c->pend, c->pend_len, &c->pend_off);
    }
    if (out == 0) {
        //  Nothing to send: park until gw_sse_push, gw_sse_tick or the
        //  revocation hook.
        c->suspended = true;
        MHD_suspend_connection(c->conn);
    } else
        c->last_write_ms = pres_mono_ms();
    pthread_mutex_unlock(&self->lock);
    return (ssize_t)out;
}

static void
s_free(void *cls)
{
    s_client_t *c = cls;
    gw_sse_t *self = c->sse;
    pthread_mutex_lock(&self->lock);
    if (c->prev)
        c->prev->next_client = c->next_client;
    else
        self->clients = c->next_client;
    if (c->next_client)
        c->next_client->prev = c->prev;
    self->nclients--;
    pthread_mutex_unlock(&self->lock);
    free(c->backlog);
    free(c);
}

static struct MHD_Response *s_open(gw_sse_t *self, struct MHD_Connection *conn,
                                   bool resume, uint64_t want, char *backlog,
                                   size_t len, const pres_jwt_claims_t *claims,
                                   const gw_token_id_t *token,
                                   unsigned *status);

struct MHD_Response *
gw_sse_open(gw_sse_t *self, struct MHD_Connection *conn,
            const char *last_event_id, const pres_jwt_claims_t *claims,
            const gw_token_id_t *token, unsigned *status)
{
    uint64_t want = 0;
    bool resume = last_event_id && *last_event_id;
    if (resume) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(last_event_id, &end, 10);
        if (errno || !end || *end || last_event_id[0] == '-') {
            *status = 400;
            return NULL;
        }
        want = (uint64_t)v + 1;
    }
    return s_open(self, conn, resume, want, NULL, 0, claims, token, status);
}

struct MHD_Response *
gw_sse_open_backlog(gw_sse_t *self, struct MHD_Connection *conn, char *backlog,
                    size_t len, uint64_t next, const pres_jwt_claims_t *claims,
                    const gw_token_id_t *token, unsigned *status)
{
    return s_open(self, conn, true, next, backlog, len, claims, token, status);
}

bool
gw_sse_first(gw_sse_t *self, uint64_t *seq)
{
    pthread_mutex_lock(&self->lock);
    bool any = self->head_known && self->first <= self->last;
    *seq = self->first;
    pthread_mutex_unlock(&self->lock);
    return any;
}

static struct MHD_Response *
s_open(gw_sse_t *self, struct MHD_Connection *conn, bool resume, uint64_t want,
       char *backlog, size_t len, const pres_jwt_claims_t *claims,
       const gw_token_id_t *token, unsigned *status)
{
    s_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        free(backlog);
        *status = 503;
        return NULL;
    }
    if (backlog && len) {
        c->backlog = backlog;
        c->backlog_len = len;
    } else
        free(backlog);
    c->sse = self;
    c->conn = conn;
    snprintf(c->sub, sizeof c->sub, "%s", claims->sub);
    c->token = *token;
    //  (exp + leeway) * 1000, saturating: exp may be up to INT64_MAX.
    int64_t end_s = claims->exp > INT64_MAX / 1000 - self->leeway_s
                        ? INT64_MAX / 1000
                        : claims->exp + self->leeway_s;
    c->until_ms = end_s * 1000;
    c->last_write_ms = pres_mono_ms();
    //  The first bytes: the reconnect delay for EventSource clients.
    c->pend_len = (size_t)snprintf(c->pend, sizeof c->pend, "retry: 2000\n\n");
    pthread_mutex_lock(&self->lock);
    if (self->nclients >= self->max_clients || !self->head_known ||
        self->closing) {
        pthread_mutex_unlock(&self->lock);
        free(c->backlog);
        free(c);
        *status = 503;
        return NULL;
    }
    if (resume) {
        c->next = want;
        if (want < self->first || want > self->last + 1)
            c->resync = true;
    } else
        c->next = self->last + 1;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 1024, s_reader, c, s_free);
    if (!resp) {
        pthread_mutex_unlock(&self->lock);
        free(c->backlog);
        free(c);
        *status = 503;
        return NULL;
    }
    c->next_client = self->clients;
    if (self->clients)
        self->clients->prev = c;
    self->clients = c;
    self->nclients++;
    pthread_mutex_unlock(&self->lock);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    //  When the stream ends (rights gone), the connection goes too.
    MHD_add_response_header(resp, "Connection", "close");
    *status = 200;
    return resp;
}

void
gw_sse_tick(gw_sse_t *self, int64_t now_ms)
{
    int64_t wall_ms = pres_now_ms();
    pthread_mutex_lock(&self->lock);
    for (s_client_t *c = self->clients; c; c = c->next_client) {
        s_end_t gone = s_rights(self, c, wall_ms);
        if (gone != S_LIVE) {
            s_end(c, gone);
            continue;
        }
        if (now_ms - c->last_write_ms < self->keepalive_ms)
            continue;
        c->keepalive_due = true;
        if (c->suspended) {
            c->suspended = false;
            MHD_resume_connection(c->conn);
        }
    }
    pthread_mutex_unlock(&self->lock);
}

void
gw_sse_shutdown(gw_sse_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->closing = true;
    s_wake_all(self);
    pthread_mutex_unlock(&self->lock);
}

int
gw_sse_clients(gw_sse_t *self)
{
    pthread_mutex_lock(&self->lock);
    int n = self->nclients;
    pthread_mutex_unlock(&self->lock);
    return n;
}
