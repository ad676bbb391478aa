/* tie.h: tying a socket to a PvD (R3, R6), the one rule for every socket, the program's or
 * the shim's own (DNS): device binding to the PvD's interface, the PvD's mark, the IPv4 route
 * check, a PvD source address.  decide.c decides when; this is how. */
#ifndef PVD_TIE_H
#define PVD_TIE_H

#include <stdint.h>
#include <sys/socket.h>

#include "core.h"

/* How the shim's own sockets (DNS queries) differ from the program's: */
#define APPLY_SOURCE 1u    /* bind a PvD source whatever srcbind says (R25) */
#define APPLY_MARK_SELF 2u /* set the mark directly when the process may (CAP_NET_ADMIN) */

/* The interface a socket is bound to by device (0: none, -1 on error). */
int shim_bound_device(int fd);
/* The PvD's interface for dst: the zone of a link-local/multicast IPv6 destination when it is
 * one of the PvD's interfaces, else the PvD's first. */
int shim_pick_ifindex(const struct pvd_scope *pvd, const struct sockaddr *dst, socklen_t dstlen);
/* Bind fd to interface ifindex of the PvD; an adopted socket's own binding is kept when it is
 * one of the PvD's interfaces, refused (EPERM) otherwise. */
int shim_bind_device(int fd, const struct pvd_scope *pvd, int ifindex, int adopted);
/* The socket's local address when it has one (bound, or given one by connect). */
int shim_bound_source(int fd, struct sockaddr_storage *cur, socklen_t *cur_len);
/* Tie fd (state word w) to pvd for an operation towards dst; adds W_* to *flags; `how` is
 * APPLY_* for the shim's own sockets, 0 for the program's.  Every step can be repeated.
 * 0, or -1 with errno. */
int shim_apply(int fd, unsigned int slot, const struct pvd_scope *pvd, uint32_t w, const struct sockaddr *dst,
               socklen_t dstlen, enum shim_op op, uint32_t *flags, unsigned int how);

#endif
