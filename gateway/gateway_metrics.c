/*  gateway_metrics: relaxed atomic counters and fixed-bucket histograms
    in one object per gateway, rendered as Prometheus text. */
#include "gateway_metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pres_log.h"
#include "pres_msg.h"

//  Status codes we answer with; anything else lands in the last slot.
static const unsigned s_codes[] = {200, 204, 304, 400, 401, 403,
                                   404, 405, 413, 429, 500, 503};
#define S_NCODES (sizeof s_codes / sizeof s_codes[0])

static const char *const s_routes[GW_ROUTE_COUNT] = {
    "login",   "heartbeat", "logout",  "user",    "users",   "stats",
    "account", "events",    "static",  "healthz", "metrics", "options",
    "batch",   "audit",     "history", "series",  "other"};

static const char *const s_rejects[GW_REJ_COUNT] = {
    "rate_limited",      "too_big",
    "no_token",          "bad_token",
    "expired",           "revoked",
    "not_admin",         "account",
    "bad_request",       "bus_busy",
    "broker_timeout",    "sse_full",
    "rate_limited_addr", "connections_per_address",
    "header_timeout"};

static const char *const s_latencies[GW_LAT_COUNT] = {"publish", "query",
                                                      "login"};

//  Histogram bucket upper bounds, microseconds.
static const int64_t s_bounds[] = {50,     100,    250,    500,     1000,
                                   2500,   5000,   10000,  25000,   50000,
                                   100000, 250000, 500000, 1000000, 2500000};
#define S_NBOUNDS (sizeof s_bounds / sizeof s_bounds[0])

typedef struct {
    atomic_uint_fast64_t bucket[S_NBOUNDS + 1];  //  last = +Inf
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
} s_hist_t;

struct gw_metrics {
    atomic_uint_fast64_t requests[GW_ROUTE_COUNT][S_NCODES + 1];
    atomic_uint_fast64_t reject[GW_REJ_COUNT];
    atomic_uint_fast64_t published[6];  //  by pres_ev_type_t
    s_hist_t hist[GW_LAT_COUNT];
    atomic_uint_fast64_t changes;  //  seen on the changes stream
    atomic_uint_fast64_t gaps;     //  missed (seq gaps)
    atomic_uint_fast64_t ha_term;  //  broker leader term (0 = no fail-over)
    atomic_uint_fast64_t ha_lag;   //  its standby's lag, changes
};

gw_metrics_t *
gw_metrics_new(void)
{
    gw_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        pres_log_error("gw_metrics_new: out of memory");
    return self;
}

void
gw_metrics_destroy(gw_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

const char *
gw_route_name(gw_route_t r)
{
    return r < GW_ROUTE_COUNT ? s_routes[r] : "other";
}

static size_t
s_code_slot(unsigned status)
{
    for (size_t i = 0; i < S_NCODES; i++)
        if (s_codes[i] == status)
            return i;
    return S_NCODES;
}

void
gw_metrics_request(gw_metrics_t *self, gw_route_t route, unsigned status)
{
    if (route >= GW_ROUTE_COUNT)
        route = GW_ROUTE_OTHER;
    atomic_fetch_add_explicit(&self->requests[route][s_code_slot(status)], 1,
                              memory_order_relaxed);
}

void
gw_metrics_reject(gw_metrics_t *self, gw_reject_t why)
{
    if (why < GW_REJ_COUNT)
        atomic_fetch_add_explicit(&self->reject[why], 1, memory_order_relaxed);
}

void
gw_metrics_published(gw_metrics_t *self, int ev_type)
{
    if (ev_type >= 1 && ev_type <= 5)
        atomic_fetch_add_explicit(&self->published[ev_type], 1,
                                  memory_order_relaxed);
}

void
gw_metrics_latency(gw_metrics_t *self, gw_latency_t which, int64_t usec)
{
    if (which >= GW_LAT_COUNT)
        return;
    if (usec < 0)
        usec = 0;
    s_hist_t *h = &self->hist[which];
    size_t i = 0;
    while (i < S_NBOUNDS && usec > s_bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)usec, memory_order_relaxed);
}

void
gw_metrics_ha(gw_metrics_t *self, uint64_t term, uint64_t lag)
{
    atomic_store_explicit(&self->ha_term, term, memory_order_relaxed);
    atomic_store_explicit(&self->ha_lag, lag, memory_order_relaxed);
}

void
gw_metrics_change(gw_metrics_t *self, uint64_t gap)
{
    atomic_fetch_add_explicit(&self->changes, 1, memory_order_relaxed);
    if (gap)
        atomic_fetch_add_explicit(&self->gaps, gap, memory_order_relaxed);
}

uint64_t
gw_metrics_requests(gw_metrics_t *self, gw_route_t route, unsigned status)
{
    return atomic_load_explicit(&self->requests[route][s_code_slot(status)],
                                memory_order_relaxed);
}

uint64_t
gw_metrics_rejects(gw_metrics_t *self, gw_reject_t why)
{
    return atomic_load_explicit(&self->reject[why], memory_order_relaxed);
}

//  A growing text buffer; on allocation failure it stops growing and the
//  render returns NULL.
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} s_text_t;

