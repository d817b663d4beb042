/*  gateway_accounts: the set of users whose account is NOT active, so the
    heartbeat path can answer 403 without asking the broker. Fed by the
    changes stream (every change carries `account`), by a seeding `list`
    per non-active status at start and after a gap, and at once by the
    gateway's own PUT account. Thread-safe (rwlock; readers never block
    each other). */
#ifndef GATEWAY_ACCOUNTS_H_INCLUDED
#define GATEWAY_ACCOUNTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "pres_msg.h"

typedef struct gw_accounts gw_accounts_t;

//  NULL on allocation failure (logged).
gw_accounts_t *gw_accounts_new(void);
void gw_accounts_destroy(gw_accounts_t **self_p);

//  Record user's account status: active removes the user, anything else
//  adds or updates it. user must be a valid id. 0, or -1 (no memory).
int gw_accounts_set(gw_accounts_t *self, const char *user,
                    pres_account_t status);

//  The user's status: PRES_ACC_ACTIVE when not in the set.
pres_account_t gw_accounts_get(gw_accounts_t *self, const char *user);

//  Number of non-active users held.
size_t gw_accounts_size(gw_accounts_t *self);

#endif
