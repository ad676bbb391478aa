/* resolvconf_view.h: /etc/resolv.conf as the calling thread's PvD sees it.
 *
 * Programs that read resolv.conf themselves (dig, host, nslookup, dnspython) are handed this
 * view by the open hooks (hooks/open.c) instead of the host's file: the PvD's servers, its
 * search list and the shim's resolver options, in resolv.conf(5) form, rendered from the
 * resolver's view of the PvD (dns_current.c), never from the scope line again.
 *
 * Each PvD's text is written once into a sealed memfd (F_SEAL_WRITE, SHRINK, GROW and SEAL)
 * kept open by the shim (close-on-exec); every open of resolv.conf gets a new open file
 * description of it (/proc/self/fd/N reopened read-only), so each opener reads from offset 0
 * with its own offset.  Everything here is system calls, atomics and the stack: no lock, no
 * allocation, so it may run in a signal handler. */
#ifndef PVD_RESOLVCONF_VIEW_H
#define PVD_RESOLVCONF_VIEW_H

#include <stddef.h>

#include "dns_client.h"
#include "dns_scope.h"
#include "sockaddr.h"

/* Written when the PvD has no DNS server (also the null PvD and a malformed scope): a file
 * without a nameserver line means 127.0.0.1 to glibc and to dig, which may be a host-wide
 * resolver answering with another PvD's view.  127.255.255.254 (core/sockaddr.h) is loopback
 * that a scoped socket never reaches: the socket is tied to the PvD and the query leaves by the
 * PvD's own link, where nothing answers (a resolver of the host bound to 0.0.0.0:53 would
 * otherwise receive it).  The launcher's private file
 * (pvdrun/resolve/resolvconf.py, NO_SERVER_PLACEHOLDER) writes the same. */
#define PVD_RESOLVCONF_NO_SERVER SHIM_NO_DNS_SERVER
/* glibc reads at most three nameserver lines (MAXNS) and six search domains (MAXDNSRCH). */
#define PVD_RESOLVCONF_MAXNS 3
#define PVD_RESOLVCONF_MAXDNSRCH 6
/* Large enough for every line a scope can produce (8 servers, 6 domains of 254 octets). */
#define PVD_RESOLVCONF_TEXT_MAX 4096

/* The resolv.conf text of `scope` (is_null or no servers: the placeholder) with `opt`'s
 * options.  Returns its length (always < len; the text is cut, never overflowed). */
size_t pvd_resolvconf_render(const struct pvd_dns_scope *scope, const struct dns_options *opt, char *buf,
                             size_t len);

/* A new descriptor reading the calling thread's PvD's resolv.conf from offset 0, close-on-exec
 * when `cloexec`; the thread must have a scope (thread or process).  -1 with errno (EMFILE,
 * ENOMEM, ...): the caller fails the open, it never falls back to the host's file. */
int pvd_resolvconf_open(int cloexec);

#endif
