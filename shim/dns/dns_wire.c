/* dns_wire.c: DNS query building and strict response parsing (see dns_wire.h).
 * No I/O, no allocation, no global state. */
#include "dns_wire.h"

#include <string.h>

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int dns_name_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    if (la != lb)
        return 0;
    for (size_t i = 0; i < la; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return 0;
    return 1;
}

int dns_build_query(uint8_t *buf, size_t buflen, uint16_t id, const char *name, uint16_t qtype)
{
    size_t namelen = strlen(name);
    if (namelen > 0 && name[namelen - 1] == '.')
        namelen--;
    if (namelen > DNS_NAME_MAX - 1)
        return DNS_ERR_NAME;
    /* header + encoded name (namelen + 2) + type + class */
    size_t need = DNS_HEADER_LEN + namelen + 2 + 4;
    if (buflen < need)
        return DNS_ERR_ARG;
    memset(buf, 0, DNS_HEADER_LEN);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = 0x01; /* RD */
    buf[5] = 1;    /* QDCOUNT */
    size_t off = DNS_HEADER_LEN;
    size_t start = 0;
    while (start < namelen) {
        size_t end = start;
        while (end < namelen && name[end] != '.')
            end++;
        size_t label = end - start;
        if (label == 0 || label > DNS_LABEL_MAX)
            return DNS_ERR_NAME;
        buf[off++] = (uint8_t)label;
        memcpy(buf + off, name + start, label);
        off += label;
        start = end + 1;
        if (end == namelen)
            break;
        if (start == namelen) /* "a..": empty label at the end */
            return DNS_ERR_NAME;
    }
    buf[off++] = 0;
    buf[off++] = (uint8_t)(qtype >> 8);
    buf[off++] = (uint8_t)qtype;
    buf[off++] = 0;
    buf[off++] = DNS_CLASS_IN;
    return (int)off;
}

int dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outlen)
{
    size_t pos = *off;
    size_t end_after = 0;   /* where the caller continues: after the first pointer */
    int jumped = 0;
    int pointers = 0;
    size_t wire_len = 0;    /* octets of the uncompressed name, incl. length bytes */
    size_t outpos = 0;
    size_t min_pos = pos;   /* pointers must go strictly backwards of this */

    if (outlen == 0)
        return DNS_ERR_ARG;
    for (;;) {
        if (pos >= len)
            return DNS_ERR_TRUNCATED;
        uint8_t c = msg[pos];
        if ((c & 0xC0) == 0xC0) {
            if (pos + 1 >= len)
                return DNS_ERR_TRUNCATED;
            size_t target = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
            if (++pointers > DNS_MAX_POINTERS || target >= min_pos)
                return DNS_ERR_LOOP;
            if (!jumped) {
                end_after = pos + 2;
                jumped = 1;
            }
            min_pos = target;
            pos = target;
            continue;
        }
        if ((c & 0xC0) != 0)
            return DNS_ERR_NAME; /* 0x40 / 0x80 label types are reserved */
        if (c == 0) {
            wire_len += 1;
            if (wire_len > DNS_WIRE_NAME_MAX)
                return DNS_ERR_NAME;
            pos += 1;
            break;
        }
        if (pos + 1 + c > len)
            return DNS_ERR_TRUNCATED;
        wire_len += 1 + (size_t)c;
        if (wire_len > DNS_WIRE_NAME_MAX)
            return DNS_ERR_NAME;
        if (outpos + (outpos ? 1 : 0) + c + 1 > outlen)
            return DNS_ERR_ARG;
        if (outpos)
            out[outpos++] = '.';
        for (size_t i = 0; i < c; i++) {
            char ch = (char)msg[pos + 1 + i];
            if (ch == '\0' || ch == '.')
                return DNS_ERR_NAME; /* cannot be written as a presentation name */
            out[outpos++] = ascii_lower(ch);
        }
        pos += 1 + (size_t)c;
    }
    out[outpos] = '\0';
    *off = jumped ? end_after : pos;
    return DNS_OK;
}

