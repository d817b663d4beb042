/*  pres_config: the key table, file and environment loading, derived
    defaults and the -c/-t/-v command line shared by every program. */
#include "pres_config.h"
#include "pres_log.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { S_STR, S_INT, S_DOUBLE, S_BOOL } s_type_t;

typedef struct {
    const char *key;
    s_type_t type;
    size_t offset;
    size_t size;          //  for strings: buffer size
    const char *def;      //  default, as text
    double min, max;      //  numbers
    const char *choices;  //  strings: "|a|b|" allowed values, or NULL
} s_key_t;

#define S_OFF(f) offsetof(pres_config_t, f)
#define S_SZ(f)  sizeof(((pres_config_t *)0)->f)
#define STR(k, def, ch)                                                        \
    {                                                                          \
#k, S_STR, S_OFF(k), S_SZ(k), def, 0, 0, ch                            \
    }
#define INT(k, def, lo, hi)                                                    \
    {                                                                          \
#k, S_INT, S_OFF(k), 0, def, lo, hi, NULL                              \
    }
#define DBL(k, def, lo, hi)                                                    \
    {                                                                          \
#k, S_DOUBLE, S_OFF(k), 0, def, lo, hi, NULL                           \
    }
#define BOOL(k, def)                                                           \
    {                                                                          \
#k, S_BOOL, S_OFF(k), 0, def, 0, 1, NULL                               \
    }

//  "" for a string default means "derived" (see pres_config_finish) or none.
static const s_key_t s_keys[] = {
    STR(data_dir, "./data", NULL),
    STR(run_dir, "./run", NULL),
    STR(events_endpoint, "", NULL),
    STR(changes_endpoint, "", NULL),
    STR(query_endpoint, "", NULL),
    STR(http_listen, "127.0.0.1:8080", NULL),
    STR(jwt_alg, "HS256", "|HS256|RS256|ES256|"),
    STR(jwt_secret_file, "", NULL),
    STR(jwt_public_key_file, "", NULL),
    INT(jwt_leeway, "30", 0, 3600),
    STR(jwt_issuer, "", NULL),
    STR(jwt_audience, "", NULL),
    INT(heartbeat, "30", 1, 86400),
    DBL(timeout, "120", 0.1, 604800),
    STR(unknown_users, "allow", "|allow|deny|"),
    INT(bus_hwm, "1000000", 0, 100000000),
    INT(bus_timeout_ms, "1000", 1, 60000),
    STR(curve_secret_file, "", NULL),
    STR(curve_server_public_file, "", NULL),
    STR(curve_clients_dir, "", NULL),
    BOOL(bus_insecure_tcp, "no"),
    STR(admin_endpoint, "", NULL),
    STR(admin_peers, "", NULL),
    STR(curve_admin_dir, "", NULL),
    INT(max_sessions_per_user, "16", 1, 100000),
    INT(events_rcvhwm, "65536", 1, 100000000),
    INT(publishers_max, "1024", 16, 1000000),
    INT(publishers_idle, "3600", 1, 31536000),
    INT(lmdb_map_mib, "16384", 1, 1048576),
    INT(lastseen_flush_ms, "1000", 10, 5000),
    INT(fsync_thread, "2", 0, 2),
    INT(sched_priority, "0", 0, 99),
    INT(snapshot_page, "10000", 0, 10000),
    INT(http_threads, "2", 1, 64),
    INT(http_max_connections, "4096", 1, 1000000),
    INT(http_per_ip_connections, "0", 0, 1000000),
    INT(http_idle_timeout, "60", 1, 86400),
    INT(http_header_timeout, "10", 1, 3600),
    INT(rate_limit, "100", 0, 100000000),
    INT(rate_burst, "200", 1, 100000000),
    INT(rate_limit_addr, "100", 0, 100000000),
    INT(rate_burst_addr, "400", 1, 100000000),
    STR(trusted_proxies, "", NULL),
    STR(trusted_proxy_header, "x-forwarded-for", "|x-forwarded-for|forwarded|"),
    STR(cors_origins, "", NULL),
    INT(sse_keepalive, "15", 1, 3600),
    INT(sse_max_clients, "256", 1, 100000),
    //  Fail-over (docs/ha.md)
    STR(etcd_endpoints, "", NULL),
    STR(etcd_prefix, "/presence", NULL),
    STR(node_name, "", NULL),
    INT(failover_ttl, "3", 2, 60),
    STR(replication, "sync", "|sync|async|"),
    STR(repl_endpoint, "", NULL),
    INT(changelog_keep, "1000000", 0, 1000000000),
    DBL(grace, "0", 0, 86400),
};

