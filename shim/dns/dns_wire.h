/* dns_wire.h: DNS message encoding and decoding for the shim's stub resolver.
 *
 * Pure functions: no I/O, no allocation, no global state, so they are safe
 * from any thread and can be fuzzed on their own (tests/c/dns_wire_harness.c).
 * Every read from a message is bounds-checked; compression pointers may only
 * point backwards and at most DNS_MAX_POINTERS of them are followed per name,
 * so a looping message fails with DNS_ERR_LOOP instead of hanging.
 *
 * Internal to libpvdshim.so (hidden visibility: the library is built with
 * -fvisibility=hidden and nothing here is marked default).
 */
#ifndef PVD_DNS_WIRE_H
#define PVD_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_PTR 12
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP 4
#define DNS_RCODE_REFUSED 5

/* A presentation-format name (no trailing dot) is at most 253 characters;
 * 255 octets on the wire. */
#define DNS_NAME_MAX 254
#define DNS_WIRE_NAME_MAX 255
#define DNS_LABEL_MAX 63
#define DNS_UDP_MAX 512          /* no EDNS0: plain RFC 1035 limit */
#define DNS_MESSAGE_MAX 65535    /* TCP length prefix limit */
#define DNS_HEADER_LEN 12
#define DNS_MAX_POINTERS 32      /* compression pointers followed per name */
#define DNS_MAX_ANSWERS 48       /* answers kept; more fail with DNS_ERR_OVERSIZE */
#define DNS_MAX_RECORDS 2048     /* sanity bound on the section counts */

/* Error codes (negative). */
#define DNS_OK 0
#define DNS_ERR_ARG (-1)         /* bad argument (name too long, buffer too small) */
#define DNS_ERR_TRUNCATED (-2)   /* message ends inside a header, name or record */
#define DNS_ERR_LOOP (-3)        /* compression pointer loop or forward pointer */
#define DNS_ERR_NAME (-4)        /* bad label (too long, reserved type, NUL or dot inside) or name > 255 */
#define DNS_ERR_OVERSIZE (-5)    /* message or record count beyond what we accept */
#define DNS_ERR_MISMATCH (-6)    /* not a response to our query (id, flags, question) */
#define DNS_ERR_FORMAT (-7)      /* other malformation (rdlength of A != 4, ...) */

struct dns_answer {
    uint16_t type;                     /* DNS_TYPE_A, _AAAA, _CNAME or _PTR */
    uint32_t ttl;
    char owner[DNS_NAME_MAX + 1];      /* lower-case, no trailing dot */
    union {
        uint8_t addr[16];              /* A: 4 bytes, AAAA: 16 bytes */
        char name[DNS_NAME_MAX + 1];   /* CNAME / PTR target, lower-case */
    } data;
};

struct dns_response {
    uint16_t id;
    uint8_t rcode;
    uint8_t truncated;                 /* TC bit */
    uint8_t authoritative;
    uint16_t ancount;                  /* as in the header */
    int nanswers;                      /* answers of the four kept types */
    struct dns_answer answers[DNS_MAX_ANSWERS];
};

/* Build a standard recursive query (RD=1, one question, class IN) for
 * name (presentation format, trailing dot optional, "." is the root) and
 * qtype into buf.  Returns its length, or DNS_ERR_ARG / DNS_ERR_NAME. */
int dns_build_query(uint8_t *buf, size_t buflen, uint16_t id, const char *name,
                    uint16_t qtype);

/* Parse msg as the response to the query (id, qname, qtype).  Checks QR=1,
 * the id, opcode 0, QDCOUNT=1 and that the question is ours (name compared
 * case-insensitively), then every record of every section for
 * well-formedness; keeps A, AAAA, CNAME and PTR answers of class IN.
 * Returns DNS_OK or a DNS_ERR_* code; out is only meaningful on DNS_OK
 * (except out->truncated, also set when the TC bit makes the answer
 * section incomplete: then DNS_OK is returned as long as the header and
 * question parse, and the caller must retry over TCP). */
int dns_parse_response(const uint8_t *msg, size_t len, uint16_t id, const char *qname,
                       uint16_t qtype, struct dns_response *out);

/* Decode the (possibly compressed) name at *off in msg into out (lower-case,
 * no trailing dot, "" for the root) and advance *off past it.  Exposed for
 * the harness. */
int dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outlen);

/* Case-insensitive comparison of two presentation names, ignoring one
 * trailing dot on either.  Returns 1 when equal. */
int dns_name_equal(const char *a, const char *b);

/* Write the reverse-lookup name of addr (4 or 16 bytes) into out:
 * "4.3.2.1.in-addr.arpa" or the nibble form under ip6.arpa. */
int dns_reverse_name(int family, const uint8_t *addr, char *out, size_t outlen);

/* Is reply (rlen octets) a response to query (qlen octets), as res_send(3)
 * requires?  Same id, QR set, same opcode and, except for UPDATE (whose
 * replies may carry the header only), the same question section: the same
 * count and, in order, the same names (case-insensitive), types and classes.
 * Returns DNS_OK, DNS_ERR_MISMATCH, or DNS_ERR_TRUNCATED (either message
 * ends too early).  Does not look past the question section. */
int dns_reply_matches(const uint8_t *query, size_t qlen, const uint8_t *reply, size_t rlen);

/* A short English description of an error code, for messages. */
const char *dns_strerror(int err);

#endif
