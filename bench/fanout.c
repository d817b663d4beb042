/*  The change latency probe: subscribes to changes, then publishes
    login/logout pairs for its own users at a fixed rate and measures the
    time from just before pres_pub_send to the receipt of the change the
    event caused (event in, group commit, change out: the whole path). */
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
    int64_t sent_ns;  //  when the pending event was sent
    bool pending;     //  its change has not arrived yet
    bool online;      //  state after the pending/last event
} probe_user_t;

typedef struct {
    void *sub;        //  raw SUB handle
    char prefix[32];  //  our users: <prefix><index>
    probe_user_t *users;
    uint32_t nusers;
    bench_lat_t lat;
    uint64_t unexpected;  //  changes that match no pending event
    uint64_t received;
} probe_t;

//  Receive whatever is queued; wait at most wait_ms for the first one.
static void
s_receive(probe_t *self, long wait_ms)
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
        int64_t now = bench_now_ns();
        if (got == BENCH_CH_BAD)
            continue;
        self->received++;
        if (got == BENCH_CH_OTHER) {
            self->unexpected++;
            continue;
        }
        uint32_t i = (uint32_t)strtoul(suffix, NULL, 10);
        if (i >= self->nusers || !self->users[i].pending ||
            (ch.state != PRES_OFFLINE) != self->users[i].online) {
            self->unexpected++;
            continue;
        }
        self->users[i].pending = false;
        bench_lat_add(&self->lat, now - self->users[i].sent_ns);
    }
}

static int
s_send(pres_pub_t *pub, const char *prefix, uint32_t i, bool login)
{
    pres_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = login ? PRES_EV_LOGIN : PRES_EV_LOGOUT;
    bench_user_id(ev.user, prefix, i);
    snprintf(ev.session, sizeof ev.session, "s1");
    return pres_pub_send(pub, &ev, 2000);
}

int
bench_fanout_main(int argc, char **argv)
{
    double rate = 1000, seconds = 5;
    uint32_t nusers = 1000;
    int opt;
    while ((opt = getopt(argc, argv, "r:d:u:h")) != -1) {
        switch (opt) {
        case 'r':
            rate = atof(optarg);
            break;
        case 'd':
            seconds = atof(optarg);
            break;
        case 'u':
            nusers = (uint32_t)atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: presence-bench fanout [-r events/s] "
                            "[-d seconds] [-u probe users]\n");
            return 2;
        }
    }
    if (rate <= 0 || seconds <= 0 || nusers < 2)
        return 2;
    pres_config_t cfg;
    if (bench_config(&cfg))
        return 1;
    static probe_t self;
    snprintf(self.prefix, sizeof self.prefix, "fo%d-", (int)getpid());
    self.nusers = nusers + 1;  //  the last one warms up the path
    self.users = calloc(self.nusers, sizeof *self.users);
    bench_lat_init(&self.lat, 4000000);
    char topic[64];
    snprintf(topic, sizeof topic, "%s%s", PRES_CHANGE_PREFIX, self.prefix);
    zsock_t *sub = pres_bus_sub_changes(&cfg, topic);
    pres_pub_t *pub = NULL;
    char src[PRES_ID_MAX + 1];
    snprintf(src, sizeof src, "fanout-%d", (int)getpid());
    if (sub)
        pub = pres_pub_new(&cfg, src);
    pres_qclient_t *qc = pres_qclient_new(&cfg);
    bench_stats_t before, after;
    if (!sub || !pub || !qc || !pres_pub_wait(pub, 5000) ||
        bench_stats(qc, &before, 5000)) {
        fprintf(stderr, "fanout: cannot reach the broker\n");
        return 1;
    }
    self.sub = zsock_resolve(sub);

    //  Warm up until a change comes back (the SUB may join late).
    uint32_t warm = nusers;
    int64_t give_up = bench_now_ns() + 5000000000LL;
    while (self.lat.count == 0 && bench_now_ns() < give_up) {
        probe_user_t *w = &self.users[warm];
        if (!w->pending) {
            w->online = !w->online;
            w->pending = true;
            w->sent_ns = bench_now_ns();
            if (s_send(pub, self.prefix, warm, w->online))
                return 1;
        }
        s_receive(&self, 200);
        if (w->pending && bench_now_ns() - w->sent_ns > 500000000LL)
            w->pending = false;  //  lost to the slow joiner: try again
    }
    if (self.lat.count == 0) {
        fprintf(stderr, "fanout: no change received in 5 s\n");
        return 1;
    }
    bench_lat_free(&self.lat);
    bench_lat_init(&self.lat, 4000000);
    self.unexpected = 0;

    int64_t step = (int64_t)(1e9 / rate);
    int64_t t0 = bench_now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    int64_t next = t0;
    uint64_t k = 0, sent = 0, skipped = 0;
    while (true) {
        int64_t now = bench_now_ns();
        if (now >= end)
            break;
        if (now >= next) {
            uint32_t i = (uint32_t)(k++ % nusers);
            probe_user_t *u = &self.users[i];
            if (u->pending)
                skipped++;  //  its previous change is still on the way
            else {
                u->online = !u->online;
                u->pending = true;
                u->sent_ns = bench_now_ns();
                if (s_send(pub, self.prefix, i, u->online)) {
                    fprintf(stderr, "fanout: send failed\n");
                    return 1;
                }
                sent++;
            }
            next += step;
            continue;
        }
        s_receive(&self, (long)((next - now) / 1000000));
    }
    //  Collect the stragglers.
    int64_t deadline = bench_now_ns() + 3000000000LL;
    while (self.lat.count < sent && bench_now_ns() < deadline)
        s_receive(&self, 50);
    uint64_t missing = sent - self.lat.count;
    if (bench_stats(qc, &after, 5000))
        return 1;
    bench_lat_sort(&self.lat);
    printf("probe_rate=%.0f sent=%llu skipped=%llu missing=%llu "
           "unexpected=%llu lost=%llu\n",
           rate, (unsigned long long)sent, (unsigned long long)skipped,
           (unsigned long long)missing, (unsigned long long)self.unexpected,
           (unsigned long long)(after.lost - before.lost));
    bench_lat_print(&self.lat, "fanout");
    bench_lat_free(&self.lat);
    free(self.users);
    pres_qclient_destroy(&qc);
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    return missing ? 1 : 0;
}
