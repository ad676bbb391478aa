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
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "pvdd_client.h"
#include "route_check.h"
#include "uaccess.h"


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

/* ---- the PvD's interfaces ---- */
int shim_slot_has_ifindex(unsigned int slot, unsigned int ifindex)
{
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (!pvd || ifindex == 0)
        return 0;
    for (unsigned int i = 0; i < pvd->info.n_interfaces; i++)
        if (pvd->info.ifindexes[i] == ifindex)
            return 1;
    return 0;
}

unsigned int shim_slot_ifindex(unsigned int slot)
{
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    return pvd ? pvd->info.ifindexes[0] : 0;
}

int shim_slot_has_v4(unsigned int slot, struct in_addr addr)
{
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = addr};
    return pvd && addr_in_pvd(pvd, (struct sockaddr *)&sin, sizeof sin);
}

/* ---- kernel mechanisms ---- */
static int bound_device(int fd)
{
    int bound = 0;
    socklen_t len = sizeof bound;
    if (getsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &bound, &len) < 0)
        return -1;
    return bound;
}

/* Bind fd to the PvD's interface.  A socket first seen already open (adopted) may carry a
 * device binding of its own: one of the PvD's interfaces is kept, another is refused (EPERM)
 * rather than silently moved, since the socket may be shared with another process. */
/* The PvD's interface a socket is bound to: the zone of a link-local or multicast IPv6
 * destination when it names one of the PvD's interfaces, else the PvD's first. */
static int pick_ifindex(const struct pvd_scope *pvd, const struct sockaddr *dst, socklen_t dstlen)
{
    if (dst && dst->sa_family == AF_INET6 && dstlen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        uint32_t zone = ((const struct sockaddr_in6 *)dst)->sin6_scope_id;
        for (unsigned int i = 0; zone && i < pvd->info.n_interfaces; i++)
            if (pvd->info.ifindexes[i] == zone)
                return (int)zone;
    }
    return (int)pvd->info.ifindexes[0];
}

