/* gai_scoped.h: the shim's getaddrinfo for an explicit PvD scope, for callers
 * that resolve on behalf of another thread (gai_async.c: getaddrinfo_a's
 * workers resolve in the scope of the thread that submitted the request).
 * Internal to libpvdshim.so. */
#ifndef PVD_GAI_SCOPED_H
#define PVD_GAI_SCOPED_H

#include <netdb.h>

#include "dns_scope.h"

/* getaddrinfo(node, service, hints, res) inside scope.  status is what
 * pvd_dns_current_scope() returned for it: PVD_DNS_SCOPE_OK, or
 * PVD_DNS_SCOPE_BAD (every lookup fails with EAI_FAIL); never
 * PVD_DNS_SCOPE_NONE (the caller runs the real function then).  The result
 * list is freed with freeaddrinfo.  errno is preserved. */
int pvd_gai_in_scope(int status, const struct pvd_dns_scope *scope, const char *node,
                     const char *service, const struct addrinfo *hints, struct addrinfo **res);

#endif
