/*  pres_etcd: etcd v3 over its JSON gateway (see pres_etcd.h). One curl
    easy handle per client, reused so connections stay open; every
    request is a POST of one JSON object to /v3/... and one JSON reply.
    libcurl is loaded (dlopen) by the first pres_etcd_new, not linked: a
    daemon without fail-over never maps it nor its TLS, LDAP, SSH and
    Kerberos dependencies (~4-5 MiB of RSS per process). */
#include "pres_etcd.h"
#include "pres_log.h"

#include <assert.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ENDPOINTS 8
#define S_URL_MAX       256
#define S_REPLY_MAX     (256 * 1024)  //  a bigger answer is refused
#define S_KEY_MAX       512

struct pres_etcd {
    CURL *curl;                             //  reused easy handle
    char urls[S_MAX_ENDPOINTS][S_URL_MAX];  //  http://host:port
    int nurls;
    int current;     //  index of the endpoint that answered last
    int timeout_ms;  //  per call, all endpoints
    char *reply;     //  body of the last reply
    size_t reply_len, reply_cap;
};

//  The libcurl entry points used here, from dlopen("libcurl.so.4").
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *curl);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
} s_curl;

//  Load libcurl once (kept loaded). 0 or -1 (logged).
static int
s_curl_load(void)
{
    static bool loaded;  //  first call happens before any thread
    if (loaded)
        return 0;
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        pres_log_error("dlopen(libcurl.so.4) failed: %s", dlerror());
        return -1;
    }
    //  POSIX: a function pointer converts through void * (dlsym).
#define S_SYM(field, name)                                                     \
    do {                                                                       \
        void *sym_ = dlsym(lib, name);                                         \
        if (!sym_) {                                                           \
            pres_log_error("dlsym(%s) failed: %s", name, dlerror());           \
            dlclose(lib);                                                      \
            return -1;                                                         \
        }                                                                      \
        memcpy(&s_curl.field, &sym_, sizeof sym_);                             \
    } while (0)
    S_SYM(global_init, "curl_global_init");
    S_SYM(easy_init, "curl_easy_init");
    S_SYM(easy_cleanup, "curl_easy_cleanup");
    S_SYM(easy_setopt, "curl_easy_setopt");
    S_SYM(easy_perform, "curl_easy_perform");
    S_SYM(easy_getinfo, "curl_easy_getinfo");
    S_SYM(easy_strerror, "curl_easy_strerror");
#undef S_SYM
    s_curl.global_init(CURL_GLOBAL_DEFAULT);
    loaded = true;
    return 0;
}

static const char s_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

//  Standard base64 of len bytes into out (cap >= 4 * ceil(len / 3) + 1).
static void
s_b64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = s_b64[(v >> 18) & 63];
        out[o++] = s_b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? s_b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? s_b64[v & 63] : '=';
    }
    out[o] = 0;
}

//  Decode base64 text into out (NUL-terminated). -1 if it is not base64
//  or does not fit in cap - 1 bytes.
static int
s_b64_decode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    uint32_t v = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *at = strchr(s_b64, *p);
        if (!at)
            return -1;
        v = (v << 6) | (uint32_t)(at - s_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    out[o] = 0;
    return 0;
}

static char *
s_b64_dup(const char *text)
{
    size_t len = strlen(text);
    char *out = malloc(4 * (len / 3 + 1) + 1);
    if (out)
        s_b64_encode((const unsigned char *)text, len, out);
    return out;
}

