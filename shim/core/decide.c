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
#include "sockaddr.h"
#include "tie.h"
#include "uaccess.h"

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

/* Start tying fd: its word goes from w to busy and this thread calls the tie its own (*outer:
 * the tie it was in, for end_tie or fail_tie).  0: another thread changed the word, look again. */
static int begin_tie(int fd, uint32_t w, uint32_t busy, int *outer)
{
    *outer = t_tying_fd;
    t_tying_fd = fd;
    if (fd_cas(fd, w, busy))
        return 1;
    t_tying_fd = *outer;
    return 0;
}

/* A tie that failed with errno e: the word goes back from busy to back (unless a nested tie
 * finished meanwhile), then this thread stops calling the tie its own -- in that order: a signal
 * handler arriving in between must never find a busy word it would wait on.  Returns -1. */
static int fail_tie(int fd, uint32_t busy, uint32_t back, int outer, int e)
{
    fd_cas(fd, busy, back);
    t_tying_fd = outer;
    errno = e;
    return -1;
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
uint32_t shim_adopt(int fd, const struct sockaddr *dst, enum shim_op op)
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
        w = shim_adopt(fd, NULL, OP_SEND);
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

/* What a socket about to be tied to `slot` becomes when there is no PvD to tie it to: with
 * no PvD in force it is left to the system default (SETTLE_PASS, 0, errno back to saved); the
 * null PvD, or a PvD gone from the table, fails the operation with `refused` (SETTLE_FAIL, -1,
 * errno set): both are what the operation's prepare call returns.  SETTLE_TIE: *pvd is the PvD
 * to tie to.  SETTLE_AGAIN: another thread changed the word, look again. */
enum { SETTLE_FAIL = -1, SETTLE_PASS = 0, SETTLE_TIE, SETTLE_AGAIN };
static int settle(int fd, uint32_t w, unsigned int slot, int refused, int saved, const struct pvd_scope **pvd,
                  uint32_t *wout)
{
    if (slot == SLOT_NONE) {
        if (!fd_cas(fd, w, W_MAKE(FK_SYSTEM, 0, W_FLAGS(w))))
            return SETTLE_AGAIN;
        if (wout)
            *wout = W_MAKE(FK_SYSTEM, 0, W_FLAGS(w));
        errno = saved;
        return SETTLE_PASS;
    }
    if (slot == SLOT_NULL) {
        if (!fd_cas(fd, w, W_MAKE(FK_NULLED, SLOT_NULL, W_FLAGS(w))))
            return SETTLE_AGAIN;
        errno = refused;
        return SETTLE_FAIL;
    }
    *pvd = shim_pvd_at(slot);
    if (!*pvd) {
        errno = refused;
        return SETTLE_FAIL;
    }
    return SETTLE_TIE;
}

static const char *op_name(enum shim_op op)
{
    return op == OP_CONNECT ? "connect" : op == OP_SEND ? "send" : "listen";
}

/* The debug line and trace line of a refusal (errno kept). */
static int refused(int fd, const char *what, const char *why, const struct sockaddr *dst, socklen_t len)
{
    if (shim_debugging)
        shim_debug("fd %d %s refused: %s (%s)", fd, what, why, strerrorname_np(errno));
    if (shim_tracing)
        shim_trace_socket(fd, what, NULL, dst, len, "refused", why, errno);
    return -1;
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
            w = shim_adopt(fd, dst, op);
        socklen_t len = dstlen;
        const struct sockaddr *to = op == OP_SEND ? send_dst(w, dst, &len, &tmp) : dst;
        *wout = w;
        switch (W_KIND(w)) {
        case FK_SCOPED:
            if (op != OP_LISTEN && shim_check_dst(w, to, len) < 0)
                return refused(fd, op_name(op), "a destination outside its PvD", to, len);
            /* fall through */
        case FK_SYSTEM:
        case FK_NONINET:
            errno = saved;
            return 0;
        case FK_NULLED:
            errno = ENETUNREACH;
            return refused(fd, op_name(op), "the null PvD", to, len);
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
        /* the PvD in force; under the auto PvD, the one the destination came from */
        unsigned int slot = (w & W_EXPLICIT) || W_KIND(w) == FK_BUSY ? W_SLOT(w) : shim_slot_towards(to, len);
        const struct pvd_scope *pvd;
        int settled = settle(fd, w, slot, ENETUNREACH, saved, &pvd, wout);
        if (settled == SETTLE_AGAIN)
            continue;
        if (settled == SETTLE_FAIL)
            return refused(fd, op_name(op), slot == SLOT_NULL ? "the null PvD" : "its PvD is gone", to, len);
        if (settled != SETTLE_TIE)
            return settled; /* SETTLE_PASS */
        int outer;
        uint32_t busy = busy_word(slot, w);
        if (!begin_tie(fd, w, busy, &outer))
            continue;
        uint32_t flags = W_FLAGS(w);
        int rc = shim_apply(fd, slot, pvd, w, to, len, op, &flags, 0);
        if (rc < 0) { /* still pending: retried next time */
            if (shim_debugging)
                shim_debug("fd %d %s: not tied to PvD %s (%s)", fd, op_name(op), pvd->info.id, strerrorname_np(errno));
            if (shim_tracing)
                shim_trace_socket(fd, op_name(op), pvd->info.id, to, len, "not_tied", "", errno);
            return fail_tie(fd, busy, W_MAKE(FK_PENDING, (w & W_EXPLICIT) ? slot : 0, W_FLAGS(w) | (flags & W_DEVBOUND)),
                            outer, errno);
        }
        *wout = W_MAKE(FK_SCOPED, slot, flags);
        fd_store(fd, *wout);
        t_tying_fd = outer;
        if (shim_debugging)
            shim_debug("fd %d %s: tied to PvD %s%s%s", fd, op_name(op), pvd->info.id,
                       (flags & W_DEVBOUND) ? ", bound to its interface" : "",
                       pvd->info.mark ? ", marked" : "");
        if (shim_tracing)
            shim_trace_socket(fd, op_name(op), pvd->info.id, to, len, "tied", "", 0);
        if (op != OP_LISTEN && shim_check_dst(*wout, to, len) < 0)
            return refused(fd, op_name(op), "a destination outside its PvD", to, len);
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
            w = shim_adopt(fd, NULL, OP_LISTEN);
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
        const struct pvd_scope *pvd;
        int settled = settle(fd, w, slot, EADDRNOTAVAIL, saved, &pvd, NULL);
        if (settled == SETTLE_AGAIN)
            continue;
        if (settled == SETTLE_FAIL)
            return refused(fd, "bind", slot == SLOT_NULL ? "the null PvD" : "its PvD is gone", addr, len);
        if (settled != SETTLE_TIE)
            return settled; /* SETTLE_PASS */
        if (shim_check_dst(W_MAKE(FK_SCOPED, slot, W_FLAGS(w) | W_V6), addr->sa_family == AF_INET6 ? addr : NULL,
                           len) < 0)
            return -1; /* a scope ID naming another interface binds the socket there */
        int wildcard = shim_addr_is_wildcard(addr, len);
        if (!wildcard && !shim_addr_is_multicast(addr, len) && !shim_addr_in_pvd(pvd, addr, len)) {
            errno = EADDRNOTAVAIL; /* outside the PvD (R6) */
            return -1;
        }
        if (wildcard && pvd->info.srcbind) { /* shared interface: narrow to the PvD's address */
            socklen_t new_len = 0;
            if (shim_choose_source(pvd, addr->sa_family, NULL, 0, (in_port_t)shim_sa_port(addr), storage, &new_len) < 0) {
                errno = EADDRNOTAVAIL;
                return -1;
            }
            *use = (const struct sockaddr *)storage;
            *use_len = new_len;
        }
        if (pending) {
            int outer;
            uint32_t busy = busy_word(slot, w);
            if (!begin_tie(fd, w, busy, &outer))
                continue;
            if (!(w & W_DEVBOUND) && shim_bind_device(fd, pvd, shim_pick_ifindex(pvd, addr, len), (w & W_ADOPTED) != 0) < 0)
                return fail_tie(fd, busy, W_MAKE(FK_PENDING, (w & W_EXPLICIT) ? slot : 0, W_FLAGS(w)), outer, errno);
            /* the rest of a tie, as at listen (the bind sets the source): the PvD's mark, which
             * selects pvdd's tables and carries its policy; a socket tied here is never tied again */
            uint32_t flags = W_FLAGS(w) | W_DEVBOUND;
            if (shim_apply(fd, slot, pvd, W_MAKE(FK_PENDING, slot, flags), NULL, 0, OP_LISTEN, &flags, 0) < 0)
                return fail_tie(fd, busy, W_MAKE(FK_PENDING, (w & W_EXPLICIT) ? slot : 0, W_FLAGS(w) | W_DEVBOUND),
                                outer, errno);
            fd_store(fd, W_MAKE(FK_SCOPED, slot, flags | ((w & W_V6) ? W_DSTCHECK : 0)));
            t_tying_fd = outer;
        }
        errno = saved;
        return 0;
    }
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
        int outer;
        uint32_t busy = busy_word(slot, W_MAKE(0, 0, v6));
        if (!begin_tie(fd, w, busy, &outer))
            continue;
        if (shim_bind_device(fd, pvd, shim_pick_ifindex(pvd, NULL, 0), kind == FK_UNKNOWN || (w & W_ADOPTED)) < 0)
            return fail_tie(fd, busy, w, outer, errno);
        uint32_t flags = v6 | W_EXPLICIT | W_DEVBOUND | (w & W_BOUND);
        if (shim_is_preloaded()) {
            /* the hooks finish the job at the first operation (route check, source) */
            fd_store(fd, W_MAKE(FK_PENDING, slot, flags));
            t_tying_fd = outer;
            return 0;
        }
        /* not preloaded: no hook will run later, so bind the source now when needed */
        uint32_t extra = 0;
        int rc = shim_apply(fd, slot, pvd, W_MAKE(FK_PENDING, slot, flags), NULL, 0, OP_SEND, &extra, 0);
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
