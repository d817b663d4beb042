/*  fuzz_config: the config file parser on arbitrary bytes. Each input is
    loaded as a config file (through a memfd path); it must be refused or
    accepted without a crash, and an accepted config must print as a file
    that loads again to the same printout (the -t output is a valid
    config). */
#define _GNU_SOURCE  //  memfd_create, open_memstream
#include "pres_config.h"
#include "pres_log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_fd = -1;
static char s_path[64];

//  Write bytes as the content of our memfd.
static void
s_write(const void *data, size_t size)
{
    if (ftruncate(s_fd, 0) != 0 || pwrite(s_fd, data, size, 0) != (ssize_t)size)
        abort();
}

static char *
s_print(const pres_config_t *cfg, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (!out)
        abort();
    pres_config_print(cfg, out);
    fclose(out);
    return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_fd < 0) {
        s_fd = memfd_create("fuzz-config", 0);
        if (s_fd < 0)
            abort();
        snprintf(s_path, sizeof s_path, "/proc/self/fd/%d", s_fd);
    }
    if (size > 1 << 16)
        return 0;
    s_write(data, size);
    static pres_config_t cfg, again;
    pres_config_defaults(&cfg);
    if (pres_config_load(&cfg, s_path) != 0)
        return 0;
    size_t len = 0, len2 = 0;
    char *text = s_print(&cfg, &len);
    s_write(text, len);
    pres_config_defaults(&again);
    if (pres_config_load(&again, s_path) != 0) {
        fprintf(stderr, "accepted config does not reload:\n%s", text);
        abort();
    }
    char *text2 = s_print(&again, &len2);
    if (len != len2 || memcmp(text, text2, len) != 0) {
        fprintf(stderr, "printout changed on reload:\n%s---\n%s", text, text2);
        abort();
    }
    free(text);
    free(text2);
    return 0;
}
