/* scope_parse.c: parse the scope line ($PVDRUN_SCOPE) into a struct pvd_scope.
 *
 * A pure function: every read is bounded by `len`, every write by the destination's size;
 * no allocation, no globals, no locale.  Malformed input is rejected as a whole (the caller
 * then fails closed), never partially accepted. */
#include "scope_parse.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Copy value [v, v+n) into dst[size] as a string; -1 when it does not fit. */
static int copy_value(char *dst, size_t size, const char *v, size_t n)
{
    if (n + 1 > size)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

/* Parse an unsigned decimal (or 0x hex when allow_hex) of at most 32 bits. */
int pvd_scope_parse_u32(const char *v, size_t n, int allow_hex, uint32_t *out)
{
    uint64_t value = 0;
    unsigned int base = 10;
    size_t i = 0;
    if (allow_hex && n > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i >= n)
        return -1;
    for (; i < n; i++) {
        unsigned int digit;
        char c = v[i];
        if (c >= '0' && c <= '9')
            digit = (unsigned int)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = (unsigned int)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = (unsigned int)(c - 'A' + 10);
        else
            return -1;
        value = value * base + digit;
        if (value > UINT32_MAX)
            return -1;
    }
    *out = (uint32_t)value;
    return 0;
}

/* Text and binary forms of an address value; a %zone suffix is kept in the text only. */
static int parse_addr(const char *v, size_t n, char text[PVD_ADDRSTR_MAX], int *family,
                      struct in_addr *a4, struct in6_addr *a6)
{
    char bare[PVD_ADDRSTR_MAX];
    size_t bare_len = n;
    if (copy_value(text, PVD_ADDRSTR_MAX, v, n) < 0)
        return -1;
    const char *zone = memchr(v, '%', n);
    if (zone)
        bare_len = (size_t)(zone - v);
    if (copy_value(bare, sizeof bare, v, bare_len) < 0)
        return -1;
    if (!zone && inet_pton(AF_INET, bare, a4) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, bare, a6) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

/* Does the %zone of address text (if any) name one of the PvD's if= entries, by index (a
 * number, as libc reads a numeric zone) or by name?  An address without a zone: yes. */
static int zone_is_own(const struct pvd_info *info, const char *text)
{
    const char *zone = strchr(text, '%');
    uint32_t index;
    if (!zone)
        return 1;
    zone++;
    int numeric = pvd_scope_parse_u32(zone, strlen(zone), 0, &index) == 0;
    for (unsigned int i = 0; i < info->n_interfaces; i++)
        if (numeric ? info->ifindexes[i] == index : strcmp(info->interfaces[i], zone) == 0)
            return 1;
    return 0;
}

static int key_is(const char *k, size_t kn, const char *name)
{
    size_t n = strlen(name);
    return kn == n && memcmp(k, name, n) == 0;
}

int pvd_scope_parse(const char *line, size_t len, struct pvd_scope *out, char *err, size_t errlen)
{
    int seen_v = 0, seen_id = 0, seen_handle = 0, seen_mark = 0, seen_srcbind = 0;
    size_t pos = 0;

    if (!line || !out)
        return fail(err, errlen, "no scope line");
    memset(out, 0, sizeof *out);
    if (err && errlen > 0)
        err[0] = '\0';

    while (pos < len) {
        if (line[pos] == ' ' || line[pos] == '\t' || line[pos] == '\n') {
            pos++;
            continue;
        }
        size_t start = pos;
        while (pos < len && line[pos] != ' ' && line[pos] != '\t' && line[pos] != '\n')
            pos++;
        const char *tok = line + start;
        size_t tok_len = pos - start;
        const char *eq = memchr(tok, '=', tok_len);
        if (!eq)
            return fail(err, errlen, "token without '=' at byte %zu", start);
        const char *key = tok;
        size_t key_len = (size_t)(eq - tok);
        const char *val = eq + 1;
        size_t val_len = tok_len - key_len - 1;
        if (key_len == 0)
            return fail(err, errlen, "token with empty key at byte %zu", start);
        if (val_len == 0)
            return fail(err, errlen, "token with empty value at byte %zu", start);
        /* A NUL would cut the value short in its C string: reject it, never truncate. */
        if (memchr(val, '=', val_len) || memchr(val, '"', val_len) || memchr(val, '\\', val_len)
            || memchr(val, '\0', val_len))
            return fail(err, errlen, "forbidden character in value at byte %zu", start);

        if (key_is(key, key_len, "v")) {
            uint32_t v;
            if (seen_v++)
                return fail(err, errlen, "repeated v=");
            if (pvd_scope_parse_u32(val, val_len, 0, &v) < 0 || v != 1)
                return fail(err, errlen, "unsupported scope line version (need v=1)");
        } else if (key_is(key, key_len, "id")) {
            if (seen_id++)
                return fail(err, errlen, "repeated id=");
            if (copy_value(out->info.id, sizeof out->info.id, val, val_len) < 0)
                return fail(err, errlen, "id too long");
        } else if (key_is(key, key_len, "handle")) {
            if (seen_handle++)
                return fail(err, errlen, "repeated handle=");
            if (pvd_scope_parse_u32(val, val_len, 0, &out->info.handle) < 0)
                return fail(err, errlen, "handle is not a 32-bit unsigned number");
            if (out->info.handle == PVD_HANDLE_UNSPEC)
                return fail(err, errlen, "handle 0 is the unspecified PvD, not a PvD");
        } else if (key_is(key, key_len, "if")) {
            unsigned int i = out->info.n_interfaces;
            const char *colon = NULL;
            uint32_t index;
            for (size_t j = val_len; j > 0; j--)
                if (val[j - 1] == ':') {
                    colon = val + j - 1;
                    break;
                }
            if (i >= PVD_MAX_IFACES)
                return fail(err, errlen, "more than %d interfaces", PVD_MAX_IFACES);
            if (!colon || colon == val)
                return fail(err, errlen, "if= needs NAME:INDEX");
            if (copy_value(out->info.interfaces[i], PVD_IFNAME_MAX, val, (size_t)(colon - val)) < 0)
                return fail(err, errlen, "interface name too long");
            if (pvd_scope_parse_u32(colon + 1, val_len - (size_t)(colon - val) - 1, 0, &index) < 0 ||
                index == 0 || index > INT32_MAX)
                return fail(err, errlen, "bad interface index in if=");
            out->info.ifindexes[i] = index;
            out->info.n_interfaces = i + 1;
        } else if (key_is(key, key_len, "addr")) {
            unsigned int i = out->info.n_addresses;
            int family = 0;
            struct in_addr a4;
            struct in6_addr a6;
            if (i >= PVD_MAX_ADDRS)
                return fail(err, errlen, "more than %d addresses", PVD_MAX_ADDRS);
            if (parse_addr(val, val_len, out->info.addresses[i], &family, &a4, &a6) < 0)
                return fail(err, errlen, "bad address in addr=");
            if (family == AF_INET)
                out->v4[out->n_v4++] = a4;
            else
                out->v6[out->n_v6++] = a6;
            out->info.n_addresses = i + 1;
        } else if (key_is(key, key_len, "dns")) {
            unsigned int i = out->info.n_dns;
            int family = 0;
            struct in_addr a4;
            struct in6_addr a6;
            if (i >= PVD_MAX_DNS)
                return fail(err, errlen, "more than %d DNS servers", PVD_MAX_DNS);
            if (parse_addr(val, val_len, out->info.dns[i], &family, &a4, &a6) < 0)
                return fail(err, errlen, "bad address in dns=");
            if (family == AF_INET ? IN_MULTICAST(ntohl(a4.s_addr)) || a4.s_addr == INADDR_ANY
                                  : IN6_IS_ADDR_MULTICAST(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6))
                return fail(err, errlen, "dns= is not a DNS server (multicast or unspecified)");
            out->info.n_dns = i + 1;
        } else if (key_is(key, key_len, "search")) {
            unsigned int i = out->info.n_search;
            if (i >= PVD_MAX_SEARCH)
                return fail(err, errlen, "more than %d search domains", PVD_MAX_SEARCH);
            if (copy_value(out->info.search[i], PVD_SEARCH_MAX, val, val_len) < 0)
                return fail(err, errlen, "search domain too long");
            out->info.n_search = i + 1;
        } else if (key_is(key, key_len, "mark")) {
            if (seen_mark++)
                return fail(err, errlen, "repeated mark=");
            if (pvd_scope_parse_u32(val, val_len, 1, &out->info.mark) < 0)
                return fail(err, errlen, "bad mark=");
        } else if (key_is(key, key_len, "srcbind")) {
            if (seen_srcbind++)
                return fail(err, errlen, "repeated srcbind=");
            if (val_len != 1 || (val[0] != '0' && val[0] != '1'))
                return fail(err, errlen, "srcbind= must be 0 or 1");
            out->info.srcbind = val[0] == '1';
        }
        /* any other key: ignored (forward compatible) */
    }

    if (!seen_v)
        return fail(err, errlen, "no v= (scope line version)");
    if (!seen_id)
        return fail(err, errlen, "no id=");
    if (!seen_handle)
        return fail(err, errlen, "no handle=");
    out->is_null = out->info.handle == PVD_HANDLE_NULL;
    if (!out->is_null && out->info.n_interfaces == 0)
        return fail(err, errlen, "PvD %s has no interface (if=)", out->info.id);
    /* A zone is a link: only the PvD's own (a link-local DNS server is reachable there only). */
    for (unsigned int i = 0; i < out->info.n_addresses; i++)
        if (!zone_is_own(&out->info, out->info.addresses[i]))
            return fail(err, errlen, "addr=%s: the zone is not one of the PvD's interfaces",
                        out->info.addresses[i]);
    for (unsigned int i = 0; i < out->info.n_dns; i++)
        if (!zone_is_own(&out->info, out->info.dns[i]))
            return fail(err, errlen, "dns=%s: the zone is not one of the PvD's interfaces", out->info.dns[i]);
    return 0;
}
