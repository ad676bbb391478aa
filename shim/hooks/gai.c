/* gai.c: getaddrinfo, freeaddrinfo, getnameinfo and the gethostbyname
 * family, resolved inside the current PvD (R3 for name resolution, R25,
 * R26, section 5.2 of draft-kline-mif-mpvd-api-reqs).
 *
 * - No scope (PVDRUN_SCOPE absent): the real libc functions, unchanged.
 * - Malformed scope: every lookup fails (EAI_FAIL / NO_RECOVERY), never
 *   unscoped.
 * - Null PvD (R13): /etc/hosts still answers when nsswitch lists files;
 *   DNS fails at once with EAI_FAIL / NO_RECOVERY.
 * - Otherwise: the sources of the "hosts:" line of /etc/nsswitch.conf in
 *   order (files = /etc/hosts, dns = the PvD's servers through
 *   dns_client.c); other services are not consulted.  A PvD without DNS
 *   servers fails with EAI_AGAIN / TRY_AGAIN and says so on stderr once;
 *   the system's resolvers are never asked.
 * - AI_ADDRCONFIG is judged on the PvD's addresses (R26: loopback and
 *   IPv6 link-local do not count), and getaddrinfo orders its answers by
 *   RFC 6724 with the PvD's addresses as sources (dns_sort.c).
 *
 * Services, socket types and protocols are filled in by the real
 * getaddrinfo called with AI_NUMERICHOST on each resolved address (no
 * network I/O), so the list it returns is made only of glibc-allocated
 * nodes and the real freeaddrinfo frees it.  errno is preserved.
 *
 * pvd_gai_in_scope() (gai_scoped.h) is getaddrinfo for a given scope, for
 * getaddrinfo_a's workers (gai_async.c), which resolve in the submitting
 * thread's PvD.  gethostbyaddr and the res_* functions: resolv_hooks.c.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "dns_client.h"
#include "log.h"
#include "dns_hosts.h"
#include "dns_scope.h"
#include "dns_sort.h"
#include "gai_scoped.h"


/* The flags glibc accepts (others: EAI_BADFLAGS).  AI_IDN/AI_CANONIDN are
 * accepted and ignored: names are sent as given (no IDNA conversion). */
#ifndef AI_IDN
#define AI_IDN 0x0040
#define AI_CANONIDN 0x0080
#endif
#define KNOWN_AI_FLAGS (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL \
                        | AI_ADDRCONFIG | AI_NUMERICSERV | AI_IDN | AI_CANONIDN | 0x0100 | 0x0200)

/* Outcome of a scoped lookup beyond the DNS_RES_* codes. */
#define RES_NULL_PVD 100


/* R26: a family counts when the PvD has an address of it that is neither
 * loopback nor (IPv6) link-local. */
static int pvd_has_family(const struct pvd_dns_scope *scope, int family)
{
    for (int i = 0; i < scope->naddrs; i++) {
        const struct pvd_dns_addr *a = &scope->addrs[i];
        if (a->family != family)
            continue;
        if (family == AF_INET && a->addr[0] == 127)
            continue;
        if (family == AF_INET6) {
            static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                 0, 0, 0, 0, 0, 0, 0, 1};
            if (memcmp(a->addr, loopback, 16) == 0
                || (a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80))
                continue;
        }
        return 1;
    }
    return 0;
}

static int is_numeric_host(const char *node)
{
    struct in_addr a4;
    uint8_t a6[16];
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (inet_aton(node, &a4))
        return AF_INET;
    if (strlen(node) >= sizeof buf)
        return 0;
    strcpy(buf, node);
    char *zone = strchr(buf, '%');
    if (zone)
        *zone = '\0';
    return inet_pton(AF_INET6, buf, a6) == 1 ? AF_INET6 : 0;
}


