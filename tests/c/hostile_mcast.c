/* hostile_mcast: joining multicast groups on another interface than the PvD's.
 *
 * usage: hostile_mcast TAG OTHER_IF OWN_IF OTHER_ADDR4 SHARED_ADDR4 HOLD_MS
 *   TAG 1-250 (makes the groups unique); OTHER_ADDR4 an IPv4 address only the other
 *   interface has; SHARED_ADDR4 one both interfaces have
 *
 * Each case joins its own group on a new socket (kept open): IPv4 group 239.77.TAG.N,
 * IPv6 group ff15::4d:TAG:N (TAG and N in hex there), N being the case's number below.  The
 * membership reports (IGMPv3, MLDv2) the kernel sends then tell on which link each group
 * was joined.  After the last case the program holds its memberships HOLD_MS ms.  Output
 * "CASE ok|ERRNO_NAME". */
#define _GNU_SOURCE
#include "hostile.h"

#include <net/if.h>
#include <time.h>
#include <unistd.h>

static int tag, other_if, own_if;
static struct in_addr other_addr, shared_addr;

static struct in_addr group4(int n)
{
    char text[32];
    struct in_addr a;
    snprintf(text, sizeof text, "239.77.%d.%d", tag, n);
    inet_pton(AF_INET, text, &a);
    return a;
}

static struct in6_addr group6(int n)
{
    char text[64];
    struct in6_addr a;
    snprintf(text, sizeof text, "ff15::4d:%x:%x", (unsigned int)tag, (unsigned int)n);
    inet_pton(AF_INET6, text, &a);
    return a;
}

static int sock(int family)
{
    return hostile_socket(family, SOCK_DGRAM, 0); /* never closed: the membership lasts until exit */
}

/* Tie a socket first: a datagram to the case's own group (multicast leaves through the
 * socket's interface). */
static void tie(int fd, int family, int n, const char *name)
{
    if (family == AF_INET) {
        struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = group4(n)};
        hostile_result(name, sendto(fd, "tie", 3, 0, (struct sockaddr *)&d, sizeof d));
    } else {
        struct sockaddr_in6 d = {.sin6_family = AF_INET6, .sin6_port = htons(9), .sin6_addr = group6(n)};
        hostile_result(name, sendto(fd, "tie", 3, 0, (struct sockaddr *)&d, sizeof d));
    }
}

static void mreqn(const char *name, int n, int ifindex, int tied)
{
    int fd = sock(AF_INET);
    if (tied)
        tie(fd, AF_INET, n, "mreqn_tie");
    struct ip_mreqn m;
    memset(&m, 0, sizeof m);
    m.imr_multiaddr = group4(n);
    m.imr_ifindex = ifindex;
    hostile_result(name, setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m));
}

static void mreq(const char *name, int n, struct in_addr interface)
{
    int fd = sock(AF_INET);
    struct ip_mreq m = {.imr_multiaddr = group4(n), .imr_interface = interface};
    hostile_result(name, setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m));
}

static void mreq_source(const char *name, int n, struct in_addr interface)
{
    int fd = sock(AF_INET);
    struct ip_mreq_source m;
    memset(&m, 0, sizeof m);
    m.imr_multiaddr = group4(n);
    m.imr_interface = interface;
    inet_pton(AF_INET, "198.51.100.99", &m.imr_sourceaddr);
    hostile_result(name, setsockopt(fd, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &m, sizeof m));
}

static void join6(const char *name, int n, int ifindex, int tied)
{
    int fd = sock(AF_INET6);
    if (tied)
        tie(fd, AF_INET6, n, "join6_tie");
    struct ipv6_mreq m;
    memset(&m, 0, sizeof m);
    m.ipv6mr_multiaddr = group6(n);
    m.ipv6mr_interface = (unsigned int)ifindex;
    hostile_result(name, setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m));
}