static void s_add(s_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
s_add(s_text_t *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (int tries = 0; tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->buf, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->buf = p;
        t->cap = cap;
    }
}

static uint64_t
s_get(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

char *
gw_metrics_render(gw_metrics_t *self, int sse_clients, int connections,
                  int logins, size_t *len)
{
    s_text_t t = {malloc(8192), 0, 8192, 0};
    if (!t.buf)
        return NULL;
    t.buf[0] = '\0';
    s_add(&t, "# HELP presence_gateway_requests_total HTTP requests by route "
              "and status.\n# TYPE presence_gateway_requests_total counter\n");
    for (int r = 0; r < GW_ROUTE_COUNT; r++)
        for (size_t c = 0; c <= S_NCODES; c++) {
            uint64_t v = s_get(&self->requests[r][c]);
            if (v == 0)
                continue;
            if (c < S_NCODES)
                s_add(&t,
                      "presence_gateway_requests_total{route=\"%s\","
                      "status=\"%u\"} %llu\n",
                      s_routes[r], s_codes[c], (unsigned long long)v);
            else
                s_add(&t,
                      "presence_gateway_requests_total{route=\"%s\","
                      "status=\"other\"} %llu\n",
                      s_routes[r], (unsigned long long)v);
        }
    s_add(&t, "# HELP presence_gateway_rejections_total Refused requests by "
              "reason.\n# TYPE presence_gateway_rejections_total counter\n");
    for (int i = 0; i < GW_REJ_COUNT; i++)
        s_add(&t, "presence_gateway_rejections_total{reason=\"%s\"} %llu\n",
              s_rejects[i], (unsigned long long)s_get(&self->reject[i]));
    s_add(&t, "# HELP presence_gateway_events_published_total Events "
              "published to the broker by type.\n"
              "# TYPE presence_gateway_events_published_total counter\n");
    for (int i = 1; i <= 5; i++)
        s_add(&t,
              "presence_gateway_events_published_total{type=\"%s\"} "
              "%llu\n",
              pres_ev_type_name((pres_ev_type_t)i),
              (unsigned long long)s_get(&self->published[i]));
    s_add(&t, "# HELP presence_gateway_latency_seconds Bus publish, broker "
              "query and login round-trip latency.\n"
              "# TYPE presence_gateway_latency_seconds histogram\n");
    for (int h = 0; h < GW_LAT_COUNT; h++) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= S_NBOUNDS; b++) {
            cum += s_get(&self->hist[h].bucket[b]);
            if (b < S_NBOUNDS)
                s_add(&t,
                      "presence_gateway_latency_seconds_bucket{op=\"%s\","
                      "le=\"%g\"} %llu\n",
                      s_latencies[h], (double)s_bounds[b] / 1e6,
                      (unsigned long long)cum);
            else
                s_add(&t,
                      "presence_gateway_latency_seconds_bucket{op=\"%s\","
                      "le=\"+Inf\"} %llu\n",
                      s_latencies[h], (unsigned long long)cum);
        }
        s_add(&t, "presence_gateway_latency_seconds_sum{op=\"%s\"} %.6f\n",
              s_latencies[h], (double)s_get(&self->hist[h].sum_us) / 1e6);
        s_add(&t, "presence_gateway_latency_seconds_count{op=\"%s\"} %llu\n",
              s_latencies[h], (unsigned long long)s_get(&self->hist[h].count));
    }
    s_add(&t,
          "# HELP presence_gateway_sse_clients Open /v1/events streams.\n"
          "# TYPE presence_gateway_sse_clients gauge\n"
          "presence_gateway_sse_clients %d\n",
          sse_clients);
    s_add(&t,
          "# HELP presence_gateway_connections Open HTTP connections.\n"
          "# TYPE presence_gateway_connections gauge\n"
          "presence_gateway_connections %d\n",
          connections);
    s_add(&t,
          "# HELP presence_gateway_logins_in_flight Logins waiting for "
          "the broker (their connections suspended).\n"
          "# TYPE presence_gateway_logins_in_flight gauge\n"
          "presence_gateway_logins_in_flight %d\n",
          logins);
    s_add(&t,
          "# HELP presence_gateway_changes_total Changes received from "
          "the broker.\n# TYPE presence_gateway_changes_total counter\n"
          "presence_gateway_changes_total %llu\n",
          (unsigned long long)s_get(&self->changes));
    s_add(&t,
          "# HELP presence_gateway_change_gaps_total Changes missed "
          "(seq gaps) on the changes stream.\n"
          "# TYPE presence_gateway_change_gaps_total counter\n"
          "presence_gateway_change_gaps_total %llu\n",
          (unsigned long long)s_get(&self->gaps));
    if (s_get(&self->ha_term))
        s_add(&t,
              "# HELP presence_broker_ha_term Term of the broker leader "
              "(fail-over).\n# TYPE presence_broker_ha_term gauge\n"
              "presence_broker_ha_term %llu\n"
              "# HELP presence_broker_ha_lag Changes the standby broker "
              "does not have yet.\n# TYPE presence_broker_ha_lag gauge\n"
              "presence_broker_ha_lag %llu\n",
              (unsigned long long)s_get(&self->ha_term),
              (unsigned long long)s_get(&self->ha_lag));
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    if (len)
        *len = t.len;
    return t.buf;
}
