/* sendmsg.c: sendmsg() and sendmmsg() hooks.  The msghdr, its destination and its control
 * messages are read through uaccess.h (EFAULT, never a crash); sendmsg gives the kernel the
 * checked copies. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core.h"
#include "uaccess.h"

/* Copy msg and its destination; NULL msg_name when it names none (as the kernel reads it). */
static int copy_msg(const struct msghdr *msg, struct msghdr *m, struct sockaddr_storage *name)
{
    if (shim_copy_in(m, msg, sizeof *m) < 0)
        return -1;
    if (!m->msg_name || m->msg_namelen == 0) {
        m->msg_name = NULL;
        m->msg_namelen = 0;
        return 0;
    }
    if (m->msg_namelen > sizeof *name)
        m->msg_namelen = sizeof *name; /* the kernel reads no more than this */
    if (shim_copy_in(name, m->msg_name, m->msg_namelen) < 0)
        return -1;
    m->msg_name = name;
    return 0;
}

static int check_msg(int fd, uint32_t w, const struct msghdr *m)
{
    uint32_t wd = w;
    if (!(W_KIND(w) == FK_SCOPED && !(m->msg_name && (w & W_DSTCHECK))) &&
        shim_prepare(fd, m->msg_name, m->msg_namelen, OP_SEND, &wd) < 0)
        return -1;
    if (m->msg_controllen && shim_check_cmsgs(wd, m->msg_control, m->msg_controllen) < 0)
        return -1;
    return 0;
}

SHIM_API ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_SEND_PASS(w)))
        return real->sendmsg(fd, msg, flags);
    struct msghdr m;
    struct sockaddr_storage name;
    if (copy_msg(msg, &m, &name) < 0 || check_msg(fd, w, &m) < 0)
        return -1;
    return real->sendmsg(fd, &m, flags);
}

/* Every message is checked; the batch is cut before the first refused one (which then fails
 * alone, as sendmmsg reports an error only for the first message).  The kernel is given the
 * program's array (it writes msg_len back): a thread that rewrites a message between the
 * check and the call is not defended against here (strict mode is; docs/security.md). */
SHIM_API int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags)
{
    const struct shim_real_fns *real = shim_fns();
    uint32_t w = fd_load(fd);
    if (SHIM_LIKELY(W_SEND_PASS(w)))
        return real->sendmmsg(fd, msgs, vlen, flags);
    if (vlen > UIO_MAXIOV)
        vlen = UIO_MAXIOV; /* the kernel sends no more */
    for (unsigned int i = 0; i < vlen; i++) {
        struct msghdr m;
        struct sockaddr_storage name;
        if (copy_msg(&msgs[i].msg_hdr, &m, &name) < 0 || check_msg(fd, w, &m) < 0) {
            if (i == 0)
                return -1;
            vlen = i;
            break;
        }
        uint32_t now = fd_load(fd);
        if (W_KIND(now) == FK_SCOPED || W_SEND_PASS(now))
            w = now; /* tied by the first message */
    }
    return real->sendmmsg(fd, msgs, vlen, flags);
}
