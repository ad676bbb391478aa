/* dns_current.c: pvd_dns_current_scope() on top of the shim core's scope
 * levels (shim/core.h): thread scope (pvd_set_thread_scope), else process
 * scope (PVDRUN_SCOPE or pvd_set_process_scope), else none.  The PvD's
 * attributes come from the core's parsed table (struct pvd_info), so the
 * resolver and the socket hooks always agree on which PvD applies. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "dns_scope.h"

static int current_scope(struct pvd_dns_scope *out)
{
    unsigned int slot = shim_effective_slot();
    if (slot == SLOT_NONE)
        return PVD_DNS_SCOPE_NONE;
    memset(out, 0, sizeof *out);
    if (slot == SLOT_NULL) {
        strcpy(out->id, "null");
        out->handle = PVD_HANDLE_NULL;
        out->is_null = 1;
        return PVD_DNS_SCOPE_OK;
    }
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    if (!pvd)
        return PVD_DNS_SCOPE_BAD;
    const struct pvd_info *info = &pvd->info;
    snprintf(out->id, sizeof out->id, "%s", info->id);
    out->handle = info->handle;
    out->is_null = pvd->is_null;
    out->mark = info->mark;
    for (unsigned int i = 0; i < info->n_interfaces && out->nifs < PVD_DNS_MAX_IFS; i++) {
        snprintf(out->ifs[out->nifs].name, sizeof out->ifs[0].name, "%s", info->interfaces[i]);
        out->ifs[out->nifs].index = info->ifindexes[i];
        out->nifs++;
    }
    for (unsigned int i = 0; i < info->n_addresses && out->naddrs < PVD_DNS_MAX_ADDRS; i++)
        if (pvd_dns_parse_addr(info->addresses[i], &out->addrs[out->naddrs]) == 0)
            out->naddrs++;
    for (unsigned int i = 0; i < info->n_dns && out->nservers < PVD_DNS_MAX_SERVERS; i++) {
        if (pvd_dns_parse_addr(info->dns[i], &out->servers[out->nservers]) != 0)
            return PVD_DNS_SCOPE_BAD; /* a server we cannot read: fail closed */
        out->nservers++;
    }
    for (unsigned int i = 0; i < info->n_search && out->nsearch < PVD_DNS_MAX_SEARCH; i++) {
        size_t len = strnlen(info->search[i], sizeof info->search[i]);
        if (len > DNS_NAME_MAX - 1)
            continue;
        memcpy(out->search[out->nsearch], info->search[i], len);
        out->search[out->nsearch][len] = '\0';
        if (len > 1 && out->search[out->nsearch][len - 1] == '.')
            out->search[out->nsearch][len - 1] = '\0';
        out->nsearch++;
    }
    return PVD_DNS_SCOPE_OK;
}

int pvd_dns_current_scope(struct pvd_dns_scope *out)
{
    int saved = errno; /* if_nametoindex() for a %zone may touch it */
    int status = current_scope(out);
    errno = saved;
    return status;
}
