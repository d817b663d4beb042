/*  bench_util: clocks, latency percentiles, broker stats and small
    helpers shared by the presence-bench drivers. */
#include "bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pres_log.h"
#include "pres_mp.h"

int64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
bench_sleep_until(int64_t t_ns)
{
    int64_t left = t_ns - bench_now_ns();
    if (left <= 0)
        return;
    struct timespec ts = {left / 1000000000, left % 1000000000};
    nanosleep(&ts, NULL);
}

void
bench_lat_init(bench_lat_t *self, size_t max)
{
    memset(self, 0, sizeof *self);
    self->max = max;
}

void
bench_lat_add(bench_lat_t *self, int64_t ns)
{
    self->count++;
    if (ns > self->worst)
        self->worst = ns;
    if (self->n == self->cap) {
        if (self->cap >= self->max)
            return;
        size_t cap = self->cap ? self->cap * 2 : 4096;
        if (cap > self->max)
            cap = self->max;
        int64_t *v = realloc(self->v, cap * sizeof *v);
        if (!v)
            return;
        self->v = v;
        self->cap = cap;
    }
    self->v[self->n++] = ns;
}

static int
s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void
bench_lat_sort(bench_lat_t *self)
{
    if (self->n)
        qsort(self->v, self->n, sizeof *self->v, s_cmp_i64);
}

int64_t
bench_lat_pct(const bench_lat_t *self, double p)
{
    if (self->n == 0)
        return 0;
    size_t i = (size_t)((p / 100.0) * (double)self->n + 0.5);
    if (i >= 1)
        i--;
    if (i >= self->n)
        i = self->n - 1;
    return self->v[i];
}

void
bench_lat_free(bench_lat_t *self)
{
    free(self->v);
    memset(self, 0, sizeof *self);
}

void
bench_lat_print(const bench_lat_t *self, const char *name)
{
    printf("%s_n=%llu %s_p50_us=%.1f %s_p99_us=%.1f %s_p999_us=%.1f "
           "%s_max_us=%.1f\n",
           name, (unsigned long long)self->count, name,
           bench_lat_pct(self, 50) / 1e3, name, bench_lat_pct(self, 99) / 1e3,
           name, bench_lat_pct(self, 99.9) / 1e3, name, self->worst / 1e3);
}

int
bench_stats(pres_qclient_t *qc, bench_stats_t *st, int timeout_ms)
{
    pres_query_t q = {.op = PRES_Q_STATS};
    char *error = NULL;
    zframe_t *rep = pres_qclient_query(qc, &q, timeout_ms, &error);
    if (!rep) {
        fprintf(stderr, "bench: stats query failed: %s\n",
                error ? error : strerror(errno));
        free(error);
        return -1;
    }
    const void *b = zframe_data(rep);
    size_t n = zframe_size(rep);
    memset(st, 0, sizeof *st);
    int rc = 0;
    rc |= pres_mp_find_uint(b, n, "seq", &st->seq);
    rc |= pres_mp_find_uint(b, n, "events.applied", &st->applied);
    rc |= pres_mp_find_uint(b, n, "events.refused", &st->refused);
    rc |= pres_mp_find_uint(b, n, "events.lost", &st->lost);
    //  Optional in a null broker.
    pres_mp_find_uint(b, n, "users.online", &st->online);
    pres_mp_find_uint(b, n, "users.away", &st->away);
    pres_mp_find_uint(b, n, "users.offline", &st->offline);
    pres_mp_find_uint(b, n, "sessions", &st->sessions);
    pres_mp_find_uint(b, n, "storage.commits", &st->commits);
    pres_mp_find_uint(b, n, "storage.syncs", &st->syncs);
    zframe_destroy(&rep);
    if (rc) {
        fprintf(stderr, "bench: stats reply lacks seq/events.*\n");
        return -1;
    }
    return 0;
}

int
bench_wait_applied(pres_qclient_t *qc, uint64_t target, int poll_ms,
                   int idle_ms, bench_stats_t *st, int64_t *when_ns)
{
    uint64_t last = 0;
    int64_t progress_ns = bench_now_ns();
    while (true) {
        if (bench_stats(qc, st, 5000))
            return -1;
        int64_t now = bench_now_ns();
        uint64_t done = st->applied + st->refused;
        if (done >= target) {
            *when_ns = now;
            return 0;
        }
        if (done != last) {
            last = done;
            progress_ns = now;
        } else if (now - progress_ns > (int64_t)idle_ms * 1000000) {
            fprintf(stderr,
                    "bench: broker stuck at %llu of %llu events for %d ms\n",
                    (unsigned long long)done, (unsigned long long)target,
                    idle_ms);
            return -1;
        }
        bench_sleep_until(now + (int64_t)poll_ms * 1000000);
    }
}

long
bench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

bench_ch_t
bench_next_change(void *sub, const char *prefix, pres_change_t *ch,
                  const char **suffix)
{
    char topic[PRES_TOPIC_MAX + 1];
    char body[PRES_MSG_MAX + 1];
    if (zmq_recv(sub, topic, sizeof topic, ZMQ_DONTWAIT) < 0)
        return BENCH_CH_NONE;
    int len = zmq_recv(sub, body, sizeof body, 0);
    const char *why;
    if (len < 0 || len >= (int)sizeof body ||
        pres_change_decode(ch, body, (size_t)len, &why) != 0)
        return BENCH_CH_BAD;
    size_t plen = strlen(prefix);
    if (strncmp(ch->user, prefix, plen) != 0)
        return BENCH_CH_OTHER;
    *suffix = ch->user + plen;
    return BENCH_CH_OURS;
}

void
bench_user_id(char *out, const char *prefix, uint64_t n)
{
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    char digits[24];
    int d = 0;
    do {
        digits[d++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    for (int i = 0; i < d; i++)
        out[plen + i] = digits[d - 1 - i];
    out[plen + d] = 0;
}

int
bench_config(pres_config_t *cfg)
{
    pres_config_defaults(cfg);
    return pres_config_load(cfg, NULL);
}
