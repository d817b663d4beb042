/*  itutil: shared helpers for the integration tests (see itutil.h): temp
    dirs, spawning and stopping the real daemons, and a small bus client
    (publisher, query client, change subscriber, msgpack reply lookup). */
#define _XOPEN_SOURCE 700  //  nftw
#include "itutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pres_log.h"
#include "pres_mp.h"
#include "testutil.h"

extern char **environ;

//  How long a query or admin request may take before the helpers give up.
//  Generous: a CURVE handshake on a box at load 20 can take seconds, and
//  the deadline only matters when a test is failing anyway.
#define IT_QUERY_MS 10000

//  Every child spawned by this test process, so a failing CHECK (abort)
//  or a forgotten stop never leaves a daemon running.
static it_proc_t *s_procs[IT_PROCS_MAX];
static int s_nprocs;
static bool s_handlers_installed;
static int s_log_seq;

static void
s_kill_children(void)
{
    for (int i = 0; i < s_nprocs; i++)
        if (s_procs[i] && s_procs[i]->pid > 0) {
            kill(s_procs[i]->pid, SIGKILL);
            waitpid(s_procs[i]->pid, NULL, 0);
            s_procs[i]->pid = 0;
        }
}

static void
s_write_str(const char *s)
{
    ssize_t rc = write(STDERR_FILENO, s, strlen(s));
    (void)rc;
}

//  The last `max` bytes of a file to stderr (async-signal-safe: CI keeps
//  only the test's own output, not the children's logs).
static void
s_write_tail(const char *path, off_t max)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size > max && lseek(fd, size - max, SEEK_SET) < 0)
        size = 0;
    else if (size <= max)
        lseek(fd, 0, SEEK_SET);
    char buf[512];
    ssize_t n;
    while (size > 0 && (n = read(fd, buf, sizeof buf)) > 0) {
        ssize_t rc = write(STDERR_FILENO, buf, (size_t)n);
        (void)rc;
    }
    close(fd);
    s_write_str("\n");
}

