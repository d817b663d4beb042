/*  broker_store: LMDB access for the broker (see broker_store.h and
    docs/broker.md). Records are small fixed little-endian layouts with a
    version byte; keys are the ids themselves so cursors walk in id order. */
#include "broker_store.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "pres_be64.h"
#include "pres_log.h"

#define S_REC_VERSION 1
#define S_USER_HDR    16  //  ver acc state rsv nsessions(4) last_seen(8)
#define S_SESSION_HDR 11  //  ver state last_hb(8) device_len
#define S_KEY_MAX     (2 * PRES_ID_MAX + 2)
#define S_GROW_MAX    8  //  map doublings per write before giving up

struct broker_store {
    MDB_env *env;         //  the environment
    MDB_dbi users;        //  user id -> user record
    MDB_dbi sessions;     //  user \0 session -> session record
    MDB_dbi bystate;      //  [state] user -> "" (online and away users)
    MDB_dbi pubs;         //  src -> last seq, lost
    MDB_dbi meta;         //  "meta" -> broker_meta_t record
    MDB_dbi changes;      //  be64 seq -> change (msgpack, as published)
    MDB_dbi history;      //  user \0 be64 ~seq -> transition
    MDB_dbi audit;        //  user \0 be64 ~n -> account change
    MDB_dbi series;       //  be64 minute ms -> online, away
    MDB_txn *rtxn;        //  read txn (reset between uses) or NULL
    bool rtxn_live;       //  rtxn is renewed and usable
    MDB_txn *wtxn;        //  write txn inside broker_store_write
    bool full;            //  a put hit MDB_MAP_FULL in this write
    size_t map_size;      //  current map size
    uint64_t commits;     //  write txns committed since _new
    uint64_t syncs;       //  mdb_env_sync calls since _new (atomic: any thread)
    uint64_t puts;        //  records written (mdb_put) since _new
    pres_ratelimit_t rl;  //  write failures (a full disk repeats them)
};

static void
s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void
s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static MDB_txn *
s_txn(broker_store_t *self)
{
    if (self->wtxn)
        return self->wtxn;
    assert(self->rtxn_live);
    return self->rtxn;
}

broker_store_t *
broker_store_new(const char *dir, size_t map_bytes)
{
    broker_store_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() failed for the store");
        return NULL;
    }
    int rc = mdb_env_create(&self->env);
    if (rc) {
        pres_log_error("mdb_env_create() failed: %s", mdb_strerror(rc));
        free(self);
        return NULL;
    }
    self->map_size = map_bytes;
    MDB_txn *txn = NULL;
    //  NOSYNC|NOMETASYNC: commits reach the page cache only; the broker
    //  calls mdb_env_sync() when a batch holds a change that must be
    //  durable. No WRITEMAP (corruption risk with NOSYNC on a system
    //  crash); NOTLS so the read txn does not bind a thread slot.
    unsigned flags = MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOTLS;
    if ((rc = mdb_env_set_mapsize(self->env, map_bytes)) ||
        (rc = mdb_env_set_maxdbs(self->env, 16)) ||
        (rc = mdb_env_open(self->env, dir, flags, 0640))) {
        pres_log_error("mdb_env_open(%s) failed: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    int dead = 0;
    if ((rc = mdb_reader_check(self->env, &dead)))
        pres_log_warn("mdb_reader_check() failed: %s", mdb_strerror(rc));
    else if (dead)
        pres_log_info("cleared %d stale LMDB reader slots", dead);
    MDB_envinfo info;
    if (mdb_env_info(self->env, &info) == 0 && info.me_mapsize > map_bytes)
        self->map_size = info.me_mapsize;
    if ((rc = mdb_txn_begin(self->env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, "users", MDB_CREATE, &self->users)) ||
        (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &self->sessions)) ||
        (rc = mdb_dbi_open(txn, "bystate", MDB_CREATE, &self->bystate)) ||
        (rc = mdb_dbi_open(txn, "pubs", MDB_CREATE, &self->pubs)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &self->meta)) ||
        (rc = mdb_dbi_open(txn, "changes", MDB_CREATE, &self->changes)) ||
        (rc = mdb_dbi_open(txn, "history", MDB_CREATE, &self->history)) ||
        (rc = mdb_dbi_open(txn, "audit", MDB_CREATE, &self->audit)) ||
        (rc = mdb_dbi_open(txn, "series", MDB_CREATE, &self->series))) {
        pres_log_error("mdb_dbi_open() failed: %s", mdb_strerror(rc));
        goto fail;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        pres_log_error("mdb_txn_commit() failed: %s", mdb_strerror(rc));
        goto fail;
    }
    if ((rc = mdb_env_sync(self->env, 1))) {
        pres_log_error("mdb_env_sync() failed: %s", mdb_strerror(rc));
        goto fail;
    }
    return self;
