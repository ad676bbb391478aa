/* dns_sort.h: RFC 6724 destination address selection, seen from inside a
 * PvD: candidate source addresses are the PvD's own (R26 spirit), not the
 * host's.  Internal to libpvdshim.so. */
#ifndef PVD_DNS_SORT_H
#define PVD_DNS_SORT_H

#include "dns_scope.h"

/* Sort addrs[0..n) in place by RFC 6724 section 6 rules 1, 2, 5, 6, 8, 9
 * and 10 (stable), with the default policy table of section 2.1 and the
 * source each destination would use chosen among scope->addrs by the
 * section 5 rules that need no routing table (same address, scope,
 * label, longest prefix).  Rules 3, 4 and 7 (deprecated, home, native)
 * need state the scope line does not carry. */
void dns_sort_rfc6724(const struct pvd_dns_scope *scope, struct pvd_dns_addr *addrs, int n);

#endif
