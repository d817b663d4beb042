/*  unit.sweeper_tick: the sweeper's deadline heap and its indexes, checked
    against a brute-force model under random operations; and the re-send
    rules (an expire goes again only when it was lost, not while the
    broker is merely slow). */
#include <stdio.h>
#include <string.h>

#include "sweeper_tick.h"
#include "testutil.h"

typedef struct {
    char user[16];
    char session[16];
    uint64_t deadline;
} fired_t;

typedef struct {
    fired_t log[64];
    int count;
    int fail_after;  //  fire returns -1 once count reaches this (-1: never)
} fire_rec_t;

static int
s_fire(void *arg, const char *user, const char *session, uint64_t deadline)
{
    fire_rec_t *rec = arg;
    if (rec->fail_after >= 0 && rec->count >= rec->fail_after)
        return -1;
    CHECK(rec->count < 64);
    snprintf(rec->log[rec->count].user, 16, "%s", user);
    snprintf(rec->log[rec->count].session, 16, "%s", session);
    rec->log[rec->count].deadline = deadline;
    rec->count++;
    return 0;
}

static void
test_basic(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    CHECK(t);
    CHECK_EQ(sweeper_tick_next_due(t), 0);
    CHECK_EQ(sweeper_tick_set(t, "alice", "s1", 3000), 0);
    CHECK_EQ(sweeper_tick_set(t, "alice", "s2", 1000), 0);
    CHECK_EQ(sweeper_tick_set(t, "bob", "s1", 2000), 0);
    CHECK_EQ(sweeper_tick_size(t), 3);
    CHECK_EQ(sweeper_tick_user_sessions(t, "alice"), 2);
    CHECK_EQ(sweeper_tick_user_sessions(t, "bob"), 1);
    CHECK_EQ(sweeper_tick_user_sessions(t, "carol"), 0);
    CHECK_EQ(sweeper_tick_next_due(t), 1000);
    CHECK_EQ(sweeper_tick_deadline(t, "bob", "s1"), 2000);
    CHECK(sweeper_tick_check(t));

    //  Update moves the entry; same user/session is not duplicated.
    CHECK_EQ(sweeper_tick_set(t, "alice", "s2", 5000), 0);
    CHECK_EQ(sweeper_tick_size(t), 3);
    CHECK_EQ(sweeper_tick_next_due(t), 2000);

    //  Fire at 2500: only bob/s1, then it is due again at now + retry.
    fire_rec_t rec = {.fail_after = -1};
    CHECK_EQ(sweeper_tick_fire(t, 2500, 1000, 0, s_fire, &rec), 1);
    CHECK_EQ(rec.count, 1);
    CHECK_STR(rec.log[0].user, "bob");
    CHECK_EQ(rec.log[0].deadline, 2000);
    CHECK_EQ(sweeper_tick_next_due(t), 3000);  //  alice/s1
    CHECK_EQ(sweeper_tick_fire(t, 2500, 1000, 0, s_fire, &rec), 0);
    //  At 3500 alice/s1 (3000) and the bob re-send (3500) are due.
    CHECK_EQ(sweeper_tick_fire(t, 3500, 1000, 0, s_fire, &rec), 2);
    CHECK_STR(rec.log[1].user, "alice");
    CHECK_STR(rec.log[2].user, "bob");
    CHECK_EQ(rec.log[2].deadline, 2000);  //  the deadline, not the retry
    CHECK(sweeper_tick_check(t));

    //  Notice: still live with a new deadline; deadline 0 removes.
    CHECK(sweeper_tick_notice(t, "bob", "s1", 9000, 3600, 100));
    CHECK_EQ(sweeper_tick_deadline(t, "bob", "s1"), 9000);
    CHECK(sweeper_tick_notice(t, "alice", "s1", 0, 3600, 100));
    CHECK_EQ(sweeper_tick_deadline(t, "alice", "s1"), 0);
    CHECK_EQ(sweeper_tick_user_sessions(t, "alice"), 1);
    CHECK(!sweeper_tick_notice(t, "nobody", "x", 1, 3600, 100));
    //  A notice whose deadline is not after now (broker clock behind):
    //  due again at now + skew, not at once.
    CHECK(sweeper_tick_notice(t, "bob", "s1", 3000, 3600, 100));
    CHECK_EQ(sweeper_tick_next_due(t), 3700);
    CHECK(sweeper_tick_check(t));

    //  A fire that fails leaves the entry due and stops.
    rec.count = 0;
    rec.fail_after = 0;
    CHECK_EQ(sweeper_tick_fire(t, 4000, 1000, 0, s_fire, &rec), 0);
    CHECK_EQ(sweeper_tick_next_due(t), 3700);

    //  Removes.
    CHECK(sweeper_tick_remove(t, "bob", "s1"));
    CHECK(!sweeper_tick_remove(t, "bob", "s1"));
    CHECK_EQ(sweeper_tick_remove_user(t, "alice"), 1);
    CHECK_EQ(sweeper_tick_size(t), 0);
    CHECK_EQ(sweeper_tick_next_due(t), 0);
    CHECK(sweeper_tick_check(t));
    sweeper_tick_destroy(&t);
    CHECK(t == NULL);
    sweeper_tick_destroy(&t);
}

