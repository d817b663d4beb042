/*  ctl_args: presencectl's command-line parser and help texts. Global
    options may come before or after the command. */
#include "ctl_args.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pres_msg.h"

static const struct {
    const char *name;
    ctl_cmd_t cmd;
    const char *help;
} s_cmds[] = {
    {"token", CTL_CMD_TOKEN,
     "usage: presencectl token USER [--admin] [--ttl S]\n"
     "\n"
     "Mint a bearer token (HS256 JWT) for USER with the shared secret in\n"
     "jwt_secret_file (created, mode 0600, if missing, as the gateway\n"
     "does). Claims: sub, iat, exp, a random jti, and iss / aud when\n"
     "jwt_issuer / jwt_audience are set (the gateway then requires them).\n"
     "Prints the token alone, so it fits in a shell variable.\n"
     "\n"
     "  --admin   add role \"admin\" (needed for /v1/users, /v1/stats, ...)\n"
     "  --ttl S   lifetime in seconds (default 3600)\n"
     "\n"
     "examples:\n"
     "  TOKEN=$(presencectl token alice)\n"
     "  curl -H \"Authorization: Bearer $(presencectl token ops --admin)\" \\\n"
     "       http://127.0.0.1:8080/v1/stats\n"},
    {"get", CTL_CMD_GET,
     "usage: presencectl get USER\n"
     "\n"
     "Show one user: state (online, away, offline), live sessions, account\n"
     "status and when it was last seen. Exit code 1 if the broker never\n"
     "saw USER.\n"
     "\n"
     "examples:\n"
     "  presencectl get alice\n"
     "  presencectl --json get alice | python3 -m json.tool\n"},
    {"list", CTL_CMD_LIST,
     "usage: presencectl list [--state S] [--account A] [--limit N]\n"
     "                        [--cursor USER] [--all]\n"
     "\n"
     "List users in user-id order, one page at a time (100 by default).\n"
     "When there is more, the last line tells how to get the next page.\n"
     "\n"
     "  --state S       only online, away or offline users\n"
     "  --account A     only users whose account is A (active, pending,\n"
     "                  inactive, suspended, banned)\n"
     "  --limit N       page size, 1..1000\n"
     "  --cursor USER   start after USER (the `next` of the previous page)\n"
     "  --all           follow the pages to the end\n"
     "\n"
     "examples:\n"
     "  presencectl list --state online\n"
     "  presencectl list --account suspended --all\n"
     "  presencectl --json list --limit 10\n"},
    {"stats", CTL_CMD_STATS,
     "usage: presencectl stats\n"
     "\n"
     "Counts by state and by account status, live sessions, events\n"
     "applied/refused/lost, and per publisher the last seq and how many of\n"
     "its events were lost on the bus. `seq` is the last change number.\n"
     "\n"
     "examples:\n"
     "  presencectl stats\n"
     "  presencectl --json stats\n"},
    {"watch", CTL_CMD_WATCH,
     "usage: presencectl watch [--since SEQ] [--count N]\n"
     "\n"
     "Print every change live, one per line, until Ctrl-C: seq, user,\n"
     "previous and new state, reason, live sessions, account status.\n"
     "It subscribes first, then takes a snapshot, and skips what the\n"
     "snapshot already holds. With --since SEQ it instead replays every\n"
     "change after SEQ from the broker's change log, then goes on live\n"
     "(nothing missed, nothing twice). If a change number is missing (a\n"
     "gap), it says so and replays the missing ones from the log, or takes\n"
     "a new snapshot when the log no longer reaches back (resync); when\n"
     "the stream is quiet\n"
     "it checks the broker's latest seq every 2 s, so changes lost at the\n"
     "end of a burst are noticed too. With --json, each change\n"
     "is one JSON object per line, and a resync prints a line\n"
     "{\"resync\": true, \"reason\": ..., \"seq\": ...}.\n"
     "\n"
     "  --since SEQ  replay the changes after SEQ first (0 = the whole log)\n"
     "  --count N    exit after N changes\n"
     "\n"
     "examples:\n"
     "  presencectl watch\n"
     "  presencectl watch --since 41872   # resume after change 41872\n"
     "  presencectl --json watch | jq .user\n"},
    {"account", CTL_CMD_ACCOUNT,
     "usage: presencectl account USER STATUS [--reason R]\n"
     "\n"
     "Set the account status of USER: active, pending, inactive,\n"
     "suspended or banned. Any status but active ends every session of\n"
     "USER at once and refuses its later logins and heartbeats. Returns\n"
     "once the change is durable. Goes to the broker's admin endpoint\n"
     "(admin_endpoint), which admits only the users in admin_peers\n"
     "(default: the broker's own user) or, on tcp://, the CURVE keys in\n"
     "curve_admin_dir; the broker records you as the one who asked.\n"
     "\n"
     "  --reason R   free text kept with the change (audit)\n"
     "\n"
     "examples:\n"
     "  presencectl account mallory suspended --reason \"spam, ticket 42\"\n"
     "  presencectl account mallory active\n"},
    {"publish", CTL_CMD_PUBLISH,
     "usage: presencectl publish TYPE USER [--session S] [--state "
     "online|away]\n"
     "                           [--device D] [--status X] [--reason R]\n"
     "                           [--deadline MS]\n"
     "\n"
     "Send one event on the bus, as a frontend would (testing, scripts).\n"
     "TYPE is login, heartbeat, logout, expire or account. It waits for\n"
     "the broker to be attached and exits 3 if it is not.\n"
     "\n"
     "  --session S    session id (login: generated when absent;\n"
     "                 heartbeat and expire: required; logout: absent =\n"
     "                 every session)\n"
     "  --state S      heartbeat: online or away\n"
     "  --device D     login: device label\n"
     "  --status X     account: the new status\n"
     "  --reason R     account: free text\n"
     "  --deadline MS  expire: the deadline acted on (default: now)\n"
     "\n"
     "The broker refuses (and counts) account events from any\n"
     "publisher: use `presencectl account`, which goes to the admin\n"
     "endpoint.\n"
     "\n"
     "examples:\n"
     "  presencectl publish login alice --session phone --device ios\n"
     "  presencectl publish heartbeat alice --session phone --state away\n"
     "  presencectl publish logout alice --session phone\n"},
    {"audit", CTL_CMD_AUDIT,
     "usage: presencectl audit USER [--limit N]\n"
     "\n"
     "The account-status changes of USER, newest first: when, by whom\n"
     "(the admin's token subject or the bus identity), old and new status,\n"
     "and the reason given. Kept durably by the broker.\n"
     "\n"
     "  --limit N   at most N entries (1..1000, default 100)\n"
     "\n"
     "examples:\n"
     "  presencectl audit mallory\n"
     "  presencectl --json audit mallory | jq .entries[0].by\n"},
    {"history", CTL_CMD_HISTORY,
     "usage: presencectl history USER [--limit N]\n"
     "\n"
     "The last state transitions of USER, newest first: change seq, when,\n"
     "previous and new state, reason. The broker keeps at least the last\n"
     "100 per user.\n"
     "\n"
     "  --limit N   at most N entries (1..1000, default 100)\n"
     "\n"
     "examples:\n"
     "  presencectl history alice\n"},
    {"keygen", CTL_CMD_KEYGEN,
     "usage: presencectl keygen NAME DIR\n"
     "\n"
     "Make a CURVE certificate for the bus between hosts: DIR/NAME.cert\n"
     "(public: give it to the broker's curve_clients_dir, or, for the\n"
     "broker's own, to every client as curve_server_public_file) and\n"
     "DIR/NAME.cert_secret (mode 0600: this host's curve_secret_file).\n"
     "Needs no broker. See deploy/multihost/README.md.\n"
     "\n"
     "examples:\n"
     "  presencectl keygen broker /etc/presence/certs\n"
     "  presencectl keygen gw1 /etc/presence/certs\n"},
};

