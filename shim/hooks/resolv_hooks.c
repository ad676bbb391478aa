/* resolv_hooks.c: glibc's resolver entry points that do not go through
 * getaddrinfo, answered inside the current PvD (R3, R25):
 *
 *   res_query, res_search, res_querydomain, res_send        (the thread's _res)
 *   res_nquery, res_nsearch, res_nquerydomain, res_nsend    (a res_state)
 *   __res_query, __res_search, ... , __res_nsend            (the names binaries
 *       built against glibc < 2.34, whose <resolv.h> mapped them, bind to)
 *   gethostbyaddr, gethostbyaddr_r
 *
 * glibc answers these with its own sockets, which never pass through the
 * shim's hooks, and asks the servers of /etc/resolv.conf: under a PvD that is
 * the wrong DNS server, reached through whichever link routing picks.
 *
 * - No scope: the real functions, unchanged.
 * - Malformed scope or the null PvD (R13): -1 with h_errno NO_RECOVERY
 *   (res_send: -1, errno ECONNREFUSED); gethostbyaddr* still read /etc/hosts
 *   for the null PvD, as gethostbyname does (gai.c).  No query is sent.
 * - A PvD: the shim's own resolver (dns_client.c) with the PvD's servers, from
 *   sockets bound to the PvD's interface and source address.  res_send sends
 *   the caller's bytes as they are; res_query builds the query (RD from
 *   RES_RECURSE, class and type as given, no EDNS0); res_search uses the
 *   PvD's search domains and ndots (RES_OPTIONS, as the rest of the shim),
 *   with glibc's res_search rules.  RES_USEVC (TCP only) and RES_IGNTC are
 *   honoured when the res_state is initialised; the state's servers, search
 *   list, retrans and retry are not used (they are the host's).
 *   A PvD with no usable DNS server: -1 with h_errno TRY_AGAIN (res_send:
 *   errno ECONNREFUSED) and one line on stderr, never the host's servers.
 * - gethostbyaddr*: the "hosts:" sources of nsswitch.conf in order, /etc/hosts
 *   then a PTR query to the PvD's servers (an IPv4-mapped IPv6 address is
 *   asked as IPv4, as glibc's DNS backend does).
 *
 * Return values, h_errno (and res_state->res_h_errno) follow glibc: the
 * answer's length, or -1 with HOST_NOT_FOUND (NXDOMAIN), NO_DATA (no record of
 * the type), TRY_AGAIN (timeout, every server failing), NO_RECOVERY (other
 * errors); after a negative answer the reply is in the caller's buffer.  A
 * reply longer than the buffer is cut with its TC bit set and the length
 * returned is the buffer's.  errno is preserved except by a failing res_send
 * (ETIMEDOUT, ECONNREFUSED, EINVAL, as glibc) and gethostbyaddr_r's error
 * returns (EAGAIN, ERANGE, ...).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "dns_client.h"
#include "dns_hosts.h"
#include "log.h"
#include "dns_scope.h"


/* <resolv.h> of glibc before 2.34 maps the public names to __res_*; both
 * names are defined here. */
#undef res_query
#undef res_search
#undef res_querydomain
#undef res_send
#undef res_nquery
#undef res_nsearch
#undef res_nquerydomain
#undef res_nsend

typedef int (*query_fn)(const char *, int, int, unsigned char *, int);
typedef int (*querydomain_fn)(const char *, const char *, int, int, unsigned char *, int);
typedef int (*send_fn)(const unsigned char *, int, unsigned char *, int);
typedef int (*nquery_fn)(res_state, const char *, int, int, unsigned char *, int);
typedef int (*nquerydomain_fn)(res_state, const char *, const char *, int, int,
                               unsigned char *, int);
typedef int (*nsend_fn)(res_state, const unsigned char *, int, unsigned char *, int);


static void set_herrno(res_state statp, int value)
{
    h_errno = value;
    if (statp)
        statp->res_h_errno = value;
}


/* dns_send_raw flags and the RD bit from a res_state: only an initialised
 * state says anything (res_ninit's defaults: RD set, UDP first). */
