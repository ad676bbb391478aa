/* listen.c: listen() hook: a listener is tied to its PvD before it accepts anything, so
 * only connections arriving through the PvD's interface reach it. */
#include <sys/socket.h>

#include "core.h"

SHIM_API int listen(int fd, int backlog)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_IS_PASS(w)))
        return real->listen(fd, backlog);
    if (shim_prepare(fd, NULL, 0, OP_LISTEN, NULL) < 0)
        return -1;
    return real->listen(fd, backlog);
}
