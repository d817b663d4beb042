/*  it.broker_sched: `sched_priority` from outside. With
    PRESENCE_SCHED_PRIORITY=2 every thread of the broker (its loop, its
    sync threads, libzmq's I/O and reaper threads) runs under SCHED_FIFO
    at priority 2, and a login still becomes a published change, durable
    across a restart. Where the kernel refuses real-time scheduling to
    this process, the broker says so once, in its log naming the failed
    call, and runs on at normal priority: the same login works. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itutil.h"
#include "testutil.h"

//  Counts pid's threads in one pass over /proc/PID/task, and among them
//  those under SCHED_FIFO at priority prio and those under SCHED_OTHER
//  (/proc/PID/task/TID/stat: rt_priority and policy are fields 40, 41).
static int
s_threads(pid_t pid, int prio, int *fifo, int *other)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    CHECK(dir);
    int n = 0;
    *fifo = *other = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        char stat[sizeof path + sizeof de->d_name + 8], buf[1024];
        snprintf(stat, sizeof stat, "%s/%s/stat", path, de->d_name);
        FILE *fp = fopen(stat, "r");
        if (!fp)
            continue;  //  a thread that just ended
        size_t len = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[len] = 0;
        //  After ") S" (comm, then the state letter): fields 4 to 41.
        char *p = strrchr(buf, ')');
        CHECK(p && p[1] == ' ' && p[2]);
        p += 3;
        long long f[42] = {0};
        for (int i = 4; i <= 41; i++)
            f[i] = strtoll(p, &p, 10);
        n++;
        if (f[41] == SCHED_FIFO && f[40] == prio)
            (*fifo)++;
        else if (f[41] == SCHED_OTHER && f[40] == 0)
            (*other)++;
    }
    closedir(dir);
    return n;
}

int
main(void)
{
    it_env_t env;
    CHECK_EQ(it_env_init(&env, "broker-sched"), 0);
    it_env_set(&env, "sched_priority", "2");
    pres_config_t cfg;
    CHECK_EQ(it_env_config(&env, &cfg), 0);
    CHECK_EQ(cfg.sched_priority, 2);
    static it_proc_t broker;
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);

    zsock_t *sub = NULL;
    pres_pub_t *pub = NULL;
    CHECK_EQ(it_bus_open(&cfg, "", "gateway-sched-1", &sub, &pub), 0);
    CHECK_EQ(it_send_login(pub, "rt-alice", "s1"), 0);
    pres_change_t ch;
    CHECK_EQ(it_wait_change(sub, "rt-alice", &ch, 10000), 0);
    CHECK_EQ(ch.state, PRES_ONLINE);

    //  Every thread, those started for the first commit included.
    int fifo = 0, other = 0;
    int n = s_threads(broker.pid, 2, &fifo, &other);
    bool granted = test_can_sched_fifo();
    printf("broker threads %d: SCHED_FIFO 2 %d, SCHED_OTHER %d (this "
           "process %s get SCHED_FIFO)\n",
           n, fifo, other, granted ? "can" : "cannot");
    CHECK(n >= 3);  //  the loop and libzmq's I/O and reaper threads
    if (granted) {
        CHECK_EQ(fifo, n);
        CHECK(it_proc_log_has(&broker, "SCHED_FIFO, priority 2"));
    } else {
        CHECK_EQ(other, n);
        CHECK(it_proc_log_has(&broker, "sched_setscheduler(SCHED_FIFO, 2) "
                                       "failed"));
    }

    //  Durable as ever: the change survives a restart.
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    CHECK(it_wait_user(&cfg, "rt-alice", "online", 5000));

    zsock_destroy(&sub);
    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}
