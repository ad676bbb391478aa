/* dns_scope.c: the resolver's view of a PvD (see dns_scope.h), converted from the core's
 * parsed scope line: the grammar lives in scope_parse.c alone. */
#include "dns_scope.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int pvd_dns_parse_addr(const char *s, const struct pvd_dns_scope *links, struct pvd_dns_addr *out)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    memset(out, 0, sizeof *out);
    char *zone = strchr(buf, '%');
    if (zone)
        *zone++ = '\0';
    if (!zone && inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, out->addr) != 1)
        return -1;
    out->family = AF_INET6;
    if (!zone) { /* a link-local address without a zone: the PvD's link when it has one only */
        if (out->addr[0] == 0xfe && (out->addr[1] & 0xc0) == 0x80 && links->nifs == 1)
            out->scope_id = links->ifs[0].index;
        return 0;
    }
    /* The zone names one of the PvD's own interfaces (the parser checked it): its index, read
     * from the scope line, never from this process's view of interface names. */
    uint32_t idx;
    int numeric = pvd_scope_parse_u32(zone, strlen(zone), 0, &idx) == 0;
    for (int i = 0; i < links->nifs; i++)
        if (numeric ? links->ifs[i].index == idx : strcmp(links->ifs[i].name, zone) == 0) {
            out->scope_id = links->ifs[i].index;
            return 0;
        }
    return -2;
}

/* A link-local server is reached on its own link only, which must be one of the PvD's
 * interfaces (its zone, set by pvd_dns_parse_addr), from that link's link-local address (tie.c
 * picks it).  Any other server needs one of the PvD's own addresses of its family.  R25: else
 * the server is not used. */
int pvd_dns_server_usable_in(const struct pvd_dns_scope *scope, const struct pvd_dns_addr *server)
{
    if (scope->is_null)
        return 0;
    if (server->family == AF_INET6 && server->addr[0] == 0xfe && (server->addr[1] & 0xc0) == 0x80) {
        for (int i = 0; i < scope->nifs; i++)
            if (server->scope_id != 0 && scope->ifs[i].index == server->scope_id)
                return 1;
        return 0;
    }
    for (int i = 0; i < scope->naddrs; i++)
        if (scope->addrs[i].family == server->family)
            return 1;
    return 0;
}

socklen_t pvd_dns_sockaddr(const struct pvd_dns_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, a->addr, 4);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(&sin6->sin6_addr, a->addr, 16);
    sin6->sin6_scope_id = a->scope_id;
    return sizeof *sin6;
}

int pvd_dns_scope_from(const struct pvd_scope *scope, struct pvd_dns_scope *out)
{
    const struct pvd_info *info = &scope->info;
    memset(out, 0, sizeof *out);
    memcpy(out->id, info->id, sizeof out->id);
    out->id[sizeof out->id - 1] = '\0';
    out->handle = info->handle;
    out->mark = info->mark;
    out->is_null = scope->is_null;
    for (unsigned int i = 0; i < info->n_interfaces && i < PVD_DNS_MAX_IFS; i++) {
        memcpy(out->ifs[i].name, info->interfaces[i], sizeof out->ifs[i].name);
        out->ifs[i].name[sizeof out->ifs[i].name - 1] = '\0';
        out->ifs[i].index = info->ifindexes[i];
        out->nifs = (int)i + 1;
    }
    for (unsigned int i = 0; i < info->n_addresses && i < PVD_DNS_MAX_ADDRS; i++) {
        if (pvd_dns_parse_addr(info->addresses[i], out, &out->addrs[out->naddrs]) < 0)
            return PVD_DNS_SCOPE_BAD;
        out->naddrs++;
    }
    for (unsigned int i = 0; i < info->n_dns && i < PVD_DNS_MAX_SERVERS; i++) {
        if (pvd_dns_parse_addr(info->dns[i], out, &out->servers[out->nservers]) < 0)
            return PVD_DNS_SCOPE_BAD;
        out->nservers++;
    }
    for (unsigned int i = 0; i < info->n_search && i < PVD_DNS_MAX_SEARCH; i++) {
        size_t len = strnlen(info->search[i], PVD_SEARCH_MAX);
        if (len > DNS_NAME_MAX - 1)
            return PVD_DNS_SCOPE_BAD;
        memcpy(out->search[out->nsearch], info->search[i], len);
        out->search[out->nsearch][len] = '\0';
        if (len > 1 && out->search[out->nsearch][len - 1] == '.')
            out->search[out->nsearch][len - 1] = '\0';
        out->nsearch++;
    }
    return PVD_DNS_SCOPE_OK;
}

int pvd_dns_parse_scope(const char *line, struct pvd_dns_scope *out)
{
    char err[160];
    memset(out, 0, sizeof *out);
    struct pvd_scope *parsed = malloc(sizeof *parsed); /* large: off the stack (harnesses only) */
    if (!parsed)
        return PVD_DNS_SCOPE_BAD;
    int status = pvd_scope_parse(line, strlen(line), parsed, err, sizeof err) < 0 ? PVD_DNS_SCOPE_BAD
                                                                                  : pvd_dns_scope_from(parsed, out);
    free(parsed);
    return status;
}

static atomic_uint warned_keys;

void pvd_dns_warn_once(unsigned key, const char *msg)
{
    unsigned bit = 1u << (key & 15);
    if (atomic_fetch_or(&warned_keys, bit) & bit)
        return;
    shim_say("pvdrun: %s\n", msg);
}

void pvd_dns_warn_no_servers(const struct pvd_dns_scope *scope)
{
    char msg[PVD_DNS_ID_MAX + 128];
    snprintf(msg, sizeof msg,
             "PvD %s has no DNS server reachable from its own addresses: name lookups fail "
             "(the system's resolvers are never used)",
             scope->id[0] ? scope->id : "(unnamed)");
    pvd_dns_warn_once(2, msg);
}
