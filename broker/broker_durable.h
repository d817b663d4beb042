/*  broker_durable: the stage between a batch's commit and its publication.
    The loop commits a batch without fsync (MDB_NOSYNC) and goes on with
    the next one; sync threads make the commits durable (mdb_env_sync)
    and what each batch held back is released, in order, once it is: its
    changes and deadline notices, and the query or admin replies answered
    after it (so nobody sees a state or a seq that is not yet on disk).
    The fsync of batch N thus overlaps the applying of batch N+1. A commit
    made while an fsync runs starts its own at once on an idle thread (a
    change waits only for the fsync of its own commit, not for the one
    running when it was made); only when every thread is busy do the
    commits that pile up share the next free one. An fsync that returns
    makes durable every commit announced before it started, whatever the
    others still do.

    Ordering: an item is held with the ticket of the last commit made
    before it (broker_durable_committed), and released once a sync that
    started after that commit has finished. Changes go out in the order
    held, replies in the order held; a reply never goes out before a
    change held with the same or an earlier ticket. An item held with
    nothing pending is released at the next release call.

    Who publishes: by default the owner, in _release (a sync thread
    signals the fd). With _publish_on_thread the sync thread publishes the
    changes itself right after the fsync returns (no wake-up of the loop
    on the way to the subscribers); the owner still publishes, in
    _release, what was held after its commit was already durable. Every
    call of that pub function is serialised by a mutex, a full barrier:
    the socket it writes to moves between the two threads one call at a
    time, as libzmq allows. Replies are always sent by the owner.

    Threading: every function runs on the owner's (the loop's) thread,
    except the sync callback (on the sync threads, several at once: it
    must be thread-safe; LMDB's mdb_env_sync is an fdatasync and may run
    from any thread while the owner writes; docs/broker.md)
    and the _publish_on_thread callback (either thread, serialised). */
#ifndef BROKER_DURABLE_H_INCLUDED
#define BROKER_DURABLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct broker_durable broker_durable_t;

//  Make every commit done so far durable. Runs on a sync thread, maybe on
//  several at once. 0 or -1 (logged by the callee).
typedef int(broker_durable_sync_fn)(void *arg);

//  A held change or notice, released: topic + body, borrowed for the call.
typedef void(broker_durable_pub_fn)(const void *topic, size_t tlen,
                                    const void *body, size_t blen, void *arg);

//  A held reply, released: the two pointers given to _hold_reply; the
//  callee takes ownership of msg.
typedef void(broker_durable_reply_fn)(void *sock, void *msg, void *arg);

//  Counters since _new (read on the owner's thread).
typedef struct {
    uint64_t commits;      //  commits announced
    uint64_t syncs;        //  fsyncs done
    uint64_t sync_us;      //  total time inside the sync callback
    uint64_t sync_us_max;  //  longest one
    uint64_t held;         //  items held
    uint64_t held_max;     //  most items waiting at once
    uint64_t hist[16];     //  fsync times: hist[i] counts those < 2^i * 64 us
    //  Where a change's time goes (us, hist[i] counts those < 2^i * 64 us):
    uint64_t wake_hist[16];   //  commit -> fsync start, a thread was idle
    uint64_t queue_hist[16];  //  oldest commit -> fsync start, all busy
    uint64_t out_hist[16];    //  fsync end -> each change published
    uint64_t hold_hist[16];   //  change held -> published (the whole stage)
    uint64_t bulk_hist[16];   //  fsyncs covering a bulk commit (in hist too)
    uint64_t published;       //  changes published
    uint64_t by_thread;       //  of which by the sync thread
} broker_durable_stats_t;

//  Frees a held reply's msg that was never released (on destroy).
typedef void(broker_durable_free_fn)(void *msg);

//  Start the sync threads. sync/arg: how to make commits durable (the
//  broker passes broker_store_sync); free_reply: see _hold_reply. NULL
//  after logging.
broker_durable_t *broker_durable_new(broker_durable_sync_fn *sync, void *arg,
                                     broker_durable_free_fn *free_reply);

//  Wait for the pending syncs, stop the threads, free what is still held
//  (without releasing it: call _drain first to publish it).
void broker_durable_destroy(broker_durable_t **self_p);

//  From now on the stage publishes changes itself through pub(arg): on
//  the sync thread right after each fsync, or on the owner's in _release
//  (see the header comment). Call before the first commit is announced.
//  The pub given to _release and _drain is then not used for changes.
void broker_durable_publish_on_thread(broker_durable_t *self,
                                      broker_durable_pub_fn *pub, void *arg);

//  A write txn was committed without fsync: ask a sync thread for one.
void broker_durable_committed(broker_durable_t *self);

//  The same for a bulk write (the last_seen flush): the fsyncs that cover
//  one are also counted in bulk_hist.
void broker_durable_committed_bulk(broker_durable_t *self);

//  Publish one message that waits for no commit (a due notice) through
//  pub(arg) now, on the owner's thread, while no sync thread publishes
//  (it may wait for one that is publishing). Its order against held
//  changes is not kept: use it only for messages that need none.
void broker_durable_publish_now(broker_durable_t *self,
                                broker_durable_pub_fn *pub, void *arg,
                                const void *topic, size_t tlen,
                                const void *body, size_t blen);

//  Hold a message until every commit announced so far is durable (a copy
//  is kept). 0 or -1 (out of memory, logged).
int broker_durable_hold_msg(broker_durable_t *self, const void *topic,
                            size_t tlen, const void *body, size_t blen);

//  Hold a reply the same way; sock and msg are passed back on release
//  (msg is owned by the stage until then; freed by reply_fn, or by
//  free_reply on destroy). 0 or -1 (msg is then still the caller's).
int broker_durable_hold_reply(broker_durable_t *self, void *sock, void *msg);

//  True if something is held or a sync is pending.
bool broker_durable_busy(broker_durable_t *self);

//  True if a held item could be released now by _release (no syscall;
//  an uncontended lock: for polling between events of a long batch).
bool broker_durable_ready(broker_durable_t *self);

//  File descriptor that becomes readable when a sync finished and the
//  owner has something to release (poll it with the loop's sockets).
int broker_durable_fd(const broker_durable_t *self);

//  Release, in order, every item whose commits are durable: changes first
//  (through the pub set by _publish_on_thread if any, else through pub),
//  then replies. Returns the number released by this call, or -1 if a sync
//  failed (nothing after the failure is ever released: the broker must stop,
//  its state is not known durable).
int broker_durable_release(broker_durable_t *self, broker_durable_pub_fn *pub,
                           broker_durable_reply_fn *reply, void *arg);

//  Block until every commit announced so far is durable, then release
//  everything (clean stop, account replies that must not wait for the
//  loop). Same return as _release.
int broker_durable_drain(broker_durable_t *self, broker_durable_pub_fn *pub,
                         broker_durable_reply_fn *reply, void *arg);

//  Free the queue's buffers if nothing is held (they grow to the largest
//  backlog, e.g. a login storm during a slow fsync; call when idle).
void broker_durable_shrink(broker_durable_t *self);

//  Counters so far.
void broker_durable_stats(broker_durable_t *self, broker_durable_stats_t *st);

//  Zero the counters (figures per phase of a benchmark).
void broker_durable_stats_reset(broker_durable_t *self);

#endif
