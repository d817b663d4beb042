/*  sweeper_due: what one message of the broker's changes stream asks of
    the sweeper. The broker keeps the deadlines (it sees the heartbeats)
    and publishes a due notice, topic "deadline.<user>", for each session
    whose deadline has passed, again every ~1 s while it is live; the
    sweeper answers each with one `expire` carrying the notice's session
    and deadline. Pure functions, no state: the sweeper holds nothing per
    session. */
#ifndef SWEEPER_DUE_H_INCLUDED
#define SWEEPER_DUE_H_INCLUDED

#include <stddef.h>

#include "pres_msg.h"

typedef enum {
    SWEEPER_DUE_EXPIRE,   //  a due notice: *ev is the expire to send
    SWEEPER_DUE_IGNORED,  //  a "gone" notice, deadline 0: the broker's
                          //  answer to some publisher's expire of a
                          //  session it does not have; nothing to send
    SWEEPER_DUE_BAD       //  not a notice: *why says why
} sweeper_due_t;

//  Map one message (topic and body frames, neither NUL-terminated) to the
//  expire it calls for. On SWEEPER_DUE_EXPIRE, *ev is zeroed and holds
//  type PRES_EV_EXPIRE, user, session and deadline (the publisher fills
//  src, seq and at). On SWEEPER_DUE_BAD, *why (if why is not NULL) is a
//  static, short reason: the codec's, "unknown_topic" (not "deadline.")
//  or "topic_mismatch" (the topic names another user than the body).
//  *ev is unspecified unless the result is SWEEPER_DUE_EXPIRE.
sweeper_due_t sweeper_due_map(const void *topic, size_t topic_len,
                              const void *body, size_t body_len,
                              pres_event_t *ev, const char **why);

#endif
