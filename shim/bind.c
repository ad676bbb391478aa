/* bind.c: bind() hook: only addresses of the socket's PvD (R6), the wildcard, multicast
 * groups or loopback; anything else fails with EADDRNOTAVAIL. */
#include <sys/socket.h>

#include "core.h"

SHIM_API int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_storage storage;
    const struct sockaddr *use;
    socklen_t use_len;
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (W_KIND(w) == FK_NONINET || W_KIND(w) == FK_SYSTEM)
        return real->bind(fd, addr, len);
    if (shim_prepare_bind(fd, addr, len, &storage, &use, &use_len) < 0)
        return -1;
    int rc = real->bind(fd, use, use_len);
    if (rc == 0)
        fd_or(fd, W_BOUND);
    return rc;
}
