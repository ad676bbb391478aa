/* setsockopt.c: setsockopt() hook.  A privileged program could move a socket tied to its
 * PvD to another device with SO_BINDTODEVICE/SO_BINDTOIFINDEX; that is refused (EPERM)
 * unless the device is the PvD's own interface.  A sticky IPV6_PKTINFO naming another
 * interface (EINVAL) or a source outside the PvD (EADDRNOTAVAIL) is refused too. */
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "core.h"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

SHIM_API int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    const struct shim_real_fns *real = shim_fns();
    if (level == IPPROTO_IPV6 && name == IPV6_PKTINFO && value && len >= (socklen_t)sizeof(struct in6_pktinfo)) {
        struct in6_pktinfo info;
        memcpy(&info, value, sizeof info);
        if (shim_check_sticky_pktinfo6(fd, &info) < 0)
            return -1;
        return real->setsockopt(fd, level, name, value, len);
    }
    if (SHIM_LIKELY(level != SOL_SOCKET || (name != SO_BINDTODEVICE && name != SO_BINDTOIFINDEX)))
        return real->setsockopt(fd, level, name, value, len);
    int ifindex = 0;
    if (name == SO_BINDTOIFINDEX && value && len >= (socklen_t)sizeof(int)) {
        memcpy(&ifindex, value, sizeof ifindex);
    } else if (name == SO_BINDTODEVICE && value && len > 0) {
        char ifname[IF_NAMESIZE];
        size_t n = (size_t)len < sizeof ifname ? (size_t)len : sizeof ifname - 1;
        memcpy(ifname, value, n);
        ifname[n] = '\0';
        ifindex = ifname[0] ? (int)if_nametoindex(ifname) : 0;
        if (ifname[0] && ifindex == 0)
            return real->setsockopt(fd, level, name, value, len); /* the kernel reports ENODEV */
    }
    if (shim_check_device_change(fd, ifindex) < 0)
        return -1;
    return real->setsockopt(fd, level, name, value, len);
}
