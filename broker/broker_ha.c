/*  broker_ha: the election thread (see broker_ha.h). All etcd calls run
    here, never in the broker's loop, so a slow etcd cannot stall events;
    the loop only reads a mutex-protected view. */
#include "broker_ha.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pres_etcd.h"
#include "pres_log.h"

#define S_POLL_MS 200  //  a follower reads the leader key this often

struct broker_ha {
    const pres_config_t *cfg;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;  //  guards everything below
    pthread_cond_t wake;   //  stop or resign requested
    bool stop;
    bool resign;
    bool ready;
    broker_ha_view_t view;
    //  Thread-only
    pres_etcd_t *etcd;
    char key[256];         //  <prefix>/leader
    char record[1024];     //  our leader/member record (JSON)
    int64_t lease;         //  our lease while leading, else 0
    int64_t absent_since;  //  monotonic ms the leader key was first missed
    int others;            //  other members seen by s_others_registered
    bool renew_failed;     //  the last keepalive got no answer: retry soon
};

static int64_t
s_ttl_ms(const broker_ha_t *self)
{
    return (int64_t)self->cfg->failover_ttl * 1000;
}

//  Leading is allowed until this long after a renewal was sent: well
//  inside the lease, so the old leader is silent before etcd lets anyone
//  else win (clocks here are monotonic; only their rates must agree).
static int64_t
s_valid_ms(const broker_ha_t *self)
{
    return s_ttl_ms(self) * 3 / 4;
}

static void
s_parse_record(const char *text, broker_ha_view_t *view)
{
    json_error_t err;
    json_t *rec = json_loads(text, 0, &err);
    const char *node = json_string_value(json_object_get(rec, "node"));
    const char *repl = json_string_value(json_object_get(rec, "repl"));
    snprintf(view->leader, sizeof view->leader, "%s", node ? node : "");
    snprintf(view->leader_repl, sizeof view->leader_repl, "%s",
             repl ? repl : "");
    json_decref(rec);
}

//  Sleep up to ms, or until stop/resign. Returns true when stopping.
static bool
s_sleep(broker_ha_t *self, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&self->lock);
    while (!self->stop && !self->resign &&
           pthread_cond_timedwait(&self->wake, &self->lock, &until) == 0)
        ;
    bool stop = self->stop;
    pthread_mutex_unlock(&self->lock);
    return stop;
}

static void
s_set_follower(broker_ha_t *self, int64_t term, const char *value)
{
    pthread_mutex_lock(&self->lock);
    self->view.role = BROKER_HA_FOLLOWER;
    self->view.term = term;
    self->view.valid_until = 0;
    if (value)
        s_parse_record(value, &self->view);
    else {
        self->view.leader[0] = 0;
        self->view.leader_repl[0] = 0;
    }
    pthread_mutex_unlock(&self->lock);
}

static void
s_step_down(broker_ha_t *self, int64_t term)
{
    if (self->lease) {
        //  Best effort: the lease runs out by itself anyway.
        pres_etcd_delete_if(self->etcd, self->key, term);
        pres_etcd_lease_revoke(self->etcd, self->lease);
        self->lease = 0;
    }
    s_set_follower(self, term, NULL);
}

static void
s_count_other(const char *key, const char *value, void *arg)
{
    (void)value;
    const char *me = ((const broker_ha_t *)arg)->cfg->node_name;
    const char *name = strrchr(key, '/');
    if (name && strcmp(name + 1, me) != 0)
        ((broker_ha_t *)arg)->others++;
}

//  True if another broker ever registered under this prefix (or etcd did
//  not say): then an unsynced broker gives a synced standby its chance.
static bool
s_others_registered(broker_ha_t *self)
{
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s/members/", self->cfg->etcd_prefix);
    self->others = 0;
    if (pres_etcd_range_prefix(self->etcd, prefix, s_count_other, self))
        return true;
    return self->others > 0;
}

