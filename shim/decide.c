/* decide.c: tie sockets to PvDs (R3, R4, R6) and fail closed.
 *
 * The rule (docs/shim.md): an AF_INET/AF_INET6 socket is tied to one PvD lazily, at its
 * first connect/sendto/sendmsg/sendmmsg/bind/listen, to the PvD in force then for the
 * calling thread (socket > thread > process > system default, R12).  Tying = device
 * binding to the PvD's interface (SO_BINDTOIFINDEX) and, when the PvD shares its interface
 * (srcbind=1), binding the source to one of the PvD's addresses (R6).  A socket whose
 * first operation is a connect to, or a bind on, a loopback address is left unscoped and
 * may then only talk to loopback.  Nothing ever falls back to another PvD. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "pvdd_client.h"
#include "route_check.h"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

/* Per PvD slot: IPv4 prefixes the route check found routes for through the PvD's
 * interface (a default route is prefix length 0).  Each entry is one 64-bit atomic:
 * bit 40 valid, bits 32-39 prefix length, bits 0-31 the prefix (host byte order). */
#define ROUTE_CACHE 8
static _Atomic uint64_t g_v4_routes[SHIM_MAX_PVDS][ROUTE_CACHE];
static atomic_uint g_v4_next[SHIM_MAX_PVDS];

static int v4_route_cached(unsigned int slot, struct in_addr dst)
{
    uint32_t a = ntohl(dst.s_addr);
    for (unsigned int i = 0; i < ROUTE_CACHE; i++) {
        uint64_t e = atomic_load_explicit(&g_v4_routes[slot - 1][i], memory_order_relaxed);
        if (!(e >> 40))
            continue;
        unsigned int plen = (unsigned int)((e >> 32) & 0xFF);
        uint32_t mask = plen == 0 ? 0 : 0xFFFFFFFFu << (32 - plen);
        if (((a ^ (uint32_t)e) & mask) == 0)
            return 1;
    }
    return 0;
}

static void v4_route_remember(unsigned int slot, struct in_addr prefix, unsigned int plen)
{
    if (plen > 32)
        return;
    unsigned int i = atomic_fetch_add(&g_v4_next[slot - 1], 1) % ROUTE_CACHE;
    uint64_t e = (1ull << 40) | ((uint64_t)plen << 32) | ntohl(prefix.s_addr);
    atomic_store_explicit(&g_v4_routes[slot - 1][i], e, memory_order_relaxed);
}

/* ---- address classification ---- */
static int sa_v4(const struct sockaddr *sa, socklen_t len, struct in_addr *out)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        *out = ((const struct sockaddr_in *)sa)->sin_addr;
        return 1;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(out, &a6->s6_addr[12], 4);
            return 1;
        }
    }
    return 0;
}

static const struct in6_addr *sa_v6(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(a6))
            return a6;
    }
    return NULL;
}

int shim_addr_is_loopback(const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (!sa)
        return 0;
    if (sa_v4(sa, len, &a4))
        return (ntohl(a4.s_addr) >> 24) == 127;
    a6 = sa_v6(sa, len);
    return a6 && IN6_IS_ADDR_LOOPBACK(a6);
}

static int addr_is_wildcard(const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6) &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        return 1;
    if (sa_v4(sa, len, &a4))
        return a4.s_addr == htonl(INADDR_ANY);
    a6 = sa_v6(sa, len);
    return a6 && IN6_IS_ADDR_UNSPECIFIED(a6);
}

static int addr_is_multicast(const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (sa_v4(sa, len, &a4))
        return IN_MULTICAST(ntohl(a4.s_addr));
    a6 = sa_v6(sa, len);
    return a6 && IN6_IS_ADDR_MULTICAST(a6);
}

static int addr_in_pvd(const struct pvd_scope *pvd, const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (sa_v4(sa, len, &a4)) {
        for (unsigned int i = 0; i < pvd->n_v4; i++)
            if (pvd->v4[i].s_addr == a4.s_addr)
                return 1;
        return 0;
    }
    a6 = sa_v6(sa, len);
    if (a6)
        for (unsigned int i = 0; i < pvd->n_v6; i++)
            if (memcmp(&pvd->v6[i], a6, sizeof *a6) == 0)
                return 1;
    return 0;
}

