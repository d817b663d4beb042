/*  test_gateway_limit: the limiter and connection policy without MHD or
    sleeps (every call is given its time): addresses and /64 grouping,
    trusted-proxy CIDRs and forwarding headers, buckets per subject and
    per address, colliding keys kept apart, connection caps, and the
    header/idle deadlines of gw_conns. */
#include <stdio.h>
#include <string.h>

#include "gateway_addr.h"
#include "gateway_conns.h"
#include "gateway_limit.h"
#include "testutil.h"

static gw_addr_t
s_addr(const char *text)
{
    gw_addr_t a;
    CHECK_EQ(gw_addr_parse(&a, text, strlen(text)), 0);
    return a;
}

static const char *
s_text(const gw_addr_t *a)
{
    static char buf[GW_ADDR_TEXT_MAX];
    gw_addr_format(a, buf, sizeof buf);
    return buf;
}

static void
s_test_addr(void)
{
    gw_addr_t a = s_addr("192.0.2.7");
    CHECK_EQ(a.family, 4);
    CHECK_STR(s_text(&a), "192.0.2.7");
    a = s_addr("::ffff:192.0.2.7");  //  mapped: the IPv4 peer
    CHECK_EQ(a.family, 4);
    CHECK_STR(s_text(&a), "192.0.2.7");
    a = s_addr("2001:db8::1");
    CHECK_EQ(a.family, 6);
    CHECK_STR(s_text(&a), "2001:db8::1");
    const char *bad[] = {"", "1.2.3", "1.2.3.4.5", "host", "::g", "1.2.3.4 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(gw_addr_parse(&a, bad[i], strlen(bad[i])), -1);

    //  IPv6 is keyed by /64; IPv4 by the whole address.
    uint8_t k1[9], k2[9];
    gw_addr_t x = s_addr("2001:db8:0:1::1"), y = s_addr("2001:db8:0:1:ffff::9");
    size_t n1 = gw_addr_key(&x, k1), n2 = gw_addr_key(&y, k2);
    CHECK_EQ(n1, 9);
    CHECK(n1 == n2 && memcmp(k1, k2, n1) == 0);
    y = s_addr("2001:db8:0:2::1");
    gw_addr_key(&y, k2);
    CHECK(memcmp(k1, k2, n1) != 0);
    x = s_addr("10.0.0.1");
    y = s_addr("10.0.0.2");
    CHECK_EQ(gw_addr_key(&x, k1), 5);
    gw_addr_key(&y, k2);
    CHECK(memcmp(k1, k2, 5) != 0);
}

static void
s_test_cidrs(void)
{
    gw_cidrs_t list;
    const char *bad = NULL;
    CHECK_EQ(gw_cidrs_parse(&list, "", &bad), 0);
    CHECK_EQ(list.count, 0);
    gw_addr_t a = s_addr("10.1.2.3");
    CHECK(!gw_cidrs_match(&list, &a));
    CHECK_EQ(
        gw_cidrs_parse(&list, " 10.0.0.0/8 , 192.0.2.1,2001:db8::/32,", &bad),
        0);
    CHECK_EQ(list.count, 3);
    CHECK(gw_cidrs_match(&list, &a));
    a = s_addr("11.0.0.1");
    CHECK(!gw_cidrs_match(&list, &a));
    a = s_addr("192.0.2.1");
    CHECK(gw_cidrs_match(&list, &a));
    a = s_addr("192.0.2.2");
    CHECK(!gw_cidrs_match(&list, &a));
    a = s_addr("2001:db8:ffff::1");
    CHECK(gw_cidrs_match(&list, &a));
    a = s_addr("2001:db9::1");
    CHECK(!gw_cidrs_match(&list, &a));
    //  Host bits in the network are ignored; /0 matches the family.
    CHECK_EQ(gw_cidrs_parse(&list, "10.9.9.9/8,::/0", &bad), 0);
    a = s_addr("10.200.0.1");
    CHECK(gw_cidrs_match(&list, &a));
    a = s_addr("fe80::1");
    CHECK(gw_cidrs_match(&list, &a));
    const char *invalid[] = {"10.0.0.0/33", "10.0.0.0/", "x", "::/129",
                             "1.2.3.4/8/8"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        CHECK_EQ(gw_cidrs_parse(&list, invalid[i], &bad), -1);
        CHECK(bad != NULL);
    }
}

static void
s_expect_client(const gw_cidrs_t *trusted, gw_fwd_t kind, const char *header,
                const char *want)
{
    gw_addr_t peer = s_addr("10.0.0.1"), client;
    gw_addr_forwarded(trusted, &peer, kind, header, &client);
    if (strcmp(s_text(&client), want) != 0)
        fprintf(stderr, "header '%s': got %s, want %s\n",
                header ? header : "(none)", s_text(&client), want);
    CHECK_STR(s_text(&client), want);
}

static void
s_test_forwarded(void)
{
    gw_cidrs_t trusted;
    const char *bad;
    CHECK_EQ(gw_cidrs_parse(&trusted, "10.0.0.0/8", &bad), 0);
    s_expect_client(&trusted, GW_FWD_XFF, NULL, "10.0.0.1");
    s_expect_client(&trusted, GW_FWD_XFF, "203.0.113.9", "203.0.113.9");
    //  The client cannot choose: the nearest untrusted hop wins.
    s_expect_client(&trusted, GW_FWD_XFF, "6.6.6.6, 203.0.113.9",
                    "203.0.113.9");
    s_expect_client(&trusted, GW_FWD_XFF, "6.6.6.6, 203.0.113.9, 10.2.2.2",
                    "203.0.113.9");
    s_expect_client(&trusted, GW_FWD_XFF, "203.0.113.9:4711", "203.0.113.9");
    s_expect_client(&trusted, GW_FWD_XFF, "[2001:db8::5]:80", "2001:db8::5");
    s_expect_client(&trusted, GW_FWD_XFF, "2001:db8::5", "2001:db8::5");
    //  Garbage at the nearest hop: the proxy itself is the client.
    s_expect_client(&trusted, GW_FWD_XFF, "203.0.113.9, junk", "10.0.0.1");
    s_expect_client(&trusted, GW_FWD_XFF, "", "10.0.0.1");
    //  Only trusted hops: the farthest one.
    s_expect_client(&trusted, GW_FWD_XFF, "10.3.3.3, 10.2.2.2", "10.3.3.3");
    s_expect_client(&trusted, GW_FWD_FORWARDED,
                    "for=6.6.6.6, for=203.0.113.9;proto=https", "203.0.113.9");
    s_expect_client(&trusted, GW_FWD_FORWARDED,
                    "proto=http;For=\"[2001:db8::7]:4711\"", "2001:db8::7");
    s_expect_client(&trusted, GW_FWD_FORWARDED, "for=unknown", "10.0.0.1");
    s_expect_client(&trusted, GW_FWD_FORWARDED, "by=10.0.0.1", "10.0.0.1");
}

static gw_limit_config_t
s_config(void)
{
    gw_limit_config_t c;
    memset(&c, 0, sizeof c);
    c.user_rate = 20;
    c.user_burst = 100;
    c.addr_rate = 100;
    c.addr_burst = 400;
    c.addr_conns = 4;
    c.capacity = 16384;
    return c;
}

//  How many of n requests by sub at now are allowed.
static int
s_user_burst(gw_limit_t *l, const char *sub, int n, int64_t now)
{
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += gw_limit_user(l, sub, now);
    return ok;
}

static void
s_test_buckets(void)
{
    gw_limit_config_t c = s_config();
    gw_limit_t *l = gw_limit_new(&c);
    CHECK(l);
    int64_t t = 1000000;
    //  300 distinct users at the same instant: every one gets in.
    char sub[32];
    for (int i = 0; i < 300; i++) {
        snprintf(sub, sizeof sub, "user-%d", i);
        CHECK(gw_limit_user(l, sub, t));
    }
    //  One user's burst of 600: the bucket's 100 pass, the rest do not;
    //  another user is not affected.
    CHECK_EQ(s_user_burst(l, "flood", 600, t), 100);
    CHECK(gw_limit_user(l, "user-0", t));
    //  Refill at 20/s: 50 ms gives one more, 5 s gives the full bucket.
    CHECK(!gw_limit_user(l, "flood", t + 10));
    CHECK(gw_limit_user(l, "flood", t + 60));
    CHECK(!gw_limit_user(l, "flood", t + 60));
    CHECK_EQ(s_user_burst(l, "flood", 600, t + 60 + 5000), 100);

    //  Addresses: one bucket per IPv4 address, one per IPv6 /64.
    gw_addr_t a = s_addr("192.0.2.1"), b = s_addr("192.0.2.2");
    int ok = 0;
    for (int i = 0; i < 500; i++)
        ok += gw_limit_addr(l, &a, t);
    CHECK_EQ(ok, 400);
    CHECK(gw_limit_addr(l, &b, t));
    gw_addr_t v6a = s_addr("2001:db8:1:1::1"), v6b = s_addr("2001:db8:1:1::2"),
              v6c = s_addr("2001:db8:1:2::1");
    for (int i = 0; i < 400; i++)
        CHECK(gw_limit_addr(l, &v6a, t));
    CHECK(!gw_limit_addr(l, &v6b, t));  //  same /64
    CHECK(gw_limit_addr(l, &v6c, t));   //  next /64
    gw_limit_destroy(&l);
    CHECK(l == NULL);

    //  Rate 0 switches a kind off.
    c.user_rate = 0;
    l = gw_limit_new(&c);
    CHECK_EQ(s_user_burst(l, "flood", 1000, t), 1000);
    gw_limit_destroy(&l);
}

static uint64_t
s_same_hash(const uint8_t *key, size_t len)
{
    (void)key;
    (void)len;
    return 42;
}

static void
s_test_collisions(void)
{
    //  Every key hashes alike: they must still never share a bucket.
    gw_limit_config_t c = s_config();
    c.hash = s_same_hash;
    gw_limit_t *l = gw_limit_new(&c);
    CHECK(l);
    int64_t t = 5000;
    gw_addr_t a = s_addr("198.51.100.1"), b = s_addr("198.51.100.2");
    int ok = 0;
    for (int i = 0; i < 401; i++)
        ok += gw_limit_addr(l, &a, t);
    CHECK_EQ(ok, 400);
    CHECK(gw_limit_addr(l, &b, t));   //  b has its own full bucket
    CHECK(!gw_limit_addr(l, &a, t));  //  and a's stays empty
    //  A subject whose bytes equal an address key is another key still.
    CHECK(gw_limit_user(l, "198.51.100.1", t));

    //  More colliding keys than the window holds: idle buckets are
    //  recycled first, a busy one is kept while idle ones remain.
    char sub[32];
    for (int i = 0; i < 40; i++) {
        snprintf(sub, sizeof sub, "u%d", i);
        CHECK(gw_limit_user(l, sub, t + 10000 + i));
    }
    //  Connections pin their slot: a counted address is never evicted.
    gw_limit_destroy(&l);
    l = gw_limit_new(&c);
    CHECK(gw_limit_conn_open(l, &a, t));
    for (int i = 0; i < 40; i++) {
        snprintf(sub, sizeof sub, "v%d", i);
        gw_limit_user(l, sub, t + i);
    }
    CHECK_EQ(gw_limit_conns(l, &a), 1);
    gw_limit_destroy(&l);
}

static void
s_test_conns(void)
{
    gw_cidrs_t trusted;
    const char *bad;
    CHECK_EQ(gw_cidrs_parse(&trusted, "10.0.0.5", &bad), 0);
    gw_limit_config_t c = s_config();
    c.trusted = &trusted;
    gw_limit_t *l = gw_limit_new(&c);
    CHECK(l);
    gw_addr_t a = s_addr("192.0.2.1"), b = s_addr("192.0.2.2"),
              proxy = s_addr("10.0.0.5");
    for (int i = 0; i < 4; i++) {
        CHECK(gw_limit_conn_room(l, &a));
        CHECK(gw_limit_conn_open(l, &a, 0));
    }
    CHECK(!gw_limit_conn_room(l, &a));
    CHECK(!gw_limit_conn_open(l, &a, 0));
    CHECK_EQ(gw_limit_conns(l, &a), 4);
    CHECK(gw_limit_conn_open(l, &b, 0));  //  another address: room
    gw_limit_conn_close(l, &a);
    CHECK(gw_limit_conn_room(l, &a));
    CHECK(gw_limit_conn_open(l, &a, 0));
    //  A trusted proxy is not capped (and not counted).
    CHECK(gw_limit_trusted(l, &proxy));
    CHECK(!gw_limit_trusted(l, &a));
    for (int i = 0; i < 100; i++)
        CHECK(gw_limit_conn_open(l, &proxy, 0));
    CHECK_EQ(gw_limit_conns(l, &proxy), 0);
    gw_limit_destroy(&l);
}

static int s_closed[16];
static int s_nclosed;

static void
s_close_fd(void *arg, int fd)
{
    CHECK(arg == (void *)s_closed);
    CHECK(s_nclosed < 16);
    s_closed[s_nclosed++] = fd;
}

static void
s_test_deadlines(void)
{
    gw_conns_t *cs = gw_conns_new(10000, 60000);
    CHECK(cs);
    gw_addr_t a = s_addr("192.0.2.1");
    //  Slow headers: closed 10 s after the accept, once.
    gw_conn_t *slow = gw_conns_open(cs, &a, 7, 0);
    gw_conn_t *fast = gw_conns_open(cs, &a, 8, 0);
    CHECK(slow && fast);
    CHECK_EQ(gw_conns_count(cs), 2);
    CHECK(gw_conn_peer(slow)->family == 4);
    gw_conn_request(cs, slow, 9000);  //  the line late: still from accept
    gw_conn_received(fast);
    CHECK_EQ(gw_conns_expire(cs, 9999, s_close_fd, s_closed), 0);
    CHECK_EQ(gw_conns_expire(cs, 10000, s_close_fd, s_closed), 1);
    CHECK_EQ(s_closed[0], 7);
    CHECK_EQ(gw_conns_expire(cs, 20000, s_close_fd, s_closed), 0);
    gw_conns_close(cs, &slow);
    CHECK(slow == NULL);
    //  Answering takes as long as it takes (an event stream).
    CHECK_EQ(gw_conns_expire(cs, 1000000, s_close_fd, s_closed), 0);
    //  Kept alive: the idle wait, then header time from the request line.
    gw_conn_idle(cs, fast, 1000000);
    CHECK_EQ(gw_conns_expire(cs, 1059999, s_close_fd, s_closed), 0);
    gw_conn_request(cs, fast, 1059000);
    CHECK_EQ(gw_conns_expire(cs, 1068999, s_close_fd, s_closed), 0);
    CHECK_EQ(gw_conns_expire(cs, 1069000, s_close_fd, s_closed), 1);
    CHECK_EQ(s_closed[1], 8);
    //  Idle past idle_timeout without a request line: closed.
    gw_conn_idle(cs, fast, 2000000);
    CHECK_EQ(gw_conns_expire(cs, 2060000, s_close_fd, s_closed), 1);
    gw_conns_destroy(&cs);  //  frees what is still registered
    CHECK(cs == NULL);
}

int
main(void)
{
    s_test_addr();
    s_test_cidrs();
    s_test_forwarded();
    s_test_buckets();
    s_test_collisions();
    s_test_conns();
    s_test_deadlines();
    printf("test_gateway_limit: ok\n");
    return 0;
}
