/* route_check.h: does a PvD's interface have an IPv4 route to a destination? */
#ifndef PVD_ROUTE_CHECK_H
#define PVD_ROUTE_CHECK_H

#include <netinet/in.h>

/* 1: a route through ifindex exists (or the check could not be made: the device binding
 * still confines the traffic); 0: none.  When a route is found, *prefix and *plen are the
 * route's destination prefix (plen 0: a default route), so that the caller can skip the
 * check for later destinations inside it; *plen is 255 when unknown.
 *
 * Why: with SO_BINDTODEVICE and no IPv4 route, Linux assumes the destination is on-link
 * and ARPs for it on the PvD's link (the packets stay in the PvD, but the call only fails
 * after the ARP timeout, with EHOSTUNREACH).  IPv6 already gives ENETUNREACH. */
#include <stdint.h>
/* mark: the socket mark the PvD's sockets carry (0: none), so pvdd's rules apply. */
int shim_v4_route_exists(struct in_addr dst, int ifindex, uint32_t mark, struct in_addr *prefix, unsigned int *plen);

/* A per-PvD memory of the IPv4 prefixes found routed through the PvD's interface, so that
 * later sockets to them skip the check (one 64-bit atomic per entry, no lock). */
int shim_v4_route_cached(unsigned int slot, struct in_addr dst);
void shim_v4_route_remember(unsigned int slot, struct in_addr prefix, unsigned int plen);

#endif
