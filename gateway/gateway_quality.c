/*  gateway_quality: broker stats.quality -> Prometheus text (see
    gateway_quality.h). Names are read from the reply, so a reason or
    status the broker adds later shows up without a change here. */
#include "gateway_quality.h"

#include <inttypes.h>
#include <string.h>

#include "pres_mp.h"

//  For each key -> uint of the map at path: name{label="key"} value.
static void
s_labelled(const void *buf, size_t len, const char *path, const char *name,
           const char *label, const char *help, FILE *out)
{
    pres_mp_reader_t r;
    uint32_t n;
    if (pres_mp_find(buf, len, path, &r) != 0 || pres_mp_read_map(&r, &n) != 0)
        return;
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        uint64_t v;
        if (pres_mp_read_str(&r, &k, &kl) != 0)
            return;
        if (pres_mp_peek(&r) != PRES_MP_UINT) {
            if (pres_mp_skip(&r) != 0)
                return;
            continue;
        }
        if (pres_mp_read_uint(&r, &v) != 0)
            return;
        fprintf(out, "%s{%s=\"%.*s\"} %" PRIu64 "\n", name, label, (int)kl, k,
                v);
    }
}

//  The timeout lateness histogram: le (ms bounds), counts (one more, the
//  last is +Inf), sum (ms); written in seconds, cumulative.
static void
s_lateness(const void *buf, size_t len, FILE *out)
{
    pres_mp_reader_t le, counts;
    uint32_t nle, ncounts;
    uint64_t sum = 0;
    if (pres_mp_find(buf, len, "quality.timeout_lateness_ms.le", &le) != 0 ||
        pres_mp_read_array(&le, &nle) != 0 ||
        pres_mp_find(buf, len, "quality.timeout_lateness_ms.counts", &counts) !=
            0 ||
        pres_mp_read_array(&counts, &ncounts) != 0 || ncounts != nle + 1 ||
        pres_mp_find_uint(buf, len, "quality.timeout_lateness_ms.sum", &sum) !=
            0)
        return;
    const char *name = "presence_broker_timeout_lateness_seconds";
    fprintf(out,
            "# HELP %s How late a timed-out session ended after its "
            "deadline (plus grace).\n# TYPE %s histogram\n",
            name, name);
    uint64_t total = 0;
    for (uint32_t i = 0; i < ncounts; i++) {
        uint64_t bound = 0, c = 0;
        if ((i < nle && pres_mp_read_uint(&le, &bound) != 0) ||
            pres_mp_read_uint(&counts, &c) != 0)
            return;
        total += c;
        if (i < nle)
            fprintf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                    (double)bound / 1000.0, total);
        else
            fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, total);
    }
    fprintf(out, "%s_sum %g\n%s_count %" PRIu64 "\n", name,
            (double)sum / 1000.0, name, total);
}

int
gw_quality_render(const void *stats, size_t len, FILE *out)
{
    pres_mp_reader_t r;
    if (pres_mp_find(stats, len, "quality", &r) != 0)
        return -1;
    s_labelled(stats, len, "quality.transitions",
               "presence_broker_transitions_total", "reason",
               "Presence changes published, by reason.", out);
    uint64_t v;
    if (pres_mp_find_uint(stats, len, "quality.flaps_suppressed", &v) == 0)
        fprintf(out,
                "# HELP presence_broker_flaps_suppressed_total Timed-out "
                "sessions that beat again within grace (nothing "
                "published).\n# TYPE presence_broker_flaps_suppressed_total "
                "counter\npresence_broker_flaps_suppressed_total %" PRIu64 "\n",
                v);
    s_lateness(stats, len, out);
    s_labelled(stats, len, "quality.forced_offline",
               "presence_broker_forced_offline_total", "status",
               "Users sent offline by an account status change.", out);
    s_labelled(stats, len, "quality.refused",
               "presence_broker_refused_events_total", "reason",
               "Events the broker refused, by reason.", out);
    s_labelled(stats, len, "users", "presence_broker_users", "state",
               "Users by state (a gauge; counted by the broker).", out);
    return 0;
}