#define S_NCMDS (sizeof(s_cmds) / sizeof(s_cmds[0]))

void
ctl_args_help(ctl_cmd_t cmd, FILE *out)
{
    for (size_t i = 0; i < S_NCMDS; i++)
        if (s_cmds[i].cmd == cmd) {
            fputs(s_cmds[i].help, out);
            fputs("\nglobal options: -c FILE, --json, --timeout MS, -v "
                  "(see presencectl --help)\n",
                  out);
            return;
        }
    fputs(
        "usage: presencectl [-c FILE] [--json] [--timeout MS] [-v] COMMAND "
        "[ARGS]\n"
        "\n"
        "Ask and steer the presence broker: who is online, away or offline.\n"
        "\n"
        "commands:\n"
        "  get USER                      show one user\n"
        "  list [--state S] [--all]      list users, page by page\n"
        "  stats                         counts by state, account, events\n"
        "  watch [--since SEQ]           print changes live (Ctrl-C stops);\n"
        "                                --since replays from the log first\n"
        "  account USER STATUS           suspend, ban, re-activate a user\n"
        "  audit USER                    who changed USER's account, when\n"
        "  history USER                  USER's last state transitions\n"
        "  publish TYPE USER [...]       send a login/heartbeat/... event\n"
        "  token USER [--admin]          mint a bearer token for the HTTP API\n"
        "  keygen NAME DIR               make a CURVE certificate "
        "(multi-host)\n"
        "  help [COMMAND]                this text, or a command's help\n"
        "\n"
        "options:\n"
        "  -c FILE        config file (key = value lines); PRESENCE_<KEY>\n"
        "                 environment variables win over it. Without it the\n"
        "                 defaults apply: the broker's sockets in ./run\n"
        "  --json         print the broker's answer as JSON (one object per\n"
        "                 line for watch)\n"
        "  --timeout MS   how long to wait for the broker (default 2000)\n"
        "  -v             verbose logging on stderr\n"
        "  -h, --help     help; `presencectl COMMAND --help` for a command\n"
        "\n"
        "exit codes: 0 ok, 1 the broker said no (e.g. user not found),\n"
        "            2 usage error, 3 broker unreachable (timeout)\n"
        "\n"
        "examples:\n"
        "  presencectl -c /etc/presence/presence.conf stats\n"
        "  PRESENCE_RUN_DIR=/run/presence presencectl get alice\n"
        "  presencectl list --state online --all\n"
        "  presencectl --json watch\n",
        out);
}

