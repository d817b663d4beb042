/*  broker_server: the broker's sockets and loop. Binds SUB (events in),
    PUB (changes out) and ROUTER (queries); takes the run_dir lock so a
    second broker cannot steal the ipc endpoints; runs group-committed
    batches, publishes after each durable commit, answers queries between
    batches, and flushes lazily durable last_seen values on a timer. */
#ifndef BROKER_SERVER_H_INCLUDED
#define BROKER_SERVER_H_INCLUDED

#include "pres_config.h"

#define BROKER_BATCH_MAX 4096  //  events per batch (one write txn)

typedef struct broker_server broker_server_t;

//  Lock run_dir, open LMDB in data_dir, load state, bind the sockets.
//  Returns NULL after logging (another broker running, store or bind
//  failure). cfg is borrowed and must outlive the server.
broker_server_t *broker_server_new(const pres_config_t *cfg);

//  Flushes dirty state, closes the sockets and LMDB, releases the lock.
void broker_server_destroy(broker_server_t **self_p);

//  Run until zsys_interrupted (SIGINT/SIGTERM). Returns 0 on a clean stop,
//  -1 when the store failed (state and disk may disagree: exit non-zero
//  and let the supervisor restart from LMDB).
int broker_server_run(broker_server_t *self);

#endif
