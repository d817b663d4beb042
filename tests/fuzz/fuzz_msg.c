/*  fuzz_msg: every bus decoder on the same bytes. Each must refuse or
    accept without a crash, a leak or an out-of-bounds read, and an accepted
    message must re-encode and decode to the same thing. The first byte
    picks the event topic so topic checks are reached too. */
#include "pres_mp.h"
#include "pres_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_same(int cond)
{
    if (!cond)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const topics[] = {"login",  "heartbeat", "logout",
                                         "expire", "account",   "teleport"};
    const char *why;
    unsigned char again[PRES_MSG_MAX];
    const char *topic = topics[size ? data[0] % 6 : 0];
    const uint8_t *body = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0;

    pres_event_t ev, ev2;
    if (pres_event_decode(&ev, topic, strlen(topic), body, len, &why) == 0) {
        size_t n = pres_event_encode(&ev, again, sizeof again);
        s_same(n > 0);
        s_same(pres_event_decode(&ev2, topic, strlen(topic), again, n, &why) ==
               0);
        s_same(strcmp(ev.user, ev2.user) == 0 && ev.seq == ev2.seq &&
               ev.type == ev2.type && strcmp(ev.session, ev2.session) == 0);
    }
    pres_change_t ch;
    if (pres_change_decode(&ch, body, len, &why) == 0)
        s_same(pres_change_encode(&ch, again, sizeof again) > 0);
    pres_deadline_t dl;
    if (pres_deadline_decode(&dl, body, len, &why) == 0)
        s_same(pres_deadline_encode(&dl, again, sizeof again) > 0);
    pres_query_t q;
    if (pres_query_decode(&q, body, len, &why) == 0)
        s_same(pres_query_encode(&q, again, sizeof again) > 0);
    free(pres_mp_to_json(body, len, "ok", NULL));
    pres_mp_reader_t r;
    pres_mp_reader_init(&r, body, len);
    while (pres_mp_skip(&r) == 0 && !pres_mp_at_end(&r))
        ;
    return 0;
}
