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
#include "hostile.h"

#include <sys/wait.h>
#include <unistd.h>

static const char *token;
static int family, other_if;
static struct sockaddr_storage dst;
static socklen_t dst_len;
static struct in6_addr other_src6;
static int with_src;

static int udp(void)
{
    return hostile_socket(family, SOCK_DGRAM, 0);
}

static void plain(int fd, const char *name, int connected)
{
    if (connected)
        hostile_send_named(fd, token, name, NULL, 0);
    else
        hostile_send_named(fd, token, name, &dst, dst_len);
}

static void escapes(int fd, const char *prefix)
{
    hostile_escapes(fd, token, prefix, family, &dst, dst_len, other_if, with_src ? &other_src6 : NULL);
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s TOKEN FAMILY DST PORT MODE OTHER_IF OTHER_SRC\n", argv[0]);
        return 2;
    }
    token = argv[1];
    family = atoi(argv[2]) == 6 ? AF_INET6 : AF_INET;
    dst_len = hostile_sockaddr(family, argv[3], atoi(argv[4]), &dst);
    if (dst_len == 0)
        return 2;
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
        hostile_result("vfork", -1);
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
    hostile_result("new2_connect", connect(b, (struct sockaddr *)&dst, dst_len));
    plain(b, "new2_send", 1);
    escapes(b, "new2");
    close(a);
    close(b);
    close(pair[0]);
    close(pair[1]);
    puts("done");
    return 0;
}
