/*  broker_query: answers the query requests (`get`, `list`, `stats`,
    `snapshot`; `account` is refused there with "forbidden" and counted:
    it is taken only on the admin endpoint, applied by the server inside
    a batch and answered here once durable). Replies are one msgpack map,
    {ok: true, ...} or {ok: false, error}. Reads memory for resident users
    and LMDB for the rest, between batches, so answers are consistent with
    the last published seq. Single-threaded. */
#ifndef BROKER_QUERY_H_INCLUDED
#define BROKER_QUERY_H_INCLUDED

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_state.h"
#include "pres_msg.h"

//  Answer a request from the query socket. `out` is an initialised
//  msgpack_sbuffer the reply is appended to (caller clears and destroys
//  it). Returns 0 (a reply was written, ok or error; `account` gets
//  "forbidden" and is counted), -1 only on an internal failure (a store
//  read failed; an error reply was written anyway). *q is scratch.
int broker_query_answer(broker_state_t *state, const void *req, size_t len,
                        pres_query_t *q, msgpack_sbuffer *out);

//  Decode a request from the admin endpoint. A valid `account` writes
//  nothing, fills *q and returns 1: the caller applies it
//  (broker_state_account), commits, then calls broker_query_account_reply.
//  Anything else writes an error reply and returns 0.
int broker_query_admin(const void *req, size_t len, pres_query_t *q,
                       msgpack_sbuffer *out);

//  Write the reply to an applied account request: {ok, user, account,
//  seq}, or {ok: false, error} when rc != 0.
void broker_query_account_reply(const pres_query_t *q, int rc, uint64_t seq,
                                msgpack_sbuffer *out);

//  Write {ok: false, error}.
void broker_query_error(msgpack_sbuffer *out, const char *error);

#endif