static void
test_fire_limit(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    CHECK(t);
    char user[16];
    for (int i = 0; i < 10; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        CHECK_EQ(sweeper_tick_set(t, user, "s", 100 + (uint64_t)i), 0);
    }
    fire_rec_t rec = {.fail_after = -1};
    CHECK_EQ(sweeper_tick_fire(t, 1000, 1000, 4, s_fire, &rec), 4);
    //  Earliest first.
    CHECK_STR(rec.log[0].user, "u0");
    CHECK_STR(rec.log[3].user, "u3");
    CHECK_EQ(sweeper_tick_fire(t, 1000, 1000, 0, s_fire, &rec), 6);
    CHECK_STR(rec.log[9].user, "u9");
    sweeper_tick_destroy(&t);
}

//  Random operations against a brute-force model: a flat array.
#define M_USERS    50
#define M_SESSIONS 4

static uint64_t model[M_USERS][M_SESSIONS];  //  deadline, 0 = absent

static uint32_t rng = 12345;
static uint32_t
s_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void
test_random(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    CHECK(t);
    memset(model, 0, sizeof(model));
    char user[16], session[16];
    for (int step = 0; step < 200000; step++) {
        int u = (int)(s_rand() % M_USERS), s = (int)(s_rand() % M_SESSIONS);
        snprintf(user, sizeof(user), "user%d", u);
        snprintf(session, sizeof(session), "sess-%d", s);
        uint32_t op = s_rand() % 10;
        if (op < 6) {
            uint64_t d = 1 + s_rand() % 100000;
            CHECK_EQ(sweeper_tick_set(t, user, session, d), 0);
            model[u][s] = d;
        } else if (op < 9) {
            CHECK_EQ(sweeper_tick_remove(t, user, session), model[u][s] != 0);
            model[u][s] = 0;
        } else {
            size_t n = 0;
            for (int i = 0; i < M_SESSIONS; i++)
                n += model[u][i] != 0;
            CHECK_EQ(sweeper_tick_remove_user(t, user), n);
            memset(model[u], 0, sizeof(model[u]));
        }
        if (step % 1000 == 0) {
            CHECK(sweeper_tick_check(t));
            size_t n = 0;
            uint64_t min = 0;
            for (int i = 0; i < M_USERS; i++)
                for (int j = 0; j < M_SESSIONS; j++)
                    if (model[i][j]) {
                        n++;
                        if (!min || model[i][j] < min)
                            min = model[i][j];
                        snprintf(user, sizeof(user), "user%d", i);
                        snprintf(session, sizeof(session), "sess-%d", j);
                        CHECK_EQ(sweeper_tick_deadline(t, user, session),
                                 model[i][j]);
                    }
            CHECK_EQ(sweeper_tick_size(t), n);
            CHECK_EQ(sweeper_tick_next_due(t), min);
        }
    }
    sweeper_tick_clear(t);
    CHECK_EQ(sweeper_tick_size(t), 0);
    CHECK(sweeper_tick_check(t));
    //  After a clear the freed entries and keys are reused; the longest
    //  ids fit (keys live in an id arena).
    char lu[65], ls[65];
    memset(lu, 'u', 64);
    memset(ls, 's', 64);
    lu[64] = ls[64] = 0;
    CHECK_EQ(sweeper_tick_set(t, lu, ls, 7), 0);
    CHECK_EQ(sweeper_tick_set(t, lu, "s2", 5), 0);
    CHECK_EQ(sweeper_tick_set(t, "user1", ls, 9), 0);
    CHECK_EQ(sweeper_tick_deadline(t, lu, ls), 7);
    CHECK_EQ(sweeper_tick_user_sessions(t, lu), 2);
    CHECK_EQ(sweeper_tick_next_due(t), 5);
    CHECK(sweeper_tick_check(t));
    CHECK_EQ(sweeper_tick_remove_user(t, lu), 2);
    CHECK_EQ(sweeper_tick_size(t), 1);
    CHECK(sweeper_tick_check(t));
    sweeper_tick_destroy(&t);
}