pres_etcd_t *
pres_etcd_new(const char *endpoints, int timeout_ms)
{
    if (s_curl_load())
        return NULL;
    pres_etcd_t *self = calloc(1, sizeof *self);
    if (!self) {
        pres_log_error("calloc() failed for the etcd client");
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    const char *p = endpoints;
    while (*p) {
        size_t n = strcspn(p, ",");
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        if (n > 0) {
            if (self->nurls == S_MAX_ENDPOINTS || n >= S_URL_MAX - 16 ||
                strncmp(p, "http://", 7) != 0) {
                pres_log_error("etcd_endpoints: '%.*s' is not http://host:port "
                               "(at most %d endpoints)",
                               (int)n, p, S_MAX_ENDPOINTS);
                pres_etcd_destroy(&self);
                return NULL;
            }
            memcpy(self->urls[self->nurls], p, n);
            self->urls[self->nurls++][n] = 0;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (self->nurls == 0) {
        pres_log_error("etcd_endpoints is empty");
        pres_etcd_destroy(&self);
        return NULL;
    }
    self->curl = s_curl.easy_init();
    if (!self->curl) {
        pres_log_error("curl_easy_init() failed");
        pres_etcd_destroy(&self);
        return NULL;
    }
    return self;
}

void
pres_etcd_destroy(pres_etcd_t **self_p)
{
    assert(self_p);
    pres_etcd_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        s_curl.easy_cleanup(self->curl);
    free(self->reply);
    free(self);
    *self_p = NULL;
}

static size_t
s_write(char *data, size_t size, size_t nmemb, void *arg)
{
    pres_etcd_t *self = arg;
    size_t n = size * nmemb;
    if (self->reply_len + n + 1 > S_REPLY_MAX)
        return 0;  //  curl fails the transfer
    if (self->reply_len + n + 1 > self->reply_cap) {
        size_t cap = (self->reply_len + n + 1) * 2;
        char *p = realloc(self->reply, cap);
        if (!p)
            return 0;
        self->reply = p;
        self->reply_cap = cap;
    }
    memcpy(self->reply + self->reply_len, data, n);
    self->reply_len += n;
    self->reply[self->reply_len] = 0;
    return n;
}

//  POST body to path on the first endpoint that answers with 200 and a
//  JSON object. Caller owns the returned object (json_decref); NULL when
//  no endpoint answered in time (logged at debug level).
static json_t *
s_call(pres_etcd_t *self, const char *path, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return NULL;
    int64_t deadline = pres_mono_ms() + self->timeout_ms;
    json_t *out = NULL;
    for (int i = 0; i < self->nurls && !out; i++) {
        int64_t left = deadline - pres_mono_ms();
        if (left <= 0)
            break;
        int at = (self->current + i) % self->nurls;
        char url[S_URL_MAX + 64];
        snprintf(url, sizeof url, "%s%s", self->urls[at], path);
        CURL *c = self->curl;
        s_curl.easy_setopt(c, CURLOPT_URL, url);
        s_curl.easy_setopt(c, CURLOPT_POSTFIELDS, text);
        s_curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write);
        s_curl.easy_setopt(c, CURLOPT_WRITEDATA, self);
        s_curl.easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
        s_curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
        s_curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        s_curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
        self->reply_len = 0;
        CURLcode rc = s_curl.easy_perform(c);
        long status = 0;
        s_curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200 || !self->reply_len) {
            pres_log_debug("etcd %s: %s (HTTP %ld)", url,
                           s_curl.easy_strerror(rc), status);
            continue;
        }
        json_error_t err;
        out = json_loadb(self->reply, self->reply_len, 0, &err);
        if (out && !json_is_object(out)) {
            json_decref(out);
            out = NULL;
        }
        if (out)
            self->current = at;
        else
            pres_log_debug("etcd %s: reply is not a JSON object", url);
    }
    free(text);
    return out;
}

//  An int64 that the gateway sends as a decimal string (absent = 0).
static int64_t
s_int(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    if (json_is_integer(v))
        return json_integer_value(v);
    return 0;
}

static json_t *
s_id(int64_t id)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, id);
    return json_string(text);
}

int
pres_etcd_lease_grant(pres_etcd_t *self, int ttl_s, int64_t *id)
{
    json_t *r = s_call(self, "/v3/lease/grant",
                       json_pack("{sI}", "TTL", (json_int_t)ttl_s));
    if (!r)
        return -1;
    *id = s_int(r, "ID");
    json_decref(r);
    return *id ? 0 : -1;
}

int
pres_etcd_lease_keepalive(pres_etcd_t *self, int64_t id, int64_t *ttl_left)
{
    json_t *r =
        s_call(self, "/v3/lease/keepalive", json_pack("{so}", "ID", s_id(id)));
    if (!r)
        return -1;
    json_t *result = json_object_get(r, "result");
    int rc = -1;
    if (json_is_object(result)) {
        //  An expired lease answers without a TTL (0).
        *ttl_left = s_int(result, "TTL");
        rc = *ttl_left > 0 ? 0 : PRES_ETCD_NOTFOUND;
    }
    json_decref(r);
    return rc;
}

int
pres_etcd_lease_revoke(pres_etcd_t *self, int64_t id)
{
    json_t *r =
        s_call(self, "/v3/lease/revoke", json_pack("{so}", "ID", s_id(id)));
    json_decref(r);
    return r ? 0 : -1;
}

int
pres_etcd_put(pres_etcd_t *self, const char *key, const char *value,
              int64_t lease)
{
    char *k = s_b64_dup(key), *v = s_b64_dup(value);
    json_t *r = NULL;
    if (k && v)
        r = s_call(
            self, "/v3/kv/put",
            json_pack("{ssssso}", "key", k, "value", v, "lease", s_id(lease)));
    free(k);
    free(v);
    json_decref(r);
    return r ? 0 : -1;
}

