/* hostile_scm: sockets connected outside the PvD, handed over with SCM_RIGHTS.
 *
 * usage: hostile_scm sender FAMILY DST UDP_PORT TCP_PORT CMD [ARGS...]
 *        hostile_scm receiver TOKEN CASES UNIX_FD
 *
 * sender (run unscoped): connects a UDP socket and a TCP socket to DST (a server only the
 * other ISP's link reaches), makes a Unix socketpair, runs CMD ARGS... with one end's number
 * appended (CMD is the scoped receiver, e.g. "pvdrun --pvd X hostile_scm receiver TOKEN
 * CASES"), passes both sockets to it with SCM_RIGHTS, closes its own copies and exits with
 * the receiver's status.
 *
 * receiver: receives the two sockets (recvmsg) and sends on them; CASES is a comma list of
 * udp_send, udp_write, udp_sendto_null, udp_sendmsg_noname, udp_writev, tcp_send, tcp_write,
 * tcp_sendto_null, tcp_writev.  Output "CASE ok|ERRNO_NAME" (SIGPIPE is ignored); data
 * carries "TOKEN:CASE;". */
#define _GNU_SOURCE
#include "hostile.h"

#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int connect_to(int family, int type, const char *addr, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = hostile_sockaddr(family, addr, port, &ss);
    if (len == 0)
        return -1;
    int fd = socket(family, type, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int sender(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s sender FAMILY DST UDP_PORT TCP_PORT CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    int family = atoi(argv[2]) == 6 ? AF_INET6 : AF_INET;
    int udp = connect_to(family, SOCK_DGRAM, argv[3], atoi(argv[4]));
    hostile_result("sender_udp_connect", udp);
    int tcp = connect_to(family, SOCK_STREAM, argv[3], atoi(argv[5]));
    hostile_result("sender_tcp_connect", tcp);
    if (udp < 0 || tcp < 0)
        return 3;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 3;
    pid_t pid = fork();
    if (pid == 0) {
        char fdnum[16];
        snprintf(fdnum, sizeof fdnum, "%d", sv[1]);
        char **args = calloc((size_t)argc, sizeof *args);
        int n = 0;
        for (int i = 6; i < argc; i++)
            args[n++] = argv[i];
        args[n++] = fdnum;
        args[n] = NULL;
        close(sv[0]);
        close(udp);
        close(tcp);
        execvp(args[0], args);
        perror("exec");
        _exit(127);
    }
    close(sv[1]);
    int fds[2] = {udp, tcp};
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {.iov_base = "F", .iov_len = 1};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    hostile_result("sender_pass", sendmsg(sv[0], &msg, 0));
    close(udp);
    close(tcp);
    int status = 0;
    waitpid(pid, &status, 0);
    close(sv[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *token;

static void one(const char *name, int fd)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%s:%s;", token, name);
    const char *op = name + 4; /* after "udp_" / "tcp_" */
    if (strcmp(op, "send") == 0) {
        hostile_result(name, send(fd, text, (size_t)n, MSG_NOSIGNAL));
    } else if (strcmp(op, "write") == 0) {
        hostile_result(name, write(fd, text, (size_t)n));
    } else if (strcmp(op, "sendto_null") == 0) {
        hostile_result(name, sendto(fd, text, (size_t)n, MSG_NOSIGNAL, NULL, 0));
    } else if (strcmp(op, "sendmsg_noname") == 0) {
        struct iovec iov = {.iov_base = text, .iov_len = (size_t)n};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        hostile_result(name, sendmsg(fd, &msg, MSG_NOSIGNAL));
    } else if (strcmp(op, "writev") == 0) {
        struct iovec iov = {.iov_base = text, .iov_len = (size_t)n};
        hostile_result(name, writev(fd, &iov, 1));
    } else {
        printf("%s unknown\n", name);
    }
}

static int receiver(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s receiver TOKEN CASES UNIX_FD\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    token = argv[2];
    int unix_fd = atoi(argv[4]);
    int fds[2] = {-1, -1};
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t got = recvmsg(unix_fd, &msg, 0);
    hostile_result("receiver_recvmsg", got);
    struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof fds)) {
        puts("receiver_rights missing");
        return 3;
    }
    memcpy(fds, CMSG_DATA(c), sizeof fds);
    puts("receiver_rights ok");
    char *cases = strdup(argv[3]);
    for (char *name = strtok(cases, ","); name; name = strtok(NULL, ",")) {
        int tcp = strncmp(name, "tcp_", 4) == 0;
        one(name, fds[tcp]);
    }
    /* let a TCP segment the stack still holds leave before the descriptors close */
    poll(NULL, 0, 300);
    puts("done");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sender") == 0)
        return sender(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "receiver") == 0)
        return receiver(argc, argv);
    fprintf(stderr, "usage: %s sender|receiver ...\n", argv[0]);
    return 2;
}
