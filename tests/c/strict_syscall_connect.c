/* strict_syscall_connect ADDR PORT [MESSAGE]: a TCP connection made with raw system calls.
 *
 * socket(2), connect(2) and the send (sendto(2)) go through syscall(2), not through libc's
 * wrappers, so a preloaded library that wraps those functions never sees them.  ADDR is a
 * numeric IPv4 or IPv6 address (an IPv6 one may carry %SCOPE, an interface name or index).
 * Prints "connected" (exit 0) once connected and MESSAGE, if given, sent; otherwise
 * "error: ENAME (N)" (exit 1).  Usage errors: exit 2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "strict_client.h"

int main(int argc, char **argv)
{
    struct sockaddr_storage sa;
    socklen_t len;
    long fd;

    len = parse_args(argc, argv, &sa);
    if (!len)
        return 2;
    fd = syscall(SYS_socket, sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return fail(errno);
    if (syscall(SYS_connect, fd, &sa, len) < 0)
        return fail(errno);
    if (argc == 4) {
        const char *msg = argv[3];
        size_t left = strlen(msg);
        while (left) {
            long n = syscall(SYS_sendto, fd, msg, left, MSG_NOSIGNAL, NULL, 0);
            if (n < 0)
                return fail(errno);
            msg += n;
            left -= n;
        }
    }
    syscall(SYS_close, fd);
    printf("connected\n");
    return 0;
}
