/* setsockopt.c: setsockopt() hook.  Options that would move a socket's traffic off its PvD:
 *  - SO_BINDTODEVICE/SO_BINDTOIFINDEX to another interface, or unbinding: EPERM;
 *  - a sticky IPV6_PKTINFO, or IPV6_2292PKTOPTIONS carrying one, naming another interface
 *    (EINVAL) or a source outside the PvD (EADDRNOTAVAIL); IPV6_NEXTHOP (EPERM);
 *  - joining a multicast group (IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP,
 *    IPV6_JOIN_GROUP, IPV6_JOIN_ANYCAST, MCAST_JOIN_GROUP, MCAST_JOIN_SOURCE_GROUP) on
 *    another interface or address: ENODEV.  With no interface given, the kernel would pick
 *    one from the main routing table (and send its IGMP/MLD report there): the join is
 *    given the PvD's interface instead.
 * Option values are read through uaccess.h (EFAULT, never a crash). */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "core.h"
#include "uaccess.h"

/* The PvD whose interface a join must use; SLOT_NONE: no PvD applies.  A loopback-only
 * socket sends nothing but to loopback, except the report a join sends: it joins in the
 * PvD in force too. */
static int join_slot(int fd, unsigned int *slot)
{
    *slot = shim_slot_for_option(fd);
    if (*slot == SLOT_NONE && W_KIND(fd_load(fd)) == FK_LOOPBACK)
        *slot = shim_effective_slot();
    if (*slot == SLOT_NULL || (*slot != SLOT_NONE && !shim_pvd_at(*slot))) {
        errno = ENODEV; /* the null PvD has no interface */
        return -1;
    }
    return 0;
}

static int check_ifindex(unsigned int slot, unsigned int *ifindex)
{
    if (*ifindex == 0) {
        *ifindex = shim_slot_ifindex(slot);
        return 0;
    }
    if (shim_slot_has_ifindex(slot, *ifindex))
        return 0;
    errno = ENODEV; /* an interface outside the PvD */
    return -1;
}

/* IPv4 joins name the interface by index (ip_mreqn) or by address (ip_mreq, ip_mreq_source). */
static int join4(int fd, int name, const void *value, socklen_t len, int (*real)(int, int, int, const void *, socklen_t))
{
    unsigned int slot;
    if (join_slot(fd, &slot) < 0)
        return -1;
    if (slot == SLOT_NONE)
        return real(fd, IPPROTO_IP, name, value, len);
    if (name == IP_ADD_MEMBERSHIP) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        if (len < (socklen_t)sizeof(struct ip_mreq))
            return real(fd, IPPROTO_IP, name, value, len); /* the kernel refuses it */
        socklen_t n = len >= (socklen_t)sizeof mr ? (socklen_t)sizeof mr : (socklen_t)sizeof(struct ip_mreq);
        if (shim_copy_in(&mr, value, n) < 0)
            return -1;
        unsigned int ifindex = n == sizeof mr ? (unsigned int)mr.imr_ifindex : 0;
        if (ifindex == 0 && mr.imr_address.s_addr != htonl(INADDR_ANY)) {
            if (!shim_slot_has_v4(slot, mr.imr_address)) {
                errno = ENODEV;
                return -1;
            }
            return real(fd, IPPROTO_IP, name, &mr, n); /* an address of the PvD names its interface */
        }
        if (check_ifindex(slot, &ifindex) < 0)
            return -1;
        mr.imr_ifindex = (int)ifindex;
        mr.imr_address.s_addr = htonl(INADDR_ANY);
        return real(fd, IPPROTO_IP, name, &mr, sizeof mr);
    }
    /* IP_ADD_SOURCE_MEMBERSHIP: the interface is an address */
    struct ip_mreq_source ms;
    if (len < (socklen_t)sizeof ms)
        return real(fd, IPPROTO_IP, name, value, len);
    if (shim_copy_in(&ms, value, sizeof ms) < 0)
        return -1;
    if (ms.imr_interface.s_addr == htonl(INADDR_ANY)) {
        const struct pvd_scope *pvd = shim_pvd_at(slot);
        if (pvd->n_v4 == 0) {
            errno = ENODEV; /* no IPv4 address names the PvD's interface */
            return -1;
        }
        ms.imr_interface = pvd->v4[0];
    } else if (!shim_slot_has_v4(slot, ms.imr_interface)) {
        errno = ENODEV;
        return -1;
    }
    return real(fd, IPPROTO_IP, name, &ms, sizeof ms);
}