//  One follower turn: read the key; campaign when it is absent and this
//  broker may (ready, or the key has been missing for a whole ttl).
static void
s_follow(broker_ha_t *self)
{
    char value[PRES_ETCD_VALUE_MAX];
    int64_t rev = 0;
    int rc = pres_etcd_get(self->etcd, self->key, value, sizeof value, &rev);
    if (rc < 0)
        return;  //  etcd away: keep the last view, try again
    int64_t now = pres_mono_ms();
    if (rc == 0) {
        broker_ha_view_t probe = {0};
        s_parse_record(value, &probe);
        if (strcmp(probe.leader, self->cfg->node_name) != 0) {
            s_set_follower(self, rev, value);
            self->absent_since = 0;
            return;
        }
        //  Our own key from a previous life: wait for its lease to end.
    }
    if (!self->absent_since)
        self->absent_since = now;
    pthread_mutex_lock(&self->lock);
    bool ready = self->ready;
    pthread_mutex_unlock(&self->lock);
    if (rc == 0)
        return;
    if (!ready && now - self->absent_since < s_ttl_ms(self) &&
        s_others_registered(self))
        return;
    int64_t sent = pres_mono_ms();
    int64_t lease = 0;
    if (pres_etcd_lease_grant(self->etcd, self->cfg->failover_ttl, &lease))
        return;
    rc = pres_etcd_create(self->etcd, self->key, self->record, lease, &rev,
                          value, sizeof value);
    if (rc != 0) {
        pres_etcd_lease_revoke(self->etcd, lease);
        if (rc == 1)
            s_set_follower(self, rev, value);
        return;
    }
    self->lease = lease;
    self->absent_since = 0;
    pthread_mutex_lock(&self->lock);
    self->view.role = BROKER_HA_LEADER;
    self->view.term = rev;
    self->view.valid_until = sent + s_valid_ms(self);
    snprintf(self->view.leader, sizeof self->view.leader, "%s",
             self->cfg->node_name);
    snprintf(self->view.leader_repl, sizeof self->view.leader_repl, "%s",
             self->cfg->repl_endpoint);
    pthread_mutex_unlock(&self->lock);
    pres_log_info("elected leader, term %" PRId64, rev);
}

//  One leader turn: renew the lease, or give up once the deadline passed.
static void
s_lead(broker_ha_t *self)
{
    int64_t sent = pres_mono_ms();
    int64_t left = 0;
    int rc = pres_etcd_lease_keepalive(self->etcd, self->lease, &left);
    self->renew_failed = rc != 0;
    pthread_mutex_lock(&self->lock);
    int64_t term = self->view.term;
    if (rc == 0)
        self->view.valid_until = sent + s_valid_ms(self);
    bool lost =
        rc == PRES_ETCD_NOTFOUND || pres_mono_ms() >= self->view.valid_until;
    if (lost)
        self->view.valid_until = 0;
    pthread_mutex_unlock(&self->lock);
    if (lost) {
        pres_log_warn("lost the leader lease of term %" PRId64
                      " (etcd %s); stepping down",
                      term,
                      rc == PRES_ETCD_NOTFOUND ? "expired it" : "unreachable");
        self->lease = 0;  //  gone or unreachable: nothing to revoke
        s_set_follower(self, term, NULL);
        //  A deposed leader's state may hold changes no standby has:
        //  it must not win again before a ready standby had its chance.
        pthread_mutex_lock(&self->lock);
        self->ready = false;
        pthread_mutex_unlock(&self->lock);
        self->absent_since = pres_mono_ms();
    }
}

