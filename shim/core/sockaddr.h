/* sockaddr.h: what an address is (loopback, wildcard, multicast, IPv4 seen through an
 * IPv4-mapped IPv6 address), whether it is one of a PvD's, and which PvD source to use. */
#ifndef PVD_SOCKADDR_H
#define PVD_SOCKADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "scope_parse.h"

/* The IPv4 address of sa (AF_INET, or IPv4-mapped AF_INET6): 1 with *out, else 0. */
int shim_sa_v4(const struct sockaddr *sa, socklen_t len, struct in_addr *out);
/* The IPv6 address of sa (not IPv4-mapped), or NULL. */
const struct in6_addr *shim_sa_v6(const struct sockaddr *sa, socklen_t len);
/* The resolv.conf placeholder of a PvD without DNS servers (dns/resolvconf_view.h; the
 * launcher's private file writes the same): a loopback address nothing should answer on, which a
 * resolver bound to the wildcard (0.0.0.0:53) would receive all the same.  For a scoped socket
 * it is no loopback: the socket is tied to the PvD as for any other destination, so the query
 * never reaches the host's own resolvers; it leaves by the PvD's link, where nothing answers. */
#define SHIM_NO_DNS_SERVER "127.255.255.254"
#define SHIM_NO_DNS_SERVER_V4 0x7ffffffeU
/* Loopback, other than the placeholder above. */
int shim_addr_is_loopback(const struct sockaddr *sa, socklen_t len);
/* Is sa the placeholder above (AF_INET, or IPv4-mapped)? */
int shim_addr_is_no_dns_server(const struct sockaddr *sa, socklen_t len);
int shim_addr_is_wildcard(const struct sockaddr *sa, socklen_t len);
int shim_addr_is_multicast(const struct sockaddr *sa, socklen_t len);
/* Is sa one of the PvD's addresses? */
int shim_addr_in_pvd(const struct pvd_scope *pvd, const struct sockaddr *sa, socklen_t len);
/* The port of an AF_INET/AF_INET6 address (network order), else 0. */
int shim_sa_port(const struct sockaddr *sa);
/* A source address of the PvD for a socket of `family` talking to dst (may be NULL), with
 * `port`; 0, or -1 when the PvD has none of that kind. */
int shim_choose_source(const struct pvd_scope *pvd, int family, const struct sockaddr *dst, socklen_t dstlen,
                       in_port_t port, struct sockaddr_storage *out, socklen_t *out_len);

#endif
