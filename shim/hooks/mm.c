/* mm.c: hooks on the calls that take memory away (munmap, mremap, mprotect, shmdt, an mmap
 * with MAP_FIXED over existing pages, and the same made through syscall(2)): a page that
 * stops being readable must not stay in uaccess.c's per-thread list of readable pages.  Each
 * call bumps one counter and goes on. */
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"
#include "uaccess.h"

SHIM_API int munmap(void *addr, size_t len)
{
    const struct shim_real_fns *real = shim_fns();
    int rc = real->munmap(addr, len);
    shim_mappings_changed();
    return rc;
}

SHIM_API void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    const struct shim_real_fns *real = shim_fns();
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    void *rc = real->mremap(old, old_len, new_len, flags, new_addr);
    shim_mappings_changed();
    return rc;
}

SHIM_API int mprotect(void *addr, size_t len, int prot)
{
    const struct shim_real_fns *real = shim_fns();
    int rc = real->mprotect(addr, len, prot);
    shim_mappings_changed();
    return rc;
}

static void *fixed_mmap(void *(*real)(void *, size_t, int, int, int, off_t), void *addr, size_t len, int prot,
                        int flags, int fd, off_t off)
{
    void *rc = real(addr, len, prot, flags, fd, off);
    if (flags & MAP_FIXED) /* may have replaced readable pages */
        shim_mappings_changed();
    return rc;
}

SHIM_API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return fixed_mmap(shim_fns()->mmap, addr, len, prot, flags, fd, off);
}

SHIM_API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return fixed_mmap(shim_fns()->mmap64, addr, len, prot, flags, fd, off);
}

SHIM_API int shmdt(const void *addr)
{
    int rc = (int)shim_fns()->syscall(SYS_shmdt, addr);
    shim_mappings_changed();
    return rc;
}

/* syscall(2): a program that makes its socket calls through libc's syscall() function gets
 * the same hooks as through the named functions (same return convention: -1 and errno);
 * mapping changes invalidate uaccess.c's cache.  Up to six register-sized arguments are
 * passed on, as libc's syscall() does. */
SHIM_API long syscall(long number, ...)
{
    const struct shim_real_fns *real = shim_fns();
    long a[6];
    va_list ap;
    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    switch (number) {
    case SYS_socket:
        return socket((int)a[0], (int)a[1], (int)a[2]);
    case SYS_connect:
        return connect((int)a[0], (const struct sockaddr *)a[1], (socklen_t)a[2]);
    case SYS_bind:
        return bind((int)a[0], (const struct sockaddr *)a[1], (socklen_t)a[2]);
    case SYS_listen:
        return listen((int)a[0], (int)a[1]);
    case SYS_sendto:
        return sendto((int)a[0], (const void *)a[1], (size_t)a[2], (int)a[3], (const struct sockaddr *)a[4],
                      (socklen_t)a[5]);
    case SYS_sendmsg:
        return sendmsg((int)a[0], (const struct msghdr *)a[1], (int)a[2]);
    case SYS_sendmmsg:
        return sendmmsg((int)a[0], (struct mmsghdr *)a[1], (unsigned int)a[2], (int)a[3]);
    case SYS_setsockopt:
        return setsockopt((int)a[0], (int)a[1], (int)a[2], (const void *)a[3], (socklen_t)a[4]);
    case SYS_recvmsg:
        return recvmsg((int)a[0], (struct msghdr *)a[1], (int)a[2]);
    case SYS_accept:
        return accept((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2]);
    case SYS_accept4:
        return accept4((int)a[0], (struct sockaddr *)a[1], (socklen_t *)a[2], (int)a[3]);
    case SYS_close:
        return close((int)a[0]);
    case SYS_dup:
        return dup((int)a[0]);
    case SYS_dup3:
        return dup3((int)a[0], (int)a[1], (int)a[2]);
#ifdef SYS_dup2
    case SYS_dup2:
        return dup2((int)a[0], (int)a[1]);
#endif
    default:
        break;
    }
    long rc = real->syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
    switch (number) {
    case SYS_munmap:
    case SYS_mremap:
    case SYS_mprotect:
    case SYS_pkey_mprotect:
    case SYS_shmdt:
        shim_mappings_changed();
        break;
    case SYS_mmap:
        if (a[3] & MAP_FIXED)
            shim_mappings_changed();
        break;
    default:
        break;
    }
    return rc;
}
