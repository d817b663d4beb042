/*  pres_sched: SCHED_FIFO for a daemon's threads, asked for once at start. */
#include "pres_sched.h"
#include "pres_log.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>

int
pres_sched_realtime(int priority)
{
    assert(priority >= 0 && priority <= 99);
    if (priority == 0)
        return 0;
    //  Not SCHED_RESET_ON_FORK: the kernel applies it to every clone,
    //  threads included, and the point is that the threads inherit.
    struct sched_param sp = {.sched_priority = priority};
    if (sched_setscheduler(0, SCHED_FIFO, &sp)) {
        int err = errno;
        struct rlimit rl = {0};
        getrlimit(RLIMIT_RTPRIO, &rl);
        pres_log_error("sched_setscheduler(SCHED_FIFO, %d) failed: %s "
                       "(RLIMIT_RTPRIO %lld; needs CAP_SYS_NICE or a limit "
                       ">= %d); running at normal priority",
                       priority, strerror(err),
                       rl.rlim_cur == RLIM_INFINITY ? -1LL
                                                    : (long long)rl.rlim_cur,
                       priority);
        return -1;
    }
    pres_log_info("scheduling: SCHED_FIFO, priority %d, for every thread",
                  priority);
    return 0;
}
