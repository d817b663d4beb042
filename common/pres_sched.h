/*  pres_sched: real-time scheduling for a latency-critical daemon
    (the broker's `sched_priority`, docs/broker.md "Real-time scheduling").

    Threading: call from the main thread before any other thread starts.
    Linux threads inherit the policy of the thread that creates them, so
    libzmq's I/O threads and the broker's sync threads, started later, run
    under it too (libzmq's threads re-apply the inherited policy at start;
    where that is refused they abort, so a policy this call could not set
    is never half applied). */
#ifndef PRES_SCHED_H_INCLUDED
#define PRES_SCHED_H_INCLUDED

//  Puts the calling thread, and every thread it starts from now on, under
//  SCHED_FIFO at priority (1-99). priority 0 leaves the scheduling as it
//  is. Returns 0, or -1 when the kernel refuses (logged once, here:
//  typically EPERM, no CAP_SYS_NICE and RLIMIT_RTPRIO below priority, or
//  systemd's RestrictRealtime=yes); the process then runs on at normal
//  priority, unchanged.
int pres_sched_realtime(int priority);

#endif