static int state_flags(res_state statp, int *rd)
{
    int flags = 0;
    *rd = 1;
    if (statp && (statp->options & RES_INIT)) {
        *rd = (statp->options & RES_RECURSE) != 0;
        if (statp->options & RES_USEVC)
            flags |= DNS_RAW_USEVC;
        if (statp->options & RES_IGNTC)
            flags |= DNS_RAW_IGNTC;
    }
    return flags;
}

/* How one query ended, beyond h_errno (res_search's rules need it). */
enum q_kind { Q_ANSWER, Q_NEGATIVE, Q_SERVFAIL, Q_TIMEOUT, Q_NOSERVER, Q_INVALID };

/* res_nquery inside scope (a real PvD, not the null one). */
static int scoped_query(const struct pvd_dns_scope *scope, res_state statp, const char *name,
                        int klass, int type, unsigned char *answer, int anslen, enum q_kind *kind)
{
    *kind = Q_INVALID;
    uint8_t query[DNS_UDP_MAX];
    int qlen = -1;
    if (name && klass >= 0 && klass <= 0xFFFF && type >= 0 && type <= 0xFFFF)
        qlen = dns_build_query(query, sizeof query, dns_random_id(), name, (uint16_t)type);
    if (qlen < 0) {
        set_herrno(statp, NO_RECOVERY);
        return -1;
    }
    query[qlen - 2] = (uint8_t)(klass >> 8);
    query[qlen - 1] = (uint8_t)klass;
    int rd;
    int flags = state_flags(statp, &rd);
    if (!rd)
        query[2] &= (uint8_t)~0x01;
    if (!answer || anslen < HFIXEDSZ) {
        set_herrno(statp, TRY_AGAIN); /* glibc: res_send fails with EINVAL */
        return -1;
    }
    struct dns_options opt;
    dns_options_load(&opt);
    int n = dns_send_raw(scope, &opt, query, qlen, answer, anslen, flags);
    if (n < 0) {
        if (n == DNS_Q_NOSERVER) {
            pvd_dns_warn_no_servers(scope);
            *kind = Q_NOSERVER;
        } else {
            *kind = n == DNS_Q_SERVFAIL ? Q_SERVFAIL : Q_TIMEOUT;
        }
        set_herrno(statp, TRY_AGAIN);
        return -1;
    }
    int rcode = answer[3] & 0x0F;
    int ancount = (answer[6] << 8) | answer[7];
    if (rcode == NOERROR && ancount > 0) {
        *kind = Q_ANSWER;
        return n;
    }
    *kind = Q_NEGATIVE;
    switch (rcode) {
    case NXDOMAIN:
        set_herrno(statp, HOST_NOT_FOUND);
        break;
    case SERVFAIL:
        set_herrno(statp, TRY_AGAIN);
        break;
    case NOERROR:
        set_herrno(statp, NO_DATA);
        break;
    default: /* FORMERR, NOTIMP, REFUSED, ... */
        set_herrno(statp, NO_RECOVERY);
    }
    return -1;
}

/* res_nquerydomain: name.domain, or name without its trailing dot. */
static int scoped_querydomain(const struct pvd_dns_scope *scope, res_state statp,
                              const char *name, const char *domain, int klass, int type,
                              unsigned char *answer, int anslen, enum q_kind *kind)
{
    char buf[DNS_NAME_MAX + 2];
    const char *longname = buf;
    *kind = Q_INVALID;
    if (!name) {
        set_herrno(statp, NO_RECOVERY);
        return -1;
    }
    size_t n = strlen(name);
    if (!domain) {
        if (n == 0 || n - 1 >= DNS_NAME_MAX) {
            set_herrno(statp, NO_RECOVERY);
            return -1;
        }
        if (name[n - 1] == '.') {
            memcpy(buf, name, n - 1);
            buf[n - 1] = '\0';
        } else {
            longname = name;
        }
    } else {
        size_t d = strlen(domain);
        if (n + d + 1 >= sizeof buf) {
            set_herrno(statp, NO_RECOVERY);
            return -1;
        }
        memcpy(buf, name, n);
        buf[n] = '.';
        memcpy(buf + n + 1, domain, d + 1);
    }
    return scoped_query(scope, statp, longname, klass, type, answer, anslen, kind);
}

/* res_nsearch with the PvD's search list and ndots, by glibc's rules: the
 * name as is first when it has ndots dots or ends in a dot, then each search
 * domain (NXDOMAIN and NODATA go on, SERVFAIL goes on, a timeout or another
 * error stops the list), then the name as is if not asked yet. */
