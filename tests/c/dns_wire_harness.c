/* dns_wire_harness.c: drive the shim's pure DNS functions from tests.
 * Compiled by tests/test_resolve_wire.py together with shim/dns/dns_wire.c,
 * shim/dns/dns_scope.c and shim/dns/dns_sort.c.
 *
 *   harness query ID NAME QTYPE          -> query bytes, hex, on stdout
 *   harness parse ID QNAME QTYPE < msg   -> "rc=N rcode=N tc=N n=N" then one
 *                                           line per kept answer
 *   harness scope LINE                   -> "rc=N" and the parsed fields
 *   harness sort SCOPELINE ADDR...       -> ADDRs in RFC 6724 order
 *   harness reverse ADDR                 -> reverse-lookup name
 *   harness fuzz SEED COUNT QNAME QTYPE < msg
 *                                        -> COUNT mutations of msg (byte flips,
 *                                           cuts, pointer plants), parsed under
 *                                           the sanitizers; prints outcome counts
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_scope.h"
#include "dns_sort.h"
#include "dns_wire.h"

static int do_query(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    uint8_t buf[DNS_UDP_MAX];
    int n = dns_build_query(buf, sizeof buf, (uint16_t)atoi(argv[2]), argv[3],
                            (uint16_t)atoi(argv[4]));
    if (n < 0) {
        printf("rc=%d\n", n);
        return 1;
    }
    for (int i = 0; i < n; i++)
        printf("%02x", buf[i]);
    printf("\n");
    return 0;
}

static int do_parse(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    static uint8_t msg[DNS_MESSAGE_MAX + 1024];
    size_t len = fread(msg, 1, sizeof msg, stdin);
    static struct dns_response resp;
    int rc = dns_parse_response(msg, len, (uint16_t)atoi(argv[2]), argv[3],
                                (uint16_t)atoi(argv[4]), &resp);
    printf("rc=%d rcode=%d tc=%d n=%d\n", rc, resp.rcode, resp.truncated,
           rc == DNS_OK ? resp.nanswers : 0);
    if (rc != DNS_OK)
        return 0;
    for (int i = 0; i < resp.nanswers; i++) {
        const struct dns_answer *a = &resp.answers[i];
        char text[INET6_ADDRSTRLEN];
        const char *value = a->data.name;
        if (a->type == DNS_TYPE_A)
            value = inet_ntop(AF_INET, a->data.addr, text, sizeof text);
        else if (a->type == DNS_TYPE_AAAA)
            value = inet_ntop(AF_INET6, a->data.addr, text, sizeof text);
        printf("%u %u %s %s\n", a->type, a->ttl, a->owner, value);
    }
    return 0;
}

static void print_addr(const struct pvd_dns_addr *a)
{
    char text[INET6_ADDRSTRLEN];
    inet_ntop(a->family, a->addr, text, sizeof text);
    printf("%s", text);
}

static int do_scope(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    static struct pvd_dns_scope s;
    int rc = pvd_dns_parse_scope(argv[2], &s);
    printf("rc=%d\n", rc);
    if (rc != PVD_DNS_SCOPE_OK)
        return 0;
    printf("id=%s handle=%u null=%d mark=%u\n", s.id, s.handle, s.is_null, s.mark);
    for (int i = 0; i < s.nifs; i++)
        printf("if=%s:%u\n", s.ifs[i].name, s.ifs[i].index);
    for (int i = 0; i < s.naddrs; i++) {
        printf("addr=");
        print_addr(&s.addrs[i]);
        printf("\n");
    }
    for (int i = 0; i < s.nservers; i++) {
        printf("dns=");
        print_addr(&s.servers[i]);
        printf("\n");
    }
    for (int i = 0; i < s.nsearch; i++)
        printf("search=%s\n", s.search[i]);
    return 0;
}

static int do_sort(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    static struct pvd_dns_scope s;
    if (pvd_dns_parse_scope(argv[2], &s) != PVD_DNS_SCOPE_OK)
        return 3;
    struct pvd_dns_addr addrs[64];
    int n = 0;
    for (int i = 3; i < argc && n < 64; i++, n++) {
        memset(&addrs[n], 0, sizeof addrs[n]);
        if (inet_pton(AF_INET, argv[i], addrs[n].addr) == 1)
            addrs[n].family = AF_INET;
        else if (inet_pton(AF_INET6, argv[i], addrs[n].addr) == 1)
            addrs[n].family = AF_INET6;
        else
            return 3;
    }
    dns_sort_rfc6724(&s, addrs, n);
    for (int i = 0; i < n; i++) {
        print_addr(&addrs[i]);
        printf("\n");
    }
    return 0;
}

static int do_reverse(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    uint8_t addr[16];
    char out[DNS_NAME_MAX + 1];
    int family = strchr(argv[2], ':') ? AF_INET6 : AF_INET;
    if (inet_pton(family, argv[2], addr) != 1)
        return 3;
    if (dns_reverse_name(family == AF_INET ? 4 : 6, addr, out, sizeof out) != DNS_OK)
        return 1;
    printf("%s\n", out);
    return 0;
}

static uint64_t rng_state;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int do_fuzz(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    static uint8_t seed_msg[DNS_MESSAGE_MAX];
    size_t seed_len = fread(seed_msg, 1, sizeof seed_msg, stdin);
    if (seed_len < DNS_HEADER_LEN)
        return 3;
    rng_state = strtoull(argv[2], NULL, 10) | 1;
    long count = atol(argv[3]);
    uint16_t id = (uint16_t)((seed_msg[0] << 8) | seed_msg[1]);
    static struct dns_response resp;
    long outcomes[9] = {0}; /* 0..-7, and [8] for any other return value */
    for (long n = 0; n < count; n++) {
        /* A fresh heap copy of exactly the mutated length, so ASan sees any overread. */
        size_t len = seed_len;
        uint8_t *msg = malloc(len);
        memcpy(msg, seed_msg, len);
        int edits = 1 + (int)(next_random() % 8);
        for (int e = 0; e < edits; e++) {
            size_t at = next_random() % len;
            switch (next_random() % 4) {
            case 0: msg[at] = (uint8_t)next_random(); break;
            case 1: msg[at] ^= (uint8_t)(1u << (next_random() % 8)); break;
            case 2: /* plant a compression pointer anywhere */
                if (at + 1 < len) {
                    msg[at] = (uint8_t)(0xC0 | (next_random() % 2));
                    msg[at + 1] = (uint8_t)next_random();
                }
                break;
            default: len = at > DNS_HEADER_LEN ? at : len; break; /* cut */
            }
        }
        int rc = dns_parse_response(msg, len, id, argv[4], (uint16_t)atoi(argv[5]), &resp);
        outcomes[rc <= 0 && rc >= -7 ? -rc : 8]++;
        free(msg);
    }
    for (int i = 0; i < 9; i++)
        printf("%d=%ld\n", -i, outcomes[i]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (strcmp(argv[1], "query") == 0)
        return do_query(argc, argv);
    if (strcmp(argv[1], "parse") == 0)
        return do_parse(argc, argv);
    if (strcmp(argv[1], "scope") == 0)
        return do_scope(argc, argv);
    if (strcmp(argv[1], "sort") == 0)
        return do_sort(argc, argv);
    if (strcmp(argv[1], "reverse") == 0)
        return do_reverse(argc, argv);
    if (strcmp(argv[1], "fuzz") == 0)
        return do_fuzz(argc, argv);
    return 2;
}
