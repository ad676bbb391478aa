/* hostile_bigfd: sockets on descriptor numbers beyond what the process could open at start.
 *
 * usage: hostile_bigfd raise TOKEN FAMILY DST PORT OTHER_IF OTHER_SRC HIGH
 *        hostile_bigfd inherited TOKEN FAMILY DST PORT OTHER_IF OTHER_SRC HIGH
 *        hostile_bigfd launch HIGH FAMILY LIMIT CMD [ARGS...]
 *   FAMILY 4|6; OTHER_IF another PvD's interface index (0: skip); OTHER_SRC an IPv6
 *   address of another PvD ("-": skip); HIGH the descriptor number to use (e.g. 5000)
 *
 * raise: started with a low hard RLIMIT_NOFILE (prlimit), it raises the limit to 8192:8192
 * (needs CAP_SYS_RESOURCE), dup2()s a fresh UDP socket to HIGH (and fcntl(F_DUPFD)s another
 * to HIGH+100).  inherited: the socket HIGH was opened by "launch" (unscoped), which then
 * lowered its own limit to LIMIT:LIMIT (allowed to anyone) and executed CMD: the descriptor
 * stays open above the limit.  Then, on HIGH: sendmsg with IP(V6)_PKTINFO naming OTHER_IF or
 * OTHER_SRC (the socket's first operation, then again once a plain datagram has tied it),
 * and plain datagrams.  Output "CASE ok|ERRNO_NAME"; datagrams carry "TOKEN:CASE;". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *token;
static int family, other_if, with_src;
static struct sockaddr_storage dst;
static socklen_t dst_len;
static struct in6_addr other_src6;

static void result(const char *name, long rc)
{
    const char *e = rc < 0 ? strerrorname_np(errno) : "ok";
    printf("%s %s\n", name, e ? e : "E?");
    fflush(stdout);
}

static void plain(int fd, const char *name)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%s:%s;", token, name);
    result(name, sendto(fd, text, (size_t)n, 0, (struct sockaddr *)&dst, dst_len));
}

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

static int launch(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s launch HIGH FAMILY LIMIT CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    int high = atoi(argv[2]);
    int s = socket(atoi(argv[3]) == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || dup2(s, high) != high) {
        perror("launch: socket/dup2");
        return 3;
    }
    close(s);
    struct rlimit rl = {.rlim_cur = (rlim_t)atoi(argv[4]), .rlim_max = (rlim_t)atoi(argv[4])};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        perror("launch: setrlimit");
        return 3;
    }
    execvp(argv[5], argv + 5);
    perror("launch: exec");
    return 127;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "launch") == 0)
        return launch(argc, argv);
    if (argc != 9 || (strcmp(argv[1], "raise") != 0 && strcmp(argv[1], "inherited") != 0)) {
        fprintf(stderr, "usage: %s raise|inherited TOKEN FAMILY DST PORT OTHER_IF OTHER_SRC HIGH\n", argv[0]);
        return 2;
    }
    int raise = strcmp(argv[1], "raise") == 0;
    argv++;
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
    other_if = atoi(argv[5]);
    with_src = strcmp(argv[6], "-") != 0 && inet_pton(AF_INET6, argv[6], &other_src6) == 1;
    int high = atoi(argv[7]);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("start_hard_limit %llu\n", (unsigned long long)rl.rlim_max);
    int fd = high;
    if (raise) {
        rl.rlim_cur = rl.rlim_max = 8192;
        result("raise", setrlimit(RLIMIT_NOFILE, &rl));
        int s = socket(family, SOCK_DGRAM, 0);
        fd = dup2(s, high);
        result("dup2", fd);
        close(s);
        if (fd < 0)
            return 3;
    } else {
        int type = 0;
        socklen_t len = sizeof type;
        result("inherited", getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len));
    }
    escapes(fd, "high_first"); /* the socket's first operation */
    plain(fd, "high_send");
    escapes(fd, "high_tied");
    plain(fd, "high_send_again");
    close(fd);

    if (raise) {
        int s = socket(family, SOCK_DGRAM, 0);
        int fd2 = fcntl(s, F_DUPFD, high + 100);
        result("dupfd", fd2);
        close(s);
        if (fd2 < 0)
            return 3;
        printf("dupfd_number %s\n", fd2 >= high + 100 ? "high" : "low");
        escapes(fd2, "dupfd_first");
        plain(fd2, "dupfd_send");
        close(fd2);
    }
    puts("done");
    return 0;
}
