/* hostile_pktinfo2292: the RFC 2292 spellings of IPv6 packet information, and next hops.
 *
 * usage: hostile_pktinfo2292 TOKEN DST6 PORT OTHER_SRC6 OTHER_IF NEXTHOP6
 *   OTHER_SRC6  an address of another PvD (a source that is not this PvD's)
 *   OTHER_IF    another PvD's interface index (0: no such interface, skip those cases)
 *   NEXTHOP6    a router of another PvD (link-local: scope OTHER_IF when given)
 *
 * On fresh sockets (each case the socket's first operation) and on a socket tied by a
 * first datagram to DST6: sendmsg/sendmmsg with an IPV6_2292PKTINFO (cmsg type 2) control
 * message naming OTHER_SRC6 or OTHER_IF; setsockopt IPV6_2292PKTOPTIONS carrying such a
 * control message; IPV6_NEXTHOP as a control message and as a socket option; and, for
 * reference, the RFC 3542 IPV6_PKTINFO with OTHER_SRC6.  Output: "CASE ok|ERRNO_NAME";
 * datagrams carry "TOKEN:CASE;". */
#define _GNU_SOURCE
#include "hostile.h"

#include <unistd.h>

#ifndef IPV6_2292PKTINFO
#define IPV6_2292PKTINFO 2
#endif
#ifndef IPV6_2292PKTOPTIONS
#define IPV6_2292PKTOPTIONS 6
#endif
#ifndef IPV6_NEXTHOP
#define IPV6_NEXTHOP 9
#endif

static const char *token;
static struct sockaddr_in6 dst, nexthop;
static struct in6_pktinfo by_src, by_if;
static int other_if;

static int udp6(void)
{
    return hostile_socket(AF_INET6, SOCK_DGRAM, 0);
}

/* sendmsg (or sendmmsg) of "TOKEN:NAME;" to dst with one IPPROTO_IPV6 control message. */
static void send_cmsg(int fd, const char *name, int type, const void *data, size_t len, int mmsg)
{
    hostile_send_cmsg(fd, token, name, &dst, sizeof dst, IPPROTO_IPV6, type, data, len, mmsg);
}

/* setsockopt IPV6_2292PKTOPTIONS whose value is one IPV6_2292PKTINFO control message. */
static void set_pktoptions(int fd, const char *name, const struct in6_pktinfo *info)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct cmsghdr *c = &control.align;
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_2292PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof *info);
    memcpy(CMSG_DATA(c), info, sizeof *info);
    hostile_result(name, setsockopt(fd, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, control.buf, sizeof control.buf));
}

static void plain_send(int fd, const char *name)
{
    hostile_send_named(fd, token, name, &dst, sizeof dst);
}

/* Every hostile case on fd (fresh: fd < 0, a new socket per case). */
static void cases(const char *state, int tied)
{
    char name[96];
#define CASE(label, call)                                                     \
    do {                                                                      \
        int fd_ = tied >= 0 ? tied : udp6();                                  \
        snprintf(name, sizeof name, "%s_%s", state, label);                   \
        call;                                                                 \
        if (tied < 0)                                                         \
            close(fd_);                                                       \
    } while (0)
    CASE("sendmsg_2292pktinfo_src", send_cmsg(fd_, name, IPV6_2292PKTINFO, &by_src, sizeof by_src, 0));
    CASE("sendmmsg_2292pktinfo_src", send_cmsg(fd_, name, IPV6_2292PKTINFO, &by_src, sizeof by_src, 1));
    CASE("sendmsg_pktinfo_src", send_cmsg(fd_, name, IPV6_PKTINFO, &by_src, sizeof by_src, 0));
    CASE("setsockopt_2292pktoptions_src", set_pktoptions(fd_, name, &by_src));
    if (other_if) {
        CASE("sendmsg_2292pktinfo_if", send_cmsg(fd_, name, IPV6_2292PKTINFO, &by_if, sizeof by_if, 0));
        CASE("setsockopt_2292pktoptions_if", set_pktoptions(fd_, name, &by_if));
    }
    CASE("sendmsg_nexthop", send_cmsg(fd_, name, IPV6_NEXTHOP, &nexthop, sizeof nexthop, 0));
    CASE("setsockopt_nexthop",
         hostile_result(name, setsockopt(fd_, IPPROTO_IPV6, IPV6_NEXTHOP, &nexthop, sizeof nexthop)));
    CASE("send_after", plain_send(fd_, name));
#undef CASE
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s TOKEN DST6 PORT OTHER_SRC6 OTHER_IF NEXTHOP6\n", argv[0]);
        return 2;
    }
    token = argv[1];
    dst = hostile_sa6(argv[2], atoi(argv[3]), 0);
    other_if = atoi(argv[5]);
    memset(&by_src, 0, sizeof by_src);
    by_src.ipi6_addr = hostile_sa6(argv[4], 0, 0).sin6_addr;
    memset(&by_if, 0, sizeof by_if);
    by_if.ipi6_ifindex = (unsigned int)other_if;
    nexthop = hostile_sa6(argv[6], 0, (unsigned int)other_if);

    cases("fresh", -1);
    int fd = udp6();
    plain_send(fd, "tie");
    cases("tied", fd);
    close(fd);
    puts("done");
    return 0;
}
