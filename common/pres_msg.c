/*  pres_msg: strict codec for the bus messages of docs/protocol.md section 4.
    Every decoder reads one map of known keys into a field table, then
    checks the per-type required and allowed sets: exact types, no
    duplicate, unknown or missing keys, ids and texts validated. */
#include "pres_msg.h"
#include "pres_mp.h"
#include "pres_mpw.h"

#include <stdio.h>
#include <string.h>

static const char *const s_ev_names[] = {NULL,     "login",  "heartbeat",
                                         "logout", "expire", "account"};
static const char *const s_state_names[] = {"offline", "online", "away"};
static const char *const s_account_names[] = {"active", "pending", "inactive",
                                              "suspended", "banned"};
static const char *const s_reason_names[] = {"login",    "heartbeat", "logout",
                                             "timeout",  "account",   "pending",
                                             "inactive", "suspended", "banned"};
static const char *const s_op_names[] = {
    NULL,       "get",     "list",          "stats",
    "snapshot", "account", "changes_since", "get_many",
    "audit",    "history", "series"};

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int
s_lookup(const char *const *names, size_t count, const char *s, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (names[i] && strlen(names[i]) == len &&
            memcmp(names[i], s, len) == 0)
            return (int)i;
    return -1;
}

#define S_NAME_FNS(fn, type_t, names)                                          \
    const char *fn##_name(type_t v)                                            \
    {                                                                          \
        return (size_t)v < S_COUNT(names) && names[v] ? names[v] : "?";        \
    }                                                                          \
    int fn##_parse(const char *s, size_t len, type_t *v)                       \
    {                                                                          \
        int i = s_lookup(names, S_COUNT(names), s, len);                       \
        if (i < 0)                                                             \
            return -1;                                                         \
        *v = (type_t)i;                                                        \
        return 0;                                                              \
    }

S_NAME_FNS(pres_ev_type, pres_ev_type_t, s_ev_names)
S_NAME_FNS(pres_state, pres_state_t, s_state_names)
S_NAME_FNS(pres_account, pres_account_t, s_account_names)
S_NAME_FNS(pres_reason, pres_reason_t, s_reason_names)

const char *
pres_query_op_name(pres_query_op_t op)
{
    return (size_t)op < S_COUNT(s_op_names) && s_op_names[op] ? s_op_names[op]
                                                              : "?";
}

bool
pres_id_valid(const char *s, size_t len)
{
    if (len < 1 || len > PRES_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
              c == ':' || c == '-'))
            return false;
    }
    return true;
}

//  Free text (device, reason): valid UTF-8 with no control characters.
static bool
s_text_valid(const char *s, size_t len, size_t max)
{
    if (len > max)
        return false;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        size_t extra;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            extra = 1;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3;
        else
            return false;
        if ((size_t)(end - p) <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++)
            if ((p[k] & 0xc0) != 0x80)
                return false;
        //  Overlong three/four byte forms and surrogates.
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
            (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
            return false;
        p += extra + 1;
    }
    return true;
}

//  ---------------------------------------------------------------------
//  The field table shared by all message kinds.

typedef enum {
    F_V,
    F_TYPE,
    F_USER,
    F_AT,
    F_SRC,
    F_SEQ,
    F_SESSION,
    F_DEVICE,
    F_STATE,
    F_DEADLINE,
    F_STATUS,
    F_REASON,
    F_PREV,
    F_SESSIONS,
    F_ACCOUNT,
    F_OP,
    F_CURSOR,
    F_LIMIT,
    F_USERS,
    F_MINUTES,
    F_BY,
    F_TERM,
    F_UNTIL,
    F_COUNT
} s_field_t;

static const char *const s_keys[F_COUNT] = {
    "v",       "type",     "user",    "at",       "src",    "seq",
    "session", "device",   "state",   "deadline", "status", "reason",
    "prev",    "sessions", "account", "op",       "cursor", "limit",
    "users",   "minutes",  "by",      "term",     "until"};

//  Which fields are strings (the rest are unsigned integers).
#define S_STR_FIELDS                                                           \
    ((1u << F_TYPE) | (1u << F_USER) | (1u << F_SRC) | (1u << F_SESSION) |     \
     (1u << F_DEVICE) | (1u << F_STATE) | (1u << F_STATUS) |                   \
     (1u << F_REASON) | (1u << F_PREV) | (1u << F_ACCOUNT) | (1u << F_OP) |    \
     (1u << F_CURSOR) | (1u << F_BY))