static int sa_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_port;
    if (sa->sa_family == AF_INET6)
        return ((const struct sockaddr_in6 *)sa)->sin6_port;
    return 0;
}

/* A source address of the PvD for a socket of `family` talking to dst (may be NULL). */
static int choose_source(const struct pvd_scope *pvd, int family, const struct sockaddr *dst, socklen_t dstlen,
                         in_port_t port, struct sockaddr_storage *out, socklen_t *out_len)
{
    struct in_addr d4;
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)out;
        if (pvd->n_v4 == 0)
            return -1;
        s4->sin_family = AF_INET;
        s4->sin_port = port;
        s4->sin_addr = pvd->v4[0];
        *out_len = sizeof *s4;
        return 0;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = port;
    *out_len = sizeof *s6;
    if (dst && sa_v4(dst, dstlen, &d4)) { /* v4-mapped destination: v4-mapped source */
        if (pvd->n_v4 == 0)
            return -1;
        s6->sin6_addr.s6_addr[10] = 0xff;
        s6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&s6->sin6_addr.s6_addr[12], &pvd->v4[0], 4);
        return 0;
    }
    const struct in6_addr *d6 = dst ? sa_v6(dst, dstlen) : NULL;
    int want_ll = d6 && IN6_IS_ADDR_LINKLOCAL(d6);
    for (unsigned int i = 0; i < pvd->n_v6; i++) {
        if (IN6_IS_ADDR_LINKLOCAL(&pvd->v6[i]) != want_ll)
            continue;
        s6->sin6_addr = pvd->v6[i];
        if (want_ll)
            s6->sin6_scope_id = pvd->info.ifindexes[0];
        return 0;
    }
    return -1;
}

/* ---- kernel mechanisms ---- */
static int bind_device(int fd, const struct pvd_scope *pvd)
{
    int ifindex = (int)pvd->info.ifindexes[0];
    if (REAL(setsockopt)(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof ifindex) == 0)
        return 0;
    if (errno == EPERM) { /* unprivileged, already device-bound: fine if to this very interface */
        int bound = 0, saved = errno;
        socklen_t len = sizeof bound;
        if (getsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &bound, &len) == 0 && bound == ifindex)
            return 0;
        errno = saved;
    }
    if (errno == ENOPROTOOPT) { /* kernel < 5.0: by name */
        const char *name = pvd->info.interfaces[0];
        if (REAL(setsockopt)(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name) + 1) == 0)
            return 0;
    }
    if (errno == ENODEV)
        errno = ENETDOWN; /* the PvD's interface is gone: the PvD is gone */
    return -1;
}

static int needs_route_check(struct in_addr d4)
{
    uint32_t a = ntohl(d4.s_addr);
    return !(IN_MULTICAST(a) || a == INADDR_BROADCAST || (a >> 16) == 0xA9FE /* 169.254/16 */);
}

