/*  pres_msg: the bus messages of docs/protocol.md section 4, as defined in
    schemas/presence.schema.json: events in, changes out, deadline notices
    and query requests. Decoding is strict (exact types, required fields,
    unknown keys and types refused, size capped); encoding writes the
    canonical key order that the golden vectors in schemas/vectors pin. */
#ifndef PRES_MSG_H_INCLUDED
#define PRES_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRES_MSG_VERSION 1
#define PRES_MSG_MAX     4096   //  codec cap on one frame, bytes
#define PRES_BUS_MAXMSG  65536  //  ZMQ_MAXMSGSIZE on inbound sockets
#define PRES_ID_MAX      64     //  user, session, src: 1..64 id chars
#define PRES_DEVICE_MAX  128    //  device label, printable
#define PRES_REASON_MAX  256    //  account reason, printable
#define PRES_TOPIC_MAX   (16 + PRES_ID_MAX)

typedef enum {
    PRES_EV_LOGIN = 1,
    PRES_EV_HEARTBEAT,
    PRES_EV_LOGOUT,
    PRES_EV_EXPIRE,
    PRES_EV_ACCOUNT
} pres_ev_type_t;

typedef enum { PRES_OFFLINE = 0, PRES_ONLINE, PRES_AWAY } pres_state_t;
#define PRES_STATE_COUNT 3

typedef enum {
    PRES_ACC_ACTIVE = 0,
    PRES_ACC_PENDING,
    PRES_ACC_INACTIVE,
    PRES_ACC_SUSPENDED,
    PRES_ACC_BANNED
} pres_account_t;
#define PRES_ACCOUNT_COUNT 5

//  Change reasons. The account statuses other than active are reasons too.
typedef enum {
    PRES_RSN_LOGIN = 0,
    PRES_RSN_HEARTBEAT,
    PRES_RSN_LOGOUT,
    PRES_RSN_TIMEOUT,
    PRES_RSN_ACCOUNT,  //  account changed to active
    PRES_RSN_PENDING,
    PRES_RSN_INACTIVE,
    PRES_RSN_SUSPENDED,
    PRES_RSN_BANNED
} pres_reason_t;
#define PRES_REASON_COUNT 9

//  Names <-> enums. Names are the exact wire strings. The _parse functions
//  take a length (wire strings are not NUL-terminated) and return 0 or -1.
const char *pres_ev_type_name(pres_ev_type_t t);
int pres_ev_type_parse(const char *s, size_t len, pres_ev_type_t *t);
const char *pres_state_name(pres_state_t s);
int pres_state_parse(const char *s, size_t len, pres_state_t *st);
const char *pres_account_name(pres_account_t a);
int pres_account_parse(const char *s, size_t len, pres_account_t *a);
const char *pres_reason_name(pres_reason_t r);
int pres_reason_parse(const char *s, size_t len, pres_reason_t *r);

//  1..PRES_ID_MAX bytes of [A-Za-z0-9._@:-] (docs/protocol.md section 2).
bool pres_id_valid(const char *s, size_t len);

//  An event (topic = type). Strings are copied and NUL-terminated.
typedef struct {
    pres_ev_type_t type;
    char user[PRES_ID_MAX + 1];
    char src[PRES_ID_MAX + 1];
    uint64_t at;                       //  ms since the epoch, publisher's clock
    uint64_t seq;                      //  per publisher, +1 each event
    char session[PRES_ID_MAX + 1];     //  "" when absent (logout: all)
    char device[PRES_DEVICE_MAX + 1];  //  login, optional
    bool has_state;                    //  heartbeat carried `state`
    pres_state_t state;                //  heartbeat: PRES_ONLINE or PRES_AWAY
    uint64_t deadline;      //  expire: the deadline the sweeper acted on
    pres_account_t status;  //  account
    char reason[PRES_REASON_MAX + 1];  //  account, optional
} pres_event_t;

//  Decode one event frame. `topic` (may be NULL) is checked against the
//  type when given. Returns 0, or -1 with *why set to a static, short,
//  stable reason ("too_big", "not_map", "bad_field", "missing_field",
//  "unknown_field", "bad_type", "bad_version", "topic_mismatch", ...) that
//  callers count and log.
int pres_event_decode(pres_event_t *ev, const char *topic, size_t topic_len,
                      const void *buf, size_t len, const char **why);

//  Encode ev into buf (canonical order: v type user at src seq, then the
//  type's fields). Returns the byte count, or 0 if ev is invalid or buf is
//  too small. The topic is pres_ev_type_name(ev->type).
size_t pres_event_encode(const pres_event_t *ev, void *buf, size_t cap);

//  A change published by the broker on topic "presence.<user>". `session` and
//  `deadline` are extensions beyond docs/protocol.md section 4: the session
//  this change is about ("" when it concerns all of them) and, when that
//  session is live, its current deadline (ms); the sweeper needs both.
typedef struct {
    uint64_t seq;  //  global, +1 per change
    char user[PRES_ID_MAX + 1];
    pres_state_t state;
    pres_state_t prev;
    uint64_t at;  //  ms, broker clock
    pres_reason_t reason;
    uint32_t sessions;  //  live sessions after the change
    pres_account_t account;
    char session[PRES_ID_MAX + 1];  //  "" when absent
    uint64_t deadline;              //  0 when absent
    uint64_t term;  //  leader term under fail-over (docs/ha.md); 0 = absent
} pres_change_t;

