/* sendmsg.c: sendmsg() and sendmmsg() hooks. */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"

SHIM_API ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_IS_PASS(w))) {
        if (SHIM_LIKELY(!msg || !msg->msg_controllen || W_KIND(w) != FK_SCOPED) || shim_check_cmsgs(w, msg) == 0)
            return real->sendmsg(fd, msg, flags);
        return -1;
    }
    if (shim_prepare(fd, msg ? (const struct sockaddr *)msg->msg_name : NULL, msg ? msg->msg_namelen : 0,
                     OP_SEND) < 0)
        return -1;
    if (msg && msg->msg_controllen && shim_check_cmsgs(fd_load(fd), msg) < 0)
        return -1;
    return real->sendmsg(fd, msg, flags);
}

/* Every message's destination is checked; the batch is cut before the first refused one
 * (which then fails alone, as sendmmsg reports an error only for the first message). */
SHIM_API int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (!msgs)
        return real->sendmmsg(fd, msgs, vlen, flags);
    int decided = W_IS_PASS(w);
    for (unsigned int i = 0; i < vlen; i++) {
        const struct msghdr *m = &msgs[i].msg_hdr;
        if ((!decided && shim_prepare(fd, (const struct sockaddr *)m->msg_name, m->msg_namelen, OP_SEND) < 0) ||
            (m->msg_controllen && shim_check_cmsgs(fd_load(fd), m) < 0)) {
            if (i == 0)
                return -1;
            vlen = i;
            break;
        }
        decided = decided || W_IS_PASS(fd_load(fd)); /* tied: the device binding covers the rest */
    }
    return real->sendmmsg(fd, msgs, vlen, flags);
}
