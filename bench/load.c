/*  The bus load driver: N publisher threads, each with its own pres_pub_t,
    sending events for K distinct users at full speed or at a fixed rate,
    then waiting until the broker's `stats` shows every event applied.
    Prints what was sent, what the broker applied per second (counted to
    the moment all of it was applied) and what it counted lost. */
#include "bench.h"
#include "bench_util.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pres_log.h"

typedef enum { LOAD_HEARTBEAT, LOAD_LOGIN, LOAD_LOGOUT, LOAD_FILL } load_kind_t;

typedef struct {
    const pres_config_t *cfg;
    int index;
    load_kind_t kind;
    const char *prefix;
    uint64_t user_first;  //  this thread's users: [first, first + count)
    uint64_t user_count;
    uint64_t events;  //  to send
    double rate;      //  events/s for this thread, 0 = full speed
    pthread_barrier_t *start;
    pres_pub_t *pub;  //  kept until the broker has applied what was sent:
                      //  its 2 s linger would drop a slow broker's tail
    //  Results
    uint64_t sent;
    uint64_t retries;  //  EAGAIN waits that ran out and were retried
    int failed;
} load_thread_t;

static void *
s_publisher(void *arg)
{
    load_thread_t *t = arg;
    char src[PRES_ID_MAX + 1];
    snprintf(src, sizeof src, "bench-%d-%d", (int)getpid(), t->index);
    pres_pub_t *pub = pres_pub_new(t->cfg, src);
    if (!pub || !pres_pub_wait(pub, 5000)) {
        fprintf(stderr, "load: publisher %s could not attach\n", src);
        t->failed = 1;
        pthread_barrier_wait(t->start);
        pres_pub_destroy(&pub);
        return NULL;
    }
    pthread_barrier_wait(t->start);
    pres_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.session, sizeof ev.session, "s1");
    uint64_t u = 0;       //  next user offset
    bool second = false;  //  fill: logout after login
    int64_t step_ns = t->rate > 0 ? (int64_t)(1e9 / t->rate) : 0;
    int64_t next_ns = bench_now_ns();  //  each thread paces from its start
    while (t->sent < t->events) {
        if (step_ns) {
            //  Fixed rate: send what is due, then sleep a little.
            int64_t now = bench_now_ns();
            if (now < next_ns) {
                int64_t wake = next_ns < now + 200000 ? next_ns : now + 200000;
                bench_sleep_until(wake);
                continue;
            }
            next_ns += step_ns;
        }
        switch (t->kind) {
        case LOAD_HEARTBEAT:
            ev.type = PRES_EV_HEARTBEAT;
            break;
        case LOAD_LOGIN:
            ev.type = PRES_EV_LOGIN;
            break;
        case LOAD_LOGOUT:
            ev.type = PRES_EV_LOGOUT;
            break;
        case LOAD_FILL:
            ev.type = second ? PRES_EV_LOGOUT : PRES_EV_LOGIN;
            break;
        }
        bench_user_id(ev.user, t->prefix, t->user_first + u);
        ev.at = 0;
        if (pres_pub_send(pub, &ev, 5000) != 0) {
            if (errno == EAGAIN && t->retries++ < 10)
                continue;
            fprintf(stderr, "load: %s send failed: %s\n", src, strerror(errno));
            t->failed = 1;
            break;
        }
        t->sent++;
        if (t->kind == LOAD_FILL && !second) {
            second = true;
            continue;
        }
        second = false;
        if (++u == t->user_count)
            u = 0;
    }
    t->pub = pub;  //  destroyed by the main thread after the wait
    return NULL;
}

static void
s_usage(void)
{
    fprintf(stderr,
            "usage: presence-bench load [-t heartbeat|login|logout|fill] "
            "[-p publishers] [-u users] [-o first_user] [-x prefix] "
            "[-n events] [-r rate/s] [-d seconds] [-W]\n"
            "  fill = login + logout per user (n default 2 x users; more goes "
            "round)\n"
            "  -r with -d sends rate x seconds events; -W: do not wait for "
            "the broker\n");
}

