/* fuzz_dns_scope.c: libFuzzer harness for pvd_dns_parse_scope() (shim/dns/dns_scope.c), the
 * resolver's parser of the same scope line, and a differential check against the socket
 * hooks' parser pvd_scope_parse() (shim/core/scope_parse.c).
 *
 * The resolver only ever parses a line the core accepted (dns_current.c: a malformed line
 * becomes the null PvD's line), and it must then agree with the core on every field that
 * decides where traffic goes: handle, mark, interfaces and their indexes, source addresses,
 * DNS servers, search domains, id.  The resolver may refuse a line the core accepts (it then
 * fails closed, e.g. for an unknown %zone name), and it may see a PvD as null where the core
 * does not, never the reverse.
 *
 * The input is a C string as the resolver gets it (cut at its first NUL). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_scope.h"
#include "fuzz_check.h"
#include "scope_parse.h"

static void check_addr(const struct pvd_dns_addr *a)
{
    CHECK(a->family == AF_INET || a->family == AF_INET6);
    CHECK(a->family == AF_INET6 || a->scope_id == 0);
}

/* The binary form of a core text address ("ADDR" or "ADDR%ZONE"). */
static void core_addr(const char *text, struct pvd_dns_addr *out)
{
    char bare[PVD_ADDRSTR_MAX];
    memset(out, 0, sizeof *out);
    snprintf(bare, sizeof bare, "%s", text);
    char *zone = strchr(bare, '%');
    if (zone)
        *zone = '\0';
    if (!zone && inet_pton(AF_INET, bare, out->addr) == 1)
        out->family = AF_INET;
    else {
        CHECK(inet_pton(AF_INET6, bare, out->addr) == 1);
        out->family = AF_INET6;
    }
}

static int same_addr(const struct pvd_dns_addr *a, const struct pvd_dns_addr *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* A zone is one of the PvD's own interfaces (the parser refuses any other), never looked up
 * elsewhere. */
static int zone_is_own(const struct pvd_dns_scope *dns, const struct pvd_dns_addr *a)
{
    for (int i = 0; a->scope_id != 0 && i < dns->nifs; i++)
        if (dns->ifs[i].index == a->scope_id)
            return 1;
    return a->scope_id == 0;
}

static void compare(const struct pvd_scope *core, const struct pvd_dns_scope *dns)
{
    const struct pvd_info *in = &core->info;
    CHECK(strcmp(in->id, dns->id) == 0);
    CHECK(in->handle == dns->handle);
    CHECK(in->mark == dns->mark);
    CHECK(!core->is_null || dns->is_null); /* the resolver may only be more closed */
    CHECK((int)in->n_interfaces == dns->nifs);
    for (int i = 0; i < dns->nifs; i++) {
        CHECK(strcmp(in->interfaces[i], dns->ifs[i].name) == 0);
        CHECK(in->ifindexes[i] == dns->ifs[i].index);
    }
    CHECK((int)in->n_addresses == dns->naddrs);
    unsigned n4 = 0, n6 = 0;
    for (int i = 0; i < dns->naddrs; i++) {
        struct pvd_dns_addr c;
        core_addr(in->addresses[i], &c);
        CHECK(same_addr(&c, &dns->addrs[i]));
        CHECK(zone_is_own(dns, &dns->addrs[i]));
        if (c.family == AF_INET)
            CHECK(n4 < core->n_v4 && memcmp(&core->v4[n4++], c.addr, 4) == 0);
        else
            CHECK(n6 < core->n_v6 && memcmp(&core->v6[n6++], c.addr, 16) == 0);
    }
    CHECK((int)in->n_dns == dns->nservers);
    for (int i = 0; i < dns->nservers; i++) {
        struct pvd_dns_addr c;
        core_addr(in->dns[i], &c);
        CHECK(same_addr(&c, &dns->servers[i]));
        CHECK(zone_is_own(dns, &dns->servers[i]));
    }
    CHECK((int)in->n_search == dns->nsearch);
    for (int i = 0; i < dns->nsearch; i++) {
        /* the resolver drops one trailing dot ("corp.example." is "corp.example") */
        size_t n = strlen(in->search[i]);
        if (n > 1 && in->search[i][n - 1] == '.')
            n--;
        CHECK(strlen(dns->search[i]) == n && memcmp(dns->search[i], in->search[i], n) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    size_t len = strlen(line);

    static struct pvd_dns_scope dns;
    memset(&dns, 0xA5, sizeof dns); /* the parser must set every field it reports */
    int rc = pvd_dns_parse_scope(line, &dns);
    CHECK(rc == PVD_DNS_SCOPE_OK || rc == PVD_DNS_SCOPE_BAD);
    if (rc == PVD_DNS_SCOPE_OK) {
        CHECK(fuzz_terminated(dns.id, sizeof dns.id));
        CHECK(dns.nifs >= 0 && dns.nifs <= PVD_DNS_MAX_IFS);
        CHECK(dns.naddrs >= 0 && dns.naddrs <= PVD_DNS_MAX_ADDRS);
        CHECK(dns.nservers >= 0 && dns.nservers <= PVD_DNS_MAX_SERVERS);
        CHECK(dns.nsearch >= 0 && dns.nsearch <= PVD_DNS_MAX_SEARCH);
        CHECK(dns.is_null == 0 || dns.is_null == 1);
        for (int i = 0; i < dns.nifs; i++) {
            CHECK(fuzz_terminated(dns.ifs[i].name, sizeof dns.ifs[i].name));
            CHECK(dns.ifs[i].name[0] != '\0' && dns.ifs[i].index != 0);
        }
        for (int i = 0; i < dns.naddrs; i++)
            check_addr(&dns.addrs[i]);
        for (int i = 0; i < dns.nservers; i++)
            check_addr(&dns.servers[i]);
        for (int i = 0; i < dns.nsearch; i++) {
            CHECK(fuzz_terminated(dns.search[i], sizeof dns.search[i]));
            CHECK(strlen(dns.search[i]) <= DNS_NAME_MAX - 1);
        }
    }

    static struct pvd_scope core;
    if (pvd_scope_parse(line, len, &core, NULL, 0) == 0 && rc == PVD_DNS_SCOPE_OK)
        compare(&core, &dns);
    free(line);
    return 0;
}
