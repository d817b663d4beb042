/*  ctl_out: text and JSON output of presencectl (see ctl_out.h). */
#include "ctl_out.h"
#include "pres_msg.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
ctl_mp_str(const void *buf, size_t len, const char *path, char *out, size_t cap)
{
    pres_mp_reader_t r;
    const char *s;
    uint32_t slen;
    assert(cap > 0);
    if (pres_mp_find(buf, len, path, &r) != 0 ||
        pres_mp_read_str(&r, &s, &slen) != 0)
        return -1;
    size_t n = slen < cap - 1 ? slen : cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int
ctl_mp_bool(const void *buf, size_t len, const char *path, bool *value)
{
    pres_mp_reader_t r;
    if (pres_mp_find(buf, len, path, &r) != 0)
        return -1;
    return pres_mp_read_bool(&r, value);
}

void
ctl_out_ago(uint64_t at_ms, int64_t now_ms, char *out, size_t cap)
{
    if (at_ms == 0) {
        snprintf(out, cap, "never");
        return;
    }
    int64_t s = (now_ms - (int64_t)at_ms) / 1000;
    if (s < 0)
        snprintf(out, cap, "in %" PRId64 " s", -s);
    else if (s < 1)
        snprintf(out, cap, "just now");
    else if (s < 120)
        snprintf(out, cap, "%" PRId64 " s ago", s);
    else if (s < 2 * 3600)
        snprintf(out, cap, "%" PRId64 " min ago", s / 60);
    else if (s < 2 * 86400)
        snprintf(out, cap, "%" PRId64 " h ago", s / 3600);
    else
        snprintf(out, cap, "%" PRId64 " days ago", s / 86400);
}

void
ctl_out_time(uint64_t at_ms, char *out, size_t cap)
{
    time_t t = (time_t)(at_ms / 1000);
    struct tm tm;
    if (at_ms == 0 || !localtime_r(&t, &tm) ||
        strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, cap, "-");
}

int
ctl_out_json(const void *buf, size_t len, FILE *out)
{
    size_t jlen;
    char *json = pres_mp_to_json(buf, len, "ok", &jlen);
    if (!json)
        return -1;
    fwrite(json, 1, jlen, out);
    fputc('\n', out);
    free(json);
    return 0;
}

int
ctl_out_user(const void *buf, size_t len, int64_t now_ms, FILE *out)
{
    char user[80], state[16] = "?", account[16] = "?", when[32], ago[32];
    uint64_t sessions = 0, last_seen = 0;
    if (ctl_mp_str(buf, len, "user", user, sizeof(user)) != 0)
        return -1;
    ctl_mp_str(buf, len, "state", state, sizeof(state));
    ctl_mp_str(buf, len, "account", account, sizeof(account));
    pres_mp_find_uint(buf, len, "sessions", &sessions);
    pres_mp_find_uint(buf, len, "last_seen", &last_seen);
    ctl_out_time(last_seen, when, sizeof(when));
    ctl_out_ago(last_seen, now_ms, ago, sizeof(ago));
    fprintf(out, "user       %s\n", user);
    fprintf(out, "state      %s\n", state);
    fprintf(out, "sessions   %" PRIu64 "\n", sessions);
    fprintf(out, "account    %s\n", account);
    if (last_seen)
        fprintf(out, "last seen  %s (%s)\n", when, ago);
    else
        fprintf(out, "last seen  never\n");
    return 0;
}

int
ctl_out_list(const void *buf, size_t len, int64_t now_ms, bool header,
             FILE *out)
{
    pres_mp_reader_t r;
    uint32_t n;
    if (pres_mp_find(buf, len, "users", &r) != 0 ||
        pres_mp_read_array(&r, &n) != 0)
        return -1;
    //  Column width of USER: the longest id on the page (at least 16).
    int width = 16;
    pres_mp_reader_t first = r;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *start = r.p;
        char user[80];
        if (pres_mp_skip(&r) != 0)
            return -1;
        if (ctl_mp_str(start, (size_t)(r.p - start), "user", user,
                       sizeof(user)) == 0 &&
            (int)strlen(user) > width)
            width = (int)strlen(user);
    }
    r = first;
    if (header)
        fprintf(out, "%-*s  %-7s  %8s  %-9s  %s\n", width, "USER", "STATE",
                "SESSIONS", "ACCOUNT", "LAST SEEN");
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *start = r.p;
        if (pres_mp_skip(&r) != 0)
            return -1;
        size_t elen = (size_t)(r.p - start);
        char user[80] = "?", state[16] = "?", account[16] = "?", ago[32];
        uint64_t sessions = 0, last_seen = 0;
        ctl_mp_str(start, elen, "user", user, sizeof(user));
        ctl_mp_str(start, elen, "state", state, sizeof(state));
        ctl_mp_str(start, elen, "account", account, sizeof(account));
        pres_mp_find_uint(start, elen, "sessions", &sessions);
        pres_mp_find_uint(start, elen, "last_seen", &last_seen);
        ctl_out_ago(last_seen, now_ms, ago, sizeof(ago));
        fprintf(out, "%-*s  %-7s  %8" PRIu64 "  %-9s  %s\n", width, user, state,
                sessions, account, ago);
    }
    return (int)n;
}

