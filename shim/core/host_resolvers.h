/* host_resolvers.h: the host's resolver daemons, which a scoped program must not reach.
 *
 * nscd and systemd-resolved answer name lookups with the host's view, asking the host's
 * servers from outside the PvD; a scoped program's connect() to their AF_UNIX sockets is
 * refused (hooks/connect.c).  Only AF_UNIX addresses are looked at. */
#ifndef PVD_HOST_RESOLVERS_H
#define PVD_HOST_RESOLVERS_H

#include <sys/socket.h>

/* Does this AF_UNIX address (already copied into the shim's memory, `len` bytes) name
 * the socket of nscd (/run/nscd/socket, /var/run/nscd/socket) or systemd-resolved
 * (/run/systemd/resolve/io.systemd.Resolve and io.systemd.Resolve.Monitor)?  A path is
 * compared after removing ".", ".." and repeated slashes, "/var/run/" read as "/run/", and
 * a relative one taken from the working directory; abstract names are never these.  1 or 0;
 * errno untouched. */
int shim_is_host_resolver(const struct sockaddr *addr, socklen_t len);

/* The index-th of those socket paths (the /run spelling), NULL past the last. */
const char *shim_host_resolver_socket(unsigned int index);

#endif