static void *
s_run(void *arg)
{
    broker_ha_t *self = arg;
    char member[300];
    snprintf(member, sizeof member, "%s/members/%s", self->cfg->etcd_prefix,
             self->cfg->node_name);
    bool registered = false;
    for (;;) {
        pthread_mutex_lock(&self->lock);
        bool resign = self->resign;
        self->resign = false;
        bool leading = self->view.role == BROKER_HA_LEADER;
        int64_t term = self->view.term;
        pthread_mutex_unlock(&self->lock);
        if (resign && leading) {
            pres_log_info("resigning leadership of term %" PRId64, term);
            s_step_down(self, term);
            pthread_mutex_lock(&self->lock);
            self->ready = false;
            pthread_mutex_unlock(&self->lock);
            self->absent_since = pres_mono_ms();
            leading = false;
        }
        if (!registered)
            registered =
                pres_etcd_put(self->etcd, member, self->record, 0) == 0;
        if (leading)
            s_lead(self);
        else
            s_follow(self);
        pthread_mutex_lock(&self->lock);
        leading = self->view.role == BROKER_HA_LEADER;
        pthread_mutex_unlock(&self->lock);
        //  A leader renews every ttl/3, and retries at once-a-poll pace
        //  while etcd does not answer (an etcd election takes ~1 s).
        int64_t pause =
            leading && !self->renew_failed ? s_ttl_ms(self) / 3 : S_POLL_MS;
        if (s_sleep(self, pause))
            break;
    }
    pthread_mutex_lock(&self->lock);
    bool leading = self->view.role == BROKER_HA_LEADER;
    int64_t term = self->view.term;
    pthread_mutex_unlock(&self->lock);
    if (leading)
        s_step_down(self, term);
    return NULL;
}

broker_ha_t *
broker_ha_new(const pres_config_t *cfg)
{
    assert(*cfg->etcd_endpoints);
    broker_ha_t *self = calloc(1, sizeof *self);
    if (!self) {
        pres_log_error("calloc() failed for the election");
        return NULL;
    }
    self->cfg = cfg;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    snprintf(self->key, sizeof self->key, "%s/leader", cfg->etcd_prefix);
    json_t *rec =
        json_pack("{ssssssssssss}", "node", cfg->node_name, "events",
                  cfg->events_endpoint, "changes", cfg->changes_endpoint,
                  "query", cfg->query_endpoint, "admin", cfg->admin_endpoint,
                  "repl", cfg->repl_endpoint);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text || strlen(text) >= sizeof self->record) {
        pres_log_error("broker_ha: cannot build the leader record");
        free(text);
        broker_ha_destroy(&self);
        return NULL;
    }
    snprintf(self->record, sizeof self->record, "%s", text);
    free(text);
    //  Each call must return well before a leader's deadline.
    int timeout = cfg->failover_ttl * 1000 / 4;
    self->etcd = pres_etcd_new(cfg->etcd_endpoints, timeout);
    if (!self->etcd) {
        broker_ha_destroy(&self);
        return NULL;
    }
    int rc = pthread_create(&self->thread, NULL, s_run, self);
    if (rc) {
        pres_log_error("pthread_create() failed: %s", strerror(rc));
        broker_ha_destroy(&self);
        return NULL;
    }
    self->started = true;
    pres_log_info("fail-over: node %s, etcd %s, prefix %s, ttl %d s, %s "
                  "replication",
                  cfg->node_name, cfg->etcd_endpoints, cfg->etcd_prefix,
                  cfg->failover_ttl, cfg->replication);
    return self;
}

void
broker_ha_destroy(broker_ha_t **self_p)
{
    assert(self_p);
    broker_ha_t *self = *self_p;
    if (!self)
        return;
    if (self->started) {
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_cond_broadcast(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    pres_etcd_destroy(&self->etcd);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

void
broker_ha_view(broker_ha_t *self, broker_ha_view_t *view)
{
    pthread_mutex_lock(&self->lock);
    *view = self->view;
    pthread_mutex_unlock(&self->lock);
}

bool
broker_ha_leading(broker_ha_t *self)
{
    pthread_mutex_lock(&self->lock);
    bool leading = self->view.role == BROKER_HA_LEADER &&
                   pres_mono_ms() < self->view.valid_until;
    pthread_mutex_unlock(&self->lock);
    return leading;
}

void
broker_ha_set_ready(broker_ha_t *self, bool ready)
{
    pthread_mutex_lock(&self->lock);
    self->ready = ready;
    pthread_mutex_unlock(&self->lock);
}

void
broker_ha_resign(broker_ha_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->resign = true;
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->lock);
}
