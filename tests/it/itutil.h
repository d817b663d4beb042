/*  itutil: shared helpers for the integration tests. A temp dir per test,
    the real daemons spawned from PRESENCE_BUILD_DIR (configured only by
    environment), waits, stops, and a tiny bus client on pres_bus.h. Every
    child is killed when the test aborts (CHECK failure) or exits. */
#ifndef ITUTIL_H_INCLUDED
#define ITUTIL_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pres_bus.h"
#include "pres_config.h"
#include "pres_log.h"
#include "pres_msg.h"

#define IT_PATH_MAX     200
#define IT_SETTINGS_MAX 16
#define IT_PROCS_MAX    16

//  A test environment: a mkdtemp dir with data/ and run/ (0750) below it,
//  plus config settings shared by the daemons (as PRESENCE_<KEY> env) and
//  the test's own clients (it_env_config).
typedef struct {
    char dir[IT_PATH_MAX / 2];   //  /tmp/pres-it-<name>-XXXXXX
    char data_dir[IT_PATH_MAX];  //  <dir>/data
    char run_dir[IT_PATH_MAX];   //  <dir>/run
    int nsettings;
    char settings[IT_SETTINGS_MAX][2][PRES_PATH_MAX];  //  key, value
} it_env_t;

//  Create the temp dir. Also installs the abort/exit handlers that kill
//  the children. Returns 0 or -1 (printed).
int it_env_init(it_env_t *env, const char *name);

//  Add or replace a setting, e.g. it_env_set(env, "timeout", "2").
//  Applies to daemons spawned after the call and to it_env_config.
void it_env_set(it_env_t *env, const char *key, const char *value);

//  Fill cfg as the daemons see it: defaults, data_dir, run_dir, settings,
//  then pres_config_finish. 0 or -1.
int it_env_config(const it_env_t *env, pres_config_t *cfg);

//  Remove the temp dir recursively (call at the end of a passing test;
//  a failing test leaves it for inspection).
void it_env_cleanup(it_env_t *env);

//  ---------------------------------------------------------------------
//  Child daemons.
typedef struct {
    pid_t pid;                       //  0 once reaped
    char prog[64];                   //  e.g. "presence-broker"
    char log_path[2 * IT_PATH_MAX];  //  its stderr (and stdout)
    int status;                      //  waitpid status once reaped
} it_proc_t;

//  Path of a program in PRESENCE_BUILD_DIR (static buffer per call site is
//  the caller's: writes into out, cap bytes). 0 or -1.
int it_build_path(const char *prog, char *out, size_t cap);

//  Start PRESENCE_BUILD_DIR/<prog> with argv (NULL-terminated list of the
//  arguments after argv[0], may be NULL), environment = ours +
//  PRESENCE_DATA_DIR, PRESENCE_RUN_DIR, the env settings, then extra_env
//  ("KEY=VALUE" strings, NULL-terminated, may be NULL). stderr and stdout
//  go to <dir>/<prog>-<n>.log. The child gets SIGKILL if the test dies.
//  p is registered by address: keep it alive (static or in main) until
//  the child is stopped.
//  Returns 0 and fills p, or -1.
int it_spawn(const it_env_t *env, const char *prog, const char *const *argv,
             const char *const *extra_env, it_proc_t *p);

//  As it_spawn, but the child's stdout is a pipe: *out reads it (fclose
//  it when done; EOF once the child exited). stderr goes to the log. Like
//  every child, it is killed and reaped if the test aborts, crashes or
//  its alarm() fires.
int it_spawn_piped(const it_env_t *env, const char *prog,
                   const char *const *argv, const char *const *extra_env,
                   it_proc_t *p, FILE **out);

//  True while the child runs (reaps it if it exited).
bool it_proc_alive(it_proc_t *p);

//  Send sig to the child. 0 or -1 (not running).
int it_proc_signal(it_proc_t *p, int sig);

//  Wait up to timeout_ms for the child to exit. Returns its exit code
//  (0..255), 128+signal if killed by a signal, or -1 on timeout.
int it_proc_wait(it_proc_t *p, int timeout_ms);

//  SIGTERM, wait up to timeout_ms, then SIGKILL and reap. Returns the exit
//  code as it_proc_wait (the SIGTERM outcome, or 128+9).
int it_proc_stop(it_proc_t *p, int timeout_ms);

//  SIGKILL and reap (simulated crash).
void it_proc_kill9(it_proc_t *p);

