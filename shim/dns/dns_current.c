/* dns_current.c: pvd_dns_current_scope() on top of the shim core's scope levels
 * (shim/core/core.h): the PvD the calling thread's operations use now (thread scope, else process
 * scope: PVDRUN_SCOPE or pvd_set_process_scope).  The resolver's view of each PvD of the
 * core's table is built once, from the core's own parse of its scope line, so the resolver
 * and the socket hooks cannot disagree on which PvD applies or what it holds. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "core.h"
#include "auto_addrs.h"
#include "dns_scope.h"

enum { VIEW_NONE, VIEW_BUILDING, VIEW_OK, VIEW_BAD };
static struct pvd_dns_scope g_views[SHIM_MAX_PVDS];
static atomic_int g_view_state[SHIM_MAX_PVDS];

int pvd_dns_slot_scope(unsigned int slot, struct pvd_dns_scope *out)
{
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (!pvd)
        return PVD_DNS_SCOPE_BAD;
    atomic_int *state = &g_view_state[slot - 1];
    int seen = atomic_load_explicit(state, memory_order_acquire);
    if (seen == VIEW_OK) {
        memcpy(out, &g_views[slot - 1], sizeof *out);
        return PVD_DNS_SCOPE_OK;
    }
    if (seen == VIEW_BAD)
        return PVD_DNS_SCOPE_BAD;
    int expected = VIEW_NONE;
    int status = pvd_dns_scope_from(pvd, out);
    out->is_auto = 0;
    if (atomic_compare_exchange_strong(state, &expected, VIEW_BUILDING)) {
        memcpy(&g_views[slot - 1], out, sizeof *out);
        atomic_store_explicit(state, status == PVD_DNS_SCOPE_OK ? VIEW_OK : VIEW_BAD, memory_order_release);
    }
    return status;
}

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
        status = pvd_dns_slot_scope(slot, out);
        if (status == PVD_DNS_SCOPE_OK)
            out->is_auto = shim_auto_covers(slot);
    }
    errno = saved;
    return status;
}

const struct pvd_dns_scope *pvd_dns_scope_for_name(const struct pvd_dns_scope *scope, const char *name,
                                                   struct pvd_dns_scope *buf, unsigned int *slot)
{
    *slot = 0;
    if (!scope->is_auto)
        return scope;
    int saved = errno;
    unsigned int def = shim_pvd_slot(scope->handle);
    unsigned int chosen = shim_auto_slot_for_name(name);
    *slot = chosen;
    if (chosen == 0 || chosen == def) {
        *slot = def;
        errno = saved;
        return scope;
    }
    int status = pvd_dns_slot_scope(chosen, buf);
    errno = saved;
    return status == PVD_DNS_SCOPE_OK ? buf : NULL;
}

const struct pvd_dns_scope *pvd_dns_scope_for_addr(const struct pvd_dns_scope *scope, int family,
                                                   const uint8_t *addr, struct pvd_dns_scope *buf)
{
    if (!scope->is_auto)
        return scope;
    unsigned int from = pvd_auto_addr_slot(family, addr);
    if (!from || from == shim_pvd_slot(scope->handle) || pvd_dns_slot_scope(from, buf) != PVD_DNS_SCOPE_OK)
        return scope;
    return buf;
}

void pvd_dns_auto_remember(unsigned int slot, const struct pvd_dns_addr *addrs, int n)
{
    for (int i = 0; slot && i < n; i++)
        pvd_auto_addr_remember(addrs[i].family, addrs[i].addr, slot);
}
