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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static void result(const char *name, long rc)
{
    const char *e = rc < 0 ? strerrorname_np(errno) : "ok";
    printf("%s %s\n", name, e ? e : "E?");
    fflush(stdout);
}

static int udp6(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) {
        result("socket", -1);
        exit(3);
    }
    return fd;
}

/* sendmsg (or sendmmsg) of "TOKEN:NAME;" to dst with one IPPROTO_IPV6 control message. */
static void send_cmsg(int fd, const char *name, int type, const void *data, size_t len, int mmsg)
{
    char text[160];
    union {
        char buf[CMSG_SPACE(sizeof(struct sockaddr_in6))];
        struct cmsghdr align;
    } control;
    int n = snprintf(text, sizeof text, "%s:%s;", token, name);
    struct iovec iov = {.iov_base = text, .iov_len = (size_t)n};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_name = &dst;
    msg.msg_namelen = sizeof dst;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(len);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), data, len);
    if (!mmsg) {
        result(name, sendmsg(fd, &msg, 0));
        return;
    }
    struct mmsghdr m = {.msg_hdr = msg};
    int rc = sendmmsg(fd, &m, 1, 0);
    if (rc == 0) {
        errno = EIO;
        rc = -1;
    }
    result(name, rc);
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
    result(name, setsockopt(fd, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, control.buf, sizeof control.buf));
}

static void plain_send(int fd, const char *name)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%s:%s;", token, name);
    result(name, sendto(fd, text, (size_t)n, 0, (struct sockaddr *)&dst, sizeof dst));
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
         result(name, setsockopt(fd_, IPPROTO_IPV6, IPV6_NEXTHOP, &nexthop, sizeof nexthop)));
    CASE("send_after", plain_send(fd_, name));
#undef CASE
}

static struct sockaddr_in6 sa6(const char *addr, int port, unsigned int scope)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((unsigned short)port);
    a.sin6_scope_id = scope;
    if (inet_pton(AF_INET6, addr, &a.sin6_addr) != 1) {
        fprintf(stderr, "bad address %s\n", addr);
        exit(2);
    }
    return a;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s TOKEN DST6 PORT OTHER_SRC6 OTHER_IF NEXTHOP6\n", argv[0]);
        return 2;
    }
    token = argv[1];
    dst = sa6(argv[2], atoi(argv[3]), 0);
    other_if = atoi(argv[5]);
    memset(&by_src, 0, sizeof by_src);
    by_src.ipi6_addr = sa6(argv[4], 0, 0).sin6_addr;
    memset(&by_if, 0, sizeof by_if);
    by_if.ipi6_ifindex = (unsigned int)other_if;
    nexthop = sa6(argv[6], 0, (unsigned int)other_if);

    cases("fresh", -1);
    int fd = udp6();
    plain_send(fd, "tie");
    cases("tied", fd);
    close(fd);
    puts("done");
    return 0;
}
