/* fuzz_dns_hosts.c: libFuzzer harness for the shim's /etc/hosts and nsswitch.conf parsers
 * (shim/dns/dns_hosts.c).
 *
 * fuzz/build.sh compiles dns_hosts.c with -Dfopen=pvd_fuzz_fopen, so that the files it
 * opens read the fuzz input instead (an fmemopen() of it): the same bytes are both the
 * hosts file and nsswitch.conf (a "hosts:" line is what nsswitch.conf parsing looks for,
 * other lines are skipped by both).  The harness then looks up every name and reverse-looks
 * up every address the input holds, and checks:
 *   - dns_nsswitch_order(): 0..2 sources, each DNS_SRC_FILES or DNS_SRC_DNS, no repeat;
 *   - dns_hosts_lookup(): result count within DNS_RESULT_MAX_ADDRS, of the wanted families,
 *     no duplicate, canonical name terminated and set exactly when something was found;
 *   - dns_hosts_reverse(): -1, 0 or 1, and on 1 a name that fits the caller's buffer. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_hosts.h"
#include "fuzz_check.h"

FILE *pvd_fuzz_fopen(const char *path, const char *mode);

static const uint8_t *input;
static size_t input_size;

FILE *pvd_fuzz_fopen(const char *path, const char *mode)
{
    (void)path;
    (void)mode;
    if (input_size == 0)
        return fmemopen((void *)"", 1, "r"); /* one NUL byte: an empty line */
    return fmemopen((void *)input, input_size, "r");
}

static void check_lookup(const char *name, int want4, int want6)
{
    static struct dns_addr_result out;
    memset(&out, 0x5A, sizeof out);
    int n = dns_hosts_lookup(name, want4, want6, &out);
    CHECK(n == out.naddrs && n >= 0 && n <= DNS_RESULT_MAX_ADDRS);
    CHECK(fuzz_terminated(out.canon, sizeof out.canon));
    CHECK((n == 0) == (out.canon[0] == '\0'));
    for (int i = 0; i < n; i++) {
        const struct pvd_dns_addr *a = &out.addrs[i];
        CHECK((a->family == AF_INET && want4) || (a->family == AF_INET6 && want6));
        for (int j = 0; j < i; j++)
            CHECK(!(out.addrs[j].family == a->family && memcmp(out.addrs[j].addr, a->addr, 16) == 0));
    }
}

static void check_reverse(int family, const uint8_t *addr, size_t hostlen)
{
    char host[300];
    memset(host, 0x5A, sizeof host);
    int rc = dns_hosts_reverse(family, addr, host, hostlen);
    CHECK(rc >= -1 && rc <= 1);
    if (rc == 1)
        CHECK(strnlen(host, hostlen) < hostlen);
    for (size_t i = hostlen; i < sizeof host; i++)
        CHECK(host[i] == 0x5A); /* nothing written past the caller's buffer */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input = data;
    input_size = size;

    int order[2] = {-1, -1};
    int n = dns_nsswitch_order(order);
    CHECK(n >= 0 && n <= 2);
    for (int i = 0; i < n; i++)
        CHECK(order[i] == DNS_SRC_FILES || order[i] == DNS_SRC_DNS);
    CHECK(n < 2 || order[0] != order[1]);

    /* Every token of the input is looked up as a name, or reverse-looked up as an address
     * (the buffer size comes from the input too, so the "too long" path is reached). */
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t hostlen = 1 + (size ? data[size - 1] % 64 : 0);
    int done = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t\r\n#", &save); tok && done < 16;
         tok = strtok_r(NULL, " \t\r\n#", &save), done++) {
        uint8_t addr[16];
        if (inet_pton(AF_INET, tok, addr) == 1) {
            check_reverse(AF_INET, addr, hostlen);
            check_reverse(AF_INET, addr, 256);
        } else if (inet_pton(AF_INET6, tok, addr) == 1) {
            check_reverse(AF_INET6, addr, hostlen);
        } else {
            check_lookup(tok, 1, 1);
            check_lookup(tok, done & 1, !(done & 1));
        }
    }
    free(copy);
    static const uint8_t loop4[4] = {127, 0, 0, 1};
    check_reverse(AF_INET, loop4, hostlen);
    check_lookup("localhost", 1, 1);
    return 0;
}