/* Tie fd to pvd: device binding, IPv4 route check, source binding.  Adds W_* to *flags. */
static int apply(int fd, unsigned int slot, const struct pvd_scope *pvd, uint32_t w, const struct sockaddr *dst,
                 socklen_t dstlen, enum shim_op op, uint32_t *flags)
{
    struct in_addr d4;
    if (!(w & W_DEVBOUND)) {
        if (bind_device(fd, pvd) < 0)
            return -1;
        *flags |= W_DEVBOUND;
    }
    if (pvd->info.mark && !(w & W_MARKED)) {
        /* routing isolation / restricted PvD: only pvdd may set the mark (CAP_NET_ADMIN) */
        if (shim_pvdd_mark(fd, pvd->info.handle) < 0)
            return -1;
        *flags |= W_MARKED;
    }
    if (op != OP_LISTEN && dst && sa_v4(dst, dstlen, &d4) && needs_route_check(d4) && !v4_route_cached(slot, d4)) {
        struct in_addr prefix;
        unsigned int plen;
        if (!shim_v4_route_exists(d4, (int)pvd->info.ifindexes[0], pvd->info.mark, &prefix, &plen)) {
            errno = ENETUNREACH;
            return -1;
        }
        v4_route_remember(slot, prefix, plen);
    }
    if (pvd->info.srcbind && op != OP_LISTEN && !(w & W_BOUND)) {
        struct sockaddr_storage cur, src;
        socklen_t cur_len = sizeof cur, src_len = 0;
        int family = (w & W_V6) ? AF_INET6 : AF_INET;
        if (getsockname(fd, (struct sockaddr *)&cur, &cur_len) == 0 && sa_port((struct sockaddr *)&cur) != 0) {
            /* bound earlier (not through us): only a PvD address will do */
            if (!addr_in_pvd(pvd, (struct sockaddr *)&cur, cur_len)) {
                errno = ENETUNREACH;
                return -1;
            }
        } else {
            if (choose_source(pvd, family, dst, dstlen, 0, &src, &src_len) < 0) {
                errno = ENETUNREACH; /* the PvD has no address of this family */
                return -1;
            }
            if (REAL(bind)(fd, (struct sockaddr *)&src, src_len) < 0)
                return -1;
        }
        *flags |= W_BOUND;
    }
    return 0;
}

/* Another thread is tying the socket: wait for it.  A socket left busy for good (its
 * tying thread vanished in a fork() child) fails with EAGAIN rather than hang. */
#define BUSY_SPINS_MAX 100000
static int wait_busy(unsigned int *spins)
{
    if (++*spins > BUSY_SPINS_MAX) {
        errno = EAGAIN;
        return -1;
    }
    sched_yield();
    return 0;
}

/* First sight of an fd: find out what it is.  Stores the result when it is a socket. */
static uint32_t adopt(int fd, const struct sockaddr *dst, enum shim_op op)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    uint32_t w;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return W_MAKE(FK_NONINET, 0, 0); /* not a socket (or bad fd): the real call reports it */
    if (domain != AF_INET && domain != AF_INET6) {
        w = W_MAKE(FK_NONINET, 0, 0);
    } else {
        w = W_MAKE(FK_PENDING, 0, domain == AF_INET6 ? W_V6 : 0);
        if (!dst && op == OP_SEND) { /* inherited and maybe connected: to loopback? */
            struct sockaddr_storage peer;
            socklen_t peer_len = sizeof peer;
            if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0 &&
                shim_addr_is_loopback((struct sockaddr *)&peer, peer_len))
                w = W_MAKE(FK_LOOPBACK, 0, W_FLAGS(w));
        }
    }
    fd_cas(fd, 0, w);
    return w;
}

