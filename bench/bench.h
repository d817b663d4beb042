/*  presence-bench: the load drivers and reference servers behind
    bench/run.sh. One executable, one subcommand per driver; each prints
    its figures as key=value lines on stdout. */
#ifndef BENCH_H_INCLUDED
#define BENCH_H_INCLUDED

//  Each returns the process exit status: 0 ok, 1 failure, 2 usage.
int bench_null_main(int argc, char **argv);    //  null broker (ceiling)
int bench_load_main(int argc, char **argv);    //  event publishers
int bench_fanout_main(int argc, char **argv);  //  change latency probe
int bench_expiry_main(int argc, char **argv);  //  expiry at scale
int bench_query_main(int argc, char **argv);   //  query latency, waits
int bench_tokens_main(int argc, char **argv);  //  JWTs for wrk

#endif
