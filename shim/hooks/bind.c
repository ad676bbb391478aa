/* bind.c: bind() hook: only addresses of the socket's PvD (R6), the wildcard, multicast
 * groups or loopback; anything else fails with EADDRNOTAVAIL.  AF_PACKET: only the PvD's
 * interfaces (ENODEV). */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"
#include "uaccess.h"

SHIM_API int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_storage copy, storage;
    const struct sockaddr *use;
    socklen_t use_len;
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (W_KIND(w) == FK_NONINET || W_KIND(w) == FK_SYSTEM)
        return real->bind(fd, addr, len);
    if (len > sizeof copy) {
        errno = EINVAL; /* what the kernel answers */
        return -1;
    }
    if (shim_copy_in(&copy, addr, len) < 0)
        return -1;
    if (shim_prepare_bind(fd, (const struct sockaddr *)&copy, len, &storage, &use, &use_len) < 0)
        return -1;
    int rc = real->bind(fd, use, use_len);
    if (rc == 0 && W_KIND(fd_load(fd)) != FK_PACKET)
        fd_or(fd, W_BOUND);
    return rc;
}
