/* mm.c: munmap(), mremap(), mprotect() and shmdt() hooks: memory that stops being readable
 * must not stay in uaccess.c's per-thread list of readable pages.  Each call bumps one
 * counter and goes on. */
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/shm.h>
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

SHIM_API int shmdt(const void *addr)
{
    int rc = (int)syscall(SYS_shmdt, addr);
    shim_mappings_changed();
    return rc;
}