#define B(f) (1u << (f))

typedef struct {
    uint32_t present;          //  bit per field seen
    uint64_t num[F_COUNT];     //  integer fields
    const char *str[F_COUNT];  //  string fields, into the frame
    uint32_t len[F_COUNT];
    uint32_t nusers;       //  F_USERS: element count
    const uint8_t *users;  //  F_USERS: first element, into the frame
    size_t users_len;      //  F_USERS: bytes of the elements
} s_fields_t;

//  F_USERS: an array of 1..PRES_MANY_MAX valid ids.
static int
s_read_users(s_fields_t *f, pres_mp_reader_t *r, const char **why)
{
    uint32_t n;
    if (pres_mp_read_array(r, &n) != 0) {
        *why = "bad_type";
        return -1;
    }
    if (n < 1 || n > PRES_MANY_MAX) {
        *why = "users: 1 to 1000 ids";
        return -1;
    }
    f->nusers = n;
    f->users = r->p;
    for (uint32_t i = 0; i < n; i++) {
        const char *id;
        uint32_t idlen;
        if (pres_mp_read_str(r, &id, &idlen) != 0 ||
            !pres_id_valid(id, idlen)) {
            *why = "bad user";
            return -1;
        }
    }
    f->users_len = (size_t)(r->p - f->users);
    return 0;
}

//  Read the top-level map (at most max bytes) into f, allowing only keys
//  in `allowed`.
static int
s_read_fields(s_fields_t *f, const void *buf, size_t len, size_t max,
              uint32_t allowed, const char **why)
{
    if (len > max) {
        *why = "too_big";
        return -1;
    }
    pres_mp_reader_t r;
    pres_mp_reader_init(&r, buf, len);
    uint32_t n;
    if (pres_mp_read_map(&r, &n) != 0) {
        *why = "not_map";
        return -1;
    }
    f->present = 0;
    f->nusers = 0;
    f->users = NULL;
    f->users_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *key;
        uint32_t klen;
        if (pres_mp_read_str(&r, &key, &klen) != 0) {
            *why = "bad_key";
            return -1;
        }
        int k = s_lookup(s_keys, F_COUNT, key, klen);
        if (k < 0 || !(allowed & B(k))) {
            *why = "unknown_field";
            return -1;
        }
        if (f->present & B(k)) {
            *why = "duplicate_field";
            return -1;
        }
        f->present |= B(k);
        if (k == F_USERS) {
            if (s_read_users(f, &r, why) != 0)
                return -1;
            continue;
        }
        int rc = (S_STR_FIELDS & B(k))
                     ? pres_mp_read_str(&r, &f->str[k], &f->len[k])
                     : pres_mp_read_uint(&r, &f->num[k]);
        if (rc != 0) {
            *why = "bad_type";
            return -1;
        }
    }
    if (!pres_mp_at_end(&r)) {
        *why = "trailing_bytes";
        return -1;
    }
    return 0;
}

static int
s_check(const s_fields_t *f, uint32_t required, uint32_t allowed,
        const char **why)
{
    if ((f->present & required) != required) {
        *why = "missing_field";
        return -1;
    }
    if (f->present & ~allowed) {
        *why = "unknown_field";
        return -1;
    }
    return 0;
}

//  Copy an id field into dst (PRES_ID_MAX + 1 bytes). "" when absent.
static int
s_take_id(const s_fields_t *f, s_field_t k, char *dst)
{
    dst[0] = '\0';
    if (!(f->present & B(k)))
        return 0;
    if (!pres_id_valid(f->str[k], f->len[k]))
        return -1;
    memcpy(dst, f->str[k], f->len[k]);
    dst[f->len[k]] = '\0';
    return 0;
}

static int
s_take_text(const s_fields_t *f, s_field_t k, char *dst, size_t max)
{
    dst[0] = '\0';
    if (!(f->present & B(k)))
        return 0;
    if (!s_text_valid(f->str[k], f->len[k], max))
        return -1;
    memcpy(dst, f->str[k], f->len[k]);
    dst[f->len[k]] = '\0';
    return 0;
}