static int scoped_search(const struct pvd_dns_scope *scope, res_state statp, const char *name,
                         int klass, int type, unsigned char *answer, int anslen)
{
    if (!name) {
        set_herrno(statp, NO_RECOVERY);
        return -1;
    }
    struct dns_options opt;
    dns_options_load(&opt);
    int defnames = 1, dnsrch = 1, notldquery = 0;
    if (statp && (statp->options & RES_INIT)) {
        defnames = (statp->options & RES_DEFNAMES) != 0;
        dnsrch = (statp->options & RES_DNSRCH) != 0;
        notldquery = (statp->options & RES_NOTLDQUERY) != 0;
    }
    set_herrno(statp, HOST_NOT_FOUND);
    size_t len = strlen(name);
    int dots = 0;
    for (size_t i = 0; i < len; i++)
        dots += name[i] == '.';
    int trailing_dot = len > 0 && name[len - 1] == '.';
    int saved_herrno = -1, tried_as_is = 0, searched = 0, root_on_list = 0;
    int got_nodata = 0, got_servfail = 0;
    enum q_kind kind;
    int ret;
    if (dots >= opt.ndots || trailing_dot) {
        ret = scoped_querydomain(scope, statp, name, NULL, klass, type, answer, anslen, &kind);
        if (ret > 0 || trailing_dot || kind == Q_NOSERVER)
            return ret;
        saved_herrno = h_errno;
        tried_as_is = 1;
    }
    if ((!dots && defnames) || (dots && !trailing_dot && dnsrch)) {
        for (int i = 0; i < scope->nsearch; i++) {
            const char *domain = scope->search[i];
            searched = 1;
            if (domain[0] == '.')
                domain++;
            if (domain[0] == '\0')
                root_on_list = 1;
            ret = scoped_querydomain(scope, statp, name, domain, klass, type, answer, anslen,
                                     &kind);
            if (ret > 0)
                return ret;
            if (kind == Q_NOSERVER)
                return -1;
            int done = 0;
            switch (h_errno) {
            case NO_DATA:
                got_nodata = 1;
                break;
            case HOST_NOT_FOUND:
                break;
            case TRY_AGAIN:
                if (kind == Q_SERVFAIL) {
                    got_servfail = 1;
                    break;
                }
                done = 1;
                break;
            default:
                done = 1;
            }
            if (done || !dnsrch)
                break;
        }
    }
    if ((dots || !searched || !notldquery) && !(tried_as_is || root_on_list)) {
        ret = scoped_querydomain(scope, statp, name, NULL, klass, type, answer, anslen, &kind);
        if (ret > 0 || kind == Q_NOSERVER)
            return ret;
    }
    if (saved_herrno != -1)
        set_herrno(statp, saved_herrno);
    else if (got_nodata)
        set_herrno(statp, NO_DATA);
    else if (got_servfail)
        set_herrno(statp, TRY_AGAIN);
    return -1;
}

/* res_nsend inside scope: -1 with errno as glibc sets it. */
static int scoped_send(const struct pvd_dns_scope *scope, res_state statp,
                       const unsigned char *msg, int msglen, unsigned char *answer, int anslen,
                       int saved_errno)
{
    if (!msg || !answer || msglen < HFIXEDSZ || anslen < HFIXEDSZ) {
        errno = EINVAL;
        return -1;
    }
    int rd;
    int flags = state_flags(statp, &rd);
    struct dns_options opt;
    dns_options_load(&opt);
    int n = dns_send_raw(scope, &opt, msg, msglen, answer, anslen, flags);
    if (n >= 0) {
        errno = saved_errno;
        return n;
    }
    if (n == DNS_Q_NOSERVER)
        pvd_dns_warn_no_servers(scope);
    errno = n == DNS_Q_NOSERVER ? ECONNREFUSED : n == DNS_Q_BADNAME ? EINVAL : ETIMEDOUT;
    return -1;
}

/* The lookup trace of a query refused in the null PvD or a malformed scope: name (with domain,
 * res_querydomain), type; or, for the send forms, the question of msg. */
