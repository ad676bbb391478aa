/* hostile_scope6: IPv6 scope IDs that name another interface than the PvD's.
 *
 * usage: hostile_scope6 TOKEN PORT OTHER_IF OWN_IF OTHER_LL OWN_LL SERVICE6 KINDS
 *   KINDS: "udp" or "udp,raw" (raw ICMPv6 needs CAP_NET_RAW)
 *
 * For each kind (UDP datagram socket, raw ICMPv6 socket) and each target (ff02::1 and a
 * router's link-local address), on a fresh socket and on one already tied by a first
 * legitimate send to SERVICE6, it sends with sin6_scope_id = OTHER_IF through sendto,
 * sendmsg, sendmmsg and connect (+ a send when connect succeeds); then the same with
 * sin6_scope_id = OWN_IF.  One line per case: "CASE ok" or "CASE ERRNO_NAME".  Every
 * datagram carries "TOKEN:CASE;" so a capture tells which case crossed which link. */
#define _GNU_SOURCE
#include "hostile.h"

#include <netinet/icmp6.h>
#include <unistd.h>

static const char *token;
static int port;

/* The bytes to send for a case: "TOKEN:CASE;" (after an ICMPv6 echo header for raw). */
static size_t payload(int raw, const char *name, char *buf, size_t size)
{
    size_t off = 0;
    if (raw) {
        struct icmp6_hdr h;
        memset(&h, 0, sizeof h);
        h.icmp6_type = ICMP6_ECHO_REQUEST;
        h.icmp6_id = htons(0x4853);
        h.icmp6_seq = htons(1);
        memcpy(buf, &h, sizeof h);
        off = sizeof h;
    }
    int n = snprintf(buf + off, size - off, "%s:%s;", token, name);
    return off + (size_t)n;
}

static int new_socket(int raw)
{
    return raw ? hostile_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6) : hostile_socket(AF_INET6, SOCK_DGRAM, 0);
}

enum op { SENDTO = HOSTILE_SENDTO, SENDMSG = HOSTILE_SENDMSG, SENDMMSG = HOSTILE_SENDMMSG, CONNECT };
static const char *const op_names[] = {"sendto", "sendmsg", "sendmmsg", "connect"};

static void run_op(int fd, int raw, enum op op, const char *name, struct sockaddr_in6 *dst)
{
    char buf[256];
    size_t len = payload(raw, name, buf, sizeof buf);
    if (op != CONNECT) {
        hostile_send_by(fd, (enum hostile_how)op, name, buf, len, dst, sizeof *dst);
        return;
    }
    int rc = connect(fd, (struct sockaddr *)dst, sizeof *dst);
    hostile_result(name, rc);
    if (rc == 0) { /* connected there: show where its datagrams go */
        char sname[160];
        snprintf(sname, sizeof sname, "%s_send", name);
        len = payload(raw, sname, buf, sizeof buf);
        hostile_result(sname, sendto(fd, buf, len, 0, NULL, 0));
    }
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s TOKEN PORT OTHER_IF OWN_IF OTHER_LL OWN_LL SERVICE6 KINDS\n", argv[0]);
        return 2;
    }
    token = argv[1];
    port = atoi(argv[2]);
    unsigned int other_if = (unsigned int)atoi(argv[3]), own_if = (unsigned int)atoi(argv[4]);
    const char *other_ll = argv[5], *own_ll = argv[6], *service = argv[7];
    int with_raw = strstr(argv[8], "raw") != NULL;
    char name[160];

    for (int raw = 0; raw <= with_raw; raw++) {
        const char *kind = raw ? "raw" : "udp";
        int p = raw ? 0 : port;
        struct {
            const char *tag;
            struct sockaddr_in6 other, own;
        } targets[2] = {
            {"mc", hostile_sa6("ff02::1", p, other_if), hostile_sa6("ff02::1", p, own_if)},
            {"ll", hostile_sa6(other_ll, p, other_if), hostile_sa6(own_ll, p, own_if)},
        };
        struct sockaddr_in6 legit = hostile_sa6(service, p, 0);
        for (int t = 0; t < 2; t++) {
            /* fresh sockets: the hostile operation is the socket's first */
            for (int op = SENDTO; op <= CONNECT; op++) {
                int fd = new_socket(raw);
                snprintf(name, sizeof name, "%s_fresh_%s_%s_other", kind, op_names[op], targets[t].tag);
                run_op(fd, raw, (enum op)op, name, &targets[t].other);
                close(fd);
            }
            /* a socket tied first by a legitimate datagram */
            int fd = new_socket(raw);
            snprintf(name, sizeof name, "%s_tie_%s", kind, targets[t].tag);
            run_op(fd, raw, SENDTO, name, &legit);
            for (int op = SENDTO; op <= CONNECT; op++) {
                snprintf(name, sizeof name, "%s_tied_%s_%s_other", kind, op_names[op], targets[t].tag);
                run_op(fd, raw, (enum op)op, name, &targets[t].other);
            }
            close(fd);
        }
        /* the PvD's own interface as scope: allowed */
        int fd = new_socket(raw);
        snprintf(name, sizeof name, "%s_fresh_sendto_mc_own", kind);
        run_op(fd, raw, SENDTO, name, &targets[0].own);
        snprintf(name, sizeof name, "%s_tied_sendmmsg_mc_own", kind);
        run_op(fd, raw, SENDMMSG, name, &targets[0].own);
        close(fd);
        fd = new_socket(raw);
        snprintf(name, sizeof name, "%s_fresh_sendmsg_ll_own", kind);
        run_op(fd, raw, SENDMSG, name, &targets[1].own);
        close(fd);
        fd = new_socket(raw);
        snprintf(name, sizeof name, "%s_fresh_connect_ll_own", kind);
        run_op(fd, raw, CONNECT, name, &targets[1].own);
        close(fd);
    }
    puts("done");
    return 0;
}