//  Many sessions (grows both hashes several times); firing pops them in
//  deadline order and touches only the due ones.
static int
s_count(void *arg, const char *user, const char *session, uint64_t deadline)
{
    (void)user;
    (void)session;
    uint64_t *last = arg;
    CHECK(deadline >= last[0]);
    last[0] = deadline;
    last[1]++;
    return 0;
}

static void
test_many(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    CHECK(t);
    char user[32];
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        CHECK_EQ(sweeper_tick_set(t, user, "s", 1000 + (s_rand() % n)), 0);
    }
    CHECK_EQ(sweeper_tick_size(t), n);
    CHECK(sweeper_tick_check(t));
    uint64_t last[2] = {0, 0};
    size_t fired =
        sweeper_tick_fire(t, 1000 + n / 2, 1000000, 0, s_count, last);
    CHECK_EQ(fired, last[1]);
    CHECK(fired > (size_t)n / 3 && fired < (size_t)n * 2 / 3);
    for (int i = 0; i < n; i += 2) {
        snprintf(user, sizeof(user), "u%d", i);
        CHECK_EQ(sweeper_tick_remove_user(t, user), 1);
    }
    CHECK_EQ(sweeper_tick_size(t), n / 2);
    CHECK(sweeper_tick_check(t));
    sweeper_tick_destroy(&t);
}

//  Mark and sweep: entries set after the mark stay, the others go, and
//  the heap and indexes stay sound with removals in the middle.
static void
test_mark_sweep(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    CHECK(t);
    char user[16], session[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(user, sizeof user, "u%d", i % 300);
        snprintf(session, sizeof session, "s%d", i);
        CHECK_EQ(sweeper_tick_set(t, user, session, (uint64_t)(1000 + i)), 0);
    }
    sweeper_tick_mark(t);
    CHECK_EQ(sweeper_tick_size(t), 1000);  //  stale entries stay due
    CHECK_EQ(sweeper_tick_next_due(t), 1000);
    for (int i = 0; i < 1000; i += 3) {  //  a third set again
        snprintf(user, sizeof user, "u%d", i % 300);
        snprintf(session, sizeof session, "s%d", i);
        CHECK_EQ(sweeper_tick_set(t, user, session, (uint64_t)(5000 + i)), 0);
    }
    CHECK_EQ(sweeper_tick_set(t, "new", "n1", 4000), 0);
    CHECK_EQ(sweeper_tick_sweep(t), 666);
    CHECK_EQ(sweeper_tick_size(t), 335);
    CHECK(sweeper_tick_check(t));
    CHECK_EQ(sweeper_tick_next_due(t), 4000);
    CHECK_EQ(sweeper_tick_deadline(t, "u1", "s1"), 0);
    CHECK_EQ(sweeper_tick_deadline(t, "u3", "s3"), 5003);
    //  u0 had s0, s300, s600 and s900, all set again; u1 none of its own.
    CHECK_EQ(sweeper_tick_user_sessions(t, "u0"), 4);
    CHECK_EQ(sweeper_tick_user_sessions(t, "u1"), 0);
    sweeper_tick_destroy(&t);
}

//  ---- re-sends: one session "s" per user, retry 1,000 ms

static sweeper_tick_t *s_t;
static fire_rec_t s_rec;

static size_t
s_fire_at(uint64_t now)
{
    s_rec = (fire_rec_t){.fail_after = -1};
    return sweeper_tick_fire(s_t, now, 1000, 0, s_fire, &s_rec);
}

