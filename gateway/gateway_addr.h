/*  gateway_addr: client addresses as the limits see them. Numeric IPv4
    and IPv6 addresses (IPv4-mapped IPv6 counts as IPv4), CIDR lists (the
    trusted proxies), and the client address a trusted proxy names in
    X-Forwarded-For or Forwarded. Pure functions: no MHD, no clock, no
    locks. */
#ifndef GATEWAY_ADDR_H_INCLUDED
#define GATEWAY_ADDR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GW_ADDR_TEXT_MAX 48  //  formatted address with NUL
#define GW_CIDRS_MAX     32  //  entries in a CIDR list

typedef struct {
    uint8_t family;     //  4, 6, or 0 = not an IP peer (unix socket)
    uint8_t bytes[16];  //  IPv4 in the first 4 bytes; the rest zero
} gw_addr_t;

typedef struct {
    gw_addr_t net;   //  network address (host bits cleared)
    uint8_t prefix;  //  prefix length in bits
} gw_cidr_t;

typedef struct {
    int count;
    gw_cidr_t cidr[GW_CIDRS_MAX];
} gw_cidrs_t;

//  Which header a trusted proxy writes the client address into.
typedef enum {
    GW_FWD_XFF = 0,   //  X-Forwarded-For: a, b, c
    GW_FWD_FORWARDED  //  Forwarded: for=a;proto=http, for="[b]:80"
} gw_fwd_t;

//  The address of sa (AF_INET, AF_INET6; anything else gives family 0).
void gw_addr_from_sockaddr(gw_addr_t *addr, const struct sockaddr *sa);

//  Parse a numeric address of len bytes ("192.0.2.1", "2001:db8::1").
//  0, or -1 when it is not one.
int gw_addr_parse(gw_addr_t *addr, const char *text, size_t len);

//  Text form of addr into buf (at least GW_ADDR_TEXT_MAX bytes).
void gw_addr_format(const gw_addr_t *addr, char *buf, size_t cap);

//  The bytes that name addr's owner for the limits: IPv4 whole, IPv6 by
//  its /64 (one customer network). Writes up to 9 bytes into key (family
//  first) and returns their count.
size_t gw_addr_key(const gw_addr_t *addr, uint8_t key[9]);

//  Parse a comma list of CIDRs or plain addresses ("10.0.0.0/8, ::1").
//  An empty list is valid (no entries). 0, or -1 with *bad pointing at
//  the entry that is not valid (or the list is longer than GW_CIDRS_MAX).
int gw_cidrs_parse(gw_cidrs_t *list, const char *text, const char **bad);

//  True if addr is inside one of the list's networks.
bool gw_cidrs_match(const gw_cidrs_t *list, const gw_addr_t *addr);

//  The client behind a trusted proxy. header is the value of the `kind`
//  header as the proxy passed it (several headers joined with ", "), or
//  NULL. Walks the hops from the right (nearest) end and skips addresses
//  that are themselves trusted proxies; the first other address is the
//  client. When the header is absent, malformed at the hop that matters,
//  or names only trusted proxies, the client is the nearest address that
//  could be read (at worst peer itself). peer must be trusted: the
//  caller checks gw_cidrs_match(trusted, peer) first.
void gw_addr_forwarded(const gw_cidrs_t *trusted, const gw_addr_t *peer,
                       gw_fwd_t kind, const char *header, gw_addr_t *client);

#endif
