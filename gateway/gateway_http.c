/*  gateway_http: MHD callbacks and the reaper. The request body is
    collected on the intermediate handler calls and the answer is queued
    on the final one, never on the first (docs/libraries.md section 7: an
    early response turns keep-alive off), except for a declared Content-Length
    over the cap, which is refused at once and closes the connection on
    purpose. A connection to be closed by policy gets shutdown(2): MHD
    then reads EOF and closes it in its own thread. */
#include "gateway_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway_api.h"
#include "gateway_routes.h"
#include "pres_log.h"

#define S_MEMORY_LIMIT 32768  //  per-connection MHD pool (headers)
#define S_REAP_MS      200    //  period of the deadline pass

struct gw_http {
    const gw_env_t *env;
    gw_workers_t *workers;
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t log_lock;  //  MHD logs from every thread
    pres_ratelimit_t log_rl;   //  under log_lock
    pthread_t reaper;
    bool reaper_running;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;  //  CLOCK_MONOTONIC
    bool stopping;             //  under stop_lock
};

//  Our record of conn (MHD's socket context), or NULL.
static gw_conn_t *
s_conn(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void
s_shutdown_fd(void *arg, int fd)
{
    (void)arg;
    shutdown(fd, SHUT_RDWR);
}

static enum MHD_Result
s_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)len;
    gw_http_t *self = cls;
    gw_addr_t peer;
    gw_addr_from_sockaddr(&peer, addr);
    if (gw_limit_conn_room(self->env->limit, &peer))
        return MHD_YES;
    gw_metrics_reject(self->env->metrics, GW_REJ_CONN_PER_ADDR);
    return MHD_NO;
}

static void
s_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
         enum MHD_ConnectionNotificationCode code)
{
    gw_http_t *self = cls;
    const gw_env_t *env = self->env;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        gw_conn_t *c = *socket_context;
        if (c) {
            gw_limit_conn_close(env->limit, gw_conn_peer(c));
            gw_conns_close(env->conns, &c);
        }
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = fi ? fi->connect_fd : -1;
    gw_addr_t peer;
    gw_addr_from_sockaddr(&peer, ai ? ai->client_addr : NULL);
    int64_t now = pres_mono_ms();
    *socket_context = NULL;
    //  The firm check: accepts racing on several threads passed s_accept.
    if (!gw_limit_conn_open(env->limit, &peer, now)) {
        gw_metrics_reject(env->metrics, GW_REJ_CONN_PER_ADDR);
        s_shutdown_fd(NULL, fd);
        return;
    }
    *socket_context = gw_conns_open(env->conns, &peer, fd, now);
    if (!*socket_context) {
        gw_limit_conn_close(env->limit, &peer);
        s_shutdown_fd(NULL, fd);
    }
}

static void *
s_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)uri;
    gw_http_t *self = cls;
    gw_conn_t *c = s_conn(conn);
    if (c)
        gw_conn_request(self->env->conns, c, pres_mono_ms());
    return NULL;  //  con_cls stays NULL until the first handler call
}

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    (void)version;
    gw_http_t *self = cls;
    gw_req_t *req = *con_cls;
    if (!req) {
        //  First call: headers only. Answer nothing yet (keep-alive).
        gw_worker_t *w = gw_workers_mine(self->workers);
        req = w ? gw_req_new(w->reqs, self->env, w) : NULL;
        if (!req)
            return MHD_NO;
        *con_cls = req;
        gw_conn_t *c = s_conn(conn);
        gw_req_start(req, conn, c ? gw_conn_peer(c) : NULL);
        gw_req_allow_bulk(req, url, method);
        if (gw_req_declares_too_big(req, conn)) {
            //  Refuse before reading the body; MHD closes the
            //  connection after this early answer, as it should.
            if (c)
                gw_conn_received(c);
            return gw_req_too_big(req, conn);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0)
        return gw_req_upload(req, upload_data, upload_data_size);
    gw_conn_t *c = s_conn(conn);
    if (c)
        gw_conn_received(c);
    if (req->login)  //  resumed: the login is decided
        return gw_api_login_done(req, conn);
    return gw_routes_dispatch(req, conn, url, method);
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    gw_http_t *self = cls;
    gw_conn_t *c = s_conn(conn);
    if (c)
        gw_conn_idle(self->env->conns, c, pres_mono_ms());
    gw_req_t *req = *con_cls;
    *con_cls = NULL;
    gw_workers_release(self->workers, &req);
}

//  MHD hands its own printf-style format with the matching arguments.
static void s_mhd_log(void *cls, const char *fmt, va_list ap) PRES_PRINTF(2, 0);