static int
s_check_version(const s_fields_t *f, const char **why)
{
    if (f->num[F_V] != PRES_MSG_VERSION) {
        *why = "bad_version";
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Events

#define S_EV_BASE                                                              \
    (B(F_V) | B(F_TYPE) | B(F_USER) | B(F_AT) | B(F_SRC) | B(F_SEQ))

static const struct {
    uint32_t required, allowed;
} s_ev_rules[] = {
    [PRES_EV_LOGIN] = {S_EV_BASE | B(F_SESSION),
                       S_EV_BASE | B(F_SESSION) | B(F_DEVICE)},
    [PRES_EV_HEARTBEAT] = {S_EV_BASE | B(F_SESSION),
                           S_EV_BASE | B(F_SESSION) | B(F_STATE)},
    [PRES_EV_LOGOUT] = {S_EV_BASE, S_EV_BASE | B(F_SESSION)},
    [PRES_EV_EXPIRE] = {S_EV_BASE | B(F_SESSION) | B(F_DEADLINE),
                        S_EV_BASE | B(F_SESSION) | B(F_DEADLINE)},
    [PRES_EV_ACCOUNT] = {S_EV_BASE | B(F_STATUS),
                         S_EV_BASE | B(F_STATUS) | B(F_REASON)},
};

#define S_EV_ALL                                                               \
    (S_EV_BASE | B(F_SESSION) | B(F_DEVICE) | B(F_STATE) | B(F_DEADLINE) |     \
     B(F_STATUS) | B(F_REASON))

int
pres_event_decode(pres_event_t *ev, const char *topic, size_t topic_len,
                  const void *buf, size_t len, const char **why)
{
    s_fields_t f;
    if (s_read_fields(&f, buf, len, PRES_MSG_MAX, S_EV_ALL, why) != 0)
        return -1;
    if (!(f.present & B(F_TYPE)) ||
        pres_ev_type_parse(f.str[F_TYPE], f.len[F_TYPE], &ev->type) != 0) {
        *why = (f.present & B(F_TYPE)) ? "unknown_type" : "missing_field";
        return -1;
    }
    if (topic && (topic_len != f.len[F_TYPE] ||
                  memcmp(topic, f.str[F_TYPE], topic_len) != 0)) {
        *why = "topic_mismatch";
        return -1;
    }
    if (s_check(&f, s_ev_rules[ev->type].required, s_ev_rules[ev->type].allowed,
                why) != 0 ||
        s_check_version(&f, why) != 0)
        return -1;
    if (s_take_id(&f, F_USER, ev->user) != 0) {
        *why = "bad_user";
        return -1;
    }
    if (s_take_id(&f, F_SRC, ev->src) != 0 ||
        s_take_id(&f, F_SESSION, ev->session) != 0 ||
        s_take_text(&f, F_DEVICE, ev->device, PRES_DEVICE_MAX) != 0 ||
        s_take_text(&f, F_REASON, ev->reason, PRES_REASON_MAX) != 0) {
        *why = "bad_field";
        return -1;
    }
    if (f.num[F_SEQ] == 0) {
        *why = "bad_seq";
        return -1;
    }
    ev->at = f.num[F_AT];
    ev->seq = f.num[F_SEQ];
    ev->deadline = (f.present & B(F_DEADLINE)) ? f.num[F_DEADLINE] : 0;
    ev->has_state = (f.present & B(F_STATE)) != 0;
    ev->state = PRES_ONLINE;
    if (ev->has_state &&
        (pres_state_parse(f.str[F_STATE], f.len[F_STATE], &ev->state) != 0 ||
         ev->state == PRES_OFFLINE)) {
        *why = "bad_state";
        return -1;
    }
    ev->status = PRES_ACC_ACTIVE;
    if ((f.present & B(F_STATUS)) &&
        pres_account_parse(f.str[F_STATUS], f.len[F_STATUS], &ev->status) !=
            0) {
        *why = "bad_status";
        return -1;
    }
    return 0;
}

static bool
s_event_valid(const pres_event_t *ev)
{
    if (ev->type < PRES_EV_LOGIN || ev->type > PRES_EV_ACCOUNT)
        return false;
    if (!pres_id_valid(ev->user, strlen(ev->user)) ||
        !pres_id_valid(ev->src, strlen(ev->src)) || ev->seq == 0)
        return false;
    bool need_session = ev->type == PRES_EV_LOGIN ||
                        ev->type == PRES_EV_HEARTBEAT ||
                        ev->type == PRES_EV_EXPIRE;
    size_t slen = strlen(ev->session);
    if ((need_session || slen) && !pres_id_valid(ev->session, slen))
        return false;
    if (ev->type == PRES_EV_HEARTBEAT && ev->has_state &&
        ev->state == PRES_OFFLINE)
        return false;
    return s_text_valid(ev->device, strlen(ev->device), PRES_DEVICE_MAX) &&
           s_text_valid(ev->reason, strlen(ev->reason), PRES_REASON_MAX);
}

size_t
pres_event_encode(const pres_event_t *ev, void *buf, size_t cap)
{
    if (!s_event_valid(ev))
        return 0;
    bool has_session = ev->session[0] != '\0';
    bool has_device = ev->type == PRES_EV_LOGIN && ev->device[0];
    bool has_state = ev->type == PRES_EV_HEARTBEAT && ev->has_state;
    bool has_reason = ev->type == PRES_EV_ACCOUNT && ev->reason[0];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, cap);
    pres_mpw_map_t m;
    pres_mpw_map_begin_w(&m, &w);
    pres_mpw_kv_uint(&m, "v", PRES_MSG_VERSION);
    pres_mpw_kv_str(&m, "type", pres_ev_type_name(ev->type));
    pres_mpw_kv_str(&m, "user", ev->user);
    pres_mpw_kv_uint(&m, "at", ev->at);
    pres_mpw_kv_str(&m, "src", ev->src);
    pres_mpw_kv_uint(&m, "seq", ev->seq);
    if (ev->type != PRES_EV_ACCOUNT &&
        (ev->type != PRES_EV_LOGOUT || has_session))
        pres_mpw_kv_str(&m, "session", ev->session);
    if (has_device)
        pres_mpw_kv_str(&m, "device", ev->device);
    if (has_state)
        pres_mpw_kv_str(&m, "state", pres_state_name(ev->state));
    if (ev->type == PRES_EV_EXPIRE)
        pres_mpw_kv_uint(&m, "deadline", ev->deadline);
    if (ev->type == PRES_EV_ACCOUNT) {
        pres_mpw_kv_str(&m, "status", pres_account_name(ev->status));
        if (has_reason)
            pres_mpw_kv_str(&m, "reason", ev->reason);
    }
    return pres_mpw_map_end(&m) || w.overflow ? 0 : w.len;
}

//  ---------------------------------------------------------------------
//  Changes

static size_t
s_topic(const char *prefix, const char *user, char *topic)
{
    int n = snprintf(topic, PRES_TOPIC_MAX, "%s%s", prefix, user);
    return n < 0 ? 0 : (size_t)n;
}

size_t
pres_change_topic(const char *user, char *topic)
{
    return s_topic(PRES_CHANGE_PREFIX, user, topic);
}

#define S_CH_REQ                                                               \
    (B(F_V) | B(F_SEQ) | B(F_USER) | B(F_STATE) | B(F_PREV) | B(F_AT) |        \
     B(F_REASON) | B(F_SESSIONS) | B(F_ACCOUNT))
#define S_CH_ALL (S_CH_REQ | B(F_SESSION) | B(F_DEADLINE) | B(F_TERM))

size_t
pres_change_encode(const pres_change_t *ch, void *buf, size_t cap)
{
    if (!pres_id_valid(ch->user, strlen(ch->user)))
        return 0;
    bool has_session = ch->session[0] != '\0';
    bool has_deadline = ch->deadline != 0;
    bool has_term = ch->term != 0;
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, cap);
    pres_mpw_map_t m;
    pres_mpw_map_begin_w(&m, &w);
    pres_mpw_kv_uint(&m, "v", PRES_MSG_VERSION);
    pres_mpw_kv_uint(&m, "seq", ch->seq);
    pres_mpw_kv_str(&m, "user", ch->user);
    pres_mpw_kv_str(&m, "state", pres_state_name(ch->state));
    pres_mpw_kv_str(&m, "prev", pres_state_name(ch->prev));
    pres_mpw_kv_uint(&m, "at", ch->at);
    pres_mpw_kv_str(&m, "reason", pres_reason_name(ch->reason));
    pres_mpw_kv_uint(&m, "sessions", ch->sessions);
    pres_mpw_kv_str(&m, "account", pres_account_name(ch->account));
    if (has_session)
        pres_mpw_kv_str(&m, "session", ch->session);
    if (has_deadline)
        pres_mpw_kv_uint(&m, "deadline", ch->deadline);
    if (has_term)
        pres_mpw_kv_uint(&m, "term", ch->term);
    return pres_mpw_map_end(&m) || w.overflow ? 0 : w.len;
}

