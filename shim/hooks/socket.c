/* socket.c: socket() and socketpair() hooks.  A new AF_INET/AF_INET6 socket is remembered as
 * "pending" (tied to its PvD at its first use, see decide.c), an AF_PACKET one as a packet
 * socket held to the PvD's interfaces at its first bind or send.  Under the null PvD (R13)
 * network sockets are refused at once with EACCES, so that programs fail fast.  Under any
 * PvD, the link-layer sockets the shim cannot hold to an interface are refused with EACCES:
 * SOCK_PACKET (the obsolete interface that names its device per datagram) and AF_XDP. */
#include <errno.h>
#include <sys/socket.h>

#include "core.h"
#include "log.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif

SHIM_API int socket(int domain, int type, int protocol)
{
    const struct shim_real_fns *real = shim_fns();
    int base = type & 0xF; /* without SOCK_NONBLOCK/SOCK_CLOEXEC */
    if (domain == AF_INET || domain == AF_INET6 || domain == AF_PACKET || domain == AF_XDP) {
        unsigned int slot = shim_effective_slot();
        if (slot == SLOT_NULL ||
            (slot != SLOT_NONE && (base == SOCK_PACKET || domain == AF_XDP))) {
            const char *why = slot == SLOT_NULL ? "the null PvD" : "a link-layer socket no PvD can hold";
            if (shim_debugging)
                shim_debug("socket(%d, %d) refused: %s (EACCES)", domain, base, why);
            if (shim_tracing)
                shim_trace_socket(-1, "socket", NULL, NULL, 0, "refused", why, EACCES);
            errno = EACCES;
            return -1;
        }
    }
    int fd = real->socket(domain, type, protocol);
    if (fd >= 0)
        shim_track_new(fd, base == SOCK_PACKET ? AF_PACKET : domain);
    return fd;
}

SHIM_API int socketpair(int domain, int type, int protocol, int sv[2])
{
    int rc = REAL(socketpair)(domain, type, protocol, sv);
    if (rc == 0) {
        shim_track_new(sv[0], domain);
        shim_track_new(sv[1], domain);
    }
    return rc;
}