//  Async-signal-safe: kill and reap the children, say where their logs
//  are, then die with the default action.
static void
s_on_abort(int sig)
{
    for (int i = 0; i < s_nprocs; i++)
        if (s_procs[i] && s_procs[i]->pid > 0) {
            kill(s_procs[i]->pid, SIGKILL);
            waitpid(s_procs[i]->pid, NULL, 0);
            s_procs[i]->pid = 0;
            s_write_str("itutil: killed child, log: ");
            s_write_str(s_procs[i]->log_path);
            s_write_str(", its tail:\n");
            s_write_tail(s_procs[i]->log_path, 2048);
        }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
s_install_handlers(void)
{
    if (s_handlers_installed)
        return;
    s_handlers_installed = true;
    signal(SIGABRT, s_on_abort);
    signal(SIGSEGV, s_on_abort);
    signal(SIGBUS, s_on_abort);
    signal(SIGALRM, s_on_abort);  //  a test's alarm(): a hung child
    atexit(s_kill_children);
    pres_log_init("it", getenv("IT_VERBOSE") != NULL);
}

void
it_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void
it_sleep_until_wall(uint64_t at_ms)
{
    int64_t now;
    while ((now = pres_now_ms()) < (int64_t)at_ms)
        it_sleep_ms((int)((int64_t)at_ms - now));
}

int
it_env_init(it_env_t *env, const char *name)
{
    memset(env, 0, sizeof(*env));
    s_install_handlers();
    snprintf(env->dir, sizeof(env->dir), "/tmp/pres-it-%s-XXXXXX", name);
    if (!mkdtemp(env->dir)) {
        fprintf(stderr, "itutil: mkdtemp(%s): %s\n", env->dir, strerror(errno));
        return -1;
    }
    snprintf(env->data_dir, sizeof(env->data_dir), "%s/data", env->dir);
    snprintf(env->run_dir, sizeof(env->run_dir), "%s/run", env->dir);
    if (mkdir(env->data_dir, 0750) || mkdir(env->run_dir, 0750)) {
        fprintf(stderr, "itutil: mkdir: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

void
it_env_set(it_env_t *env, const char *key, const char *value)
{
    int i;
    for (i = 0; i < env->nsettings; i++)
        if (strcmp(env->settings[i][0], key) == 0)
            break;
    if (i == env->nsettings) {
        if (env->nsettings == IT_SETTINGS_MAX) {
            fprintf(stderr, "itutil: too many settings\n");
            abort();
        }
        env->nsettings++;
    }
    snprintf(env->settings[i][0], PRES_PATH_MAX, "%s", key);
    snprintf(env->settings[i][1], PRES_PATH_MAX, "%s", value);
}

int
it_env_config(const it_env_t *env, pres_config_t *cfg)
{
    pres_config_defaults(cfg);
    if (pres_config_set(cfg, "data_dir", env->data_dir) ||
        pres_config_set(cfg, "run_dir", env->run_dir))
        return -1;
    for (int i = 0; i < env->nsettings; i++)
        if (pres_config_set(cfg, env->settings[i][0], env->settings[i][1]))
            return -1;
    return pres_config_finish(cfg);
}

static int
s_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
it_env_cleanup(it_env_t *env)
{
    if (env->dir[0])
        nftw(env->dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

//  ---------------------------------------------------------------------

int
it_build_path(const char *prog, char *out, size_t cap)
{
    const char *dir = getenv("PRESENCE_BUILD_DIR");
    if (!dir) {
        fprintf(stderr, "itutil: PRESENCE_BUILD_DIR is not set\n");
        return -1;
    }
    if ((size_t)snprintf(out, cap, "%s/%s", dir, prog) >= cap)
        return -1;
    return 0;
}

//  "PRESENCE_" + upper-cased key + "=" + value, heap.
static char *
s_env_entry(const char *key, const char *value)
{
    size_t len = strlen("PRESENCE_") + strlen(key) + 1 + strlen(value) + 1;
    char *s = malloc(len);
    if (!s)
        abort();
    char *p = s + sprintf(s, "PRESENCE_");
    for (const char *k = key; *k; k++)
        *p++ = (*k >= 'a' && *k <= 'z') ? (char)(*k - 'a' + 'A') : *k;
    sprintf(p, "=%s", value);
    return s;
}

static bool
s_same_name(const char *a, const char *b)
{
    const char *ea = strchr(a, '='), *eb = strchr(b, '=');
    size_t la = ea ? (size_t)(ea - a) : strlen(a);
    size_t lb = eb ? (size_t)(eb - b) : strlen(b);
    return la == lb && memcmp(a, b, la) == 0;
}

//  it_spawn; with out, the child's stdout is a pipe read through *out.
static int
s_spawn(const it_env_t *env, const char *prog, const char *const *argv,
        const char *const *extra_env, it_proc_t *p, FILE **out)
{
    s_install_handlers();
    memset(p, 0, sizeof(*p));
    if (s_nprocs == IT_PROCS_MAX) {
        fprintf(stderr, "itutil: too many children\n");
        return -1;
    }
    char path[512];
    if (it_build_path(prog, path, sizeof(path)))
        return -1;
    snprintf(p->prog, sizeof(p->prog), "%s", prog);
    snprintf(p->log_path, sizeof(p->log_path), "%s/%s-%d.log", env->dir, prog,
             ++s_log_seq);

    //  Our env entries, the overrides win: build them first, then copy the
    //  inherited entries they do not name. All before fork().
    char *ours[IT_SETTINGS_MAX + 40];
    int nours = 0;
    ours[nours++] = s_env_entry("data_dir", env->data_dir);
    ours[nours++] = s_env_entry("run_dir", env->run_dir);
    for (int i = 0; i < env->nsettings; i++)
        ours[nours++] = s_env_entry(env->settings[i][0], env->settings[i][1]);
    for (int i = 0; extra_env && extra_env[i] && nours < 40; i++) {
        ours[nours] = strdup(extra_env[i]);
        if (!ours[nours])
            abort();
        nours++;
    }
    int ninherit = 0;
    while (environ[ninherit])
        ninherit++;
    char **envp = calloc((size_t)(ninherit + nours + 1), sizeof(char *));
    if (!envp)
        abort();
    int n = 0;
    for (int i = 0; i < nours; i++) {
        bool dup = false;
        for (int j = i + 1; j < nours; j++)
            dup = dup || s_same_name(ours[i], ours[j]);
        if (!dup)  //  the later one wins
            envp[n++] = ours[i];
    }
    for (int i = 0; i < ninherit; i++) {
        bool shadowed = false;
        for (int j = 0; j < nours && !shadowed; j++)
            shadowed = s_same_name(environ[i], ours[j]);
        if (!shadowed)
            envp[n++] = environ[i];
    }
    envp[n] = NULL;

    int nargs = 0;
    while (argv && argv[nargs])
        nargs++;
    char **args = calloc((size_t)nargs + 2, sizeof(char *));
    if (!args)
        abort();
    args[0] = path;
    for (int i = 0; i < nargs; i++)
        args[i + 1] = (char *)(uintptr_t)argv[i];

    int fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "itutil: open(%s): %s\n", p->log_path, strerror(errno));
        return -1;
    }
    int pfd[2] = {-1, -1};
    if (out && (pipe(pfd) || fcntl(pfd[0], F_SETFD, FD_CLOEXEC) ||
                fcntl(pfd[1], F_SETFD, FD_CLOEXEC))) {
        fprintf(stderr, "itutil: pipe: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "itutil: fork: %s\n", strerror(errno));
        close(fd);
        if (out) {
            close(pfd[0]);
            close(pfd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out ? pfd[1] : fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        signal(SIGABRT, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        execve(path, args, envp);
        _exit(127);
    }
    close(fd);
    if (out) {
        close(pfd[1]);
        *out = fdopen(pfd[0], "r");
        if (!*out)
            abort();  //  out of memory; the handler reaps the child
    }
    for (int i = 0; i < nours; i++)
        free(ours[i]);
    free(envp);
    free(args);
    p->pid = pid;
    //  Register (reuse a slot of a reaped or reused struct).
    int slot;
    for (slot = 0; slot < s_nprocs; slot++)
        if (s_procs[slot] == p || !s_procs[slot] || s_procs[slot]->pid == 0)
            break;
    s_procs[slot] = p;
    if (slot == s_nprocs)
        s_nprocs++;
    return 0;
}

int
it_spawn(const it_env_t *env, const char *prog, const char *const *argv,
         const char *const *extra_env, it_proc_t *p)
{
    return s_spawn(env, prog, argv, extra_env, p, NULL);
}

int
it_spawn_piped(const it_env_t *env, const char *prog, const char *const *argv,
               const char *const *extra_env, it_proc_t *p, FILE **out)
{
    CHECK(out);
    return s_spawn(env, prog, argv, extra_env, p, out);
}

static void
s_reaped(it_proc_t *p, int status)
{
    p->status = status;
    p->pid = 0;
}

static int
s_exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

bool
it_proc_alive(it_proc_t *p)
{
    if (p->pid <= 0)
        return false;
    int status;
    pid_t rc = waitpid(p->pid, &status, WNOHANG);
    if (rc == p->pid) {
        s_reaped(p, status);
        return false;
    }
    return true;
}

int
it_proc_signal(it_proc_t *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    return kill(p->pid, sig);
}

int
it_proc_wait(it_proc_t *p, int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    while (p->pid > 0) {
        int status;
        pid_t rc = waitpid(p->pid, &status, WNOHANG);
        if (rc == p->pid) {
            s_reaped(p, status);
            break;
        }
        if (pres_mono_ms() >= end)
            return -1;
        it_sleep_ms(5);  //  poll interval
    }
    return s_exit_code(p->status);
}

//  Each thread of pid: name, state, kernel wait channel and the system
//  call it is in (/proc), for a daemon that does not stop.
static void
s_dump_threads(pid_t pid)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        const char *what[] = {"comm", "wchan", "syscall"};
        fprintf(stderr, "  thread %s:", e->d_name);
        for (size_t i = 0; i < sizeof what / sizeof what[0]; i++) {
            char file[640], buf[256] = "";
            snprintf(file, sizeof file, "%s/%s/%s", path, e->d_name, what[i]);
            FILE *f = fopen(file, "r");
            if (f) {
                size_t n = fread(buf, 1, sizeof buf - 1, f);
                buf[n] = 0;
                buf[strcspn(buf, "\n")] = 0;
                fclose(f);
            }
            fprintf(stderr, " %s=%s", what[i], buf);
        }
        fprintf(stderr, "\n");
    }
    closedir(d);
}

int
it_proc_stop(it_proc_t *p, int timeout_ms)
{
    if (p->pid <= 0)
        return s_exit_code(p->status);
    kill(p->pid, SIGTERM);
    int rc = it_proc_wait(p, timeout_ms);
    if (rc < 0) {
        fprintf(stderr,
                "itutil: %s did not stop on SIGTERM in %d ms, "
                "killing; where its threads were:\n",
                p->prog, timeout_ms);
        s_dump_threads(p->pid);
        it_proc_dump_log(p);
        it_proc_kill9(p);
        rc = 128 + SIGKILL;
    }
    return rc;
}

void
it_proc_kill9(it_proc_t *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    int status;
    if (waitpid(p->pid, &status, 0) == p->pid)
        s_reaped(p, status);
}

void
it_proc_dump_log(const it_proc_t *p)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return;
    fprintf(stderr, "---- %s (%s)\n", p->prog, p->log_path);
    char line[1024];
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "---- end of %s\n", p->prog);
    fclose(f);
}

bool
it_proc_log_has(const it_proc_t *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return false;
    bool found = false;
    char line[2048];
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int
it_shell(const it_env_t *env, const char *cmd, const char *args, char *out,
         size_t out_cap, char *err, size_t err_cap)
{
    char line[1024], errpath[IT_PATH_MAX + 16];
    snprintf(errpath, sizeof(errpath), "%s/cmd.err", env->dir);
    CHECK(snprintf(line, sizeof(line), "%s %s 2>%s", cmd, args, errpath) <
          (int)sizeof(line));
    FILE *p = popen(line, "r");
    CHECK(p);
    size_t n = fread(out, 1, out_cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    FILE *f = fopen(errpath, "r");
    CHECK(f);
    n = fread(err, 1, err_cap - 1, f);
    err[n] = '\0';
    fclose(f);
    CHECK(WIFEXITED(status));
    if (getenv("IT_VERBOSE"))
        fprintf(stderr, "$ %s %s -> %d\n%s%s", cmd, args, WEXITSTATUS(status),
                out, err);
    return WEXITSTATUS(status);
}

int
it_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    else
        fprintf(stderr, "itutil: no free port: %s\n", strerror(errno));
    if (fd >= 0)
        close(fd);
    return port;
}

//  The status of GET /healthz on 127.0.0.1:port, or -1.
static int
s_health(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
    char buf[64] = "";
    int status = -1;
    struct timeval tv = {1, 0};
    if (fd >= 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
        connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
        read(fd, buf, sizeof buf - 1) > 0)
        sscanf(buf, "HTTP/%*s %d", &status);
    if (fd >= 0)
        close(fd);
    return status;
}

int
it_gateway_start(it_env_t *env, int port, const char *const *extra_env,
                 it_proc_t *p)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    it_env_set(env, "http_listen", listen);
    if (it_spawn(env, "presence-gateway", NULL, extra_env, p) != 0)
        return -1;
    int64_t until = pres_mono_ms() + 20000;
    while (s_health(port) != 200) {
        if (pres_mono_ms() > until || !it_proc_alive(p)) {
            fprintf(stderr, "itutil: gateway did not become healthy\n");
            it_proc_dump_log(p);
            return -1;
        }
        it_sleep_ms(50);  //  poll interval
    }
    return 0;
}

bool
it_wait_file(const char *path, int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    struct stat st;
    while (stat(path, &st) != 0) {
        if (pres_mono_ms() >= end)
            return false;
        it_sleep_ms(5);  //  poll interval
    }
    return true;
}

bool
it_wait_query(const pres_config_t *cfg, int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    pres_query_t q = {.op = PRES_Q_STATS};
    uint8_t buf[64];
    size_t len = pres_query_encode(&q, buf, sizeof(buf));
    if (!len)
        return false;
    pres_qclient_t *qc = pres_qclient_new(cfg);
    if (!qc)
        return false;
    bool ok = false;
    while (!ok && pres_mono_ms() < end) {
        zframe_t *rep = pres_qclient_call(qc, buf, len, 200);
        ok = rep != NULL;
        zframe_destroy(&rep);
    }
    pres_qclient_destroy(&qc);
    return ok;
}

int
it_sweeper_start(const it_env_t *env, it_proc_t *p, int timeout_ms)
{
    static const char *const argv[] = {"-v", NULL};
    if (it_spawn(env, "presence-sweeper", argv, NULL, p) != 0)
        return -1;
    if (timeout_ms <= 0)
        return 0;
    IT_POLL_UNTIL(it_proc_log_has(p, "ready:") || !it_proc_alive(p),
                  timeout_ms);
    if (it_proc_log_has(p, "ready:"))
        return 0;
    fprintf(stderr, "itutil: the sweeper was not ready within %d ms\n",
            timeout_ms);
    it_proc_dump_log(p);
    return -1;
}

int
it_broker_start(const it_env_t *env, const char *const *extra_env, it_proc_t *p)
{
    pres_config_t cfg;
    if (it_env_config(env, &cfg))
        return -1;
    if (it_spawn(env, "presence-broker", NULL, extra_env, p))
        return -1;
    //  Generous (ASan start-up on a busy box), but not for a broker
    //  that exited.
    bool up = false;
    IT_POLL_UNTIL((up = it_wait_query(&cfg, 200)) || !it_proc_alive(p), 20000);
    if (!up || !it_proc_alive(p)) {
        fprintf(stderr, "itutil: presence-broker did not come up\n");
        it_proc_kill9(p);
        it_proc_dump_log(p);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------

pres_pub_t *
it_pub_new(const pres_config_t *cfg, const char *src)
{
    pres_pub_t *pub = pres_pub_new(cfg, src);
    if (!pub)
        return NULL;
    if (!pres_pub_wait(pub, IT_QUERY_MS)) {
        fprintf(stderr, "itutil: broker never attached to %s\n", src);
        pres_pub_destroy(&pub);
    }
    return pub;
}

static int
s_send(pres_pub_t *pub, pres_event_t *ev)
{
    int rc = pres_pub_send(pub, ev, 2000);
    if (rc)
        fprintf(stderr, "itutil: pres_pub_send(%s) failed: %s\n",
                pres_ev_type_name(ev->type), strerror(errno));
    return rc;
}

static void
s_event(pres_event_t *ev, pres_ev_type_t type, const char *user,
        const char *session)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    snprintf(ev->user, sizeof(ev->user), "%s", user);
    if (session)
        snprintf(ev->session, sizeof(ev->session), "%s", session);
}

int
it_send_login(pres_pub_t *pub, const char *user, const char *session)
{
    pres_event_t ev;
    s_event(&ev, PRES_EV_LOGIN, user, session);
    return s_send(pub, &ev);
}

int
it_send_logout(pres_pub_t *pub, const char *user, const char *session)
{
    pres_event_t ev;
    s_event(&ev, PRES_EV_LOGOUT, user, session);
    return s_send(pub, &ev);
}

int
it_send_heartbeat(pres_pub_t *pub, const char *user, const char *session,
                  const char *state)
{
    pres_event_t ev;
    s_event(&ev, PRES_EV_HEARTBEAT, user, session);
    if (state) {
        ev.has_state = true;
        if (pres_state_parse(state, strlen(state), &ev.state))
            return -1;
    }
    return s_send(pub, &ev);
}

int
it_send_expire(pres_pub_t *pub, const char *user, const char *session,
               uint64_t deadline)
{
    pres_event_t ev;
    s_event(&ev, PRES_EV_EXPIRE, user, session);
    ev.deadline = deadline;
    return s_send(pub, &ev);
}

int
it_send_account(pres_pub_t *pub, const char *user, const char *status)
{
    pres_event_t ev;
    s_event(&ev, PRES_EV_ACCOUNT, user, NULL);
    if (pres_account_parse(status, strlen(status), &ev.status))
        return -1;
    return s_send(pub, &ev);
}

zsock_t *
it_raw_pub_new(const pres_config_t *cfg)
{
    zsock_t *sock = zsock_new(ZMQ_XPUB);
    if (!sock)
        return NULL;
    zsock_set_sndhwm(sock, 0);
    zsock_set_linger(sock, 1000);
    if (pres_bus_secure(sock, cfg, cfg->events_endpoint, false) ||
        zsock_connect(sock, "%s", cfg->events_endpoint)) {
        zsock_destroy(&sock);
        return NULL;
    }
    //  Wait for the broker's subscription frame (\x01...).
    zpoller_t *poller = zpoller_new(sock, NULL);
    bool subscribed = false;
    int64_t end = pres_mono_ms() + IT_QUERY_MS;
    while (!subscribed && pres_mono_ms() < end) {
        if (!zpoller_wait(poller, 100))
            continue;
        zframe_t *f = zframe_recv(sock);
        if (f && zframe_size(f) >= 1 && zframe_data(f)[0] == 1)
            subscribed = true;
        zframe_destroy(&f);
    }
    zpoller_destroy(&poller);
    if (!subscribed) {
        fprintf(stderr, "itutil: raw pub: no subscription from broker\n");
        zsock_destroy(&sock);
    }
    return sock;
}

int
it_raw_send(zsock_t *sock, int count, const void *const *data,
            const size_t *sizes)
{
    void *h = zsock_resolve(sock);
    for (int i = 0; i < count; i++) {
        int flags = i + 1 < count ? ZMQ_SNDMORE : 0;
        if (zmq_send(h, data[i], sizes[i], flags) < 0) {
            fprintf(stderr, "itutil: zmq_send: %s\n", zmq_strerror(errno));
            return -1;
        }
    }
    return 0;
}

int
it_recv(zsock_t *sub, pres_change_t *ch, pres_deadline_t *dl, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(sub, NULL);
    void *which = zpoller_wait(poller, timeout_ms);
    zpoller_destroy(&poller);
    if (!which)
        return 0;
    zmsg_t *msg = zmsg_recv(sub);
    if (!msg)
        return 0;
    int rc = -1;
    const char *why = "frames";
    char *topic = zmsg_popstr(msg);
    zframe_t *body = zmsg_pop(msg);
    if (topic && body && zmsg_size(msg) == 0) {
        if (strncmp(topic, PRES_CHANGE_PREFIX, strlen(PRES_CHANGE_PREFIX)) ==
            0) {
            pres_change_t tmp;
            if (pres_change_decode(ch ? ch : &tmp, zframe_data(body),
                                   zframe_size(body), &why) == 0)
                rc = 1;
        } else if (strncmp(topic, PRES_DEADLINE_PREFIX,
                           strlen(PRES_DEADLINE_PREFIX)) == 0) {
            pres_deadline_t tmp;
            if (pres_deadline_decode(dl ? dl : &tmp, zframe_data(body),
                                     zframe_size(body), &why) == 0)
                rc = 2;
        } else
            why = "topic";
    }
    if (rc < 0)
        fprintf(stderr, "itutil: undecodable change (%s), topic %s\n", why,
                topic ? topic : "(none)");
    zstr_free(&topic);
    zframe_destroy(&body);
    zmsg_destroy(&msg);
    return rc;
}

//  Wait for the next message of kind (1 change, 2 deadline notice) about
//  user, skipping the rest. 0 or -1 (printed).
static int
s_wait_for(zsock_t *sub, int kind, const char *user, pres_change_t *ch,
           pres_deadline_t *dl, int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    while (true) {
        int64_t left = end - pres_mono_ms();
        if (left <= 0)
            break;
        int rc = it_recv(sub, ch, dl, (int)left);
        if (rc == kind && strcmp(kind == 1 ? ch->user : dl->user, user) == 0)
            return 0;
        if (rc == 0)
            break;
    }
    fprintf(stderr, "itutil: no %s for %s within %d ms\n",
            kind == 1 ? "change" : "deadline notice", user, timeout_ms);
    return -1;
}

int
it_wait_change(zsock_t *sub, const char *user, pres_change_t *ch,
               int timeout_ms)
{
    return s_wait_for(sub, 1, user, ch, NULL, timeout_ms);
}

int
it_wait_deadline(zsock_t *sub, const char *user, pres_deadline_t *dl,
                 int timeout_ms)
{
    return s_wait_for(sub, 2, user, NULL, dl, timeout_ms);
}

int
it_sync(zsock_t *sub, pres_pub_t *pub, int timeout_ms)
{
    static unsigned rounds;
    char session[32];
    snprintf(session, sizeof(session), "sync-%u-%u", (unsigned)getpid(),
             ++rounds);
    //  The notice's topic may not be among sub's prefixes: subscribe for
    //  the round trip. Subscriptions travel in order on one connection,
    //  so once this one works, the earlier ones do too.
    char topic[PRES_TOPIC_MAX];
    pres_deadline_topic(IT_SYNC_USER, topic);
    zsock_set_subscribe(sub, topic);
    int64_t end = pres_mono_ms() + timeout_ms;
    while (pres_mono_ms() < end) {
        if (it_send_expire(pub, IT_SYNC_USER, session, 1))
            break;
        int64_t resend = pres_mono_ms() + 250;
        pres_deadline_t dl;
        int rc;
        while (pres_mono_ms() < resend &&
               (rc = it_recv(sub, NULL, &dl, 50)) >= 0)
            if (rc == 2 && strcmp(dl.user, IT_SYNC_USER) == 0 &&
                strcmp(dl.session, session) == 0) {
                zsock_set_unsubscribe(sub, topic);
                return 0;
            }
    }
    zsock_set_unsubscribe(sub, topic);
    fprintf(stderr, "itutil: no sentinel echo within %d ms\n", timeout_ms);
    return -1;
}

int
it_bus_open(const pres_config_t *cfg, const char *prefix, const char *src,
            zsock_t **sub, pres_pub_t **pub)
{
    *sub = pres_bus_sub_changes(cfg, prefix);
    *pub = *sub ? it_pub_new(cfg, src) : NULL;
    if (*pub && it_sync(*sub, *pub, 10000) == 0)
        return 0;
    fprintf(stderr, "itutil: no live bus for %s\n", src);
    pres_pub_destroy(pub);
    zsock_destroy(sub);
    return -1;
}

bool
it_wait_user(const pres_config_t *cfg, const char *user, const char *state,
             int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    char st[16] = "";
    while (true) {
        int rc = it_get_user(cfg, user, st, NULL, NULL, NULL);
        if ((rc == 0 && strcmp(st, state) == 0) || (rc == 1 && !state[0]))
            return true;
        if (pres_mono_ms() >= end)
            break;
        it_sleep_ms(10);  //  poll interval
    }
    fprintf(stderr, "itutil: %s is '%s', not '%s', after %d ms\n", user, st,
            state, timeout_ms);
    return false;
}

uint64_t
it_wait_stat(const pres_config_t *cfg, const char *path, uint64_t value,
             int timeout_ms)
{
    uint64_t v;
    IT_POLL_UNTIL((v = it_stat(cfg, path)) >= value, timeout_ms);
    return v;
}

int
it_drain(zsock_t *sub, int quiet_ms)
{
    int n = 0;
    while (n < 100000 && it_recv(sub, NULL, NULL, quiet_ms) != 0)
        n++;
    return n;
}

//  A request on the admin endpoint, answered within timeout_ms or NULL.
static zframe_t *
s_admin(const pres_config_t *cfg, const pres_query_t *q, int timeout_ms)
{
    uint8_t buf[PRES_MSG_MAX];
    size_t len = pres_query_encode(q, buf, sizeof(buf));
    if (!len)
        return NULL;
    pres_qclient_t *qc = pres_qclient_new_admin(cfg);
    if (!qc)
        return NULL;
    zframe_t *rep = pres_qclient_call(qc, buf, len, timeout_ms);
    pres_qclient_destroy(&qc);
    return rep;
}

zframe_t *
it_admin(const pres_config_t *cfg, const pres_query_t *q)
{
    //  IT_QUERY_MS like any query: an account change is answered once its
    //  batch is fsynced, which a busy box can hold past 3 s (it.broker_rules
    //  at load 17).
    return s_admin(cfg, q, IT_QUERY_MS);
}

//  it_admin_account with the answer awaited timeout_ms.
static int
s_admin_account(const pres_config_t *cfg, const char *user, const char *status,
                int timeout_ms)
{
    pres_query_t q = {.op = PRES_Q_ACCOUNT};
    snprintf(q.user, sizeof(q.user), "%s", user);
    if (pres_account_parse(status, strlen(status), &q.status))
        return -1;
    zframe_t *rep = s_admin(cfg, &q, timeout_ms);
    bool ok = false;
    if (rep)
        it_mp_bool(rep, "ok", &ok);
    zframe_destroy(&rep);
    return ok ? 0 : -1;
}

int
it_admin_account(const pres_config_t *cfg, const char *user, const char *status)
{
    return s_admin_account(cfg, user, status, IT_QUERY_MS);
}

bool
it_admin_account_refused(const pres_config_t *cfg, const char *user,
                         const char *status)
{
    //  3 s: a refused peer never gets an answer (the handshake is
    //  refused), so this waits it out.
    return s_admin_account(cfg, user, status, 3000) != 0;
}

zframe_t *
it_query_raw(const pres_config_t *cfg, const void *buf, size_t len)
{
    pres_qclient_t *qc = pres_qclient_new(cfg);
    if (!qc)
        return NULL;
    zframe_t *rep = pres_qclient_call(qc, buf, len, IT_QUERY_MS);
    if (!rep)
        fprintf(stderr, "itutil: query timed out\n");
    pres_qclient_destroy(&qc);
    return rep;
}

zframe_t *
it_query(const pres_config_t *cfg, const pres_query_t *q)
{
    //  Tests query from several threads: a buffer of our own each call
    //  (a shared static one once sent one thread's bytes in another's get).
    uint8_t *buf = malloc(PRES_QUERY_FRAME_MAX);  //  get_many of 1,000 ids
    size_t len = buf ? pres_query_encode(q, buf, PRES_QUERY_FRAME_MAX) : 0;
    if (!len) {
        fprintf(stderr, "itutil: pres_query_encode failed\n");
        free(buf);
        return NULL;
    }
    zframe_t *rep = it_query_raw(cfg, buf, len);
    free(buf);
    return rep;
}

//  Position r on the value at path. 0 or -1.
static int
s_mp_find(pres_mp_reader_t *r, zframe_t *reply, const char *path)
{
    if (!reply)
        return -1;
    return pres_mp_find(zframe_data(reply), zframe_size(reply), path, r);
}

int
it_mp_uint(zframe_t *reply, const char *path, uint64_t *value)
{
    pres_mp_reader_t r;
    if (s_mp_find(&r, reply, path))
        return -1;
    return pres_mp_read_uint(&r, value);
}

int
it_mp_bool(zframe_t *reply, const char *path, bool *value)
{
    pres_mp_reader_t r;
    if (s_mp_find(&r, reply, path))
        return -1;
    return pres_mp_read_bool(&r, value);
}

int
it_mp_str(zframe_t *reply, const char *path, char *out, size_t cap)
{
    pres_mp_reader_t r;
    const char *s;
    uint32_t len;
    if (s_mp_find(&r, reply, path) || pres_mp_read_str(&r, &s, &len) ||
        len >= cap)
        return -1;
    memcpy(out, s, len);
    out[len] = 0;
    return 0;
}

int
it_mp_count(zframe_t *reply, const char *path, uint32_t *count)
{
    pres_mp_reader_t r;
    if (s_mp_find(&r, reply, path))
        return -1;
    if (pres_mp_peek(&r) == PRES_MP_MAP)
        return pres_mp_read_map(&r, count);
    return pres_mp_read_array(&r, count);
}

void
it_print_reply(zframe_t *reply)
{
    if (!reply) {
        fprintf(stderr, "(no reply)\n");
        return;
    }
    char *json =
        pres_mp_to_json(zframe_data(reply), zframe_size(reply), NULL, NULL);
    fprintf(stderr, "reply: %s\n", json ? json : "(not convertible)");
    free(json);
}

uint64_t
it_uint(zframe_t *reply, const char *path)
{
    uint64_t v;
    if (it_mp_uint(reply, path, &v)) {
        fprintf(stderr, "itutil: no uint at '%s'\n", path);
        it_print_reply(reply);
        abort();
    }
    return v;
}

const char *
it_str(zframe_t *reply, const char *path)
{
    static __thread char buf[PRES_REASON_MAX + 1];  //  per thread
    if (it_mp_str(reply, path, buf, sizeof(buf))) {
        fprintf(stderr, "itutil: no string at '%s'\n", path);
        it_print_reply(reply);
        abort();
    }
    return buf;
}

int
it_get_user(const pres_config_t *cfg, const char *user, char *state,
            uint64_t *sessions, uint64_t *last_seen, char *account)
{
    pres_query_t q = {.op = PRES_Q_GET};
    snprintf(q.user, sizeof(q.user), "%s", user);
    zframe_t *rep = it_query(cfg, &q);
    if (!rep)
        return -1;
    bool ok = false;
    int rc = -1;
    char error[64] = "";
    if (it_mp_bool(rep, "ok", &ok) == 0 && !ok &&
        it_mp_str(rep, "error", error, sizeof error) == 0 &&
        strcmp(error, "not found") == 0) {
        if (state)
            state[0] = 0;
        rc = 1;
    } else if (!ok) {
        fprintf(stderr, "itutil: get %s: error '%s'\n", user, error);
    } else {
        uint64_t n = 0, ls = 0;
        char st[16] = "", acc[16] = "";
        if (it_mp_str(rep, "state", st, sizeof(st)) == 0 &&
            it_mp_uint(rep, "sessions", &n) == 0 &&
            it_mp_uint(rep, "last_seen", &ls) == 0 &&
            it_mp_str(rep, "account", acc, sizeof(acc)) == 0) {
            if (state)
                strcpy(state, st);
            if (sessions)
                *sessions = n;
            if (last_seen)
                *last_seen = ls;
            if (account)
                strcpy(account, acc);
            rc = 0;
        }
    }
    if (rc < 0)
        it_print_reply(rep);
    zframe_destroy(&rep);
    return rc;
}

uint64_t
it_stat(const pres_config_t *cfg, const char *path)
{
    pres_query_t q = {.op = PRES_Q_STATS};
    zframe_t *rep = it_query(cfg, &q);
    if (!rep) {
        fprintf(stderr, "itutil: stats query failed\n");
        abort();
    }
    uint64_t v = it_uint(rep, path);
    zframe_destroy(&rep);
    return v;
}
