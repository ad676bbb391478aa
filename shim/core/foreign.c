/* foreign.c: descriptors this process did not create.  A socket received with SCM_RIGHTS
 * (recvmsg.c) or inherited across exec (from a shell's `3<>/dev/tcp/...`, inetd, socket
 * activation, an unscoped parent: looked at once at start-up) was made outside the PvD: it is
 * kept when it belongs to the PvD (or is tied at its first use, a listener at once), else
 * replaced, in this process only, by a socket of the null PvD. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "sockaddr.h"
#include "tie.h"

/* ---- descriptors from elsewhere ---- */
static void say_replaced(int fd, const char *why)
{
    shim_say("pvdrun shim: descriptor %d %s: replaced by a socket that fails every operation\n", fd, why);
}

/* Put a fresh socket of the same family and type, tied to the null PvD, in fd's place (in
 * this process only: the other process's socket is left as it is). */
static void replace_with_null(int fd, int family, const char *why)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        type = SOCK_DGRAM;
    int cloexec = fcntl(fd, F_GETFD) > 0 ? O_CLOEXEC : 0;
    int nfd = REAL(socket)(family == AF_PACKET ? AF_INET : family, type == SOCK_STREAM ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (nfd < 0 || REAL(dup3)(nfd, fd, cloexec) < 0) {
        /* no socket to put there: close it, which also stops the traffic */
        if (nfd >= 0)
            REAL(close)(nfd);
        REAL(close)(fd);
        fd_store(fd, 0);
        say_replaced(fd, why);
        return;
    }
    REAL(close)(nfd);
    fd_store(fd, W_MAKE(FK_NULLED, SLOT_NULL, family == AF_INET6 ? W_V6 : 0));
    say_replaced(fd, why);
}

void shim_adopt_foreign(int fd)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    unsigned int slot = shim_effective_slot();
    if (slot == SLOT_NONE || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return;
    if (domain == AF_PACKET) {
        struct sockaddr_ll ll;
        socklen_t ll_len = sizeof ll;
        if (slot == SLOT_NULL ||
            (getsockname(fd, (struct sockaddr *)&ll, &ll_len) == 0 && ll.sll_ifindex != 0 &&
             !shim_slot_has_ifindex(slot, (unsigned int)ll.sll_ifindex)))
            replace_with_null(fd, domain, "is a packet socket outside the PvD");
        else
            fd_store(fd, W_MAKE(FK_PACKET, slot, 0));
        return;
    }
    if (domain != AF_INET && domain != AF_INET6)
        return;
    uint32_t v6 = domain == AF_INET6 ? W_V6 : 0;
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    struct sockaddr_storage peer, local;
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    int connected = getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0;
    int bound = shim_bound_source(fd, &local, &local_len);
    int device = shim_bound_device(fd);
    if (connected && shim_addr_is_loopback((struct sockaddr *)&peer, peer_len)) {
        fd_store(fd, W_MAKE(FK_LOOPBACK, 0, v6));
        return;
    }
    if (!pvd) {
        replace_with_null(fd, domain, slot == SLOT_NULL ? "is a network socket in the null PvD" : "has no PvD");
        return;
    }
    int dev_ok = device > 0 && shim_slot_has_ifindex(slot, (unsigned int)device);
    int src_ok = !bound || shim_addr_is_wildcard((struct sockaddr *)&local, local_len) ||
                 shim_addr_in_pvd(pvd, (struct sockaddr *)&local, local_len) ||
                 shim_addr_is_loopback((struct sockaddr *)&local, local_len);
    if (device > 0 && !dev_ok) {
        replace_with_null(fd, domain, "is bound to an interface outside the PvD");
        return;
    }
    if (!src_ok) {
        replace_with_null(fd, domain, "has a source address outside the PvD");
        return;
    }
    if (connected && !dev_ok) {
        replace_with_null(fd, domain, "was connected outside the PvD");
        return;
    }
    /* not connected: tied at its first use, as a socket of this process (a listener now) */
    uint32_t w = W_MAKE(FK_PENDING, 0, v6 | W_ADOPTED | (dev_ok ? W_DEVBOUND : 0));
    fd_store(fd, w);
    int listening = 0;
    socklen_t l_len = sizeof listening;
    if (!connected && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l_len) == 0 && listening &&
        shim_prepare(fd, NULL, 0, OP_LISTEN, NULL) < 0)
        replace_with_null(fd, domain, "is a listener that cannot be tied to the PvD");
}

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
