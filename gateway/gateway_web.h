/*  gateway_web: the dashboard files (gateway/web/), embedded into the
    binary at build time by embed.cmake into gateway_web_data.c. */
#ifndef GATEWAY_WEB_H_INCLUDED
#define GATEWAY_WEB_H_INCLUDED

#include <stddef.h>

typedef struct {
    const char *name;  //  file name, e.g. "app.js"
    const char *type;  //  Content-Type
    const unsigned char *data;
    size_t len;
    const char *etag;  //  quoted, from the file's SHA-256
} gw_web_file_t;

//  Terminated by an entry with name == NULL.
extern const gw_web_file_t gw_web_files[];

#endif