int
ctl_out_stats(const void *buf, size_t len, FILE *out)
{
    static const char *const states[] = {"online", "away", "offline"};
    static const char *const accounts[] = {"active", "pending", "inactive",
                                           "suspended", "banned"};
    char path[64];
    uint64_t v;
    if (pres_mp_find_uint(buf, len, "seq", &v) != 0)
        return -1;
    fprintf(out, "seq         %" PRIu64 "\n", v);
    fprintf(out, "users      ");
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "users.%s", states[i]);
        if (pres_mp_find_uint(buf, len, path, &v) == 0)
            fprintf(out, "%s %s %" PRIu64, i ? "," : "", states[i], v);
    }
    fprintf(out, "\naccounts   ");
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "accounts.%s", accounts[i]);
        if (pres_mp_find_uint(buf, len, path, &v) == 0)
            fprintf(out, "%s %s %" PRIu64, i ? "," : "", accounts[i], v);
    }
    if (pres_mp_find_uint(buf, len, "sessions", &v) == 0)
        fprintf(out, "\nsessions    %" PRIu64, v);
    //  events: every counter the broker gives (applied, refused, lost,
    //  and any it adds), in its order.
    fprintf(out, "\nevents     ");
    pres_mp_reader_t ev;
    uint32_t nev;
    if (pres_mp_find(buf, len, "events", &ev) == 0 &&
        pres_mp_read_map(&ev, &nev) == 0)
        for (uint32_t i = 0; i < nev; i++) {
            const char *k;
            uint32_t klen;
            if (pres_mp_read_str(&ev, &k, &klen) != 0)
                break;
            if (pres_mp_read_uint(&ev, &v) == 0)
                fprintf(out, "%s %.*s %" PRIu64, i ? "," : "", (int)klen, k, v);
            else if (pres_mp_skip(&ev) != 0)
                break;
        }
    fputc('\n', out);
    pres_mp_reader_t r;
    uint32_t n;
    if (pres_mp_find(buf, len, "publishers", &r) != 0 ||
        pres_mp_read_array(&r, &n) != 0 || n == 0)
        return 0;
    fprintf(out, "publishers  %-40s  %12s  %10s\n", "SRC", "SEQ", "LOST");
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *start = r.p;
        if (pres_mp_skip(&r) != 0)
            return -1;
        size_t elen = (size_t)(r.p - start);
        char src[80] = "?";
        uint64_t seq = 0, lost = 0;
        ctl_mp_str(start, elen, "src", src, sizeof(src));
        pres_mp_find_uint(start, elen, "seq", &seq);
        pres_mp_find_uint(start, elen, "lost", &lost);
        fprintf(out, "            %-40s  %12" PRIu64 "  %10" PRIu64 "\n", src,
                seq, lost);
    }
    return 0;
}

