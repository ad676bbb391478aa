/* json_scan.c: a small, bounded JSON scanner for pvdd's replies (see json_scan.h). */
#include "json_scan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static size_t skip_ws(const char *s, size_t len, size_t pos)
{
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
        pos++;
    return pos;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* s[pos] is '"': *end is just past the closing quote. */
static int scan_string(const char *s, size_t len, size_t pos, size_t *end)
{
    for (size_t i = pos + 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            *end = i + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c != '\\')
            continue;
        if (++i >= len)
            return -1;
        switch (s[i]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            break;
        case 'u':
            if (len - i <= 4)
                return -1;
            for (size_t k = 1; k <= 4; k++)
                if (hex_value(s[i + k]) < 0)
                    return -1;
            i += 4;
            break;
        default:
            return -1;
        }
    }
    return -1;
}

static int scan_number(const char *s, size_t len, size_t pos, size_t *end)
{
    size_t i = pos;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !is_digit(s[i]))
        return -1;
    if (s[i] == '0')
        i++;
    else
        while (i < len && is_digit(s[i]))
            i++;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return -1;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return -1;
        while (i < len && is_digit(s[i]))
            i++;
    }
    *end = i;
    return 0;
}

static int scan_literal(const char *s, size_t len, size_t pos, const char *word, size_t *end)
{
    size_t n = strlen(word);
    if (len - pos < n || memcmp(s + pos, word, n) != 0)
        return -1;
    *end = pos + n;
    return 0;
}

/* One value starting exactly at s[pos] (no whitespace before it); depth: containers open. */
static int scan_value(const char *s, size_t len, size_t pos, unsigned int depth, size_t *end)
{
    if (pos >= len)
        return -1;
    char c = s[pos];
    if (c == '"')
        return scan_string(s, len, pos, end);
    if (c == '-' || is_digit(c))
        return scan_number(s, len, pos, end);
    if (c == 't')
        return scan_literal(s, len, pos, "true", end);
    if (c == 'f')
        return scan_literal(s, len, pos, "false", end);
    if (c == 'n')
        return scan_literal(s, len, pos, "null", end);
    if (c != '{' && c != '[')
        return -1;
    if (depth >= SHIM_JSON_DEPTH_MAX)
        return -1;
    char close = c == '{' ? '}' : ']';
    size_t i = skip_ws(s, len, pos + 1);
    if (i < len && s[i] == close) {
        *end = i + 1;
        return 0;
    }
    for (;;) {
        size_t e;
        if (c == '{') {
            if (i >= len || s[i] != '"' || scan_string(s, len, i, &e) < 0)
                return -1;
            i = skip_ws(s, len, e);
            if (i >= len || s[i] != ':')
                return -1;
            i = skip_ws(s, len, i + 1);
        }
        if (scan_value(s, len, i, depth + 1, &e) < 0)
            return -1;
        i = skip_ws(s, len, e);
        if (i >= len)
            return -1;
        if (s[i] == close) {
            *end = i + 1;
            return 0;
        }
        if (s[i] != ',')
            return -1;
        i = skip_ws(s, len, i + 1);
    }
}

int shim_json_value(const char *s, size_t len, size_t pos, size_t *start, size_t *end)
{
    pos = skip_ws(s, len, pos);
    if (scan_value(s, len, pos, 0, end) < 0)
        return -1;
    *start = pos;
    return 0;
}