int
pres_change_decode(pres_change_t *ch, const void *buf, size_t len,
                   const char **why)
{
    s_fields_t f;
    if (s_read_fields(&f, buf, len, PRES_MSG_MAX, S_CH_ALL, why) != 0 ||
        s_check(&f, S_CH_REQ, S_CH_ALL, why) != 0 ||
        s_check_version(&f, why) != 0)
        return -1;
    if (s_take_id(&f, F_USER, ch->user) != 0 ||
        s_take_id(&f, F_SESSION, ch->session) != 0 ||
        pres_state_parse(f.str[F_STATE], f.len[F_STATE], &ch->state) != 0 ||
        pres_state_parse(f.str[F_PREV], f.len[F_PREV], &ch->prev) != 0 ||
        pres_reason_parse(f.str[F_REASON], f.len[F_REASON], &ch->reason) != 0 ||
        pres_account_parse(f.str[F_ACCOUNT], f.len[F_ACCOUNT], &ch->account) !=
            0 ||
        f.num[F_SESSIONS] > UINT32_MAX) {
        *why = "bad_field";
        return -1;
    }
    ch->seq = f.num[F_SEQ];
    ch->at = f.num[F_AT];
    ch->sessions = (uint32_t)f.num[F_SESSIONS];
    ch->deadline = (f.present & B(F_DEADLINE)) ? f.num[F_DEADLINE] : 0;
    ch->term = (f.present & B(F_TERM)) ? f.num[F_TERM] : 0;
    return 0;
}

