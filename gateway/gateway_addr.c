/*  gateway_addr: numeric addresses with inet_pton, CIDR matching by
    prefix bits, and a right-to-left walk over forwarding headers. */
#include "gateway_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_TEXT_MAX 64  //  longest address text we try to parse

static const uint8_t s_v4_mapped[12] = {0, 0, 0, 0, 0,    0,
                                        0, 0, 0, 0, 0xff, 0xff};

//  IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 peer it stands for.
static void
s_set_v6(gw_addr_t *addr, const uint8_t bytes[16])
{
    memset(addr, 0, sizeof *addr);
    if (memcmp(bytes, s_v4_mapped, sizeof s_v4_mapped) == 0) {
        addr->family = 4;
        memcpy(addr->bytes, bytes + 12, 4);
    } else {
        addr->family = 6;
        memcpy(addr->bytes, bytes, 16);
    }
}

void
gw_addr_from_sockaddr(gw_addr_t *addr, const struct sockaddr *sa)
{
    memset(addr, 0, sizeof *addr);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in =
            (const struct sockaddr_in *)(const void *)sa;
        addr->family = 4;
        memcpy(addr->bytes, &in->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 =
            (const struct sockaddr_in6 *)(const void *)sa;
        s_set_v6(addr, in6->sin6_addr.s6_addr);
    }
}

int
gw_addr_parse(gw_addr_t *addr, const char *text, size_t len)
{
    char buf[S_TEXT_MAX];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    uint8_t bytes[16];
    if (inet_pton(AF_INET, buf, bytes) == 1) {
        memset(addr, 0, sizeof *addr);
        addr->family = 4;
        memcpy(addr->bytes, bytes, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, bytes) == 1) {
        s_set_v6(addr, bytes);
        return 0;
    }
    return -1;
}

void
gw_addr_format(const gw_addr_t *addr, char *buf, size_t cap)
{
    int af = addr->family == 4 ? AF_INET : AF_INET6;
    if (addr->family == 0 || !inet_ntop(af, addr->bytes, buf, (socklen_t)cap))
        snprintf(buf, cap, "local");
}

size_t
gw_addr_key(const gw_addr_t *addr, uint8_t key[9])
{
    key[0] = addr->family;
    size_t n = addr->family == 4 ? 4 : addr->family == 6 ? 8 : 0;
    memcpy(key + 1, addr->bytes, n);
    return n + 1;
}

static bool
s_space(char c)
{
    return c == ' ' || c == '\t';
}

//  Trim blanks at both ends of [*s, *s + *len).
static void
s_trim(const char **s, size_t *len)
{
    while (*len > 0 && s_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && s_space((*s)[*len - 1]))
        (*len)--;
}

int
gw_cidrs_parse(gw_cidrs_t *list, const char *text, const char **bad)
{
    memset(list, 0, sizeof *list);
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *entry = p;
        p = comma ? comma + 1 : p + len;
        s_trim(&entry, &len);
        if (len == 0)
            continue;
        *bad = entry;
        if (list->count == GW_CIDRS_MAX)
            return -1;
        gw_cidr_t *c = &list->cidr[list->count];
        const char *slash = memchr(entry, '/', len);
        size_t alen = slash ? (size_t)(slash - entry) : len;
        if (gw_addr_parse(&c->net, entry, alen) != 0)
            return -1;
        int max = c->net.family == 4 ? 32 : 128;
        int prefix = max;
        if (slash) {
            char digits[4];
            size_t dlen = len - alen - 1;
            if (dlen == 0 || dlen >= sizeof digits)
                return -1;
            memcpy(digits, slash + 1, dlen);
            digits[dlen] = '\0';
            char *end = NULL;
            long v = strtol(digits, &end, 10);
            if (*end || v < 0 || v > max)
                return -1;
            prefix = (int)v;
        }
        c->prefix = (uint8_t)prefix;
        //  Clear the host bits so matching compares networks only.
        for (int bit = prefix; bit < max; bit++)
            c->net.bytes[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
        list->count++;
    }
    *bad = NULL;
    return 0;
}

static bool
s_in(const gw_cidr_t *c, const gw_addr_t *addr)
{
    if (c->net.family != addr->family)
        return false;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->net.bytes, addr->bytes, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (c->net.bytes[full] & mask) == (addr->bytes[full] & mask);
}

bool
gw_cidrs_match(const gw_cidrs_t *list, const gw_addr_t *addr)
{
    for (int i = 0; i < list->count; i++)
        if (s_in(&list->cidr[i], addr))
            return true;
    return false;
}

//  One hop of a forwarding header: "a", "a:port", "v6", "[v6]", "[v6]:port".
static int
s_parse_node(const char *s, size_t len, gw_addr_t *addr)
{
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return -1;
        return gw_addr_parse(addr, s + 1, (size_t)(close - s - 1));
    }
    const char *colon = memchr(s, ':', len);
    //  Exactly one colon: IPv4 with a port. More: a bare IPv6 address.
    if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        len = (size_t)(colon - s);
    return gw_addr_parse(addr, s, len);
}

//  The `for=` value of one Forwarded element ("for=a;proto=http").
static int
s_parse_forwarded(const char *s, size_t len, gw_addr_t *addr)
{
    const char *end = s + len;
    while (s < end) {
        const char *semi = memchr(s, ';', (size_t)(end - s));
        const char *stop = semi ? semi : end;
        const char *pair = s;
        size_t plen = (size_t)(stop - s);
        s_trim(&pair, &plen);
        if (plen > 4 && strncasecmp(pair, "for=", 4) == 0) {
            const char *v = pair + 4;
            size_t vlen = plen - 4;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            return s_parse_node(v, vlen, addr);
        }
        s = stop + 1;
    }
    return -1;
}

static int
s_parse_hop(const char *s, size_t len, gw_fwd_t kind, gw_addr_t *addr)
{
    s_trim(&s, &len);
    if (kind == GW_FWD_FORWARDED)
        return s_parse_forwarded(s, len, addr);
    return s_parse_node(s, len, addr);
}

void
gw_addr_forwarded(const gw_cidrs_t *trusted, const gw_addr_t *peer,
                  gw_fwd_t kind, const char *header, gw_addr_t *client)
{
    *client = *peer;
    if (!header)
        return;
    size_t end = strlen(header);
    //  Hops from the nearest (rightmost) one outwards.
    while (true) {
        size_t start = end;
        while (start > 0 && header[start - 1] != ',')
            start--;
        gw_addr_t hop;
        if (s_parse_hop(header + start, end - start, kind, &hop) != 0)
            return;
        *client = hop;
        if (!gw_cidrs_match(trusted, &hop) || start == 0)
            return;
        end = start - 1;
    }
}
