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
#define DNS_Q_BADNAME (-3)  /* name cannot be encoded (dns_send_raw: query or buffer too short or long) */
#define DNS_Q_SERVFAIL (-4) /* dns_send_raw: every server answered SERVFAIL, NOTIMP or REFUSED */

/* One query (name, qtype) against the scope's servers. */
int dns_query(const struct pvd_dns_scope *scope, const struct dns_options *opt,
              const char *name, uint16_t qtype, struct dns_response *resp);

/* Send the caller's query bytes as they are (res_send(3)) to the scope's
 * servers, in order, attempts passes over the list, from sockets bound like
 * every other DNS socket of the shim.  A reply counts when it comes from the
 * server's address and port 53 and answers the query (dns_reply_matches: id,
 * opcode, question); SERVFAIL, NOTIMP and REFUSED move on to the next server,
 * as glibc does.  A UDP reply with TC set is asked again over TCP (unless
 * DNS_RAW_IGNTC); DNS_RAW_USEVC asks over TCP only.  Returns the reply's
 * length as copied into answer: at most anslen octets, and a longer reply is
 * cut there with its TC bit set; or DNS_Q_TIMEOUT, DNS_Q_NOSERVER,
 * DNS_Q_SERVFAIL (the last such reply is in answer) or DNS_Q_BADNAME. */
#define DNS_RAW_USEVC 1
#define DNS_RAW_IGNTC 2
int dns_send_raw(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                 const uint8_t *query, int qlen, uint8_t *answer, int anslen, int flags);

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

/* The lookup trace (PVDRUN_TRACE; shim_trace_lookup in log.h): one line for name and qtype, asked
 * of server (NULL: none was asked), in scope (NULL: no PvD, e.g. a malformed scope).  Callers test
 * shim_tracing first.  dns_trace_each: one line per family wanted (A, AAAA), no server. */
void dns_trace(const struct pvd_dns_scope *scope, const char *name, uint16_t qtype,
               const struct pvd_dns_addr *server, const char *verdict, const char *why, int rcode,
               int err);
void dns_trace_each(const struct pvd_dns_scope *scope, const char *name, int want4, int want6,
                    const char *verdict, const char *why);

/* A DNS query id from getrandom (the clock when that fails). */
uint16_t dns_random_id(void);

#endif