//  ---------------------------------------------------------------------
//  Deadline notices

size_t
pres_deadline_topic(const char *user, char *topic)
{
    return s_topic(PRES_DEADLINE_PREFIX, user, topic);
}

#define S_DL_ALL (B(F_V) | B(F_TYPE) | B(F_USER) | B(F_SESSION) | B(F_DEADLINE))

size_t
pres_deadline_encode(const pres_deadline_t *dl, void *buf, size_t cap)
{
    if (!pres_id_valid(dl->user, strlen(dl->user)) ||
        !pres_id_valid(dl->session, strlen(dl->session)))
        return 0;
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, cap);
    pres_mpw_map_t m;
    pres_mpw_map_begin_w(&m, &w);
    pres_mpw_kv_uint(&m, "v", PRES_MSG_VERSION);
    pres_mpw_kv_str(&m, "type", "deadline");
    pres_mpw_kv_str(&m, "user", dl->user);
    pres_mpw_kv_str(&m, "session", dl->session);
    pres_mpw_kv_uint(&m, "deadline", dl->deadline);
    return pres_mpw_map_end(&m) || w.overflow ? 0 : w.len;
}

int
pres_deadline_decode(pres_deadline_t *dl, const void *buf, size_t len,
                     const char **why)
{
    s_fields_t f;
    if (s_read_fields(&f, buf, len, PRES_MSG_MAX, S_DL_ALL, why) != 0 ||
        s_check(&f, S_DL_ALL, S_DL_ALL, why) != 0 ||
        s_check_version(&f, why) != 0)
        return -1;
    if (f.len[F_TYPE] != 8 || memcmp(f.str[F_TYPE], "deadline", 8) != 0) {
        *why = "unknown_type";
        return -1;
    }
    if (s_take_id(&f, F_USER, dl->user) != 0 ||
        s_take_id(&f, F_SESSION, dl->session) != 0) {
        *why = "bad_field";
        return -1;
    }
    dl->deadline = f.num[F_DEADLINE];
    return 0;
}

//  ---------------------------------------------------------------------
//  Queries

