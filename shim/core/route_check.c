/* route_check.c: one RTM_GETROUTE with RTM_F_FIB_MATCH and RTA_OIF over netlink. */
#include "route_check.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core.h"
#include <stdatomic.h>

int shim_v4_route_exists(struct in_addr dst, int ifindex, uint32_t mark, struct in_addr *prefix, unsigned int *plen)
{
    struct {
        struct nlmsghdr nh;
        struct rtmsg rt;
        char attrs[64];
    } req;
    union {
        struct nlmsghdr nh;
        char buf[4096];
    } reply;
    struct rtattr *rta;
    int saved = errno, result = 1;

    *plen = 255;
    prefix->s_addr = 0;
    int nl = REAL(socket)(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (nl < 0)
        goto out;
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    REAL(setsockopt)(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    memset(&req, 0, sizeof req);
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.nh.nlmsg_type = RTM_GETROUTE;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = 1;
    req.rt.rtm_family = AF_INET;
    req.rt.rtm_dst_len = 32;
    req.rt.rtm_flags = RTM_F_FIB_MATCH;
    rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
    rta->rta_type = RTA_DST;
    rta->rta_len = RTA_LENGTH(sizeof dst);
    memcpy(RTA_DATA(rta), &dst, sizeof dst);
    req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
    rta = (struct rtattr *)((char *)&req + req.nh.nlmsg_len);
    rta->rta_type = RTA_OIF;
    rta->rta_len = RTA_LENGTH(sizeof ifindex);
    memcpy(RTA_DATA(rta), &ifindex, sizeof ifindex);
    req.nh.nlmsg_len += RTA_ALIGN(rta->rta_len);
    if (mark) { /* the socket's mark selects the PvD's own table (pvdd's fwmark rule) */
        rta = (struct rtattr *)((char *)&req + req.nh.nlmsg_len);
        rta->rta_type = RTA_MARK;
        rta->rta_len = RTA_LENGTH(sizeof mark);
        memcpy(RTA_DATA(rta), &mark, sizeof mark);
        req.nh.nlmsg_len += RTA_ALIGN(rta->rta_len);
    }

    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (REAL(sendto)(nl, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        goto close;
    ssize_t n = recv(nl, &reply, sizeof reply, 0);
    if (n < (ssize_t)sizeof(struct nlmsghdr) || !NLMSG_OK(&reply.nh, (unsigned int)n))
        goto close;
    if (reply.nh.nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(&reply.nh);
        if (reply.nh.nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error != 0)
            result = 0;
    } else if (reply.nh.nlmsg_type == RTM_NEWROUTE &&
               reply.nh.nlmsg_len >= NLMSG_LENGTH(sizeof(struct rtmsg))) {
        const struct rtmsg *rt = NLMSG_DATA(&reply.nh);
        int attr_len = (int)(reply.nh.nlmsg_len - NLMSG_LENGTH(sizeof *rt));
        const struct rtattr *attr = RTM_RTA(rt);
        if (rt->rtm_dst_len == 0) {
            *plen = 0;
        } else {
            for (; RTA_OK(attr, attr_len); attr = RTA_NEXT(attr, attr_len))
                if (attr->rta_type == RTA_DST && RTA_PAYLOAD(attr) == sizeof *prefix) {
                    memcpy(prefix, RTA_DATA(attr), sizeof *prefix);
                    *plen = rt->rtm_dst_len <= 32 ? rt->rtm_dst_len : 255;
                }
        }
    }
close:
    REAL(close)(nl);
out:
    errno = saved;
    return result;
}

/* Per PvD slot: IPv4 prefixes the route check found routes for through the PvD's
 * interface (a default route is prefix length 0).  Each entry is one 64-bit atomic:
 * bit 40 valid, bits 32-39 prefix length, bits 0-31 the prefix (host byte order). */
#define ROUTE_CACHE 8
static _Atomic uint64_t g_v4_routes[SHIM_MAX_PVDS][ROUTE_CACHE];
static atomic_uint g_v4_next[SHIM_MAX_PVDS];

int shim_v4_route_cached(unsigned int slot, struct in_addr dst)
{
    uint32_t a = ntohl(dst.s_addr);
    for (unsigned int i = 0; i < ROUTE_CACHE; i++) {
        uint64_t e = atomic_load_explicit(&g_v4_routes[slot - 1][i], memory_order_relaxed);
        if (!(e >> 40))
            continue;
        unsigned int plen = (unsigned int)((e >> 32) & 0xFF);
        uint32_t mask = plen == 0 ? 0 : 0xFFFFFFFFu << (32 - plen);
        if (((a ^ (uint32_t)e) & mask) == 0)
            return 1;
    }
    return 0;
}

void shim_v4_route_remember(unsigned int slot, struct in_addr prefix, unsigned int plen)
{
    if (plen > 32)
        return;
    unsigned int i = atomic_fetch_add(&g_v4_next[slot - 1], 1) % ROUTE_CACHE;
    uint64_t e = (1ull << 40) | ((uint64_t)plen << 32) | ntohl(prefix.s_addr);
    atomic_store_explicit(&g_v4_routes[slot - 1][i], e, memory_order_relaxed);
}
