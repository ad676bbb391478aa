/* dns_hosts.c: /etc/hosts lookups and nsswitch order (see dns_hosts.h). */
#include "dns_hosts.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOSTS_PATH "/etc/hosts"
#define NSSWITCH_PATH "/etc/nsswitch.conf"

int dns_nsswitch_order(int order[2])
{
    FILE *f = fopen(NSSWITCH_PATH, "re");
    char *line = NULL;
    size_t cap = 0;
    int n = -1;
    if (f) {
        while (getline(&line, &cap, f) >= 0) {
            char *p = line;
            while (*p == ' ' || *p == '\t')
                p++;
            if (strncmp(p, "hosts:", 6) != 0)
                continue;
            n = 0;
            char *save = NULL;
            for (char *tok = strtok_r(p + 6, " \t\n", &save); tok;
                 tok = strtok_r(NULL, " \t\n", &save)) {
                /* systemd-resolved's "resolve" is the host's DNS: inside a PvD
                 * the PvD's DNS takes its place. */
                int src = strcmp(tok, "files") == 0 ? DNS_SRC_FILES
                          : (strcmp(tok, "dns") == 0 || strcmp(tok, "resolve") == 0) ? DNS_SRC_DNS
                                                                                     : 0;
                if (!src || n == 2 || (n == 1 && order[0] == src))
                    continue;
                order[n++] = src;
            }
            break;
        }
        free(line);
        fclose(f);
    }
    if (n < 0) {
        order[0] = DNS_SRC_FILES;
        order[1] = DNS_SRC_DNS;
        n = 2;
    }
    return n;
}

/* Iterate over the lines of /etc/hosts: calls fn(addr, names[], nnames, ctx)
 * for each well-formed line until fn returns non-zero. */
typedef int (*hosts_fn)(const struct pvd_dns_addr *addr, char **names, int nnames, void *ctx);

static void for_each_host(hosts_fn fn, void *ctx)
{
    FILE *f = fopen(HOSTS_PATH, "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *addr_text = strtok_r(line, " \t\r\n", &save);
        if (!addr_text)
            continue;
        struct pvd_dns_addr addr;
        memset(&addr, 0, sizeof addr);
        if (inet_pton(AF_INET, addr_text, addr.addr) == 1)
            addr.family = AF_INET;
        else if (inet_pton(AF_INET6, addr_text, addr.addr) == 1)
            addr.family = AF_INET6;
        else
            continue;
        char *names[64];
        int nnames = 0;
        for (char *tok = strtok_r(NULL, " \t\r\n", &save); tok && nnames < 64;
             tok = strtok_r(NULL, " \t\r\n", &save))
            names[nnames++] = tok;
        if (nnames && fn(&addr, names, nnames, ctx))
            break;
    }
    free(line);
    fclose(f);
}

struct forward_ctx {
    const char *name;
    int want4, want6;
    struct dns_addr_result *out;
};

static int forward_fn(const struct pvd_dns_addr *addr, char **names, int nnames, void *vctx)
{
    struct forward_ctx *ctx = vctx;
    if ((addr->family == AF_INET && !ctx->want4) || (addr->family == AF_INET6 && !ctx->want6))
        return 0;
    for (int i = 0; i < nnames; i++) {
        if (!dns_name_equal(names[i], ctx->name))
            continue;
        struct dns_addr_result *out = ctx->out;
        if (out->naddrs == 0)
            snprintf(out->canon, sizeof out->canon, "%s", names[0]);
        for (int j = 0; j < out->naddrs; j++)
            if (out->addrs[j].family == addr->family
                && memcmp(out->addrs[j].addr, addr->addr, 16) == 0)
                return 0;
        if (out->naddrs < DNS_RESULT_MAX_ADDRS)
            out->addrs[out->naddrs++] = *addr;
        return 0;
    }
    return 0;
}

int dns_hosts_lookup(const char *name, int want4, int want6, struct dns_addr_result *out)
{
    out->naddrs = 0;
    out->canon[0] = '\0';
    struct forward_ctx ctx = {name, want4, want6, out};
    for_each_host(forward_fn, &ctx);
    return out->naddrs;
}

struct reverse_ctx {
    int family;
    const uint8_t *addr;
    char *host;
    size_t hostlen;
    int result;
};

static int reverse_fn(const struct pvd_dns_addr *addr, char **names, int nnames, void *vctx)
{
    struct reverse_ctx *ctx = vctx;
    (void)nnames;
    if (addr->family != ctx->family
        || memcmp(addr->addr, ctx->addr, ctx->family == AF_INET ? 4 : 16) != 0)
        return 0;
    if (strlen(names[0]) + 1 > ctx->hostlen) {
        ctx->result = -1;
    } else {
        strcpy(ctx->host, names[0]);
        ctx->result = 1;
    }
    return 1;
}

int dns_hosts_reverse(int family, const uint8_t *addr, char *host, size_t hostlen)
{
    struct reverse_ctx ctx = {family, addr, host, hostlen, 0};
    for_each_host(reverse_fn, &ctx);
    return ctx.result;
}
