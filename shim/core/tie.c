/* tie.c: see tie.h. */
#include "tie.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pvdd_client.h"
#include "route_check.h"
#include "scope_parse.h"
#include "sockaddr.h"

/* ---- kernel mechanisms ---- */
int shim_bound_device(int fd)
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
int shim_pick_ifindex(const struct pvd_scope *pvd, const struct sockaddr *dst, socklen_t dstlen)
{
    if (dst && dst->sa_family == AF_INET6 && dstlen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        uint32_t zone = ((const struct sockaddr_in6 *)dst)->sin6_scope_id;
        for (unsigned int i = 0; zone && i < pvd->info.n_interfaces; i++)
            if (pvd->info.ifindexes[i] == zone)
                return (int)zone;
    }
    return (int)pvd->info.ifindexes[0];
}

int shim_bind_device(int fd, const struct pvd_scope *pvd, int ifindex, int adopted)
{
    if (adopted) {
        int bound = shim_bound_device(fd);
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
        if (shim_bound_device(fd) == ifindex)
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

int shim_needs_route_check(struct in_addr d4)
{
    uint32_t a = ntohl(d4.s_addr);
    return !(IN_MULTICAST(a) || a == INADDR_BROADCAST || (a >> 16) == 0xA9FE /* 169.254/16 */);
}

/* The socket's local address, when it has one (bound, or given one by connect). */
int shim_bound_source(int fd, struct sockaddr_storage *cur, socklen_t *cur_len)
{
    *cur_len = sizeof *cur;
    return getsockname(fd, (struct sockaddr *)cur, cur_len) == 0 && shim_sa_port((struct sockaddr *)cur) != 0;
}

/* The value of n hex digits at p, or -1 when one is not a hex digit. */
static long hex_field(const char *p, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* One line of /proc/net/if_inet6, "ADDR(32 hex) IFINDEX PLEN SCOPE FLAGS NAME" (fields in
 * hex, space-separated): the address when it is a usable (not tentative, not DAD-failed)
 * link-local address of ifindex; 2 preferred, 1 deprecated, 0 not one. */
static int if_inet6_line(const char *line, int ifindex, struct in6_addr *out)
{
    long field[4];
    const char *p = line + 32;
    for (int i = 0; i < 16; i++) {
        long byte = hex_field(line + 2 * i, 2);
        if (byte < 0)
            return 0;
        out->s6_addr[i] = (uint8_t)byte;
    }
    for (int f = 0; f < 4; f++) {
        while (*p == ' ')
            p++;
        int n = 0;
        while (hex_field(p + n, 1) >= 0)
            n++;
        if (n == 0 || n > 8)
            return 0;
        field[f] = hex_field(p, n);
        p += n;
    }
    if (field[0] != ifindex || field[2] != 0x20 || (field[3] & (0x40 | 0x08)))
        return 0; /* another interface, not link scope, tentative or DAD-failed */
    return (field[3] & 0x20) ? 1 : 2;
}

/* The source for a link-local IPv6 destination: a link-local address of the PvD's interface
 * ifindex (a preferred one first), with that interface as its zone, read from
 * /proc/net/if_inet6 (a route lookup would meet pvdd's rules for the PvD's mark, which a
 * probe socket does not carry).  A link-local address is the link's, whichever PvDs share
 * the link, and reaches nothing beyond it.  0, or -1 with errno. */
static int link_local_source(int ifindex, struct sockaddr_storage *src, socklen_t *src_len)
{
    char buf[4096 + 128];
    size_t have = 0;
    int found = 0;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
    memset(src, 0, sizeof *src);
    int fd = open("/proc/net/if_inet6", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (found < 2) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *end;
        while (found < 2 && (end = strchr(line, '\n')) != NULL) {
            struct in6_addr addr;
            *end = '\0';
            int kind = end - line > 32 ? if_inet6_line(line, ifindex, &addr) : 0;
            if (kind > found) {
                s6->sin6_addr = addr;
                found = kind;
            }
            line = end + 1;
        }
        have = strlen(line);
        if (have >= sizeof buf - 1)
            break; /* no line is this long */
        memmove(buf, line, have);
    }
    REAL(close)(fd);
    if (!found) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    s6->sin6_family = AF_INET6;
    s6->sin6_scope_id = (uint32_t)ifindex;
    *src_len = sizeof *s6;
    return 0;
}

/* A source the socket may keep: one of the PvD's addresses, or towards a link-local
 * destination a link-local address of one of the PvD's interfaces. */
static int source_ok(const struct pvd_scope *pvd, const struct sockaddr *cur, socklen_t cur_len, int to_link_local)
{
    if (shim_addr_in_pvd(pvd, cur, cur_len))
        return 1;
    const struct in6_addr *a6 = shim_sa_v6(cur, cur_len);
    if (!to_link_local || !a6 || !IN6_IS_ADDR_LINKLOCAL(a6))
        return 0;
    uint32_t zone = ((const struct sockaddr_in6 *)cur)->sin6_scope_id;
    for (unsigned int i = 0; i < pvd->info.n_interfaces; i++)
        if (pvd->info.ifindexes[i] == zone)
            return 1;
    return 0;
}

/* Tie fd to pvd: device binding, mark, IPv4 route check, source binding.  Adds W_* to
 * *flags.  Every step can be repeated (by a signal handler that ties the same socket while
 * this thread is interrupted in the middle, or after a fork): each one checks what is
 * already in place before acting. */

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

int shim_apply(int fd, unsigned int slot, const struct pvd_scope *pvd, uint32_t w, const struct sockaddr *dst,
                      socklen_t dstlen, enum shim_op op, uint32_t *flags, unsigned int how)
{
    struct in_addr d4;
    if (!(w & W_DEVBOUND)) {
        if (shim_bind_device(fd, pvd, shim_pick_ifindex(pvd, dst, dstlen), (w & W_ADOPTED) != 0) < 0)
            return -1;
        *flags |= W_DEVBOUND;
    }
    if (pvd->info.mark && !(w & W_MARKED)) {
        /* routing isolation / restricted PvD */
        if (set_mark(fd, pvd, how) < 0)
            return -1;
        *flags |= W_MARKED;
    }
    /* slot 0: a PvD outside this process's table (pvd_tie_socket): checked, not remembered */
    if (op != OP_LISTEN && dst && shim_sa_v4(dst, dstlen, &d4) && shim_needs_route_check(d4) &&
        !(slot && shim_v4_route_cached(slot, d4))) {
        struct in_addr prefix;
        unsigned int plen;
        if (!shim_v4_route_exists(d4, (int)pvd->info.ifindexes[0], pvd->info.mark, &prefix, &plen)) {
            errno = ENETUNREACH;
            return -1;
        }
        if (slot)
            shim_v4_route_remember(slot, prefix, plen);
    }
    if ((pvd->info.srcbind || (how & APPLY_SOURCE)) && op != OP_LISTEN && !(w & W_BOUND)) {
        struct sockaddr_storage cur, src;
        socklen_t cur_len, src_len = 0;
        int family = (w & W_V6) ? AF_INET6 : AF_INET;
        const struct in6_addr *d6 = dst ? shim_sa_v6(dst, dstlen) : NULL;
        int to_link_local = d6 && IN6_IS_ADDR_LINKLOCAL(d6);
        if (!shim_bound_source(fd, &cur, &cur_len)) {
            if (shim_choose_source(pvd, family, dst, dstlen, 0, &src, &src_len) < 0 &&
                (!to_link_local || link_local_source(shim_pick_ifindex(pvd, dst, dstlen), &src, &src_len) < 0)) {
                errno = ENETUNREACH; /* the PvD has no address of this family */
                return -1;
            }
            if (REAL(bind)(fd, (struct sockaddr *)&src, src_len) < 0 &&
                !(errno == EINVAL && shim_bound_source(fd, &cur, &cur_len))) /* bound meanwhile */
                return -1;
        }
        /* bound earlier (by the program before the shim saw it, or meanwhile): only a PvD
         * address will do */
        if (shim_bound_source(fd, &cur, &cur_len) && !source_ok(pvd, (struct sockaddr *)&cur, cur_len, to_link_local)) {
            errno = ENETUNREACH;
            return -1;
        }
        *flags |= W_BOUND;
    }
    if (w & W_V6)
        *flags |= W_DSTCHECK;
    return 0;
}


/* Tie one of the shim's own sockets (or the resolver's, through pvd_tie_socket) to pvd, in table
 * slot `slot` (0: a PvD the table does not hold; the socket's word is then left alone). */
static int tie_own(int fd, unsigned int slot, const struct pvd_scope *pvd, const struct sockaddr *dst,
                   socklen_t dstlen)
{
    uint32_t flags = 0;
    uint32_t w = W_MAKE(FK_PENDING, slot, dst && dst->sa_family == AF_INET6 ? W_V6 : 0);
    if (shim_apply(fd, slot, pvd, w, dst, dstlen, OP_SEND, &flags, APPLY_SOURCE | APPLY_MARK_SELF) < 0)
        return -1;
    if (slot)
        fd_store(fd, W_MAKE(FK_SCOPED, slot, W_FLAGS(w) | flags));
    return 0;
}

int shim_tie_own_socket(int fd, pvd_handle_t handle, const struct sockaddr *dst, socklen_t dstlen)
{
    unsigned int slot = shim_pvd_slot(handle);
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (!pvd) {
        errno = ENETUNREACH;
        return -1;
    }
    return tie_own(fd, slot, pvd, dst, dstlen);
}

int shim_tie_scope_line(int fd, const char *line, const struct sockaddr *dst, socklen_t dstlen)
{
    char err[160];
    size_t len = strlen(line);
    if (len >= SHIM_LINE_MAX) {
        errno = EINVAL;
        return -1;
    }
    struct pvd_scope *pvd = malloc(sizeof *pvd);
    if (!pvd)
        return -1;
    int rc = -1;
    if (pvd_scope_parse(line, len, pvd, err, sizeof err) < 0) {
        errno = EINVAL;
        goto out;
    }
    if (pvd->is_null) {
        errno = ENETUNREACH; /* no network at all */
        goto out;
    }
    /* The table's entry when it is this very view of the PvD; else, with the hooks active, one
     * is made (they must know the socket is tied); else none: a daemon that resolves for PvDs
     * whose addresses change over weeks never fills the table. */
    unsigned int slot = shim_pvd_slot(pvd->info.handle);
    const struct pvd_scope *known = shim_pvd_at(slot);
    if (!known || memcmp(known, pvd, sizeof *pvd) != 0) {
        slot = shim_is_preloaded() ? shim_pvd_add(line, len, err, sizeof err) : 0;
        if (shim_is_preloaded() && slot == 0)
            goto out; /* errno from shim_pvd_add: ENOSPC */
    }
    rc = tie_own(fd, slot, slot ? shim_pvd_at(slot) : pvd, dst, dstlen);
out:;
    int saved = errno;
    free(pvd);
    errno = saved;
    return rc;
}