//  Copy the first kv of a range answer: value into out (cap) and its
//  create revision. 0, PRES_ETCD_NOTFOUND, or -1 (bad base64).
static int
s_first_kv(json_t *range, char *out, size_t cap, int64_t *create_rev)
{
    json_t *kv = json_array_get(json_object_get(range, "kvs"), 0);
    if (!json_is_object(kv))
        return PRES_ETCD_NOTFOUND;
    *create_rev = s_int(kv, "create_revision");
    json_t *v = json_object_get(kv, "value");
    if (out && cap) {
        out[0] = 0;
        if (json_is_string(v) && s_b64_decode(json_string_value(v), out, cap))
            return -1;
    }
    return 0;
}

int
pres_etcd_create(pres_etcd_t *self, const char *key, const char *value,
                 int64_t lease, int64_t *rev, char *value_out, size_t cap)
{
    char *k = s_b64_dup(key), *v = s_b64_dup(value);
    json_t *r = NULL;
    if (k && v)
        r = s_call(self, "/v3/kv/txn",
                   json_pack("{s[{ssssss}]s[{s{ssssso}}]s[{s{ss}}]}", "compare",
                             "target", "CREATE", "key", k, "createRevision",
                             "0", "success", "requestPut", "key", k, "value", v,
                             "lease", s_id(lease), "failure", "requestRange",
                             "key", k));
    free(k);
    free(v);
    if (!r)
        return -1;
    int rc = -1;
    if (json_is_true(json_object_get(r, "succeeded"))) {
        json_t *hdr = json_object_get(r, "header");
        *rev = s_int(hdr, "revision");  //  the put's revision = create rev
        rc = *rev > 0 ? 0 : -1;
    } else {
        json_t *resp = json_array_get(json_object_get(r, "responses"), 0);
        json_t *range = json_object_get(resp, "response_range");
        int frc = s_first_kv(range, value_out, cap, rev);
        //  Gone between compare and range cannot happen in one txn; a
        //  missing kv means a malformed answer.
        rc = frc == 0 ? 1 : -1;
    }
    json_decref(r);
    return rc;
}

int
pres_etcd_get(pres_etcd_t *self, const char *key, char *value, size_t cap,
              int64_t *create_rev)
{
    char *k = s_b64_dup(key);
    json_t *r =
        k ? s_call(self, "/v3/kv/range", json_pack("{ss}", "key", k)) : NULL;
    free(k);
    if (!r)
        return -1;
    int rc = s_first_kv(r, value, cap, create_rev);
    json_decref(r);
    return rc;
}

int
pres_etcd_range_prefix(pres_etcd_t *self, const char *prefix,
                       pres_etcd_kv_fn *fn, void *arg)
{
    size_t len = strlen(prefix);
    if (len == 0 || len >= S_KEY_MAX)
        return -1;
    char end[S_KEY_MAX];
    memcpy(end, prefix, len + 1);
    end[len - 1]++;  //  range_end = prefix with its last byte + 1
    char *k = s_b64_dup(prefix), *e = s_b64_dup(end);
    json_t *r = NULL;
    if (k && e)
        r = s_call(
            self, "/v3/kv/range",
            json_pack("{sssssi}", "key", k, "range_end", e, "limit", 64));
    free(k);
    free(e);
    if (!r)
        return -1;
    json_t *kvs = json_object_get(r, "kvs");
    size_t i;
    json_t *kv;
    char *key = malloc(S_KEY_MAX), *value = malloc(PRES_ETCD_VALUE_MAX);
    int rc = key && value ? 0 : -1;
    json_array_foreach(kvs, i, kv)
    {
        if (rc)
            break;
        json_t *jk = json_object_get(kv, "key"),
               *jv = json_object_get(kv, "value");
        if (!json_is_string(jk) || !json_is_string(jv) ||
            s_b64_decode(json_string_value(jk), key, S_KEY_MAX) ||
            s_b64_decode(json_string_value(jv), value, PRES_ETCD_VALUE_MAX))
            continue;  //  not ours to read: skip it
        fn(key, value, arg);
    }
    free(key);
    free(value);
    json_decref(r);
    return rc;
}

int
pres_etcd_delete_if(pres_etcd_t *self, const char *key, int64_t rev)
{
    char *k = s_b64_dup(key);
    char revtext[32];
    snprintf(revtext, sizeof revtext, "%" PRId64, rev);
    json_t *r = NULL;
    if (k)
        r = s_call(self, "/v3/kv/txn",
                   json_pack("{s[{ssssss}]s[{s{ss}}]}", "compare", "target",
                             "CREATE", "key", k, "createRevision", revtext,
                             "success", "requestDeleteRange", "key", k));
    free(k);
    json_decref(r);
    return r ? 0 : -1;
}