int shim_prepare(int fd, const struct sockaddr *dst, socklen_t dstlen, enum shim_op op)
{
    int saved = errno;
    unsigned int spins = 0;
    for (;;) {
        uint32_t w = fd_load(fd);
        if (W_KIND(w) == FK_UNKNOWN)
            w = adopt(fd, dst, op);
        switch (W_KIND(w)) {
        case FK_SCOPED:
        case FK_SYSTEM:
        case FK_NONINET:
            errno = saved;
            return 0;
        case FK_NULLED:
            errno = ENETUNREACH;
            return -1;
        case FK_LOOPBACK:
            if (!dst || dst->sa_family == AF_UNSPEC || shim_addr_is_loopback(dst, dstlen)) {
                errno = saved;
                return 0;
            }
            errno = ENETUNREACH; /* a loopback-only socket never reaches out */
            return -1;
        case FK_BUSY:
            if (wait_busy(&spins) < 0)
                return -1;
            continue;
        default:
            break; /* FK_PENDING: decide now */
        }
        if (dst && dst->sa_family == AF_UNSPEC) { /* connect(AF_UNSPEC): dissolve association */
            errno = saved;
            return 0;
        }
        if (dst && !(w & W_EXPLICIT) && shim_addr_is_loopback(dst, dstlen)) {
            if (op == OP_CONNECT && !fd_cas(fd, w, W_MAKE(FK_LOOPBACK, 0, W_FLAGS(w))))
                continue;
            errno = saved;
            return 0; /* loopback stays reachable */
        }
        unsigned int slot = (w & W_EXPLICIT) ? W_SLOT(w) : shim_effective_slot();
        if (slot == SLOT_NONE) {
            if (!fd_cas(fd, w, W_MAKE(FK_SYSTEM, 0, W_FLAGS(w))))
                continue;
            errno = saved;
            return 0;
        }
        if (slot == SLOT_NULL) {
            if (!fd_cas(fd, w, W_MAKE(FK_NULLED, SLOT_NULL, W_FLAGS(w))))
                continue;
            errno = ENETUNREACH;
            return -1;
        }
        const struct pvd_scope *pvd = shim_pvd_at(slot);
        if (!pvd) {
            errno = ENETUNREACH;
            return -1;
        }
        if (!fd_cas(fd, w, W_MAKE(FK_BUSY, slot, W_FLAGS(w))))
            continue;
        uint32_t flags = W_FLAGS(w);
        if (apply(fd, slot, pvd, w, dst, dstlen, op, &flags) < 0) {
            int e = errno;
            fd_store(fd, w | (flags & W_DEVBOUND)); /* still pending: retried next time */
            errno = e;
            return -1;
        }
        fd_store(fd, W_MAKE(FK_SCOPED, slot, flags));
        errno = saved;
        return 0;
    }
}

int shim_prepare_bind(int fd, const struct sockaddr *addr, socklen_t len, struct sockaddr_storage *storage,
                      const struct sockaddr **use, socklen_t *use_len)
{
    int saved = errno;
    unsigned int spins = 0;
    *use = addr;
    *use_len = len;
    for (;;) {
        uint32_t w = fd_load(fd);
        if (W_KIND(w) == FK_UNKNOWN)
            w = adopt(fd, NULL, OP_LISTEN);
        unsigned int kind = W_KIND(w);
        if (kind == FK_NONINET || kind == FK_SYSTEM || kind == FK_LOOPBACK) {
            errno = saved;
            return 0;
        }
        if (kind == FK_NULLED) {
            errno = EADDRNOTAVAIL; /* the null PvD has no address */
            return -1;
        }
        if (kind == FK_BUSY) {
            if (wait_busy(&spins) < 0)
                return -1;
            continue;
        }
        if (!addr || len < (socklen_t)sizeof(sa_family_t) ||
            (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)) {
            errno = saved;
            return 0; /* the kernel reports the error */
        }
        int pending = kind == FK_PENDING;
        if (shim_addr_is_loopback(addr, len)) {
            if (pending && !(w & W_EXPLICIT)) {
                if (!fd_cas(fd, w, W_MAKE(FK_LOOPBACK, 0, W_FLAGS(w))))
                    continue;
                errno = saved;
                return 0;
            }
            errno = EADDRNOTAVAIL; /* loopback is not an address of the socket's PvD */
            return -1;
        }
        unsigned int slot = (!pending || (w & W_EXPLICIT)) ? W_SLOT(w) : shim_effective_slot();
        if (slot == SLOT_NONE) {
            if (!fd_cas(fd, w, W_MAKE(FK_SYSTEM, 0, W_FLAGS(w))))
                continue;
            errno = saved;
            return 0;
        }
        if (slot == SLOT_NULL) {
            if (!fd_cas(fd, w, W_MAKE(FK_NULLED, SLOT_NULL, W_FLAGS(w))))
                continue;
            errno = EADDRNOTAVAIL;
            return -1;
        }
        const struct pvd_scope *pvd = shim_pvd_at(slot);
        if (!pvd) {
            errno = EADDRNOTAVAIL;
            return -1;
        }
        int wildcard = addr_is_wildcard(addr, len);
        if (!wildcard && !addr_is_multicast(addr, len) && !addr_in_pvd(pvd, addr, len)) {
            errno = EADDRNOTAVAIL; /* outside the PvD (R6) */
            return -1;
        }
        if (wildcard && pvd->info.srcbind) { /* shared interface: narrow to the PvD's address */
            socklen_t new_len = 0;
            if (choose_source(pvd, addr->sa_family, NULL, 0, (in_port_t)sa_port(addr), storage, &new_len) < 0) {
                errno = EADDRNOTAVAIL;
                return -1;
            }
            *use = (const struct sockaddr *)storage;
            *use_len = new_len;
        }
        if (pending) {
            if (!fd_cas(fd, w, W_MAKE(FK_BUSY, slot, W_FLAGS(w))))
                continue;
            if (!(w & W_DEVBOUND) && bind_device(fd, pvd) < 0) {
                int e = errno;
                fd_store(fd, w);
                errno = e;
                return -1;
            }
            fd_store(fd, W_MAKE(FK_SCOPED, slot, W_FLAGS(w) | W_DEVBOUND));
        }
        errno = saved;
        return 0;
    }
}

