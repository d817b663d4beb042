/*  unit.grow: pres_grow's doubling, its first capacity, its no-op when
    there is room, and its refusal of a size that overflows (array and
    capacity untouched). */
#include <errno.h>
#include <stdint.h>

#include "pres_grow.h"
#include "testutil.h"

typedef struct {
    uint64_t a, b;
    char c[7];
} s_item_t;

int
main(void)
{
    //  From empty: first, then doubling; contents survive each move.
    s_item_t *items = NULL;
    size_t cap = 0;
    CHECK_EQ(pres_grow((void **)&items, &cap, sizeof(*items), 1, 16), 0);
    CHECK(items != NULL);
    CHECK_EQ(cap, 16);
    for (size_t i = 0; i < 1000; i++) {
        CHECK_EQ(pres_grow((void **)&items, &cap, sizeof(*items), i + 1, 16),
                 0);
        CHECK(cap >= i + 1);
        CHECK_EQ(cap & (cap - 1), 0);  //  16 doubled: a power of two
        items[i].a = i;
        items[i].b = ~(uint64_t)i;
    }
    CHECK_EQ(cap, 1024);
    for (size_t i = 0; i < 1000; i++)
        CHECK(items[i].a == i && items[i].b == ~(uint64_t)i);

    //  Room enough: nothing moves.
    s_item_t *before = items;
    CHECK_EQ(pres_grow((void **)&items, &cap, sizeof(*items), 1024, 16), 0);
    CHECK(items == before);
    CHECK_EQ(cap, 1024);
    CHECK_EQ(pres_grow((void **)&items, &cap, sizeof(*items), 0, 16), 0);
    CHECK_EQ(cap, 1024);

    //  One jump far past the capacity doubles until it fits.
    CHECK_EQ(pres_grow((void **)&items, &cap, sizeof(*items), 5000, 16), 0);
    CHECK_EQ(cap, 8192);
    CHECK(items[999].a == 999);

    //  Overflow of the element count or of the byte size: refused,
    //  nothing changed.
    before = items;
    errno = 0;
    CHECK_EQ(pres_grow((void **)&items, &cap, sizeof(*items), SIZE_MAX, 16),
             -1);
    CHECK_EQ(errno, ENOMEM);
    CHECK(items == before);
    CHECK_EQ(cap, 8192);
    errno = 0;
    CHECK_EQ(pres_grow((void **)&items, &cap, sizeof(*items),
                       SIZE_MAX / sizeof(*items) + 1, 16),
             -1);
    CHECK_EQ(errno, ENOMEM);
    CHECK(items == before);
    CHECK_EQ(cap, 8192);
    free(items);

    //  Byte buffers (elem 1) from a large first capacity.
    char *buf = NULL;
    size_t bcap = 0;
    CHECK_EQ(pres_grow((void **)&buf, &bcap, 1, 70000, 65536), 0);
    CHECK_EQ(bcap, 131072);
    buf[70000 - 1] = 'x';
    free(buf);

    printf("unit.grow: ok\n");
    return 0;
}
