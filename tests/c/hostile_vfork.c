/* hostile_vfork: a vfork() child rewrites descriptors before exec.
 *
 * usage: hostile_vfork TOKEN FAMILY DST PORT MODE OTHER_IF OTHER_SRC
 *   FAMILY 4|6; MODE dup2|close; OTHER_IF another PvD's interface index (0: skip);
 *   OTHER_SRC an address of another PvD ("-": skip)
 *
 * The parent opens a UDP socket and ties it (first datagram to DST), opens a second one it
 * does not use yet, and vforks.  The child (which shares the parent's memory, so any
 * state a preload library keeps in memory, but not its descriptor table) dup2()s one end of
 * an AF_UNIX socketpair (a descriptor a preload library knows as "not a network socket")
 * onto both sockets' numbers and onto the numbers the parent's next sockets will get (MODE
 * dup2), or closes them (MODE close), then execs /bin/true.  The parent then
 * sends on both sockets, with IP(V6)_PKTINFO naming OTHER_IF or OTHER_SRC, and on new
 * sockets.  Output "CASE ok|ERRNO_NAME"; datagrams carry "TOKEN:CASE;". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *token;
static int family, other_if;
static struct sockaddr_storage dst;
static socklen_t dst_len;
static struct in6_addr other_src6;
static int with_src;

static void result(const char *name, long rc)
{
    const char *e = rc < 0 ? strerrorname_np(errno) : "ok";
    printf("%s %s\n", name, e ? e : "E?");
    fflush(stdout);
}

static int udp(void)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0) {
        result("socket", -1);
        exit(3);
    }
    return fd;
}

static void plain(int fd, const char *name, int connected)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%s:%s;", token, name);
    if (connected)
        result(name, sendto(fd, text, (size_t)n, 0, NULL, 0));
    else
        result(name, sendto(fd, text, (size_t)n, 0, (struct sockaddr *)&dst, dst_len));
}

/* sendmsg with IP_PKTINFO / IPV6_PKTINFO naming ifindex and (IPv6) source src. */
static void pktinfo(int fd, const char *name, int ifindex, const struct in6_addr *src)
{
    char text[160];
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } control;
    int n = snprintf(text, sizeof text, "%s:%s;", token, name);
    struct iovec iov = {.iov_base = text, .iov_len = (size_t)n};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_name = &dst;
    msg.msg_namelen = dst_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    struct cmsghdr *c = &control.align;
    if (family == AF_INET) {
        struct in_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi_ifindex = ifindex;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(c), &info, sizeof info);
        msg.msg_controllen = CMSG_SPACE(sizeof info);
    } else {
        struct in6_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi6_ifindex = (unsigned int)ifindex;
        if (src)
            info.ipi6_addr = *src;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(c), &info, sizeof info);
        msg.msg_controllen = CMSG_SPACE(sizeof info);
    }
    result(name, sendmsg(fd, &msg, 0));
}

static void escapes(int fd, const char *prefix)
{
    char name[96];
    if (other_if) {
        snprintf(name, sizeof name, "%s_pktinfo_if", prefix);
        pktinfo(fd, name, other_if, NULL);
    }
    if (with_src) {
        snprintf(name, sizeof name, "%s_pktinfo_src", prefix);
        pktinfo(fd, name, 0, &other_src6);
    }
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s TOKEN FAMILY DST PORT MODE OTHER_IF OTHER_SRC\n", argv[0]);
        return 2;
    }
    token = argv[1];
    family = atoi(argv[2]) == 6 ? AF_INET6 : AF_INET;
    memset(&dst, 0, sizeof dst);
    if (family == AF_INET) {
        struct sockaddr_in *d = (struct sockaddr_in *)&dst;
        d->sin_family = AF_INET;
        d->sin_port = htons((unsigned short)atoi(argv[4]));
        if (inet_pton(AF_INET, argv[3], &d->sin_addr) != 1)
            return 2;
        dst_len = sizeof *d;
    } else {
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&dst;
        d->sin6_family = AF_INET6;
        d->sin6_port = htons((unsigned short)atoi(argv[4]));
        if (inet_pton(AF_INET6, argv[3], &d->sin6_addr) != 1)
            return 2;
        dst_len = sizeof *d;
    }
    const int close_mode = strcmp(argv[5], "close") == 0;
    other_if = atoi(argv[6]);
    with_src = strcmp(argv[7], "-") != 0 && inet_pton(AF_INET6, argv[7], &other_src6) == 1;

    const int tied = udp();
    plain(tied, "pre_tie", 0);
    const int fresh = udp();
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) < 0)
        return 3;
    const int local = pair[0];
    /* the numbers the parent's next two sockets will get */
    const int next1 = pair[1] + 1, next2 = pair[1] + 2;

    pid_t pid = vfork();
    if (pid == 0) {
        if (close_mode) {
            close(fresh);
            close(tied);
        } else {
            dup2(local, fresh);
            dup2(local, tied);
            dup2(local, next1);
            dup2(local, next2);
        }
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        result("vfork", -1);
        return 3;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child_exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    fflush(stdout);

    plain(fresh, "pre_fresh_send", 0);
    plain(tied, "pre_tied_send", 0);
    escapes(tied, "pre_tied");
    escapes(fresh, "pre_fresh");
    int a = udp(), b = udp();
    printf("new_fds %s\n", a == next1 && b == next2 ? "reused" : "other");
    escapes(a, "new1"); /* the hostile operation is this socket's first */
    plain(a, "new1_send", 0);
    result("new2_connect", connect(b, (struct sockaddr *)&dst, dst_len));
    plain(b, "new2_send", 1);
    escapes(b, "new2");
    close(a);
    close(b);
    close(pair[0]);
    close(pair[1]);
    puts("done");
    return 0;
}