//  The broker answered user's expire (the session is gone) at now.
static void
s_gone(const char *user, uint64_t now)
{
    sweeper_tick_notice(s_t, user, "s", 0, now, 100);
    sweeper_tick_heard(s_t, now);
}

static void
s_set(const char *user, uint64_t deadline)
{
    CHECK_EQ(sweeper_tick_set(s_t, user, "s", deadline), 0);
}

static void
test_resend(void)
{
    s_t = sweeper_tick_new();
    CHECK(s_t);
    //  Answers flow: the unanswered ones are held, not re-sent.
    s_set("a", 1000);
    s_set("b", 1001);
    s_set("c", 1002);
    CHECK_EQ(s_fire_at(1002), 3);
    s_gone("a", 1500);
    CHECK_EQ(s_fire_at(2002), 0);
    CHECK_EQ(sweeper_tick_next_due(s_t), 2500);
    //  A later one answered first: b was lost, and goes again.
    s_gone("c", 2100);
    CHECK_EQ(s_fire_at(2499), 0);
    CHECK_EQ(s_fire_at(2500), 1);
    CHECK_STR(s_rec.log[0].user, "b");
    s_gone("b", 2600);
    CHECK_EQ(sweeper_tick_size(s_t), 0);

    //  A slow broker: d..h sent, 1 s of silence, one probe (d); then the
    //  originals are answered in order, and nothing more is sent.
    const char *slow[] = {"d", "e", "f", "g", "h"};
    for (int i = 0; i < 5; i++)
        s_set(slow[i], 10000 + (uint64_t)i);
    for (uint64_t now = 10000; now <= 10004; now++)
        CHECK_EQ(s_fire_at(now), 1);
    CHECK_EQ(s_fire_at(11000), 1);
    CHECK_STR(s_rec.log[0].user, "d");
    CHECK_EQ(s_fire_at(11500), 0);
    CHECK_EQ(sweeper_tick_next_due(s_t), 12000);
    s_gone("d", 11600);
    s_gone("e", 11610);  //  older than the probe: slow, not lossy
    CHECK_EQ(s_fire_at(12000), 0);
    s_gone("f", 12100);
    s_gone("g", 12200);
    s_gone("h", 12300);
    CHECK_EQ(sweeper_tick_size(s_t), 0);

    //  A restart lost i..m: the probe (i) is answered alone, and after 1 s
    //  of silence the rest go again.
    const char *lost[] = {"i", "j", "k", "l", "m"};
    for (int i = 0; i < 5; i++)
        s_set(lost[i], 20000 + (uint64_t)i);
    for (uint64_t now = 20000; now <= 20004; now++)
        CHECK_EQ(s_fire_at(now), 1);
    CHECK_EQ(s_fire_at(21000), 1);
    CHECK_STR(s_rec.log[0].user, "i");
    s_gone("i", 21050);
    CHECK_EQ(s_fire_at(22000), 0);
    CHECK_EQ(s_fire_at(22050), 4);
    for (int i = 1; i < 5; i++)
        s_gone(lost[i], 22100);
    CHECK_EQ(sweeper_tick_size(s_t), 0);

    //  A restart with traffic: a newer expire answered first means the
    //  older ones were lost; they go again at their check.
    s_set("p", 30000);
    s_set("q", 30000);
    CHECK_EQ(s_fire_at(30000), 2);
    s_set("r", 30500);
    CHECK_EQ(s_fire_at(30500), 1);
    s_gone("r", 30600);
    CHECK_EQ(s_fire_at(31000), 2);
    s_gone("p", 31100);
    s_gone("q", 31100);

    //  The broker away for 4 s: one probe a second, not three re-sends.
    s_set("x", 40000);
    s_set("y", 40000);
    s_set("z", 40000);
    CHECK_EQ(s_fire_at(40000), 3);
    size_t sent = 0;
    for (uint64_t now = 41000; now < 45000; now += 50)
        sent += s_fire_at(now);
    CHECK(sent >= 4 && sent <= 5);
    CHECK(sweeper_tick_check(s_t));
    sweeper_tick_destroy(&s_t);
}

int
main(void)
{
    test_mark_sweep();
    test_basic();
    test_fire_limit();
    test_random();
    test_many();
    test_resend();
    printf("unit.sweeper_tick: ok\n");
    return 0;
}
