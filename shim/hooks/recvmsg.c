/* recvmsg.c: recvmsg() and recvmmsg() hooks.  A socket received from another process with
 * SCM_RIGHTS may have been connected or bound outside the PvD: each received descriptor is
 * looked at once (decide.c, shim_adopt_foreign), and one that does not belong to the PvD is
 * replaced, in this process, by a socket that fails every operation.  With no PvD in force,
 * or no control data, the calls cost one test. */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"

static void adopt_rights(const struct msghdr *msg)
{
    if (shim_effective_slot() == SLOT_NONE)
        return;
    int saved = errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(sizeof(int)))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            __builtin_memcpy(&fd, data + i * sizeof fd, sizeof fd);
            shim_adopt_foreign(fd);
        }
    }
    errno = saved;
}

SHIM_API ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t rc = REAL(recvmsg)(fd, msg, flags);
    /* the kernel has read and written msg: it is valid memory */
    if (rc >= 0 && SHIM_UNLIKELY(msg->msg_controllen != 0))
        adopt_rights(msg);
    return rc;
}

SHIM_API int recvmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags, struct timespec *timeout)
{
    int rc = REAL(recvmmsg)(fd, msgs, vlen, flags, timeout);
    for (int i = 0; i < rc; i++)
        if (SHIM_UNLIKELY(msgs[i].msg_hdr.msg_controllen != 0))
            adopt_rights(&msgs[i].msg_hdr);
    return rc;
}
