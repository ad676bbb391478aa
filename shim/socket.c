/* socket.c: socket() and socketpair() hooks.  A new AF_INET/AF_INET6 socket is remembered as
 * "pending" (tied to its PvD at its first use, see decide.c); under the null PvD (R13) it is
 * refused at once with EACCES, so that programs fail fast. */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"

SHIM_API int socket(int domain, int type, int protocol)
{
    const struct shim_real_fns *real = shim_fns();
    if ((domain == AF_INET || domain == AF_INET6) && shim_effective_slot() == SLOT_NULL) {
        errno = EACCES;
        return -1;
    }
    int fd = real->socket(domain, type, protocol);
    if (fd >= 0)
        shim_track_new(fd, domain);
    return fd;
}

SHIM_API int socketpair(int domain, int type, int protocol, int sv[2])
{
    int rc = REAL(socketpair)(domain, type, protocol, sv);
    if (rc == 0) {
        shim_track_new(sv[0], domain);
        shim_track_new(sv[1], domain);
    }
    return rc;
}