int shim_check_cmsgs(uint32_t w, const struct msghdr *msg)
{
    const struct pvd_scope *pvd = shim_pvd_at(W_SLOT(w));
    struct cmsghdr *c;
    if (W_KIND(w) != FK_SCOPED || !pvd || !msg || !msg->msg_control)
        return 0;
    unsigned int ifindex = pvd->info.ifindexes[0];
    for (c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            if (info.ipi_ifindex != 0 && (unsigned int)info.ipi_ifindex != ifindex) {
                errno = EINVAL; /* another interface: not this socket's PvD */
                return -1;
            }
            struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = info.ipi_spec_dst};
            if (src.sin_addr.s_addr != htonl(INADDR_ANY) && !addr_in_pvd(pvd, (struct sockaddr *)&src, sizeof src)) {
                errno = EADDRNOTAVAIL;
                return -1;
            }
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            if (info.ipi6_ifindex != 0 && info.ipi6_ifindex != ifindex) {
                errno = EINVAL;
                return -1;
            }
            struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_addr = info.ipi6_addr};
            if (!IN6_IS_ADDR_UNSPECIFIED(&info.ipi6_addr) && !addr_in_pvd(pvd, (struct sockaddr *)&src, sizeof src)) {
                errno = EADDRNOTAVAIL;
                return -1;
            }
        }
    }
    return 0;
}

/* The PvD a socket is tied to, or would be tied to by its next operation (for checks of
 * options that take effect later).  SLOT_NONE when no PvD applies. */
static unsigned int slot_for_option(int fd)
{
    uint32_t w = fd_load(fd);
    if (W_KIND(w) == FK_UNKNOWN)
        w = adopt(fd, NULL, OP_LISTEN);
    switch (W_KIND(w)) {
    case FK_SCOPED:
    case FK_BUSY:
    case FK_NULLED:
        return W_SLOT(w);
    case FK_PENDING:
        return (w & W_EXPLICIT) ? W_SLOT(w) : shim_effective_slot();
    default:
        return SLOT_NONE; /* not inet, loopback-only, or no PvD: the program's business */
    }
}

int shim_check_device_change(int fd, int ifindex)
{
    unsigned int slot = slot_for_option(fd);
    if (slot == SLOT_NONE)
        return 0;
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (pvd && ifindex > 0 && (unsigned int)ifindex == pvd->info.ifindexes[0])
        return 0; /* the PvD's own interface */
    errno = EPERM; /* leaving the PvD's interface (or unbinding) is not allowed */
    return -1;
}

int shim_check_sticky_pktinfo6(int fd, const struct in6_pktinfo *info)
{
    unsigned int slot = slot_for_option(fd);
    if (slot == SLOT_NONE)
        return 0;
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (!pvd) {
        errno = EPERM;
        return -1;
    }
    if (info->ipi6_ifindex != 0 && info->ipi6_ifindex != pvd->info.ifindexes[0]) {
        errno = EINVAL;
        return -1;
    }
    struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_addr = info->ipi6_addr};
    if (!IN6_IS_ADDR_UNSPECIFIED(&info->ipi6_addr) && !addr_in_pvd(pvd, (struct sockaddr *)&src, sizeof src)) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}

