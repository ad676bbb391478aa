/* hostile.h: what the hostile programs (tests/c/hostile_*.c) share -- the output line of a
 * case, sockets a program cannot do without, addresses from the command line, datagrams
 * carrying "TOKEN:CASE;", one-message sends and packet-information control messages.
 *
 * Header only (static inline): each program is still compiled from its one .c file
 * (tests/fixtures/hostile_lab.py, tests/test_shim_preinit_scope.py), with -Wall -Wextra -Werror. */
#ifndef HOSTILE_H
#define HOSTILE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Print "NAME ok" (rc >= 0) or "NAME ERRNO_NAME" (errno's), and flush. */
static inline void hostile_result(const char *name, long rc)
{
    const char *e = rc < 0 ? strerrorname_np(errno) : "ok";
    printf("%s %s\n", name, e ? e : "E?");
    fflush(stdout);
}

/* socket(); when it fails the program prints "socket ERRNO_NAME" and exits 3. */
static inline int hostile_socket(int family, int type, int protocol)
{
    int fd = socket(family, type, protocol);
    if (fd < 0) {
        hostile_result("socket", -1);
        exit(3);
    }
    return fd;
}

/* ADDR and PORT as a socket address of family (AF_INET or AF_INET6) in *ss: its length, or 0
 * when ADDR is not an address of that family. */
static inline socklen_t hostile_sockaddr(int family, const char *addr, int port,
                                         struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        return inet_pton(AF_INET, addr, &a->sin_addr) == 1 ? sizeof *a : 0;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((unsigned short)port);
    return inet_pton(AF_INET6, addr, &a->sin6_addr) == 1 ? sizeof *a : 0;
}

/* The IPv6 socket address ADDR, port, scope ID; a bad ADDR ends the program (exit 2). */
static inline struct sockaddr_in6 hostile_sa6(const char *addr, int port, unsigned int scope)
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

/* "TOKEN:NAME;" into text (size octets); returns its length. */
static inline size_t hostile_text(char *text, size_t size, const char *token, const char *name)
{
    int n = snprintf(text, size, "%s:%s;", token, name);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* sendmmsg() of the one message *msg, with sendmsg()'s result: -1 and errno on failure, and
 * EIO when it sent nothing without an error (not expected). */
static inline int hostile_sendmmsg1(int fd, const struct msghdr *msg)
{
    struct mmsghdr m;
    memset(&m, 0, sizeof m);
    m.msg_hdr = *msg;
    int rc = sendmmsg(fd, &m, 1, 0);
    if (rc == 0) {
        errno = EIO;
        rc = -1;
    }
    return rc;
}

enum hostile_how { HOSTILE_SENDTO, HOSTILE_SENDMSG, HOSTILE_SENDMMSG };

/* Send the len octets of buf to `to` (tolen octets; NULL and 0: the connected peer) with
 * sendto, sendmsg or sendmmsg (one message), and print the result as NAME. */
static inline void hostile_send_by(int fd, enum hostile_how how, const char *name, const void *buf,
                                   size_t len, const void *to, socklen_t tolen)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = (void *)to;
    msg.msg_namelen = tolen;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (how == HOSTILE_SENDTO)
        hostile_result(name, sendto(fd, buf, len, 0, (const struct sockaddr *)to, tolen));
    else if (how == HOSTILE_SENDMSG)
        hostile_result(name, sendmsg(fd, &msg, 0));
    else
        hostile_result(name, hostile_sendmmsg1(fd, &msg));
}

/* sendto() of "TOKEN:NAME;" to `to` (NULL and 0: the connected peer); prints the result. */
static inline void hostile_send_named(int fd, const char *token, const char *name, const void *to,
                                      socklen_t tolen)
{
    char text[160];
    size_t n = hostile_text(text, sizeof text, token, name);
    hostile_send_by(fd, HOSTILE_SENDTO, name, text, n, to, tolen);
}

/* sendmsg() (mmsg: sendmmsg() of one message) of "TOKEN:NAME;" to `to` with one control
 * message: level, type and the len octets at data (at most a sockaddr_in6); prints the result. */
static inline void hostile_send_cmsg(int fd, const char *token, const char *name, const void *to,
                                     socklen_t tolen, int level, int type, const void *data,
                                     size_t len, int mmsg)
{
    char text[160];
    union {
        char buf[CMSG_SPACE(sizeof(struct sockaddr_in6))];
        struct cmsghdr align;
    } control;
    if (len > sizeof(struct sockaddr_in6)) {
        fprintf(stderr, "control message too long\n");
        exit(2);
    }
    size_t n = hostile_text(text, sizeof text, token, name);
    struct iovec iov = {.iov_base = text, .iov_len = n};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_name = (void *)to;
    msg.msg_namelen = tolen;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(len);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), data, len);
    hostile_result(name, mmsg ? hostile_sendmmsg1(fd, &msg) : sendmsg(fd, &msg, 0));
}

/* "TOKEN:NAME;" to `to` with IP_PKTINFO (family AF_INET) or IPV6_PKTINFO naming ifindex and,
 * for IPv6, the source src (NULL: none); prints the result. */
static inline void hostile_pktinfo(int fd, const char *token, const char *name, int family,
                                   const void *to, socklen_t tolen, int ifindex,
                                   const struct in6_addr *src)
{
    if (family == AF_INET) {
        struct in_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi_ifindex = ifindex;
        hostile_send_cmsg(fd, token, name, to, tolen, IPPROTO_IP, IP_PKTINFO, &info, sizeof info, 0);
    } else {
        struct in6_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi6_ifindex = (unsigned int)ifindex;
        if (src)
            info.ipi6_addr = *src;
        hostile_send_cmsg(fd, token, name, to, tolen, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof info, 0);
    }
}

/* The escapes by packet information on fd, named PREFIX_pktinfo_if (another PvD's interface
 * other_if; 0: skipped) and PREFIX_pktinfo_src (another PvD's IPv6 source other_src; NULL:
 * skipped). */
static inline void hostile_escapes(int fd, const char *token, const char *prefix, int family,
                                   const void *to, socklen_t tolen, int other_if,
                                   const struct in6_addr *other_src)
{
    char name[96];
    if (other_if) {
        snprintf(name, sizeof name, "%s_pktinfo_if", prefix);
        hostile_pktinfo(fd, token, name, family, to, tolen, other_if, NULL);
    }
    if (other_src) {
        snprintf(name, sizeof name, "%s_pktinfo_src", prefix);
        hostile_pktinfo(fd, token, name, family, to, tolen, 0, other_src);
    }
}

#endif