/* MCAST_JOIN_GROUP (source == 0) or MCAST_JOIN_SOURCE_GROUP, IPv4 or IPv6. */
static void mcast(const char *name, int family, int n, int ifindex, int source)
{
    int fd = sock(family);
    int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
    struct sockaddr_storage group, src;
    memset(&group, 0, sizeof group);
    memset(&src, 0, sizeof src);
    if (family == AF_INET) {
        struct sockaddr_in *g = (struct sockaddr_in *)&group, *s = (struct sockaddr_in *)&src;
        g->sin_family = s->sin_family = AF_INET;
        g->sin_addr = group4(n);
        inet_pton(AF_INET, "198.51.100.99", &s->sin_addr);
    } else {
        struct sockaddr_in6 *g = (struct sockaddr_in6 *)&group, *s = (struct sockaddr_in6 *)&src;
        g->sin6_family = s->sin6_family = AF_INET6;
        g->sin6_addr = group6(n);
        inet_pton(AF_INET6, "2001:db8:ffff::99", &s->sin6_addr);
    }
    if (!source) {
        struct group_req r;
        memset(&r, 0, sizeof r);
        r.gr_interface = (uint32_t)ifindex;
        r.gr_group = group;
        hostile_result(name, setsockopt(fd, level, MCAST_JOIN_GROUP, &r, sizeof r));
    } else {
        struct group_source_req r;
        memset(&r, 0, sizeof r);
        r.gsr_interface = (uint32_t)ifindex;
        r.gsr_group = group;
        r.gsr_source = src;
        hostile_result(name, setsockopt(fd, level, MCAST_JOIN_SOURCE_GROUP, &r, sizeof r));
    }
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s TAG OTHER_IF OWN_IF OTHER_ADDR4 SHARED_ADDR4 HOLD_MS\n", argv[0]);
        return 2;
    }
    tag = atoi(argv[1]);
    other_if = atoi(argv[2]);
    own_if = atoi(argv[3]);
    if (inet_pton(AF_INET, argv[4], &other_addr) != 1 || inet_pton(AF_INET, argv[5], &shared_addr) != 1)
        return 2;
    struct in_addr any = {.s_addr = htonl(INADDR_ANY)};

    /* another interface: refused */
    mreqn("mreqn_other", 1, other_if, 0);
    mreq("mreq_other_addr", 2, other_addr);
    join6("ipv6_join_other", 3, other_if, 0);
    mcast("mcast_join_other_v4", AF_INET, 4, other_if, 0);
    mcast("mcast_join_other_v6", AF_INET6, 5, other_if, 0);
    mreqn("mreqn_other_tied", 6, other_if, 1);
    join6("ipv6_join_other_tied", 7, other_if, 1);
    mreq_source("source_mreq_other_addr", 8, other_addr);
    mcast("mcast_source_join_other_v4", AF_INET, 9, other_if, 1);
    mcast("mcast_source_join_other_v6", AF_INET6, 10, other_if, 1);
    /* an address both interfaces have: whatever the answer, not joined on the other link */
    mreq("mreq_shared_addr", 11, shared_addr);
    /* no interface named, or the PvD's own: joined on the PvD's link */
    mreqn("mreqn_any", 20, 0, 0);
    mreq("mreq_any", 21, any);
    join6("ipv6_join_any", 22, 0, 0);
    mcast("mcast_join_any_v4", AF_INET, 23, 0, 0);
    mcast("mcast_join_any_v6", AF_INET6, 24, 0, 0);
    mreqn("mreqn_own", 25, own_if, 0);
    join6("ipv6_join_own", 26, own_if, 0);
    mreq_source("source_mreq_any", 27, any);
    mcast("mcast_source_join_any_v6", AF_INET6, 28, 0, 1);

    struct timespec hold = {.tv_sec = atoi(argv[6]) / 1000, .tv_nsec = (atoi(argv[6]) % 1000) * 1000000L};
    nanosleep(&hold, NULL);
    puts("done");
    return 0;
}
