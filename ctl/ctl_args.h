/*  ctl_args: the command line of presencectl (docs/protocol.md section 5):
    global options, one command and its options, validated up front so that a
    usage error never reaches the broker; plus the help texts. */
#ifndef CTL_ARGS_H_INCLUDED
#define CTL_ARGS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

//  Exit codes of presencectl.
#define CTL_EXIT_OK          0  //  done
#define CTL_EXIT_FAIL        1  //  broker said no (not found, refused, ...)
#define CTL_EXIT_USAGE       2  //  bad command line
#define CTL_EXIT_UNREACHABLE 3  //  broker did not answer in time

#define CTL_TIMEOUT_DEFAULT 2000  //  ms to wait for the broker

typedef enum {
    CTL_CMD_NONE = 0,
    CTL_CMD_TOKEN,
    CTL_CMD_GET,
    CTL_CMD_LIST,
    CTL_CMD_STATS,
    CTL_CMD_WATCH,
    CTL_CMD_ACCOUNT,
    CTL_CMD_PUBLISH,
    CTL_CMD_KEYGEN,
    CTL_CMD_AUDIT,
    CTL_CMD_HISTORY
} ctl_cmd_t;

//  The parsed command line. Strings point into argv.
typedef struct {
    ctl_cmd_t cmd;
    const char *config;   //  -c FILE, NULL = none
    bool json;            //  --json
    bool verbose;         //  -v
    int timeout_ms;       //  --timeout MS
    const char *user;     //  token, get, account, publish
    bool admin;           //  token --admin
    long ttl;             //  token --ttl S
    const char *state;    //  list --state, publish --state
    const char *account;  //  list --account
    const char *cursor;   //  list --cursor
    long limit;           //  list, audit, history --limit (0 = default)
    bool all;             //  list --all
    const char *status;   //  account STATUS, publish --status
    const char *reason;   //  account/publish --reason
    const char *type;     //  publish TYPE
    const char *session;  //  publish --session
    const char *device;   //  publish --device
    uint64_t deadline;    //  publish --deadline (expire), 0 = now
    long count;           //  watch --count N (0 = until interrupted)
    bool has_since;       //  watch --since given
    uint64_t since;       //  watch --since SEQ: replay changes after SEQ
    const char *dir;      //  keygen DIR
} ctl_args_t;

//  Parse argv. Help goes to out, errors to err. Returns 0 to run the
//  command, 1 when help was printed (exit 0), or CTL_EXIT_USAGE after
//  printing what is wrong and how to get help.
int ctl_args_parse(ctl_args_t *args, int argc, char **argv, FILE *out,
                   FILE *err);

//  Print the general help, or a command's help (cmd != CTL_CMD_NONE).
void ctl_args_help(ctl_cmd_t cmd, FILE *out);

#endif
