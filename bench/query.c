/*  Query-side drivers: wait for the broker to answer (cold start), time
    `get`, `list` and `stats`, and mint JWTs for the HTTP benchmark. */
#include "bench.h"
#include "bench_util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pres_jwt.h"
#include "pres_log.h"

#define S_MANY 1000  //  ids per round of `many`

//  `many`: per round, 1,000 random ids asked once as one get_many and once
//  as 1,000 sequential gets on the same REQ client. Prints the latency of
//  a round both ways (many_* and gets_*).
static int
s_many(pres_qclient_t *qc, uint64_t users, const char *prefix, int rounds)
{
    static char ids[S_MANY][PRES_ID_MAX + 1];
    static const char *ptrs[S_MANY];
    static uint8_t req[PRES_QUERY_FRAME_MAX];
    bench_lat_t many, gets;
    bench_lat_init(&many, (size_t)rounds);
    bench_lat_init(&gets, (size_t)rounds);
    unsigned seed = (unsigned)time(NULL);
    int rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++) {
        for (int i = 0; i < S_MANY; i++) {
            uint64_t u =
                ((uint64_t)rand_r(&seed) * 65536u + (uint64_t)rand_r(&seed)) %
                users;
            bench_user_id(ids[i], prefix, u);
            ptrs[i] = ids[i];
        }
        pres_query_t q = {
            .op = PRES_Q_GET_MANY, .nusers = S_MANY, .users = ptrs};
        int64_t t = bench_now_ns();
        size_t len = pres_query_encode(&q, req, sizeof(req));
        zframe_t *rep = len ? pres_qclient_call(qc, req, len, 5000) : NULL;
        if (!rep) {
            fprintf(stderr, "get_many failed\n");
            rc = 1;
            break;
        }
        zframe_destroy(&rep);
        bench_lat_add(&many, bench_now_ns() - t);
        t = bench_now_ns();
        for (int i = 0; i < S_MANY && rc == 0; i++) {
            pres_query_t g = {.op = PRES_Q_GET};
            memcpy(g.user, ids[i], sizeof(g.user));
            len = pres_query_encode(&g, req, sizeof(req));
            rep = pres_qclient_call(qc, req, len, 5000);
            if (!rep) {
                fprintf(stderr, "get failed\n");
                rc = 1;
            }
            zframe_destroy(&rep);
        }
        bench_lat_add(&gets, bench_now_ns() - t);
    }
    bench_lat_sort(&many);
    bench_lat_sort(&gets);
    bench_lat_print(&many, "many");
    bench_lat_print(&gets, "gets");
    bench_lat_free(&many);
    bench_lat_free(&gets);
    return rc;
}

