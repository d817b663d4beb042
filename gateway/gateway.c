/*  gateway: startup and teardown. Parses http_listen and the limit keys,
    builds the services in dependency order, then the worker pool and the
    daemon; destroys in reverse. */
#include "gateway.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_http.h"
#include "gateway_login.h"
#include "gateway_static.h"
#include "gateway_workers.h"
#include "pres_log.h"

#define S_LIMIT_KEYS_MIN 16384  //  keys the limiter tracks at least

struct gateway {
    gw_env_t env;  //  the services, as handlers see them (owned here)
    gw_workers_t *workers;
    gw_http_t *http;
};

static int
s_parse_listen(const char *listen, struct sockaddr_storage *ss)
{
    char host[256], port[16];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || strlen(colon + 1) >= sizeof port ||
        (size_t)(colon - listen) >= sizeof host) {
        pres_log_error("http_listen '%s' is not host:port", listen);
        return -1;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    char *h = host;
    size_t hl = strlen(h);
    if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(*h ? h : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        pres_log_error("getaddrinfo(%s) failed: %s", listen, gai_strerror(rc));
        return -1;
    }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

//  The limiter from the rate_*, http_* and trusted_proxies keys.
static gw_limit_t *
s_limit_new(const pres_config_t *cfg)
{
    gw_cidrs_t trusted;
    const char *bad = NULL;
    if (gw_cidrs_parse(&trusted, cfg->trusted_proxies, &bad) != 0) {
        pres_log_error("trusted_proxies: '%s' is not an address or CIDR "
                       "(at most %d entries)",
                       bad ? bad : "", GW_CIDRS_MAX);
        return NULL;
    }
    gw_limit_config_t lc;
    memset(&lc, 0, sizeof lc);
    lc.user_rate = cfg->rate_limit;
    lc.user_burst = cfg->rate_burst;
    lc.addr_rate = cfg->rate_limit_addr;
    lc.addr_burst = cfg->rate_burst_addr;
    lc.addr_conns = cfg->http_per_ip_connections > 0
                        ? cfg->http_per_ip_connections
                        : (cfg->http_max_connections + 1) / 2;
    size_t keys = 4 * (size_t)cfg->http_max_connections;
    lc.capacity = keys > S_LIMIT_KEYS_MIN ? keys : S_LIMIT_KEYS_MIN;
    lc.trusted = &trusted;
    return gw_limit_new(&lc);
}

static gateway_t *
s_new(const pres_config_t *cfg, bool external)
{
    gateway_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    gw_env_t *env = &self->env;
    env->cfg = cfg;
    env->fwd = strcmp(cfg->trusted_proxy_header, "forwarded") == 0
                   ? GW_FWD_FORWARDED
                   : GW_FWD_XFF;
    struct sockaddr_storage ss;
    if (s_parse_listen(cfg->http_listen, &ss) != 0)
        goto fail;
    env->metrics = gw_metrics_new();
    env->cors = gw_cors_new(cfg->cors_origins);
    env->statics = gw_static_new();
    env->auth = gw_auth_new(cfg);
    env->accounts = gw_accounts_new();
    env->sse = env->auth && env->accounts
                   ? gw_sse_new(cfg->sse_max_clients, cfg->sse_keepalive,
                                cfg->jwt_leeway, env->auth, env->accounts)
                   : NULL;
    env->limit = s_limit_new(cfg);
    env->conns = gw_conns_new((int64_t)cfg->http_header_timeout * 1000,
                              (int64_t)cfg->http_idle_timeout * 1000);
    if (!env->metrics || !env->cors || !env->statics || !env->auth ||
        !env->accounts || !env->sse || !env->limit || !env->conns)
        goto fail;
    env->bus =
        gw_bus_new(cfg, env->accounts, env->sse, env->auth, env->metrics);
    if (!env->bus)
        goto fail;
    env->login = gw_login_new(cfg, env->bus, env->accounts, env->metrics);
    if (!env->login)
        goto fail;
    self->workers = gw_workers_new(cfg, cfg->http_threads);
    if (!self->workers)
        goto fail;
    if (external) {
        self->http = gw_http_start_external(env, self->workers);
        if (!self->http)
            goto fail;
        return self;
    }
    self->http = gw_http_start(env, self->workers, &ss);
    if (!self->http)
        goto fail;
    pres_log_info("listening on %s (port %d, %d threads)", cfg->http_listen,
                  gw_http_port(self->http), cfg->http_threads);
    return self;
fail:
    gateway_destroy(&self);
    return NULL;
}

gateway_t *
gateway_new(const pres_config_t *cfg)
{
    return s_new(cfg, false);
}

gateway_t *
gateway_new_external(const pres_config_t *cfg)
{
    return s_new(cfg, true);
}

void
gateway_destroy(gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_t *self = *self_p;
    gw_env_t *env = &self->env;
    if (env->sse)
        gw_sse_shutdown(env->sse);
    gw_login_shutdown(env->login);  //  resumes what it suspended
    gw_http_stop(&self->http);
    gw_login_destroy(&env->login);
    gw_bus_destroy(&env->bus);
    gw_workers_destroy(&self->workers);
    gw_conns_destroy(&env->conns);
    gw_limit_destroy(&env->limit);
    gw_sse_destroy(&env->sse);
    gw_accounts_destroy(&env->accounts);
    gw_auth_destroy(&env->auth);
    gw_static_destroy(&env->statics);
    gw_cors_destroy(&env->cors);
    gw_metrics_destroy(&env->metrics);
    free(self);
    *self_p = NULL;
}

int
gateway_port(const gateway_t *self)
{
    return gw_http_port(self->http);
}

struct MHD_Daemon *
gateway_mhd(const gateway_t *self)
{
    return gw_http_daemon(self->http);
}