static void trace_refused(const struct pvd_dns_scope *scope, const char *name, const char *domain,
                          int type, const unsigned char *msg, int msglen)
{
    char qname[DNS_NAME_MAX + 1] = "";
    if (msg && msglen > HFIXEDSZ) {
        size_t off = HFIXEDSZ;
        if (dns_read_name(msg, (size_t)msglen, &off, qname, sizeof qname) == DNS_OK && off + 2 <= (size_t)msglen)
            type = (msg[off] << 8) | msg[off + 1];
    } else if (name) {
        if (domain)
            snprintf(qname, sizeof qname, "%s.%s", name, domain);
        else
            snprintf(qname, sizeof qname, "%s", name);
    }
    dns_trace(scope, qname, (uint16_t)type, NULL, "refused",
              scope->is_null ? "the null PvD" : "malformed PvD scope", -1, 0);
}

/* What the calling thread's scope says: 1 with *scope a real PvD, 0 when
 * no PvD applies, -1 for the null PvD or a malformed scope. */
static int current(struct pvd_dns_scope *scope)
{
    int status = pvd_dns_current_scope(scope);
    if (status == PVD_DNS_SCOPE_NONE)
        return 0;
    return status == PVD_DNS_SCOPE_OK && !scope->is_null ? 1 : -1;
}

/* current() for a query of name (with domain: res_querydomain) or of msg's question: under the
 * auto PvD, *scope becomes the PvD claiming the name's zone (dns_scope.h; its answers are not
 * remembered for connections: the program reads them itself).  -1 when that PvD cannot be
 * used (fail closed). */
static int current_for(struct pvd_dns_scope *scope, const char *name, const char *domain,
                       const unsigned char *msg, int msglen)
{
    int in = current(scope);
    if (in <= 0 || !scope->is_auto)
        return in;
    char qname[DNS_NAME_MAX + 1] = "";
    if (msg && msglen > HFIXEDSZ) {
        size_t off = HFIXEDSZ;
        if (dns_read_name(msg, (size_t)msglen, &off, qname, sizeof qname) != DNS_OK)
            qname[0] = '\0';
    } else if (name && domain) {
        snprintf(qname, sizeof qname, "%s.%s", name, domain);
    } else if (name) {
        snprintf(qname, sizeof qname, "%s", name);
    }
    struct pvd_dns_scope picked;
    unsigned int slot;
    const struct pvd_dns_scope *use = pvd_dns_scope_for_name(scope, qname, &picked, &slot);
    if (!use)
        return -1;
    if (use != scope)
        memcpy(scope, use, sizeof *scope);
    return 1;
}

/* A real function that does not exist in this libc. */
static int unavailable(res_state statp)
{
    set_herrno(statp, NETDB_INTERNAL);
    errno = ENOSYS;
    return -1;
}

/* ---- the res_n* forms ---- */

static int do_nquery(res_state statp, const char *name, int klass, int type,
                     unsigned char *answer, int anslen, nquery_fn real_fn, int search)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int in = current_for(&scope, name, NULL, NULL, 0);
    errno = saved;
    if (in == 0)
        return real_fn ? real_fn(statp, name, klass, type, answer, anslen) : unavailable(statp);
    int rc;
    enum q_kind kind;
    if (in < 0) {
        if (shim_tracing)
            trace_refused(&scope, name, NULL, type, NULL, 0);
        set_herrno(statp, NO_RECOVERY);
        rc = -1;
    } else if (search) {
        rc = scoped_search(&scope, statp, name, klass, type, answer, anslen);
    } else {
        rc = scoped_query(&scope, statp, name, klass, type, answer, anslen, &kind);
    }
    errno = saved;
    return rc;
}

SHIM_API int res_nquery(res_state statp, const char *name, int klass, int type,
                      unsigned char *answer, int anslen)
{
    return do_nquery(statp, name, klass, type, answer, anslen, REAL(res_nquery), 0);
}

SHIM_API int __res_nquery(res_state statp, const char *name, int klass, int type,
                        unsigned char *answer, int anslen) __attribute__((alias("res_nquery"), copy(res_nquery)));

SHIM_API int res_nsearch(res_state statp, const char *name, int klass, int type,
                       unsigned char *answer, int anslen)
{
    return do_nquery(statp, name, klass, type, answer, anslen, REAL(res_nsearch), 1);
}

SHIM_API int __res_nsearch(res_state statp, const char *name, int klass, int type,
                         unsigned char *answer, int anslen) __attribute__((alias("res_nsearch"), copy(res_nsearch)));