static void
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    gw_http_t *self = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    pthread_mutex_lock(&self->log_lock);
    pres_log_limited(&self->log_rl, 5000, "microhttpd: %s", line);
    pthread_mutex_unlock(&self->log_lock);
}

//  Every S_REAP_MS: close the connections past their deadline.
static void *
s_reap(void *arg)
{
    gw_http_t *self = arg;
    pthread_mutex_lock(&self->stop_lock);
    while (!self->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += S_REAP_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&self->stop_cond, &self->stop_lock, &until);
        if (self->stopping)
            break;
        int n = gw_conns_expire(self->env->conns, pres_mono_ms(), s_shutdown_fd,
                                NULL);
        for (int i = 0; i < n; i++)
            gw_metrics_reject(self->env->metrics, GW_REJ_HEADER_TIMEOUT);
    }
    pthread_mutex_unlock(&self->stop_lock);
    return NULL;
}

//  The struct both start modes share, its locks set up; NULL if out of
//  memory.
static gw_http_t *
s_http_new(const gw_env_t *env, gw_workers_t *workers)
{
    gw_http_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->env = env;
    self->workers = workers;
    pthread_mutex_init(&self->log_lock, NULL);
    pthread_mutex_init(&self->stop_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    return self;
}

gw_http_t *
gw_http_start(const gw_env_t *env, gw_workers_t *workers,
              const struct sockaddr_storage *addr)
{
    gw_http_t *self = s_http_new(env, workers);
    if (!self)
        return NULL;
    const pres_config_t *cfg = env->cfg;
    int threads = cfg->http_threads;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (addr->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, (void *)(uintptr_t)addr},
        {MHD_OPTION_CONNECTION_LIMIT, cfg->http_max_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, cfg->http_idle_timeout, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, S_MEMORY_LIMIT, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0, NULL},
        {MHD_OPTION_END, 0, NULL}};
    self->daemon = MHD_start_daemon(
        flags, 0, s_accept, self, s_handler, self, MHD_OPTION_EXTERNAL_LOGGER,
        s_mhd_log, self, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify, self,
        MHD_OPTION_URI_LOG_CALLBACK, s_uri, self, MHD_OPTION_ARRAY, opts,
        MHD_OPTION_END);
    if (!self->daemon) {
        pres_log_error("MHD_start_daemon(%s) failed: %s", cfg->http_listen,
                       strerror(errno));
        gw_http_stop(&self);
        return NULL;
    }
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = di ? di->port : 0;
    if (pthread_create(&self->reaper, NULL, s_reap, self) != 0) {
        pres_log_error("pthread_create(reaper) failed");
        gw_http_stop(&self);
        return NULL;
    }
    self->reaper_running = true;
    return self;
}

gw_http_t *
gw_http_start_external(const gw_env_t *env, gw_workers_t *workers)
{
    gw_http_t *self = s_http_new(env, workers);
    if (!self)
        return NULL;
    //  No listening socket, no thread of MHD's, no reaper: the caller adds
    //  connections and runs the daemon (MHD_run) on one thread. Suspend and
    //  resume still work (MHD's ITC wakes the caller's next MHD_run).
    const pres_config_t *cfg = env->cfg;
    unsigned flags =
        MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    self->daemon = MHD_start_daemon(
        flags, 0, s_accept, self, s_handler, self, MHD_OPTION_EXTERNAL_LOGGER,
        s_mhd_log, self, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify, self,
        MHD_OPTION_URI_LOG_CALLBACK, s_uri, self, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->http_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->http_idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)S_MEMORY_LIMIT, MHD_OPTION_END);
    if (!self->daemon) {
        pres_log_error("MHD_start_daemon(no listen socket) failed: %s",
                       strerror(errno));
        gw_http_stop(&self);
        return NULL;
    }
    return self;
}

struct MHD_Daemon *
gw_http_daemon(const gw_http_t *self)
{
    return self->daemon;
}

void
gw_http_stop(gw_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_http_t *self = *self_p;
    if (self->reaper_running) {
        pthread_mutex_lock(&self->stop_lock);
        self->stopping = true;
        pthread_cond_signal(&self->stop_cond);
        pthread_mutex_unlock(&self->stop_lock);
        pthread_join(self->reaper, NULL);
    }
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    pthread_cond_destroy(&self->stop_cond);
    pthread_mutex_destroy(&self->stop_lock);
    pthread_mutex_destroy(&self->log_lock);
    free(self);
    *self_p = NULL;
}

int
gw_http_port(const gw_http_t *self)
{
    return self->port;
}
