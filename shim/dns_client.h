/* dns_client.h: the shim's DNS transport and name search (R25).
 *
 * Every query goes to the PvD's own servers, from a socket made with the
 * REAL libc functions (dlsym(RTLD_NEXT)), bound to the PvD's interface
 * (SO_BINDTOIFINDEX) and to one of the PvD's source addresses, and marked
 * with the PvD's mark when it has one (directly, else by pvdd), so no DNS
 * packet can leave through another PvD.  Replies from another address or
 * port, or with another id or question, are dropped.  A truncated (TC)
 * UDP reply is retried over TCP to the same server.
 *
 * Options follow resolv.conf(5) defaults, overridable with RES_OPTIONS
 * ("timeout:N attempts:N ndots:N"): timeout 5 s per try, 2 attempts over
 * the server list, ndots 1.  Internal to libpvdshim.so.
 */
#ifndef PVD_DNS_CLIENT_H
#define PVD_DNS_CLIENT_H

#include "dns_scope.h"
#include "dns_wire.h"

struct dns_options {
    int timeout_ms;   /* per try and server; RES_OPTIONS timeout:N (seconds, 1..30) */
    int attempts;     /* passes over the server list; attempts:N (1..5) */
    int ndots;        /* search-list threshold; ndots:N (0..15) */
};

/* Defaults, then RES_OPTIONS from the environment. */
void dns_options_load(struct dns_options *opt);

/* Results of dns_query(). */
#define DNS_Q_OK 0          /* *resp is a parsed reply; its rcode may be an error */
#define DNS_Q_TIMEOUT (-1)  /* no usable server answered in time */
#define DNS_Q_NOSERVER (-2) /* the PvD has no server it can reach from its own addresses */
#define DNS_Q_BADNAME (-3)  /* name cannot be encoded */

/* One query (name, qtype) against the scope's servers. */
int dns_query(const struct pvd_dns_scope *scope, const struct dns_options *opt,
              const char *name, uint16_t qtype, struct dns_response *resp);

/* Results of the lookups below. */
#define DNS_RES_OK 0
#define DNS_RES_NXDOMAIN 1   /* no such name under any search candidate */
#define DNS_RES_NODATA 2     /* the name exists, without records of the family */
#define DNS_RES_AGAIN 3      /* timeout or server failure: try again later */
#define DNS_RES_NOSERVER 4   /* no usable DNS server in the PvD */
#define DNS_RES_BADNAME 5    /* the name cannot be a DNS name */

#define DNS_RESULT_MAX_ADDRS 48

struct dns_addr_result {
    int naddrs;
    struct pvd_dns_addr addrs[DNS_RESULT_MAX_ADDRS];
    char canon[DNS_NAME_MAX + 1];    /* end of the CNAME chain */
};

/* Resolve name to addresses (A when want4, AAAA when want6) with the
 * search list and ndots rules of res_search(3), following CNAME chains
 * inside each reply. */
int dns_resolve_addrs(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                      const char *name, int want4, int want6, struct dns_addr_result *out);

/* Reverse lookup (PTR) of addr (family AF_INET/AF_INET6) into host. */
int dns_resolve_ptr(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                    int family, const uint8_t *addr, char *host, size_t hostlen);

#endif
