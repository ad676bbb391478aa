/* dns_scope.h: the current PvD's DNS-relevant view, as the resolver needs it.
 *
 * ONE entry point, pvd_dns_current_scope() (dns_current.c): the calling thread's PvD as the
 * shim core sees it (thread scope, else process scope; shim/core/core.h).  The view is built
 * once per PvD from the core's parsed scope line (scope_parse.c, the only parser of the
 * scope line): pvd_dns_scope_from() converts, it does not parse the line again.
 * Internal to libpvdshim.so.
 */
#ifndef PVD_DNS_SCOPE_H
#define PVD_DNS_SCOPE_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns_wire.h"
#include "pvd.h"
#include "scope_parse.h"

#define PVD_DNS_MAX_IFS PVD_MAX_IFACES
#define PVD_DNS_MAX_ADDRS PVD_MAX_ADDRS
#define PVD_DNS_MAX_SERVERS PVD_MAX_DNS
#define PVD_DNS_MAX_SEARCH PVD_MAX_SEARCH
#define PVD_DNS_ID_MAX PVD_ID_MAX

struct pvd_dns_addr {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t addr[16];           /* 4 or 16 bytes */
    uint32_t scope_id;          /* IPv6 zone: the index of the PvD's interface it names (a
                                 * link-local server's link), else 0; pvd_dns_sockaddr() puts it
                                 * in sin6_scope_id */
};

struct pvd_dns_iface {
    char name[IF_NAMESIZE];
    unsigned index;
};

struct pvd_dns_scope {
    char id[PVD_DNS_ID_MAX];
    uint32_t handle;
    int is_null;                /* the null PvD: no network at all (R13) */
    int is_auto;                /* the auto PvD's default, for a thread under the auto rules:
                                 * each name picks its PvD (pvd_dns_scope_for_name) */
    int nifs, naddrs, nservers, nsearch;
    struct pvd_dns_iface ifs[PVD_DNS_MAX_IFS];
    struct pvd_dns_addr addrs[PVD_DNS_MAX_ADDRS];
    struct pvd_dns_addr servers[PVD_DNS_MAX_SERVERS];
    char search[PVD_DNS_MAX_SEARCH][DNS_NAME_MAX + 1];
    uint32_t mark;
};

/* Return values of pvd_dns_current_scope(). */
#define PVD_DNS_SCOPE_NONE 0      /* no scope: the system default applies */
#define PVD_DNS_SCOPE_OK 1        /* *out holds the scope */
#define PVD_DNS_SCOPE_BAD (-1)    /* a scope is set but malformed: fail closed */

/* Fill *out with the calling thread's PvD scope.  Thread-safe.  A
 * malformed PVDRUN_SCOPE is the null PvD (the core fails closed and says
 * so on stderr). */
int pvd_dns_current_scope(struct pvd_dns_scope *out);

/* The resolver's view of the PvD in table slot `slot` (built once per slot): PVD_DNS_SCOPE_OK,
 * or PVD_DNS_SCOPE_BAD (no such PvD, or a malformed one).  is_auto is 0. */
int pvd_dns_slot_scope(unsigned int slot, struct pvd_dns_scope *out);

/* The scope a lookup of `name` goes to: `scope` itself, or when scope->is_auto (the auto PvD)
 * the PvD claiming the longest zone holding name (copied into *buf), the default (scope) when
 * none does.  *slot: the chosen PvD's table slot for pvd_dns_auto_remember (0 when not auto).
 * NULL when the chosen PvD cannot be used (fail closed).  errno untouched. */
const struct pvd_dns_scope *pvd_dns_scope_for_name(const struct pvd_dns_scope *scope, const char *name,
                                                   struct pvd_dns_scope *buf, unsigned int *slot);

/* The auto PvD: addrs[0..n) came from the PvD in `slot` (0: nothing remembered). */
void pvd_dns_auto_remember(unsigned int slot, const struct pvd_dns_addr *addrs, int n);

/* The auto PvD, for a reverse lookup of addr (family AF_INET/AF_INET6): the view of the PvD
 * the address came from, else `scope` (as pvd_dns_scope_for_name). */
const struct pvd_dns_scope *pvd_dns_scope_for_addr(const struct pvd_dns_scope *scope, int family,
                                                   const uint8_t *addr, struct pvd_dns_scope *buf);

/* Parse "ADDR" or "ADDR%ZONE" of a PvD whose interfaces are links->ifs[0..nifs): the zone
 * (an index or an interface name) must name one of them, and becomes scope_id; a link-local
 * address without a zone takes the PvD's interface when it has exactly one.  0; -1 when s is
 * no address; -2 when its zone names none of the PvD's interfaces. */
int pvd_dns_parse_addr(const char *s, const struct pvd_dns_scope *links, struct pvd_dns_addr *out);

/* 1 when the PvD can ask DNS server `server` (parsed by pvd_dns_parse_addr against scope), else
 * 0: the one rule for the shim's resolver and pvd_dns_server_usable (pvd.h).  No allocation, no
 * system call; errno untouched. */
int pvd_dns_server_usable_in(const struct pvd_dns_scope *scope, const struct pvd_dns_addr *server);

/* a as the socket calls take it, with port: for IPv6, scope_id in sin6_scope_id (nonzero for
 * a link-local server: the PvD's interface it is reached on).  Returns the length. */
socklen_t pvd_dns_sockaddr(const struct pvd_dns_addr *a, uint16_t port, struct sockaddr_storage *ss);

/* The resolver's view of a parsed scope line.  PVD_DNS_SCOPE_OK, or PVD_DNS_SCOPE_BAD when
 * an address's %zone names none of the PvD's interfaces. */
int pvd_dns_scope_from(const struct pvd_scope *scope, struct pvd_dns_scope *out);

/* Parse one scope line with the core's parser, then convert (for the test harnesses).
 * Returns PVD_DNS_SCOPE_OK or PVD_DNS_SCOPE_BAD. */
int pvd_dns_parse_scope(const char *line, struct pvd_dns_scope *out);

/* Write a one-line diagnostic "pvdrun: <msg>\n" to stderr, once per key
 * per process (key < 16; 1: device binding refused, 2: no usable DNS
 * server, 3: socket mark refused).  errno is preserved. */
void pvd_dns_warn_once(unsigned key, const char *msg);

/* Say, once per process (key 2), that the PvD has no usable DNS server. */
void pvd_dns_warn_no_servers(const struct pvd_dns_scope *scope);

#endif
