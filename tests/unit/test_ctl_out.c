/*  unit.ctl_out: presencectl's output (text tables, JSON without `ok`,
    "ago" strings, path lookups) and the watch seq bookkeeping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_out.h"
#include "ctl_watch.h"
#include "pres_mp.h"
#include "pres_msg.h"
#include "testutil.h"

static char text[8192];

static FILE *
s_open(void)
{
    memset(text, 0, sizeof(text));
    FILE *f = fmemopen(text, sizeof(text), "w");
    CHECK(f);
    return f;
}

static void
s_pack_user(pres_mp_writer_t *w, const char *user, const char *state,
            uint64_t sessions, uint64_t last_seen)
{
    msgpack_pack_map(&w->pk, 5);
    pres_mp_pack_kv_str(w, "user", user);
    pres_mp_pack_kv_str(w, "state", state);
    pres_mp_pack_kv_uint(w, "last_seen", last_seen);
    pres_mp_pack_kv_uint(w, "sessions", sessions);
    pres_mp_pack_kv_str(w, "account", "active");
}

static void
test_ago(void)
{
    char b[32];
    int64_t now = 1000000000;
    ctl_out_ago(0, now, b, sizeof(b));
    CHECK_STR(b, "never");
    ctl_out_ago((uint64_t)now - 500, now, b, sizeof(b));
    CHECK_STR(b, "just now");
    ctl_out_ago((uint64_t)now - 42000, now, b, sizeof(b));
    CHECK_STR(b, "42 s ago");
    ctl_out_ago((uint64_t)now - 300000, now, b, sizeof(b));
    CHECK_STR(b, "5 min ago");
    ctl_out_ago((uint64_t)now - 3 * 3600000, now, b, sizeof(b));
    CHECK_STR(b, "3 h ago");
    ctl_out_ago((uint64_t)now - 4 * 86400000ULL, now, b, sizeof(b));
    CHECK_STR(b, "4 days ago");
    ctl_out_ago((uint64_t)now + 3000, now, b, sizeof(b));
    CHECK_STR(b, "in 3 s");
    ctl_out_time(0, b, sizeof(b));
    CHECK_STR(b, "-");
    ctl_out_time(1700000000000ULL, b, sizeof(b));
    CHECK_EQ(strlen(b), 19);
}

static void
test_get(void)
{
    char buf[512];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof(buf));
    msgpack_pack_map(&w.pk, 6);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_true(&w.pk);
    pres_mp_pack_kv_str(&w, "user", "alice");
    pres_mp_pack_kv_str(&w, "state", "online");
    pres_mp_pack_kv_uint(&w, "last_seen", 1000000 - 42000);
    pres_mp_pack_kv_uint(&w, "sessions", 2);
    pres_mp_pack_kv_str(&w, "account", "active");
    CHECK(!w.overflow);

    char s[16];
    uint64_t v;
    bool ok;
    CHECK_EQ(ctl_mp_str(buf, w.len, "state", s, sizeof(s)), 0);
    CHECK_STR(s, "online");
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "sessions", &v), 0);
    CHECK_EQ(v, 2);
    CHECK_EQ(ctl_mp_bool(buf, w.len, "ok", &ok), 0);
    CHECK(ok);
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "state", &v), -1);  //  wrong type
    CHECK_EQ(pres_mp_find_uint(buf, w.len, "nope", &v), -1);
    CHECK_EQ(ctl_mp_str(buf, w.len, "user", s, 3), 0);  //  cut to fit
    CHECK_STR(s, "al");

    FILE *f = s_open();
    CHECK_EQ(ctl_out_user(buf, w.len, 1000000, f), 0);
    fclose(f);
    CHECK(strstr(text, "user       alice\n"));
    CHECK(strstr(text, "state      online\n"));
    CHECK(strstr(text, "sessions   2\n"));
    CHECK(strstr(text, "account    active\n"));
    CHECK(strstr(text, "(42 s ago)"));

    //  JSON: exactly the reply without `ok`.
    f = s_open();
    CHECK_EQ(ctl_out_json(buf, w.len, f), 0);
    fclose(f);
    CHECK_STR(text, "{\"user\":\"alice\",\"state\":\"online\","
                    "\"last_seen\":958000,\"sessions\":2,"
                    "\"account\":\"active\"}\n");
    //  Malformed input is refused, not printed.
    f = s_open();
    CHECK_EQ(ctl_out_json(buf, w.len - 1, f), -1);
    CHECK_EQ(ctl_out_user("\xc1", 1, 0, f), -1);
    fclose(f);
}

static void
test_list(void)
{
    char buf[2048];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof(buf));
    msgpack_pack_map(&w.pk, 3);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_true(&w.pk);
    pres_mp_pack_cstr(&w, "users");
    msgpack_pack_array(&w.pk, 2);
    s_pack_user(&w, "alice", "online", 1, 999500);
    s_pack_user(&w, "a-rather-long-user-name@example.org", "away", 3, 0);
    pres_mp_pack_kv_str(&w, "next", "a-rather-long-user-name@example.org");
    CHECK(!w.overflow);
    char s[80];
    CHECK_EQ(ctl_mp_str(buf, w.len, "users.1.user", s, sizeof(s)), 0);
    CHECK_STR(s, "a-rather-long-user-name@example.org");
    CHECK_EQ(ctl_mp_str(buf, w.len, "users.2.user", s, sizeof(s)), -1);

    FILE *f = s_open();
    CHECK_EQ(ctl_out_list(buf, w.len, 1000000, true, f), 2);
    fclose(f);
    //  Header plus two rows, the USER column as wide as the longest id.
    const char *l1 = strchr(text, '\n');
    CHECK(l1);
    CHECK(!strncmp(text, "USER", 4));
    CHECK(strstr(text, "alice"));
    CHECK(strstr(text, "just now"));
    CHECK(strstr(text, "never"));
    const char *row2 = strstr(text, "a-rather");
    CHECK(row2);
    const char *st1 = strstr(text, "online"), *st2 = strstr(text, "away");
    CHECK(st1 && st2);
    //  Same column for the state in both rows.
    const char *r1 = l1 + 1;
    CHECK_EQ(st1 - r1, st2 - row2);
    f = s_open();
    CHECK_EQ(ctl_out_list(buf, w.len, 0, false, f), 2);
    fclose(f);
    CHECK(strncmp(text, "USER", 4) != 0);
}

static void
test_stats(void)
{
    char buf[2048];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof(buf));
    msgpack_pack_map(&w.pk, 7);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_true(&w.pk);
    pres_mp_pack_kv_uint(&w, "seq", 77);
    pres_mp_pack_cstr(&w, "users");
    msgpack_pack_map(&w.pk, 3);
    pres_mp_pack_kv_uint(&w, "online", 3);
    pres_mp_pack_kv_uint(&w, "away", 1);
    pres_mp_pack_kv_uint(&w, "offline", 9);
    pres_mp_pack_cstr(&w, "accounts");
    msgpack_pack_map(&w.pk, 5);
    pres_mp_pack_kv_uint(&w, "active", 11);
    pres_mp_pack_kv_uint(&w, "pending", 0);
    pres_mp_pack_kv_uint(&w, "inactive", 0);
    pres_mp_pack_kv_uint(&w, "suspended", 1);
    pres_mp_pack_kv_uint(&w, "banned", 1);
    pres_mp_pack_kv_uint(&w, "sessions", 5);
    pres_mp_pack_cstr(&w, "events");
    msgpack_pack_map(&w.pk, 3);
    pres_mp_pack_kv_uint(&w, "applied", 100);
    pres_mp_pack_kv_uint(&w, "refused", 2);
    pres_mp_pack_kv_uint(&w, "lost", 4);
    pres_mp_pack_cstr(&w, "publishers");
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_map(&w.pk, 3);
    pres_mp_pack_kv_str(&w, "src", "gateway-h-1-1");
    pres_mp_pack_kv_uint(&w, "seq", 104);
    pres_mp_pack_kv_uint(&w, "lost", 4);
    CHECK(!w.overflow);
    FILE *f = s_open();
    CHECK_EQ(ctl_out_stats(buf, w.len, f), 0);
    fclose(f);
    CHECK(strstr(text, "seq         77\n"));
    CHECK(strstr(text, "online 3, away 1, offline 9"));
    CHECK(strstr(text, "suspended 1, banned 1"));
    CHECK(strstr(text, "sessions    5"));
    CHECK(strstr(text, "applied 100, refused 2, lost 4"));
    CHECK(strstr(text, "gateway-h-1-1"));
}

static void
test_change(void)
{
    pres_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.seq = 42;
    snprintf(ch.user, sizeof(ch.user), "alice");
    ch.state = PRES_OFFLINE;
    ch.prev = PRES_ONLINE;
    ch.reason = PRES_RSN_TIMEOUT;
    ch.at = 1700000000123ULL;
    ch.account = PRES_ACC_ACTIVE;
    snprintf(ch.session, sizeof(ch.session), "s1");
    char buf[PRES_MSG_MAX];
    size_t len = pres_change_encode(&ch, buf, sizeof(buf));
    CHECK(len > 0);
    FILE *f = s_open();
    CHECK_EQ(ctl_out_change(buf, len, f), 0);
    fclose(f);
    CHECK(strstr(text, ".123  #42"));
    CHECK(strstr(text, "alice"));
    CHECK(strstr(text, "online  -> offline"));
    CHECK(strstr(text, "timeout"));
    CHECK(strstr(text, "sessions 0"));
    CHECK(strstr(text, "session s1"));
    CHECK_EQ(strchr(text, '\n') - text + 1, (long)strlen(text));
    f = s_open();
    CHECK_EQ(ctl_out_json(buf, len, f), 0);
    fclose(f);
    CHECK(!strncmp(text, "{\"v\":1,\"seq\":42,\"user\":\"alice\"", 30));
}

static void
test_watch_seq(void)
{
    ctl_watch_seq_t st;
    ctl_watch_seq_reset(&st, 10);
    CHECK_EQ(ctl_watch_seq_check(&st, 9), CTL_WATCH_DROP);
    CHECK_EQ(ctl_watch_seq_check(&st, 10), CTL_WATCH_DROP);
    CHECK_EQ(ctl_watch_seq_check(&st, 11), CTL_WATCH_PRINT);
    CHECK_EQ(ctl_watch_seq_check(&st, 12), CTL_WATCH_PRINT);
    CHECK_EQ(st.last, 12);
    CHECK_EQ(ctl_watch_seq_check(&st, 14), CTL_WATCH_GAP);
    CHECK_EQ(st.last, 12);
    CHECK_EQ(ctl_watch_seq_check(&st, 5), CTL_WATCH_GAP);  //  went back
    ctl_watch_seq_reset(&st, 20);
    CHECK_EQ(ctl_watch_seq_check(&st, 14), CTL_WATCH_DROP);
    CHECK_EQ(ctl_watch_seq_check(&st, 21), CTL_WATCH_PRINT);
}

int
main(void)
{
    test_ago();
    test_get();
    test_list();
    test_stats();
    test_change();
    test_watch_seq();
    printf("unit.ctl_out: ok\n");
    return 0;
}