/* Skip or decode one resource record starting at *off. */
static int read_record(const uint8_t *msg, size_t len, size_t *off, struct dns_response *out,
                       int keep)
{
    char owner[DNS_NAME_MAX + 1];
    int rc = dns_read_name(msg, len, off, owner, sizeof owner);
    if (rc != DNS_OK)
        return rc;
    if (*off + 10 > len)
        return DNS_ERR_TRUNCATED;
    const uint8_t *p = msg + *off;
    uint16_t type = get16(p), klass = get16(p + 2);
    uint32_t ttl = get32(p + 4);
    uint16_t rdlength = get16(p + 8);
    size_t rdata = *off + 10;
    if (rdata + rdlength > len)
        return DNS_ERR_TRUNCATED;
    *off = rdata + rdlength;
    if (ttl & 0x80000000u) /* RFC 2181 8: treat as zero */
        ttl = 0;
    if (!keep || klass != DNS_CLASS_IN)
        return DNS_OK;
    if (type != DNS_TYPE_A && type != DNS_TYPE_AAAA && type != DNS_TYPE_CNAME
        && type != DNS_TYPE_PTR)
        return DNS_OK;
    if (out->nanswers >= DNS_MAX_ANSWERS)
        return DNS_ERR_OVERSIZE;
    struct dns_answer *ans = &out->answers[out->nanswers];
    ans->type = type;
    ans->ttl = ttl;
    memcpy(ans->owner, owner, sizeof owner);
    if (type == DNS_TYPE_A || type == DNS_TYPE_AAAA) {
        size_t want = type == DNS_TYPE_A ? 4 : 16;
        if (rdlength != want)
            return DNS_ERR_FORMAT;
        memset(ans->data.addr, 0, sizeof ans->data.addr);
        memcpy(ans->data.addr, msg + rdata, want);
    } else {
        size_t name_off = rdata;
        rc = dns_read_name(msg, len, &name_off, ans->data.name, sizeof ans->data.name);
        if (rc != DNS_OK)
            return rc;
        if (name_off != rdata + rdlength)
            return DNS_ERR_FORMAT;
    }
    out->nanswers++;
    return DNS_OK;
}

int dns_parse_response(const uint8_t *msg, size_t len, uint16_t id, const char *qname,
                       uint16_t qtype, struct dns_response *out)
{
    memset(out, 0, offsetof(struct dns_response, answers));
    if (len > DNS_MESSAGE_MAX)
        return DNS_ERR_OVERSIZE;
    if (len < DNS_HEADER_LEN)
        return DNS_ERR_TRUNCATED;
    out->id = get16(msg);
    if (out->id != id)
        return DNS_ERR_MISMATCH;
    uint8_t flags1 = msg[2], flags2 = msg[3];
    if (!(flags1 & 0x80) || ((flags1 >> 3) & 0x0F) != 0)
        return DNS_ERR_MISMATCH; /* not a response, or not a standard query */
    out->truncated = (flags1 & 0x02) != 0;
    out->authoritative = (flags1 & 0x04) != 0;
    out->rcode = flags2 & 0x0F;
    uint16_t qd = get16(msg + 4), an = get16(msg + 6), ns = get16(msg + 8), ar = get16(msg + 10);
    out->ancount = an;
    if (qd != 1)
        return DNS_ERR_MISMATCH;
    if ((size_t)an + ns + ar > DNS_MAX_RECORDS)
        return DNS_ERR_OVERSIZE;

    size_t off = DNS_HEADER_LEN;
    char name[DNS_NAME_MAX + 1];
    int rc = dns_read_name(msg, len, &off, name, sizeof name);
    if (rc != DNS_OK)
        return rc;
    if (off + 4 > len)
        return DNS_ERR_TRUNCATED;
    if (!dns_name_equal(name, qname) || get16(msg + off) != qtype
        || get16(msg + off + 2) != DNS_CLASS_IN)
        return DNS_ERR_MISMATCH;
    off += 4;
    if (out->truncated)
        return DNS_OK; /* the caller retries over TCP; a partial answer is not used */
    /* Every record takes at least 11 octets: a count beyond that is a lie.  (Checked after
     * the question: a reply to another question is a mismatch, with or without TC.) */
    if (((size_t)an + ns + ar) * 11 > len - DNS_HEADER_LEN)
        return DNS_ERR_TRUNCATED;

    unsigned total = (unsigned)an + ns + ar;
    for (unsigned i = 0; i < total; i++) {
        rc = read_record(msg, len, &off, out, i < an);
        if (rc != DNS_OK)
            return rc;
    }
    if (off != len)
        return DNS_ERR_FORMAT; /* trailing garbage */
    return DNS_OK;
}

