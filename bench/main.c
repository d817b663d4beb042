/*  presence-bench: one executable for every load driver of bench/run.sh.
    `presence-bench <driver> -h` prints the driver's options. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#include "pres_log.h"

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *what;
    } drivers[] = {
        {"null", bench_null_main, "null broker: the bare bus ceiling"},
        {"load", bench_load_main, "publishers sending events to the broker"},
        {"fanout", bench_fanout_main, "event -> change latency probe"},
        {"expiry", bench_expiry_main, "expiry of N sessions at once"},
        {"query", bench_query_main, "wait for / time broker queries"},
        {"tokens", bench_tokens_main, "mint JWTs for the HTTP benchmark"},
    };
    pres_log_init("presence-bench", false);
    if (argc >= 2)
        for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
            if (!strcmp(argv[1], drivers[i].name))
                return drivers[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "usage: presence-bench <driver> [options]\n");
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        fprintf(stderr, "  %-7s %s\n", drivers[i].name, drivers[i].what);
    return 2;
}