//  Copy the child's log to stderr (for failures and debugging).
void it_proc_dump_log(const it_proc_t *p);

//  True if the child's log contains needle.
bool it_proc_log_has(const it_proc_t *p, const char *needle);

//  Runs `cmd args` through the shell (args may hold shell syntax); its
//  stdout into out, its stderr (via <env dir>/cmd.err) into err, both
//  NUL-terminated and cut at the capacity. Returns its exit code; aborts
//  the test if it did not exit normally. IT_VERBOSE=1 echoes the run.
int it_shell(const it_env_t *env, const char *cmd, const char *args, char *out,
             size_t out_cap, char *err, size_t err_cap);

//  A TCP port on 127.0.0.1 that was free a moment ago (for a daemon to
//  listen on), or -1 (printed).
int it_free_port(void);

//  Spawn presence-gateway listening on 127.0.0.1:port (extra_env as in
//  it_spawn) and wait (20 s) until GET /healthz answers 200. Dumps its log
//  and returns -1 if it does not.
int it_gateway_start(it_env_t *env, int port, const char *const *extra_env,
                     it_proc_t *p);

//  Wait up to timeout_ms until path exists. true if it does.
bool it_wait_file(const char *path, int timeout_ms);

//  Wait up to timeout_ms until the broker answers a `stats` query. true if
//  it does.
bool it_wait_query(const pres_config_t *cfg, int timeout_ms);

//  Spawn presence-broker and wait (20 s) until it answers queries. Dumps
//  its log and returns -1 if it does not come up.
int it_broker_start(const it_env_t *env, const char *const *extra_env,
                    it_proc_t *p);

//  presence-sweeper -v; with timeout_ms > 0 waited on until it is ready
//  ("ready:" in its log: the broker takes its events and answered its
//  `stats`). 0, or -1 (log dumped) if it could not start, exited or was
//  not ready in time.
int it_sweeper_start(const it_env_t *env, it_proc_t *p, int timeout_ms);

//  ---------------------------------------------------------------------
//  Waiting on conditions. Tests never sleep a fixed time to let something
//  happen: they poll a condition until a deadline, or send a sentinel and
//  wait for its echo. The deadlines are generous (the box may be busy);
//  they only matter when the test is failing anyway.

//  Evaluate cond every 10 ms until it is true or timeout_ms has passed.
//  Leaves the loop either way: CHECK the condition afterwards.
#define IT_POLL_UNTIL(cond, timeout_ms)                                        \
    do {                                                                       \
        int64_t it_end_ = pres_mono_ms() + (timeout_ms);                       \
        while (!(cond) && pres_mono_ms() < it_end_)                            \
            it_sleep_ms(10);                                                   \
    } while (0)

//  Sleep ms milliseconds (used by the poll loops, never as a wait for the
//  system under test).
void it_sleep_ms(int ms);

//  Sleep until the wall clock (pres_now_ms) reaches at_ms: for tests whose
//  condition is the passing of a deadline itself.
void it_sleep_until_wall(uint64_t at_ms);

//  Sentinel round trip: publish an `expire` of an unknown session of user
//  IT_SYNC_USER on pub (the broker answers with a deadline notice and
//  changes nothing else) and wait until that notice arrives on sub,
//  resending every 250 ms (a fresh subscription may still be joining).
//  sub is subscribed to that notice's topic for the round trip only.
//  When it returns 0, sub receives what the broker publishes, and every
//  event pub sent before has been applied and its change published (and
//  skipped on sub: call it when nothing else is awaited). -1 on timeout.
#define IT_SYNC_USER "it-sync"
int it_sync(zsock_t *sub, pres_pub_t *pub, int timeout_ms);

//  The usual start of a bus test: a changes subscriber on prefix (see
//  pres_bus_sub_changes) and a publisher src (it_pub_new) on the broker
//  of cfg, returned once the subscription is live (it_sync, 10 s), so the
//  broker's next change reaches *sub. 0, or -1 (printed; nothing left
//  open, both NULL). Caller owns both.
int it_bus_open(const pres_config_t *cfg, const char *prefix, const char *src,
                zsock_t **sub, pres_pub_t **pub);

//  Poll `get` until user has state (or, for state "", is unknown).
//  true when it does.
bool it_wait_user(const pres_config_t *cfg, const char *user, const char *state,
                  int timeout_ms);

//  Poll `stats` until the uint at path is >= value. Returns the last value
//  read (check it against value).
uint64_t it_wait_stat(const pres_config_t *cfg, const char *path,
                      uint64_t value, int timeout_ms);

