/* fdtrack.c: close(), dup(), dup2(), dup3() and fcntl(F_DUPFD*) hooks keep the per-fd table
 * right when descriptors are closed or copied. */
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "core.h"

SHIM_API int close(int fd)
{
    const struct shim_real_fns *real = shim_fns();
    shim_track_close(fd); /* before: once closed, another thread may reuse the number */
    return real->close(fd);
}

SHIM_API int dup(int fd)
{
    int nfd = REAL(dup)(fd);
    if (nfd >= 0)
        shim_track_dup(fd, nfd);
    return nfd;
}

SHIM_API int dup2(int fd, int nfd)
{
    int rc = REAL(dup2)(fd, nfd);
    if (rc >= 0)
        shim_track_dup(fd, rc);
    return rc;
}

SHIM_API int dup3(int fd, int nfd, int flags)
{
    int rc = REAL(dup3)(fd, nfd, flags);
    if (rc >= 0)
        shim_track_dup(fd, rc);
    return rc;
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
    int rc = real(fd, cmd, arg);
    if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        shim_track_dup(fd, rc);
    return rc;
}

/* fcntl's third argument is an int or a pointer; passing it on as a pointer-sized value is
 * what glibc itself does. */
SHIM_API int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

SHIM_API int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(REAL(fcntl64), fd, cmd, arg);
}