int shim_bind_socket(int fd, pvd_handle_t handle)
{
    int domain = 0;
    socklen_t len = sizeof domain;
    unsigned int slot = shim_pvd_slot(handle);
    if (handle != PVD_HANDLE_UNSPEC && slot == 0) {
        errno = ENOENT;
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return -1; /* EBADF, ENOTSOCK */
    if (domain != AF_INET && domain != AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    uint32_t v6 = domain == AF_INET6 ? W_V6 : 0;
    unsigned int spins = 0;
    for (;;) {
        uint32_t w = fd_load(fd);
        unsigned int kind = W_KIND(w);
        if (kind == FK_BUSY) {
            if (wait_busy(&spins) < 0)
                return -1;
            continue;
        }
        if (kind == FK_SCOPED || kind == FK_NULLED || kind == FK_LOOPBACK ||
            (kind == FK_PENDING && (w & W_EXPLICIT))) {
            if ((kind == FK_SCOPED || kind == FK_NULLED || kind == FK_PENDING) && W_SLOT(w) == slot)
                return 0;
            errno = EBUSY; /* already tied: a socket never changes PvD (R4) */
            return -1;
        }
        /* unknown, pending, system default: may be tied now */
        if (slot == SLOT_NONE) {
            if (!fd_cas(fd, w, W_MAKE(FK_PENDING, 0, v6 | (w & W_BOUND))))
                continue;
            return 0;
        }
        if (slot == SLOT_NULL) {
            if (!fd_cas(fd, w, W_MAKE(FK_NULLED, SLOT_NULL, v6 | W_EXPLICIT)))
                continue;
            return 0;
        }
        const struct pvd_scope *pvd = shim_pvd_at(slot);
        if (!pvd) {
            errno = ENOENT;
            return -1;
        }
        if (!fd_cas(fd, w, W_MAKE(FK_BUSY, slot, v6)))
            continue;
        if (bind_device(fd, pvd) < 0) {
            int e = errno;
            fd_store(fd, w);
            errno = e;
            return -1;
        }
        uint32_t flags = v6 | W_EXPLICIT | W_DEVBOUND | (w & W_BOUND);
        if (shim_is_preloaded()) {
            /* the hooks finish the job at the first operation (route check, source) */
            fd_store(fd, W_MAKE(FK_PENDING, slot, flags));
            return 0;
        }
        /* not preloaded: no hook will run later, so bind the source now when needed */
        uint32_t extra = 0;
        if (apply(fd, slot, pvd, W_MAKE(FK_PENDING, slot, flags), NULL, 0, OP_SEND, &extra) < 0) {
            int e = errno;
            fd_store(fd, W_MAKE(FK_PENDING, slot, flags));
            errno = e;
            return -1;
        }
        fd_store(fd, W_MAKE(FK_SCOPED, slot, flags | extra));
        return 0;
    }
}

void shim_track_new(int fd, int family)
{
    if (family == AF_INET || family == AF_INET6)
        fd_store(fd, W_MAKE(FK_PENDING, 0, family == AF_INET6 ? W_V6 : 0));
    else
        fd_store(fd, W_MAKE(FK_NONINET, 0, 0));
}

void shim_track_accepted(int listener, int fd)
{
    uint32_t w = fd_load(listener);
    switch (W_KIND(w)) {
    case FK_SCOPED:
    case FK_LOOPBACK:
    case FK_SYSTEM:
    case FK_NULLED:
        /* the kernel copies the listener's device binding; the PvD is the listener's */
        fd_store(fd, W_MAKE(W_KIND(w), W_SLOT(w), W_FLAGS(w) | W_BOUND | W_DEVBOUND));
        break;
    case FK_NONINET:
        fd_store(fd, W_MAKE(FK_NONINET, 0, 0));
        break;
    default:
        fd_store(fd, 0);
        break;
    }
}

void shim_track_dup(int oldfd, int newfd)
{
    if (oldfd != newfd)
        fd_store(newfd, fd_load(oldfd));
}

void shim_track_close(int fd) { fd_store(fd, 0); }
