/*  sweeper_due: a due notice to the expire that answers it. */
#include "sweeper_due.h"

#include <assert.h>
#include <string.h>

sweeper_due_t
sweeper_due_map(const void *topic, size_t topic_len, const void *body,
                size_t body_len, pres_event_t *ev, const char **why)
{
    assert(topic && body && ev);
    const char *dummy;
    if (!why)
        why = &dummy;
    size_t dp = strlen(PRES_DEADLINE_PREFIX);
    if (topic_len <= dp || memcmp(topic, PRES_DEADLINE_PREFIX, dp) != 0) {
        *why = "unknown_topic";
        return SWEEPER_DUE_BAD;
    }
    pres_deadline_t dl;
    if (pres_deadline_decode(&dl, body, body_len, why) != 0)
        return SWEEPER_DUE_BAD;
    //  The topic is what subscribers filter on: a body about another user
    //  is a broken publisher, and acting on it would expire the wrong one.
    if (topic_len - dp != strlen(dl.user) ||
        memcmp((const char *)topic + dp, dl.user, topic_len - dp) != 0) {
        *why = "topic_mismatch";
        return SWEEPER_DUE_BAD;
    }
    if (dl.deadline == 0)
        return SWEEPER_DUE_IGNORED;
    memset(ev, 0, sizeof(*ev));
    ev->type = PRES_EV_EXPIRE;
    memcpy(ev->user, dl.user, sizeof ev->user);
    memcpy(ev->session, dl.session, sizeof ev->session);
    ev->deadline = dl.deadline;
    return SWEEPER_DUE_EXPIRE;
}