fail:
    if (txn)
        mdb_txn_abort(txn);
    broker_store_destroy(&self);
    return NULL;
}

void
broker_store_destroy(broker_store_t **self_p)
{
    assert(self_p);
    broker_store_t *self = *self_p;
    if (!self)
        return;
    assert(!self->wtxn);
    if (self->rtxn)
        mdb_txn_abort(self->rtxn);
    if (self->env) {
        mdb_env_sync(self->env, 1);
        mdb_env_close(self->env);
    }
    free(self);
    *self_p = NULL;
}

uint64_t
broker_store_commits(const broker_store_t *self)
{
    return self->commits;
}

uint64_t
broker_store_syncs(const broker_store_t *self)
{
    return __atomic_load_n(&self->syncs, __ATOMIC_RELAXED);
}

int
broker_store_copy(broker_store_t *self, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        pres_log_error("open(%s) failed: %s", path, strerror(errno));
        return -1;
    }
    int rc = mdb_env_copyfd2(self->env, fd, MDB_CP_COMPACT);
    if (rc)
        pres_log_error("mdb_env_copyfd2(%s) failed: %s", path,
                       mdb_strerror(rc));
    else if (fsync(fd)) {
        pres_log_error("fsync(%s) failed: %s", path, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc ? -1 : 0;
}

uint64_t
broker_store_puts(const broker_store_t *self)
{
    return self->puts;
}

size_t
broker_store_map_size(const broker_store_t *self)
{
    return self->map_size;
}

int
broker_store_read_begin(broker_store_t *self)
{
    assert(!self->rtxn_live && !self->wtxn);
    int rc = self->rtxn
                 ? mdb_txn_renew(self->rtxn)
                 : mdb_txn_begin(self->env, NULL, MDB_RDONLY, &self->rtxn);
    if (rc == MDB_MAP_RESIZED) {
        //  Cannot happen with one process, but adopt the size if it does.
        mdb_env_set_mapsize(self->env, 0);
        rc = mdb_txn_renew(self->rtxn);
    }
    if (rc) {
        pres_log_error("mdb_txn_begin(read) failed: %s", mdb_strerror(rc));
        return -1;
    }
    self->rtxn_live = true;
    return 0;
}

void
broker_store_read_end(broker_store_t *self)
{
    if (self->rtxn_live) {
        mdb_txn_reset(self->rtxn);
        self->rtxn_live = false;
    }
}

//  ---- record codecs

static size_t
s_user_pack(const broker_user_rec_t *rec, uint8_t *buf)
{
    size_t rlen = strlen(rec->reason);
    buf[0] = S_REC_VERSION;
    buf[1] = rec->account;
    buf[2] = rec->state;
    buf[3] = 0;
    s_put32(buf + 4, rec->nsessions);
    s_put64(buf + 8, rec->last_seen);
    memcpy(buf + S_USER_HDR, rec->reason, rlen);
    return S_USER_HDR + rlen;
}

static int
s_user_unpack(const MDB_val *val, broker_user_rec_t *rec)
{
    const uint8_t *p = val->mv_data;
    if (val->mv_size < S_USER_HDR || p[0] != S_REC_VERSION ||
        val->mv_size - S_USER_HDR > PRES_REASON_MAX ||
        p[1] >= PRES_ACCOUNT_COUNT || p[2] >= PRES_STATE_COUNT)
        return -1;
    rec->account = p[1];
    rec->state = p[2];
    rec->nsessions = s_get32(p + 4);
    rec->last_seen = s_get64(p + 8);
    size_t rlen = val->mv_size - S_USER_HDR;
    memcpy(rec->reason, p + S_USER_HDR, rlen);
    rec->reason[rlen] = 0;
    return 0;
}

static size_t
s_session_pack(const broker_session_rec_t *rec, uint8_t *buf)
{
    size_t dlen = strlen(rec->device);
    buf[0] = S_REC_VERSION;
    buf[1] = rec->state;
    s_put64(buf + 2, rec->last_hb);
    buf[10] = (uint8_t)dlen;
    memcpy(buf + S_SESSION_HDR, rec->device, dlen);
    s_put64(buf + S_SESSION_HDR + dlen, rec->since);
    return S_SESSION_HDR + dlen + 8;
}

static int
s_session_unpack(const MDB_val *val, broker_session_rec_t *rec)
{
    const uint8_t *p = val->mv_data;
    //  The login time (8 bytes after the device) came later: records
    //  without it read as since = 0.
    if (val->mv_size < S_SESSION_HDR || p[0] != S_REC_VERSION ||
        p[10] > PRES_DEVICE_MAX ||
        (val->mv_size != (size_t)S_SESSION_HDR + p[10] &&
         val->mv_size != (size_t)S_SESSION_HDR + p[10] + 8))
        return -1;
    rec->state = p[1];
    rec->last_hb = s_get64(p + 2);
    memcpy(rec->device, p + S_SESSION_HDR, p[10]);
    rec->device[p[10]] = 0;
    rec->since = val->mv_size == (size_t)S_SESSION_HDR + p[10] + 8
                     ? s_get64(p + S_SESSION_HDR + p[10])
                     : 0;
    return 0;
}

//  user \0 session
static size_t
s_session_key(const char *user, const char *session, uint8_t *key)
{
    size_t ulen = strlen(user), slen = strlen(session);
    assert(ulen <= PRES_ID_MAX && slen <= PRES_ID_MAX);
    memcpy(key, user, ulen);
    key[ulen] = 0;
    memcpy(key + ulen + 1, session, slen);
    return ulen + 1 + slen;
}

//  ---- reads

static int
s_get(broker_store_t *self, MDB_dbi dbi, const void *key, size_t klen,
      MDB_val *val, const char *what)
{
    MDB_val k = {klen, (void *)(uintptr_t)key};
    int rc = mdb_get(s_txn(self), dbi, &k, val);
    if (rc == MDB_NOTFOUND)
        return BROKER_STORE_NOTFOUND;
    if (rc) {
        pres_log_error("mdb_get(%s) failed: %s", what, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

int
broker_store_get_user(broker_store_t *self, const char *user, size_t len,
                      broker_user_rec_t *rec)
{
    MDB_val val;
    int rc = s_get(self, self->users, user, len, &val, "users");
    if (rc)
        return rc;
    if (s_user_unpack(&val, rec)) {
        pres_log_error("corrupt user record for %.*s", (int)len, user);
        return -1;
    }
    return 0;
}

int
broker_store_get_session(broker_store_t *self, const char *user,
                         const char *session, broker_session_rec_t *rec)
{
    uint8_t key[S_KEY_MAX];
    size_t klen = s_session_key(user, session, key);
    MDB_val val;
    int rc = s_get(self, self->sessions, key, klen, &val, "sessions");
    if (rc)
        return rc;
    if (s_session_unpack(&val, rec)) {
        pres_log_error("corrupt session record for %s", user);
        return -1;
    }
    return 0;
}

int
broker_store_get_meta(broker_store_t *self, broker_meta_t *meta)
{
    memset(meta, 0, sizeof(*meta));
    MDB_val val;
    int rc = s_get(self, self->meta, "meta", 4, &val, "meta");
    if (rc == BROKER_STORE_NOTFOUND)
        return 0;
    if (rc)
        return -1;
    const uint8_t *p = val.mv_data;
    //  Fields were appended over time (audits): a shorter record leaves
    //  the newer counters at 0.
    size_t n = sizeof(*meta) / 8;
    if (val.mv_size < 1 + 8 || val.mv_size > 1 + n * 8 ||
        (val.mv_size - 1) % 8 || p[0] != S_REC_VERSION) {
        pres_log_error("corrupt meta record (%zu bytes)", val.mv_size);
        return -1;
    }
    n = (val.mv_size - 1) / 8;
    uint64_t *fields = (uint64_t *)meta;
    for (size_t i = 0; i < n; i++)
        fields[i] = s_get64(p + 1 + i * 8);
    return 0;
}

//  Visit one record: 0 = go on, > 0 = stop (done), < 0 = stop (error).
typedef int(s_visit_fn)(const MDB_val *key, const MDB_val *val, void *ctx);

//  Walk dbi in key order from the first key >= start (NULL: from the
//  first key), calling visit for each record. 0, or -1 when visit or LMDB
//  failed (logged).
static int
s_walk(broker_store_t *self, MDB_dbi dbi, const char *what,
       const MDB_val *start, s_visit_fn *visit, void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s_txn(self), dbi, &cur);
    if (rc) {
        pres_log_error("mdb_cursor_open(%s) failed: %s", what,
                       mdb_strerror(rc));
        return -1;
    }
    MDB_val k = start ? *start : (MDB_val){0, NULL}, v;
    int result = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, start ? MDB_SET_RANGE : MDB_FIRST);
         rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int cb = visit(&k, &v, ctx);
        if (cb) {
            result = cb < 0 ? -1 : 0;
            break;
        }
    }
    if (rc && rc != MDB_NOTFOUND) {
        pres_log_error("mdb_cursor_get(%s) failed: %s", what, mdb_strerror(rc));
        result = -1;
    }
    mdb_cursor_close(cur);
    return result;
}

typedef struct {
    broker_store_session_fn *fn;
    void *arg;
} s_session_walk_t;

static int
s_visit_session(const MDB_val *k, const MDB_val *v, void *ctx)
{
    s_session_walk_t *walk = ctx;
    const char *key = k->mv_data;
    const char *nul = memchr(key, 0, k->mv_size);
    broker_session_rec_t rec;
    if (!nul || s_session_unpack(v, &rec)) {
        pres_log_error("corrupt session record skipped");
        return 0;
    }
    size_t ulen = (size_t)(nul - key);
    return walk->fn(key, ulen, nul + 1, k->mv_size - ulen - 1, &rec, walk->arg);
}

int
broker_store_each_session(broker_store_t *self, broker_store_session_fn *fn,
                          void *arg)
{
    s_session_walk_t walk = {fn, arg};
    return s_walk(self, self->sessions, "sessions", NULL, s_visit_session,
                  &walk);
}

typedef struct {
    broker_store_pub_fn *fn;
    void *arg;
} s_pub_walk_t;

static int
s_visit_pub(const MDB_val *k, const MDB_val *v, void *ctx)
{
    s_pub_walk_t *walk = ctx;
    if (v->mv_size != 16 || k->mv_size > PRES_ID_MAX)
        return 0;
    const uint8_t *p = v->mv_data;
    return walk->fn(k->mv_data, k->mv_size, s_get64(p), s_get64(p + 8),
                    walk->arg);
}

int
broker_store_each_pub(broker_store_t *self, broker_store_pub_fn *fn, void *arg)
{
    s_pub_walk_t walk = {fn, arg};
    return s_walk(self, self->pubs, "pubs", NULL, s_visit_pub, &walk);
}

typedef struct {
    broker_store_user_fn *fn;
    void *arg;
    bool indexed;        //  walking the by-state index
    uint8_t state;       //  its state prefix
    const char *cursor;  //  list cursor: start strictly after it
    size_t clen;
} s_user_walk_t;

static int
s_visit_user(const MDB_val *k, const MDB_val *v, void *ctx)
{
    (void)v;
    s_user_walk_t *walk = ctx;
    const uint8_t *key = k->mv_data;
    size_t pre = walk->indexed ? 1 : 0;
    if (walk->indexed && (k->mv_size < 1 || key[0] != walk->state))
        return 1;  //  past this state's keys
    size_t ulen = k->mv_size - pre;
    //  Strictly after the cursor: skip the cursor itself.
    if (walk->clen && ulen == walk->clen &&
        memcmp(key + pre, walk->cursor, walk->clen) == 0)
        return 0;
    return walk->fn((const char *)key + pre, ulen, walk->arg);
}

int
broker_store_each_user(broker_store_t *self, bool by_state, pres_state_t state,
                       const char *cursor, broker_store_user_fn *fn, void *arg)
{
    s_user_walk_t walk = {fn,     arg,           false, (uint8_t)state,
                          cursor, strlen(cursor)};
    walk.indexed = by_state && (state == PRES_ONLINE || state == PRES_AWAY);
    assert(walk.clen <= PRES_ID_MAX);
    size_t pre = walk.indexed ? 1 : 0;
    uint8_t start[1 + PRES_ID_MAX];
    start[0] = (uint8_t)state;
    memcpy(start + pre, cursor, walk.clen);
    MDB_val from = {pre + walk.clen, start};
    return s_walk(self, walk.indexed ? self->bystate : self->users,
                  walk.indexed ? "bystate" : "users",
                  from.mv_size ? &from : NULL, s_visit_user, &walk);
}

//  ---- writes

static int
s_put(broker_store_t *self, MDB_dbi dbi, const void *key, size_t klen,
      const void *val, size_t vlen, const char *what)
{
    assert(self->wtxn);
    MDB_val k = {klen, (void *)(uintptr_t)key};
    MDB_val v = {vlen, (void *)(uintptr_t)val};
    int rc = mdb_put(self->wtxn, dbi, &k, &v, 0);
    if (rc == MDB_MAP_FULL) {
        self->full = true;
        return -1;
    }
    if (rc) {
        pres_log_limited(&self->rl, 1000, "mdb_put(%s) failed: %s", what,
                         mdb_strerror(rc));
        return -1;
    }
    self->puts++;
    return 0;
}

static int
s_del(broker_store_t *self, MDB_dbi dbi, const void *key, size_t klen,
      const char *what)
{
    assert(self->wtxn);
    MDB_val k = {klen, (void *)(uintptr_t)key};
    int rc = mdb_del(self->wtxn, dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == MDB_MAP_FULL) {
        self->full = true;
        return -1;
    }
    if (rc) {
        pres_log_error("mdb_del(%s) failed: %s", what, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

int
broker_store_put_user(broker_store_t *self, const char *user, size_t len,
                      const broker_user_rec_t *rec)
{
    uint8_t buf[S_USER_HDR + PRES_REASON_MAX];
    size_t vlen = s_user_pack(rec, buf);
    return s_put(self, self->users, user, len, buf, vlen, "users");
}

int
broker_store_put_session(broker_store_t *self, const char *user,
                         const char *session, const broker_session_rec_t *rec)
{
    uint8_t key[S_KEY_MAX], buf[S_SESSION_HDR + PRES_DEVICE_MAX + 8];
    size_t klen = s_session_key(user, session, key);
    size_t vlen = s_session_pack(rec, buf);
    return s_put(self, self->sessions, key, klen, buf, vlen, "sessions");
}

int
broker_store_del_session(broker_store_t *self, const char *user,
                         const char *session)
{
    uint8_t key[S_KEY_MAX];
    size_t klen = s_session_key(user, session, key);
    return s_del(self, self->sessions, key, klen, "sessions");
}

int
broker_store_set_state(broker_store_t *self, const char *user, size_t len,
                       pres_state_t from, pres_state_t to)
{
    if (from == to)
        return 0;
    uint8_t key[1 + PRES_ID_MAX];
    memcpy(key + 1, user, len);
    if (from != PRES_OFFLINE) {
        key[0] = (uint8_t)from;
        if (s_del(self, self->bystate, key, 1 + len, "bystate"))
            return -1;
    }
    if (to != PRES_OFFLINE) {
        key[0] = (uint8_t)to;
        if (s_put(self, self->bystate, key, 1 + len, "", 0, "bystate"))
            return -1;
    }
    return 0;
}

int
broker_store_put_pub(broker_store_t *self, const char *src, uint64_t last_seq,
                     uint64_t lost)
{
    uint8_t buf[16];
    s_put64(buf, last_seq);
    s_put64(buf + 8, lost);
    return s_put(self, self->pubs, src, strlen(src), buf, 16, "pubs");
}

int
broker_store_del_pub(broker_store_t *self, const char *src)
{
    return s_del(self, self->pubs, src, strlen(src), "pubs");
}

int
broker_store_put_meta(broker_store_t *self, const broker_meta_t *meta)
{
    size_t n = sizeof(*meta) / 8;
    uint8_t buf[1 + sizeof(*meta)];
    const uint64_t *fields = (const uint64_t *)meta;
    buf[0] = S_REC_VERSION;
    for (size_t i = 0; i < n; i++)
        s_put64(buf + 1 + i * 8, fields[i]);
    return s_put(self, self->meta, "meta", 4, buf, 1 + n * 8, "meta");
}

//  Double the map. Only legal with no txn open in this process, so the
//  (reset) read txn is dropped too.
static int
s_grow(broker_store_t *self)
{
    assert(!self->wtxn && !self->rtxn_live);
    if (self->rtxn) {
        mdb_txn_abort(self->rtxn);
        self->rtxn = NULL;
    }
    size_t size = self->map_size * 2;
    int rc = mdb_env_set_mapsize(self->env, size);
    if (rc) {
        pres_log_error("mdb_env_set_mapsize(%zu) failed: %s", size,
                       mdb_strerror(rc));
        return -1;
    }
    pres_log_info("LMDB map full: grown to %zu MiB", size >> 20);
    self->map_size = size;
    return 0;
}

int
broker_store_write(broker_store_t *self, bool sync, broker_store_fill_fn *fill,
                   void *arg)
{
    assert(!self->wtxn);
    bool had_read = self->rtxn_live;
    broker_store_read_end(self);
    for (int attempt = 0; attempt <= S_GROW_MAX; attempt++) {
        self->full = false;
        int rc = mdb_txn_begin(self->env, NULL, 0, &self->wtxn);
        if (rc) {
            pres_log_error("mdb_txn_begin() failed: %s", mdb_strerror(rc));
            self->wtxn = NULL;
            return -1;
        }
        if (fill(self, arg)) {
            mdb_txn_abort(self->wtxn);
            self->wtxn = NULL;
            if (self->full && s_grow(self) == 0)
                continue;
            return -1;
        }
        rc = mdb_txn_commit(self->wtxn);
        self->wtxn = NULL;
        if (rc == MDB_MAP_FULL) {
            if (s_grow(self))
                return -1;
            continue;
        }
        if (rc) {
            pres_log_limited(&self->rl, 1000, "mdb_txn_commit() failed: %s",
                             mdb_strerror(rc));
            return -1;
        }
        self->commits++;
        if (sync && (rc = mdb_env_sync(self->env, 1))) {
            pres_log_limited(&self->rl, 1000, "mdb_env_sync() failed: %s",
                             mdb_strerror(rc));
            return -1;
        }
        if (sync)
            __atomic_fetch_add(&self->syncs, 1, __ATOMIC_RELAXED);
        if (had_read)
            return broker_store_read_begin(self);
        return 0;
    }
    pres_log_error("LMDB map still full after %d doublings", S_GROW_MAX);
    return -1;
}

int
broker_store_sync(broker_store_t *self)
{
    //  fdatasync of the data file: LMDB takes no lock for it, and the env
    //  stays open while the broker runs (the owner joins this thread
    //  before broker_store_destroy).
    int rc = mdb_env_sync(self->env, 1);
    if (rc) {
        pres_log_error("mdb_env_sync() failed: %s", mdb_strerror(rc));
        return -1;
    }
    __atomic_fetch_add(&self->syncs, 1, __ATOMIC_RELAXED);
    return 0;
}

//  ---- change log, history, audit, series

int
broker_store_first_change(broker_store_t *self, uint64_t *seq)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s_txn(self), self->changes, &cur);
    if (rc) {
        pres_log_error("mdb_cursor_open(changes) failed: %s", mdb_strerror(rc));
        return -1;
    }
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return BROKER_STORE_NOTFOUND;
    if (rc || k.mv_size != 8) {
        pres_log_error("mdb_cursor_get(changes) failed: %s",
                       rc ? mdb_strerror(rc) : "bad key");
        return -1;
    }
    *seq = pres_be64_get(k.mv_data);
    return 0;
}

typedef struct {
    broker_store_change_fn *fn;
    void *arg;
} s_change_walk_t;

static int
s_visit_change(const MDB_val *k, const MDB_val *v, void *ctx)
{
    s_change_walk_t *walk = ctx;
    if (k->mv_size != 8)
        return 0;
    return walk->fn(pres_be64_get(k->mv_data), v->mv_data, v->mv_size,
                    walk->arg);
}

int
broker_store_each_change(broker_store_t *self, uint64_t from,
                         broker_store_change_fn *fn, void *arg)
{
    uint8_t key[8];
    pres_be64_put(key, from);
    MDB_val start = {8, key};
    s_change_walk_t walk = {fn, arg};
    return s_walk(self, self->changes, "changes", &start, s_visit_change,
                  &walk);
}

//  user \0 be64(n): per-user keys, ascending n; callers pass ~seq or ~n so
//  the newest sorts first.
static size_t
s_user_key(const char *user, uint64_t n, uint8_t *key)
{
    size_t ulen = strlen(user);
    assert(ulen <= PRES_ID_MAX);
    memcpy(key, user, ulen);
    key[ulen] = 0;
    pres_be64_put(key + ulen + 1, n);
    return ulen + 9;
}

//  True if key k belongs to the user whose prefix (user \0) is pre[0..plen).
static bool
s_same_user(const MDB_val *k, const uint8_t *pre, size_t plen)
{
    return k->mv_size == plen + 8 && memcmp(k->mv_data, pre, plen) == 0;
}

typedef struct {
    const uint8_t *pre;  //  user \0
    size_t plen;
    broker_store_hist_fn *hist;
    broker_store_audit_fn *audit;
    void *arg;
} s_peruser_walk_t;

#define S_HIST_LEN 12  //  ver state prev reason at(8)

static int
s_visit_hist(const MDB_val *k, const MDB_val *v, void *ctx)
{
    s_peruser_walk_t *walk = ctx;
    if (!s_same_user(k, walk->pre, walk->plen))
        return 1;
    const uint8_t *p = v->mv_data;
    if (v->mv_size != S_HIST_LEN || p[0] != S_REC_VERSION)
        return 0;
    broker_hist_rec_t rec = {
        .seq = ~pres_be64_get((const uint8_t *)k->mv_data + walk->plen),
        .state = p[1],
        .prev = p[2],
        .reason = p[3],
        .at = s_get64(p + 4),
    };
    return walk->hist(&rec, walk->arg);
}

int
broker_store_each_history(broker_store_t *self, const char *user,
                          broker_store_hist_fn *fn, void *arg)
{
    uint8_t key[S_KEY_MAX];
    size_t klen = s_user_key(user, 0, key);
    MDB_val start = {klen, key};
    s_peruser_walk_t walk = {key, klen - 8, fn, NULL, arg};
    return s_walk(self, self->history, "history", &start, s_visit_hist, &walk);
}

#define S_AUDIT_HDR 12  //  ver old new by_len at(8)

static int
s_visit_audit(const MDB_val *k, const MDB_val *v, void *ctx)
{
    s_peruser_walk_t *walk = ctx;
    if (!s_same_user(k, walk->pre, walk->plen))
        return 1;
    const uint8_t *p = v->mv_data;
    if (v->mv_size < S_AUDIT_HDR || p[0] != S_REC_VERSION ||
        p[3] > PRES_ID_MAX || v->mv_size - S_AUDIT_HDR < p[3] ||
        v->mv_size - S_AUDIT_HDR - p[3] > PRES_REASON_MAX)
        return 0;
    broker_audit_rec_t rec = {
        .old = p[1], .status = p[2], .at = s_get64(p + 4)};
    memcpy(rec.by, p + S_AUDIT_HDR, p[3]);
    rec.by[p[3]] = 0;
    size_t rlen = v->mv_size - S_AUDIT_HDR - p[3];
    memcpy(rec.reason, p + S_AUDIT_HDR + p[3], rlen);
    rec.reason[rlen] = 0;
    return walk->audit(&rec, walk->arg);
}

int
broker_store_each_audit(broker_store_t *self, const char *user,
                        broker_store_audit_fn *fn, void *arg)
{
    uint8_t key[S_KEY_MAX];
    size_t klen = s_user_key(user, 0, key);
    MDB_val start = {klen, key};
    s_peruser_walk_t walk = {key, klen - 8, NULL, fn, arg};
    return s_walk(self, self->audit, "audit", &start, s_visit_audit, &walk);
}

typedef struct {
    broker_store_point_fn *fn;
    void *arg;
} s_point_walk_t;

static int
s_visit_point(const MDB_val *k, const MDB_val *v, void *ctx)
{
    s_point_walk_t *walk = ctx;
    const uint8_t *p = v->mv_data;
    if (k->mv_size != 8 || v->mv_size != 17 || p[0] != S_REC_VERSION)
        return 0;
    return walk->fn(pres_be64_get(k->mv_data), s_get64(p + 1), s_get64(p + 9),
                    walk->arg);
}

int
broker_store_each_point(broker_store_t *self, uint64_t from,
                        broker_store_point_fn *fn, void *arg)
{
    uint8_t key[8];
    pres_be64_put(key, from);
    MDB_val start = {8, key};
    s_point_walk_t walk = {fn, arg};
    return s_walk(self, self->series, "series", &start, s_visit_point, &walk);
}

int
broker_store_put_change(broker_store_t *self, uint64_t seq, const void *body,
                        size_t len)
{
    assert(self->wtxn);
    uint8_t key[8];
    pres_be64_put(key, seq);
    MDB_val k = {8, key}, v = {len, (void *)(uintptr_t)body};
    //  Seqs only grow: MDB_APPEND fills pages sequentially (no search, no
    //  split in the middle of the tree).
    int rc = mdb_put(self->wtxn, self->changes, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST)  //  not above the last key (cannot happen)
        rc = mdb_put(self->wtxn, self->changes, &k, &v, 0);
    if (rc == MDB_MAP_FULL) {
        self->full = true;
        return -1;
    }
    if (rc) {
        pres_log_error("mdb_put(changes) failed: %s", mdb_strerror(rc));
        return -1;
    }
    return 0;
}

//  Delete, from the cursor's current record on, records while more(k)
//  says so, at most max of them. Each key is copied, deleted with mdb_del
//  and the cursor placed again on the next key (no reliance on cursor
//  state after a delete). 0 or -1.
static int
s_cursor_trim(broker_store_t *self, MDB_dbi dbi, MDB_cursor *cur, MDB_val *k,
              MDB_val *v, int rc,
              bool (*more)(const MDB_val *k, const void *ctx), const void *ctx,
              size_t max, const char *what)
{
    uint8_t key[S_KEY_MAX];
    for (size_t n = 0; rc == 0 && n < max && more(k, ctx); n++) {
        if (k->mv_size > sizeof(key)) {
            rc = EINVAL;
            break;
        }
        memcpy(key, k->mv_data, k->mv_size);
        MDB_val del = {k->mv_size, key};
        if ((rc = mdb_del(self->wtxn, dbi, &del, NULL)))
            break;
        *k = del;
        rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == MDB_MAP_FULL)
        self->full = true;
    else if (rc)
        pres_log_error("trimming %s failed: %s", what, mdb_strerror(rc));
    return rc ? -1 : 0;
}

static bool
s_below(const MDB_val *k, const void *ctx)
{
    return k->mv_size == 8 &&
           pres_be64_get(k->mv_data) < *(const uint64_t *)ctx;
}

static int
s_trim_front(broker_store_t *self, MDB_dbi dbi, uint64_t below, size_t max,
             const char *what)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->wtxn, dbi, &cur);
    if (rc) {
        pres_log_error("mdb_cursor_open(%s) failed: %s", what,
                       mdb_strerror(rc));
        return -1;
    }
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    rc = s_cursor_trim(self, dbi, cur, &k, &v, rc, s_below, &below, max, what);
    mdb_cursor_close(cur);
    return rc;
}

