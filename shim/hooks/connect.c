/* connect.c: connect() hook: tie the socket to its PvD first (or refuse).  A scoped program's
 * AF_UNIX connect to the host's resolver daemons (nscd, systemd-resolved: they answer from
 * outside the PvD) is refused with ECONNREFUSED (core/host_resolvers.c); inet sockets never
 * pay for that check (their word says what they are). */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"
#include "host_resolvers.h"
#include "uaccess.h"

SHIM_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_KIND(w) == FK_SYSTEM || (W_KIND(w) == FK_SCOPED && !(w & W_DSTCHECK))))
        return real->connect(fd, addr, len);
    if (W_KIND(w) == FK_NONINET && shim_effective_slot() == SLOT_NONE)
        return real->connect(fd, addr, len);
    struct sockaddr_storage copy;
    if (len > sizeof copy) {
        errno = EINVAL; /* what the kernel answers */
        return -1;
    }
    if (shim_copy_in(&copy, addr, len) < 0)
        return -1;
    if (len >= sizeof copy.ss_family && copy.ss_family == AF_UNIX && shim_effective_slot() != SLOT_NONE &&
        shim_is_host_resolver((const struct sockaddr *)&copy, len)) {
        errno = ECONNREFUSED;
        return -1;
    }
    if (W_KIND(w) == FK_NONINET)
        return real->connect(fd, (const struct sockaddr *)&copy, len);
    if (shim_prepare(fd, (const struct sockaddr *)&copy, len, OP_CONNECT, NULL) < 0)
        return -1;
    return real->connect(fd, (const struct sockaddr *)&copy, len);
}
