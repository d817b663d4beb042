/*  pres_log: one logging entry point for every presence program.
    Writes each line itself to stderr (journald picks it up), prefixed
    with the program ident, in the same shape as czmq's zsys messages so
    both read alike in the journal. */
#ifndef PRES_LOG_H_INCLUDED
#define PRES_LOG_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define PRES_PRINTF(f, a) __attribute__((format(printf, f, a)))

//  Set the program ident (e.g. "presence-broker") and verbosity. Call once
//  from main() before any thread starts.
void pres_log_init(const char *ident, bool verbose);

//  True when -v was given; use it to skip building expensive debug output.
bool pres_log_verbose(void);

void pres_log_error(const char *fmt, ...) PRES_PRINTF(1, 2);
void pres_log_warn(const char *fmt, ...) PRES_PRINTF(1, 2);
void pres_log_info(const char *fmt, ...) PRES_PRINTF(1, 2);
//  Only printed with -v.
void pres_log_debug(const char *fmt, ...) PRES_PRINTF(1, 2);

//  A rate limit for log lines caused by outside input (malformed frames,
//  bad tokens): at most one line per interval, plus a count of what was
//  suppressed. Zero-initialise; not thread-safe (one per thread or lock).
typedef struct {
    int64_t next_ms;      //  monotonic ms before which lines are suppressed
    uint64_t suppressed;  //  lines skipped since the last printed one
} pres_ratelimit_t;

//  Log a warning unless rl says to wait; interval_ms between lines.
void pres_log_limited(pres_ratelimit_t *rl, int64_t interval_ms,
                      const char *fmt, ...) PRES_PRINTF(3, 4);

//  Clocks, in milliseconds.
int64_t pres_now_ms(void);   //  wall clock, ms since the epoch
int64_t pres_mono_ms(void);  //  monotonic

#endif
