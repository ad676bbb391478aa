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
