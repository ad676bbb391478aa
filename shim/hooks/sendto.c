/* sendto.c: sendto() hook.  On a socket already tied to its PvD: one table read and the
 * real call; an IPv6 one also has its destination's scope ID checked (decide.c). */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"
#include "uaccess.h"

SHIM_API ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_SEND_PASS(w) || (W_KIND(w) == FK_SCOPED && (!addr || !(w & W_DSTCHECK)))))
        return real->sendto(fd, buf, n, flags, addr, len);
    struct sockaddr_storage copy;
    const struct sockaddr *dst = NULL;
    if (addr) {
        if (len > sizeof copy) {
            errno = EINVAL; /* what the kernel answers */
            return -1;
        }
        if (shim_copy_in(&copy, addr, len) < 0)
            return -1;
        dst = (const struct sockaddr *)&copy;
    }
    if (shim_prepare(fd, dst, len, OP_SEND, NULL) < 0)
        return -1;
    return real->sendto(fd, buf, n, flags, dst, len); /* the checked copy */
}
