/* connect.c: connect() hook: tie the socket to its PvD first (or refuse). */
#include <sys/socket.h>

#include "core.h"

SHIM_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_IS_PASS(w)))
        return real->connect(fd, addr, len);
    if (shim_prepare(fd, addr, len, OP_CONNECT) < 0)
        return -1;
    return real->connect(fd, addr, len);
}