/* Look name up in the scope: the nsswitch sources in order. */
static int scoped_lookup(const struct pvd_dns_scope *scope, const char *name, int want4,
                         int want6, struct dns_addr_result *out)
{
    int order[2];
    int nsources = dns_nsswitch_order(order);
    int result = DNS_RES_NXDOMAIN;
    out->naddrs = 0;
    out->canon[0] = '\0';
    for (int i = 0; i < nsources; i++) {
        if (order[i] == DNS_SRC_FILES) {
            if (dns_hosts_lookup(name, want4, want6, out) > 0) {
                if (shim_tracing)
                    dns_trace_each(scope, name, want4, want6, "answered", "hosts");
                return DNS_RES_OK;
            }
            continue;
        }
        if (scope->is_null) {
            if (shim_tracing)
                dns_trace_each(scope, name, want4, want6, "refused", "the null PvD");
            result = RES_NULL_PVD;
            continue;
        }
        if (scope->nservers == 0) {
            if (shim_tracing)
                dns_trace_each(scope, name, want4, want6, "refused", "no DNS server in the PvD");
            pvd_dns_warn_no_servers(scope);
            result = DNS_RES_NOSERVER;
            continue;
        }
        struct dns_options opt;
        dns_options_load(&opt);
        int rc = dns_resolve_addrs(scope, &opt, name, want4, want6, out);
        if (rc == DNS_RES_OK)
            return rc;
        if (rc == DNS_RES_NOSERVER)
            pvd_dns_warn_no_servers(scope);
        result = rc;
        out->naddrs = 0;
    }
    return result;
}

static int res_to_eai(int res)
{
    switch (res) {
    case DNS_RES_OK: return 0;
    case DNS_RES_NXDOMAIN: return EAI_NONAME;
    case DNS_RES_NODATA: return EAI_NODATA;
    case DNS_RES_AGAIN: return EAI_AGAIN;
    case DNS_RES_NOSERVER: return EAI_AGAIN;
    case DNS_RES_BADNAME: return EAI_NONAME;
    default: return EAI_FAIL; /* RES_NULL_PVD */
    }
}

/* Append to *tail the real getaddrinfo's nodes for one numeric address. */
static int append_address(const struct pvd_dns_addr *addr, int as_mapped, const char *service,
                          const struct addrinfo *hints, int flags, struct addrinfo ***tail)
{
    char text[INET6_ADDRSTRLEN + 8];
    int family = addr->family;
    if (as_mapped && family == AF_INET) {
        char v4[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, addr->addr, v4, sizeof v4);
        snprintf(text, sizeof text, "::ffff:%s", v4);
        family = AF_INET6;
    } else {
        inet_ntop(family, addr->addr, text, sizeof text);
    }
    struct addrinfo h;
    memset(&h, 0, sizeof h);
    h.ai_flags = AI_NUMERICHOST | (flags & (AI_PASSIVE | AI_NUMERICSERV));
    h.ai_family = family;
    h.ai_socktype = hints ? hints->ai_socktype : 0;
    h.ai_protocol = hints ? hints->ai_protocol : 0;
    struct addrinfo *part = NULL;
    int rc = REAL(getaddrinfo)(text, service, &h, &part);
    if (rc != 0)
        return rc;
    **tail = part;
    while (part->ai_next)
        part = part->ai_next;
    *tail = &part->ai_next;
    return 0;
}

SHIM_API int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    int saved_errno = errno;
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    if (status == PVD_DNS_SCOPE_NONE)
        return REAL(getaddrinfo) ? REAL(getaddrinfo)(node, service, hints, res) : EAI_SYSTEM;
    errno = saved_errno;
    return pvd_gai_in_scope(status, &scope, node, service, hints, res);
}

static int gai_in(int status, const struct pvd_dns_scope *scope, unsigned int auto_slot, const char *node,
                  const char *service, const struct addrinfo *hints, struct addrinfo **res);

/* The auto PvD: the lookup goes to the PvD claiming the name's zone (dns_scope.h), and its
 * answers are remembered as that PvD's (auto_addrs.h) for the connections that follow. */
int pvd_gai_in_scope(int status, const struct pvd_dns_scope *scope, const char *node,
                     const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    if (status != PVD_DNS_SCOPE_OK || !scope->is_auto || !node || (hints && (hints->ai_flags & AI_NUMERICHOST))
        || is_numeric_host(node))
        return gai_in(status, scope, 0, node, service, hints, res);
    struct pvd_dns_scope picked;
    unsigned int slot = 0;
    const struct pvd_dns_scope *use = pvd_dns_scope_for_name(scope, node, &picked, &slot);
    if (!use) {
        if (shim_tracing) {
            int family = hints ? hints->ai_family : AF_UNSPEC;
            dns_trace_each(NULL, node, family != AF_INET6, family != AF_INET, "refused", "its PvD is gone");
        }
        return EAI_FAIL;
    }
    return gai_in(status, use, slot, node, service, hints, res);
}