/* Append code point cp as UTF-8 to out (4 bytes at most); returns its length. */
static size_t utf8(unsigned long cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static unsigned long hex4(const char *p)
{
    unsigned long v = 0;
    for (int k = 0; k < 4; k++)
        v = v << 4 | (unsigned long)hex_value(p[k]);
    return v;
}

/* 1 when the well-formed string s[q, e) (q at its opening quote, e past the closing one)
 * unescapes to exactly key. */
static int string_equals(const char *s, size_t q, size_t e, const char *key)
{
    size_t k = 0, klen = strlen(key);
    for (size_t i = q + 1; i < e - 1; i++) {
        unsigned char buf[4];
        size_t n = 1;
        if (s[i] != '\\') {
            buf[0] = (unsigned char)s[i];
        } else {
            char c = s[++i];
            switch (c) {
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            case 'u': {
                unsigned long cp = hex4(s + i + 1);
                i += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < e - 1 && s[i + 1] == '\\' && s[i + 2] == 'u') {
                    unsigned long lo = hex4(s + i + 3);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                n = utf8(cp, buf);
                break;
            }
            default: buf[0] = (unsigned char)c; /* " \ / */
            }
        }
        if (klen - k < n || memcmp(key + k, buf, n) != 0)
            return 0;
        k += n;
    }
    return k == klen;
}

int shim_json_member(const char *s, size_t obj_start, size_t obj_end, const char *key, size_t *vstart,
                     size_t *vend)
{
    size_t end;
    if (obj_start >= obj_end || s[obj_start] != '{' || scan_value(s, obj_end, obj_start, 0, &end) < 0 ||
        end != obj_end)
        return -1;
    /* well-formed: walk the members without checking again */
    size_t i = skip_ws(s, obj_end, obj_start + 1);
    if (s[i] == '}')
        return 0;
    for (;;) {
        size_t q = i, e, vs, ve;
        scan_string(s, obj_end, q, &e);
        i = skip_ws(s, obj_end, e) + 1; /* past ':' */
        vs = skip_ws(s, obj_end, i);
        scan_value(s, obj_end, vs, 1, &ve);
        if (string_equals(s, q, e, key)) {
            *vstart = vs;
            *vend = ve;
            return 1;
        }
        i = skip_ws(s, obj_end, ve);
        if (s[i] == '}')
            return 0;
        i = skip_ws(s, obj_end, i + 1); /* past ',' */
    }
}

static int is_raw(const char *s, size_t start, size_t end, const char *text)
{
    size_t n = strlen(text);
    return end - start == n && memcmp(s + start, text, n) == 0;
}

static ssize_t fail(int e, char *out, size_t outlen)
{
    if (out && outlen > 0)
        out[0] = '\0';
    errno = e;
    return -1;
}

ssize_t shim_attributes_from_reply(const char *reply, size_t len, pvd_handle_t handle, const char *key, char *out,
                                   size_t outlen)
{
    size_t rs, re, vs, ve, ps, pe;
    if (shim_json_value(reply, len, 0, &rs, &re) < 0 || reply[rs] != '{' || skip_ws(reply, len, re) != len)
        return fail(EPROTO, out, outlen);
    if (shim_json_member(reply, rs, re, "ok", &vs, &ve) != 1)
        return fail(EPROTO, out, outlen);
    if (!is_raw(reply, vs, ve, "true")) {
        if (is_raw(reply, vs, ve, "false") && shim_json_member(reply, rs, re, "code", &vs, &ve) == 1 &&
            (is_raw(reply, vs, ve, "\"unknown_pvd\"") || is_raw(reply, vs, ve, "\"ambiguous_pvd\"")))
            return fail(ENOENT, out, outlen);
        return fail(EPROTO, out, outlen);
    }
    if (shim_json_member(reply, rs, re, "pvd", &ps, &pe) != 1 || reply[ps] != '{')
        return fail(EPROTO, out, outlen);
    char num[16];
    snprintf(num, sizeof num, "%u", (unsigned)handle);
    if (shim_json_member(reply, ps, pe, "handle", &vs, &ve) != 1)
        return fail(EPROTO, out, outlen);
    if (!is_raw(reply, vs, ve, num))
        return fail(ENOENT, out, outlen); /* another PvD holds that name now */
    const char *attrs = "{}", *info = "null";
    size_t alen = 2, ilen = 4;
    int rc = shim_json_member(reply, ps, pe, "attributes", &vs, &ve);
    if (rc == 1) {
        if (reply[vs] != '{')
            return fail(EPROTO, out, outlen);
        attrs = reply + vs;
        alen = ve - vs;
    }
    rc = shim_json_member(reply, ps, pe, "additional_info", &vs, &ve);
    if (rc == 1) {
        if (reply[vs] != '{' && !is_raw(reply, vs, ve, "null"))
            return fail(EPROTO, out, outlen);
        info = reply + vs;
        ilen = ve - vs;
    }
    static const char head[] = "{\"attributes\":", mid[] = ",\"additional_info\":";
    if (key) {
        const char *found = NULL;
        size_t flen = 0;
        const char *objs[2] = {info, attrs};
        size_t lens[2] = {ilen, alen};
        for (int k = 0; k < 2 && !found; k++)
            if (objs[k][0] == '{' && shim_json_member(objs[k], 0, lens[k], key, &vs, &ve) == 1) {
                found = objs[k] + vs;
                flen = ve - vs;
            }
        if (!found)
            return fail(ENODATA, out, outlen);
        if (!out || flen >= outlen)
            return fail(ERANGE, out, outlen);
        memcpy(out, found, flen);
        out[flen] = '\0';
        return (ssize_t)flen;
    }
    size_t total = sizeof head - 1 + alen + sizeof mid - 1 + ilen + 1;
    if (!out || total >= outlen)
        return fail(ERANGE, out, outlen);
    size_t o = 0;
    memcpy(out + o, head, sizeof head - 1);
    o += sizeof head - 1;
    memcpy(out + o, attrs, alen);
    o += alen;
    memcpy(out + o, mid, sizeof mid - 1);
    o += sizeof mid - 1;
    memcpy(out + o, info, ilen);
    o += ilen;
    out[o++] = '}';
    out[o] = '\0';
    return (ssize_t)o;
}
