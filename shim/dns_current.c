/* dns_current.c: pvd_dns_current_scope() on top of the shim core's scope
 * levels (shim/core.h): shim_current_scope_line() gives the scope line of the
 * PvD the calling thread's operations use now (thread scope, else process
 * scope: PVDRUN_SCOPE or pvd_set_process_scope; the null PvD's line for the
 * null PvD and for a malformed PVDRUN_SCOPE).  The line is parsed with the
 * resolver's own parser (dns_scope.c, the one the harness tests), so the
 * resolver and the socket hooks always agree on which PvD applies. */
#include <errno.h>

#include "core.h"
#include "dns_scope.h"

int pvd_dns_current_scope(struct pvd_dns_scope *out)
{
    int saved = errno; /* if_nametoindex() for a %zone may touch it */
    const char *line = NULL;
    int status;
    if (shim_current_scope_line(&line) && line)
        status = pvd_dns_parse_scope(line, out);
    else /* no line: no PvD at all, or one we cannot read (fail closed) */
        status = shim_effective_slot() == SLOT_NONE ? PVD_DNS_SCOPE_NONE : PVD_DNS_SCOPE_BAD;
    errno = saved;
    return status;
}
