/* options.c: the checks of what can still move a socket's traffic off its PvD once the socket
 * exists: control messages of a send (IP_PKTINFO, IPV6_PKTINFO, IPV6_2292PKTINFO,
 * IPV6_NEXTHOP) and socket options (device binding, sticky packet info); setsockopt.c and
 * sendmsg.c call them. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "sockaddr.h"
#include "uaccess.h"

/* ---- control messages ---- */
int shim_check_pktinfo(unsigned int slot, unsigned int ifindex, const struct sockaddr *src, socklen_t srclen)
{
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (!pvd) {
        errno = ENETUNREACH;
        return -1;
    }
    if (ifindex != 0 && !shim_slot_has_ifindex(slot, ifindex)) {
        errno = EINVAL; /* another interface: not this socket's PvD */
        return -1;
    }
    if (src && !shim_addr_is_wildcard(src, srclen) && !shim_addr_in_pvd(pvd, src, srclen)) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}

int shim_check_cmsgs(uint32_t w, const void *control, size_t controllen)
{
    const unsigned char *base = control;
    size_t off = 0;
    if (W_KIND(w) != FK_SCOPED && W_KIND(w) != FK_BUSY)
        return 0;
    unsigned int slot = W_SLOT(w);
    /* Walk the headers as the kernel does (__cmsg_nxthdr); each piece is copied before it
     * is looked at, so a bad buffer gives EFAULT.  A malformed list is the kernel's to
     * refuse (EINVAL) and is never sent. */
    while (controllen - off >= sizeof(struct cmsghdr)) {
        struct cmsghdr h;
        if (shim_copy_in(&h, base + off, sizeof h) < 0)
            return -1;
        if (h.cmsg_len < sizeof(struct cmsghdr) || h.cmsg_len > controllen - off)
            return 0;
        const unsigned char *data = base + off + CMSG_LEN(0);
        size_t n = h.cmsg_len - CMSG_LEN(0);
        if (h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_PKTINFO && n >= sizeof(struct in_pktinfo)) {
            struct in_pktinfo info;
            if (shim_copy_in(&info, data, sizeof info) < 0)
                return -1;
            struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = info.ipi_spec_dst};
            if (shim_check_pktinfo(slot, (unsigned int)info.ipi_ifindex, (struct sockaddr *)&src, sizeof src) < 0)
                return -1;
        } else if (h.cmsg_level == IPPROTO_IPV6 && (h.cmsg_type == IPV6_PKTINFO || h.cmsg_type == IPV6_2292PKTINFO) &&
                   n >= sizeof(struct in6_pktinfo)) {
            struct in6_pktinfo info;
            if (shim_copy_in(&info, data, sizeof info) < 0)
                return -1;
            struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_addr = info.ipi6_addr};
            if (shim_check_pktinfo(slot, info.ipi6_ifindex, (struct sockaddr *)&src, sizeof src) < 0)
                return -1;
        } else if (h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_NEXTHOP) {
            errno = EPERM; /* a next hop of the program's choosing: the PvD's routes decide */
            return -1;
        }
        off += CMSG_ALIGN(h.cmsg_len);
        if (off > controllen)
            break;
    }
    return 0;
}

/* ---- socket options ---- */
unsigned int shim_slot_for_option(int fd)
{
    uint32_t w = fd_load(fd);
    if (W_KIND(w) == FK_UNKNOWN)
        w = shim_adopt(fd, NULL, OP_LISTEN);
    switch (W_KIND(w)) {
    case FK_SCOPED:
    case FK_BUSY:
    case FK_NULLED:
        return W_SLOT(w);
    case FK_PENDING:
        return (w & W_EXPLICIT) ? W_SLOT(w) : shim_effective_slot();
    default:
        return SLOT_NONE; /* not inet, or no PvD: the program's business */
    }
}

int shim_check_device_change(int fd, int ifindex)
{
    unsigned int slot = shim_slot_for_option(fd);
    if (slot == SLOT_NONE)
        return 0;
    if (ifindex > 0 && shim_slot_has_ifindex(slot, (unsigned int)ifindex))
        return 0; /* one of the PvD's own interfaces */
    errno = EPERM; /* leaving the PvD's interface (or unbinding) is not allowed */
    return -1;
}

int shim_check_sticky_pktinfo6(int fd, const struct in6_pktinfo *info)
{
    unsigned int slot = shim_slot_for_option(fd);
    if (slot == SLOT_NONE)
        return 0;
    struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_addr = info->ipi6_addr};
    if (slot == SLOT_NULL) {
        errno = EPERM;
        return -1;
    }
    return shim_check_pktinfo(slot, info->ipi6_ifindex, (struct sockaddr *)&src, sizeof src);
}