int
broker_store_trim_changes(broker_store_t *self, uint64_t below, size_t max)
{
    assert(self->wtxn);
    return s_trim_front(self, self->changes, below, max, "changes");
}

typedef struct {
    const uint8_t *pre;
    size_t plen;
} s_prefix_t;

static bool
s_in_prefix(const MDB_val *k, const void *ctx)
{
    const s_prefix_t *p = ctx;
    return s_same_user(k, p->pre, p->plen);
}

int
broker_store_put_history(broker_store_t *self, const char *user,
                         const broker_hist_rec_t *rec)
{
    uint8_t key[S_KEY_MAX], val[S_HIST_LEN];
    size_t klen = s_user_key(user, ~rec->seq, key);
    val[0] = S_REC_VERSION;
    val[1] = rec->state;
    val[2] = rec->prev;
    val[3] = rec->reason;
    s_put64(val + 4, rec->at);
    if (s_put(self, self->history, key, klen, val, S_HIST_LEN, "history"))
        return -1;
    //  The new entry sorts first among the user's; step over the ones to
    //  keep and delete the rest (normally one).
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->wtxn, self->history, &cur);
    if (rc) {
        pres_log_error("mdb_cursor_open(history) failed: %s", mdb_strerror(rc));
        return -1;
    }
    s_prefix_t pre = {key, klen - 8};
    MDB_val k = {klen, key}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (int n = 0; rc == 0 && n < BROKER_HISTORY_KEEP && s_in_prefix(&k, &pre);
         n++)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    rc = s_cursor_trim(self, self->history, cur, &k, &v, rc, s_in_prefix, &pre,
                       16, "history");
    mdb_cursor_close(cur);
    return rc;
}

