/*  unit.sched: pres_sched_realtime puts the caller under SCHED_FIFO, and
    the threads it starts afterwards inherit it; 0 changes nothing; a
    refusal (no CAP_SYS_NICE, RLIMIT_RTPRIO below the priority) returns -1
    and leaves the scheduling as it was. Each case runs in a child so the
    test's own scheduling never changes. The refusal cases need root (to
    drop to an unprivileged uid with a chosen RLIMIT_RTPRIO, which also
    needs CAP_SYS_RESOURCE to raise it); the first needs a kernel that
    grants SCHED_FIFO to this process at all. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pres_sched.h"
#include "testutil.h"

static void *
s_policy_of_thread(void *arg)
{
    *(int *)arg = sched_getscheduler(0);
    return NULL;
}

//  The policy a thread started now gets.
static int
s_new_thread_policy(void)
{
    pthread_t t;
    int policy = -1;
    CHECK(pthread_create(&t, NULL, s_policy_of_thread, &policy) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    return policy;
}

//  Runs fn in a child; its exit status (0 = the checks held).
static int
s_in_child(void (*fn)(void))
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void
s_granted(void)
{
    CHECK_EQ(pres_sched_realtime(0), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    CHECK_EQ(pres_sched_realtime(7), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_FIFO);
    struct sched_param sp;
    CHECK(sched_getparam(0, &sp) == 0);
    CHECK_EQ(sp.sched_priority, 7);
    CHECK_EQ(s_new_thread_policy(), SCHED_FIFO);
}

//  Unprivileged, RLIMIT_RTPRIO 5: up to 5 is granted, 6 is not. Exits 77
//  where the limit cannot be raised (root without CAP_SYS_RESOURCE, as in
//  some containers).
static void
s_limited(void)
{
    struct rlimit rl = {5, 5};
    if (setrlimit(RLIMIT_RTPRIO, &rl))
        _exit(77);
    CHECK(setgid(65534) == 0 && setuid(65534) == 0);
    CHECK_EQ(pres_sched_realtime(6), -1);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    CHECK_EQ(s_new_thread_policy(), SCHED_OTHER);
    CHECK_EQ(pres_sched_realtime(5), 0);
    CHECK_EQ(sched_getscheduler(0), SCHED_FIFO);
}

//  Unprivileged, RLIMIT_RTPRIO 0 (the default): refused, nothing changes.
static void
s_refused(void)
{
    struct rlimit rl = {0, 0};
    CHECK(setrlimit(RLIMIT_RTPRIO, &rl) == 0);
    CHECK(setgid(65534) == 0 && setuid(65534) == 0);
    CHECK_EQ(pres_sched_realtime(1), -1);
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    CHECK_EQ(s_new_thread_policy(), SCHED_OTHER);
}

int
main(void)
{
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    bool can_fifo = test_can_sched_fifo();
    if (can_fifo) {
        CHECK_EQ(s_in_child(s_granted), 0);
        printf("granted: SCHED_FIFO 7 for the caller and its new threads\n");
    } else
        printf("this process cannot get SCHED_FIFO here: granted case "
               "skipped\n");
    if (geteuid() == 0) {
        int rc = can_fifo ? s_in_child(s_limited) : 77;
        CHECK(rc == 0 || rc == 77);
        printf("limited: %s\n", rc == 0 ? "RLIMIT_RTPRIO 5 grants 5, refuses 6"
                                        : "skipped (the limit cannot be "
                                          "raised here)");
        CHECK_EQ(s_in_child(s_refused), 0);
        printf("refused: unprivileged with RLIMIT_RTPRIO 0\n");
    } else
        printf("not root: the refusal cases are skipped\n");
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    return 0;
}