int
ctl_out_change(const void *buf, size_t len, FILE *out)
{
    char user[80], state[16] = "?", prev[16] = "?", reason[16] = "?",
                   account[16] = "?", session[80] = "", when[32];
    uint64_t seq = 0, at = 0, sessions = 0;
    if (ctl_mp_str(buf, len, "user", user, sizeof(user)) != 0 ||
        pres_mp_find_uint(buf, len, "seq", &seq) != 0)
        return -1;
    ctl_mp_str(buf, len, "state", state, sizeof(state));
    ctl_mp_str(buf, len, "prev", prev, sizeof(prev));
    ctl_mp_str(buf, len, "reason", reason, sizeof(reason));
    ctl_mp_str(buf, len, "account", account, sizeof(account));
    ctl_mp_str(buf, len, "session", session, sizeof(session));
    pres_mp_find_uint(buf, len, "at", &at);
    pres_mp_find_uint(buf, len, "sessions", &sessions);
    ctl_out_time(at, when, sizeof(when));
    fprintf(out,
            "%s.%03u  #%-8" PRIu64 " %-16s %-7s -> %-7s  %-9s  "
            "sessions %" PRIu64 "  account %s%s%s\n",
            when, (unsigned)(at % 1000), seq, user, prev, state, reason,
            sessions, account, *session ? "  session " : "", session);
    return 0;
}

//  The entry count of a reply's `entries`, or -1.
static int
s_entries(const void *buf, size_t len, uint32_t *n)
{
    pres_mp_reader_t r;
    if (pres_mp_find(buf, len, "entries", &r) != 0 ||
        pres_mp_read_array(&r, n) != 0)
        return -1;
    return 0;
}

//  Field `field` of entry i of a reply's `entries`; left as it is when
//  absent.
static void
s_entry_uint(const void *buf, size_t len, uint32_t i, const char *field,
             uint64_t *v)
{
    char path[48];
    snprintf(path, sizeof(path), "entries.%u.%s", i, field);
    pres_mp_find_uint(buf, len, path, v);
}

static void
s_entry_str(const void *buf, size_t len, uint32_t i, const char *field,
            char *out, size_t cap)
{
    char path[48];
    snprintf(path, sizeof(path), "entries.%u.%s", i, field);
    ctl_mp_str(buf, len, path, out, cap);
}

int
ctl_out_audit(const void *buf, size_t len, FILE *out)
{
    uint32_t n;
    if (s_entries(buf, len, &n) != 0)
        return -1;
    if (n == 0)
        fprintf(out, "no account changes\n");
    for (uint32_t i = 0; i < n; i++) {
        char by[80] = "?", old[16] = "?", new_[16] = "?",
             reason[PRES_REASON_MAX + 1] = "", when[32];
        uint64_t at = 0;
        s_entry_uint(buf, len, i, "at", &at);
        s_entry_str(buf, len, i, "by", by, sizeof(by));
        s_entry_str(buf, len, i, "old", old, sizeof(old));
        s_entry_str(buf, len, i, "new", new_, sizeof(new_));
        s_entry_str(buf, len, i, "reason", reason, sizeof(reason));
        ctl_out_time(at, when, sizeof(when));
        fprintf(out, "%s  by %-16s %-9s -> %-9s%s%s\n", when, by, old, new_,
                *reason ? "  reason: " : "", reason);
    }
    return 0;
}

int
ctl_out_history(const void *buf, size_t len, FILE *out)
{
    uint32_t n;
    if (s_entries(buf, len, &n) != 0)
        return -1;
    if (n == 0)
        fprintf(out, "no transitions\n");
    for (uint32_t i = 0; i < n; i++) {
        char state[16] = "?", prev[16] = "?", reason[16] = "?", when[32];
        uint64_t at = 0, seq = 0;
        s_entry_uint(buf, len, i, "at", &at);
        s_entry_uint(buf, len, i, "seq", &seq);
        s_entry_str(buf, len, i, "state", state, sizeof(state));
        s_entry_str(buf, len, i, "prev", prev, sizeof(prev));
        s_entry_str(buf, len, i, "reason", reason, sizeof(reason));
        ctl_out_time(at, when, sizeof(when));
        fprintf(out, "%s.%03u  #%-8" PRIu64 " %-7s -> %-7s  %s\n", when,
                (unsigned)(at % 1000), seq, prev, state, reason);
    }
    return 0;
}
