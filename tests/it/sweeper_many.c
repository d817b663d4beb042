/*  it.sweeper_many: 10,000 sessions whose deadlines fall in the same
    second all end with reason timeout within 1 s of their own deadline,
    and the sweeper sends about one expire per session: one per due
    notice, and the broker notifies a session again only if it is still
    live ~1 s later (the sweeper's cost follows the sessions that expire,
    its memory does not). */
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

#define N_USERS 10000

static it_env_t env;
static it_proc_t broker, sweeper;
static pres_config_t cfg;
static uint64_t deadline[N_USERS];  //  from each login change
static uint64_t ended_at[N_USERS];  //  from each timeout change

//  Print the lines of p's log that hold needle (the daemons' summaries).
static void
s_print_log_lines(const it_proc_t *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            fprintf(stderr, "  %s", line);
    fclose(f);
}

//  The sweeper's last summary line: notices received, expires sent.
static bool
s_sweeper_figures(const it_proc_t *p, uint64_t *notices, uint64_t *expires)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, "notices ");
        unsigned long long n, e;
        if (at && sscanf(at, "notices %llu, expires sent %llu", &n, &e) == 2) {
            *notices = n;
            *expires = e;
            found = true;
        }
    }
    fclose(f);
    return found;
}

//  CPU time (user + system, ms) p has used so far, or -1.
static int64_t
s_cpu_ms(const it_proc_t *p)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *c = strrchr(buf, ')');  //  after the command name
    unsigned long long ut = 0, st = 0;
    if (!c ||
        sscanf(c + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    return (int64_t)((ut + st) * 1000 /
                     (unsigned long long)sysconf(_SC_CLK_TCK));
}

static int
s_index(const char *user)
{
    if (user[0] != 'm')
        return -1;
    int i = atoi(user + 1);
    return i >= 0 && i < N_USERS ? i : -1;
}

int
main(void)
{
    CHECK(it_env_init(&env, "sweeper-many") == 0);
    it_env_set(&env, "timeout", "2");
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    CHECK(it_spawn(&env, "presence-sweeper", NULL, NULL, &sweeper) == 0);
    //  Not it_sweeper_start: without -v (no debug line per expire).
    IT_POLL_UNTIL(
        it_proc_log_has(&sweeper, "ready:") || !it_proc_alive(&sweeper), 20000);
    CHECK(it_proc_log_has(&sweeper, "ready:"));
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, PRES_CHANGE_PREFIX, "gateway-test-1", &sub, &pub) ==
          0);

    int64_t t0 = pres_mono_ms();
    char user[16];
    for (int i = 0; i < N_USERS; i++) {
        snprintf(user, sizeof(user), "m%05d", i);
        CHECK(it_send_login(pub, user, "s1") == 0);
    }
    fprintf(stderr, "  %d logins sent in %" PRId64 " ms\n", N_USERS,
            pres_mono_ms() - t0);

    //  Every login, then every timeout, each exactly once.
    int logins = 0, ends = 0;
    uint64_t first = UINT64_MAX, last = 0;
    int64_t until = pres_mono_ms() + 60000;
    int64_t b0 = s_cpu_ms(&broker), w0 = s_cpu_ms(&sweeper), b1 = -1, w1 = -1;
    while ((logins < N_USERS || ends < N_USERS) && pres_mono_ms() < until) {
        if (logins == N_USERS && b1 < 0) {
            b1 = s_cpu_ms(&broker);
            w1 = s_cpu_ms(&sweeper);
        }
        pres_change_t ch;
        int rc = it_recv(sub, &ch, NULL, 200);
        CHECK(rc >= 0);
        if (rc != 1)
            continue;
        int i = s_index(ch.user);
        CHECK(i >= 0);
        if (ch.reason == PRES_RSN_LOGIN) {
            CHECK_EQ(deadline[i], 0);
            CHECK(ch.deadline > 0);
            deadline[i] = ch.deadline;
            first = ch.deadline < first ? ch.deadline : first;
            last = ch.deadline > last ? ch.deadline : last;
            logins++;
        } else {
            CHECK_STR(pres_reason_name(ch.reason), "timeout");
            CHECK_STR(pres_state_name(ch.state), "offline");
            CHECK(deadline[i] > 0);  //  its login came first
            CHECK_EQ(ended_at[i], 0);
            ended_at[i] = ch.at;
            ends++;
        }
    }
    fprintf(stderr, "  %d logins, %d timeouts; deadlines span %" PRIu64 " ms\n",
            logins, ends, last - first);
    int64_t b2 = s_cpu_ms(&broker), w2 = s_cpu_ms(&sweeper);
    fprintf(stderr,
            "  cpu ms, logins / expiries: broker %" PRId64 " / %" PRId64
            ", sweeper %" PRId64 " / %" PRId64 "\n",
            b1 - b0, b2 - b1, w1 - w0, w2 - w1);
    CHECK_EQ(logins, N_USERS);
    CHECK_EQ(ends, N_USERS);
    int64_t worst = 0;
    int worst_i = 0;
    for (int i = 0; i < N_USERS; i++) {
        int64_t late = (int64_t)ended_at[i] - (int64_t)deadline[i];
        CHECK(late >= 0);
        if (late > worst) {
            worst = late;
            worst_i = i;
        }
    }
    fprintf(stderr,
            "  worst lateness %" PRId64 " ms (deadline +%" PRIu64
            " ms into the span)\n",
            worst, deadline[worst_i] - first);
    CHECK_EQ(it_stat(&cfg, "users.online"), 0);
    CHECK_EQ(it_stat(&cfg, "sessions"), 0);

    //  Where lateness came from (docs/faults.md, "Flaky tests"): expires
    //  sent beyond 10,000 answer a second notice (the broker had not
    //  applied the first expire ~1 s later), and the broker's batch
    //  figures (commits, fsyncs) at its stop.
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&sweeper, 10000), 0);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    s_print_log_lines(&sweeper, "expires sent");
    s_print_log_lines(&broker, "figures");
    uint64_t notices = 0, expires = 0;
    CHECK(s_sweeper_figures(&sweeper, &notices, &expires));
    fprintf(stderr,
            "  sweeper: %" PRIu64 " notices, %" PRIu64
            " expires for %d sessions (%.2f per session)\n",
            notices, expires, N_USERS, (double)expires / N_USERS);
    //  One each at least; twice as many would mean every expire was
    //  applied over ~1 s late (a broker far behind), not a normal run.
    CHECK(expires >= N_USERS);
    CHECK(expires < 2 * N_USERS);
    //  The test means the deadlines due in the same second; the broker
    //  stamps them as it applies the logins, which on a very busy box
    //  takes longer (seen: 1,008 ms at load average 16, 9.6 s at 23). The
    //  burst is still there; what matters is that each ends within 1 s.
    if (last - first >= 1000)
        fprintf(stderr, "  note: deadlines spread over more than 1 s\n");
    CHECK(last - first < 5000);
    CHECK(worst <= 1000);
    it_env_cleanup(&env);
    printf("it.sweeper_many: ok\n");
    return 0;
}