static int s_usage(FILE *err, ctl_cmd_t cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_usage(FILE *err, ctl_cmd_t cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("presencectl: ", err);
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
    fputc('\n', err);
    const char *name = NULL;
    for (size_t i = 0; i < S_NCMDS; i++)
        if (s_cmds[i].cmd == cmd)
            name = s_cmds[i].name;
    if (name)
        fprintf(err, "Try 'presencectl %s --help'.\n", name);
    else
        fputs("Try 'presencectl --help'.\n", err);
    return CTL_EXIT_USAGE;
}

static int
s_number(const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

static bool
s_valid_id(const char *s)
{
    return pres_id_valid(s, strlen(s));
}

//  Options each command accepts (with a value unless a flag).
typedef struct {
    const char *name;
    bool flag;
    unsigned cmds;  //  bit per ctl_cmd_t
} s_opt_t;

#define C(x) (1u << (x))
static const s_opt_t s_opts[] = {
    {"--admin", true, C(CTL_CMD_TOKEN)},
    {"--ttl", false, C(CTL_CMD_TOKEN)},
    {"--state", false, C(CTL_CMD_LIST) | C(CTL_CMD_PUBLISH)},
    {"--account", false, C(CTL_CMD_LIST)},
    {"--cursor", false, C(CTL_CMD_LIST)},
    {"--limit", false, C(CTL_CMD_LIST) | C(CTL_CMD_AUDIT) | C(CTL_CMD_HISTORY)},
    {"--since", false, C(CTL_CMD_WATCH)},
    {"--all", true, C(CTL_CMD_LIST)},
    {"--reason", false, C(CTL_CMD_ACCOUNT) | C(CTL_CMD_PUBLISH)},
    {"--session", false, C(CTL_CMD_PUBLISH)},
    {"--device", false, C(CTL_CMD_PUBLISH)},
    {"--status", false, C(CTL_CMD_PUBLISH)},
    {"--deadline", false, C(CTL_CMD_PUBLISH)},
    {"--count", false, C(CTL_CMD_WATCH)},
};

static int
s_set_option(ctl_args_t *a, const char *name, const char *value, FILE *err)
{
    long v;
    ctl_cmd_t c = a->cmd;
    if (!strcmp(name, "--admin"))
        a->admin = true;
    else if (!strcmp(name, "--all"))
        a->all = true;
    else if (!value)
        return s_usage(err, c, "%s needs a value", name);
    else if (!strcmp(name, "--ttl")) {
        if (s_number(value, 1, 10L * 365 * 86400, &a->ttl) != 0)
            return s_usage(err, c, "--ttl wants seconds > 0, not '%s'", value);
    } else if (!strcmp(name, "--limit")) {
        if (s_number(value, 1, PRES_LIST_MAX, &a->limit) != 0)
            return s_usage(err, c, "--limit wants 1..1000, not '%s'", value);
    } else if (!strcmp(name, "--since")) {
        if (s_number(value, 0, __LONG_MAX__, &v) != 0)
            return s_usage(err, c, "--since wants a change seq >= 0, not '%s'",
                           value);
        a->has_since = true;
        a->since = (uint64_t)v;
    } else if (!strcmp(name, "--count")) {
        if (s_number(value, 1, 1000000000L, &a->count) != 0)
            return s_usage(err, c, "--count wants a number > 0, not '%s'",
                           value);
    } else if (!strcmp(name, "--deadline")) {
        if (s_number(value, 1, __LONG_MAX__, &v) != 0)
            return s_usage(err, c,
                           "--deadline wants ms since the epoch, "
                           "not '%s'",
                           value);
        a->deadline = (uint64_t)v;
    } else if (!strcmp(name, "--state"))
        a->state = value;
    else if (!strcmp(name, "--account"))
        a->account = value;
    else if (!strcmp(name, "--cursor"))
        a->cursor = value;
    else if (!strcmp(name, "--reason"))
        a->reason = value;
    else if (!strcmp(name, "--session"))
        a->session = value;
    else if (!strcmp(name, "--device"))
        a->device = value;
    else if (!strcmp(name, "--status"))
        a->status = value;
    return 0;
}

//  Cross-field checks once everything is parsed.
static int
s_validate(ctl_args_t *a, FILE *err)
{
    ctl_cmd_t c = a->cmd;
    pres_state_t st;
    pres_account_t acc;
    pres_ev_type_t type;
    if (a->user && !s_valid_id(a->user))
        return s_usage(err, c,
                       "'%s' is not a user id (1-64 of "
                       "A-Z a-z 0-9 . _ @ : -)",
                       a->user);
    if (c == CTL_CMD_LIST) {
        if (a->state && pres_state_parse(a->state, strlen(a->state), &st))
            return s_usage(err, c,
                           "--state wants online, away or offline, "
                           "not '%s'",
                           a->state);
        if (a->account &&
            pres_account_parse(a->account, strlen(a->account), &acc))
            return s_usage(err, c,
                           "--account wants active, pending, "
                           "inactive, suspended or banned, not '%s'",
                           a->account);
        if (a->cursor && !s_valid_id(a->cursor))
            return s_usage(err, c, "--cursor '%s' is not a user id", a->cursor);
    }
    if (c == CTL_CMD_ACCOUNT &&
        pres_account_parse(a->status, strlen(a->status), &acc))
        return s_usage(err, c,
                       "STATUS must be active, pending, inactive, "
                       "suspended or banned, not '%s'",
                       a->status);
    if (a->reason && strlen(a->reason) > PRES_REASON_MAX)
        return s_usage(err, c, "--reason is longer than %d bytes",
                       PRES_REASON_MAX);
    if (c != CTL_CMD_PUBLISH)
        return 0;
    if (pres_ev_type_parse(a->type, strlen(a->type), &type))
        return s_usage(err, c,
                       "TYPE must be login, heartbeat, logout, "
                       "expire or account, not '%s'",
                       a->type);
    if (a->session && !s_valid_id(a->session))
        return s_usage(err, c, "--session '%s' is not a valid id", a->session);
    if ((type == PRES_EV_HEARTBEAT || type == PRES_EV_EXPIRE) && !a->session)
        return s_usage(err, c, "%s needs --session", a->type);
    if (a->state && (type != PRES_EV_HEARTBEAT ||
                     pres_state_parse(a->state, strlen(a->state), &st) ||
                     st == PRES_OFFLINE))
        return s_usage(err, c,
                       "--state is for heartbeat, online or away "
                       "(got '%s')",
                       a->state);
    if (a->device &&
        (type != PRES_EV_LOGIN || strlen(a->device) > PRES_DEVICE_MAX))
        return s_usage(err, c,
                       "--device is for login, at most 128 bytes "
                       "(got '%s')",
                       a->device);
    if (type == PRES_EV_ACCOUNT &&
        (!a->status || pres_account_parse(a->status, strlen(a->status), &acc)))
        return s_usage(err, c,
                       "account needs --status active, pending, "
                       "inactive, suspended or banned");
    if (type != PRES_EV_ACCOUNT && (a->status || a->reason))
        return s_usage(err, c,
                       "--status and --reason are for account "
                       "events");
    if (type != PRES_EV_EXPIRE && a->deadline)
        return s_usage(err, c, "--deadline is for expire events");
    return 0;
}

int
ctl_args_parse(ctl_args_t *a, int argc, char **argv, FILE *out, FILE *err)
{
    assert(a && argv);
    memset(a, 0, sizeof(*a));
    a->timeout_ms = CTL_TIMEOUT_DEFAULT;
    a->ttl = 3600;
    const char *pos[3];  //  positional arguments after the command
    int npos = 0;
    bool help = false, help_cmd = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        long v;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            help = true;
            continue;
        }
        if (!strcmp(arg, "--json")) {
            a->json = true;
            continue;
        }
        if (!strcmp(arg, "-v")) {
            a->verbose = true;
            continue;
        }
        if (!strcmp(arg, "-c") || !strcmp(arg, "--timeout")) {
            if (!next)
                return s_usage(err, a->cmd, "%s needs a value", arg);
            if (arg[1] == 'c')
                a->config = next;
            else if (s_number(next, 1, 3600000, &v) != 0)
                return s_usage(err, a->cmd,
                               "--timeout wants ms > 0, not "
                               "'%s'",
                               next);
            else
                a->timeout_ms = (int)v;
            i++;
            continue;
        }
        if (a->cmd == CTL_CMD_NONE && !help_cmd && arg[0] != '-') {
            if (!strcmp(arg, "help")) {
                help_cmd = help = true;
                continue;
            }
            for (size_t k = 0; k < S_NCMDS; k++)
                if (!strcmp(arg, s_cmds[k].name))
                    a->cmd = s_cmds[k].cmd;
            if (a->cmd == CTL_CMD_NONE)
                return s_usage(err, a->cmd, "unknown command '%s'", arg);
            continue;
        }
        if (help_cmd && a->cmd == CTL_CMD_NONE) {
            for (size_t k = 0; k < S_NCMDS; k++)
                if (!strcmp(arg, s_cmds[k].name))
                    a->cmd = s_cmds[k].cmd;
            if (a->cmd == CTL_CMD_NONE)
                return s_usage(err, a->cmd, "no help for '%s'", arg);
            continue;
        }
        if (arg[0] == '-' && arg[1] == '-') {
            const s_opt_t *o = NULL;
            for (size_t k = 0; k < sizeof(s_opts) / sizeof(s_opts[0]); k++)
                if (!strcmp(arg, s_opts[k].name) &&
                    (s_opts[k].cmds & C(a->cmd)))
                    o = &s_opts[k];
            if (!o)
                return s_usage(err, a->cmd, "unknown option '%s'", arg);
            if (!o->flag && !next)
                return s_usage(err, a->cmd, "%s needs a value", arg);
            int rc = s_set_option(a, arg, o->flag ? NULL : next, err);
            if (rc != 0)
                return rc;
            if (!o->flag)
                i++;
            continue;
        }
        if (arg[0] == '-' && arg[1])
            return s_usage(err, a->cmd, "unknown option '%s'", arg);
        if (a->cmd == CTL_CMD_NONE)
            return s_usage(err, a->cmd, "unknown command '%s'", arg);
        if (npos == 3)
            return s_usage(err, a->cmd, "unexpected argument '%s'", arg);
        pos[npos++] = arg;
    }
    if (help) {
        ctl_args_help(a->cmd, out);
        return 1;
    }
    if (a->cmd == CTL_CMD_NONE)
        return s_usage(err, a->cmd, "no command given");
    int want = 0;
    switch (a->cmd) {
    case CTL_CMD_TOKEN:
    case CTL_CMD_GET:
    case CTL_CMD_AUDIT:
    case CTL_CMD_HISTORY:
        want = 1;
        a->user = npos > 0 ? pos[0] : NULL;
        break;
    case CTL_CMD_ACCOUNT:
        want = 2;
        a->user = npos > 0 ? pos[0] : NULL;
        a->status = npos > 1 ? pos[1] : NULL;
        break;
    case CTL_CMD_PUBLISH:
        want = 2;
        a->type = npos > 0 ? pos[0] : NULL;
        a->user = npos > 1 ? pos[1] : NULL;
        break;
    case CTL_CMD_KEYGEN:
        want = 2;
        a->user = npos > 0 ? pos[0] : NULL;  //  NAME: an id, like a user
        a->dir = npos > 1 ? pos[1] : NULL;
        break;
    default:
        break;
    }
    if (npos < want)
        return s_usage(err, a->cmd, "missing argument%s", want > 1 ? "s" : "");
    if (npos > want)
        return s_usage(err, a->cmd, "unexpected argument '%s'", pos[want]);
    return s_validate(a, err);
}