static int gai_in(int status, const struct pvd_dns_scope *scope, unsigned int auto_slot, const char *node,
                  const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    int saved_errno = errno;
    if (status != PVD_DNS_SCOPE_OK || !REAL(getaddrinfo)) {
        if (shim_tracing && node && !is_numeric_host(node)) {
            int family = hints ? hints->ai_family : AF_UNSPEC;
            dns_trace_each(NULL, node, family != AF_INET6, family != AF_INET, "refused", "malformed PvD scope");
        }
        errno = saved_errno;
        return EAI_FAIL;
    }
    int flags = hints ? hints->ai_flags : (AI_V4MAPPED | AI_ADDRCONFIG);
    int family = hints ? hints->ai_family : AF_UNSPEC;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return EAI_FAMILY;
    if (!node) /* passive or loopback addresses: no name, no network */
        return REAL(getaddrinfo)(node, service, hints, res);
    if (flags & ~KNOWN_AI_FLAGS)
        return EAI_BADFLAGS;
    /* Service, socket type and protocol errors first, as glibc reports them
     * before any lookup: no DNS query for a call that cannot succeed. */
    if (service) {
        struct addrinfo probe_hints, *probe = NULL;
        memset(&probe_hints, 0, sizeof probe_hints);
        probe_hints.ai_flags = AI_NUMERICHOST | (flags & AI_NUMERICSERV);
        probe_hints.ai_family = family == AF_INET6 ? AF_INET6 : AF_INET;
        probe_hints.ai_socktype = hints ? hints->ai_socktype : 0;
        probe_hints.ai_protocol = hints ? hints->ai_protocol : 0;
        int rc = REAL(getaddrinfo)(family == AF_INET6 ? "::" : "0.0.0.0", service, &probe_hints, &probe);
        if (rc != 0) {
            errno = saved_errno;
            return rc;
        }
        REAL(freeaddrinfo)(probe);
    }

    /* R26: AI_ADDRCONFIG judged against the PvD's addresses, as glibc
     * judges it against the host's. */
    int has4 = pvd_has_family(scope, AF_INET), has6 = pvd_has_family(scope, AF_INET6);
    if (flags & AI_ADDRCONFIG) {
        if (family == AF_UNSPEC && has4 != has6)
            family = has4 ? AF_INET : AF_INET6;
        else if ((family == AF_INET && !has4) || (family == AF_INET6 && !has6))
            return EAI_NONAME;
    }
    if ((flags & AI_NUMERICHOST) || is_numeric_host(node)) {
        struct addrinfo h;
        memset(&h, 0, sizeof h);
        if (hints)
            h = *hints;
        h.ai_flags = flags & ~AI_ADDRCONFIG;
        h.ai_family = family;
        h.ai_addr = NULL;
        h.ai_canonname = NULL;
        h.ai_next = NULL;
        int rc = REAL(getaddrinfo)(node, service, &h, res);
        errno = saved_errno;
        return rc;
    }

    int want4 = family != AF_INET6, want6 = family != AF_INET;
    int mapped = family == AF_INET6 && (flags & AI_V4MAPPED);
    struct dns_addr_result *found = malloc(2 * sizeof *found);
    if (!found)
        return EAI_MEMORY;
    struct dns_addr_result *found4 = &found[1];
    found4->naddrs = 0;
    int rc = scoped_lookup(scope, node, want4, want6, found);
    if (mapped && ((flags & AI_ALL) || found->naddrs == 0)) {
        int rc4 = scoped_lookup(scope, node, 1, 0, found4);
        if (rc != DNS_RES_OK && rc4 == DNS_RES_OK) {
            rc = DNS_RES_OK;
            memcpy(found->canon, found4->canon, sizeof found->canon);
        }
    }
    if (rc != DNS_RES_OK) {
        free(found);
        errno = saved_errno;
        return res_to_eai(rc);
    }
    pvd_dns_auto_remember(auto_slot, found->addrs, found->naddrs);
    pvd_dns_auto_remember(auto_slot, found4->addrs, found4->naddrs);
    dns_sort_rfc6724(scope, found->addrs, found->naddrs);
    dns_sort_rfc6724(scope, found4->addrs, found4->naddrs);

    struct addrinfo *head = NULL, **tail = &head;
    int err = 0;
    for (int i = 0; i < found->naddrs && !err; i++)
        err = append_address(&found->addrs[i], 0, service, hints, flags, &tail);
    for (int i = 0; i < found4->naddrs && !err; i++)
        err = append_address(&found4->addrs[i], 1, service, hints, flags, &tail);
    if (!err && head && (flags & AI_CANONNAME)) {
        head->ai_canonname = strdup(found->canon[0] ? found->canon : node);
        if (!head->ai_canonname)
            err = EAI_MEMORY;
    }
    if (!err && !head)
        err = EAI_NONAME;
    free(found);
    if (err) {
        if (head)
            REAL(freeaddrinfo)(head);
        errno = saved_errno;
        return err;
    }
    *res = head;
    errno = saved_errno;
    return 0;
}

