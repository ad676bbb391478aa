/* sendto.c: sendto() hook.  On a socket already tied to its PvD: one table read and the
 * real call. */
#include <sys/socket.h>

#include "core.h"

SHIM_API ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_IS_PASS(w)))
        return real->sendto(fd, buf, n, flags, addr, len);
    if (shim_prepare(fd, addr, len, OP_SEND) < 0)
        return -1;
    return real->sendto(fd, buf, n, flags, addr, len);
}
