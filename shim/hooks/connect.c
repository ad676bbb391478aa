/* connect.c: connect() hook: tie the socket to its PvD first (or refuse). */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"
#include "uaccess.h"

SHIM_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_SEND_PASS(w) || (W_KIND(w) == FK_SCOPED && !(w & W_DSTCHECK))))
        return real->connect(fd, addr, len);
    struct sockaddr_storage copy;
    if (len > sizeof copy) {
        errno = EINVAL; /* what the kernel answers */
        return -1;
    }
    if (shim_copy_in(&copy, addr, len) < 0)
        return -1;
    if (shim_prepare(fd, (const struct sockaddr *)&copy, len, OP_CONNECT, NULL) < 0)
        return -1;
    return real->connect(fd, (const struct sockaddr *)&copy, len);
}
