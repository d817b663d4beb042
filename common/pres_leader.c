/*  pres_leader: leader discovery for the clients (see pres_leader.h). */
#include "pres_leader.h"

#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "pres_etcd.h"
#include "pres_log.h"

#define S_WATCH_MS 250

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static bool s_on;                        //  resolve succeeded
static char s_query[PRES_ENDPOINT_MAX];  //  leader's query endpoint
static char s_admin[PRES_ENDPOINT_MAX];  //  leader's admin endpoint
static int64_t s_term;                   //  leader's term
static char s_etcd[PRES_PATH_MAX];       //  for the watcher
static char s_key[256];                  //  <prefix>/leader

typedef struct {
    char *events;  //  comma lists being built
    char *changes;
    size_t cap;
    bool overflow;
} s_members_t;

static void
s_append(char *list, size_t cap, const char *ep, bool *overflow)
{
    if (!ep || !*ep || strstr(list, ep))
        return;
    size_t len = strlen(list);
    if (len + strlen(ep) + 2 > cap) {
        *overflow = true;
        return;
    }
    if (len)
        strcat(list, ",");
    strcat(list, ep);
}

static void
s_member(const char *key, const char *value, void *arg)
{
    (void)key;
    s_members_t *m = arg;
    json_error_t err;
    json_t *rec = json_loads(value, 0, &err);
    s_append(m->events, m->cap,
             json_string_value(json_object_get(rec, "events")), &m->overflow);
    s_append(m->changes, m->cap,
             json_string_value(json_object_get(rec, "changes")), &m->overflow);
    json_decref(rec);
}

//  Read the leader key: its query and admin endpoints (PRES_ENDPOINT_MAX
//  each) and term. 0, 1 none, -1.
static int
s_read_leader(pres_etcd_t *etcd, const char *key, char *query, char *admin,
              int64_t *term)
{
    char value[PRES_ETCD_VALUE_MAX];
    int rc = pres_etcd_get(etcd, key, value, sizeof value, term);
    if (rc)
        return rc;
    json_error_t err;
    json_t *rec = json_loads(value, 0, &err);
    const char *q = json_string_value(json_object_get(rec, "query"));
    const char *a = json_string_value(json_object_get(rec, "admin"));
    rc = q && strlen(q) < PRES_ENDPOINT_MAX ? 0 : -1;
    if (rc == 0) {
        snprintf(query, PRES_ENDPOINT_MAX, "%s", q);
        snprintf(admin, PRES_ENDPOINT_MAX, "%s",
                 a && strlen(a) < PRES_ENDPOINT_MAX ? a : "");
    }
    json_decref(rec);
    return rc;
}

static void *
s_watch(void *arg)
{
    (void)arg;
    pres_etcd_t *etcd = pres_etcd_new(s_etcd, 1000);
    if (!etcd)
        return NULL;
    for (;;) {
        char query[PRES_ENDPOINT_MAX], admin[PRES_ENDPOINT_MAX];
        int64_t term = 0;
        if (s_read_leader(etcd, s_key, query, admin, &term) == 0) {
            pthread_mutex_lock(&s_lock);
            if (term != s_term)
                pres_log_info("broker leader changed: term %lld at %s",
                              (long long)term, query);
            s_term = term;
            snprintf(s_query, sizeof s_query, "%s", query);
            snprintf(s_admin, sizeof s_admin, "%s", admin);
            pthread_mutex_unlock(&s_lock);
        }
        struct timespec pause = {0, S_WATCH_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

int
pres_leader_resolve(pres_config_t *cfg, int wait_ms)
{
    if (!*cfg->etcd_endpoints)
        return 0;
    pres_etcd_t *etcd = pres_etcd_new(cfg->etcd_endpoints, 1000);
    if (!etcd)
        return -1;
    char key[256];
    snprintf(key, sizeof key, "%s/leader", cfg->etcd_prefix);
    char query[PRES_ENDPOINT_MAX], admin[PRES_ENDPOINT_MAX];
    int64_t term = 0;
    int64_t until = pres_mono_ms() + wait_ms;
    int rc;
    while ((rc = s_read_leader(etcd, key, query, admin, &term)) != 0 &&
           pres_mono_ms() < until) {
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (rc) {
        pres_log_error("no broker leader under %s in etcd %s", key,
                       cfg->etcd_endpoints);
        pres_etcd_destroy(&etcd);
        return -1;
    }
    char events[PRES_ENDPOINT_MAX] = "", changes[PRES_ENDPOINT_MAX] = "";
    s_members_t m = {events, changes, sizeof events, false};
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s/members/", cfg->etcd_prefix);
    rc = pres_etcd_range_prefix(etcd, prefix, s_member, &m);
    pres_etcd_destroy(&etcd);
    if (rc || m.overflow || !*events || !*changes) {
        pres_log_error("cannot read the brokers under %s (or their endpoints "
                       "exceed %d bytes)",
                       prefix, PRES_ENDPOINT_MAX);
        return -1;
    }
    snprintf(cfg->events_endpoint, sizeof cfg->events_endpoint, "%s", events);
    snprintf(cfg->changes_endpoint, sizeof cfg->changes_endpoint, "%s",
             changes);
    snprintf(cfg->query_endpoint, sizeof cfg->query_endpoint, "%s", query);
    if (*admin)
        snprintf(cfg->admin_endpoint, sizeof cfg->admin_endpoint, "%s", admin);
    pthread_mutex_lock(&s_lock);
    bool start = !s_on;
    s_on = true;
    s_term = term;
    snprintf(s_query, sizeof s_query, "%s", query);
    snprintf(s_admin, sizeof s_admin, "%s", admin);
    snprintf(s_etcd, sizeof s_etcd, "%s", cfg->etcd_endpoints);
    snprintf(s_key, sizeof s_key, "%s", key);
    pthread_mutex_unlock(&s_lock);
    if (start) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, s_watch, NULL) == 0)
            pthread_detach(thread);
        else
            pres_log_warn("pthread_create(leader watcher) failed");
    }
    pres_log_info("brokers from etcd: leader term %lld, events %s, changes "
                  "%s, queries %s",
                  (long long)term, events, changes, query);
    return 0;
}

bool
pres_leader_endpoint(bool admin, char *out, size_t cap, int64_t *term)
{
    pthread_mutex_lock(&s_lock);
    const char *ep = admin ? s_admin : s_query;
    bool on = s_on && *ep;
    if (on) {
        snprintf(out, cap, "%s", ep);
        if (term)
            *term = s_term;
    }
    pthread_mutex_unlock(&s_lock);
    return on;
}