#define S_NKEYS (sizeof s_keys / sizeof s_keys[0])

static const s_key_t *
s_find(const char *key)
{
    for (size_t i = 0; i < S_NKEYS; i++)
        if (strcmp(s_keys[i].key, key) == 0)
            return &s_keys[i];
    return NULL;
}

static int
s_apply(pres_config_t *cfg, const s_key_t *k, const char *value)
{
    void *field = (char *)cfg + k->offset;
    char *end;
    switch (k->type) {
    case S_STR: {
        if (strlen(value) >= k->size) {
            pres_log_error("config: %s: value longer than %zu bytes", k->key,
                           k->size - 1);
            return -1;
        }
        if (k->choices) {
            char probe[64];
            snprintf(probe, sizeof probe, "|%s|", value);
            if (!*value || !strstr(k->choices, probe)) {
                pres_log_error("config: %s: '%s' is not one of %s", k->key,
                               value, k->choices);
                return -1;
            }
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    }
    case S_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < k->min || v > k->max) {
            pres_log_error("config: %s: '%s' is not an integer in [%.0f, %.0f]",
                           k->key, value, k->min, k->max);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case S_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < k->min ||
            v > k->max) {
            pres_log_error("config: %s: '%s' is not a number in [%g, %g]",
                           k->key, value, k->min, k->max);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case S_BOOL:
        if (!strcmp(value, "yes") || !strcmp(value, "true") ||
            !strcmp(value, "1") || !strcmp(value, "on"))
            *(bool *)field = true;
        else if (!strcmp(value, "no") || !strcmp(value, "false") ||
                 !strcmp(value, "0") || !strcmp(value, "off"))
            *(bool *)field = false;
        else {
            pres_log_error("config: %s: '%s' is not yes or no", k->key, value);
            return -1;
        }
        return 0;
    }
    return -1;
}

void
pres_config_defaults(pres_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < S_NKEYS; i++) {
        int rc = s_apply(cfg, &s_keys[i], s_keys[i].def);
        (void)rc;
    }
}

int
pres_config_set(pres_config_t *cfg, const char *key, const char *value)
{
    const s_key_t *k = s_find(key);
    if (!k) {
        pres_log_error("config: unknown key '%s'", key);
        return -1;
    }
    return s_apply(cfg, k, value);
}

