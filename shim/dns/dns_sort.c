/* dns_sort.c: RFC 6724 destination ordering from the PvD's source addresses. */
#include "dns_sort.h"

#include <stdlib.h>
#include <string.h>

struct policy {
    uint8_t prefix[16];
    int plen, precedence, label;
};

/* RFC 6724 section 2.1 default policy table, longest prefixes first. */
static const struct policy POLICY[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 50, 0},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}, 96, 35, 4},
    {{0}, 96, 1, 3},
    {{0x20, 0x01, 0, 0}, 32, 5, 5},
    {{0x20, 0x02}, 16, 30, 2},
    {{0x3f, 0xfe}, 16, 1, 12},
    {{0xfe, 0xc0}, 10, 1, 11},
    {{0xfc}, 7, 3, 13},
    {{0}, 0, 40, 1},
};

struct v6 {
    uint8_t a[16];
};

static struct v6 as_v6(const struct pvd_dns_addr *x)
{
    struct v6 r;
    memset(&r, 0, sizeof r);
    if (x->family == AF_INET) {
        r.a[10] = r.a[11] = 0xff;
        memcpy(r.a + 12, x->addr, 4);
    } else {
        memcpy(r.a, x->addr, 16);
    }
    return r;
}

static int common_prefix(const uint8_t *a, const uint8_t *b, int maxbits)
{
    int bits = 0;
    for (int i = 0; i < 16 && bits < maxbits; i++) {
        uint8_t d = a[i] ^ b[i];
        if (!d) {
            bits += 8;
            continue;
        }
        while (!(d & 0x80)) {
            bits++;
            d = (uint8_t)(d << 1);
        }
        break;
    }
    return bits < maxbits ? bits : maxbits;
}

static const struct policy *lookup_policy(const struct v6 *a)
{
    for (size_t i = 0; i < sizeof POLICY / sizeof POLICY[0]; i++)
        if (common_prefix(a->a, POLICY[i].prefix, POLICY[i].plen) >= POLICY[i].plen)
            return &POLICY[i];
    return &POLICY[sizeof POLICY / sizeof POLICY[0] - 1];
}

/* RFC 6724 section 3.1 scope values (IPv4 per section 3.2). */
static int addr_scope(const struct pvd_dns_addr *x)
{
    if (x->family == AF_INET) {
        if (x->addr[0] == 127 || (x->addr[0] == 169 && x->addr[1] == 254))
            return 2;
        return 14;
    }
    const uint8_t *a = x->addr;
    if (a[0] == 0xff)
        return a[1] & 0x0f;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return 2;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return 5;
    static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(a, loopback, 16) == 0)
        return 2;
    return 14;
}

/* Source address selection (RFC 6724 section 5, rules 1, 2, 6, 8). */
static const struct pvd_dns_addr *pick_source(const struct pvd_dns_scope *scope,
                                              const struct pvd_dns_addr *dst)
{
    const struct pvd_dns_addr *best = NULL;
    struct v6 d6 = as_v6(dst);
    int dscope = addr_scope(dst);
    int dlabel = lookup_policy(&d6)->label;
    for (int i = 0; i < scope->naddrs; i++) {
        const struct pvd_dns_addr *s = &scope->addrs[i];
        if (s->family != dst->family)
            continue;
        if (!best) {
            best = s;
            continue;
        }
        struct v6 s6 = as_v6(s), b6 = as_v6(best);
        if (memcmp(s6.a, d6.a, 16) == 0) { /* rule 1 */
            best = s;
            continue;
        }
        if (memcmp(b6.a, d6.a, 16) == 0)
            continue;
        int ss = addr_scope(s), bs = addr_scope(best); /* rule 2 */
        if (ss != bs) {
            if (bs < ss ? bs < dscope : ss >= dscope)
                best = s;
            continue;
        }
        int sl = lookup_policy(&s6)->label == dlabel, bl = lookup_policy(&b6)->label == dlabel;
        if (sl != bl) { /* rule 6 */
            if (sl)
                best = s;
            continue;
        }
        if (common_prefix(s6.a, d6.a, 128) > common_prefix(b6.a, d6.a, 128)) /* rule 8 */
            best = s;
    }
    return best;
}

struct keyed {
    struct pvd_dns_addr addr;
    int index, usable, scope_match, label_match, precedence, scope, prefix;
};

static int compare(const void *pa, const void *pb)
{
    const struct keyed *a = pa, *b = pb;
    if (a->usable != b->usable) /* rule 1 */
        return b->usable - a->usable;
    if (a->scope_match != b->scope_match) /* rule 2 */
        return b->scope_match - a->scope_match;
    if (a->label_match != b->label_match) /* rule 5 */
        return b->label_match - a->label_match;
    if (a->precedence != b->precedence) /* rule 6 */
        return b->precedence - a->precedence;
    if (a->scope != b->scope) /* rule 8 */
        return a->scope - b->scope;
    if (a->addr.family == AF_INET6 && b->addr.family == AF_INET6 && a->prefix != b->prefix)
        return b->prefix - a->prefix; /* rule 9 (IPv6 only, as the RFC says) */
    return a->index - b->index;       /* rule 10 */
}

void dns_sort_rfc6724(const struct pvd_dns_scope *scope, struct pvd_dns_addr *addrs, int n)
{
    if (n < 2)
        return;
    struct keyed *keys = malloc(sizeof *keys * (size_t)n);
    if (!keys)
        return; /* leave the DNS order */
    for (int i = 0; i < n; i++) {
        struct keyed *k = &keys[i];
        memset(k, 0, sizeof *k);
        k->addr = addrs[i];
        k->index = i;
        struct v6 d6 = as_v6(&addrs[i]);
        const struct policy *dp = lookup_policy(&d6);
        k->precedence = dp->precedence;
        k->scope = addr_scope(&addrs[i]);
        const struct pvd_dns_addr *src = pick_source(scope, &addrs[i]);
        if (src) {
            struct v6 s6 = as_v6(src);
            k->usable = 1;
            k->scope_match = addr_scope(src) == k->scope;
            k->label_match = lookup_policy(&s6)->label == dp->label;
            k->prefix = common_prefix(s6.a, d6.a, 64); /* RFC 6724 9: up to the prefix */
        }
    }
    qsort(keys, (size_t)n, sizeof *keys, compare);
    for (int i = 0; i < n; i++)
        addrs[i] = keys[i].addr;
    free(keys);
}