static const struct {
    uint32_t required, allowed;
} s_q_rules[] = {
    [PRES_Q_GET] = {B(F_OP) | B(F_USER), B(F_OP) | B(F_USER)},
    [PRES_Q_LIST] = {B(F_OP), B(F_OP) | B(F_STATE) | B(F_ACCOUNT) |
                                  B(F_CURSOR) | B(F_LIMIT)},
    [PRES_Q_STATS] = {B(F_OP), B(F_OP)},
    [PRES_Q_SNAPSHOT] = {B(F_OP), B(F_OP) | B(F_CURSOR) | B(F_LIMIT)},
    [PRES_Q_ACCOUNT] = {B(F_OP) | B(F_USER) | B(F_STATUS),
                        B(F_OP) | B(F_USER) | B(F_STATUS) | B(F_REASON) |
                            B(F_BY) | B(F_UNTIL)},
    [PRES_Q_CHANGES_SINCE] = {B(F_OP) | B(F_SEQ),
                              B(F_OP) | B(F_SEQ) | B(F_LIMIT)},
    [PRES_Q_GET_MANY] = {B(F_OP) | B(F_USERS), B(F_OP) | B(F_USERS)},
    [PRES_Q_AUDIT] = {B(F_OP) | B(F_USER), B(F_OP) | B(F_USER) | B(F_LIMIT)},
    [PRES_Q_HISTORY] = {B(F_OP) | B(F_USER), B(F_OP) | B(F_USER) | B(F_LIMIT)},
    [PRES_Q_SERIES] = {B(F_OP) | B(F_MINUTES), B(F_OP) | B(F_MINUTES)},
};

#define S_Q_ALL                                                                \
    (B(F_OP) | B(F_USER) | B(F_STATE) | B(F_ACCOUNT) | B(F_CURSOR) |           \
     B(F_LIMIT) | B(F_STATUS) | B(F_REASON) | B(F_SEQ) | B(F_USERS) |          \
     B(F_MINUTES) | B(F_BY) | B(F_UNTIL))

int
pres_query_decode(pres_query_t *q, const void *buf, size_t len,
                  const char **why)
{
    s_fields_t f;
    memset(q, 0, sizeof *q);
    if (s_read_fields(&f, buf, len, PRES_QUERY_FRAME_MAX, S_Q_ALL, why) != 0)
        return -1;
    int op = (f.present & B(F_OP)) ? s_lookup(s_op_names, S_COUNT(s_op_names),
                                              f.str[F_OP], f.len[F_OP])
                                   : -1;
    if (op < 0) {
        *why = (f.present & B(F_OP)) ? "unknown op" : "missing op";
        return -1;
    }
    q->op = (pres_query_op_t)op;
    if (s_check(&f, s_q_rules[op].required, s_q_rules[op].allowed, why) != 0)
        return -1;
    if (s_take_id(&f, F_USER, q->user) != 0) {
        *why = "bad user";
        return -1;
    }
    if ((f.present & B(F_CURSOR)) && f.len[F_CURSOR] > 0 &&
        s_take_id(&f, F_CURSOR, q->cursor) != 0) {
        *why = "bad cursor";
        return -1;
    }
    if (s_take_text(&f, F_REASON, q->reason, PRES_REASON_MAX) != 0) {
        *why = "bad reason";
        return -1;
    }
    if (s_take_id(&f, F_BY, q->by) != 0) {
        *why = "bad by";
        return -1;
    }
    q->has_state = (f.present & B(F_STATE)) != 0;
    if (q->has_state &&
        pres_state_parse(f.str[F_STATE], f.len[F_STATE], &q->state) != 0) {
        *why = "bad state";
        return -1;
    }
    q->has_account = (f.present & B(F_ACCOUNT)) != 0;
    if (q->has_account && pres_account_parse(f.str[F_ACCOUNT], f.len[F_ACCOUNT],
                                             &q->account) != 0) {
        *why = "bad account";
        return -1;
    }
    if ((f.present & B(F_STATUS)) &&
        pres_account_parse(f.str[F_STATUS], f.len[F_STATUS], &q->status) != 0) {
        *why = "bad status";
        return -1;
    }
    q->limit = q->op == PRES_Q_CHANGES_SINCE ? PRES_LIST_MAX
               : q->op == PRES_Q_SNAPSHOT    ? 0
                                             : PRES_LIST_DEFAULT;
    q->seq = (f.present & B(F_SEQ)) ? f.num[F_SEQ] : 0;
    q->until = (f.present & B(F_UNTIL)) ? f.num[F_UNTIL] : 0;
    if (f.present & B(F_MINUTES)) {
        if (f.num[F_MINUTES] < 1 || f.num[F_MINUTES] > PRES_SERIES_MAX) {
            *why = "bad minutes";
            return -1;
        }
        q->minutes = (uint32_t)f.num[F_MINUTES];
    }
    q->nusers = f.nusers;
    q->users_mp = f.users;
    q->users_mp_len = f.users_len;
    if (f.present & B(F_LIMIT)) {
        uint32_t max =
            q->op == PRES_Q_SNAPSHOT ? PRES_SNAPSHOT_PAGE_MAX : PRES_LIST_MAX;
        if (f.num[F_LIMIT] < 1 || f.num[F_LIMIT] > max) {
            *why = "bad limit";
            return -1;
        }
        q->limit = (uint32_t)f.num[F_LIMIT];
    }
    return 0;
}

