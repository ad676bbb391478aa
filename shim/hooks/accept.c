/* accept.c: accept() and accept4() hooks: an accepted socket belongs to its listener's PvD
 * (the kernel copies the listener's device binding; we copy its state word). */
#include <sys/socket.h>

#include "core.h"

SHIM_API int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int nfd = REAL(accept)(fd, addr, len);
    if (nfd >= 0)
        shim_track_accepted(fd, nfd);
    return nfd;
}

SHIM_API int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int nfd = REAL(accept4)(fd, addr, len, flags);
    if (nfd >= 0)
        shim_track_accepted(fd, nfd);
    return nfd;
}