#define PRES_CHANGE_PREFIX "presence."
//  Write "presence.<user>" into topic (PRES_TOPIC_MAX). Returns its length.
size_t pres_change_topic(const char *user, char *topic);
size_t pres_change_encode(const pres_change_t *ch, void *buf, size_t cap);
int pres_change_decode(pres_change_t *ch, const void *buf, size_t len,
                       const char **why);

//  A deadline notice, topic "deadline.<user>", no global seq. deadline >
//  0: the session is due (its deadline, plus grace, passed while it is
//  live): the broker asks for its `expire`, again each second while it
//  lives. deadline 0: the answer to an `expire` for a session the broker
//  does not have (a publisher's round trip). docs/protocol.md.
typedef struct {
    char user[PRES_ID_MAX + 1];
    char session[PRES_ID_MAX + 1];
    uint64_t deadline;
} pres_deadline_t;

#define PRES_DEADLINE_PREFIX "deadline."
size_t pres_deadline_topic(const char *user, char *topic);
size_t pres_deadline_encode(const pres_deadline_t *dl, void *buf, size_t cap);
int pres_deadline_decode(pres_deadline_t *dl, const void *buf, size_t len,
                         const char **why);

//  Query requests (one frame, one map). Replies are built by the broker
//  with pres_mp_writer_t and read by clients with pres_mp_reader_t or
//  pres_mp_to_json.
typedef enum {
    PRES_Q_GET = 1,
    PRES_Q_LIST,
    PRES_Q_STATS,
    PRES_Q_SNAPSHOT,
    PRES_Q_ACCOUNT,
    PRES_Q_CHANGES_SINCE,  //  {seq, limit?}: replay from the change log
    PRES_Q_GET_MANY,       //  {users: [...]}: 1..PRES_MANY_MAX users in order
    PRES_Q_AUDIT,          //  {user, limit?}: account changes, newest first
    PRES_Q_HISTORY,        //  {user, limit?}: transitions, newest first
    PRES_Q_SERIES          //  {minutes}: online/away per minute
} pres_query_op_t;

#define PRES_LIST_DEFAULT      100
#define PRES_LIST_MAX          1000
#define PRES_SNAPSHOT_PAGE_MAX 10000  //  users per snapshot page
#define PRES_MANY_MAX          1000   //  get_many ids per request
#define PRES_SERIES_MAX        43200  //  series minutes (30 days)
#define PRES_QUERY_FRAME_MAX   98304  //  cap on one query frame (get_many)

typedef struct {
    pres_query_op_t op;
    char user[PRES_ID_MAX + 1];        //  get, account
    bool has_state;                    //  list
    pres_state_t state;                //  list filter
    bool has_account;                  //  list
    pres_account_t account;            //  list filter on account status
    char cursor[PRES_ID_MAX + 1];      //  list: last user of the previous page;
                                       //  snapshot: the previous page's `next`
    uint32_t limit;                    //  list, changes_since, audit, history:
                                       //  1..PRES_LIST_MAX; decode sets the
                                       //  op's default when absent (list,
                                       //  audit, history PRES_LIST_DEFAULT;
                                       //  changes_since PRES_LIST_MAX); encode
                                       //  omits it when 0 or that default.
                                       //  snapshot: users per page,
                                       //  1..PRES_SNAPSHOT_PAGE_MAX, 0 (absent)
                                       //  = every user in one reply
    pres_account_t status;             //  account
    char reason[PRES_REASON_MAX + 1];  //  account, optional
    char by[PRES_ID_MAX + 1];  //  account, optional: who asks (the gateway
                               //  forwards the admin token's sub; admin
                               //  endpoint only), kept in the audit
    uint64_t until;    //  account, optional: wall ms after which the asker has
                       //  given up; the broker then refuses it (a request
                       //  whose answer was lost never applies later, after a
                       //  newer one). pres_qclient_query sets it.
    uint64_t seq;      //  changes_since: after this seq
    uint32_t minutes;  //  series: 1..PRES_SERIES_MAX
    uint32_t nusers;   //  get_many: ids in users / users_mp
    const char *const *users;  //  get_many, encode: the ids (caller)
    const void *users_mp;  //  get_many, decode: the array's elements, msgpack
                           //  strings already validated, into the frame
    size_t users_mp_len;   //  bytes of users_mp
} pres_query_t;

//  Queries are decoded up to PRES_QUERY_FRAME_MAX bytes (a get_many of
//  1,000 ids of 64 bytes does not fit PRES_MSG_MAX); encode needs a buffer
//  that large for such a get_many.
const char *pres_query_op_name(pres_query_op_t op);
int pres_query_decode(pres_query_t *q, const void *buf, size_t len,
                      const char **why);
size_t pres_query_encode(const pres_query_t *q, void *buf, size_t cap);

#endif
