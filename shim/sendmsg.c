/* sendmsg.c: sendmsg() and sendmmsg() hooks. */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"

SHIM_API ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_IS_PASS(w)))
        return real->sendmsg(fd, msg, flags);
    if (shim_prepare(fd, msg ? (const struct sockaddr *)msg->msg_name : NULL, msg ? msg->msg_namelen : 0,
                     OP_SEND) < 0)
        return -1;
    return real->sendmsg(fd, msg, flags);
}

/* Every message's destination is checked; the batch is cut before the first refused one
 * (which then fails alone, as sendmmsg reports an error only for the first message). */
SHIM_API int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_IS_PASS(w)) || !msgs)
        return real->sendmmsg(fd, msgs, vlen, flags);
    for (unsigned int i = 0; i < vlen; i++) {
        const struct msghdr *m = &msgs[i].msg_hdr;
        if (shim_prepare(fd, (const struct sockaddr *)m->msg_name, m->msg_namelen, OP_SEND) < 0) {
            if (i == 0)
                return -1;
            vlen = i;
            break;
        }
        if (W_IS_PASS(fd_load(fd)))
            break; /* decided now (tied: the device binding covers the rest) */
    }
    return real->sendmmsg(fd, msgs, vlen, flags);
}