static int do_nquerydomain(res_state statp, const char *name, const char *domain, int klass,
                           int type, unsigned char *answer, int anslen)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int in = current_for(&scope, name, domain, NULL, 0);
    errno = saved;
    if (in == 0)
        return REAL(res_nquerydomain)
                   ? REAL(res_nquerydomain)(statp, name, domain, klass, type, answer, anslen)
                   : unavailable(statp);
    int rc;
    enum q_kind kind;
    if (in < 0) {
        if (shim_tracing)
            trace_refused(&scope, name, domain, type, NULL, 0);
        set_herrno(statp, NO_RECOVERY);
        rc = -1;
    } else {
        rc = scoped_querydomain(&scope, statp, name, domain, klass, type, answer, anslen, &kind);
    }
    errno = saved;
    return rc;
}

SHIM_API int res_nquerydomain(res_state statp, const char *name, const char *domain, int klass,
                            int type, unsigned char *answer, int anslen)
{
    return do_nquerydomain(statp, name, domain, klass, type, answer, anslen);
}

SHIM_API int __res_nquerydomain(res_state statp, const char *name, const char *domain, int klass,
                              int type, unsigned char *answer, int anslen) __attribute__((alias("res_nquerydomain"), copy(res_nquerydomain)));

static int do_nsend(res_state statp, const unsigned char *msg, int msglen, unsigned char *answer,
                    int anslen)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int in = current_for(&scope, NULL, NULL, msg, msglen);
    errno = saved;
    if (in == 0)
        return REAL(res_nsend) ? REAL(res_nsend)(statp, msg, msglen, answer, anslen) : unavailable(statp);
    if (in < 0) {
        if (shim_tracing)
            trace_refused(&scope, NULL, NULL, 0, msg, msglen);
        errno = ECONNREFUSED;
        return -1;
    }
    return scoped_send(&scope, statp, msg, msglen, answer, anslen, saved);
}

SHIM_API int res_nsend(res_state statp, const unsigned char *msg, int msglen, unsigned char *answer,
                     int anslen)
{
    return do_nsend(statp, msg, msglen, answer, anslen);
}

SHIM_API int __res_nsend(res_state statp, const unsigned char *msg, int msglen,
                       unsigned char *answer, int anslen) __attribute__((alias("res_nsend"), copy(res_nsend)));

/* ---- the forms on the thread's _res ---- */

static int do_query(const char *name, int klass, int type, unsigned char *answer, int anslen,
                    query_fn real_fn, int search)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int in = current_for(&scope, name, NULL, NULL, 0);
    errno = saved;
    if (in == 0)
        return real_fn ? real_fn(name, klass, type, answer, anslen) : unavailable(&_res);
    int rc;
    enum q_kind kind;
    if (in < 0) {
        if (shim_tracing)
            trace_refused(&scope, name, NULL, type, NULL, 0);
        set_herrno(&_res, NO_RECOVERY);
        rc = -1;
    } else if (search) {
        rc = scoped_search(&scope, &_res, name, klass, type, answer, anslen);
    } else {
        rc = scoped_query(&scope, &_res, name, klass, type, answer, anslen, &kind);
    }
    errno = saved;
    return rc;
}

SHIM_API int res_query(const char *name, int klass, int type, unsigned char *answer, int anslen)
{
    return do_query(name, klass, type, answer, anslen, REAL(res_query), 0);
}

SHIM_API int __res_query(const char *name, int klass, int type, unsigned char *answer, int anslen) __attribute__((alias("res_query"), copy(res_query)));

SHIM_API int res_search(const char *name, int klass, int type, unsigned char *answer, int anslen)
{
    return do_query(name, klass, type, answer, anslen, REAL(res_search), 1);
}

SHIM_API int __res_search(const char *name, int klass, int type, unsigned char *answer, int anslen) __attribute__((alias("res_search"), copy(res_search)));

