/* inherit.c: descriptors a scoped program inherits across exec (from a shell's
 * `3<>/dev/tcp/...`, inetd, socket activation, an unscoped parent) were opened outside the
 * PvD.  At start-up each open network socket is looked at as a received one is
 * (decide.c, shim_adopt_foreign): kept when it belongs to the PvD (or is tied at its first
 * use), else replaced by a socket that fails every operation. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

struct linux_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

void shim_adopt_inherited(void)
{
    char buf[4096];
    int saved = errno;
    if (shim_effective_slot() == SLOT_NONE)
        return;
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return; /* no /proc: such descriptors are tied at their first hooked use only */
    for (;;) {
        long n = REAL(syscall)(SYS_getdents64, dir, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            int fd = atoi(d->d_name);
            if (fd != dir)
                shim_adopt_foreign(fd);
        }
    }
    REAL(close)(dir);
    errno = saved;
}
