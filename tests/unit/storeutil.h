/*  storeutil: the temp LMDB store of the broker unit tests: a fresh
    directory under /tmp, the store and the state on it, and the removal of
    the directory. Header only; the including file defines _XOPEN_SOURCE
    700 before its first #include (nftw). Failures abort via CHECK. */
#ifndef STOREUTIL_H_INCLUDED
#define STOREUTIL_H_INCLUDED

#include <ftw.h>
#include <stdio.h>

#include "broker_state.h"
#include "broker_store.h"
#include "testutil.h"

//  Creates /tmp/pres-unit-NAME-XXXXXX into dir (cap bytes).
static inline void
st_tmpdir(char *dir, size_t cap, const char *name)
{
    CHECK(snprintf(dir, cap, "/tmp/pres-unit-%s-XXXXXX", name) < (int)cap);
    CHECK(mkdtemp(dir));
}

static inline int
st_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

//  Removes dir and everything in it.
static inline void
st_rmtree(const char *dir)
{
    nftw(dir, st_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

//  Opens the store on dir (map_size bytes) and the state on it.
static inline void
st_open(const char *dir, size_t map_size, const pres_config_t *cfg,
        broker_store_t **store, broker_state_t **state)
{
    *store = broker_store_new(dir, map_size);
    CHECK(*store);
    *state = broker_state_new(cfg, *store);
    CHECK(*state);
}

//  Closes what st_open opened (state first).
static inline void
st_close(broker_store_t **store, broker_state_t **state)
{
    broker_state_destroy(state);
    broker_store_destroy(store);
}

#endif
