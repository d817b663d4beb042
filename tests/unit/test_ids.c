/*  unit.ids: the id arena: add, get, len, free and reuse of slots by size,
    strings across block boundaries, many strings stay intact. */
#include <stdio.h>
#include <string.h>

#include "pres_ids.h"
#include "testutil.h"

int
main(void)
{
    pres_ids_t *ids = pres_ids_new();
    CHECK(ids);
    CHECK_EQ(pres_ids_bytes(ids), 0);
    uint32_t a = pres_ids_add(ids, "alice", 5);
    uint32_t b = pres_ids_add(ids, "s1", 2);
    CHECK(a != PRES_IDS_NONE && b != PRES_IDS_NONE && a != b);
    CHECK(strcmp(pres_ids_get(ids, a), "alice") == 0);
    CHECK(strcmp(pres_ids_get(ids, b), "s1") == 0);
    CHECK_EQ(pres_ids_len(ids, a), 5);
    CHECK_EQ(pres_ids_len(ids, b), 2);

    //  A freed slot is reused by a string of the same slot size only.
    pres_ids_free(ids, a);
    uint32_t c = pres_ids_add(ids, "x", 1);
    CHECK(c != a);
    uint32_t d = pres_ids_add(ids, "bobby", 5);
    CHECK_EQ(d, a);
    CHECK(strcmp(pres_ids_get(ids, d), "bobby") == 0);
    CHECK(strcmp(pres_ids_get(ids, b), "s1") == 0);
    pres_ids_free(ids, PRES_IDS_NONE);

    //  The longest string, and many of all lengths over several blocks.
    char big[PRES_IDS_MAX + 1];
    memset(big, 'z', PRES_IDS_MAX);
    big[PRES_IDS_MAX] = 0;
    uint32_t e = pres_ids_add(ids, big, PRES_IDS_MAX);
    CHECK(strcmp(pres_ids_get(ids, e), big) == 0);
    enum { N = 50000 };
    static uint32_t refs[N];
    char buf[80];
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "user-%d-%.*s", i, i % 40, big);
        refs[i] = pres_ids_add(ids, buf, (size_t)n);
        CHECK(refs[i] != PRES_IDS_NONE);
    }
    CHECK(pres_ids_bytes(ids) > 65536);
    for (int i = 0; i < N; i += 2)
        pres_ids_free(ids, refs[i]);
    for (int i = 0; i < N; i += 2) {
        int n = snprintf(buf, sizeof buf, "USER-%d-%.*s", i, i % 40, big);
        refs[i] = pres_ids_add(ids, buf, (size_t)n);
    }
    size_t bytes = pres_ids_bytes(ids);
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "%s-%d-%.*s", i % 2 ? "user" : "USER",
                         i, i % 40, big);
        CHECK_EQ(pres_ids_len(ids, refs[i]), (size_t)n);
        CHECK(strcmp(pres_ids_get(ids, refs[i]), buf) == 0);
    }
    //  Re-adding what was freed took no new block.
    CHECK_EQ(pres_ids_bytes(ids), bytes);
    pres_ids_destroy(&ids);
    CHECK(ids == NULL);
    pres_ids_destroy(&ids);
    return 0;
}