static char *
s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int
s_load_file(pres_config_t *cfg, const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        pres_log_error("config: fopen(%s) failed: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, file)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(file)) {
            pres_log_error("config: %s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        char *s = s_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            pres_log_error("config: %s:%d: expected 'key = value'", path,
                           lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = s_trim(s), *value = s_trim(eq + 1);
        if (pres_config_set(cfg, key, value) != 0) {
            pres_log_error("config: %s:%d: rejected", path, lineno);
            rc = -1;
        }
    }
    fclose(file);
    return rc;
}

static int
s_load_env(pres_config_t *cfg)
{
    for (size_t i = 0; i < S_NKEYS; i++) {
        char name[80] = "PRESENCE_";
        size_t n = strlen(name);
        for (const char *p = s_keys[i].key; *p && n < sizeof name - 1; p++)
            name[n++] = (char)toupper((unsigned char)*p);
        name[n] = '\0';
        const char *value = getenv(name);
        if (value && s_apply(cfg, &s_keys[i], value) != 0) {
            pres_log_error("config: environment %s rejected", name);
            return -1;
        }
    }
    return 0;
}

int
pres_config_load(pres_config_t *cfg, const char *path)
{
    if (path && s_load_file(cfg, path) != 0)
        return -1;
    if (s_load_env(cfg) != 0)
        return -1;
    return pres_config_finish(cfg);
}

//  Set dst to dir + "/" + leaf unless it is already set.
static int
s_derive(char *dst, size_t size, const char *scheme, const char *dir,
         const char *leaf, const char *key)
{
    if (*dst)
        return 0;
    int n = snprintf(dst, size, "%s%s/%s", scheme, dir, leaf);
    if (n < 0 || (size_t)n >= size) {
        pres_log_error("config: derived %s is too long", key);
        return -1;
    }
    return 0;
}

static bool
s_is_tcp(const char *endpoint)
{
    return strncmp(endpoint, "tcp://", 6) == 0;
}

//  True for tcp://HOST:PORT where HOST is a loopback address (127.0.0.0/8,
//  [::1] or localhost). Anything else (*, an interface name, a source
//  address with ';') is not.
static bool
s_is_loopback(const char *endpoint)
{
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || strchr(host, ';'))
        return false;
    size_t n = (size_t)(colon - host);
    char name[64];
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, host, n);
    name[n] = '\0';
    if (strcmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0)
        return true;
    struct in_addr v4;
    return inet_pton(AF_INET, name, &v4) == 1 &&
           (ntohl(v4.s_addr) >> 24) == 127;
}

//  Each endpoint: ipc path length, and tcp:// either with CURVE or, with
//  bus_insecure_tcp, on loopback only. 0 or -1 (logged).
static int
s_check_endpoint(const pres_config_t *cfg, const char *key, const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0 && strlen(ep) - 6 > 107) {
        pres_log_error("config: %s: ipc path longer than 107 bytes", ep);
        return -1;
    }
    if (!s_is_tcp(ep) || *cfg->curve_secret_file)
        return 0;
    if (!cfg->bus_insecure_tcp) {
        pres_log_error("config: %s is tcp:// but curve_secret_file is "
                       "not set (CURVE is required between hosts; set "
                       "bus_insecure_tcp = yes only for loopback tests)",
                       ep);
        return -1;
    }
    if (strcmp(key, "admin_endpoint") == 0) {
        pres_log_error("config: admin_endpoint %s is tcp:// without CURVE: "
                       "account changes need curve_secret_file and "
                       "curve_admin_dir (bus_insecure_tcp does not apply)",
                       ep);
        return -1;
    }
    if (!s_is_loopback(ep)) {
        pres_log_error("config: %s: bus_insecure_tcp allows loopback "
                       "addresses only (127.0.0.0/8, [::1], localhost)",
                       ep);
        return -1;
    }
    return 0;
}