static int do_querydomain(const char *name, const char *domain, int klass, int type,
                          unsigned char *answer, int anslen)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int in = current_for(&scope, name, domain, NULL, 0);
    errno = saved;
    if (in == 0)
        return REAL(res_querydomain) ? REAL(res_querydomain)(name, domain, klass, type, answer, anslen)
                                : unavailable(&_res);
    int rc;
    enum q_kind kind;
    if (in < 0) {
        if (shim_tracing)
            trace_refused(&scope, name, domain, type, NULL, 0);
        set_herrno(&_res, NO_RECOVERY);
        rc = -1;
    } else {
        rc = scoped_querydomain(&scope, &_res, name, domain, klass, type, answer, anslen, &kind);
    }
    errno = saved;
    return rc;
}

SHIM_API int res_querydomain(const char *name, const char *domain, int klass, int type,
                           unsigned char *answer, int anslen)
{
    return do_querydomain(name, domain, klass, type, answer, anslen);
}

SHIM_API int __res_querydomain(const char *name, const char *domain, int klass, int type,
                             unsigned char *answer, int anslen) __attribute__((alias("res_querydomain"), copy(res_querydomain)));

static int do_send(const unsigned char *msg, int msglen, unsigned char *answer, int anslen)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int in = current_for(&scope, NULL, NULL, msg, msglen);
    errno = saved;
    if (in == 0)
        return REAL(res_send) ? REAL(res_send)(msg, msglen, answer, anslen) : unavailable(&_res);
    if (in < 0) {
        if (shim_tracing)
            trace_refused(&scope, NULL, NULL, 0, msg, msglen);
        errno = ECONNREFUSED;
        return -1;
    }
    return scoped_send(&scope, &_res, msg, msglen, answer, anslen, saved);
}

SHIM_API int res_send(const unsigned char *msg, int msglen, unsigned char *answer, int anslen)
{
    return do_send(msg, msglen, answer, anslen);
}

SHIM_API int __res_send(const unsigned char *msg, int msglen, unsigned char *answer, int anslen) __attribute__((alias("res_send"), copy(res_send)));

/* ---- gethostbyaddr ---- */

/* Lay out a hostent for one address and a name (no aliases) in buf.
 * 0 or ERANGE. */
static int fill_hostent(const char *name, int family, const uint8_t *addr, struct hostent *ret,
                        char *buf, size_t buflen)
{
    size_t alen = family == AF_INET ? 4 : 16;
    size_t pad = (sizeof(char *) - ((uintptr_t)buf & (sizeof(char *) - 1))) & (sizeof(char *) - 1);
    size_t namelen = strlen(name) + 1;
    if (!buf || pad + 3 * sizeof(char *) + alen + namelen > buflen)
        return ERANGE;
    char **aliases = (char **)(void *)(buf + pad);
    char **list = aliases + 1;
    char *data = (char *)(list + 2);
    memcpy(data, addr, alen);
    list[0] = data;
    list[1] = NULL;
    aliases[0] = NULL;
    memcpy(data + alen, name, namelen);
    ret->h_name = data + alen;
    ret->h_aliases = aliases;
    ret->h_addrtype = family;
    ret->h_length = (int)alen;
    ret->h_addr_list = list;
    return 0;
}

/* gethostbyaddr_r under a scope (status as pvd_dns_current_scope returned,
 * not NONE); returns as glibc's: 0 (found, or not found with *h_errnop),
 * else an errno value. */
