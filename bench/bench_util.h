/*  bench_util: what every load driver of presence-bench shares: clocks,
    latency samples with percentiles, broker `stats` through the query
    socket, and key=value result lines that bench/run.sh parses. */
#ifndef BENCH_UTIL_H_INCLUDED
#define BENCH_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pres_bus.h"
#include "pres_config.h"

//  Monotonic clock in nanoseconds.
int64_t bench_now_ns(void);

//  Sleep until the monotonic clock reaches t_ns (returns at once if past).
void bench_sleep_until(int64_t t_ns);

//  Latency samples (ns). Grows by doubling up to `max` samples; samples
//  beyond that are counted but not kept (percentiles then come from the
//  first `max`).
typedef struct {
    int64_t *v;      //  samples, unsorted until bench_lat_sort
    size_t n;        //  kept samples
    size_t cap;      //  allocated
    size_t max;      //  keep at most this many
    uint64_t count;  //  all samples offered
    int64_t worst;   //  largest sample ever offered
} bench_lat_t;

void bench_lat_init(bench_lat_t *self, size_t max);
void bench_lat_add(bench_lat_t *self, int64_t ns);
void bench_lat_sort(bench_lat_t *self);
//  The p-th percentile (0 < p <= 100) of the kept samples after sort; 0
//  when empty.
int64_t bench_lat_pct(const bench_lat_t *self, double p);
void bench_lat_free(bench_lat_t *self);
//  Print "<name>_n=.. <name>_p50_us=.. p99, p999, max" on one line.
void bench_lat_print(const bench_lat_t *self, const char *name);

//  The broker counters the drivers look at.
typedef struct {
    uint64_t seq;
    uint64_t applied;
    uint64_t refused;
    uint64_t lost;
    uint64_t online;
    uint64_t away;
    uint64_t offline;
    uint64_t sessions;
    uint64_t commits;  //  storage.commits (0 from a null broker)
    uint64_t syncs;    //  storage.syncs
} bench_stats_t;

//  Ask the broker for `stats` (timeout_ms). 0 or -1 (printed).
int bench_stats(pres_qclient_t *qc, bench_stats_t *st, int timeout_ms);

//  Wait until applied + refused >= target (seen from stats), polling every
//  poll_ms, giving up after idle_ms without progress. Returns 0 and the
//  monotonic ns at which the target was seen, or -1.
int bench_wait_applied(pres_qclient_t *qc, uint64_t target, int poll_ms,
                       int idle_ms, bench_stats_t *st, int64_t *when_ns);

//  Resident set size of pid in KiB (from /proc), or -1.
long bench_rss_kib(pid_t pid);

//  Take the next change queued on sub (a changes SUB), without waiting.
//  Returns BENCH_CH_NONE when nothing is queued, BENCH_CH_BAD for a frame
//  that does not decode, BENCH_CH_OTHER for a change whose user does not
//  start with prefix, or BENCH_CH_OURS with *ch filled and *suffix
//  pointing at the rest of ch->user.
typedef enum {
    BENCH_CH_NONE = 0,
    BENCH_CH_OURS,
    BENCH_CH_OTHER,
    BENCH_CH_BAD
} bench_ch_t;
bench_ch_t bench_next_change(void *sub, const char *prefix, pres_change_t *ch,
                             const char **suffix);

//  Write user id "<prefix><n>" into out (PRES_ID_MAX + 1). Fast.
void bench_user_id(char *out, const char *prefix, uint64_t n);

//  Load the configuration the daemons see (defaults + PRESENCE_* env).
//  0 or -1.
int bench_config(pres_config_t *cfg);

#endif