int
pres_config_finish(pres_config_t *cfg)
{
    if (s_derive(cfg->events_endpoint, sizeof cfg->events_endpoint, "ipc://",
                 cfg->run_dir, "events", "events_endpoint") ||
        s_derive(cfg->changes_endpoint, sizeof cfg->changes_endpoint, "ipc://",
                 cfg->run_dir, "changes", "changes_endpoint") ||
        s_derive(cfg->query_endpoint, sizeof cfg->query_endpoint, "ipc://",
                 cfg->run_dir, "query", "query_endpoint") ||
        s_derive(cfg->admin_endpoint, sizeof cfg->admin_endpoint, "ipc://",
                 cfg->run_dir, "admin", "admin_endpoint") ||
        s_derive(cfg->jwt_secret_file, sizeof cfg->jwt_secret_file, "",
                 cfg->data_dir, "jwt.secret", "jwt_secret_file") ||
        s_derive(cfg->repl_endpoint, sizeof cfg->repl_endpoint, "ipc://",
                 cfg->run_dir, "repl", "repl_endpoint"))
        return -1;
    if (!*cfg->node_name &&
        gethostname(cfg->node_name, sizeof cfg->node_name - 1) != 0)
        snprintf(cfg->node_name, sizeof cfg->node_name, "broker");
    if (cfg->etcd_prefix[0] != '/' || strlen(cfg->etcd_prefix) < 2) {
        pres_log_error("config: etcd_prefix must start with / (e.g. "
                       "/presence)");
        return -1;
    }
    const char *keys[] = {"events_endpoint", "changes_endpoint",
                          "query_endpoint", "admin_endpoint"};
    const char *eps[] = {cfg->events_endpoint, cfg->changes_endpoint,
                         cfg->query_endpoint, cfg->admin_endpoint};
    for (size_t i = 0; i < 4; i++)
        if (s_check_endpoint(cfg, keys[i], eps[i]))
            return -1;
    if (s_is_tcp(cfg->admin_endpoint) && !*cfg->curve_admin_dir) {
        pres_log_error("config: admin_endpoint %s is tcp:// but "
                       "curve_admin_dir (the admin clients' public certs) "
                       "is not set",
                       cfg->admin_endpoint);
        return -1;
    }
    if (strcmp(cfg->jwt_alg, "HS256") != 0 && !*cfg->jwt_public_key_file) {
        pres_log_error("config: jwt_alg %s needs jwt_public_key_file",
                       cfg->jwt_alg);
        return -1;
    }
    return 0;
}

void
pres_config_print(const pres_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < S_NKEYS; i++) {
        const s_key_t *k = &s_keys[i];
        const void *field = (const char *)cfg + k->offset;
        switch (k->type) {
        case S_STR:
            fprintf(out, "%s = %s\n", k->key, (const char *)field);
            break;
        case S_INT:
            fprintf(out, "%s = %d\n", k->key, *(const int *)field);
            break;
        case S_DOUBLE:
            fprintf(out, "%s = %g\n", k->key, *(const double *)field);
            break;
        case S_BOOL:
            fprintf(out, "%s = %s\n", k->key,
                    *(const bool *)field ? "yes" : "no");
            break;
        }
    }
}

//  Create path (0750) or accept an existing directory that only its owner
//  can write: a group- or world-writable data or run directory would let
//  other users replace the LMDB files, the secrets or the ipc sockets.
static int
s_mkdir(const char *path)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            pres_log_error("%s exists and is not a directory", path);
            return -1;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
            pres_log_error("%s is group- or world-writable (mode %04o); "
                           "refusing to use it: chmod go-w %s",
                           path, (unsigned)(st.st_mode & 07777), path);
            return -1;
        }
        return 0;
    }
    pres_log_error("mkdir(%s) failed: %s", path, strerror(errno));
    return -1;
}

int
pres_config_make_dirs(const pres_config_t *cfg)
{
    return s_mkdir(cfg->data_dir) == 0 && s_mkdir(cfg->run_dir) == 0 ? 0 : -1;
}

int
pres_config_main(pres_config_t *cfg, int argc, char **argv, const char *ident,
                 const char *summary)
{
    const char *path = NULL;
    bool check = false, verbose = false;
    int opt;
    pres_log_init(ident, false);
    optind = 1;
    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            printf("usage: %s [-c FILE] [-t] [-v]\n%s\n\n"
                   "  -c FILE  config file of 'key = value' lines "
                   "(optional; PRESENCE_<KEY> env wins)\n"
                   "  -t       check the config, print the effective values, "
                   "exit\n"
                   "  -v       verbose (debug) logging\n",
                   ident, summary);
            return 1;
        default:
            fprintf(stderr, "usage: %s [-c FILE] [-t] [-v]\n", ident);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", ident, argv[optind]);
        return -1;
    }
    pres_log_init(ident, verbose);
    pres_config_defaults(cfg);
    if (pres_config_load(cfg, path) != 0)
        return -1;
    if (check) {
        pres_config_print(cfg, stdout);
        return 1;
    }
    return 0;
}
