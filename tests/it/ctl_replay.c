/*  it.ctl_replay: the presencectl binary against a real broker:
    `watch --since SEQ` replays the changes made while it was away, from
    the change log, in order and once each, then goes on live; `audit USER`
    and `history USER` print the broker's records (text and --json). */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker, watch;  //  itutil reaps them if the test fails
static pres_config_t cfg;
static char ctl[IT_PATH_MAX + 32];
static char out[1 << 20], err[8192];

//  Run presencectl with args; stdout into out, stderr into err. Returns
//  its exit code.
static int
s_ctl(const char *args)
{
    return it_shell(&env, ctl, args, out, sizeof(out), err, sizeof(err));
}

int
main(void)
{
    CHECK(it_env_init(&env, "ctl-replay") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_build_path("presencectl", ctl, sizeof(ctl)) == 0);
    setenv("PRESENCE_DATA_DIR", env.data_dir, 1);
    setenv("PRESENCE_RUN_DIR", env.run_dir, 1);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-ctl-1");
    CHECK(pub);

    //  2,500 changes while nobody watches.
    uint64_t head0 = it_stat(&cfg, "seq");
    for (int i = 0; i < 1250; i++) {
        char user[32];
        snprintf(user, sizeof(user), "w%04d", i);
        CHECK(it_send_login(pub, user, "s") == 0);
        CHECK(it_send_logout(pub, user, "s") == 0);
    }
    CHECK_EQ(it_wait_stat(&cfg, "seq", head0 + 2500, 30000), head0 + 2500);

    //  watch --since replays them all, each once, in order (3 pages).
    CHECK_EQ(s_ctl("--json watch --since 0 --count 2500"), 0);
    const char *p = out;
    for (uint64_t want = head0 + 1; want <= head0 + 2500; want++) {
        char key[48];
        snprintf(key, sizeof(key), "\"seq\":%" PRIu64 ",", want);
        const char *line_end = strchr(p, '\n');
        CHECK(line_end);
        const char *hit = strstr(p, key);
        if (!hit || hit > line_end)
            fprintf(stderr, "seq %" PRIu64 " not on its line: %.200s\n", want,
                    p);
        CHECK(hit && hit < line_end);
        p = line_end + 1;
    }
    CHECK_EQ(*p, '\0');
    //  From the middle, text output.
    char args[128];
    snprintf(args, sizeof(args), "watch --since %" PRIu64 " --count 3",
             head0 + 10);
    CHECK_EQ(s_ctl(args), 0);
    snprintf(args, sizeof(args), "#%" PRIu64, head0 + 11);
    CHECK(strstr(out, args));
    snprintf(args, sizeof(args), "#%" PRIu64, head0 + 13);
    CHECK(strstr(out, args));
    snprintf(args, sizeof(args), "#%" PRIu64, head0 + 14);
    CHECK(!strstr(out, args));
    CHECK_EQ(s_ctl("watch --since x"), 2);

    //  Replay then live: a change made after the replay is printed too.
    char since[32];
    snprintf(since, sizeof(since), "%" PRIu64, head0 + 2499);
    const char *argv[] = {"--json",  "watch", "--since", since,
                          "--count", "2",     NULL};
    FILE *w = NULL;
    CHECK(it_spawn_piped(&env, "presencectl", argv, NULL, &watch, &w) == 0);
    int wfd = fileno(w);
    CHECK(fcntl(wfd, F_SETFL, O_NONBLOCK) == 0);
    //  Changes until watch has printed its two and exited (it may join
    //  late); its output is read as it comes.
    int64_t until = pres_mono_ms() + 20000;
    size_t got = 0;
    bool eof = false;
    while (!eof && pres_mono_ms() < until) {
        CHECK(it_send_login(pub, "late", "s") == 0);
        CHECK(it_send_logout(pub, "late", "s") == 0);
        it_sleep_ms(100);  //  poll interval, and pacing of the changes
        ssize_t n = -1;
        while (got < sizeof(out) - 1 &&
               (n = read(wfd, out + got, sizeof(out) - 1 - got)) > 0)
            got += (size_t)n;
        eof = n == 0;
        out[got] = 0;
    }
    fclose(w);
    CHECK(eof);  //  a failed CHECK: itutil kills and reaps watch
    CHECK_EQ(it_proc_wait(&watch, 20000), 0);
    snprintf(args, sizeof(args), "\"seq\":%" PRIu64 ",", head0 + 2500);
    CHECK(strstr(out, args));
    snprintf(args, sizeof(args), "\"seq\":%" PRIu64 ",", head0 + 2501);
    CHECK(strstr(out, args));

    //  audit and history.
    pres_query_t q = {.op = PRES_Q_ACCOUNT, .status = PRES_ACC_BANNED};
    strcpy(q.user, "w0001");
    strcpy(q.reason, "abuse");
    strcpy(q.by, "ops");
    zframe_t *r = it_admin(&cfg, &q);
    CHECK(r);
    zframe_destroy(&r);
    CHECK_EQ(s_ctl("audit w0001"), 0);
    CHECK(strstr(out, "active") && strstr(out, "banned") &&
          strstr(out, "abuse"));
    CHECK_EQ(s_ctl("--json audit w0001"), 0);
    CHECK(strstr(out, "\"entries\":[{") && strstr(out, "\"by\":\"ops\"") &&
          strstr(out, "\"old\":\"active\"") &&
          strstr(out, "\"new\":\"banned\""));
    CHECK_EQ(s_ctl("audit w0002"), 0);
    CHECK(strstr(out, "no account changes"));
    CHECK_EQ(s_ctl("history w0001"), 0);
    CHECK(strstr(out, "banned") && strstr(out, "logout") &&
          strstr(out, "login"));
    CHECK_EQ(s_ctl("--json history w0001 --limit 1"), 0);
    CHECK(strstr(out, "\"reason\":\"banned\"") && !strstr(out, "logout"));
    CHECK_EQ(s_ctl("audit"), 2);
    CHECK_EQ(s_ctl("audit --help"), 0);
    CHECK(strstr(out, "usage: presencectl audit"));

    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("it.ctl_replay: ok\n");
    return 0;
}
