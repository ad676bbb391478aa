/* fuzz_dns_wire.c: libFuzzer harness for the shim's DNS message parser (shim/dns/dns_wire.c).
 *
 * The input is a whole DNS message.  It is parsed as the reply to the query it claims to
 * answer (the id and the question are taken from the message itself, so the fuzzer gets
 * past the question check and into the records), and checked against dns_wire.h's contract:
 *   - only the documented return codes, never DNS_ERR_ARG (the parser's own buffers always
 *     hold any name of at most 255 wire octets);
 *   - an accepted reply keeps at most DNS_MAX_ANSWERS answers, no more than ANCOUNT, of the
 *     four kept types, with terminated lower-case names and TTLs below 2^31;
 *   - round trip: the question name, encoded again by dns_build_query(), decodes to the same
 *     name and is accepted as the question of an empty reply;
 *   - dns_reverse_name() on every kept address fits its buffer;
 *   - dns_reply_matches() (the raw transport's check of a reply against its query) gives
 *     only its three codes, and agrees with dns_parse_response(): a reply this accepts matches
 *     the query built from its question, and a reply that matches is never refused as
 *     DNS_ERR_MISMATCH; a message is always a match for itself with QR set;
 *   - the input read as a presentation name (a C string): dns_build_query() either refuses it
 *     with DNS_ERR_NAME or encodes it so that dns_read_name() gives the same name back (case
 *     and one trailing dot aside), in at most 255 octets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_wire.h"
#include "fuzz_check.h"

static void check_name(const char *name, size_t size)
{
    CHECK(fuzz_terminated(name, size));
    size_t n = strlen(name);
    CHECK(n <= DNS_NAME_MAX - 1);
    for (size_t i = 0; i < n; i++)
        CHECK(!(name[i] >= 'A' && name[i] <= 'Z'));
    CHECK(n == 0 || (name[0] != '.' && name[n - 1] != '.'));
    CHECK(strstr(name, "..") == NULL);
}

static int match_code(int rc)
{
    return rc == DNS_OK || rc == DNS_ERR_MISMATCH || rc == DNS_ERR_TRUNCATED;
}

static void round_trip(const uint8_t *data, size_t size, int parsed, uint16_t id, const char *qname,
                       uint16_t qtype)
{
    uint8_t q[DNS_UDP_MAX];
    int n = dns_build_query(q, sizeof q, id, qname, qtype);
    CHECK(n >= DNS_HEADER_LEN + 5);
    int m = dns_reply_matches(q, (size_t)n, data, size);
    CHECK(match_code(m));
    CHECK(parsed != DNS_OK || m == DNS_OK);
    CHECK(m != DNS_OK || parsed != DNS_ERR_MISMATCH);
    char back[DNS_NAME_MAX + 1];
    size_t off = DNS_HEADER_LEN;
    CHECK(dns_read_name(q, (size_t)n, &off, back, sizeof back) == DNS_OK);
    CHECK(strcmp(back, qname) == 0 && off + 4 == (size_t)n);
    CHECK(dns_name_equal(back, qname));
    uint8_t query[DNS_UDP_MAX];
    memcpy(query, q, (size_t)n);
    q[2] |= 0x80; /* the query becomes its own empty reply */
    CHECK(dns_reply_matches(query, (size_t)n, q, (size_t)n) == DNS_OK);
    static struct dns_response r;
    CHECK(dns_parse_response(q, (size_t)n, id, qname, qtype, &r) == DNS_OK);
    CHECK(r.nanswers == 0 && r.rcode == 0 && !r.truncated);
}

static void presentation_name(const uint8_t *data, size_t size)
{
    char name[300];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    CHECK(dns_name_equal(name, name));
    uint8_t q[DNS_UDP_MAX];
    int len = dns_build_query(q, sizeof q, 0x1234, name, DNS_TYPE_AAAA);
    if (len < 0) {
        CHECK(len == DNS_ERR_NAME);
        return;
    }
    CHECK(len >= DNS_HEADER_LEN + 5 && len - DNS_HEADER_LEN - 4 <= DNS_WIRE_NAME_MAX);
    char back[DNS_NAME_MAX + 1];
    size_t off = DNS_HEADER_LEN;
    CHECK(dns_read_name(q, (size_t)len, &off, back, sizeof back) == DNS_OK);
    CHECK(off + 4 == (size_t)len);
    CHECK(dns_name_equal(back, name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    presentation_name(data, size);

    uint16_t id = size >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : 0;
    char qname[DNS_NAME_MAX + 1] = "example.com";
    uint16_t qtype = DNS_TYPE_A;
    size_t off = DNS_HEADER_LEN;
    int have_question = 0;
    if (size > DNS_HEADER_LEN) {
        int rc = dns_read_name(data, size, &off, qname, sizeof qname);
        CHECK(rc <= 0 && rc >= DNS_ERR_FORMAT && rc != DNS_ERR_ARG);
        if (rc == DNS_OK) {
            check_name(qname, sizeof qname);
            have_question = 1;
            if (off + 2 <= size)
                qtype = (uint16_t)((data[off] << 8) | data[off + 1]);
        } else {
            strcpy(qname, "example.com");
        }
    }

    static struct dns_response resp;
    int rc = dns_parse_response(data, size, id, qname, qtype, &resp);
    CHECK(rc <= 0 && rc >= DNS_ERR_FORMAT && rc != DNS_ERR_ARG);
    if (rc == DNS_OK && !resp.truncated) {
        CHECK(resp.nanswers >= 0 && resp.nanswers <= DNS_MAX_ANSWERS);
        CHECK(resp.nanswers <= resp.ancount);
        CHECK(resp.rcode <= 15);
        for (int i = 0; i < resp.nanswers; i++) {
            const struct dns_answer *a = &resp.answers[i];
            CHECK(a->type == DNS_TYPE_A || a->type == DNS_TYPE_AAAA || a->type == DNS_TYPE_CNAME
                  || a->type == DNS_TYPE_PTR);
            CHECK(a->ttl <= 0x7FFFFFFFu);
            check_name(a->owner, sizeof a->owner);
            if (a->type == DNS_TYPE_CNAME || a->type == DNS_TYPE_PTR) {
                check_name(a->data.name, sizeof a->data.name);
            } else {
                char rev[DNS_NAME_MAX + 1];
                int family = a->type == DNS_TYPE_A ? 4 : 6;
                CHECK(dns_reverse_name(family, a->data.addr, rev, sizeof rev) == DNS_OK);
                CHECK(fuzz_terminated(rev, sizeof rev));
            }
        }
    }
    if (have_question)
        round_trip(data, size, rc, id, qname, qtype);
    if (size >= DNS_HEADER_LEN) { /* the input as a query, and as its own reply */
        uint8_t *reply = malloc(size);
        if (reply) {
            memcpy(reply, data, size);
            reply[2] |= 0x80;
            CHECK(match_code(dns_reply_matches(data, size, reply, size)));
            free(reply);
        }
    }
    /* a second, unrelated question exercises the mismatch paths */
    rc = dns_parse_response(data, size, (uint16_t)(id ^ 1), "example.com", DNS_TYPE_AAAA, &resp);
    CHECK(rc <= 0 && rc >= DNS_ERR_FORMAT && rc != DNS_ERR_ARG);
    return 0;
}