//  presence-bench query wait [-t ms] | lat [-u users] [-x prefix] [-n n]
int
bench_query_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: presence-bench query wait [-t ms]\n"
                        "       presence-bench query stats\n"
                        "       presence-bench query lat [-u users] "
                        "[-x prefix] [-n queries]\n"
                        "       presence-bench query many [-u users] "
                        "[-x prefix] [-n rounds]\n");
        return 2;
    }
    const char *what = argv[1];
    int timeout_ms = 10000, count = 1000;
    uint64_t users = 10000;
    const char *prefix = "u";
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "t:u:x:n:")) != -1) {
        switch (opt) {
        case 't':
            timeout_ms = atoi(optarg);
            break;
        case 'u':
            users = strtoull(optarg, NULL, 10);
            break;
        case 'x':
            prefix = optarg;
            break;
        case 'n':
            count = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    pres_config_t cfg;
    if (bench_config(&cfg))
        return 1;
    int64_t t0 = bench_now_ns();
    pres_qclient_t *qc = pres_qclient_new(&cfg);
    if (!qc)
        return 1;
    int rc = 0;
    if (!strcmp(what, "wait")) {
        //  Lazy Pirate: each call re-creates its REQ after a timeout.
        bench_stats_t st;
        bool up = false;
        while (!up && bench_now_ns() - t0 < (int64_t)timeout_ms * 1000000) {
            pres_query_t q = {.op = PRES_Q_STATS};
            zframe_t *rep = pres_qclient_query(qc, &q, 20, NULL);
            if (rep) {
                up = true;
                zframe_destroy(&rep);
            }
        }
        if (up && bench_stats(qc, &st, 5000) == 0)
            printf("ready_ms=%.1f seq=%llu sessions=%llu\n",
                   (bench_now_ns() - t0) / 1e6, (unsigned long long)st.seq,
                   (unsigned long long)st.sessions);
        else {
            fprintf(stderr, "query wait: broker did not answer\n");
            rc = 1;
        }
    } else if (!strcmp(what, "stats")) {
        bench_stats_t st;
        if (bench_stats(qc, &st, 5000) == 0)
            printf(
                "seq=%llu applied=%llu refused=%llu lost=%llu online=%llu "
                "away=%llu offline=%llu sessions=%llu commits=%llu "
                "syncs=%llu\n",
                (unsigned long long)st.seq, (unsigned long long)st.applied,
                (unsigned long long)st.refused, (unsigned long long)st.lost,
                (unsigned long long)st.online, (unsigned long long)st.away,
                (unsigned long long)st.offline, (unsigned long long)st.sessions,
                (unsigned long long)st.commits, (unsigned long long)st.syncs);
        else
            rc = 1;
    } else if (!strcmp(what, "lat")) {
        bench_lat_t lat[3];
        const char *names[3] = {"get", "list", "stats"};
        for (int k = 0; k < 3; k++)
            bench_lat_init(&lat[k], (size_t)count);
        unsigned seed = (unsigned)time(NULL);
        for (int i = 0; i < count && rc == 0; i++)
            for (int k = 0; k < 3; k++) {
                pres_query_t q;
                memset(&q, 0, sizeof q);
                uint64_t u =
                    (uint64_t)rand_r(&seed) * 65536u + (uint64_t)rand_r(&seed);
                u %= users;
                if (k == 0) {
                    q.op = PRES_Q_GET;
                    bench_user_id(q.user, prefix, u);
                } else if (k == 1) {
                    q.op = PRES_Q_LIST;
                    q.limit = 100;
                    bench_user_id(q.cursor, prefix, u);
                } else
                    q.op = PRES_Q_STATS;
                char *error = NULL;
                int64_t t = bench_now_ns();
                zframe_t *rep = pres_qclient_query(qc, &q, 5000, &error);
                int64_t dt = bench_now_ns() - t;
                if (!rep) {
                    fprintf(stderr, "query %s failed: %s\n", names[k],
                            error ? error : strerror(errno));
                    free(error);
                    rc = 1;
                    break;
                }
                zframe_destroy(&rep);
                bench_lat_add(&lat[k], dt);
            }
        for (int k = 0; k < 3; k++) {
            bench_lat_sort(&lat[k]);
            bench_lat_print(&lat[k], names[k]);
            bench_lat_free(&lat[k]);
        }
    } else if (!strcmp(what, "many"))
        rc = s_many(qc, users, prefix, count);
    else {
        fprintf(stderr, "query: unknown '%s'\n", what);
        rc = 2;
    }
    pres_qclient_destroy(&qc);
    return rc;
}

//  presence-bench tokens -n N [-x prefix] [-T ttl]: one "user token" line
//  per user on stdout, signed with the configured HS256 secret (created in
//  data_dir if missing, as the gateway does).
int
bench_tokens_main(int argc, char **argv)
{
    uint64_t n = 1000;
    const char *prefix = "h";
    int64_t ttl = 3600;
    int opt;
    while ((opt = getopt(argc, argv, "n:x:T:")) != -1) {
        switch (opt) {
        case 'n':
            n = strtoull(optarg, NULL, 10);
            break;
        case 'x':
            prefix = optarg;
            break;
        case 'T':
            ttl = atoll(optarg);
            break;
        default:
            fprintf(stderr, "usage: presence-bench tokens -n N [-x prefix] "
                            "[-T ttl_s]\n");
            return 2;
        }
    }
    pres_config_t cfg;
    if (bench_config(&cfg) || pres_config_make_dirs(&cfg))
        return 1;
    pres_jwt_t *jwt = pres_jwt_new(&cfg, true);
    if (!jwt)
        return 1;
    int64_t now = (int64_t)time(NULL);
    for (uint64_t i = 0; i < n; i++) {
        char user[PRES_ID_MAX + 1];
        bench_user_id(user, prefix, i);
        char *tok = pres_jwt_mint(jwt, user, false, ttl, now);
        if (!tok) {
            pres_jwt_destroy(&jwt);
            return 1;
        }
        printf("%s %s\n", user, tok);
        free(tok);
    }
    pres_jwt_destroy(&jwt);
    return 0;
}