static int scoped_gethostbyaddr_r(int status, const struct pvd_dns_scope *scope,
                                  const void *addr, socklen_t len, int type, struct hostent *ret,
                                  char *buf, size_t buflen, struct hostent **result,
                                  int *h_errnop)
{
    static const uint8_t any6[16];
    *result = NULL;
    if (!addr || !ret) {
        *h_errnop = NETDB_INTERNAL;
        return EINVAL;
    }
    char ptr_name[DNS_NAME_MAX + 1] = ""; /* for the trace */
    if (shim_tracing && (type == AF_INET || type == AF_INET6) && len >= (type == AF_INET ? 4u : 16u)
        && dns_reverse_name(type == AF_INET ? 4 : 6, addr, ptr_name, sizeof ptr_name) != DNS_OK)
        ptr_name[0] = '\0';
    if (status != PVD_DNS_SCOPE_OK) {
        if (shim_tracing)
            dns_trace(NULL, ptr_name, DNS_TYPE_PTR, NULL, "refused", "malformed PvD scope", -1, 0);
        *h_errnop = NO_RECOVERY;
        return 0;
    }
    if (len == 16 && memcmp(addr, any6, 16) == 0) { /* as glibc: :: has no name */
        *h_errnop = HOST_NOT_FOUND;
        return ENOENT;
    }
    socklen_t need = type == AF_INET ? 4 : type == AF_INET6 ? 16 : 0;
    if (!need || len < need) {
        *h_errnop = NETDB_INTERNAL;
        return EAFNOSUPPORT;
    }
    struct pvd_dns_scope from_buf; /* the auto PvD: the PvD the address came from */
    scope = pvd_dns_scope_for_addr(scope, type, addr, &from_buf);
    const uint8_t *bytes = addr;
    int family = type;
    char name[DNS_NAME_MAX + 1];
    int res = DNS_RES_NXDOMAIN, null_pvd = 0;
    int order[2];
    int nsources = dns_nsswitch_order(order);
    for (int i = 0; i < nsources && res != DNS_RES_OK; i++) {
        if (order[i] == DNS_SRC_FILES) {
            if (dns_hosts_reverse(type, addr, name, sizeof name) == 1) {
                if (shim_tracing)
                    dns_trace(scope, ptr_name, DNS_TYPE_PTR, NULL, "answered", "hosts", -1, 0);
                res = DNS_RES_OK;
                family = type;
                bytes = addr;
            }
            continue;
        }
        if (scope->is_null) {
            if (shim_tracing)
                dns_trace(scope, ptr_name, DNS_TYPE_PTR, NULL, "refused", "the null PvD", -1, 0);
            null_pvd = 1;
            continue;
        }
        /* As glibc's DNS backend: an IPv4-mapped address is asked (and
         * returned) as IPv4. */
        if (type == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
            family = AF_INET;
            bytes = (const uint8_t *)addr + 12;
        }
        if (scope->nservers == 0) {
            if (shim_tracing)
                dns_trace(scope, ptr_name, DNS_TYPE_PTR, NULL, "refused", "no DNS server in the PvD", -1, 0);
            pvd_dns_warn_no_servers(scope);
            res = DNS_RES_NOSERVER;
            continue;
        }
        struct dns_options opt;
        dns_options_load(&opt);
        res = dns_resolve_ptr(scope, &opt, family, bytes, name, sizeof name);
        if (res == DNS_RES_NOSERVER)
            pvd_dns_warn_no_servers(scope);
    }
    switch (res) {
    case DNS_RES_OK:
        if (fill_hostent(name, family, bytes, ret, buf, buflen) != 0) {
            *h_errnop = NETDB_INTERNAL;
            return ERANGE;
        }
        *result = ret;
        *h_errnop = 0;
        return 0;
    case DNS_RES_NODATA:
        *h_errnop = NO_DATA;
        return 0;
    case DNS_RES_AGAIN:
    case DNS_RES_NOSERVER:
        *h_errnop = TRY_AGAIN;
        return EAGAIN;
    default:
        *h_errnop = null_pvd ? NO_RECOVERY : HOST_NOT_FOUND;
        return 0;
    }
}

SHIM_API int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
                           char *buf, size_t buflen, struct hostent **result, int *h_errnop)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    errno = saved;
    if (status == PVD_DNS_SCOPE_NONE) {
        if (REAL(gethostbyaddr_r))
            return REAL(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result, h_errnop);
        *result = NULL;
        *h_errnop = NETDB_INTERNAL;
        return ENOSYS;
    }
    int rc = scoped_gethostbyaddr_r(status, &scope, addr, len, type, ret, buf, buflen, result,
                                    h_errnop);
    errno = rc ? rc : saved;
    return rc;
}

/* The static result of gethostbyaddr, per thread: one address and a name
 * of at most 254 characters always fit (no allocation). */
static __thread struct hostent tls_hostent;
static __thread union {
    char buf[512];
    void *align;
} tls_store;

SHIM_API struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    errno = saved;
    if (status == PVD_DNS_SCOPE_NONE) {
        if (REAL(gethostbyaddr))
            return REAL(gethostbyaddr)(addr, len, type);
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    struct hostent *result = NULL;
    int herr = NO_RECOVERY;
    scoped_gethostbyaddr_r(status, &scope, addr, len, type, &tls_hostent, tls_store.buf,
                           sizeof tls_store.buf, &result, &herr);
    h_errno = herr;
    errno = saved;
    return result;
}
