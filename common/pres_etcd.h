/*  pres_etcd: a small etcd v3 client over etcd's JSON gateway (libcurl +
    jansson): leases, single-key get/put/delete, prefix range and the one
    compare-and-create transaction that leader election needs. Keys and
    values travel base64-encoded in JSON; this module hides that.
    Debian ships no maintained C client for etcd v3 (docs/ha.md). */
#ifndef PRES_ETCD_H_INCLUDED
#define PRES_ETCD_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define PRES_ETCD_VALUE_MAX 4096  //  largest value this client reads
#define PRES_ETCD_NOTFOUND  1     //  positive: key absent, lease gone

typedef struct pres_etcd pres_etcd_t;

//  endpoints: comma list of http://host:port (at most 8). Each call tries
//  the endpoints in turn, starting with the last one that answered, until
//  one answers or timeout_ms (per call, all tries) runs out. NULL after
//  logging (bad list). Not thread-safe: one client per thread.
pres_etcd_t *pres_etcd_new(const char *endpoints, int timeout_ms);
void pres_etcd_destroy(pres_etcd_t **self_p);

//  A lease of ttl_s seconds. 0 and *id, or -1 (logged at debug level: the
//  caller decides how loud an unreachable etcd is).
int pres_etcd_lease_grant(pres_etcd_t *self, int ttl_s, int64_t *id);

//  Renew a lease once. 0 (and *ttl_left in seconds), PRES_ETCD_NOTFOUND
//  when the lease has expired, -1 when etcd did not answer.
int pres_etcd_lease_keepalive(pres_etcd_t *self, int64_t id, int64_t *ttl_left);

//  Revoke a lease (its keys go at once). 0 or -1.
int pres_etcd_lease_revoke(pres_etcd_t *self, int64_t id);

//  Put key = value (lease 0 = none). 0 or -1.
int pres_etcd_put(pres_etcd_t *self, const char *key, const char *value,
                  int64_t lease);

//  Create key = value under lease only if the key does not exist (one
//  txn comparing its create revision with 0). Returns 0 when created
//  (*rev = the key's create revision), 1 when it already existed (*rev =
//  its create revision, and value_out (if not NULL, cap bytes) its value),
//  -1 on error.
int pres_etcd_create(pres_etcd_t *self, const char *key, const char *value,
                     int64_t lease, int64_t *rev, char *value_out, size_t cap);

//  Read one key: 0 with its value (NUL-terminated, truncated to cap) and
//  create revision, PRES_ETCD_NOTFOUND, or -1.
int pres_etcd_get(pres_etcd_t *self, const char *key, char *value, size_t cap,
                  int64_t *create_rev);

//  Call fn for every key under prefix (at most 64). 0 or -1.
typedef void(pres_etcd_kv_fn)(const char *key, const char *value, void *arg);
int pres_etcd_range_prefix(pres_etcd_t *self, const char *prefix,
                           pres_etcd_kv_fn *fn, void *arg);

//  Delete key if its create revision is still rev (a leader resigning
//  must not delete its successor's key). 0 or -1.
int pres_etcd_delete_if(pres_etcd_t *self, const char *key, int64_t rev);

#endif
