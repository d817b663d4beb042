/*  The expiry probe: logs in N sessions in one burst (so their deadlines
    fall within about a second), then waits for every one of them to go
    offline with reason timeout and measures, per session, how late that
    was: receipt of the change (wall clock) minus the session's deadline
    (the broker's, from the login change). Broker and sweeper must run with
    the same `timeout`. */
#include "bench.h"
#include "bench_util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pres_log.h"

typedef struct {
    int64_t deadline_ms;  //  from the login change; 0 = not seen yet
    int64_t offline_ms;   //  receipt of the timeout change; 0 = not yet
} exp_session_t;

typedef struct {
    void *sub;
    char prefix[32];
    uint32_t n;
    exp_session_t *s;
    double timeout_s;
    uint32_t logins_seen, offline_seen, derived, other;
    int64_t warm_seen;
} exp_probe_t;

static void
s_receive(exp_probe_t *self, long wait_ms)
{
    zmq_pollitem_t item = {self->sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, wait_ms) <= 0)
        return;
    while (true) {
        pres_change_t ch;
        const char *suffix;
        bench_ch_t got =
            bench_next_change(self->sub, self->prefix, &ch, &suffix);
        if (got == BENCH_CH_NONE)
            return;
        int64_t now = pres_now_ms();
        if (got != BENCH_CH_OURS)
            continue;
        if (!strcmp(suffix, "warm")) {
            self->warm_seen = now;
            continue;
        }
        uint32_t i = (uint32_t)strtoul(suffix, NULL, 10);
        if (i >= self->n)
            continue;
        exp_session_t *s = &self->s[i];
        if (ch.reason == PRES_RSN_LOGIN && s->deadline_ms == 0) {
            if (ch.deadline)
                s->deadline_ms = (int64_t)ch.deadline;
            else {
                s->deadline_ms =
                    (int64_t)ch.at + (int64_t)(self->timeout_s * 1000);
                self->derived++;
            }
            self->logins_seen++;
        } else if (ch.reason == PRES_RSN_TIMEOUT && ch.state == PRES_OFFLINE &&
                   s->offline_ms == 0) {
            s->offline_ms = now;
            self->offline_seen++;
        } else
            self->other++;
    }
}

static int
s_send(pres_pub_t *pub, const char *prefix, const char *who, uint32_t i,
       pres_ev_type_t type)
{
    pres_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    if (who)
        snprintf(ev.user, sizeof ev.user, "%s%s", prefix, who);
    else
        bench_user_id(ev.user, prefix, i);
    snprintf(ev.session, sizeof ev.session, "s1");
    return pres_pub_send(pub, &ev, 5000);
}

int
bench_expiry_main(int argc, char **argv)
{
    uint32_t n = 100000;
    int opt;
    while ((opt = getopt(argc, argv, "n:h")) != -1) {
        if (opt == 'n')
            n = (uint32_t)atoi(optarg);
        else {
            fprintf(stderr, "usage: presence-bench expiry [-n sessions]\n"
                            "  (set PRESENCE_TIMEOUT as for the daemons)\n");
            return 2;
        }
    }
    pres_config_t cfg;
    if (n < 1 || bench_config(&cfg))
        return 1;
    static exp_probe_t self;
    self.n = n;
    self.s = calloc(n, sizeof *self.s);
    self.timeout_s = cfg.timeout;
    snprintf(self.prefix, sizeof self.prefix, "ex%d-", (int)getpid());
    char topic[64];
    snprintf(topic, sizeof topic, "%s%s", PRES_CHANGE_PREFIX, self.prefix);
    zsock_t *sub = pres_bus_sub_changes(&cfg, topic);
    char src[PRES_ID_MAX + 1];
    snprintf(src, sizeof src, "expiry-%d", (int)getpid());
    pres_pub_t *pub = sub ? pres_pub_new(&cfg, src) : NULL;
    pres_qclient_t *qc = pres_qclient_new(&cfg);
    bench_stats_t before, after;
    if (!self.s || !pub || !qc || !pres_pub_wait(pub, 5000) ||
        bench_stats(qc, &before, 5000)) {
        fprintf(stderr, "expiry: cannot reach the broker\n");
        return 1;
    }
    self.sub = zsock_resolve(sub);
    //  Warm up: a change must come back before the burst counts.
    bool warm_online = false;
    int64_t give_up = pres_mono_ms() + 5000;
    while (!self.warm_seen && pres_mono_ms() < give_up) {
        warm_online = !warm_online;
        if (s_send(pub, self.prefix, "warm", 0,
                   warm_online ? PRES_EV_LOGIN : PRES_EV_LOGOUT))
            return 1;
        s_receive(&self, 300);
    }
    if (!self.warm_seen) {
        fprintf(stderr, "expiry: no change received in 5 s\n");
        return 1;
    }
    if (warm_online)
        s_send(pub, self.prefix, "warm", 0, PRES_EV_LOGOUT);

    int64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < n; i++) {
        if (s_send(pub, self.prefix, NULL, i, PRES_EV_LOGIN)) {
            fprintf(stderr, "expiry: login %u failed: %s\n", i,
                    strerror(errno));
            return 1;
        }
        if ((i & 1023) == 1023)
            s_receive(&self, 0);
    }
    double burst_s = (double)(bench_now_ns() - t0) / 1e9;
    //  All login changes, then all timeouts (bounded).
    int64_t limit = pres_now_ms() + (int64_t)(self.timeout_s * 1000) + 60000;
    while (self.offline_seen < n && pres_now_ms() < limit) {
        s_receive(&self, 100);
        if (self.logins_seen < n && pres_now_ms() > limit - 30000)
            break;
    }
    int64_t dmin = INT64_MAX, dmax = 0, last_off = 0;
    bench_lat_t late;
    bench_lat_init(&late, n);
    uint32_t within = 0, early = 0;
    for (uint32_t i = 0; i < n; i++) {
        exp_session_t *s = &self.s[i];
        if (!s->deadline_ms)
            continue;
        if (s->deadline_ms < dmin)
            dmin = s->deadline_ms;
        if (s->deadline_ms > dmax)
            dmax = s->deadline_ms;
        if (!s->offline_ms)
            continue;
        int64_t l = s->offline_ms - s->deadline_ms;
        if (s->offline_ms > last_off)
            last_off = s->offline_ms;
        bench_lat_add(&late, l * 1000000);
        within += l <= 1000;
        early += l < 0;
    }
    bench_lat_sort(&late);
    if (bench_stats(qc, &after, 5000))
        return 1;
    uint32_t missing = n - self.offline_seen;
    printf("sessions=%u timeout_s=%.1f burst_s=%.3f deadline_spread_ms=%lld "
           "login_changes=%u offline=%u missing=%u within_1s=%u early=%u "
           "last_offline_after_last_deadline_ms=%lld derived_deadlines=%u "
           "lost=%llu\n",
           n, self.timeout_s, burst_s,
           (long long)(dmax >= dmin ? dmax - dmin : 0), self.logins_seen,
           self.offline_seen, missing, within, early,
           (long long)(last_off ? last_off - dmax : -1), self.derived,
           (unsigned long long)(after.lost - before.lost));
    printf("late_p50_ms=%.0f late_p99_ms=%.0f late_max_ms=%.0f\n",
           bench_lat_pct(&late, 50) / 1e6, bench_lat_pct(&late, 99) / 1e6,
           late.worst / 1e6);
    bench_lat_free(&late);
    free(self.s);
    pres_qclient_destroy(&qc);
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    return missing ? 1 : 0;
}
