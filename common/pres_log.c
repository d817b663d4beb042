/*  pres_log: stderr logging with an ident, levels and a rate limiter. */
#include "pres_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static char s_ident[64] = "presence";
static bool s_verbose;

void
pres_log_init(const char *ident, bool verbose)
{
    snprintf(s_ident, sizeof s_ident, "%s", ident);
    s_verbose = verbose;
}

bool
pres_log_verbose(void)
{
    return s_verbose;
}

//  One write per line so lines from threads do not interleave.
static void s_vlog(const char *level, const char *fmt, va_list ap)
    PRES_PRINTF(2, 0);

static void
s_vlog(const char *level, const char *fmt, va_list ap)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%s: %s: ", s_ident, level);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

#define S_LEVEL_FN(name, level, guard)                                         \
    void name(const char *fmt, ...)                                            \
    {                                                                          \
        if (!(guard))                                                          \
            return;                                                            \
        va_list ap;                                                            \
        va_start(ap, fmt);                                                     \
        s_vlog(level, fmt, ap);                                                \
        va_end(ap);                                                            \
    }

S_LEVEL_FN(pres_log_error, "error", true)
S_LEVEL_FN(pres_log_warn, "warning", true)
S_LEVEL_FN(pres_log_info, "info", true)
S_LEVEL_FN(pres_log_debug, "debug", s_verbose)

void
pres_log_limited(pres_ratelimit_t *rl, int64_t interval_ms, const char *fmt,
                 ...)
{
    int64_t now = pres_mono_ms();
    if (now < rl->next_ms) {
        rl->suppressed++;
        return;
    }
    rl->next_ms = now + interval_ms;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (rl->suppressed)
        pres_log_warn("%s (and %llu more like it suppressed)", line,
                      (unsigned long long)rl->suppressed);
    else
        pres_log_warn("%s", line);
    rl->suppressed = 0;
}

int64_t
pres_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
pres_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
