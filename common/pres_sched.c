/*  pres_sched: SCHED_FIFO for a daemon's threads, asked for once at start. */
#include "pres_sched.h"
#include "pres_log.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
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
        char limit[24] = "unlimited";
        if (getrlimit(RLIMIT_RTPRIO, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            snprintf(limit, sizeof limit, "%llu",
                     (unsigned long long)rl.rlim_cur);
        pres_log_error("sched_setscheduler(SCHED_FIFO, %d) failed: %s "
                       "(RLIMIT_RTPRIO %s; needs CAP_SYS_NICE or a limit "
                       ">= %d); running at normal priority",
                       priority, strerror(err), limit, priority);
        return -1;
    }
    pres_log_info("scheduling: SCHED_FIFO, priority %d, for every thread",
                  priority);
    return 0;
}