static int join6(int fd, int name, const void *value, socklen_t len, int (*real)(int, int, int, const void *, socklen_t))
{
    unsigned int slot;
    struct ipv6_mreq mr;
    if (join_slot(fd, &slot) < 0)
        return -1;
    if (slot == SLOT_NONE || len < (socklen_t)sizeof mr)
        return real(fd, IPPROTO_IPV6, name, value, len);
    if (shim_copy_in(&mr, value, sizeof mr) < 0)
        return -1;
    unsigned int ifindex = (unsigned int)mr.ipv6mr_interface;
    if (check_ifindex(slot, &ifindex) < 0)
        return -1;
    mr.ipv6mr_interface = (int)ifindex;
    return real(fd, IPPROTO_IPV6, name, &mr, sizeof mr);
}

/* MCAST_JOIN_GROUP (struct group_req) and MCAST_JOIN_SOURCE_GROUP (struct group_source_req),
 * at either level: the interface is an index first in the struct. */
static int join_mcast(int fd, int level, int name, const void *value, socklen_t len,
                      int (*real)(int, int, int, const void *, socklen_t))
{
    unsigned int slot;
    struct group_source_req gr;
    socklen_t need = name == MCAST_JOIN_GROUP ? (socklen_t)sizeof(struct group_req) : (socklen_t)sizeof gr;
    if (join_slot(fd, &slot) < 0)
        return -1;
    if (slot == SLOT_NONE || len < need)
        return real(fd, level, name, value, len);
    if (shim_copy_in(&gr, value, need) < 0)
        return -1;
    unsigned int ifindex = gr.gsr_interface;
    if (check_ifindex(slot, &ifindex) < 0)
        return -1;
    gr.gsr_interface = ifindex;
    return real(fd, level, name, &gr, need);
}

static int device_option(int fd, int name, const void *value, socklen_t len)
{
    int ifindex = 0;
    if (name == SO_BINDTOIFINDEX) {
        if (len < (socklen_t)sizeof(int))
            return 1; /* the kernel refuses it */
        if (shim_copy_in(&ifindex, value, sizeof ifindex) < 0)
            return -1;
    } else if (len > 0) {
        char ifname[IF_NAMESIZE];
        size_t n = (size_t)len < sizeof ifname ? (size_t)len : sizeof ifname - 1;
        if (shim_copy_in(ifname, value, n) < 0)
            return -1;
        ifname[n] = '\0';
        ifindex = ifname[0] ? (int)if_nametoindex(ifname) : 0;
        if (ifname[0] && ifindex == 0)
            return 1; /* the kernel reports ENODEV */
    }
    return shim_check_device_change(fd, ifindex) < 0 ? -1 : 1;
}

SHIM_API int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    const struct shim_real_fns *real = shim_fns();
    if (level == SOL_SOCKET) {
        if (SHIM_LIKELY(name != SO_BINDTODEVICE && name != SO_BINDTOIFINDEX))
            return real->setsockopt(fd, level, name, value, len);
        if (device_option(fd, name, value, len) < 0)
            return -1;
        return real->setsockopt(fd, level, name, value, len);
    }
    if (level == IPPROTO_IP) {
        if (name == IP_ADD_MEMBERSHIP || name == IP_ADD_SOURCE_MEMBERSHIP)
            return join4(fd, name, value, len, real->setsockopt);
        if (name == MCAST_JOIN_GROUP || name == MCAST_JOIN_SOURCE_GROUP)
            return join_mcast(fd, level, name, value, len, real->setsockopt);
        return real->setsockopt(fd, level, name, value, len);
    }
    if (level != IPPROTO_IPV6)
        return real->setsockopt(fd, level, name, value, len);
    switch (name) {
    case IPV6_JOIN_GROUP:
    case IPV6_JOIN_ANYCAST:
        return join6(fd, name, value, len, real->setsockopt);
    case MCAST_JOIN_GROUP:
    case MCAST_JOIN_SOURCE_GROUP:
        return join_mcast(fd, level, name, value, len, real->setsockopt);
    case IPV6_PKTINFO:
        if (len >= (socklen_t)sizeof(struct in6_pktinfo)) {
            struct in6_pktinfo info;
            if (shim_copy_in(&info, value, sizeof info) < 0 || shim_check_sticky_pktinfo6(fd, &info) < 0)
                return -1;
            return real->setsockopt(fd, level, name, &info, sizeof info);
        }
        break;
    case IPV6_2292PKTOPTIONS: {
        /* a buffer of control messages made sticky: checked as sendmsg's */
        unsigned int slot = shim_slot_for_option(fd);
        if (slot != SLOT_NONE && len > 0) {
            if (slot == SLOT_NULL || shim_check_cmsgs(W_MAKE(FK_SCOPED, slot, 0), value, len) < 0) {
                if (slot == SLOT_NULL)
                    errno = EPERM;
                return -1;
            }
        }
        break;
    }
    case IPV6_NEXTHOP:
        if (len > 0 && shim_slot_for_option(fd) != SLOT_NONE) {
            errno = EPERM; /* a next hop of the program's choosing: the PvD's routes decide */
            return -1;
        }
        break;
    default:
        break;
    }
    return real->setsockopt(fd, level, name, value, len);
}