int
bench_load_main(int argc, char **argv)
{
    load_kind_t kind = LOAD_HEARTBEAT;
    int publishers = 1;
    uint64_t users = 10000, first = 0, events = 0;
    double rate = 0, seconds = 0;
    const char *prefix = "u";
    bool wait = true;
    int opt;
    while ((opt = getopt(argc, argv, "t:p:u:o:x:n:r:d:Wh")) != -1) {
        switch (opt) {
        case 't':
            if (!strcmp(optarg, "heartbeat"))
                kind = LOAD_HEARTBEAT;
            else if (!strcmp(optarg, "login"))
                kind = LOAD_LOGIN;
            else if (!strcmp(optarg, "logout"))
                kind = LOAD_LOGOUT;
            else if (!strcmp(optarg, "fill"))
                kind = LOAD_FILL;
            else {
                s_usage();
                return 2;
            }
            break;
        case 'p':
            publishers = atoi(optarg);
            break;
        case 'u':
            users = strtoull(optarg, NULL, 10);
            break;
        case 'o':
            first = strtoull(optarg, NULL, 10);
            break;
        case 'x':
            prefix = optarg;
            break;
        case 'n':
            events = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'd':
            seconds = atof(optarg);
            break;
        case 'W':
            wait = false;
            break;
        default:
            s_usage();
            return 2;
        }
    }
    if (publishers < 1 || publishers > 64 || users < (uint64_t)publishers) {
        s_usage();
        return 2;
    }
    if (kind == LOAD_FILL)
        events = events ? events & ~(uint64_t)1 : 2 * users;
    else if (rate > 0 && seconds > 0)
        events = (uint64_t)(rate * seconds);
    else if (events == 0)
        events = users;
    pres_config_t cfg;
    if (bench_config(&cfg))
        return 1;
    pres_qclient_t *qc = pres_qclient_new(&cfg);
    bench_stats_t before, after;
    if (!qc || bench_stats(qc, &before, 5000))
        return 1;

    load_thread_t *threads = calloc((size_t)publishers, sizeof *threads);
    pthread_t *tids = calloc((size_t)publishers, sizeof *tids);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)publishers + 1);
    for (int i = 0; i < publishers; i++) {
        load_thread_t *t = &threads[i];
        t->cfg = &cfg;
        t->index = i;
        t->kind = kind;
        t->prefix = prefix;
        t->user_first = first + users * (uint64_t)i / (uint64_t)publishers;
        t->user_count = first +
                        users * (uint64_t)(i + 1) / (uint64_t)publishers -
                        t->user_first;
        t->events = events * (uint64_t)(i + 1) / (uint64_t)publishers -
                    events * (uint64_t)i / (uint64_t)publishers;
        if (kind == LOAD_FILL) {  //  whole login + logout pairs
            uint64_t pairs = events / 2;
            t->events = 2 * (pairs * (uint64_t)(i + 1) / (uint64_t)publishers -
                             pairs * (uint64_t)i / (uint64_t)publishers);
        }
        t->rate = rate > 0 ? rate / publishers : 0;
        t->start = &start;
        pthread_create(&tids[i], NULL, s_publisher, t);
    }
    pthread_barrier_wait(&start);
    int64_t t0 = bench_now_ns();
    uint64_t sent = 0, retries = 0;
    int failed = 0;
    for (int i = 0; i < publishers; i++) {
        pthread_join(tids[i], NULL);
        sent += threads[i].sent;
        retries += threads[i].retries;
        failed |= threads[i].failed;
    }
    int64_t t_sent = bench_now_ns();
    int64_t t_applied = t_sent;
    int rc = 0;
    if (wait) {
        uint64_t target = before.applied + before.refused + sent;
        if (bench_wait_applied(qc, target, 2, 10000, &after, &t_applied))
            rc = 1;
    } else if (bench_stats(qc, &after, 5000))
        rc = 1;
    double send_s = (double)(t_sent - t0) / 1e9;
    double applied_s = (double)(t_applied - t0) / 1e9;
    printf("sent=%llu send_s=%.3f send_rate=%.0f applied=%llu applied_s=%.3f "
           "applied_rate=%.0f lost=%llu refused=%llu retries=%llu "
           "failed=%d\n",
           (unsigned long long)sent, send_s, sent / send_s,
           (unsigned long long)(after.applied - before.applied), applied_s,
           (after.applied - before.applied) / applied_s,
           (unsigned long long)(after.lost - before.lost),
           (unsigned long long)(after.refused - before.refused),
           (unsigned long long)retries, failed);
    for (int i = 0; i < publishers; i++)
        pres_pub_destroy(&threads[i].pub);
    pthread_barrier_destroy(&start);
    free(threads);
    free(tids);
    pres_qclient_destroy(&qc);
    return rc || failed ? 1 : 0;
}