size_t
pres_query_encode(const pres_query_t *q, void *buf, size_t cap)
{
    if (q->op < PRES_Q_GET || q->op > PRES_Q_SERIES)
        return 0;
    bool need_user = q->op == PRES_Q_GET || q->op == PRES_Q_ACCOUNT ||
                     q->op == PRES_Q_AUDIT || q->op == PRES_Q_HISTORY;
    if (need_user && !pres_id_valid(q->user, strlen(q->user)))
        return 0;
    bool list = q->op == PRES_Q_LIST;
    bool paged = q->op == PRES_Q_CHANGES_SINCE || q->op == PRES_Q_AUDIT ||
                 q->op == PRES_Q_HISTORY;
    bool many = q->op == PRES_Q_GET_MANY;
    if (many && (q->nusers < 1 || q->nusers > PRES_MANY_MAX ||
                 (!q->users && !q->users_mp)))
        return 0;
    if (q->op == PRES_Q_SERIES &&
        (q->minutes < 1 || q->minutes > PRES_SERIES_MAX))
        return 0;
    bool snap = q->op == PRES_Q_SNAPSHOT;
    if (q->limit > (snap ? PRES_SNAPSHOT_PAGE_MAX : PRES_LIST_MAX))
        return 0;
    bool has_cursor = (list || snap) && q->cursor[0];
    if (has_cursor && !pres_id_valid(q->cursor, strlen(q->cursor)))
        return 0;
    //  limit is left out when it is the op's default (canonical bytes).
    uint32_t def_limit = q->op == PRES_Q_CHANGES_SINCE ? PRES_LIST_MAX
                         : snap                        ? 0
                                                       : PRES_LIST_DEFAULT;
    bool has_limit =
        (list || paged || snap) && q->limit && q->limit != def_limit;
    bool has_reason = q->op == PRES_Q_ACCOUNT && q->reason[0];
    bool has_by = q->op == PRES_Q_ACCOUNT && q->by[0];
    if (has_by && !pres_id_valid(q->by, strlen(q->by)))
        return 0;
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, cap);
    pres_mpw_map_t m;
    pres_mpw_map_begin_w(&m, &w);
    pres_mpw_kv_str(&m, "op", pres_query_op_name(q->op));
    if (need_user)
        pres_mpw_kv_str(&m, "user", q->user);
    if (list && q->has_state)
        pres_mpw_kv_str(&m, "state", pres_state_name(q->state));
    if (list && q->has_account)
        pres_mpw_kv_str(&m, "account", pres_account_name(q->account));
    if (q->op == PRES_Q_CHANGES_SINCE)
        pres_mpw_kv_uint(&m, "seq", q->seq);
    if (q->op == PRES_Q_SERIES)
        pres_mpw_kv_uint(&m, "minutes", q->minutes);
    if (many) {
        pres_mpw_key(&m, "users");
        msgpack_pack_array(&w.pk, q->nusers);
        if (!q->users)  //  a decoded request: its checked elements as is
            w.pk.callback(w.pk.data, q->users_mp, q->users_mp_len);
        for (uint32_t i = 0; q->users && i < q->nusers; i++) {
            if (!pres_id_valid(q->users[i], strlen(q->users[i])))
                return 0;
            pres_mp_pack_cstr(&w, q->users[i]);
        }
    }
    if (has_cursor)
        pres_mpw_kv_str(&m, "cursor", q->cursor);
    if (has_limit)
        pres_mpw_kv_uint(&m, "limit", q->limit);
    if (q->op == PRES_Q_ACCOUNT) {
        pres_mpw_kv_str(&m, "status", pres_account_name(q->status));
        if (has_reason)
            pres_mpw_kv_str(&m, "reason", q->reason);
        if (has_by)
            pres_mpw_kv_str(&m, "by", q->by);
        if (q->until)
            pres_mpw_kv_uint(&m, "until", q->until);
    }
    return pres_mpw_map_end(&m) || w.overflow ? 0 : w.len;
}
