/*  pres_config: the one configuration every presence program reads. A
    declarative key table (docs/protocol.md section 6 plus the operational keys
    documented in docs/config.md): defaults, then `key = value` lines from a
    file, then PRESENCE_<KEY> environment variables, which win. */
#ifndef PRES_CONFIG_H_INCLUDED
#define PRES_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

#define PRES_PATH_MAX     256
#define PRES_ENDPOINT_MAX 300

typedef struct pres_config {
    //  docs/protocol.md section 6
    char data_dir[PRES_PATH_MAX];              //  LMDB env, generated secrets
    char run_dir[PRES_PATH_MAX];               //  ipc sockets, lock files
    char events_endpoint[PRES_ENDPOINT_MAX];   //  broker SUB (events in)
    char changes_endpoint[PRES_ENDPOINT_MAX];  //  broker PUB (changes out)
    char query_endpoint[PRES_ENDPOINT_MAX];    //  broker ROUTER (queries)
    char http_listen[PRES_ENDPOINT_MAX];       //  gateway host:port
    char jwt_alg[8];                           //  HS256, RS256 or ES256
    char jwt_secret_file[PRES_PATH_MAX];       //  HS256 key
    char jwt_public_key_file[PRES_PATH_MAX];   //  RS256/ES256 PEM; "" = none
    int jwt_leeway;                            //  seconds on exp/nbf
    char jwt_issuer[PRES_PATH_MAX];            //  required iss; "" = any
    char jwt_audience[PRES_PATH_MAX];          //  required aud; "" = any
    int heartbeat;                             //  seconds, told to clients
    double timeout;                            //  seconds without heartbeat
    char unknown_users[8];                     //  "allow" or "deny"
    //  Bus
    int bus_hwm;         //  high-water mark, messages
    int bus_timeout_ms;  //  max wait on a saturated/absent bus
    char curve_secret_file[PRES_PATH_MAX];         //  own zcert (secret)
    char curve_server_public_file[PRES_PATH_MAX];  //  broker's public cert
    char curve_clients_dir[PRES_PATH_MAX];         //  broker allowlist
    bool bus_insecure_tcp;  //  allow tcp:// without CURVE (loopback only)
    //  Account authority and broker bounds
    char admin_endpoint[PRES_ENDPOINT_MAX];  //  broker ROUTER (account)
    char admin_peers[PRES_PATH_MAX];         //  ipc: user names/uids; "" = own
    char curve_admin_dir[PRES_PATH_MAX];     //  tcp: admin client certs
    int max_sessions_per_user;               //  live sessions kept per user
    int events_rcvhwm;    //  broker SUB queue, messages per publisher
    int publishers_max;   //  publisher table entries kept
    int publishers_idle;  //  seconds before an idle publisher is forgotten
    //  Broker storage
    int lmdb_map_mib;       //  LMDB map size in MiB
    int lastseen_flush_ms;  //  max lag of a lazily durable last_seen (<=5000)
    int fsync_thread;    //  2: fsync and publish on the sync thread; 1: fsync
                         //  there, the loop publishes; 0: fsync inline
    int sched_priority;  //  1-99: SCHED_FIFO for every broker thread; 0: off
    //  Sweeper
    int snapshot_page;  //  unused since the sweeper holds no sessions;
                        //  still accepted so old files load
    //  Gateway
    int http_threads;             //  worker threads
    int http_max_connections;     //  total connection limit
    int http_per_ip_connections;  //  per-address connections (0 = half max)
    int http_idle_timeout;        //  seconds before an idle keep-alive closes
    int http_header_timeout;      //  seconds to receive a whole request
    int rate_limit;               //  requests/s per token subject (0 = off)
    int rate_burst;               //  bucket size per token subject
    int rate_limit_addr;  //  unauthenticated requests/s per address (0 = off)
    int rate_burst_addr;  //  bucket size per address
    char trusted_proxies[1024];        //  CIDR list whose forwarding we believe
    char trusted_proxy_header[16];     //  "x-forwarded-for" or "forwarded"
    char cors_origins[PRES_PATH_MAX];  //  comma list, "*" or "" (none)
    int sse_keepalive;                 //  seconds between SSE comment lines
    int sse_max_clients;               //  concurrent /v1/events streams
    //  Fail-over (docs/ha.md)
    char etcd_endpoints[PRES_PATH_MAX];     //  comma list of http://host:port
    char etcd_prefix[128];                  //  keys under it; default /presence
    char node_name[64];                     //  this broker; default host name
    int failover_ttl;                       //  leader lease, seconds
    char replication[8];                    //  "sync" or "async"
    char repl_endpoint[PRES_ENDPOINT_MAX];  //  leader ROUTER for standbys
    //  Change log, grace, history (broker)
    int changelog_keep;  //  changes kept for changes_since (0 = no log)
    double grace;        //  seconds a timed-out session keeps its state
} pres_config_t;

//  Fill cfg with the embedded defaults. Derived defaults (endpoints under
//  run_dir, the secret under data_dir) are resolved by pres_config_finish.
void pres_config_defaults(pres_config_t *cfg);

//  Set one key from text. Returns 0, or -1 after logging why (unknown key,
//  bad number, out of range).
int pres_config_set(pres_config_t *cfg, const char *key, const char *value);

//  Apply a config file (path may be NULL: none), then the environment, then
//  resolve derived defaults. Returns 0, or -1 after logging the file, line
//  and reason.
int pres_config_load(pres_config_t *cfg, const char *path);

//  Resolve derived defaults and check cross-key rules (tcp endpoints need
//  CURVE unless bus_insecure_tcp). Called by pres_config_load. 0 or -1.
int pres_config_finish(pres_config_t *cfg);

//  Print every key = value, in table order, as a loadable config file.
void pres_config_print(const pres_config_t *cfg, FILE *out);

//  Create data_dir and run_dir (mode 0750) if missing. 0 or -1 (logged).
int pres_config_make_dirs(const pres_config_t *cfg);

//  The standard command line of the daemons: -c FILE, -t, -v, -h.
//  Loads cfg and initialises logging with ident. Returns 0 to run on,
//  1 when the program should exit successfully (-t or -h printed), -1 on
//  error (logged; exit with failure).
int pres_config_main(pres_config_t *cfg, int argc, char **argv,
                     const char *ident, const char *summary);

#endif