SHIM_API void freeaddrinfo(struct addrinfo *ai)
{
    if (REAL(freeaddrinfo))
        REAL(freeaddrinfo)(ai);
}

SHIM_API int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                       socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
    int saved_errno = errno;
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    if (status == PVD_DNS_SCOPE_NONE)
        return REAL(getnameinfo) ? REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags)
                                : EAI_SYSTEM;
    errno = saved_errno;
    if (status == PVD_DNS_SCOPE_BAD || !REAL(getnameinfo)) {
        char ptr_name[DNS_NAME_MAX + 1];
        if (shim_tracing && host && hostlen && sa && !(flags & NI_NUMERICHOST)
            && ((sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)
                 && dns_reverse_name(4, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
                                     ptr_name, sizeof ptr_name) == DNS_OK)
                || (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)
                    && dns_reverse_name(6, (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr,
                                        ptr_name, sizeof ptr_name) == DNS_OK)))
            dns_trace(NULL, ptr_name, DNS_TYPE_PTR, NULL, "refused", "malformed PvD scope", -1, 0);
        errno = saved_errno;
        return EAI_FAIL;
    }
    if (!host || hostlen == 0 || (flags & NI_NUMERICHOST) || !sa
        || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
    if ((sa->sa_family == AF_INET && salen < (socklen_t)sizeof(struct sockaddr_in))
        || (sa->sa_family == AF_INET6 && salen < (socklen_t)sizeof(struct sockaddr_in6)))
        return EAI_FAMILY;
    if (serv && servlen > 0) {
        int rc = REAL(getnameinfo)(sa, salen, NULL, 0, serv, servlen, flags);
        if (rc != 0)
            return rc;
    }
    int family = sa->sa_family;
    const uint8_t *addr = family == AF_INET
                              ? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr
                              : (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    uint8_t v4[4];
    if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
        memcpy(v4, addr + 12, 4);
        addr = v4;
        family = AF_INET;
    }
    struct pvd_dns_scope from_buf;
    const struct pvd_dns_scope *from = pvd_dns_scope_for_addr(&scope, family, addr, &from_buf);
    if (from != &scope)
        memcpy(&scope, from, sizeof scope); /* the auto PvD: the PvD the address came from */
    char name[DNS_NAME_MAX + 1];
    char ptr_name[DNS_NAME_MAX + 1] = ""; /* for the trace */
    if (shim_tracing && dns_reverse_name(family == AF_INET ? 4 : 6, addr, ptr_name, sizeof ptr_name) != DNS_OK)
        ptr_name[0] = '\0';
    int res = DNS_RES_NXDOMAIN;
    int order[2];
    int nsources = dns_nsswitch_order(order);
    for (int i = 0; i < nsources && res != DNS_RES_OK; i++) {
        if (order[i] == DNS_SRC_FILES) {
            int rc = dns_hosts_reverse(family, addr, name, sizeof name);
            if (rc == 1) {
                res = DNS_RES_OK;
                if (shim_tracing)
                    dns_trace(&scope, ptr_name, DNS_TYPE_PTR, NULL, "answered", "hosts", -1, 0);
            }
            continue;
        }
        if (scope.is_null) {
            if (shim_tracing)
                dns_trace(&scope, ptr_name, DNS_TYPE_PTR, NULL, "refused", "the null PvD", -1, 0);
            res = RES_NULL_PVD;
            continue;
        }
        if (scope.nservers == 0) {
            if (shim_tracing)
                dns_trace(&scope, ptr_name, DNS_TYPE_PTR, NULL, "refused", "no DNS server in the PvD", -1, 0);
            pvd_dns_warn_no_servers(&scope);
            res = DNS_RES_NOSERVER;
            continue;
        }
        struct dns_options opt;
        dns_options_load(&opt);
        res = dns_resolve_ptr(&scope, &opt, family, addr, name, sizeof name);
        if (res == DNS_RES_NOSERVER)
            pvd_dns_warn_no_servers(&scope);
    }
    if (res == DNS_RES_OK) {
        if (flags & NI_NOFQDN) {
            char *dot = strchr(name, '.');
            if (dot)
                *dot = '\0';
        }
        if (strlen(name) + 1 > hostlen)
            return EAI_OVERFLOW;
        strcpy(host, name);
        errno = saved_errno;
        return 0;
    }
    if (flags & NI_NAMEREQD) {
        errno = saved_errno;
        return (res == DNS_RES_AGAIN || res == DNS_RES_NOSERVER) ? EAI_AGAIN : EAI_NONAME;
    }
    int rc = REAL(getnameinfo)(sa, salen, host, hostlen, NULL, 0, flags | NI_NUMERICHOST);
    errno = saved_errno;
    return rc;
}

