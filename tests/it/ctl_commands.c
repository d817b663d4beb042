/*  it.ctl_commands: the real presencectl binary against a real broker in
    a temp dir: every command, text and --json output (each JSON document
    checked by a strict validator), exit codes (0 ok, 1 refused/not found,
    2 usage, 3 unreachable) and --help. */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;
static char ctl[IT_PATH_MAX + 32];
static char out[65536], err[8192];

//  ---------------------------------------------------------------------
//  A strict JSON validator (RFC 8259 grammar, no extensions).

static const char *s_value(const char *p, int depth);

static const char *
s_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *
s_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p)
                return NULL;
        }
        p++;
    }
    return p + 1;
}

static const char *
s_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (isdigit((unsigned char)*p))
        while (isdigit((unsigned char)*p))
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return p;
}

static const char *
s_value(const char *p, int depth)
{
    if (depth > 32)
        return NULL;
    p = s_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool object = *p == '{';
        p = s_ws(p + 1);
        if (*p == close)
            return p + 1;
        while (true) {
            if (object) {
                p = s_string(s_ws(p));
                if (!p)
                    return NULL;
                p = s_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            p = s_value(p, depth + 1);
            if (!p)
                return NULL;
            p = s_ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (*p == '"')
        return s_string(p);
    if (!strncmp(p, "true", 4))
        return p + 4;
    if (!strncmp(p, "false", 5))
        return p + 5;
    if (!strncmp(p, "null", 4))
        return p + 4;
    return s_number(p);
}

//  One JSON document (object) per line, every line; at least one line.
static bool
s_json_lines(const char *text)
{
    int lines = 0;
    while (*text) {
        if (*s_ws(text) != '{')
            return false;
        const char *end = s_value(text, 0);
        if (!end || *end != '\n')
            return false;
        text = end + 1;
        lines++;
    }
    return lines > 0;
}

//  ---------------------------------------------------------------------

//  Run presencectl with args (a shell fragment); stdout into out, stderr
//  into err. Returns its exit code.
static int
s_ctl(const char *args)
{
    return it_shell(&env, ctl, args, out, sizeof(out), err, sizeof(err));
}

static void
s_json_ok(const char *args)
{
    CHECK_EQ(s_ctl(args), 0);
    if (!s_json_lines(out)) {
        fprintf(stderr, "not JSON lines from '%s':\n%s\n", args, out);
        CHECK(!"valid JSON");
    }
    CHECK(!strstr(out, "\"ok\":"));  //  `ok` is dropped
}

static int
s_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void
test_offline(void)
{
    //  Usage and help need no broker.
    CHECK_EQ(s_ctl("--help"), 0);
    CHECK(strstr(out, "usage: presencectl") && strstr(out, "exit codes"));
    CHECK_EQ(s_ctl("help"), 0);
    CHECK(strstr(out, "commands:"));
    CHECK_EQ(s_ctl("watch --help"), 0);
    CHECK(strstr(out, "usage: presencectl watch"));
    CHECK_EQ(s_ctl(""), 2);
    CHECK(strstr(err, "no command"));
    CHECK_EQ(s_ctl("frob"), 2);
    CHECK_EQ(s_ctl("get"), 2);
    CHECK_EQ(s_ctl("get 'a b'"), 2);
    CHECK_EQ(s_ctl("list --limit 0"), 2);
    CHECK_EQ(s_ctl("account bob lost"), 2);
    CHECK_EQ(s_ctl("publish heartbeat bob"), 2);
    //  A missing config file is a usage problem too.
    CHECK_EQ(s_ctl("-c /nonexistent/presence.conf stats"), 2);

    //  No broker: exit 3 with a message, in about the timeout.
    int64_t t0 = pres_mono_ms();
    CHECK_EQ(s_ctl("--timeout 300 stats"), 3);
    CHECK(pres_mono_ms() - t0 < 3000);
    CHECK(strstr(err, "did not answer"));
    CHECK_EQ(s_ctl("--timeout 300 get alice"), 3);
    CHECK_EQ(s_ctl("--timeout 300 list"), 3);
    CHECK_EQ(s_ctl("--timeout 300 watch --count 1"), 3);
    CHECK_EQ(s_ctl("--timeout 300 publish login alice"), 3);
    CHECK(strstr(err, "nothing was sent"));

    //  token works offline; it creates the secret 0600 in data_dir.
    CHECK_EQ(s_ctl("token alice"), 0);
    CHECK_EQ(s_count(out, "."), 2);
    CHECK(!strchr(out, ' '));
    char secret[IT_PATH_MAX + 16];
    snprintf(secret, sizeof(secret), "%s/jwt.secret", env.data_dir);
    struct stat st;
    CHECK_EQ(stat(secret, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    s_json_ok("--json token ops --admin --ttl 60");
    CHECK(strstr(out, "\"admin\":true"));
    CHECK(strstr(out, "\"user\":\"ops\""));
}

static void
test_commands(void)
{
    //  publish: text and JSON (the event as sent).
    CHECK_EQ(s_ctl("publish login alice --session s1 --device ios"), 0);
    CHECK(strstr(out, "sent login alice session s1"));
    s_json_ok("--json publish login bob --session b1");
    CHECK(strstr(out, "\"type\":\"login\""));
    CHECK(strstr(out, "\"src\":\"presencectl-"));
    //  A login without --session gets a generated one.
    CHECK_EQ(s_ctl("publish login carol"), 0);
    CHECK(strstr(out, "session ctl-"));
    CHECK(it_wait_user(&cfg, "alice", "online", 10000));
    CHECK(it_wait_user(&cfg, "bob", "online", 10000));
    CHECK(it_wait_user(&cfg, "carol", "online", 10000));

    //  get
    CHECK_EQ(s_ctl("get alice"), 0);
    CHECK(strstr(out, "state      online"));
    CHECK(strstr(out, "sessions   1"));
    s_json_ok("--json get alice");
    CHECK(strstr(out, "\"user\":\"alice\""));
    CHECK(strstr(out, "\"state\":\"online\""));
    CHECK_EQ(s_ctl("get nobody"), 1);
    CHECK(strstr(err, "nobody: not found"));
    CHECK_EQ(s_ctl("--json get nobody"), 1);
    CHECK(s_json_lines(out));
    CHECK(strstr(out, "\"error\""));

    //  heartbeat with away
    CHECK_EQ(s_ctl("publish heartbeat alice --session s1 --state away"), 0);
    CHECK(it_wait_user(&cfg, "alice", "away", 10000));
    s_json_ok("--json get alice");
    CHECK(strstr(out, "\"state\":\"away\""));

    //  list: pages, cursor, --all, filters
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-test-1");
    CHECK(pub);
    char user[16];
    for (int i = 0; i < 5; i++) {
        snprintf(user, sizeof(user), "user%d", i);
        CHECK(it_send_login(pub, user, "s") == 0);
    }
    pres_pub_destroy(&pub);
    //  One publisher's events are applied in order: user4 comes last.
    CHECK(it_wait_user(&cfg, "user4", "online", 10000));
    CHECK_EQ(s_ctl("list"), 0);
    CHECK(!strncmp(out, "USER", 4));
    CHECK_EQ(s_count(out, "\n"), 1 + 8);
    CHECK_EQ(s_ctl("list --limit 3"), 0);
    CHECK(strstr(out, "(more: presencectl list --limit 3 --cursor carol)"));
    CHECK_EQ(s_ctl("list --limit 3 --cursor carol"), 0);
    CHECK(strstr(out, "user0") && !strstr(out, "alice"));
    CHECK_EQ(s_ctl("list --limit 3 --all"), 0);
    CHECK(strstr(out, "alice") && strstr(out, "user4"));
    CHECK(!strstr(out, "(more"));
    s_json_ok("--json list --limit 3");
    CHECK(strstr(out, "\"next\":\"carol\""));
    s_json_ok("--json list --limit 3 --all");
    CHECK_EQ(s_count(out, "\"user\":"), 8);
    CHECK(!strstr(out, "\"next\""));
    s_json_ok("--json list --state away");
    CHECK_EQ(s_count(out, "\"user\":"), 1);

    //  account: suspend ends the sessions, list by account finds it
    CHECK_EQ(s_ctl("account bob suspended --reason 'spam, ticket 42'"), 0);
    CHECK(strstr(out, "bob is now suspended"));
    s_json_ok("--json get bob");
    CHECK(strstr(out, "\"state\":\"offline\""));
    CHECK(strstr(out, "\"account\":\"suspended\""));
    s_json_ok("--json list --account suspended");
    CHECK_EQ(s_count(out, "\"user\":"), 1);
    s_json_ok("--json account bob active");
    CHECK(strstr(out, "\"account\":\"active\""));
    CHECK(strstr(out, "\"seq\":"));

    //  stats
    CHECK_EQ(s_ctl("stats"), 0);
    CHECK(strstr(out, "seq ") && strstr(out, "publishers"));
    s_json_ok("--json stats");
    CHECK(strstr(out, "\"users\":{\"online\":"));
    CHECK(strstr(out, "\"publishers\":["));
}

//  Start `presencectl [--json] watch` with its stdout on a pipe; fills
//  *pid and returns the read end as a FILE.
static FILE *
s_watch_start(bool json, pid_t *pid)
{
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    *pid = fork();
    CHECK(*pid >= 0);
    if (*pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        if (json)
            execl(ctl, ctl, "--json", "watch", (char *)NULL);
        else
            execl(ctl, ctl, "watch", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    CHECK(f);
    return f;
}

//  Next line from the watch within timeout_ms: true, or false on timeout.
static bool
s_watch_line(FILE *f, char *line, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fileno(f), .events = POLLIN};
    //  stdio may hold a line already; read byte-wise through the buffer.
    size_t n = 0;
    int64_t end = pres_mono_ms() + timeout_ms;
    while (n + 1 < cap) {
        int left = (int)(end - pres_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return false;
        char c;
        if (read(p.fd, &c, 1) != 1)
            return false;
        line[n++] = c;
        if (c == '\n')
            break;
    }
    line[n] = 0;
    return true;
}

//  watch: started first, prints the changes that follow, one per line,
//  seq consecutive. Its subscription is known to be live once a sentinel
//  change (a login of <u>-sync, repeated until printed) shows up; then
//  three changes of <u> follow.
static void
test_watch(bool json)
{
    pid_t pid;
    FILE *p = s_watch_start(json, &pid);
    pres_pub_t *pub = it_pub_new(&cfg, json ? "gateway-w-1" : "gateway-w-2");
    CHECK(pub);
    const char *u = json ? "wj" : "wt";
    char sync_user[16], line[4096];
    snprintf(sync_user, sizeof(sync_user), "%s-sync", u);
    bool live = false;
    for (int i = 0; i < 100 && !live; i++) {
        char session[16];
        snprintf(session, sizeof(session), "s%d", i);
        CHECK(it_send_login(pub, sync_user, session) == 0);
        while (!live && s_watch_line(p, line, sizeof(line), 200))
            live = strstr(line, sync_user) != NULL;
    }
    CHECK(live);
    CHECK(it_send_login(pub, u, "s1") == 0);
    CHECK(it_send_login(pub, u, "s2") == 0);
    CHECK(it_send_logout(pub, u, NULL) == 0);
    pres_pub_destroy(&pub);
    uint64_t prev = 0;
    for (int i = 0; i < 3;) {
        CHECK(s_watch_line(p, line, sizeof(line), 10000));
        if (strstr(line, sync_user))
            continue;  //  a late echo of the sentinel
        if (json) {
            CHECK(s_json_lines(line));
            const char *s = strstr(line, "\"seq\":");
            CHECK(s);
            uint64_t seq = strtoull(s + 6, NULL, 10);
            CHECK(prev == 0 || seq == prev + 1);
            prev = seq;
        } else
            CHECK(strstr(line, u) && strstr(line, "sessions"));
        i++;
    }
    if (json)
        CHECK(strstr(line, "\"reason\":\"logout\""));
    else
        CHECK(strstr(line, "offline") && strstr(line, "logout"));
    //  Ctrl-C ends it cleanly.
    CHECK_EQ(kill(pid, SIGINT), 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fclose(p);
}

int
main(void)
{
    CHECK(it_env_init(&env, "ctl-commands") == 0);
    it_env_set(&env, "timeout", "30");
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_build_path("presencectl", ctl, sizeof(ctl)) == 0);
    //  presencectl reads the same environment the daemons get.
    setenv("PRESENCE_DATA_DIR", env.data_dir, 1);
    setenv("PRESENCE_RUN_DIR", env.run_dir, 1);
    setenv("PRESENCE_TIMEOUT", "30", 1);

    test_offline();
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    test_commands();
    test_watch(true);
    test_watch(false);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    CHECK_EQ(s_ctl("--timeout 300 get alice"), 3);
    it_env_cleanup(&env);
    printf("it.ctl_commands: ok\n");
    return 0;
}
