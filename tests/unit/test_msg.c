/*  test_msg: the codec against the golden vectors in schemas/vectors.tsv
    (bytes made by an independent encoder), plus round trips. */
#include "pres_mp.h"
#include "pres_msg.h"
#include "testutil.h"

#include <stdlib.h>

static size_t
s_unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    CHECK(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        CHECK(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (unsigned char)v;
    }
    return n;
}

//  Decode one vector with its kind's decoder; re-encode valid ones.
static void
s_check_vector(const char *kind, const char *expect, const char *topic,
               const unsigned char *bytes, size_t len, const char *json,
               int line)
{
    const char *why = "ok";
    unsigned char again[8192];
    size_t again_len = 0;
    int rc;
    if (!strcmp(kind, "event")) {
        pres_event_t ev;
        rc = pres_event_decode(&ev, topic, strlen(topic), bytes, len, &why);
        if (rc == 0)
            again_len = pres_event_encode(&ev, again, sizeof again);
    } else if (!strcmp(kind, "change")) {
        pres_change_t ch;
        rc = pres_change_decode(&ch, bytes, len, &why);
        if (rc == 0)
            again_len = pres_change_encode(&ch, again, sizeof again);
    } else if (!strcmp(kind, "deadline")) {
        pres_deadline_t dl;
        rc = pres_deadline_decode(&dl, bytes, len, &why);
        if (rc == 0)
            again_len = pres_deadline_encode(&dl, again, sizeof again);
    } else {
        CHECK_STR(kind, "query");
        pres_query_t q;
        rc = pres_query_decode(&q, bytes, len, &why);
        if (rc == 0)
            again_len = pres_query_encode(&q, again, sizeof again);
    }
    if (strcmp(expect, "ok") != 0) {
        if (rc == 0 || strcmp(why, expect) != 0)
            fprintf(stderr, "vectors.tsv:%d: expected %s, got %s\n", line,
                    expect, rc == 0 ? "ok" : why);
        CHECK(rc != 0);
        CHECK_STR(why, expect);
        return;
    }
    if (rc != 0)
        fprintf(stderr, "vectors.tsv:%d: refused: %s\n", line, why);
    CHECK_EQ(rc, 0);
    //  Canonical encoding reproduces the independent encoder's bytes.
    if (again_len != len || memcmp(again, bytes, len) != 0)
        fprintf(stderr, "vectors.tsv:%d: re-encoding differs\n", line);
    CHECK_EQ(again_len, len);
    CHECK(memcmp(again, bytes, len) == 0);
    char *text = pres_mp_to_json(bytes, len, NULL, NULL);
    CHECK(text);
    CHECK_STR(text, json);
    free(text);
}

static int
s_run_vectors(void)
{
    const char *src = getenv("PRESENCE_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/schemas/vectors.tsv", src ? src : ".");
    FILE *file = fopen(path, "r");
    CHECK(file);
    static char line[65536];
    static unsigned char bytes[16384];
    int lineno = 0, count = 0;
    while (fgets(line, sizeof line, file)) {
        lineno++;
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *cols[5];
        char *p = line;
        for (int i = 0; i < 5; i++) {
            cols[i] = p;
            p = strchr(p, '\t');
            if (i < 4) {
                CHECK(p);
                *p++ = '\0';
            }
        }
        size_t len = s_unhex(cols[3], bytes, sizeof bytes);
        const char *topic = strcmp(cols[2], "-") ? cols[2] : "";
        s_check_vector(cols[0], cols[1], topic, bytes, len, cols[4], lineno);
        count++;
    }
    fclose(file);
    return count;
}

