/* dns_scope.c: the resolver's view of a PvD: scope-line parsing (see dns_scope.h).
 * pvd_dns_current_scope() is in dns_current.c (it needs the shim core).
 *
 * Scope line grammar (pvdrun/model.py, Pvd.to_scope): space-separated
 * key=value tokens; v must be 1; list keys if/addr/dns/search repeat;
 * unknown keys are ignored; anything malformed makes the whole line BAD so
 * that the resolver fails closed rather than resolving unscoped. */
#include "dns_scope.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NULL_HANDLE 0xFFFFFFFFu

/* An unsigned decimal of at most 32 bits, or 0x hex when allow_hex: the same numbers as
 * the socket hooks' parser (scope_parse.c), so that both read a line alike ("010" is ten,
 * never octal eight; no sign, no blanks). */
static int parse_u32(const char *s, int allow_hex, uint32_t *out)
{
    uint64_t value = 0;
    unsigned base = 10;
    if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && s[2] != '\0') {
        base = 16;
        s += 2;
    }
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        unsigned digit;
        if (*s >= '0' && *s <= '9')
            digit = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            digit = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            digit = (unsigned)(*s - 'A' + 10);
        else
            return -1;
        value = value * base + digit;
        if (value > 0xFFFFFFFFu)
            return -1;
    }
    *out = (uint32_t)value;
    return 0;
}

/* Token separators: the same as scope_parse.c's. */
static int is_separator(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

int pvd_dns_parse_addr(const char *s, struct pvd_dns_addr *out)
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
    if (zone) {
        uint32_t idx;
        if (parse_u32(zone, 0, &idx) == 0)
            out->scope_id = idx;
        else if ((out->scope_id = if_nametoindex(zone)) == 0)
            return -1;
    }
    return 0;
}

int pvd_dns_parse_scope(const char *line, struct pvd_dns_scope *out)
{
    memset(out, 0, sizeof *out);
    int seen_version = 0;
    const char *p = line;
    while (*p) {
        while (is_separator(*p))
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && !is_separator(*end))
            end++;
        char token[DNS_NAME_MAX + 16];
        size_t tlen = (size_t)(end - p);
        if (tlen >= sizeof token)
            return PVD_DNS_SCOPE_BAD;
        memcpy(token, p, tlen);
        token[tlen] = '\0';
        p = end;
        char *eq = strchr(token, '=');
        if (!eq || eq == token || eq[1] == '\0')
            return PVD_DNS_SCOPE_BAD;
        *eq = '\0';
        const char *key = token, *value = eq + 1;
        if (strcmp(key, "v") == 0) {
            if (strcmp(value, "1") != 0)
                return PVD_DNS_SCOPE_BAD;
            seen_version = 1;
        } else if (strcmp(key, "id") == 0) {
            if (strlen(value) >= sizeof out->id)
                return PVD_DNS_SCOPE_BAD;
            strcpy(out->id, value);
        } else if (strcmp(key, "handle") == 0) {
            if (parse_u32(value, 0, &out->handle))
                return PVD_DNS_SCOPE_BAD;
        } else if (strcmp(key, "mark") == 0) {
            if (parse_u32(value, 1, &out->mark))
                return PVD_DNS_SCOPE_BAD;
        } else if (strcmp(key, "if") == 0) {
            const char *colon = strrchr(value, ':');
            uint32_t idx;
            if (out->nifs >= PVD_DNS_MAX_IFS || !colon || colon == value
                || (size_t)(colon - value) >= IF_NAMESIZE || parse_u32(colon + 1, 0, &idx) || idx == 0)
                return PVD_DNS_SCOPE_BAD;
            struct pvd_dns_iface *ifc = &out->ifs[out->nifs++];
            memcpy(ifc->name, value, (size_t)(colon - value));
            ifc->name[colon - value] = '\0';
            ifc->index = idx;
        } else if (strcmp(key, "addr") == 0) {
            if (out->naddrs >= PVD_DNS_MAX_ADDRS || pvd_dns_parse_addr(value, &out->addrs[out->naddrs]))
                return PVD_DNS_SCOPE_BAD;
            out->naddrs++;
        } else if (strcmp(key, "dns") == 0) {
            if (out->nservers >= PVD_DNS_MAX_SERVERS
                || pvd_dns_parse_addr(value, &out->servers[out->nservers]))
                return PVD_DNS_SCOPE_BAD;
            out->nservers++;
        } else if (strcmp(key, "search") == 0) {
            size_t len = strlen(value);
            if (out->nsearch >= PVD_DNS_MAX_SEARCH || len > DNS_NAME_MAX - 1)
                return PVD_DNS_SCOPE_BAD;
            strcpy(out->search[out->nsearch], value);
            if (len > 1 && out->search[out->nsearch][len - 1] == '.')
                out->search[out->nsearch][len - 1] = '\0';
            out->nsearch++;
        }
        /* other keys (srcbind, future ones) do not concern the resolver */
    }
    if (!seen_version)
        return PVD_DNS_SCOPE_BAD;
    out->is_null = out->handle == NULL_HANDLE || strcmp(out->id, "null") == 0;
    return PVD_DNS_SCOPE_OK;
}

static atomic_uint warned_keys;

void pvd_dns_warn_once(unsigned key, const char *msg)
{
    unsigned bit = 1u << (key & 15);
    if (atomic_fetch_or(&warned_keys, bit) & bit)
        return;
    int saved = errno;
    char line[512];
    int n = snprintf(line, sizeof line, "pvdrun: %s\n", msg);
    if (n > 0) {
        size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        ssize_t ignored = write(STDERR_FILENO, line, len);
        (void)ignored;
    }
    errno = saved;
}