int
broker_store_put_audit(broker_store_t *self, const char *user, uint64_t n,
                       const broker_audit_rec_t *rec)
{
    uint8_t key[S_KEY_MAX], val[S_AUDIT_HDR + PRES_ID_MAX + PRES_REASON_MAX];
    size_t klen = s_user_key(user, ~n, key);
    size_t blen = strlen(rec->by), rlen = strlen(rec->reason);
    assert(blen <= PRES_ID_MAX && rlen <= PRES_REASON_MAX);
    val[0] = S_REC_VERSION;
    val[1] = rec->old;
    val[2] = rec->status;
    val[3] = (uint8_t)blen;
    s_put64(val + 4, rec->at);
    memcpy(val + S_AUDIT_HDR, rec->by, blen);
    memcpy(val + S_AUDIT_HDR + blen, rec->reason, rlen);
    return s_put(self, self->audit, key, klen, val, S_AUDIT_HDR + blen + rlen,
                 "audit");
}

int
broker_store_put_point(broker_store_t *self, uint64_t minute, uint64_t online,
                       uint64_t away)
{
    uint8_t key[8], val[17];
    pres_be64_put(key, minute);
    val[0] = S_REC_VERSION;
    s_put64(val + 1, online);
    s_put64(val + 9, away);
    if (s_put(self, self->series, key, 8, val, 17, "series"))
        return -1;
    uint64_t span = (uint64_t)BROKER_SERIES_KEEP * 60000;
    if (minute < span)
        return 0;
    return s_trim_front(self, self->series, minute - span + 60000, 16,
                        "series");
}

int
broker_store_release(broker_store_t *self)
{
    assert(self);
    //  mdb_env_info's me_mapaddr is set only with MDB_FIXEDMAP: find the
    //  map of the data file in /proc/self/maps by its inode instead (the
    //  map moves when it grows). The env is opened without MDB_WRITEMAP
    //  (broker_store_new), so the map is read-only and never dirty.
    unsigned flags = 0;
    int fd = -1;
    struct stat st;
    if (mdb_env_get_flags(self->env, &flags) || (flags & MDB_WRITEMAP) ||
        mdb_env_get_fd(self->env, &fd) || fstat(fd, &st))
        return 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) {
        pres_log_error("fopen(/proc/self/maps) failed: %s", strerror(errno));
        return -1;
    }
    int rc = 0;
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, ino;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &lo, &hi, perms, &ino) !=
                4 ||
            ino != (unsigned long)st.st_ino || perms[1] == 'w')
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED)) {
            pres_log_error("madvise(MADV_DONTNEED) of the LMDB map failed: %s",
                           strerror(errno));
            rc = -1;
        }
    }
    fclose(maps);
    return rc;
}