/* Lay a hostent for addrs out in buf: h_name is name, h_aliases holds alias
 * (the name asked, when a CNAME chain led elsewhere; may be NULL).
 * Returns 0 or ERANGE. */
static int fill_hostent(const char *name, const char *alias, int family,
                        const struct pvd_dns_addr *addrs, int n, struct hostent *ret, char *buf,
                        size_t buflen)
{
    size_t addrlen = family == AF_INET ? 4 : 16;
    uintptr_t start = (uintptr_t)buf;
    uintptr_t aligned = (start + sizeof(char *) - 1) & ~(uintptr_t)(sizeof(char *) - 1);
    size_t pad = aligned - start;
    size_t namelen = strlen(name) + 1;
    size_t aliaslen = alias ? strlen(alias) + 1 : 0;
    size_t naliases = alias ? 1 : 0;
    size_t need = pad + sizeof(char *) * (naliases + 1 + (size_t)n + 1) + addrlen * (size_t)n
                  + namelen + aliaslen;
    if (need > buflen)
        return ERANGE;
    char **aliases = (char **)(buf + pad);
    char **list = aliases + naliases + 1;
    char *data = (char *)(list + n + 1);
    for (int i = 0; i < n; i++) {
        memcpy(data, addrs[i].addr, addrlen);
        list[i] = data;
        data += addrlen;
    }
    list[n] = NULL;
    if (alias) {
        memcpy(data, alias, aliaslen);
        aliases[0] = data;
        data += aliaslen;
    }
    aliases[naliases] = NULL;
    memcpy(data, name, namelen);
    ret->h_name = data;
    ret->h_aliases = aliases;
    ret->h_addrtype = family;
    ret->h_length = (int)addrlen;
    ret->h_addr_list = list;
    return 0;
}

static int scoped_gethostbyname2_r(const struct pvd_dns_scope *scope, const char *name, int af,
                                   struct hostent *ret, char *buf, size_t buflen,
                                   struct hostent **result, int *h_errnop)
{
    *result = NULL;
    if (af != AF_INET && af != AF_INET6) {
        *h_errnop = NETDB_INTERNAL;
        return EAFNOSUPPORT;
    }
    if (!name) {
        *h_errnop = HOST_NOT_FOUND;
        return 0;
    }
    struct dns_addr_result *found = malloc(sizeof *found);
    if (!found) {
        *h_errnop = NETDB_INTERNAL;
        return ENOMEM;
    }
    int res;
    found->naddrs = 0;
    found->canon[0] = '\0';
    struct pvd_dns_addr numeric;
    memset(&numeric, 0, sizeof numeric);
    if (inet_pton(af, name, numeric.addr) == 1) {
        numeric.family = af;
        found->addrs[0] = numeric;
        found->naddrs = 1;
        res = DNS_RES_OK;
    } else {
        struct pvd_dns_scope picked;
        unsigned int auto_slot = 0;
        const struct pvd_dns_scope *use = pvd_dns_scope_for_name(scope, name, &picked, &auto_slot);
        if (!use) {
            if (shim_tracing)
                dns_trace_each(NULL, name, af == AF_INET, af == AF_INET6, "refused", "its PvD is gone");
            res = RES_NULL_PVD;
        } else {
            res = scoped_lookup(use, name, af == AF_INET, af == AF_INET6, found);
            if (res == DNS_RES_OK)
                pvd_dns_auto_remember(auto_slot, found->addrs, found->naddrs);
        }
    }
    int rc = 0;
    switch (res) {
    case DNS_RES_OK: {
        const char *canon = found->canon[0] ? found->canon : name;
        rc = fill_hostent(canon, dns_name_equal(canon, name) ? NULL : name, af, found->addrs,
                          found->naddrs, ret, buf, buflen);
        if (rc == 0) {
            *result = ret;
            *h_errnop = 0;
        } else {
            *h_errnop = NETDB_INTERNAL;
        }
        break;
    }
    case DNS_RES_NODATA:
        *h_errnop = NO_DATA;
        break;
    case DNS_RES_AGAIN:
    case DNS_RES_NOSERVER:
        *h_errnop = TRY_AGAIN;
        rc = EAGAIN;
        break;
    case RES_NULL_PVD:
        *h_errnop = NO_RECOVERY;
        break;
    default:
        *h_errnop = HOST_NOT_FOUND;
    }
    free(found);
    return rc;
}

