/* dns_match_harness.c: drive dns_reply_matches() (shim/dns/dns_wire.c), the check
 * res_send's replies must pass, from tests/test_resolve_glibc_paths.py; built
 * with ASan/UBSan together with shim/dns/dns_wire.c.
 *
 *   harness QUERYHEX < reply              -> "rc=N" for the whole reply
 *   harness QUERYHEX cuts < reply         -> "rc=N" for every truncation of the
 *                                            reply (each in a buffer of its
 *                                            exact size, so an over-read is a
 *                                            sanitizer report)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_wire.h"

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n < max; hex += 2) {
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    static uint8_t qbuf[DNS_MESSAGE_MAX], rbuf[DNS_MESSAGE_MAX + 1];
    size_t qlen = unhex(argv[1], qbuf, sizeof qbuf);
    size_t rlen = fread(rbuf, 1, sizeof rbuf, stdin);
    uint8_t *query = malloc(qlen ? qlen : 1);
    memcpy(query, qbuf, qlen);
    if (argc > 2 && strcmp(argv[2], "cuts") == 0) {
        for (size_t cut = 0; cut <= rlen; cut++) {
            uint8_t *reply = malloc(cut ? cut : 1);
            memcpy(reply, rbuf, cut);
            printf("rc=%d\n", dns_reply_matches(query, qlen, reply, cut));
            free(reply);
        }
    } else {
        uint8_t *reply = malloc(rlen ? rlen : 1);
        memcpy(reply, rbuf, rlen);
        printf("rc=%d\n", dns_reply_matches(query, qlen, reply, rlen));
        free(reply);
    }
    free(query);
    return 0;
}
