/* sockaddr.c: see sockaddr.h. */
#include "sockaddr.h"

#include "core.h"
#include "tie.h"

#include <string.h>

int shim_sa_v4(const struct sockaddr *sa, socklen_t len, struct in_addr *out)
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

const struct in6_addr *shim_sa_v6(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(a6))
            return a6;
    }
    return NULL;
}

int shim_addr_is_no_dns_server(const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    return sa && shim_sa_v4(sa, len, &a4) && ntohl(a4.s_addr) == SHIM_NO_DNS_SERVER_V4;
}

int shim_addr_is_loopback(const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (!sa)
        return 0;
    if (shim_sa_v4(sa, len, &a4))
        return (ntohl(a4.s_addr) >> 24) == 127 && ntohl(a4.s_addr) != SHIM_NO_DNS_SERVER_V4;
    a6 = shim_sa_v6(sa, len);
    return a6 && IN6_IS_ADDR_LOOPBACK(a6);
}

int shim_addr_is_wildcard(const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6) &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        return 1;
    if (shim_sa_v4(sa, len, &a4))
        return a4.s_addr == htonl(INADDR_ANY);
    a6 = shim_sa_v6(sa, len);
    return a6 && IN6_IS_ADDR_UNSPECIFIED(a6);
}

int shim_addr_is_multicast(const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (shim_sa_v4(sa, len, &a4))
        return IN_MULTICAST(ntohl(a4.s_addr));
    a6 = shim_sa_v6(sa, len);
    return a6 && IN6_IS_ADDR_MULTICAST(a6);
}

int shim_addr_in_pvd(const struct pvd_scope *pvd, const struct sockaddr *sa, socklen_t len)
{
    struct in_addr a4;
    const struct in6_addr *a6;
    if (shim_sa_v4(sa, len, &a4)) {
        for (unsigned int i = 0; i < pvd->n_v4; i++)
            if (pvd->v4[i].s_addr == a4.s_addr)
                return 1;
        return 0;
    }
    a6 = shim_sa_v6(sa, len);
    if (a6)
        for (unsigned int i = 0; i < pvd->n_v6; i++)
            if (memcmp(&pvd->v6[i], a6, sizeof *a6) == 0)
                return 1;
    return 0;
}

int shim_sa_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_port;
    if (sa->sa_family == AF_INET6)
        return ((const struct sockaddr_in6 *)sa)->sin6_port;
    return 0;
}

/* A source address of the PvD for a socket of `family` talking to dst (may be NULL). */
int shim_choose_source(const struct pvd_scope *pvd, int family, const struct sockaddr *dst, socklen_t dstlen,
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
    if (dst && shim_sa_v4(dst, dstlen, &d4)) { /* v4-mapped destination: v4-mapped source */
        if (pvd->n_v4 == 0)
            return -1;
        s6->sin6_addr.s6_addr[10] = 0xff;
        s6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&s6->sin6_addr.s6_addr[12], &pvd->v4[0], 4);
        return 0;
    }
    const struct in6_addr *d6 = dst ? shim_sa_v6(dst, dstlen) : NULL;
    int want_ll = d6 && IN6_IS_ADDR_LINKLOCAL(d6);
    for (unsigned int i = 0; i < pvd->n_v6; i++) {
        if (IN6_IS_ADDR_LINKLOCAL(&pvd->v6[i]) != want_ll)
            continue;
        s6->sin6_addr = pvd->v6[i];
        if (want_ll) /* the destination's link, as the device binding (shim_pick_ifindex) */
            s6->sin6_scope_id = (uint32_t)shim_pick_ifindex(pvd, dst, dstlen);
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
    return pvd && shim_addr_in_pvd(pvd, (struct sockaddr *)&sin, sizeof sin);
}
