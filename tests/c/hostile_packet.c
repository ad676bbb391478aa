/* hostile_packet: packet sockets (AF_PACKET) aimed at another interface than the PvD's.
 *
 * usage: hostile_packet TOKEN cases OTHER_IF OWN_IF OTHER_NAME
 *        hostile_packet TOKEN null
 *
 * cases: bind to OTHER_IF; sendto/sendmsg/sendmmsg with a sockaddr_ll naming OTHER_IF
 * (SOCK_DGRAM, and a whole Ethernet frame on SOCK_RAW); the same on a socket bound to
 * OWN_IF; sends on OWN_IF; and the obsolete socket(AF_INET, SOCK_PACKET) (Linux makes it a
 * packet socket) sending through the device named OTHER_NAME.  Frames are broadcast with
 * ethertype 0x88b5 (local experimental) and carry "TOKEN:CASE;".
 * null: the socket() calls alone.  Output "CASE ok|ERRNO_NAME". */
#define _GNU_SOURCE
#include "hostile.h"

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <unistd.h>

#define ETHERTYPE_HOSTILE 0x88b5

static const char *token;

static struct sockaddr_ll link_addr(int ifindex)
{
    struct sockaddr_ll a;
    memset(&a, 0, sizeof a);
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ETHERTYPE_HOSTILE);
    a.sll_ifindex = ifindex;
    a.sll_halen = ETH_ALEN;
    memset(a.sll_addr, 0xff, ETH_ALEN);
    return a;
}

static int packet_socket(int type)
{
    return hostile_socket(AF_PACKET, type, htons(ETHERTYPE_HOSTILE));
}

/* The bytes of a case: the payload (SOCK_DGRAM) or a whole broadcast frame (SOCK_RAW). */
static size_t frame(const char *name, int raw, unsigned char *buf, size_t size)
{
    size_t off = 0;
    if (raw) {
        memset(buf, 0xff, ETH_ALEN);
        memset(buf + ETH_ALEN, 0x02, ETH_ALEN);
        buf[12] = ETHERTYPE_HOSTILE >> 8;
        buf[13] = ETHERTYPE_HOSTILE & 0xff;
        off = 14;
    }
    int n = snprintf((char *)buf + off, size - off, "%s:%s;", token, name);
    return off + (size_t)n;
}

enum op { SENDTO = HOSTILE_SENDTO, SENDMSG = HOSTILE_SENDMSG, SENDMMSG = HOSTILE_SENDMMSG };

static void send_op(int fd, enum op op, int raw, const char *name, struct sockaddr_ll *to)
{
    unsigned char buf[200];
    size_t len = frame(name, raw, buf, sizeof buf);
    hostile_send_by(fd, (enum hostile_how)op, name, buf, len, to, to ? sizeof *to : 0);
}

static void null_mode(void)
{
    int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETHERTYPE_HOSTILE));
    hostile_result("socket_packet_dgram", fd);
    fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    hostile_result("socket_packet_raw", fd);
    fd = socket(AF_INET, SOCK_PACKET, htons(ETH_P_ALL));
    hostile_result("socket_inet_sock_packet", fd);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[2], "null") == 0) {
        token = argv[1];
        null_mode();
        puts("done");
        return 0;
    }
    if (argc != 6 || strcmp(argv[2], "cases") != 0) {
        fprintf(stderr, "usage: %s TOKEN cases OTHER_IF OWN_IF OTHER_NAME | TOKEN null\n", argv[0]);
        return 2;
    }
    token = argv[1];
    int other_if = atoi(argv[3]), own_if = atoi(argv[4]);
    struct sockaddr_ll other = link_addr(other_if), own = link_addr(own_if);

    int fd = packet_socket(SOCK_DGRAM);
    hostile_result("bind_other", bind(fd, (struct sockaddr *)&other, sizeof other));
    close(fd);
    static const char *const ops[] = {"sendto", "sendmsg", "sendmmsg"};
    char name[96];
    for (int op = SENDTO; op <= SENDMMSG; op++) {
        for (int raw = 0; raw <= 1; raw++) {
            fd = packet_socket(raw ? SOCK_RAW : SOCK_DGRAM);
            snprintf(name, sizeof name, "%s_%s_other", raw ? "raw" : "dgram", ops[op]);
            send_op(fd, (enum op)op, raw, name, &other);
            close(fd);
        }
    }
    /* bound to the PvD's own interface first */
    fd = packet_socket(SOCK_DGRAM);
    hostile_result("bind_own", bind(fd, (struct sockaddr *)&own, sizeof own));
    send_op(fd, SENDTO, 0, "bound_own_sendto_other", &other);
    send_op(fd, SENDTO, 0, "bound_own_sendto_own", &own);
    close(fd);
    fd = packet_socket(SOCK_DGRAM);
    send_op(fd, SENDTO, 0, "dgram_sendto_own", &own);
    close(fd);
    fd = packet_socket(SOCK_RAW);
    send_op(fd, SENDMSG, 1, "raw_sendmsg_own", &own);
    close(fd);

    /* the obsolete (AF_INET, SOCK_PACKET): a packet socket addressed by device name */
    fd = socket(AF_INET, SOCK_PACKET, htons(ETH_P_ALL));
    hostile_result("sock_packet_socket", fd);
    if (fd >= 0) {
        struct sockaddr_pkt spkt;
        memset(&spkt, 0, sizeof spkt);
        spkt.spkt_family = AF_PACKET;
        spkt.spkt_protocol = htons(ETHERTYPE_HOSTILE);
        snprintf((char *)spkt.spkt_device, sizeof spkt.spkt_device, "%s", argv[5]);
        unsigned char buf[200];
        size_t len = frame("sock_packet_sendto_other", 1, buf, sizeof buf);
        hostile_result("sock_packet_sendto_other", sendto(fd, buf, len, 0, (struct sockaddr *)&spkt, sizeof spkt));
        close(fd);
    }
    puts("done");
    return 0;
}
