/* dns_hosts.h: /etc/hosts and the "hosts:" line of /etc/nsswitch.conf, so
 * that the scoped resolver still answers from files first when the system
 * says so.  Internal to libpvdshim.so. */
#ifndef PVD_DNS_HOSTS_H
#define PVD_DNS_HOSTS_H

#include "dns_client.h"

/* Source order of the "hosts:" database: DNS_SRC_FILES / DNS_SRC_DNS in
 * order[0..n) ("resolve", systemd-resolved, counts as dns: the PvD's DNS
 * takes its place); other services (myhostname, mymachines, mdns) are not
 * consulted inside a PvD.  No hosts: line means "files dns". */
#define DNS_SRC_FILES 1
#define DNS_SRC_DNS 2
int dns_nsswitch_order(int order[2]);

/* Addresses for name in /etc/hosts (case-insensitive, canonical names and
 * aliases), of the wanted families; the canonical name of the first
 * matching line goes into out->canon.  Returns out->naddrs. */
int dns_hosts_lookup(const char *name, int want4, int want6, struct dns_addr_result *out);

/* The canonical name of the first line of /etc/hosts with this address.
 * Returns 1 when found and copied, 0 when not found, -1 when too long. */
int dns_hosts_reverse(int family, const uint8_t *addr, char *host, size_t hostlen);

#endif
