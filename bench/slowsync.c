/*  slowsync: an LD_PRELOAD shim for bench/run.sh that makes fsync and
    fdatasync take at least BENCH_FSYNC_DELAY_US microseconds longer, to
    show what a slower disk than this VM's (~0.2 ms per fsync; real disks
    often take 1-10 ms) does to the broker. Bench only: never installed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long
s_delay_us(void)
{
    const char *v = getenv("BENCH_FSYNC_DELAY_US");
    return v ? atol(v) : 0;
}

typedef int(s_sync_fn)(int fd);

//  The next definition of name (libc's): dlsym returns an object pointer,
//  copied into a function pointer without a cast ISO C forbids.
static s_sync_fn *
s_next(const char *name)
{
    s_sync_fn *fn = NULL;
    void *sym = dlsym(RTLD_NEXT, name);
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}

static void
s_sleep(void)
{
    long us = s_delay_us();
    if (us <= 0)
        return;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int
fdatasync(int fd)
{
    int rc = s_next("fdatasync")(fd);
    s_sleep();
    return rc;
}

int
fsync(int fd)
{
    int rc = s_next("fsync")(fd);
    s_sleep();
    return rc;
}