static int bind_device(int fd, const struct pvd_scope *pvd, int ifindex, int adopted)
{
    if (adopted) {
        int bound = bound_device(fd);
        if (bound > 0) {
            for (unsigned int i = 0; i < pvd->info.n_interfaces; i++)
                if ((unsigned int)bound == pvd->info.ifindexes[i])
                    return 0;
            errno = EPERM;
            return -1;
        }
    }
    if (REAL(setsockopt)(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof ifindex) == 0)
        return 0;
    if (errno == EPERM) { /* unprivileged, already device-bound: fine if to this very interface */
        int saved = errno;
        if (bound_device(fd) == ifindex)
            return 0;
        errno = saved;
    }
    if (errno == ENOPROTOOPT) { /* kernel < 5.0: by name */
        const char *name = pvd->info.interfaces[0];
        for (unsigned int i = 0; i < pvd->info.n_interfaces; i++)
            if ((int)pvd->info.ifindexes[i] == ifindex)
                name = pvd->info.interfaces[i];
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

/* The socket's local address, when it has one (bound, or given one by connect). */
static int bound_source(int fd, struct sockaddr_storage *cur, socklen_t *cur_len)
{
    *cur_len = sizeof *cur;
    return getsockname(fd, (struct sockaddr *)cur, cur_len) == 0 && sa_port((struct sockaddr *)cur) != 0;
}

/* Tie fd to pvd: device binding, mark, IPv4 route check, source binding.  Adds W_* to
 * *flags.  Every step can be repeated (by a signal handler that ties the same socket while
 * this thread is interrupted in the middle, or after a fork): each one checks what is
 * already in place before acting. */
/* How the shim's own sockets (DNS queries) differ from the program's: */
#define APPLY_SOURCE 1u     /* bind a PvD source whatever srcbind says (R25) */
#define APPLY_MARK_SELF 2u  /* set the mark directly when the process may (CAP_NET_ADMIN) */

/* The PvD's mark.  The program's sockets get it from pvdd only, which applies its policy
 * (restricted PvDs) and whose absence must fail them closed (its tables are what the mark
 * selects); the shim's own DNS sockets may set it directly first. */
static int set_mark(int fd, const struct pvd_scope *pvd, unsigned int how)
{
    int mark = (int)pvd->info.mark;
    int saved = errno;
    if ((how & APPLY_MARK_SELF) && REAL(setsockopt)(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0)
        return 0;
    errno = saved;
    return shim_pvdd_mark(fd, pvd->info.handle);
}

static int apply_with(int fd, unsigned int slot, const struct pvd_scope *pvd, uint32_t w, const struct sockaddr *dst,
                      socklen_t dstlen, enum shim_op op, uint32_t *flags, unsigned int how)
{
    struct in_addr d4;
    if (!(w & W_DEVBOUND)) {
        if (bind_device(fd, pvd, pick_ifindex(pvd, dst, dstlen), (w & W_ADOPTED) != 0) < 0)
            return -1;
        *flags |= W_DEVBOUND;
    }
    if (pvd->info.mark && !(w & W_MARKED)) {
        /* routing isolation / restricted PvD */
        if (set_mark(fd, pvd, how) < 0)
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
    if ((pvd->info.srcbind || (how & APPLY_SOURCE)) && op != OP_LISTEN && !(w & W_BOUND)) {
        struct sockaddr_storage cur, src;
        socklen_t cur_len, src_len = 0;
        int family = (w & W_V6) ? AF_INET6 : AF_INET;
        if (!bound_source(fd, &cur, &cur_len)) {
            if (choose_source(pvd, family, dst, dstlen, 0, &src, &src_len) < 0) {
                errno = ENETUNREACH; /* the PvD has no address of this family */
                return -1;
            }
            if (REAL(bind)(fd, (struct sockaddr *)&src, src_len) < 0 &&
                !(errno == EINVAL && bound_source(fd, &cur, &cur_len))) /* bound meanwhile */
                return -1;
        }
        /* bound earlier (by the program before the shim saw it, or meanwhile): only a PvD
         * address will do */
        if (bound_source(fd, &cur, &cur_len) && !addr_in_pvd(pvd, (struct sockaddr *)&cur, cur_len)) {
            errno = ENETUNREACH;
            return -1;
        }
        *flags |= W_BOUND;
    }
    if (w & W_V6)
        *flags |= W_DSTCHECK;
    return 0;
}

static int apply(int fd, unsigned int slot, const struct pvd_scope *pvd, uint32_t w, const struct sockaddr *dst,
                 socklen_t dstlen, enum shim_op op, uint32_t *flags)
{
    return apply_with(fd, slot, pvd, w, dst, dstlen, op, flags, 0);
}

int shim_tie_own_socket(int fd, pvd_handle_t handle, const struct sockaddr *dst, socklen_t dstlen)
{
    unsigned int slot = shim_pvd_slot(handle);
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    uint32_t flags = 0;
    if (!pvd) {
        errno = ENETUNREACH;
        return -1;
    }
    uint32_t w = W_MAKE(FK_PENDING, slot, dst && dst->sa_family == AF_INET6 ? W_V6 : 0);
    if (apply_with(fd, slot, pvd, w, dst, dstlen, OP_SEND, &flags, APPLY_SOURCE | APPLY_MARK_SELF) < 0)
        return -1;
    fd_store(fd, W_MAKE(FK_SCOPED, slot, W_FLAGS(w) | flags));
    return 0;
}

/* ---- one socket tied by one thread at a time ----
 * The tying thread turns the word into FK_BUSY (with the fork generation) while it works;
 * other threads wait.  A thread never waits on itself: a signal handler that uses the socket
 * its own thread was tying, or a word left busy by a thread that does not exist in this
 * process (a fork child), is taken over; tying is idempotent (apply). */
static SHIM_TLS int t_tying_fd = -1;
#define BUSY_YIELDS 64
#define BUSY_SLEEP_NS 100000L
#define BUSY_SLEEPS_MAX 100000 /* 10 s: a tie waits on pvdd at most a few seconds */

static uint32_t busy_word(unsigned int slot, uint32_t w)
{
    return W_MAKE(FK_BUSY, slot, W_FLAGS(w)) | (shim_fork_epoch() << W_EPOCH_SHIFT);
}

/* 1: take the socket over (it is this thread's, or nobody's); 0: it was waited for, look again. */
static int wait_busy(int fd, uint32_t w, unsigned int *rounds)
{
    if (t_tying_fd == fd || W_EPOCH(w) != shim_fork_epoch())
        return 1;
    if (++*rounds <= BUSY_YIELDS) {
        sched_yield();
        return 0;
    }
    if (*rounds > BUSY_YIELDS + BUSY_SLEEPS_MAX)
        return 1; /* its thread is gone for good (e.g. exited inside a handler) */
    struct timespec pause = {.tv_sec = 0, .tv_nsec = BUSY_SLEEP_NS};
    nanosleep(&pause, NULL);
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
    if (domain == AF_PACKET) {
        w = W_MAKE(FK_PACKET, 0, W_ADOPTED);
    } else if (domain != AF_INET && domain != AF_INET6) {
        w = W_MAKE(FK_NONINET, 0, 0);
    } else {
        w = W_MAKE(FK_PENDING, 0, W_ADOPTED | (domain == AF_INET6 ? W_V6 : 0));
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

/* The destination a send really goes to.  Linux sends a datagram whose address has
 * sa_family AF_UNSPEC (0) to the address in it anyway (as AF_INET on IPv4 sockets; raw IPv6
 * sockets take it as AF_INET6), so such an address is checked as that family: a program
 * that forgot to set sin_family must not slip past the checks. */
static const struct sockaddr *send_dst(uint32_t w, const struct sockaddr *dst, socklen_t *len,
                                       struct sockaddr_storage *tmp)
{
    if (!dst || *len < (socklen_t)sizeof(sa_family_t) || dst->sa_family != AF_UNSPEC)
        return dst;
    if (!(w & W_V6) && *len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(tmp, dst, sizeof(struct sockaddr_in));
        tmp->ss_family = AF_INET;
        *len = sizeof(struct sockaddr_in);
        return (const struct sockaddr *)tmp;
    }
    if ((w & W_V6) && *len >= 24 /* SIN6_LEN_RFC2133 */) {
        socklen_t n = *len < (socklen_t)sizeof(struct sockaddr_in6) ? *len : (socklen_t)sizeof(struct sockaddr_in6);
        memset(tmp, 0, sizeof(struct sockaddr_in6));
        memcpy(tmp, dst, n);
        tmp->ss_family = AF_INET6;
        *len = n;
        return (const struct sockaddr *)tmp;
    }
    return NULL; /* too short to name anyone: the connected peer, if any */
}

int shim_check_dst(uint32_t w, const struct sockaddr *dst, socklen_t dstlen)
{
    if (!dst || !(w & W_V6) || dstlen < (socklen_t)sizeof(struct sockaddr_in6) ||
        (dst->sa_family != AF_INET6 && dst->sa_family != AF_UNSPEC))
        return 0;
    uint32_t scope = ((const struct sockaddr_in6 *)dst)->sin6_scope_id;
    if (scope == 0 || shim_slot_has_ifindex(W_SLOT(w), scope))
        return 0;
    errno = EINVAL; /* the scope ID names an interface outside the PvD */
    return -1;
}

/* AF_PACKET: the PvD in force at the first bind or send; only its interfaces. */
static int packet_prepare(int fd, uint32_t w, uint32_t *wout)
{
    if (W_SLOT(w) && !(w & W_ADOPTED)) { /* tied already */
        *wout = w;
        return 0;
    }
    unsigned int slot = (w & W_EXPLICIT) ? W_SLOT(w) : shim_effective_slot();
    if (slot == SLOT_NONE) {
        fd_cas(fd, w, W_MAKE(FK_NONINET, 0, 0));
        *wout = W_MAKE(FK_NONINET, 0, 0);
        return 0;
    }
    if (slot == SLOT_NULL || !shim_pvd_at(slot)) {
        errno = ENETUNREACH;
        return -1;
    }
    if ((w & W_ADOPTED) || !W_SLOT(w)) {
        struct sockaddr_ll ll;
        socklen_t len = sizeof ll;
        if (getsockname(fd, (struct sockaddr *)&ll, &len) == 0 && ll.sll_ifindex != 0 &&
            !shim_slot_has_ifindex(slot, (unsigned int)ll.sll_ifindex)) {
            errno = ENODEV; /* bound to an interface outside the PvD */
            return -1;
        }
    }
    *wout = W_MAKE(FK_PACKET, slot, W_FLAGS(w) & ~W_ADOPTED);
    fd_cas(fd, w, *wout);
    return 0;
}

int shim_packet_check(int fd, unsigned int ifindex)
{
    uint32_t w = fd_load(fd);
    if (W_KIND(w) == FK_UNKNOWN)
        w = adopt(fd, NULL, OP_SEND);
    if (W_KIND(w) != FK_PACKET)
        return 0;
    if (!W_SLOT(w) || (w & W_ADOPTED)) {
        if (packet_prepare(fd, w, &w) < 0)
            return -1;
        if (W_KIND(w) != FK_PACKET)
            return 0;
    }
    if (ifindex != 0 && !shim_slot_has_ifindex(W_SLOT(w), ifindex)) {
        errno = ENODEV;
        return -1;
    }
    return 0;
}

int shim_prepare(int fd, const struct sockaddr *dst, socklen_t dstlen, enum shim_op op, uint32_t *wout)
{
    int saved = errno;
    unsigned int rounds = 0;
    struct sockaddr_storage tmp;
    uint32_t dummy;
    if (!wout)
        wout = &dummy;
    for (;;) {
        uint32_t w = fd_load(fd);
        if (W_KIND(w) == FK_UNKNOWN)
            w = adopt(fd, dst, op);
        socklen_t len = dstlen;
        const struct sockaddr *to = op == OP_SEND ? send_dst(w, dst, &len, &tmp) : dst;
        *wout = w;
        switch (W_KIND(w)) {
        case FK_SCOPED:
            if (op != OP_LISTEN && shim_check_dst(w, to, len) < 0)
                return -1;
            /* fall through */
        case FK_SYSTEM:
        case FK_NONINET:
            errno = saved;
            return 0;
        case FK_NULLED:
            errno = ENETUNREACH;
            return -1;
        case FK_PACKET:
            if (packet_prepare(fd, w, wout) < 0)
                return -1;
            if (W_KIND(*wout) == FK_PACKET && to &&
                len >= (socklen_t)(offsetof(struct sockaddr_ll, sll_ifindex) + sizeof(int)) &&
                !shim_slot_has_ifindex(W_SLOT(*wout), (unsigned int)((const struct sockaddr_ll *)to)->sll_ifindex)) {
                errno = ENODEV; /* a link outside the PvD */
                return -1;
            }
            errno = saved;
            return 0;
        case FK_LOOPBACK:
            if (!to || (op == OP_CONNECT && to->sa_family == AF_UNSPEC) || shim_addr_is_loopback(to, len)) {
                errno = saved;
                return 0;
            }
            errno = ENETUNREACH; /* a loopback-only socket never reaches out */
            return -1;
        case FK_BUSY:
            if (!wait_busy(fd, w, &rounds))
                continue;
            break; /* take it over */
        default:
            break; /* FK_PENDING: decide now */
        }
        if (op == OP_CONNECT && to && to->sa_family == AF_UNSPEC) { /* dissolve an association */
            errno = saved;
            return 0;
        }
        if (to && !(w & W_EXPLICIT) && W_KIND(w) != FK_BUSY && shim_addr_is_loopback(to, len)) {
            if (op == OP_CONNECT && !fd_cas(fd, w, W_MAKE(FK_LOOPBACK, 0, W_FLAGS(w))))
                continue;
            *wout = W_MAKE(FK_LOOPBACK, 0, W_FLAGS(w));
            errno = saved;
            return 0; /* loopback stays reachable */
        }
        unsigned int slot = (w & W_EXPLICIT) || W_KIND(w) == FK_BUSY ? W_SLOT(w) : shim_effective_slot();
        if (slot == SLOT_NONE) {
            if (!fd_cas(fd, w, W_MAKE(FK_SYSTEM, 0, W_FLAGS(w))))
                continue;
            *wout = W_MAKE(FK_SYSTEM, 0, W_FLAGS(w));
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
        int outer = t_tying_fd;
        t_tying_fd = fd;
        uint32_t busy = busy_word(slot, w);
        if (!fd_cas(fd, w, busy)) {
            t_tying_fd = outer;
            continue;
        }
        uint32_t flags = W_FLAGS(w);
        int rc = apply(fd, slot, pvd, w, to, len, op, &flags);
        int e = errno;
        /* The word leaves FK_BUSY before this thread stops calling the tie its own: a signal
         * handler arriving in between must never find a busy word it would wait on. */
        if (rc < 0) {
            /* still pending (retried next time), unless a nested tie finished meanwhile */
            fd_cas(fd, busy, W_MAKE(FK_PENDING, (w & W_EXPLICIT) ? slot : 0, W_FLAGS(w) | (flags & W_DEVBOUND)));
            t_tying_fd = outer;
            errno = e;
            return -1;
        }
        *wout = W_MAKE(FK_SCOPED, slot, flags);
        fd_store(fd, *wout);
        t_tying_fd = outer;
        if (op != OP_LISTEN && shim_check_dst(*wout, to, len) < 0)
            return -1;
        errno = saved;
        return 0;
    }
}

int shim_prepare_bind(int fd, const struct sockaddr *addr, socklen_t len, struct sockaddr_storage *storage,
                      const struct sockaddr **use, socklen_t *use_len)
{
    int saved = errno;
    unsigned int rounds = 0;
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
        if (kind == FK_PACKET) {
            const struct sockaddr_ll *ll = (const struct sockaddr_ll *)addr;
            if (addr && len >= (socklen_t)(offsetof(struct sockaddr_ll, sll_ifindex) + sizeof ll->sll_ifindex) &&
                shim_packet_check(fd, (unsigned int)ll->sll_ifindex) < 0)
                return -1;
            errno = saved;
            return 0;
        }
        if (kind == FK_BUSY) {
            if (!wait_busy(fd, w, &rounds))
                continue;
            kind = FK_PENDING; /* take it over */
        }
        if (!addr || len < (socklen_t)sizeof(sa_family_t) ||
            (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)) {
            errno = saved;
            return 0; /* the kernel reports the error */
        }
        int pending = kind == FK_PENDING;
        if (shim_addr_is_loopback(addr, len)) {
            if (pending && !(w & W_EXPLICIT) && W_KIND(w) != FK_BUSY) {
                if (!fd_cas(fd, w, W_MAKE(FK_LOOPBACK, 0, W_FLAGS(w))))
                    continue;
                errno = saved;
                return 0;
            }
            errno = EADDRNOTAVAIL; /* loopback is not an address of the socket's PvD */
            return -1;
        }
        unsigned int slot = (!pending || (w & W_EXPLICIT) || W_KIND(w) == FK_BUSY) ? W_SLOT(w) : shim_effective_slot();
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
        if (shim_check_dst(W_MAKE(FK_SCOPED, slot, W_FLAGS(w) | W_V6), addr->sa_family == AF_INET6 ? addr : NULL,
                           len) < 0)
            return -1; /* a scope ID naming another interface binds the socket there */
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
            int outer = t_tying_fd;
            t_tying_fd = fd;
            uint32_t busy = busy_word(slot, w);
            if (!fd_cas(fd, w, busy)) {
                t_tying_fd = outer;
                continue;
            }
            if (!(w & W_DEVBOUND) && bind_device(fd, pvd, pick_ifindex(pvd, addr, len), (w & W_ADOPTED) != 0) < 0) {
                int e = errno;
                fd_cas(fd, busy, W_MAKE(FK_PENDING, (w & W_EXPLICIT) ? slot : 0, W_FLAGS(w)));
                t_tying_fd = outer;
                errno = e;
                return -1;
            }
            fd_store(fd, W_MAKE(FK_SCOPED, slot, W_FLAGS(w) | W_DEVBOUND | ((w & W_V6) ? W_DSTCHECK : 0)));
            t_tying_fd = outer;
        }
        errno = saved;
        return 0;
    }
}

/* ---- control messages ---- */
static int check_pktinfo(unsigned int slot, unsigned int ifindex, const struct sockaddr *src, socklen_t srclen)
{
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (!pvd) {
        errno = ENETUNREACH;
        return -1;
    }
    if (ifindex != 0 && !shim_slot_has_ifindex(slot, ifindex)) {
        errno = EINVAL; /* another interface: not this socket's PvD */
        return -1;
    }
    if (src && !addr_is_wildcard(src, srclen) && !addr_in_pvd(pvd, src, srclen)) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}

int shim_check_cmsgs(uint32_t w, const void *control, size_t controllen)
{
    const unsigned char *base = control;
    size_t off = 0;
    if (W_KIND(w) != FK_SCOPED && W_KIND(w) != FK_BUSY)
        return 0;
    unsigned int slot = W_SLOT(w);
    /* Walk the headers as the kernel does (__cmsg_nxthdr); each piece is copied before it
     * is looked at, so a bad buffer gives EFAULT.  A malformed list is the kernel's to
     * refuse (EINVAL) and is never sent. */
    while (controllen - off >= sizeof(struct cmsghdr)) {
        struct cmsghdr h;
        if (shim_copy_in(&h, base + off, sizeof h) < 0)
            return -1;
        if (h.cmsg_len < sizeof(struct cmsghdr) || h.cmsg_len > controllen - off)
            return 0;
        const unsigned char *data = base + off + CMSG_LEN(0);
        size_t n = h.cmsg_len - CMSG_LEN(0);
        if (h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_PKTINFO && n >= sizeof(struct in_pktinfo)) {
            struct in_pktinfo info;
            if (shim_copy_in(&info, data, sizeof info) < 0)
                return -1;
            struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = info.ipi_spec_dst};
            if (check_pktinfo(slot, (unsigned int)info.ipi_ifindex, (struct sockaddr *)&src, sizeof src) < 0)
                return -1;
        } else if (h.cmsg_level == IPPROTO_IPV6 && (h.cmsg_type == IPV6_PKTINFO || h.cmsg_type == IPV6_2292PKTINFO) &&
                   n >= sizeof(struct in6_pktinfo)) {
            struct in6_pktinfo info;
            if (shim_copy_in(&info, data, sizeof info) < 0)
                return -1;
            struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_addr = info.ipi6_addr};
            if (check_pktinfo(slot, info.ipi6_ifindex, (struct sockaddr *)&src, sizeof src) < 0)
                return -1;
        } else if (h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_NEXTHOP) {
            errno = EPERM; /* a next hop of the program's choosing: the PvD's routes decide */
            return -1;
        }
        off += CMSG_ALIGN(h.cmsg_len);
        if (off > controllen)
            break;
    }
    return 0;
}

/* ---- socket options ---- */
unsigned int shim_slot_for_option(int fd)
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
        return SLOT_NONE; /* not inet, or no PvD: the program's business */
    }
}

int shim_check_device_change(int fd, int ifindex)
{
    unsigned int slot = shim_slot_for_option(fd);
    if (slot == SLOT_NONE)
        return 0;
    if (ifindex > 0 && shim_slot_has_ifindex(slot, (unsigned int)ifindex))
        return 0; /* one of the PvD's own interfaces */
    errno = EPERM; /* leaving the PvD's interface (or unbinding) is not allowed */
    return -1;
}

int shim_check_sticky_pktinfo6(int fd, const struct in6_pktinfo *info)
{
    unsigned int slot = shim_slot_for_option(fd);
    if (slot == SLOT_NONE)
        return 0;
    struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_addr = info->ipi6_addr};
    if (slot == SLOT_NULL) {
        errno = EPERM;
        return -1;
    }
    return check_pktinfo(slot, info->ipi6_ifindex, (struct sockaddr *)&src, sizeof src);
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
    unsigned int rounds = 0;
    for (;;) {
        uint32_t w = fd_load(fd);
        unsigned int kind = W_KIND(w);
        if (kind == FK_BUSY && !wait_busy(fd, w, &rounds))
            continue;
        if (kind == FK_SCOPED || kind == FK_NULLED || kind == FK_LOOPBACK ||
            (kind == FK_PENDING && (w & W_EXPLICIT))) {
            if ((kind == FK_SCOPED || kind == FK_NULLED || kind == FK_PENDING) && W_SLOT(w) == slot)
                return 0;
            errno = EBUSY; /* already tied: a socket never changes PvD (R4) */
            return -1;
        }
        /* unknown, pending, system default: may be tied now */
        if (slot == SLOT_NONE) {
            if (!fd_cas(fd, w, W_MAKE(FK_PENDING, 0, v6 | (w & (W_BOUND | W_ADOPTED)))))
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
        int outer = t_tying_fd;
        t_tying_fd = fd;
        uint32_t busy = busy_word(slot, W_MAKE(0, 0, v6));
        if (!fd_cas(fd, w, busy)) {
            t_tying_fd = outer;
            continue;
        }
        if (bind_device(fd, pvd, pick_ifindex(pvd, NULL, 0), kind == FK_UNKNOWN || (w & W_ADOPTED)) < 0) {
            int e = errno;
            fd_cas(fd, busy, w);
            t_tying_fd = outer;
            errno = e;
            return -1;
        }
        uint32_t flags = v6 | W_EXPLICIT | W_DEVBOUND | (w & W_BOUND);
        if (shim_is_preloaded()) {
            /* the hooks finish the job at the first operation (route check, source) */
            fd_store(fd, W_MAKE(FK_PENDING, slot, flags));
            t_tying_fd = outer;
            return 0;
        }
        /* not preloaded: no hook will run later, so bind the source now when needed */
        uint32_t extra = 0;
        int rc = apply(fd, slot, pvd, W_MAKE(FK_PENDING, slot, flags), NULL, 0, OP_SEND, &extra);
        int e = errno;
        fd_store(fd, rc < 0 ? W_MAKE(FK_PENDING, slot, flags) : W_MAKE(FK_SCOPED, slot, flags | extra));
        t_tying_fd = outer;
        errno = e;
        return rc < 0 ? -1 : 0;
    }
}

void shim_track_new(int fd, int family)
{
    if (family == AF_INET || family == AF_INET6)
        fd_store(fd, W_MAKE(FK_PENDING, 0, family == AF_INET6 ? W_V6 : 0));
    else if (family == AF_PACKET)
        fd_store(fd, W_MAKE(FK_PACKET, 0, 0));
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
        fd_store(fd, W_MAKE(W_KIND(w), W_SLOT(w), (W_FLAGS(w) & ~W_ADOPTED) | W_BOUND | W_DEVBOUND));
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
    int bound = bound_source(fd, &local, &local_len);
    int device = bound_device(fd);
    if (connected && shim_addr_is_loopback((struct sockaddr *)&peer, peer_len)) {
        fd_store(fd, W_MAKE(FK_LOOPBACK, 0, v6));
        return;
    }
    if (!pvd) {
        replace_with_null(fd, domain, slot == SLOT_NULL ? "is a network socket in the null PvD" : "has no PvD");
        return;
    }
    int dev_ok = device > 0 && shim_slot_has_ifindex(slot, (unsigned int)device);
    int src_ok = !bound || addr_is_wildcard((struct sockaddr *)&local, local_len) ||
                 addr_in_pvd(pvd, (struct sockaddr *)&local, local_len) ||
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
