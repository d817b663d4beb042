/*  ctl_out: presencectl's output. Broker replies and changes are msgpack
    maps; --json prints them as JSON (pres_mp_to_json, `ok` dropped), the
    text forms are aligned tables for people. Values inside replies are
    found with pres_mp_find ("users.0.user"). */
#ifndef CTL_OUT_H_INCLUDED
#define CTL_OUT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pres_mp.h"

//  The string/bool at path (pres_mp_find). 0 or -1 (absent or another
//  type). A string longer than cap - 1 is cut.
int ctl_mp_str(const void *buf, size_t len, const char *path, char *out,
               size_t cap);
int ctl_mp_bool(const void *buf, size_t len, const char *path, bool *value);

//  "just now", "42 s ago", "5 min ago", "3 h ago", "2 days ago"; "never"
//  when at_ms is 0.
void ctl_out_ago(uint64_t at_ms, int64_t now_ms, char *out, size_t cap);

//  Local time "YYYY-MM-DD HH:MM:SS" of at_ms; "-" when 0.
void ctl_out_time(uint64_t at_ms, char *out, size_t cap);

//  The JSON of a reply (or change) with top-level key `ok` left out, and a
//  newline. 0, or -1 if it does not convert.
int ctl_out_json(const void *buf, size_t len, FILE *out);

//  A `get` reply as "key  value" lines.
int ctl_out_user(const void *buf, size_t len, int64_t now_ms, FILE *out);

//  The users of a `list` page as table rows, with the header row when
//  header is true. Returns how many users were printed, or -1.
int ctl_out_list(const void *buf, size_t len, int64_t now_ms, bool header,
                 FILE *out);

//  A `stats` reply.
int ctl_out_stats(const void *buf, size_t len, FILE *out);

//  An `audit` reply: one line per entry (time, by, old -> new, reason),
//  or "no account changes".
int ctl_out_audit(const void *buf, size_t len, FILE *out);

//  A `history` reply: one line per entry (time, seq, prev -> state,
//  reason), or "no transitions".
int ctl_out_history(const void *buf, size_t len, FILE *out);

//  One change as one line: time, seq, user, prev -> state, reason,
//  sessions, account.
int ctl_out_change(const void *buf, size_t len, FILE *out);

#endif