static void
s_test_round_trips(void)
{
    pres_event_t ev = {.type = PRES_EV_HEARTBEAT, .at = 5, .seq = 1};
    strcpy(ev.user, "bob");
    strcpy(ev.src, "t");
    strcpy(ev.session, "s");
    unsigned char buf[PRES_MSG_MAX];
    size_t len = pres_event_encode(&ev, buf, sizeof buf);
    CHECK(len > 0);
    pres_event_t out;
    const char *why;
    CHECK_EQ(pres_event_decode(&out, "heartbeat", 9, buf, len, &why), 0);
    CHECK_STR(out.user, "bob");
    CHECK_EQ(out.has_state, 0);
    CHECK_EQ(out.state, PRES_ONLINE);
    //  Too small a buffer fails cleanly.
    CHECK_EQ(pres_event_encode(&ev, buf, 10), 0);
    //  Invalid ids are refused by the encoder too.
    strcpy(ev.user, "bad user");
    CHECK_EQ(pres_event_encode(&ev, buf, sizeof buf), 0);
    strcpy(ev.user, "bob");
    ev.session[0] = '\0';
    CHECK_EQ(pres_event_encode(&ev, buf, sizeof buf), 0);

    CHECK(pres_id_valid("a.b_c@d:e-F9", 12));
    CHECK(!pres_id_valid("", 0));
    CHECK(!pres_id_valid("a b", 3));
    char topic[PRES_TOPIC_MAX];
    CHECK_EQ(pres_change_topic("alice", topic), 14);
    CHECK_STR(topic, "presence.alice");

    //  account carries an optional `by` (an id); other ops may not.
    pres_query_t q = {.op = PRES_Q_ACCOUNT, .status = PRES_ACC_BANNED};
    strcpy(q.user, "mallory");
    strcpy(q.by, "admin@example.com");
    len = pres_query_encode(&q, buf, sizeof buf);
    CHECK(len > 0);
    pres_query_t qout;
    CHECK_EQ(pres_query_decode(&qout, buf, len, &why), 0);
    CHECK_STR(qout.by, "admin@example.com");
    strcpy(q.by, "not an id");
    CHECK_EQ(pres_query_encode(&q, buf, sizeof buf), 0);
    const char get_by[] = "\x83\xa2op\xa3get\xa4user\xa1u\xa2"
                          "by\xa1x";
    CHECK_EQ(pres_query_decode(&qout, get_by, sizeof get_by - 1, &why), -1);
    //  ... and an optional `until` (the asker's deadline), kept exactly.
    strcpy(q.by, "admin@example.com");
    q.until = 1796112987261ull;
    len = pres_query_encode(&q, buf, sizeof buf);
    CHECK(len > 0);
    CHECK_EQ(pres_query_decode(&qout, buf, len, &why), 0);
    CHECK_EQ(qout.until, 1796112987261ull);
    q.until = 0;  //  absent when 0
    len = pres_query_encode(&q, buf, sizeof buf);
    CHECK_EQ(pres_query_decode(&qout, buf, len, &why), 0);
    CHECK_EQ(qout.until, 0);
    const char get_until[] = "\x83\xa2op\xa3get\xa4user\xa1u\xa5"
                             "until\x01";
    CHECK_EQ(pres_query_decode(&qout, get_until, sizeof get_until - 1, &why),
             -1);

    //  Changes carry an optional `term` (fail-over); absent when 0.
    pres_change_t ch = {.seq = 7,
                        .state = PRES_ONLINE,
                        .prev = PRES_OFFLINE,
                        .at = 1000,
                        .reason = PRES_RSN_LOGIN,
                        .sessions = 1,
                        .account = PRES_ACC_ACTIVE,
                        .term = 42};
    strcpy(ch.user, "carol");
    len = pres_change_encode(&ch, buf, sizeof buf);
    CHECK(len > 0);
    pres_change_t chout;
    CHECK_EQ(pres_change_decode(&chout, buf, len, &why), 0);
    CHECK_EQ(chout.term, 42);
    ch.term = 0;
    size_t short_len = pres_change_encode(&ch, buf, sizeof buf);
    CHECK_EQ(short_len, len - 6);  //  "term" key (5) + fixint (1)
    CHECK_EQ(pres_change_decode(&chout, buf, short_len, &why), 0);
    CHECK_EQ(chout.term, 0);
}

int
main(void)
{
    int n = s_run_vectors();
    CHECK(n >= 60);
    s_test_round_trips();
    printf("test_msg: %d vectors OK\n", n);
    return 0;
}
