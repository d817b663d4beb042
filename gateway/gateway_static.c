/*  gateway_static: one 200 and one 304 response per embedded file, built
    once per gateway and shared by every request (MHD responses are
    reference counted). */
#include "gateway_static.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_web.h"
#include "pres_log.h"

typedef struct {
    struct MHD_Response *ok;       //  200 with the file
    struct MHD_Response *not_mod;  //  304
} s_file_t;

struct gw_static {
    s_file_t *file;  //  parallel to gw_web_files
    size_t nfiles;
};

//  The headers both answers carry, and the page's own on the 200.
static void
s_headers(const gw_web_file_t *f, struct MHD_Response *ok,
          struct MHD_Response *not_mod)
{
    struct MHD_Response *both[2] = {ok, not_mod};
    for (int k = 0; k < 2; k++) {
        MHD_add_response_header(both[k], "ETag", f->etag);
        MHD_add_response_header(both[k], "Cache-Control", "no-cache");
        MHD_add_response_header(both[k], "X-Content-Type-Options", "nosniff");
    }
    MHD_add_response_header(ok, "Content-Type", f->type);
    if (strncmp(f->type, "text/html", 9) == 0) {
        MHD_add_response_header(
            ok, "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
        MHD_add_response_header(ok, "X-Frame-Options", "DENY");
        MHD_add_response_header(ok, "Referrer-Policy", "no-referrer");
    }
}

gw_static_t *
gw_static_new(void)
{
    gw_static_t *self = calloc(1, sizeof *self);
    while (self && gw_web_files[self->nfiles].name)
        self->nfiles++;
    if (self)
        self->file = calloc(self->nfiles + 1, sizeof *self->file);
    if (!self || !self->file)
        goto fail;
    for (size_t i = 0; i < self->nfiles; i++) {
        const gw_web_file_t *f = &gw_web_files[i];
        s_file_t *sf = &self->file[i];
        sf->ok = MHD_create_response_from_buffer(
            f->len, (void *)(uintptr_t)f->data, MHD_RESPMEM_PERSISTENT);
        sf->not_mod = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                      MHD_RESPMEM_PERSISTENT);
        if (!sf->ok || !sf->not_mod)
            goto fail;
        s_headers(f, sf->ok, sf->not_mod);
    }
    return self;
fail:
    pres_log_error("gw_static_new: out of memory");
    gw_static_destroy(&self);
    return NULL;
}

void
gw_static_destroy(gw_static_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_static_t *self = *self_p;
    for (size_t i = 0; self->file && i < self->nfiles; i++) {
        if (self->file[i].ok)
            MHD_destroy_response(self->file[i].ok);
        if (self->file[i].not_mod)
            MHD_destroy_response(self->file[i].not_mod);
    }
    free(self->file);
    free(self);
    *self_p = NULL;
}

int
gw_static_find(const gw_static_t *self, const char *name)
{
    if (!*name)
        name = "index.html";
    for (size_t i = 0; i < self->nfiles; i++)
        if (strcmp(gw_web_files[i].name, name) == 0)
            return (int)i;
    return -1;
}

enum MHD_Result
gw_static_serve(gw_req_t *req, struct MHD_Connection *conn)
{
    const gw_static_t *self = req->gw->statics;
    int i = gw_static_find(self, req->param);
    if (i < 0)
        return gw_req_error(req, conn, 404, "not found");
    const char *inm =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && strstr(inm, gw_web_files[i].etag))
        return gw_req_send_shared(req, conn, 304, self->file[i].not_mod);
    return gw_req_send_shared(req, conn, 200, self->file[i].ok);
}
