/*  pres_sched: real-time scheduling for a latency-critical daemon
    (the broker's `sched_priority`, docs/broker.md "Real-time scheduling").

    Threading: call from the main thread before any other thread starts.
    Linux threads inherit the policy of the thread that creates them, so
    libzmq's I/O threads and the broker's sync threads, started later, run
    under it too. libzmq's threads re-apply the policy they inherit when
    they start, and abort if that is refused: a policy this call set was
    granted, so it is granted again. Do not set SCHED_FIFO from outside
    (systemd's CPUSchedulingPolicy=) where the process itself may not
    (RestrictRealtime=yes): its libzmq threads would abort. */
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
