/* hostile_unspec: destinations whose family is AF_UNSPEC (0) on an AF_INET UDP socket.
 *
 * usage: hostile_unspec TOKEN DST4 PORT
 *
 * Linux's udp_sendmsg takes sin_family AF_UNSPEC as AF_INET (a program that forgot to set
 * sin_family still sends).  Cases: on fresh sockets, sendto/sendmsg/sendmmsg to DST4 with
 * sin_family = AF_UNSPEC, and with the family left 0 by memset; on a socket tied first by
 * an AF_INET datagram; on a socket first connected to 127.0.0.1 (loopback only), also after
 * that association was dissolved with connect(AF_UNSPEC).  Output
 * "CASE ok|ERRNO_NAME"; datagrams carry "TOKEN:CASE;". */
#define _GNU_SOURCE
#include "hostile.h"

#include <unistd.h>

static const char *token;
static struct sockaddr_in dst_inet, dst_unspec;

static int udp4(void)
{
    return hostile_socket(AF_INET, SOCK_DGRAM, 0);
}

enum op { SENDTO = HOSTILE_SENDTO, SENDMSG = HOSTILE_SENDMSG, SENDMMSG = HOSTILE_SENDMMSG };

static void send_op(int fd, enum op op, const char *name, struct sockaddr_in *dst)
{
    char text[160];
    size_t n = hostile_text(text, sizeof text, token, name);
    hostile_send_by(fd, (enum hostile_how)op, name, text, n, dst, sizeof *dst);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s TOKEN DST4 PORT\n", argv[0]);
        return 2;
    }
    token = argv[1];
    memset(&dst_inet, 0, sizeof dst_inet);
    dst_inet.sin_family = AF_INET;
    dst_inet.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &dst_inet.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", argv[2]);
        return 2;
    }
    dst_unspec = dst_inet;
    dst_unspec.sin_family = AF_UNSPEC;
    struct sockaddr_in forgot; /* sin_family never set: memset left it 0 */
    memset(&forgot, 0, sizeof forgot);
    forgot.sin_port = dst_inet.sin_port;
    forgot.sin_addr = dst_inet.sin_addr;

    static const char *const ops[] = {"sendto", "sendmsg", "sendmmsg"};
    char name[96];
    for (int op = SENDTO; op <= SENDMMSG; op++) {
        int fd = udp4();
        snprintf(name, sizeof name, "fresh_%s_unspec", ops[op]);
        send_op(fd, (enum op)op, name, &dst_unspec);
        close(fd);
    }
    int fd = udp4();
    send_op(fd, SENDTO, "fresh_sendto_nofamily", &forgot);
    close(fd);

    fd = udp4();
    send_op(fd, SENDTO, "tie", &dst_inet);
    for (int op = SENDTO; op <= SENDMMSG; op++) {
        snprintf(name, sizeof name, "tied_%s_unspec", ops[op]);
        send_op(fd, (enum op)op, name, &dst_unspec);
    }
    close(fd);

    /* loopback only: connected to 127.0.0.1 first */
    fd = udp4();
    struct sockaddr_in lo = dst_inet;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    hostile_result("loop_connect", connect(fd, (struct sockaddr *)&lo, sizeof lo));
    for (int op = SENDTO; op <= SENDMMSG; op++) {
        snprintf(name, sizeof name, "loop_%s_unspec", ops[op]);
        send_op(fd, (enum op)op, name, &dst_unspec);
    }
    send_op(fd, SENDTO, "loop_sendto_nofamily", &forgot);
    close(fd);

    /* Linux refuses the sends above itself (the socket's source is 127.0.0.1: EINVAL).
     * Dissolving the association (connect AF_UNSPEC) drops that source: the socket is
     * loopback-only for the shim but free for the kernel. */
    fd = udp4();
    hostile_result("loopdis_connect", connect(fd, (struct sockaddr *)&lo, sizeof lo));
    struct sockaddr unspec;
    memset(&unspec, 0, sizeof unspec);
    unspec.sa_family = AF_UNSPEC;
    hostile_result("loopdis_disconnect", connect(fd, &unspec, sizeof unspec));
    for (int op = SENDTO; op <= SENDMMSG; op++) {
        snprintf(name, sizeof name, "loopdis_%s_unspec", ops[op]);
        send_op(fd, (enum op)op, name, &dst_unspec);
    }
    send_op(fd, SENDTO, "loopdis_sendto_inet", &dst_inet);
    close(fd);
    puts("done");
    return 0;
}
