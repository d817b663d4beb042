/*  gateway_login: logins without a blocked HTTP thread. A login needs two
    broker round trips that each may wait for an fsync: a `get` (is the
    account active, is the user known) and the login's own change. An HTTP
    thread that waited for them would stall every other connection it
    serves. So POST /v1/login suspends its connection and hands the login
    to this module's one thread, which keeps any number of logins in
    flight: the gets go out pipelined on one DEALER (tagged), the events on
    its own publisher, and the changes come back through gw_bus. When a
    login is decided the connection is resumed, and the handler's next
    call queues the answer (gw_login_result). Each login is bounded by
    bus_timeout_ms from its start, as a blocking one was.

    Threads: gw_login_start on HTTP threads; gw_login_result on the
    resumed request's thread; the rest on the owner's. */
#ifndef GATEWAY_LOGIN_H_INCLUDED
#define GATEWAY_LOGIN_H_INCLUDED

#include <microhttpd.h>
#include <stdbool.h>

#include "gateway_accounts.h"
#include "gateway_bus.h"
#include "gateway_metrics.h"
#include "pres_config.h"
#include "pres_msg.h"

#define GW_LOGIN_MAX 4096  //  logins in flight at most (then 503)

typedef struct gw_login gw_login_t;
struct gw_req;

//  How a login ended, for the resumed handler call.
typedef struct {
    unsigned status;                //  200, 403 or 503
    bool refused;                   //  403 for an account: `account`
    pres_account_t account;         //  the account when refused
    char error[64];                 //  the message of any other non-200
    char session[PRES_ID_MAX + 1];  //  the new session (200)
} gw_login_result_t;

//  Start the thread. Objects are borrowed and outlive the module. NULL
//  after logging.
gw_login_t *gw_login_new(const pres_config_t *cfg, gw_bus_t *bus,
                         gw_accounts_t *accounts, gw_metrics_t *metrics);
//  Refuse new logins, answer those in flight with 503 "gateway stopping"
//  and resume their connections, join the thread. Before the HTTP daemon
//  stops (MHD needs every connection resumed).
void gw_login_shutdown(gw_login_t *self);
//  After the HTTP daemon has stopped.
void gw_login_destroy(gw_login_t **self_p);

//  The final handler call of a login (the request passed every check):
//  suspend conn and start the login of ev (user, session and device set;
//  the rest is filled here). 0 (answer nothing now), or -1 when it cannot
//  start (too many in flight, stopping, no memory): answer 503 at once.
int gw_login_start(gw_login_t *self, struct gw_req *req,
                   struct MHD_Connection *conn, const pres_event_t *ev);

//  The resumed call: the result, or NULL when req has no login.
//  Logins started and not answered yet (any thread).
int gw_login_in_flight(gw_login_t *self);

const gw_login_result_t *gw_login_result(const struct gw_req *req);

#endif