SHIM_API int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                            size_t buflen, struct hostent **result, int *h_errnop)
{
    int saved_errno = errno;
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    if (status == PVD_DNS_SCOPE_NONE && REAL(gethostbyname2_r))
        return REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
    errno = saved_errno;
    if (status != PVD_DNS_SCOPE_OK) {
        if (shim_tracing && name)
            dns_trace_each(NULL, name, af == AF_INET, af == AF_INET6, "refused", "malformed PvD scope");
        errno = saved_errno;
        *result = NULL;
        *h_errnop = NO_RECOVERY;
        return 0;
    }
    int rc = scoped_gethostbyname2_r(&scope, name, af, ret, buf, buflen, result, h_errnop);
    errno = rc ? rc : saved_errno;
    return rc;
}

SHIM_API int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                           struct hostent **result, int *h_errnop)
{
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    if (status == PVD_DNS_SCOPE_NONE && REAL(gethostbyname_r))
        return REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
    return gethostbyname2_r(name, AF_INET, ret, buf, buflen, result, h_errnop);
}

/* Per-thread static result of gethostbyname/gethostbyname2. */
static __thread struct hostent tls_hostent;
static __thread char *tls_buf;
static __thread size_t tls_buflen;

SHIM_API struct hostent *gethostbyname2(const char *name, int af)
{
    int saved_errno = errno;
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    if (status == PVD_DNS_SCOPE_NONE && REAL(gethostbyname2)) {
        errno = saved_errno;
        return REAL(gethostbyname2)(name, af);
    }
    struct hostent *result = NULL;
    int herr = NO_RECOVERY;
    if (status != PVD_DNS_SCOPE_OK && shim_tracing && name)
        dns_trace_each(NULL, name, af == AF_INET, af == AF_INET6, "refused", "malformed PvD scope");
    if (status == PVD_DNS_SCOPE_OK) {
        for (;;) {
            if (!tls_buf) {
                tls_buf = malloc(1024);
                if (!tls_buf) {
                    herr = NETDB_INTERNAL;
                    break;
                }
                tls_buflen = 1024;
            }
            int rc = scoped_gethostbyname2_r(&scope, name, af, &tls_hostent, tls_buf, tls_buflen,
                                             &result, &herr);
            if (rc != ERANGE)
                break;
            if (tls_buflen >= (1u << 20)) {
                herr = NETDB_INTERNAL;
                break;
            }
            char *bigger = realloc(tls_buf, tls_buflen * 2);
            if (!bigger) {
                herr = NETDB_INTERNAL;
                break;
            }
            tls_buf = bigger;
            tls_buflen *= 2;
        }
    }
    h_errno = herr;
    errno = saved_errno;
    return result;
}

SHIM_API struct hostent *gethostbyname(const char *name)
{
    struct pvd_dns_scope scope;
    if (pvd_dns_current_scope(&scope) == PVD_DNS_SCOPE_NONE && REAL(gethostbyname))
        return REAL(gethostbyname)(name);
    return gethostbyname2(name, AF_INET);
}