//  ---------------------------------------------------------------------
//  Bus client helpers.

//  A pres_pub_t with src, waited on (10 s) until the broker is attached.
//  NULL on failure.
pres_pub_t *it_pub_new(const pres_config_t *cfg, const char *src);

//  Publish one event (2 s for room). session/extra may be NULL/"".
//  it_send_heartbeat: state NULL = no state field.
int it_send_login(pres_pub_t *pub, const char *user, const char *session);
int it_send_logout(pres_pub_t *pub, const char *user, const char *session);
int it_send_heartbeat(pres_pub_t *pub, const char *user, const char *session,
                      const char *state);
int it_send_expire(pres_pub_t *pub, const char *user, const char *session,
                   uint64_t deadline);
int it_send_account(pres_pub_t *pub, const char *user, const char *status);

//  A raw XPUB connected to events_endpoint, returned once the broker's
//  subscription arrived (10 s), for sending arbitrary (malformed) frames.
//  NULL on failure. Caller owns it.
zsock_t *it_raw_pub_new(const pres_config_t *cfg);

//  Send frames on a raw socket: count frames of the given sizes.
int it_raw_send(zsock_t *sock, int count, const void *const *data,
                const size_t *sizes);

//  Receive the next message on a changes subscriber within timeout_ms.
//  Returns 1 and fills *ch for a change, 2 and fills *dl for a deadline
//  notice (ch/dl may be NULL), 0 on timeout, -1 on a frame that does not
//  decode (printed).
int it_recv(zsock_t *sub, pres_change_t *ch, pres_deadline_t *dl,
            int timeout_ms);

//  Wait for the next change about user (others are skipped). 0 or -1.
int it_wait_change(zsock_t *sub, const char *user, pres_change_t *ch,
                   int timeout_ms);

//  Wait for the next deadline notice about user. 0 or -1.
int it_wait_deadline(zsock_t *sub, const char *user, pres_deadline_t *dl,
                     int timeout_ms);

//  Wait until no message arrives for quiet_ms; returns how many were
//  skipped (bounded by 100000).
int it_drain(zsock_t *sub, int quiet_ms);

//  Run a query; returns the reply frame (caller destroys) whatever its
//  `ok`, or NULL on timeout (10 s). A fresh client per call is fine.
zframe_t *it_query(const pres_config_t *cfg, const pres_query_t *q);

//  Run a request on the admin endpoint (account changes); as it_query
//  (NULL after 10 s without an answer).
zframe_t *it_admin(const pres_config_t *cfg, const pres_query_t *q);

//  Set an account status on the admin endpoint. 0 when the reply is ok.
int it_admin_account(const pres_config_t *cfg, const char *user,
                     const char *status);

//  The same from a peer the admin endpoint should refuse: true when no ok
//  answer came within 3 s (a refused peer never gets one).
bool it_admin_account_refused(const pres_config_t *cfg, const char *user,
                              const char *status);

//  Send raw bytes as a query (one frame) and return the reply frame.
zframe_t *it_query_raw(const pres_config_t *cfg, const void *buf, size_t len);

//  Look a value up in a msgpack reply by dotted path: map keys, and array
//  indexes as numbers ("users.online", "publishers.0.src"). Return 0 and
//  the value, or -1 if absent or of another type.
int it_mp_uint(zframe_t *reply, const char *path, uint64_t *value);
int it_mp_bool(zframe_t *reply, const char *path, bool *value);
int it_mp_str(zframe_t *reply, const char *path, char *out, size_t cap);
//  Array or map element count at path.
int it_mp_count(zframe_t *reply, const char *path, uint32_t *count);

//  Shorthands that abort the test (printing the reply as JSON) when the
//  path is missing.
uint64_t it_uint(zframe_t *reply, const char *path);
//  Returns a pointer to a static buffer valid until the next call.
const char *it_str(zframe_t *reply, const char *path);
void it_print_reply(zframe_t *reply);

//  `get` of a user: fills state ("" if not found), sessions, last_seen and
//  account; returns 0 if found, 1 if not found, -1 on error.
int it_get_user(const pres_config_t *cfg, const char *user, char *state,
                uint64_t *sessions, uint64_t *last_seen, char *account);

//  `stats` shorthand: the value at path of a stats reply.
uint64_t it_stat(const pres_config_t *cfg, const char *path);

#endif
