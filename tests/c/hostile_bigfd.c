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
#include "hostile.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *token;
static int family, other_if, with_src;
static struct sockaddr_storage dst;
static socklen_t dst_len;
static struct in6_addr other_src6;

static void plain(int fd, const char *name)
{
    hostile_send_named(fd, token, name, &dst, dst_len);
}

static void escapes(int fd, const char *prefix)
{
    hostile_escapes(fd, token, prefix, family, &dst, dst_len, other_if, with_src ? &other_src6 : NULL);
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
    dst_len = hostile_sockaddr(family, argv[3], atoi(argv[4]), &dst);
    if (dst_len == 0)
        return 2;
    other_if = atoi(argv[5]);
    with_src = strcmp(argv[6], "-") != 0 && inet_pton(AF_INET6, argv[6], &other_src6) == 1;
    int high = atoi(argv[7]);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("start_hard_limit %llu\n", (unsigned long long)rl.rlim_max);
    int fd = high;
    if (raise) {
        rl.rlim_cur = rl.rlim_max = 8192;
        hostile_result("raise", setrlimit(RLIMIT_NOFILE, &rl));
        int s = socket(family, SOCK_DGRAM, 0);
        fd = dup2(s, high);
        hostile_result("dup2", fd);
        close(s);
        if (fd < 0)
            return 3;
    } else {
        int type = 0;
        socklen_t len = sizeof type;
        hostile_result("inherited", getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len));
    }
    escapes(fd, "high_first"); /* the socket's first operation */
    plain(fd, "high_send");
    escapes(fd, "high_tied");
    plain(fd, "high_send_again");
    close(fd);

    if (raise) {
        int s = socket(family, SOCK_DGRAM, 0);
        int fd2 = fcntl(s, F_DUPFD, high + 100);
        hostile_result("dupfd", fd2);
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
