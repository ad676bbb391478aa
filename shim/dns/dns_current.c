/* dns_current.c: pvd_dns_current_scope() on top of the shim core's scope levels
 * (shim/core/core.h): the PvD the calling thread's operations use now (thread scope, else process
 * scope: PVDRUN_SCOPE or pvd_set_process_scope).  The resolver's view of each PvD of the
 * core's table is built once, from the core's own parse of its scope line, so the resolver
 * and the socket hooks cannot disagree on which PvD applies or what it holds. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "core.h"
#include "dns_scope.h"

enum { VIEW_NONE, VIEW_BUILDING, VIEW_OK, VIEW_BAD };
static struct pvd_dns_scope g_views[SHIM_MAX_PVDS];
static atomic_int g_view_state[SHIM_MAX_PVDS];

int pvd_dns_current_scope(struct pvd_dns_scope *out)
{
    int saved = errno; /* the view is built without touching errno; kept all the same */
    unsigned int slot = shim_effective_slot();
    int status = PVD_DNS_SCOPE_OK;
    if (slot == SLOT_NONE) {
        status = PVD_DNS_SCOPE_NONE;
    } else if (slot == SLOT_NULL) { /* the null PvD, or a malformed PVDRUN_SCOPE: no network */
        memset(out, 0, sizeof *out);
        strcpy(out->id, "null");
        out->handle = PVD_HANDLE_NULL;
        out->is_null = 1;
    } else {
        const struct pvd_scope *pvd = shim_pvd_at(slot);
        atomic_int *state = &g_view_state[slot - 1];
        int seen = atomic_load_explicit(state, memory_order_acquire);
        if (!pvd) {
            status = PVD_DNS_SCOPE_BAD;
        } else if (seen == VIEW_OK) {
            memcpy(out, &g_views[slot - 1], sizeof *out);
        } else if (seen == VIEW_BAD) {
            status = PVD_DNS_SCOPE_BAD;
        } else {
            int expected = VIEW_NONE;
            status = pvd_dns_scope_from(pvd, out);
            if (atomic_compare_exchange_strong(state, &expected, VIEW_BUILDING)) {
                memcpy(&g_views[slot - 1], out, sizeof *out);
                atomic_store_explicit(state, status == PVD_DNS_SCOPE_OK ? VIEW_OK : VIEW_BAD, memory_order_release);
            }
        }
    }
    errno = saved;
    return status;
}
