/* route_check.h: does a PvD's interface have an IPv4 route to a destination? */
#ifndef PVD_ROUTE_CHECK_H
#define PVD_ROUTE_CHECK_H

#include <netinet/in.h>

/* 1: a route through ifindex exists (or the check could not be made: the device binding
 * still confines the traffic); 0: none.  *is_default is set when the route found is a
 * default route (then every later destination is reachable and the caller can stop asking).
 *
 * Why: with SO_BINDTODEVICE and no IPv4 route, Linux assumes the destination is on-link
 * and ARPs for it on the PvD's link (the packets stay in the PvD, but the call only fails
 * after the ARP timeout, with EHOSTUNREACH).  IPv6 already gives ENETUNREACH. */
int shim_v4_route_exists(struct in_addr dst, int ifindex, int *is_default);

#endif