int dns_reverse_name(int family, const uint8_t *addr, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t pos = 0;
    if (family == 4) {
        if (outlen < 30)
            return DNS_ERR_ARG;
        for (int i = 3; i >= 0; i--) {
            unsigned v = addr[i];
            if (v >= 100)
                out[pos++] = (char)('0' + v / 100);
            if (v >= 10)
                out[pos++] = (char)('0' + (v / 10) % 10);
            out[pos++] = (char)('0' + v % 10);
            out[pos++] = '.';
        }
        memcpy(out + pos, "in-addr.arpa", 13);
        return DNS_OK;
    }
    if (family == 6) {
        if (outlen < 16 * 4 + 9)
            return DNS_ERR_ARG;
        for (int i = 15; i >= 0; i--) {
            out[pos++] = hex[addr[i] & 0x0F];
            out[pos++] = '.';
            out[pos++] = hex[addr[i] >> 4];
            out[pos++] = '.';
        }
        memcpy(out + pos, "ip6.arpa", 9);
        return DNS_OK;
    }
    return DNS_ERR_ARG;
}

int dns_reply_matches(const uint8_t *query, size_t qlen, const uint8_t *reply, size_t rlen)
{
    if (qlen < DNS_HEADER_LEN || rlen < DNS_HEADER_LEN)
        return DNS_ERR_TRUNCATED;
    if (query[0] != reply[0] || query[1] != reply[1] || !(reply[2] & 0x80))
        return DNS_ERR_MISMATCH;
    unsigned opcode = (query[2] >> 3) & 0x0F;
    if (((reply[2] >> 3) & 0x0F) != opcode)
        return DNS_ERR_MISMATCH;
    if (opcode == 5) /* UPDATE */
        return DNS_OK;
    uint16_t qd = get16(query + 4);
    if (get16(reply + 4) != qd || qd > DNS_MAX_RECORDS)
        return DNS_ERR_MISMATCH;
    size_t qoff = DNS_HEADER_LEN, roff = DNS_HEADER_LEN;
    char qname[DNS_NAME_MAX + 1], rname[DNS_NAME_MAX + 1];
    for (unsigned i = 0; i < qd; i++) {
        int rc = dns_read_name(query, qlen, &qoff, qname, sizeof qname);
        if (rc != DNS_OK)
            return rc == DNS_ERR_TRUNCATED ? rc : DNS_ERR_MISMATCH;
        rc = dns_read_name(reply, rlen, &roff, rname, sizeof rname);
        if (rc != DNS_OK)
            return rc == DNS_ERR_TRUNCATED ? rc : DNS_ERR_MISMATCH;
        if (qoff + 4 > qlen || roff + 4 > rlen)
            return DNS_ERR_TRUNCATED;
        if (strcmp(qname, rname) != 0 || memcmp(query + qoff, reply + roff, 4) != 0)
            return DNS_ERR_MISMATCH;
        qoff += 4;
        roff += 4;
    }
    return DNS_OK;
}

const char *dns_strerror(int err)
{
    switch (err) {
    case DNS_OK: return "ok";
    case DNS_ERR_ARG: return "bad argument";
    case DNS_ERR_TRUNCATED: return "truncated message";
    case DNS_ERR_LOOP: return "compression pointer loop";
    case DNS_ERR_NAME: return "malformed name";
    case DNS_ERR_OVERSIZE: return "oversized message";
    case DNS_ERR_MISMATCH: return "not a response to our query";
    case DNS_ERR_FORMAT: return "malformed record";
    default: return "unknown error";
    }
}
